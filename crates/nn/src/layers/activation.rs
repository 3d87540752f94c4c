//! A layer that only applies an activation.

use autograd::Var;
use tensor::random::StdRng;
use tensor::{Element, Tensor};

use crate::activations::{Activation, IntoActivation};
use crate::error::{Error, Result};
use crate::layers::Layer;

/// Applies an activation to its input, as Keras's `Activation` layer:
/// `Dense(64)` followed by `ActivationLayer::new("relu")` is `Dense(64, activation="relu")`.
///
/// ```
/// use nn::ActivationLayer;
/// let relu = ActivationLayer::new("relu");
/// ```
pub struct ActivationLayer {
    activation: Activation,
    name: Option<String>,
    error: Option<Error>,
    input_dim: Option<usize>,
}

impl ActivationLayer {
    /// A layer applying `activation` (a Keras name or an [`Activation`]).
    pub fn new(activation: impl IntoActivation) -> Self {
        let (activation, error) = match activation.into_activation() {
            Ok(a) => (a, None),
            Err(e) => (Activation::Linear, Some(e)),
        };
        ActivationLayer {
            activation,
            name: None,
            error,
            input_dim: None,
        }
    }

    /// The number of input features, when this is the first layer.
    pub fn input_dim(mut self, input_dim: usize) -> Self {
        self.input_dim = Some(input_dim);
        self
    }

    /// The layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl<T: Element> Layer<T> for ActivationLayer {
    fn class_name(&self) -> &'static str {
        "Activation"
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
    fn build(&mut self, _input_dim: usize, _rng: &mut StdRng) -> Result<()> {
        Ok(())
    }
    fn is_built(&self) -> bool {
        true
    }
    fn output_dim(&self, input_dim: usize) -> usize {
        input_dim
    }
    fn param_count(&self, _input_dim: usize) -> Option<usize> {
        Some(0)
    }
    fn params(&self) -> Vec<&Tensor<T>> {
        Vec::new()
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>> {
        Vec::new()
    }
    fn param_names(&self) -> Vec<&'static str> {
        Vec::new()
    }
    fn forward<'t>(&self, x: Var<'t, T>, _params: &[Var<'t, T>]) -> Result<Var<'t, T>> {
        Ok(x)
    }
    fn activation(&self) -> Activation {
        self.activation
    }
    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert(
            "activation".into(),
            crate::save::config::activation_to_json(&self.activation),
        );
        m
    }
}
