//! A layer that only applies an activation.

use autograd::Var;
use serde_json::{Map, Value};
use tensor::Element;
use tensor::random::StdRng;

use crate::activations::{Activation, IntoActivation};
use crate::config::{ConfigResult, Field, activation_from_json, activation_to_json};
use crate::error::Result;
use crate::layers::{
    Common, Context, Layer, LayerVars, Weights, common_builders, common_layer_methods,
};

/// Applies an activation to its input, as Keras's `Activation` layer:
/// `Dense(64)` followed by `ActivationLayer::new("relu")` is `Dense(64, activation="relu")`.
///
/// ```
/// use nn::ActivationLayer;
/// let relu = ActivationLayer::<f32>::new("relu");
/// ```
pub struct ActivationLayer<T: Element = f32> {
    activation: Activation,
    common: Common,
    weights: Weights<T>,
}

common_builders!(ActivationLayer, "Activation");

impl<T: Element> ActivationLayer<T> {
    /// A layer applying `activation` (a Keras name or an [`Activation`]).
    pub fn new(activation: impl IntoActivation) -> Self {
        let mut common = Common::default();
        let activation = common
            .record(activation.into_activation())
            .unwrap_or(Activation::Linear);
        ActivationLayer {
            activation,
            common,
            weights: Weights::default(),
        }
    }

    /// The number of input features, when this is the first layer.
    pub fn input_dim(self, input_dim: usize) -> Self {
        self.input_shape([input_dim])
    }

    pub(crate) fn from_config(c: Field<'_>) -> ConfigResult<Self> {
        c.only(&["name", "activation"])?;
        Ok(ActivationLayer::new(
            c.get("activation", activation_from_json)?,
        ))
    }
}

impl<T: Element> Layer<T> for ActivationLayer<T> {
    common_layer_methods!("Activation");

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        Ok(input_shape.to_vec())
    }
    fn build(&mut self, _input_shape: &[usize], _rng: &mut StdRng) -> Result<()> {
        Ok(())
    }
    fn is_built(&self) -> bool {
        true
    }
    fn forward<'t>(
        &self,
        x: Var<'t, T>,
        _w: &LayerVars<'_, 't, T>,
        _ctx: &mut Context<'_, T>,
    ) -> Result<Var<'t, T>> {
        Ok(x)
    }
    fn activation(&self) -> Activation {
        self.activation
    }
    fn config(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("activation".into(), activation_to_json(&self.activation));
        m
    }
}
