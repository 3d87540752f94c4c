//! Seeded random tensors. The same seed gives the same numbers on every run and machine
//! (the generator is ChaCha12 from `rand`, pinned by `Cargo.lock`).

use rand_distr::{Distribution, Normal, Uniform};

pub use rand::rngs::StdRng;
pub use rand::{Rng, SeedableRng};

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::shape::numel;
use crate::tensor::Tensor;

/// A random generator seeded with `seed`: the way to get reproducible weights and shuffles.
///
/// ```
/// use tensor::{Tensor, random::seeded};
/// let a = Tensor::<f32>::rand_uniform(&[2, 3], -1.0, 1.0, &mut seeded(7));
/// let b = Tensor::<f32>::rand_uniform(&[2, 3], -1.0, 1.0, &mut seeded(7));
/// assert_eq!(a, b);
/// ```
pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

impl<T: Element> Tensor<T> {
    /// Samples uniformly from `[low, high)`.
    ///
    /// # Panics
    /// If `low >= high` or a bound is not finite; see [`try_rand_uniform`](Self::try_rand_uniform).
    pub fn rand_uniform<R: Rng + ?Sized>(shape: &[usize], low: T, high: T, rng: &mut R) -> Self {
        Self::try_rand_uniform(shape, low, high, rng).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`rand_uniform`](Self::rand_uniform) that returns an error for bad bounds.
    pub fn try_rand_uniform<R: Rng + ?Sized>(
        shape: &[usize],
        low: T,
        high: T,
        rng: &mut R,
    ) -> Result<Self> {
        let dist = Uniform::new(low, high).map_err(|_| {
            TensorError::invalid(
                "rand_uniform",
                format!("needs finite bounds with low < high, got low {low}, high {high}"),
            )
        })?;
        let v: Vec<T> = (0..numel(shape)).map(|_| dist.sample(rng)).collect();
        Self::from_vec(v, shape)
    }

    /// Samples from a normal distribution with the given mean and standard deviation.
    ///
    /// # Panics
    /// If `std` is negative or a parameter is not finite; see [`try_rand_normal`](Self::try_rand_normal).
    pub fn rand_normal<R: Rng + ?Sized>(shape: &[usize], mean: T, std: T, rng: &mut R) -> Self {
        Self::try_rand_normal(shape, mean, std, rng).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`rand_normal`](Self::rand_normal) that returns an error for bad parameters.
    pub fn try_rand_normal<R: Rng + ?Sized>(
        shape: &[usize],
        mean: T,
        std: T,
        rng: &mut R,
    ) -> Result<Self> {
        let (m, s) = (mean.to_f64_exact(), std.to_f64_exact());
        let dist = Normal::new(m, s)
            .ok()
            .filter(|_| m.is_finite() && s.is_finite() && s >= 0.0)
            .ok_or_else(|| {
                TensorError::invalid(
                    "rand_normal",
                    format!(
                        "needs a finite mean and a finite std >= 0, got mean {mean}, std {std}"
                    ),
                )
            })?;
        // Sampling in f64 and rounding keeps f32 and f64 tensors from one seed consistent.
        let v: Vec<T> = (0..numel(shape))
            .map(|_| T::from_f64_lossy(dist.sample(rng)))
            .collect();
        Self::from_vec(v, shape)
    }
}

/// Elements per parallel task of a [`Tensor::try_bernoulli_mask_keyed`].
const MASK_BLOCK: usize = 1 << 14;

/// The 32-bit draw at position `i` of the mask stream keyed by `key`: the high half of
/// SplitMix64's output at that position. A pure function of the position, so that any
/// stretch of the stream can be drawn without the elements before it (one rank draws the
/// mask of its own rows) and in parallel blocks, with the same numbers on any number of
/// threads or ranks.
#[inline(always)]
fn mask_draw(key: u64, i: u64) -> u32 {
    let mut z = key.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 32) as u32
}

