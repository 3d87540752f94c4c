//! Dropout.

use autograd::Var;
use serde_json::{Map, Value, json};
use tensor::Element;
use tensor::random::StdRng;

use crate::config::{ConfigResult, Field, map};
use crate::error::{Error, Result};
use crate::layers::{
    Common, Context, Layer, LayerVars, Weights, common_builders, common_layer_methods,
};

/// Keras's `Dropout(rate)`: in training, each value is zeroed with probability `rate` and
/// the others scaled by `1 / (1 - rate)` (inverted dropout); in inference it passes values
/// through. Masks come from the model's random stream, so a seeded run drops the same
/// values every time, a resumed run the values an uninterrupted one would, and ranks
/// training data-parallel the values one process would.
///
/// ```
/// use nn::Dropout;
/// let d = Dropout::<f32>::new(0.5);
/// ```
///
/// A rate outside `[0, 1)` is an error when the layer is added to a model.
pub struct Dropout<T: Element = f32> {
    rate: f64,
    common: Common,
    weights: Weights<T>,
}

common_builders!(Dropout, "Dropout");

impl<T: Element> Dropout<T> {
    /// Drops values with probability `rate`, in `[0, 1)`.
    pub fn new(rate: f64) -> Self {
        let mut common = Common::default();
        if !(0.0..1.0).contains(&rate) {
            common.error = Some(Error::config(
                "Dropout",
                format!("rate must be in [0, 1), got {rate}"),
            ));
        }
        Dropout {
            rate,
            common,
            weights: Weights::default(),
        }
    }

    /// The rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub(crate) fn from_config(c: Field<'_>) -> ConfigResult<Self> {
        c.only(&["name", "rate"])?;
        let rate = c.get("rate", |r| r.f64())?;
        if !(0.0..1.0).contains(&rate) {
            return Err(format!("{}.rate: must be in [0, 1), got {rate}", c.path()));
        }
        Ok(Dropout::new(rate))
    }
}

impl<T: Element> Layer<T> for Dropout<T> {
    common_layer_methods!("Dropout");

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
        ctx: &mut Context<'_, T>,
    ) -> Result<Var<'t, T>> {
        if !ctx.training() || self.rate == 0.0 {
            return Ok(x);
        }
        // Keyed by each element's place in the global batch (see `Context::first_row`).
        use tensor::random::Rng;
        let shape = x.shape();
        let row = shape.iter().skip(1).product::<usize>();
        let key = ctx.rng().next_u64();
        Ok(x.try_dropout_keyed(self.rate, key, ctx.first_row() * row)?)
    }
    fn config(&self) -> Map<String, Value> {
        map(json!({ "rate": self.rate }))
    }
}
