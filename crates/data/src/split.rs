//! One-hot targets and seeded splits of a data set into training and test rows (a single
//! shuffle-split, optionally stratified, and stratified k-fold).
//!
//! Splits return index lists sorted ascending: deterministic and easy to check, and they
//! select rows with [`Tensor::gather`]. Training shuffles its batches anyway.

use rand::seq::SliceRandom;
use tensor::random::{StdRng, seeded};
use tensor::{Element, Tensor};

use crate::error::{DataError, Result};

/// One-hot rows for class indices (Keras' `to_categorical`): row `i` has a one in column
/// `labels[i]` and zeros elsewhere, the target a categorical cross-entropy loss expects.
/// `num_classes` `None` means the largest label plus one.
///
/// # Errors
/// [`DataError::InvalidData`] for a label `>= num_classes`.
///
/// ```
/// use data::to_categorical;
/// let y = to_categorical::<f32>(&[2, 0, 1], None).unwrap();
/// assert_eq!(y.shape(), &[3, 3]);
/// assert_eq!(y.to_vec(), vec![0., 0., 1., 1., 0., 0., 0., 1., 0.]);
/// assert!(to_categorical::<f32>(&[3], Some(3)).is_err());
/// ```
pub fn to_categorical<T: Element>(
    labels: &[usize],
    num_classes: Option<usize>,
) -> Result<Tensor<T>> {
    let num_classes = match num_classes {
        Some(n) => n,
        None => match labels.iter().max() {
            Some(&max) => max.checked_add(1).ok_or_else(|| {
                DataError::data(
                    "to_categorical",
                    format!("label {max} is too large for a class index"),
                )
            })?,
            None => 0,
        },
    };
    if let Some((i, &label)) = labels.iter().enumerate().find(|&(_, &l)| l >= num_classes) {
        return Err(DataError::data(
            "to_categorical",
            format!(
                "label {label} at position {i} is out of range for {num_classes} classes \
                 (expected 0..{num_classes})"
            ),
        ));
    }
    Ok(Tensor::one_hot(labels, num_classes)?)
}

/// A seeded shuffle-split of the rows `0..n` into `(train, test)` index lists, both sorted
/// ascending; the test list gets `round(n * test_fraction)` rows. The same seed gives the same
/// split.
///
/// With `stratify: Some(labels)` (one class index per row), each class is split in the same
/// proportion, as scikit-learn's stratified split does: every class gets the floor of its share
/// of test rows, and the rows left over go to the classes with the largest remainders (ties to
/// the smaller class index), so the total is exact and each class is within one row of its
/// proportional share. A class with a single row ends up on one side only.
///
/// # Errors
/// [`DataError::InvalidConfig`] if `test_fraction` is not in `(0, 1)` or rounds to no test row or
/// no training row; [`DataError::InvalidData`] if `stratify` does not have `n` labels.
///
/// ```
/// use data::{read_csv, train_test_split};
/// let iris = read_csv::<f32>(
///     concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv"),
///     "species",
/// )
/// .unwrap();
/// let (_, y) = iris.class_labels();
/// let (train, test) = train_test_split(y.len(), 0.2, 42, Some(&y)).unwrap();
/// assert_eq!((train.len(), test.len()), (120, 30));
/// // 10 test rows of each of the 3 classes.
/// assert_eq!(test.iter().filter(|&&i| y[i] == 0).count(), 10);
/// let x_train = iris.features.gather(0, &train);
/// assert_eq!(x_train.shape(), &[120, 4]);
/// ```
pub fn train_test_split(
    n: usize,
    test_fraction: f64,
    seed: u64,
    stratify: Option<&[usize]>,
) -> Result<(Vec<usize>, Vec<usize>)> {
    const CONTEXT: &str = "train_test_split";
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(DataError::config(
            CONTEXT,
            format!("test_fraction must be in (0, 1), got {test_fraction}"),
        ));
    }
    let n_test = (n as f64 * test_fraction).round() as usize;
    if n_test == 0 || n_test >= n {
        return Err(DataError::config(
            CONTEXT,
            format!(
                "test_fraction {test_fraction} of {n} rows gives {n_test} test rows and {} \
                 training rows; expected at least 1 of each",
                n.saturating_sub(n_test)
            ),
        ));
    }
    let mut rng = seeded(seed);
    let (mut train, mut test) = match stratify {
        None => {
            let mut all: Vec<usize> = (0..n).collect();
            all.shuffle(&mut rng);
            let train = all.split_off(n_test);
            (train, all)
        }
        Some(labels) => {
            if labels.len() != n {
                return Err(DataError::data(
                    CONTEXT,
                    format!(
                        "stratify has {} labels, expected one per row ({n})",
                        labels.len()
                    ),
                ));
            }
            let classes = rows_by_class(labels, &mut rng);
            let counts: Vec<usize> = classes.iter().map(Vec::len).collect();
            let test_counts = apportion(&counts, n_test);
            let mut train = Vec::with_capacity(n - n_test);
            let mut test = Vec::with_capacity(n_test);
            for (rows, &t) in classes.iter().zip(&test_counts) {
                test.extend_from_slice(&rows[..t]);
                train.extend_from_slice(&rows[t..]);
            }
            (train, test)
        }
    };
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

