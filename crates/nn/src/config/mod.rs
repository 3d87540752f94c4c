//! Configs as JSON: reading them with errors that give the path ([`Field`]), and the
//! `{"class_name": ..., "config": {...}}` form of the small components (activations,
//! initializers) that layers' configs hold. Each layer writes and reads its own config
//! with these; `save` only assembles the model's.

mod field;

pub(crate) use field::{ConfigResult, Field};

use std::str::FromStr;

use serde_json::{Map, Value, json};

use crate::activations::Activation;
use crate::initializers::{FanMode, INITIALIZER_NAMES, Initializer, ScalingDistribution};

/// `{"class_name": name, "config": {...}}`.
pub(crate) fn object(class_name: &str, config: Value) -> Value {
    json!({ "class_name": class_name, "config": config })
}

/// Reads `{"class_name": one of valid, "config": {...}}`, checking `config` has only
/// `known` entries, and hands both to `f`.
pub(crate) fn read_object<V>(
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

/// A JSON object literal as a map.
pub(crate) fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("an object literal"),
    }
}
