//! A model's configuration as JSON, both ways: the layers (with their activations and
//! initializers), the loss, the metrics and the optimizer with its hyperparameters. The
//! layout follows Keras's (`{"class_name": ..., "config": {...}}`), the names are Keras's.
//!
//! Reading is strict: a missing entry, a value of the wrong type or range, and an entry the
//! reader does not know are all errors that name the path (`layers[1].config.units`).

use std::str::FromStr;

use optim::{CommonOption, LearningRate, Optimizer, schedule};
use serde_json::{Map, Value, json};
use tensor::Element;

use crate::config::{ConfigResult, Field, object, read_object};
use crate::layers::Layer;
use crate::layers::registry::layer_from_config;
use crate::losses::{
    BinaryCrossentropy, CategoricalCrossentropy, LOSS_NAMES, Loss, SparseCategoricalCrossentropy,
};
use crate::metrics::{Metric, MetricKind};
use crate::model::Sequential;

/// The version of the layout below; a reader refuses files of a newer one.
/// Version 2: `input_shape` for `input_dim`, optimizer state by name.
pub(crate) const FORMAT_VERSION: u64 = 2;

// ---- losses and metrics -----------------------------------------------------------------

/// A component (loss, metric, optimizer) that is not built in: `Some` from the registry when
/// `{"class_name": name, "config": {...}}` names one registered for the model's element
/// type, an error saying how to register it when it names one that is not, and `None` for
/// a built-in name (read as usual).
fn custom_component<V>(
    f: &Field<'_>,
    builtin: &[&str],
    kind: &str,
    register: &str,
    registered: impl FnOnce(&str, &Map<String, Value>) -> Option<crate::Result<V>>,
) -> ConfigResult<Option<V>> {
    let Some(class) = f.value.get("class_name").and_then(Value::as_str) else {
        return Ok(None);
    };
    if builtin.contains(&class) {
        return Ok(None);
    }
    let empty = Map::new();
    let config = f
        .value
        .get("config")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    match registered(class, config) {
        Some(v) => v.map(Some).map_err(|e| format!("{}: {e}", f.path())),
        None => Err(format!(
            "{}: the {kind} '{class}' is neither built in ({}) nor registered; register it \
             with {register}(\"{class}\", factory) before loading",
            if f.path().is_empty() { kind } else { f.path() },
            builtin.join(", ")
        )),
    }
}

pub(crate) fn loss_to_json(l: &Loss) -> Value {
    let config = match l {
        Loss::Huber { delta } => json!({ "delta": delta }),
        Loss::BinaryCrossentropy(o) => json!({
            "from_logits": o.from_logits, "label_smoothing": o.label_smoothing, "axis": o.axis
        }),
        Loss::CategoricalCrossentropy(o) => json!({
            "from_logits": o.from_logits, "label_smoothing": o.label_smoothing, "axis": o.axis
        }),
        Loss::SparseCategoricalCrossentropy(o) => {
            json!({ "from_logits": o.from_logits, "ignore_class": o.ignore_class })
        }
        Loss::Custom(c) => Value::Object(c.config().clone()),
        _ => json!({}),
    };
    object(l.name(), config)
}

