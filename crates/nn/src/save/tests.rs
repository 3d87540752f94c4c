//! Saving and loading: round trips of every setting, and every kind of bad file named in
//! the README's reliability table, each leaving the model unchanged.

use optim::schedule::{CosineDecay, ExponentialDecay, PiecewiseConstantDecay};
use optim::{Adagrad, Adam, AdamW, Optimizer, RMSprop, SGD};
use tensor::Tensor;

use crate::activations::Activation;
use crate::initializers::{FanMode, Initializer, ScalingDistribution};
use crate::losses::Loss;
use crate::metrics::{Metric, MetricKind};
use crate::testing::{scratch, xor};
use crate::{ActivationLayer, Dense, FitOptions, Sequential};

/// A small compiled model, trained a few steps so that its optimizer has state.
fn trained(optimizer: Box<dyn Optimizer<f32>>) -> Sequential {
    let (x, y) = xor();
    let mut m = Sequential::with_seed(7);
    m.add(Dense::new(6).input_dim(2).activation("tanh"))
        .unwrap();
    m.add(Dense::new(1).activation("sigmoid")).unwrap();
    m.compile(optimizer, "binary_crossentropy", ["accuracy"])
        .unwrap();
    m.fit(
        &x,
        &y,
        FitOptions {
            epochs: 3,
            verbose: 0,
            ..Default::default()
        },
    )
    .unwrap();
    m
}

#[test]
fn every_setting_survives_to_json_and_back() {
    let activations = [
        Activation::Relu,
        Activation::Elu { alpha: 0.7 },
        Activation::LeakyRelu {
            negative_slope: 0.1,
        },
        Activation::Softmax,
        Activation::Gelu,
        Activation::Step,
    ];
    let initializers = [
        Initializer::Zeros,
        Initializer::Constant(0.25),
        Initializer::RandomUniform {
            minval: -0.1,
            maxval: 0.3,
        },
        Initializer::RandomNormal {
            mean: 0.5,
            stddev: 0.2,
        },
        Initializer::TruncatedNormal {
            mean: 0.0,
            stddev: 0.3,
        },
        Initializer::HE_NORMAL,
        Initializer::VarianceScaling {
            scale: 3.0,
            mode: FanMode::FanOut,
            distribution: ScalingDistribution::UntruncatedNormal,
        },
        Initializer::Orthogonal { gain: 2.0 },
    ];
    let mut m = Sequential::with_seed(11);
    m.set_name("everything");
    for (i, init) in initializers.iter().enumerate() {
        let mut d = Dense::new(3 + i)
            .activation(activations[i % activations.len()])
            .kernel_initializer(*init)
            .bias_initializer(initializers[(i + 1) % 6]) // the first six suit a 1-D bias
            .use_bias(i % 3 != 2);
        if i == 0 {
            d = d.input_dim(5);
        }
        m.add(d).unwrap();
    }
    m.add(ActivationLayer::new("softmax")).unwrap();
    let optimizers: Vec<Box<dyn Optimizer<f32>>> = vec![
        Box::new(SGD::new(0.1).momentum(0.8).nesterov(true).clipnorm(1.5)),
        Box::new(RMSprop::new(ExponentialDecay::new(0.1, 3, 0.5).staircase(true)).centered(true)),
        Box::new(Adam::new(CosineDecay::new(0.0, 10).warmup(0.1, 2)).amsgrad(true)),
        Box::new(AdamW::new(
            PiecewiseConstantDecay::new(vec![5], vec![0.1, 0.01]).unwrap(),
        )),
        Box::new(Adagrad::new(0.05).global_clipnorm(2.0).weight_decay(0.01)),
    ];
    let losses = [
        Loss::Huber { delta: 2.0 },
        crate::losses::CategoricalCrossentropy::new()
            .from_logits(true)
            .label_smoothing(0.1)
            .axis(1)
            .into(),
        crate::losses::SparseCategoricalCrossentropy::new()
            .ignore_class(-1)
            .into(),
        Loss::LogCosh,
        crate::losses::BinaryCrossentropy::new()
            .label_smoothing(0.2)
            .into(),
    ];
    for (opt, loss) in optimizers.into_iter().zip(losses) {
        let metrics = vec![
            Metric::from_name("acc").unwrap(),
            Metric::new("top3", MetricKind::TopKCategoricalAccuracy { k: 3 }),
            Metric::new("bin", MetricKind::BinaryAccuracy { threshold: 0.3 }),
            Metric::from_name("mae").unwrap(),
        ];
        m.compile(opt, loss, metrics).unwrap();
        let json = m.to_json();
        let back = Sequential::<f32>::from_json(&json).unwrap();
        assert_eq!(back.to_json(), json);
        assert_eq!(back.get_weights(), m.get_weights());
        assert_eq!(back.loss(), m.loss());
        assert_eq!(back.metrics(), m.metrics());
        let (a, b) = (m.optimizer().unwrap(), back.optimizer().unwrap());
        assert_eq!(a.hyperparameters(), b.hyperparameters());
        for step in [0, 3, 7, 20] {
            let (mut a_lr, mut b_lr) = (a.common().clone(), b.common().clone());
            a_lr.set_iterations(step);
            b_lr.set_iterations(step);
            assert_eq!(a_lr.current_learning_rate(), b_lr.current_learning_rate());
        }
    }
}

