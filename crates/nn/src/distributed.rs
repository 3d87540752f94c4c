//! Data-parallel training across processes: the collectives [`Sequential`](crate::Sequential)
//! needs from a process group, as a trait, so that `nn` stands on no transport.
//!
//! A [`Communicator`] joins `size` processes (ranks) that run the same program. Given one
//! with [`Sequential::distribute`](crate::Sequential::distribute), `fit` splits every global
//! batch across the ranks, sums their row-weighted gradients, and applies the same update
//! everywhere, so that each rank ends with the weights one process would reach. The `brick-mpi`
//! crate implements it over MPI; [`thread_group`] implements it for threads of one process
//! (for tests, and to try a distributed program without MPI).
//!
//! ```
//! use std::sync::Arc;
//! use nn::distributed::{Communicator, all_sum, thread_group};
//! let ranks = thread_group(2).unwrap();
//! let handles: Vec<_> = ranks
//!     .into_iter()
//!     .map(|c| std::thread::spawn(move || {
//!         let mut v = vec![c.rank() as f32 + 1.0; 3];
//!         all_sum(c.as_ref(), &mut v).unwrap();
//!         v
//!     }))
//!     .collect();
//! for h in handles {
//!     assert_eq!(h.join().unwrap(), [3.0, 3.0, 3.0]);
//! }
//! ```

use std::any::Any;
use std::sync::{Arc, Barrier, Mutex};

use tensor::Element;

use crate::error::{Error, Result};

/// The collectives of a group of `size` processes running the same program, each called
/// by every rank at the same point (as MPI's are): a rank that skips one leaves the others
/// waiting. Implementations give every rank bit-identical results, so that the ranks'
/// weights stay identical.
pub trait Communicator: Send + Sync {
    /// This process's index, `0..size`.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Replaces `buf` on every rank by the element-wise sum of all ranks' `buf`.
    ///
    /// # Errors
    /// If the transport fails or the ranks' lengths differ (where that can be detected).
    fn all_sum_f32(&self, buf: &mut [f32]) -> Result<()>;
    /// As [`all_sum_f32`](Communicator::all_sum_f32), for `f64`.
    ///
    /// # Errors
    /// As [`all_sum_f32`](Communicator::all_sum_f32).
    fn all_sum_f64(&self, buf: &mut [f64]) -> Result<()>;
    /// Replaces `buf` on every rank by rank `root`'s.
    ///
    /// # Errors
    /// As [`all_sum_f32`](Communicator::all_sum_f32).
    fn broadcast_f32(&self, buf: &mut [f32], root: usize) -> Result<()>;
    /// As [`broadcast_f32`](Communicator::broadcast_f32), for `f64`.
    ///
    /// # Errors
    /// As [`all_sum_f32`](Communicator::all_sum_f32).
    fn broadcast_f64(&self, buf: &mut [f64], root: usize) -> Result<()>;
    /// Every rank's `values` (all of one length), concatenated in rank order.
    ///
    /// # Errors
    /// As [`all_sum_f32`](Communicator::all_sum_f32).
    fn all_gather_u64(&self, values: &[u64]) -> Result<Vec<u64>>;
}

/// Sums `buf` over the ranks, for either element type.
///
/// # Errors
/// As [`Communicator::all_sum_f32`].
// A `Vec`, not a slice: `Any` tells `Vec<f32>` from `Vec<f64>` without a cast, and an
// unsized slice cannot be `Any`.
#[allow(clippy::ptr_arg)]
pub fn all_sum<T: Element>(comm: &dyn Communicator, buf: &mut Vec<T>) -> Result<()> {
    match_element::<T>(buf, |b| comm.all_sum_f32(b), |b| comm.all_sum_f64(b))
}

/// Replaces `buf` by rank `root`'s, for either element type.
///
/// # Errors
/// As [`Communicator::all_sum_f32`].
// A `Vec`, not a slice: `Any` tells `Vec<f32>` from `Vec<f64>` without a cast, and an
// unsized slice cannot be `Any`.
#[allow(clippy::ptr_arg)]
pub fn broadcast<T: Element>(comm: &dyn Communicator, buf: &mut Vec<T>, root: usize) -> Result<()> {
    match_element::<T>(
        buf,
        |b| comm.broadcast_f32(b, root),
        |b| comm.broadcast_f64(b, root),
    )
}

/// Calls `f32s` or `f64s` with `buf` as the element type it is (`Vec<T>` is `'static`, so
/// `Any` tells which without a cast).
fn match_element<T: Element>(
    buf: &mut dyn Any,
    f32s: impl FnOnce(&mut [f32]) -> Result<()>,
    f64s: impl FnOnce(&mut [f64]) -> Result<()>,
) -> Result<()> {
    if let Some(b) = buf.downcast_mut::<Vec<f32>>() {
        return f32s(b);
    }
    if let Some(b) = buf.downcast_mut::<Vec<f64>>() {
        return f64s(b);
    }
    Err(Error::config(
        "distributed",
        format!(
            "collectives are for f32 and f64 tensors, got {}",
            std::any::type_name::<T>()
        ),
    ))
}

