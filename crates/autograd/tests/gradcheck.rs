//! Property-based gradient checks: for every differentiable op, random shapes (including
//! shapes that broadcast) and random values, the tape's gradient must match central finite
//! differences in f64, and so must its second derivative (Hessian-vector products from the
//! recorded sweep against central differences of the gradient). The smooth element-wise ops
//! are checked to the third derivative. Inputs stay away from kinks (relu and abs at 0, ties
//! in max, clamp bounds) instead of loosening tolerances.
//!
//! Every op name in `src/ops/` must have an entry in `gradchecks!` below, which declares its
//! first- and second-order checks together; the test `every_op_has_a_gradient_check` fails
//! otherwise.

use std::collections::BTreeSet;

use autograd::gradcheck::GradCheck;
use autograd::ops::conv::{Conv2dBackpropInputOp, Conv2dBackpropKernelOp, Conv2dOp, FoldPatchesOp};
use autograd::ops::loss::SoftmaxCeGradOp;
use autograd::ops::pool::{MaxPoolGradOp, MaxPoolTakeOp};
use autograd::ops::shape::{PadAxisOp, ScatterAddOp};
use autograd::{OutputActivation, Var};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tensor::ops::conv::{Conv2dOptions, Padding, Window};
use tensor::{Tensor, numel};

// ------------------------------------------------------------------ strategies

/// A shape of 1 to 3 dimensions of sizes 1 to 4.
fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=4, 1..=3)
}

/// A tensor of the given shape with values drawn from `values`.
fn tensor_of(
    shape: Vec<usize>,
    values: impl Strategy<Value = f64> + Clone,
) -> impl Strategy<Value = Tensor<f64>> {
    let n = numel(&shape);
    prop::collection::vec(values, n).prop_map(move |v| Tensor::from_vec(v, &shape).unwrap())
}

/// Values in `[-hi, -lo] U [lo, hi]`: away from zero.
fn away_from_zero(lo: f64, hi: f64) -> impl Strategy<Value = f64> + Clone {
    (lo..hi, any::<bool>()).prop_map(|(m, neg)| if neg { -m } else { m })
}

/// One tensor of random shape.
fn one(
    values: impl Strategy<Value = f64> + Clone + 'static,
) -> impl Strategy<Value = Vec<Tensor<f64>>> {
    shape().prop_flat_map(move |s| tensor_of(s, values.clone()).prop_map(|t| vec![t]))
}

/// A shape and another that broadcasts with it (leading dims dropped, some dims set to 1),
/// in either order.
fn broadcast_shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (shape(), any::<u64>(), any::<bool>()).prop_map(|(s, bits, swap)| {
        let drop = (bits % (s.len() as u64 + 1)) as usize;
        let other: Vec<usize> = s[drop..]
            .iter()
            .enumerate()
            .map(|(i, &d)| if bits >> (8 + i) & 1 == 1 { 1 } else { d })
            .collect();
        if swap { (other, s) } else { (s, other) }
    })
}

/// Two tensors whose shapes broadcast together.
fn pair(
    a: impl Strategy<Value = f64> + Clone + 'static,
    b: impl Strategy<Value = f64> + Clone + 'static,
) -> impl Strategy<Value = Vec<Tensor<f64>>> {
    broadcast_shapes().prop_flat_map(move |(sa, sb)| {
        (tensor_of(sa, a.clone()), tensor_of(sb, b.clone())).prop_map(|(x, y)| vec![x, y])
    })
}

/// Two broadcasting tensors whose elements differ by more than 1e-3 wherever they meet
/// (no ties for `maximum`/`minimum`).
fn pair_without_ties() -> impl Strategy<Value = Vec<Tensor<f64>>> {
    pair(-3.0..3.0, -3.0..3.0).prop_filter("ties", |v| {
        v[0].try_sub(&v[1]).unwrap().abs().min_all().unwrap() > 1e-3
    })
}

/// A tensor with all elements distinct (gaps of at least 0.05), for `max`/`min`.
fn distinct() -> impl Strategy<Value = Vec<Tensor<f64>>> {
    shape().prop_flat_map(|s| distinct_of(s).prop_map(|t| vec![t]))
}

/// An axis as a possibly negative index, with `keepdims`, for a tensor of `ndim` dims.
fn axis_of(ndim: usize) -> impl Strategy<Value = isize> {
    let n = ndim as isize;
    -n..n
}