impl<T: Element> Tensor<T> {
    /// A mask of `shape` whose elements are `value` with probability `1 - rate` and 0
    /// otherwise (inverted dropout's mask, with `value = 1 / (1 - rate)`): the keyed mask
    /// of [`try_bernoulli_mask_keyed`](Tensor::try_bernoulli_mask_keyed) with one `u64`
    /// drawn from `rng` as the key, so the same seed gives the same mask.
    ///
    /// ```
    /// use tensor::{Tensor, random::seeded};
    /// let m = Tensor::<f32>::try_bernoulli_mask(&[10_000], 0.25, 2.0, &mut seeded(1)).unwrap();
    /// let kept = m.to_vec().iter().filter(|&&v| v == 2.0).count();
    /// assert!((7_300..7_700).contains(&kept));
    /// assert!(m.to_vec().iter().all(|&v| v == 0.0 || v == 2.0));
    /// ```
    ///
    /// # Errors
    /// If `rate` is not in `[0, 1]`.
    pub fn try_bernoulli_mask<R: Rng + ?Sized>(
        shape: &[usize],
        rate: f64,
        value: T,
        rng: &mut R,
    ) -> Result<Self> {
        Self::try_bernoulli_mask_keyed(shape, rate, value, rng.next_u64(), 0)
    }