/// A loss from its saved config. `axis` and `ignore_class` are optional (files written
/// before they existed have neither), with Keras's defaults.
pub(crate) fn loss_from_json<T: Element>(f: Field<'_>) -> ConfigResult<Loss> {
    // A loss of one's own, registered for this element type (or named but missing).
    if let Some(loss) = custom_component(
        &f,
        LOSS_NAMES,
        "loss",
        "nn::losses::register_loss",
        |name, c| crate::losses::registered_loss::<T>(name, c),
    )? {
        return Ok(loss);
    }
    read_object(
        f,
        LOSS_NAMES,
        |class| match class {
            "huber" => &["delta"],
            "binary_crossentropy" | "categorical_crossentropy" => {
                &["from_logits", "label_smoothing", "axis"]
            }
            "sparse_categorical_crossentropy" => &["from_logits", "ignore_class"],
            _ => &[],
        },
        |class, c| {
            let logits = || c.get("from_logits", |v| v.bool());
            let smoothing = || c.get("label_smoothing", |v| v.f64());
            let axis = || -> ConfigResult<isize> {
                Ok(c.get_opt("axis", |v| v.int())?.unwrap_or(-1) as isize)
            };
            Ok(match class {
                "huber" => Loss::Huber {
                    delta: c.get("delta", |v| v.f64())?,
                },
                "binary_crossentropy" => BinaryCrossentropy::new()
                    .from_logits(logits()?)
                    .label_smoothing(smoothing()?)
                    .axis(axis()?)
                    .into(),
                "categorical_crossentropy" => CategoricalCrossentropy::new()
                    .from_logits(logits()?)
                    .label_smoothing(smoothing()?)
                    .axis(axis()?)
                    .into(),
                "sparse_categorical_crossentropy" => {
                    Loss::SparseCategoricalCrossentropy(SparseCategoricalCrossentropy {
                        from_logits: logits()?,
                        ignore_class: c.get_opt("ignore_class", |v| v.int())?,
                    })
                }
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
    let (kind, config) = match &m.kind {
        MetricKind::Custom(c) => (c.name(), Value::Object(c.config().clone())),
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

fn metric_from_json<T: Element>(f: Field<'_>) -> ConfigResult<Metric> {
    f.only(&["name", "kind"])?;
    let name = f.get("name", |n| n.str().map(str::to_string))?;
    let custom = f.get("kind", |k| {
        custom_component(
            &k,
            METRIC_KINDS,
            "metric",
            "nn::metrics::register_metric",
            |n, c| crate::metrics::registered_metric::<T>(n, c),
        )
    })?;
    if let Some(metric) = custom {
        return Ok(Metric::new(name, metric.kind));
    }
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
    for option in CommonOption::ALL {
        config.insert(option.name().into(), json!(common.option(option)));
    }
    object(o.name(), Value::Object(config))
}

pub(crate) fn optimizer_from_json<T: Element>(f: Field<'_>) -> ConfigResult<Box<dyn Optimizer<T>>> {
    f.only(&["class_name", "config"])?;
    let name = f.get("class_name", |c| c.str().map(str::to_string))?;
    let name = name.as_str();
    // A built-in name, or one a crate registered for this element type.
    let mut opt = optim::by_name::<T>(name).map_err(|_| {
        format!(
            "{}.class_name: the optimizer '{name}' is neither built in ({}) nor registered; \
             register it with optim::register_optimizer(\"{name}\", factory) before loading",
            f.path(),
            optim::OPTIMIZER_NAMES.join(", ")
        )
    })?;
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
        // The shared options are set together and checked once: one at a time, a file
        // that moves from one kind of clipping to another would pass through both.
        let mut options = Vec::new();
        for key in entries.keys() {
            match key.as_str() {
                "learning_rate" => {
                    let lr = c.get("learning_rate", learning_rate_from_json)?;
                    opt.common_mut().learning_rate = lr;
                }
                k if CommonOption::from_name(k).is_some() => {
                    let option = CommonOption::from_name(k).expect("an option's name");
                    options.push((option, c.get_opt(k, |v| v.f64())?));
                }
                k => {
                    let v = c.get(k, |v| v.f64())?;
                    opt.set_hyperparameter(k, v)
                        .map_err(|e| format!("optimizer.config: {e}"))?;
                }
            }
        }
        opt.set_options(&options)
            .map_err(|e| format!("optimizer.config: {e}"))
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

/// A layer from `{"class_name": "Dense", "config": {...}}` (the config as
/// [`Layer::config`] writes it, plus `name`), built in or registered.
fn layer_from_json<T: Element>(f: Field<'_>) -> ConfigResult<Box<dyn Layer<T>>> {
    f.only(&["class_name", "config"])?;
    f.get("class_name", |class| {
        class.str()?;
        f.get("config", |c| {
            let name = c.get("name", |n| n.str().map(str::to_string))?;
            let mut layer = layer_from_config::<T>(class, c)?;
            if let Some(e) = layer.take_error() {
                return Err(format!("{}: {e}", c.path()));
            }
            layer.set_name(name);
            Ok(layer)
        })
    })
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
            "input_shape": m.input_shape(),
            "layers": layers,
        },
        "compile_config": compile,
    })
}

/// Refuses layers that would create more than `max` weights for their input shape (the
/// config's `input_shape`, else the first layer's), before anything is allocated.
fn check_declared_weights<T: Element>(
    layers: &[Box<dyn Layer<T>>],
    input_shape: Option<Vec<usize>>,
    max: usize,
) -> ConfigResult<()> {
    let Some(mut shape) = input_shape.or_else(|| {
        layers
            .first()
            .and_then(|l| l.input_shape().map(<[usize]>::to_vec))
    }) else {
        return Ok(()); // not built: no weights are created
    };
    let mut total = 0usize;
    for (i, layer) in layers.iter().enumerate() {
        let count = layer.weight_shapes(&shape).and_then(|ws| {
            ws.iter().try_fold(0usize, |acc, (_, s)| {
                acc.checked_add(s.iter().try_fold(1usize, |p, &d| p.checked_mul(d))?)
            })
        });
        total = count
            .and_then(|n| total.checked_add(n))
            .unwrap_or(usize::MAX);
        shape = layer
            .output_shape(&shape)
            .map_err(|e| format!("config.layers[{i}]: {e}"))?;
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
        c.only(&["name", "dtype", "seed", "input_shape", "input_dim", "layers"])?;
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
        // Format 1 saved `input_dim`, a width.
        let input_shape = match c.get_opt("input_shape", |s| s.items(|d| d.count(1)))? {
            Some(s) => Some(s),
            None => c.get_opt("input_dim", |d| d.count(1))?.map(|d| vec![d]),
        };
        if let Some(max) = max_weights {
            check_declared_weights(&layers, input_shape.clone(), max)?;
        }
        for (i, layer) in layers.into_iter().enumerate() {
            model
                .add_boxed(layer)
                .map_err(|e| format!("config.layers[{i}]: {e}"))?;
        }
        if let Some(shape) = input_shape {
            model
                .build(&shape)
                .map_err(|e| format!("config.input_shape: {e}"))?;
        }
        Ok(model)
    })?;
    if let Some((optimizer, loss, metrics)) = root.get_opt("compile_config", |c| {
        c.only(&["optimizer", "loss", "metrics"])?;
        Ok((
            c.get("optimizer", optimizer_from_json::<T>)?,
            c.get("loss", loss_from_json::<T>)?,
            c.get("metrics", |m| m.items(metric_from_json::<T>))?,
        ))
    })? {
        model
            .compile(optimizer, loss, metrics)
            .map_err(|e| format!("compile_config: {e}"))?;
    }
    Ok(model)
}
