//! Layers: the [`Layer`] contract a model stacks, the weights a layer owns ([`Weights`]),
//! what `forward` is told ([`Context`]), the built-in layers, and the registry that
//! rebuilds layers (a user's own included) from a saved config.
//!
//! Shapes follow Keras: a layer is built for its input shape *without* the batch axis
//! (`[28, 28, 1]` for MNIST images), and gives its output shape for an input shape, so a
//! model checks a whole stack before it sees data.

mod activation;
mod conv;
mod dense;
mod dropout;
pub(crate) mod input;
mod normalization;
mod pooling;
pub mod registry;
mod reshape;

pub use activation::ActivationLayer;
pub use conv::Conv2D;
pub use dense::Dense;
pub use dropout::Dropout;
pub use input::Input;
pub use normalization::{BatchNormalization, LayerNormalization};
pub use pooling::{AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D};
pub use registry::{LayerFactory, register_layer};
pub use reshape::{Flatten, Reshape};

use autograd::Var;
use tensor::ops::conv::Window;
use tensor::random::StdRng;
use tensor::{Element, Tensor};

use crate::activations::Activation;
use crate::error::{Error, Result};

/// One named weight of a layer: `kernel`, `bias`, `gamma`, `moving_mean`, ...
#[derive(Clone, Debug)]
pub struct Weight<T: Element> {
    name: &'static str,
    value: Tensor<T>,
    trainable: bool,
}

impl<T: Element> Weight<T> {
    /// The weight's name within its layer (`"kernel"`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The current value.
    pub fn value(&self) -> &Tensor<T> {
        &self.value
    }

    /// The value, to update in place (an optimizer step). Its shape must not change.
    pub fn value_mut(&mut self) -> &mut Tensor<T> {
        &mut self.value
    }

    /// Whether the optimizer trains it (Keras's `trainable_weights`); the others (moving
    /// statistics) are updated by the layer itself, through [`Context::update`].
    pub fn trainable(&self) -> bool {
        self.trainable
    }
}

/// The one list of a layer's weights, in Keras's order (`kernel` then `bias`), each with
/// its name. The model, the optimizer state and the model file address a weight as
/// `{layer}.{name}`, never by its position in a flattened list.
///
/// ```
/// use nn::layers::Weights;
/// use tensor::Tensor;
/// let mut w = Weights::<f32>::default();
/// w.add("kernel", Tensor::zeros(&[3, 2]), true);
/// w.add("moving_mean", Tensor::zeros(&[2]), false);
/// assert_eq!(w.get("kernel").unwrap().shape(), [3, 2]);
/// assert_eq!(w.trainable().map(|w| w.name()).collect::<Vec<_>>(), ["kernel"]);
/// ```
#[derive(Clone, Debug)]
pub struct Weights<T: Element> {
    list: Vec<Weight<T>>,
}

impl<T: Element> Default for Weights<T> {
    fn default() -> Self {
        Weights { list: Vec::new() }
    }
}

impl<T: Element> Weights<T> {
    /// Adds a weight (replacing one of the same name, so that building again is harmless).
    pub fn add(&mut self, name: &'static str, value: Tensor<T>, trainable: bool) {
        let weight = Weight {
            name,
            value: value.to_contiguous(),
            trainable,
        };
        match self.list.iter_mut().find(|w| w.name == name) {
            Some(slot) => *slot = weight,
            None => self.list.push(weight),
        }
    }

    /// The value of the weight called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.list.iter().find(|w| w.name == name).map(|w| &w.value)
    }

    /// Replaces the value of the weight called `name` (a moving statistic after a step).
    ///
    /// # Panics
    /// If the layer has no such weight or the shape differs: the layer contradicts itself.
    pub fn set(&mut self, name: &str, value: Tensor<T>) {
        let w = self
            .list
            .iter_mut()
            .find(|w| w.name == name)
            .unwrap_or_else(|| panic!("the layer has no weight named '{name}'"));
        assert_eq!(
            w.value.shape(),
            value.shape(),
            "weight '{name}' cannot change shape"
        );
        w.value = value.to_contiguous();
    }

    /// All weights, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Weight<T>> {
        self.list.iter()
    }

    /// All weights, mutably (their values; names and roles are fixed).
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Weight<T>> {
        self.list.iter_mut()
    }

    /// The weights the optimizer trains.
    pub fn trainable(&self) -> impl Iterator<Item = &Weight<T>> {
        self.list.iter().filter(|w| w.trainable)
    }

    /// The number of weights.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The number of values in all weights.
    pub fn count(&self) -> usize {
        self.list.iter().map(|w| w.value.len()).sum()
    }
}

