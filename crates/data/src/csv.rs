//! Reading numeric CSV tables with one label column (the format of the bundled `iris.csv`,
//! `breast_cancer.csv` and `diabetes.csv`).
//!
//! The format is deliberately small: one header line with the column names, comma separated
//! cells, `\n` or `\r\n` line ends, no quoting, trailing empty lines ignored. Every cell except
//! the label column must be a finite number. Anything else is an error that names the line,
//! the column and the cell, never a panic.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use tensor::{Element, Tensor};

use crate::error::{DataError, Result};

/// A CSV table split into a numeric feature matrix and a column of raw labels: what
/// [`read_csv`] returns, ready for [`class_labels`](Self::class_labels) (classification) or
/// [`numeric_labels`](Self::numeric_labels) (regression).
#[derive(Debug, Clone)]
pub struct CsvData<T: Element = f32> {
    /// The names of the feature columns, in file order (the label column left out).
    pub feature_names: Vec<String>,
    /// The features, shape `[rows, feature_names.len()]`, one row per data line.
    pub features: Tensor<T>,
    /// The name of the label column.
    pub label_name: String,
    /// The label cells as written in the file (whitespace trimmed), one per row.
    pub labels: Vec<String>,
}

/// Reads a CSV file with one header line into features and labels; `label_column` names the
/// column that holds the labels, every other column must be numeric.
///
/// The file is read whole into memory and parsed by [`parse_csv`].
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read; [`DataError::Format`] (with the line number where one
/// applies) for text that is not UTF-8, an empty file, a label column that is not in the
/// header, duplicate or empty column names, a row with the wrong number of cells, a feature
/// cell that is not a finite number, or a file with no data rows.
///
/// ```
/// use data::read_csv;
/// let iris = read_csv::<f32>(
///     concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv"),
///     "species",
/// )
/// .unwrap();
/// assert_eq!(iris.features.shape(), &[150, 4]);
/// assert_eq!(iris.feature_names[0], "sepal_length");
/// let (classes, y) = iris.class_labels();
/// assert_eq!(classes, ["setosa", "versicolor", "virginica"]);
/// assert_eq!(y[0], 0);
///
/// // A label column that does not exist is an error listing the columns that do.
/// let err = read_csv::<f32>(
///     concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv"),
///     "label",
/// )
/// .unwrap_err();
/// assert!(err.to_string().contains("sepal_length, sepal_width"));
/// ```
pub fn read_csv<T: Element>(path: impl AsRef<Path>, label_column: &str) -> Result<CsvData<T>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..valid]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            return Err(DataError::format(
                path,
                Some(line),
                format!(
                    "expected UTF-8 text, found an invalid byte sequence at byte offset {valid}"
                ),
            ));
        }
    };
    parse_csv(&text, label_column, path)
}

