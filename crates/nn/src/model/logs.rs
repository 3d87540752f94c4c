//! Named results of a step, an evaluation or an epoch ([`Logs`]), and of a whole fit
//! ([`History`]).

use std::fmt;

/// Named values, in a fixed order: the loss and metrics of a batch, an evaluation or an
/// epoch (validation entries prefixed `val_`).
///
/// ```
/// let mut logs = nn::Logs::default();
/// logs.insert("loss", 0.25);
/// logs.insert("accuracy", 0.9);
/// assert_eq!(logs.get("accuracy"), Some(0.9));
/// assert_eq!(logs.to_string(), "accuracy: 0.9000 - loss: 0.2500");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Logs {
    entries: Vec<(String, f64)>,
}

impl Logs {
    /// Sets `key` (replacing an earlier value).
    pub fn insert(&mut self, key: impl Into<String>, value: f64) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The loss (NaN if there is none).
    pub fn loss(&self) -> f64 {
        self.get("loss").unwrap_or(f64::NAN)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in alphabetical order, as Keras shows and records them
    /// (`accuracy`, `loss`, `val_accuracy`, `val_loss`).
    pub fn sorted(&self) -> Vec<(&str, f64)> {
        let mut v: Vec<(&str, f64)> = self.iter().collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
}

impl fmt::Display for Logs {
    /// `accuracy: 0.9000 - loss: 0.2500`, as Keras's progress bar shows values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .sorted()
            .iter()
            .map(|(k, v)| format!("{k}: {}", format_metric(*v)))
            .collect();
        f.write_str(&parts.join(" - "))
    }
}

/// A value as Keras's progress bar prints it: `0.6907`, or `1.0000e-04` at magnitudes of
/// 1e-3 and below.
pub fn format_metric(v: f64) -> String {
    if v.abs() > 1e-3 || !v.is_finite() {
        format!("{v:.4}")
    } else {
        // Python's `{:.4e}`: a signed exponent of at least two digits.
        let s = format!("{v:.4e}");
        let (mantissa, exp) = s.split_once('e').expect("exponent form");
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    }
}

/// What [`fit`](crate::Sequential::fit) returns: for each key (`loss`, each metric, and
/// `val_` versions), one value per epoch.
///
/// ```
/// let mut h = nn::History::default();
/// let mut logs = nn::Logs::default();
/// logs.insert("loss", 0.5);
/// h.push(0, &logs);
/// assert_eq!(h.get("loss"), Some(&[0.5][..]));
/// assert_eq!(h.epochs(), &[0]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    epochs: Vec<usize>,
    series: Vec<(String, Vec<f64>)>,
}

impl History {
    /// Appends an epoch's logs.
    pub fn push(&mut self, epoch: usize, logs: &Logs) {
        let row = self.epochs.len();
        self.epochs.push(epoch);
        for (key, value) in logs.sorted() {
            match self.series.iter_mut().find(|(k, _)| k == key) {
                Some((_, values)) => values.push(value),
                None => {
                    let mut values = vec![f64::NAN; row];
                    values.push(value);
                    self.series.push((key.to_string(), values));
                }
            }
        }
        for (_, values) in &mut self.series {
            if values.len() < row + 1 {
                values.push(f64::NAN);
            }
        }
    }

    /// The epoch numbers (counting from 0) of the recorded epochs.
    pub fn epochs(&self) -> &[usize] {
        &self.epochs
    }

    /// The values of `key`, one per epoch.
    pub fn get(&self, key: &str) -> Option<&[f64]> {
        self.series
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The per-epoch training loss.
    pub fn loss(&self) -> &[f64] {
        self.get("loss").unwrap_or(&[])
    }

    /// The last value of `key`.
    pub fn last(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.last().copied())
    }

    /// The keys, in the order they first appeared.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.series.iter().map(|(k, _)| k.as_str())
    }

    /// The number of recorded epochs.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether no epoch was recorded.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_sort_alphabetically_and_format_like_keras() {
        let mut l = Logs::default();
        l.insert("val_loss", 0.2);
        l.insert("loss", 0.123456);
        l.insert("accuracy", 1.0);
        l.insert("val_accuracy", 0.00012);
        assert_eq!(
            l.to_string(),
            "accuracy: 1.0000 - loss: 0.1235 - val_accuracy: 1.2000e-04 - val_loss: 0.2000"
        );
        l.insert("loss", 0.5);
        assert_eq!(l.get("loss"), Some(0.5));
    }

    #[test]
    fn number_formats_follow_keras() {
        assert_eq!(format_metric(0.69071), "0.6907");
        assert_eq!(format_metric(1e-4), "1.0000e-04");
        assert_eq!(format_metric(0.0), "0.0000e+00");
        assert_eq!(format_metric(-0.5), "-0.5000");
        assert_eq!(format_metric(5e-4), "5.0000e-04");
        assert_eq!(format_metric(1.5e12), "1500000000000.0000");
    }

    #[test]
    fn history_keeps_series_aligned_with_epochs() {
        let mut h = History::default();
        let mut a = Logs::default();
        a.insert("loss", 1.0);
        h.push(0, &a);
        let mut b = Logs::default();
        b.insert("loss", 0.5);
        b.insert("val_loss", 0.7);
        h.push(1, &b);
        assert_eq!(h.loss(), &[1.0, 0.5]);
        let val = h.get("val_loss").unwrap();
        assert!(val[0].is_nan() && val[1] == 0.7);
        assert_eq!(h.keys().collect::<Vec<_>>(), vec!["loss", "val_loss"]);
        assert_eq!(h.len(), 2);
    }
}
