//! Weights files: any bytes loaded into a model give its new weights or an error (and an
//! unchanged model), never a panic.
#![no_main]

use brick::prelude::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut model = Sequential::<f32>::with_seed(0);
    model.add(Dense::new(3).input_dim(2)).unwrap();
    model.add(Dense::new(1)).unwrap();
    let before = model.get_weights();
    if model.load_weights_from_bytes(data).is_err() {
        assert_eq!(
            model.get_weights(),
            before,
            "a rejected file changed the model"
        );
    }
});
