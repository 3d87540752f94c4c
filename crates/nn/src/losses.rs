//! Losses with Keras's names, formulas and reduction ("sum over batch size": the mean of the
//! per-sample losses). Cross-entropies on probabilities clip them to `[1e-7, 1 - 1e-7]` as
//! Keras does; after a sigmoid or softmax layer they are computed in the fused form from the
//! layer's input (`log_sigmoid`/`log_softmax` clamped to the same bounds), which gives
//! Keras's numbers without ever taking the log of a rounded-off probability.

use std::fmt;
use std::str::FromStr;

use autograd::{Tape, Var};
use tensor::{Element, Tensor, cst};

use crate::activations::Activation;
use crate::error::{Error, Result};

/// Keras's fuzz factor for clipping probabilities (`keras.backend.epsilon()`).
pub const EPSILON: f64 = 1e-7;

/// A loss function.
///
/// ```
/// use autograd::Tape;
/// use nn::Loss;
/// use tensor::Tensor;
/// let tape = Tape::<f32>::new();
/// let y_true = tape.constant(&Tensor::from_vec(vec![0.0, 1.0], &[1, 2]).unwrap());
/// let y_pred = tape.constant(&Tensor::from_vec(vec![0.5, 0.5], &[1, 2]).unwrap());
/// let loss: Loss = "categorical_crossentropy".parse().unwrap();
/// assert!((loss.compute(y_true, y_pred).unwrap().item() - 0.5f32.ln().abs()).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// Mean over the last axis of `(y_pred - y_true)^2`.
    MeanSquaredError,
    /// Mean over the last axis of `|y_pred - y_true|`.
    MeanAbsoluteError,
    /// Quadratic for errors up to `delta` (Keras's default 1), linear beyond.
    Huber { delta: f64 },
    /// Mean over the last axis of `log(cosh(y_pred - y_true))`.
    LogCosh,
    /// Binary cross-entropy on probabilities (clipped) or, `from_logits`, on logits.
    BinaryCrossentropy {
        from_logits: bool,
        label_smoothing: f64,
    },
    /// Cross-entropy against one-hot (or soft) targets.
    CategoricalCrossentropy {
        from_logits: bool,
        label_smoothing: f64,
    },
    /// Cross-entropy against integer class labels (shape `[n]` or `[n, 1]`).
    SparseCategoricalCrossentropy { from_logits: bool },
}

/// Every name [`Loss::from_str`] accepts.
pub const LOSS_NAMES: &[&str] = &[
    "mean_squared_error",
    "mse",
    "mean_absolute_error",
    "mae",
    "huber",
    "log_cosh",
    "logcosh",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
];

