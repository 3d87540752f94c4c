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
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier, Mutex};

use tensor::{Element, Tensor};

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
    pub fn tensor<T: Element>(mut self, t: &Tensor<T>) -> Self {
        for &d in t.shape() {
            self = self.word(d as u64);
        }
        let acc = self.word(t.len() as u64);
        let contiguous = t.to_contiguous();
        let values = contiguous.as_slice().expect("contiguous");
        // Eight independent lanes over the values' exact bits (a data set of millions of
        // values is fingerprinted once per `fit`; one chain of multiplies would be 8x
        // slower), folded into one at the end.
        let mut lanes = [acc; 8];
        let mut chunks = values.chunks_exact(8);
        for c in &mut chunks {
            for (lane, v) in lanes.iter_mut().zip(c) {
                *lane = lane.word(v.to_f64().map_or(0, f64::to_bits));
            }
        }
        let mut acc = lanes.iter().fold(acc, |a, l| a.word(l.0));
        for v in chunks.remainder() {
            acc = acc.word(v.to_f64().map_or(0, f64::to_bits));
        }
        acc
    }

    /// The fingerprint.
    pub fn value(self) -> u64 {
        self.0
    }
}

/// One flat buffer that tensors are packed into for a collective and unpacked from after
/// it, kept between calls so that a training step allocates nothing: one collective per
/// step, however many tensors.
#[derive(Debug, Default)]
pub(crate) struct Flat<T> {
    buf: Vec<T>,
}

impl<T: Element> Flat<T> {
    /// Fills the buffer with `scale` times each tensor's values, in order.
    pub fn pack<'a>(&mut self, tensors: impl IntoIterator<Item = &'a Tensor<T>>, scale: T) {
        self.buf.clear();
        for t in tensors {
            let contiguous;
            let values = match t.as_slice() {
                Some(v) => v,
                None => {
                    contiguous = t.to_contiguous();
                    contiguous.as_slice().expect("contiguous")
                }
            };
            if scale == T::one() {
                self.buf.extend_from_slice(values);
            } else {
                self.buf.extend(values.iter().map(|&v| v * scale));
            }
        }
    }

    /// Sums the buffer over the ranks.
    pub fn all_sum(&mut self, comm: &dyn Communicator) -> Result<()> {
        all_sum(comm, &mut self.buf)
    }

    /// Replaces the buffer by rank `root`'s.
    pub fn broadcast(&mut self, comm: &dyn Communicator, root: usize) -> Result<()> {
        broadcast(comm, &mut self.buf, root)
    }

    /// Writes the buffer back into the tensors it was packed from, in the same order.
    pub fn unpack<'a>(&self, tensors: impl IntoIterator<Item = &'a mut Tensor<T>>) {
        let mut at = 0;
        for t in tensors {
            let n = t.len();
            t.as_slice_mut().copy_from_slice(&self.buf[at..at + n]);
            at += n;
        }
        debug_assert_eq!(
            at,
            self.buf.len(),
            "unpacked into other tensors than packed"
        );
    }
}

/// Data-parallel training for a hand-written loop (`Tape::params_named`, `take_named`,
/// `Optimizer::step_map`, as in `examples/custom_loop.rs`), what `fit` does after
/// [`Sequential::distribute`](crate::Sequential::distribute): every rank starts from rank
/// 0's weights, steps on its share of each global batch, and applies the same update with
/// the gradients averaged over the global batch. Weights and gradients are addressed by
/// name; the ranks check once that they hold the same names and shapes, and each step
/// sums all gradients in one collective through one buffer reused between steps.
///
/// ```
/// use std::collections::BTreeMap;
/// use nn::distributed::{DataParallel, thread_group};
/// use tensor::Tensor;
/// // y = 3x, fitted by 2 ranks on the 4 rows of one global batch.
/// let x = Tensor::new(&[[1.0f64], [2.0], [3.0], [4.0]]).unwrap();
/// let ranks: Vec<_> = thread_group(2).unwrap().into_iter().map(|comm| {
///     let x = x.clone();
///     std::thread::spawn(move || {
///         let rank = comm.rank() as f64;
///         let mut dp = DataParallel::new(comm);
///         // Each rank made its own weights; all start from rank 0's.
///         let mut weights = BTreeMap::from([("w".to_string(), Tensor::full(&[1, 1], rank))]);
///         dp.broadcast_weights(&mut weights).unwrap();
///         for _ in 0..50 {
///             let (rows, share) = dp.shard(x.shape()[0]);
///             let xb = x.rows(rows);
///             let tape = autograd::Tape::new();
///             let w = tape.params_named(&weights);
///             let err = tape.constant(&xb).matmul(w["w"]) - tape.constant(&(&xb * 3.0));
///             let loss = (err.clone() * err).mean_all();
///             let mut grads = loss.backward().unwrap().take_named(&w).unwrap();
///             drop(tape);
///             dp.all_reduce_gradients(&mut grads, share).unwrap();
///             let g = grads["w"].item();
///             weights.get_mut("w").unwrap().as_slice_mut()[0] -= 0.05 * g;
///         }
///         weights["w"].item()
///     })
/// }).collect();
/// for r in ranks {
///     assert!((r.join().unwrap() - 3.0).abs() < 1e-6);
/// }
/// ```
pub struct DataParallel<T: Element = f32> {
    comm: Arc<dyn Communicator>,
    flat: Flat<T>,
    /// The fingerprint of the gradients' names and shapes the ranks agreed on.
    layout: Option<u64>,
}

