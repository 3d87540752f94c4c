//! The thread pool brick computes on (rayon's global pool: one thread per core, or
//! `RAYON_NUM_THREADS`).
//!
//! Large matrix products split across the pool. They split fastest when the code that
//! issues them already runs on one of the pool's threads (the other threads are then still
//! awake between products); `Sequential::fit` does that itself, and a hand-written training
//! loop can do the same by running inside [`install`].

/// Runs `f` on one of the pool's threads and returns its result.
///
/// ```
/// let sum = tensor::parallel::install(|| (1..=4).sum::<i32>());
/// assert_eq!(sum, 10);
/// ```
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// The number of threads in the pool.
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}
