//! One registry of layer classes: the built-in ones, and those a user's crate registers, so
//! that a model file naming them can be loaded (Keras's `custom_objects`).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use serde_json::{Map, Value};
use tensor::Element;

use crate::config::{ConfigResult, Field};
use crate::error::{Error, Result};
use crate::layers::{
    ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
    GlobalAveragePooling2D, Layer, LayerNormalization, MaxPooling2D, Reshape,
};

/// Builds a layer from the config its [`Layer::config`] wrote (without `name`, which the
/// model sets).
pub type LayerFactory<T> = fn(&Map<String, Value>) -> Result<Box<dyn Layer<T>>>;

/// The layer classes built in.
pub const LAYER_CLASSES: &[&str] = &[
    "Dense",
    "Activation",
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "Flatten",
    "Reshape",
    "Dropout",
    "BatchNormalization",
    "LayerNormalization",
];

fn boxed<T: Element, L: Layer<T> + 'static>(r: ConfigResult<L>) -> ConfigResult<Box<dyn Layer<T>>> {
    r.map(|l| Box::new(l) as Box<dyn Layer<T>>)
}

/// A built-in layer from its config, or `None` for a class that is not built in.
fn builtin<T: Element>(class: &str, c: Field<'_>) -> Option<ConfigResult<Box<dyn Layer<T>>>> {
    Some(match class {
        "Dense" => boxed(Dense::from_config(c)),
        "Activation" => boxed(ActivationLayer::from_config(c)),
        "Conv2D" => boxed(Conv2D::from_config(c)),
        "MaxPooling2D" => boxed(MaxPooling2D::from_config(c)),
        "AveragePooling2D" => boxed(AveragePooling2D::from_config(c)),
        "GlobalAveragePooling2D" => boxed(GlobalAveragePooling2D::from_config(c)),
        "Flatten" => boxed(Flatten::from_config(c)),
        "Reshape" => boxed(Reshape::from_config(c)),
        "Dropout" => boxed(Dropout::from_config(c)),
        "BatchNormalization" => boxed(BatchNormalization::from_config(c)),
        "LayerNormalization" => boxed(LayerNormalization::from_config(c)),
        _ => return None,
    })
}

type Registered = HashMap<(TypeId, String), Box<dyn Any + Send + Sync>>;

fn registered() -> &'static RwLock<Registered> {
    static REGISTRY: OnceLock<RwLock<Registered>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Registers a layer class of your own, so that models holding it can be loaded from a
/// file or a JSON config (Keras's `custom_objects`). Register it once per element type it
/// is used with; registering a class again replaces its factory.
///
/// ```
/// # use autograd::Var;
/// # use nn::layers::{Context, LayerVars, Weights};
/// # use nn::{Layer, Result};
/// # use tensor::random::StdRng;
/// /// Doubles its input.
/// #[derive(Default)]
/// struct Double { name: Option<String>, weights: Weights<f32> }
/// impl Layer<f32> for Double {
///     fn class_name(&self) -> &'static str { "Double" }
///     fn name(&self) -> Option<&str> { self.name.as_deref() }
///     fn set_name(&mut self, name: String) { self.name = Some(name); }
///     fn output_shape(&self, s: &[usize]) -> Result<Vec<usize>> { Ok(s.to_vec()) }
///     fn build(&mut self, _: &[usize], _: &mut StdRng) -> Result<()> { Ok(()) }
///     fn is_built(&self) -> bool { true }
///     fn weights(&self) -> &Weights<f32> { &self.weights }
///     fn weights_mut(&mut self) -> &mut Weights<f32> { &mut self.weights }
///     fn forward<'t>(&self, x: Var<'t, f32>, _: &LayerVars<'_, 't, f32>, _: &mut Context<'_, f32>) -> Result<Var<'t, f32>> { Ok(x * 2.0) }
///     fn config(&self) -> serde_json::Map<String, serde_json::Value> { Default::default() }
/// }
///
/// nn::register_layer::<f32>("Double", |_config| Ok(Box::new(Double::default()))).unwrap();
/// let mut model = nn::Sequential::with_seed(0);
/// model.add(nn::Input::new([2])).unwrap();
/// model.add(Double::default()).unwrap();
/// let back = nn::Sequential::<f32>::from_json(&model.to_json()).unwrap();
/// assert_eq!(back.layers()[0].class_name(), "Double");
/// // A built-in class cannot be taken over.
/// assert!(nn::register_layer::<f32>("Dense", |_| Ok(Box::new(Double::default()))).is_err());
/// ```
///
/// # Errors
/// If `class_name` is a built-in class or the name of no class (empty).
pub fn register_layer<T: Element>(class_name: &str, factory: LayerFactory<T>) -> Result<()> {
    if LAYER_CLASSES.contains(&class_name) || class_name == super::input::INPUT_CLASS {
        return Err(Error::config(
            "register_layer",
            format!("'{class_name}' is a built-in layer class; give yours another name"),
        ));
    }
    if class_name.is_empty() {
        return Err(Error::config("register_layer", "the class name is empty"));
    }
    registered()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            (TypeId::of::<T>(), class_name.to_string()),
            Box::new(factory),
        );
    Ok(())
}

/// The layer a saved `{"class_name": class, "config": {...}}` describes, built in or
/// registered; the error for an unknown class says how to register it.
pub(crate) fn layer_from_config<T: Element>(
    class: Field<'_>,
    config: Field<'_>,
) -> ConfigResult<Box<dyn Layer<T>>> {
    let (class_path, class) = (class.path(), class.str()?);
    if let Some(layer) = builtin::<T>(class, config) {
        return layer;
    }
    let factory = registered()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(TypeId::of::<T>(), class.to_string()))
        .and_then(|f| f.downcast_ref::<LayerFactory<T>>().copied());
    let Some(factory) = factory else {
        return Err(format!(
            "{class_path}: unknown layer class '{class}'; the built-in classes are {}. A layer of your own must be registered before loading: nn::register_layer::<{}>(\"{class}\", factory)",
            LAYER_CLASSES.join(", "),
            T::DTYPE
        ));
    };
    let mut map = match config.value {
        Value::Object(m) => m.clone(),
        _ => return Err(format!("{}: expected an object", config.path())),
    };
    map.remove("name");
    factory(&map).map_err(|e| format!("{}: {e}", config.path()))
}
