//! The performance benchmark: the same work the peer scripts (Keras, PyTorch, JAX) measure,
//! printed as one JSON object per line.
//!
//! - `mnist_mlp`: 784 -> 512 relu -> 10 softmax, RMSprop (Keras defaults), categorical
//!   cross-entropy, batch 128, on the bundled 10,000 real digits tiled to 60,000 rows; the
//!   time of each epoch of one `fit` call (no shuffling, as the peers'
//!   `fit(shuffle=False)`; the first epoch includes `fit`'s data checks), the loss per
//!   epoch, and the peak resident memory of the process.
//! - `xor_tiny`: 2 -> 8 tanh -> 1 sigmoid, binary cross-entropy, SGD lr 0.5, the 4 XOR points
//!   as one batch; microseconds per training step.
//! - `iris_mlp`: 4 -> 16 relu -> 3 softmax, Adam lr 0.01, batch 16, 200 epochs over the 150
//!   standardized samples in a fixed order; total seconds.
//! - `matmul`: GFLOP/s of the MNIST MLP's three products.
//! - `mnist_hvp`: one gradient and one Hessian-vector product (reverse over reverse:
//!   `autograd::hvp`) of the MNIST MLP's loss at batch 128, median milliseconds of each and
//!   their ratio, as `../shared/bench/peers/bench_hvp.py` measures PyTorch and JAX.
//!
//! - `mnist_convnet`: the keras.io MNIST convnet (Conv2D 32 relu, max-pool, Conv2D 64 relu,
//!   max-pool, Flatten, Dropout 0.5, Dense 10 softmax), Adam, batch 128, on the same 60,000
//!   tiled digits as `[n, 28, 28, 1]` images; the time of each epoch as `mnist_mlp` gives
//!   it (`--epochs`, 3 unless given), and the work's floor: its FLOPs (14.3 M per image)
//!   divided by the GEMM rate this process measures at the MLP's first product (what
//!   `matmul` reports first).
//!
//! - `conv_kernels`: each kernel of the convnet's training step at batch 128 on its own
//!   (both convolutions forward and their gradients, both max poolings and their gradients):
//!   median milliseconds, and for the products their GFLOP/s as a fraction of the GEMM rate
//!   measured in the same run.
//!
//! Run `cargo run --release --example bench` for everything (each work in its own process,
//! so peak memory is per work), or `-- --bench mnist_mlp` for one. Sizes: `--n`, `--epochs`,
//! `--steps`, `--iris-epochs`.

use std::hint::black_box;
use std::time::Instant;

use brick::prelude::*;

// The convnet itself, as the example builds it (with its accuracy metric, as the peers'
// `fit` computes one too).
#[path = "mnist_convnet.rs"]
#[allow(dead_code)]
mod mnist_convnet;

struct Args {
    bench: String,
    n: usize,
    epochs: usize,
    /// Whether `--epochs` was given (each work has its own default).
    epochs_given: bool,
    steps: usize,
    iris_epochs: usize,
}

fn parse_args() -> Result<Args, Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().collect();
    let get = |name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    Ok(Args {
        bench: get("--bench").unwrap_or_else(|| "all".into()),
        n: get("--n").map(|v| v.parse()).transpose()?.unwrap_or(60_000),
        epochs: get("--epochs").map(|v| v.parse()).transpose()?.unwrap_or(4),
        epochs_given: get("--epochs").is_some(),
        steps: get("--steps")
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(2000),
        iris_epochs: get("--iris-epochs")
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(200),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The process's peak resident set size in MiB (Linux: VmHWM in /proc/self/status).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

/// The threads brick computes on (rayon's pool: one per core, or `RAYON_NUM_THREADS`).
fn threads() -> usize {
    brick::tensor::parallel::num_threads()
}

/// Where a figure was measured, for every JSON line: the processor's model (as the peer
/// scripts' `env` line gives it), the SIMD level brick's kernels use, and the threads.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().replace(['"', '\\'], ""))
        })
        .unwrap_or_else(|| "unknown".into());
    format!(
        "\"cpu\": \"{cpu}\", \"simd\": \"{:?}\", \"threads\": {}",
        brick::tensor::simd::level(),
        threads()
    )
}

fn json_list(v: &[f64], digits: usize) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:.digits$}")).collect();
    format!("[{}]", items.join(", "))
}

