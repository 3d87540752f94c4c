//! Saving and loading models: weights alone, or the whole model (configuration, weights and
//! optimizer state) for resuming training or using it in another program.
//!
//! Both are [safetensors](https://huggingface.co/docs/safetensors) files, which Python reads
//! with `safetensors.numpy.load_file(path)` (PyTorch, JAX and Keras users alike):
//! - weights are named `{layer}.{param}` (`dense.kernel`, `dense_1.bias`), kernels in Keras's
//!   `[inputs, units]` layout, in the model's element type (`F32` or `F64`);
//! - a full model file adds the optimizer's state as `optimizer.{layer}.{param}/{slot}`
//!   (`optimizer.dense.kernel/momentum`, with Keras's slot names);
//! - the header's metadata has one entry, `brick`: a JSON object with `format`
//!   (`brick.weights` or `brick.model`), `format_version`, `crc32` (a checksum of the tensors'
//!   bytes in name order, so that a file corrupted on disk is an error rather than silently
//!   different weights) and, in a model file, `config` (the JSON of [`Sequential::to_json`])
//!   and `training` (epochs completed, optimizer steps taken). One entry with sorted keys
//!   keeps files byte-for-byte the same for the same model.
//!
//! Every write is atomic ([`crate::io::write_atomic`]): a crash leaves the old file or the
//! new one. Every read checks the file before changing anything: a truncated, corrupted or
//! foreign file, or weights of another architecture or element type, is an error that says
//! what was expected and what the file holds, and the model is unchanged.

pub(crate) mod config;

pub use crate::layers::registry::LAYER_CLASSES;

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, View};
use serde_json::{Value, json};
use tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::model::Sequential;

/// `format` in the metadata of a full model file.
const MODEL_FORMAT: &str = "brick.model";
/// `format` in the metadata of a weights file.
const WEIGHTS_FORMAT: &str = "brick.weights";
/// How errors name a file given as bytes.
const IN_MEMORY: &str = "<bytes>";
/// Prefix of the optimizer's state tensors in a model file.
const OPTIMIZER_PREFIX: &str = "optimizer.";

/// One tensor's bytes for `safetensors::serialize`.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn dtype_of<T: Element>() -> Dtype {
    if T::DTYPE == "f64" {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

/// Little-endian bytes of `t` in its element type.
fn to_raw<T: Element>(t: &Tensor<T>) -> Raw {
    let values = t.to_vec();
    let bytes = if T::DTYPE == "f64" {
        values
            .iter()
            .flat_map(|v| v.to_f64_exact().to_le_bytes())
            .collect()
    } else {
        // Exact: T is f32 here.
        values
            .iter()
            .flat_map(|v| (v.to_f64_exact() as f32).to_le_bytes())
            .collect()
    };
    Raw {
        dtype: dtype_of::<T>(),
        shape: t.shape().to_vec(),
        bytes,
    }
}

/// The CRC-32 of the tensors' bytes, in name order, as 8 hex digits.
fn checksum(mut tensors: Vec<(&str, &[u8])>) -> String {
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = crc32fast::Hasher::new();
    for (_, bytes) in tensors {
        hasher.update(bytes);
    }
    format!("{:08x}", hasher.finalize())
}

/// The one metadata key brick writes (files of other programs have no such key).
const METADATA_KEY: &str = "brick";

/// The file's bytes: the tensors, and `header` (with the tensors' checksum added) as the
/// metadata's `brick` entry.
fn serialize<T: Element>(
    tensors: &[(String, &Tensor<T>)],
    mut header: serde_json::Map<String, Value>,
) -> Result<Vec<u8>> {
    let raw: Vec<(&str, Raw)> = tensors
        .iter()
        .map(|(n, t)| (n.as_str(), to_raw(t)))
        .collect();
    let sum = checksum(raw.iter().map(|(n, r)| (*n, r.bytes.as_slice())).collect());
    header.insert("crc32".into(), json!(sum));
    header.insert("format_version".into(), json!(config::FORMAT_VERSION));
    let metadata = HashMap::from([(METADATA_KEY.to_string(), Value::Object(header).to_string())]);
    safetensors::serialize(raw, Some(metadata))
        .map_err(|e| Error::config("save", format!("could not encode the tensors: {e}")))
}

/// A parsed file: its tensors (borrowing the bytes), brick's header (empty for files of
/// other programs), and its path for messages.
struct File<'a> {
    path: &'a Path,
    tensors: SafeTensors<'a>,
    header: serde_json::Map<String, Value>,
}