/// `n` ranks for `n` threads of this process, as [`Communicator`]s: rank `i` is the `i`-th.
/// Each collective waits for all `n` threads, so each must be moved to its own thread.
/// Sums are taken in rank order, the same on every rank.
///
/// # Errors
/// If `n` is 0.
pub fn thread_group(n: usize) -> Result<Vec<Arc<dyn Communicator>>> {
    if n == 0 {
        return Err(Error::config(
            "thread_group",
            "a group needs at least one rank, got 0",
        ));
    }
    let shared = Arc::new(Shared {
        barrier: Barrier::new(n),
        slots: Mutex::new(vec![Slot::default(); n]),
    });
    Ok((0..n)
        .map(|rank| {
            Arc::new(ThreadRank {
                rank,
                size: n,
                shared: Arc::clone(&shared),
            }) as Arc<dyn Communicator>
        })
        .collect())
}

/// What one rank of a [`thread_group`] deposits for a collective.
#[derive(Clone, Default)]
struct Slot {
    f32s: Vec<f32>,
    f64s: Vec<f64>,
    u64s: Vec<u64>,
}

struct Shared {
    barrier: Barrier,
    slots: Mutex<Vec<Slot>>,
}

struct ThreadRank {
    rank: usize,
    size: usize,
    shared: Arc<Shared>,
}

impl ThreadRank {
    /// Deposits this rank's part, waits for all, reads all parts with `get`,
    /// and waits again before any slot can be reused.
    fn exchange<R>(&self, part: Slot, get: impl FnOnce(&[Slot]) -> R) -> R {
        self.slots()[self.rank] = part;
        self.shared.barrier.wait();
        let out = get(&self.slots());
        self.shared.barrier.wait();
        out
    }

    /// Replaces `buf` by the sum over the ranks, taken in rank order; `wrap` and `field`
    /// put a vector of `V` in a slot and find it there.
    fn sum<V: Copy + Default + std::ops::Add<Output = V>>(
        &self,
        buf: &mut [V],
        wrap: fn(Vec<V>) -> Slot,
        field: fn(&Slot) -> &Vec<V>,
    ) -> Result<()> {
        self.exchange(wrap(buf.to_vec()), |slots| {
            let lens = || slots.iter().map(|s| field(s).len());
            if lens().any(|l| l != buf.len()) {
                return Err(length_error("all_sum", lens()));
            }
            for (i, b) in buf.iter_mut().enumerate() {
                *b = slots.iter().fold(V::default(), |a, s| a + field(s)[i]);
            }
            Ok(())
        })
    }

