//! Single-precision GEMM for processors with AVX-512, for outputs narrower than the `gemm`
//! crate's 64-column register tiles (a classifier's output layer):
//! `c = alpha * a @ b + beta * c` on one thread, for a `c` whose rows are contiguous. (That
//! layer's weight gradient `h^T @ dz`, with 64 rows or more, goes to the crate as the wide
//! transposed product instead: see `kernel_gemm`.)
//!
//! The layout follows BLIS, cut down:
//! - a 12 x 32 register tile (24 accumulators of 16 lanes; 12 x 16 for a last panel of at
//!   most 16 columns): each step of `k` loads the panel's vectors of `b` and broadcasts
//!   twelve elements of `a`;
//! - `b` is packed one 32-column panel at a time (`k` at most [`KC`] deep, 32 KB, so the panel
//!   stays in L1 while every row tile of `a` passes over it);
//! - `a` is read in place through its strides, so a row-major batch `x` and a transposed view
//!   `x^T` both cost no copy;
//! - partial tiles: rows through a kernel compiled for that row count, columns through
//!   masked loads and stores (plain ones where the whole vector is inside the tile).

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Rows of `c` per register tile.
const MR: usize = 12;
/// Columns of `c` per register tile (two vectors of 16 lanes).
const NR: usize = 32;
/// Depth of `k` per packed panel: a `KC x NR` panel of `b` is 32 KB, within L1.
const KC: usize = 256;

/// A packed panel of `b`: `kc` rows of `NR` lanes, 64-byte aligned for vector loads. Left
/// uninitialized (a 32 KB memset per call would cost more than a small product): only the
/// rows [`pack_b`] has written are read.
#[repr(C, align(64))]
struct Panel([MaybeUninit<f32>; KC * NR]);

/// `c = alpha * a @ b + beta * c` with `a` `m x k`, `b` `k x n`, `c` `m x n`; strides in
/// elements. With `beta == 0`, `c` is written without being read.
///
/// # Safety
/// - the processor supports AVX-512F (checked by the caller with `is_x86_feature_detected!`);
/// - `a + i * rsa + p * csa` for `i < m`, `p < k` addresses readable `f32`s, likewise
///   `b + p * rsb + j * csb` for `p < k`, `j < n`;
/// - `c + i * rsc + j` for `i < m`, `j < n` addresses writable `f32`s (readable too if
///   `beta != 0`) that overlap neither `a` nor `b`, and distinct `(i, j)` address distinct
///   elements.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: *const f32,
    (rsa, csa): (isize, isize),
    b: *const f32,
    (rsb, csb): (isize, isize),
    beta: f32,
    c: *mut f32,
    rsc: isize,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // SAFETY: the caller's contract on `c`.
        unsafe { scale_c(m, n, beta, c, rsc) };
        return;
    }
    let mut panel = Panel([MaybeUninit::uninit(); KC * NR]);
    // Depth blocks of equal size (784 = 4 x 196, not 3 x 256 + 16).
    let blocks = k.div_ceil(KC);
    let depth = k.div_ceil(blocks);
    let mut p0 = 0;
    while p0 < k {
        let kc = depth.min(k - p0);
        // After the first block, later blocks accumulate onto `c`.
        let beta = if p0 == 0 { beta } else { 1.0 };
        let mut j0 = 0;
        while j0 < n {
            let cols = NR.min(n - j0);
            // One vector suffices for a narrow last panel (or a narrow `c`).
            let lanes = if cols <= 16 { 16 } else { NR };
            // SAFETY: rows p0..p0 + kc of `b` and columns j0..j0 + cols are within `k x n`.
            unsafe {
                pack_b(
                    kc,
                    cols,
                    lanes,
                    b.offset(p0 as isize * rsb + j0 as isize * csb),
                    (rsb, csb),
                    &mut panel.0,
                )
            };
            let mut i0 = 0;
            while i0 < m {
                let rows = MR.min(m - i0);
                // SAFETY: the tile's rows i0..i0 + rows, depth p0..p0 + kc and columns
                // j0..j0 + cols are within the operands the caller vouched for; the panel
                // holds kc rows of `lanes` packed values.
                unsafe {
                    tile(
                        rows,
                        lanes,
                        kc,
                        a.offset(i0 as isize * rsa + p0 as isize * csa),
                        (rsa, csa),
                        panel.0.as_ptr().cast::<f32>(),
                        c.offset(i0 as isize * rsc + j0 as isize),
                        rsc,
                        cols,
                        alpha,
                        beta,
                    )
                };
                i0 += rows;
            }
            j0 += cols;
        }
        p0 += kc;
    }
}

