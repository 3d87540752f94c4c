//! Pooling layers over channels-last images: `MaxPooling2D`, `AveragePooling2D`,
//! `GlobalAveragePooling2D`.

use autograd::Var;
use serde_json::{Map, Value, json};
use tensor::Element;
use tensor::ops::conv::{Padding, Window};
use tensor::random::StdRng;

use crate::config::{ConfigResult, Field, map};
use crate::error::Result;
use crate::layers::{
    Common, Context, Layer, LayerVars, PADDING_NAMES, Size2, Weights, common_builders,
    common_layer_methods, image_shape, padding_by_name, padding_name,
};

/// What the two windowed poolings share: pool size, strides (the pool size unless given)
/// and padding.
#[derive(Clone, Copy, Debug)]
struct Pool {
    pool_size: [usize; 2],
    strides: Option<[usize; 2]>,
    padding: Padding,
}

impl Pool {
    fn window(&self) -> Window {
        Window {
            size: self.pool_size,
            strides: self.strides.unwrap_or(self.pool_size),
            dilation: [1, 1],
            padding: self.padding,
        }
    }

    fn output_shape(&self, class: &'static str, input_shape: &[usize]) -> Result<Vec<usize>> {
        let [h, w, c] = image_shape(class, input_shape)?;
        let placed = self.window().place([h, w], class)?;
        Ok(vec![placed.out[0], placed.out[1], c])
    }

    fn config(&self) -> Map<String, Value> {
        map(json!({
            "pool_size": self.pool_size,
            "strides": self.strides.unwrap_or(self.pool_size),
            "padding": padding_name(self.padding),
        }))
    }

    fn from_config(c: Field<'_>) -> ConfigResult<([usize; 2], [usize; 2], &'static str)> {
        c.only(&["name", "pool_size", "strides", "padding"])?;
        let size = c.get("pool_size", |p| p.pair(1))?;
        let strides = c.get("strides", |p| p.pair(1))?;
        let padding = c.get("padding", |p| p.one_of(PADDING_NAMES))?;
        Ok((size, strides, padding))
    }
}

macro_rules! windowed_pooling {
    ($ty:ident, $class:literal, $doc:literal, $op:ident, $fusable:literal) => {
        #[doc = $doc]
        pub struct $ty<T: Element = f32> {
            pool: Pool,
            common: Common,
            weights: Weights<T>,
        }

        common_builders!($ty, $class);

        impl<T: Element> $ty<T> {
            /// Pools windows of `pool_size` (`2` or `[2, 2]`), moved by the pool size, with
            /// `valid` padding: Keras's defaults.
            pub fn new(pool_size: impl Into<Size2>) -> Self {
                $ty {
                    pool: Pool {
                        pool_size: pool_size.into().0,
                        strides: None,
                        padding: Padding::Valid,
                    },
                    common: Common::default(),
                    weights: Weights::default(),
                }
            }

            /// The step between windows (defaults to the pool size).
            pub fn strides(mut self, strides: impl Into<Size2>) -> Self {
                self.pool.strides = Some(strides.into().0);
                self
            }

            /// `"valid"` (windows inside the image) or `"same"` (padded so the output has
            /// `ceil(size / stride)` positions).
            pub fn padding(mut self, padding: &str) -> Self {
                if let Some(p) = self.common.record(padding_by_name($class, padding)) {
                    self.pool.padding = p;
                }
                self
            }

            pub(crate) fn from_config(c: Field<'_>) -> ConfigResult<Self> {
                let (size, strides, padding) = Pool::from_config(c)?;
                Ok(Self::new(size).strides(strides).padding(padding))
            }
        }

        impl<T: Element> Layer<T> for $ty<T> {
            common_layer_methods!($class);

            fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
                self.pool.output_shape($class, input_shape)
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
                let p = self.pool;
                Ok(x.$op(p.pool_size, p.strides, p.padding)?)
            }
            fn config(&self) -> Map<String, Value> {
                self.pool.config()
            }
            fn max_pool_window(&self) -> Option<Window> {
                $fusable.then(|| self.pool.window())
            }
        }
    };
}

windowed_pooling!(
    MaxPooling2D,
    "MaxPooling2D",
    "Keras's `MaxPooling2D`: the largest value of each window, per channel, on channels-last \
     images `(None, height, width, channels)`. With `same` padding the padding never wins.\n\n\
     ```\nuse nn::{Layer, MaxPooling2D};\nlet pool = MaxPooling2D::<f32>::new(2);\n\
     assert_eq!(pool.output_shape(&[26, 26, 32]).unwrap(), [13, 13, 32]);\n```",
    try_max_pool2d,
    true
);

windowed_pooling!(
    AveragePooling2D,
    "AveragePooling2D",
    "Keras's `AveragePooling2D`: the mean of each window, per channel; with `same` padding, \
     the mean of the values inside the image, as TensorFlow averages.\n\n\
     ```\nuse nn::{AveragePooling2D, Layer};\n\
     let pool = AveragePooling2D::<f32>::new(3).strides(2).padding(\"same\");\n\
     assert_eq!(pool.output_shape(&[5, 5, 4]).unwrap(), [3, 3, 4]);\n```",
    try_avg_pool2d,
    false
);

/// Keras's `GlobalAveragePooling2D`: the mean over height and width, `(None, h, w, c)` to
/// `(None, c)`.
///
/// ```
/// use nn::{GlobalAveragePooling2D, Layer};
/// assert_eq!(GlobalAveragePooling2D::<f32>::new().output_shape(&[7, 7, 64]).unwrap(), [64]);
/// ```
pub struct GlobalAveragePooling2D<T: Element = f32> {
    common: Common,
    weights: Weights<T>,
}

common_builders!(GlobalAveragePooling2D, "GlobalAveragePooling2D");

impl<T: Element> Default for GlobalAveragePooling2D<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> GlobalAveragePooling2D<T> {
    /// The layer.
    pub fn new() -> Self {
        GlobalAveragePooling2D {
            common: Common::default(),
            weights: Weights::default(),
        }
    }

    pub(crate) fn from_config(c: Field<'_>) -> ConfigResult<Self> {
        c.only(&["name"])?;
        Ok(Self::new())
    }
}

impl<T: Element> Layer<T> for GlobalAveragePooling2D<T> {
    common_layer_methods!("GlobalAveragePooling2D");

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let [_, _, c] = image_shape("GlobalAveragePooling2D", input_shape)?;
        Ok(vec![c])
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
        Ok(x.try_global_avg_pool2d()?)
    }
    fn config(&self) -> Map<String, Value> {
        Map::new()
    }
}
