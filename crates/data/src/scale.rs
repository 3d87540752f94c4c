//! Feature standardization fitted on training data.

use tensor::{Element, Tensor};

use crate::error::{DataError, Result};

/// Standardization (z-score) fitted on training data and applied to any data, as
/// scikit-learn's `StandardScaler`: each column has its mean subtracted and is divided by its
/// population standard deviation (`ddof = 0`); a constant column gets scale 1, so it becomes
/// all zeros instead of NaN.
///
/// Fit on the training rows only and transform the test rows with the same statistics, so
/// that nothing about the test data leaks into training.
///
/// ```
/// use data::{StandardScaler, read_csv, train_test_split};
/// let d = read_csv::<f32>(
///     concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/diabetes.csv"),
///     "progression",
/// )
/// .unwrap();
/// let (train, test) = train_test_split(442, 0.2, 0, None).unwrap();
/// let (scaler, x_train) = StandardScaler::fit_transform(&d.features.gather(0, &train)).unwrap();
/// let x_test = scaler.transform(&d.features.gather(0, &test)).unwrap();
/// assert_eq!(scaler.mean.shape(), &[10]);
/// assert!(x_train.mean(0, false).to_vec().iter().all(|m| m.abs() < 1e-5));
/// assert_eq!(x_test.shape(), &[88, 10]); // round(442 * 0.2)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StandardScaler<T: Element = f32> {
    /// The mean of each column of the training data, shape `[columns]`.
    pub mean: Tensor<T>,
    /// The population standard deviation of each column (1 for a constant column), shape
    /// `[columns]`.
    pub scale: Tensor<T>,
}

impl<T: Element> StandardScaler<T> {
    /// Computes the mean and standard deviation of each column of `x` (`[rows, columns]`,
    /// at least one row), in `f64` whatever `T` is, so `f32` data loses no accuracy to
    /// cancellation.
    ///
    /// # Errors
    /// [`DataError::InvalidData`] if `x` is not 2-D, has no rows, or holds a NaN or infinity.
    pub fn fit(x: &Tensor<T>) -> Result<Self> {
        const CONTEXT: &str = "StandardScaler::fit";
        let (rows, cols) = matrix_dims(x, CONTEXT)?;
        if rows == 0 {
            return Err(DataError::data(
                CONTEXT,
                format!("x has shape {:?}; expected at least one row", x.shape()),
            ));
        }
        let x = x.to_contiguous();
        let values = x
            .as_slice()
            .expect("to_contiguous gives a row-major layout");
        if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
            return Err(DataError::data(
                CONTEXT,
                format!(
                    "x[{}, {}] is {}; expected finite values",
                    pos / cols,
                    pos % cols,
                    values[pos]
                ),
            ));
        }
        let mut mean = vec![0.0f64; cols];
        let mut min = vec![f64::INFINITY; cols];
        let mut max = vec![f64::NEG_INFINITY; cols];
        for row in values.chunks_exact(cols) {
            for (j, v) in row.iter().enumerate() {
                let v = v.to_f64_exact();
                mean[j] += v;
                min[j] = min[j].min(v);
                max[j] = max[j].max(v);
            }
        }
        for m in &mut mean {
            *m /= rows as f64;
        }
        // Two passes: the sum of squared deviations from the mean, not E[x^2] - E[x]^2.
        let mut var = vec![0.0f64; cols];
        for row in values.chunks_exact(cols) {
            for (j, v) in row.iter().enumerate() {
                let d = v.to_f64_exact() - mean[j];
                var[j] += d * d;
            }
        }
        let scale: Vec<T> = (0..cols)
            .map(|j| {
                let std = (var[j] / rows as f64).sqrt();
                let s = T::from_f64_lossy(std);
                // Constant (or constant up to rounding) columns, and deviations too small for
                // `T`, keep their values' scale instead of being blown up.
                let constant = min[j] == max[j] || std <= 10.0 * f64::EPSILON * mean[j].abs();
                if constant || !s.is_normal() {
                    T::one()
                } else {
                    s
                }
            })
            .collect();
        let mean: Vec<T> = mean.into_iter().map(T::from_f64_lossy).collect();
        Ok(StandardScaler {
            mean: Tensor::from_vec(mean, &[cols])?,
            scale: Tensor::from_vec(scale, &[cols])?,
        })
    }

    /// Standardizes `x` (`[rows, columns]`, any number of rows) with the fitted statistics:
    /// `(x - mean) / scale`, column by column.
    ///
    /// # Errors
    /// [`DataError::InvalidData`] if `x` is not 2-D or its column count differs from the fitted
    /// one.
    pub fn transform(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.apply(x, "StandardScaler::transform", |v, m, s| (v - m) / s)
    }

    /// Undoes [`transform`](Self::transform): `x * scale + mean`, e.g. to turn standardized
    /// regression predictions back into the original units.
    ///
    /// # Errors
    /// As [`transform`](Self::transform).
    pub fn inverse_transform(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.apply(x, "StandardScaler::inverse_transform", |v, m, s| v * s + m)
    }

    /// [`fit`](Self::fit) on `x`, then [`transform`](Self::transform) it: the usual call on
    /// the training data.
    ///
    /// # Errors
    /// As [`fit`](Self::fit).
    pub fn fit_transform(x: &Tensor<T>) -> Result<(Self, Tensor<T>)> {
        let scaler = Self::fit(x)?;
        let transformed = scaler.transform(x)?;
        Ok((scaler, transformed))
    }

    /// The number of columns the scaler was fitted on.
    pub fn num_features(&self) -> usize {
        self.mean.len()
    }

    fn apply(
        &self,
        x: &Tensor<T>,
        context: &str,
        f: impl Fn(f64, f64, f64) -> f64,
    ) -> Result<Tensor<T>> {
        let (rows, cols) = matrix_dims(x, context)?;
        if cols != self.num_features() {
            return Err(DataError::data(
                context,
                format!(
                    "x has {cols} columns (shape {:?}), but the scaler was fitted on {}",
                    x.shape(),
                    self.num_features()
                ),
            ));
        }
        let mean: Vec<f64> = self
            .mean
            .to_vec()
            .into_iter()
            .map(T::to_f64_exact)
            .collect();
        let scale: Vec<f64> = self
            .scale
            .to_vec()
            .into_iter()
            .map(T::to_f64_exact)
            .collect();
        let x = x.to_contiguous();
        let values = x
            .as_slice()
            .expect("to_contiguous gives a row-major layout");
        let out: Vec<T> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let j = i % cols;
                T::from_f64_lossy(f(v.to_f64_exact(), mean[j], scale[j]))
            })
            .collect();
        Ok(Tensor::from_vec(out, &[rows, cols])?)
    }
}

