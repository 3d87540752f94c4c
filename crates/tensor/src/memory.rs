//! How freed tensor memory goes back to the system allocator, and how a fresh output is
//! written once without being zeroed first ([`write_once`]).
//!
//! A training step allocates and frees the same large buffers every time (a convolution's
//! activations and their gradients are megabytes each). glibc's `malloc` serves buffers above
//! its `mmap` threshold with a fresh `mmap` and gives them back with `munmap`, and it trims the
//! top of its heap when more than 128 KiB there is free: either way the next step touches
//! fresh pages, one page fault per 4 KiB. The keras.io convnet took 1.5 million page faults in
//! 4 epochs of 8,000 digits, 30% of its time. [`keep_freed_memory`] raises both thresholds,
//! once per process, so that the memory is reused instead (what `MALLOC_MMAP_THRESHOLD_` and
//! `MALLOC_TRIM_THRESHOLD_` would do if set before the program starts). The resident memory
//! stays at the peak the process reached, which it reaches anyway. `BRICK_KEEP_MEMORY=0`
//! leaves the allocator as it is.

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use crate::element::Element;

/// An element of an output: an initialized `T`, or a `MaybeUninit<T>` of a fresh output that
/// is written without being read (a product with `beta == 0`, [`write_once`]). Both have
/// `T`'s layout, so one loop, generic over the two, serves both.
pub trait Out<T>: Send {
    /// Writes the element.
    fn set(&mut self, v: T);
    /// Reads the element.
    ///
    /// # Safety
    /// The element is initialized.
    unsafe fn get(&self) -> T;
}

impl<T: Element> Out<T> for T {
    #[inline(always)]
    fn set(&mut self, v: T) {
        *self = v;
    }
    #[inline(always)]
    unsafe fn get(&self) -> T {
        *self
    }
}

impl<T: Element> Out<T> for MaybeUninit<T> {
    #[inline(always)]
    fn set(&mut self, v: T) {
        self.write(v);
    }
    #[inline(always)]
    unsafe fn get(&self) -> T {
        // SAFETY: the caller guarantees the element is initialized.
        unsafe { self.assume_init() }
    }
}

/// A vector of `n` elements written by `write`, which gets them uninitialized: an
/// element-wise op's output written once, with no zero-fill pass before (for a 256 KiB
/// activation that pass costs about as much as the op's own loop). Write the elements with
/// `MaybeUninit::write` in a plain zipped loop, inside `simd::dispatch`, and it vectorizes.
///
/// ```
/// let x = [1.0f32, 2.0, 3.0];
/// // SAFETY: the zipped loop writes every one of the 3 elements.
/// let doubled = unsafe {
///     tensor::memory::write_once(x.len(), |out| {
///         for (o, &v) in out.iter_mut().zip(&x) {
///             o.write(2.0 * v);
///         }
///     })
/// };
/// assert_eq!(doubled, [2.0, 4.0, 6.0]);
/// ```
///
/// # Safety
/// `write` must initialize every element of the slice it is given. (If it panics, the
/// vector is dropped with length 0: nothing uninitialized is ever read.)
pub unsafe fn write_once<T>(n: usize, write: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut out = Vec::with_capacity(n);
    write(&mut out.spare_capacity_mut()[..n]);
    // SAFETY: the first `n` elements of the capacity are initialized (the caller's
    // guarantee), and `n` is within the capacity.
    unsafe { out.set_len(n) };
    out
}

/// Buffers up to this size come from the heap: 32 MiB, the largest glibc accepts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;
/// The heap's free top is returned to the system only beyond this (1 GiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Tunes the system allocator to keep freed memory for reuse (see the module's doc), once
/// per process; `tensor::parallel::install` (and so `fit`) calls it. Returns whether the
/// allocator was tuned: `false` where it is not glibc's, or with `BRICK_KEEP_MEMORY=0`.
///
/// ```
/// let tuned = tensor::memory::keep_freed_memory();
/// assert_eq!(tuned, tensor::memory::keep_freed_memory()); // once: the same answer after
/// ```
pub fn keep_freed_memory() -> bool {
    static TUNED: OnceLock<bool> = OnceLock::new();
    *TUNED.get_or_init(|| {
        if std::env::var("BRICK_KEEP_MEMORY").is_ok_and(|v| v == "0") {
            return false;
        }
        tune()
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune() -> bool {
    // glibc's <malloc.h>: `int mallopt(int param, int value)`; the parameters' numbers.
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: `mallopt` is declared with glibc's signature (C `int` is `i32` on every Linux
    // target), and this cfg only builds against glibc, which defines it. It takes the
    // allocator's lock itself, so calling it while other threads allocate is allowed, and it
    // has no pointer arguments or other preconditions: it returns 0 for a value it rejects.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_accepts_the_thresholds() {
        // Calls `mallopt` (the unsafe block) directly, whatever the environment says.
        let tuned = super::tune();
        assert_eq!(tuned, cfg!(all(target_os = "linux", target_env = "gnu")));
        // Memory allocated and freed afterwards is still usable.
        let v = vec![1.0f32; 4 << 20];
        assert_eq!(v.iter().sum::<f32>(), (4 << 20) as f32);
    }
}