/// `c = beta * c` (the product of an empty inner dimension is zero).
///
/// # Safety
/// As [`sgemm`]'s contract on `c`.
unsafe fn scale_c(m: usize, n: usize, beta: f32, c: *mut f32, rsc: isize) {
    for i in 0..m {
        for j in 0..n {
            // SAFETY: (i, j) is within `c`; `c` is read only when beta is not zero.
            unsafe {
                let p = c.offset(i as isize * rsc + j as isize);
                *p = if beta == 0.0 { 0.0 } else { beta * *p };
            }
        }
    }
}

/// Copies `kc x cols` of `b` into the first `kc * lanes` values of `panel`, as `kc` rows of
/// `lanes` values, zero-padded: every value the kernel reads is initialized.
///
/// # Safety
/// `b + p * rsb + j * csb` for `p < kc`, `j < cols` must be readable; `kc <= KC`,
/// `cols <= lanes <= NR`.
#[inline]
unsafe fn pack_b(
    kc: usize,
    cols: usize,
    lanes: usize,
    b: *const f32,
    (rsb, csb): (isize, isize),
    panel: &mut [MaybeUninit<f32>; KC * NR],
) {
    debug_assert!(kc <= KC && cols <= lanes && lanes <= NR);
    for p in 0..kc {
        let row = &mut panel[p * lanes..(p + 1) * lanes];
        // SAFETY: row p of the block, columns below `cols`, per the contract.
        let src = unsafe { b.offset(p as isize * rsb) };
        if csb == 1 {
            // SAFETY: `cols` contiguous elements of row p (unit column stride) into `row`,
            // which has at least `cols` values and does not overlap `b`.
            unsafe { std::ptr::copy_nonoverlapping(src, row.as_mut_ptr().cast::<f32>(), cols) };
        } else {
            for (j, v) in row[..cols].iter_mut().enumerate() {
                // SAFETY: column j < cols of row p.
                v.write(unsafe { *src.offset(j as isize * csb) });
            }
        }
        for v in &mut row[cols..] {
            v.write(0.0);
        }
    }
}

/// One tile of `c`: `rows x cols` (`rows <= MR`, `cols <= lanes`), through the kernel
/// compiled for that row count and width.
///
/// # Safety
/// As [`kernel`].
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tile(
    rows: usize,
    lanes: usize,
    kc: usize,
    a: *const f32,
    sa: (isize, isize),
    panel: *const f32,
    c: *mut f32,
    rsc: isize,
    cols: usize,
    alpha: f32,
    beta: f32,
) {
    macro_rules! by_rows {
        ($v:literal) => {
            match rows {
                12 => kernel::<12, $v>(kc, a, sa, panel, c, rsc, cols, alpha, beta),
                11 => kernel::<11, $v>(kc, a, sa, panel, c, rsc, cols, alpha, beta),
                10 => kernel::<10, $v>(kc, a, sa, panel, c, rsc, cols, alpha, beta),
                9 => kernel::<9, $v>(kc, a, sa, panel, c, rsc, cols, alpha, beta),
                8 => kernel::<8, $v>(kc, a, sa, panel, c, rsc, cols, alpha, beta),
                7 => kernel::<7, $v>(kc, a, sa, panel, c, rsc, cols, alpha, beta),
                6 => kernel::<6, $v>(kc, a, sa, panel, c, rsc, cols, alpha, beta),
                5 => kernel::<5, $v>(kc, a, sa, panel, c, rsc, cols, alpha, beta),
                4 => kernel::<4, $v>(kc, a, sa, panel, c, rsc, cols, alpha, beta),
                3 => kernel::<3, $v>(kc, a, sa, panel, c, rsc, cols, alpha, beta),
                2 => kernel::<2, $v>(kc, a, sa, panel, c, rsc, cols, alpha, beta),
                1 => kernel::<1, $v>(kc, a, sa, panel, c, rsc, cols, alpha, beta),
                _ => unreachable!("a tile has 1 to {MR} rows"),
            }
        };
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        if lanes == 16 {
            by_rows!(1)
        } else {
            by_rows!(2)
        }
    }
}

