//! The gradients of a max-pooled convolution from its winners: the kernel's and the
//! input's, for a gradient that reaches the convolution's output only at each pooling
//! window's winner.
//!
//! Through a max pooling, the convolution's output gradient is zero but at one position per
//! window and channel (for the convnet's 2x2 pooling, at a quarter of the positions, fewer
//! still where the activation passed nothing). The dense products multiply those zeros
//! too; here each nonzero gradient `g` at winner `w` of channel `c` adds `g` times the
//! patch row at `w` into the kernel's column `c` (the kernel gradient), or `g` times the
//! kernel's column `c` into the input pixels that patch reads (the input gradient), a few
//! runs of contiguous elements straight from (or into) the image, with no patches built.
//! Where every patch is the first one moved (no window reaches into padding), the sums for
//! one channel's winners (kernel gradient) or one position's (input gradient) are made in
//! registers, blocks of up to 8 vectors at a time, and stored once; elsewhere each winner's
//! runs are added into memory. The same sums as the dense products', less the zero terms,
//! in another order.

use crate::element::Element;
use crate::simd;

/// Elements per block: 16 `f32` are one AVX-512 vector.
const LANES: usize = 16;

/// A run of one output position's patch: `len` patch elements from `patch` (counted from
/// the position's patch row) read the `len` image elements from `image` (counted from the
/// image's first element).
#[derive(Clone, Copy, Debug)]
pub(super) struct Run {
    pub patch: usize,
    pub image: usize,
    pub len: usize,
}

/// The runs of every output position's patch, made once per call from the convolution's
/// geometry (a few hundred entries for the convnet's layers).
pub(super) struct RunTable {
    runs: Vec<Run>,
    starts: Vec<usize>,
    /// Where every patch is the first one moved (no window reaches into padding): each
    /// position's offset in the image from the first position's.
    shifts: Option<Vec<usize>>,
}

impl RunTable {
    /// The table of `positions` output positions, `runs_of(position, runs)` pushing the
    /// runs of each.
    pub fn new(positions: usize, mut runs_of: impl FnMut(usize, &mut Vec<Run>)) -> Self {
        let mut runs = Vec::new();
        let mut starts = Vec::with_capacity(positions + 1);
        starts.push(0);
        for p in 0..positions {
            runs_of(p, &mut runs);
            starts.push(runs.len());
        }
        let mut table = RunTable {
            runs,
            starts,
            shifts: None,
        };
        table.shifts = table.find_shifts(positions);
        table
    }

    /// Each position's shift from the first, if every patch's runs are the first's moved.
    fn find_shifts(&self, positions: usize) -> Option<Vec<usize>> {
        let first = self.of(0);
        let mut shifts = Vec::with_capacity(positions);
        for p in 0..positions {
            let runs = self.of(p);
            if runs.len() != first.len() || runs.is_empty() {
                return None;
            }
            let shift = runs[0].image.checked_sub(first[0].image)?;
            let moved = runs
                .iter()
                .zip(first)
                .all(|(r, f)| r.patch == f.patch && r.len == f.len && r.image == f.image + shift);
            if !moved {
                return None;
            }
            shifts.push(shift);
        }
        Some(shifts)
    }

    /// Whether some patch run is at least a vector long, so that the winners' loops here
    /// run on whole vectors; with shorter runs (a few input channels) they are scalar, and
    /// the dense products are faster.
    pub fn vector_runs(&self) -> bool {
        self.runs.iter().any(|r| r.len >= LANES)
    }

    /// The runs of output position `p` (`oy * ow + ox`).
    #[inline(always)]
    fn of(&self, p: usize) -> &[Run] {
        &self.runs[self.starts[p]..self.starts[p + 1]]
    }
}