    /// Replaces `buf` by rank `root`'s (see [`sum`](ThreadRank::sum) for `wrap`, `field`).
    fn copy_from<V: Copy>(
        &self,
        buf: &mut [V],
        root: usize,
        wrap: fn(Vec<V>) -> Slot,
        field: fn(&Slot) -> &Vec<V>,
    ) -> Result<()> {
        self.exchange(wrap(buf.to_vec()), |slots| {
            let from = field(&slots[root.min(self.size - 1)]);
            if from.len() != buf.len() {
                return Err(length_error(
                    "broadcast",
                    slots.iter().map(|s| field(s).len()),
                ));
            }
            buf.copy_from_slice(from);
            Ok(())
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.shared.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn length_error(what: &str, lens: impl Iterator<Item = usize>) -> Error {
    let lens: Vec<usize> = lens.collect();
    Error::config(
        "distributed",
        format!("{what}: every rank must give the same length, got {lens:?} by rank"),
    )
}

impl Communicator for ThreadRank {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_sum_f32(&self, buf: &mut [f32]) -> Result<()> {
        self.sum(
            buf,
            |v| Slot {
                f32s: v,
                ..Slot::default()
            },
            |s| &s.f32s,
        )
    }
    fn all_sum_f64(&self, buf: &mut [f64]) -> Result<()> {
        self.sum(
            buf,
            |v| Slot {
                f64s: v,
                ..Slot::default()
            },
            |s| &s.f64s,
        )
    }
    fn broadcast_f32(&self, buf: &mut [f32], root: usize) -> Result<()> {
        let wrap = |v| Slot {
            f32s: v,
            ..Slot::default()
        };
        self.copy_from(buf, root, wrap, |s| &s.f32s)
    }
    fn broadcast_f64(&self, buf: &mut [f64], root: usize) -> Result<()> {
        let wrap = |v| Slot {
            f64s: v,
            ..Slot::default()
        };
        self.copy_from(buf, root, wrap, |s| &s.f64s)
    }
    fn all_gather_u64(&self, values: &[u64]) -> Result<Vec<u64>> {
        self.exchange(
            Slot {
                u64s: values.to_vec(),
                ..Slot::default()
            },
            |slots| {
                if slots.iter().any(|s| s.u64s.len() != values.len()) {
                    return Err(length_error(
                        "all_gather",
                        slots.iter().map(|s| s.u64s.len()),
                    ));
                }
                Ok(slots.iter().flat_map(|s| s.u64s.iter().copied()).collect())
            },
        )
    }
}

/// A 64-bit fingerprint of some bytes and numbers, for telling whether ranks agree (not
/// for security): equal inputs give equal fingerprints on every machine.
#[derive(Clone, Copy, Debug)]
pub struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint(0x6A09_E667_F3BC_C908)
    }
}

impl Fingerprint {
    /// Mixes in one word.
    pub fn word(mut self, w: u64) -> Self {
        // SplitMix64's finalizer over the running state and the word.
        let mut z = (self.0 ^ w).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        self.0 = z ^ (z >> 31);
        self
    }

    /// Mixes in a string.
    pub fn str(self, s: &str) -> Self {
        self.bytes(s.as_bytes())
    }

    /// Mixes in bytes, eight at a time, then their length.
    pub fn bytes(mut self, b: &[u8]) -> Self {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self = self.word(u64::from_le_bytes(c.try_into().expect("eight bytes")));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.word(u64::from_le_bytes(last)).word(b.len() as u64)
    }

    /// Mixes in a tensor's shape and the bits of its values.
    pub fn tensor<T: Element>(mut self, t: &tensor::Tensor<T>) -> Self {
        for &d in t.shape() {
            self = self.word(d as u64);
        }
        let mut acc = self.word(t.len() as u64);
        let contiguous = t.to_contiguous();
        let values = contiguous.as_slice().expect("contiguous");
        // Two values per word for f32, one for f64: their exact bits.
        for v in values {
            acc = acc.word(v.to_f64().map_or(0, f64::to_bits));
        }
        acc
    }

    /// The fingerprint.
    pub fn value(self) -> u64 {
        self.0
    }
}

/// The rows `[start, end)` of a global batch that rank `rank` of `size` takes: as even a
/// split as can be, the first ranks taking one more when it does not divide.
pub fn shard(start: usize, end: usize, rank: usize, size: usize) -> (usize, usize) {
    let n = end - start;
    let (base, extra) = (n / size, n % size);
    let from = start + rank * base + rank.min(extra);
    let len = base + usize::from(rank < extra);
    (from, from + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_threads<R: Send + 'static>(
        n: usize,
        f: impl Fn(Arc<dyn Communicator>) -> R + Send + Sync + 'static,
    ) -> Vec<R> {
        let f = Arc::new(f);
        let handles: Vec<_> = thread_group(n)
            .unwrap()
            .into_iter()
            .map(|c| {
                let f = Arc::clone(&f);
                std::thread::spawn(move || f(c))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn a_thread_group_sums_broadcasts_and_gathers_in_rank_order() {
        let out = on_threads(3, |c| {
            let r = c.rank();
            let mut a = vec![r as f64, 1.0];
            c.all_sum_f64(&mut a).unwrap();
            let mut b = vec![r as f32 * 10.0; 2];
            broadcast(c.as_ref(), &mut b, 2).unwrap();
            let g = c.all_gather_u64(&[r as u64, 7]).unwrap();
            (a, b, g)
        });
        for (a, b, g) in out {
            assert_eq!(a, [3.0, 3.0]);
            assert_eq!(b, [20.0, 20.0]);
            assert_eq!(g, [0, 7, 1, 7, 2, 7]);
        }
    }

    #[test]
    fn different_lengths_are_an_error_on_every_rank_not_a_hang() {
        let out = on_threads(2, |c| {
            let mut v = vec![0.0f32; 1 + c.rank()];
            c.all_sum_f32(&mut v).unwrap_err().to_string()
        });
        for e in out {
            assert!(e.contains("[1, 2]"), "{e}");
        }
    }

    #[test]
    fn shards_cover_a_batch_evenly() {
        for (n, size) in [(10, 3), (2, 4), (128, 2), (0, 2)] {
            let parts: Vec<_> = (0..size).map(|r| shard(5, 5 + n, r, size)).collect();
            assert_eq!(parts[0].0, 5);
            assert_eq!(parts[size - 1].1, 5 + n);
            for w in parts.windows(2) {
                assert_eq!(w[0].1, w[1].0);
            }
            let lens: Vec<usize> = parts.iter().map(|(a, b)| b - a).collect();
            assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn fingerprints_tell_values_and_shapes_apart() {
        let t = tensor::Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
        let u = t.reshape(&[4]);
        let fp = |t: &tensor::Tensor<f32>| Fingerprint::default().tensor(t).value();
        assert_eq!(fp(&t), fp(&t.clone()));
        assert_ne!(fp(&t), fp(&u));
        assert_ne!(fp(&t), fp(&t.map(|v| v + 1e-6)));
        assert_ne!(
            Fingerprint::default().str("ab").value(),
            Fingerprint::default().str("ba").value()
        );
    }
}