/// Each epoch's seconds, each epoch's loss, and the median seconds after the first epoch.
type Timed = (Vec<f64>, Vec<f64>, f64);

/// Trains `epochs` epochs of batch 128 without shuffling in one `fit` call, as a user's
/// `fit(epochs=n)` runs them and as the peer scripts time theirs: each epoch's seconds and
/// loss, and the median of the epochs after the first. The first epoch is timed from the
/// call, so it includes `fit`'s checks of the data and its setup (as a peer's first epoch
/// includes compiling); each later one from the end of the epoch before.
fn timed_epochs(
    model: &mut Sequential,
    x: &Tensor,
    y: &Tensor,
    epochs: usize,
) -> Result<Timed, Box<dyn std::error::Error>> {
    let ends = std::sync::Arc::new(std::sync::Mutex::new(Vec::with_capacity(epochs)));
    let options = FitOptions {
        epochs,
        batch_size: 128,
        shuffle: false,
        verbose: 0,
        callbacks: vec![Box::new(EpochEnds(ends.clone()))],
        ..Default::default()
    };
    let start = Instant::now();
    let h = model.fit(x, y, options)?;
    let ends = ends.lock().map_err(|_| "the epoch timer's lock")?;
    let epoch_s: Vec<f64> = std::iter::once(start)
        .chain(ends.iter().copied())
        .zip(ends.iter())
        .map(|(from, to)| (*to - from).as_secs_f64())
        .collect();
    let losses = h.loss().to_vec();
    let rest = if epoch_s.len() > 1 {
        median(epoch_s[1..].to_vec())
    } else {
        epoch_s[0]
    };
    Ok((epoch_s, losses, rest))
}

/// Records when each epoch ends.
struct EpochEnds(std::sync::Arc<std::sync::Mutex<Vec<Instant>>>);

impl Callback<f32> for EpochEnds {
    fn name(&self) -> &str {
        "EpochEnds"
    }
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &mut Logs,
        _model: &mut Sequential<f32>,
    ) -> brick::nn::Result<brick::nn::callbacks::Flow> {
        if let Ok(mut ends) = self.0.lock() {
            ends.push(Instant::now());
        }
        Ok(brick::nn::callbacks::CONTINUE)
    }
}

/// The bundled digits tiled to `n` rows, as the peer scripts build them.
fn mnist_tiled(n: usize) -> Result<(Tensor, Tensor), Box<dyn std::error::Error>> {
    let labels = load_mnist_labels(brick::data_path("mnist-10k-labels-idx1-ubyte.gz"))?;
    let images = load_mnist_images::<f32>(brick::data_path("mnist-10k-images-idx3-ubyte.gz"))?;
    let count = labels.len();
    let pixels = images.as_slice().ok_or("contiguous images")?;
    let mut x = Vec::with_capacity(n * 784);
    let mut tiled_labels = Vec::with_capacity(n);
    for i in 0..n {
        let src = i % count;
        x.extend_from_slice(&pixels[src * 784..(src + 1) * 784]);
        tiled_labels.push(labels[src]);
    }
    drop(images);
    Ok((
        Tensor::from_vec(x, &[n, 784])?,
        to_categorical(&tiled_labels, Some(10))?,
    ))
}

