//! The Keras-style [`Sequential`] model: stack layers, `compile`, `fit`, `evaluate`,
//! `predict`.

mod callback;
mod fit;
pub(crate) mod logs;
mod parallel;
mod plot;
mod progress;
mod summary;

pub use callback::{CONTINUE, Callback, Flow, STOP};
pub use fit::FitOptions;
pub use logs::{History, Logs, format_metric};

use autograd::{Tape, Var};
use optim::{IntoOptimizer, Optimizer};
use tensor::random::{StdRng, seeded};
use tensor::{Element, Tensor};

use crate::activations::Activation;
use crate::error::{Error, Result};
use crate::layers::{Context, Layer, LayerVars, describe_shapes, shape_text};
use crate::losses::{IntoLoss, Loss};
use crate::metrics::{IntoMetrics, Metric};

/// No metrics, for [`Sequential::compile`].
pub const NO_METRICS: [&str; 0] = [];

/// The batch size of [`predict`](Sequential::predict) and
/// [`evaluate`](Sequential::evaluate) when none is given, as Keras's (32).
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// What `compile` set.
pub(crate) struct Compiled<T: Element> {
    pub optimizer: Box<dyn Optimizer<T>>,
    pub loss: Loss,
    pub metrics: Vec<Metric>,
}

/// A linear stack of layers, trained as Keras trains it.
///
/// ```
/// use nn::{Dense, FitOptions, Sequential};
/// use tensor::Tensor;
///
/// // XOR
/// let x = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2]).unwrap();
/// let y = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0], &[4, 1]).unwrap();
/// let mut model = Sequential::with_seed(1);
/// model.add(Dense::new(8).input_dim(2).activation("tanh")).unwrap();
/// model.add(Dense::new(1).activation("sigmoid")).unwrap();
/// model.compile(optim::SGD::new(0.5), "binary_crossentropy", ["accuracy"]).unwrap();
/// let history = model
///     .fit(&x, &y, FitOptions { epochs: 1000, batch_size: 4, verbose: 0, ..Default::default() })
///     .unwrap();
/// assert_eq!(history.last("accuracy"), Some(1.0));
/// ```
pub struct Sequential<T: Element = f32> {
    name: String,
    layers: Vec<Box<dyn Layer<T>>>,
    /// The shape of one sample (without the batch axis), once known.
    input_shape: Option<Vec<usize>>,
    seed: u64,
    rng: StdRng,
    compiled: Option<Compiled<T>>,
    /// Reused by every training step (reset after each).
    tape: Tape<T>,
    /// Epochs `fit` has finished (saved with the model, for resuming).
    completed_epochs: usize,
    /// The ranks training together, if [`distribute`](Sequential::distribute)d.
    communicator: Option<std::sync::Arc<dyn crate::distributed::Communicator>>,
    /// Reused by every step's gradient sum over the ranks.
    reduce_buf: crate::distributed::Flat<T>,
}

impl<T: Element> std::fmt::Debug for Sequential<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let layers: Vec<String> = self
            .layers
            .iter()
            .map(|l| format!("{} ({})", l.name().unwrap_or("?"), l.class_name()))
            .collect();
        f.debug_struct("Sequential")
            .field("name", &self.name)
            .field("layers", &layers)
            .field("input_shape", &self.input_shape)
            .field("params", &self.count_params())
            .field("loss", &self.loss())
            .finish()
    }
}

impl<T: Element> Default for Sequential<T> {
    /// An empty model with a random seed.
    fn default() -> Self {
        Self::empty(rand::random())
    }
}

impl Sequential<f32> {
    /// An empty `f32` model whose weights and shuffles come from a random seed (like Keras
    /// without `set_random_seed`); see [`with_seed`](Sequential::with_seed). For another
    /// element type use `Sequential::<f64>::default()`.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty `f32` model whose initial weights and per-epoch shuffles are determined by
    /// `seed`. For another element type: `Sequential::<f64>::default()` and
    /// [`set_seed`](Sequential::set_seed).
    pub fn with_seed(seed: u64) -> Self {
        let mut m = Self::default();
        m.set_seed(seed);
        m
    }
}

impl<T: Element> Sequential<T> {
    fn empty(seed: u64) -> Self {
        Sequential {
            name: "sequential".to_string(),
            layers: Vec::new(),
            input_shape: None,
            seed,
            rng: seeded(seed),
            compiled: None,
            tape: Tape::new(),
            completed_epochs: 0,
            communicator: None,
            reduce_buf: Default::default(),
        }
    }

