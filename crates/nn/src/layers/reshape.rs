//! Layers that change only the shape: `Flatten` and `Reshape`.

use autograd::Var;
use serde_json::{Map, Value, json};
use tensor::Element;
use tensor::random::StdRng;

use crate::config::{ConfigResult, Field, map};
use crate::error::{Error, Result};
use crate::layers::{
    Common, Context, Layer, LayerVars, Weights, common_builders, common_layer_methods, input_error,
};

/// Flattens each sample to one axis, as Keras's `Flatten`: `(None, 5, 5, 64)` to
/// `(None, 1600)`, in row-major (channels-last) order.
///
/// ```
/// use nn::{Flatten, Layer};
/// assert_eq!(Layer::<f32>::output_shape(&Flatten::<f32>::new(), &[5, 5, 64]).unwrap(), [1600]);
/// ```
pub struct Flatten<T: Element = f32> {
    common: Common,
    weights: Weights<T>,
}

common_builders!(Flatten, "Flatten");

impl<T: Element> Default for Flatten<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> Flatten<T> {
    /// The layer.
    pub fn new() -> Self {
        Flatten {
            common: Common::default(),
            weights: Weights::default(),
        }
    }

    pub(crate) fn from_config(c: Field<'_>) -> ConfigResult<Self> {
        c.only(&["name"])?;
        Ok(Flatten::new())
    }
}

impl<T: Element> Layer<T> for Flatten<T> {
    common_layer_methods!("Flatten");

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        Ok(vec![input_shape.iter().product()])
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
        let shape = x.shape();
        let batch = shape.first().copied().unwrap_or(1);
        Ok(x.try_reshape(&[batch, shape.iter().skip(1).product()])?)
    }
    fn config(&self) -> Map<String, Value> {
        Map::new()
    }
}

/// Reshapes each sample to `target_shape`, as Keras's `Reshape`; one size may be `-1`
/// (given here as `None`), to take what is left.
///
/// ```
/// use nn::{Layer, Reshape};
/// let r = Reshape::<f32>::new([Some(28), Some(28), None]);
/// assert_eq!(r.output_shape(&[784]).unwrap(), [28, 28, 1]);
/// assert!(r.output_shape(&[785]).is_err());
/// ```
pub struct Reshape<T: Element = f32> {
    target_shape: Vec<Option<usize>>,
    common: Common,
    weights: Weights<T>,
}

common_builders!(Reshape, "Reshape");

impl<T: Element> Reshape<T> {
    /// The layer reshaping to `target_shape` (at most one `None`, for Keras's `-1`).
    pub fn new(target_shape: impl AsRef<[Option<usize>]>) -> Self {
        let target_shape = target_shape.as_ref().to_vec();
        let mut common = Common::default();
        let unknown = target_shape.iter().filter(|d| d.is_none()).count();
        if target_shape.is_empty() || unknown > 1 || target_shape.contains(&Some(0)) {
            common.error = Some(Error::config(
                "Reshape",
                format!(
                    "target_shape needs sizes of at least 1 and at most one unknown (-1), got {}",
                    describe(&target_shape)
                ),
            ));
        }
        Reshape {
            target_shape,
            common,
            weights: Weights::default(),
        }
    }

    pub(crate) fn from_config(c: Field<'_>) -> ConfigResult<Self> {
        c.only(&["name", "target_shape"])?;
        let target = c.get("target_shape", |t| {
            t.items(|d| match d.value.as_i64() {
                Some(-1) => Ok(None),
                _ => d.count(1).map(Some),
            })
        })?;
        let layer = Reshape::new(target);
        match &layer.common.error {
            Some(e) => Err(format!("{}: {e}", c.path())),
            None => Ok(layer),
        }
    }
}

fn describe(target: &[Option<usize>]) -> String {
    let parts: Vec<String> = target
        .iter()
        .map(|d| d.map_or("-1".to_string(), |d| d.to_string()))
        .collect();
    format!("({})", parts.join(", "))
}

impl<T: Element> Layer<T> for Reshape<T> {
    common_layer_methods!("Reshape");

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let total: usize = input_shape.iter().product();
        let known: usize = self.target_shape.iter().flatten().product();
        let fits = if self.target_shape.contains(&None) {
            known > 0 && total.is_multiple_of(known)
        } else {
            known == total
        };
        if !fits {
            return Err(input_error(
                "Reshape",
                &format!(
                    "a shape whose {total} values per sample can be reshaped to {}",
                    describe(&self.target_shape)
                ),
                input_shape,
            ));
        }
        Ok(self
            .target_shape
            .iter()
            .map(|d| d.unwrap_or(total / known.max(1)))
            .collect())
    }
    fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> Result<()> {
        self.output_shape(input_shape).map(|_| ())
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
        let shape = x.shape();
        let mut out = vec![shape.first().copied().unwrap_or(1)];
        out.extend(self.output_shape(&shape[1..])?);
        Ok(x.try_reshape(&out)?)
    }
    fn config(&self) -> Map<String, Value> {
        let target: Vec<i64> = self
            .target_shape
            .iter()
            .map(|d| d.map_or(-1, |d| d as i64))
            .collect();
        map(json!({ "target_shape": target }))
    }
}