fn mnist_mlp(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (x, y) = mnist_tiled(args.n)?;
    let mut model = Sequential::with_seed(0);
    model.add(Dense::new(512).input_dim(784).activation("relu"))?;
    model.add(Dense::new(10).activation("softmax"))?;
    model.compile(RMSprop::new(0.001), "categorical_crossentropy", [])?;
    // The matrix products of a training step per sample: both layers forward and their
    // kernel gradients, and the output layer's input gradient (the first layer's input
    // needs none). The floor is them at the GEMM rate `matmul` reports first.
    let forward = 2.0 * (784 * 512 + 512 * 10) as f64;
    let flop_per_sample = 2.0 * forward + 2.0 * (512 * 10) as f64;
    let round_trip = core_round_trip_ns();
    let gemm = gemm_rate(128, 784, 512);
    let floor_s = flop_per_sample * args.n as f64 / (gemm * 1e9);
    let (epoch_s, losses, rest) = timed_epochs(&mut model, &x, &y, args.epochs)?;
    // The machines are shared, and their speed can change within a run: the rate measured
    // again after training says whether the floor still applies (a run whose two rates
    // differ by more than a tenth is not steady).
    let gemm_after = gemm_rate(128, 784, 512);
    let round_trip_after = core_round_trip_ns();
    println!(
        "{{\"bench\": \"mnist_mlp\", \"framework\": \"brick\", \"variant\": \"fit\", {}, \"n\": {}, \"batch\": 128, \"epochs\": {}, \"steps_per_epoch\": {}, \"epoch1_s\": {:.4}, \"epoch_rest_median_s\": {:.4}, \"epoch_s\": {}, \"loss_per_epoch\": {}, \"gflop_per_epoch\": {:.1}, \"gemm_gflops\": {:.1}, \"gemm_gflops_after\": {:.1}, \"steady\": {}, \"core_round_trip_ns\": [{:.0}, {:.0}], \"split_caches\": {}, \"floor_s\": {:.3}, \"x_floor\": {:.2}, \"peak_rss_mib\": {}}}",
        machine(),
        args.n,
        args.epochs,
        args.n.div_ceil(128),
        epoch_s[0],
        rest,
        json_list(&epoch_s, 4),
        json_list(&losses, 5),
        flop_per_sample * args.n as f64 / 1e9,
        gemm,
        gemm_after,
        (gemm_after - gemm).abs() <= 0.1 * gemm,
        round_trip,
        round_trip_after,
        round_trip.max(round_trip_after) > SPLIT_CACHES_NS,
        floor_s,
        rest / floor_s,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}

/// A round trip between two cores above this says they did not share a cache during the
/// run: on one AMD EPYC machine this bench read 85-102 ns most of the time and 379-418 ns in
/// the spells when the host had moved the two vCPUs apart (when a 3.2 MB buffer written by
/// one core took twice as long to read on the other). Such a run is slow for brick and its peers
/// alike, brick's short parallel passes most; compare it only with runs that were too.
const SPLIT_CACHES_NS: f64 = 250.0;

/// The median time, in nanoseconds, for a value to go from one thread to another and back
/// (two threads bouncing a counter through two cache lines), over 20,000 round trips: how
/// far apart the two cores the pool runs on are. Nothing but these threads should run, so
/// that each has a core.
fn core_round_trip_ns() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    #[repr(align(128))]
    struct Line(AtomicU64);
    const TRIPS: u64 = 20_000;
    let (ping, pong) = (Line(AtomicU64::new(0)), Line(AtomicU64::new(0)));
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 1..=TRIPS {
                while ping.0.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                pong.0.store(i, Ordering::Release);
            }
        });
        let mut times = Vec::with_capacity(20);
        let mut i = 0;
        for _ in 0..20 {
            let t = Instant::now();
            for _ in 0..TRIPS / 20 {
                i += 1;
                ping.0.store(i, Ordering::Release);
                while pong.0.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
            }
            times.push(t.elapsed().as_secs_f64() / (TRIPS / 20) as f64 * 1e9);
        }
        median(times)
    })
}