impl Loss {
    /// The Keras function name.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::Huber { .. } => "huber",
            Loss::LogCosh => "log_cosh",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
        }
    }

    /// Whether targets are integer class labels rather than one value per output.
    pub fn is_sparse(&self) -> bool {
        matches!(self, Loss::SparseCategoricalCrossentropy { .. })
    }

    fn takes_logits(&self) -> bool {
        match *self {
            Loss::BinaryCrossentropy { from_logits, .. }
            | Loss::CategoricalCrossentropy { from_logits, .. }
            | Loss::SparseCategoricalCrossentropy { from_logits } => from_logits,
            _ => false,
        }
    }

    /// Checks targets against the model's output shape `[n, units]` before anything runs:
    /// matching shapes (integer labels in range for the sparse loss), values a loss can
    /// take (0..1 for binary cross-entropy, rows summing to 1 for categorical), no NaN.
    pub fn check_targets<T: Element>(
        &self,
        y_true: &Tensor<T>,
        output_shape: &[usize],
    ) -> Result<()> {
        let ctx = || format!("{} targets", self.name());
        let units = *output_shape.last().unwrap_or(&1);
        if let Some((i, v)) = y_true.first_non_finite() {
            return Err(Error::data(
                ctx(),
                format!("element {i} is {v}, expected a finite number"),
            ));
        }
        if self.is_sparse() {
            let ok_shape = y_true.ndim() == 1 || (y_true.ndim() == 2 && y_true.shape()[1] == 1);
            if !ok_shape || y_true.shape()[0] != output_shape[0] {
                return Err(Error::data(
                    ctx(),
                    format!(
                        "expected integer class labels of shape [{}] or [{}, 1], got shape {:?}",
                        output_shape[0],
                        output_shape[0],
                        y_true.shape()
                    ),
                ));
            }
            for (i, &v) in y_true.as_array().iter().enumerate() {
                if v < T::zero()
                    || v.fract() != T::zero()
                    || v >= T::from_usize(units).expect("fits")
                {
                    return Err(Error::data(
                        ctx(),
                        format!("label {i} is {v}, expected an integer class index in 0..{units}"),
                    ));
                }
            }
            return Ok(());
        }
        if y_true.shape() != output_shape {
            return Err(Error::data(
                ctx(),
                format!(
                    "expected shape {output_shape:?} (the model's output), got {:?}",
                    y_true.shape()
                ),
            ));
        }
        match self {
            Loss::BinaryCrossentropy { .. } => {
                if let Some((i, v)) = y_true
                    .as_array()
                    .iter()
                    .enumerate()
                    .find(|(_, v)| **v < T::zero() || **v > T::one())
                {
                    return Err(Error::data(
                        ctx(),
                        format!("element {i} is {v}, expected a value in [0, 1]"),
                    ));
                }
            }
            Loss::CategoricalCrossentropy { .. } => {
                let sums = y_true.sum(-1, false);
                let tol = cst::<T>(1e-3);
                for (row, (&s, lane)) in sums
                    .as_array()
                    .iter()
                    .zip(y_true.as_array().rows())
                    .enumerate()
                {
                    if lane.iter().any(|&v| v < T::zero()) || (s - T::one()).abs() > tol {
                        return Err(Error::data(
                            ctx(),
                            format!(
                                "row {row} sums to {s} (or has a negative entry), expected one-hot or probability rows that sum to 1; for integer labels use sparse_categorical_crossentropy or to_categorical"
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The loss of predictions `y_pred` (the model's output) against `y_true`, averaged
    /// over the batch, as a scalar on the tape.
    ///
    /// # Errors
    /// If the shapes do not fit (see [`check_targets`](Loss::check_targets) for a full check).
    pub fn compute<'t, T: Element>(
        &self,
        y_true: Var<'t, T>,
        y_pred: Var<'t, T>,
    ) -> Result<Var<'t, T>> {
        self.compute_fused(y_true, y_pred, Activation::Linear)
    }

    /// Whether the loss can take the input of a layer with this activation instead of its
    /// output (sigmoid before binary cross-entropy, softmax before categorical).
    pub fn fuses_with(&self, activation: Activation) -> bool {
        !self.takes_logits()
            && matches!(
                (self, activation),
                (Loss::BinaryCrossentropy { .. }, Activation::Sigmoid)
                    | (Loss::CategoricalCrossentropy { .. }, Activation::Softmax)
                    | (
                        Loss::SparseCategoricalCrossentropy { .. },
                        Activation::Softmax
                    )
            )
    }

    /// The loss of `activation(z)`: fused when [`fuses_with`](Loss::fuses_with) says so,
    /// otherwise the activation is applied and the plain loss computed.
    pub fn compute_fused<'t, T: Element>(
        &self,
        y_true: Var<'t, T>,
        z: Var<'t, T>,
        activation: Activation,
    ) -> Result<Var<'t, T>> {
        let tape = z.tape();
        let fused = self.fuses_with(activation);
        let y_pred = if fused { z } else { activation.apply(z) };
        let y_true = self.prepare_targets(tape, y_true, &y_pred.shape())?;
        if y_true.shape() != y_pred.shape() {
            return Err(Error::data(
                format!("{} targets", self.name()),
                format!(
                    "expected shape {:?} (the predictions), got {:?}",
                    y_pred.shape(),
                    y_true.shape()
                ),
            ));
        }
        let (lo, hi) = (cst::<T>(EPSILON), T::one() - cst::<T>(EPSILON));
        let per_sample = match *self {
            Loss::MeanSquaredError => (y_pred - y_true).square().mean(-1, false),
            Loss::MeanAbsoluteError => (y_pred - y_true).abs().mean(-1, false),
            Loss::Huber { delta } => {
                let abs_error = (y_pred - y_true).abs();
                let quadratic = abs_error.minimum(tape.scalar(cst(delta)));
                let linear = abs_error - quadratic;
                (quadratic.square() * cst::<T>(0.5) + linear * cst::<T>(delta)).mean(-1, false)
            }
            Loss::LogCosh => {
                // log(cosh(x)) = x + softplus(-2x) - log(2), stable for large |x|.
                let x = y_pred - y_true;
                (x + (x * cst::<T>(-2.0)).softplus() - cst::<T>(std::f64::consts::LN_2))
                    .mean(-1, false)
            }
            Loss::BinaryCrossentropy { from_logits, .. } if from_logits || fused => {
                // One fused op; clamped as Keras's probability clipping when fused.
                let clip = (!from_logits).then(|| cst::<T>(EPSILON));
                return Ok(z.try_sigmoid_cross_entropy(y_true, clip)?);
            }
            Loss::BinaryCrossentropy { .. } => {
                let p = y_pred.clamp(lo, hi);
                let not_t = scalar_minus(tape, T::one(), y_true);
                (-(y_true * p.ln() + not_t * scalar_minus(tape, T::one(), p).ln())).mean(-1, false)
            }
            Loss::CategoricalCrossentropy { from_logits, .. }
            | Loss::SparseCategoricalCrossentropy { from_logits }
                if from_logits || fused =>
            {
                let clip = (!from_logits).then(|| cst::<T>(EPSILON));
                return Ok(z.try_softmax_cross_entropy(y_true, clip)?);
            }
            Loss::CategoricalCrossentropy { .. } | Loss::SparseCategoricalCrossentropy { .. } => {
                let p = y_pred / y_pred.sum(-1, true);
                -(y_true * p.clamp(lo, hi).ln()).sum(-1, false)
            }
        };
        Ok(per_sample.mean_all())
    }

    /// Targets as the loss uses them: integer labels one-hot encoded for the sparse loss,
    /// label smoothing applied.
    fn prepare_targets<'t, T: Element>(
        &self,
        tape: &'t Tape<T>,
        y_true: Var<'t, T>,
        pred_shape: &[usize],
    ) -> Result<Var<'t, T>> {
        Ok(match *self {
            Loss::SparseCategoricalCrossentropy { .. } => {
                let labels = y_true.value();
                let classes = *pred_shape.last().unwrap_or(&1);
                let idx: Vec<usize> = labels
                    .as_array()
                    .iter()
                    .map(|v| {
                        v.to_usize()
                            .filter(|&i| i < classes && v.fract() == T::zero())
                    })
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        Error::data(
                            "sparse_categorical_crossentropy targets",
                            format!("expected integer class indices in 0..{classes}"),
                        )
                    })?;
                tape.constant(&Tensor::one_hot(&idx, classes)?)
            }
            Loss::CategoricalCrossentropy {
                label_smoothing, ..
            } if label_smoothing > 0.0 => {
                let classes = *pred_shape.last().unwrap_or(&1) as f64;
                y_true * cst::<T>(1.0 - label_smoothing) + cst::<T>(label_smoothing / classes)
            }
            Loss::BinaryCrossentropy {
                label_smoothing, ..
            } if label_smoothing > 0.0 => {
                y_true * cst::<T>(1.0 - label_smoothing) + cst::<T>(0.5 * label_smoothing)
            }
            _ => y_true,
        })
    }
}

