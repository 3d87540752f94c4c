//! The model's behaviour at its boundary: bad input is an error that says what was expected
//! and what came and changes nothing; and Keras's fit semantics.

use super::*;
use crate::Dense;
use optim::SGD;

fn t(v: &[f32], s: &[usize]) -> Tensor {
    Tensor::from_shape_slice(v, s).unwrap()
}

/// 8 samples of 4 features, and 3-class one-hot targets.
fn data() -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..32)
        .map(|i| ((i * 7 % 11) as f32) / 10.0 - 0.5)
        .collect();
    let labels: Vec<usize> = (0..8).map(|i| i % 3).collect();
    (t(&x, &[8, 4]), Tensor::one_hot(&labels, 3).unwrap())
}

fn model() -> Sequential {
    let mut m = Sequential::with_seed(3);
    m.add(Dense::new(5).input_dim(4).activation("relu"))
        .unwrap();
    m.add(Dense::new(3).activation("softmax")).unwrap();
    m.compile(SGD::new(0.1), "categorical_crossentropy", ["accuracy"])
        .unwrap();
    m
}

fn quiet() -> FitOptions {
    FitOptions {
        epochs: 2,
        batch_size: 3,
        verbose: 0,
        ..Default::default()
    }
}

/// Runs `f`, requires an error containing every one of `parts`, and checks the weights did
/// not change.
fn rejects(m: &mut Sequential, parts: &[&str], f: impl FnOnce(&mut Sequential) -> Result<()>) {
    let before = m.get_weights();
    let e = f(m).expect_err("should be rejected").to_string();
    for p in parts {
        assert!(e.contains(p), "error {e:?} should mention {p:?}");
    }
    assert_eq!(
        m.get_weights(),
        before,
        "a rejected call must change nothing"
    );
}

#[test]
fn fit_before_compile_is_an_error() {
    let (x, y) = data();
    let mut m = Sequential::with_seed(0);
    m.add(Dense::new(3).input_dim(4)).unwrap();
    rejects(&mut m, &["fit", "compile"], |m| {
        m.fit(&x, &y, quiet()).map(|_| ())
    });
    rejects(&mut m, &["train_on_batch", "compile"], |m| {
        m.train_on_batch(&x, &y).map(|_| ())
    });
    let e = m.evaluate_batched(&x, &y, 4).unwrap_err().to_string();
    assert!(e.contains("compile"), "{e}");
}

#[test]
fn data_shape_errors_name_what_was_expected() {
    let (x, y) = data();
    let mut m = model();
    rejects(&mut m, &["8 samples", "[5, 3]"], |m| {
        m.fit(&x, &y.rows(0..5), quiet()).map(|_| ())
    });
    rejects(&mut m, &["expected shape (None, 4)", "(8, 3)"], |m| {
        m.fit(&x.slice_axis(1, 0..3), &y, quiet()).map(|_| ())
    });
    rejects(&mut m, &["expected shape (None, 4)", "got (32)"], |m| {
        m.fit(&x.reshape(&[32]), &y, quiet()).map(|_| ())
    });
    rejects(&mut m, &["expected shape [8, 3]", "[8, 2]"], |m| {
        m.fit(&x, &y.slice_axis(1, 0..2), quiet()).map(|_| ())
    });
    rejects(&mut m, &["no samples"], |m| {
        m.fit(&x.rows(0..0), &y.rows(0..0), quiet()).map(|_| ())
    });
    let e = m
        .predict_batched(&x.slice_axis(1, 0..2), 4)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected shape (None, 4)"), "{e}");
}

#[test]
fn non_finite_values_are_rejected_with_their_position() {
    let (x, y) = data();
    let mut m = model();
    let mut bad = x.clone();
    bad.as_slice_mut()[9] = f32::NAN;
    rejects(&mut m, &["sample 2 feature 1", "NaN"], |m| {
        m.fit(&bad, &y, quiet()).map(|_| ())
    });
    let mut bad_y = y.clone();
    bad_y.as_slice_mut()[4] = f32::INFINITY;
    rejects(&mut m, &["element 4", "inf"], |m| {
        m.fit(&x, &bad_y, quiet()).map(|_| ())
    });
}