/// The rows of each class (indexed by class, empty for absent classes), each shuffled.
fn rows_by_class(labels: &[usize], rng: &mut StdRng) -> Vec<Vec<usize>> {
    let mut classes: Vec<Vec<usize>> = Vec::new();
    for (row, &label) in labels.iter().enumerate() {
        // Classes are usually dense; sparse huge labels are grouped without a table of size
        // `label` by falling back to a sort below.
        if label >= classes.len() {
            if label > labels.len() {
                return rows_by_sparse_class(labels, rng);
            }
            classes.resize_with(label + 1, Vec::new);
        }
        classes[label].push(row);
    }
    for rows in &mut classes {
        rows.shuffle(rng);
    }
    classes
}

/// [`rows_by_class`] for labels too large to index a table: groups by sorting.
fn rows_by_sparse_class(labels: &[usize], rng: &mut StdRng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&row| (labels[row], row));
    let mut classes: Vec<Vec<usize>> = Vec::new();
    for (k, &row) in order.iter().enumerate() {
        if k == 0 || labels[order[k - 1]] != labels[row] {
            classes.push(Vec::new());
        }
        classes
            .last_mut()
            .expect("a class was pushed for the first row")
            .push(row);
    }
    for rows in &mut classes {
        rows.shuffle(rng);
    }
    classes
}

/// Splits `total` (at most the sum of `counts`) over the classes in proportion to `counts`:
/// floors first, then one more to the largest remainders. Never gives a class more than its
/// count.
fn apportion(counts: &[usize], total: usize) -> Vec<usize> {
    let n: usize = counts.iter().sum();
    debug_assert!(total <= n);
    // Exact integer arithmetic: share_i = counts_i * total / n.
    let mut shares: Vec<usize> = Vec::with_capacity(counts.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(counts.len());
    for (class, &c) in counts.iter().enumerate() {
        let num = c as u128 * total as u128;
        shares.push((num / n as u128) as usize);
        remainders.push((num % n as u128, class));
    }
    let left = total - shares.iter().sum::<usize>();
    // Largest remainder first, ties to the smaller class index.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(rem, class) in remainders.iter().take(left) {
        // A positive remainder means share < c * total / n < c, so one more still fits.
        debug_assert!(rem > 0);
        shares[class] += 1;
    }
    shares
}

