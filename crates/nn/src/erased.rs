//! A value made for one element type and held without naming it: a user's loss or metric,
//! written for `f32` or `f64`, inside the non-generic [`Loss`](crate::Loss) or
//! [`Metric`](crate::Metric). Asked for again with the model's element type, it answers for
//! the type it was made for and is an error for any other.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, RwLock};

use serde_json::{Map, Value};
use tensor::Element;

use crate::error::{Error, Result};

/// A shared value `V` made for the element type named in `element`.
#[derive(Clone)]
struct ForElement {
    element: &'static str,
    value: Arc<dyn Any + Send + Sync>,
}

impl ForElement {
    /// Holds `value`, made for element type `T`.
    fn new<T: Element, V: Any + Send + Sync>(value: V) -> Self {
        ForElement {
            element: type_name::<T>(),
            value: Arc::new(value),
        }
    }

    /// The value, as made for element type `T`; `what` names it in the error for another
    /// type (`"the loss 'focal'"`).
    fn get<T: Element, V: Any>(&self, what: &str) -> Result<&V> {
        self.value.downcast_ref::<V>().ok_or_else(|| {
            Error::data(
                what.to_string(),
                format!(
                    "was made for {} and the model computes in {}; make it for {} (or \
                     implement it for every Element)",
                    self.element,
                    type_name::<T>(),
                    type_name::<T>()
                ),
            )
        })
    }
}

/// A component of one's own (a loss, a metric) as a [`Loss`](crate::Loss) or a
/// [`MetricKind`](crate::MetricKind) holds it: its name and config, as saved, and its
/// function for the element type it was made for.
#[derive(Clone)]
pub struct CustomComponent {
    name: String,
    config: Map<String, Value>,
    function: ForElement,
}

impl CustomComponent {
    /// Holds `function`, made for element type `T`, under `name` with `config`.
    pub(crate) fn new<T: Element, V: Any + Send + Sync>(
        name: String,
        config: Map<String, Value>,
        function: V,
    ) -> Self {
        CustomComponent {
            name,
            config,
            function: ForElement::new::<T, _>(function),
        }
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component's settings, as saved.
    pub fn config(&self) -> &Map<String, Value> {
        &self.config
    }

    /// The function, as made for element type `T`; `kind` (`"loss"`) names the component
    /// in the error for another type.
    pub(crate) fn function<T: Element, V: Any>(&self, kind: &str) -> Result<&V> {
        self.function
            .get::<T, V>(&format!("the {kind} '{}'", self.name))
    }
}

impl fmt::Debug for CustomComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Custom({:?}, {:?})", self.name, self.config)
    }
}

/// Two custom components are the same when their names and configs are (a loaded model's
/// is made anew by its factory).
impl PartialEq for CustomComponent {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.config == other.config
    }
}

/// The factories of one kind of component, by element type and name.
pub(crate) type Registry<F> = LazyLock<RwLock<HashMap<(TypeId, String), F>>>;

/// Registers `factory` under `name` for element type `T`, replacing any before it.
pub(crate) fn register<T: Element, F>(registry: &Registry<F>, name: &str, factory: F) {
    registry
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert((TypeId::of::<T>(), name.to_string()), factory);
}

/// The factory registered under `name` for element type `T`.
pub(crate) fn registered<T: Element, F: Copy>(registry: &Registry<F>, name: &str) -> Option<F> {
    registry
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(TypeId::of::<T>(), name.to_string()))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_answers_for_its_element_type_only() {
        let c = CustomComponent::new::<f32, _>("half".into(), Map::new(), 0.5f32);
        assert_eq!(*c.function::<f32, f32>("loss").unwrap(), 0.5);
        let e = c.function::<f64, f64>("loss").unwrap_err().to_string();
        assert!(
            e.contains("the loss 'half'") && e.contains("f32") && e.contains("f64"),
            "{e}"
        );
        static R: Registry<u8> = LazyLock::new(Default::default);
        register::<f32, _>(&R, "a", 1);
        assert_eq!(registered::<f32, u8>(&R, "a"), Some(1));
        assert_eq!(registered::<f64, u8>(&R, "a"), None);
    }
}