/// Parses CSV text (the contents of a file) into features and labels; `source` only names
/// the file in error messages. This is the whole of [`read_csv`] after reading the file, and
/// the entry point for tests and fuzzing.
///
/// # Errors
/// As [`read_csv`], without the I/O and UTF-8 errors.
///
/// ```
/// use std::path::Path;
/// use data::parse_csv;
/// let text = "x1,x2,y\n1,2,a\n3,4.5,b\n";
/// let data = parse_csv::<f64>(text, "y", Path::new("inline.csv")).unwrap();
/// assert_eq!(data.features.to_vec(), vec![1.0, 2.0, 3.0, 4.5]);
/// assert_eq!(data.labels, ["a", "b"]);
///
/// let err = parse_csv::<f64>("x,y\n1,a\nabc,b\n", "y", Path::new("inline.csv")).unwrap_err();
/// assert_eq!(err.to_string(), "inline.csv:3: column 'x': cannot parse 'abc' as a number");
/// ```
pub fn parse_csv<T: Element>(text: &str, label_column: &str, source: &Path) -> Result<CsvData<T>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // (1-based line number, line without its line end)
    let mut lines: Vec<(usize, &str)> = text
        .split('\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix('\r').unwrap_or(line)))
        .collect();
    while lines.last().is_some_and(|(_, line)| line.trim().is_empty()) {
        lines.pop();
    }
    let Some((&(header_line, header), rows)) = lines.split_first() else {
        return Err(DataError::format(
            source,
            None,
            "empty file: expected a header line with the column names",
        ));
    };

    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (col, &name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(DataError::format(
                source,
                Some(header_line),
                format!(
                    "header column {} of {} is empty; expected a name for every column",
                    col + 1,
                    names.len()
                ),
            ));
        }
        if let Some(first) = seen.insert(name, col) {
            return Err(DataError::format(
                source,
                Some(header_line),
                format!(
                    "column name '{name}' appears twice in the header (columns {} and {}); \
                     expected distinct names",
                    first + 1,
                    col + 1
                ),
            ));
        }
    }
    let Some(label_col) = names.iter().position(|&n| n == label_column) else {
        return Err(DataError::format(
            source,
            Some(header_line),
            format!(
                "label column '{label_column}' is not in the header; the columns are: {}",
                names.join(", ")
            ),
        ));
    };
    if names.len() < 2 {
        return Err(DataError::format(
            source,
            Some(header_line),
            format!(
                "the header has only the label column '{label_column}'; expected at least one \
                 feature column besides it"
            ),
        ));
    }
    if rows.is_empty() {
        return Err(DataError::format(
            source,
            Some(header_line),
            "no data rows after the header; expected at least one",
        ));
    }

    let n_features = names.len() - 1;
    let mut features: Vec<T> = Vec::with_capacity(rows.len() * n_features);
    let mut labels = Vec::with_capacity(rows.len());
    for &(line_no, line) in rows {
        if line.trim().is_empty() {
            return Err(DataError::format(
                source,
                Some(line_no),
                "empty line between data rows; expected a row of cells (only trailing empty \
                 lines are allowed)",
            ));
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != names.len() {
            return Err(DataError::format(
                source,
                Some(line_no),
                format!(
                    "row has {} cells, expected {} (as in the header)",
                    cells.len(),
                    names.len()
                ),
            ));
        }
        for (col, &cell) in cells.iter().enumerate() {
            if col == label_col {
                if cell.is_empty() {
                    return Err(DataError::format(
                        source,
                        Some(line_no),
                        format!("label column '{label_column}' is empty; expected a label"),
                    ));
                }
                labels.push(cell.to_owned());
            } else {
                features.push(parse_feature::<T>(cell, names[col], line_no, source)?);
            }
        }
    }
    let features = Tensor::from_vec(features, &[rows.len(), n_features])?;
    let feature_names = names
        .iter()
        .enumerate()
        .filter(|&(col, _)| col != label_col)
        .map(|(_, &n)| n.to_owned())
        .collect();
    Ok(CsvData {
        feature_names,
        features,
        label_name: label_column.to_owned(),
        labels,
    })
}

/// One feature cell as a finite number of type `T`, or an error naming the column and cell.
fn parse_feature<T: Element>(cell: &str, column: &str, line: usize, source: &Path) -> Result<T> {
    let err = |message: String| DataError::format(source, Some(line), message);
    if cell.is_empty() {
        return Err(err(format!(
            "column '{column}': empty cell, expected a number"
        )));
    }
    let value: f64 = cell.parse().map_err(|_| {
        let hint = if cell.contains('"') {
            " (quoted cells are not supported)"
        } else {
            ""
        };
        err(format!(
            "column '{column}': cannot parse '{cell}' as a number{hint}"
        ))
    })?;
    if !value.is_finite() {
        return Err(err(format!(
            "column '{column}': '{cell}' is not a finite number; expected a finite value \
             (NaN and infinity are not accepted)"
        )));
    }
    let converted = T::from_f64_lossy(value);
    if !converted.is_finite() {
        return Err(err(format!(
            "column '{column}': {cell} is out of range for {}; expected a magnitude below {:e}",
            T::DTYPE,
            T::max_value().to_f64_exact()
        )));
    }
    Ok(converted)
}

