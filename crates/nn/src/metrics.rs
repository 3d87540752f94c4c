//! Metrics: accuracy in its binary, categorical and sparse forms (with Keras's rule for
//! what plain `"accuracy"` means), top-k accuracy, and the mean squared and absolute errors.
//! Each gives the sum of per-sample values of a batch, so an epoch's figure is the mean over
//! all its samples, as Keras accumulates it.

use std::fmt;
use std::sync::{Arc, LazyLock};

use serde_json::{Map, Value};
use tensor::{Element, Tensor, cst};

use crate::erased::{CustomComponent, Registry, register, registered};
use crate::error::{Error, Result};

/// What a metric computes.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricKind {
    /// Keras's `"accuracy"`: binary when the model has one output unit, sparse categorical
    /// when the targets are class labels (lower rank than the predictions, or one column
    /// against several units), categorical otherwise.
    Accuracy,
    /// The fraction of outputs where `(y_pred > threshold) == y_true`.
    BinaryAccuracy {
        /// Predictions above it count as 1.
        threshold: f64,
    },
    /// Whether `argmax(y_pred) == argmax(y_true)` (first index on ties).
    CategoricalAccuracy,
    /// Whether `argmax(y_pred) == y_true` for integer labels.
    SparseCategoricalAccuracy,
    /// Whether the true class is among the `k` highest predictions (ties count for it).
    TopKCategoricalAccuracy {
        /// How many of the highest predictions count.
        k: usize,
    },
    /// [`TopKCategoricalAccuracy`](MetricKind::TopKCategoricalAccuracy) for integer labels.
    SparseTopKCategoricalAccuracy {
        /// How many of the highest predictions count.
        k: usize,
    },
    /// Mean over the last axis of `(y_pred - y_true)^2`.
    MeanSquaredError,
    /// Mean over the last axis of `|y_pred - y_true|`.
    MeanAbsoluteError,
    /// A metric of your own ([`MetricFunction`]), made with [`Metric::custom`].
    Custom(CustomComponent),
}

/// A metric written outside brick: give it to `compile` as [`Metric::custom`]`(my_metric)`
/// in a `Vec` of metrics; register it with [`register_metric`] to load models saved with it.
///
/// ```
/// use nn::metrics::{Metric, MetricFunction};
/// use tensor::{Element, Tensor};
///
/// /// The fraction of predictions within 0.5 of the target.
/// struct Within;
/// impl<T: Element> MetricFunction<T> for Within {
///     fn name(&self) -> &str { "within_half" }
///     fn batch_sum(&self, y_true: &Tensor<T>, y_pred: &Tensor<T>) -> nn::Result<(f64, usize)> {
///         let close = y_true.to_vec().iter().zip(y_pred.to_vec())
///             .filter(|(t, p)| (**t - *p).abs().to_f64().unwrap() < 0.5).count();
///         Ok((close as f64, y_true.len()))
///     }
/// }
/// let m = Metric::custom::<f32, _>(Within);
/// let (y, p) = (Tensor::new([1.0f32, 2.0]).unwrap(), Tensor::new([1.2f32, 3.0]).unwrap());
/// assert_eq!(m.batch_sum(&y, &p).unwrap(), (1.0, 2));
/// ```
pub trait MetricFunction<T: Element>: Send + Sync + 'static {
    /// The name logs, [`History`](crate::History) and saved configs use, and the one it
    /// registers under.
    fn name(&self) -> &str;

    /// The sum over the batch of the per-sample values, and the number of samples (an
    /// epoch's figure is the total sum over the total count, as Keras accumulates).
    ///
    /// # Errors
    /// For shapes the metric cannot take.
    fn batch_sum(&self, y_true: &Tensor<T>, y_pred: &Tensor<T>) -> Result<(f64, usize)>;

    /// Its settings, saved with a model and handed back to its [`register_metric`] factory.
    fn config(&self) -> Map<String, Value> {
        Map::new()
    }
}

/// Builds a registered metric from its saved config.
pub type MetricFactory = fn(&Map<String, Value>) -> Result<Metric>;

static METRICS: Registry<MetricFactory> = LazyLock::new(Default::default);