/// What the two gradients read of a chunk of images: each pooled element's gradient `gz`
/// (through the activation's derivative) and its winner's output position, both
/// `images x pooled x c_out`.
#[derive(Clone, Copy)]
pub(super) struct Winners<'a, T> {
    pub gz: &'a [T],
    pub at: &'a [u32],
    /// Pooled positions per image.
    pub pooled: usize,
    pub c_out: usize,
}

impl<T: Element> Winners<'_, T> {
    /// Calls `f(i, c, g, position)` for each nonzero gradient of the chunk's image `i`, by
    /// channel `c` and then pooled position.
    #[inline(always)]
    fn for_each(&self, images: usize, mut f: impl FnMut(usize, usize, T, usize)) {
        let (pooled, c_out) = (self.pooled, self.c_out);
        for i in 0..images {
            let base = i * pooled * c_out;
            for c in 0..c_out {
                for q in 0..pooled {
                    let e = base + q * c_out + c;
                    let g = self.gz[e];
                    if g != T::zero() {
                        f(i, c, g, self.at[e] as usize);
                    }
                }
            }
        }
    }

    /// The gradient of the convolution's output these winners stand for, added into
    /// `dense` (`images x positions x c_out`, `positions` output positions per image).
    pub fn spread(&self, images: usize, positions: usize, dense: &mut [T]) {
        let c_out = self.c_out;
        self.for_each(images, |i, c, g, at| {
            dense[(i * positions + at) * c_out + c] += g;
        });
    }
}

/// `dst += g * src`, element by element: in whole blocks of [`LANES`] first, since a loop of
/// a length known only at run time leaves up to 63 elements to a scalar remainder loop
/// (for a run of 96, a third of it).
#[inline(always)]
fn axpy<T: Element>(g: T, src: &[T], dst: &mut [T]) {
    let n = dst.len().min(src.len());
    let whole = n - n % LANES;
    // Blocks copied in and out as arrays: with `chunks_exact` the compiler vectorized
    // across the blocks instead, one element of each per instruction.
    for o in (0..whole).step_by(LANES) {
        let s: [T; LANES] = src[o..o + LANES].try_into().expect("LANES elements");
        let d: &mut [T; LANES] = (&mut dst[o..o + LANES]).try_into().expect("LANES elements");
        let mut v = *d;
        for (v, s) in v.iter_mut().zip(s) {
            *v = s.mul_add(g, *v);
        }
        *d = v;
    }
    for (d, &s) in dst[whole..n].iter_mut().zip(&src[whole..n]) {
        *d = s.mul_add(g, *d);
    }
}

/// The kernel gradient, transposed: `kt` (`c_out x row`) gains, for each winner of the
/// chunk, `g` times its patch row, read from `images` (the chunk's input images,
/// `in_image` elements each). `row` is working space of one patch row.
pub(super) fn kernel_grad<T: Element>(
    images: &[T],
    in_image: usize,
    table: &RunTable,
    winners: &Winners<'_, T>,
    kt: &mut [T],
    row: &mut [T],
) {
    let n = images.len() / in_image.max(1);
    let width = row.len();
    if let Some(shifts) = &table.shifts {
        return kernel_grad_moved(images, in_image, table.of(0), shifts, winners, kt, width);
    }
    simd::dispatch(
        #[inline(always)]
        || {
            // Each channel's sum for one image is made in `row` (in cache), then added to
            // the kernel's column once.
            let mut open = None;
            winners.for_each(
                n,
                #[inline(always)]
                |i, c, g, at| {
                    if open != Some((i, c)) {
                        if let Some((_, c)) = open {
                            add(&mut kt[c * width..(c + 1) * width], row);
                        }
                        row.fill(T::zero());
                        open = Some((i, c));
                    }
                    let image = &images[i * in_image..(i + 1) * in_image];
                    for run in table.of(at) {
                        axpy(
                            g,
                            &image[run.image..run.image + run.len],
                            &mut row[run.patch..run.patch + run.len],
                        );
                    }
                },
            );
            if let Some((_, c)) = open {
                add(&mut kt[c * width..(c + 1) * width], row);
            }
        },
    );
}