/// A layer's weights as variables on the tape, looked up by name in `forward`: trainable
/// ones are parameters (they get gradients), the others constants.
pub struct LayerVars<'a, 't, T: Element> {
    names: Names<'a, T>,
    vars: &'a [Var<'t, T>],
}

/// Where a [`LayerVars`] finds its names: a list, or the layer's own weights.
enum Names<'a, T: Element> {
    List(&'a [&'static str]),
    Weights(&'a Weights<T>),
}

impl<'a, 't, T: Element> LayerVars<'a, 't, T> {
    /// Variables `vars` named `names`, pairwise.
    ///
    /// # Panics
    /// If the two lists differ in length.
    pub fn new(names: &'a [&'static str], vars: &'a [Var<'t, T>]) -> Self {
        assert_eq!(names.len(), vars.len(), "one variable per name");
        LayerVars {
            names: Names::List(names),
            vars,
        }
    }

    /// The variables of `weights`, in their order (what the model hands a layer).
    pub(crate) fn of(weights: &'a Weights<T>, vars: &'a [Var<'t, T>]) -> Self {
        assert_eq!(weights.len(), vars.len(), "one variable per weight");
        LayerVars {
            names: Names::Weights(weights),
            vars,
        }
    }

    /// The variable of weight `name`, if the layer has it (`bias` without `use_bias`).
    pub fn get(&self, name: &str) -> Option<Var<'t, T>> {
        let i = match &self.names {
            Names::List(names) => names.iter().position(|n| *n == name),
            Names::Weights(w) => w.iter().position(|w| w.name == name),
        };
        i.map(|i| self.vars[i])
    }

    /// The variable of weight `name`.
    ///
    /// # Panics
    /// If there is none: the layer asked for a weight it did not create.
    pub fn expect(&self, name: &str) -> Var<'t, T> {
        self.get(name)
            .unwrap_or_else(|| panic!("the layer has no weight named '{name}'"))
    }
}

/// What a layer's `forward` is told besides its input: whether this is training (Dropout
/// drops, BatchNormalization uses and updates batch statistics) and a random stream. The
/// model seeds the stream from its seed and the optimizer's step count, so a run is
/// reproducible and a resumed run draws what an uninterrupted one would.
pub struct Context<'a, T: Element> {
    training: bool,
    rng: &'a mut StdRng,
    first_row: usize,
    updates: Vec<(&'static str, Tensor<T>)>,
}

impl<'a, T: Element> Context<'a, T> {
    /// A context for a forward pass in training (`true`) or inference mode.
    pub fn new(training: bool, rng: &'a mut StdRng) -> Self {
        Context {
            training,
            rng,
            first_row: 0,
            updates: Vec::new(),
        }
    }

    /// The same context for a batch that is rows `first_row..` of the batch the step draws
    /// its noise for: in data-parallel training, a rank's share of the global batch.
    pub fn with_first_row(mut self, first_row: usize) -> Self {
        self.first_row = first_row;
        self
    }

    /// Where this batch starts in the batch the step draws its noise for (0 unless
    /// training data-parallel). A layer drawing noise per row (Dropout) keys it by
    /// `first_row() + row`, so that every rank draws for its rows what one process would
    /// draw for the whole batch; the random stream gives the same draws on every rank.
    pub fn first_row(&self) -> usize {
        self.first_row
    }

    /// Whether this is a training step.
    pub fn training(&self) -> bool {
        self.training
    }

    /// The random stream (Dropout's masks).
    pub fn rng(&mut self) -> &mut StdRng {
        self.rng
    }

    /// Asks for the non-trainable weight `weight` of the running layer to become `value`
    /// after the step (a moving statistic). The model applies it once the optimizer has
    /// stepped, as Keras assigns moving statistics in training.
    pub fn update(&mut self, weight: &'static str, value: Tensor<T>) {
        self.updates.push((weight, value));
    }

    /// The updates asked for since the last call.
    pub fn take_updates(&mut self) -> Vec<(&'static str, Tensor<T>)> {
        std::mem::take(&mut self.updates)
    }
}

