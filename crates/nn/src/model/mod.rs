//! The Keras-style [`Sequential`] model: stack layers, `compile`, `fit`, `evaluate`,
//! `predict`.

mod fit;
pub(crate) mod logs;
mod plot;
mod progress;
mod summary;

pub use fit::FitOptions;
pub use logs::{History, Logs, format_metric};

use autograd::{Tape, Var};
use optim::{IntoOptimizer, Optimizer};
use tensor::random::{StdRng, seeded};
use tensor::{Element, Tensor};

use crate::activations::Activation;
use crate::error::{Error, Result};
use crate::layers::Layer;
use crate::losses::{IntoLoss, Loss};
use crate::metrics::{IntoMetric, Metric};

/// No metrics, for [`Sequential::compile`].
pub const NO_METRICS: [&str; 0] = [];

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
    input_dim: Option<usize>,
    seed: u64,
    rng: StdRng,
    compiled: Option<Compiled<T>>,
    /// Reused by every training step (reset after each).
    tape: Tape<T>,
    /// Epochs `fit` has finished (saved with the model, for resuming).
    completed_epochs: usize,
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
            .field("input_dim", &self.input_dim)
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
            input_dim: None,
            seed,
            rng: seeded(seed),
            compiled: None,
            tape: Tape::new(),
            completed_epochs: 0,
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

    /// Appends a layer. If the input size is known (the first layer's `input_dim`), the
    /// layer's weights are created now, so `summary` works before any data is seen.
    ///
    /// # Errors
    /// The layer's configuration error (an unknown activation name, ...), or `input_dim`
    /// on a layer that is not the first. The model is unchanged then.
    pub fn add(&mut self, layer: impl Layer<T> + 'static) -> Result<&mut Self> {
        self.add_boxed(Box::new(layer))
    }

    /// [`add`](Sequential::add) for a boxed layer.
    pub fn add_boxed(&mut self, mut layer: Box<dyn Layer<T>>) -> Result<&mut Self> {
        if let Some(e) = layer.take_error() {
            return Err(e);
        }
        if let Some(d) = layer.input_dim()
            && !self.layers.is_empty()
        {
            return Err(Error::config(
                "add",
                format!(
                    "input_dim ({d}) can only be given to the first layer; later layers take the previous layer's output size"
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
        let input_dim = if self.layers.is_empty() {
            layer.input_dim()
        } else {
            self.output_dim()
        };
        if let Some(d) = input_dim {
            layer.build(d, &mut self.rng)?;
        }
        if self.layers.is_empty() {
            self.input_dim = layer.input_dim();
        }
        self.layers.push(layer);
        Ok(self)
    }

    /// Creates all weights for inputs of `input_dim` features (what the first `fit` does
    /// when no layer declared `input_dim`).
    ///
    /// # Errors
    /// If the model is already built for another input size, or has no layers.
    pub fn build(&mut self, input_dim: usize) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::NotReady {
                message: "build: the model has no layers; add some first".into(),
            });
        }
        if input_dim == 0 {
            return Err(Error::config(
                "build",
                "input_dim must be at least 1, got 0",
            ));
        }
        match self.input_dim {
            Some(d) if d == input_dim && self.is_built() => return Ok(()),
            Some(d) if self.is_built() => {
                return Err(Error::data(
                    "build",
                    format!("the model is built for {d} input features, got {input_dim}"),
                ));
            }
            _ => {}
        }
        let mut d = input_dim;
        for layer in &mut self.layers {
            if !layer.is_built() {
                layer.build(d, &mut self.rng)?;
            }
            d = layer.output_dim(d);
        }
        self.input_dim = Some(input_dim);
        Ok(())
    }

    /// Whether all weights exist.
    pub fn is_built(&self) -> bool {
        !self.layers.is_empty()
            && self.input_dim.is_some()
            && self.layers.iter().all(|l| l.is_built())
    }

    /// The number of input features, once known.
    pub fn input_dim(&self) -> Option<usize> {
        self.input_dim
    }

    /// The number of outputs, once the input size is known.
    pub fn output_dim(&self) -> Option<usize> {
        self.input_dim.map(|d| self.output_dim_for(d))
    }

    /// The number of outputs for inputs of `input_dim` features.
    fn output_dim_for(&self, input_dim: usize) -> usize {
        self.layers.iter().fold(input_dim, |d, l| l.output_dim(d))
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

    /// The total number of weights.
    pub fn count_params(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|l| l.params())
            .map(|p| p.len())
            .sum()
    }

    /// Sets the optimizer, loss and metrics for training.
    ///
    /// `optimizer` is a Keras name (`"rmsprop"`) or an optimizer (`optim::Adam::new(0.01)`);
    /// `loss` a name (`"categorical_crossentropy"`) or a [`Loss`]; `metrics` names
    /// (`["accuracy"]`) or [`Metric`]s, or [`NO_METRICS`].
    ///
    /// # Errors
    /// Unknown names (listing the valid ones) and invalid optimizer hyperparameters.
    pub fn compile<M: IntoMetric>(
        &mut self,
        optimizer: impl IntoOptimizer<T>,
        loss: impl IntoLoss,
        metrics: impl IntoIterator<Item = M>,
    ) -> Result<()> {
        let optimizer = optimizer.into_optimizer()?;
        optimizer.validate()?;
        let loss = loss.into_loss()?;
        let metrics = metrics
            .into_iter()
            .map(IntoMetric::into_metric)
            .collect::<Result<Vec<_>>>()?;
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
        self.compiled.as_ref().map(|c| c.loss)
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

    /// All weights in Keras's order: each layer's kernel `[in, out]`, then its bias.
    pub fn get_weights(&self) -> Vec<Tensor<T>> {
        self.layers
            .iter()
            .flat_map(|l| l.params())
            .cloned()
            .collect()
    }

    /// Replaces all weights, in [`get_weights`](Sequential::get_weights)'s order.
    ///
    /// # Errors
    /// If the model is not built, the count differs, or a shape differs (the message lists
    /// the expected shapes). Nothing is changed then.
    pub fn set_weights(&mut self, weights: &[Tensor<T>]) -> Result<()> {
        if !self.is_built() {
            return Err(Error::NotReady {
                message: "set_weights: the model has no weights yet; give the first layer input_dim or call build(input_dim) first".into(),
            });
        }
        let expected: Vec<Vec<usize>> = self
            .layers
            .iter()
            .flat_map(|l| l.params())
            .map(|p| p.shape().to_vec())
            .collect();
        let got: Vec<Vec<usize>> = weights.iter().map(|w| w.shape().to_vec()).collect();
        if expected != got {
            return Err(Error::data(
                "set_weights",
                format!(
                    "expected {} tensors of shapes {expected:?}, got {} of shapes {got:?}",
                    expected.len(),
                    got.len()
                ),
            ));
        }
        if let Some(i) = weights.iter().position(|w| !w.all_finite()) {
            return Err(Error::data(
                "set_weights",
                format!("tensor {i} contains NaN or infinity"),
            ));
        }
        let mut rest = weights;
        for layer in &mut self.layers {
            let (mine, others) = rest.split_at(layer.params().len());
            layer
                .set_weights(mine)
                .expect("checked above for the whole model");
            rest = others;
        }
        Ok(())
    }

    /// Runs the layers on the tape. Returns the last layer's pre-activation and activation
    /// when `split_last` (so a loss can fuse with it), else the output and `Linear`.
    pub(crate) fn forward_on<'t>(
        &self,
        x: Var<'t, T>,
        params: &[Var<'t, T>],
        split_last: bool,
    ) -> Result<(Var<'t, T>, Activation)> {
        let mut h = x;
        let mut offset = 0;
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let n = layer.params().len();
            let p = &params[offset..offset + n];
            offset += n;
            if i == last && split_last {
                return Ok((layer.forward(h, p)?, layer.activation()));
            }
            h = layer.forward_activated(h, p)?;
        }
        Ok((h, Activation::Linear))
    }

    /// The model's output for a batch, without recording anything.
    fn predict_batch(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let tape = Tape::new();
        tape.no_grad(|| {
            let params: Vec<Var<'_, T>> = self
                .layers
                .iter()
                .flat_map(|l| l.params())
                .map(|p| tape.constant(p))
                .collect();
            let (y, _) = self.forward_on(tape.constant(x), &params, false)?;
            Ok(y.value())
        })
    }

    /// Creates the weights from `x`'s width if the model has none yet (`x` already checked).
    fn build_for(&mut self, x: &Tensor<T>) -> Result<()> {
        if !self.is_built() {
            self.build(x.shape()[1])?;
        }
        Ok(())
    }

    /// Checks that `x` is `[n, input_dim]` (if the input size is known) with finite values.
    fn check_x(&self, op: &str, x: &Tensor<T>) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::NotReady {
                message: format!("{op}: the model has no layers; add some first"),
            });
        }
        if x.ndim() != 2 {
            return Err(Error::data(
                format!("{op}: x"),
                format!(
                    "expected a 2-D tensor [samples, features], got shape {:?}",
                    x.shape()
                ),
            ));
        }
        if x.shape()[0] == 0 {
            return Err(Error::data(
                format!("{op}: x"),
                "has no samples (shape [0, ...])",
            ));
        }
        if let Some(d) = self.input_dim
            && x.shape()[1] != d
        {
            return Err(Error::data(
                format!("{op}: x"),
                format!(
                    "expected {d} features per sample (the model's input), got shape {:?}",
                    x.shape()
                ),
            ));
        }
        if let Some((i, v)) = x.first_non_finite() {
            let w = x.shape()[1];
            return Err(Error::data(
                format!("{op}: x"),
                format!(
                    "sample {} feature {} is {v}; inputs must be finite",
                    i / w,
                    i % w
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn require_built(&self, op: &str) -> Result<()> {
        if !self.is_built() {
            return Err(Error::NotReady {
                message: format!(
                    "{op}: the model has no weights yet; give the first layer input_dim, call build(input_dim), or fit first"
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
        let units = self.output_dim_for(x.shape()[1]);
        let y = if y.ndim() == 1 && units == 1 && !compiled.loss.is_sparse() {
            y.reshape(&[n, 1])
        } else {
            y.clone()
        };
        compiled
            .loss
            .check_targets(&y, &[n, units])
            .map_err(|e| Error::data(format!("{op}: y"), e.to_string()))?;
        Ok(y)
    }

    /// Predictions for `x`, computed `batch_size` rows at a time.
    ///
    /// # Errors
    /// If the model has no weights, or `x` is not `[n, input_dim]` with finite values.
    pub fn predict(&self, x: &Tensor<T>, batch_size: usize) -> Result<Tensor<T>> {
        self.require_built("predict")?;
        self.check_x("predict", x)?;
        check_batch_size("predict", batch_size)?;
        let n = x.shape()[0];
        let mut outputs = Vec::new();
        for start in (0..n).step_by(batch_size) {
            let end = (start + batch_size).min(n);
            outputs.push(self.predict_batch(&x.slice_axis(0, start..end))?);
        }
        let refs: Vec<&Tensor<T>> = outputs.iter().collect();
        Ok(Tensor::concat(&refs, 0))
    }

    /// The loss and metrics on `(x, y)`, computed `batch_size` rows at a time and averaged
    /// over all samples, without changing the weights.
    ///
    /// # Errors
    /// Before `compile`, without weights, or for data that does not fit the model.
    pub fn evaluate(&self, x: &Tensor<T>, y: &Tensor<T>, batch_size: usize) -> Result<Logs> {
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
        let n = x.shape()[0];
        for start in (0..n).step_by(batch_size) {
            let end = (start + batch_size).min(n);
            let (xb, yb) = (x.slice_axis(0, start..end), y.slice_axis(0, start..end));
            let (loss, y_pred) = self.test_step(&xb, &yb)?;
            acc.add(loss, &yb, Some(&y_pred))?;
        }
        Ok(acc.logs(""))
    }

    /// The loss and metrics of one batch, without changing the weights.
    ///
    /// # Errors
    /// As [`evaluate`](Sequential::evaluate).
    pub fn test_on_batch(&self, x: &Tensor<T>, y: &Tensor<T>) -> Result<Logs> {
        self.evaluate(x, y, x.shape().first().copied().unwrap_or(1).max(1))
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
        let (loss, y_pred) = self.train_step(x, &y)?;
        acc.add(loss, &y, y_pred.as_ref())?;
        Ok(acc.logs(""))
    }

    /// Loss and predictions of a batch without recording gradients.
    fn test_step(&self, x: &Tensor<T>, y: &Tensor<T>) -> Result<(f64, Tensor<T>)> {
        let compiled = self.compiled("evaluate")?;
        let tape = Tape::new();
        tape.no_grad(|| {
            let params: Vec<Var<'_, T>> = self
                .layers
                .iter()
                .flat_map(|l| l.params())
                .map(|p| tape.constant(p))
                .collect();
            let (z, act) = self.forward_on(tape.constant(x), &params, true)?;
            let loss = compiled.loss.compute_fused(tape.constant(y), z, act)?;
            Ok((loss.item().to_f64_exact(), act.apply(z).value()))
        })
    }

    /// Forward, backward and one optimizer step on a batch; the loss and predictions from
    /// before the update.
    /// One update on one batch: the batch's loss (before the update, as Keras reports it)
    /// and, if any metric needs them, the predictions.
    pub(crate) fn train_step(
        &mut self,
        x: &Tensor<T>,
        y: &Tensor<T>,
    ) -> Result<(f64, Option<Tensor<T>>)> {
        // The tape is kept between steps so that its buffers are reused. It is reset (its
        // values dropped) before the update, so that the weights are not shared (and copied)
        // when the optimizer writes them.
        let mut tape = std::mem::take(&mut self.tape);
        let recorded = self.record_step(&tape, x, y);
        tape.reset();
        self.tape = tape;
        let Recorded {
            loss,
            y_pred,
            grads,
        } = recorded?;
        let Sequential {
            layers, compiled, ..
        } = self;
        let compiled = compiled.as_mut().expect("checked in record_step");
        let mut params: Vec<&mut Tensor<T>> =
            layers.iter_mut().flat_map(|l| l.params_mut()).collect();
        let grad_refs: Vec<&Tensor<T>> = grads.iter().collect();
        compiled.optimizer.step(&mut params, &grad_refs)?;
        Ok((loss, y_pred))
    }

    /// The forward and backward pass of a training step.
    fn record_step(&self, tape: &Tape<T>, x: &Tensor<T>, y: &Tensor<T>) -> Result<Recorded<T>> {
        let compiled = self.compiled("fit")?;
        let params: Vec<Var<'_, T>> = self
            .layers
            .iter()
            .flat_map(|l| l.params())
            .map(|p| tape.param(p))
            .collect();
        let (z, act) = self.forward_on(tape.constant(x), &params, true)?;
        let loss = compiled.loss.compute_fused(tape.constant(y), z, act)?;
        // Predictions only for metrics: the loss is computed from the logits `z`.
        let y_pred = (!compiled.metrics.is_empty()).then(|| tape.no_grad(|| act.apply(z)).value());
        let mut grads = loss.backward()?;
        let grads: Vec<Tensor<T>> = params
            .iter()
            .map(|&p| grads.take(p).expect("every parameter has a gradient"))
            .collect();
        Ok(Recorded {
            loss: loss.item().to_f64_exact(),
            y_pred,
            grads,
        })
    }
}

/// What a training step's forward and backward pass give.
struct Recorded<T: Element> {
    /// The batch's loss.
    loss: f64,
    /// The predictions, if a metric needs them.
    y_pred: Option<Tensor<T>>,
    /// The gradient of each parameter, in the order of the layers' `params`.
    grads: Vec<Tensor<T>>,
}

pub(crate) fn check_batch_size(op: &str, batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::config(op, "batch_size must be at least 1, got 0"));
    }
    Ok(())
}

/// `Dense` -> `dense`, `BatchNormalization` -> `batch_normalization`.
fn snake_case(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