/// GFLOP/s of an `[m, k] @ [k, n]` product, median over about a second.
fn gemm_rate(m: usize, k: usize, n: usize) -> f64 {
    let mut rng = seeded(1);
    let a = Tensor::<f32>::rand_uniform(&[m, k], 0.0, 1.0, &mut rng);
    let b = Tensor::<f32>::rand_uniform(&[k, n], 0.0, 1.0, &mut rng);
    for _ in 0..3 {
        black_box(a.matmul(&b));
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < 1.0 || times.len() < 5 {
        let t = Instant::now();
        black_box(a.matmul(&b));
        times.push(t.elapsed().as_secs_f64());
    }
    2.0 * (m * k * n) as f64 / median(times) / 1e9
}

/// Median seconds of `f` over about half a second (at least 5 runs, after 2 warm-ups).
fn median_time(mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < 0.5 || times.len() < 5 {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    median(times)
}

fn conv_kernels() {
    use brick::tensor::ops::conv::{Conv2dOptions, OutputGrad, PooledConv, Window};
    let mut rng = seeded(2);
    let gemm = gemm_rate(128, 784, 512);
    let o = Conv2dOptions::default();
    // The activation as the Conv2D layer fuses it: vectorized for the processor.
    let relu = |v: &mut [f32]| {
        brick::tensor::simd::dispatch(
            #[inline(always)]
            || v.iter_mut().for_each(|v| *v = v.max(0.0)),
        )
    };
    let pool = Window {
        strides: [2, 2],
        ..Window::new([2, 2])
    };
    let normal = |shape: &[usize], rng: &mut _| Tensor::<f32>::rand_normal(shape, 0.0, 1.0, rng);
    let print = |kernel: &str, seconds: f64, flop: f64| {
        let rate = flop / seconds / 1e9;
        let of_gemm = if flop > 0.0 {
            format!(", \"gflops\": {rate:.1}, \"of_gemm\": {:.2}", rate / gemm)
        } else {
            String::new()
        };
        println!(
            "{{\"bench\": \"conv_kernels\", \"kernel\": \"{kernel}\", {}, \"ms\": {:.3}{of_gemm}, \"gemm_gflops\": {gemm:.1}}}",
            machine(),
            seconds * 1e3
        );
    };
    for (name, image, c_out) in [
        ("conv1", [128, 28, 28, 1], 32),
        ("conv2", [128, 13, 13, 32], 64),
    ] {
        let x = normal(&image, &mut rng);
        let k = normal(&[3, 3, image[3], c_out], &mut rng);
        let b = normal(&[c_out], &mut rng);
        let y = x.conv2d(&k, Some(&b), &o, &relu).unwrap();
        let dy = normal(y.shape(), &mut rng);
        let flop = 2.0 * (y.len() * 9 * image[3]) as f64;
        print(
            &format!("{name}_forward"),
            median_time(|| {
                black_box(x.conv2d(&k, Some(&b), &o, &relu).unwrap());
            }),
            flop,
        );
        print(
            &format!("{name}_backprop_kernel"),
            median_time(|| {
                black_box(x.conv2d_backprop_kernel(&dy, &o, k.shape()).unwrap());
            }),
            flop,
        );
        print(
            &format!("{name}_backprop_input"),
            median_time(|| {
                black_box(dy.conv2d_backprop_input(&k, &o, x.shape()).unwrap());
            }),
            flop,
        );
        let p = y.max_pool(&pool).unwrap();
        let dp = normal(p.shape(), &mut rng);
        print(
            &format!("{name}_max_pool"),
            median_time(|| {
                black_box(y.max_pool(&pool).unwrap());
            }),
            0.0,
        );
        print(
            &format!("{name}_max_pool_grad"),
            median_time(|| {
                black_box(y.max_pool_grad(&dp, &pool).unwrap());
            }),
            0.0,
        );
        // The convolution and its pooling as one op, as the model runs the first layer: the
        // forward pass, and the kernel and bias gradients (which compute the output again).
        print(
            &format!("{name}_fused_max_pool"),
            median_time(|| {
                black_box(x.conv2d_max_pool(&k, Some(&b), &o, &relu, &pool).unwrap());
            }),
            flop,
        );
        let chain = |dy: &[f32], y: &[f32], dz: &mut [f32]| {
            for ((d, &g), &y) in dz.iter_mut().zip(dy).zip(y) {
                *d = if y > 0.0 { g } else { 0.0 };
            }
        };
        // As the tape keeps them: the pooled output and its winners.
        let (p, winners) = x
            .conv2d_max_pool_with_indices(&k, Some(&b), &o, &relu, &pool)
            .unwrap();
        let conv = PooledConv {
            x: &x,
            kernel: &k,
            bias: Some(&b),
            activation: &relu,
            chain: Some(&chain),
            output: Some((&p, &winners)),
        };
        let fused = OutputGrad::MaxPooled {
            dp: &dp,
            pool,
            conv,
        };
        print(
            &format!("{name}_fused_max_pool_with_indices"),
            median_time(|| {
                black_box(
                    x.conv2d_max_pool_with_indices(&k, Some(&b), &o, &relu, &pool)
                        .unwrap(),
                );
            }),
            flop,
        );
        // The FLOP of the dense product each replaces, so that `of_gemm` reads as the
        // speed-up the winners give over the dense product at the GEMM's rate.
        print(
            &format!("{name}_fused_backprop_kernel"),
            median_time(|| {
                black_box(
                    x.conv2d_backprop_kernel_of(fused, &o, k.shape(), true)
                        .unwrap(),
                );
            }),
            flop,
        );
        print(
            &format!("{name}_fused_backprop_input"),
            median_time(|| {
                black_box(Tensor::conv2d_backprop_input_of(fused, &k, &o, x.shape()).unwrap());
            }),
            flop,
        );
    }
}

fn mnist_convnet(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let epochs = if args.epochs_given { args.epochs } else { 3 };
    let (x, y) = mnist_tiled(args.n)?;
    let x = x.reshape(&[args.n, 28, 28, 1]);
    let mut model = mnist_convnet::convnet(0)?;
    // The training FLOPs per image: forward, and backward to the weights and (but for the
    // first convolution) to the inputs: 3x the forward products, 2x for the first layer.
    let conv1 = 2.0 * (26 * 26 * 9 * 32) as f64;
    let conv2 = 2.0 * (11 * 11 * 288 * 64) as f64;
    let dense = 2.0 * (1600 * 10) as f64;
    let flop_per_image = 2.0 * conv1 + 3.0 * conv2 + 3.0 * dense;
    // The floor's rate: the GEMM rate `matmul` reports first ([128, 784] @ [784, 512]); and,
    // for comparison, the rate of the convnet's largest product, the second convolution's
    // [128 * 11 * 11, 288] @ [288, 64].
    let gemm = gemm_rate(128, 784, 512);
    let gemm_conv2 = gemm_rate(128 * 121, 288, 64);
    let floor_s = flop_per_image * args.n as f64 / (gemm * 1e9);
    let (epoch_s, losses, rest) = timed_epochs(&mut model, &x, &y, epochs)?;
    println!(
        "{{\"bench\": \"mnist_convnet\", \"framework\": \"brick\", \"variant\": \"fit\", {}, \"n\": {}, \"batch\": 128, \"epochs\": {epochs}, \"epoch1_s\": {:.3}, \"epoch_rest_median_s\": {:.3}, \"epoch_s\": {}, \"loss_per_epoch\": {}, \"gflop_per_epoch\": {:.1}, \"gemm_gflops\": {:.1}, \"gemm_conv2_gflops\": {:.1}, \"floor_s\": {:.3}, \"x_floor\": {:.2}, \"peak_rss_mib\": {}}}",
        machine(),
        args.n,
        epoch_s[0],
        rest,
        json_list(&epoch_s, 3),
        json_list(&losses, 5),
        flop_per_image * args.n as f64 / 1e9,
        gemm,
        gemm_conv2,
        floor_s,
        rest / floor_s,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}

fn xor_tiny(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let x = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2])?;
    let y = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0], &[4, 1])?;
    let build = || -> Result<Sequential, Box<dyn std::error::Error>> {
        let mut m = Sequential::with_seed(0);
        m.add(Dense::new(8).input_dim(2).activation("tanh"))?;
        m.add(Dense::new(1).activation("sigmoid"))?;
        m.compile(SGD::new(0.5), "binary_crossentropy", ["accuracy"])?;
        Ok(m)
    };
    // train_on_batch, one call per step.
    let mut model = build()?;
    let t0 = Instant::now();
    model.train_on_batch(&x, &y)?;
    let first_step_s = t0.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 1..args.steps {
        black_box(model.train_on_batch(&x, &y)?);
    }
    let per_step = t.elapsed().as_secs_f64() / (args.steps - 1) as f64;
    let accuracy = model
        .evaluate_batched(&x, &y, 4)?
        .get("accuracy")
        .unwrap_or(f64::NAN);
    println!(
        "{{\"bench\": \"xor_tiny\", \"framework\": \"brick\", \"variant\": \"train_on_batch\", {}, \"steps\": {}, \"us_per_step\": {:.2}, \"first_step_s\": {:.6}, \"accuracy\": {accuracy}, \"reached_100\": {}, \"peak_rss_mib\": {}}}",
        machine(),
        args.steps,
        per_step * 1e6,
        first_step_s,
        accuracy == 1.0,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    // fit over all steps at once (one epoch per step of the 4 points).
    let mut model = build()?;
    let t = Instant::now();
    let options = FitOptions {
        epochs: args.steps,
        batch_size: 4,
        shuffle: false,
        verbose: 0,
        ..Default::default()
    };
    let h = model.fit(&x, &y, options)?;
    let per_step = t.elapsed().as_secs_f64() / args.steps as f64;
    let accuracy = h.last("accuracy").unwrap_or(f64::NAN);
    println!(
        "{{\"bench\": \"xor_tiny\", \"framework\": \"brick\", \"variant\": \"fit\", {}, \"steps\": {}, \"us_per_step\": {:.2}, \"accuracy\": {accuracy}, \"reached_100\": {}}}",
        machine(),
        args.steps,
        per_step * 1e6,
        accuracy == 1.0
    );
    Ok(())
}