/// One layer of a [`Sequential`](crate::Sequential) model.
///
/// A layer is built for an input shape without the batch axis, owns its named
/// [`Weights`], and computes on the tape. During a training step the model puts the weights
/// on the tape (trainable ones as parameters) and hands them to
/// [`forward`](Layer::forward) by name. A layer's activation is applied by the model after
/// `forward`, so that a loss can fuse with it.
///
/// A layer written outside this crate is added to a model like any other; to save and load
/// it, give it a [`config`](Layer::config) and [`register_layer`] its class. The trait's
/// example is such a layer:
///
/// ```
/// use autograd::Var;
/// use nn::layers::{Context, LayerVars, Weights};
/// use nn::{Layer, Result};
/// use tensor::random::StdRng;
/// use tensor::Tensor;
///
/// /// `x * scale`, one trainable scale per feature.
/// struct Scale { name: Option<String>, weights: Weights<f32> }
///
/// impl Layer<f32> for Scale {
///     fn class_name(&self) -> &'static str { "Scale" }
///     fn name(&self) -> Option<&str> { self.name.as_deref() }
///     fn set_name(&mut self, name: String) { self.name = Some(name); }
///     fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> { Ok(input_shape.to_vec()) }
///     fn weight_shapes(&self, input_shape: &[usize]) -> Option<Vec<(&'static str, Vec<usize>)>> {
///         Some(vec![("scale", vec![*input_shape.last()?])])
///     }
///     fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> Result<()> {
///         let features = *input_shape.last().unwrap();
///         self.weights.add("scale", Tensor::ones(&[features]), true);
///         Ok(())
///     }
///     fn is_built(&self) -> bool { !self.weights.is_empty() }
///     fn weights(&self) -> &Weights<f32> { &self.weights }
///     fn weights_mut(&mut self) -> &mut Weights<f32> { &mut self.weights }
///     fn forward<'t>(&self, x: Var<'t, f32>, w: &LayerVars<'_, 't, f32>, _ctx: &mut Context<'_, f32>) -> Result<Var<'t, f32>> {
///         Ok(x.try_mul(w.expect("scale"))?)
///     }
///     fn config(&self) -> serde_json::Map<String, serde_json::Value> { serde_json::Map::new() }
/// }
///
/// let mut model = nn::Sequential::with_seed(0);
/// model.add(nn::Input::new([3])).unwrap();
/// model.add(Scale { name: None, weights: Weights::default() }).unwrap();
/// assert_eq!(model.count_params(), 3);
/// ```
pub trait Layer<T: Element>: Send {
    /// Keras's class name (`"Dense"`), used in summaries and model files.
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

    /// The input shape the user declared (`input_shape`, or `input_dim` as `[n]`), if any;
    /// only the first layer of a model may declare one.
    fn input_shape(&self) -> Option<&[usize]> {
        None
    }

    /// The output shape for an input shape, both without the batch axis (Keras's
    /// `compute_output_shape`).
    ///
    /// # Errors
    /// If the layer cannot take inputs of that shape (the message says what it needs).
    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>>;

    /// The names and shapes of the weights [`build`](Layer::build) creates for
    /// `input_shape`, without creating them (`None` if a size overflows). Loading a model
    /// file compares them with the file's tensors before allocating anything, and the model
    /// checks them against what `build` made (a difference is an error naming the layer).
    /// Layers without weights keep the default, none.
    fn weight_shapes(&self, input_shape: &[usize]) -> Option<Vec<(&'static str, Vec<usize>)>> {
        let _ = input_shape;
        Some(Vec::new())
    }

    /// Creates the weights for inputs of `input_shape`, drawing from `rng`.
    ///
    /// # Errors
    /// If the shape does not suit the layer.
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Result<()>;

    /// Whether the weights exist.
    fn is_built(&self) -> bool;

    /// The layer's weights, trainable and not, in Keras's order.
    fn weights(&self) -> &Weights<T>;

    /// The weights, mutably.
    fn weights_mut(&mut self) -> &mut Weights<T>;

