//! Shaped layers across the crates: a layer written outside brick registered, trained,
//! saved and loaded; BatchNormalization's moving statistics through training and inference;
//! a resumed run with Dropout ending bit-identical to an uninterrupted one; Dense on
//! inputs of rank 3; and the errors of inputs that do not fit.

mod common;
use common::scratch;

use autograd::Var;
use brick::prelude::*;
use nn::layers::{Context, LayerVars, Weights};

/// `x * scale + shift`, one trainable scale per feature and a non-trainable shift that each
/// training step moves halfway toward the batch's mean (a moving statistic): a layer of the
/// kind a user writes, with both sorts of weights.
struct ScaleShift {
    name: Option<String>,
    weights: Weights<f32>,
}

impl ScaleShift {
    fn new() -> Self {
        ScaleShift {
            name: None,
            weights: Weights::default(),
        }
    }
}

impl Layer<f32> for ScaleShift {
    fn class_name(&self) -> &'static str {
        "ScaleShift"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn set_name(&mut self, name: String) {
        self.name = Some(name);
    }
    fn output_shape(&self, input_shape: &[usize]) -> nn::Result<Vec<usize>> {
        Ok(input_shape.to_vec())
    }
    fn weight_shapes(&self, input_shape: &[usize]) -> Option<Vec<(&'static str, Vec<usize>)>> {
        let f = *input_shape.last()?;
        Some(vec![("scale", vec![f]), ("shift", vec![f])])
    }
    fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> nn::Result<()> {
        let f = *input_shape.last().unwrap();
        self.weights.add("scale", Tensor::ones(&[f]), true);
        self.weights.add("shift", Tensor::zeros(&[f]), false);
        Ok(())
    }
    fn is_built(&self) -> bool {
        !self.weights.is_empty()
    }
    fn weights(&self) -> &Weights<f32> {
        &self.weights
    }
    fn weights_mut(&mut self) -> &mut Weights<f32> {
        &mut self.weights
    }
    fn forward<'t>(
        &self,
        x: Var<'t, f32>,
        w: &LayerVars<'_, 't, f32>,
        ctx: &mut Context<'_, f32>,
    ) -> nn::Result<Var<'t, f32>> {
        if ctx.training() {
            let shift = self.weights.get("shift").unwrap();
            let mean = x.value().mean(0, false);
            ctx.update("shift", (shift * 0.5) + &(mean * 0.5));
        }
        Ok(x.try_mul(w.expect("scale"))?.try_add(w.expect("shift"))?)
    }
    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

fn data(n: usize, features: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = seeded(seed);
    let x = Tensor::<f32>::rand_uniform(&[n, features], -1.0, 1.0, &mut rng);
    let labels: Vec<usize> = (0..n)
        .map(|i| usize::from(x.to_vec()[i * features] > 0.0))
        .collect();
    (x, to_categorical(&labels, Some(2)).unwrap())
}

