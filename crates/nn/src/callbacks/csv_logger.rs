//! `CsvLogger`: the epoch logs as CSV, one row per epoch.

use std::path::PathBuf;

use tensor::Element;

use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::model::logs::{csv_field, csv_number};
use crate::model::{CONTINUE, Callback, Flow, Logs, Sequential};

/// Writes each epoch's logs as a row of a CSV file (`epoch,` then the keys in alphabetical
/// order, as Keras's `CSVLogger`). The whole file is rewritten atomically every epoch, so a
/// crash never leaves half a row; with `append`, rows already in the file are kept.
#[derive(Clone, Debug)]
pub struct CsvLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    keys: Vec<String>,
    text: String,
}

impl CsvLogger {
    /// Logs to `path` (replacing the file at the start of training).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLogger {
            path: path.into(),
            separator: ',',
            append: false,
            keys: Vec::new(),
            text: String::new(),
        }
    }

    /// The column separator (default `,`).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    /// Keep the file's rows and add to them (for a resumed run).
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }
}

impl<T: Element> Callback<T> for CsvLogger {
    fn name(&self) -> &str {
        "CSVLogger"
    }

    /// It writes a file: with ranks, rank 0's alone.
    fn chief_only(&self) -> bool {
        true
    }
    fn on_train_begin(&mut self, _model: &mut Sequential<T>) -> Result<()> {
        self.keys.clear();
        self.text.clear();
        if self.append && self.path.exists() {
            self.text = std::fs::read_to_string(&self.path).map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })?;
            if let Some(header) = self.text.lines().next() {
                self.keys = header
                    .split(self.separator)
                    .skip(1)
                    .map(str::to_string)
                    .collect();
            }
        }
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        _model: &mut Sequential<T>,
    ) -> Result<Flow> {
        let sep = self.separator.to_string();
        if self.keys.is_empty() {
            self.keys = logs.sorted().iter().map(|(k, _)| k.to_string()).collect();
            let header: Vec<String> = self.keys.iter().map(|k| csv_field(k)).collect();
            self.text = format!("epoch{sep}{}\n", header.join(&sep));
        }
        // As History::to_csv writes values: in full, NaN as `nan` (what pandas reads).
        let cells: Vec<String> = self
            .keys
            .iter()
            .map(|k| logs.get(k).map_or_else(String::new, csv_number))
            .collect();
        self.text
            .push_str(&format!("{epoch}{sep}{}\n", cells.join(&sep)));
        write_atomic(&self.path, self.text.as_bytes())?;
        Ok(CONTINUE)
    }
}
