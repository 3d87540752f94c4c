//! Fidelity to Keras 3 for shaped data: the keras.io MNIST convnet (with Dropout rate 0), a
//! Conv2D with `same` padding and strides 2 followed by BatchNormalization, and max and
//! average pooling with both paddings. Given Keras's initial weights and the same batches,
//! every training step's loss, the final weights (BatchNormalization's moving statistics
//! included) and the predictions afterwards (inference mode) must equal Keras's to 1e-4.
//!
//! The numbers in `tests/fixtures/keras_fidelity_conv.json` come from Keras 3.15.1 on JAX
//! (float32), made by `tools/keras_fidelity_conv.py` (run by hand; see its header).

use brick::prelude::*;
use serde_json::Value;

mod common;
use common::tensor;

fn fixture() -> Value {
    common::fixture("keras_fidelity_conv.json")
}

/// 1e-4 relative, or 1e-6 absolute for values near zero (a weight that barely moved).
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * a.abs().max(b.abs()).max(1e-2)
}

/// The same layers as the fixture script builds, case by case.
fn model(name: &str) -> Sequential {
    let mut m = Sequential::with_seed(0);
    match name {
        "convnet" => {
            m.add(Input::new([28, 28, 1])).unwrap();
            m.add(Conv2D::new(32, 3).activation("relu")).unwrap();
            m.add(MaxPooling2D::new(2)).unwrap();
            m.add(Conv2D::new(64, 3).activation("relu")).unwrap();
            m.add(MaxPooling2D::new(2)).unwrap();
            m.add(Flatten::new()).unwrap();
            m.add(Dropout::new(0.0)).unwrap();
            m.add(Dense::new(10).activation("softmax")).unwrap();
        }
        "same_stride2_batchnorm" => {
            m.add(Input::new([10, 10, 2])).unwrap();
            m.add(
                Conv2D::new(4, 3)
                    .strides(2)
                    .padding("same")
                    .activation("relu"),
            )
            .unwrap();
            m.add(BatchNormalization::new()).unwrap();
            m.add(AveragePooling2D::new(2).padding("same")).unwrap();
            m.add(Flatten::new()).unwrap();
            m.add(Dense::new(3).activation("softmax")).unwrap();
        }
        "poolings" => {
            m.add(Input::new([9, 9, 2])).unwrap();
            m.add(Conv2D::new(3, 2).activation("tanh")).unwrap();
            m.add(MaxPooling2D::new(3).strides(2).padding("same"))
                .unwrap();
            m.add(AveragePooling2D::new(2).strides(1).padding("valid"))
                .unwrap();
            m.add(Conv2D::new(4, 1)).unwrap();
            m.add(MaxPooling2D::new(2).strides(2).padding("valid"))
                .unwrap();
            m.add(GlobalAveragePooling2D::new()).unwrap();
            m.add(Dense::new(3).activation("softmax")).unwrap();
        }
        other => panic!("the fixture has a case this test does not know: {other}"),
    }
    m
}

fn optimizer(v: &Value) -> Box<dyn Optimizer<f32>> {
    let lr = v["learning_rate"].as_f64().unwrap();
    match v["name"].as_str().unwrap() {
        "adam" => Box::new(Adam::new(lr)),
        "sgd" => Box::new(SGD::new(lr).momentum(v["momentum"].as_f64().unwrap())),
        "rmsprop" => Box::new(RMSprop::new(lr)),
        other => panic!("unknown optimizer {other}"),
    }
}

/// Keras's `get_weights` per layer, flattened in layer order (what `set_weights` takes).
fn flat_weights(v: &Value) -> Vec<Tensor> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|layer| layer.as_array().unwrap().iter().map(tensor))
        .collect()
}

/// Where two tensors differ by more than the tolerance: the first such element.
fn mismatch(got: &Tensor, want: &Tensor) -> Option<String> {
    if got.shape() != want.shape() {
        return Some(format!(
            "shape {:?} against {:?}",
            got.shape(),
            want.shape()
        ));
    }
    let (g, w) = (got.to_vec(), want.to_vec());
    g.iter()
        .zip(&w)
        .position(|(&a, &b)| !close(a as f64, b as f64))
        .map(|i| format!("element {i}: {} against Keras's {}", g[i], w[i]))
}

#[test]
fn shaped_layers_match_keras_step_by_step() {
    let fixture = fixture();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut m = model(name);
        m.set_weights(&flat_weights(&case["initial_weights"]))
            .unwrap();
        m.compile(
            optimizer(&case["optimizer"]),
            "categorical_crossentropy",
            [],
        )
        .unwrap();
        let (x, y) = (tensor(&case["x"]), tensor(&case["y"]));
        let batch = case["batch_size"].as_u64().unwrap() as usize;
        let n = x.shape()[0];
        let mut losses = Vec::new();
        for _ in 0..case["epochs"].as_u64().unwrap() {
            for start in (0..n).step_by(batch) {
                let end = (start + batch).min(n);
                let logs = m
                    .train_on_batch(&x.rows(start..end), &y.rows(start..end))
                    .unwrap();
                losses.push(logs.loss());
            }
        }
        let want: Vec<f64> = case["step_losses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        if losses.len() != want.len() || !losses.iter().zip(&want).all(|(&a, &b)| close(a, b)) {
            failures.push(format!("{name}: step losses {losses:?}, Keras {want:?}"));
        }
        for (i, (got, want)) in m
            .get_weights()
            .iter()
            .zip(flat_weights(&case["final_weights"]))
            .enumerate()
        {
            if let Some(e) = mismatch(got, &want) {
                failures.push(format!("{name}: final weight {i}: {e}"));
            }
        }
        let predictions = m.predict_batched(&x, batch).unwrap();
        if let Some(e) = mismatch(&predictions, &tensor(&case["predictions"])) {
            failures.push(format!("{name}: predictions: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
