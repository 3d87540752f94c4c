//! Windows over channels-last batches `[b, h, w, c]`: 2-D convolution and its two gradients,
//! max pooling and its gradient, and the patches of a window (im2col) with their adjoint.
//!
//! A convolution is `patches(x) @ kernel`, one matrix product; [`Tensor::conv2d`] computes it
//! a few images at a time on the pool, so the patches of the whole batch never exist, and
//! its gradients ([`Tensor::conv2d_backprop_input`], [`Tensor::conv2d_backprop_kernel`]) are
//! computed the same way. [`fold_patches`](Tensor::fold_patches) sums patch gradients back
//! into an image (average pooling's gradient).
//!
//! A convolution followed by a max pooling ([`Tensor::conv2d_max_pool_with_indices`]) keeps
//! each window's winner, and its gradients ([`OutputGrad::MaxPooled`]) go from the winners
//! alone (`pooled.rs`); short patch rows (a 3x3 kernel on one channel) take the direct loops
//! of `direct.rs` instead of the GEMM.

mod direct;
mod pooled;

use std::ops::Range;

use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::ops::matmul::gemm_serial;
use crate::tensor::Tensor;

/// Keras's padding modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding: windows stay inside the image.
    Valid,
    /// Zeros around the image so that the output has `ceil(size / stride)` positions along
    /// each axis; an odd total puts the extra row or column at the bottom or right, as
    /// TensorFlow and Keras do.
    Same,
}

/// The geometry of a 2-D window over a channels-last image: window size, strides,
/// dilation and the padding it implies for an image size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Rows and columns of the window (Keras's `kernel_size` or `pool_size`).
    pub size: [usize; 2],
    /// How far the window moves between outputs, down and across.
    pub strides: [usize; 2],
    /// The spacing between the pixels the window reads (1: adjacent).
    pub dilation: [usize; 2],
    /// `valid` (no padding) or `same` (padded so that the output is `ceil(n / stride)`).
    pub padding: Padding,
}

/// How a 2-D convolution moves its kernel: Keras's `strides`, `padding` and
/// `dilation_rate` (defaults 1, `valid`, 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// How far the kernel moves between outputs, down and across (Keras's `strides`).
    pub strides: [usize; 2],
    /// `valid` or `same` (Keras's `padding`).
    pub padding: Padding,
    /// The spacing between the pixels the kernel reads (Keras's `dilation_rate`).
    pub dilation: [usize; 2],
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            strides: [1, 1],
            padding: Padding::Valid,
            dilation: [1, 1],
        }
    }
}

impl Conv2dOptions {
    /// The window of a kernel of `size` moved this way.
    pub fn window(&self, size: [usize; 2]) -> Window {
        Window {
            size,
            strides: self.strides,
            dilation: self.dilation,
            padding: self.padding,
        }
    }
}

/// A [`Window`] placed on an image of a given height and width: the zeros added on each
/// side and the output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Top, bottom, left, right.
    pub pad: [usize; 4],
    /// The output's rows and columns.
    pub out: [usize; 2],
}

/// For each element of a max pooling's output `[b, oh, ow, c]`, where its window's largest
/// element lies: the position `y * w + x` in its image's plane of the pooled input (the
/// first of equal ones), as PyTorch's `return_indices` gives it. What the pooling's
/// gradient routes through, kept from the forward pass so that the gradient need not find
/// the winners again (see [`Tensor::conv2d_max_pool_with_indices`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxPoolIndices {
    indices: Vec<u32>,
    shape: [usize; 4],
}

impl MaxPoolIndices {
    /// The pooled output's shape `[b, oh, ow, c]`.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The positions, in the pooled output's order.
    pub fn as_slice(&self) -> &[u32] {
        &self.indices
    }
}

impl Window {
    /// A window of `size` with strides 1, no dilation and `valid` padding.
    pub fn new(size: [usize; 2]) -> Self {
        Window {
            size,
            strides: [1, 1],
            dilation: [1, 1],
            padding: Padding::Valid,
        }
    }

    /// Where this window goes on an image of `[h, w]`.
    ///
    /// ```
    /// use tensor::ops::conv::{Padding, Window};
    /// let w = Window { padding: Padding::Same, strides: [2, 2], ..Window::new([3, 3]) };
    /// let p = w.place([5, 4], "conv2d").unwrap();
    /// assert_eq!(p.out, [3, 2]);
    /// assert_eq!(p.pad, [1, 1, 0, 1]);
    /// ```
    ///
    /// # Errors
    /// If a size, stride or dilation is 0, or a `valid` window is larger than the image.
    pub fn place(&self, image: [usize; 2], op: &'static str) -> Result<Placement> {
        let invalid = |message: String| TensorError::InvalidArgument { op, message };
        if self.size.contains(&0) || self.strides.contains(&0) || self.dilation.contains(&0) {
            return Err(invalid(format!(
                "window size {:?}, strides {:?} and dilation {:?} must all be at least 1",
                self.size, self.strides, self.dilation
            )));
        }
        let mut pad = [0; 4];
        let mut out = [0; 2];
        for a in 0..2 {
            let span = (self.size[a] - 1) * self.dilation[a] + 1;
            let (n, s) = (image[a], self.strides[a]);
            match self.padding {
                Padding::Valid => {
                    if span > n {
                        return Err(invalid(format!(
                            "a window spanning {span} (size {:?}, dilation {:?}) does not fit \
                             an image of {image:?} with valid padding",
                            self.size, self.dilation
                        )));
                    }
                    out[a] = (n - span) / s + 1;
                }
                Padding::Same => {
                    out[a] = n.div_ceil(s);
                    let total = ((out[a].max(1) - 1) * s + span).saturating_sub(n);
                    pad[2 * a] = total / 2;
                    pad[2 * a + 1] = total - total / 2;
                }
            }
        }
        Ok(Placement { pad, out })
    }
}

/// The input `[b, h, w, c]` of a window op, checked.
fn image_dims(op: &'static str, shape: &[usize]) -> Result<[usize; 4]> {
    match *shape {
        [b, h, w, c] => Ok([b, h, w, c]),
        _ => Err(TensorError::RankMismatch {
            op,
            expected: "4 dimensions [batch, height, width, channels]".into(),
            shape: shape.to_vec(),
        }),
    }
}

/// Calls `f(patch_offset, image_offset, len)` for every run of window elements of the
/// images `images` that lie inside the image: `len` consecutive patch elements from
/// `patch_offset` (counted from the first image of the range) read `len` consecutive
/// elements of the batch from `image_offset` (counted from the batch's start). Without
/// dilation a run is a whole window row, `kw * c` elements (fewer at a border); with
/// dilation, one pixel's `c` channels. Elements in padding are never visited.
#[inline(always)]
fn for_each_run(
    dims: [usize; 4],
    window: &Window,
    p: &Placement,
    images: Range<usize>,
    mut f: impl FnMut(usize, usize, usize),
) {
    let [_, h, w, c] = dims;
    let [oh, ow] = p.out;
    let row = window.size[0] * window.size[1] * c;
    for (i, n) in images.enumerate() {
        let image = n * h * w * c;
        for oy in 0..oh {
            for ox in 0..ow {
                let patch = ((i * oh + oy) * ow + ox) * row;
                position_runs(dims, window, p, [oy, ox], |dst, src, len| {
                    f(patch + dst, image + src, len)
                });
            }
        }
    }
}

