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
/// use optim::{Optimizer, SGD, register_optimizer};
/// // A plain SGD under another name stands in for an optimizer of one's own.
/// fn make() -> Box<dyn Optimizer<f32>> { Box::new(SGD::new(0.05)) }
/// register_optimizer::<f32>("my_sgd", make).unwrap();
/// assert_eq!(optim::by_name::<f32>("my_sgd").unwrap().learning_rate(), 0.05);
/// assert!(register_optimizer::<f32>("adam", make).is_err());
/// ```
///
/// # Errors
/// If `name` is a built-in optimizer's.
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
