//! Matrix products: 2-D by 2-D, and batched 3-D (a batch of 1 broadcasts, and a 2-D operand
//! is shared by every matrix of the batch).
//!
//! Operands may be strided views (a `transpose()` is free): the product reads them in place.

#[cfg(target_arch = "x86_64")]
mod avx512;

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, Ix2, IxDyn};

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::memory::Out;
use crate::tensor::Tensor;

/// Shape check for `a @ b`: returns `(batch, m, k, n, output shape)`.
fn matmul_shapes(a: &[usize], b: &[usize]) -> Result<(usize, usize, usize, usize, Vec<usize>)> {
    for s in [a, b] {
        if s.len() != 2 && s.len() != 3 {
            return Err(TensorError::RankMismatch {
                op: "matmul",
                expected: "a 2-D matrix or a 3-D batch of matrices".into(),
                shape: s.to_vec(),
            });
        }
    }
    let mismatch = || TensorError::MatmulMismatch {
        op: "matmul",
        lhs: a.to_vec(),
        rhs: b.to_vec(),
    };
    let (m, k) = (a[a.len() - 2], a[a.len() - 1]);
    let (k2, n) = (b[b.len() - 2], b[b.len() - 1]);
    if k != k2 {
        return Err(mismatch());
    }
    let ba = if a.len() == 3 { a[0] } else { 1 };
    let bb = if b.len() == 3 { b[0] } else { 1 };
    if a.len() == 2 && b.len() == 2 {
        return Ok((1, m, k, n, vec![m, n]));
    }
    let batch = if ba == bb || bb == 1 {
        ba
    } else if ba == 1 {
        bb
    } else {
        return Err(mismatch());
    };
    Ok((batch, m, k, n, vec![batch, m, n]))
}

/// The `i`-th matrix of a 2-D or 3-D operand (a 2-D operand or a batch of 1 repeats).
fn matrix<T: Element>(t: &Tensor<T>, i: usize) -> ArrayView2<'_, T> {
    let v = t.data.view();
    let v = if v.ndim() == 3 {
        let j = if v.shape()[0] == 1 { 0 } else { i };
        v.index_axis_move(Axis(0), j)
    } else {
        v
    };
    v.into_dimensionality::<Ix2>().expect("rank checked")
}

/// Products below this many floating-point operations run on one thread: splitting them
/// costs more in synchronisation than it saves (about 50 us of single-core work).
pub const PARALLEL_MIN_FLOPS: usize = 4_000_000;

/// `c = alpha * a @ b + beta * c` for 2-D views (strided operands are read in place).
///
/// Large products are split into independent blocks of `c` (by columns, or by rows when `c`
/// is narrow) computed on rayon's thread pool, one block per thread; each block is a
/// single-threaded GEMM from the `gemm` crate (tiny ones a direct loop). Set `RAYON_NUM_THREADS` to limit
/// the threads.
pub fn gemm_into<T: Element>(
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) {
    // SAFETY: `c` holds initialized `T`s, so it may be read whatever `beta` is.
    unsafe {
        split_gemm(
            alpha,
            a.view(),
            b.view(),
            beta,
            c.view_mut(),
            crate::parallel::splits(),
            None,
        )
    };
}

/// `c = alpha * a @ b + beta * c` on the calling thread only, for kernels that already
/// spread their work over the pool (a convolution, chunk by chunk).
pub(crate) fn gemm_serial<T: Element>(
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) {
    // SAFETY: `c` holds initialized `T`s, so it may be read whatever `beta` is.
    unsafe { split_gemm(alpha, a.view(), b.view(), beta, c.view_mut(), 0, None) };
}

/// `a @ b` into a new matrix. The output is allocated uninitialized and written once by the
/// product (no zero-fill first: for a weight gradient that is a pass over megabytes).
fn new_product<T: Element>(a: &ArrayView2<'_, T>, b: &ArrayView2<'_, T>) -> Array2<T> {
    new_product_then(a, b, None)
}

/// [`new_product`], with `epilogue` run on each block of the output once it is computed.
fn new_product_then<T: Element>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    epilogue: Option<Epilogue<'_, T>>,
) -> Array2<T> {
    let mut out = Array2::<T>::uninit((a.nrows(), b.ncols()));
    // SAFETY: `beta` is zero, so `c` is only written, never read (the contract of
    // `split_gemm`).
    unsafe {
        split_gemm(
            T::one(),
            a.view(),
            b.view(),
            T::zero(),
            out.view_mut(),
            crate::parallel::splits(),
            epilogue,
        )
    };
    // SAFETY: with `beta` zero, `split_gemm` writes every element of `c` (its contract), and
    // `out` is `c`.
    unsafe { out.assume_init() }
}