/// `dst += src`, element by element.
#[inline(always)]
fn add<T: Element>(dst: &mut [T], src: &[T]) {
    axpy(T::one(), src, dst);
}

/// The input gradient of the chunk, added into `out` (its images, `in_image` elements
/// each): for each winner, `g` times the kernel's column `c` (row `c` of `kt`, the kernel
/// transposed, `c_out x row`) into the pixels its patch reads.
pub(super) fn input_grad<T: Element>(
    kt: &[T],
    in_image: usize,
    table: &RunTable,
    winners: &Winners<'_, T>,
    out: &mut [T],
) {
    let n = out.len() / in_image.max(1);
    let width = kt.len() / winners.c_out.max(1);
    if let Some(shifts) = &table.shifts {
        return input_grad_moved(kt, in_image, table.of(0), shifts, winners, out, width);
    }
    simd::dispatch(
        #[inline(always)]
        || {
            winners.for_each(
                n,
                #[inline(always)]
                |i, c, g, at| {
                    let k = &kt[c * width..(c + 1) * width];
                    let image = &mut out[i * in_image..(i + 1) * in_image];
                    for run in table.of(at) {
                        axpy(
                            g,
                            &k[run.patch..run.patch + run.len],
                            &mut image[run.image..run.image + run.len],
                        );
                    }
                },
            );
        },
    );
}

/// [`kernel_grad`] where every patch is the first moved (`pattern` its runs, `shifts` each
/// position's move): each channel's winners of an image are listed, and each block of the
/// kernel's column is summed over them in registers, then added to `kt` once, where the
/// general loop reads and writes a row in memory for every winner (on AMD EPYC, the stores
/// bound it, at a third of this speed).
fn kernel_grad_moved<T: Element>(
    images: &[T],
    in_image: usize,
    pattern: &[Run],
    shifts: &[usize],
    winners: &Winners<'_, T>,
    kt: &mut [T],
    width: usize,
) {
    let n = images.len() / in_image.max(1);
    let (pooled, c_out) = (winners.pooled, winners.c_out);
    let mut list: Vec<(T, usize)> = Vec::with_capacity(pooled);
    simd::dispatch(
        #[inline(always)]
        || {
            for i in 0..n {
                let image = &images[i * in_image..(i + 1) * in_image];
                let base = i * pooled * c_out;
                for c in 0..c_out {
                    list.clear();
                    for q in 0..pooled {
                        let e = base + q * c_out + c;
                        let g = winners.gz[e];
                        if g != T::zero() {
                            list.push((g, shifts[winners.at[e] as usize]));
                        }
                    }
                    if list.is_empty() {
                        continue;
                    }
                    let column = &mut kt[c * width..(c + 1) * width];
                    for run in pattern {
                        let dst = &mut column[run.patch..run.patch + run.len];
                        summed_blocks(&list, image, run.image, dst);
                    }
                }
            }
        },
    );
}

/// `dst[t] += sum over (g, shift) in list of g * src[shift + at + t]`, for every `t` of
/// `dst`: up to eight blocks of [`LANES`] at a time, their sums in registers (enough
/// independent sums to hide the multiply-add's latency; a run of 96 is one group of 6).
#[inline(always)]
fn summed_blocks<T: Element>(list: &[(T, usize)], src: &[T], at: usize, dst: &mut [T]) {
    let len = dst.len();
    let mut t = 0;
    while t + 8 * LANES <= len {
        block_sums::<T, 8>(list, src, at + t, &mut dst[t..t + 8 * LANES]);
        t += 8 * LANES;
    }
    let blocks = (len - t) / LANES;
    let d = &mut dst[t..t + blocks * LANES];
    match blocks {
        1 => block_sums::<T, 1>(list, src, at + t, d),
        2 => block_sums::<T, 2>(list, src, at + t, d),
        3 => block_sums::<T, 3>(list, src, at + t, d),
        4 => block_sums::<T, 4>(list, src, at + t, d),
        5 => block_sums::<T, 5>(list, src, at + t, d),
        6 => block_sums::<T, 6>(list, src, at + t, d),
        7 => block_sums::<T, 7>(list, src, at + t, d),
        _ => {}
    }
    t += blocks * LANES;
    for (t, d) in dst.iter_mut().enumerate().skip(t) {
        let mut sum = T::zero();
        for &(g, shift) in list {
            sum = src[shift + at + t].mul_add(g, sum);
        }
        *d += sum;
    }
}