/// The register tile: `R` rows by `V` vectors of 16 columns. Accumulates `a[R x kc] @
/// panel[kc x 16V]` in registers, then writes `alpha * acc + beta * c` to the first `cols`
/// columns of the tile (masked), reading `c` only if `beta != 0`.
///
/// # Safety
/// AVX-512F is available; `a + i * rsa + p * csa` is readable for `i < R`, `p < kc`;
/// `panel` holds `kc * 16V` values, 64-byte aligned; `c + i * rsc + j` is writable (and
/// readable if `beta != 0`) for `i < R`, `j < cols`; `cols <= 16V`.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const R: usize, const V: usize>(
    kc: usize,
    a: *const f32,
    (rsa, csa): (isize, isize),
    panel: *const f32,
    c: *mut f32,
    rsc: isize,
    cols: usize,
    alpha: f32,
    beta: f32,
) {
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    // Rows 4g..4g + 4 of the tile are read at offsets 0, rsa, 2 rsa, 3 rsa from base
    // pointer g: independent addresses (not one running pointer), and offsets that fit x86's
    // scaled addressing.
    let mut bases = [a; 3];
    for (g, base) in bases.iter_mut().enumerate() {
        // `wrapping_offset`: for a tile of fewer than 4g + 1 rows this base is never read.
        *base = a.wrapping_offset(4 * g as isize * rsa);
    }
    let mut bp = panel;
    for _ in 0..kc {
        // SAFETY: `bp` walks the panel's kc rows of 16V aligned values; row i < R of `a` is
        // read at column p < kc, within the bounds the caller gave.
        unsafe {
            let mut b = [_mm512_setzero_ps(); V];
            for (v, b) in b.iter_mut().enumerate() {
                *b = _mm512_load_ps(bp.add(16 * v));
            }
            for (i, acc) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*bases[i / 4].offset((i % 4) as isize * rsa));
                for v in 0..V {
                    acc[v] = _mm512_fmadd_ps(ai, b[v], acc[v]);
                }
            }
            for base in &mut bases {
                *base = base.wrapping_offset(csa);
            }
            bp = bp.add(16 * V);
        }
    }
    let alpha_v = _mm512_set1_ps(alpha);
    let beta_v = _mm512_set1_ps(beta);
    for v in 0..V {
        // Lanes of vector v that fall inside the tile's `cols` columns.
        let valid = cols.saturating_sub(16 * v).min(16);
        let mask: __mmask16 = if valid == 16 {
            0xffff
        } else {
            (1u16 << valid) - 1
        };
        for (i, acc) in acc.iter().enumerate() {
            // SAFETY: row i < R, and the lanes touched are columns below `cols` of `c` (all
            // 16 when the mask is full, else only the masked ones).
            unsafe {
                let cp = c.offset(i as isize * rsc + 16 * v as isize);
                let mut out = _mm512_mul_ps(acc[v], alpha_v);
                if valid == 16 {
                    // Plain loads and stores where the whole vector is inside the tile.
                    if beta != 0.0 {
                        out = _mm512_fmadd_ps(_mm512_loadu_ps(cp), beta_v, out);
                    }
                    _mm512_storeu_ps(cp, out);
                } else {
                    if beta != 0.0 {
                        out = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, cp), beta_v, out);
                    }
                    _mm512_mask_storeu_ps(cp, mask, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `alpha * a @ b + beta * c0` in f64, by the definition.
    fn naive(
        (m, k, n): (usize, usize, usize),
        alpha: f32,
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
        beta: f32,
        c0: &[f32],
    ) -> Vec<f64> {
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|p| a(i, p) as f64 * b(p, j) as f64).sum();
                c[i * n + j] = alpha as f64 * dot + beta as f64 * c0[i * n + j] as f64;
            }
        }
        c
    }

    /// Every tile shape: partial row tiles (1 to 11 rows), one- and two-vector panels with
    /// partial columns, depths of 0, 1 and more than one packed block, `a` row-major and
    /// transposed, `b` with a unit and a non-unit column stride, and `beta` zero (with `c`
    /// holding NaN, which must not be read) and non-zero.
    #[test]
    fn matches_the_definition_for_every_tile_shape() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("skipped: this processor has no AVX-512F");
            return;
        }
        let value = |x: usize, y: usize| ((x * 31 + y * 17) % 23) as f32 / 11.0 - 1.0;
        for (m, k, n) in [
            (1, 1, 1),
            (12, 5, 32),
            (13, 7, 10),
            (25, 300, 17),
            (7, 600, 63),
            (130, 64, 33),
            (3, 0, 9),
            (24, 513, 16),
        ] {
            for a_transposed in [false, true] {
                for b_transposed in [false, true] {
                    for (alpha, beta) in [(1.0f32, 0.0f32), (0.5, 2.0)] {
                        // Storage and strides: `a` is m x k, as [m][k] or transposed [k][m].
                        let a_store: Vec<f32> = (0..m * k)
                            .map(|i| value(i / k.max(1), i % k.max(1)))
                            .collect();
                        let at = |i: usize, p: usize| a_store[i * k + p];
                        let a_t: Vec<f32> = (0..k * m).map(|q| at(q % m, q / m)).collect();
                        let (a_ptr, sa) = if a_transposed {
                            (a_t.as_ptr(), (1, m as isize))
                        } else {
                            (a_store.as_ptr(), (k as isize, 1))
                        };
                        let b_store: Vec<f32> =
                            (0..k * n).map(|i| value(i % n + 5, i / n)).collect();
                        let bt = |p: usize, j: usize| b_store[p * n + j];
                        let b_t: Vec<f32> = (0..n * k).map(|q| bt(q % k, q / k)).collect();
                        let (b_ptr, sb) = if b_transposed {
                            (b_t.as_ptr(), (1, k as isize))
                        } else {
                            (b_store.as_ptr(), (n as isize, 1))
                        };
                        let c0: Vec<f32> = (0..m * n).map(|i| value(i, 3)).collect();
                        let mut c = if beta == 0.0 {
                            vec![f32::NAN; m * n]
                        } else {
                            c0.clone()
                        };
                        // SAFETY: AVX-512F was detected; the pointers and strides describe
                        // the vectors above, whose bounds they stay within; `c` is its own
                        // vector.
                        unsafe {
                            sgemm(
                                m,
                                n,
                                k,
                                alpha,
                                a_ptr,
                                sa,
                                b_ptr,
                                sb,
                                beta,
                                c.as_mut_ptr(),
                                n as isize,
                            )
                        };
                        let want = naive((m, k, n), alpha, at, bt, beta, &c0);
                        for (idx, (&got, &want)) in c.iter().zip(&want).enumerate() {
                            assert!(
                                (got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                "{m}x{k}x{n}, a^T {a_transposed}, b^T {b_transposed}, \
                                 alpha {alpha}, beta {beta}: c[{idx}] = {got}, want {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