impl<'a> File<'a> {
    fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<Self> {
        let damaged = |e: safetensors::SafeTensorError| Error::Format {
            path: path.to_path_buf(),
            line: None,
            message: format!(
                "not a readable safetensors file ({}): the file is damaged, truncated or of another format",
                describe(&e)
            ),
        };
        let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(damaged)?;
        let tensors = SafeTensors::deserialize(bytes).map_err(damaged)?;
        let mut file = File {
            path,
            tensors,
            header: serde_json::Map::new(),
        };
        if let Some(text) = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
        {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(header)) => file.header = header,
                _ => return Err(file.error("has a damaged brick header (not a JSON object)")),
            }
        }
        if let Some(expected) = file.header.get("crc32") {
            let views = file.tensors.tensors();
            let actual = checksum(views.iter().map(|(n, v)| (n.as_str(), v.data())).collect());
            if expected.as_str() != Some(actual.as_str()) {
                return Err(file.error(format!(
                    "is corrupted: its tensors' checksum is {actual}, but it was saved with {expected}"
                )));
            }
        }
        if let Some(v) = file.header.get("format_version")
            && v.as_u64().is_none_or(|v| v > config::FORMAT_VERSION)
        {
            return Err(file.error(format!(
                "is format version {v}; this brick reads versions up to {} (a newer brick wrote it)",
                config::FORMAT_VERSION
            )));
        }
        Ok(file)
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Format {
            path: self.path.to_path_buf(),
            line: None,
            message: message.into(),
        }
    }

    /// Tensor `name` as a `Tensor<T>` of shape `shape`, or an error saying what differs.
    fn tensor<T: Element>(&self, name: &str, shape: &[usize]) -> Result<Tensor<T>> {
        let view = self
            .tensors
            .tensor(name)
            .map_err(|_| self.error(format!("has no tensor '{name}'")))?;
        let want = dtype_of::<T>();
        if view.dtype() != want {
            let advice = match view.dtype() {
                Dtype::F32 => "load the file into a Sequential::<f32>".to_string(),
                Dtype::F64 => "load the file into a Sequential::<f64>".to_string(),
                other => format!("brick reads F32 and F64 weights, not {other:?}"),
            };
            return Err(self.error(format!(
                "tensor '{name}' is {:?}, but this model's weights are {want:?} ({}): {advice}",
                view.dtype(),
                T::DTYPE,
            )));
        }
        if view.shape() != shape {
            return Err(self.error(format!(
                "tensor '{name}' has shape {:?}, but the model's is {shape:?} (a model of another architecture?)",
                view.shape()
            )));
        }
        let bytes = view.data();
        let values: Vec<T> = if want == Dtype::F64 {
            bytes
                .chunks_exact(8)
                .map(|c| T::from_f64_lossy(f64::from_le_bytes(c.try_into().expect("8 bytes"))))
                .collect()
        } else {
            bytes
                .chunks_exact(4)
                .map(|c| {
                    T::from_f64_lossy(f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                })
                .collect()
        };
        Ok(Tensor::from_vec(values, shape)?)
    }
}