    /// The layer's computation before its activation, on the tape. `weights` holds the
    /// layer's weights as variables, by name; `ctx` says whether this is training.
    ///
    /// # Errors
    /// If the input does not suit the layer.
    fn forward<'t>(
        &self,
        x: Var<'t, T>,
        weights: &LayerVars<'_, 't, T>,
        ctx: &mut Context<'_, T>,
    ) -> Result<Var<'t, T>>;

    /// The activation the model applies after [`forward`](Layer::forward).
    fn activation(&self) -> Activation {
        Activation::Linear
    }

    /// [`forward`](Layer::forward) followed by the activation; layers override it to fuse
    /// the two.
    ///
    /// # Errors
    /// As [`forward`](Layer::forward).
    fn forward_activated<'t>(
        &self,
        x: Var<'t, T>,
        weights: &LayerVars<'_, 't, T>,
        ctx: &mut Context<'_, T>,
    ) -> Result<Var<'t, T>> {
        Ok(self.activation().apply(self.forward(x, weights, ctx)?))
    }

    /// The window of a max pooling layer (`MaxPooling2D`), so that the model can fuse the
    /// pooling into the layer before it (see
    /// [`forward_max_pooled`](Layer::forward_max_pooled)); `None` for other layers.
    fn max_pool_window(&self) -> Option<Window> {
        None
    }

    /// [`forward_activated`](Layer::forward_activated) followed by a max pooling with
    /// `pool`, in one op, where this layer computes the two faster together (`Conv2D`);
    /// `None` where it does not, and the model runs the pooling layer after this one. The
    /// numbers must be those of the two layers apart, up to rounding.
    fn forward_max_pooled<'t>(
        &self,
        _x: Var<'t, T>,
        _weights: &LayerVars<'_, 't, T>,
        _ctx: &mut Context<'_, T>,
        _pool: &Window,
    ) -> Option<Result<Var<'t, T>>> {
        None
    }

    /// The layer's settings as saved with the model, with Keras's names (`{"units": 8,
    /// "activation": "relu", ...}`; the model adds `name`). The layer's registered factory
    /// reads them back.
    fn config(&self) -> serde_json::Map<String, serde_json::Value>;

    /// The number of values in the layer's weights.
    fn count_params(&self) -> usize {
        self.weights().count()
    }

    /// Copies of the weights, in order (Keras's `get_weights`, non-trainable included).
    fn get_weights(&self) -> Vec<Tensor<T>> {
        self.weights().iter().map(|w| w.value().clone()).collect()
    }

    /// Replaces the weights, in [`get_weights`](Layer::get_weights)'s order (Keras's
    /// `set_weights`).
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
        let expected: Vec<(&str, Vec<usize>)> = self
            .weights()
            .iter()
            .map(|w| (w.name(), w.value().shape().to_vec()))
            .collect();
        let got: Vec<Vec<usize>> = weights.iter().map(|w| w.shape().to_vec()).collect();
        if expected.len() != got.len() || expected.iter().zip(&got).any(|((_, e), g)| e != g) {
            return Err(Error::data(
                format!("set_weights: layer '{name}'"),
                format!(
                    "expected {} tensors {}, got {} of shapes {got:?}",
                    expected.len(),
                    describe_shapes(&expected),
                    got.len()
                ),
            ));
        }
        if let Some(i) = weights.iter().position(|w| !w.all_finite()) {
            return Err(Error::data(
                format!("set_weights: layer '{name}'"),
                format!("tensor {i} ({}) contains NaN or infinity", expected[i].0),
            ));
        }
        for (w, value) in self.weights_mut().iter_mut().zip(weights) {
            *w.value_mut() = value.to_contiguous();
        }
        Ok(())
    }
}

/// `kernel [3, 2], bias [2]`.
pub(crate) fn describe_shapes(weights: &[(&str, Vec<usize>)]) -> String {
    let parts: Vec<String> = weights.iter().map(|(n, s)| format!("{n} {s:?}")).collect();
    if parts.is_empty() {
        "(none)".into()
    } else {
        parts.join(", ")
    }
}

/// A 2-D size (kernel, pool, strides, dilation): one number for both axes (`3`) or one per
/// axis (`[3, 3]`), as Keras takes an int or a tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size2(pub [usize; 2]);

impl From<usize> for Size2 {
    fn from(n: usize) -> Self {
        Size2([n, n])
    }
}

impl From<[usize; 2]> for Size2 {
    fn from(n: [usize; 2]) -> Self {
        Size2(n)
    }
}

