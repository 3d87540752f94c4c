//! Model configs (JSON): any text gives a model or an error, never a panic.
#![no_main]

use brick::prelude::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Sequential::<f32>::from_json(&String::from_utf8_lossy(data));
});