/// Matrix-product operands in every supported arrangement: 2-D by 2-D, 3-D by 3-D, batch
/// of 1 by 3-D, 3-D by 2-D, 2-D by 3-D.
fn matmul_operands() -> impl Strategy<Value = Vec<Tensor<f64>>> {
    (1usize..=3, 1usize..=4, 1usize..=4, 1usize..=4, 0usize..5).prop_flat_map(
        |(b, m, k, n, kind)| {
            let (sa, sb) = match kind {
                0 => (vec![m, k], vec![k, n]),
                1 => (vec![b, m, k], vec![b, k, n]),
                2 => (vec![1, m, k], vec![b, k, n]),
                3 => (vec![b, m, k], vec![k, n]),
                _ => (vec![m, k], vec![b, k, n]),
            };
            (tensor_of(sa, -2.0..2.0), tensor_of(sb, -2.0..2.0)).prop_map(|(x, y)| vec![x, y])
        },
    )
}

/// Several tensors that agree on every axis but one, with that axis.
fn concat_operands() -> impl Strategy<Value = (Vec<Tensor<f64>>, isize)> {
    (shape(), 2usize..=3).prop_flat_map(|(s, count)| {
        let ndim = s.len();
        (0..ndim, prop::collection::vec(1usize..=3, count)).prop_flat_map(move |(ax, lens)| {
            let tensors: Vec<_> = lens
                .iter()
                .map(|&l| {
                    let mut si = s.clone();
                    si[ax] = l;
                    tensor_of(si, -2.0..2.0)
                })
                .collect();
            (tensors, Just(ax as isize))
        })
    })
}

/// `x [n, k]`, `w [k, m]`, maybe `b [m]`, and an activation index for `dense`. Relu's
/// pre-activations stay away from 0.
fn dense_operands() -> impl Strategy<Value = (Vec<Tensor<f64>>, usize)> {
    (1usize..=4, 1usize..=4, 1usize..=4, any::<bool>(), 0usize..4).prop_flat_map(
        |(n, k, m, bias, act)| {
            let mut parts = vec![
                tensor_of(vec![n, k], -2.0..2.0).boxed(),
                tensor_of(vec![k, m], -1.0..1.0).boxed(),
            ];
            if bias {
                parts.push(tensor_of(vec![m], -1.0..1.0).boxed());
            }
            (parts, Just(act)).prop_filter("relu kink", |(v, act)| {
                *act != 1 || {
                    let z = v[0].matmul(&v[1]);
                    let z = match v.get(2) {
                        Some(b) => &z + b,
                        None => z,
                    };
                    z.abs().min_all().unwrap() > 1e-3
                }
            })
        },
    )
}

/// A window (sizes, strides and dilations 1 to 2 or 3, either padding) and a channels-last
/// image shape it fits.
fn window_and_image() -> impl Strategy<Value = (Window, Vec<usize>)> {
    (
        (
            [1usize..=3, 1usize..=3],
            [1usize..=2, 1usize..=2],
            [1usize..=2, 1usize..=2],
        ),
        any::<bool>(),
        (1usize..=2, 1usize..=5, 1usize..=5, 1usize..=2),
    )
        .prop_map(|((size, strides, dilation), same, (b, h, w, c))| {
            let padding = if same { Padding::Same } else { Padding::Valid };
            let window = Window {
                size,
                strides,
                dilation,
                padding,
            };
            (window, vec![b, h, w, c])
        })
        .prop_filter("the window fits", |(window, s)| {
            window.place([s[1], s[2]], "t").is_ok()
        })
}

/// A tensor of `shape` whose elements are all distinct (gaps of at least 0.05): no ties for
/// max pooling.
fn distinct_of(shape: Vec<usize>) -> impl Strategy<Value = Tensor<f64>> {
    let n = numel(&shape);
    let base: Vec<f64> = (0..n).map(|i| i as f64 * 0.1 - 1.0).collect();
    (
        Just(base).prop_shuffle(),
        prop::collection::vec(-0.025..0.025, n),
    )
        .prop_map(move |(v, noise)| {
            let v: Vec<f64> = v.iter().zip(&noise).map(|(a, b)| a + b).collect();
            Tensor::from_vec(v, &shape).unwrap()
        })
}

/// A convolution's options from a window.
fn conv_options(w: &Window) -> Conv2dOptions {
    Conv2dOptions {
        strides: w.strides,
        padding: w.padding,
        dilation: w.dilation,
    }
}

/// A convolution's operands: an image batch, a kernel that fits it, and a gradient of the
/// output's shape; with the options.
fn conv_operands() -> impl Strategy<Value = (Vec<Tensor<f64>>, Conv2dOptions)> {
    (window_and_image(), 1usize..=2).prop_flat_map(|((window, s), c_out)| {
        let p = window.place([s[1], s[2]], "t").unwrap();
        let kernel = vec![window.size[0], window.size[1], s[3], c_out];
        let out = vec![s[0], p.out[0], p.out[1], c_out];
        (
            (
                tensor_of(s, -2.0..2.0),
                tensor_of(kernel, -1.0..1.0),
                tensor_of(out, -1.0..1.0),
            )
                .prop_map(|(x, k, g)| vec![x, k, g]),
            Just(conv_options(&window)),
        )
    })
}