#[test]
fn a_third_party_layer_is_registered_trained_saved_and_loaded() {
    nn::register_layer::<f32>("ScaleShift", |config| {
        assert!(config.is_empty(), "the factory gets the layer's own config");
        Ok(Box::new(ScaleShift::new()))
    })
    .unwrap();
    let (x, y) = data(64, 3, 1);
    let mut model = Sequential::with_seed(3);
    model.add(Input::new([3])).unwrap();
    model.add(ScaleShift::new()).unwrap();
    model.add(Dense::new(2).activation("softmax")).unwrap();
    model
        .compile("adam", "categorical_crossentropy", ["accuracy"])
        .unwrap();
    assert!(model.summary().contains("scale_shift (ScaleShift)"));
    assert!(model.summary().contains("Non-trainable params: 3"));
    let options = FitOptions {
        epochs: 2,
        batch_size: 16,
        verbose: 0,
        ..Default::default()
    };
    model.fit(&x, &y, options).unwrap();
    // Trained: the scale moved, and the shift followed the batch means.
    let layer = model.layer("scale_shift").unwrap();
    assert_ne!(layer.weights().get("scale").unwrap(), &Tensor::ones(&[3]));
    assert_ne!(layer.weights().get("shift").unwrap(), &Tensor::zeros(&[3]));
    let dir = scratch("third-party-layer");
    let path = dir.join("model.safetensors");
    model.save(&path).unwrap();
    let loaded = Sequential::<f32>::load(&path).unwrap();
    assert_eq!(loaded.layers()[0].class_name(), "ScaleShift");
    assert_eq!(loaded.get_weights(), model.get_weights());
    assert_eq!(loaded.predict(&x).unwrap(), model.predict(&x).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unregistered_layer_class_in_a_file_names_the_class_and_how_to_register_it() {
    let mut model = Sequential::with_seed(3);
    model.add(Input::new([3])).unwrap();
    model.add(Dense::new(2)).unwrap();
    let json = model.to_json().replace("\"Dense\"", "\"MyAttention\"");
    let e = Sequential::<f32>::from_json(&json).unwrap_err().to_string();
    assert!(
        e.contains("unknown layer class 'MyAttention'")
            && e.contains("nn::register_layer::<f32>(\"MyAttention\", factory)"),
        "{e}"
    );
}

#[test]
fn batch_normalization_moves_its_statistics_in_training_only() {
    let mut rng = seeded(5);
    let x = Tensor::<f64>::rand_uniform(&[32, 4], 0.0, 3.0, &mut rng);
    let y = Tensor::<f64>::rand_uniform(&[32, 4], 0.0, 1.0, &mut rng);
    let mut model = Sequential::<f64>::default();
    model.set_seed(1);
    model.add(Input::new([4])).unwrap();
    model.add(BatchNormalization::new().momentum(0.9)).unwrap();
    model.compile(SGD::new(0.1), "mse", []).unwrap();
    let names: Vec<String> = model.named_weights().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "batch_normalization.gamma",
            "batch_normalization.beta",
            "batch_normalization.moving_mean",
            "batch_normalization.moving_variance"
        ]
    );
    // Inference leaves the statistics alone.
    model.evaluate(&x, &y).unwrap();
    model.predict(&x).unwrap();
    assert_eq!(model.get_weights()[2], Tensor::zeros(&[4]));
    // One training step: moving = 0.9 * moving + 0.1 * batch (biased variance).
    let gamma_before = model.get_weights()[0].clone();
    model.train_on_batch(&x, &y).unwrap();
    let w = model.get_weights();
    let mean = x.mean(0, false);
    let variance = (&x - &mean).map(|v| v * v).mean(0, false);
    for j in 0..4 {
        let m = w[2].to_vec()[j];
        let v = w[3].to_vec()[j];
        assert!((m - 0.1 * mean.to_vec()[j]).abs() < 1e-12, "{m}");
        assert!(
            (v - (0.9 + 0.1 * variance.to_vec()[j])).abs() < 1e-12,
            "{v}"
        );
    }
    assert_ne!(w[0], gamma_before, "gamma is trained");
    // Inference normalizes with the moving statistics.
    let p = model.predict(&x).unwrap();
    for (i, row) in p.to_vec().chunks(4).enumerate() {
        for (j, &got) in row.iter().enumerate() {
            let xi = x.to_vec()[i * 4 + j];
            let expected = (xi - w[2].to_vec()[j]) / (w[3].to_vec()[j] + 1e-3).sqrt()
                * w[0].to_vec()[j]
                + w[1].to_vec()[j];
            assert!((got - expected).abs() < 1e-10);
        }
    }
    // A loaded model predicts what the saved one does.
    let dir = scratch("batch-norm");
    let path = dir.join("bn.safetensors");
    model.save(&path).unwrap();
    let loaded = Sequential::<f64>::load(&path).unwrap();
    assert_eq!(loaded.predict(&x).unwrap(), p);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn dropout_model() -> Sequential {
    let mut model = Sequential::with_seed(11);
    model.add(Input::new([6])).unwrap();
    model.add(Dense::new(16).activation("relu")).unwrap();
    model.add(Dropout::new(0.5)).unwrap();
    model.add(Dense::new(2).activation("softmax")).unwrap();
    model
        .compile("adam", "categorical_crossentropy", ["accuracy"])
        .unwrap();
    model
}

#[test]
fn a_resumed_run_with_dropout_ends_bit_identical_to_an_uninterrupted_one() {
    let (x, y) = data(96, 6, 2);
    let options = |epochs, initial_epoch| FitOptions {
        epochs,
        initial_epoch,
        batch_size: 16,
        verbose: 0,
        ..Default::default()
    };
    let mut straight = dropout_model();
    straight.fit(&x, &y, options(4, 0)).unwrap();

    let dir = scratch("dropout-resume");
    let path = dir.join("half.safetensors");
    let mut first = dropout_model();
    first.fit(&x, &y, options(2, 0)).unwrap();
    first.save(&path).unwrap();
    let mut resumed = Sequential::<f32>::load(&path).unwrap();
    let done = resumed.completed_epochs();
    resumed.fit(&x, &y, options(4, done)).unwrap();
    assert_eq!(resumed.get_weights(), straight.get_weights());

    // Dropout does act in training: without it the run ends elsewhere.
    let mut without = Sequential::with_seed(11);
    without.add(Input::new([6])).unwrap();
    without.add(Dense::new(16).activation("relu")).unwrap();
    without.add(Dropout::new(0.0)).unwrap();
    without.add(Dense::new(2).activation("softmax")).unwrap();
    without
        .compile("adam", "categorical_crossentropy", ["accuracy"])
        .unwrap();
    without.fit(&x, &y, options(4, 0)).unwrap();
    assert_ne!(without.get_weights(), straight.get_weights());
    // ... and not in inference: given the same weights, the model predicts what the one
    // with rate 0 does.
    without.set_weights(&straight.get_weights()).unwrap();
    assert_eq!(
        straight.predict_batched(&x, 96).unwrap(),
        without.predict_batched(&x, 96).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dense_on_rank_3_acts_on_the_last_axis() {
    let mut model = Sequential::with_seed(4);
    model.add(Input::new([5, 3])).unwrap();
    model.add(Dense::new(2).activation("tanh")).unwrap();
    assert_eq!(model.output_shape(), Some(vec![5, 2]));
    assert!(model.summary().contains("(None, 5, 2)"));
    let x = Tensor::<f32>::rand_uniform(&[4, 5, 3], -1.0, 1.0, &mut seeded(0));
    let y = model.predict_batched(&x, 4).unwrap();
    assert_eq!(y.shape(), [4, 5, 2]);
    // The same as the layer applied to each of the 20 positions as rows.
    let mut flat = Sequential::with_seed(4);
    flat.add(Input::new([3])).unwrap();
    flat.add(Dense::new(2).activation("tanh")).unwrap();
    assert_eq!(flat.get_weights(), model.get_weights());
    let rows = flat.predict_batched(&x.reshape(&[20, 3]), 20).unwrap();
    assert_eq!(y.reshape(&[20, 2]), rows);
}

#[test]
fn shaped_models_check_their_input_and_stack() {
    let mut model = Sequential::with_seed(0);
    model.add(Input::new([28, 28, 1])).unwrap();
    model.add(Conv2D::new(4, 3).activation("relu")).unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(Dense::new(10).activation("softmax")).unwrap();
    model
        .compile("adam", "categorical_crossentropy", [])
        .unwrap();
    let y = to_categorical::<f32>(&[0, 1], Some(10)).unwrap();
    let before = model.get_weights();
    let e = model
        .fit(&Tensor::zeros(&[2, 28, 28]), &y, FitOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("expected shape (None, 28, 28, 1)") && e.contains("got (2, 28, 28)"),
        "{e}"
    );
    assert_eq!(model.get_weights(), before);
    // A kernel larger than its (padded) input, at add time, naming the layer.
    let mut small = Sequential::<f32>::with_seed(0);
    small.add(Input::new([2, 2, 1])).unwrap();
    let e = small.add(Conv2D::new(4, 3)).unwrap_err().to_string();
    assert!(
        e.contains("layer 'conv2d' (Conv2D)") && e.contains("does not fit"),
        "{e}"
    );
    assert!(small.layers().is_empty());
    // With same padding it fits.
    small.add(Conv2D::new(4, 3).padding("same")).unwrap();
    assert_eq!(small.output_shape(), Some(vec![2, 2, 4]));
    // Unknown padding names and dropout rates outside [0, 1).
    let e = small
        .add(MaxPooling2D::new(2).padding("full"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown padding 'full'; valid names are: valid, same"),
        "{e}"
    );
    let e = small.add(Dropout::new(1.0)).unwrap_err().to_string();
    assert!(e.contains("rate must be in [0, 1), got 1"), "{e}");
    // An image layer after a flat one.
    let mut flat = Sequential::<f32>::with_seed(0);
    flat.add(Input::new([784])).unwrap();
    let e = flat.add(Conv2D::new(4, 3)).unwrap_err().to_string();
    assert!(
        e.contains("expected images (None, height, width, channels), got (None, 784)"),
        "{e}"
    );
}

/// Every shaped layer with settings away from its defaults, saved and loaded: the same
/// classes, configs, weights and predictions.
#[test]
fn every_shaped_layer_round_trips_through_a_model_file() {
    let mut model = Sequential::<f32>::with_seed(5);
    model.add(Input::new([9, 8, 2])).unwrap();
    model
        .add(
            Conv2D::new(3, [3, 2])
                .strides([2, 1])
                .padding("same")
                .activation("tanh")
                .kernel_initializer("he_normal"),
        )
        .unwrap();
    model
        .add(Conv2D::new(4, 2).dilation_rate(2).use_bias(false))
        .unwrap();
    model
        .add(BatchNormalization::new().momentum(0.9).epsilon(0.01))
        .unwrap();
    model
        .add(MaxPooling2D::new(2).strides(1).padding("same"))
        .unwrap();
    model
        .add(AveragePooling2D::new([1, 2]).padding("valid"))
        .unwrap();
    model.add(Reshape::new([None, Some(4)])).unwrap();
    model
        .add(LayerNormalization::new().epsilon(0.1).center(false))
        .unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(Dropout::new(0.25)).unwrap();
    model.add(Dense::new(3).activation("softmax")).unwrap();
    model
        .compile("adam", "categorical_crossentropy", ["accuracy"])
        .unwrap();
    let mut rng = seeded(9);
    let x = Tensor::<f32>::rand_uniform(&[12, 9, 8, 2], 0.0, 1.0, &mut rng);
    let labels: Vec<usize> = (0..12).map(|i| i % 3).collect();
    let y = to_categorical(&labels, Some(3)).unwrap();
    let options = FitOptions {
        epochs: 1,
        batch_size: 4,
        verbose: 0,
        ..Default::default()
    };
    model.fit(&x, &y, options).unwrap();
    let dir = scratch("shaped-round-trip");
    let path = dir.join("model.safetensors");
    model.save(&path).unwrap();
    let loaded = Sequential::<f32>::load(&path).unwrap();
    assert_eq!(loaded.layers().len(), model.layers().len());
    for (a, b) in loaded.layers().iter().zip(model.layers()) {
        assert_eq!(a.class_name(), b.class_name());
        assert_eq!(a.name(), b.name());
        assert_eq!(a.config(), b.config(), "{}", b.class_name());
    }
    assert_eq!(loaded.summary(), model.summary());
    assert_eq!(loaded.get_weights(), model.get_weights());
    assert_eq!(
        loaded.predict_batched(&x, 4).unwrap(),
        model.predict_batched(&x, 4).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A Conv2D followed by MaxPooling2D runs as one op in training (few inputs per window) and
/// in inference; it trains and predicts as the same stack with the activation as a layer of
/// its own between the two, which the model does not fuse.
#[test]
fn a_convolution_fused_with_its_max_pooling_trains_as_the_layers_apart() {
    let model = |fused: bool| {
        let mut m = Sequential::with_seed(5);
        m.add(Input::new([9, 9, 1])).unwrap();
        if fused {
            m.add(Conv2D::new(4, 3).activation("relu")).unwrap();
        } else {
            m.add(Conv2D::new(4, 3)).unwrap();
            m.add(ActivationLayer::new("relu")).unwrap();
        }
        m.add(MaxPooling2D::new(2)).unwrap();
        m.add(Flatten::new()).unwrap();
        m.add(Dense::new(2).activation("softmax")).unwrap();
        m.compile("adam", "categorical_crossentropy", ["accuracy"])
            .unwrap();
        m
    };
    let (x, y) = data(48, 81, 4);
    let x = x.reshape(&[48, 9, 9, 1]);
    let (mut fused, mut apart) = (model(true), model(false));
    apart.set_weights(&fused.get_weights()).unwrap();
    let options = || FitOptions {
        epochs: 3,
        batch_size: 8,
        verbose: 0,
        ..Default::default()
    };
    let (hf, ha) = (
        fused.fit(&x, &y, options()).unwrap(),
        apart.fit(&x, &y, options()).unwrap(),
    );
    let (lf, la) = (hf.get("loss").unwrap(), ha.get("loss").unwrap());
    for (f, a) in lf.iter().zip(la) {
        assert!((f - a).abs() < 1e-6, "losses {lf:?} and {la:?}");
    }
    for (f, a) in fused.get_weights().iter().zip(apart.get_weights()) {
        assert!(f.allclose(&a, 1e-5, 1e-6), "{f:?} and {a:?}");
    }
    assert!(lf[2] < lf[0], "it learns: {lf:?}");
    let (pf, pa) = (
        fused.predict_batched(&x, 16).unwrap(),
        apart.predict_batched(&x, 16).unwrap(),
    );
    assert!(pf.allclose(&pa, 1e-5, 1e-6));
}
