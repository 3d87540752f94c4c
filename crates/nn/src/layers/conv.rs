//! The 2-D convolution layer.

use autograd::{OutputActivation, Var};
use serde_json::{Map, Value, json};
use tensor::Element;
use tensor::ops::conv::{Conv2dOptions, Padding, Window};
use tensor::random::StdRng;

use crate::activations::{Activation, IntoActivation};
use crate::config::{
    ConfigResult, Field, activation_from_json, activation_to_json, initializer_from_json,
    initializer_to_json, map,
};
use crate::error::{Error, Result};
use crate::initializers::{Initializer, IntoInitializer};
use crate::layers::{
    Common, Context, Layer, LayerVars, PADDING_NAMES, Size2, Weights, common_builders,
    common_layer_methods, image_shape, padding_by_name, padding_name,
};

/// Keras's `Conv2D`: `activation(conv(x, kernel) + bias)` on channels-last images
/// `(None, height, width, channels)`, with a kernel of shape
/// `[kernel_h, kernel_w, channels, filters]` (Keras's layout).
///
/// Defaults as Keras: strides 1, `valid` padding, dilation 1, no activation, `use_bias`
/// true, `kernel_initializer` `glorot_uniform` (fans counted over the kernel's window),
/// `bias_initializer` `zeros`.
///
/// Keras's `Conv2D(32, kernel_size=(3, 3), activation="relu")`:
///
/// ```
/// use nn::{Conv2D, Layer};
/// let conv = Conv2D::<f32>::new(32, 3).activation("relu");
/// assert_eq!(conv.output_shape(&[28, 28, 1]).unwrap(), [26, 26, 32]);
/// let strided = Conv2D::<f32>::new(8, [3, 3]).strides(2).padding("same");
/// assert_eq!(strided.output_shape(&[28, 28, 1]).unwrap(), [14, 14, 8]);
/// ```
pub struct Conv2D<T: Element = f32> {
    filters: usize,
    kernel_size: [usize; 2],
    options: Conv2dOptions,
    activation: Activation,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    common: Common,
    weights: Weights<T>,
}

common_builders!(Conv2D, "Conv2D");

impl<T: Element> Conv2D<T> {
    /// `filters` output channels from windows of `kernel_size` (`3` or `[3, 3]`).
    pub fn new(filters: usize, kernel_size: impl Into<Size2>) -> Self {
        let kernel_size = kernel_size.into().0;
        let mut common = Common::default();
        if filters == 0 || kernel_size.contains(&0) {
            common.error = Some(Error::config(
                "Conv2D",
                format!(
                    "filters and kernel_size must be at least 1, got filters {filters} and kernel_size {kernel_size:?}"
                ),
            ));
        }
        Conv2D {
            filters,
            kernel_size,
            options: Conv2dOptions::default(),
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GLOROT_UNIFORM,
            bias_initializer: Initializer::Zeros,
            common,
            weights: Weights::default(),
        }
    }

    /// The step between windows.
    pub fn strides(mut self, strides: impl Into<Size2>) -> Self {
        self.options.strides = strides.into().0;
        self.check_steps();
        self
    }

    /// `"valid"` (windows inside the image) or `"same"` (zeros around it, so the output has
    /// `ceil(size / stride)` positions; TensorFlow's placement).
    pub fn padding(mut self, padding: &str) -> Self {
        if let Some(p) = self.common.record(padding_by_name("Conv2D", padding)) {
            self.options.padding = p;
        }
        self
    }

    /// The spacing of the kernel's taps (`dilation_rate`).
    pub fn dilation_rate(mut self, dilation: impl Into<Size2>) -> Self {
        self.options.dilation = dilation.into().0;
        self.check_steps();
        self
    }

    fn check_steps(&mut self) {
        let o = self.options;
        if o.strides.contains(&0) || o.dilation.contains(&0) {
            self.common.error.get_or_insert(Error::config(
                "Conv2D",
                format!(
                    "strides and dilation_rate must be at least 1, got {:?} and {:?}",
                    o.strides, o.dilation
                ),
            ));
        }
    }

    /// The activation, by Keras name (`"relu"`) or as an [`Activation`].
    pub fn activation(mut self, activation: impl IntoActivation) -> Self {
        if let Some(a) = self.common.record(activation.into_activation()) {
            self.activation = a;
        }
        self
    }