/// Operands of a convolution whose output is max-pooled: one-channel images of distinct
/// values, a 1x1 kernel of positive weights and a bias, so that every output channel keeps
/// the image's order and the pooling has no ties; with a pooling window that fits the
/// output and a monotone activation (a relu would tie at 0).
fn pooled_conv_operands()
-> impl Strategy<Value = (Vec<Tensor<f64>>, (Window, Conv2dOptions, OutputActivation))> {
    (
        window_and_image(),
        max_pool_operands(false),
        1usize..=2,
        0usize..3,
    )
        .prop_flat_map(|((w, _), (_, pool), c_out, act)| {
            let o = Conv2dOptions {
                strides: w.strides,
                padding: w.padding,
                dilation: [1, 1],
            };
            // An image the convolution (a 1x1 kernel: the image itself, strided) and the
            // pooling both fit.
            let s = vec![
                2,
                3 + pool.size[0] * w.strides[0],
                3 + pool.size[1] * w.strides[1],
                1,
            ];
            let act = [
                OutputActivation::Linear,
                OutputActivation::Sigmoid,
                OutputActivation::Tanh,
            ][act];
            (
                (
                    distinct_of(s),
                    tensor_of(vec![1, 1, 1, c_out], 0.5..1.5),
                    tensor_of(vec![c_out], -1.0..1.0),
                )
                    .prop_map(|(x, k, b)| vec![x, k, b]),
                Just((pool, o, act)),
            )
        })
}

/// Distinct values for max pooling (no ties) and a second tensor: of the image's shape
/// (`image_shaped`) or of the pooling's output.
fn max_pool_operands(image_shaped: bool) -> impl Strategy<Value = (Vec<Tensor<f64>>, Window)> {
    window_and_image()
        .prop_filter_map("a pooling window (no dilation) that fits", |(w, s)| {
            let window = Window {
                dilation: [1, 1],
                ..w
            };
            window
                .place([s[1], s[2]], "t")
                .is_ok()
                .then_some((window, s))
        })
        .prop_flat_map(move |(window, s)| {
            let p = window.place([s[1], s[2]], "t").unwrap();
            let other = if image_shaped {
                s.clone()
            } else {
                vec![s[0], p.out[0], p.out[1], s[3]]
            };
            (
                (distinct_of(s), tensor_of(other, -2.0..2.0)).prop_map(|(x, g)| vec![x, g]),
                Just(window),
            )
        })
}

/// Logits and targets of one shape (rows of classes when `rows`), targets in [0, 1].
fn logits_and_targets(rows: bool) -> impl Strategy<Value = Vec<Tensor<f64>>> {
    let shape = if rows {
        (1usize..=4, 2usize..=4)
            .prop_map(|(r, c)| vec![r, c])
            .boxed()
    } else {
        shape().boxed()
    };
    shape.prop_flat_map(|s| {
        (tensor_of(s.clone(), -5.0..5.0), tensor_of(s, 0.0..1.0)).prop_map(|(z, t)| vec![z, t])
    })
}

/// Whether no clamped log-probability lies within 1e-4 of a clip bound (a kink).
fn away_from_clip_bounds(z: &Tensor<f64>, clip: Option<f64>, softmax: bool) -> bool {
    let Some(eps) = clip else { return true };
    let bounds = [eps.ln(), (1.0 - eps).ln()];
    let logs: Vec<f64> = if softmax {
        z.log_softmax(-1).to_vec()
    } else {
        z.to_vec()
            .iter()
            .flat_map(|&v| [-tensor::softplus_scalar(-v), -tensor::softplus_scalar(v)])
            .collect()
    };
    logs.iter()
        .all(|l| bounds.iter().all(|b| (l - b).abs() > 1e-4))
}

// ------------------------------------------------------------------ the check

/// Runs the gradient check of derivative `order` on `f` and requires that `op` was among
/// the recorded ops, so an entry cannot claim an op it does not exercise.
fn run<F>(order: usize, op: &str, inputs: &[Tensor<f64>], f: F) -> Result<(), TestCaseError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    let check = GradCheck::default();
    let result = if order == 1 {
        check.check(inputs, f)
    } else {
        check.check_order(order, inputs, f)
    };
    match result {
        Ok(report) => {
            prop_assert!(
                report.ops.contains(&op),
                "the check for `{}` recorded only {:?}",
                op,
                report.ops
            );
            Ok(())
        }
        Err(failure) => Err(TestCaseError::fail(failure.to_string())),
    }
}

