//! A model's configuration as JSON, both ways: the layers (with their activations and
//! initializers), the loss, the metrics and the optimizer with its hyperparameters. The
//! layout follows Keras's (`{"class_name": ..., "config": {...}}`), the names are Keras's.
//!
//! Reading is strict: a missing entry, a value of the wrong type or range, and an entry the
//! reader does not know are all errors that name the path (`layers[1].config.units`).

use std::str::FromStr;

use optim::{LearningRate, Optimizer, schedule};
use serde_json::{Map, Value, json};
use tensor::Element;

use crate::activations::Activation;
use crate::initializers::{FanMode, INITIALIZER_NAMES, Initializer, ScalingDistribution};
use crate::layers::{ActivationLayer, Dense, Layer};
use crate::losses::{LOSS_NAMES, Loss};
use crate::metrics::{Metric, MetricKind};
use crate::model::Sequential;
use crate::save::json::{ConfigResult, Field};

/// The version of the layout below; a reader refuses files of a newer one.
pub(crate) const FORMAT_VERSION: u64 = 1;

/// `{"class_name": name, "config": {...}}`.
fn object(class_name: &str, config: Value) -> Value {
    json!({ "class_name": class_name, "config": config })
}

/// Reads `{"class_name": one of valid, "config": {...}}`, checking `config` has only
/// `known` entries, and hands both to `f`.
fn read_object<V>(
    f: Field<'_>,
    valid: &[&str],
    known: impl Fn(&str) -> &'static [&'static str],
    build: impl FnOnce(&str, Field<'_>) -> ConfigResult<V>,
) -> ConfigResult<V> {
    f.only(&["class_name", "config"])?;
    let class = f.get("class_name", |c| c.one_of(valid).map(str::to_string))?;
    f.get("config", |config| {
        config.only(known(&class))?;
        build(&class, config)
    })
}

// ---- activations ------------------------------------------------------------------------

pub(crate) fn activation_to_json(a: &Activation) -> Value {
    match *a {
        Activation::Elu { alpha } => object("elu", json!({ "alpha": alpha })),
        Activation::LeakyRelu { negative_slope } => {
            object("leaky_relu", json!({ "negative_slope": negative_slope }))
        }
        other => json!(other.name()),
    }
}

pub(crate) fn activation_from_json(f: Field<'_>) -> ConfigResult<Activation> {
    if f.value.is_string() {
        let name = f.one_of(crate::activations::ACTIVATION_NAMES)?;
        return Activation::from_str(name).map_err(|e| e.to_string());
    }
    read_object(
        f,
        &["elu", "leaky_relu"],
        |class| match class {
            "elu" => &["alpha"],
            _ => &["negative_slope"],
        },
        |class, c| {
            Ok(match class {
                "elu" => Activation::Elu {
                    alpha: c.get("alpha", |v| v.f64())?,
                },
                _ => Activation::LeakyRelu {
                    negative_slope: c.get("negative_slope", |v| v.f64())?,
                },
            })
        },
    )
}

// ---- initializers -----------------------------------------------------------------------

const FAN_MODES: [(&str, FanMode); 3] = [
    ("fan_in", FanMode::FanIn),
    ("fan_out", FanMode::FanOut),
    ("fan_avg", FanMode::FanAvg),
];
const DISTRIBUTIONS: [(&str, ScalingDistribution); 3] = [
    ("truncated_normal", ScalingDistribution::TruncatedNormal),
    ("untruncated_normal", ScalingDistribution::UntruncatedNormal),
    ("uniform", ScalingDistribution::Uniform),
];

pub(crate) fn initializer_to_json(i: &Initializer) -> Value {
    let config = match *i {
        Initializer::Constant(value) => json!({ "value": value }),
        Initializer::RandomUniform { minval, maxval } => {
            json!({ "minval": minval, "maxval": maxval })
        }
        Initializer::RandomNormal { mean, stddev }
        | Initializer::TruncatedNormal { mean, stddev } => {
            json!({ "mean": mean, "stddev": stddev })
        }
        Initializer::Orthogonal { gain } | Initializer::Identity { gain } => {
            json!({ "gain": gain })
        }
        Initializer::VarianceScaling {
            scale,
            mode,
            distribution,
        } if i.name() == "variance_scaling" => json!({
            "scale": scale,
            "mode": FAN_MODES.iter().find(|(_, m)| *m == mode).map(|(n, _)| *n),
            "distribution": DISTRIBUTIONS.iter().find(|(_, d)| *d == distribution).map(|(n, _)| *n),
        }),
        // Zeros, ones and the named variance-scaling family (glorot_uniform, ...).
        _ => json!({}),
    };
    object(i.name(), config)
}