/// `c - v` on the tape.
fn scalar_minus<'t, T: Element>(tape: &'t Tape<T>, c: T, v: Var<'t, T>) -> Var<'t, T> {
    tape.scalar(c) - v
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loss {
    type Err = Error;

    /// Keras's names and aliases, with Keras's defaults (`from_logits` false, no label
    /// smoothing, Huber delta 1).
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "mean_squared_error" | "mse" => Loss::MeanSquaredError,
            "mean_absolute_error" | "mae" => Loss::MeanAbsoluteError,
            "huber" => Loss::Huber { delta: 1.0 },
            "log_cosh" | "logcosh" => Loss::LogCosh,
            "binary_crossentropy" => Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            "categorical_crossentropy" => Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            "sparse_categorical_crossentropy" => {
                Loss::SparseCategoricalCrossentropy { from_logits: false }
            }
            _ => {
                return Err(Error::UnknownName {
                    kind: "loss",
                    name: name.to_string(),
                    valid: LOSS_NAMES.to_vec(),
                });
            }
        })
    }
}

/// What `compile` accepts as a loss: a Keras name or a [`Loss`].
pub trait IntoLoss {
    /// Converts, or explains why not.
    fn into_loss(self) -> Result<Loss>;
}

impl IntoLoss for Loss {
    fn into_loss(self) -> Result<Loss> {
        Ok(self)
    }
}

