//! Arithmetic with broadcasting: `+ - * /` between variables and with scalars, negation,
//! `maximum` and `minimum`. Broadcasting gradients are summed back to each input's shape.

use std::ops::{Add, Div, Mul, Neg, Sub};

use tensor::{Element, Result, Tensor};

use crate::op::{InputGrads, Op, Operand};
use crate::ops::unwrap_op;
use crate::tape::Var;

/// `a + b`.
pub struct AddOp;

impl<T: Element> Op<T> for AddOp {
    fn name(&self) -> &'static str {
        "add"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_add(x[1])
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || dy.sum_to(&x[0].shape()));
        dx.set_with(1, || dy.sum_to(&x[1].shape()));
    }
}

/// `a - b`.
pub struct SubOp;

impl<T: Element> Op<T> for SubOp {
    fn name(&self) -> &'static str {
        "sub"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_sub(x[1])
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || dy.sum_to(&x[0].shape()));
        dx.set_with(1, || dy.sum_to(&x[1].shape()).neg());
    }
}

/// `a * b`, element-wise.
pub struct MulOp;

impl<T: Element> Op<T> for MulOp {
    fn name(&self) -> &'static str {
        "mul"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_mul(x[1])
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || dy.mul(x[1]).sum_to(&x[0].shape()));
        dx.set_with(1, || dy.mul(x[0]).sum_to(&x[1].shape()));
    }
}

/// `a / b`, element-wise.
pub struct DivOp;

impl<T: Element> Op<T> for DivOp {
    fn name(&self) -> &'static str {
        "div"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_div(x[1])
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], y: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        // d(a/b)/da = 1/b;  d(a/b)/db = -a/b^2 = -y/b
        let dy_over_b = dy.div(x[1]);
        dx.set_with(1, || dy_over_b.mul(y).neg().sum_to(&x[1].shape()));
        dx.set_with(0, || dy_over_b.sum_to(&x[0].shape()));
    }
}

/// `-a`.
pub struct NegOp;

impl<T: Element> Op<T> for NegOp {
    fn name(&self) -> &'static str {
        "neg"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(-x[0])
    }
    fn backward<V: Operand<T>>(&self, _: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || dy.neg());
    }
}

/// `a + c` for a scalar `c`.
pub struct AddScalarOp<T>(pub T);

impl<T: Element> Op<T> for AddScalarOp<T> {
    fn name(&self) -> &'static str {
        "add_scalar"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0] + self.0)
    }
    fn backward<V: Operand<T>>(&self, _: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || dy.clone());
    }
}

/// `a * c` for a scalar `c`.
pub struct MulScalarOp<T>(pub T);

impl<T: Element> Op<T> for MulScalarOp<T> {
    fn name(&self) -> &'static str {
        "mul_scalar"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0] * self.0)
    }
    fn backward<V: Operand<T>>(&self, _: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || dy.scale(self.0));
    }
}

/// `a / c` for a scalar `c` (a true division, as Keras computes it, not a product by `1/c`).
pub struct DivScalarOp<T>(pub T);

impl<T: Element> Op<T> for DivScalarOp<T> {
    fn name(&self) -> &'static str {
        "div_scalar"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0] / self.0)
    }
    fn backward<V: Operand<T>>(&self, _: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || dy.div_scalar(self.0));
    }
}

/// `c - a` for a scalar `c`.
pub struct ScalarSubOp<T>(pub T);

impl<T: Element> Op<T> for ScalarSubOp<T> {
    fn name(&self) -> &'static str {
        "scalar_sub"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let c = self.0;
        Ok(x[0].map(|a| c - a))
    }
    fn backward<V: Operand<T>>(&self, _: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || dy.neg());
    }
}

/// `c / a` for a scalar `c`.
pub struct ScalarDivOp<T>(pub T);

impl<T: Element> Op<T> for ScalarDivOp<T> {
    fn name(&self) -> &'static str {
        "scalar_div"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let c = self.0;
        Ok(x[0].map(|a| c / a))
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], y: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        // d(c/a)/da = -c/a^2 = -y/a
        dx.set_with(0, || dy.mul(y).div(x[0]).neg());
    }
}

/// The element-wise larger of `a` and `b`; on ties the gradient goes to `a`.
pub struct MaximumOp;

impl<T: Element> Op<T> for MaximumOp {
    fn name(&self) -> &'static str {
        "maximum"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_maximum(x[1])
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let a_wins = x[0].value().ge_mask(&x[1].value());
        route_by_mask(&a_wins, x, dy, dx);
    }
}