pub(crate) fn initializer_from_json(f: Field<'_>) -> ConfigResult<Initializer> {
    read_object(
        f,
        INITIALIZER_NAMES,
        |class| match class {
            "constant" => &["value"],
            "uniform" | "random_uniform" => &["minval", "maxval"],
            "normal" | "random_normal" | "truncated_normal" => &["mean", "stddev"],
            "orthogonal" | "identity" => &["gain"],
            "variance_scaling" => &["scale", "mode", "distribution"],
            _ => &[],
        },
        |class, c| {
            let num = |key: &str| c.get(key, |v| v.f64());
            Ok(match class {
                "constant" => Initializer::Constant(num("value")?),
                "uniform" | "random_uniform" => Initializer::RandomUniform {
                    minval: num("minval")?,
                    maxval: num("maxval")?,
                },
                "normal" | "random_normal" => Initializer::RandomNormal {
                    mean: num("mean")?,
                    stddev: num("stddev")?,
                },
                "truncated_normal" => Initializer::TruncatedNormal {
                    mean: num("mean")?,
                    stddev: num("stddev")?,
                },
                "orthogonal" => Initializer::Orthogonal { gain: num("gain")? },
                "identity" => Initializer::Identity { gain: num("gain")? },
                "variance_scaling" => {
                    let modes: Vec<&str> = FAN_MODES.iter().map(|(n, _)| *n).collect();
                    let dists: Vec<&str> = DISTRIBUTIONS.iter().map(|(n, _)| *n).collect();
                    let mode = c.get("mode", |v| v.one_of(&modes))?;
                    let dist = c.get("distribution", |v| v.one_of(&dists))?;
                    Initializer::VarianceScaling {
                        scale: num("scale")?,
                        mode: FAN_MODES
                            .iter()
                            .find(|(n, _)| *n == mode)
                            .expect("checked")
                            .1,
                        distribution: DISTRIBUTIONS
                            .iter()
                            .find(|(n, _)| *n == dist)
                            .expect("checked")
                            .1,
                    }
                }
                // Parameterless names (zeros, ones, glorot_uniform, ...).
                name => Initializer::from_str(name).map_err(|e| e.to_string())?,
            })
        },
    )
}

// ---- losses and metrics -----------------------------------------------------------------

pub(crate) fn loss_to_json(l: &Loss) -> Value {
    let config = match *l {
        Loss::Huber { delta } => json!({ "delta": delta }),
        Loss::BinaryCrossentropy {
            from_logits,
            label_smoothing,
        }
        | Loss::CategoricalCrossentropy {
            from_logits,
            label_smoothing,
        } => json!({ "from_logits": from_logits, "label_smoothing": label_smoothing }),
        Loss::SparseCategoricalCrossentropy { from_logits } => {
            json!({ "from_logits": from_logits })
        }
        _ => json!({}),
    };
    object(l.name(), config)
}

pub(crate) fn loss_from_json(f: Field<'_>) -> ConfigResult<Loss> {
    read_object(
        f,
        LOSS_NAMES,
        |class| match class {
            "huber" => &["delta"],
            "binary_crossentropy" | "categorical_crossentropy" => {
                &["from_logits", "label_smoothing"]
            }
            "sparse_categorical_crossentropy" => &["from_logits"],
            _ => &[],
        },
        |class, c| {
            let logits = || c.get("from_logits", |v| v.bool());
            let smoothing = || c.get("label_smoothing", |v| v.f64());
            Ok(match class {
                "huber" => Loss::Huber {
                    delta: c.get("delta", |v| v.f64())?,
                },
                "binary_crossentropy" => Loss::BinaryCrossentropy {
                    from_logits: logits()?,
                    label_smoothing: smoothing()?,
                },
                "categorical_crossentropy" => Loss::CategoricalCrossentropy {
                    from_logits: logits()?,
                    label_smoothing: smoothing()?,
                },
                "sparse_categorical_crossentropy" => Loss::SparseCategoricalCrossentropy {
                    from_logits: logits()?,
                },
                name => Loss::from_str(name).map_err(|e| e.to_string())?,
            })
        },
    )
}