    /// Elements `offset..offset + n` (`n` the size of `shape`, row-major) of the endless
    /// Bernoulli mask keyed by `key`: each is `value` when its 32-bit draw is at least
    /// `rate * 2^32`, else 0. Each element depends only on `key` and its position, so a
    /// part of a mask is the same as that part of the whole: a rank of data-parallel
    /// training that holds rows `r..s` of a batch draws, with `offset` the number of
    /// elements in rows `0..r`, the mask one process would draw for those rows.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let whole = Tensor::<f32>::try_bernoulli_mask_keyed(&[4, 3], 0.5, 2.0, 7, 0).unwrap();
    /// let rows_2_3 = Tensor::<f32>::try_bernoulli_mask_keyed(&[2, 3], 0.5, 2.0, 7, 6).unwrap();
    /// assert_eq!(rows_2_3, whole.rows(2..4));
    /// ```
    ///
    /// # Errors
    /// If `rate` is not in `[0, 1]`.
    pub fn try_bernoulli_mask_keyed(
        shape: &[usize],
        rate: f64,
        value: T,
        key: u64,
        offset: usize,
    ) -> Result<Self> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(TensorError::invalid(
                "bernoulli_mask",
                format!("rate must be in [0, 1], got {rate}"),
            ));
        }
        // Kept when a draw is at least `threshold`; a rate of 1 keeps nothing.
        let threshold = (rate * 4_294_967_296.0).round();
        let v = crate::parallel::fill_chunks(numel(shape), MASK_BLOCK, |range, out| {
            if threshold >= 4_294_967_296.0 {
                return; // nothing is kept, and `out` arrives zeroed
            }
            let threshold = threshold as u32;
            let first = (offset + range.start) as u64;
            crate::simd::dispatch(
                #[inline(always)]
                || {
                    for (i, o) in out.iter_mut().enumerate() {
                        let b = mask_draw(key, first + i as u64);
                        *o = if b >= threshold { value } else { T::zero() };
                    }
                },
            );
        });
        Self::from_vec(v, shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers_other_seed_other_numbers() {
        let a = Tensor::<f64>::rand_normal(&[100], 0.0, 1.0, &mut seeded(1));
        let b = Tensor::<f64>::rand_normal(&[100], 0.0, 1.0, &mut seeded(1));
        let c = Tensor::<f64>::rand_normal(&[100], 0.0, 1.0, &mut seeded(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn uniform_stays_in_bounds_and_has_the_right_mean() {
        let t = Tensor::<f64>::rand_uniform(&[20000], -2.0, 4.0, &mut seeded(3));
        assert!(t.to_vec().iter().all(|&x| (-2.0..4.0).contains(&x)));
        let mean = t.sum_all() / 20000.0;
        // standard error of the mean: 6 / sqrt(12 * 20000) ~ 0.012
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
    }

    #[test]
    fn normal_has_the_right_moments() {
        let t = Tensor::<f64>::rand_normal(&[20000], 3.0, 0.5, &mut seeded(4));
        let v = t.to_vec();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!((mean - 3.0).abs() < 0.02, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.02, "std {}", var.sqrt());
    }

    #[test]
    fn bad_parameters_are_errors() {
        let e = Tensor::<f32>::try_rand_uniform(&[2], 1.0, 1.0, &mut seeded(0)).unwrap_err();
        assert!(e.to_string().contains("low 1, high 1"), "{e}");
        assert!(Tensor::<f32>::try_rand_normal(&[2], 0.0, -1.0, &mut seeded(0)).is_err());
        assert!(Tensor::<f32>::try_rand_normal(&[2], f32::NAN, 1.0, &mut seeded(0)).is_err());
    }

    #[test]
    fn bernoulli_mask_keeps_its_rate_and_depends_only_on_the_seed() {
        let n = 3 * MASK_BLOCK + 77; // several blocks and a partial one
        let a = Tensor::<f64>::try_bernoulli_mask(&[n], 0.3, 5.0, &mut seeded(9)).unwrap();
        let b = Tensor::<f64>::try_bernoulli_mask(&[n], 0.3, 5.0, &mut seeded(9)).unwrap();
        let c = Tensor::<f64>::try_bernoulli_mask(&[n], 0.3, 5.0, &mut seeded(10)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let v = a.to_vec();
        assert!(v.iter().all(|&x| x == 0.0 || x == 5.0));
        // 0.7 kept, standard error sqrt(0.21 / n) ~ 0.0023.
        let kept = v.iter().filter(|&&x| x == 5.0).count() as f64 / n as f64;
        assert!((kept - 0.7).abs() < 0.012, "kept {kept}");
        // Neighbours are independent: both kept 0.49 of the time (standard error ~0.0025).
        let both = v.windows(2).filter(|w| w[0] == 5.0 && w[1] == 5.0).count() as f64;
        let both = both / (n - 1) as f64;
        assert!((both - 0.49).abs() < 0.013, "both kept {both}");
        // Parallel blocks do not repeat each other.
        assert_ne!(v[..MASK_BLOCK], v[MASK_BLOCK..2 * MASK_BLOCK]);
        // Any stretch of the stream, across block edges, is the same as that stretch of
        // the whole mask.
        let key = 41;
        let whole = Tensor::<f64>::try_bernoulli_mask_keyed(&[n], 0.3, 5.0, key, 0).unwrap();
        let from = MASK_BLOCK - 5;
        let part = Tensor::<f64>::try_bernoulli_mask_keyed(&[100], 0.3, 5.0, key, from).unwrap();
        assert_eq!(part.to_vec(), whole.to_vec()[from..from + 100]);
        let other = Tensor::<f64>::try_bernoulli_mask_keyed(&[n], 0.3, 5.0, key + 1, 0).unwrap();
        assert_ne!(whole, other);
        let none = Tensor::<f32>::try_bernoulli_mask(&[100], 1.0, 2.0, &mut seeded(0)).unwrap();
        assert!(none.to_vec().iter().all(|&x| x == 0.0));
        let all = Tensor::<f32>::try_bernoulli_mask(&[100], 0.0, 2.0, &mut seeded(0)).unwrap();
        assert!(all.to_vec().iter().all(|&x| x == 2.0));
        let e = Tensor::<f32>::try_bernoulli_mask(&[2], 1.5, 1.0, &mut seeded(0)).unwrap_err();
        assert!(e.to_string().contains("got 1.5"), "{e}");
    }
}
