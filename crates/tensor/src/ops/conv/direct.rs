//! Direct loops for the two matrix products of a convolution whose patch rows are short
//! (`kh * kw * c_in` of a few elements: a 3x3 kernel over one channel reads 9).
//!
//! The general path multiplies a chunk's patches by the kernel with the GEMM, which is fast
//! when the shared dimension is long. With a patch row of 9 it is not: the GEMM packs and
//! blocks for a depth of 9 and reaches a quarter of its rate. Here the products are written
//! out instead, so that the accumulators stay in registers for the whole loop: the output
//! of a group of positions in the forward product, the kernel gradient of a group of patch
//! columns in the gradient's. They compute the same products as [`gemm_serial`]
//! (`crate::ops::matmul`), to rounding: both sum in order over the shared dimension, with
//! fused multiply-adds.
//!
//! They need the fused multiply-add in hardware ([`usable`]); without it, the GEMM path
//! runs.

use crate::element::Element;
use crate::simd::{self, Level};

/// The longest patch row the direct loops are used for. Measured on the convnet's layers
/// (`examples/bench --bench conv_kernels`): at 9 they run at 2-3 times the GEMM's rate on
/// the same product; the GEMM's packing pays for itself as the row grows.
pub(super) const MAX_ROW: usize = 32;

/// Channels per block: 16 `f32` are one AVX-512 vector. A block's width is known at compile
/// time, so its accumulators are whole vectors in registers.
const LANES: usize = 16;

/// Output positions computed together in [`product`]: 8 independent accumulators hide the
/// latency of the multiply-add.
const POSITIONS: usize = 8;

/// Whether the direct loops run for a patch row of `row` elements on this processor.
pub(super) fn usable(row: usize) -> bool {
    #[cfg(test)]
    if GEMM_ONLY.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    row <= MAX_ROW && simd::level() != Level::Baseline
}

/// Set by [`on_both_paths`]: the convolutions take the GEMM path whatever their row.
#[cfg(test)]
static GEMM_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs `f` twice, with the direct loops and then with the GEMM path only, so that a test
/// of the convolutions covers both. Tests running beside it may take either path meanwhile,
/// which they compute alike.
#[cfg(test)]
pub(super) fn on_both_paths(mut f: impl FnMut()) {
    use std::sync::atomic::Ordering::Relaxed;
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            GEMM_ONLY.store(false, Relaxed);
        }
    }
    let _reset = Reset;
    f();
    GEMM_ONLY.store(true, Relaxed);
    f();
}

/// `out = patches @ kernel + bias`: `patches` is `rows x row`, `kernel` `row x c_out`,
/// `out` `rows x c_out` (every element written).
pub(super) fn product<T: Element>(
    patches: &[T],
    kernel: &[T],
    bias: Option<&[T]>,
    row: usize,
    out: &mut [T],
) {
    let c_out = kernel.len() / row.max(1);
    if c_out == 0 {
        return;
    }
    let rows = out.len() / c_out;
    let whole = c_out - c_out % LANES;
    // What makes the unchecked reads below sound: every index is below `rows * row`.
    assert!(
        rows.checked_mul(row).is_some_and(|n| n <= patches.len()),
        "a patch row per output row"
    );
    simd::dispatch(
        #[inline(always)]
        || {
            for o in (0..whole).step_by(LANES) {
                let start: [T; LANES] = match bias {
                    Some(b) => b[o..o + LANES].try_into().expect("LANES elements"),
                    None => [T::zero(); LANES],
                };
                let mut first = 0;
                while first + POSITIONS <= rows {
                    let mut acc = [start; POSITIONS];
                    for r in 0..row {
                        let k: &[T; LANES] = kernel[r * c_out + o..r * c_out + o + LANES]
                            .try_into()
                            .expect("LANES elements");
                        for (j, acc) in acc.iter_mut().enumerate() {
                            // SAFETY: `first + j < first + POSITIONS <= rows` and `r < row`,
                            // so the index is below `rows * row`, which the assertion
                            // before the loops checked is within `patches`.
                            let p = unsafe { *patches.get_unchecked((first + j) * row + r) };
                            for (a, &k) in acc.iter_mut().zip(k) {
                                *a = p.mul_add(k, *a);
                            }
                        }
                    }
                    for (j, acc) in acc.iter().enumerate() {
                        let at = (first + j) * c_out + o;
                        out[at..at + LANES].copy_from_slice(acc);
                    }
                    first += POSITIONS;
                }
                for pos in first..rows {
                    let mut acc = start;
                    for r in 0..row {
                        let p = patches[pos * row + r];
                        let k = &kernel[r * c_out + o..r * c_out + o + LANES];
                        for (a, &k) in acc.iter_mut().zip(k) {
                            *a = p.mul_add(k, *a);
                        }
                    }
                    out[pos * c_out + o..pos * c_out + o + LANES].copy_from_slice(&acc);
                }
            }
            // The channels after the last whole block, one at a time.
            for pos in 0..rows {
                let patch = &patches[pos * row..(pos + 1) * row];
                for c in whole..c_out {
                    let mut a = bias.map_or(T::zero(), |b| b[c]);
                    for (r, &p) in patch.iter().enumerate() {
                        a = p.mul_add(kernel[r * c_out + c], a);
                    }
                    out[pos * c_out + c] = a;
                }
            }
        },
    );
}