#[test]
fn labels_must_fit_the_loss() {
    let (x, y) = data();
    let mut m = model();
    let mut soft = y.clone();
    soft.as_slice_mut()[0] = 0.5;
    rejects(&mut m, &["row 0 sums to 0.5"], |m| {
        m.fit(&x, &soft, quiet()).map(|_| ())
    });
    m.compile(
        SGD::new(0.1),
        "sparse_categorical_crossentropy",
        ["accuracy"],
    )
    .unwrap();
    let labels = t(&[0., 1., 2., 0., 1., 2., 0., 3.], &[8]);
    rejects(&mut m, &["label 7 is 3", "0..3"], |m| {
        m.fit(&x, &labels, quiet()).map(|_| ())
    });
    let ok = t(&[0., 1., 2., 0., 1., 2., 0., 1.], &[8]);
    m.fit(&x, &ok, quiet()).unwrap();
}

#[test]
fn option_errors() {
    let (x, y) = data();
    let mut m = model();
    rejects(&mut m, &["batch_size must be at least 1, got 0"], |m| {
        m.fit(
            &x,
            &y,
            FitOptions {
                batch_size: 0,
                ..quiet()
            },
        )
        .map(|_| ())
    });
    rejects(&mut m, &["epochs must be at least 1, got 0"], |m| {
        m.fit(
            &x,
            &y,
            FitOptions {
                epochs: 0,
                ..quiet()
            },
        )
        .map(|_| ())
    });
    rejects(
        &mut m,
        &["validation_split must be in [0, 1), got 1"],
        |m| {
            m.fit(
                &x,
                &y,
                FitOptions {
                    validation_split: 1.0,
                    ..quiet()
                },
            )
            .map(|_| ())
        },
    );
    rejects(&mut m, &["leaves 0 for training"], |m| {
        m.fit(
            &x,
            &y,
            FitOptions {
                validation_split: 0.95,
                ..quiet()
            },
        )
        .map(|_| ())
    });
    rejects(&mut m, &["not both"], |m| {
        m.fit(
            &x,
            &y,
            FitOptions {
                validation_split: 0.25,
                validation_data: Some((x.clone(), y.clone())),
                ..quiet()
            },
        )
        .map(|_| ())
    });
    rejects(
        &mut m,
        &["initial_epoch (2) must be below epochs (2)"],
        |m| {
            m.fit(
                &x,
                &y,
                FitOptions {
                    initial_epoch: 2,
                    ..quiet()
                },
            )
            .map(|_| ())
        },
    );
    assert!(m.predict_batched(&x, 0).is_err());
}

