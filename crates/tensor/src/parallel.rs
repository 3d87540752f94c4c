//! The thread pool brick computes on (rayon's global pool: one thread per core, or
//! `RAYON_NUM_THREADS`).
//!
//! Large matrix products split across the pool. A pool thread that found no work for a few
//! tens of microseconds goes to sleep, and waking it costs about as long again, so a product
//! that follows even a short serial stretch (an activation, a loss) would start on one core.
//! [`install`] keeps the pool awake instead: `Sequential::fit` runs inside it, and a
//! hand-written training loop can do the same.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

thread_local! {
    /// Whether this thread runs an [`install`]ed closure or keeps the pool awake for one.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// How long an awake thread spins without finding work before it backs off to short sleeps
/// (a training step's serial stretches are far shorter; a long one, such as saving a
/// checkpoint, should not keep every core busy).
const SPIN_FOR: Duration = Duration::from_millis(2);
/// One back-off sleep.
const NAP: Duration = Duration::from_micros(200);

/// Runs `f` on one of the pool's threads and returns its result. While `f` runs, the pool's
/// other threads stay awake and take up split work at once, as OpenMP runtimes keep their
/// threads spinning between parallel regions. They spin (yielding to the OS now and then)
/// and back off to short sleeps once they have found no work for 2 ms, so a long serial
/// stretch of `f` costs little. Calls nested inside `f` just run their closure.
///
/// ```
/// let sum = tensor::parallel::install(|| (1..=4).sum::<i32>());
/// assert_eq!(sum, 10);
/// ```
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if ACTIVE.get() {
        return f();
    }
    // Training loops run here: their large buffers are reused rather than mapped afresh.
    crate::memory::keep_freed_memory();
    let done = &AtomicBool::new(false);
    rayon::scope(|s| {
        let owner = rayon::current_thread_index();
        for _ in 1..rayon::current_num_threads() {
            s.spawn(move |_| keep_awake(done, owner));
        }
        // Ends the keepers however `f` ends (a panic too: the scope waits for them).
        let _stop = Stop {
            done,
            was_active: ACTIVE.replace(true),
        };
        f()
    })
}

/// Sets the flag that ends the keepers, and restores the owner thread's state, when dropped.
struct Stop<'a> {
    done: &'a AtomicBool,
    was_active: bool,
}

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        ACTIVE.set(self.was_active);
        self.done.store(true, Ordering::Release);
    }
}

/// Runs the pool's pending work on this thread until `done`: spinning while there is some
/// now and then, backing off to naps after [`SPIN_FOR`] without any. Returns at once on the
/// thread that runs the installed closure (which may pick up a keeper while it waits inside
/// a `join`) and on a thread that already keeps the pool awake.
fn keep_awake(done: &AtomicBool, owner: Option<usize>) {
    if ACTIVE.get() || rayon::current_thread_index() == owner {
        return;
    }
    ACTIVE.set(true);
    let mut idle_since = Instant::now();
    let mut idle_rounds = 0u32;
    while !done.load(Ordering::Acquire) {
        if let Some(rayon::Yield::Executed) = rayon::yield_now() {
            idle_rounds = 0;
            continue;
        }
        if idle_rounds == 0 {
            idle_since = Instant::now();
        }
        idle_rounds += 1;
        if !idle_rounds.is_multiple_of(64) {
            std::hint::spin_loop();
        } else if idle_since.elapsed() < SPIN_FOR {
            std::thread::yield_now();
        } else {
            std::thread::sleep(NAP);
        }
    }
    ACTIVE.set(false);
}

