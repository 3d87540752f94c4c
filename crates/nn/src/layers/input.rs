//! The model's input declaration.

use autograd::Var;
use serde_json::{Map, Value};
use tensor::Element;
use tensor::random::StdRng;

use crate::error::{Error, Result};
use crate::layers::{Context, Layer, LayerVars, Weights};

/// The shape of one sample, without the batch axis, as Keras's `keras.Input(shape=...)`
/// opening a `Sequential` model: `model.add(Input::new([28, 28, 1]))`. It is not a layer of
/// the model (the summary does not list it, as Keras's does not); it builds the layers
/// after it. Giving the first layer `input_shape` does the same.
///
/// ```
/// use nn::{Dense, Input, Sequential};
/// let mut model = Sequential::with_seed(0);
/// model.add(Input::new([4])).unwrap();
/// model.add(Dense::new(2)).unwrap();
/// assert_eq!(model.input_shape(), Some(&[4][..]));
/// assert_eq!(model.count_params(), 10);
/// ```
pub struct Input<T: Element = f32> {
    shape: Vec<usize>,
    error: Option<Error>,
    weights: Weights<T>,
}

impl<T: Element> Input<T> {
    /// The input of samples of `shape` (`[28, 28, 1]`).
    pub fn new(shape: impl AsRef<[usize]>) -> Self {
        let shape = shape.as_ref().to_vec();
        let error = (shape.is_empty() || shape.contains(&0)).then(|| {
            Error::config(
                "Input",
                format!("shape must have sizes of at least 1, got {shape:?}"),
            )
        });
        Input {
            shape,
            error,
            weights: Weights::default(),
        }
    }
}

/// The class name `Sequential::add` recognises as an input declaration.
pub(crate) const INPUT_CLASS: &str = "InputLayer";

impl<T: Element> Layer<T> for Input<T> {
    fn class_name(&self) -> &'static str {
        INPUT_CLASS
    }
    fn name(&self) -> Option<&str> {
        Some("input_layer")
    }
    fn set_name(&mut self, _name: String) {}
    fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }
    fn input_shape(&self) -> Option<&[usize]> {
        Some(&self.shape)
    }
    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        Ok(input_shape.to_vec())
    }
    fn build(&mut self, _input_shape: &[usize], _rng: &mut StdRng) -> Result<()> {
        Ok(())
    }
    fn is_built(&self) -> bool {
        true
    }
    fn weights(&self) -> &Weights<T> {
        &self.weights
    }
    fn weights_mut(&mut self) -> &mut Weights<T> {
        &mut self.weights
    }
    fn forward<'t>(
        &self,
        x: Var<'t, T>,
        _w: &LayerVars<'_, 't, T>,
        _ctx: &mut Context<'_, T>,
    ) -> Result<Var<'t, T>> {
        Ok(x)
    }
    fn config(&self) -> Map<String, Value> {
        Map::new()
    }
}
