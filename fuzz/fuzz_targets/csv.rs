//! CSV tables: any text gives a table or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let source = std::path::Path::new("fuzz.csv");
    let _ = brick::data::parse_csv::<f32>(&text, "y", source);
    let _ = brick::data::parse_csv::<f64>(&text, "species", source);
});
