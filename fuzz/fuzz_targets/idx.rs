//! IDX files (MNIST's format), gzipped or raw: any bytes give an `Idx` or an error, never a
//! panic, a hang or an allocation beyond the file's own claims.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = brick::data::decode_idx(data, std::path::Path::new("fuzz.idx"));
});