/// `acc += patches^T @ grad`: `patches` is `rows x row`, `grad` `rows x c_out`, `acc`
/// `row x c_out` (a kernel's gradient, summed over the rows in order).
pub(super) fn kernel_grad<T: Element>(patches: &[T], grad: &[T], row: usize, acc: &mut [T]) {
    let c_out = acc.len() / row.max(1);
    if c_out == 0 {
        return;
    }
    let rows = grad.len() / c_out;
    let mut r = 0;
    // Up to 9 patch columns at a time: their accumulators (9 vectors per block of
    // channels) stay in registers over every row.
    while r < row {
        match row - r {
            1 => columns::<T, 1>(patches, grad, row, r, rows, acc),
            2 => columns::<T, 2>(patches, grad, row, r, rows, acc),
            3 => columns::<T, 3>(patches, grad, row, r, rows, acc),
            4 => columns::<T, 4>(patches, grad, row, r, rows, acc),
            5 => columns::<T, 5>(patches, grad, row, r, rows, acc),
            6 => columns::<T, 6>(patches, grad, row, r, rows, acc),
            7 => columns::<T, 7>(patches, grad, row, r, rows, acc),
            8 => columns::<T, 8>(patches, grad, row, r, rows, acc),
            _ => columns::<T, 9>(patches, grad, row, r, rows, acc),
        }
        r += (row - r).min(9);
    }
}

/// [`kernel_grad`] for the `R` patch columns from `r`.
fn columns<T: Element, const R: usize>(
    patches: &[T],
    grad: &[T],
    row: usize,
    r: usize,
    rows: usize,
    acc: &mut [T],
) {
    let c_out = acc.len() / row;
    let whole = c_out - c_out % LANES;
    simd::dispatch(
        #[inline(always)]
        || {
            for o in (0..whole).step_by(LANES) {
                let mut sums = [[T::zero(); LANES]; R];
                for (i, s) in sums.iter_mut().enumerate() {
                    s.copy_from_slice(&acc[(r + i) * c_out + o..(r + i) * c_out + o + LANES]);
                }
                for pos in 0..rows {
                    let g: &[T; LANES] = grad[pos * c_out + o..pos * c_out + o + LANES]
                        .try_into()
                        .expect("LANES elements");
                    let p: &[T; R] = patches[pos * row + r..pos * row + r + R]
                        .try_into()
                        .expect("R elements");
                    for (s, &p) in sums.iter_mut().zip(p) {
                        for (s, &g) in s.iter_mut().zip(g) {
                            *s = p.mul_add(g, *s);
                        }
                    }
                }
                for (i, s) in sums.iter().enumerate() {
                    acc[(r + i) * c_out + o..(r + i) * c_out + o + LANES].copy_from_slice(s);
                }
            }
            for c in whole..c_out {
                for i in 0..R {
                    let mut s = acc[(r + i) * c_out + c];
                    for pos in 0..rows {
                        s = patches[pos * row + r + i].mul_add(grad[pos * c_out + c], s);
                    }
                    acc[(r + i) * c_out + c] = s;
                }
            }
        },
    );
}

