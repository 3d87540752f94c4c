//! A loss, a metric and an optimizer written outside brick (as a research user's crate
//! would) train a `Sequential` through `compile`, `fit` and `evaluate`; a model saved with
//! them refuses to load until each is registered, naming the missing one and how to register
//! it, and loads and trains on once they are.

mod common;

use autograd::Var;
use brick::prelude::*;
use nn::losses::{LossFunction, register_loss};
use nn::metrics::{MetricFunction, register_metric};
use optim::{Common, CommonOption, OptimError, register_optimizer};
use serde_json::{Map, Value, json};

/// Mean squared error with the error scaled by a weight: a loss with a setting.
struct ScaledSquare {
    weight: f64,
}

impl<T: Element> LossFunction<T> for ScaledSquare {
    fn name(&self) -> &str {
        "scaled_square"
    }
    fn compute<'t>(&self, y_true: Var<'t, T>, y_pred: Var<'t, T>) -> nn::Result<Var<'t, T>> {
        let w = T::from_f64(self.weight).expect("a weight");
        Ok(((y_pred - y_true) * w).square().mean_all())
    }
    fn config(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("weight".into(), json!(self.weight));
        m
    }
}

fn scaled_square(config: &Map<String, Value>) -> nn::Result<Loss> {
    let weight = config["weight"].as_f64().expect("a saved weight");
    Ok(Loss::custom::<f32, _>(ScaledSquare { weight }))
}

/// The fraction of predictions within 0.25 of their target.
struct Within;

impl<T: Element> MetricFunction<T> for Within {
    fn name(&self) -> &str {
        "within"
    }
    fn batch_sum(&self, y_true: &Tensor<T>, y_pred: &Tensor<T>) -> nn::Result<(f64, usize)> {
        let (t, p) = (y_true.to_vec(), y_pred.to_vec());
        let close = t
            .iter()
            .zip(&p)
            .filter(|(t, p)| (**t - **p).abs().to_f64().unwrap() < 0.25)
            .count();
        Ok((close as f64, t.len()))
    }
}

fn within(_: &Map<String, Value>) -> nn::Result<Metric> {
    Ok(Metric::custom::<f32, _>(Within))
}

/// Sign descent: `w -= lr * sign(g)`, with no state.
#[derive(Clone)]
struct SignDescent {
    name: &'static str,
    common: Common,
}

impl Optimizer<f32> for SignDescent {
    fn name(&self) -> &'static str {
        self.name
    }
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
    fn set_hyperparameter(&mut self, name: &str, _: f64) -> Result<(), OptimError> {
        Err(OptimError::UnknownHyperparameter {
            optimizer: self.name,
            name: name.to_string(),
            valid: Vec::new(),
        })
    }
    fn validate(&self) -> Result<(), OptimError> {
        self.common.validate(self.name)
    }
    fn build(&mut self, _: &[Vec<usize>]) {}
    fn state_slots(&self) -> Vec<&'static str> {
        Vec::new()
    }
    fn state(&self) -> Vec<&Tensor<f32>> {
        Vec::new()
    }
    fn state_mut(&mut self) -> Vec<&mut Tensor<f32>> {
        Vec::new()
    }
    fn update(&mut self, _: usize, w: &mut [f32], g: &[f32], lr: f32, _: u64) {
        for (w, g) in w.iter_mut().zip(g) {
            *w -= lr * g.signum();
        }
    }
}

fn sign_descent() -> Box<dyn Optimizer<f32>> {
    Box::new(SignDescent {
        name: "sign_descent",
        common: Common::new(0.01),
    })
}