impl From<(usize, usize)> for Size2 {
    fn from((a, b): (usize, usize)) -> Self {
        Size2([a, b])
    }
}

/// Keras's padding names.
pub const PADDING_NAMES: &[&str] = &["valid", "same"];

/// A padding by its Keras name (`"valid"`, `"same"`, any case).
pub(crate) fn padding_by_name(class: &str, name: &str) -> Result<tensor::ops::conv::Padding> {
    use tensor::ops::conv::Padding;
    match name.to_ascii_lowercase().as_str() {
        "valid" => Ok(Padding::Valid),
        "same" => Ok(Padding::Same),
        _ => Err(Error::config(
            class,
            format!(
                "unknown padding '{name}'; valid names are: {}",
                PADDING_NAMES.join(", ")
            ),
        )),
    }
}

/// The Keras name of a padding.
pub(crate) fn padding_name(p: tensor::ops::conv::Padding) -> &'static str {
    match p {
        tensor::ops::conv::Padding::Valid => "valid",
        tensor::ops::conv::Padding::Same => "same",
    }
}

/// The `[height, width, channels]` of an image layer's input shape.
pub(crate) fn image_shape(class: &str, input_shape: &[usize]) -> Result<[usize; 3]> {
    <[usize; 3]>::try_from(input_shape)
        .map_err(|_| input_error(class, "images (None, height, width, channels)", input_shape))
}

/// Keras's shape text with the batch axis: `(None, 28, 28, 1)`.
pub fn shape_text(shape: &[usize]) -> String {
    let mut s = String::from("(None");
    for d in shape {
        s.push_str(&format!(", {d}"));
    }
    s.push(')');
    s
}

/// The error of a layer given an input of a shape it cannot take.
pub(crate) fn input_error(class: &str, expected: &str, input_shape: &[usize]) -> Error {
    Error::data(
        format!("{class}: input"),
        format!("expected {expected}, got {}", shape_text(input_shape)),
    )
}

/// The name-and-shape state every layer keeps, and the checks of a user's declared input
/// shape: the pieces each built-in layer would otherwise write again.
#[derive(Debug, Default)]
pub(crate) struct Common {
    pub name: Option<String>,
    pub input_shape: Option<Vec<usize>>,
    pub error: Option<Error>,
}

impl Common {
    /// Keeps the first configuration error.
    pub fn record<V>(&mut self, r: Result<V>) -> Option<V> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }

    /// Records a declared input shape (each size at least 1).
    pub fn set_input_shape(&mut self, class: &str, shape: &[usize]) {
        if shape.is_empty() || shape.contains(&0) {
            self.error.get_or_insert(Error::config(
                class,
                format!("input_shape must have sizes of at least 1, got {shape:?}"),
            ));
        }
        self.input_shape = Some(shape.to_vec());
    }
}

/// The methods of [`Layer`] that every built-in layer answers from its [`Common`] and its
/// `weights` field.
macro_rules! common_layer_methods {
    ($class:literal) => {
        fn class_name(&self) -> &'static str {
            $class
        }
        fn name(&self) -> Option<&str> {
            self.common.name.as_deref()
        }
        fn set_name(&mut self, name: String) {
            self.common.name = Some(name);
        }
        fn take_error(&mut self) -> Option<$crate::Error> {
            self.common.error.take()
        }
        fn input_shape(&self) -> Option<&[usize]> {
            self.common.input_shape.as_deref()
        }
        fn weights(&self) -> &$crate::layers::Weights<T> {
            &self.weights
        }
        fn weights_mut(&mut self) -> &mut $crate::layers::Weights<T> {
            &mut self.weights
        }
    };
}
pub(crate) use common_layer_methods;

/// The builder methods every built-in layer shares: `name` and `input_shape`.
macro_rules! common_builders {
    ($ty:ident, $class:literal) => {
        impl<T: Element> $ty<T> {
            /// The layer's name (defaults to its snake-case class name, numbered, in the
            /// model).
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.common.name = Some(name.into());
                self
            }

            /// The shape of one sample without the batch axis (`[28, 28, 1]`), on the first
            /// layer of a model (or use [`Input`](crate::Input)).
            pub fn input_shape(mut self, shape: impl AsRef<[usize]>) -> Self {
                self.common.set_input_shape($class, shape.as_ref());
                self
            }
        }
    };
}
pub(crate) use common_builders;