const METRIC_KINDS: &[&str] = &[
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "mean_squared_error",
    "mean_absolute_error",
];

fn metric_to_json(m: &Metric) -> Value {
    let (kind, config) = match m.kind {
        MetricKind::Accuracy => ("accuracy", json!({})),
        MetricKind::BinaryAccuracy { threshold } => {
            ("binary_accuracy", json!({ "threshold": threshold }))
        }
        MetricKind::CategoricalAccuracy => ("categorical_accuracy", json!({})),
        MetricKind::SparseCategoricalAccuracy => ("sparse_categorical_accuracy", json!({})),
        MetricKind::TopKCategoricalAccuracy { k } => {
            ("top_k_categorical_accuracy", json!({ "k": k }))
        }
        MetricKind::SparseTopKCategoricalAccuracy { k } => {
            ("sparse_top_k_categorical_accuracy", json!({ "k": k }))
        }
        MetricKind::MeanSquaredError => ("mean_squared_error", json!({})),
        MetricKind::MeanAbsoluteError => ("mean_absolute_error", json!({})),
    };
    json!({ "name": m.name, "kind": object(kind, config) })
}

fn metric_from_json(f: Field<'_>) -> ConfigResult<Metric> {
    f.only(&["name", "kind"])?;
    let name = f.get("name", |n| n.str().map(str::to_string))?;
    let kind = f.get("kind", |k| {
        read_object(
            k,
            METRIC_KINDS,
            |class| match class {
                "binary_accuracy" => &["threshold"],
                "top_k_categorical_accuracy" | "sparse_top_k_categorical_accuracy" => &["k"],
                _ => &[],
            },
            |class, c| {
                Ok(match class {
                    "accuracy" => MetricKind::Accuracy,
                    "binary_accuracy" => MetricKind::BinaryAccuracy {
                        threshold: c.get("threshold", |v| v.f64())?,
                    },
                    "categorical_accuracy" => MetricKind::CategoricalAccuracy,
                    "sparse_categorical_accuracy" => MetricKind::SparseCategoricalAccuracy,
                    "top_k_categorical_accuracy" => MetricKind::TopKCategoricalAccuracy {
                        k: c.get("k", |v| v.count(1))?,
                    },
                    "sparse_top_k_categorical_accuracy" => {
                        MetricKind::SparseTopKCategoricalAccuracy {
                            k: c.get("k", |v| v.count(1))?,
                        }
                    }
                    "mean_squared_error" => MetricKind::MeanSquaredError,
                    _ => MetricKind::MeanAbsoluteError,
                })
            },
        )
    })?;
    Ok(Metric::new(name, kind))
}

// ---- optimizers ---------------------------------------------------------------------------

const CLIPPING: [&str; 4] = ["weight_decay", "clipnorm", "clipvalue", "global_clipnorm"];

pub(crate) fn optimizer_to_json<T: Element>(o: &dyn Optimizer<T>) -> Value {
    let common = o.common();
    let mut config = Map::new();
    let learning_rate = match &common.learning_rate {
        LearningRate::Constant(v) => json!(v),
        LearningRate::Schedule(s) => {
            // Pairs, not an object: a schedule may repeat a key (piecewise boundaries).
            let pairs: Vec<Value> = s.config().into_iter().map(|(k, v)| json!([k, v])).collect();
            object(s.name(), Value::Array(pairs))
        }
    };
    config.insert("learning_rate".into(), learning_rate);
    for (k, v) in o.hyperparameters() {
        config.insert(k.into(), json!(v));
    }
    let options = [
        common.weight_decay,
        common.clipnorm,
        common.clipvalue,
        common.global_clipnorm,
    ];
    for (k, v) in CLIPPING.iter().zip(options) {
        config.insert((*k).into(), json!(v));
    }
    object(o.name(), Value::Object(config))
}