    /// Whether to add a bias per filter.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// The kernel's initializer.
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

    /// The padding.
    pub fn padding_mode(&self) -> Padding {
        self.options.padding
    }

    pub(crate) fn from_config(c: Field<'_>) -> ConfigResult<Self> {
        c.only(&[
            "name",
            "filters",
            "kernel_size",
            "strides",
            "padding",
            "dilation_rate",
            "activation",
            "use_bias",
            "kernel_initializer",
            "bias_initializer",
        ])?;
        Ok(Conv2D::new(
            c.get("filters", |f| f.count(1))?,
            c.get("kernel_size", |k| k.pair(1))?,
        )
        .strides(c.get("strides", |s| s.pair(1))?)
        .padding(c.get("padding", |p| p.one_of(PADDING_NAMES))?)
        .dilation_rate(c.get("dilation_rate", |d| d.pair(1))?)
        .activation(c.get("activation", activation_from_json)?)
        .use_bias(c.get("use_bias", |b| b.bool())?)
        .kernel_initializer(c.get("kernel_initializer", initializer_from_json)?)
        .bias_initializer(c.get("bias_initializer", initializer_from_json)?))
    }
}

impl<T: Element> Layer<T> for Conv2D<T> {
    common_layer_methods!("Conv2D");

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let [h, w, _] = image_shape("Conv2D", input_shape)?;
        let placed = self
            .options
            .window(self.kernel_size)
            .place([h, w], "Conv2D")?;
        Ok(vec![placed.out[0], placed.out[1], self.filters])
    }
    fn weight_shapes(&self, input_shape: &[usize]) -> Option<Vec<(&'static str, Vec<usize>)>> {
        let c = *input_shape.last()?;
        let [kh, kw] = self.kernel_size;
        kh.checked_mul(kw)?
            .checked_mul(c)?
            .checked_mul(self.filters)?;
        let mut shapes = vec![("kernel", vec![kh, kw, c, self.filters])];
        if self.use_bias {
            shapes.push(("bias", vec![self.filters]));
        }
        Some(shapes)
    }
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Result<()> {
        self.output_shape(input_shape)?;
        let [kh, kw] = self.kernel_size;
        let c = input_shape[2];
        let mut weights = Weights::default();
        let kernel = self
            .kernel_initializer
            .sample(&[kh, kw, c, self.filters], rng)?;
        weights.add("kernel", kernel, true);
        if self.use_bias {
            weights.add(
                "bias",
                self.bias_initializer.sample(&[self.filters], rng)?,
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
        Ok(x.try_conv2d_activated(
            w.expect("kernel"),
            w.get("bias"),
            OutputActivation::Linear,
            &self.options,
        )?)
    }
    fn activation(&self) -> Activation {
        self.activation
    }
    /// One fused op (convolution, bias, activation) for the activations whose derivative
    /// follows from their output.
    fn forward_activated<'t>(
        &self,
        x: Var<'t, T>,
        w: &LayerVars<'_, 't, T>,
        ctx: &mut Context<'_, T>,
    ) -> Result<Var<'t, T>> {
        match self.activation.fused() {
            Some(act) => {
                Ok(x.try_conv2d_activated(w.expect("kernel"), w.get("bias"), act, &self.options)?)
            }
            None => Ok(self.activation.apply(self.forward(x, w, ctx)?)),
        }
    }
    /// The convolution, its activation and the max pooling after it in one op, so that the
    /// convolution's output is never stored, and its gradient goes from each window's
    /// winner alone (see [`Var::conv2d_max_pool2d`]).
    fn forward_max_pooled<'t>(
        &self,
        x: Var<'t, T>,
        w: &LayerVars<'_, 't, T>,
        _ctx: &mut Context<'_, T>,
        pool: &Window,
    ) -> Option<Result<Var<'t, T>>> {
        let act = self.activation.fused()?;
        let kernel = w.expect("kernel");
        let y = x.try_conv2d_max_pool2d(kernel, w.get("bias"), act, &self.options, pool);
        Some(y.map_err(Error::from))
    }
    fn config(&self) -> Map<String, Value> {
        map(json!({
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.options.strides,
            "padding": padding_name(self.options.padding),
            "dilation_rate": self.options.dilation,
            "activation": activation_to_json(&self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializer_to_json(&self.kernel_initializer),
            "bias_initializer": initializer_to_json(&self.bias_initializer),
        }))
    }
}
