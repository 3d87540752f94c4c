//! Losses with Keras's names, formulas and reduction ("sum over batch size": the mean of the
//! per-sample losses). Cross-entropies on probabilities clip them to `[1e-7, 1 - 1e-7]` as
//! Keras does; after a sigmoid or softmax layer they are computed in the fused form from the
//! layer's input (`log_sigmoid`/`log_softmax` clamped to the same bounds), which gives
//! Keras's numbers without ever taking the log of a rounded-off probability.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use autograd::{Tape, Var};
use serde_json::{Map, Value};
use tensor::{Element, Tensor, cst};

use crate::activations::Activation;
use crate::erased::{CustomComponent, Registry, register, registered};
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
#[derive(Clone, Debug, PartialEq)]
pub enum Loss {
    /// Mean over the last axis of `(y_pred - y_true)^2`.
    MeanSquaredError,
    /// Mean over the last axis of `|y_pred - y_true|`.
    MeanAbsoluteError,
    /// Quadratic for errors up to `delta` (Keras's default 1), linear beyond.
    Huber {
        /// Where the loss turns from quadratic to linear.
        delta: f64,
    },
    /// Mean over the last axis of `log(cosh(y_pred - y_true))`.
    LogCosh,
    /// Binary cross-entropy on probabilities (clipped) or, `from_logits`, on logits.
    BinaryCrossentropy(BinaryCrossentropy),
    /// Cross-entropy against one-hot (or soft) targets.
    CategoricalCrossentropy(CategoricalCrossentropy),
    /// Cross-entropy against integer class labels (shape `[n]` or `[n, 1]`).
    SparseCategoricalCrossentropy(SparseCategoricalCrossentropy),
    /// A loss of your own ([`LossFunction`]), made with [`Loss::custom`].
    Custom(CustomComponent),
}

/// A loss written outside brick (a focal loss, a physics residual): give it to `compile`
/// as [`Loss::custom`]`(my_loss)`. To load a model saved with it, register it first with
/// [`register_loss`] (Keras's `custom_objects`).
///
/// ```
/// use autograd::Var;
/// use nn::losses::{Loss, LossFunction};
/// use tensor::Element;
///
/// /// Mean fourth power of the error.
/// struct Quartic;
/// impl<T: Element> LossFunction<T> for Quartic {
///     fn name(&self) -> &str { "quartic" }
///     fn compute<'t>(&self, y_true: Var<'t, T>, y_pred: Var<'t, T>) -> nn::Result<Var<'t, T>> {
///         Ok((y_pred - y_true).square().square().mean_all())
///     }
/// }
///
/// let tape = autograd::Tape::<f32>::new();
/// let y = tape.constant(&tensor::Tensor::new([[1.0f32], [2.0]]).unwrap());
/// let p = tape.constant(&tensor::Tensor::new([[3.0f32], [2.0]]).unwrap());
/// let loss = Loss::custom::<f32, _>(Quartic);
/// assert_eq!(loss.compute(y, p).unwrap().item(), 8.0); // (2^4 + 0) / 2
/// ```
pub trait LossFunction<T: Element>: Send + Sync + 'static {
    /// The name logs and saved configs use (`"focal"`), and the one it registers under.
    fn name(&self) -> &str;

    /// The loss of `y_pred` (the model's output) against `y_true`, averaged over the batch,
    /// as a scalar on the tape.
    ///
    /// # Errors
    /// For targets the loss cannot take; the message names what was expected.
    fn compute<'t>(&self, y_true: Var<'t, T>, y_pred: Var<'t, T>) -> Result<Var<'t, T>>;

    /// Its settings, saved with a model and handed back to its [`register_loss`] factory.
    fn config(&self) -> Map<String, Value> {
        Map::new()
    }
}

/// Builds a registered loss from its saved config.
pub type LossFactory = fn(&Map<String, Value>) -> Result<Loss>;

static LOSSES: Registry<LossFactory> = LazyLock::new(Default::default);