#[test]
fn unknown_names_list_the_valid_ones() {
    let mut m = Sequential::<f32>::with_seed(0);
    let e = m
        .add(Dense::new(3).input_dim(2).activation("rleu"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown activation 'rleu'") && e.contains("relu, sigmoid"),
        "{e}"
    );
    let e = m
        .add(Dense::new(3).input_dim(2).kernel_initializer("xavier"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown initializer 'xavier'") && e.contains("glorot_uniform"),
        "{e}"
    );
    assert!(m.layers().is_empty(), "a rejected layer is not added");
    m.add(Dense::new(3).input_dim(2)).unwrap();
    let e = m.compile("adamm", "mse", []).unwrap_err().to_string();
    assert!(
        e.contains("unknown optimizer 'adamm'") && e.contains("rmsprop"),
        "{e}"
    );
    let e = m.compile("adam", "mse2", []).unwrap_err().to_string();
    assert!(
        e.contains("unknown loss 'mse2'") && e.contains("mean_squared_error"),
        "{e}"
    );
    let e = m
        .compile("adam", "mse", ["accuracyy"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown metric 'accuracyy'") && e.contains("accuracy"),
        "{e}"
    );
    let e = m
        .compile(SGD::new(0.1).momentum(2.0), "mse", [])
        .unwrap_err()
        .to_string();
    assert!(e.contains("momentum must be in [0, 1], got 2"), "{e}");
    assert!(!m.is_compiled());
}

#[test]
fn layer_rules_and_names() {
    let mut m = Sequential::<f32>::with_seed(0);
    m.add(Dense::new(4).input_dim(3)).unwrap();
    let e = m.add(Dense::new(2).input_dim(4)).unwrap_err().to_string();
    assert!(
        e.contains("input_shape [4] can only be given to the first layer"),
        "{e}"
    );
    m.add(Dense::new(2)).unwrap();
    m.add(Dense::new(1).name("out")).unwrap();
    let names: Vec<&str> = m.layers().iter().map(|l| l.name().unwrap()).collect();
    assert_eq!(names, vec!["dense", "dense_1", "out"]);
    let e = m.add(Dense::new(1).name("out")).unwrap_err().to_string();
    assert!(e.contains("'out' is already in the model"), "{e}");
    assert!(m.add(Dense::new(0)).is_err());
}

#[test]
fn set_weights_checks_count_and_shapes() {
    let mut m = model();
    let w = m.get_weights();
    let shapes: Vec<Vec<usize>> = w.iter().map(|t| t.shape().to_vec()).collect();
    assert_eq!(
        shapes,
        vec![vec![4, 5], vec![5], vec![5, 3], vec![3]],
        "Keras order: kernel [in, out], bias"
    );
    rejects(
        &mut m,
        &[
            "expected 4 tensors",
            "dense.kernel [4, 5], dense.bias [5], dense_1.kernel [5, 3], dense_1.bias [3]",
            "got 3",
        ],
        |m| m.set_weights(&w[..3]),
    );
    let mut wrong = w.clone();
    wrong[2] = Tensor::zeros(&[3, 5]);
    rejects(&mut m, &["[3, 5]"], |m| m.set_weights(&wrong));
    let mut nan = w.clone();
    nan[1] = Tensor::full(&[5], f32::NAN);
    rejects(&mut m, &["tensor 1 (dense.bias) contains NaN"], |m| {
        m.set_weights(&nan)
    });
    let zeros: Vec<Tensor> = w.iter().map(|t| t.zeros_like()).collect();
    m.set_weights(&zeros).unwrap();
    assert_eq!(m.get_weights(), zeros);
    let mut unbuilt = Sequential::<f32>::with_seed(0);
    unbuilt.add(Dense::new(2)).unwrap();
    assert!(
        unbuilt
            .set_weights(&[])
            .unwrap_err()
            .to_string()
            .contains("no weights yet")
    );
}

#[test]
fn a_model_without_input_dim_builds_on_its_first_data_and_a_rejected_fit_leaves_it_unbuilt() {
    let (x, y) = data();
    let mut m = Sequential::<f32>::with_seed(0);
    m.add(Dense::new(5).activation("relu")).unwrap();
    m.add(Dense::new(3).activation("softmax")).unwrap();
    m.compile("adam", "categorical_crossentropy", ["accuracy"])
        .unwrap();
    assert!(!m.is_built());
    assert!(m.fit(&x, &y.slice_axis(1, 0..2), quiet()).is_err());
    assert!(!m.is_built(), "a rejected fit must not build the model");
    m.fit(&x, &y, quiet()).unwrap();
    assert!(m.is_built());
    assert_eq!(m.input_shape(), Some(&[4][..]));
    assert_eq!(m.count_params(), 4 * 5 + 5 + 5 * 3 + 3);
}

#[test]
fn train_on_batch_reports_the_loss_before_its_update() {
    let (x, y) = data();
    let mut m = model();
    let before = m.test_on_batch(&x, &y).unwrap();
    let step = m.train_on_batch(&x, &y).unwrap();
    let after = m.test_on_batch(&x, &y).unwrap();
    assert_eq!(step.loss(), before.loss());
    assert_eq!(step.get("accuracy"), before.get("accuracy"));
    assert!(
        after.loss() < before.loss(),
        "one SGD step on the same batch lowers its loss"
    );
}

#[test]
fn validation_split_holds_out_the_last_rows_before_shuffling() {
    let (x, y) = data();
    let mut m = model();
    let h = m
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 1,
                validation_split: 0.25,
                ..quiet()
            },
        )
        .unwrap();
    // The validation figures are those of the last 2 rows under the final weights.
    let val = m.evaluate(&x.rows(6..8), &y.rows(6..8)).unwrap();
    assert_eq!(h.last("val_loss"), Some(val.loss()));
    assert_eq!(h.last("val_accuracy"), val.get("accuracy"));
    assert_eq!(
        h.keys().collect::<Vec<_>>(),
        vec!["accuracy", "loss", "val_accuracy", "val_loss"]
    );
}

#[test]
fn shuffling_is_reproducible_by_seed() {
    let (x, y) = data();
    let run = |fit_seed: Option<u64>| {
        let mut m = model();
        m.fit(
            &x,
            &y,
            FitOptions {
                seed: fit_seed,
                epochs: 3,
                ..quiet()
            },
        )
        .unwrap();
        m.get_weights()
    };
    assert_eq!(run(Some(1)), run(Some(1)));
    assert_ne!(run(Some(1)), run(Some(2)));
    // Without a fit seed, the model's seed decides: the same model seed, the same run.
    assert_eq!(run(None), run(None));
    // Without shuffling, batches come in order: the same as fit with shuffle off twice.
    let mut a = model();
    let mut b = model();
    a.fit(
        &x,
        &y,
        FitOptions {
            shuffle: false,
            ..quiet()
        },
    )
    .unwrap();
    b.fit(
        &x,
        &y,
        FitOptions {
            shuffle: false,
            seed: Some(99),
            ..quiet()
        },
    )
    .unwrap();
    assert_eq!(a.get_weights(), b.get_weights());
}

#[test]
fn initial_epoch_resumes_the_count() {
    let (x, y) = data();
    let mut m = model();
    let h = m
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 4,
                initial_epoch: 2,
                ..quiet()
            },
        )
        .unwrap();
    assert_eq!(h.epochs(), &[2, 3]);
    assert_eq!(h.loss().len(), 2);
}