#[test]
fn components_of_one_s_own_train_save_and_load_once_registered() {
    // y = 0.5 x0 - 0.25 x1 on a grid of points.
    let rows: Vec<[f32; 2]> = (0..64)
        .map(|i| [(i % 8) as f32 / 8.0, (i / 8) as f32 / 8.0])
        .collect();
    let targets: Vec<[f32; 1]> = rows.iter().map(|[a, b]| [0.5 * a - 0.25 * b]).collect();
    let (x, y) = (Tensor::new(&rows).unwrap(), Tensor::new(&targets).unwrap());

    let mut model = Sequential::<f32>::with_seed(3);
    model
        .add(Dense::new(8).input_dim(2).activation("tanh"))
        .unwrap();
    model.add(Dense::new(1)).unwrap();
    let metrics = vec![
        Metric::custom::<f32, _>(Within),
        Metric::from_name("mae").unwrap(),
    ];
    model
        .compile(
            sign_descent(),
            Loss::custom::<f32, _>(ScaledSquare { weight: 2.0 }),
            metrics,
        )
        .unwrap();
    let history = model
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 30,
                batch_size: 16,
                verbose: 0,
                ..Default::default()
            },
        )
        .unwrap();
    let (loss, within_) = (history.get("loss").unwrap(), history.get("within").unwrap());
    assert!(loss[29] < loss[0] / 4.0, "{loss:?}");
    assert!(within_[29] > within_[0], "{within_:?}");
    // The custom loss is the one computed: 4 x the mean squared error, as mae says.
    let logs = model.evaluate(&x, &y).unwrap();
    let p = model.predict(&x).unwrap();
    let d = &p - &y;
    let mse = (&d * &d).sum_all() as f64 / d.len() as f64;
    assert!(
        (logs.loss() - 4.0 * mse).abs() < 1e-5 * (1.0 + mse),
        "{} vs {}",
        logs.loss(),
        mse
    );

    let dir = common::scratch("custom_components");
    let path = dir.join("model.safetensors");
    model.save(&path).unwrap();
    // Loading names each missing component and how to register it, in turn.
    let missing = |hint: &str| {
        let e = Sequential::<f32>::load(&path).unwrap_err().to_string();
        assert!(e.contains(hint) && e.contains("register"), "{e}");
    };
    missing("optimizer 'sign_descent'");
    register_optimizer::<f32>("sign_descent", sign_descent).unwrap();
    missing("loss 'scaled_square'");
    register_loss::<f32>("scaled_square", scaled_square).unwrap();
    missing("metric 'within'");
    register_metric::<f32>("within", within).unwrap();
    let mut loaded = Sequential::<f32>::load(&path).unwrap();
    assert_eq!(loaded.loss(), model.loss());
    assert_eq!(loaded.metrics(), model.metrics());
    assert_eq!(loaded.predict(&x).unwrap(), p);
    // And it trains on exactly as the original does.
    let more = || FitOptions {
        epochs: 2,
        batch_size: 16,
        verbose: 0,
        ..Default::default()
    };
    let (a, b) = (
        model.fit(&x, &y, more()).unwrap(),
        loaded.fit(&x, &y, more()).unwrap(),
    );
    assert_eq!(a.get("loss"), b.get("loss"));
    // A built-in name cannot be taken.
    assert!(register_loss::<f32>("mse", scaled_square).is_err());
}

/// A model on two inputs and one output, and points of `y = 0.5 x0 - 0.25 x1`.
fn linear_data() -> (Tensor<f32>, Tensor<f32>) {
    let rows: Vec<[f32; 2]> = (0..16).map(|i| [(i % 4) as f32, (i / 4) as f32]).collect();
    let targets: Vec<[f32; 1]> = rows.iter().map(|[a, b]| [0.5 * a - 0.25 * b]).collect();
    (Tensor::new(&rows).unwrap(), Tensor::new(&targets).unwrap())
}

fn small_model() -> Sequential<f32> {
    let mut model = Sequential::<f32>::with_seed(5);
    model.add(Dense::new(1).input_dim(2)).unwrap();
    model
}

