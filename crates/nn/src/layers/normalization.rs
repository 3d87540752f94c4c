//! Normalization layers: `BatchNormalization` and `LayerNormalization`.

use autograd::Var;
use serde_json::{Map, Value, json};
use tensor::random::StdRng;
use tensor::{Element, Tensor};

use crate::config::{ConfigResult, Field, initializer_from_json, initializer_to_json, map};
use crate::error::{Error, Result};
use crate::initializers::{Initializer, IntoInitializer};
use crate::layers::{
    Common, Context, Layer, LayerVars, Weights, common_builders, common_layer_methods, input_error,
};

/// What both normalizations share: epsilon, whether to scale (`gamma`) and shift (`beta`),
/// and their initializers.
#[derive(Clone, Copy, Debug)]
struct Affine {
    epsilon: f64,
    center: bool,
    scale: bool,
    beta_initializer: Initializer,
    gamma_initializer: Initializer,
}

impl Affine {
    fn keras() -> Self {
        Affine {
            epsilon: 1e-3,
            center: true,
            scale: true,
            beta_initializer: Initializer::Zeros,
            gamma_initializer: Initializer::Ones,
        }
    }

    fn shapes(&self, channels: usize) -> Vec<(&'static str, Vec<usize>)> {
        let mut s = Vec::new();
        if self.scale {
            s.push(("gamma", vec![channels]));
        }
        if self.center {
            s.push(("beta", vec![channels]));
        }
        s
    }

    fn build<T: Element>(
        &self,
        w: &mut Weights<T>,
        channels: usize,
        rng: &mut StdRng,
    ) -> Result<()> {
        if self.scale {
            w.add(
                "gamma",
                self.gamma_initializer.sample(&[channels], rng)?,
                true,
            );
        }
        if self.center {
            w.add(
                "beta",
                self.beta_initializer.sample(&[channels], rng)?,
                true,
            );
        }
        Ok(())
    }

    fn config(&self) -> Map<String, Value> {
        map(json!({
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializer_to_json(&self.beta_initializer),
            "gamma_initializer": initializer_to_json(&self.gamma_initializer),
        }))
    }

    fn read(c: Field<'_>) -> ConfigResult<Affine> {
        let epsilon = c.get("epsilon", |e| e.f64())?;
        if epsilon <= 0.0 {
            return Err(format!(
                "{}.epsilon: must be positive, got {epsilon}",
                c.path()
            ));
        }
        Ok(Affine {
            epsilon,
            center: c.get("center", |b| b.bool())?,
            scale: c.get("scale", |b| b.bool())?,
            beta_initializer: c.get("beta_initializer", initializer_from_json)?,
            gamma_initializer: c.get("gamma_initializer", initializer_from_json)?,
        })
    }
}

/// The builder methods of the affine part, for both layers.
macro_rules! affine_builders {
    ($ty:ident, $class:literal) => {
        impl<T: Element> $ty<T> {
            /// Added to the variance before its square root (Keras's default 1e-3).
            pub fn epsilon(mut self, epsilon: f64) -> Self {
                if !(epsilon > 0.0 && epsilon.is_finite()) {
                    self.common.error.get_or_insert(Error::config(
                        $class,
                        format!("epsilon must be a positive number, got {epsilon}"),
                    ));
                }
                self.affine.epsilon = epsilon;
                self
            }

            /// Whether to add the learned offset `beta`.
            pub fn center(mut self, center: bool) -> Self {
                self.affine.center = center;
                self
            }

            /// Whether to multiply by the learned scale `gamma`.
            pub fn scale(mut self, scale: bool) -> Self {
                self.affine.scale = scale;
                self
            }

            /// `beta`'s initializer (zeros).
            pub fn beta_initializer(mut self, init: impl IntoInitializer) -> Self {
                if let Some(i) = self.common.record(init.into_initializer()) {
                    self.affine.beta_initializer = i;
                }
                self
            }

            /// `gamma`'s initializer (ones).
            pub fn gamma_initializer(mut self, init: impl IntoInitializer) -> Self {
                if let Some(i) = self.common.record(init.into_initializer()) {
                    self.affine.gamma_initializer = i;
                }
                self
            }
        }
    };
}

