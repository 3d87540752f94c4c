//! The fully connected layer.

use autograd::{OutputActivation, Var};
use serde_json::{Map, Value, json};
use tensor::Element;
use tensor::random::StdRng;

use crate::activations::{Activation, IntoActivation};
use crate::config::{
    ConfigResult, Field, activation_from_json, activation_to_json, initializer_from_json,
    initializer_to_json, map,
};
use crate::error::{Error, Result};
use crate::initializers::{Initializer, IntoInitializer};
use crate::layers::{
    Common, Context, Layer, LayerVars, Weights, common_builders, common_layer_methods, input_error,
};

/// A densely connected layer: `activation(x @ kernel + bias)`, with a kernel of shape
/// `[input_dim, units]`, as Keras's `Dense`. On inputs of rank above 2 it acts on the last
/// axis (`[batch, steps, features]` to `[batch, steps, units]`), as Keras's does.
///
/// Defaults as Keras: no activation (linear), `use_bias` true, `kernel_initializer`
/// `glorot_uniform`, `bias_initializer` `zeros`. Only the first layer of a model needs
/// `input_dim` (or `input_shape`); later layers take the previous layer's output shape.
///
/// Keras's `Dense(8, input_dim=4, kernel_initializer='uniform', activation='relu')`:
///
/// ```
/// use nn::Dense;
/// let layer = Dense::<f32>::new(8).input_dim(4).kernel_initializer("uniform").activation("relu");
/// ```
///
/// Names are checked when the layer is added to a model: an unknown one is an error that
/// lists the valid names.
pub struct Dense<T: Element = f32> {
    units: usize,
    activation: Activation,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    common: Common,
    weights: Weights<T>,
}

common_builders!(Dense, "Dense");

impl<T: Element> Dense<T> {
    /// A layer of `units` outputs with Keras's defaults.
    pub fn new(units: usize) -> Self {
        let error = (units == 0).then(|| Error::config("Dense", "units must be at least 1, got 0"));
        Dense {
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GLOROT_UNIFORM,
            bias_initializer: Initializer::Zeros,
            common: Common {
                error,
                ..Common::default()
            },
            weights: Weights::default(),
        }
    }

    /// The number of input features (needed on the first layer of a model only): Keras's
    /// `input_dim`, the same as `input_shape([input_dim])`.
    pub fn input_dim(self, input_dim: usize) -> Self {
        self.input_shape([input_dim])
    }

    /// The activation, by Keras name (`"relu"`) or as an [`Activation`].
    pub fn activation(mut self, activation: impl IntoActivation) -> Self {
        if let Some(a) = self.common.record(activation.into_activation()) {
            self.activation = a;
        }
        self
    }

    /// Whether to add a bias vector.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// The kernel's initializer, by Keras name (`"he_normal"`) or as an [`Initializer`].
    pub fn kernel_initializer(mut self, init: impl IntoInitializer) -> Self {
        if let Some(i) = self.common.record(init.into_initializer()) {
            self.kernel_initializer = i;
        }
        self
    }

    /// The bias's initializer.
    pub fn bias_initializer(mut self, init: impl IntoInitializer) -> Self {
        if let Some(i) = self.common.record(init.into_initializer()) {
            self.bias_initializer = i;
        }
        self
    }

    /// The number of outputs.
    pub fn units(&self) -> usize {
        self.units
    }

    /// The kernel `[input_dim, units]`, once built.
    pub fn kernel(&self) -> Option<&tensor::Tensor<T>> {
        self.weights.get("kernel")
    }

    /// The bias `[units]`, once built (never with `use_bias(false)`).
    pub fn bias(&self) -> Option<&tensor::Tensor<T>> {
        self.weights.get("bias")
    }

    /// Reads the layer back from its [`config`](Layer::config) (the registry's factory).
    pub(crate) fn from_config(c: Field<'_>) -> ConfigResult<Self> {
        c.only(&[
            "name",
            "units",
            "activation",
            "use_bias",
            "kernel_initializer",
            "bias_initializer",
        ])?;
        Ok(Dense::new(c.get("units", |u| u.count(1))?)
            .activation(c.get("activation", activation_from_json)?)
            .use_bias(c.get("use_bias", |b| b.bool())?)
            .kernel_initializer(c.get("kernel_initializer", initializer_from_json)?)
            .bias_initializer(c.get("bias_initializer", initializer_from_json)?))
    }

    /// The kernel, bias and activation as the fused op takes them.
    fn apply<'t>(
        &self,
        x: Var<'t, T>,
        w: &LayerVars<'_, 't, T>,
        act: OutputActivation,
    ) -> Result<Var<'t, T>> {
        let (kernel, bias) = (w.expect("kernel"), w.get("bias"));
        let shape = x.shape();
        if shape.len() <= 2 {
            return Ok(x.try_dense(kernel, bias, act)?);
        }
        // Rank above 2: the same product on every position of the leading axes.
        let features = shape[shape.len() - 1];
        let rows = x.try_reshape(&[tensor::numel(&shape) / features.max(1), features])?;
        let y = rows.try_dense(kernel, bias, act)?;
        let mut out = shape;
        *out.last_mut().expect("rank above 2") = self.units;
        Ok(y.try_reshape(&out)?)
    }
}

impl<T: Element> Layer<T> for Dense<T> {
    common_layer_methods!("Dense");

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let mut out = input_shape.to_vec();
        match out.last_mut() {
            Some(last) => *last = self.units,
            None => {
                return Err(input_error(
                    "Dense",
                    "at least one axis of features",
                    input_shape,
                ));
            }
        }
        Ok(out)
    }
    fn weight_shapes(&self, input_shape: &[usize]) -> Option<Vec<(&'static str, Vec<usize>)>> {
        let features = *input_shape.last()?;
        features.checked_mul(self.units)?;
        let mut shapes = vec![("kernel", vec![features, self.units])];
        if self.use_bias {
            shapes.push(("bias", vec![self.units]));
        }
        Some(shapes)
    }
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Result<()> {
        self.output_shape(input_shape)?;
        let features = input_shape[input_shape.len() - 1];
        let kernel = self
            .kernel_initializer
            .sample(&[features, self.units], rng)?;
        let mut weights = Weights::default();
        weights.add("kernel", kernel, true);
        if self.use_bias {
            weights.add(
                "bias",
                self.bias_initializer.sample(&[self.units], rng)?,
                true,
            );
        }
        self.weights = weights;
        Ok(())
    }
    fn is_built(&self) -> bool {
        !self.weights.is_empty()
    }
    fn forward<'t>(
        &self,
        x: Var<'t, T>,
        w: &LayerVars<'_, 't, T>,
        _ctx: &mut Context<'_, T>,
    ) -> Result<Var<'t, T>> {
        self.apply(x, w, OutputActivation::Linear)
    }
    fn activation(&self) -> Activation {
        self.activation
    }
    /// One fused op for the activations whose derivative follows from their output.
    fn forward_activated<'t>(
        &self,
        x: Var<'t, T>,
        w: &LayerVars<'_, 't, T>,
        ctx: &mut Context<'_, T>,
    ) -> Result<Var<'t, T>> {
        match self.activation.fused() {
            Some(act) => self.apply(x, w, act),
            None => Ok(self.activation.apply(self.forward(x, w, ctx)?)),
        }
    }
    fn config(&self) -> Map<String, Value> {
        map(json!({
            "units": self.units,
            "activation": activation_to_json(&self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializer_to_json(&self.kernel_initializer),
            "bias_initializer": initializer_to_json(&self.bias_initializer),
        }))
    }
}
