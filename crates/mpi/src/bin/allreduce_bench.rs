//! Times the gradient sum of a training step over MPI: `Communicator::all_sum_f32` of the
//! MNIST MLP's gradients (407,050 values, 1.6 MB) and the convnet's (34,826, 139 KB).
//! Rank 0 prints one JSON line per size, with the median and quartiles of 300 sums.
//!
//! ```sh
//! mpirun -np 2 --bind-to none crates/mpi/target/release/allreduce_bench
//! # Open MPI's ring algorithm instead of the one it picks by size (alike for 2 ranks on
//! # one AMD EPYC machine: 0.32-0.49 ms for the MLP's 1.6 MB either way, 2026-12-04):
//! mpirun -np 2 --bind-to none --mca coll_tuned_use_dynamic_rules 1 \
//!     --mca coll_tuned_allreduce_algorithm 4 crates/mpi/target/release/allreduce_bench
//! ```
//!
//! # What to expect on N machines
//!
//! A ring allreduce of `B` bytes sends and receives `2(N-1)/N * B` per rank in `2(N-1)`
//! rounds: `T = 2(N-1)/N * B / bandwidth + 2(N-1) * latency`. With 128 rows per machine (a
//! global batch of `128 N`), a step computes for `t` (measured on one 2-core machine: 1.37 ms
//! for the MLP, 13.6 ms for the convnet) and then waits `T`, so the efficiency is
//! `t / (t + T)`. Taking 30 us of latency at 10 Gbit/s (TCP) and 5 us at 100 Gbit/s:
//!
//! | model | link | N = 8: T, efficiency | N = 64: T, efficiency |
//! |---|---|---|---|
//! | MLP, 1.6 MB | 10 Gbit/s | 2.7 ms, 34% | 6.3 ms, 18% |
//! | MLP, 1.6 MB | 100 Gbit/s | 0.30 ms, 82% | 0.89 ms, 61% |
//! | convnet, 139 KB | 10 Gbit/s | 0.62 ms, 96% | 4.0 ms, 77% |
//! | convnet, 139 KB | 100 Gbit/s | 0.09 ms, 99% | 0.65 ms, 95% |
//!
//! At 64 machines the ring's latency term dominates (3.8 ms at 10 Gbit/s); recursive halving
//! and doubling (`2 log2(N)` rounds, Open MPI's algorithm 6) keeps the same bandwidth term and
//! brings the MLP to 32% and the convnet to 96% there. Overlapping the sum with the backward
//! pass (buckets, as PyTorch's DDP) hides at most what remains of the backward sweep once a
//! bucket is ready: the MLP's first-layer kernel (401,408 of its 407,050 values) is the last
//! gradient the sweep produces, so nearly nothing overlaps, and the convnet's sum is already
//! 0.2% of its step on one machine and at most 5% on 100 Gbit/s. Neither pays, so gradients
//! are summed in one buffer after the sweep.

use std::time::Instant;

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() -> std::process::ExitCode {
    brick_mpi::run(|comm| {
        for (model, n) in [("mnist_mlp", 407_050usize), ("mnist_convnet", 34_826)] {
            let mut buf = vec![1.0f32; n];
            for _ in 0..20 {
                comm.all_sum_f32(&mut buf)?;
            }
            let mut times = Vec::with_capacity(300);
            for _ in 0..300 {
                buf.fill(1.0);
                let t = Instant::now();
                comm.all_sum_f32(&mut buf)?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            assert!(buf.iter().all(|&v| v == comm.size() as f32));
            times.sort_by(f64::total_cmp);
            if comm.rank() == 0 {
                println!(
                    "{{\"bench\": \"allreduce\", \"model\": \"{model}\", \"values\": {n}, \
                     \"bytes\": {}, \"ranks\": {}, \"cpu\": \"{}\", \"ms_median\": {:.4}, \
                     \"ms_p25\": {:.4}, \"ms_p75\": {:.4}}}",
                    n * 4,
                    comm.size(),
                    cpu_model(),
                    times[150],
                    times[75],
                    times[225]
                );
            }
        }
        Ok(())
    })
}
