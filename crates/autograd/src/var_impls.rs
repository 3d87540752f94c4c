//! [`Var`] as an [`Operand`] and a [`Real`]: what lets one backward rule, written once,
//! record itself on the tape (the recorded sweep behind [`Var::grad`]).

use std::borrow::Cow;

use tensor::{Element, Tensor};

use crate::op::{Op, Operand};
use crate::ops::unwrap_op;
use crate::real::{Real, RealFn};
use crate::tape::Var;

impl<'t, T: Element> Operand<T> for Var<'t, T> {
    fn shape(&self) -> Cow<'_, [usize]> {
        Cow::Owned(Var::shape(self))
    }
    fn value(&self) -> Tensor<T> {
        Var::value(self)
    }
    fn as_tensor(&self) -> Option<&Tensor<T>> {
        None
    }
    fn constant(&self, value: Tensor<T>) -> Self {
        self.tape.constant(&value)
    }
    fn apply<O: Op<T>, const N: usize>(op: O, inputs: [&Self; N]) -> Self {
        let tape = inputs[0].tape;
        unwrap_op(tape.apply(op, inputs.map(|v| *v)))
    }
    fn map_real<F: RealFn<T, N>, const N: usize>(f: &F, args: [&Self; N]) -> Self {
        f.eval(args.map(|v| *v))
    }
    fn add(&self, other: &Self) -> Self {
        *self + *other
    }
    fn sub(&self, other: &Self) -> Self {
        *self - *other
    }
    fn mul(&self, other: &Self) -> Self {
        *self * *other
    }
    fn div(&self, other: &Self) -> Self {
        *self / *other
    }
    fn neg(&self) -> Self {
        -*self
    }
    fn scale(&self, c: T) -> Self {
        *self * c
    }
    fn div_scalar(&self, c: T) -> Self {
        *self / c
    }
    fn mul_const(&self, c: &Tensor<T>) -> Self {
        *self * self.tape.constant(c)
    }
    fn matmul(&self, other: &Self) -> Self {
        Var::matmul(*self, *other)
    }
    fn matmul_pair(a: [&Self; 2], b: [&Self; 2], _side_by_side: bool) -> (Self, Self) {
        // A tape records one op at a time.
        (Var::matmul(*a[0], *a[1]), Var::matmul(*b[0], *b[1]))
    }
    fn transpose(&self) -> Self {
        Var::transpose(*self)
    }
    fn permute(&self, axes: &[usize]) -> Self {
        Var::permute(*self, axes)
    }
    // Shape moves to the shape a value already has record nothing, as on tensors (where
    // they return the same tensor): fewer ops on the tape, and a deferred product stays so.
    fn reshape(&self, shape: &[usize]) -> Self {
        if Var::shape(self) == shape {
            return *self;
        }
        Var::reshape(*self, shape)
    }
    fn broadcast_to(&self, shape: &[usize]) -> Self {
        if Var::shape(self) == shape {
            return *self;
        }
        Var::broadcast_to(*self, shape)
    }
    fn sum_to(&self, shape: &[usize]) -> Self {
        if Var::shape(self) == shape {
            return *self;
        }
        Var::sum_to(*self, shape)
    }
    fn sum(&self, axis: isize, keepdims: bool) -> Self {
        Var::sum(*self, axis, keepdims)
    }
}

impl<'t, T: Element> Real<T> for Var<'t, T> {
    fn cst(self, c: T) -> Self {
        self.tape.scalar(c)
    }
    fn exp(self) -> Self {
        Var::exp(self)
    }
    fn ln(self) -> Self {
        Var::ln(self)
    }
    fn sqrt(self) -> Self {
        Var::sqrt(self)
    }
    fn powf(self, p: T) -> Self {
        Var::powf(self, p)
    }
    fn tanh(self) -> Self {
        Var::tanh(self)
    }
    fn sigmoid(self) -> Self {
        Var::sigmoid(self)
    }
    fn softplus(self) -> Self {
        Var::softplus(self)
    }
    fn erf(self) -> Self {
        Var::erf(self)
    }
    fn abs(self) -> Self {
        Var::abs(self)
    }
    fn piecewise(self, f: impl Fn(T) -> T) -> Self {
        self.tape.constant(&Var::value(&self).map(f))
    }
    fn select(cond: Self, on_true: Self, on_false: Self) -> Self {
        Var::where_cond(&Var::value(&cond), on_true, on_false)
    }
}