    /// Sets the seed that the weights drawn from now on, and the per-epoch shuffles, derive
    /// from.
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
        self.rng = seeded(seed);
    }

    /// Sets the model's name (shown by `summary`).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The seed weights and shuffles derive from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How many epochs [`fit`](Sequential::fit) has finished on this model (counting from a
    /// loaded checkpoint's): the `initial_epoch` to resume from.
    pub fn completed_epochs(&self) -> usize {
        self.completed_epochs
    }

    pub(crate) fn set_completed_epochs(&mut self, epochs: usize) {
        self.completed_epochs = epochs;
    }

    /// Appends a layer. If the input shape is known (from [`Input`](crate::Input) or the
    /// first layer's `input_shape`), the layer is built now and its input checked, so that
    /// `summary` works and a misfit is reported before any data is seen.
    ///
    /// # Errors
    /// The layer's configuration error (an unknown activation name, ...), an input shape
    /// on a layer that is not the first, or an input shape the layer cannot take (naming
    /// the layer and the shape). The model is unchanged then.
    pub fn add(&mut self, layer: impl Layer<T> + 'static) -> Result<&mut Self> {
        self.add_boxed(Box::new(layer))
    }

    /// [`add`](Sequential::add) for a boxed layer.
    pub fn add_boxed(&mut self, mut layer: Box<dyn Layer<T>>) -> Result<&mut Self> {
        if let Some(e) = layer.take_error() {
            return Err(e);
        }
        let declared = layer.input_shape().map(<[usize]>::to_vec);
        if layer.class_name() == crate::layers::input::INPUT_CLASS {
            if !self.layers.is_empty() || self.input_shape.is_some() {
                return Err(Error::config(
                    "add",
                    "Input must come first, and only once: it declares the shape of the model's samples",
                ));
            }
            self.input_shape = declared;
            return Ok(self);
        }
        if let Some(d) = &declared
            && (!self.layers.is_empty() || self.input_shape.is_some())
        {
            return Err(Error::config(
                "add",
                format!(
                    "input_shape {d:?} can only be given to the first layer (or with Input); later layers take the previous layer's output shape"
                ),
            ));
        }
        if layer.name().is_none() {
            let base = snake_case(layer.class_name());
            let taken = self
                .layers
                .iter()
                .filter(|l| l.class_name() == layer.class_name())
                .count();
            layer.set_name(if taken == 0 {
                base
            } else {
                format!("{base}_{taken}")
            });
        }
        let name = layer.name().unwrap_or_default().to_string();
        if self.layers.iter().any(|l| l.name() == Some(name.as_str())) {
            return Err(Error::config(
                "add",
                format!("a layer named '{name}' is already in the model"),
            ));
        }
        let input_shape = if self.layers.is_empty() {
            self.input_shape.clone().or(declared.clone())
        } else {
            self.output_shape()
        };
        if let Some(shape) = &input_shape {
            build_layer(layer.as_mut(), shape, &mut self.rng)?;
        }
        if self.layers.is_empty() && self.input_shape.is_none() {
            self.input_shape = declared;
        }
        self.layers.push(layer);
        Ok(self)
    }

    /// Creates all weights for samples of `input_shape` (without the batch axis: `[4]` for
    /// 4 features, `[28, 28, 1]` for MNIST images), what the first `fit` does when the
    /// model has no [`Input`](crate::Input). Keras's `build((None, ...))`.
    ///
    /// # Errors
    /// If the model is already built for another shape, has no layers, or a layer cannot
    /// take the shape it would get.
    pub fn build(&mut self, input_shape: &[usize]) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::NotReady {
                message: "build: the model has no layers; add some first".into(),
            });
        }
        if input_shape.is_empty() || input_shape.contains(&0) {
            return Err(Error::config(
                "build",
                format!("input_shape must have sizes of at least 1, got {input_shape:?}"),
            ));
        }
        match &self.input_shape {
            Some(d) if d == input_shape && self.is_built() => return Ok(()),
            Some(d) if self.is_built() => {
                return Err(Error::data(
                    "build",
                    format!(
                        "the model is built for inputs {}, got {}",
                        shape_text(d),
                        shape_text(input_shape)
                    ),
                ));
            }
            _ => {}
        }
        // Check the whole stack before creating anything.
        let mut shape = input_shape.to_vec();
        for layer in &self.layers {
            shape = layer
                .output_shape(&shape)
                .map_err(|e| layer_error(layer.as_ref(), e))?;
        }
        let mut shape = input_shape.to_vec();
        for layer in &mut self.layers {
            build_layer(layer.as_mut(), &shape, &mut self.rng)?;
            shape = layer.output_shape(&shape).expect("checked above");
        }
        self.input_shape = Some(input_shape.to_vec());
        Ok(())
    }

    /// Whether all weights exist.
    pub fn is_built(&self) -> bool {
        !self.layers.is_empty()
            && self.input_shape.is_some()
            && self.layers.iter().all(|l| l.is_built())
    }

    /// The shape of one input sample, without the batch axis, once known.
    pub fn input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    /// The shape of one output, without the batch axis, once the input shape is known.
    pub fn output_shape(&self) -> Option<Vec<usize>> {
        self.input_shape
            .as_deref()
            .and_then(|s| self.output_shape_for(s).ok())
    }

    /// The output shape for samples of `input_shape`.
    fn output_shape_for(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let mut shape = input_shape.to_vec();
        for layer in &self.layers {
            shape = layer
                .output_shape(&shape)
                .map_err(|e| layer_error(layer.as_ref(), e))?;
        }
        Ok(shape)
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Layer<T>>] {
        &self.layers
    }

    /// The layers, mutably (to set one layer's weights with [`Layer::set_weights`]).
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer<T>>] {
        &mut self.layers
    }

    /// The layer named `name`.
    pub fn layer(&self, name: &str) -> Option<&dyn Layer<T>> {
        self.layers
            .iter()
            .find(|l| l.name() == Some(name))
            .map(|l| l.as_ref())
    }

    /// The total number of weights, trainable and not (Keras's `count_params`).
    pub fn count_params(&self) -> usize {
        self.layers.iter().map(|l| l.count_params()).sum()
    }

    /// The number of trainable weights.
    pub fn count_trainable_params(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|l| l.weights().trainable())
            .map(|w| w.value().len())
            .sum()
    }

    /// Sets the optimizer, loss and metrics for training.
    ///
    /// `optimizer` is a Keras name (`"rmsprop"`) or an optimizer (`optim::Adam::new(0.01)`);
    /// `loss` a name (`"categorical_crossentropy"`) or a [`Loss`]; `metrics` an array of
    /// names (`["accuracy"]`, or `[]` for none) or a `Vec` of names or [`Metric`]s.
    ///
    /// ```
    /// use nn::{Dense, Sequential};
    /// let mut model = Sequential::<f32>::new();
    /// model.add(Dense::new(1).input_dim(2)).unwrap();
    /// model.compile("sgd", "mse", []).unwrap();
    /// model.compile("adam", "binary_crossentropy", ["accuracy"]).unwrap();
    /// ```
    ///
    /// # Errors
    /// Unknown names (listing the valid ones) and invalid optimizer hyperparameters.
    pub fn compile(
        &mut self,
        optimizer: impl IntoOptimizer<T>,
        loss: impl IntoLoss,
        metrics: impl IntoMetrics,
    ) -> Result<()> {
        let optimizer = optimizer.into_optimizer()?;
        optimizer.validate()?;
        let loss = loss.into_loss()?;
        loss.check_custom::<T>()?;
        let metrics = metrics.into_metrics()?;
        for m in &metrics {
            m.check_custom::<T>()?;
        }
        self.compiled = Some(Compiled {
            optimizer,
            loss,
            metrics,
        });
        Ok(())
    }

    /// Whether `compile` has been called.
    pub fn is_compiled(&self) -> bool {
        self.compiled.is_some()
    }

    /// The compiled loss.
    pub fn loss(&self) -> Option<Loss> {
        self.compiled.as_ref().map(|c| c.loss.clone())
    }

    /// The compiled metrics.
    pub fn metrics(&self) -> &[Metric] {
        self.compiled
            .as_ref()
            .map(|c| c.metrics.as_slice())
            .unwrap_or(&[])
    }

    /// The compiled optimizer.
    pub fn optimizer(&self) -> Option<&dyn Optimizer<T>> {
        self.compiled.as_ref().map(|c| c.optimizer.as_ref())
    }

    /// The compiled optimizer, mutably (to change its learning rate, say).
    pub fn optimizer_mut(&mut self) -> Option<&mut (dyn Optimizer<T> + 'static)> {
        self.compiled.as_mut().map(|c| c.optimizer.as_mut())
    }

    /// All weights in Keras's order: layer by layer, each layer's in its order (a Dense
    /// kernel `[in, out]`, then its bias; a BatchNormalization's gamma, beta, moving mean
    /// and moving variance).
    pub fn get_weights(&self) -> Vec<Tensor<T>> {
        self.layers.iter().flat_map(|l| l.get_weights()).collect()
    }

    /// Every weight with its name, `{layer}.{weight}` (`dense.kernel`), in order.
    pub fn named_weights(&self) -> Vec<(String, &Tensor<T>)> {
        self.layers
            .iter()
            .flat_map(|l| {
                let layer = l.name().unwrap_or_default();
                l.weights()
                    .iter()
                    .map(move |w| (format!("{layer}.{}", w.name()), w.value()))
            })
            .collect()
    }

    /// Replaces all weights, in [`get_weights`](Sequential::get_weights)'s order.
    ///
    /// # Errors
    /// If the model is not built, the count differs, or a shape differs (the message lists
    /// the expected names and shapes). Nothing is changed then.
    pub fn set_weights(&mut self, weights: &[Tensor<T>]) -> Result<()> {
        if !self.is_built() {
            return Err(Error::NotReady {
                message: "set_weights: the model has no weights yet; give it an Input (or the first layer input_shape), or call build first".into(),
            });
        }
        let named = self.named_weights();
        let expected: Vec<(&str, Vec<usize>)> = named
            .iter()
            .map(|(n, t)| (n.as_str(), t.shape().to_vec()))
            .collect();
        let got: Vec<Vec<usize>> = weights.iter().map(|w| w.shape().to_vec()).collect();
        if expected.len() != got.len() || expected.iter().zip(&got).any(|((_, e), g)| e != g) {
            return Err(Error::data(
                "set_weights",
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
                "set_weights",
                format!("tensor {i} ({}) contains NaN or infinity", expected[i].0),
            ));
        }
        let mut rest = weights;
        for layer in &mut self.layers {
            let (mine, others) = rest.split_at(layer.weights().len());
            layer
                .set_weights(mine)
                .expect("checked above for the whole model");
            rest = others;
        }
        Ok(())
    }

    /// Runs the layers on the tape, each given its weights by name (`vars` holds every
    /// layer's weights in order) and `ctx`. Returns the last layer's pre-activation and
    /// activation when `split_last` (so a loss can fuse with it), else the output and
    /// `Linear`; and the non-trainable weights the layers asked to update, by layer index.
    pub(crate) fn forward_on<'t>(
        &self,
        x: Var<'t, T>,
        vars: &[Var<'t, T>],
        ctx: &mut Context<'_, T>,
        split_last: bool,
    ) -> Result<Forward<'t, T>> {
        let mut h = x;
        let mut offset = 0;
        let last = self.layers.len() - 1;
        let mut updates = Vec::new();
        let mut activation = Activation::Linear;
        let mut fused_into_previous = false;
        for (i, layer) in self.layers.iter().enumerate() {
            let n = layer.weights().len();
            let w = LayerVars::of(layer.weights(), &vars[offset..offset + n]);
            offset += n;
            if std::mem::take(&mut fused_into_previous) {
                continue; // a max pooling the layer before computed with its own output
            }
            // A max pooling next (and not the last layer's split), computed with this layer
            // where the layer can.
            let next_pool = self
                .layers
                .get(i + 1)
                .filter(|_| !(i + 1 == last && split_last))
                .and_then(|next| next.max_pool_window());
            let pooled = next_pool.and_then(|pool| layer.forward_max_pooled(h, &w, ctx, &pool));
            let out = if let Some(out) = pooled {
                fused_into_previous = true;
                out
            } else if i == last && split_last {
                activation = layer.activation();
                layer.forward(h, &w, ctx)
            } else {
                layer.forward_activated(h, &w, ctx)
            };
            h = out.map_err(|e| layer_error(layer.as_ref(), e))?;
            updates.extend(ctx.take_updates().into_iter().map(|(name, t)| (i, name, t)));
        }
        Ok(Forward {
            output: h,
            activation,
            updates,
        })
    }

    /// Every weight on `tape`: trainable ones as parameters when `train`, the rest (and all
    /// of them when not training) as constants.
    fn weight_vars<'t>(&self, tape: &'t Tape<T>, train: bool) -> Vec<Var<'t, T>> {
        self.layers
            .iter()
            .flat_map(|l| l.weights().iter())
            .map(|w| {
                if train && w.trainable() {
                    tape.param(w.value())
                } else {
                    tape.constant(w.value())
                }
            })
            .collect()
    }

    /// The model's output for a batch, in inference mode, without recording anything.
    fn predict_rows(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let tape = Tape::new();
        let mut rng = seeded(self.seed);
        let mut ctx = Context::new(false, &mut rng);
        tape.no_grad(|| {
            let vars = self.weight_vars(&tape, false);
            let f = self.forward_on(tape.constant(x), &vars, &mut ctx, false)?;
            Ok(f.output.value())
        })
    }

    /// Creates the weights from `x`'s sample shape if the model has none yet (`x` already
    /// checked).
    fn build_for(&mut self, x: &Tensor<T>) -> Result<()> {
        if !self.is_built() {
            self.build(&x.shape()[1..])?;
        }
        Ok(())
    }

    /// Checks that `x` is a batch of samples of the model's input shape (if known) with
    /// finite values.
    fn check_x(&self, op: &str, x: &Tensor<T>) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::NotReady {
                message: format!("{op}: the model has no layers; add some first"),
            });
        }
        let shown = |s: &[usize]| {
            let parts: Vec<String> = s.iter().map(usize::to_string).collect();
            format!("({})", parts.join(", "))
        };
        match &self.input_shape {
            Some(d) if x.shape().get(1..) != Some(d.as_slice()) => {
                return Err(Error::data(
                    format!("{op}: x"),
                    format!(
                        "expected shape {} (samples of the model's input), got {}",
                        shape_text(d),
                        shown(x.shape())
                    ),
                ));
            }
            None if x.ndim() < 2 => {
                return Err(Error::data(
                    format!("{op}: x"),
                    format!(
                        "expected a tensor of at least 2 dimensions [samples, features...], got shape {:?}",
                        x.shape()
                    ),
                ));
            }
            _ => {}
        }
        if x.shape()[0] == 0 {
            return Err(Error::data(
                format!("{op}: x"),
                "has no samples (shape [0, ...])",
            ));
        }
        if let Some((i, v)) = x.first_non_finite() {
            let per_sample = x.len() / x.shape()[0];
            let at = if x.ndim() == 2 {
                format!("feature {}", i % per_sample)
            } else {
                let mut index = Vec::new();
                let mut rest = i % per_sample;
                for &d in x.shape()[1..].iter().rev() {
                    index.push(rest % d);
                    rest /= d;
                }
                index.reverse();
                format!("at {index:?}")
            };
            return Err(Error::data(
                format!("{op}: x"),
                format!(
                    "sample {} {at} is {v}; inputs must be finite",
                    i / per_sample
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn require_built(&self, op: &str) -> Result<()> {
        if !self.is_built() {
            return Err(Error::NotReady {
                message: format!(
                    "{op}: the model has no weights yet; give it an Input (or the first layer input_shape), call build, or fit first"
                ),
            });
        }
        Ok(())
    }

    fn compiled(&self, op: &str) -> Result<&Compiled<T>> {
        self.compiled.as_ref().ok_or_else(|| Error::NotReady {
            message: format!(
                "{op}: the model must be compiled first: call compile(optimizer, loss, metrics)"
            ),
        })
    }

    /// Checks `y` against `x` and the compiled loss; returns `y` shaped as the loss needs
    /// (`[n]` targets of a one-unit model become `[n, 1]`).
    fn check_targets(&self, op: &str, x: &Tensor<T>, y: &Tensor<T>) -> Result<Tensor<T>> {
        let compiled = self.compiled(op)?;
        let n = x.shape()[0];
        if y.ndim() == 0 || y.shape()[0] != n {
            return Err(Error::data(
                op,
                format!(
                    "x has {n} samples but y has shape {:?}; they need the same number of samples",
                    y.shape()
                ),
            ));
        }
        let out = self.output_shape_for(&x.shape()[1..])?;
        let y = if y.ndim() == 1 && out == [1] && !compiled.loss.is_sparse() {
            y.reshape(&[n, 1])
        } else {
            y.clone()
        };
        let mut expected = vec![n];
        expected.extend(&out);
        compiled
            .loss
            .check_targets(&y, &expected)
            .map_err(|e| Error::data(format!("{op}: y"), e.to_string()))?;
        Ok(y)
    }

    /// Predictions for `x`, computed [`DEFAULT_BATCH_SIZE`] (32) rows at a time, as Keras's
    /// `predict(x)`.
    ///
    /// # Errors
    /// If the model has no weights, or `x` is not `[n, input_dim]` with finite values.
    pub fn predict(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.predict_batched(x, DEFAULT_BATCH_SIZE)
    }

    /// Predictions for `x`, computed `batch_size` rows at a time (Keras's
    /// `predict(x, batch_size=...)`).
    ///
    /// # Errors
    /// As [`predict`](Sequential::predict), and a batch size of 0.
    pub fn predict_batched(&self, x: &Tensor<T>, batch_size: usize) -> Result<Tensor<T>> {
        self.require_built("predict")?;
        self.check_x("predict", x)?;
        check_batch_size("predict", batch_size)?;
        let n = x.shape()[0];
        let mut outputs = Vec::new();
        for start in (0..n).step_by(batch_size) {
            let end = (start + batch_size).min(n);
            outputs.push(self.predict_rows(&x.rows(start..end))?);
        }
        let refs: Vec<&Tensor<T>> = outputs.iter().collect();
        Ok(Tensor::concat(&refs, 0))
    }

    /// The loss and metrics on `(x, y)`, computed [`DEFAULT_BATCH_SIZE`] (32) rows at a time
    /// and averaged over all samples, without changing the weights: Keras's
    /// `evaluate(x, y)`.
    ///
    /// # Errors
    /// Before `compile`, without weights, or for data that does not fit the model.
    pub fn evaluate(&self, x: &Tensor<T>, y: &Tensor<T>) -> Result<Logs> {
        self.evaluate_batched(x, y, DEFAULT_BATCH_SIZE)
    }

    /// [`evaluate`](Sequential::evaluate), `batch_size` rows at a time.
    ///
    /// # Errors
    /// As [`evaluate`](Sequential::evaluate), and a batch size of 0.
    pub fn evaluate_batched(
        &self,
        x: &Tensor<T>,
        y: &Tensor<T>,
        batch_size: usize,
    ) -> Result<Logs> {
        self.require_built("evaluate")?;
        self.check_x("evaluate", x)?;
        check_batch_size("evaluate", batch_size)?;
        let y = self.check_targets("evaluate", x, y)?;
        self.evaluate_checked(x, &y, batch_size)
    }

    /// [`evaluate`](Sequential::evaluate) on inputs already checked (and targets already
    /// shaped) by the caller.
    pub(crate) fn evaluate_checked(
        &self,
        x: &Tensor<T>,
        y: &Tensor<T>,
        batch_size: usize,
    ) -> Result<Logs> {
        let mut acc = fit::Accumulator::new(self.metrics());
        // With ranks, each evaluates its share of the rows and the sums are added up.
        let group = self.group();
        let (from, to) = match &group {
            Some(c) => crate::distributed::shard(0, x.shape()[0], c.rank(), c.size()),
            None => (0, x.shape()[0]),
        };
        for start in (from..to).step_by(batch_size) {
            let end = (start + batch_size).min(to);
            let (xb, yb) = (x.rows(start..end), y.rows(start..end));
            let (loss, y_pred) = self.test_step(&xb, &yb)?;
            acc.add(loss, &yb, Some(&y_pred))?;
        }
        if let Some(c) = group {
            acc.all_sum(c.as_ref())?;
        }
        Ok(acc.logs(""))
    }

    /// The loss and metrics of one batch, without changing the weights.
    ///
    /// # Errors
    /// As [`evaluate`](Sequential::evaluate).
    pub fn test_on_batch(&self, x: &Tensor<T>, y: &Tensor<T>) -> Result<Logs> {
        self.evaluate_batched(x, y, x.shape().first().copied().unwrap_or(1).max(1))
    }

    /// One training step on one batch; returns the loss and metrics computed before the
    /// update, as Keras does.
    ///
    /// # Errors
    /// Before `compile`, or for data that does not fit the model (nothing changes then).
    pub fn train_on_batch(&mut self, x: &Tensor<T>, y: &Tensor<T>) -> Result<Logs> {
        self.compiled("train_on_batch")?;
        self.check_x("train_on_batch", x)?;
        let y = self.check_targets("train_on_batch", x, y)?;
        self.build_for(x)?;
        let mut acc = fit::Accumulator::new(self.metrics());
        // With ranks, `x` is the global batch (the same on every rank, as for `fit` and
        // `evaluate`), and each rank steps on its share.
        let Some(c) = self.group() else {
            let (loss, y_pred) = self.train_step(x, &y, Share::whole(0, x.shape()[0]))?;
            acc.add(loss, &y, y_pred.as_ref())?;
            return Ok(acc.logs(""));
        };
        let n = x.shape()[0];
        let (from, to) = crate::distributed::shard(0, n, c.rank(), c.size());
        let share = Share::of(0, n, from, to);
        let (from, to) = share.rows;
        let (xb, yb) = (x.rows(from..to), y.rows(from..to));
        let (loss, y_pred) = self.train_step(&xb, &yb, share)?;
        if share.fraction > 0.0 {
            acc.add(loss, &yb, y_pred.as_ref())?;
        }
        acc.all_sum(c.as_ref())?;
        Ok(acc.logs(""))
    }

    /// Loss and predictions of a batch, in inference mode, without recording gradients.
    fn test_step(&self, x: &Tensor<T>, y: &Tensor<T>) -> Result<(f64, Tensor<T>)> {
        let compiled = self.compiled("evaluate")?;
        let tape = Tape::new();
        let mut rng = seeded(self.seed);
        let mut ctx = Context::new(false, &mut rng);
        tape.no_grad(|| {
            let vars = self.weight_vars(&tape, false);
            let f = self.forward_on(tape.constant(x), &vars, &mut ctx, true)?;
            let loss = compiled
                .loss
                .compute_fused(tape.constant(y), f.output, f.activation)?;
            Ok((
                loss.item().to_f64_exact(),
                f.activation.apply(f.output).value(),
            ))
        })
    }

    /// One update on one batch, in training mode: the batch's loss (before the update, as
    /// Keras reports it) and, if any metric needs them, the predictions. The optimizer
    /// steps the trainable weights by name; then the layers' non-trainable weights (moving
    /// statistics) take the values the forward pass asked for.
    ///
    /// With ranks to train with, `share` says where `x` is in the global batch: the
    /// gradients and layer updates are weighted by its fraction and summed over the ranks
    /// before the update, and Dropout's masks are keyed by the rows' places.
    pub(crate) fn train_step(
        &mut self,
        x: &Tensor<T>,
        y: &Tensor<T>,
        share: Share,
    ) -> Result<(f64, Option<Tensor<T>>)> {
        // The tape is kept between steps so that its buffers are reused. It is reset (its
        // values dropped) before the update, so that the weights are not shared (and copied)
        // when the optimizer writes them.
        let mut tape = std::mem::take(&mut self.tape);
        let recorded = self.record_step(&tape, x, y, share.first_row);
        tape.reset();
        self.tape = tape;
        let Recorded {
            loss,
            y_pred,
            mut grads,
            mut updates,
        } = recorded?;
        if let Some(comm) = self.group() {
            self.reduce_gradients(comm.as_ref(), share.fraction, &mut grads, &mut updates)?;
        }
        let names = self.trainable_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let Sequential {
            layers, compiled, ..
        } = self;
        let compiled = compiled.as_mut().expect("checked in record_step");
        let mut params: Vec<&mut Tensor<T>> = layers
            .iter_mut()
            .flat_map(|l| l.weights_mut().iter_mut())
            .filter(|w| w.trainable())
            .map(|w| w.value_mut())
            .collect();
        let grad_refs: Vec<&Tensor<T>> = grads.iter().collect();
        compiled
            .optimizer
            .step_named(&names, &mut params, &grad_refs)?;
        for (i, name, value) in updates {
            layers[i].weights_mut().set(name, value);
        }
        Ok((loss, y_pred))
    }

    /// The names of the trainable weights, `{layer}.{weight}`, in order: what the
    /// optimizer keeps its state under.
    pub(crate) fn trainable_names(&self) -> Vec<String> {
        self.layers
            .iter()
            .flat_map(|l| {
                let layer = l.name().unwrap_or_default();
                l.weights()
                    .trainable()
                    .map(move |w| format!("{layer}.{}", w.name()))
            })
            .collect()
    }

    /// The forward and backward pass of a training step on rows `first_row..` of the
    /// global batch. The random stream (Dropout's masks) is seeded from the model's seed and
    /// the optimizer's step count, so a resumed run draws what an uninterrupted one would,
    /// and every rank draws the same stream (its masks are keyed by the rows' places).
    fn record_step(
        &self,
        tape: &Tape<T>,
        x: &Tensor<T>,
        y: &Tensor<T>,
        first_row: usize,
    ) -> Result<Recorded<T>> {
        let compiled = self.compiled("fit")?;
        let vars = self.weight_vars(tape, true);
        let mut rng = seeded(step_seed(self.seed, compiled.optimizer.iterations()));
        let mut ctx = Context::new(true, &mut rng).with_first_row(first_row);
        let f = self.forward_on(tape.constant(x), &vars, &mut ctx, true)?;
        let (z, act) = (f.output, f.activation);
        let loss = compiled.loss.compute_fused(tape.constant(y), z, act)?;
        // Predictions only for metrics: the loss is computed from the logits `z`.
        let y_pred = (!compiled.metrics.is_empty()).then(|| tape.no_grad(|| act.apply(z)).value());
        let mut grads = loss.backward()?;
        let trainable = self
            .layers
            .iter()
            .flat_map(|l| l.weights().iter())
            .map(|w| w.trainable());
        let grads: Vec<Tensor<T>> = vars
            .iter()
            .zip(trainable)
            .filter(|(_, t)| *t)
            .map(|(&v, _)| grads.take(v).expect("every parameter has a gradient"))
            .collect();
        Ok(Recorded {
            loss: loss.item().to_f64_exact(),
            y_pred,
            grads,
            updates: f.updates,
        })
    }
}

/// What [`Sequential::forward_on`] gives.
pub(crate) struct Forward<'t, T: Element> {
    /// The last layer's output (its pre-activation when split).
    pub output: Var<'t, T>,
    /// The last layer's activation when split, else `Linear`.
    pub activation: Activation,
    /// Non-trainable weights to set after the step: layer index, weight name, value.
    pub updates: Vec<(usize, &'static str, Tensor<T>)>,
}

/// Where a rank's rows are in a global batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Share {
    /// The rows to step on, as indices into the data.
    pub rows: (usize, usize),
    /// The index of the first of them within the global batch.
    pub first_row: usize,
    /// Their fraction of the global batch: the weight of their gradients in the sum.
    pub fraction: f64,
}

impl Share {
    /// The whole batch `start..end` (one process).
    pub fn whole(start: usize, end: usize) -> Share {
        Share {
            rows: (start, end),
            first_row: 0,
            fraction: 1.0,
        }
    }

    /// Rows `from..to` of the global batch `start..end`. A rank whose share is empty steps
    /// on the batch's first row with weight 0, so that the ranks' sums line up.
    pub fn of(start: usize, end: usize, from: usize, to: usize) -> Share {
        if from == to {
            return Share {
                rows: (start, start + 1),
                first_row: 0,
                fraction: 0.0,
            };
        }
        Share {
            rows: (from, to),
            first_row: from - start,
            fraction: (to - from) as f64 / (end - start) as f64,
        }
    }
}

/// What a training step's forward and backward pass give.
struct Recorded<T: Element> {
    /// The batch's loss.
    loss: f64,
    /// The predictions, if a metric needs them.
    y_pred: Option<Tensor<T>>,
    /// The gradient of each trainable weight, in order.
    grads: Vec<Tensor<T>>,
    /// Non-trainable weights to set after the step.
    updates: Vec<(usize, &'static str, Tensor<T>)>,
}

/// Builds `layer` for inputs of `shape` (checking it can take them), and checks that the
/// weights it made are the ones it declares.
fn build_layer<T: Element>(
    layer: &mut dyn Layer<T>,
    shape: &[usize],
    rng: &mut StdRng,
) -> Result<()> {
    layer
        .output_shape(shape)
        .map_err(|e| layer_error(layer, e))?;
    if !layer.is_built() {
        layer.build(shape, rng).map_err(|e| layer_error(layer, e))?;
    }
    let made: Vec<(&str, Vec<usize>)> = layer
        .weights()
        .iter()
        .map(|w| (w.name(), w.value().shape().to_vec()))
        .collect();
    let declared = layer.weight_shapes(shape).unwrap_or_default();
    let declared: Vec<(&str, Vec<usize>)> = declared.iter().map(|(n, s)| (*n, s.clone())).collect();
    if made != declared {
        return Err(Error::config(
            format!(
                "layer '{}' ({})",
                layer.name().unwrap_or("?"),
                layer.class_name()
            ),
            format!(
                "build made the weights {} but weight_shapes declares {}; the layer must declare what it builds",
                describe_shapes(&made),
                describe_shapes(&declared)
            ),
        ));
    }
    Ok(())
}

/// An error of one layer, naming it.
fn layer_error<T: Element>(layer: &dyn Layer<T>, e: Error) -> Error {
    let who = format!(
        "layer '{}' ({})",
        layer.name().unwrap_or("?"),
        layer.class_name()
    );
    match e {
        Error::InvalidData { context, message } => Error::InvalidData {
            context: format!("{who}: {context}"),
            message,
        },
        Error::InvalidConfig { context, message } => Error::InvalidConfig {
            context: format!("{who}: {context}"),
            message,
        },
        Error::Tensor(e) => Error::InvalidData {
            context: who,
            message: e.to_string(),
        },
        other => other,
    }
}

/// The seed of the random stream of training step `step` (Dropout's masks).
fn step_seed(seed: u64, step: u64) -> u64 {
    let mut z = seed ^ 0xD1B5_4A32_D192_ED03 ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn check_batch_size(op: &str, batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::config(op, "batch_size must be at least 1, got 0"));
    }
    Ok(())
}

/// Keras's `to_snake_case`: `Dense` -> `dense`, `BatchNormalization` ->
/// `batch_normalization`, `Conv2D` -> `conv2d`, `MaxPooling2D` -> `max_pooling2d`. An
/// underscore goes before each capital that starts a capitalised word (a capital followed by
/// a lowercase letter) and isn't first, and between a lowercase letter and a capital.
fn snake_case(s: &str) -> String {
    let c: Vec<char> = s
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let mut out = String::new();
    for (i, &ch) in c.iter().enumerate() {
        let starts_word =
            ch.is_ascii_uppercase() && c.get(i + 1).is_some_and(char::is_ascii_lowercase);
        let after_lower = i > 0 && ch.is_ascii_uppercase() && c[i - 1].is_ascii_lowercase();
        if i > 0 && (starts_word || after_lower) && !out.ends_with('_') {
            out.push('_');
        }
        out.extend(ch.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests;