pub(crate) fn optimizer_from_json<T: Element>(f: Field<'_>) -> ConfigResult<Box<dyn Optimizer<T>>> {
    f.only(&["class_name", "config"])?;
    let name = f.get("class_name", |c| c.one_of(optim::OPTIMIZER_NAMES))?;
    let mut opt = optim::by_name::<T>(name).map_err(|e| e.to_string())?;
    f.get("config", |c| {
        let entries = match c.value {
            Value::Object(m) => m,
            _ => {
                return Err(format!(
                    "optimizer.config: expected an object, got {}",
                    c.value
                ));
            }
        };
        for key in entries.keys() {
            match key.as_str() {
                "learning_rate" => {
                    let lr = c.get("learning_rate", learning_rate_from_json)?;
                    opt.common_mut().learning_rate = lr;
                }
                k if CLIPPING.contains(&k) => {
                    let v = c.get_opt(k, |v| v.f64())?;
                    let common = opt.common_mut();
                    match k {
                        "weight_decay" => common.weight_decay = v,
                        "clipnorm" => common.clipnorm = v,
                        "clipvalue" => common.clipvalue = v,
                        _ => common.global_clipnorm = v,
                    }
                }
                k => {
                    let v = c.get(k, |v| v.f64())?;
                    opt.set_hyperparameter(k, v)
                        .map_err(|e| format!("optimizer.config: {e}"))?;
                }
            }
        }
        Ok(())
    })?;
    opt.validate()
        .map_err(|e| format!("optimizer.config: {e}"))?;
    Ok(opt)
}

fn learning_rate_from_json(f: Field<'_>) -> ConfigResult<LearningRate> {
    if f.value.is_number() {
        let v = f.f64()?;
        return if v >= 0.0 {
            Ok(LearningRate::Constant(v))
        } else {
            Err(format!("learning_rate: must be at least 0, got {v}"))
        };
    }
    f.only(&["class_name", "config"])?;
    let name = f.get("class_name", |c| c.one_of(schedule::SCHEDULE_NAMES))?;
    let pairs = f.get("config", |c| {
        c.items(|pair| {
            let key = pair.items(|item| Ok(item.value.clone()))?;
            match key.as_slice() {
                // A missing optional value (no warmup) is stored as null: NaN.
                [Value::String(k), v] => Ok((k.clone(), v.as_f64().unwrap_or(f64::NAN))),
                _ => Err(format!(
                    "learning_rate.config: expected [name, number] pairs, got {}",
                    pair.value
                )),
            }
        })
    })?;
    schedule::from_config(name, &pairs)
        .map(LearningRate::Schedule)
        .map_err(|e| format!("learning_rate: {e}"))
}

// ---- layers -----------------------------------------------------------------------------

/// The layer classes [`layer_from_json`] builds.
pub const LAYER_CLASSES: &[&str] = &["Dense", "Activation"];