impl<T: Element> DataParallel<T> {
    /// Data-parallel steps over the ranks of `comm`.
    pub fn new(comm: Arc<dyn Communicator>) -> Self {
        DataParallel {
            comm,
            flat: Flat::default(),
            layout: None,
        }
    }

    /// The communicator, for other collectives (summing a loss over the ranks).
    pub fn communicator(&self) -> &Arc<dyn Communicator> {
        &self.comm
    }

    /// This rank's rows of a global batch of `batch` rows, and their fraction of it (the
    /// `share` to give [`all_reduce_gradients`](DataParallel::all_reduce_gradients)). A rank
    /// whose share is empty (fewer rows than ranks) gets the first row with share 0: it
    /// steps on it like the others, so that the collectives line up, and its gradients
    /// count for nothing.
    pub fn shard(&self, batch: usize) -> (std::ops::Range<usize>, f64) {
        let (from, to) = shard(0, batch, self.comm.rank(), self.comm.size());
        if from == to {
            return (0..batch.min(1), 0.0);
        }
        (from..to, (to - from) as f64 / batch as f64)
    }

    /// Gives every rank rank 0's weights (once, before training), after checking that the
    /// ranks hold the same names and shapes.
    ///
    /// # Errors
    /// On every rank, if the ranks' names or shapes differ, or the transport fails.
    pub fn broadcast_weights(&mut self, weights: &mut BTreeMap<String, Tensor<T>>) -> Result<()> {
        self.agree("broadcast_weights", weights)?;
        self.flat.pack(weights.values(), T::one());
        self.flat.broadcast(self.comm.as_ref(), 0)?;
        self.flat.unpack(weights.values_mut());
        Ok(())
    }

    /// Replaces each gradient by the mean over the global batch: the sum over the ranks of
    /// `share` times each rank's (its gradient being the mean over its rows, and `share`
    /// its rows' fraction of the global batch, from [`shard`](DataParallel::shard)). The
    /// same on every rank, to the bit.
    ///
    /// # Errors
    /// On every rank, at the first call, if the ranks' gradient names or shapes differ; at
    /// a later call, on this rank, if its names or shapes changed (the other ranks are then
    /// left waiting, so the job must end: `brick_mpi::run` aborts it); if the transport
    /// fails.
    pub fn all_reduce_gradients(
        &mut self,
        grads: &mut BTreeMap<String, Tensor<T>>,
        share: f64,
    ) -> Result<()> {
        if !(0.0..=1.0).contains(&share) {
            return Err(Error::config(
                "all_reduce_gradients",
                format!("share must be in [0, 1] (this rank's fraction of the batch), got {share}"),
            ));
        }
        match self.layout {
            None => self.layout = Some(self.agree("all_reduce_gradients", grads)?),
            Some(agreed) if agreed != layout(grads) => {
                return Err(Error::config(
                    "all_reduce_gradients",
                    format!(
                        "rank {}'s gradients changed names or shapes since the ranks agreed on \
                         them; every step must reduce the same set",
                        self.comm.rank()
                    ),
                ));
            }
            Some(_) => {}
        }
        let share = T::from_f64(share).expect("a share in [0, 1]");
        self.flat.pack(grads.values(), share);
        self.flat.all_sum(self.comm.as_ref())?;
        self.flat.unpack(grads.values_mut());
        Ok(())
    }

    /// Checks that every rank holds tensors of the same names and shapes; their fingerprint.
    fn agree(&self, op: &str, tensors: &BTreeMap<String, Tensor<T>>) -> Result<u64> {
        let mine = layout(tensors);
        let all = self.comm.all_gather_u64(&[mine])?;
        let differ: Vec<usize> = (1..all.len()).filter(|&r| all[r] != all[0]).collect();
        if !differ.is_empty() {
            let names: Vec<String> = tensors
                .iter()
                .map(|(n, t)| format!("{n} {:?}", t.shape()))
                .collect();
            return Err(Error::config(
                op,
                format!(
                    "the ranks disagree: the names or shapes of rank(s) {differ:?} differ from \
                     rank 0's (this rank, {}, has {})",
                    self.comm.rank(),
                    names.join(", ")
                ),
            ));
        }
        Ok(mine)
    }
}

/// A fingerprint of the names and shapes of some named tensors.
fn layout<T: Element>(tensors: &BTreeMap<String, Tensor<T>>) -> u64 {
    let mut fp = Fingerprint::default().word(tensors.len() as u64);
    for (name, t) in tensors {
        fp = fp.str(name).word(t.ndim() as u64);
        for &d in t.shape() {
            fp = fp.word(d as u64);
        }
    }
    fp.value()
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