impl<T: Element> CsvData<T> {
    /// Class labels for classification: the distinct labels sorted (by value when all are
    /// numbers, so `"2"` comes before `"10"`; otherwise by name), and each row's index into
    /// them, ready for [`to_categorical`](super::to_categorical) or a sparse cross-entropy loss.
    ///
    /// ```
    /// use std::path::Path;
    /// use data::parse_csv;
    /// let data = parse_csv::<f32>("x,y\n1,b\n2,a\n3,b\n", "y", Path::new("t.csv")).unwrap();
    /// let (classes, y) = data.class_labels();
    /// assert_eq!(classes, ["a", "b"]);
    /// assert_eq!(y, [1, 0, 1]);
    /// let codes = parse_csv::<f32>("x,y\n1,10\n2,2\n3,0\n", "y", Path::new("t.csv")).unwrap();
    /// assert_eq!(codes.class_labels(), (vec!["0".into(), "2".into(), "10".into()], vec![2, 1, 0]));
    /// ```
    pub fn class_labels(&self) -> (Vec<String>, Vec<usize>) {
        let mut classes: Vec<String> = self
            .labels
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .cloned()
            .collect();
        // Numeric class codes sort by value ("2" before "10"), names alphabetically.
        let numbers: Option<Vec<f64>> = classes.iter().map(|c| c.parse::<f64>().ok()).collect();
        if let Some(numbers) = numbers {
            let mut order: Vec<usize> = (0..classes.len()).collect();
            order.sort_by(|&a, &b| numbers[a].total_cmp(&numbers[b]));
            classes = order.into_iter().map(|i| classes[i].clone()).collect();
        }
        let index: std::collections::HashMap<&str, usize> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let indices = self.labels.iter().map(|l| index[l.as_str()]).collect();
        (classes, indices)
    }