/// Declares, per op, a module named after it with its first- and second-order checks, and
/// the list of covered op names.
macro_rules! gradchecks {
    ($($op:ident: $strategy:expr => |$v:ident $(, $p:ident)*| $body:expr;)*) => {
        $(
            mod $op {
                use super::*;
                proptest! {
                    #![proptest_config(ProptestConfig::with_cases(96))]
                    #[test]
                    fn first_order((inputs, params) in $strategy) {
                        #[allow(unused_variables, unused_parens)]
                        let ($($p),*) = params;
                        run(1, stringify!($op), &inputs, |$v| $body)?;
                    }
                }
                proptest! {
                    #![proptest_config(ProptestConfig::with_cases(48))]
                    #[test]
                    fn second_order((inputs, params) in $strategy) {
                        #[allow(unused_variables, unused_parens)]
                        let ($($p),*) = params;
                        run(2, stringify!($op), &inputs, |$v| $body)?;
                    }
                }
            }
        )*
        const COVERED: &[&str] = &[$(stringify!($op)),*];
    };
}

/// Third-derivative checks for the smooth ops, one test each, named `third_order_<op>`.
macro_rules! third_order {
    ($($name:ident, $op:literal: $strategy:expr => |$v:ident $(, $p:ident)*| $body:expr;)*) => {
        $(
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(32))]
                #[test]
                fn $name((inputs, params) in $strategy) {
                    #[allow(unused_variables, unused_parens)]
                    let ($($p),*) = params;
                    run(3, $op, &inputs, |$v| $body)?;
                }
            }
        )*
    };
}

/// Inputs with no extra parameters.
fn plain(
    s: impl Strategy<Value = Vec<Tensor<f64>>>,
) -> impl Strategy<Value = (Vec<Tensor<f64>>, ())> {
    s.prop_map(|v| (v, ()))
}

/// One tensor and an axis valid for it.
fn with_axis(
    s: impl Strategy<Value = Vec<Tensor<f64>>>,
) -> impl Strategy<Value = (Vec<Tensor<f64>>, (isize, bool))> {
    s.prop_flat_map(|v| {
        let n = v[0].ndim();
        (Just(v), (axis_of(n), any::<bool>()))
    })
}

