//! The fully connected layer.

use autograd::{OutputActivation, Var};
use tensor::random::StdRng;
use tensor::{Element, Tensor};

use crate::activations::{Activation, IntoActivation};
use crate::error::{Error, Result};
use crate::initializers::{Initializer, IntoInitializer};
use crate::layers::Layer;

/// A densely connected layer: `activation(x @ kernel + bias)`, with a kernel of shape
/// `[input_dim, units]`, as Keras's `Dense`.
///
/// Defaults as Keras: no activation (linear), `use_bias` true, `kernel_initializer`
/// `glorot_uniform`, `bias_initializer` `zeros`. Only the first layer of a model needs
/// `input_dim`; later layers take the previous layer's output size.
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
    input_dim: Option<usize>,
    activation: Activation,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    name: Option<String>,
    error: Option<Error>,
    kernel: Option<Tensor<T>>,
    bias: Option<Tensor<T>>,
}

impl<T: Element> Dense<T> {
    /// A layer of `units` outputs with Keras's defaults.
    pub fn new(units: usize) -> Self {
        let error = (units == 0).then(|| Error::config("Dense", "units must be at least 1, got 0"));
        Dense {
            units,
            input_dim: None,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GLOROT_UNIFORM,
            bias_initializer: Initializer::Zeros,
            name: None,
            error,
            kernel: None,
            bias: None,
        }
    }

    fn record<V>(&mut self, r: Result<V>) -> Option<V> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }

    /// The number of input features (needed on the first layer of a model only).
    pub fn input_dim(mut self, input_dim: usize) -> Self {
        if input_dim == 0 {
            self.error.get_or_insert(Error::config(
                "Dense",
                "input_dim must be at least 1, got 0",
            ));
        }
        self.input_dim = Some(input_dim);
        self
    }

    /// The activation, by Keras name (`"relu"`) or as an [`Activation`].
    pub fn activation(mut self, activation: impl IntoActivation) -> Self {
        if let Some(a) = self.record(activation.into_activation()) {
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
        if let Some(i) = self.record(init.into_initializer()) {
            self.kernel_initializer = i;
        }
        self
    }

    /// The bias's initializer.
    pub fn bias_initializer(mut self, init: impl IntoInitializer) -> Self {
        if let Some(i) = self.record(init.into_initializer()) {
            self.bias_initializer = i;
        }
        self
    }

    /// The layer's name (defaults to `dense`, `dense_1`, ... in the model).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The number of outputs.
    pub fn units(&self) -> usize {
        self.units
    }

    /// The kernel `[input_dim, units]`, once built.
    pub fn kernel(&self) -> Option<&Tensor<T>> {
        self.kernel.as_ref()
    }

    /// The bias `[units]`, once built (never with `use_bias(false)`).
    pub fn bias(&self) -> Option<&Tensor<T>> {
        self.bias.as_ref()
    }
}

impl<T: Element> Layer<T> for Dense<T> {
    fn class_name(&self) -> &'static str {
        "Dense"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn set_name(&mut self, name: String) {
        self.name = Some(name);
    }
    fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }
    fn input_dim(&self) -> Option<usize> {
        self.input_dim
    }
    fn build(&mut self, input_dim: usize, rng: &mut StdRng) -> Result<()> {
        let kernel = self
            .kernel_initializer
            .sample(&[input_dim, self.units], rng)?;
        let bias = if self.use_bias {
            Some(self.bias_initializer.sample(&[self.units], rng)?)
        } else {
            None
        };
        self.kernel = Some(kernel);
        self.bias = bias;
        Ok(())
    }
    fn is_built(&self) -> bool {
        self.kernel.is_some()
    }
    fn output_dim(&self, _input_dim: usize) -> usize {
        self.units
    }
    fn param_count(&self, input_dim: usize) -> Option<usize> {
        input_dim
            .checked_mul(self.units)?
            .checked_add(if self.use_bias { self.units } else { 0 })
    }
    fn params(&self) -> Vec<&Tensor<T>> {
        self.kernel.iter().chain(self.bias.iter()).collect()
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
        self.kernel.iter_mut().chain(self.bias.iter_mut()).collect()
    }
    fn param_names(&self) -> Vec<&'static str> {
        if self.use_bias {
            vec!["kernel", "bias"]
        } else {
            vec!["kernel"]
        }
    }
    fn forward<'t>(&self, x: Var<'t, T>, params: &[Var<'t, T>]) -> Result<Var<'t, T>> {
        Ok(x.try_dense(params[0], params.get(1).copied(), OutputActivation::Linear)?)
    }
    fn activation(&self) -> Activation {
        self.activation
    }
    /// One fused op for the activations whose derivative follows from their output.
    fn forward_activated<'t>(&self, x: Var<'t, T>, params: &[Var<'t, T>]) -> Result<Var<'t, T>> {
        let fused = match self.activation {
            Activation::Linear => Some(OutputActivation::Linear),
            Activation::Relu => Some(OutputActivation::Relu),
            Activation::Sigmoid => Some(OutputActivation::Sigmoid),
            Activation::Tanh => Some(OutputActivation::Tanh),
            _ => None,
        };
        match fused {
            Some(act) => Ok(x.try_dense(params[0], params.get(1).copied(), act)?),
            None => Ok(self.activation.apply(self.forward(x, params)?)),
        }
    }
    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        crate::save::config::dense_config(
            self.units,
            &self.activation,
            self.use_bias,
            &self.kernel_initializer,
            &self.bias_initializer,
        )
    }
}