/// [`for_each_run`] for the one output position `[oy, ox]`: `f(patch_offset, image_offset,
/// len)` with the patch offset counted from the position's patch row and the image offset
/// from its image's first element.
#[inline(always)]
fn position_runs(
    [_, h, w, c]: [usize; 4],
    window: &Window,
    p: &Placement,
    [oy, ox]: [usize; 2],
    mut f: impl FnMut(usize, usize, usize),
) {
    let [kh, kw] = window.size;
    let [sy, sx] = window.strides;
    let [dy, dx] = window.dilation;
    let (top, left) = (p.pad[0] as isize, p.pad[2] as isize);
    // The image column of window column 0, and the window columns inside the image:
    // lo..hi.
    let x0 = (ox * sx) as isize - left;
    let lo = if x0 >= 0 {
        0
    } else {
        x0.unsigned_abs().div_ceil(dx)
    };
    let hi = if x0 >= w as isize {
        0
    } else {
        ((w as isize - 1 - x0) as usize / dx + 1).min(kw)
    };
    if lo >= hi {
        return;
    }
    for ky in 0..kh {
        let iy = (oy * sy + ky * dy) as isize - top;
        if iy < 0 || iy >= h as isize {
            continue;
        }
        let dst = ky * kw * c;
        let src = |kx: usize| (iy as usize * w + (x0 + (kx * dx) as isize) as usize) * c;
        if dx == 1 {
            f(dst + lo * c, src(lo), (hi - lo) * c);
        } else {
            for kx in lo..hi {
                f(dst + kx * c, src(kx), c);
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short runs of a convolution with few channels (a
/// window row of a one-channel image is 3 elements): a copy of known length is a few moves,
/// where `copy_from_slice` of a length known only at run time calls `memcpy` (about as
/// long as copying a hundred elements).
#[inline(always)]
fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    fn fixed<T: Copy, const N: usize>(dst: &mut [T], src: &[T]) {
        let d: &mut [T; N] = dst.try_into().expect("a run of N");
        *d = <[T; N]>::try_from(&src[..N]).expect("a run of N");
    }
    match dst.len() {
        1 => fixed::<T, 1>(dst, src),
        2 => fixed::<T, 2>(dst, src),
        3 => fixed::<T, 3>(dst, src),
        4 => fixed::<T, 4>(dst, src),
        5 => fixed::<T, 5>(dst, src),
        6 => fixed::<T, 6>(dst, src),
        7 => fixed::<T, 7>(dst, src),
        8 => fixed::<T, 8>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// Bytes of patches and outputs a convolution works on at a time per thread: about half of a
/// core's L2 cache on the machines brick is measured on, so that a chunk's patches are
/// still in cache when its matrix product reads them.
const CHUNK_BYTES: usize = 512 * 1024;

/// How many images of a batch of `images` one task takes, for `bytes_per_image` of working
/// data each: what fits [`CHUNK_BYTES`], and small enough for four tasks per thread, so that
/// the threads finish together.
fn chunk_images(images: usize, bytes_per_image: usize) -> usize {
    let by_cache = CHUNK_BYTES / bytes_per_image.max(1);
    let by_balance = images.div_ceil(4 * rayon::current_num_threads());
    by_cache.min(by_balance).max(1)
}

/// A batch's output of `images * per_image` elements, computed on the pool in chunks of
/// `chunk` whole images: each chunk arrives zeroed at `f(images, chunk)` (see
/// [`fill_chunks`](crate::parallel::fill_chunks)).
fn par_images<T: Element>(
    images: usize,
    per_image: usize,
    chunk: usize,
    f: impl Fn(Range<usize>, &mut [T]) + Sync,
) -> Vec<T> {
    if per_image == 0 {
        return Vec::new();
    }
    crate::parallel::fill_chunks(images * per_image, per_image * chunk, |range, out| {
        f(range.start / per_image..range.end / per_image, out)
    })
}

/// This thread's scratch buffer as `len` elements for a chunk's patches (zeroed where the
/// window can reach into padding, whose elements are never written; left as they are
/// otherwise, every element being written), and after them `grad_len` more elements of
/// working space for the chunk's output gradient (written before they are read).
fn patch_and_grad_buffers<T: Element>(
    buf: &mut Vec<T>,
    len: usize,
    padded: bool,
    grad_len: usize,
) -> (&mut [T], &mut [T]) {
    if buf.len() < len + grad_len {
        buf.resize(len + grad_len, T::zero());
    }
    let (patches, rest) = buf.split_at_mut(len);
    if padded {
        patches.fill(T::zero());
    }
    (patches, &mut rest[..grad_len])
}

/// An output gradient as a convolution's gradients read it. The kernels work a chunk of
/// images at a time and take the gradient's rows for a chunk from here, so that a gradient
/// that needs computing (through an activation's derivative, or back through a max pooling)
/// is computed in cache, a chunk at a time, and never stored for the whole batch.
#[derive(Clone, Copy)]
pub enum OutputGrad<'a, T: Element> {
    /// `dy`, the gradient of the convolution's output, through an activation's derivative
    /// when `through` gives the activation's output `y` (of `dy`'s shape) and its rule
    /// `chain(dy, y, dz)`, which writes the gradient before the activation into `dz`.
    Output {
        /// The gradient of the convolution's (or activation's) output.
        dy: &'a Tensor<T>,
        /// The activation's output and the rule of its derivative, if any.
        through: Option<(&'a Tensor<T>, &'a ChainFn<T>)>,
    },
    /// `dp`, the gradient of a max pooling `pool` over the convolution's activated output
    /// (see [`Tensor::conv2d_max_pool`]). That output is not stored: the gradient goes to
    /// each window's winner, through the activation's derivative there, and on from the
    /// winners alone (the zeros elsewhere are never formed). The winners are those the
    /// forward pass kept, or, if it kept none, found again from the output computed again
    /// from `conv` a chunk at a time.
    MaxPooled {
        /// The gradient of the pooled output.
        dp: &'a Tensor<T>,
        /// The max pooling's window.
        pool: Window,
        /// What the convolution's output is computed again from.
        conv: PooledConv<'a, T>,
    },
}

/// What a [`OutputGrad::MaxPooled`] gradient recomputes the convolution's output from: the
/// input batch, the kernel, the bias, the activation (applied in place) and its derivative
/// from the output (`None` for the identity). The kernel gradient reads the input batch it
/// is called on (`x` must be that batch; only its shape is checked there).
#[derive(Clone, Copy)]
pub struct PooledConv<'a, T: Element> {
    /// The convolution's input batch `[b, h, w, c_in]`.
    pub x: &'a Tensor<T>,
    /// The kernel `[kh, kw, c_in, c_out]`.
    pub kernel: &'a Tensor<T>,
    /// The bias `[c_out]`, if any.
    pub bias: Option<&'a Tensor<T>>,
    /// The activation, applied in place to each chunk of the output.
    pub activation: &'a Epilogue<'a, T>,
    /// The activation's derivative from its output (`None`: the identity).
    pub chain: Option<&'a ChainFn<T>>,
    /// The pooled output and its winners, if the caller kept them (as a tape does): what
    /// [`Tensor::conv2d_max_pool_with_indices`] gave for these operands. The gradients then
    /// read the winners and the activation's output at them, and compute nothing again.
    pub output: Option<(&'a Tensor<T>, &'a MaxPoolIndices)>,
}

/// An activation's derivative from its output: `chain(dy, y, dz)` sets `dz = dy * f'(y)`.
pub type ChainFn<T> = dyn Fn(&[T], &[T], &mut [T]) + Sync;

/// Work done on each finished chunk of a convolution's output, in place (an activation).
pub type Epilogue<'a, T> = dyn Fn(&mut [T]) + Sync + 'a;

impl<'a, T: Element> OutputGrad<'a, T> {
    /// The gradient as it is.
    pub fn plain(dy: &'a Tensor<T>) -> Self {
        OutputGrad::Output { dy, through: None }
    }
}

/// An [`OutputGrad`] checked against the convolution it belongs to and made contiguous,
/// ready to give the rows of a chunk. Made once per kernel call and only borrowed after, so
/// the size of its larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Rows<'a, T: Element> {
    Output {
        dy: Tensor<T>,
        /// The activation's output and its derivative's rule.
        through: Option<(Tensor<T>, &'a ChainFn<T>)>,
    },
    MaxPooled {
        dp: Tensor<T>,
        x: Tensor<T>,
        kernel: Tensor<T>,
        bias: Option<Tensor<T>>,
        activation: &'a Epilogue<'a, T>,
        chain: Option<&'a ChainFn<T>>,
        output: Option<(Tensor<T>, &'a MaxPoolIndices)>,
        pool: Window,
        place: Placement,
    },
}

impl<'a, T: Element> Rows<'a, T> {
    /// `grad` for a convolution of `geometry` (a batch of `dims` in, `c_out` channels out),
    /// checked: every tensor must have the shape the convolution gives it.
    fn new(
        op: &'static str,
        grad: &OutputGrad<'a, T>,
        geometry: &Geometry,
        kernel_shape: &[usize],
    ) -> Result<Self> {
        let Geometry { dims, p, c_out, .. } = *geometry;
        let out = [dims[0], p.out[0], p.out[1], c_out];
        match *grad {
            OutputGrad::Output { dy, through } => {
                same_shape(op, &out, dy.shape())?;
                let through = match through {
                    Some((y, chain)) => {
                        same_shape(op, &out, y.shape())?;
                        Some((y.to_contiguous(), chain))
                    }
                    None => None,
                };
                Ok(Rows::Output {
                    dy: dy.to_contiguous(),
                    through,
                })
            }
            OutputGrad::MaxPooled { dp, pool, conv } => {
                same_shape(op, &dims, conv.x.shape())?;
                same_shape(op, kernel_shape, conv.kernel.shape())?;
                if let Some(b) = conv.bias {
                    same_shape(op, &[c_out], b.shape())?;
                }
                let place = pool.place([p.out[0], p.out[1]], op)?;
                let pooled = [dims[0], place.out[0], place.out[1], c_out];
                same_shape(op, &pooled, dp.shape())?;
                if let Some((out, at)) = conv.output {
                    same_shape(op, &pooled, out.shape())?;
                    same_shape(op, &pooled, at.shape())?;
                }
                Ok(Rows::MaxPooled {
                    dp: dp.to_contiguous(),
                    x: conv.x.to_contiguous(),
                    kernel: conv.kernel.to_contiguous(),
                    bias: conv.bias.map(Tensor::to_contiguous),
                    activation: conv.activation,
                    chain: conv.chain,
                    output: conv.output.map(|(out, at)| (out.to_contiguous(), at)),
                    pool,
                    place,
                })
            }
        }
    }

    /// Working space [`get`](Rows::get) needs for a chunk of `n` output elements.
    fn work_len(&self, n: usize) -> usize {
        match self {
            Rows::Output { through, .. } => through.as_ref().map_or(0, |_| n),
            // The pooled gradient; and, to find the winners again, the output and its
            // pooling (pooled elements are no more than the output's).
            Rows::MaxPooled { output, .. } => n + output.as_ref().map_or(2 * n, |_| 0),
        }
    }

    /// For a max-pooled gradient, the winners of the images `images` and the pooled gradient
    /// through the activation's derivative at them ([`pooled::Winners`]). Read from what the
    /// forward pass kept; if it kept nothing, the chunk's output is computed again from its
    /// patches (built into `patches`) and pooled, the winners going to `at`. `work` holds
    /// [`work_len`](Rows::work_len) elements. Returns whether the patches were built.
    fn winners<'b>(
        &'b self,
        geometry: &Geometry,
        images: Range<usize>,
        patches: &mut [T],
        work: &'b mut [T],
        at: &'b mut Vec<u32>,
    ) -> (pooled::Winners<'b, T>, bool) {
        let Rows::MaxPooled {
            dp,
            x,
            kernel,
            bias,
            activation,
            chain,
            output,
            pool,
            place,
        } = self
        else {
            unreachable!("winners of a max-pooled gradient only")
        };
        let Geometry { p, c_out, .. } = *geometry;
        let pooled = place.out[0] * place.out[1];
        let range = images.start * pooled * c_out..images.end * pooled * c_out;
        let dp = &dp.as_slice().expect("contiguous")[range.clone()];
        let (gz, rest) = work.split_at_mut(range.len());
        let (winners, largest, built): (&[u32], &[T], bool) = match output {
            Some((out, kept)) => (
                &kept.as_slice()[range.clone()],
                &out.as_slice().expect("contiguous")[range.clone()],
                false,
            ),
            None => {
                let x = x.as_slice().expect("contiguous");
                geometry.fill_patches(x, images.clone(), patches);
                let n = images.len() * p.out[0] * p.out[1] * c_out;
                let (y, rest) = rest.split_at_mut(n);
                let largest = &mut rest[..range.len()];
                let k = kernel.as_slice().expect("contiguous");
                let b = bias.as_ref().map(|b| b.as_slice().expect("contiguous"));
                geometry.product(patches, k, b, *activation, y);
                at.clear();
                at.resize(range.len(), 0);
                let dims = [images.len(), p.out[0], p.out[1], c_out];
                max_pool_indices_into(y, dims, pool, place, largest, at);
                (&at[..], &*largest, true)
            }
        };
        let gz: &[T] = match chain {
            Some(chain) => {
                chain(dp, largest, gz);
                gz
            }
            None => dp,
        };
        let winners = pooled::Winners {
            gz,
            at: winners,
            pooled,
            c_out,
        };
        (winners, built)
    }

    /// The gradient of the convolution's output for the images `images`, `rows x c_out`
    /// (`rows` output positions), for a gradient given at the output.
    fn get<'b>(&'b self, geometry: &Geometry, images: Range<usize>, work: &'b mut [T]) -> &'b [T] {
        let Geometry { p, c_out, .. } = *geometry;
        let per_image = p.out[0] * p.out[1] * c_out;
        let range = images.start * per_image..images.end * per_image;
        match self {
            Rows::Output { dy, through } => {
                let dy = &dy.as_slice().expect("contiguous")[range.clone()];
                match through {
                    Some((y, chain)) => {
                        chain(dy, &y.as_slice().expect("contiguous")[range], work);
                        work
                    }
                    None => dy,
                }
            }
            Rows::MaxPooled { .. } => unreachable!("a max-pooled gradient goes by its winners"),
        }
    }
}

/// The runs of every output position's patch of a convolution of `g` (see
/// [`position_runs`]).
fn run_table(g: &Geometry) -> pooled::RunTable {
    let ow = g.p.out[1].max(1);
    pooled::RunTable::new(g.p.out[0] * g.p.out[1], |at, runs| {
        position_runs(
            g.dims,
            &g.window,
            &g.p,
            [at / ow, at % ow],
            |patch, image, len| runs.push(pooled::Run { patch, image, len }),
        )
    })
}

/// A convolution placed on a batch: the batch's dimensions, the kernel's window and its
/// placement, the patch row (`kh * kw * c_in`), `c_out`, and whether a window reaches into
/// padding.
#[derive(Clone, Copy)]
struct Geometry {
    dims: [usize; 4],
    window: Window,
    p: Placement,
    row: usize,
    c_out: usize,
    padded: bool,
}

impl Geometry {
    /// The patches of the images `images` of `x` into `patches` (`rows x row`; zero where a
    /// window reaches into padding, if `patches` was zeroed).
    fn fill_patches<T: Element>(&self, x: &[T], images: Range<usize>, patches: &mut [T]) {
        if self.padded || self.window.dilation != [1, 1] {
            for_each_run(self.dims, &self.window, &self.p, images, |dst, src, len| {
                copy_run(&mut patches[dst..dst + len], &x[src..src + len]);
            });
            return;
        }
        // Every window row lies inside the image and is one run of `kw * c` elements: the
        // run's length is chosen once, so that a short run (3 elements for a one-channel
        // image) is a few moves in a tight loop, not a call per run.
        match self.window.size[1] * self.dims[3] {
            1 => self.fill_unpadded::<T, 1>(x, images, patches),
            2 => self.fill_unpadded::<T, 2>(x, images, patches),
            3 => self.fill_unpadded::<T, 3>(x, images, patches),
            4 => self.fill_unpadded::<T, 4>(x, images, patches),
            5 => self.fill_unpadded::<T, 5>(x, images, patches),
            6 => self.fill_unpadded::<T, 6>(x, images, patches),
            8 => self.fill_unpadded::<T, 8>(x, images, patches),
            9 => self.fill_unpadded::<T, 9>(x, images, patches),
            _ => self.fill_unpadded::<T, 0>(x, images, patches),
        }
    }

    /// [`fill_patches`](Geometry::fill_patches) of a convolution without padding or
    /// dilation, whose window rows are runs of `N = kw * c` elements (`N = 0`: of a length
    /// known only at run time).
    fn fill_unpadded<T: Element, const N: usize>(
        &self,
        x: &[T],
        images: Range<usize>,
        patches: &mut [T],
    ) {
        let [_, h, w, c] = self.dims;
        let [kh, kw] = self.window.size;
        let [sy, sx] = self.window.strides;
        let [oh, ow] = self.p.out;
        let (row, run) = (self.row, kw * c);
        for (i, n) in images.enumerate() {
            let image = &x[n * h * w * c..(n + 1) * h * w * c];
            for oy in 0..oh {
                let out = &mut patches[(i * oh + oy) * ow * row..(i * oh + oy + 1) * ow * row];
                for ky in 0..kh {
                    let line = &image[(oy * sy + ky) * w * c..];
                    let windows = out.chunks_exact_mut(row).map(|p| &mut p[ky * run..]);
                    for (ox, dst) in windows.enumerate() {
                        let src = &line[ox * sx * c..];
                        if N == 0 {
                            dst[..run].copy_from_slice(&src[..run]);
                        } else {
                            let d: &mut [T; N] = (&mut dst[..N]).try_into().expect("a run of N");
                            *d = <[T; N]>::try_from(&src[..N]).expect("a run of N");
                        }
                    }
                }
            }
        }
    }

    /// `out = epilogue(patches @ kernel + bias)` for a chunk: the convolution's outputs from
    /// its patches (`out` is `rows x c_out`).
    fn product<T: Element>(
        &self,
        patches: &[T],
        kernel: &[T],
        bias: Option<&[T]>,
        epilogue: &Epilogue<'_, T>,
        out: &mut [T],
    ) {
        if direct::usable(self.row) {
            direct::product(patches, kernel, bias, self.row, out);
            epilogue(out);
            return;
        }
        let rows = out.len() / self.c_out.max(1);
        let a = ArrayView2::from_shape((rows, self.row), &patches[..rows * self.row])
            .expect("rows * row");
        let k = ArrayView2::from_shape((self.row, self.c_out), kernel).expect("row * c_out");
        let mut c = ArrayViewMut2::from_shape((rows, self.c_out), &mut *out).expect("rows * c_out");
        gemm_serial(T::one(), &a, &k, T::zero(), &mut c);
        if let Some(bias) = bias {
            crate::simd::dispatch(
                #[inline(always)]
                || {
                    for r in out.chunks_exact_mut(self.c_out) {
                        add_into(r, bias);
                    }
                },
            );
        }
        epilogue(out);
    }
}

/// The geometry of a convolution of a batch `image` `[b, h, w, c_in]` with a kernel of
/// `kernel` `[kh, kw, c_in, c_out]`, checked.
fn geometry(
    op: &'static str,
    image: &[usize],
    kernel: &[usize],
    options: &Conv2dOptions,
) -> Result<Geometry> {
    let &[kh, kw, c_in, c_out] = kernel else {
        return Err(TensorError::RankMismatch {
            op,
            expected: "a kernel of 4 dimensions [kh, kw, c_in, c_out]".into(),
            shape: kernel.to_vec(),
        });
    };
    let dims = image_dims(op, image)?;
    if dims[3] != c_in {
        return Err(TensorError::InvalidArgument {
            op,
            message: format!(
                "the input must be [batch, height, width, {c_in}] for a kernel of shape \
                 {kernel:?}, got {image:?}"
            ),
        });
    }
    let window = options.window([kh, kw]);
    let p = window.place([dims[1], dims[2]], op)?;
    Ok(Geometry {
        dims,
        window,
        p,
        row: kh * kw * c_in,
        c_out,
        padded: p.pad.iter().any(|&v| v > 0),
    })
}

/// Calls `f(output_offset, taps, positions)` for every window of a pooling over the images
/// `images`: `taps` are the offsets in the batch of the window's pixels inside the image, in
/// window order (row by row), each the start of `c` channels, and `positions` the same
/// pixels' positions `y * w + x` in their image; the output offset counts from the range's
/// first image. Padding is never among the taps. A window with no pixel inside the
/// image (possible only with dilation) is skipped. Inlined, so that the loops of `f` are
/// compiled for the caller's vector instructions (`simd::dispatch`).
#[inline(always)]
fn for_each_window(
    [_, h, w, c]: [usize; 4],
    window: &Window,
    p: &Placement,
    images: Range<usize>,
    mut f: impl FnMut(usize, &[usize], &[u32]),
) {
    let [kh, kw] = window.size;
    let [oh, ow] = p.out;
    let [sy, sx] = window.strides;
    let [dy, dx] = window.dilation;
    let (top, left) = (p.pad[0] as isize, p.pad[2] as isize);
    let (mut taps, mut at) = (Vec::with_capacity(kh * kw), Vec::with_capacity(kh * kw));
    for (i, n) in images.enumerate() {
        for oy in 0..oh {
            for ox in 0..ow {
                taps.clear();
                at.clear();
                for ky in 0..kh {
                    let iy = (oy * sy + ky * dy) as isize - top;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..kw {
                        let ix = (ox * sx + kx * dx) as isize - left;
                        if ix >= 0 && ix < w as isize {
                            let pos = iy as usize * w + ix as usize;
                            taps.push((n * h * w + pos) * c);
                            // Positions of a plane past u32 are never asked for (see
                            // `conv2d_max_pool_with_indices`).
                            at.push(pos as u32);
                        }
                    }
                }
                if !taps.is_empty() {
                    f(((i * oh + oy) * ow + ox) * c, &taps, &at);
                }
            }
        }
    }
}

/// The largest of each channel over a window's `taps` of `x`, into `best` (`c` channels).
#[inline(always)]
fn window_max<T: Element>(x: &[T], taps: &[usize], best: &mut [T]) {
    let c = best.len();
    let whole = c - c % LANES;
    // Whole blocks: each block's maximum is kept in registers over the taps and stored once.
    for o in (0..whole).step_by(LANES) {
        let mut m = lanes(x, taps[0] + o);
        for &t in &taps[1..] {
            let v = lanes(x, t + o);
            for (m, v) in m.iter_mut().zip(v) {
                *m = if v > *m { v } else { *m };
            }
        }
        best[o..o + LANES].copy_from_slice(&m);
    }
    let best = &mut best[whole..];
    best.copy_from_slice(&x[taps[0] + whole..taps[0] + c]);
    for &t in &taps[1..] {
        for (b, &v) in best.iter_mut().zip(&x[t + whole..t + c]) {
            let old = *b;
            *b = if v > old { v } else { old };
        }
    }
}

/// The width of the blocks the channel loops of pooling work in: 16 `f32` are one AVX-512
/// vector. A loop over a run-time number of channels leaves a count such as 32 to the
/// compiler's remainder loop (8 lanes at a time, with masked stores, on AVX-512); blocks of
/// a width known at compile time run as whole vectors, their results kept in registers.
const LANES: usize = 16;

/// `LANES` elements of `x` from `at`, as an array (in registers when the caller's loops
/// are).
#[inline(always)]
fn lanes<T: Copy>(x: &[T], at: usize) -> [T; LANES] {
    x[at..at + LANES].try_into().expect("LANES elements")
}

/// For each channel, which of a window's `taps` of `x` holds its largest value (the first
/// of equal ones), as the tap's number in `arg`: an element of `T` (0, 1, 2, ...; exact
/// for any window), so that the loops that use it compare vectors of one type. `best` is
/// working space.
#[inline(always)]
fn window_argmax<T: Element>(x: &[T], taps: &[usize], best: &mut [T], arg: &mut [T]) {
    let c = best.len();
    let whole = c - c % LANES;
    for o in (0..whole).step_by(LANES) {
        let (mut m, mut a) = (lanes(x, taps[0] + o), [T::zero(); LANES]);
        let mut k = T::zero();
        for &t in &taps[1..] {
            k += T::one();
            let v = lanes(x, t + o);
            for ((m, a), v) in m.iter_mut().zip(a.iter_mut()).zip(v) {
                let more = v > *m;
                *m = if more { v } else { *m };
                *a = if more { k } else { *a };
            }
        }
        arg[o..o + LANES].copy_from_slice(&a);
    }
    let (best, arg) = (&mut best[whole..], &mut arg[whole..]);
    best.copy_from_slice(&x[taps[0] + whole..taps[0] + c]);
    arg.fill(T::zero());
    let mut k = T::zero();
    for &t in &taps[1..] {
        k += T::one();
        for ((b, a), &v) in best
            .iter_mut()
            .zip(arg.iter_mut())
            .zip(&x[t + whole..t + c])
        {
            // Values loaded before the selects: selecting between references instead made
            // the compiler gather through them.
            let (old_b, old_a, more) = (*b, *a, v > *b);
            *b = if more { v } else { old_b };
            *a = if more { k } else { old_a };
        }
    }
}

/// For every window of a max pooling over the images `images` of `x`, and each of its taps
/// in window order: `f(output_offset, tap, winner, k)`, with `k` the tap's number and
/// `winner` each channel's winning tap number ([`window_argmax`]), so that `f` selects with
/// `winner == k` over vectors. Offsets as [`for_each_window`]'s; compiled for the processor's
/// vectors (`simd::dispatch`).
#[inline(always)]
fn for_each_pooled_tap<T: Element>(
    x: &[T],
    dims: [usize; 4],
    window: &Window,
    p: &Placement,
    images: Range<usize>,
    mut f: impl FnMut(usize, usize, &[T], T),
) {
    let c = dims[3];
    let (mut best, mut arg) = (vec![T::zero(); c], vec![T::zero(); c]);
    crate::simd::dispatch(
        #[inline(always)]
        || {
            for_each_window(
                dims,
                window,
                p,
                images,
                #[inline(always)]
                |o, taps, _| {
                    window_argmax(x, taps, &mut best, &mut arg);
                    let mut k = T::zero();
                    for &t in taps {
                        f(o, t, &arg, k);
                        k += T::one();
                    }
                },
            )
        },
    );
}

impl<T: Element> Tensor<T> {
    /// The patches a convolution reads: for a channels-last batch `[b, h, w, c]`, a tensor
    /// `[b, oh, ow, kh * kw * c]` holding each output position's window (ordered `kh`, `kw`,
    /// `c`, as Keras's kernel `[kh, kw, c_in, c_out]` is), zero where the window reaches
    /// into padding. A convolution is then `patches @ kernel.reshape([kh * kw * c, c_out])`.
    ///
    /// ```
    /// use tensor::Tensor;
    /// use tensor::ops::conv::Window;
    /// // A 3x3 single-channel image, 2x2 windows: 4 positions of 4 pixels each.
    /// let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), &[1, 3, 3, 1]).unwrap();
    /// let p = x.patches(&Window::new([2, 2])).unwrap();
    /// assert_eq!(p.shape(), &[1, 2, 2, 4]);
    /// assert_eq!(&p.to_vec()[..4], &[1.0, 2.0, 4.0, 5.0]);
    /// ```
    ///
    /// # Errors
    /// If the input is not 4-D or the window does not fit (see [`Window::place`]).
    pub fn patches(&self, window: &Window) -> Result<Tensor<T>> {
        let dims = image_dims("patches", self.shape())?;
        let p = window.place([dims[1], dims[2]], "patches")?;
        let row = window.size[0] * window.size[1] * dims[3];
        let x = self.to_contiguous();
        let x = x.as_slice().expect("contiguous");
        // The convolution's own patch builder (`c_out` plays no part in it); the chunks
        // arrive zeroed, so padding reads zero.
        let g = Geometry {
            dims,
            window: *window,
            p,
            row,
            c_out: 0,
            padded: p.pad.iter().any(|&v| v > 0),
        };
        let out = par_images(dims[0], p.out[0] * p.out[1] * row, 1, |images, out| {
            g.fill_patches(x, images, out);
        });
        Tensor::from_vec(out, &[dims[0], p.out[0], p.out[1], row])
    }

    /// The adjoint of [`patches`](Tensor::patches): for patch values (or their gradients)
    /// `[b, oh, ow, kh * kw * c]`, the image `image_shape = [b, h, w, c]` in which each pixel
    /// is the sum of the patch entries that read it.
    ///
    /// # Errors
    /// If `image_shape` is not 4-D, the window does not fit it, or `self`'s shape is not the
    /// patches' shape for that image.
    pub fn fold_patches(&self, window: &Window, image_shape: &[usize]) -> Result<Tensor<T>> {
        let dims = image_dims("fold_patches", image_shape)?;
        let p = window.place([dims[1], dims[2]], "fold_patches")?;
        let row = window.size[0] * window.size[1] * dims[3];
        same_shape(
            "fold_patches",
            &[dims[0], p.out[0], p.out[1], row],
            self.shape(),
        )?;
        let g = self.to_contiguous();
        let g = g.as_slice().expect("contiguous");
        let per_image = dims[1] * dims[2] * dims[3];
        let patch_image = p.out[0] * p.out[1] * row;
        let out = par_images(dims[0], per_image, 1, |images, out| {
            let (base, g) = (images.start * per_image, &g[images.start * patch_image..]);
            for_each_run(dims, window, &p, images, |dst, src, len| {
                add_into(&mut out[src - base..src - base + len], &g[dst..dst + len]);
            });
        });
        Tensor::from_vec(out, image_shape)
    }

    /// The 2-D convolution (cross-correlation, as Keras's `Conv2D` computes it) of a
    /// channels-last batch `[b, h, w, c_in]` with a kernel in Keras's layout
    /// `[kh, kw, c_in, c_out]`, plus an optional bias `[c_out]`; `epilogue` then runs on
    /// each finished chunk of the output (an activation, applied while the chunk is in
    /// cache). Output `[b, oh, ow, c_out]`.
    ///
    /// The batch is cut into chunks of a few images, one task each on the pool: a chunk's
    /// patches are written to a per-thread buffer and multiplied by the kernel at once, so
    /// the patches of the whole batch are never held in memory.
    ///
    /// ```
    /// use tensor::Tensor;
    /// use tensor::ops::conv::{Conv2dOptions, Padding};
    /// let x = Tensor::<f32>::ones(&[1, 4, 4, 1]);
    /// let k = Tensor::ones(&[3, 3, 1, 2]);
    /// let same = Conv2dOptions { padding: Padding::Same, ..Default::default() };
    /// let y = x.conv2d(&k, None, &same, &|_| {}).unwrap();
    /// assert_eq!(y.shape(), &[1, 4, 4, 2]);
    /// assert_eq!(y.get(&[0, 0, 0, 0]), Some(4.0)); // a corner sees 4 pixels
    /// ```
    ///
    /// # Errors
    /// If the input is not 4-D, the kernel not `[kh, kw, c_in, c_out]` with the input's
    /// channels, the bias not `[c_out]`, or the kernel does not fit.
    pub fn conv2d(
        &self,
        kernel: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        options: &Conv2dOptions,
        epilogue: &Epilogue<'_, T>,
    ) -> Result<Tensor<T>> {
        let (y, _) = self.conv2d_pooled("conv2d", kernel, bias, options, epilogue, None)?;
        Ok(y)
    }

    /// [`conv2d`](Tensor::conv2d) followed by a max pooling of its activated output with
    /// `pool` (see [`max_pool`](Tensor::max_pool)), chunk by chunk: the convolution's
    /// output is pooled while it is in cache and never stored whole, one write and one read
    /// of it less. Its gradients take the pooling's gradient as
    /// [`OutputGrad::MaxPooled`]; they are cheapest from the winners the forward pass
    /// found, which [`conv2d_max_pool_with_indices`](Tensor::conv2d_max_pool_with_indices)
    /// keeps.
    ///
    /// ```
    /// use tensor::Tensor;
    /// use tensor::ops::conv::{Conv2dOptions, Window};
    /// let x = Tensor::<f32>::from_vec((0..16).map(|v| v as f32).collect(), &[1, 4, 4, 1]).unwrap();
    /// let k = Tensor::ones(&[1, 1, 1, 1]);
    /// let pool = Window { strides: [2, 2], ..Window::new([2, 2]) };
    /// let o = Conv2dOptions::default();
    /// let y = x.conv2d_max_pool(&k, None, &o, &|_| {}, &pool).unwrap();
    /// assert_eq!(y.to_vec(), x.max_pool(&pool).unwrap().to_vec());
    /// ```
    ///
    /// # Errors
    /// As [`conv2d`](Tensor::conv2d)'s, and if the pooling window does not fit the
    /// convolution's output.
    pub fn conv2d_max_pool(
        &self,
        kernel: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        options: &Conv2dOptions,
        epilogue: &Epilogue<'_, T>,
        pool: &Window,
    ) -> Result<Tensor<T>> {
        let op = "conv2d_max_pool";
        let (y, _) =
            self.conv2d_pooled(op, kernel, bias, options, epilogue, Some((pool, false)))?;
        Ok(y)
    }

    /// [`conv2d_max_pool`](Tensor::conv2d_max_pool), and where each pooled element's
    /// window had its largest element ([`MaxPoolIndices`], as PyTorch's `return_indices`
    /// and TensorFlow's `max_pool_with_argmax` give): the gradients then route through the
    /// winners without computing the convolution again (pass both in [`PooledConv`]).
    ///
    /// ```
    /// use tensor::Tensor;
    /// use tensor::ops::conv::{Conv2dOptions, Window};
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 4.0, 3.0, 2.0], &[1, 2, 2, 1]).unwrap();
    /// let k = Tensor::ones(&[1, 1, 1, 1]);
    /// let o = Conv2dOptions::default();
    /// let (y, at) = x.conv2d_max_pool_with_indices(&k, None, &o, &|_| {}, &Window::new([2, 2])).unwrap();
    /// assert_eq!(y.to_vec(), vec![4.0]);
    /// assert_eq!(at.as_slice(), &[1]); // row 0, column 1 of the 2x2 output
    /// ```
    ///
    /// # Errors
    /// As [`conv2d_max_pool`](Tensor::conv2d_max_pool)'s, and if the convolution's output
    /// has more positions per image than a `u32` counts.
    pub fn conv2d_max_pool_with_indices(
        &self,
        kernel: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        options: &Conv2dOptions,
        epilogue: &Epilogue<'_, T>,
        pool: &Window,
    ) -> Result<(Tensor<T>, MaxPoolIndices)> {
        let op = "conv2d_max_pool";
        let (y, at) =
            self.conv2d_pooled(op, kernel, bias, options, epilogue, Some((pool, true)))?;
        let shape = image_dims(op, y.shape())?;
        Ok((y, MaxPoolIndices { indices: at, shape }))
    }

    /// [`conv2d`](Tensor::conv2d), then a max pooling of each chunk if `pool` is given,
    /// with the winners' positions if asked for (else the second result is empty).
    fn conv2d_pooled(
        &self,
        op: &'static str,
        kernel: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        options: &Conv2dOptions,
        epilogue: &Epilogue<'_, T>,
        pool: Option<(&Window, bool)>,
    ) -> Result<(Tensor<T>, Vec<u32>)> {
        let g = geometry(op, self.shape(), kernel.shape(), options)?;
        let c_out = g.c_out;
        let bias = match bias {
            Some(b) => {
                same_shape(op, &[c_out], b.shape())?;
                Some(b.to_contiguous())
            }
            None => None,
        };
        let bias = bias.as_ref().map(|b| b.as_slice().expect("contiguous"));
        let (x, k) = (self.to_contiguous(), kernel.to_contiguous());
        let (x, k) = (
            x.as_slice().expect("contiguous"),
            k.as_slice().expect("contiguous"),
        );
        let positions = g.p.out[0] * g.p.out[1];
        let pooled = match pool {
            Some((w, _)) => Some((w, w.place(g.p.out, op)?)),
            None => None,
        };
        let indexed = matches!(pool, Some((_, true)));
        if indexed && u32::try_from(positions).is_err() {
            return Err(TensorError::InvalidArgument {
                op,
                message: format!(
                    "the convolution's output of {:?} positions per image is more than the \
                     pooling's indices (u32) count",
                    g.p.out
                ),
            });
        }
        let out_image = match pooled {
            Some((_, place)) => place.out[0] * place.out[1] * c_out,
            None => positions * c_out,
        };
        // A pooled chunk also holds its convolution's output until it is pooled.
        let held = if pool.is_some() { 2 * c_out } else { c_out };
        let chunk = chunk_images(g.dims[0], positions * (g.row + held) * size_of::<T>());
        let work = |images: Range<usize>, out: &mut [T], at: &mut [u32]| {
            let rows = images.len() * positions;
            T::with_scratch(|buf| {
                let conv_len = if pool.is_some() { rows * c_out } else { 0 };
                let (patches, y) = patch_and_grad_buffers(buf, rows * g.row, g.padded, conv_len);
                g.fill_patches(x, images.clone(), patches);
                match pooled {
                    None => g.product(patches, k, bias, epilogue, out),
                    Some((w, place)) => {
                        g.product(patches, k, bias, epilogue, y);
                        let dims = [images.len(), g.p.out[0], g.p.out[1], c_out];
                        if indexed {
                            max_pool_indices_into(y, dims, w, &place, out, at);
                        } else {
                            max_pool_into(y, dims, w, &place, out);
                        }
                    }
                }
            });
        };
        let (out, at) = if indexed {
            let n = g.dims[0] * out_image;
            let (mut out, mut at) = (vec![T::zero(); n], vec![0u32; n]);
            let step = (out_image * chunk).max(1);
            out.par_chunks_mut(step)
                .zip(at.par_chunks_mut(step))
                .enumerate()
                .for_each(|(i, (out, at))| {
                    let first = i * chunk;
                    work(first..first + out.len() / out_image, out, at)
                });
            (out, at)
        } else {
            let out = par_images(g.dims[0], out_image, chunk, |images, out| {
                work(images, out, &mut [])
            });
            (out, Vec::new())
        };
        let shape = match pooled {
            Some((_, place)) => [g.dims[0], place.out[0], place.out[1], c_out],
            None => [g.dims[0], g.p.out[0], g.p.out[1], c_out],
        };
        Ok((Tensor::from_vec(out, &shape)?, at))
    }

    /// The gradient of [`conv2d`](Tensor::conv2d) with respect to its input, for `self` the
    /// gradient of its output `[b, oh, ow, c_out]`: the batch `image_shape` `[b, h, w, c_in]`
    /// in which each pixel sums the output gradients times the kernel weights it met (a
    /// transposed convolution). Computed chunk by chunk as `dy @ kernel^T` folded into the
    /// image.
    ///
    /// # Errors
    /// If the shapes do not fit (as [`conv2d`](Tensor::conv2d)'s, and `self` must be the
    /// output's shape).
    pub fn conv2d_backprop_input(
        &self,
        kernel: &Tensor<T>,
        options: &Conv2dOptions,
        image_shape: &[usize],
    ) -> Result<Tensor<T>> {
        Tensor::conv2d_backprop_input_of(OutputGrad::plain(self), kernel, options, image_shape)
    }

    /// [`conv2d_backprop_input`](Tensor::conv2d_backprop_input) of an output gradient in
    /// any of [`OutputGrad`]'s forms.
    ///
    /// # Errors
    /// As [`conv2d_backprop_input`](Tensor::conv2d_backprop_input)'s; every tensor of
    /// `grad` must have the shape the convolution gives it.
    pub fn conv2d_backprop_input_of(
        grad: OutputGrad<'_, T>,
        kernel: &Tensor<T>,
        options: &Conv2dOptions,
        image_shape: &[usize],
    ) -> Result<Tensor<T>> {
        let op = "conv2d_backprop_input";
        let g = geometry(op, image_shape, kernel.shape(), options)?;
        let rows_of = Rows::new(op, &grad, &g, kernel.shape())?;
        let (dims, c_out, row) = (g.dims, g.c_out, g.row);
        let k = kernel.to_contiguous();
        let kmat = ArrayView2::from_shape((row, c_out), k.as_slice().expect("contiguous"))
            .expect("a kernel of row * c_out elements");
        // The kernel transposed once into rows (a product reads a row-major right-hand side
        // faster than a column-major one).
        let kt = kmat.t().as_standard_layout().into_owned();
        let kt = kt.view();
        let positions = g.p.out[0] * g.p.out[1];
        let per_image = dims[1] * dims[2] * dims[3];
        let held = rows_of.work_len(c_out);
        let chunk = chunk_images(dims[0], positions * (row + c_out + held) * size_of::<T>());
        // A max-pooled gradient goes from its winners straight into the image where its
        // patches' runs are vectors ([`pooled::RunTable::vector_runs`]); with shorter runs
        // (few input channels) the winners' gradient is spread into the dense output
        // gradient, for the product.
        let table = matches!(rows_of, Rows::MaxPooled { .. }).then(|| run_table(&g));
        let sparse = table.as_ref().is_some_and(pooled::RunTable::vector_runs);
        let kts = kt.as_slice().expect("standard layout");
        let out = par_images(dims[0], per_image, chunk, |images, out| {
            let rows = images.len() * positions;
            let base = images.start * per_image;
            T::with_scratch(|buf| {
                let dense_len = if table.is_some() { rows * c_out } else { 0 };
                let work_len = rows_of.work_len(rows * c_out) + dense_len;
                // Zeroed where a window reaches into padding if the winners are found
                // again: they build patches there.
                let zeroed = table.is_some() && g.padded;
                let (patches, work) = patch_and_grad_buffers(buf, rows * row, zeroed, work_len);
                let (dense, work) = work.split_at_mut(dense_len);
                let d: &[T] = if let Some(table) = &table {
                    let mut at = Vec::new();
                    let (winners, _) = rows_of.winners(&g, images.clone(), patches, work, &mut at);
                    if sparse {
                        pooled::input_grad(kts, per_image, table, &winners, out);
                        return;
                    }
                    dense.fill(T::zero());
                    winners.spread(images.len(), positions, dense);
                    dense
                } else {
                    rows_of.get(&g, images.clone(), work)
                };
                let d = ArrayView2::from_shape((rows, c_out), d).expect("rows * c_out");
                let mut c =
                    ArrayViewMut2::from_shape((rows, row), &mut *patches).expect("rows * row");
                gemm_serial(T::one(), &d, &kt, T::zero(), &mut c);
                for_each_run(dims, &g.window, &g.p, images, |dst, src, len| {
                    add_into(
                        &mut out[src - base..src - base + len],
                        &patches[dst..dst + len],
                    );
                });
            });
        });
        Tensor::from_vec(out, image_shape)
    }

    /// The gradient of [`conv2d`](Tensor::conv2d) with respect to its kernel, for `self` the
    /// input batch and `dy` the gradient of the output: `[kh, kw, c_in, c_out]`, the sum
    /// over the batch of `patches^T @ dy`.
    ///
    /// The batch is cut into one group of images per task, fixed by the shapes and the pool's
    /// size (not by which thread is free), and the groups' sums are added in order, so the
    /// result is the same from run to run.
    ///
    /// # Errors
    /// If the shapes do not fit (as [`conv2d`](Tensor::conv2d)'s, and `dy` must be the
    /// output's shape).
    pub fn conv2d_backprop_kernel(
        &self,
        dy: &Tensor<T>,
        options: &Conv2dOptions,
        kernel_shape: &[usize],
    ) -> Result<Tensor<T>> {
        let (dk, _) =
            self.conv2d_backprop_kernel_of(OutputGrad::plain(dy), options, kernel_shape, false)?;
        Ok(dk)
    }

    /// [`conv2d_backprop_kernel`](Tensor::conv2d_backprop_kernel) of an output gradient in
    /// any of [`OutputGrad`]'s forms, and, with `bias`, also the bias's gradient `[c_out]`
    /// (the gradient's sum over every position), from the same chunks.
    ///
    /// # Errors
    /// As [`conv2d_backprop_kernel`](Tensor::conv2d_backprop_kernel)'s; every tensor of
    /// `grad` must have the shape the convolution gives it.
    pub fn conv2d_backprop_kernel_of(
        &self,
        grad: OutputGrad<'_, T>,
        options: &Conv2dOptions,
        kernel_shape: &[usize],
        bias: bool,
    ) -> Result<(Tensor<T>, Option<Tensor<T>>)> {
        let op = "conv2d_backprop_kernel";
        let g = geometry(op, self.shape(), kernel_shape, options)?;
        let rows_of = Rows::new(op, &grad, &g, kernel_shape)?;
        let (dims, c_out, row) = (g.dims, g.c_out, g.row);
        let x = self.to_contiguous();
        let x = x.as_slice().expect("contiguous");
        let positions = g.p.out[0] * g.p.out[1];
        let held = rows_of.work_len(c_out);
        let chunk = chunk_images(dims[0], positions * (row + c_out + held) * size_of::<T>());
        let groups = dims[0].min(2 * rayon::current_num_threads()).max(1);
        let per_group = dims[0].div_ceil(groups).max(1);
        // Per group: the kernel's sum, then the bias's.
        let width = row * c_out + if bias { c_out } else { 0 };
        let in_image = dims[1] * dims[2] * dims[3];
        let table = matches!(rows_of, Rows::MaxPooled { .. }).then(|| run_table(&g));
        let sparse = table.as_ref().is_some_and(pooled::RunTable::vector_runs);
        let sums: Vec<Vec<T>> = (0..dims[0].div_ceil(per_group))
            .into_par_iter()
            .map(|group| {
                let mut sum = vec![T::zero(); width];
                let (ksum, bsum) = sum.split_at_mut(row * c_out);
                // The winners' kernel gradient, by channel (`c_out x row`), and a patch row
                // of working space for it.
                let mut transposed: Option<Vec<T>> = None;
                let mut patch_row = Vec::new();
                let last = ((group + 1) * per_group).min(dims[0]);
                let mut first = group * per_group;
                while first < last {
                    let images = first..(first + chunk).min(last);
                    let rows = images.len() * positions;
                    T::with_scratch(|buf| {
                        let dense_len = if table.is_some() { rows * c_out } else { 0 };
                        let work_len = rows_of.work_len(rows * c_out) + dense_len;
                        let (patches, work) =
                            patch_and_grad_buffers(buf, rows * row, g.padded, work_len);
                        let (dense, work) = work.split_at_mut(dense_len);
                        let d: &[T] = if let Rows::MaxPooled { place, pool, .. } = &rows_of {
                            let mut at = Vec::new();
                            let (winners, built) =
                                rows_of.winners(&g, images.clone(), patches, work, &mut at);
                            let masked = direct::usable(row) && place.pad == [0; 4];
                            // The bias gradient from the winners (the dense path below
                            // sums its own rows).
                            if bias && (masked || sparse) {
                                crate::simd::dispatch(
                                    #[inline(always)]
                                    || {
                                        for r in winners.gz.chunks_exact(c_out) {
                                            add_into(bsum, r);
                                        }
                                    },
                                );
                            }
                            if masked {
                                // A short patch row: the direct loops, a block of channels
                                // at a time over the patches, the winners as masks.
                                if !built {
                                    g.fill_patches(x, images.clone(), patches);
                                }
                                let pooling = direct::Pooling {
                                    size: pool.size,
                                    strides: pool.strides,
                                    dilation: pool.dilation,
                                    conv: g.p.out,
                                    pooled: place.out,
                                };
                                direct::pooled_kernel_grad(
                                    patches,
                                    winners.at,
                                    winners.gz,
                                    images.len(),
                                    &pooling,
                                    row,
                                    ksum,
                                );
                                return;
                            }
                            if sparse {
                                let kt =
                                    transposed.get_or_insert_with(|| vec![T::zero(); row * c_out]);
                                patch_row.resize(row, T::zero());
                                let chunk_x = &x[images.start * in_image..images.end * in_image];
                                let table = table.as_ref().expect("a max-pooled gradient's runs");
                                pooled::kernel_grad(
                                    chunk_x,
                                    in_image,
                                    table,
                                    &winners,
                                    kt,
                                    &mut patch_row,
                                );
                                return;
                            }
                            // Short runs the direct loops do not serve: the winners' gradient
                            // spread into the dense one, for the product below.
                            if !built {
                                g.fill_patches(x, images.clone(), patches);
                            }
                            dense.fill(T::zero());
                            winners.spread(images.len(), positions, dense);
                            dense
                        } else {
                            g.fill_patches(x, images.clone(), patches);
                            rows_of.get(&g, images.clone(), work)
                        };
                        if direct::usable(row) {
                            direct::kernel_grad(patches, d, row, ksum);
                        } else {
                            let a =
                                ArrayView2::from_shape((rows, row), &*patches).expect("rows * row");
                            let dm =
                                ArrayView2::from_shape((rows, c_out), d).expect("rows * c_out");
                            let mut acc = ArrayViewMut2::from_shape((row, c_out), &mut *ksum)
                                .expect("row * c_out");
                            gemm_serial(T::one(), &a.t(), &dm, T::one(), &mut acc);
                        }
                        if bias {
                            crate::simd::dispatch(
                                #[inline(always)]
                                || {
                                    for r in d.chunks_exact(c_out) {
                                        add_into(bsum, r);
                                    }
                                },
                            );
                        }
                    });
                    first = images.end;
                }
                if let Some(kt) = transposed {
                    for (r, ks) in ksum.chunks_exact_mut(c_out).enumerate() {
                        for (c, k) in ks.iter_mut().enumerate() {
                            *k += kt[c * row + r];
                        }
                    }
                }
                sum
            })
            .collect();
        let mut total = sums.into_iter();
        let mut out = total.next().unwrap_or_else(|| vec![T::zero(); width]);
        for s in total {
            add_into(&mut out, &s);
        }
        let db = if bias {
            Some(Tensor::from_vec(out.split_off(row * c_out), &[c_out])?)
        } else {
            None
        };
        Ok((Tensor::from_vec(out, kernel_shape)?, db))
    }

    /// Max pooling: the largest element of each window, per channel, `[b, oh, ow, c]`.
    /// Positions in padding never win, as in TensorFlow.
    ///
    /// ```
    /// use tensor::Tensor;
    /// use tensor::ops::conv::Window;
    /// let x = Tensor::from_vec((0..16).map(|v| v as f32).collect(), &[1, 4, 4, 1]).unwrap();
    /// let w = Window { strides: [2, 2], ..Window::new([2, 2]) };
    /// assert_eq!(x.max_pool(&w).unwrap().to_vec(), vec![5.0, 7.0, 13.0, 15.0]);
    /// ```
    ///
    /// # Errors
    /// If the input is not 4-D or the window does not fit (see [`Window::place`]).
    pub fn max_pool(&self, window: &Window) -> Result<Tensor<T>> {
        let op = "max_pool2d";
        let dims = image_dims(op, self.shape())?;
        let p = window.place([dims[1], dims[2]], op)?;
        let x = self.to_contiguous();
        let x = x.as_slice().expect("contiguous");
        let (c, in_image) = (dims[3], dims[1] * dims[2] * dims[3]);
        let per_image = p.out[0] * p.out[1] * c;
        let chunk = chunk_images(dims[0], (in_image + per_image) * size_of::<T>());
        let out = par_images(dims[0], per_image, chunk, |images, out| {
            let x = &x[images.start * in_image..images.end * in_image];
            max_pool_into(x, [images.len(), dims[1], dims[2], c], window, &p, out);
        });
        Tensor::from_vec(out, &[dims[0], p.out[0], p.out[1], c])
    }

    /// For each window of max pooling over `self`, the element of `source` (a tensor of
    /// `self`'s shape) at the position of the window's largest element of `self` (the first
    /// of equal ones): `[b, oh, ow, c]`. With `source` `self` it is the max pooling; with a
    /// gradient, the gradient of [`max_pool_grad`](Tensor::max_pool_grad).
    ///
    /// # Errors
    /// If `self` is not 4-D, the window does not fit, or `source`'s shape is not `self`'s.
    pub fn max_pool_take(&self, source: &Tensor<T>, window: &Window) -> Result<Tensor<T>> {
        let op = "max_pool2d";
        let dims = image_dims(op, self.shape())?;
        same_shape(op, self.shape(), source.shape())?;
        let p = window.place([dims[1], dims[2]], op)?;
        let (x, g) = (self.to_contiguous(), source.to_contiguous());
        let (x, g) = (
            x.as_slice().expect("contiguous"),
            g.as_slice().expect("contiguous"),
        );
        let per_image = p.out[0] * p.out[1] * dims[3];
        let read = 2 * dims[1] * dims[2] * dims[3];
        let chunk = chunk_images(dims[0], (read + per_image) * size_of::<T>());
        let c = dims[3];
        let out = par_images(dims[0], per_image, chunk, |images, out| {
            for_each_pooled_tap(x, dims, window, &p, images, |o, t, winner, k| {
                let out = &mut out[o..o + c];
                for ((o, &w), &v) in out.iter_mut().zip(winner).zip(&g[t..t + c]) {
                    let old = *o;
                    *o = if w == k { v } else { old };
                }
            });
        });
        Tensor::from_vec(out, &[dims[0], p.out[0], p.out[1], dims[3]])
    }

    /// The gradient of max pooling over `self` for the output gradient `dy`
    /// `[b, oh, ow, c]`: each window's gradient goes to the position of its largest element
    /// (the first of equal ones), and the rest is zero. `self`'s shape.
    ///
    /// ```
    /// use tensor::Tensor;
    /// use tensor::ops::conv::Window;
    /// let x = Tensor::from_vec(vec![1.0f32, 4.0, 3.0, 2.0], &[1, 2, 2, 1]).unwrap();
    /// let dy = Tensor::from_vec(vec![10.0f32], &[1, 1, 1, 1]).unwrap();
    /// let dx = x.max_pool_grad(&dy, &Window::new([2, 2])).unwrap();
    /// assert_eq!(dx.to_vec(), vec![0.0, 10.0, 0.0, 0.0]);
    /// ```
    ///
    /// # Errors
    /// If `self` is not 4-D, the window does not fit, or `dy` is not the pooling's output
    /// shape.
    pub fn max_pool_grad(&self, dy: &Tensor<T>, window: &Window) -> Result<Tensor<T>> {
        let op = "max_pool2d_grad";
        let dims = image_dims(op, self.shape())?;
        let p = window.place([dims[1], dims[2]], op)?;
        let per_out = p.out[0] * p.out[1] * dims[3];
        same_shape(op, &[dims[0], p.out[0], p.out[1], dims[3]], dy.shape())?;
        let (x, dy) = (self.to_contiguous(), dy.to_contiguous());
        let (x, dy) = (
            x.as_slice().expect("contiguous"),
            dy.as_slice().expect("contiguous"),
        );
        let per_image = dims[1] * dims[2] * dims[3];
        let chunk = chunk_images(dims[0], (per_image + per_out) * size_of::<T>());
        let out = par_images(dims[0], per_image, chunk, |images, out| {
            let x = &x[images.start * per_image..images.end * per_image];
            let dims = [images.len(), dims[1], dims[2], dims[3]];
            max_pool_grad_into(x, dims, window, &p, &dy[images.start * per_out..], out);
        });
        Tensor::from_vec(out, self.shape())
    }
}

/// Max pooling of the images of `x` (a batch of `dims`) into `out`, `[b, oh, ow, c]` for
/// the placement `p`.
fn max_pool_into<T: Element>(
    x: &[T],
    dims: [usize; 4],
    window: &Window,
    p: &Placement,
    out: &mut [T],
) {
    let c = dims[3];
    crate::simd::dispatch(
        #[inline(always)]
        || {
            for_each_window(
                dims,
                window,
                p,
                0..dims[0],
                #[inline(always)]
                |o, taps, _| window_max(x, taps, &mut out[o..o + c]),
            )
        },
    );
}

/// [`max_pool_into`], and each element's [`MaxPoolIndices`] position into `at`.
fn max_pool_indices_into<T: Element>(
    x: &[T],
    dims: [usize; 4],
    window: &Window,
    p: &Placement,
    out: &mut [T],
    at: &mut [u32],
) {
    let c = dims[3];
    crate::simd::dispatch(
        #[inline(always)]
        || {
            for_each_window(
                dims,
                window,
                p,
                0..dims[0],
                #[inline(always)]
                |o, taps, positions| {
                    window_max_at(x, taps, positions, &mut out[o..o + c], &mut at[o..o + c]);
                },
            )
        },
    );
}

/// [`window_max`], and for each channel the position of the tap that won (the first of
/// equal ones) from `positions`, one per tap, into `at`.
#[inline(always)]
fn window_max_at<T: Element>(
    x: &[T],
    taps: &[usize],
    positions: &[u32],
    best: &mut [T],
    at: &mut [u32],
) {
    let c = best.len();
    let whole = c - c % LANES;
    for o in (0..whole).step_by(LANES) {
        let (mut m, mut a) = (lanes(x, taps[0] + o), [positions[0]; LANES]);
        for (&t, &pos) in taps[1..].iter().zip(&positions[1..]) {
            let v = lanes(x, t + o);
            for ((m, a), v) in m.iter_mut().zip(a.iter_mut()).zip(v) {
                let more = v > *m;
                *m = if more { v } else { *m };
                *a = if more { pos } else { *a };
            }
        }
        best[o..o + LANES].copy_from_slice(&m);
        at[o..o + LANES].copy_from_slice(&a);
    }
    let (best, at) = (&mut best[whole..], &mut at[whole..]);
    best.copy_from_slice(&x[taps[0] + whole..taps[0] + c]);
    at.fill(positions[0]);
    for (&t, &pos) in taps[1..].iter().zip(&positions[1..]) {
        for ((b, a), &v) in best.iter_mut().zip(at.iter_mut()).zip(&x[t + whole..t + c]) {
            let (old_b, old_a, more) = (*b, *a, v > *b);
            *b = if more { v } else { old_b };
            *a = if more { pos } else { old_a };
        }
    }
}

/// Max pooling's gradient for the images of `x` (a batch of `dims`) and the gradient `dy`
/// of the pooled images (from the same first image), added into `out` (`x`'s size): each
/// window's gradient goes to its largest element, the first of equal ones.
fn max_pool_grad_into<T: Element>(
    x: &[T],
    dims: [usize; 4],
    window: &Window,
    p: &Placement,
    dy: &[T],
    out: &mut [T],
) {
    let c = dims[3];
    for_each_pooled_tap(x, dims, window, p, 0..dims[0], |o, t, winner, k| {
        let dx = &mut out[t..t + c];
        for ((d, &w), &v) in dx.iter_mut().zip(winner).zip(&dy[o..o + c]) {
            *d += if w == k { v } else { T::zero() };
        }
    });
}

/// `out[i] += v[i]`, element by element.
#[inline(always)]
fn add_into<T: Element>(out: &mut [T], v: &[T]) {
    // In blocks of `LANES` first, so that a short row (a bias of 32 channels) runs as whole
    // vectors rather than in the remainder loop.
    let n = out.len().min(v.len());
    let whole = n - n % LANES;
    for (o, v) in out[..whole]
        .chunks_exact_mut(LANES)
        .zip(v[..whole].chunks_exact(LANES))
    {
        let mut sum = lanes(v, 0);
        for (s, &o) in sum.iter_mut().zip(o.iter()) {
            *s += o;
        }
        o.copy_from_slice(&sum);
    }
    for (o, &v) in out[whole..n].iter_mut().zip(&v[whole..n]) {
        *o += v;
    }
}

/// Checks that `got` is `expected` (two tensors of one op that must agree); the error names
/// both.
fn same_shape(op: &'static str, expected: &[usize], got: &[usize]) -> Result<()> {
    if expected == got {
        return Ok(());
    }
    Err(TensorError::InvalidArgument {
        op,
        message: format!("expected a tensor of shape {expected:?}, got {got:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct 2-D convolution (cross-correlation, as Keras's), for checking.
    fn naive_conv(x: &Tensor<f64>, k: &Tensor<f64>, window: &Window) -> Tensor<f64> {
        let [b, h, w, c] = image_dims("test", x.shape()).unwrap();
        let (kh, kw, o) = (k.shape()[0], k.shape()[1], k.shape()[3]);
        let p = window.place([h, w], "test").unwrap();
        let mut out = vec![0.0; b * p.out[0] * p.out[1] * o];
        for n in 0..b {
            for oy in 0..p.out[0] {
                for ox in 0..p.out[1] {
                    for f in 0..o {
                        let mut s = 0.0;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * window.strides[0] + ky * window.dilation[0])
                                    as isize
                                    - p.pad[0] as isize;
                                let ix = (ox * window.strides[1] + kx * window.dilation[1])
                                    as isize
                                    - p.pad[2] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                for ch in 0..c {
                                    s += x.get(&[n, iy as usize, ix as usize, ch]).unwrap()
                                        * k.get(&[ky, kx, ch, f]).unwrap();
                                }
                            }
                        }
                        out[((n * p.out[0] + oy) * p.out[1] + ox) * o + f] = s;
                    }
                }
            }
        }
        Tensor::from_vec(out, &[b, p.out[0], p.out[1], o]).unwrap()
    }

    #[test]
    fn patches_times_the_kernel_is_the_convolution() {
        let mut rng = crate::random::seeded(3);
        for (padding, strides, dilation) in [
            (Padding::Valid, [1, 1], [1, 1]),
            (Padding::Same, [1, 1], [1, 1]),
            (Padding::Same, [2, 2], [1, 1]),
            (Padding::Valid, [2, 1], [1, 2]),
            (Padding::Same, [1, 3], [2, 1]),
        ] {
            let window = Window {
                size: [3, 2],
                strides,
                dilation,
                padding,
            };
            // Window rows of 2, 6 and 70 elements: runs copied with a length fixed at
            // compile time and one known only at run time.
            for c in [1, 3, 35] {
                let x = Tensor::<f64>::rand_normal(&[2, 7, 6, c], 0.0, 1.0, &mut rng);
                let k = Tensor::<f64>::rand_normal(&[3, 2, c, 4], 0.0, 1.0, &mut rng);
                let p = x.patches(&window).unwrap();
                let [b, oh, ow, row] = [p.shape()[0], p.shape()[1], p.shape()[2], p.shape()[3]];
                let y = p
                    .reshape(&[b * oh * ow, row])
                    .matmul(&k.reshape(&[row, 4]))
                    .reshape(&[b, oh, ow, 4]);
                let want = naive_conv(&x, &k, &window);
                assert!(y.allclose(&want, 1e-12, 1e-12), "{window:?} c {c}");
            }
        }
    }

    /// The windows the convolution tests run through: every padding, strides and dilation.
    fn test_windows() -> Vec<Window> {
        [
            (Padding::Valid, [1, 1], [1, 1]),
            (Padding::Same, [1, 1], [1, 1]),
            (Padding::Same, [2, 2], [1, 1]),
            (Padding::Valid, [2, 1], [1, 2]),
            (Padding::Same, [1, 3], [2, 1]),
        ]
        .into_iter()
        .map(|(padding, strides, dilation)| Window {
            size: [3, 2],
            strides,
            dilation,
            padding,
        })
        .collect()
    }

    fn options(w: &Window) -> Conv2dOptions {
        Conv2dOptions {
            strides: w.strides,
            padding: w.padding,
            dilation: w.dilation,
        }
    }

    #[test]
    fn chunked_convolution_is_the_convolution_plus_bias_and_epilogue() {
        direct::on_both_paths(|| {
            let mut rng = crate::random::seeded(5);
            // 9 images: several chunks of images, the last one shorter.
            let x = Tensor::<f64>::rand_normal(&[9, 7, 6, 3], 0.0, 1.0, &mut rng);
            // 4 output channels, and 35: two whole blocks of the bias's addition and a rest.
            for c_out in [4, 35] {
                let k = Tensor::<f64>::rand_normal(&[3, 2, 3, c_out], 0.0, 1.0, &mut rng);
                let b = Tensor::<f64>::rand_normal(&[c_out], 0.0, 1.0, &mut rng);
                for window in test_windows() {
                    let relu = |v: &mut [f64]| v.iter_mut().for_each(|v| *v = v.max(0.0));
                    let y = x.conv2d(&k, Some(&b), &options(&window), &relu).unwrap();
                    let want = (&naive_conv(&x, &k, &window) + &b).map(|v| v.max(0.0));
                    assert!(y.allclose(&want, 1e-12, 1e-12), "{window:?}");
                    let plain = x.conv2d(&k, None, &options(&window), &|_| {}).unwrap();
                    assert!(plain.allclose(&naive_conv(&x, &k, &window), 1e-12, 1e-12));
                }
            }
        });
    }

    #[test]
    fn backprop_input_and_kernel_are_the_adjoints_of_the_convolution() {
        direct::on_both_paths(|| {
            // <conv(x, k), g> = <x, backprop_input(g, k)> = <k, backprop_kernel(x, g)>.
            let mut rng = crate::random::seeded(6);
            let x = Tensor::<f64>::rand_normal(&[9, 7, 6, 3], 0.0, 1.0, &mut rng);
            let k = Tensor::<f64>::rand_normal(&[3, 2, 3, 4], 0.0, 1.0, &mut rng);
            for window in test_windows() {
                let o = options(&window);
                let y = x.conv2d(&k, None, &o, &|_| {}).unwrap();
                let g = Tensor::<f64>::rand_normal(y.shape(), 0.0, 1.0, &mut rng);
                let dx = g.conv2d_backprop_input(&k, &o, x.shape()).unwrap();
                let dk = x.conv2d_backprop_kernel(&g, &o, k.shape()).unwrap();
                let lhs = (&y * &g).sum_all();
                assert!((lhs - (&x * &dx).sum_all()).abs() < 1e-9, "{window:?}");
                assert!((lhs - (&k * &dk).sum_all()).abs() < 1e-9, "{window:?}");
                // And they are the patch forms: fold(g @ k^T) and patches^T @ g.
                let p = x.patches(&window).unwrap();
                let row = p.shape()[3];
                let rows = p.len() / row;
                let (pm, gm) = (p.reshape(&[rows, row]), g.reshape(&[rows, 4]));
                let folded = gm
                    .matmul(&k.reshape(&[row, 4]).transpose())
                    .reshape(p.shape())
                    .fold_patches(&window, x.shape())
                    .unwrap();
                assert!(dx.allclose(&folded, 1e-12, 1e-12), "{window:?}");
                let kgrad = pm.transpose().matmul(&gm).reshape(k.shape());
                assert!(dk.allclose(&kgrad, 1e-12, 1e-12), "{window:?}");
            }
        });
    }

    #[test]
    fn gradients_through_a_derivative_equal_those_of_the_gradient_computed_first() {
        direct::on_both_paths(|| {
            let mut rng = crate::random::seeded(8);
            let x = Tensor::<f64>::rand_normal(&[9, 7, 6, 3], 0.0, 1.0, &mut rng);
            let k = Tensor::<f64>::rand_normal(&[3, 2, 3, 4], 0.0, 1.0, &mut rng);
            // A relu's derivative from its output: dz = dy where y > 0.
            let chain = |dy: &[f64], y: &[f64], dz: &mut [f64]| {
                for ((d, &g), &y) in dz.iter_mut().zip(dy).zip(y) {
                    *d = if y > 0.0 { g } else { 0.0 };
                }
            };
            for window in test_windows() {
                let o = options(&window);
                let y = x
                    .conv2d(&k, None, &o, &|v| {
                        v.iter_mut().for_each(|v| *v = v.max(0.0))
                    })
                    .unwrap();
                let dy = Tensor::<f64>::rand_normal(y.shape(), 0.0, 1.0, &mut rng);
                let dz = Tensor::from_vec(
                    dy.to_vec()
                        .iter()
                        .zip(y.to_vec())
                        .map(|(&d, y)| if y > 0.0 { d } else { 0.0 })
                        .collect(),
                    y.shape(),
                )
                .unwrap();
                let through = OutputGrad::Output {
                    dy: &dy,
                    through: Some((&y, &chain)),
                };
                let dx = Tensor::conv2d_backprop_input_of(through, &k, &o, x.shape()).unwrap();
                assert_eq!(
                    dx,
                    dz.conv2d_backprop_input(&k, &o, x.shape()).unwrap(),
                    "{window:?}"
                );
                let (dk, db) = x
                    .conv2d_backprop_kernel_of(through, &o, k.shape(), true)
                    .unwrap();
                assert_eq!(
                    dk,
                    x.conv2d_backprop_kernel(&dz, &o, k.shape()).unwrap(),
                    "{window:?}"
                );
                let sums = dz.reshape(&[dz.len() / 4, 4]).sum(0, false);
                assert!(db.unwrap().allclose(&sums, 1e-12, 1e-12), "{window:?}");
            }
            let wrong = Tensor::<f64>::zeros(&[9, 5, 5, 4]);
            let through = OutputGrad::Output {
                dy: &wrong,
                through: Some((&x, &chain)),
            };
            let e = x.conv2d_backprop_kernel_of(
                through,
                &Conv2dOptions::default(),
                &[3, 2, 3, 4],
                false,
            );
            assert!(e.unwrap_err().to_string().contains("[9, 5, 5, 4]"));
        });
    }

    /// A convolution pooled chunk by chunk is the convolution, then the pooling; its
    /// gradients, computing the output again inside the kernels, are those of the pooling's
    /// gradient taken first, for poolings that tile, overlap, skip and pad.
    #[test]
    fn max_pooled_convolution_and_its_gradients_equal_the_two_ops_apart() {
        direct::on_both_paths(|| {
            let mut rng = crate::random::seeded(12);
            let x = Tensor::<f64>::rand_normal(&[9, 8, 7, 3], 0.0, 1.0, &mut rng);
            let k = Tensor::<f64>::rand_normal(&[3, 2, 3, 4], 0.0, 1.0, &mut rng);
            let relu = |v: &mut [f64]| v.iter_mut().for_each(|v| *v = v.max(0.0));
            let chain = |dy: &[f64], y: &[f64], dz: &mut [f64]| {
                for ((d, &g), &y) in dz.iter_mut().zip(dy).zip(y) {
                    *d = if y > 0.0 { g } else { 0.0 };
                }
            };
            let pools = [
                Window {
                    strides: [2, 2],
                    ..Window::new([2, 2])
                },
                Window {
                    strides: [1, 2],
                    ..Window::new([3, 2])
                },
                Window {
                    strides: [3, 3],
                    ..Window::new([2, 2])
                },
                Window {
                    strides: [2, 2],
                    padding: Padding::Same,
                    ..Window::new([3, 3])
                },
            ];
            // 4 channels out take the direct loops' channel-at-a-time path; 20, a whole
            // block of 16 and 4 more.
            for c_out in [4, 20] {
                let k = Tensor::<f64>::rand_normal(&[3, 2, 3, c_out], 0.0, 1.0, &mut rng);
                let b = Tensor::<f64>::rand_normal(&[c_out], 0.0, 1.0, &mut rng);
                for window in test_windows() {
                    let o = options(&window);
                    let y = x.conv2d(&k, Some(&b), &o, &relu).unwrap();
                    for pool in pools {
                        if pool.place([y.shape()[1], y.shape()[2]], "t").is_err() {
                            continue;
                        }
                        let pooled = x.conv2d_max_pool(&k, Some(&b), &o, &relu, &pool).unwrap();
                        assert_eq!(pooled, y.max_pool(&pool).unwrap(), "{window:?} {pool:?}");
                        let (same, at) = x
                            .conv2d_max_pool_with_indices(&k, Some(&b), &o, &relu, &pool)
                            .unwrap();
                        assert_eq!(same, pooled);
                        // Each index is where the pooled value came from.
                        let [_, oh, ow, c] = image_dims("t", y.shape()).unwrap();
                        let plane = oh * ow;
                        let yv = y.to_vec();
                        for (e, (&v, &i)) in pooled.to_vec().iter().zip(at.as_slice()).enumerate() {
                            let image = e / (at.shape()[1] * at.shape()[2] * c);
                            assert_eq!(yv[(image * plane + i as usize) * c + e % c], v);
                        }
                        let dp = Tensor::<f64>::rand_normal(pooled.shape(), 0.0, 1.0, &mut rng);
                        let dy = y.max_pool_grad(&dp, &pool).unwrap();
                        let apart = OutputGrad::Output {
                            dy: &dy,
                            through: Some((&y, &chain)),
                        };
                        // The pooled output and its winners passed in, or found again.
                        for output in [None, Some((&pooled, &at))] {
                            let conv = PooledConv {
                                x: &x,
                                kernel: &k,
                                bias: Some(&b),
                                activation: &relu,
                                chain: Some(&chain),
                                output,
                            };
                            let fused = OutputGrad::MaxPooled {
                                dp: &dp,
                                pool,
                                conv,
                            };
                            let dx =
                                |g| Tensor::conv2d_backprop_input_of(g, &k, &o, x.shape()).unwrap();
                            assert!(
                                dx(fused).allclose(&dx(apart), 1e-12, 1e-12),
                                "{window:?} {pool:?}"
                            );
                            let dk =
                                |g| x.conv2d_backprop_kernel_of(g, &o, k.shape(), true).unwrap();
                            let ((fk, fb), (ak, ab)) = (dk(fused), dk(apart));
                            assert!(fk.allclose(&ak, 1e-12, 1e-12), "{window:?} {pool:?}");
                            assert!(fb.unwrap().allclose(&ab.unwrap(), 1e-12, 1e-12));
                        }
                    }
                }
            }
            // The pooled gradient must be the pooling's output shape, and the pool must fit.
            let o = Conv2dOptions::default();
            let pool = Window::new([2, 2]);
            let conv = PooledConv {
                x: &x,
                kernel: &k,
                bias: None,
                activation: &relu,
                chain: None,
                output: None,
            };
            let wrong = Tensor::<f64>::zeros(&[9, 6, 6, 4]);
            let g = OutputGrad::MaxPooled {
                dp: &wrong,
                pool,
                conv,
            };
            let e = x
                .conv2d_backprop_kernel_of(g, &o, k.shape(), false)
                .unwrap_err();
            assert!(
                e.to_string()
                    .contains("expected a tensor of shape [9, 5, 5, 4], got [9, 6, 6, 4]"),
                "{e}"
            );
            // Kept winners of another pooling are refused, naming both shapes, as is a
            // kept output of another shape.
            let other = Window {
                strides: [2, 2],
                ..pool
            };
            let (p2, at2) = x
                .conv2d_max_pool_with_indices(&k, None, &o, &relu, &other)
                .unwrap();
            let right = Tensor::<f64>::zeros(&[9, 5, 5, 4]);
            let (p, at) = x
                .conv2d_max_pool_with_indices(&k, None, &o, &relu, &pool)
                .unwrap();
            for output in [(&p2, &at2), (&p, &at2), (&p2, &at)] {
                let conv = PooledConv {
                    output: Some(output),
                    ..conv
                };
                let g = OutputGrad::MaxPooled {
                    dp: &right,
                    pool,
                    conv,
                };
                let e = x
                    .conv2d_backprop_kernel_of(g, &o, k.shape(), false)
                    .unwrap_err();
                assert!(
                    e.to_string()
                        .contains("expected a tensor of shape [9, 5, 5, 4], got [9, 3, 3, 4]"),
                    "{e}"
                );
                let e = Tensor::conv2d_backprop_input_of(g, &k, &o, x.shape()).unwrap_err();
                assert!(e.to_string().contains("[9, 3, 3, 4]"), "{e}");
            }
            let e = x
                .conv2d_max_pool(&k, None, &o, &relu, &Window::new([9, 9]))
                .unwrap_err();
            assert!(e.to_string().contains("does not fit"), "{e}");
        });
    }

    /// The winners' gradients where patch runs are whole vectors: runs of 51 (3 blocks
    /// and 3 elements), 144 (a group of 8 blocks and 1) and, with dilation, 48; unpadded
    /// convolutions (every patch the first moved) and padded ones (the general loops).
    #[test]
    fn max_pooled_gradients_on_long_runs_equal_the_two_ops_apart() {
        let mut rng = crate::random::seeded(13);
        let relu = |v: &mut [f64]| v.iter_mut().for_each(|v| *v = v.max(0.0));
        let chain = |dy: &[f64], y: &[f64], dz: &mut [f64]| {
            for ((d, &g), &y) in dz.iter_mut().zip(dy).zip(y) {
                *d = if y > 0.0 { g } else { 0.0 };
            }
        };
        let pool = Window {
            strides: [2, 2],
            ..Window::new([2, 2])
        };
        for (c_in, dilation) in [(17, [1, 1]), (48, [1, 1]), (48, [1, 2])] {
            let x = Tensor::<f64>::rand_normal(&[3, 7, 8, c_in], 0.0, 1.0, &mut rng);
            let k = Tensor::<f64>::rand_normal(&[2, 3, c_in, 20], 0.0, 1.0, &mut rng);
            let b = Tensor::<f64>::rand_normal(&[20], 0.0, 1.0, &mut rng);
            for padding in [Padding::Valid, Padding::Same] {
                let o = Conv2dOptions {
                    padding,
                    dilation,
                    ..Conv2dOptions::default()
                };
                let y = x.conv2d(&k, Some(&b), &o, &relu).unwrap();
                let (p, at) = x
                    .conv2d_max_pool_with_indices(&k, Some(&b), &o, &relu, &pool)
                    .unwrap();
                let dp = Tensor::<f64>::rand_normal(p.shape(), 0.0, 1.0, &mut rng);
                let dy = y.max_pool_grad(&dp, &pool).unwrap();
                let apart = OutputGrad::Output {
                    dy: &dy,
                    through: Some((&y, &chain)),
                };
                for output in [None, Some((&p, &at))] {
                    let conv = PooledConv {
                        x: &x,
                        kernel: &k,
                        bias: Some(&b),
                        activation: &relu,
                        chain: Some(&chain),
                        output,
                    };
                    let fused = OutputGrad::MaxPooled {
                        dp: &dp,
                        pool,
                        conv,
                    };
                    let dx = |g| Tensor::conv2d_backprop_input_of(g, &k, &o, x.shape()).unwrap();
                    let case = format!("c_in {c_in}, {dilation:?}, {padding:?}");
                    assert!(dx(fused).allclose(&dx(apart), 1e-12, 1e-12), "{case}");
                    let dk = |g| x.conv2d_backprop_kernel_of(g, &o, k.shape(), true).unwrap();
                    let ((fk, fb), (ak, ab)) = (dk(fused), dk(apart));
                    assert!(fk.allclose(&ak, 1e-12, 1e-12), "{case}");
                    assert!(fb.unwrap().allclose(&ab.unwrap(), 1e-12, 1e-12), "{case}");
                }
            }
        }
    }

    #[test]
    fn an_empty_batch_gives_empty_outputs_and_a_zero_kernel_gradient() {
        let (x, k) = (
            Tensor::<f32>::zeros(&[0, 5, 5, 2]),
            Tensor::ones(&[3, 3, 2, 4]),
        );
        let o = Conv2dOptions::default();
        let y = x.conv2d(&k, None, &o, &|_| {}).unwrap();
        assert_eq!(y.shape(), &[0, 3, 3, 4]);
        let dk = x.conv2d_backprop_kernel(&y, &o, k.shape()).unwrap();
        assert_eq!(dk, Tensor::zeros(k.shape()));
        let dx = y.conv2d_backprop_input(&k, &o, x.shape()).unwrap();
        assert_eq!(dx.shape(), x.shape());
    }

    #[test]
    fn convolution_shape_errors_name_both_shapes() {
        let x = Tensor::<f32>::zeros(&[2, 5, 5, 3]);
        let o = Conv2dOptions::default();
        let e = x
            .conv2d(&Tensor::zeros(&[3, 3, 2, 4]), None, &o, &|_| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[batch, height, width, 2]") && e.contains("[2, 5, 5, 3]"),
            "{e}"
        );
        let k = Tensor::zeros(&[3, 3, 3, 4]);
        let e = x
            .conv2d(&k, Some(&Tensor::zeros(&[3])), &o, &|_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a tensor of shape [4], got [3]"), "{e}");
        let e = Tensor::<f32>::zeros(&[2, 3, 3, 3])
            .conv2d_backprop_input(&k, &o, x.shape())
            .unwrap_err()
            .to_string();
        assert!(e.contains("[2, 3, 3, 4]"), "{e}");
    }

    /// Max pooling by the definition: the first largest element of each window, per channel.
    fn naive_argmax(x: &Tensor<f64>, window: &Window) -> (Vec<usize>, Vec<usize>) {
        let [b, h, w, c] = image_dims("test", x.shape()).unwrap();
        let p = window.place([h, w], "test").unwrap();
        let v = x.to_vec();
        let mut chosen = Vec::new();
        for n in 0..b {
            for oy in 0..p.out[0] {
                for ox in 0..p.out[1] {
                    for ch in 0..c {
                        let mut best: Option<usize> = None;
                        for ky in 0..window.size[0] {
                            for kx in 0..window.size[1] {
                                let iy = (oy * window.strides[0] + ky) as isize - p.pad[0] as isize;
                                let ix = (ox * window.strides[1] + kx) as isize - p.pad[2] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let i = ((n * h + iy as usize) * w + ix as usize) * c + ch;
                                if best.is_none_or(|j| v[i] > v[j]) {
                                    best = Some(i);
                                }
                            }
                        }
                        chosen.push(best.unwrap());
                    }
                }
            }
        }
        (chosen, vec![b, p.out[0], p.out[1], c])
    }

    #[test]
    fn max_pool_its_gradient_and_take_route_through_the_first_largest_element() {
        let mut rng = crate::random::seeded(7);
        // Rounded values, so that windows hold ties; 35 channels are two whole blocks of
        // the channel loops and a rest.
        for c in [3, 35] {
            let x =
                Tensor::<f64>::rand_normal(&[9, 7, 6, c], 0.0, 1.0, &mut rng).map(|v| v.round());
            first_largest_element_routes(&x, &mut rng);
        }
        let x = Tensor::<f64>::zeros(&[9, 7, 6, 3]);
        let e = x
            .max_pool_grad(&Tensor::zeros(&[9, 3, 3, 3]), &Window::new([2, 2]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[9, 6, 5, 3]"), "{e}");
    }

    /// Max pooling, its gradient and its take over `x` equal the naive first-largest
    /// element's, for both paddings and several strides.
    fn first_largest_element_routes(x: &Tensor<f64>, rng: &mut rand::rngs::StdRng) {
        for padding in [Padding::Valid, Padding::Same] {
            for strides in [[2, 2], [1, 2], [3, 1]] {
                let window = Window {
                    strides,
                    padding,
                    ..Window::new([2, 3])
                };
                let (chosen, shape) = naive_argmax(x, &window);
                let xv = x.to_vec();
                let want: Vec<f64> = chosen.iter().map(|&i| xv[i]).collect();
                assert_eq!(x.max_pool(&window).unwrap().to_vec(), want, "{window:?}");
                let dy = Tensor::<f64>::rand_normal(&shape, 0.0, 1.0, rng);
                let mut dx = vec![0.0; x.len()];
                for (&i, &g) in chosen.iter().zip(&dy.to_vec()) {
                    dx[i] += g;
                }
                let got = x.max_pool_grad(&dy, &window).unwrap().to_vec();
                assert!(got.iter().zip(&dx).all(|(a, b)| (a - b).abs() < 1e-12));
                let src = Tensor::<f64>::rand_normal(x.shape(), 0.0, 1.0, rng);
                let sv = src.to_vec();
                let taken: Vec<f64> = chosen.iter().map(|&i| sv[i]).collect();
                assert_eq!(x.max_pool_take(&src, &window).unwrap().to_vec(), taken);
            }
        }
    }

    #[test]
    fn same_padding_is_keras_s() {
        // Keras/TensorFlow: output ceil(n / s), extra padding at the bottom/right.
        let w = |k, s, d| Window {
            size: [k, k],
            strides: [s, s],
            dilation: [d, d],
            padding: Padding::Same,
        };
        assert_eq!(w(3, 1, 1).place([28, 28], "t").unwrap().pad, [1, 1, 1, 1]);
        assert_eq!(w(2, 1, 1).place([5, 5], "t").unwrap().pad, [0, 1, 0, 1]);
        assert_eq!(w(3, 2, 1).place([6, 6], "t").unwrap().pad, [0, 1, 0, 1]);
        assert_eq!(w(3, 2, 1).place([6, 6], "t").unwrap().out, [3, 3]);
        assert_eq!(w(3, 1, 2).place([10, 10], "t").unwrap().pad, [2, 2, 2, 2]);
    }

    #[test]
    fn fold_is_the_adjoint_of_patches() {
        // <patches(x), g> = <x, fold(g)> for any x and g.
        let mut rng = crate::random::seeded(4);
        let window = Window {
            size: [2, 3],
            strides: [2, 1],
            dilation: [1, 2],
            padding: Padding::Same,
        };
        let x = Tensor::<f64>::rand_normal(&[2, 5, 6, 2], 0.0, 1.0, &mut rng);
        let px = x.patches(&window).unwrap();
        let g = Tensor::<f64>::rand_normal(px.shape(), 0.0, 1.0, &mut rng);
        let fg = g.fold_patches(&window, x.shape()).unwrap();
        let lhs = (&px * &g).sum_all();
        let rhs = (&x * &fg).sum_all();
        assert!((lhs - rhs).abs() < 1e-10, "{lhs} against {rhs}");
    }

    #[test]
    fn bad_windows_and_shapes_are_errors() {
        let x = Tensor::<f32>::zeros(&[1, 4, 4, 1]);
        let e = x.patches(&Window::new([5, 2])).unwrap_err().to_string();
        assert!(e.contains("does not fit an image of [4, 4]"), "{e}");
        let e = x
            .patches(&Window {
                strides: [0, 1],
                ..Window::new([2, 2])
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("must all be at least 1"), "{e}");
        let e = Tensor::<f32>::zeros(&[4, 4, 1])
            .patches(&Window::new([2, 2]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 dimensions"), "{e}");
        let e = Tensor::<f32>::zeros(&[1, 3, 3, 3])
            .fold_patches(&Window::new([2, 2]), &[1, 4, 4, 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("[1, 3, 3, 4]"), "{e}");
    }
}