/// Registers a metric of your own under `name` for models of element type `T`, so that a
/// model saved with it loads again: `factory` makes it from the config its
/// [`MetricFunction::config`] gave. Registering a name again replaces its factory.
///
/// # Errors
/// If `name` is a built-in metric's.
pub fn register_metric<T: Element>(name: &str, factory: MetricFactory) -> Result<()> {
    if METRIC_NAMES.contains(&name) {
        return Err(Error::config(
            "register_metric",
            format!("'{name}' is a built-in metric; give yours another name"),
        ));
    }
    register::<T, _>(&METRICS, name, factory);
    Ok(())
}

/// The metric registered under `name` for element type `T`, made from `config`; `None` if
/// none is.
pub(crate) fn registered_metric<T: Element>(
    name: &str,
    config: &Map<String, Value>,
) -> Option<Result<Metric>> {
    registered::<T, MetricFactory>(&METRICS, name).map(|factory| factory(config))
}

/// A named metric: the name is what logs and [`History`](crate::History) show, as the user
/// wrote it (`"acc"` stays `"acc"`).
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// The name logs and the history show.
    pub name: String,
    /// What it computes.
    pub kind: MetricKind,
}

/// Every name [`Metric::from_name`] accepts.
pub const METRIC_NAMES: &[&str] = &[
    "accuracy",
    "acc",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "mean_squared_error",
    "mse",
    "mean_absolute_error",
    "mae",
];

impl Metric {
    /// A metric by Keras name, with Keras's defaults (threshold 0.5, k 5).
    ///
    /// ```
    /// let m = nn::Metric::from_name("acc").unwrap();
    /// assert_eq!(m.name, "acc");
    /// assert!(nn::Metric::from_name("precision").is_err());
    /// ```
    pub fn from_name(name: &str) -> Result<Metric> {
        let kind = match name {
            "accuracy" | "acc" => MetricKind::Accuracy,
            "binary_accuracy" => MetricKind::BinaryAccuracy { threshold: 0.5 },
            "categorical_accuracy" => MetricKind::CategoricalAccuracy,
            "sparse_categorical_accuracy" => MetricKind::SparseCategoricalAccuracy,
            "top_k_categorical_accuracy" => MetricKind::TopKCategoricalAccuracy { k: 5 },
            "sparse_top_k_categorical_accuracy" => {
                MetricKind::SparseTopKCategoricalAccuracy { k: 5 }
            }
            "mean_squared_error" | "mse" => MetricKind::MeanSquaredError,
            "mean_absolute_error" | "mae" => MetricKind::MeanAbsoluteError,
            _ => {
                return Err(Error::UnknownName {
                    kind: "metric",
                    name: name.to_string(),
                    valid: METRIC_NAMES.to_vec(),
                });
            }
        };
        Ok(Metric {
            name: name.to_string(),
            kind,
        })
    }

    /// A metric of your own, for models of element type `T` (see [`MetricFunction`]),
    /// named by its [`name`](MetricFunction::name).
    pub fn custom<T: Element, M: MetricFunction<T>>(metric: M) -> Metric {
        let (name, config) = (metric.name().to_string(), metric.config());
        let function: Arc<dyn MetricFunction<T>> = Arc::new(metric);
        Metric {
            name: name.clone(),
            kind: MetricKind::Custom(CustomComponent::new::<T, _>(name, config, function)),
        }
    }

    /// For a metric of one's own: that its name is not a built-in one's and that it was
    /// made for element type `T` (see [`Loss`](crate::Loss)'s check, which `compile` also runs).
    pub(crate) fn check_custom<T: Element>(&self) -> Result<()> {
        let MetricKind::Custom(c) = &self.kind else {
            return Ok(());
        };
        if METRIC_NAMES.contains(&c.name()) {
            return Err(Error::config(
                "metrics",
                format!(
                    "the custom metric is named '{}', a built-in metric's name, and would save \
                     and load as that one; give it a name of its own",
                    c.name()
                ),
            ));
        }
        c.function::<T, Arc<dyn MetricFunction<T>>>("metric")
            .map(|_| ())
    }

    /// A metric with a custom name.
    pub fn new(name: impl Into<String>, kind: MetricKind) -> Metric {
        Metric {
            name: name.into(),
            kind,
        }
    }