/// [`summed_blocks`] for `B` whole blocks.
#[inline(always)]
fn block_sums<T: Element, const B: usize>(
    list: &[(T, usize)],
    src: &[T],
    at: usize,
    dst: &mut [T],
) {
    let mut sums = [[T::zero(); LANES]; B];
    for &(g, shift) in list {
        let from = shift + at;
        for (b, sum) in sums.iter_mut().enumerate() {
            let s: [T; LANES] = src[from + b * LANES..from + (b + 1) * LANES]
                .try_into()
                .expect("LANES elements");
            for (a, s) in sum.iter_mut().zip(s) {
                *a = s.mul_add(g, *a);
            }
        }
    }
    for (b, sum) in sums.iter().enumerate() {
        let d: &mut [T; LANES] = (&mut dst[b * LANES..(b + 1) * LANES])
            .try_into()
            .expect("LANES elements");
        let mut v = *d;
        for (v, s) in v.iter_mut().zip(sum) {
            *v += *s;
        }
        *d = v;
    }
}

/// [`input_grad`] where every patch is the first moved: an image's winners are sorted by
/// position, and each position's patch gradient (the kernel's columns of the channels it
/// won, times their gradients) is summed in registers and added into the image once,
/// rather than once per channel.
fn input_grad_moved<T: Element>(
    kt: &[T],
    in_image: usize,
    pattern: &[Run],
    shifts: &[usize],
    winners: &Winners<'_, T>,
    out: &mut [T],
    width: usize,
) {
    let n = out.len() / in_image.max(1);
    let (pooled, c_out) = (winners.pooled, winners.c_out);
    let positions = shifts.len();
    // By position: where its winners start in `list`, then each winner's gradient and
    // kernel column (as the offset of its row in `kt`).
    let mut starts = vec![0usize; positions + 1];
    let mut next = starts.clone();
    let mut list: Vec<(T, usize)> = vec![(T::zero(), 0); pooled * c_out];
    simd::dispatch(
        #[inline(always)]
        || {
            for i in 0..n {
                let base = i * pooled * c_out;
                let gz = &winners.gz[base..base + pooled * c_out];
                let at = &winners.at[base..base + pooled * c_out];
                starts.fill(0);
                for (&g, &a) in gz.iter().zip(at) {
                    if g != T::zero() {
                        starts[a as usize + 1] += 1;
                    }
                }
                for p in 0..positions {
                    starts[p + 1] += starts[p];
                }
                next.copy_from_slice(&starts);
                for (e, (&g, &a)) in gz.iter().zip(at).enumerate() {
                    if g != T::zero() {
                        let slot = &mut next[a as usize];
                        list[*slot] = (g, (e % c_out) * width);
                        *slot += 1;
                    }
                }
                let image = &mut out[i * in_image..(i + 1) * in_image];
                // Run by run: what one run reads of the kernel (for the convnet's second
                // layer, 64 channels of 96) stays in the L1 cache over the positions.
                for run in pattern {
                    for p in 0..positions {
                        let won = &list[starts[p]..starts[p + 1]];
                        if won.is_empty() {
                            continue;
                        }
                        let at = shifts[p] + run.image;
                        let dst = &mut image[at..at + run.len];
                        summed_blocks(won, kt, run.patch, dst);
                    }
                }
            }
        },
    );
}
