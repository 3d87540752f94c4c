//! Core figures: the tape's overhead per recorded op on tiny tensors, matmul GFLOP/s for the
//! shapes of an MNIST MLP at batch 128, one optimizer step over that MLP's 407,050
//! parameters, and the exponential's users (sigmoid, tanh, softmax, and the classifier's
//! softmax cross-entropy and its gradient). Prints one JSON object per line.
//!
//! `BRICK_SIMD=baseline` (or `avx2`) caps the instruction set of brick's own loops, to show
//! what run-time dispatch gains.
//!
//! Run with `cargo bench --bench core`. Timings are medians over repeated runs; the machine
//! is shared, so compare figures taken in one run.

use std::hint::black_box;
use std::time::Instant;

use brick::prelude::*;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Seconds per call of `f`: the median of at least 7 calls spread over `min_total_s`.
fn time_per_call(min_total_s: f64, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < min_total_s || samples.len() < 7 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    median(samples)
}

fn tape_overhead() {
    const OPS: usize = 1000;
    for shape in [vec![1usize], vec![4, 4]] {
        let x = Tensor::<f32>::ones(&shape);
        // The same chain of element-wise ops, on plain tensors and recorded on a tape.
        let raw = time_per_call(1.0, || {
            let mut v = x.clone();
            for _ in 0..OPS {
                v = &v * 1.0001 + 0.0001;
            }
            black_box(v);
        });
        let mut tape = Tape::<f32>::new();
        let recorded = time_per_call(1.0, || {
            tape.reset();
            let mut v = tape.param(&x);
            for _ in 0..OPS {
                v = v * 1.0001 + 0.0001;
            }
            black_box(v.value());
        });
        let backward = time_per_call(1.0, || {
            tape.reset();
            let mut v = tape.param(&x);
            for _ in 0..OPS {
                v = v * 1.0001 + 0.0001;
            }
            black_box(v.sum_all().backward().unwrap());
        });
        let per_op = |s: f64| s / (2 * OPS) as f64 * 1e9;
        println!(
            "{{\"bench\":\"tape_overhead\",\"shape\":{shape:?},\"ops\":{},\"raw_ns_per_op\":{:.1},\"recorded_ns_per_op\":{:.1},\"overhead_ns_per_op\":{:.1},\"forward_and_backward_ns_per_op\":{:.1}}}",
            2 * OPS,
            per_op(raw),
            per_op(recorded),
            per_op(recorded - raw),
            per_op(backward),
        );
    }
}

fn matmul_gflops() {
    let mut rng = seeded(0);
    // (m, k, n, layout): "tn" multiplies X^T (a transposed view of a row-major [k, m]) by B,
    // as the weight gradient X^T . dY of the first layer does.
    let cases = [
        (128, 784, 512, "nn"),
        (784, 128, 512, "tn"),
        (128, 512, 10, "nn"),
    ];
    for (m, k, n, layout) in cases {
        let a = if layout == "tn" {
            Tensor::<f32>::rand_uniform(&[k, m], 0.0, 1.0, &mut rng).transpose()
        } else {
            Tensor::<f32>::rand_uniform(&[m, k], 0.0, 1.0, &mut rng)
        };
        let b = Tensor::<f32>::rand_uniform(&[k, n], 0.0, 1.0, &mut rng);
        let s = time_per_call(1.0, || {
            black_box(a.matmul(&b));
        });
        let flop = 2.0 * (m * k * n) as f64;
        println!(
            "{{\"bench\":\"matmul\",\"m\":{m},\"k\":{k},\"n\":{n},\"layout\":\"{layout}\",\"median_us\":{:.1},\"gflops\":{:.1}}}",
            s * 1e6,
            flop / s / 1e9
        );
    }
}

/// One update of the MNIST MLP's parameters (784x512, 512, 512x10, 10) by each optimizer.
fn optimizer_step() {
    let mut rng = seeded(1);
    let shapes: [&[usize]; 4] = [&[784, 512], &[512], &[512, 10], &[10]];
    let grads: Vec<Tensor<f32>> = shapes
        .iter()
        .map(|s| Tensor::rand_uniform(s, -1e-3, 1e-3, &mut rng))
        .collect();
    let grad_refs: Vec<&Tensor<f32>> = grads.iter().collect();
    let optimizers: Vec<(&str, Box<dyn Optimizer<f32>>)> = vec![
        ("sgd", Box::new(SGD::new(0.01))),
        ("sgd_momentum", Box::new(SGD::new(0.01).momentum(0.9))),
        ("rmsprop", Box::new(RMSprop::new(0.001))),
        ("adam", Box::new(Adam::new(0.001))),
    ];
    for (label, mut opt) in optimizers {
        let mut params: Vec<Tensor<f32>> = shapes
            .iter()
            .map(|s| Tensor::rand_uniform(s, -0.05, 0.05, &mut rng))
            .collect();
        let s = tensor::parallel::install(|| {
            time_per_call(1.0, || {
                let mut refs: Vec<&mut Tensor<f32>> = params.iter_mut().collect();
                opt.step(&mut refs, &grad_refs).unwrap();
            })
        });
        println!(
            "{{\"bench\":\"optimizer_step\",\"optimizer\":\"{}\",\"params\":407050,\"simd\":\"{:?}\",\"threads\":{},\"median_us\":{:.1}}}",
            label,
            tensor::simd::level(),
            tensor::parallel::num_threads(),
            s * 1e6
        );
    }
}

/// The functions built on `fast_exp`: a hidden layer's activations
/// (`[128, 512]`) and a 10-class output's softmax cross-entropy, forward and backward.
fn exp_functions() {
    let x = Tensor::<f32>::from_vec(
        (0..128 * 512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 10.0)
            .collect(),
        &[128, 512],
    )
    .unwrap();
    let emit = |name: &str, shape: &[usize], s: f64| {
        let elements: usize = shape.iter().product();
        println!(
            "{{\"bench\":\"exp_functions\",\"function\":\"{name}\",\"shape\":{shape:?},\"simd\":\"{:?}\",\"median_us\":{:.2},\"ns_per_element\":{:.3}}}",
            tensor::simd::level(),
            s * 1e6,
            s * 1e9 / elements as f64
        );
    };
    emit(
        "sigmoid",
        x.shape(),
        time_per_call(0.5, || drop(black_box(x.sigmoid()))),
    );
    emit(
        "tanh",
        x.shape(),
        time_per_call(0.5, || drop(black_box(x.tanh()))),
    );
    emit(
        "softmax",
        x.shape(),
        time_per_call(0.5, || drop(black_box(x.softmax(-1)))),
    );
    let z = x.slice_axis(1, 0..10).to_contiguous();
    let mut t = vec![0.0f32; 1280];
    for r in 0..128 {
        t[r * 10 + r % 10] = 1.0;
    }
    let t = Tensor::from_vec(t, &[128, 10]).unwrap();
    let mut tape = Tape::<f32>::new();
    let s = time_per_call(0.5, || {
        tape.reset();
        let (zv, tv) = (tape.param(&z), tape.constant(&t));
        black_box(zv.softmax_cross_entropy(tv, None).backward().unwrap());
    });
    emit("softmax_cross_entropy_fwd_bwd", z.shape(), s);
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    tape_overhead();
    matmul_gflops();
    optimizer_step();
    exp_functions();
}