gradchecks! {
    // arith
    add: plain(pair(-3.0..3.0, -3.0..3.0)) => |v| v[0] + v[1];
    sub: plain(pair(-3.0..3.0, -3.0..3.0)) => |v| v[0] - v[1];
    mul: plain(pair(-3.0..3.0, -3.0..3.0)) => |v| v[0] * v[1];
    div: plain(pair(-3.0..3.0, away_from_zero(0.5, 3.0))) => |v| v[0] / v[1];
    neg: plain(one(-3.0..3.0)) => |v| -v[0];
    add_scalar: (one(-3.0..3.0), -2.0..2.0) => |v, c| v[0] + c;
    mul_scalar: (one(-3.0..3.0), -2.0..2.0) => |v, c| v[0] * c;
    div_scalar: (one(-3.0..3.0), away_from_zero(0.5, 3.0)) => |v, c| v[0] / c;
    scalar_sub: (one(-3.0..3.0), -2.0..2.0) => |v, c| c - v[0];
    scalar_div: (one(away_from_zero(0.5, 3.0)), -2.0..2.0) => |v, c| c / v[0];
    maximum: plain(pair_without_ties()) => |v| v[0].maximum(v[1]);
    minimum: plain(pair_without_ties()) => |v| v[0].minimum(v[1]);
    // unary
    exp: plain(one(-3.0..3.0)) => |v| v[0].exp();
    ln: plain(one(0.1..3.0)) => |v| v[0].ln();
    sqrt: plain(one(0.1..3.0)) => |v| v[0].sqrt();
    powf: (one(0.1..3.0), -2.0..3.0) => |v, p| v[0].powf(p);
    abs: plain(one(away_from_zero(1e-3, 3.0))) => |v| v[0].abs();
    clamp: plain(one((-3.0..3.0).prop_filter("bound", |x: &f64| (x.abs() - 1.0).abs() > 1e-3)))
        => |v| v[0].clamp(-1.0, 1.0);
    relu: plain(one(away_from_zero(1e-3, 3.0))) => |v| v[0].relu();
    sigmoid: plain(one(-6.0..6.0)) => |v| v[0].sigmoid();
    softplus: plain(one(-6.0..6.0)) => |v| v[0].softplus();
    tanh: plain(one(-3.0..3.0)) => |v| v[0].tanh();
    erf: plain(one(-3.0..3.0)) => |v| v[0].erf();
    // activations
    leaky_relu: plain(one(away_from_zero(1e-3, 3.0))) => |v| v[0].leaky_relu(0.2);
    elu: plain(one(away_from_zero(1e-3, 3.0))) => |v| v[0].elu(1.3);
    selu: plain(one(away_from_zero(1e-3, 3.0))) => |v| v[0].selu();
    gelu: plain(one(-4.0..4.0)) => |v| v[0].gelu();
    softsign: plain(one(away_from_zero(1e-3, 3.0))) => |v| v[0].softsign();
    swish: plain(one(-6.0..6.0)) => |v| v[0].swish();
    hard_sigmoid: plain(one((-5.0..5.0).prop_filter("kink", |x: &f64| (x.abs() - 3.0).abs() > 1e-3)))
        => |v| v[0].hard_sigmoid();
    step: plain(one(away_from_zero(1e-3, 3.0))) => |v| v[0].step();
    // fused layer and losses
    dense: dense_operands() => |v, spec| {
        let act = [OutputActivation::Linear, OutputActivation::Relu, OutputActivation::Sigmoid, OutputActivation::Tanh][spec];
        v[0].dense(v[1], v.get(2).copied(), act)
    };
    sigmoid_cross_entropy: logits_and_targets(false).prop_flat_map(|v| (Just(v), prop_oneof![Just(None), Just(Some(0.1))]))
        .prop_filter("clip bound", |(v, clip)| away_from_clip_bounds(&v[0], *clip, false))
        => |v, clip| v[0].sigmoid_cross_entropy(v[1], clip);
    softmax_cross_entropy: logits_and_targets(true).prop_flat_map(|v| (Just(v), prop_oneof![Just(None), Just(Some(0.05))]))
        .prop_filter("clip bound", |(v, clip)| away_from_clip_bounds(&v[0], *clip, true))
        => |v, clip| v[0].softmax_cross_entropy(v[1], clip);
    softmax_cross_entropy_grad: (logits_and_targets(true), -2.0..2.0f64).prop_flat_map(|(v, dy)| {
        let mut v = v;
        v.push(Tensor::scalar(dy));
        (Just(v), prop_oneof![Just(None), Just(Some(0.05))])
    })
        .prop_filter("clip bound", |(v, clip)| away_from_clip_bounds(&v[0], *clip, true))
        => |v, clip| v[0].tape().apply(SoftmaxCeGradOp(clip), [v[0], v[1], v[2]]).unwrap();
    // convolution
    patches: window_and_image().prop_flat_map(|(window, s)| {
        (tensor_of(s, -2.0..2.0).prop_map(|t| vec![t]), Just(window))
    }) => |v, window| v[0].patches(&window);
    fold_patches: window_and_image().prop_flat_map(|(window, s)| {
        let p = window.place([s[1], s[2]], "t").unwrap();
        let patch_shape = vec![s[0], p.out[0], p.out[1], window.size[0] * window.size[1] * s[3]];
        (tensor_of(patch_shape, -2.0..2.0).prop_map(|t| vec![t]), Just((window, s)))
    }) => |v, ws| {
        let op = FoldPatchesOp { window: ws.0, image_shape: ws.1.clone() };
        v[0].tape().apply(op, [v[0]]).unwrap()
    };
    max_pool2d: window_and_image().prop_flat_map(|(window, s)| {
        (distinct_of(s).prop_map(|t| vec![t]), Just(window))
    }) => |v, w| v[0].max_pool2d(w.size, Some(w.strides), w.padding);
    max_pool2d_grad: max_pool_operands(false) => |v, w| v[0].tape().apply(MaxPoolGradOp(w), [v[0], v[1]]).unwrap();
    max_pool2d_take: max_pool_operands(true) => |v, w| v[0].tape().apply(MaxPoolTakeOp(w), [v[0], v[1]]).unwrap();
    conv2d: (conv_operands(), any::<bool>(), 0usize..3).prop_map(|((mut v, o), bias, act)| {
        // The gradient slot becomes a bias [c_out], or goes.
        let g = v.pop().unwrap();
        if bias {
            v.push(g.reshape(&[g.len() / g.shape()[3], g.shape()[3]]).sum(0, false));
        }
        let act = [OutputActivation::Linear, OutputActivation::Sigmoid, OutputActivation::Tanh][act];
        (v, (o, act))
    }) => |v, oa| {
        let op = Conv2dOp { options: oa.0, activation: oa.1 };
        match v.len() {
            3 => v[0].tape().apply(op, [v[0], v[1], v[2]]).unwrap(),
            _ => v[0].tape().apply(op, [v[0], v[1]]).unwrap(),
        }
    };
    conv2d_max_pool2d: pooled_conv_operands() => |v, poa| {
        let (pool, options, act) = poa;
        v[0].conv2d_max_pool2d(v[1], Some(v[2]), act, &options, &pool)
    };
    conv2d_backprop_input: conv_operands().prop_map(|(v, o)| {
        let image_shape = v[0].shape().to_vec();
        (vec![v[2].clone(), v[1].clone()], (o, image_shape))
    }) => |v, os| {
        let op = Conv2dBackpropInputOp { options: os.0, image_shape: os.1.clone() };
        v[0].tape().apply(op, [v[0], v[1]]).unwrap()
    };
    conv2d_backprop_kernel: conv_operands().prop_map(|(v, o)| {
        let kernel_shape = v[1].shape().to_vec();
        (vec![v[0].clone(), v[2].clone()], (o, kernel_shape))
    }) => |v, os| {
        let op = Conv2dBackpropKernelOp { options: os.0, kernel_shape: os.1.clone() };
        v[0].tape().apply(op, [v[0], v[1]]).unwrap()
    };
    // matmul
    matmul: plain(matmul_operands()) => |v| v[0].matmul(v[1]);
    // shape
    permute: one(-3.0..3.0).prop_flat_map(|v| {
        let n = v[0].ndim();
        (Just(v), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
    }) => |v, axes| v[0].permute(&axes);
    reshape: (one(-3.0..3.0), any::<bool>()) => |v, flat| {
        let s = v[0].shape();
        let target: Vec<usize> = if flat { vec![numel(&s)] } else { s.iter().rev().copied().collect() };
        // A permuted (strided) input exercises the copying path too.
        if s.len() >= 2 { v[0].transpose().reshape(&target) } else { v[0].reshape(&target) }
    };
    broadcast_to: broadcast_shapes().prop_flat_map(|(a, b)| {
        let target = tensor::broadcast_shapes("test", &a, &b).unwrap();
        (tensor_of(a, -3.0..3.0).prop_map(|t| vec![t]), Just(target))
    }) => |v, target| v[0].broadcast_to(&target);
    concat: concat_operands() => |v, axis| Var::concat(v, axis);
    stack: (1usize..=3).prop_flat_map(|count| shape().prop_flat_map(move |s| {
        let ndim = s.len() as isize;
        (prop::collection::vec(tensor_of(s, -2.0..2.0), count), -(ndim + 1)..=ndim)
    })) => |v, axis| Var::stack(v, axis);
    slice_axis: one(-3.0..3.0).prop_flat_map(|v| {
        let n = v[0].ndim();
        (Just(v), 0..n).prop_flat_map(|(v, ax)| {
            let len = v[0].shape()[ax];
            (Just(v), (Just(ax), 0..len).prop_flat_map(move |(ax, start)| (Just(ax), Just(start), start + 1..=len)))
        })
    }) => |v, range| v[0].slice_axis(range.0 as isize, range.1..range.2);
    gather: one(-3.0..3.0).prop_flat_map(|v| {
        let n = v[0].ndim();
        (Just(v), 0..n).prop_flat_map(|(v, ax)| {
            let len = v[0].shape()[ax];
            (Just(v), (Just(ax as isize), prop::collection::vec(0..len, 1..=5)))
        })
    }) => |v, sel| v[0].gather(sel.0, &sel.1);
    sum_to: (shape(), any::<u64>()).prop_flat_map(|(s, bits)| {
        // A target that broadcasts to the input's shape: leading axes dropped, some set to 1.
        let drop = (bits % (s.len() as u64 + 1)) as usize;
        let target: Vec<usize> = s[drop..]
            .iter()
            .enumerate()
            .map(|(i, &d)| if bits >> (8 + i) & 1 == 1 { 1 } else { d })
            .collect();
        (tensor_of(s, -3.0..3.0).prop_map(|t| vec![t]), Just(target))
    }) => |v, target| v[0].sum_to(&target);
    pad_axis: one(-3.0..3.0).prop_flat_map(|v| {
        let n = v[0].ndim();
        (Just(v), (0..n, 0usize..3, 0usize..3))
    }) => |v, p| {
        let (axis, before, after) = p;
        let own = v[0].shape()[axis];
        let pad = PadAxisOp { axis, range: before..before + own, len: before + own + after };
        v[0].tape().apply(pad, [v[0]]).unwrap()
    };
    scatter_add: (shape(), 1usize..=4).prop_flat_map(|(s, target_len)| {
        let n = s.len();
        (0..n).prop_flat_map(move |axis| {
            let indices = prop::collection::vec(0..target_len, s[axis]);
            let mut target = s.clone();
            target[axis] = target_len;
            (tensor_of(s.clone(), -3.0..3.0).prop_map(|t| vec![t]), (Just(axis), indices, Just(target)))
        })
    }) => |v, p| {
        let (axis, indices, shape) = &p;
        let op = ScatterAddOp { axis: *axis as isize, indices: indices.clone(), shape: shape.clone() };
        v[0].tape().apply(op, [v[0]]).unwrap()
    };
    // reductions
    sum: with_axis(one(-3.0..3.0)) => |v, a| v[0].sum(a.0, a.1);
    mean: with_axis(one(-3.0..3.0)) => |v, a| v[0].mean(a.0, a.1);
    max: with_axis(distinct()) => |v, a| v[0].max(a.0, a.1);
    min: with_axis(distinct()) => |v, a| v[0].min(a.0, a.1);
    sum_all: plain(one(-3.0..3.0)) => |v| v[0].sum_all();
    mean_all: plain(one(-3.0..3.0)) => |v| v[0].mean_all();
    logsumexp: with_axis(one(-5.0..5.0)) => |v, a| v[0].logsumexp(a.0, a.1);
    softmax: with_axis(one(-5.0..5.0)) => |v, a| v[0].softmax(a.0);
    log_softmax: with_axis(one(-5.0..5.0)) => |v, a| v[0].log_softmax(a.0);
    // select
    where_cond: pair(-3.0..3.0, -3.0..3.0).prop_flat_map(|v| {
        let s = tensor::broadcast_shapes("test", v[0].shape(), v[1].shape()).unwrap();
        (Just(v), tensor_of(s, prop_oneof![Just(0.0), Just(1.0)]))
    }) => |v, mask| Var::where_cond(&mask, v[0], v[1]);
}

third_order! {
    third_order_tanh, "tanh": plain(one(-3.0..3.0)) => |v| v[0].tanh();
    third_order_exp, "exp": plain(one(-2.0..2.0)) => |v| v[0].exp();
    third_order_sigmoid, "sigmoid": plain(one(-6.0..6.0)) => |v| v[0].sigmoid();
    third_order_softplus, "softplus": plain(one(-6.0..6.0)) => |v| v[0].softplus();
    third_order_ln, "ln": plain(one(0.3..3.0)) => |v| v[0].ln();
    third_order_sqrt, "sqrt": plain(one(0.3..3.0)) => |v| v[0].sqrt();
    third_order_powf, "powf": (one(0.3..3.0), -2.0..3.0) => |v, p| v[0].powf(p);
    third_order_erf, "erf": plain(one(-3.0..3.0)) => |v| v[0].erf();
    third_order_gelu, "gelu": plain(one(-4.0..4.0)) => |v| v[0].gelu();
    third_order_swish, "swish": plain(one(-6.0..6.0)) => |v| v[0].swish();
    third_order_div, "div": plain(pair(-3.0..3.0, away_from_zero(0.5, 3.0))) => |v| v[0] / v[1];
    third_order_log_softmax, "log_softmax": with_axis(one(-5.0..5.0)) => |v, a| v[0].log_softmax(a.0);
    third_order_logsumexp, "logsumexp": with_axis(one(-5.0..5.0)) => |v, a| v[0].logsumexp(a.0, a.1);
    third_order_softmax_cross_entropy, "softmax_cross_entropy": plain(logits_and_targets(true))
        => |v| v[0].softmax_cross_entropy(v[1], None);
    third_order_sigmoid_cross_entropy, "sigmoid_cross_entropy": plain(logits_and_targets(false))
        => |v| v[0].sigmoid_cross_entropy(v[1], None);
}

// ------------------------------------------------------------------ composites

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A 2-layer MLP (relu hidden layer) with softmax cross-entropy against one-hot labels,
    /// differentiated with respect to both weights and both biases at once.
    #[test]
    fn mlp_with_softmax_cross_entropy(
        (batch, n_in, hidden, classes) in (1usize..=5, 1usize..=4, 1usize..=6, 2usize..=4),
        seed in any::<u64>(),
    ) {
        let mut rng = tensor::random::seeded(seed);
        let x = Tensor::<f64>::rand_normal(&[batch, n_in], 0.0, 1.0, &mut rng);
        let labels: Vec<usize> = (0..batch).map(|i| (seed as usize + i) % classes).collect();
        let y = Tensor::<f64>::one_hot(&labels, classes).unwrap();
        let params = vec![
            Tensor::rand_normal(&[n_in, hidden], 0.0, 0.7, &mut rng),
            Tensor::rand_normal(&[hidden], 0.0, 0.1, &mut rng),
            Tensor::rand_normal(&[hidden, classes], 0.0, 0.7, &mut rng),
            Tensor::rand_normal(&[classes], 0.0, 0.1, &mut rng),
        ];
        let report = GradCheck::default().check(&params, |p| {
            let tape = p[0].tape();
            let h = (tape.constant(&x).matmul(p[0]) + p[1]).relu();
            let logits = h.matmul(p[2]) + p[3];
            -(tape.constant(&y) * logits.log_softmax(-1)).sum(-1, false).mean_all()
        });
        prop_assert!(report.is_ok(), "{}", report.unwrap_err());
    }

    /// A convolution with bias and tanh, differentiated with respect to the image, the kernel
    /// and the bias: first and second order (the second through the three convolution ops'
    /// rules).
    #[test]
    fn conv2d_first_and_second_order(
        (window, image) in window_and_image(),
        c_out in 1usize..=2,
        seed in any::<u64>(),
    ) {
        let mut rng = tensor::random::seeded(seed);
        let kernel = [window.size[0], window.size[1], image[3], c_out];
        let inputs = vec![
            Tensor::<f64>::rand_normal(&image, 0.0, 1.0, &mut rng),
            Tensor::rand_normal(&kernel, 0.0, 0.5, &mut rng),
            Tensor::rand_normal(&[c_out], 0.0, 0.5, &mut rng),
        ];
        let options = Conv2dOptions { strides: window.strides, padding: window.padding, dilation: window.dilation };
        run(1, "conv2d", &inputs, |v| (v[0].conv2d(v[1], &options) + v[2]).tanh())?;
        run(2, "conv2d", &inputs, |v| (v[0].conv2d(v[1], &options) + v[2]).tanh())?;
        run(2, "conv2d", &inputs, |v| {
            v[0].conv2d_activated(v[1], Some(v[2]), OutputActivation::Tanh, &options)
        })?;
    }

    /// Average and global average pooling (composed from patches and reductions), first and
    /// second order.
    #[test]
    fn average_pooling_first_and_second_order((window, image) in window_and_image(), seed in any::<u64>()) {
        let x = Tensor::<f64>::rand_normal(&image, 0.0, 1.0, &mut tensor::random::seeded(seed));
        let inputs = vec![x];
        let (size, strides, padding) = (window.size, Some(window.strides), window.padding);
        for order in [1, 2] {
            run(order, "patches", &inputs, |v| v[0].avg_pool2d(size, strides, padding).tanh())?;
            run(order, "mean", &inputs, |v| v[0].try_global_avg_pool2d().unwrap().tanh())?;
        }
    }

    /// Layer and batch normalization (composed), with respect to the input, gamma and beta,
    /// first and second order.
    #[test]
    fn normalization_first_and_second_order(
        (rows, extra, c) in (2usize..=4, 1usize..=2, 1usize..=3),
        seed in any::<u64>(),
    ) {
        let mut rng = tensor::random::seeded(seed);
        let inputs = vec![
            Tensor::<f64>::rand_normal(&[rows, extra, c], 0.0, 1.0, &mut rng),
            Tensor::rand_normal(&[c], 1.0, 0.3, &mut rng),
            Tensor::rand_normal(&[c], 0.0, 0.3, &mut rng),
        ];
        for order in [1, 2] {
            run(order, "sqrt", &inputs, |v| {
                v[0].try_layer_norm(Some(v[1]), Some(v[2]), 1e-3).unwrap().tanh()
            })?;
            run(order, "sqrt", &inputs, |v| {
                v[0].try_batch_norm(Some(v[1]), Some(v[2]), 1e-3).unwrap().0.tanh()
            })?;
        }
    }

    /// One variable used in many places, through several paths, so that gradients accumulate.
    #[test]
    fn one_variable_used_several_times(inputs in one(-2.0..2.0)) {
        let report = GradCheck::default().check(&inputs, |v| {
            let x = v[0];
            (x * x).tanh() + x.exp() * x - x.sum(0, true) * x.sigmoid() + x / (x.square() + 1.0)
        });
        prop_assert!(report.is_ok(), "{}", report.unwrap_err());
    }
}