fn iris_mlp(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let data = read_csv::<f32>(brick::data_path("iris.csv"), "species")?;
    let (_, labels) = data.class_labels();
    let (_, x) = StandardScaler::fit_transform(&data.features)?;
    let mut order: Vec<usize> = (0..labels.len()).collect();
    {
        use rand::seq::SliceRandom;
        order.shuffle(&mut seeded(0));
    }
    let x = x.gather(0, &order);
    let ordered: Vec<usize> = order.iter().map(|&i| labels[i]).collect();
    let y = to_categorical::<f32>(&ordered, Some(3))?;
    let mut model = Sequential::with_seed(0);
    model.add(Dense::new(16).input_dim(4).activation("relu"))?;
    model.add(Dense::new(3).activation("softmax"))?;
    model.compile(Adam::new(0.01), "categorical_crossentropy", ["accuracy"])?;
    let t = Instant::now();
    let options = FitOptions {
        epochs: args.iris_epochs,
        batch_size: 16,
        shuffle: false,
        verbose: 0,
        ..Default::default()
    };
    let h = model.fit(&x, &y, options)?;
    let total = t.elapsed().as_secs_f64();
    println!(
        "{{\"bench\": \"iris_mlp\", \"framework\": \"brick\", \"variant\": \"fit\", {}, \"epochs\": {}, \"batch\": 16, \"total_s\": {total:.4}, \"train_accuracy\": {:.4}, \"peak_rss_mib\": {}}}",
        machine(),
        args.iris_epochs,
        h.last("accuracy").unwrap_or(f64::NAN),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}

fn mnist_hvp(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    use brick::autograd::OutputActivation;
    let (x, y) = mnist_tiled(128)?;
    let mut rng = seeded(0);
    let params: Vec<Tensor> = vec![
        Tensor::rand_normal(&[784, 512], 0.0, 0.05, &mut rng),
        Tensor::zeros(&[512]),
        Tensor::rand_normal(&[512, 10], 0.0, 0.05, &mut rng),
        Tensor::zeros(&[10]),
    ];
    let directions: Vec<Tensor> = params
        .iter()
        .map(|p| Tensor::rand_normal(p.shape(), 0.0, 1.0, &mut rng))
        .collect();
    // The loss as a Sequential computes it: fused dense layers, softmax cross-entropy.
    fn loss<'t>(p: &[Var<'t>], x: &Tensor, y: &Tensor) -> Var<'t> {
        let tape = p[0].tape();
        let h = tape
            .constant(x)
            .dense(p[0], Some(p[1]), OutputActivation::Relu);
        let z = h.dense(p[2], Some(p[3]), OutputActivation::Linear);
        z.softmax_cross_entropy(tape.constant(y), None)
    }
    let gradient = || {
        let tape = Tape::new();
        let vars: Vec<Var<'_>> = params.iter().map(|p| tape.param(p)).collect();
        let mut g = loss(&vars, &x, &y).backward().expect("scalar loss");
        vars.iter().map(|&v| g.take(v)).collect::<Vec<_>>()
    };
    let product =
        || brick::autograd::hvp(|p| loss(p, &x, &y), &params, &directions).expect("shapes fit");
    let reps = args.steps.min(200);
    let (grad_ms, hvp_ms) = brick::tensor::parallel::install(|| {
        for _ in 0..5 {
            black_box(gradient());
            black_box(product());
        }
        // Interleaved, so that both see the same machine.
        let (mut g, mut h) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let t = Instant::now();
            black_box(gradient());
            g.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            black_box(product());
            h.push(t.elapsed().as_secs_f64() * 1e3);
        }
        (median(g), median(h))
    });
    println!(
        "{{\"bench\": \"mnist_mlp_hvp\", \"framework\": \"brick\", \"variant\": \"reverse_over_reverse\", {}, \"batch\": 128, \"reps\": {reps}, \"grad_ms\": {grad_ms:.3}, \"hvp_ms\": {hvp_ms:.3}, \"ratio\": {:.2}}}",
        machine(),
        hvp_ms / grad_ms
    );
    Ok(())
}

