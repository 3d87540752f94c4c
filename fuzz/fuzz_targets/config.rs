//! Model configs (JSON): any text gives a model or an error, never a panic or an abort.
//!
//! A config may ask for weights of any size, and brick then allocates them (an impossible
//! size is an error). So that this target tests the parsing and not the machine's memory,
//! configs that declare more than 1e8 weights in all are skipped.
#![no_main]

use brick::prelude::*;
use libfuzzer_sys::fuzz_target;

/// The number of weights the config's Dense layers declare (saturating; 0 if unreadable).
fn declared_weights(text: &str) -> u64 {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return 0;
    };
    let config = &v["config"];
    let mut inputs = config["input_dim"].as_u64().unwrap_or(0);
    let mut total: u64 = 0;
    for layer in config["layers"].as_array().into_iter().flatten() {
        if let Some(units) = layer["config"]["units"].as_u64() {
            total = total.saturating_add(inputs.saturating_add(1).saturating_mul(units));
            inputs = units;
        }
    }
    total
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if declared_weights(&text) > 100_000_000 {
        return;
    }
    let _ = Sequential::<f32>::from_json(&text);
});