/// `(a(), b())`, run on two of the pool's threads when the caller is itself on the pool
/// (inside [`install`], as in `fit`), else one after the other: from outside the pool,
/// handing work to it costs more than a small pair of jobs saves.
///
/// ```
/// let (x, y) = tensor::parallel::join(|| 2 + 2, || "four");
/// assert_eq!((x, y), (4, "four"));
/// ```
pub fn join<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if rayon::current_thread_index().is_some() && rayon::current_num_threads() > 1 {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// A vector of `n` elements computed on the pool in chunks of `chunk` elements (the last
/// may be shorter): each chunk is zeroed and handed to `f(range, chunk)`, `range` being its
/// place in the vector, by the task that computes it. Zeroing inside the task rather than
/// up front zeroes in parallel and leaves the chunk in that core's cache for `f`.
///
/// ```
/// let v: Vec<f32> = tensor::parallel::fill_chunks(10, 4, |range, out| {
///     for (o, i) in out.iter_mut().zip(range) {
///         *o = i as f32;
///     }
/// });
/// assert_eq!(v, (0..10).map(|i| i as f32).collect::<Vec<_>>());
/// ```
///
/// # Panics
/// If `chunk` is 0 while `n` is not.
pub fn fill_chunks<T: crate::Element>(
    n: usize,
    chunk: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [T]) + Sync,
) -> Vec<T> {
    use rayon::prelude::*;
    use std::mem::MaybeUninit;
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    assert!(chunk > 0, "fill_chunks: chunks of 0 elements");
    out.spare_capacity_mut()[..n]
        .par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, part)| {
            for v in part.iter_mut() {
                v.write(T::zero());
            }
            // SAFETY: every element of `part` was written just above, and `MaybeUninit<T>`
            // has the layout of `T`, so the slice may be read as `[T]` of the same length.
            let part = unsafe { &mut *(part as *mut [MaybeUninit<T>] as *mut [T]) };
            let start = i * chunk;
            f(start..start + part.len(), part);
        });
    // SAFETY: the chunks above cover the first `n` elements of the capacity, and each task
    // wrote every element of its chunk before anything else (a panic in `f` propagates out
    // of `for_each` before this line, leaving the length 0).
    unsafe { out.set_len(n) };
    out
}

/// How many times work split across the pool is halved: once per doubling of its threads
/// (1 for two threads, 0 for one). Matrix products and the optimizers' passes split this
/// often.
///
/// ```
/// let n = tensor::parallel::num_threads();
/// assert_eq!(1 << tensor::parallel::splits(), n.next_power_of_two());
/// ```
pub fn splits() -> usize {
    rayon::current_num_threads()
        .next_power_of_two()
        .trailing_zeros() as usize
}

/// The number of threads in the pool.
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    #[test]
    fn split_work_and_nested_installs_finish_on_any_pool() {
        for threads in 1..=4 {
            let got = pool(threads).install(|| {
                install(|| {
                    // Joins inside: the keepers take halves, the owner may meet a keeper
                    // while it waits and must not be stuck in it.
                    let mut total = 0u64;
                    for i in 0..200u64 {
                        let (a, b) = rayon::join(|| i * 2, || install(|| i * 3));
                        total += a + b;
                    }
                    total
                })
            });
            assert_eq!(
                got,
                (0..200u64).map(|i| 5 * i).sum::<u64>(),
                "{threads} threads"
            );
        }
    }

    #[test]
    fn a_panic_inside_propagates_and_frees_the_pool() {
        let pool = pool(2);
        let caught =
            pool.install(|| std::panic::catch_unwind(|| install(|| panic!("inside install"))));
        assert!(caught.is_err());
        // The pool still works, and a later install keeps it awake again.
        assert_eq!(pool.install(|| install(|| rayon::join(|| 1, || 2))), (1, 2));
    }

    #[test]
    fn fill_chunks_writes_every_element_once_on_any_pool() {
        for threads in 1..=3 {
            for (n, chunk) in [(0, 3), (1, 1), (10, 3), (1000, 7), (64, 64), (65, 64)] {
                let v: Vec<f64> = pool(threads).install(|| {
                    fill_chunks(n, chunk, |range, out: &mut [f64]| {
                        assert_eq!(range.len(), out.len());
                        assert!(out.iter().all(|&v| v == 0.0), "chunks arrive zeroed");
                        for (o, i) in out.iter_mut().zip(range) {
                            *o += i as f64 + 1.0;
                        }
                    })
                });
                let want: Vec<f64> = (0..n).map(|i| i as f64 + 1.0).collect();
                assert_eq!(v, want, "{threads} threads, n {n}, chunk {chunk}");
            }
        }
    }

    #[test]
    fn products_inside_match_products_outside() {
        let a = crate::Tensor::<f64>::from_vec(
            (0..160 * 120)
                .map(|i| ((i * 37 % 101) as f64) / 50.0)
                .collect(),
            &[160, 120],
        )
        .unwrap();
        let outside = a.matmul(&a.transpose());
        let inside = install(|| a.matmul(&a.transpose()));
        assert_eq!(inside, outside);
    }
}