/// Stratified k-fold cross-validation: `k` pairs of `(train, test)` row indices (each list
/// sorted ascending) such that every row is in exactly one test fold and each class is spread
/// over the folds as evenly as possible (class sizes per fold differ by at most one, as do the
/// fold sizes). Rows are shuffled with the seed within each class first, as scikit-learn's
/// `StratifiedKFold(shuffle=True)`. A class with fewer than `k` rows is missing from some
/// test folds.
///
/// # Errors
/// [`DataError::InvalidData`] if `labels` is empty; [`DataError::InvalidConfig`] if `k < 2` or
/// `k > labels.len()`.
///
/// ```
/// use data::stratified_k_fold;
/// let labels = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1];
/// let folds = stratified_k_fold(&labels, 2, 7).unwrap();
/// assert_eq!(folds.len(), 2);
/// for (train, test) in &folds {
///     assert_eq!((train.len(), test.len()), (5, 5));
///     assert_eq!(test.iter().filter(|&&i| labels[i] == 0).count(), 2);
/// }
/// ```
pub fn stratified_k_fold(
    labels: &[usize],
    k: usize,
    seed: u64,
) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
    const CONTEXT: &str = "stratified_k_fold";
    let n = labels.len();
    if n == 0 {
        return Err(DataError::data(
            CONTEXT,
            "labels is empty; expected at least k labels",
        ));
    }
    if k < 2 || k > n {
        return Err(DataError::config(
            CONTEXT,
            format!("k must be at least 2 and at most the number of rows ({n}), got {k}"),
        ));
    }
    let classes = rows_by_class(labels, &mut seeded(seed));
    // Deal the rows, class after class, onto the folds in turn: each class's rows are spread
    // evenly, and the next class starts at the fold where the previous one stopped.
    let mut fold_of = vec![0usize; n];
    let mut position = 0usize;
    for rows in &classes {
        for &row in rows {
            fold_of[row] = position % k;
            position += 1;
        }
    }
    let mut folds: Vec<(Vec<usize>, Vec<usize>)> = vec![(Vec::new(), Vec::new()); k];
    for (row, &fold) in fold_of.iter().enumerate() {
        for (f, (train, test)) in folds.iter_mut().enumerate() {
            if f == fold {
                test.push(row);
            } else {
                train.push(row);
            }
        }
    }
    Ok(folds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn count_class(rows: &[usize], labels: &[usize], class: usize) -> usize {
        rows.iter().filter(|&&i| labels[i] == class).count()
    }

    fn assert_partition(train: &[usize], test: &[usize], n: usize) {
        assert!(
            train.windows(2).all(|w| w[0] < w[1]),
            "train sorted and distinct"
        );
        assert!(
            test.windows(2).all(|w| w[0] < w[1]),
            "test sorted and distinct"
        );
        let all: BTreeSet<usize> = train.iter().chain(test).copied().collect();
        assert_eq!(all.len(), n, "disjoint");
        assert_eq!(all, (0..n).collect(), "covering");
    }

    #[test]
    fn to_categorical_builds_one_hot_rows() {
        let y = to_categorical::<f64>(&[1, 0, 3], None).unwrap();
        assert_eq!(y.shape(), &[3, 4]);
        assert_eq!(
            y.to_vec(),
            vec![0., 1., 0., 0., 1., 0., 0., 0., 0., 0., 0., 1.]
        );
        let y = to_categorical::<f32>(&[1, 0], Some(5)).unwrap();
        assert_eq!(y.shape(), &[2, 5]);
        assert_eq!(y.argmax(1), vec![1, 0]);
        assert_eq!(to_categorical::<f32>(&[], None).unwrap().shape(), &[0, 0]);
        assert_eq!(
            to_categorical::<f32>(&[0, 2, 3], Some(3))
                .unwrap_err()
                .to_string(),
            "to_categorical: label 3 at position 2 is out of range for 3 classes (expected 0..3)"
        );
        assert!(to_categorical::<f32>(&[usize::MAX], None).is_err());
    }

    #[test]
    fn split_sizes_are_rounded_and_partition_the_rows() {
        let (train, test) = train_test_split(10, 0.25, 1, None).unwrap();
        // round(2.5) = 3
        assert_eq!((train.len(), test.len()), (7, 3));
        assert_partition(&train, &test, 10);
        let (train, test) = train_test_split(150, 0.2, 1, None).unwrap();
        assert_eq!((train.len(), test.len()), (120, 30));
        assert_partition(&train, &test, 150);
    }

    #[test]
    fn split_is_reproducible_and_depends_on_the_seed() {
        let a = train_test_split(100, 0.3, 5, None).unwrap();
        assert_eq!(a, train_test_split(100, 0.3, 5, None).unwrap());
        assert_ne!(a, train_test_split(100, 0.3, 6, None).unwrap());
        let labels: Vec<usize> = (0..100).map(|i| i % 3).collect();
        let s = train_test_split(100, 0.3, 5, Some(&labels)).unwrap();
        assert_eq!(s, train_test_split(100, 0.3, 5, Some(&labels)).unwrap());
        assert_ne!(s, train_test_split(100, 0.3, 6, Some(&labels)).unwrap());
        // Not simply the first rows.
        assert_ne!(a.1, (0..30).collect::<Vec<_>>());
    }

    #[test]
    fn stratified_split_keeps_class_proportions() {
        // 60 / 30 / 10 rows of classes 0, 1, 2, interleaved.
        let mut labels = vec![0; 60];
        labels.extend(vec![1; 30]);
        labels.extend(vec![2; 10]);
        labels.rotate_left(37);
        let (train, test) = train_test_split(100, 0.2, 3, Some(&labels)).unwrap();
        assert_partition(&train, &test, 100);
        assert_eq!(count_class(&test, &labels, 0), 12);
        assert_eq!(count_class(&test, &labels, 1), 6);
        assert_eq!(count_class(&test, &labels, 2), 2);

        // Remainders: 7 rows of 3 classes (3, 2, 2) with 3 test rows: shares 9/7, 6/7, 6/7
        // -> floors 1, 0, 0, and the two left over go to classes 1 and 2 (remainder 6/7 > 2/7).
        let labels = [0, 0, 0, 1, 1, 2, 2];
        let (train, test) = train_test_split(7, 0.4, 0, Some(&labels)).unwrap();
        assert_eq!(test.len(), 3);
        assert_partition(&train, &test, 7);
        for class in 0..3 {
            assert_eq!(count_class(&test, &labels, class), 1, "class {class}");
        }
    }

    #[test]
    fn stratified_split_accepts_sparse_labels() {
        let labels = [1_000_000, 5, 5, 1_000_000, 5, 1_000_000];
        let (train, test) = train_test_split(6, 0.5, 0, Some(&labels)).unwrap();
        assert_partition(&train, &test, 6);
        // Shares 1.5 and 1.5: the tie goes to the smaller label.
        assert_eq!(count_class(&test, &labels, 5), 2);
        assert_eq!(count_class(&test, &labels, 1_000_000), 1);
    }

    #[test]
    fn split_rejects_bad_arguments() {
        for f in [0.0, 1.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            let e = train_test_split(10, f, 0, None).unwrap_err();
            assert!(matches!(e, DataError::InvalidConfig { .. }));
            assert_eq!(
                e.to_string(),
                format!("train_test_split: test_fraction must be in (0, 1), got {f}")
            );
        }
        assert_eq!(
            train_test_split(10, 0.01, 0, None).unwrap_err().to_string(),
            "train_test_split: test_fraction 0.01 of 10 rows gives 0 test rows and 10 training \
             rows; expected at least 1 of each"
        );
        assert_eq!(
            train_test_split(10, 0.98, 0, None).unwrap_err().to_string(),
            "train_test_split: test_fraction 0.98 of 10 rows gives 10 test rows and 0 training \
             rows; expected at least 1 of each"
        );
        assert!(train_test_split(1, 0.5, 0, None).is_err());
        assert!(train_test_split(0, 0.5, 0, None).is_err());
        assert_eq!(
            train_test_split(4, 0.5, 0, Some(&[0, 1, 0]))
                .unwrap_err()
                .to_string(),
            "train_test_split: stratify has 3 labels, expected one per row (4)"
        );
    }

    #[test]
    fn k_fold_partitions_and_stratifies() {
        let labels: Vec<usize> = (0..103)
            .map(|i| if i % 10 < 7 { 0 } else { 1 + i % 2 })
            .collect();
        let counts: Vec<usize> = (0..3)
            .map(|c| count_class(&(0..103).collect::<Vec<_>>(), &labels, c))
            .collect();
        let folds = stratified_k_fold(&labels, 5, 11).unwrap();
        assert_eq!(folds.len(), 5);
        let mut seen = vec![0usize; 103];
        for (train, test) in &folds {
            assert_partition(train, test, 103);
            for &i in test {
                seen[i] += 1;
            }
            assert!((20..=21).contains(&test.len()), "fold size {}", test.len());
            for (c, &count) in counts.iter().enumerate() {
                let got = count_class(test, &labels, c);
                assert!(
                    got == count / 5 || got == count.div_ceil(5),
                    "class {c}: {got} of {count}"
                );
            }
        }
        assert!(
            seen.iter().all(|&s| s == 1),
            "each row in exactly one test fold"
        );
        assert_eq!(folds, stratified_k_fold(&labels, 5, 11).unwrap());
        assert_ne!(folds, stratified_k_fold(&labels, 5, 12).unwrap());
    }

    #[test]
    fn k_fold_rejects_bad_arguments() {
        assert_eq!(
            stratified_k_fold(&[], 2, 0).unwrap_err().to_string(),
            "stratified_k_fold: labels is empty; expected at least k labels"
        );
        assert_eq!(
            stratified_k_fold(&[0, 1, 0], 1, 0).unwrap_err().to_string(),
            "stratified_k_fold: k must be at least 2 and at most the number of rows (3), got 1"
        );
        assert_eq!(
            stratified_k_fold(&[0, 1, 0], 4, 0).unwrap_err().to_string(),
            "stratified_k_fold: k must be at least 2 and at most the number of rows (3), got 4"
        );
        // k = n is leave-one-out.
        let folds = stratified_k_fold(&[0, 1, 0], 3, 0).unwrap();
        assert!(
            folds
                .iter()
                .all(|(train, test)| train.len() == 2 && test.len() == 1)
        );
    }

    proptest! {
        #[test]
        fn stratified_split_properties(
            labels in prop::collection::vec(0usize..4, 2..200),
            fraction in 0.05f64..0.95,
            seed in any::<u64>(),
        ) {
            let n = labels.len();
            let n_test = (n as f64 * fraction).round() as usize;
            let result = train_test_split(n, fraction, seed, Some(&labels));
            if n_test == 0 || n_test >= n {
                prop_assert!(result.is_err());
                return Ok(());
            }
            let (train, test) = result.unwrap();
            prop_assert_eq!(test.len(), n_test);
            assert_partition(&train, &test, n);
            for c in 0..4 {
                let count = labels.iter().filter(|&&l| l == c).count();
                let exact = count as f64 * n_test as f64 / n as f64;
                let got = count_class(&test, &labels, c) as f64;
                prop_assert!((got - exact).abs() < 1.0, "class {}: {} test rows, share {}", c, got, exact);
            }
        }

        #[test]
        fn k_fold_properties(
            labels in prop::collection::vec(0usize..3, 2..120),
            k in 2usize..8,
            seed in any::<u64>(),
        ) {
            let n = labels.len();
            let result = stratified_k_fold(&labels, k, seed);
            if k > n {
                prop_assert!(result.is_err());
                return Ok(());
            }
            let folds = result.unwrap();
            prop_assert_eq!(folds.len(), k);
            let mut seen = vec![0usize; n];
            for (train, test) in &folds {
                assert_partition(train, test, n);
                prop_assert!(test.len() == n / k || test.len() == n.div_ceil(k));
                for &i in test {
                    seen[i] += 1;
                }
                for c in 0..3 {
                    let count = labels.iter().filter(|&&l| l == c).count();
                    let got = count_class(test, &labels, c);
                    prop_assert!(got == count / k || got == count.div_ceil(k));
                }
            }
            prop_assert!(seen.iter().all(|&s| s == 1));
        }

        #[test]
        fn to_categorical_argmax_recovers_labels(labels in prop::collection::vec(0usize..10, 0..50)) {
            let y = to_categorical::<f32>(&labels, Some(10)).unwrap();
            prop_assert_eq!(y.shape(), &[labels.len(), 10]);
            if !labels.is_empty() {
                prop_assert_eq!(y.argmax(1), labels.clone());
            }
            prop_assert_eq!(y.sum_all(), labels.len() as f32);
        }
    }
}