/// A loss under a name of the test's choosing.
struct Named(&'static str);

impl<T: Element> LossFunction<T> for Named {
    fn name(&self) -> &str {
        self.0
    }
    fn compute<'t>(&self, y_true: Var<'t, T>, y_pred: Var<'t, T>) -> nn::Result<Var<'t, T>> {
        Ok((y_pred - y_true).square().mean_all())
    }
}

impl<T: Element> MetricFunction<T> for Named {
    fn name(&self) -> &str {
        self.0
    }
    fn batch_sum(&self, _: &Tensor<T>, y_pred: &Tensor<T>) -> nn::Result<(f64, usize)> {
        Ok((0.0, y_pred.shape()[0]))
    }
}

#[test]
fn a_component_under_a_built_in_name_or_for_another_element_type_fails_at_compile() {
    let mut model = small_model();
    let before = model.get_weights();
    // Under a built-in name it would save, and load, as the built-in.
    let e = model
        .compile("sgd", Loss::custom::<f32, _>(Named("mse")), [])
        .unwrap_err()
        .to_string();
    assert!(e.contains("'mse'") && e.contains("built-in"), "{e}");
    let e = model
        .compile(
            "sgd",
            "mse",
            vec![Metric::custom::<f32, _>(Named("accuracy"))],
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("'accuracy'") && e.contains("built-in"), "{e}");
    // Made for f64, given to an f32 model: an error now, not at the first batch.
    let e = model
        .compile("sgd", Loss::custom::<f64, _>(Named("square")), [])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'square'") && e.contains("f64") && e.contains("f32"),
        "{e}"
    );
    let e = model
        .compile("sgd", "mse", vec![Metric::custom::<f64, _>(Named("zero"))])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'zero'") && e.contains("f64") && e.contains("f32"),
        "{e}"
    );
    assert!(!model.is_compiled());
    assert_eq!(model.get_weights(), before);
}

#[test]
fn a_factory_that_makes_the_wrong_thing_fails_at_registration_or_load() {
    // An optimizer registered under a name other than its own: the file would name its own.
    fn misnamed() -> Box<dyn Optimizer<f32>> {
        Box::new(SignDescent {
            name: "sign_descent_b",
            common: Common::new(0.01),
        })
    }
    let e = register_optimizer::<f32>("sign_descent_a", misnamed)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'sign_descent_a'") && e.contains("'sign_descent_b'"),
        "{e}"
    );

    // A loss factory registered for f32 that makes the loss for f64: loading says so.
    fn half_square_f64(_: &Map<String, Value>) -> nn::Result<Loss> {
        Ok(Loss::custom::<f64, _>(Named("half_square")))
    }
    let (x, y) = linear_data();
    let mut model = small_model();
    model
        .compile("sgd", Loss::custom::<f32, _>(Named("half_square")), [])
        .unwrap();
    model.train_on_batch(&x, &y).unwrap();
    register_loss::<f32>("half_square", half_square_f64).unwrap();
    let e = Sequential::<f32>::from_json(&model.to_json())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'half_square'") && e.contains("f64") && e.contains("f32"),
        "{e}"
    );
}

#[test]
fn a_saved_change_of_clipping_kind_loads_against_the_factory_s_defaults() {
    // The factory's optimizer clips by the global norm; the saved one was switched to
    // per-tensor clipping. Set one at a time on load, the first would ask for both kinds.
    fn clipped() -> Box<dyn Optimizer<f32>> {
        let mut opt = SignDescent {
            name: "clipped_sign_descent",
            common: Common::new(0.01),
        };
        opt.set_option(CommonOption::GlobalClipnorm, Some(1.0))
            .unwrap();
        Box::new(opt)
    }
    register_optimizer::<f32>("clipped_sign_descent", clipped).unwrap();
    let mut opt = clipped();
    opt.set_options(&[
        (CommonOption::GlobalClipnorm, None),
        (CommonOption::Clipnorm, Some(0.5)),
    ])
    .unwrap();
    let mut model = small_model();
    model.compile(opt, "mse", []).unwrap();
    let loaded = Sequential::<f32>::from_json(&model.to_json()).unwrap();
    let common = loaded.optimizer().unwrap().common();
    assert_eq!(
        (common.clipnorm(), common.global_clipnorm()),
        (Some(0.5), None)
    );
}