/// A safetensors error in words for users.
fn describe(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::HeaderTooSmall | E::InvalidHeaderLength | E::MetadataIncompleteBuffer => {
            "its length does not match its header".into()
        }
        E::HeaderTooLarge => "its header is larger than any safetensors header".into(),
        E::InvalidHeader(_) | E::InvalidHeaderDeserialization(_) => {
            "its header is not valid JSON".into()
        }
        other => other.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl<T: Element> Sequential<T> {
    /// Saves the weights to a safetensors file (see the [module](crate::save) docs for the
    /// names and layout), atomically. Keras's `save_weights`.
    ///
    /// ```
    /// use nn::{Dense, Sequential};
    /// let path = std::env::temp_dir().join(format!("brick-doc-weights-{}.safetensors", std::process::id()));
    /// let mut a = Sequential::with_seed(1);
    /// a.add(Dense::new(3).input_dim(2)).unwrap();
    /// a.save_weights(&path).unwrap();
    /// let mut b = Sequential::with_seed(2);
    /// b.add(Dense::new(3).input_dim(2)).unwrap();
    /// b.load_weights(&path).unwrap();
    /// assert_eq!(a.get_weights(), b.get_weights());
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    ///
    /// # Errors
    /// If the model has no weights yet, or the file cannot be written (the message names
    /// the path; an existing file is left as it was).
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        self.require_built("save_weights")?;
        let mut header = serde_json::Map::new();
        header.insert("format".into(), json!(WEIGHTS_FORMAT));
        write_atomic(path, &serialize(&self.named_weights(), header)?)
    }

    /// Loads weights saved by [`save_weights`](Sequential::save_weights) (or [`save`](Sequential::save),
    /// or by any program that names them `{layer}.{param}`) into this
    /// model, which must have the same architecture and element type.
    ///
    /// # Errors
    /// If the model has no weights yet; if the file is missing, not safetensors, truncated or
    /// corrupted; if a weight is missing, of another shape or element type, or the file
    /// holds tensors this model does not have. The model is unchanged then.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        self.require_built("load_weights")?;
        let path = path.as_ref();
        self.load_weights_from(&read(path)?, path)
    }

    /// [`load_weights`](Sequential::load_weights) from the bytes of a file already in memory
    /// (errors name the source as `<bytes>`).
    ///
    /// # Errors
    /// As [`load_weights`](Sequential::load_weights).
    pub fn load_weights_from_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.require_built("load_weights")?;
        self.load_weights_from(bytes, Path::new(IN_MEMORY))
    }

    fn load_weights_from(&mut self, bytes: &[u8], source: &Path) -> Result<()> {
        let file = File::parse(source, bytes)?;
        let weights = self.read_weights(&file, false)?;
        self.set_weights(&weights)
    }

    /// Puts the optimizer state in `file` back into the model's optimizer, by name: each
    /// trainable weight's `optimizer.{layer}.{weight}/{slot}` tensors. Files of format 1
    /// named them by position (`optimizer.{i}.{layer}.{weight}`, slot-major); those are
    /// read too. Returns whether the file held any state.
    fn restore_optimizer_state(&mut self, file: &File<'_>, steps: u64) -> Result<bool> {
        let names: Vec<&str> = file
            .tensors
            .names()
            .into_iter()
            .filter(|n| n.starts_with(OPTIMIZER_PREFIX))
            .collect();
        if names.is_empty() {
            return Ok(false);
        }
        let params: Vec<(String, Vec<usize>)> = self
            .trainable_names()
            .into_iter()
            .zip(
                self.layers()
                    .iter()
                    .flat_map(|l| l.weights().trainable())
                    .map(|w| w.value().shape().to_vec()),
            )
            .collect();
        let Some(opt) = self.optimizer_mut() else {
            return Err(file.error("holds optimizer state but its config has no compile settings"));
        };
        let slots = opt.state_slots();
        // Format 1: `optimizer.{i}.{param}`, `i` counting slot-major.
        let legacy: HashMap<String, String> = slots
            .iter()
            .enumerate()
            .flat_map(|(k, slot)| {
                let n = params.len();
                params.iter().enumerate().map(move |(j, (p, _))| {
                    (
                        format!("{p}/{slot}"),
                        format!("{OPTIMIZER_PREFIX}{}.{p}", k * n + j),
                    )
                })
            })
            .collect();
        let mut used = 0usize;
        let mut failure = None;
        let mut lookup = |key: &str| -> Option<Tensor<T>> {
            let name = format!("{OPTIMIZER_PREFIX}{key}");
            let name = if names.contains(&name.as_str()) {
                name
            } else {
                legacy
                    .get(key)
                    .filter(|n| names.contains(&n.as_str()))?
                    .clone()
            };
            let view = file.tensors.tensor(&name).ok()?;
            match file.tensor::<T>(&name, view.shape()) {
                Ok(t) => {
                    used += 1;
                    Some(t)
                }
                Err(e) => {
                    failure.get_or_insert(e);
                    None
                }
            }
        };
        let restored = opt.restore_named(&params, &mut lookup, steps);
        if let Some(e) = failure {
            return Err(e);
        }
        restored.map_err(|e| file.error(format!("optimizer state: {e}")))?;
        if used != names.len() {
            let mut extra: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| {
                    let key = &n[OPTIMIZER_PREFIX.len()..];
                    !params
                        .iter()
                        .any(|(p, _)| slots.iter().any(|s| key == format!("{p}/{s}")))
                        && !legacy.values().any(|l| l == n)
                })
                .collect();
            extra.sort_unstable();
            return Err(file.error(format!(
                "holds optimizer state for weights this model does not train: {}",
                extra.join(", ")
            )));
        }
        Ok(true)
    }

    /// The model's weights from `file`, checked against the model; tensors named
    /// `optimizer.*` are allowed (and skipped) when `with_optimizer`.
    fn read_weights(&self, file: &File<'_>, with_optimizer: bool) -> Result<Vec<Tensor<T>>> {
        let expected = self.named_weights();
        let weights = expected
            .iter()
            .map(|(name, t)| file.tensor::<T>(name, t.shape()))
            .collect::<Result<Vec<_>>>()?;
        let mut extra: Vec<&str> = file
            .tensors
            .names()
            .into_iter()
            .filter(|n| !expected.iter().any(|(e, _)| e == n))
            .filter(|n| !(with_optimizer && n.starts_with(OPTIMIZER_PREFIX)))
            .collect();
        if !extra.is_empty() {
            extra.sort_unstable();
            let names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
            return Err(file.error(format!(
                "holds tensors this model does not have: {} (the model's are {}; a model of another architecture?)",
                extra.join(", "),
                names.join(", ")
            )));
        }
        Ok(weights)
    }

    /// The model's configuration as JSON: its layers (with activations and initializers),
    /// and, if compiled, its loss, metrics and optimizer with its hyperparameters. Keras's
    /// `to_json`; [`from_json`](Sequential::from_json) builds the model back.
    ///
    /// ```
    /// use nn::{Dense, Sequential};
    /// let mut m = Sequential::with_seed(3);
    /// m.add(Dense::new(4).input_dim(2).activation("relu")).unwrap();
    /// m.add(Dense::new(1).activation("sigmoid")).unwrap();
    /// m.compile("adam", "binary_crossentropy", ["accuracy"]).unwrap();
    /// let json = m.to_json();
    /// assert!(json.contains("\"units\": 4") && json.contains("\"beta_1\": 0.9"));
    /// let back = Sequential::<f32>::from_json(&json).unwrap();
    /// assert_eq!(back.to_json(), json);
    /// assert_eq!(back.get_weights(), m.get_weights()); // same seed, same initial weights
    /// ```
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&config::model_to_json(self)).expect("a JSON value")
    }

    /// A model built from [`to_json`](Sequential::to_json)'s configuration: the same layers,
    /// compiled the same way, with the initial weights its seed draws (not trained ones: see
    /// [`load`](Sequential::load)).
    ///
    /// # Errors
    /// If the text is not JSON, or names an unknown layer class, activation, initializer,
    /// loss, metric or optimizer, or holds a value of the wrong type or range; the message
    /// gives the path (`config.layers[1].config.units: ...`).
    pub fn from_json(json: &str) -> Result<Sequential<T>> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| Error::config("model config", format!("not valid JSON: {e}")))?;
        config::model_from_json(&value, None).map_err(|e| Error::config("model config", e))
    }

    /// Saves the whole model atomically: configuration, weights, and the optimizer's state
    /// and step count, with the number of epochs trained; [`load`](Sequential::load) gives
    /// back a model that predicts exactly what this one does and continues training exactly
    /// as this one would. Keras's `model.save`.
    ///
    /// ```
    /// use nn::{Dense, FitOptions, Sequential};
    /// use tensor::Tensor;
    /// let x = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2]).unwrap();
    /// let y = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0], &[4, 1]).unwrap();
    /// let mut m = Sequential::with_seed(1);
    /// m.add(Dense::new(8).input_dim(2).activation("tanh")).unwrap();
    /// m.add(Dense::new(1).activation("sigmoid")).unwrap();
    /// m.compile("rmsprop", "binary_crossentropy", ["accuracy"]).unwrap();
    /// m.fit(&x, &y, FitOptions { epochs: 3, verbose: 0, ..Default::default() }).unwrap();
    /// let path = std::env::temp_dir().join(format!("brick-doc-model-{}.safetensors", std::process::id()));
    /// m.save(&path).unwrap();
    /// let loaded = Sequential::<f32>::load(&path).unwrap();
    /// assert_eq!(loaded.predict_batched(&x, 4).unwrap(), m.predict_batched(&x, 4).unwrap());
    /// assert_eq!(loaded.completed_epochs(), 3);
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    ///
    /// # Errors
    /// If the file cannot be written (the message names the path; an existing file is left
    /// as it was).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut tensors = if self.is_built() {
            self.named_weights()
        } else {
            Vec::new()
        };
        let mut optimizer_steps = 0;
        if let Some(opt) = self.optimizer() {
            optimizer_steps = opt.iterations();
            if opt.common().is_built() {
                for (name, t) in opt.named_state() {
                    tensors.push((format!("{OPTIMIZER_PREFIX}{name}"), t));
                }
            }
        }
        let mut header = serde_json::Map::new();
        header.insert("format".into(), json!(MODEL_FORMAT));
        header.insert("config".into(), config::model_to_json(self));
        header.insert(
            "training".into(),
            json!({
                "completed_epochs": self.completed_epochs(),
                "optimizer_steps": optimizer_steps,
            }),
        );
        write_atomic(path, &serialize(&tensors, header)?)
    }

    /// Loads a model saved by [`save`](Sequential::save): its layers, weights, compile
    /// settings, optimizer state and epochs completed. To resume training, fit with
    /// `initial_epoch: model.completed_epochs()`.
    ///
    /// # Errors
    /// If the file is missing, not safetensors, truncated or corrupted, not a full model file
    /// (a weights file: use [`load_weights`](Sequential::load_weights) on a model built in
    /// code), saved as another element type, or its configuration or tensors do not fit
    /// together. The message names the file and the problem.
    pub fn load(path: impl AsRef<Path>) -> Result<Sequential<T>> {
        let path = path.as_ref();
        Self::load_from(&read(path)?, path)
    }

    /// [`load`](Sequential::load) from the bytes of a file already in memory (errors name
    /// the source as `<bytes>`).
    ///
    /// # Errors
    /// As [`load`](Sequential::load).
    pub fn load_from_bytes(bytes: &[u8]) -> Result<Sequential<T>> {
        Self::load_from(bytes, Path::new(IN_MEMORY))
    }

    fn load_from(bytes: &[u8], path: &Path) -> Result<Sequential<T>> {
        let file = File::parse(path, bytes)?;
        match file.header.get("format").and_then(Value::as_str) {
            Some(MODEL_FORMAT) => {}
            Some(WEIGHTS_FORMAT) => {
                return Err(file.error(
                    "holds weights only, not a whole model: build the model in code and call load_weights",
                ));
            }
            _ => {
                return Err(file.error(
                    "is a safetensors file but not a brick model (no \"brick.model\" format in its metadata); for weights alone use load_weights",
                ));
            }
        }
        let config = file
            .header
            .get("config")
            .ok_or_else(|| file.error("has no model config in its metadata"))?;
        // The element counts of the file's weights (not optimizer state): they bound what
        // its config may ask to allocate.
        let weight_sizes: Vec<usize> = file
            .tensors
            .tensors()
            .iter()
            .filter(|(name, _)| !name.starts_with(OPTIMIZER_PREFIX))
            .map(|(_, t)| t.shape().iter().product())
            .collect();
        let mut model = config::model_from_json::<T>(config, Some(weight_sizes.iter().sum()))
            .map_err(|e| file.error(format!("model config: {e}")))?;
        let training = file.header.get("training").cloned().unwrap_or(json!({}));
        let count = |key: &str| -> Result<u64> {
            match training.get(key) {
                None | Some(Value::Null) => Ok(0),
                Some(v) => v.as_u64().ok_or_else(|| {
                    file.error(format!("training.{key}: expected a whole number, got {v}"))
                }),
            }
        };
        let epochs = count("completed_epochs")?;
        let steps = count("optimizer_steps")?;
        if !weight_sizes.is_empty() {
            if !model.is_built() {
                return Err(file.error(
                    "holds weights but its config gives no input_shape to build the model for",
                ));
            }
            let weights = model.read_weights(&file, true)?;
            model.set_weights(&weights)?;
        }
        if !model.restore_optimizer_state(&file, steps)?
            && let Some(opt) = model.optimizer_mut()
        {
            opt.common_mut().set_iterations(steps);
        }
        model.set_completed_epochs(epochs as usize);
        Ok(model)
    }
}

#[cfg(test)]
mod tests;