/// A max pooling without padding over a convolution's output, as
/// [`pooled_kernel_grad`] walks it: windows of `size` (taps `dilation` apart), `strides`
/// apart, over an output of `conv` positions, giving `pooled` positions.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pooling {
    pub size: [usize; 2],
    pub strides: [usize; 2],
    pub dilation: [usize; 2],
    pub conv: [usize; 2],
    pub pooled: [usize; 2],
}

/// The kernel gradient `acc += patches^T @ dz`, where `dz` is the pooled gradient `gz`
/// (`images x pooled x c_out`, already through the activation's derivative) routed back
/// through a max pooling of the convolution's output to each window's winner, per channel:
/// `winners` holds, for each element of `gz`, its winner's position in the image's output
/// plane (`oy * ow + ox`, as [`MaxPoolIndices`](super::MaxPoolIndices) does).
///
/// `dz` is never formed: for each tap of a window, the gradient of the channels it won
/// (the others masked to zero) multiplies the tap's patch row, so the pass reads the
/// patches, the winners and `gz` once per block of channels and writes nothing but the
/// sums.
#[allow(clippy::too_many_arguments)]
pub(super) fn pooled_kernel_grad<T: Element>(
    patches: &[T],
    winners: &[u32],
    gz: &[T],
    images: usize,
    pooling: &Pooling,
    row: usize,
    acc: &mut [T],
) {
    let c_out = acc.len() / row.max(1);
    if c_out == 0 {
        return;
    }
    let walk = Walk {
        patches,
        winners,
        gz,
        images,
        pooling: *pooling,
        row,
        c_out,
    };
    let mut r = 0;
    while r < row {
        match row - r {
            1 => walk.columns::<1>(r, acc),
            2 => walk.columns::<2>(r, acc),
            3 => walk.columns::<3>(r, acc),
            4 => walk.columns::<4>(r, acc),
            5 => walk.columns::<5>(r, acc),
            6 => walk.columns::<6>(r, acc),
            7 => walk.columns::<7>(r, acc),
            8 => walk.columns::<8>(r, acc),
            _ => walk.columns::<9>(r, acc),
        }
        r += (row - r).min(9);
    }
}

/// The operands of [`pooled_kernel_grad`], walked one group of patch columns at a time.
struct Walk<'a, T> {
    patches: &'a [T],
    winners: &'a [u32],
    gz: &'a [T],
    images: usize,
    pooling: Pooling,
    row: usize,
    c_out: usize,
}

/// For every window of `pooling` over `images` images, in the order of the pooled
/// positions: the output position of its first tap, counted from the first image, and the
/// position of its image's first output. A list made once per call (a few thousand
/// entries), so that the loops over windows carry no index arithmetic.
fn bases(images: usize, pooling: &Pooling) -> Vec<(usize, usize)> {
    let ([sy, sx], [oh, ow], [ph, pw]) = (pooling.strides, pooling.conv, pooling.pooled);
    let mut out = Vec::with_capacity(images * ph * pw);
    for i in 0..images {
        for py in 0..ph {
            for px in 0..pw {
                out.push(((i * oh + py * sy) * ow + px * sx, i * oh * ow));
            }
        }
    }
    out
}

