//! A value made for one element type and held without naming it: a user's loss or metric,
//! written for `f32` or `f64`, inside the non-generic [`Loss`](crate::Loss) or
//! [`Metric`](crate::Metric). Asked for again with the model's element type, it answers for
//! the type it was made for and is an error for any other.

use std::any::{Any, type_name};
use std::sync::Arc;

use tensor::Element;

use crate::error::{Error, Result};

/// A shared value `V` made for the element type named in `element`.
#[derive(Clone)]
pub(crate) struct ForElement {
    element: &'static str,
    value: Arc<dyn Any + Send + Sync>,
}

impl ForElement {
    /// Holds `value`, made for element type `T`.
    pub(crate) fn new<T: Element, V: Any + Send + Sync>(value: V) -> Self {
        ForElement {
            element: type_name::<T>(),
            value: Arc::new(value),
        }
    }

    /// The value, as made for element type `T`; `what` names it in the error for another
    /// type (`"the loss 'focal'"`).
    pub(crate) fn get<T: Element, V: Any>(&self, what: &str) -> Result<&V> {
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