/// The channels (last axis) of a normalization's input.
fn channels(class: &str, input_shape: &[usize]) -> Result<usize> {
    input_shape
        .last()
        .copied()
        .ok_or_else(|| input_error(class, "at least one axis besides the batch", input_shape))
}

/// Keras's `BatchNormalization` over the last axis (channels-last). In training each
/// channel is normalized with the batch's mean and (biased) variance over every other axis,
/// and the moving statistics move toward them:
/// `moving = moving * momentum + batch * (1 - momentum)`. In inference the moving
/// statistics are used. Then `* gamma + beta`.
///
/// Defaults as Keras: `momentum` 0.99, `epsilon` 1e-3, `center` and `scale` true, `beta`
/// zeros, `gamma` ones, moving mean zeros and moving variance ones. Weights, in Keras's
/// order: `gamma`, `beta` (trainable), `moving_mean`, `moving_variance` (not trainable).
///
/// ```
/// use nn::{BatchNormalization, Layer};
/// let bn = BatchNormalization::<f32>::new().momentum(0.9);
/// assert_eq!(bn.output_shape(&[26, 26, 32]).unwrap(), [26, 26, 32]);
/// ```
pub struct BatchNormalization<T: Element = f32> {
    momentum: f64,
    affine: Affine,
    moving_mean_initializer: Initializer,
    moving_variance_initializer: Initializer,
    common: Common,
    weights: Weights<T>,
}

common_builders!(BatchNormalization, "BatchNormalization");
affine_builders!(BatchNormalization, "BatchNormalization");

impl<T: Element> Default for BatchNormalization<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> BatchNormalization<T> {
    /// The layer with Keras's defaults.
    pub fn new() -> Self {
        BatchNormalization {
            momentum: 0.99,
            affine: Affine::keras(),
            moving_mean_initializer: Initializer::Zeros,
            moving_variance_initializer: Initializer::Ones,
            common: Common::default(),
            weights: Weights::default(),
        }
    }

    /// How much of the moving statistics each training step keeps, in `[0, 1]`.
    pub fn momentum(mut self, momentum: f64) -> Self {
        if !(0.0..=1.0).contains(&momentum) {
            self.common.error.get_or_insert(Error::config(
                "BatchNormalization",
                format!("momentum must be in [0, 1], got {momentum}"),
            ));
        }
        self.momentum = momentum;
        self
    }

    pub(crate) fn from_config(c: Field<'_>) -> ConfigResult<Self> {
        c.only(&[
            "name",
            "momentum",
            "epsilon",
            "center",
            "scale",
            "beta_initializer",
            "gamma_initializer",
            "moving_mean_initializer",
            "moving_variance_initializer",
        ])?;
        let momentum = c.get("momentum", |m| m.f64())?;
        if !(0.0..=1.0).contains(&momentum) {
            return Err(format!(
                "{}.momentum: must be in [0, 1], got {momentum}",
                c.path()
            ));
        }
        let mut layer = BatchNormalization::new().momentum(momentum);
        layer.affine = Affine::read(c)?;
        layer.moving_mean_initializer = c.get("moving_mean_initializer", initializer_from_json)?;
        layer.moving_variance_initializer =
            c.get("moving_variance_initializer", initializer_from_json)?;
        Ok(layer)
    }

    /// `moving * momentum + batch * (1 - momentum)`.
    fn moved(&self, moving: &Tensor<T>, batch: &Tensor<T>) -> Tensor<T> {
        let m = T::from_f64_lossy(self.momentum);
        let one_minus = T::from_f64_lossy(1.0 - self.momentum);
        (moving * m) + &(batch * one_minus)
    }
}