impl IntoLoss for &str {
    fn into_loss(self) -> Result<Loss> {
        self.parse()
    }
}

impl IntoLoss for String {
    fn into_loss(self) -> Result<Loss> {
        self.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64], s: &[usize]) -> Tensor<f64> {
        Tensor::from_shape_slice(v, s).unwrap()
    }

    fn loss_of(loss: &str, y_true: &Tensor<f64>, y_pred: &Tensor<f64>) -> f64 {
        let l: Loss = loss.parse().unwrap();
        let tape = Tape::new();
        l.compute(tape.constant(y_true), tape.constant(y_pred))
            .unwrap()
            .item()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn regression_losses_against_hand_computed_values() {
        let y = t(&[1.0, 2.0, 0.0, -1.0], &[2, 2]);
        let p = t(&[1.5, 0.0, 0.0, 2.0], &[2, 2]);
        // errors: 0.5, -2, 0, 3
        close(loss_of("mse", &y, &p), (0.25 + 4.0 + 0.0 + 9.0) / 4.0);
        close(loss_of("mae", &y, &p), (0.5 + 2.0 + 0.0 + 3.0) / 4.0);
        // huber, delta 1: 0.125, 1.5, 0, 2.5
        close(loss_of("huber", &y, &p), (0.125 + 1.5 + 0.0 + 2.5) / 4.0);
        let lc = |x: f64| x.cosh().ln();
        close(
            loss_of("log_cosh", &y, &p),
            (lc(0.5) + lc(2.0) + lc(0.0) + lc(3.0)) / 4.0,
        );
    }

    #[test]
    fn cross_entropies_against_hand_computed_values() {
        let y = t(&[1.0, 0.0], &[2, 1]);
        let p = t(&[0.8, 0.3], &[2, 1]);
        close(
            loss_of("binary_crossentropy", &y, &p),
            -(0.8f64.ln() + 0.7f64.ln()) / 2.0,
        );
        let y = t(&[0.0, 1.0, 0.0, 1.0, 0.0, 0.0], &[2, 3]);
        let p = t(&[0.2, 0.5, 0.3, 0.1, 0.1, 0.8], &[2, 3]);
        close(
            loss_of("categorical_crossentropy", &y, &p),
            -(0.5f64.ln() + 0.1f64.ln()) / 2.0,
        );
        // Unnormalised rows are divided by their sum first, as in Keras.
        let p2 = &p * 2.0;
        close(
            loss_of("categorical_crossentropy", &y, &p2),
            -(0.5f64.ln() + 0.1f64.ln()) / 2.0,
        );
        let labels = t(&[1.0, 0.0], &[2]);
        close(
            loss_of("sparse_categorical_crossentropy", &labels, &p),
            -(0.5f64.ln() + 0.1f64.ln()) / 2.0,
        );
    }

    #[test]
    fn probabilities_are_clipped_like_keras() {
        let y = t(&[1.0, 0.0], &[1, 2]);
        let p = t(&[0.0, 1.0], &[1, 2]);
        // p clipped to 1e-7: loss -ln(1e-7)
        close(loss_of("categorical_crossentropy", &y, &p), -(1e-7f64).ln());
        let yb = t(&[1.0], &[1, 1]);
        let pb = t(&[0.0], &[1, 1]);
        close(loss_of("binary_crossentropy", &yb, &pb), -(1e-7f64).ln());
    }

    #[test]
    fn fused_forms_equal_the_plain_ones_and_clip_alike() {
        for logits in [
            vec![0.3, -1.2, 2.0, 0.1, -0.5, 0.7],
            vec![40.0, -40.0, 0.0, -30.0, 30.0, 1.0],
        ] {
            let z = t(&logits, &[2, 3]);
            let y = t(&[0.0, 0.0, 1.0, 1.0, 0.0, 0.0], &[2, 3]);
            let cce: Loss = "categorical_crossentropy".parse().unwrap();
            let tape = Tape::new();
            let fused = cce
                .compute_fused(tape.constant(&y), tape.constant(&z), Activation::Softmax)
                .unwrap()
                .item();
            let plain = cce
                .compute(tape.constant(&y), tape.constant(&z.softmax(-1)))
                .unwrap()
                .item();
            assert!((fused - plain).abs() < 1e-9, "{fused} vs {plain}");

            let zb = t(&logits, &[6, 1]);
            let yb = t(&[1.0, 0.0, 1.0, 0.0, 1.0, 0.0], &[6, 1]);
            let bce: Loss = "binary_crossentropy".parse().unwrap();
            let fused = bce
                .compute_fused(tape.constant(&yb), tape.constant(&zb), Activation::Sigmoid)
                .unwrap()
                .item();
            let plain = bce
                .compute(tape.constant(&yb), tape.constant(&zb.sigmoid()))
                .unwrap()
                .item();
            assert!((fused - plain).abs() < 1e-9, "{fused} vs {plain}");
        }
    }

    #[test]
    fn from_logits_forms() {
        let z = t(&[0.3, -1.2], &[2, 1]);
        let y = t(&[1.0, 0.0], &[2, 1]);
        let bce = Loss::BinaryCrossentropy {
            from_logits: true,
            label_smoothing: 0.0,
        };
        let tape = Tape::new();
        let got = bce
            .compute(tape.constant(&y), tape.constant(&z))
            .unwrap()
            .item();
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        close(got, -(s(0.3).ln() + (1.0 - s(-1.2)).ln()) / 2.0);
        let cce = Loss::CategoricalCrossentropy {
            from_logits: true,
            label_smoothing: 0.0,
        };
        let z = t(&[1e4, 0.0], &[1, 2]);
        let y = t(&[0.0, 1.0], &[1, 2]);
        close(
            cce.compute(tape.constant(&y), tape.constant(&z))
                .unwrap()
                .item(),
            1e4,
        );
    }

    #[test]
    fn label_smoothing() {
        let y = t(&[0.0, 1.0], &[1, 2]);
        let p = t(&[0.25, 0.75], &[1, 2]);
        let l = Loss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.2,
        };
        let tape = Tape::new();
        let got = l
            .compute(tape.constant(&y), tape.constant(&p))
            .unwrap()
            .item();
        close(got, -(0.1 * 0.25f64.ln() + 0.9 * 0.75f64.ln()));
    }

    #[test]
    fn target_checks_name_the_problem() {
        let cce: Loss = "categorical_crossentropy".parse().unwrap();
        let e = cce
            .check_targets(&t(&[1.0, 1.0], &[1, 2]), &[1, 2])
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 0 sums to 2"), "{e}");
        let e = cce
            .check_targets(&t(&[1.0, 0.0], &[1, 2]), &[1, 3])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("expected shape [1, 3]") && e.contains("got [1, 2]"),
            "{e}"
        );
        let sparse: Loss = "sparse_categorical_crossentropy".parse().unwrap();
        let e = sparse
            .check_targets(&t(&[0.0, 3.0], &[2]), &[2, 3])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("label 1 is 3, expected an integer class index in 0..3"),
            "{e}"
        );
        assert!(
            sparse
                .check_targets(&t(&[0.0, 2.0], &[2, 1]), &[2, 3])
                .is_ok()
        );
        assert!(sparse.check_targets(&t(&[0.5], &[1]), &[1, 3]).is_err());
        let bce: Loss = "binary_crossentropy".parse().unwrap();
        let e = bce
            .check_targets(&t(&[2.0], &[1, 1]), &[1, 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a value in [0, 1]"), "{e}");
        let mse: Loss = "mse".parse().unwrap();
        let e = mse
            .check_targets(&t(&[f64::NAN], &[1, 1]), &[1, 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("NaN"), "{e}");
        let e = "cross_entropy".parse::<Loss>().unwrap_err().to_string();
        assert!(
            e.starts_with("unknown loss 'cross_entropy'; valid names are: mean_squared_error, mse"),
            "{e}"
        );
    }
}