    /// What plain accuracy means for these target and prediction shapes (Keras's rule).
    pub fn resolve(&self, y_true_shape: &[usize], y_pred_shape: &[usize]) -> MetricKind {
        if self.kind != MetricKind::Accuracy {
            return self.kind.clone();
        }
        let pred_last = y_pred_shape.last().copied().unwrap_or(1);
        let true_last = y_true_shape.last().copied().unwrap_or(1);
        if pred_last == 1 {
            MetricKind::BinaryAccuracy { threshold: 0.5 }
        } else if y_true_shape.len() < y_pred_shape.len() || true_last == 1 {
            MetricKind::SparseCategoricalAccuracy
        } else {
            MetricKind::CategoricalAccuracy
        }
    }

    /// The sum over the batch of the per-sample metric, and the number of samples.
    ///
    /// # Errors
    /// If the shapes do not fit the metric.
    pub fn batch_sum<T: Element>(
        &self,
        y_true: &Tensor<T>,
        y_pred: &Tensor<T>,
    ) -> Result<(f64, usize)> {
        // A custom metric computes itself, before `resolve` would clone it every batch.
        if let MetricKind::Custom(c) = &self.kind {
            let f = c.function::<T, Arc<dyn MetricFunction<T>>>("metric")?;
            return f.batch_sum(y_true, y_pred);
        }
        let kind = self.resolve(y_true.shape(), y_pred.shape());
        let n = y_pred.shape().first().copied().unwrap_or(1);
        let per_sample: Vec<f64> = match kind {
            MetricKind::Accuracy => unreachable!("resolved above"),
            MetricKind::Custom(_) => unreachable!("computed above"),
            MetricKind::BinaryAccuracy { threshold } => {
                let th = cst::<T>(threshold);
                let y_true = same_shape(&self.name, y_true, y_pred)?;
                let (p, t) = (y_pred.to_contiguous(), y_true.to_contiguous());
                let (p, t) = (
                    p.as_slice().expect("contiguous"),
                    t.as_slice().expect("contiguous"),
                );
                // Per sample: the fraction of its outputs on the right side of the threshold.
                let width = y_pred.shape().last().copied().unwrap_or(1).max(1);
                p.chunks(width)
                    .zip(t.chunks(width))
                    .map(|(p, t)| {
                        let hits = p
                            .iter()
                            .zip(t)
                            .filter(|&(&p, &t)| (if p > th { T::one() } else { T::zero() }) == t)
                            .count();
                        hits as f64 / width as f64
                    })
                    .collect()
            }
            MetricKind::CategoricalAccuracy => {
                let y_true = same_shape(&self.name, y_true, y_pred)?;
                let t = y_true.argmax(-1);
                let p = y_pred.argmax(-1);
                t.iter()
                    .zip(&p)
                    .map(|(a, b)| (a == b) as u8 as f64)
                    .collect()
            }
            MetricKind::SparseCategoricalAccuracy => {
                let labels = sparse_labels(&self.name, y_true, n)?;
                let p = y_pred.argmax(-1);
                labels
                    .iter()
                    .zip(&p)
                    .map(|(&a, &b)| (a == b as f64) as u8 as f64)
                    .collect()
            }
            MetricKind::TopKCategoricalAccuracy { k } => {
                let y_true = same_shape(&self.name, y_true, y_pred)?;
                let labels: Vec<f64> = y_true.argmax(-1).into_iter().map(|i| i as f64).collect();
                in_top_k(&labels, y_pred, k)
            }
            MetricKind::SparseTopKCategoricalAccuracy { k } => {
                let labels = sparse_labels(&self.name, y_true, n)?;
                in_top_k(&labels, y_pred, k)
            }
            MetricKind::MeanSquaredError => {
                let y_true = same_shape(&self.name, y_true, y_pred)?;
                to_f64(&(y_pred - &y_true).powf(cst(2.0)).mean(-1, false))
            }
            MetricKind::MeanAbsoluteError => {
                let y_true = same_shape(&self.name, y_true, y_pred)?;
                to_f64(&(y_pred - &y_true).abs().mean(-1, false))
            }
        };
        Ok((per_sample.iter().sum(), per_sample.len()))
    }
}