#[test]
fn weights_round_trip_in_both_element_types() {
    let dir = scratch("weights");
    let a = trained(Box::new(Adam::new(0.01)));
    a.save_weights(dir.join("a.safetensors")).unwrap();
    let mut b = Sequential::with_seed(99);
    b.add(Dense::new(6).input_dim(2).activation("tanh"))
        .unwrap();
    b.add(Dense::new(1).activation("sigmoid")).unwrap();
    b.load_weights(dir.join("a.safetensors")).unwrap();
    assert_eq!(a.get_weights(), b.get_weights());

    let mut c = Sequential::<f64>::default();
    c.set_seed(3);
    c.add(Dense::new(2).input_dim(3)).unwrap();
    c.save_weights(dir.join("c.safetensors")).unwrap();
    let mut d = Sequential::<f64>::default();
    d.add(Dense::new(2).input_dim(3)).unwrap();
    d.load_weights(dir.join("c.safetensors")).unwrap();
    assert_eq!(c.get_weights(), d.get_weights());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_loaded_model_predicts_and_trains_on_exactly_as_the_saved_one() {
    let dir = scratch("model");
    let (x, y) = xor();
    for opt in [
        Box::new(RMSprop::new(0.01).momentum(0.5).centered(true)) as Box<dyn Optimizer<f32>>,
        Box::new(Adam::new(0.01).amsgrad(true)),
        Box::new(SGD::new(0.1).momentum(0.9)),
    ] {
        let mut a = trained(opt);
        let path = dir.join("m.safetensors");
        a.save(&path).unwrap();
        let mut b = Sequential::<f32>::load(&path).unwrap();
        assert_eq!(
            b.predict_batched(&x, 4).unwrap(),
            a.predict_batched(&x, 4).unwrap()
        );
        assert_eq!(b.completed_epochs(), 3);
        assert_eq!(
            b.optimizer().unwrap().iterations(),
            a.optimizer().unwrap().iterations()
        );
        // The next epochs, bit for bit: the optimizer state came back too.
        let more = |m: &mut Sequential| {
            m.fit(
                &x,
                &y,
                FitOptions {
                    epochs: 6,
                    initial_epoch: m.completed_epochs(),
                    verbose: 0,
                    ..Default::default()
                },
            )
            .unwrap()
        };
        assert_eq!(more(&mut a), more(&mut b));
        assert_eq!(a.get_weights(), b.get_weights());
    }
    // A model never compiled or built saves and loads too.
    let mut plain = Sequential::<f32>::with_seed(5);
    plain.add(Dense::new(3)).unwrap();
    plain.save(dir.join("plain.safetensors")).unwrap();
    let back = Sequential::<f32>::load(dir.join("plain.safetensors")).unwrap();
    assert!(!back.is_built() && !back.is_compiled());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The model `m` as it was: same weights (a rejected load changed nothing).
fn unchanged(m: &Sequential, before: &[Tensor]) {
    assert_eq!(m.get_weights(), before);
}

#[test]
fn bad_weight_files_are_errors_that_name_the_problem_and_change_nothing() {
    let dir = scratch("bad-weights");
    let good = dir.join("good.safetensors");
    let source = trained(Box::new(Adam::new(0.01)));
    source.save_weights(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let mut m = trained(Box::new(SGD::new(0.1)));
    let before = m.get_weights();
    let mut check = |path: &std::path::Path, expected: &[&str]| {
        let e = m.load_weights(path).unwrap_err().to_string();
        for part in expected {
            assert!(e.contains(part), "'{e}' should mention '{part}'");
        }
        unchanged(&m, &before);
    };

    check(
        &dir.join("missing.safetensors"),
        &["missing.safetensors", "No such file"],
    );
    std::fs::write(dir.join("text.safetensors"), "dense.kernel = 1, 2, 3\n").unwrap();
    check(
        &dir.join("text.safetensors"),
        &["text.safetensors", "not a readable safetensors file"],
    );
    std::fs::write(dir.join("empty.safetensors"), b"").unwrap();
    check(
        &dir.join("empty.safetensors"),
        &["not a readable safetensors file"],
    );
    for cut in [4, 20, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(dir.join("truncated.safetensors"), &bytes[..cut]).unwrap();
        check(
            &dir.join("truncated.safetensors"),
            &["not a readable safetensors file"],
        );
    }
    // A flipped byte in the data: caught by the checksum.
    let mut corrupt = bytes.clone();
    let last = corrupt.len() - 3;
    corrupt[last] ^= 0x40;
    std::fs::write(dir.join("corrupt.safetensors"), &corrupt).unwrap();
    check(&dir.join("corrupt.safetensors"), &["corrupted", "checksum"]);
    // A flipped byte in the header's JSON.
    let mut header = bytes.clone();
    header[12] = b'\xff';
    std::fs::write(dir.join("header.safetensors"), &header).unwrap();
    check(
        &dir.join("header.safetensors"),
        &["not a readable safetensors file"],
    );

    // Another architecture: other sizes, other layer names, extra layers.
    let mut wider = Sequential::with_seed(1);
    wider
        .add(Dense::new(7).input_dim(2).activation("tanh"))
        .unwrap();
    wider.add(Dense::new(1)).unwrap();
    wider.save_weights(dir.join("wider.safetensors")).unwrap();
    check(
        &dir.join("wider.safetensors"),
        &["dense.kernel", "[2, 7]", "[2, 6]"],
    );
    let mut renamed = Sequential::with_seed(1);
    renamed
        .add(Dense::new(6).input_dim(2).name("hidden"))
        .unwrap();
    renamed.add(Dense::new(1).name("out")).unwrap();
    renamed
        .save_weights(dir.join("renamed.safetensors"))
        .unwrap();
    check(
        &dir.join("renamed.safetensors"),
        &["has no tensor 'dense.kernel'"],
    );
    let mut deeper = Sequential::with_seed(1);
    deeper.add(Dense::new(6).input_dim(2)).unwrap();
    deeper.add(Dense::new(1)).unwrap();
    deeper.add(Dense::new(1)).unwrap();
    deeper.save_weights(dir.join("deeper.safetensors")).unwrap();
    check(
        &dir.join("deeper.safetensors"),
        &["does not have: dense_2.bias, dense_2.kernel"],
    );

    // Another element type.
    let mut f64_model = Sequential::<f64>::default();
    f64_model.add(Dense::new(6).input_dim(2)).unwrap();
    f64_model.add(Dense::new(1)).unwrap();
    f64_model.save_weights(dir.join("f64.safetensors")).unwrap();
    check(
        &dir.join("f64.safetensors"),
        &["F64", "F32", "Sequential::<f64>"],
    );

    // A directory, not a file.
    check(&dir, &["brick-bad-weights", "Is a directory"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_model_files_are_errors_that_name_the_problem() {
    let dir = scratch("bad-models");
    let load = |name: &str| {
        Sequential::<f32>::load(dir.join(name))
            .expect_err("a bad file")
            .to_string()
    };
    let model = trained(Box::new(RMSprop::new(0.01)));
    model.save_weights(dir.join("weights.safetensors")).unwrap();
    let e = load("weights.safetensors");
    assert!(
        e.contains("weights only") && e.contains("load_weights"),
        "{e}"
    );

    // A safetensors file from another program: no brick metadata.
    let foreign = safetensors::serialize(
        [(
            "w",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &[0u8; 4])
                .unwrap(),
        )],
        None,
    )
    .unwrap();
    std::fs::write(dir.join("foreign.safetensors"), foreign).unwrap();
    let e = load("foreign.safetensors");
    assert!(e.contains("not a brick model"), "{e}");

    // An f32 model loaded as f64.
    model.save(dir.join("m.safetensors")).unwrap();
    let e = Sequential::<f64>::load(dir.join("m.safetensors"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("saved as f32") && e.contains("Sequential::<f32>"),
        "{e}"
    );
    let e = load("nothing-here.safetensors");
    assert!(e.contains("nothing-here.safetensors"), "{e}");

    // A config that asks for far more weights than the file holds is refused before they
    // are allocated: 6 units become 100 million (1.6 GB of f32 weights), and 1e19 units
    // more than any memory.
    let bytes = std::fs::read(dir.join("m.safetensors")).unwrap();
    for (units, declared) in [
        ("100000000", "400000001 weights"),
        ("10000000000000000000", "more weights than fit in memory"),
    ] {
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let mut meta = meta.metadata().clone().unwrap();
        let brick = meta.get_mut("brick").unwrap();
        assert!(brick.contains("\"units\":6"), "{brick}");
        *brick = brick.replacen("\"units\":6", &format!("\"units\":{units}"), 1);
        let hostile = safetensors::serialize(file.tensors(), Some(meta)).unwrap();
        std::fs::write(dir.join("hostile.safetensors"), hostile).unwrap();
        let e = load("hostile.safetensors");
        assert!(
            e.contains("hostile.safetensors")
                && e.contains(&format!(
                    "the layers declare {declared}, but the file holds 25"
                )),
            "{e}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_configs_are_errors_with_the_path_of_the_problem() {
    let model = trained(Box::new(Adam::new(0.01)));
    let json = model.to_json();
    let err = |text: &str| {
        Sequential::<f32>::from_json(text)
            .expect_err("a bad config")
            .to_string()
    };
    assert!(err("{ not json").contains("not valid JSON"));
    assert!(err("[]").contains("expected an object, got a list"));
    let e = err(&json.replacen("\"Dense\"", "\"Conv3D\"", 1));
    assert!(
        e.contains("layers[0].class_name")
            && e.contains("unknown layer class 'Conv3D'")
            && e.contains("Dense, Activation, Conv2D")
            && e.contains("nn::register_layer::<f32>(\"Conv3D\", factory)"),
        "{e}"
    );
    let e = err(&json.replacen("\"tanh\"", "\"tanhh\"", 1));
    assert!(
        e.contains("layers[0].config.activation") && e.contains("tanhh"),
        "{e}"
    );
    let e = err(&json.replacen("\"units\": 6", "\"units\": \"six\"", 1));
    assert!(
        e.contains("layers[0].config.units: expected a whole number of at least 1, got \"six\""),
        "{e}"
    );
    let e = err(&json.replacen("\"units\": 6", "\"units\": 0", 1));
    assert!(e.contains("units"), "{e}");
    let e = err(&json.replacen("\"units\": 6", "\"unitz\": 6", 1));
    assert!(e.contains("unknown entry 'unitz'"), "{e}");
    let e = err(&json.replacen("\"adam\"", "\"adamm\"", 1));
    assert!(
        e.contains("optimizer.class_name") && e.contains("adamm"),
        "{e}"
    );
    let e = err(&json.replacen("\"beta_1\": 0.9", "\"beta_1\": 1.5", 1));
    assert!(e.contains("beta_1"), "{e}");
    let e = err(&json.replacen("\"format_version\": 2", "\"format_version\": 99", 1));
    assert!(e.contains("version 99"), "{e}");
}

#[test]
fn saving_to_an_impossible_path_is_an_error_and_keeps_the_old_file() {
    let dir = scratch("impossible");
    let model = trained(Box::new(SGD::new(0.1)));
    let e = model
        .save(dir.join("no-such-dir").join("m.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no-such-dir"), "{e}");
    let e = model.save_weights(&dir).unwrap_err().to_string();
    assert!(e.contains("directory"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_same_model_saves_to_the_same_bytes() {
    let dir = scratch("same-bytes");
    let model = trained(Box::new(Adam::new(0.01)));
    let bytes: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let path = dir.join(format!("m{i}.safetensors"));
            model.save(&path).unwrap();
            std::fs::read(&path).unwrap()
        })
        .collect();
    assert!(bytes.windows(2).all(|w| w[0] == w[1]));
    std::fs::remove_dir_all(&dir).unwrap();
}