    /// The labels parsed as finite numbers, for regression targets (or labels already coded
    /// as `0`/`1`).
    ///
    /// # Errors
    /// [`DataError::InvalidData`] naming the row, its line in the file and the cell, for a label
    /// that is not a finite number.
    ///
    /// ```
    /// use data::read_csv;
    /// let diabetes = read_csv::<f32>(
    ///     concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/diabetes.csv"),
    ///     "progression",
    /// )
    /// .unwrap();
    /// let y = diabetes.numeric_labels().unwrap();
    /// assert_eq!(y.len(), 442);
    /// assert_eq!(y[0], 151.0);
    /// ```
    pub fn numeric_labels(&self) -> Result<Vec<f64>> {
        self.labels
            .iter()
            .enumerate()
            .map(|(row, cell)| {
                let context = || format!("label column '{}'", self.label_name);
                let value: f64 = cell.parse().map_err(|_| {
                    DataError::data(
                        context(),
                        format!(
                            "row {row} (line {}): cannot parse '{cell}' as a number",
                            row + 2
                        ),
                    )
                })?;
                if value.is_finite() {
                    Ok(value)
                } else {
                    Err(DataError::data(
                        context(),
                        format!(
                            "row {row} (line {}): '{cell}' is not a finite number; expected a \
                             finite value",
                            row + 2
                        ),
                    ))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;

    fn data_file(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data")
            .join(name)
    }

    fn parse(text: &str, label: &str) -> Result<CsvData<f64>> {
        parse_csv::<f64>(text, label, Path::new("t.csv"))
    }

    fn err(text: &str, label: &str) -> String {
        parse(text, label).unwrap_err().to_string()
    }

    #[test]
    fn iris_has_150_rows_4_features_3_balanced_classes() {
        let iris = read_csv::<f32>(data_file("iris.csv"), "species").unwrap();
        assert_eq!(iris.features.shape(), &[150, 4]);
        assert_eq!(
            iris.feature_names,
            ["sepal_length", "sepal_width", "petal_length", "petal_width"]
        );
        assert_eq!(iris.label_name, "species");
        assert_eq!(&iris.features.to_vec()[..4], &[5.1, 3.5, 1.4, 0.2]);
        let (classes, y) = iris.class_labels();
        assert_eq!(classes, ["setosa", "versicolor", "virginica"]);
        assert_eq!(y.len(), 150);
        for c in 0..3 {
            assert_eq!(y.iter().filter(|&&v| v == c).count(), 50, "class {c}");
        }
        assert!(
            iris.numeric_labels().unwrap_err().to_string().contains(
                "label column 'species': row 0 (line 2): cannot parse 'setosa' as a number"
            )
        );
    }

    #[test]
    fn breast_cancer_is_569_by_30_with_0_1_labels() {
        let bc = read_csv::<f64>(data_file("breast_cancer.csv"), "benign").unwrap();
        assert_eq!(bc.features.shape(), &[569, 30]);
        assert_eq!(bc.feature_names[0], "mean_radius");
        let y = bc.numeric_labels().unwrap();
        assert!(y.iter().all(|&v| v == 0.0 || v == 1.0));
        let (classes, idx) = bc.class_labels();
        assert_eq!(classes, ["0", "1"]);
        // 357 benign and 212 malignant in the Wisconsin data set.
        assert_eq!(idx.iter().filter(|&&v| v == 1).count(), 357);
        assert!(bc.features.all_finite());
    }

    #[test]
    fn diabetes_is_442_by_10_with_float_targets() {
        let d = read_csv::<f32>(data_file("diabetes.csv"), "progression").unwrap();
        assert_eq!(d.features.shape(), &[442, 10]);
        assert_eq!(d.feature_names.len(), 10);
        assert_eq!(&d.features.to_vec()[..3], &[59.0, 2.0, 32.1]);
        let y = d.numeric_labels().unwrap();
        assert_eq!(y.len(), 442);
        assert_eq!(&y[..4], &[151.0, 75.0, 141.0, 206.0]);
    }

    #[test]
    fn label_column_may_be_anywhere_and_crlf_and_trailing_blank_lines_are_accepted() {
        let d = parse("y,a,b\r\ncat,1,2\r\ndog, 3 ,4e1\r\n\r\n\n  \n", "y").unwrap();
        assert_eq!(d.feature_names, ["a", "b"]);
        assert_eq!(d.features.shape(), &[2, 2]);
        assert_eq!(d.features.to_vec(), vec![1.0, 2.0, 3.0, 40.0]);
        assert_eq!(d.labels, ["cat", "dog"]);
        // No final line end at all, and a UTF-8 byte-order mark.
        let d = parse("\u{feff}a,y\n1,x", "y").unwrap();
        assert_eq!(d.features.to_vec(), vec![1.0]);
    }

    #[test]
    fn empty_file_is_an_error() {
        assert_eq!(
            err("", "y"),
            "t.csv: empty file: expected a header line with the column names"
        );
        assert!(err("\n\r\n \n", "y").contains("empty file"));
    }

    #[test]
    fn missing_label_column_lists_the_header() {
        assert_eq!(
            err("a,b,c\n1,2,3\n", "label"),
            "t.csv:1: label column 'label' is not in the header; the columns are: a, b, c"
        );
    }

    #[test]
    fn wrong_cell_count_gives_line_and_both_counts() {
        assert_eq!(
            err("a,b,y\n1,2,p\n1,2\n", "y"),
            "t.csv:3: row has 2 cells, expected 3 (as in the header)"
        );
        assert_eq!(
            err("a,b,y\n1,2,p,9\n", "y"),
            "t.csv:2: row has 4 cells, expected 3 (as in the header)"
        );
    }

    #[test]
    fn non_numeric_cell_names_line_column_and_text() {
        assert_eq!(
            err("a,b,y\n1,2,p\n1,abc,q\n", "y"),
            "t.csv:3: column 'b': cannot parse 'abc' as a number"
        );
        assert_eq!(
            err("a,y\n,p\n", "y"),
            "t.csv:2: column 'a': empty cell, expected a number"
        );
        assert!(err("a,y\n\"1\",p\n", "y").contains("quoted cells are not supported"));
    }

    #[test]
    fn nan_and_infinity_are_rejected() {
        for cell in ["nan", "NaN", "inf", "-inf", "infinity", "1e400"] {
            let e = err(&format!("a,y\n1,p\n{cell},q\n"), "y");
            assert_eq!(
                e,
                format!(
                    "t.csv:3: column 'a': '{cell}' is not a finite number; expected a finite \
                     value (NaN and infinity are not accepted)"
                ),
            );
        }
        // Finite in f64 but not in f32.
        let e = parse_csv::<f32>("a,y\n1e300,p\n", "y", Path::new("t.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.csv:2: column 'a': 1e300 is out of range for f32"),
            "{e}"
        );
        assert!(parse_csv::<f64>("a,y\n1e300,p\n", "y", Path::new("t.csv")).is_ok());
    }

    #[test]
    fn header_without_data_rows_is_an_error() {
        assert_eq!(
            err("a,y\n\n", "y"),
            "t.csv:1: no data rows after the header; expected at least one"
        );
    }

    #[test]
    fn duplicate_and_empty_column_names_are_errors() {
        assert_eq!(
            err("a,b,a,y\n1,2,3,p\n", "y"),
            "t.csv:1: column name 'a' appears twice in the header (columns 1 and 3); expected \
             distinct names"
        );
        assert_eq!(
            err("a,,y\n1,2,p\n", "y"),
            "t.csv:1: header column 2 of 3 is empty; expected a name for every column"
        );
    }

    #[test]
    fn other_malformed_tables_are_errors() {
        assert!(err("a,y\n1,p\n\n2,q\n", "y").starts_with("t.csv:3: empty line between data rows"));
        assert_eq!(
            err("y\np\n", "y"),
            "t.csv:1: the header has only the label column 'y'; expected at least one feature \
             column besides it"
        );
        assert_eq!(
            err("a,y\n1, \n", "y"),
            "t.csv:2: label column 'y' is empty; expected a label"
        );
    }

    #[test]
    fn numeric_labels_reject_non_numbers_and_non_finite() {
        let d = parse("a,y\n1,2.5\n2,-1\n", "y").unwrap();
        assert_eq!(d.numeric_labels().unwrap(), vec![2.5, -1.0]);
        let d = parse("a,y\n1,2.5\n2,inf\n", "y").unwrap();
        assert_eq!(
            d.numeric_labels().unwrap_err().to_string(),
            "label column 'y': row 1 (line 3): 'inf' is not a finite number; expected a finite value"
        );
    }

    #[test]
    fn missing_file_and_invalid_utf8_are_errors() {
        let e = read_csv::<f32>("/nonexistent/brick/no.csv", "y").unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e:?}");
        assert!(e.to_string().starts_with("/nonexistent/brick/no.csv: "));

        let path =
            std::env::temp_dir().join(format!("brick-nn-csv-test-{}-utf8.csv", std::process::id()));
        std::fs::write(&path, b"a,y\n1,p\n2,\xff\n").unwrap();
        let e = read_csv::<f32>(&path, "y").unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(
            e.ends_with(
                ":3: expected UTF-8 text, found an invalid byte sequence at byte offset 10"
            ),
            "{e}"
        );
    }

    proptest! {
        #[test]
        fn parse_csv_never_panics_on_arbitrary_text(text in "\\PC*", label in "[a-z]{0,3}") {
            let _ = parse_csv::<f32>(&text, &label, Path::new("fuzz.csv"));
        }

        #[test]
        fn parse_csv_never_panics_on_csv_like_text(text in "([a-c0-9.,e+\\-]|\n|\r\n|nan|inf){0,60}") {
            if let Ok(d) = parse_csv::<f32>(&text, "a", Path::new("fuzz.csv")) {
                prop_assert_eq!(d.features.shape()[0], d.labels.len());
                prop_assert_eq!(d.features.shape()[1], d.feature_names.len());
                prop_assert!(d.features.all_finite());
            }
        }

        #[test]
        fn well_formed_tables_round_trip(
            rows in prop::collection::vec((prop::collection::vec(-1e6f64..1e6, 3), "[a-z]{1,4}"), 1..20)
        ) {
            let mut text = String::from("f0,f1,label,f2\n");
            for (values, label) in &rows {
                text += &format!("{},{},{label},{}\n", values[0], values[1], values[2]);
            }
            let d = parse_csv::<f64>(&text, "label", Path::new("t.csv")).unwrap();
            prop_assert_eq!(d.features.shape(), &[rows.len(), 3]);
            let expected: Vec<f64> = rows.iter().flat_map(|(v, _)| v.clone()).collect();
            prop_assert_eq!(d.features.to_vec(), expected);
            let labels: Vec<String> = rows.iter().map(|(_, l)| l.clone()).collect();
            prop_assert_eq!(&d.labels, &labels);
            let (classes, idx) = d.class_labels();
            for (i, l) in labels.iter().enumerate() {
                prop_assert_eq!(&classes[idx[i]], l);
            }
        }
    }
}