/// The element-wise smaller of `a` and `b`; on ties the gradient goes to `a`.
pub struct MinimumOp;

impl<T: Element> Op<T> for MinimumOp {
    fn name(&self) -> &'static str {
        "minimum"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_minimum(x[1])
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let a_wins = x[0].value().le_mask(&x[1].value());
        route_by_mask(&a_wins, x, dy, dx);
    }
}

/// Sends `dy` to input 0 where `mask` is 1 and to input 1 elsewhere (the mask is piecewise
/// constant: it has no derivative of its own).
fn route_by_mask<T: Element, V: Operand<T>>(
    mask: &Tensor<T>,
    x: &[&V],
    dy: &V,
    dx: &mut InputGrads<'_, V>,
) {
    let to_a = dy.mul_const(mask);
    dx.set_with(1, || dy.sub(&to_a).sum_to(&x[1].shape()));
    dx.set_with(0, || to_a.sum_to(&x[0].shape()));
}

impl<'t, T: Element> Var<'t, T> {
    /// `self + other` with broadcasting, or an error naming both shapes.
    pub fn try_add(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.tape.apply(AddOp, [self, other])
    }

    /// `self - other` with broadcasting, or an error naming both shapes.
    pub fn try_sub(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.tape.apply(SubOp, [self, other])
    }

    /// `self * other` (element-wise) with broadcasting, or an error naming both shapes.
    pub fn try_mul(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.tape.apply(MulOp, [self, other])
    }

    /// `self / other` (element-wise) with broadcasting, or an error naming both shapes.
    pub fn try_div(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.tape.apply(DivOp, [self, other])
    }

    /// The element-wise larger of two variables (broadcasting).
    ///
    /// # Panics
    /// If the shapes do not broadcast; see [`try_maximum`](Var::try_maximum).
    #[track_caller]
    pub fn maximum(self, other: Var<'t, T>) -> Var<'t, T> {
        unwrap_op(self.try_maximum(other))
    }

    /// [`maximum`](Var::maximum) that returns an error for shapes that do not broadcast.
    pub fn try_maximum(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.tape.apply(MaximumOp, [self, other])
    }

    /// The element-wise smaller of two variables (broadcasting).
    ///
    /// # Panics
    /// If the shapes do not broadcast; see [`try_minimum`](Var::try_minimum).
    #[track_caller]
    pub fn minimum(self, other: Var<'t, T>) -> Var<'t, T> {
        unwrap_op(self.try_minimum(other))
    }

    /// [`minimum`](Var::minimum) that returns an error for shapes that do not broadcast.
    pub fn try_minimum(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.tape.apply(MinimumOp, [self, other])
    }
}

macro_rules! var_operators {
    ($Trait:ident, $method:ident, $try_method:ident, $ScalarOp:expr) => {
        impl<'t, T: Element> $Trait<Var<'t, T>> for Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'t, T>) -> Var<'t, T> {
                unwrap_op(self.$try_method(rhs))
            }
        }
        impl<'t, T: Element> $Trait<T> for Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, c: T) -> Var<'t, T> {
                #[allow(clippy::redundant_closure_call)]
                unwrap_op(self.tape.apply(($ScalarOp)(c), [self]))
            }
        }
    };
}

var_operators!(Add, add, try_add, AddScalarOp);
var_operators!(Sub, sub, try_sub, |c: T| AddScalarOp(-c));
var_operators!(Mul, mul, try_mul, MulScalarOp);
var_operators!(Div, div, try_div, DivScalarOp);

macro_rules! scalar_lhs_var_operators {
    ($($t:ty),*) => {$(
        impl<'t> Add<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            fn add(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v + self
            }
        }
        impl<'t> Sub<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            fn sub(self, v: Var<'t, $t>) -> Var<'t, $t> {
                unwrap_op(v.tape.apply(ScalarSubOp(self), [v]))
            }
        }
        impl<'t> Mul<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            fn mul(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v * self
            }
        }
        impl<'t> Div<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            fn div(self, v: Var<'t, $t>) -> Var<'t, $t> {
                unwrap_op(v.tape.apply(ScalarDivOp(self), [v]))
            }
        }
    )*};
}

scalar_lhs_var_operators!(f32, f64);

impl<'t, T: Element> Neg for Var<'t, T> {
    type Output = Var<'t, T>;
    fn neg(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(NegOp, [self]))
    }
}
