//! Times the gradient sum of a training step over MPI: `Communicator::all_sum_f32` of the
//! MNIST MLP's gradients (407,050 values, 1.6 MB) and the convnet's (34,826, 139 KB).
//! Rank 0 prints one JSON line per size, with the median and quartiles of 300 sums.
//!
//! ```sh
//! mpirun -np 2 --bind-to none crates/mpi/target/release/allreduce_bench
//! # Open MPI's ring algorithm, 7-10x faster here for the MLP's 1.6 MB than its default:
//! mpirun -np 2 --bind-to none --mca coll_tuned_use_dynamic_rules 1 \
//!     --mca coll_tuned_allreduce_algorithm 4 crates/mpi/target/release/allreduce_bench
//! ```

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