fn matmul() {
    let mut rng = seeded(0);
    for (m, k, n, layout) in [
        (128, 784, 512, "nn"),
        (784, 128, 512, "tn"),
        (128, 512, 10, "nn"),
        // The convnet's products for a batch of 128: each convolution forward
        // (patches @ kernel), its kernel gradient (patches^T @ dy) and the second one's
        // patch gradient (dy @ kernel^T).
        (128 * 676, 9, 32, "nn"),
        (9, 128 * 676, 32, "tn"),
        (128 * 121, 288, 64, "nn"),
        (288, 128 * 121, 64, "tn"),
        (128 * 121, 64, 288, "nt"),
    ] {
        let a = if layout == "tn" {
            Tensor::<f32>::rand_uniform(&[k, m], 0.0, 1.0, &mut rng).transpose()
        } else {
            Tensor::<f32>::rand_uniform(&[m, k], 0.0, 1.0, &mut rng)
        };
        let b = if layout == "nt" {
            Tensor::<f32>::rand_uniform(&[n, k], 0.0, 1.0, &mut rng).transpose()
        } else {
            Tensor::<f32>::rand_uniform(&[k, n], 0.0, 1.0, &mut rng)
        };
        for _ in 0..3 {
            black_box(a.matmul(&b));
        }
        let mut times = Vec::new();
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < 1.0 || times.len() < 5 {
            let t = Instant::now();
            black_box(a.matmul(&b));
            times.push(t.elapsed().as_secs_f64());
        }
        let flop = 2.0 * (m * k * n) as f64;
        println!(
            "{{\"bench\": \"sgemm\", \"lib\": \"brick\", {}, \"m\": {m}, \"k\": {k}, \"n\": {n}, \"layout\": \"{layout}\", \"reps\": {}, \"gflops_median\": {:.2}, \"gflops_best\": {:.2}}}",
            machine(),
            times.len(),
            flop / median(times.clone()) / 1e9,
            flop / times.iter().cloned().fold(f64::INFINITY, f64::min) / 1e9
        );
    }
}