/// Registers a loss of your own under `name` for models of element type `T`, so that a
/// model saved with it loads again (Keras's `custom_objects`): `factory` makes it from the
/// config its [`LossFunction::config`] gave. Registering a name again replaces its factory;
/// a built-in name cannot be taken.
///
/// # Errors
/// If `name` is a built-in loss's.
pub fn register_loss<T: Element>(name: &str, factory: LossFactory) -> Result<()> {
    if LOSS_NAMES.contains(&name) {
        return Err(Error::config(
            "register_loss",
            format!("'{name}' is a built-in loss; give yours another name"),
        ));
    }
    register::<T, _>(&LOSSES, name, factory);
    Ok(())
}

/// The loss registered under `name` for element type `T`, made from `config`; `None` if
/// none is.
pub(crate) fn registered_loss<T: Element>(
    name: &str,
    config: &Map<String, Value>,
) -> Option<Result<Loss>> {
    registered::<T, LossFactory>(&LOSSES, name).map(|factory| factory(config))
}

/// Keras's `BinaryCrossentropy`: its options, with Keras's defaults from
/// [`new`](BinaryCrossentropy::new), as a loss for `compile`.
///
/// ```
/// use nn::losses::BinaryCrossentropy;
/// // keras.losses.BinaryCrossentropy(from_logits=True)
/// let loss = BinaryCrossentropy::new().from_logits(true);
/// assert_eq!((loss.from_logits, loss.label_smoothing, loss.axis), (true, 0.0, -1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinaryCrossentropy {
    /// Whether predictions are logits (no sigmoid applied) rather than probabilities.
    pub from_logits: bool,
    /// Targets are pulled towards 0.5: `t * (1 - s) + 0.5 * s`.
    pub label_smoothing: f64,
    /// The axis the per-sample mean is taken over (Keras's `axis`, default the last).
    pub axis: isize,
}

/// Keras's `CategoricalCrossentropy`: its options, with Keras's defaults from
/// [`new`](CategoricalCrossentropy::new), as a loss for `compile`.
///
/// ```
/// use nn::losses::CategoricalCrossentropy;
/// // keras.losses.CategoricalCrossentropy(from_logits=True)
/// let loss = CategoricalCrossentropy::new().from_logits(true);
/// assert_eq!((loss.from_logits, loss.label_smoothing, loss.axis), (true, 0.0, -1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CategoricalCrossentropy {
    /// Whether predictions are logits (no softmax applied) rather than probabilities.
    pub from_logits: bool,
    /// Targets are smoothed towards uniform: `t * (1 - s) + s / classes`.
    pub label_smoothing: f64,
    /// The class axis (Keras's `axis`, default the last).
    pub axis: isize,
}

/// Keras's `SparseCategoricalCrossentropy`: its options, with Keras's defaults from
/// [`new`](SparseCategoricalCrossentropy::new), as a loss for `compile`.
///
/// ```
/// use nn::losses::SparseCategoricalCrossentropy;
/// // keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
/// let loss = SparseCategoricalCrossentropy::new().from_logits(true).ignore_class(-1);
/// assert_eq!((loss.from_logits, loss.ignore_class), (true, Some(-1)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseCategoricalCrossentropy {
    /// Whether predictions are logits (no softmax applied) rather than probabilities.
    pub from_logits: bool,
    /// A label that marks a sample to leave out (padding, say): it adds nothing to the
    /// loss or its gradient, and the mean is over the other samples, as Keras's.
    pub ignore_class: Option<i64>,
}

impl BinaryCrossentropy {
    /// Keras's defaults: on probabilities, no smoothing, the last axis.
    pub const fn new() -> Self {
        BinaryCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
            axis: -1,
        }
    }
    /// Sets [`from_logits`](BinaryCrossentropy::from_logits).
    pub const fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }
    /// Sets [`label_smoothing`](BinaryCrossentropy::label_smoothing).
    pub const fn label_smoothing(mut self, label_smoothing: f64) -> Self {
        self.label_smoothing = label_smoothing;
        self
    }
    /// Sets [`axis`](BinaryCrossentropy::axis).
    pub const fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }
}

