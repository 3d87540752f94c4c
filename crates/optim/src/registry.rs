//! Optimizers by name: the built-in ones with Keras's names, and those a user's crate
//! registers ([`register_optimizer`]), so that a model saved with one loads again.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use tensor::Element;

use crate::adagrad::Adagrad;
use crate::adam::{Adam, AdamW};
use crate::error::OptimError;
use crate::optimizer::Optimizer;
use crate::rmsprop::RMSprop;
use crate::sgd::SGD;

/// The names [`by_name`] accepts, as Keras spells them.
pub const OPTIMIZER_NAMES: &[&str] = &["sgd", "rmsprop", "adam", "adamw", "adagrad"];

/// What `compile` accepts as an optimizer: a Keras name (`"rmsprop"`, with Keras's
/// defaults), an optimizer value, or a boxed one (for optimizers users write themselves).
pub trait IntoOptimizer<T: Element> {
    /// Converts, or explains why not (an unknown name lists the valid ones).
    fn into_optimizer(self) -> Result<Box<dyn Optimizer<T>>, OptimError>;
}

impl<T: Element> IntoOptimizer<T> for &str {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer<T>>, OptimError> {
        by_name(self)
    }
}

impl<T: Element> IntoOptimizer<T> for String {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer<T>>, OptimError> {
        by_name(&self)
    }
}

impl<T: Element> IntoOptimizer<T> for Box<dyn Optimizer<T>> {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer<T>>, OptimError> {
        Ok(self)
    }
}

macro_rules! into_optimizer_for {
    ($($ty:ident),*) => {$(
        impl<T: Element> IntoOptimizer<T> for $ty<T> {
            fn into_optimizer(self) -> Result<Box<dyn Optimizer<T>>, OptimError> {
                Ok(Box::new(self))
            }
        }
    )*};
}

into_optimizer_for!(SGD, RMSprop, Adam, AdamW, Adagrad);

/// An optimizer by its Keras name, with Keras's default hyperparameters, or one a crate
/// registered ([`register_optimizer`]).
///
/// ```
/// let opt = optim::by_name::<f32>("rmsprop").unwrap();
/// assert_eq!(opt.learning_rate(), 0.001);
/// let err = optim::by_name::<f32>("adamm").err().unwrap();
/// assert_eq!(err.to_string(), "unknown optimizer 'adamm'; valid names are: sgd, rmsprop, adam, adamw, adagrad");
/// ```
pub fn by_name<T: Element>(name: &str) -> Result<Box<dyn Optimizer<T>>, OptimError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "sgd" => Box::new(SGD::<T>::default()),
        "rmsprop" => Box::new(RMSprop::<T>::default()),
        "adam" => Box::new(Adam::<T>::default()),
        "adamw" => Box::new(AdamW::<T>::default()),
        "adagrad" => Box::new(Adagrad::<T>::default()),
        _ => match registered::<T>(name) {
            Some(factory) => factory(),
            None => {
                return Err(OptimError::UnknownName {
                    name: name.to_string(),
                    valid: OPTIMIZER_NAMES,
                });
            }
        },
    })
}

/// Makes a registered optimizer with its default hyperparameters (a saved config then sets
/// the learning rate, the shared options and its own hyperparameters by name).
pub type OptimizerFactory<T> = fn() -> Box<dyn Optimizer<T>>;

type Registered = HashMap<(TypeId, String), Box<dyn Any + Send + Sync>>;

fn registry() -> &'static RwLock<Registered> {
    static REGISTRY: OnceLock<RwLock<Registered>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Registers an optimizer of your own under its [`name`](Optimizer::name) for element
/// type `T`, so that [`by_name`] (and so a model file naming it) finds it. `factory` makes
/// it with its defaults; its [`hyperparameters`](Optimizer::hyperparameters) and
/// [`set_hyperparameter`](Optimizer::set_hyperparameter) carry the rest. Registering a
/// name again replaces its factory.
///
/// ```
/// use optim::{Common, OptimError, Optimizer, SGD, register_optimizer};
/// use tensor::Tensor;
/// /// Sign descent, `w -= lr * sign(g)`: an optimizer of one's own, with no state.
/// #[derive(Clone)]
/// struct SignDescent(Common);
/// impl Optimizer<f32> for SignDescent {
///     fn name(&self) -> &'static str { "sign_descent" }
///     fn update(&mut self, _: usize, w: &mut [f32], g: &[f32], lr: f32, _: u64) {
///         w.iter_mut().zip(g).for_each(|(w, g)| *w -= lr * g.signum());
///     }
/// #   fn common(&self) -> &Common { &self.0 }
/// #   fn common_mut(&mut self) -> &mut Common { &mut self.0 }
/// #   fn hyperparameters(&self) -> Vec<(&'static str, f64)> { Vec::new() }
/// #   fn set_hyperparameter(&mut self, name: &str, _: f64) -> Result<(), OptimError> {
/// #       Err(OptimError::UnknownHyperparameter {
/// #           optimizer: "sign_descent", name: name.into(), valid: Vec::new() })
/// #   }
/// #   fn validate(&self) -> Result<(), OptimError> { self.0.validate("sign_descent") }
/// #   fn build(&mut self, _: &[Vec<usize>]) {}
/// #   fn state_slots(&self) -> Vec<&'static str> { Vec::new() }
/// #   fn state(&self) -> Vec<&Tensor<f32>> { Vec::new() }
/// #   fn state_mut(&mut self) -> Vec<&mut Tensor<f32>> { Vec::new() }
///     // ... and the state and settings methods, as tests/custom_components.rs shows.
/// }
/// fn make() -> Box<dyn Optimizer<f32>> { Box::new(SignDescent(Common::new(0.05))) }
/// register_optimizer::<f32>("sign_descent", make).unwrap();
/// assert_eq!(optim::by_name::<f32>("sign_descent").unwrap().learning_rate(), 0.05);
/// // Not under a built-in name, nor a name other than its own (a file would name that).
/// assert!(register_optimizer::<f32>("adam", make).is_err());
/// assert!(register_optimizer::<f32>("my_sgd", || Box::new(SGD::new(0.1))).is_err());
/// ```
///
/// # Errors
/// If `name` is a built-in optimizer's, or not the [`name`](Optimizer::name) of what
/// `factory` makes.
pub fn register_optimizer<T: Element>(
    name: &str,
    factory: OptimizerFactory<T>,
) -> Result<(), OptimError> {
    if OPTIMIZER_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(OptimError::InvalidHyperparameter {
            optimizer: "register_optimizer",
            name: "name",
            message: format!("'{name}' is a built-in optimizer's; give yours another name"),
        });
    }
    // A model file names an optimizer by what it reports; registered under another name,
    // the file would name one that nothing registered.
    let made = factory().name();
    if made != name {
        return Err(OptimError::InvalidHyperparameter {
            optimizer: "register_optimizer",
            name: "name",
            message: format!(
                "the factory registered as '{name}' makes an optimizer named '{made}'; \
                 register it under '{made}'"
            ),
        });
    }
    registry()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert((TypeId::of::<T>(), name.to_string()), Box::new(factory));
    Ok(())
}

/// The factory registered under `name` for element type `T`.
fn registered<T: Element>(name: &str) -> Option<OptimizerFactory<T>> {
    registry()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(TypeId::of::<T>(), name.to_string()))
        .and_then(|f| f.downcast_ref::<OptimizerFactory<T>>())
        .copied()
}
