//! Layers: the [`Layer`] trait a model stacks, [`Dense`] and [`ActivationLayer`].

mod activation;
mod dense;

pub use activation::ActivationLayer;
pub use dense::Dense;

use autograd::Var;
use tensor::random::StdRng;
use tensor::{Element, Tensor};

use crate::activations::Activation;
use crate::error::{Error, Result};

/// One layer of a [`Sequential`](crate::Sequential) model, on inputs of shape
/// `[batch, features]`.
///
/// A layer owns its weights (as tensors); during a training step the model puts them on
/// the tape as parameters and hands the resulting variables to [`forward`](Layer::forward),
/// in the order [`params`](Layer::params) lists them. The layer's activation is applied by
/// the model after `forward`, so that a loss can fuse with it.
pub trait Layer<T: Element>: Send {
    /// Keras's class name (`"Dense"`), used in summaries.
    fn class_name(&self) -> &'static str;

    /// The layer's name, if it has one yet (the model names unnamed layers `dense`,
    /// `dense_1`, ... as Keras does).
    fn name(&self) -> Option<&str>;

    /// Sets the name.
    fn set_name(&mut self, name: String);

    /// A configuration error from building the layer (an unknown activation name, say),
    /// reported when the layer is added to a model.
    fn take_error(&mut self) -> Option<Error> {
        None
    }

    /// The number of input features the user declared (`input_dim`), if any.
    fn input_dim(&self) -> Option<usize> {
        None
    }

    /// Creates the weights for inputs of `input_dim` features, drawing from `rng`.
    fn build(&mut self, input_dim: usize, rng: &mut StdRng) -> Result<()>;

    /// Whether the weights exist.
    fn is_built(&self) -> bool;

    /// The number of output features for `input_dim` input features.
    fn output_dim(&self, input_dim: usize) -> usize;

    /// How many weights [`build`](Layer::build) creates for `input_dim` input features,
    /// without creating them (`None` if the count overflows a `usize`). Loading a model
    /// file compares it with the file's tensors before allocating anything.
    fn param_count(&self, input_dim: usize) -> Option<usize>;

    /// The weights, in Keras's order (`kernel` then `bias`).
    fn params(&self) -> Vec<&Tensor<T>>;

    /// The weights, mutably, in the same order.
    fn params_mut(&mut self) -> Vec<&mut Tensor<T>>;

    /// The weights' names in the same order (`"kernel"`, `"bias"`).
    fn param_names(&self) -> Vec<&'static str>;

    /// The layer's computation before its activation, on the tape; `params` are the
    /// weights as variables, in the order of [`params`](Layer::params).
    fn forward<'t>(&self, x: Var<'t, T>, params: &[Var<'t, T>]) -> Result<Var<'t, T>>;

    /// The activation the model applies after [`forward`](Layer::forward).
    fn activation(&self) -> Activation {
        Activation::Linear
    }

    /// [`forward`](Layer::forward) followed by the activation; layers override it to fuse
    /// the two.
    fn forward_activated<'t>(&self, x: Var<'t, T>, params: &[Var<'t, T>]) -> Result<Var<'t, T>> {
        Ok(self.activation().apply(self.forward(x, params)?))
    }

    /// The layer's settings as saved with the model, with Keras's names (`{"units": 8,
    /// "activation": "relu", ...}`; the layer's `name` is added by the model).
    fn config(&self) -> serde_json::Map<String, serde_json::Value>;

    /// Copies of the weights, in [`params`](Layer::params) order (Keras's `get_weights`).
    fn get_weights(&self) -> Vec<Tensor<T>> {
        self.params().into_iter().cloned().collect()
    }

    /// Replaces the weights, in [`params`](Layer::params) order (Keras's `set_weights`).
    ///
    /// # Errors
    /// If the layer is not built, or the count or a shape differs, or a value is not finite;
    /// nothing is changed then.
    fn set_weights(&mut self, weights: &[Tensor<T>]) -> Result<()> {
        let name = self.name().unwrap_or(self.class_name()).to_string();
        if !self.is_built() {
            return Err(Error::NotReady {
                message: format!("set_weights: layer '{name}' has no weights yet"),
            });
        }
        let expected: Vec<Vec<usize>> = self.params().iter().map(|p| p.shape().to_vec()).collect();
        let got: Vec<Vec<usize>> = weights.iter().map(|w| w.shape().to_vec()).collect();
        if expected != got {
            return Err(Error::data(
                format!("set_weights: layer '{name}'"),
                format!(
                    "expected {} tensors of shapes {expected:?}, got {} of shapes {got:?}",
                    expected.len(),
                    got.len()
                ),
            ));
        }
        if let Some(i) = weights.iter().position(|w| !w.all_finite()) {
            return Err(Error::data(
                format!("set_weights: layer '{name}'"),
                format!("tensor {i} contains NaN or infinity"),
            ));
        }
        for (p, w) in self.params_mut().into_iter().zip(weights) {
            *p = w.to_contiguous();
        }
        Ok(())
    }
}