/// `y_true` in `y_pred`'s shape (a `[n]` target for a `[n, 1]` output is expanded, as Keras
/// does), or an error.
fn same_shape<T: Element>(name: &str, y_true: &Tensor<T>, y_pred: &Tensor<T>) -> Result<Tensor<T>> {
    if y_true.shape() == y_pred.shape() {
        return Ok(y_true.clone());
    }
    if y_true.len() == y_pred.len() && y_pred.shape().last() == Some(&1) {
        return Ok(y_true.reshape(y_pred.shape()));
    }
    Err(Error::data(
        format!("metric '{name}'"),
        format!(
            "targets of shape {:?} do not fit predictions of shape {:?}",
            y_true.shape(),
            y_pred.shape()
        ),
    ))
}

fn sparse_labels<T: Element>(name: &str, y_true: &Tensor<T>, n: usize) -> Result<Vec<f64>> {
    if y_true.len() != n {
        return Err(Error::data(
            format!("metric '{name}'"),
            format!(
                "expected {n} integer labels, got a tensor of shape {:?}",
                y_true.shape()
            ),
        ));
    }
    Ok(to_f64(y_true))
}

/// Keras's `in_top_k`: the rank of the true class is 1 + the number of strictly larger
/// predictions; it counts if the rank is at most `k`.
fn in_top_k<T: Element>(labels: &[f64], y_pred: &Tensor<T>, k: usize) -> Vec<f64> {
    let c = *y_pred.shape().last().unwrap_or(&1);
    let p = y_pred.to_contiguous();
    let p = p.as_slice().expect("contiguous");
    labels
        .iter()
        .enumerate()
        .map(|(i, &label)| {
            let row = &p[i * c..(i + 1) * c];
            let Some(target) = (label >= 0.0 && label < c as f64).then(|| row[label as usize])
            else {
                return 0.0;
            };
            let target = if target.is_nan() {
                T::neg_infinity()
            } else {
                target
            };
            let rank = 1 + row.iter().filter(|&&v| v > target).count();
            (rank <= k) as u8 as f64
        })
        .collect()
}