pub(crate) fn dense_config(
    units: usize,
    activation: &Activation,
    use_bias: bool,
    kernel_initializer: &Initializer,
    bias_initializer: &Initializer,
) -> Map<String, Value> {
    let v = json!({
        "units": units,
        "activation": activation_to_json(activation),
        "use_bias": use_bias,
        "kernel_initializer": initializer_to_json(kernel_initializer),
        "bias_initializer": initializer_to_json(bias_initializer),
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("an object literal"),
    }
}

/// A layer from `{"class_name": "Dense", "config": {...}}` (the config as
/// [`Layer::config`] writes it, plus `name`).
fn layer_from_json<T: Element>(f: Field<'_>) -> ConfigResult<Box<dyn Layer<T>>> {
    read_object(
        f,
        LAYER_CLASSES,
        |class| match class {
            "Dense" => &[
                "name",
                "units",
                "activation",
                "use_bias",
                "kernel_initializer",
                "bias_initializer",
            ],
            _ => &["name", "activation"],
        },
        |class, c| {
            let name = c.get("name", |n| n.str().map(str::to_string))?;
            let activation = c.get("activation", activation_from_json)?;
            let mut layer: Box<dyn Layer<T>> = match class {
                "Dense" => Box::new(
                    Dense::new(c.get("units", |u| u.count(1))?)
                        .activation(activation)
                        .use_bias(c.get("use_bias", |b| b.bool())?)
                        .kernel_initializer(c.get("kernel_initializer", initializer_from_json)?)
                        .bias_initializer(c.get("bias_initializer", initializer_from_json)?)
                        .name(name),
                ),
                _ => Box::new(ActivationLayer::new(activation).name(name)),
            };
            match layer.take_error() {
                Some(e) => Err(e.to_string()),
                None => Ok(layer),
            }
        },
    )
}

// ---- the model ----------------------------------------------------------------------------

/// The model's configuration: architecture and, if compiled, loss, metrics and optimizer.
pub(crate) fn model_to_json<T: Element>(m: &Sequential<T>) -> Value {
    let layers: Vec<Value> = m
        .layers()
        .iter()
        .map(|l| {
            let mut config = Map::new();
            config.insert("name".into(), json!(l.name().unwrap_or_default()));
            config.extend(l.config());
            object(l.class_name(), Value::Object(config))
        })
        .collect();
    let compile = m.optimizer().map(|o| {
        json!({
            "optimizer": optimizer_to_json(o),
            "loss": m.loss().as_ref().map(loss_to_json),
            "metrics": m.metrics().iter().map(metric_to_json).collect::<Vec<_>>(),
        })
    });
    json!({
        "class_name": "Sequential",
        "format_version": FORMAT_VERSION,
        "config": {
            "name": m.name(),
            "dtype": T::DTYPE,
            "seed": m.seed(),
            "input_dim": m.input_dim(),
            "layers": layers,
        },
        "compile_config": compile,
    })
}

/// Refuses layers that would create more than `max` weights for their input size (the
/// config's `input_dim`, else the first layer's), before anything is allocated.
fn check_declared_weights<T: Element>(
    layers: &[Box<dyn Layer<T>>],
    input_dim: Option<usize>,
    max: usize,
) -> ConfigResult<()> {
    let Some(mut d) = input_dim.or_else(|| layers.first().and_then(|l| l.input_dim())) else {
        return Ok(()); // not built: no weights are created
    };
    let mut total = 0usize;
    for layer in layers {
        total = layer
            .param_count(d)
            .and_then(|n| total.checked_add(n))
            .unwrap_or(usize::MAX);
        d = layer.output_dim(d);
    }
    if total > max {
        let declared = if total == usize::MAX {
            "more weights than fit in memory".to_string()
        } else {
            format!("{total} weights")
        };
        return Err(format!(
            "config.layers: the layers declare {declared}, but the file holds {max}"
        ));
    }
    Ok(())
}

/// The model a configuration describes (layers built if the config knows the input size,
/// compiled if it was), without trained weights: the freshly drawn ones of its seed. With
/// `max_weights`, a configuration that declares more weights than that is refused before
/// any is allocated (a model file's config must fit the tensors the file holds).
pub(crate) fn model_from_json<T: Element>(
    v: &Value,
    max_weights: Option<usize>,
) -> ConfigResult<Sequential<T>> {
    let root = Field::root(v);
    root.only(&["class_name", "format_version", "config", "compile_config"])?;
    root.get("class_name", |c| c.one_of(&["Sequential"]))?;
    let version = root.get("format_version", |v| v.u64())?;
    if version > FORMAT_VERSION {
        return Err(format!(
            "format_version: this file is version {version}; this brick reads versions up to {FORMAT_VERSION} (a newer brick wrote it)"
        ));
    }
    let mut model = root.get("config", |c| {
        c.only(&["name", "dtype", "seed", "input_dim", "layers"])?;
        let dtype = c.get("dtype", |d| d.one_of(&["f32", "f64"]))?;
        if dtype != T::DTYPE {
            return Err(format!(
                "config.dtype: the model was saved as {dtype}; load it as Sequential::<{dtype}>, not Sequential::<{}>",
                T::DTYPE
            ));
        }
        let mut model = Sequential::<T>::default();
        model.set_seed(c.get("seed", |s| s.u64())?);
        model.set_name(c.get("name", |n| n.str().map(str::to_string))?);
        let layers = c.get("layers", |l| l.items(layer_from_json::<T>))?;
        let input_dim = c.get_opt("input_dim", |d| d.count(1))?;
        if let Some(max) = max_weights {
            check_declared_weights(&layers, input_dim, max)?;
        }
        for (i, layer) in layers.into_iter().enumerate() {
            model
                .add_boxed(layer)
                .map_err(|e| format!("config.layers[{i}]: {e}"))?;
        }
        if let Some(d) = input_dim {
            model.build(d).map_err(|e| format!("config.input_dim: {e}"))?;
        }
        Ok(model)
    })?;
    if let Some((optimizer, loss, metrics)) = root.get_opt("compile_config", |c| {
        c.only(&["optimizer", "loss", "metrics"])?;
        Ok((
            c.get("optimizer", optimizer_from_json::<T>)?,
            c.get("loss", loss_from_json)?,
            c.get("metrics", |m| m.items(metric_from_json))?,
        ))
    })? {
        model
            .compile(optimizer, loss, metrics)
            .map_err(|e| format!("compile_config: {e}"))?;
    }
    Ok(model)
}