impl<T: Element> Layer<T> for BatchNormalization<T> {
    common_layer_methods!("BatchNormalization");

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        channels("BatchNormalization", input_shape)?;
        Ok(input_shape.to_vec())
    }
    fn weight_shapes(&self, input_shape: &[usize]) -> Option<Vec<(&'static str, Vec<usize>)>> {
        let c = *input_shape.last()?;
        let mut s = self.affine.shapes(c);
        s.push(("moving_mean", vec![c]));
        s.push(("moving_variance", vec![c]));
        Some(s)
    }
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Result<()> {
        let c = channels("BatchNormalization", input_shape)?;
        let mut w = Weights::default();
        self.affine.build(&mut w, c, rng)?;
        w.add(
            "moving_mean",
            self.moving_mean_initializer.sample(&[c], rng)?,
            false,
        );
        w.add(
            "moving_variance",
            self.moving_variance_initializer.sample(&[c], rng)?,
            false,
        );
        self.weights = w;
        Ok(())
    }
    fn is_built(&self) -> bool {
        !self.weights.is_empty()
    }
    fn forward<'t>(
        &self,
        x: Var<'t, T>,
        w: &LayerVars<'_, 't, T>,
        ctx: &mut Context<'_, T>,
    ) -> Result<Var<'t, T>> {
        let eps = T::from_f64_lossy(self.affine.epsilon);
        let (gamma, beta) = (w.get("gamma"), w.get("beta"));
        let mean = self.weights.get("moving_mean").expect("built");
        let variance = self.weights.get("moving_variance").expect("built");
        if !ctx.training() {
            return Ok(x.try_batch_norm_inference(mean, variance, gamma, beta, eps)?);
        }
        let (y, batch) = x.try_batch_norm(gamma, beta, eps)?;
        ctx.update("moving_mean", self.moved(mean, &batch.mean));
        ctx.update("moving_variance", self.moved(variance, &batch.variance));
        Ok(y)
    }
    fn config(&self) -> Map<String, Value> {
        let mut m = map(json!({ "momentum": self.momentum }));
        m.extend(self.affine.config());
        m.insert(
            "moving_mean_initializer".into(),
            initializer_to_json(&self.moving_mean_initializer),
        );
        m.insert(
            "moving_variance_initializer".into(),
            initializer_to_json(&self.moving_variance_initializer),
        );
        m
    }
}

/// Keras's `LayerNormalization` over the last axis: each sample's features normalized with
/// their own mean and variance, then `* gamma + beta`; the same in training and inference.
/// Defaults as Keras: `epsilon` 1e-3, `center` and `scale` true.
///
/// ```
/// use nn::{Layer, LayerNormalization};
/// assert_eq!(LayerNormalization::<f32>::new().output_shape(&[10, 64]).unwrap(), [10, 64]);
/// ```
pub struct LayerNormalization<T: Element = f32> {
    affine: Affine,
    common: Common,
    weights: Weights<T>,
}

common_builders!(LayerNormalization, "LayerNormalization");
affine_builders!(LayerNormalization, "LayerNormalization");

impl<T: Element> Default for LayerNormalization<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> LayerNormalization<T> {
    /// The layer with Keras's defaults.
    pub fn new() -> Self {
        LayerNormalization {
            affine: Affine::keras(),
            common: Common::default(),
            weights: Weights::default(),
        }
    }

    pub(crate) fn from_config(c: Field<'_>) -> ConfigResult<Self> {
        c.only(&[
            "name",
            "epsilon",
            "center",
            "scale",
            "beta_initializer",
            "gamma_initializer",
        ])?;
        let mut layer = LayerNormalization::new();
        layer.affine = Affine::read(c)?;
        Ok(layer)
    }
}

impl<T: Element> Layer<T> for LayerNormalization<T> {
    common_layer_methods!("LayerNormalization");

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        channels("LayerNormalization", input_shape)?;
        Ok(input_shape.to_vec())
    }
    fn weight_shapes(&self, input_shape: &[usize]) -> Option<Vec<(&'static str, Vec<usize>)>> {
        Some(self.affine.shapes(*input_shape.last()?))
    }
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Result<()> {
        let c = channels("LayerNormalization", input_shape)?;
        let mut w = Weights::default();
        self.affine.build(&mut w, c, rng)?;
        self.weights = w;
        Ok(())
    }
    fn is_built(&self) -> bool {
        !self.weights.is_empty() || !(self.affine.scale || self.affine.center)
    }
    fn forward<'t>(
        &self,
        x: Var<'t, T>,
        w: &LayerVars<'_, 't, T>,
        _ctx: &mut Context<'_, T>,
    ) -> Result<Var<'t, T>> {
        let eps = T::from_f64_lossy(self.affine.epsilon);
        Ok(x.try_layer_norm(w.get("gamma"), w.get("beta"), eps)?)
    }
    fn config(&self) -> Map<String, Value> {
        self.affine.config()
    }
}