fn to_f64<T: Element>(t: &Tensor<T>) -> Vec<f64> {
    t.as_array().iter().map(|v| v.to_f64_exact()).collect()
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// What `compile` accepts as a metric: a Keras name or a [`Metric`].
pub trait IntoMetric {
    /// Converts, or explains why not.
    fn into_metric(self) -> Result<Metric>;
}

impl IntoMetric for Metric {
    fn into_metric(self) -> Result<Metric> {
        Ok(self)
    }
}

impl IntoMetric for &str {
    fn into_metric(self) -> Result<Metric> {
        Metric::from_name(self)
    }
}

impl IntoMetric for &&str {
    fn into_metric(self) -> Result<Metric> {
        Metric::from_name(self)
    }
}

impl IntoMetric for String {
    fn into_metric(self) -> Result<Metric> {
        Metric::from_name(&self)
    }
}

/// What `compile` accepts as its metrics: an array of names (`["accuracy"]`, `[]` for
/// none, whose element type this makes known), a slice of names, or a `Vec` of names or
/// [`Metric`]s.
pub trait IntoMetrics {
    /// Converts each, or explains why not (an unknown name lists the valid ones).
    fn into_metrics(self) -> Result<Vec<Metric>>;
}

impl<const N: usize> IntoMetrics for [&str; N] {
    fn into_metrics(self) -> Result<Vec<Metric>> {
        self.into_iter().map(Metric::from_name).collect()
    }
}

impl<const N: usize> IntoMetrics for &[&str; N] {
    fn into_metrics(self) -> Result<Vec<Metric>> {
        self.iter().map(|n| Metric::from_name(n)).collect()
    }
}

impl IntoMetrics for &[&str] {
    fn into_metrics(self) -> Result<Vec<Metric>> {
        self.iter().map(|n| Metric::from_name(n)).collect()
    }
}

impl<M: IntoMetric> IntoMetrics for Vec<M> {
    fn into_metrics(self) -> Result<Vec<Metric>> {
        self.into_iter().map(IntoMetric::into_metric).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64], s: &[usize]) -> Tensor<f64> {
        Tensor::from_shape_slice(v, s).unwrap()
    }

    fn value(name: &str, y: &Tensor<f64>, p: &Tensor<f64>) -> f64 {
        let (sum, n) = Metric::from_name(name).unwrap().batch_sum(y, p).unwrap();
        sum / n as f64
    }

    #[test]
    fn accuracy_resolves_like_keras() {
        let m = Metric::from_name("accuracy").unwrap();
        assert_eq!(
            m.resolve(&[8, 1], &[8, 1]),
            MetricKind::BinaryAccuracy { threshold: 0.5 }
        );
        assert_eq!(
            m.resolve(&[8], &[8, 1]),
            MetricKind::BinaryAccuracy { threshold: 0.5 }
        );
        assert_eq!(
            m.resolve(&[8], &[8, 10]),
            MetricKind::SparseCategoricalAccuracy
        );
        assert_eq!(
            m.resolve(&[8, 1], &[8, 10]),
            MetricKind::SparseCategoricalAccuracy
        );
        assert_eq!(
            m.resolve(&[8, 10], &[8, 10]),
            MetricKind::CategoricalAccuracy
        );
    }

    #[test]
    fn accuracies_against_hand_counted_values() {
        // binary: threshold strictly above 0.5
        let y = t(&[1.0, 0.0, 1.0, 0.0], &[4, 1]);
        let p = t(&[0.9, 0.5, 0.5, 0.2], &[4, 1]);
        assert_eq!(value("accuracy", &y, &p), 0.75);
        assert_eq!(
            value("binary_accuracy", &t(&[1.0, 0.0, 1.0, 0.0], &[4]), &p),
            0.75
        );
        // categorical: first index on ties
        let y = t(&[0., 1., 0., 1., 0., 0., 0., 0., 1.], &[3, 3]);
        let p = t(&[0.1, 0.8, 0.1, 0.4, 0.4, 0.2, 0.5, 0.3, 0.2], &[3, 3]);
        assert!((value("acc", &y, &p) - 2.0 / 3.0).abs() < 1e-15);
        assert!((value("categorical_accuracy", &y, &p) - 2.0 / 3.0).abs() < 1e-15);
        let labels = t(&[1.0, 0.0, 2.0], &[3]);
        assert!((value("accuracy", &labels, &p) - 2.0 / 3.0).abs() < 1e-15);
        assert!((value("sparse_categorical_accuracy", &labels, &p) - 2.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn top_k_counts_ties_for_the_true_class() {
        let p = t(&[0.1, 0.3, 0.3, 0.2, 0.1, 0.0, 0.5, 0.4], &[2, 4]);
        let k2 = Metric::new("top2", MetricKind::SparseTopKCategoricalAccuracy { k: 2 });
        // row 0: label 2 ties with 1 at 0.3: rank 1 -> in; row 1: label 0 (0.1) rank 3 -> out
        let (s, n) = k2.batch_sum(&t(&[2.0, 0.0], &[2]), &p).unwrap();
        assert_eq!((s, n), (1.0, 2));
        let one_hot = t(&[0., 0., 1., 0., 1., 0., 0., 0.], &[2, 4]);
        let k3 = Metric::new("top3", MetricKind::TopKCategoricalAccuracy { k: 3 });
        assert_eq!(k3.batch_sum(&one_hot, &p).unwrap(), (2.0, 2));
    }

    #[test]
    fn regression_metrics() {
        let y = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let p = t(&[1.0, 0.0, 3.0, 5.0], &[2, 2]);
        assert_eq!(value("mse", &y, &p), (4.0 / 2.0 + 1.0 / 2.0) / 2.0);
        assert_eq!(value("mae", &y, &p), (2.0 / 2.0 + 1.0 / 2.0) / 2.0);
    }

    #[test]
    fn bad_shapes_and_names_are_errors() {
        let m = Metric::from_name("mse").unwrap();
        let e = m
            .batch_sum(&t(&[1.0, 2.0], &[1, 2]), &t(&[1.0, 2.0, 3.0], &[1, 3]))
            .unwrap_err();
        assert!(e.to_string().contains("do not fit"), "{e}");
        let e = Metric::from_name("f1").unwrap_err().to_string();
        assert!(
            e.starts_with("unknown metric 'f1'; valid names are: accuracy, acc"),
            "{e}"
        );
    }
}