#[test]
fn predict_in_batches_equals_predict_at_once() {
    let (x, _) = data();
    let m = model();
    let whole = m.predict_batched(&x, 100).unwrap();
    let batched = m.predict_batched(&x, 3).unwrap();
    assert_eq!(whole.shape(), &[8, 3]);
    assert!(whole.allclose(&batched, 1e-6, 1e-7));
    // Without a batch size, Keras's 32.
    assert_eq!(crate::DEFAULT_BATCH_SIZE, 32);
    assert!(m.predict(&x).unwrap().allclose(&whole, 1e-6, 1e-7));
    let e = m.predict_batched(&x, 0).unwrap_err().to_string();
    assert!(e.contains("batch_size"), "{e}");
    let sums = whole.sum(-1, false);
    assert!(
        sums.allclose(&Tensor::ones(&[8]), 1e-5, 0.0),
        "softmax rows sum to 1"
    );
}

#[test]
fn one_unit_models_accept_flat_targets() {
    let (x, _) = data();
    let y = t(&[0., 1., 0., 1., 1., 0., 1., 0.], &[8]);
    let mut m = Sequential::<f32>::with_seed(0);
    m.add(Dense::new(1).input_dim(4).activation("sigmoid"))
        .unwrap();
    m.compile("sgd", "binary_crossentropy", ["accuracy"])
        .unwrap();
    let flat = m.evaluate_batched(&x, &y, 8).unwrap();
    let column = m.evaluate_batched(&x, &y.reshape(&[8, 1]), 8).unwrap();
    assert_eq!(flat, column);
}

#[test]
fn one_layer_weights_can_be_read_and_set() {
    let mut m = model();
    let w = m.layers()[1].get_weights();
    assert_eq!(w[0].shape(), &[5, 3]);
    let e = m.layers_mut()[1]
        .set_weights(&w[..1])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("layer 'dense_1'") && e.contains("kernel [5, 3], bias [3]"),
        "{e}"
    );
    let zeros: Vec<Tensor> = w.iter().map(|t| t.zeros_like()).collect();
    m.layers_mut()[1].set_weights(&zeros).unwrap();
    assert_eq!(m.get_weights()[2], zeros[0]);
    assert_eq!(m.layer("dense_1").unwrap().get_weights(), zeros);
}

#[test]
fn models_of_other_element_types() {
    let mut m = Sequential::<f64>::default();
    m.set_seed(4);
    m.add(Dense::new(2).input_dim(3).activation("tanh"))
        .unwrap();
    m.compile("sgd", "mse", []).unwrap();
    let x = Tensor::<f64>::ones(&[4, 3]);
    let y = Tensor::<f64>::zeros(&[4, 2]);
    let h = m
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 3,
                verbose: 0,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(h.loss()[2] < h.loss()[0]);
    let kernel = |seed| {
        let mut again = Sequential::<f64>::default();
        again.set_seed(seed);
        again.add(Dense::new(2).input_dim(3)).unwrap();
        again.get_weights()[0].clone()
    };
    assert_eq!(kernel(4), kernel(4));
    assert_ne!(kernel(4), kernel(5));
}

#[test]
fn layer_names_are_keras_snake_case() {
    for (class, name) in [
        ("Dense", "dense"),
        ("Conv2D", "conv2d"),
        ("MaxPooling2D", "max_pooling2d"),
        ("BatchNormalization", "batch_normalization"),
        ("GlobalAveragePooling2D", "global_average_pooling2d"),
        ("LayerNormalization", "layer_normalization"),
        ("ReLU", "re_lu"),
    ] {
        assert_eq!(super::snake_case(class), name);
    }
}