// ------------------------------------------------------------------ the listing

/// The name of every op defined under `src/ops/`, read from each `fn name(&self)`.
fn ops_defined_in_source() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ops");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("src/ops exists") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line.trim() == "fn name(&self) -> &'static str {" {
                let body = lines.next().expect("a body line after fn name").trim();
                // The one generic op of element-wise functions takes its function's name.
                if body == "self.0.name()" {
                    continue;
                }
                let name = body.trim_matches('"');
                assert!(
                    body.starts_with('"') && body.ends_with('"') && !name.is_empty(),
                    "{}: `fn name` must return a string literal on its own line, found `{body}`",
                    path.display()
                );
                names.insert(name.to_string());
            }
        }
    }
    names
}

#[test]
fn every_op_has_a_gradient_check() {
    let defined = ops_defined_in_source();
    assert!(
        defined.len() >= 40,
        "the source scan found only {defined:?}"
    );
    let covered: BTreeSet<String> = COVERED.iter().map(|s| s.to_string()).collect();
    let missing: Vec<_> = defined.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "ops without a gradient check in tests/gradcheck.rs: {missing:?}"
    );
    let unknown: Vec<_> = covered.difference(&defined).collect();
    assert!(
        unknown.is_empty(),
        "gradient checks for ops that do not exist: {unknown:?}"
    );
}