impl CategoricalCrossentropy {
    /// Keras's defaults: on probabilities, no smoothing, classes on the last axis.
    pub const fn new() -> Self {
        CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
            axis: -1,
        }
    }
    /// Sets [`from_logits`](CategoricalCrossentropy::from_logits).
    pub const fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }
    /// Sets [`label_smoothing`](CategoricalCrossentropy::label_smoothing).
    pub const fn label_smoothing(mut self, label_smoothing: f64) -> Self {
        self.label_smoothing = label_smoothing;
        self
    }
    /// Sets [`axis`](CategoricalCrossentropy::axis).
    pub const fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }
}

impl SparseCategoricalCrossentropy {
    /// Keras's defaults: on probabilities, no class ignored.
    pub const fn new() -> Self {
        SparseCategoricalCrossentropy {
            from_logits: false,
            ignore_class: None,
        }
    }
    /// Sets [`from_logits`](SparseCategoricalCrossentropy::from_logits).
    pub const fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }
    /// Sets [`ignore_class`](SparseCategoricalCrossentropy::ignore_class).
    pub const fn ignore_class(mut self, ignore_class: i64) -> Self {
        self.ignore_class = Some(ignore_class);
        self
    }
}

macro_rules! loss_options {
    ($($ty:ident),*) => {$(
        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }
        impl From<$ty> for Loss {
            fn from(options: $ty) -> Loss {
                Loss::$ty(options)
            }
        }
        impl IntoLoss for $ty {
            fn into_loss(self) -> Result<Loss> {
                Ok(Loss::$ty(self))
            }
        }
    )*};
}
loss_options!(
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy
);

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
    /// A loss of your own, for models of element type `T` (see [`LossFunction`]).
    pub fn custom<T: Element, L: LossFunction<T>>(loss: L) -> Loss {
        let (name, config) = (loss.name().to_string(), loss.config());
        let function: Arc<dyn LossFunction<T>> = Arc::new(loss);
        Loss::Custom(CustomComponent::new::<T, _>(name, config, function))
    }

    /// For a loss of one's own: that its name is not a built-in one's (it would save, and
    /// load, as that one) and that it was made for element type `T`. What `compile` checks,
    /// so that neither surfaces at the first batch or the next load.
    pub(crate) fn check_custom<T: Element>(&self) -> Result<()> {
        let Loss::Custom(c) = self else {
            return Ok(());
        };
        if LOSS_NAMES.contains(&c.name()) {
            return Err(Error::config(
                "loss",
                format!(
                    "the custom loss is named '{}', a built-in loss's name, and would save and \
                     load as that one; give it a name of its own",
                    c.name()
                ),
            ));
        }
        c.function::<T, Arc<dyn LossFunction<T>>>("loss")
            .map(|_| ())
    }

    /// The Keras function name (a custom loss's own name).
    pub fn name(&self) -> &str {
        match self {
            Loss::Custom(c) => c.name(),
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::Huber { .. } => "huber",
            Loss::LogCosh => "log_cosh",
            Loss::BinaryCrossentropy(_) => "binary_crossentropy",
            Loss::CategoricalCrossentropy(_) => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy(_) => "sparse_categorical_crossentropy",
        }
    }

    /// Whether targets are integer class labels rather than one value per output.
    pub fn is_sparse(&self) -> bool {
        matches!(self, Loss::SparseCategoricalCrossentropy(_))
    }

    fn takes_logits(&self) -> bool {
        match *self {
            Loss::BinaryCrossentropy(o) => o.from_logits,
            Loss::CategoricalCrossentropy(o) => o.from_logits,
            Loss::SparseCategoricalCrossentropy(o) => o.from_logits,
            _ => false,
        }
    }

    /// The axis a cross-entropy reduces over, for predictions of rank `rank`: `None` when
    /// it is the last (Keras's `-1`, or the same axis counted from the front).
    ///
    /// # Errors
    /// If the axis is not one of the predictions'.
    fn reduced_axis(&self, rank: usize) -> Result<Option<usize>> {
        let axis = match *self {
            Loss::BinaryCrossentropy(o) => o.axis,
            Loss::CategoricalCrossentropy(o) => o.axis,
            _ => return Ok(None),
        };
        let ax = usize::try_from(if axis < 0 { axis + rank as isize } else { axis })
            .ok()
            .filter(|&a| a < rank)
            .ok_or_else(|| {
                Error::data(
                    format!("{} axis", self.name()),
                    format!(
                        "expected an axis of predictions of rank {rank} (-{rank}..{rank}), \
                         got {axis}"
                    ),
                )
            })?;
        Ok((ax + 1 != rank).then_some(ax))
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
        if let Loss::Custom(_) = self {
            // What targets a loss of one's own takes is its own affair.
            return Ok(());
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
            let ignored = match self {
                Loss::SparseCategoricalCrossentropy(o) => o.ignore_class.map(|c| c as f64),
                _ => None,
            };
            for (i, &v) in y_true.as_array().iter().enumerate() {
                if Some(v.to_f64().unwrap_or(f64::NAN)) == ignored {
                    continue;
                }
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
        let axis = self.reduced_axis(output_shape.len())?;
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
            Loss::BinaryCrossentropy(_) => {
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
            Loss::CategoricalCrossentropy(_) => {
                let axis = axis.map_or(-1, |a| a as isize);
                let sums = y_true.sum(axis, false);
                let negative = y_true.map(|v| if v < T::zero() { T::one() } else { T::zero() });
                let negatives = negative.sum(axis, false);
                let tol = cst::<T>(1e-3);
                for (row, (&s, &neg)) in sums
                    .as_array()
                    .iter()
                    .zip(negatives.as_array().iter())
                    .enumerate()
                {
                    if neg > T::zero() || (s - T::one()).abs() > tol {
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
    /// output (sigmoid before binary cross-entropy, softmax before categorical), for
    /// predictions of rank `rank` (a cross-entropy fuses when it reduces the last axis).
    pub fn fuses_with(&self, activation: Activation, rank: usize) -> bool {
        !self.takes_logits()
            && matches!(
                (self, activation),
                (Loss::BinaryCrossentropy(_), Activation::Sigmoid)
                    | (Loss::CategoricalCrossentropy(_), Activation::Softmax)
                    | (Loss::SparseCategoricalCrossentropy(_), Activation::Softmax)
            )
            && matches!(self.reduced_axis(rank), Ok(None))
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
        let fused = self.fuses_with(activation, z.shape().len());
        let y_pred = if fused { z } else { activation.apply(z) };
        if let Loss::Custom(c) = self {
            let f = c.function::<T, Arc<dyn LossFunction<T>>>("loss")?;
            return f.compute(y_true, y_pred);
        }
        let (y_true, scale) = self.prepare_targets(tape, y_true, &y_pred.shape())?;
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
        // A cross-entropy over another axis than the last: that axis moved last (never
        // fused, so `z` is not used below).
        let rank = y_pred.shape().len();
        let (y_true, y_pred) = match self.reduced_axis(rank)? {
            None => (y_true, y_pred),
            Some(ax) => {
                let mut order: Vec<usize> = (0..rank).filter(|&a| a != ax).collect();
                order.push(ax);
                (y_true.try_permute(&order)?, y_pred.try_permute(&order)?)
            }
        };
        let (lo, hi) = (cst::<T>(EPSILON), T::one() - cst::<T>(EPSILON));
        let scaled = |loss: Var<'t, T>| match scale {
            Some(s) => loss * s,
            None => loss,
        };
        let per_sample = match self {
            Loss::MeanSquaredError => (y_pred - y_true).square().mean(-1, false),
            Loss::MeanAbsoluteError => (y_pred - y_true).abs().mean(-1, false),
            Loss::Huber { delta } => {
                let abs_error = (y_pred - y_true).abs();
                let quadratic = abs_error.minimum(tape.scalar(cst(*delta)));
                let linear = abs_error - quadratic;
                (quadratic.square() * cst::<T>(0.5) + linear * cst::<T>(*delta)).mean(-1, false)
            }
            Loss::LogCosh => {
                // log(cosh(x)) = x + softplus(-2x) - log(2), stable for large |x|.
                let x = y_pred - y_true;
                (x + (x * cst::<T>(-2.0)).softplus() - cst::<T>(std::f64::consts::LN_2))
                    .mean(-1, false)
            }
            Loss::BinaryCrossentropy(o) if o.from_logits || fused => {
                // One fused op; clamped as Keras's probability clipping when fused.
                let clip = (!o.from_logits).then(|| cst::<T>(EPSILON));
                return Ok(y_pred.try_sigmoid_cross_entropy(y_true, clip)?);
            }
            Loss::BinaryCrossentropy(_) => {
                let p = y_pred.clamp(lo, hi);
                let not_t = scalar_minus(tape, T::one(), y_true);
                (-(y_true * p.ln() + not_t * scalar_minus(tape, T::one(), p).ln())).mean(-1, false)
            }
            Loss::CategoricalCrossentropy(_) | Loss::SparseCategoricalCrossentropy(_)
                if self.takes_logits() || fused =>
            {
                // One fused op; a target row of zeros (an ignored class) adds nothing.
                let clip = (!self.takes_logits()).then(|| cst::<T>(EPSILON));
                return Ok(scaled(y_pred.try_softmax_cross_entropy(y_true, clip)?));
            }
            Loss::CategoricalCrossentropy(_) | Loss::SparseCategoricalCrossentropy(_) => {
                let p = y_pred / y_pred.sum(-1, true);
                -(y_true * p.clamp(lo, hi).ln()).sum(-1, false)
            }
            Loss::Custom(_) => unreachable!("a custom loss returned above"),
        };
        Ok(scaled(per_sample.mean_all()))
    }

    /// Targets as the loss uses them: integer labels one-hot encoded for the sparse loss
    /// (an ignored class as a row of zeros), label smoothing applied. With an ignored
    /// class, also the factor `samples / kept samples` (0 if none is kept) that turns the
    /// mean over all samples into Keras's mean over the kept ones.
    fn prepare_targets<'t, T: Element>(
        &self,
        tape: &'t Tape<T>,
        y_true: Var<'t, T>,
        pred_shape: &[usize],
    ) -> Result<(Var<'t, T>, Option<T>)> {
        let smoothed = |s: f64, classes: f64| y_true * cst::<T>(1.0 - s) + cst::<T>(s / classes);
        Ok(match *self {
            Loss::SparseCategoricalCrossentropy(o) => {
                let labels = y_true.value();
                let classes = *pred_shape.last().unwrap_or(&1);
                let ignored = o.ignore_class.map(|c| c as f64);
                let idx: Vec<Option<usize>> = labels
                    .as_array()
                    .iter()
                    .map(|v| {
                        if Some(v.to_f64().unwrap_or(f64::NAN)) == ignored {
                            return Some(None);
                        }
                        v.to_usize()
                            .filter(|&i| i < classes && v.fract() == T::zero())
                            .map(Some)
                    })
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        Error::data(
                            "sparse_categorical_crossentropy targets",
                            format!("expected integer class indices in 0..{classes}"),
                        )
                    })?;
                let mut onehot = vec![T::zero(); idx.len() * classes];
                for (row, i) in idx.iter().enumerate() {
                    if let Some(i) = i {
                        onehot[row * classes + i] = T::one();
                    }
                }
                let targets = tape.constant(&Tensor::from_vec(onehot, &[idx.len(), classes])?);
                let kept = idx.iter().filter(|i| i.is_some()).count();
                let scale = ignored.map(|_| {
                    if kept == 0 {
                        T::zero()
                    } else {
                        cst::<T>(idx.len() as f64 / kept as f64)
                    }
                });
                (targets, scale)
            }
            Loss::CategoricalCrossentropy(o) if o.label_smoothing > 0.0 => {
                let rank = pred_shape.len() as isize;
                let axis = if o.axis < 0 { o.axis + rank } else { o.axis };
                let classes = usize::try_from(axis)
                    .ok()
                    .and_then(|a| pred_shape.get(a))
                    .copied()
                    .unwrap_or(1);
                (smoothed(o.label_smoothing, classes as f64), None)
            }
            Loss::BinaryCrossentropy(o) if o.label_smoothing > 0.0 => {
                (smoothed(o.label_smoothing, 2.0), None)
            }
            _ => (y_true, None),
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
            "binary_crossentropy" => BinaryCrossentropy::new().into(),
            "categorical_crossentropy" => CategoricalCrossentropy::new().into(),
            "sparse_categorical_crossentropy" => SparseCategoricalCrossentropy::new().into(),
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
        let bce = Loss::BinaryCrossentropy(
            BinaryCrossentropy::new()
                .from_logits(true)
                .label_smoothing(0.0),
        );
        let tape = Tape::new();
        let got = bce
            .compute(tape.constant(&y), tape.constant(&z))
            .unwrap()
            .item();
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        close(got, -(s(0.3).ln() + (1.0 - s(-1.2)).ln()) / 2.0);
        let cce = Loss::CategoricalCrossentropy(
            CategoricalCrossentropy::new()
                .from_logits(true)
                .label_smoothing(0.0),
        );
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
    fn an_ignored_class_adds_nothing_and_the_mean_is_over_the_kept_samples() {
        // Keras: the per-sample losses of ignored labels are masked out and the mean is
        // over the others (0 when every label is ignored).
        let z = t(&[2.0, -1.0, 0.5, 0.3, 0.3, 4.0, -2.0, 1.0, 0.0], &[3, 3]);
        let labels = t(&[2.0, -1.0, 0.0], &[3]);
        let kept_z = t(&[2.0, -1.0, 0.5, -2.0, 1.0, 0.0], &[2, 3]);
        let kept_labels = t(&[2.0, 0.0], &[2]);
        let plain = SparseCategoricalCrossentropy::new().from_logits(true);
        let ignoring: Loss = plain.ignore_class(-1).into();
        ignoring.check_targets(&labels, &[3, 3]).unwrap();
        assert!(Loss::from(plain).check_targets(&labels, &[3, 3]).is_err());
        for activation in [Activation::Linear, Activation::Softmax] {
            let from_logits = activation == Activation::Linear;
            let (ign, pl): (Loss, Loss) = (
                plain.from_logits(from_logits).ignore_class(-1).into(),
                plain.from_logits(from_logits).into(),
            );
            let tape = Tape::new();
            let zv = tape.param(&z);
            let loss = ign
                .compute_fused(tape.constant(&labels), zv, activation)
                .unwrap();
            let grads = loss.backward().unwrap();
            let tape2 = Tape::new();
            let kv = tape2.param(&kept_z);
            let want = pl
                .compute_fused(tape2.constant(&kept_labels), kv, activation)
                .unwrap();
            close(loss.item(), want.item());
            let (g, gk) = (grads[zv].to_vec(), want.backward().unwrap()[kv].to_vec());
            // The ignored row has no gradient; the kept rows have the kept batch's.
            assert!(g[3..6].iter().all(|&v| v == 0.0), "{g:?}");
            for (a, b) in g[..3].iter().chain(&g[6..]).zip(&gk) {
                assert!((a - b).abs() < 1e-12, "{g:?} vs {gk:?}");
            }
        }
        let tape = Tape::new();
        let all = t(&[-1.0, -1.0, -1.0], &[3]);
        close(
            ignoring
                .compute(tape.constant(&all), tape.constant(&z))
                .unwrap()
                .item(),
            0.0,
        );
    }

    #[test]
    fn a_cross_entropy_over_another_axis_is_the_last_axis_one_of_the_transpose() {
        let p = t(&[0.2, 0.5, 0.3, 0.6, 0.1, 0.1], &[3, 2]); // classes down the columns
        let y = t(&[0.0, 1.0, 1.0, 0.0, 0.0, 0.0], &[3, 2]);
        let tape = Tape::new();
        let over_rows: Loss = CategoricalCrossentropy::new().axis(0).into();
        over_rows.check_targets(&y, &[3, 2]).unwrap();
        let got = over_rows
            .compute(tape.constant(&y), tape.constant(&p))
            .unwrap()
            .item();
        let (pt, yt) = (p.transpose().to_contiguous(), y.transpose().to_contiguous());
        let want = loss_of("categorical_crossentropy", &yt, &pt);
        close(got, want);
        let bce: Loss = BinaryCrossentropy::new().axis(0).into();
        let b0 = bce
            .compute(tape.constant(&y), tape.constant(&p))
            .unwrap()
            .item();
        close(b0, loss_of("binary_crossentropy", &yt, &pt));
        // An axis the predictions do not have is an error that names it.
        let e = Loss::from(CategoricalCrossentropy::new().axis(2))
            .compute(tape.constant(&y), tape.constant(&p))
            .unwrap_err()
            .to_string();
        assert!(e.contains("rank 2 (-2..2), got 2"), "{e}");
        // So is one in the targets' check, for both cross-entropies, before anything runs.
        for loss in [
            Loss::from(CategoricalCrossentropy::new().axis(2)),
            Loss::from(BinaryCrossentropy::new().axis(-3)),
        ] {
            let e = loss.check_targets(&y, &[3, 2]).unwrap_err().to_string();
            assert!(e.contains("rank 2 (-2..2)"), "{e}");
        }
    }

    #[test]
    fn the_last_axis_counted_from_the_front_is_the_last_axis() {
        // axis=1 of 2-D predictions is Keras's default -1, and fuses as it does.
        for (front, back) in [
            (
                Loss::from(CategoricalCrossentropy::new().axis(1)),
                Loss::from(CategoricalCrossentropy::new()),
            ),
            (
                Loss::from(BinaryCrossentropy::new().axis(1)),
                Loss::from(BinaryCrossentropy::new()),
            ),
        ] {
            let act = if front.name() == "binary_crossentropy" {
                Activation::Sigmoid
            } else {
                Activation::Softmax
            };
            assert!(front.fuses_with(act, 2), "{front:?}");
            assert!(!front.fuses_with(act, 3), "{front:?}");
            let z = t(&[0.3, -1.2, 2.0, 0.1], &[2, 2]);
            let y = t(&[0.0, 1.0, 1.0, 0.0], &[2, 2]);
            let tape = Tape::new();
            let l = |loss: &Loss| {
                loss.compute_fused(tape.constant(&y), tape.constant(&z), act)
                    .unwrap()
                    .item()
            };
            close(l(&front), l(&back));
        }
    }

    #[test]
    fn from_logits_reads_the_model_s_output_whatever_its_activation() {
        // A last layer with an activation and a loss from logits: the loss takes the
        // layer's output as the logits (Keras applies nothing else).
        let z = t(&[0.3, -1.2, 2.0, 0.1], &[2, 2]);
        let y = t(&[0.0, 1.0, 1.0, 0.0], &[2, 2]);
        let loss: Loss = CategoricalCrossentropy::new().from_logits(true).into();
        let tape = Tape::new();
        let got = loss
            .compute_fused(tape.constant(&y), tape.constant(&z), Activation::Relu)
            .unwrap()
            .item();
        let want = loss
            .compute(tape.constant(&y), tape.constant(&z.map(|v| v.max(0.0))))
            .unwrap()
            .item();
        close(got, want);
    }

    #[test]
    fn label_smoothing() {
        let y = t(&[0.0, 1.0], &[1, 2]);
        let p = t(&[0.25, 0.75], &[1, 2]);
        let l = Loss::CategoricalCrossentropy(
            CategoricalCrossentropy::new()
                .from_logits(false)
                .label_smoothing(0.2),
        );
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