impl<T: Element> Walk<'_, T> {
    /// The kernel gradient's patch columns `r..r + R`.
    ///
    /// The windows are walked with plain loops in this one function, the sums a local
    /// array: behind a closure, or beside a list of taps in memory, the compiler kept the
    /// sums in memory rather than in registers, at a third of the speed.
    fn columns<const R: usize>(&self, r: usize, acc: &mut [T]) {
        let (c_out, row) = (self.c_out, self.row);
        let whole = c_out - c_out % LANES;
        let (winners, gz, patches) = (self.winners, self.gz, self.patches);
        let Pooling {
            size: [kh, kw],
            dilation: [dy, dx],
            conv: [_, ow],
            ..
        } = self.pooling;
        let bases = bases(self.images, &self.pooling);
        simd::dispatch(
            #[inline(always)]
            || {
                for o in (0..whole).step_by(LANES) {
                    let mut sums = [[T::zero(); LANES]; R];
                    for (i, s) in sums.iter_mut().enumerate() {
                        let at = (r + i) * c_out + o;
                        s.copy_from_slice(&acc[at..at + LANES]);
                    }
                    for (q, &(base, first)) in bases.iter().enumerate() {
                        let at = q * c_out + o;
                        let g: [T; LANES] = gz[at..at + LANES].try_into().expect("LANES elements");
                        let w: [u32; LANES] =
                            winners[at..at + LANES].try_into().expect("LANES elements");
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let pos = base + ky * dy * ow + kx * dx;
                                let tap = (pos - first) as u32;
                                let mut m = [T::zero(); LANES];
                                for ((m, &w), &g) in m.iter_mut().zip(&w).zip(&g) {
                                    *m = if w == tap { g } else { T::zero() };
                                }
                                let p: [T; R] = patches[pos * row + r..pos * row + r + R]
                                    .try_into()
                                    .expect("R elements");
                                for (s, p) in sums.iter_mut().zip(p) {
                                    for (s, &m) in s.iter_mut().zip(&m) {
                                        *s = p.mul_add(m, *s);
                                    }
                                }
                            }
                        }
                    }
                    for (i, s) in sums.iter().enumerate() {
                        let at = (r + i) * c_out + o;
                        acc[at..at + LANES].copy_from_slice(s);
                    }
                }
                // The channels after the last whole block, one at a time.
                for c in whole..c_out {
                    for (q, &(_, first)) in bases.iter().enumerate() {
                        let win = first + winners[q * c_out + c] as usize;
                        let g = gz[q * c_out + c];
                        for i in 0..R {
                            let at = (r + i) * c_out + c;
                            acc[at] = patches[win * row + r + i].mul_add(g, acc[at]);
                        }
                    }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;
    use crate::random::seeded;

    fn random(n: usize, rng: &mut rand::rngs::StdRng) -> Vec<f64> {
        Tensor::<f64>::rand_uniform(&[n], -1.0, 1.0, rng).to_vec()
    }

    /// Both loops against the products written plainly, in f64 and f32, for shapes that
    /// exercise whole blocks, the remainder channels, the remainder positions and every
    /// width of a column group (rows of 1 to 20).
    #[test]
    fn direct_products_are_the_products() {
        let mut rng = seeded(7);
        for (rows, row, c_out) in [
            (13, 9, 32),
            (8, 1, 16),
            (17, 20, 35),
            (3, 4, 7),
            (0, 9, 32),
            (21, 18, 48),
        ] {
            let patches = random(rows * row, &mut rng);
            let kernel = random(row * c_out, &mut rng);
            let bias = random(c_out, &mut rng);
            let grad = random(rows * c_out, &mut rng);
            let start = random(row * c_out, &mut rng);
            let mut want = vec![0.0; rows * c_out];
            for p in 0..rows {
                for c in 0..c_out {
                    want[p * c_out + c] = bias[c]
                        + (0..row)
                            .map(|r| patches[p * row + r] * kernel[r * c_out + c])
                            .sum::<f64>();
                }
            }
            let mut want_dk = start.clone();
            for r in 0..row {
                for c in 0..c_out {
                    want_dk[r * c_out + c] += (0..rows)
                        .map(|p| patches[p * row + r] * grad[p * c_out + c])
                        .sum::<f64>();
                }
            }
            let close = |got: &[f64], want: &[f64], tol: f64| {
                assert_eq!(got.len(), want.len());
                for (i, (g, w)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (g - w).abs() <= tol,
                        "{rows}x{row}x{c_out} at {i}: {g} vs {w}"
                    );
                }
            };
            let mut out = vec![f64::NAN; rows * c_out];
            product(&patches, &kernel, Some(&bias), row, &mut out);
            close(&out, &want, 1e-12);
            let mut dk = start.clone();
            kernel_grad(&patches, &grad, row, &mut dk);
            close(&dk, &want_dk, 1e-12);

            let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            let back = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
            let mut out32 = vec![f32::NAN; rows * c_out];
            product(&f(&patches), &f(&kernel), Some(&f(&bias)), row, &mut out32);
            close(&back(&out32), &want, 1e-5);
            let mut dk32 = f(&start);
            kernel_grad(&f(&patches), &f(&grad), row, &mut dk32);
            close(&back(&dk32), &want_dk, 1e-5);
        }
    }
}