fn main() -> std::process::ExitCode {
    brick::run_main(try_main)
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    match args.bench.as_str() {
        "mnist_mlp" => mnist_mlp(&args)?,
        "xor_tiny" => xor_tiny(&args)?,
        "iris_mlp" => iris_mlp(&args)?,
        "matmul" | "sgemm" => matmul(),
        "mnist_hvp" => mnist_hvp(&args)?,
        "mnist_convnet" => mnist_convnet(&args)?,
        // Inside `install`, as `fit` runs them: the pool stays awake between kernels.
        "conv_kernels" => brick::tensor::parallel::install(conv_kernels),
        "all" => {
            // One process per work, so that each peak memory figure is its own.
            let exe = std::env::current_exe()?;
            // The other options pass through; `--bench` does not (a child that saw
            // `--bench all` again would start the whole set again, without end).
            let mut passthrough = Vec::new();
            let mut argv = std::env::args().skip(1);
            while let Some(a) = argv.next() {
                if a == "--bench" {
                    argv.next();
                } else {
                    passthrough.push(a);
                }
            }
            for bench in [
                "matmul",
                "mnist_mlp",
                "xor_tiny",
                "iris_mlp",
                "mnist_hvp",
                "mnist_convnet",
                "conv_kernels",
            ] {
                let status = std::process::Command::new(&exe)
                    .args(&passthrough)
                    .args(["--bench", bench])
                    .status()?;
                if !status.success() {
                    return Err(format!("benchmark {bench} failed: {status}").into());
                }
            }
        }
        other => {
            return Err(format!(
                "unknown --bench '{other}'; valid: all, mnist_mlp, xor_tiny, iris_mlp, matmul, \
                 mnist_hvp, mnist_convnet, conv_kernels"
            )
            .into());
        }
    }
    Ok(())
}
