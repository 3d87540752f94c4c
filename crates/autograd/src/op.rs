//! The [`Op`] trait: one operation's forward computation and its vector-Jacobian product,
//! written side by side.

use tensor::{Element, Result, Tensor};

/// One differentiable operation. Implementing it is all it takes to add an op to the tape:
/// `forward` computes the output from the input values, `backward` turns the gradient of
/// the output into gradients of the inputs (the vector-Jacobian product).
///
/// The tape keeps the input and output values, so an op stores only its attributes (an
/// axis, an exponent), never tensors it could read back.
///
/// ```
/// use autograd::{InputGrads, Op, Tape};
/// use tensor::{Result, Tensor};
///
/// /// `x^3`, as a user-defined op.
/// struct Cube;
///
/// impl Op<f64> for Cube {
///     fn name(&self) -> &'static str {
///         "cube"
///     }
///     fn forward(&self, x: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
///         Ok(x[0].map(|v| v * v * v))
///     }
///     fn backward(&self, x: &[&Tensor<f64>], _y: &Tensor<f64>, dy: &Tensor<f64>, dx: &mut InputGrads<'_, f64>) {
///         dx.set(0, dy * &x[0].map(|v| 3.0 * v * v));
///     }
/// }
///
/// let tape = Tape::<f64>::new();
/// let x = tape.param(&Tensor::scalar(2.0));
/// let y = tape.apply(Cube, [x]).unwrap();
/// let grads = y.backward().unwrap();
/// assert_eq!(grads[x].item(), 12.0);
/// ```
pub trait Op<T: Element>: Send + 'static {
    /// A short lower-case name (`"matmul"`, `"softmax"`) used in errors and tape listings.
    fn name(&self) -> &'static str;

    /// Computes the output from the input values. Shape errors are returned, not panicked.
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>>;

    /// Given `grad`, the gradient of the loss with respect to `output`, sets the gradient
    /// with respect to each input that [`InputGrads::wants`] (and has the input's shape).
    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        output: &Tensor<T>,
        grad: &Tensor<T>,
        grads: &mut InputGrads<'_, T>,
    );
}

/// Where an op's `backward` puts the gradients of its inputs. Inputs that need no gradient
/// (constants, data) are skipped, so that no work is spent on them.
pub struct InputGrads<'a, T: Element> {
    pub(crate) wants: &'a [bool],
    pub(crate) slots: &'a mut [Option<Tensor<T>>],
}

impl<T: Element> InputGrads<'_, T> {
    /// Whether input `i` needs a gradient; check it before computing an expensive one.
    pub fn wants(&self, i: usize) -> bool {
        self.wants[i]
    }

    /// Sets the gradient of input `i` (ignored if the input needs none).
    pub fn set(&mut self, i: usize, grad: Tensor<T>) {
        if self.wants[i] {
            self.slots[i] = Some(grad);
        }
    }

    /// Sets the gradient of input `i` to `f()`, calling `f` only if the input needs one.
    pub fn set_with(&mut self, i: usize, f: impl FnOnce() -> Tensor<T>) {
        if self.wants[i] {
            self.slots[i] = Some(f());
        }
    }
}
