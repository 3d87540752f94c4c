//! A loss, a metric and an optimizer written outside brick (as a research user's crate
//! would) train a `Sequential` through `compile`, `fit` and `evaluate`; a model saved with
//! them refuses to load until each is registered, naming the missing one and how to register
//! it, and loads and trains on once they are.

mod common;

use autograd::Var;
use brick::prelude::*;
use nn::losses::{LossFunction, register_loss};
use nn::metrics::{MetricFunction, register_metric};
use optim::{Common, OptimError, register_optimizer};
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
    common: Common,
}

impl Optimizer<f32> for SignDescent {
    fn name(&self) -> &'static str {
        "sign_descent"
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
            optimizer: "sign_descent",
            name: name.to_string(),
            valid: Vec::new(),
        })
    }
    fn validate(&self) -> Result<(), OptimError> {
        self.common.validate("sign_descent")
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