/// Products of at most this many multiply-adds skip the packed GEMM: for a tiny model its
/// packing buffers and setup cost more than the arithmetic.
const SMALL_PRODUCT: usize = 4096;

/// `c = alpha * a @ b + beta * c` by the definition, for tiny operands.
///
/// # Safety
/// If `beta != 0`, every element of `c` is initialized (with `beta == 0` none is read).
unsafe fn small_gemm<T: Element, O: Out<T>>(
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, O>,
) {
    let (m, n) = c.dim();
    let k = a.ncols();
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::zero();
            for p in 0..k {
                acc += a[[i, p]] * b[[p, j]];
            }
            let old = if beta == T::zero() {
                T::zero()
            } else {
                // SAFETY: `beta != 0`, so the caller guarantees `c` is initialized.
                beta * unsafe { c[[i, j]].get() }
            };
            c[[i, j]].set(old + alpha * acc);
        }
    }
}

/// Outputs narrower than this many columns take brick's own kernel (`f32`, AVX-512): the
/// `gemm` crate's register tiles are 64 columns wide, so a classifier's 10-column output
/// layer leaves most of their lanes idle (its products ran 1.6-1.8x slower in the crate).
/// Wider outputs stay with the crate, measured a few percent faster there in training.
const NARROW: usize = 64;

/// Whether an output `n` columns wide with this column stride goes to brick's own narrow
/// kernel ([`avx512`]): `f32`, rows contiguous, a processor with AVX-512.
fn narrow_kernel<T: Element>(n: usize, col_stride: isize) -> bool {
    cfg!(target_arch = "x86_64")
        && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && n < NARROW
        && (col_stride == 1 || n == 1)
        && crate::simd::level() == crate::simd::Level::Avx512
}

/// Narrow products split across the cores from this many floating-point operations: the
/// narrow kernel has no packing to share, so halves cost only the hand-off (a classifier's
/// `128 x 512 x 10` output layer, 1.3 MFLOP, runs in about 21 us on one core).
const NARROW_PARALLEL_MIN_FLOPS: usize = 1_000_000;