/// `(rows, columns)` of a 2-D tensor, or an error naming the shape.
fn matrix_dims<T: Element>(x: &Tensor<T>, context: &str) -> Result<(usize, usize)> {
    match *x.shape() {
        [rows, cols] => Ok((rows, cols)),
        ref shape => Err(DataError::data(
            context,
            format!("expected a 2-D tensor [rows, columns], got shape {shape:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read_csv, train_test_split};
    use proptest::prelude::*;
    use std::path::Path;

    fn column_stats(x: &Tensor<f64>) -> (Vec<f64>, Vec<f64>) {
        let (rows, cols) = (x.shape()[0], x.shape()[1]);
        let v = x.to_vec();
        let mean: Vec<f64> = (0..cols)
            .map(|j| (0..rows).map(|i| v[i * cols + j]).sum::<f64>() / rows as f64)
            .collect();
        let std = (0..cols)
            .map(|j| {
                ((0..rows)
                    .map(|i| (v[i * cols + j] - mean[j]).powi(2))
                    .sum::<f64>()
                    / rows as f64)
                    .sqrt()
            })
            .collect();
        (mean, std)
    }

    #[test]
    fn fit_gives_population_statistics() {
        let x =
            Tensor::from_vec(vec![1.0, 10.0, 2.0, 10.0, 3.0, 10.0, 6.0, 10.0], &[4, 2]).unwrap();
        let s = StandardScaler::<f64>::fit(&x).unwrap();
        assert_eq!(s.mean.to_vec(), vec![3.0, 10.0]);
        // population variance of 1, 2, 3, 6 is (4 + 1 + 0 + 9) / 4 = 3.5
        assert_eq!(s.scale.to_vec(), vec![3.5f64.sqrt(), 1.0]);
        let z = s.transform(&x).unwrap();
        assert_eq!(&z.to_vec()[..2], &[-2.0 / 3.5f64.sqrt(), 0.0]);
        assert!(z.to_vec().iter().skip(1).step_by(2).all(|&v| v == 0.0));
    }

    #[test]
    fn training_data_gets_mean_0_std_1_and_test_data_uses_train_statistics() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/breast_cancer.csv");
        let d = read_csv::<f64>(path, "benign").unwrap();
        let (train, test) = train_test_split(569, 0.25, 9, None).unwrap();
        let (x_train, x_test) = (d.features.gather(0, &train), d.features.gather(0, &test));
        let (scaler, z_train) = StandardScaler::fit_transform(&x_train).unwrap();
        let (mean, std) = column_stats(&z_train);
        assert!(mean.iter().all(|m| m.abs() < 1e-12), "{mean:?}");
        assert!(std.iter().all(|s| (s - 1.0).abs() < 1e-12), "{std:?}");

        let z_test = scaler.transform(&x_test).unwrap();
        let (train_mean, train_std) = column_stats(&x_train);
        let (xt, zt) = (x_test.to_vec(), z_test.to_vec());
        for (i, (&x, &z)) in xt.iter().zip(&zt).enumerate() {
            let j = i % 30;
            assert!((z - (x - train_mean[j]) / train_std[j]).abs() < 1e-9);
        }
        // The test rows were not used: their own statistics are not exactly 0 and 1.
        let (test_mean, _) = column_stats(&z_test);
        assert!(test_mean.iter().any(|m| m.abs() > 1e-3));

        let back = scaler.inverse_transform(&z_test).unwrap();
        assert!(back.allclose(&x_test, 1e-12, 1e-12));
    }

    #[test]
    fn f32_data_is_standardized_accurately() {
        // Large offset, small spread: a naive f32 variance would cancel badly.
        let v: Vec<f32> = (0..1000)
            .map(|i| 10_000.0 + (i % 10) as f32 * 0.01)
            .collect();
        let x = Tensor::from_vec(v, &[1000, 1]).unwrap();
        let (s, z) = StandardScaler::fit_transform(&x).unwrap();
        let std = s.scale.to_vec()[0];
        // Values 0.00..0.09 in equal numbers: std = 0.01 * sqrt(8.25)
        assert!((std - 0.01 * 8.25f32.sqrt()).abs() < 1e-4, "{std}");
        let z = z.cast::<f64>();
        let (mean, sd) = column_stats(&z);
        assert!(
            mean[0].abs() < 0.05 && (sd[0] - 1.0).abs() < 0.05,
            "{mean:?} {sd:?}"
        );
    }

    #[test]
    fn constant_columns_get_scale_1() {
        let x = Tensor::<f32>::from_vec(vec![0.1, 5.0, 0.1, 7.0, 0.1, 9.0], &[3, 2]).unwrap();
        let (s, z) = StandardScaler::fit_transform(&x).unwrap();
        assert_eq!(s.scale.to_vec()[0], 1.0);
        assert!(z.all_finite());
        assert!(z.to_vec().iter().step_by(2).all(|v| v.abs() < 1e-6));
        // A single row: every column is constant.
        let one = Tensor::<f64>::from_vec(vec![3.0, -4.0], &[1, 2]).unwrap();
        let (s, z) = StandardScaler::fit_transform(&one).unwrap();
        assert_eq!(s.scale.to_vec(), vec![1.0, 1.0]);
        assert_eq!(z.to_vec(), vec![0.0, 0.0]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let e = StandardScaler::<f32>::fit(&Tensor::zeros(&[0, 3])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "StandardScaler::fit: x has shape [0, 3]; expected at least one row"
        );
        let e = StandardScaler::<f32>::fit(&Tensor::zeros(&[4])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "StandardScaler::fit: expected a 2-D tensor [rows, columns], got shape [4]"
        );
        let x = Tensor::<f32>::from_vec(vec![1.0, 2.0, f32::NAN, 4.0], &[2, 2]).unwrap();
        assert_eq!(
            StandardScaler::fit(&x).unwrap_err().to_string(),
            "StandardScaler::fit: x[1, 0] is NaN; expected finite values"
        );
        let s = StandardScaler::<f32>::fit(&Tensor::ones(&[2, 3])).unwrap();
        assert_eq!(
            s.transform(&Tensor::zeros(&[5, 4]))
                .unwrap_err()
                .to_string(),
            "StandardScaler::transform: x has 4 columns (shape [5, 4]), but the scaler was \
             fitted on 3"
        );
        assert!(s.transform(&Tensor::zeros(&[2, 3, 1])).is_err());
        assert_eq!(
            s.transform(&Tensor::zeros(&[0, 3])).unwrap().shape(),
            &[0, 3]
        );
    }

    proptest! {
        #[test]
        fn fit_transform_standardizes_any_finite_matrix(
            rows in 2usize..30,
            cols in 1usize..5,
            seed in prop::collection::vec(-1e3f64..1e3, 150),
        ) {
            let v: Vec<f64> = seed.iter().cycle().take(rows * cols).copied().collect();
            let x = Tensor::from_vec(v, &[rows, cols]).unwrap();
            let (s, z) = StandardScaler::fit_transform(&x).unwrap();
            prop_assert!(z.all_finite());
            let (mean, std) = column_stats(&z);
            for j in 0..cols {
                prop_assert!(mean[j].abs() < 1e-9);
                let constant = s.scale.to_vec()[j] == 1.0 && std[j] < 1e-9;
                prop_assert!(constant || (std[j] - 1.0).abs() < 1e-9, "column {}: std {}", j, std[j]);
            }
            prop_assert!(s.inverse_transform(&z).unwrap().allclose(&x, 1e-9, 1e-9));
        }
    }
}