/// One block on one thread: a narrow `f32` output on a processor with AVX-512 through
/// brick's own kernel ([`avx512`]), everything else through the `gemm` crate's kernels (the
/// instruction set is chosen at run time).
///
/// # Safety
/// If `beta != 0`, every element of `c` is initialized (with `beta == 0` none is read, and
/// every one is written).
unsafe fn kernel_gemm<T: Element, O: Out<T>>(
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, O>,
) {
    let (m, n) = c.dim();
    let k = a.ncols();
    debug_assert_eq!((a.nrows(), b.nrows(), b.ncols()), (m, k, n));
    let stride = |s: &[isize]| [s[0], s[1]];
    let (sa, sb, sc) = (
        stride(a.strides()),
        stride(b.strides()),
        stride(c.strides()),
    );
    #[cfg(target_arch = "x86_64")]
    if narrow_kernel::<T>(n, sc[1]) && sa[1] != 1 && sa[0] == 1 && m >= NARROW {
        // `a` is a transpose (a weight gradient `x^T @ dz`), which the narrow kernel would
        // read a column at a time. The transposed product `b^T @ a^T` is wide and reads
        // both operands along their rows, which the `gemm` crate does at full vector width;
        // it goes to a scratch `[n, m]` and is copied into `c` transposed (written in place
        // with `c`'s strides, the crate's strided stores cost more than the copy).
        let mut t = vec![T::zero(); n * m];
        // SAFETY: `t` is a fresh contiguous `n x m` buffer (row stride `m`), written and not
        // read (`read_dst` false). The operands are the views `b` and `a` with their strides
        // swapped, which address the same elements as in the call below (see there).
        unsafe {
            gemm::gemm(
                n,
                m,
                k,
                t.as_mut_ptr(),
                1,
                m as isize,
                false,
                b.as_ptr(),
                sb[0],
                sb[1],
                a.as_ptr(),
                sa[0],
                sa[1],
                T::zero(),
                T::one(),
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        for (i, mut row) in c.rows_mut().into_iter().enumerate() {
            for (j, out) in row.iter_mut().enumerate() {
                let product = alpha * t[j * m + i];
                // SAFETY: read only with `beta != 0`, when our caller guarantees `c`
                // initialized.
                let old = if beta == T::zero() {
                    T::zero()
                } else {
                    beta * unsafe { out.get() }
                };
                out.set(old + product);
            }
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if narrow_kernel::<T>(n, sc[1]) {
        let f = |x: T| x.to_f64_exact() as f32; // exact: T is f32
        // SAFETY: T is f32 (checked above), so the views' pointers address f32 elements. The
        // processor has AVX-512F (`simd::level` detected it). Each pointer comes from a live
        // view with the dimensions and element strides passed with it, so every element
        // addressed lies inside that view; `c` is a mutable view, which Rust's borrow rules
        // keep from overlapping `a` or `b`, and a view never maps two indices to one element
        // with a unit column stride (or a single column). `O` is `f32` or `MaybeUninit<f32>`,
        // same layout; the kernel reads `c` only if `beta != 0`, when our caller guarantees
        // it initialized, and otherwise writes every element.
        unsafe {
            avx512::sgemm(
                m,
                n,
                k,
                f(alpha),
                a.as_ptr().cast::<f32>(),
                (sa[0], sa[1]),
                b.as_ptr().cast::<f32>(),
                (sb[0], sb[1]),
                f(beta),
                c.as_mut_ptr().cast::<f32>(),
                sc[0],
            );
        }
        return;
    }
    // SAFETY: each pointer comes from a live ndarray view with the dimensions and (element)
    // strides passed with it, so every element `gemm` addresses, `p + i * row_stride +
    // j * col_stride` for `i` and `j` within the dimensions, lies inside that view. `c` is a
    // mutable view, so Rust's borrow rules guarantee it overlaps neither `a` nor `b`, and
    // nothing else reads or writes it during the call. `gemm` supports exactly f32 and f64,
    // the two `Element` types. With `read_dst` false (beta zero) it writes every element of
    // `c` without reading it; with `beta != 0` our caller guarantees `c` initialized. `O` is
    // `T` or `MaybeUninit<T>`, same layout. Its scalars are (factor of the old c, factor of
    // the product): ours swapped.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr().cast::<T>(),
            sc[1],
            sc[0],
            beta != T::zero(),
            a.as_ptr(),
            sa[1],
            sa[0],
            b.as_ptr(),
            sb[1],
            sb[0],
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Work done on each block of a product's output right after the block is computed, on the
/// core that computed it, while the block is still in that core's cache:
/// `f(column, width, rows)`, `rows` being whole rows of the block, `width` values each, and
/// `column` the index in the whole output of the block's first column. A block stored in
/// one piece (the whole output of a small product) is one call; a block of columns, one per
/// row.
#[derive(Clone, Copy)]
struct Epilogue<'a, T> {
    f: &'a (dyn Fn(usize, usize, &mut [T]) + Sync),
    /// The column of the whole output where this block starts.
    column: usize,
}

impl<T: Element> Epilogue<'_, T> {
    /// The epilogue of a block `by` columns further right.
    fn shifted(self, by: usize) -> Self {
        Epilogue {
            column: self.column + by,
            ..self
        }
    }

    /// Runs on the block `c`.
    ///
    /// # Safety
    /// The product has just written every element of `c` (as `split_gemm` does with `beta`
    /// zero), or `c` was initialized. Rows of `c` are contiguous: the products that take an
    /// epilogue write a fresh row-major output.
    unsafe fn apply<O: Out<T>>(&self, c: &mut ArrayViewMut2<'_, O>) {
        // SAFETY (of both casts): `O` is `T` or `MaybeUninit<T>`, both with `T`'s layout,
        // and every element is initialized (the caller's guarantee).
        let as_t = |s: &mut [O]| unsafe { &mut *(s as *mut [O] as *mut [T]) };
        let width = c.ncols();
        if let Some(all) = c.as_slice_mut() {
            (self.f)(self.column, width, as_t(all));
            return;
        }
        for mut row in c.rows_mut() {
            let row = row
                .as_slice_mut()
                .expect("a product with an epilogue writes a row-major output");
            (self.f)(self.column, width, as_t(row));
        }
    }
}

/// `c = alpha * a @ b + beta * c`, halved `splits` times into blocks of `c` computed in
/// parallel. With `beta == 0`, every element of `c` is written and none is read, so `c` may
/// be a fresh uninitialized output.
///
/// # Safety
/// If `beta != 0`, every element of `c` is initialized.
unsafe fn split_gemm<T: Element, O: Out<T>>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, O>,
    splits: usize,
    epilogue: Option<Epilogue<'_, T>>,
) {
    let (m, n) = c.dim();
    let k = a.ncols();
    if m * n * k <= SMALL_PRODUCT {
        // SAFETY: our caller's guarantee, passed on.
        unsafe { small_gemm(alpha, &a, &b, beta, &mut c) };
        if let Some(e) = epilogue {
            // SAFETY: the product has just written all of `c`, or `c` was initialized.
            unsafe { e.apply(&mut c) };
        }
        return;
    }
    let min_flops = if narrow_kernel::<T>(n, c.strides()[1]) && a.strides()[1] == 1 {
        NARROW_PARALLEL_MIN_FLOPS
    } else {
        PARALLEL_MIN_FLOPS
    };
    if splits == 0 || 2 * m * n * k < min_flops || (m < 32 && n < 32) {
        // SAFETY: our caller's guarantee, passed on.
        unsafe { kernel_gemm(alpha, &a, &b, beta, &mut c) };
        if let Some(e) = epilogue {
            // SAFETY: the product has just written all of `c`, or `c` was initialized.
            unsafe { e.apply(&mut c) };
        }
        return;
    }
    // Halves on a multiple of 16, the width of the kernels' register blocks.
    let half = |len: usize| (len.div_ceil(2)).div_ceil(16) * 16;
    if n >= m || m < 32 {
        let mid = half(n).min(n);
        let (b1, b2) = b.split_at(Axis(1), mid);
        let (c1, c2) = c.split_at(Axis(1), mid);
        // SAFETY: each half of `c` is initialized if `c` is (our caller's guarantee).
        let e2 = epilogue.map(|e| e.shifted(mid));
        rayon::join(
            || unsafe { split_gemm(alpha, a, b1, beta, c1, splits - 1, epilogue) },
            || unsafe { split_gemm(alpha, a, b2, beta, c2, splits - 1, e2) },
        );
    } else {
        let mid = half(m).min(m);
        let (a1, a2) = a.split_at(Axis(0), mid);
        let (c1, c2) = c.split_at(Axis(0), mid);
        // SAFETY: each half of `c` is initialized if `c` is (our caller's guarantee).
        rayon::join(
            || unsafe { split_gemm(alpha, a1, b, beta, c1, splits - 1, epilogue) },
            || unsafe { split_gemm(alpha, a2, b, beta, c2, splits - 1, epilogue) },
        );
    }
}

impl<T: Element> Tensor<T> {
    /// The matrix product `self @ other`.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let i = Tensor::eye(2);
    /// assert_eq!(a.matmul(&i), a);
    /// ```
    ///
    /// # Panics
    /// If the shapes do not fit; see [`try_matmul`](Self::try_matmul).
    pub fn matmul(&self, other: &Tensor<T>) -> Tensor<T> {
        self.try_matmul(other).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The matrix product, or an error naming both shapes, e.g.
    /// `matmul: cannot multiply [128, 784] by [512, 10] (inner dimensions 784 and 512 differ)`.
    pub fn try_matmul(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        if let (Ok(a), Ok(b)) = (
            self.data.view().into_dimensionality::<Ix2>(),
            other.data.view().into_dimensionality::<Ix2>(),
        ) && a.ncols() == b.nrows()
        {
            // Two matrices (the common case): no batch bookkeeping.
            return Ok(Tensor::from_array(new_product(&a, &b)));
        }
        let (batch, m, _k, n, out_shape) = matmul_shapes(self.shape(), other.shape())?;
        let mut out = ndarray::ArrayD::<T>::uninit(IxDyn(&out_shape));
        {
            let mut out3 = out
                .view_mut()
                .into_shape_with_order((batch, m, n))
                .expect("fresh array is contiguous");
            for i in 0..batch {
                let c = out3.index_axis_mut(Axis(0), i);
                let (a, b) = (matrix(self, i), matrix(other, i));
                // SAFETY: `beta` is zero, so `c` is only written (`split_gemm`'s contract).
                unsafe {
                    split_gemm(
                        T::one(),
                        a,
                        b,
                        T::zero(),
                        c,
                        crate::parallel::splits(),
                        None,
                    )
                };
            }
        }
        // SAFETY: every matrix of the batch was written whole by `split_gemm` (beta zero),
        // and together they are all of `out`.
        let out = unsafe { out.assume_init() };
        Ok(Tensor::from_array(out))
    }
}

impl<T: Element> Tensor<T> {
    /// `self @ w + b` for a batch `[n, k]`, weights `[k, m]` and an optional bias `[m]`.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2]).unwrap();
    /// let w = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], &[2, 2]).unwrap();
    /// let b = Tensor::from_vec(vec![10.0f32, 20.0], &[2]).unwrap();
    /// assert_eq!(x.try_linear(&w, Some(&b)).unwrap().to_vec(), vec![11.0, 22.0]);
    /// ```
    ///
    /// # Errors
    /// If `self` or `w` is not 2-D, the inner dimensions differ, or `b` is not `[m]`.
    pub fn try_linear(&self, w: &Tensor<T>, b: Option<&Tensor<T>>) -> Result<Tensor<T>> {
        self.try_linear_then(w, b, |_| {})
    }

    /// [`try_linear`](Self::try_linear) followed by the element-wise function `f`, applied
    /// in place (an activation). The bias and `f` are applied to each block of the output
    /// by the core that computed it, right after, while the block is in that core's cache:
    /// no pass of their own over the output. `f` gets runs of the output of any length, so
    /// it must treat each element alone.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2]).unwrap();
    /// let w = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], &[2, 2]).unwrap();
    /// let b = Tensor::from_vec(vec![-10.0f32, 20.0], &[2]).unwrap();
    /// let relu = |v: &mut [f32]| v.iter_mut().for_each(|v| *v = v.max(0.0));
    /// assert_eq!(x.try_linear_then(&w, Some(&b), relu).unwrap().to_vec(), vec![0.0, 22.0]);
    /// ```
    ///
    /// # Errors
    /// As [`try_linear`](Self::try_linear).
    pub fn try_linear_then(
        &self,
        w: &Tensor<T>,
        b: Option<&Tensor<T>>,
        f: impl Fn(&mut [T]) + Sync,
    ) -> Result<Tensor<T>> {
        if let Some(t) = [self, w].into_iter().find(|t| t.ndim() != 2) {
            return Err(TensorError::RankMismatch {
                op: "linear",
                expected: "a 2-D batch and 2-D weights".into(),
                shape: t.shape().to_vec(),
            });
        }
        let (rows, k, n) = (self.shape()[0], self.shape()[1], w.shape()[1]);
        if w.shape()[0] != k {
            return Err(TensorError::MatmulMismatch {
                op: "matmul",
                lhs: self.shape().to_vec(),
                rhs: w.shape().to_vec(),
            });
        }
        if let Some(b) = b
            && b.shape() != [n]
        {
            return Err(TensorError::ShapeMismatch {
                op: "linear",
                lhs: vec![rows, n],
                rhs: b.shape().to_vec(),
            });
        }
        let bias = b.map(Tensor::to_contiguous);
        let bias = bias.as_ref().map(|b| b.as_slice().expect("contiguous"));
        let epilogue = |column: usize, width: usize, rows: &mut [T]| {
            if let Some(bias) = bias
                && width > 0
            {
                let bias = &bias[column..column + width];
                crate::simd::dispatch(
                    #[inline(always)]
                    || {
                        for row in rows.chunks_exact_mut(width) {
                            row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
                        }
                    },
                );
            }
            f(rows);
        };
        let out = new_product_then(
            &matrix(self, 0),
            &matrix(w, 0),
            Some(Epilogue {
                f: &epilogue,
                column: 0,
            }),
        );
        Ok(Tensor::from_array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] += a[i * k + p] * b[p * n + j];
                }
            }
        }
        c
    }

    #[test]
    fn matches_the_naive_product() {
        let a: Vec<f64> = (0..12).map(|x| x as f64 * 0.5 - 2.0).collect();
        let b: Vec<f64> = (0..20).map(|x| (x as f64).sin()).collect();
        let ta = Tensor::from_vec(a.clone(), &[3, 4]).unwrap();
        let tb = Tensor::from_vec(b.clone(), &[4, 5]).unwrap();
        let c = ta.matmul(&tb);
        assert_eq!(c.shape(), &[3, 5]);
        for (x, y) in c.to_vec().iter().zip(naive(&a, &b, 3, 4, 5)) {
            assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn transposed_views_are_read_in_place() {
        let a = Tensor::<f64>::from_vec((0..6).map(|x| x as f64).collect(), &[2, 3]).unwrap();
        // a^T a through a strided view
        let g = a.transpose().matmul(&a);
        assert_eq!(g.to_vec(), vec![9., 12., 15., 12., 17., 22., 15., 22., 29.]);
    }

    #[test]
    fn batched_products_broadcast_a_batch_of_one_and_2d_operands() {
        let a = Tensor::<f64>::from_vec((0..12).map(|x| x as f64).collect(), &[2, 2, 3]).unwrap();
        let w = Tensor::<f64>::from_vec((0..6).map(|x| x as f64).collect(), &[3, 2]).unwrap();
        let c = a.matmul(&w);
        assert_eq!(c.shape(), &[2, 2, 2]);
        let second = a.slice_axis(0, 1..2).reshape(&[2, 3]).matmul(&w);
        assert_eq!(c.slice_axis(0, 1..2).reshape(&[2, 2]), second);
        let w1 = w.reshape(&[1, 3, 2]);
        assert_eq!(a.matmul(&w1), c);
    }

    #[test]
    fn split_products_equal_the_single_threaded_one() {
        // Big enough to be split, with sizes that are not multiples of the split alignment.
        let (m, k, n) = (97, 131, 203);
        let a: Vec<f64> = (0..m * k)
            .map(|i| ((i * 37 % 101) as f64) / 50.0 - 1.0)
            .collect();
        let b: Vec<f64> = (0..k * n)
            .map(|i| ((i * 53 % 97) as f64) / 40.0 - 1.2)
            .collect();
        let ta = Tensor::from_vec(a.clone(), &[m, k]).unwrap();
        let tb = Tensor::from_vec(b.clone(), &[k, n]).unwrap();
        let want = naive(&a, &b, m, k, n);
        for threads in [1, 2, 3, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool.install(|| ta.matmul(&tb));
            for (x, y) in got.to_vec().iter().zip(&want) {
                assert!((x - y).abs() < 1e-10, "{threads} threads");
            }
            // Tall and narrow: split by rows; and a transposed operand.
            let tall = pool.install(|| tb.transpose().matmul(&ta.transpose()));
            assert!(tall.allclose(&got.transpose(), 1e-12, 1e-10));
        }
    }

    #[test]
    fn tiny_products_take_the_direct_path_with_the_same_result() {
        for (m, k, n) in [(4, 2, 8), (3, 0, 2), (1, 1, 1), (16, 16, 16)] {
            let a: Vec<f64> = (0..m * k).map(|i| i as f64 * 0.3 - 1.0).collect();
            let b: Vec<f64> = (0..k * n).map(|i| 2.0 - i as f64 * 0.7).collect();
            let c = Tensor::from_vec(a.clone(), &[m, k])
                .unwrap()
                .matmul(&Tensor::from_vec(b.clone(), &[k, n]).unwrap());
            for (x, y) in c.to_vec().iter().zip(naive(&a, &b, m, k, n)) {
                assert!((x - y).abs() < 1e-12);
            }
        }
        // beta = 1 accumulates (the bias path of linear).
        let x = Tensor::<f64>::ones(&[2, 3]);
        let w = Tensor::<f64>::ones(&[3, 2]);
        let b = Tensor::from_vec(vec![0.5, -1.0], &[2]).unwrap();
        assert_eq!(
            x.try_linear(&w, Some(&b)).unwrap().to_vec(),
            vec![3.5, 2.0, 3.5, 2.0]
        );
    }

    #[test]
    fn operands_with_negative_and_unit_free_strides() {
        use ndarray::{Array2, s};
        // Large enough for the kernel path (not the direct small loop).
        let a = Array2::<f64>::from_shape_fn((40, 30), |(i, j)| (i as f64 - j as f64 * 0.5).sin());
        let b = Array2::<f64>::from_shape_fn((60, 50), |(i, j)| (i as f64 * 0.3 + j as f64).cos());
        // b reversed along both axes and taking every other row: negative and non-unit strides.
        let b_view = b.slice(s![..;-2, ..;-1]).to_owned();
        let reversed = Tensor::from_array(b.slice(s![..;-2, ..;-1]).to_owned());
        let at = Tensor::from_array(a.clone());
        let want = a.dot(&b_view);
        assert!(
            at.matmul(&reversed)
                .allclose(&Tensor::from_array(want), 1e-12, 1e-12)
        );
        let mut b_neg = b.clone();
        b_neg.invert_axis(ndarray::Axis(0));
        let from_neg = Tensor::from_array(b_neg.slice_move(s![..30, ..]));
        let want = a.dot(&b.slice(s![30..;-1, ..]).to_owned());
        assert!(
            at.matmul(&from_neg)
                .allclose(&Tensor::from_array(want), 1e-12, 1e-12)
        );
    }

    /// Fresh outputs are allocated uninitialized: every path must write every element. The
    /// allocator is first handed a NaN-filled block of the output's size (which it tends to
    /// give back), so an element left unwritten shows up as NaN instead of a lucky zero.
    fn fresh_outputs_are_written_whole<T: Element>(tol: f64) {
        let products = [
            (200, 0, 300),   // empty inner dimension: all zeros, on the direct path
            (5, 7, 9),       // direct path
            (128, 96, 10),   // narrow output (brick's own f32 kernel on AVX-512)
            (70, 50, 90),    // one-thread kernel
            (160, 120, 200), // split across threads
        ];
        for (m, k, n) in products {
            let a: Vec<T> = (0..m * k)
                .map(|i| T::from_f64_lossy(((i * 37 % 101) as f64) / 50.0 - 1.0))
                .collect();
            let b: Vec<T> = (0..k * n)
                .map(|i| T::from_f64_lossy(((i * 53 % 97) as f64) / 40.0 - 1.2))
                .collect();
            let f64s = |v: &[T]| v.iter().map(|x| x.to_f64_exact()).collect::<Vec<_>>();
            let want = naive(&f64s(&a), &f64s(&b), m, k, n);
            let ta = Tensor::from_vec(a, &[m, k]).unwrap();
            let tb = Tensor::from_vec(b, &[k, n]).unwrap();
            let check = |got: Tensor<T>, what: &str| {
                for (i, (x, y)) in got.to_vec().iter().zip(&want).enumerate() {
                    let x = x.to_f64_exact();
                    assert!(
                        (x - y).abs() <= tol * (1.0 + y.abs()),
                        "{what} {m}x{k}x{n}: element {i} is {x}, expected {y}"
                    );
                }
            };
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            pool.install(|| {
                drop(std::hint::black_box(vec![T::nan(); m * n]));
                check(ta.matmul(&tb), "matmul");
                drop(std::hint::black_box(vec![T::nan(); m * n]));
                check(ta.try_linear(&tb, None).unwrap(), "linear");
                drop(std::hint::black_box(vec![T::nan(); 2 * m * n]));
                let batch = Tensor::concat(&[&ta, &ta], 0).reshape(&[2, m, k]);
                let got = batch.matmul(&tb);
                check(
                    got.slice_axis(0, 0..1).reshape(&[m, n]),
                    "batched matmul, first",
                );
                check(
                    got.slice_axis(0, 1..2).reshape(&[m, n]),
                    "batched matmul, second",
                );
            });
        }
    }

    #[test]
    fn fresh_outputs_are_written_whole_f32() {
        fresh_outputs_are_written_whole::<f32>(1e-5);
    }

    #[test]
    fn fresh_outputs_are_written_whole_f64() {
        fresh_outputs_are_written_whole::<f64>(1e-12);
    }

    #[test]
    fn linear_adds_the_bias_rows() {
        let x = Tensor::<f64>::from_vec((0..6).map(|v| v as f64).collect(), &[2, 3]).unwrap();
        let w =
            Tensor::<f64>::from_vec((0..12).map(|v| v as f64 * 0.5).collect(), &[3, 4]).unwrap();
        let b = Tensor::<f64>::from_vec(vec![1.0, -1.0, 2.0, 0.5], &[4]).unwrap();
        assert_eq!(x.try_linear(&w, Some(&b)).unwrap(), &x.matmul(&w) + &b);
        assert_eq!(x.try_linear(&w, None).unwrap(), x.matmul(&w));
        assert!(x.try_linear(&w, Some(&Tensor::zeros(&[3]))).is_err());
        assert!(x.try_linear(&w.transpose(), None).is_err());
    }

    /// A deterministic `rows x cols` matrix with values in about [-1, 1].
    fn filled<T: Element>(rows: usize, cols: usize, seed: usize) -> Tensor<T> {
        let v = (0..rows * cols)
            .map(|i| T::from_f64_lossy((((i * 37 + seed * 11) % 101) as f64) / 50.0 - 1.0))
            .collect();
        Tensor::from_vec(v, &[rows, cols]).unwrap()
    }

    #[test]
    fn linear_then_applies_the_bias_and_the_function_to_every_block() {
        let square = |v: &mut [f64]| v.iter_mut().for_each(|v| *v = *v * *v - 0.5);
        let products = [
            (3, 4, 0),       // no columns
            (0, 4, 3),       // no rows
            (5, 7, 9),       // direct path
            (70, 50, 90),    // one block
            (160, 120, 200), // split by columns
            (300, 120, 40),  // narrow, split by rows
            (128, 512, 10),  // a classifier's output layer
        ];
        for (m, k, n) in products {
            let (x, w, b) = (
                filled(m, k, 1),
                filled(k, n, 2),
                filled(1, n, 3).reshape(&[n]),
            );
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let mut want = &x.matmul(&w) + &b;
                    square(want.as_slice_mut());
                    let got = x.try_linear_then(&w, Some(&b), square).unwrap();
                    assert!(
                        got.allclose(&want, 1e-12, 1e-12),
                        "{m}x{k}x{n}, {threads} threads"
                    );
                    let mut want = x.matmul(&w);
                    square(want.as_slice_mut());
                    let got = x.try_linear_then(&w, None, square).unwrap();
                    assert!(
                        got.allclose(&want, 1e-12, 1e-12),
                        "{m}x{k}x{n} without bias"
                    );
                });
            }
        }
    }

    #[test]
    fn narrow_products_split_and_of_a_transpose_equal_the_naive_product() {
        // f32, so that on AVX-512 they take brick's narrow kernel (split by rows above 1
        // MFLOP) or, for a transposed `a` (a weight gradient `h^T @ dz`), the wide product
        // of the transposes.
        let f64s = |t: &Tensor<f32>| t.to_vec().iter().map(|&v| v as f64).collect::<Vec<_>>();
        for (m, k, n) in [(128, 512, 10), (512, 128, 10), (100, 37, 3), (70, 200, 63)] {
            let a = filled::<f32>(m, k, 4);
            let at = filled::<f32>(k, m, 5);
            let b = filled::<f32>(k, n, 6);
            let want = naive(&f64s(&a), &f64s(&b), m, k, n);
            let want_t = naive(&f64s(&at.transpose().to_contiguous()), &f64s(&b), m, k, n);
            let close = |got: &Tensor<f32>, want: &[f64], what: &str| {
                for (i, (&x, y)) in got.to_vec().iter().zip(want).enumerate() {
                    let x = x as f64;
                    assert!(
                        (x - y).abs() <= 1e-5 * (1.0 + y.abs()) * (k as f64).sqrt(),
                        "{what} {m}x{k}x{n}: element {i} is {x}, expected {y}"
                    );
                }
            };
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    close(&a.matmul(&b), &want, "a @ b");
                    close(&at.transpose().matmul(&b), &want_t, "a^T @ b");
                    // Accumulated: c = 2 a^T b + 0.5 c.
                    let c0 = filled::<f32>(m, n, 7);
                    let mut c = c0
                        .clone()
                        .into_array()
                        .into_dimensionality::<ndarray::Ix2>()
                        .unwrap();
                    let at_view = at.transpose();
                    gemm_into(
                        2.0,
                        &matrix(&at_view, 0),
                        &matrix(&b, 0),
                        0.5,
                        &mut c.view_mut(),
                    );
                    let acc: Vec<f64> = want_t
                        .iter()
                        .zip(c0.to_vec())
                        .map(|(&p, c)| 2.0 * p + 0.5 * c as f64)
                        .collect();
                    close(&Tensor::from_array(c.into_dyn()), &acc, "2 a^T @ b + 0.5 c");
                });
            }
        }
    }

    #[test]
    fn shape_errors_name_both_shapes() {
        let a = Tensor::<f32>::zeros(&[128, 784]);
        let b = Tensor::<f32>::zeros(&[512, 10]);
        assert_eq!(
            a.try_matmul(&b).unwrap_err().to_string(),
            "matmul: cannot multiply [128, 784] by [512, 10] (inner dimensions 784 and 512 differ)"
        );
        let x = Tensor::<f32>::zeros(&[2, 3, 4]);
        let y = Tensor::<f32>::zeros(&[3, 4, 5]);
        assert_eq!(
            x.try_matmul(&y).unwrap_err().to_string(),
            "matmul: cannot multiply [2, 3, 4] by [3, 4, 5] (batch dimensions [2] and [3] differ)"
        );
        let v = Tensor::<f32>::zeros(&[4]);
        assert_eq!(
            v.try_matmul(&v).unwrap_err().to_string(),
            "matmul: expected a 2-D matrix or a 3-D batch of matrices, got a tensor of shape [4] (1-D)"
        );
    }
}
