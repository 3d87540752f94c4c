//! Normalization, composed from differentiable ops (so that every derivative of it, gamma's
//! and beta's included, follows from theirs): layer normalization over the last axis, and
//! batch normalization over every axis but the last, with batch statistics in training and
//! moving statistics in inference, as Keras's layers compute them.

use tensor::{Element, Result, Tensor, TensorError};

use crate::tape::Var;

/// The batch statistics [`Var::try_batch_norm`] normalized with, for the moving averages.
#[derive(Clone, Debug)]
pub struct BatchStatistics<T: Element> {
    /// The mean of each channel (last axis), `[c]`.
    pub mean: Tensor<T>,
    /// The (biased) variance of each channel, `[c]`.
    pub variance: Tensor<T>,
}

impl<'t, T: Element> Var<'t, T> {
    /// `(x - mean) / sqrt(var + epsilon) * gamma + beta` with the mean and the biased
    /// variance over the last axis, as Keras's `LayerNormalization` (its `epsilon` is 1e-3).
    /// `gamma` and `beta` have the last axis's length; `None` leaves that step out.
    ///
    /// ```
    /// use autograd::Tape;
    /// use tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(&Tensor::from_vec(vec![1.0, 2.0, 3.0, 10.0, 20.0, 30.0], &[2, 3]).unwrap());
    /// let y = x.try_layer_norm(None, None, 0.0).unwrap().value().to_vec();
    /// let z = (1.5f64).sqrt(); // (x - mean) / std for [1, 2, 3] and for [10, 20, 30]
    /// for (a, b) in y.iter().zip([-z, 0.0, z, -z, 0.0, z]) {
    ///     assert!((a - b).abs() < 1e-12);
    /// }
    /// ```
    ///
    /// # Errors
    /// If the input is 0-D, or `gamma` or `beta` do not have the last axis's length.
    pub fn try_layer_norm(
        self,
        gamma: Option<Var<'t, T>>,
        beta: Option<Var<'t, T>>,
        epsilon: T,
    ) -> Result<Var<'t, T>> {
        let shape = self.shape();
        let c = *shape.last().ok_or_else(|| TensorError::RankMismatch {
            op: "layer_norm",
            expected: "at least 1 dimension".into(),
            shape: shape.clone(),
        })?;
        check_scale("layer_norm", c, gamma, beta)?;
        let centered = self.try_sub(self.try_mean(-1, true)?)?;
        let variance = centered.square().try_mean(-1, true)?;
        let normalized = centered.try_div((variance + epsilon).sqrt())?;
        scale_and_shift(normalized, gamma, beta)
    }

    /// Batch normalization in training, as Keras's `BatchNormalization` with
    /// `training=True`: each channel (last axis) normalized with the mean and the biased
    /// variance over every other axis, then `* gamma + beta`. Returns the batch statistics
    /// too, for the moving averages the layer keeps.
    ///
    /// # Errors
    /// If the input has no axis besides the channels', or `gamma` or `beta` do not have the
    /// channel count.
    pub fn try_batch_norm(
        self,
        gamma: Option<Var<'t, T>>,
        beta: Option<Var<'t, T>>,
        epsilon: T,
    ) -> Result<(Var<'t, T>, BatchStatistics<T>)> {
        let shape = self.shape();
        if shape.len() < 2 {
            return Err(TensorError::RankMismatch {
                op: "batch_norm",
                expected: "at least 2 dimensions [batch, ..., channels]".into(),
                shape,
            });
        }
        let c = shape[shape.len() - 1];
        check_scale("batch_norm", c, gamma, beta)?;
        let rows = self.try_reshape(&[tensor::numel(&shape) / c.max(1), c])?;
        let mean = rows.try_mean(0, false)?;
        let centered = self.try_sub(mean)?;
        let variance = centered
            .square()
            .try_reshape(&[tensor::numel(&shape) / c.max(1), c])?
            .try_mean(0, false)?;
        let normalized = centered.try_div((variance + epsilon).sqrt())?;
        let statistics = BatchStatistics {
            mean: mean.value(),
            variance: variance.value(),
        };
        Ok((scale_and_shift(normalized, gamma, beta)?, statistics))
    }

    /// Batch normalization in inference (`training=False`): each channel normalized with
    /// the given moving mean and variance (constants), then `* gamma + beta`.
    ///
    /// # Errors
    /// If the statistics, `gamma` or `beta` do not have the channel count.
    pub fn try_batch_norm_inference(
        self,
        moving_mean: &Tensor<T>,
        moving_variance: &Tensor<T>,
        gamma: Option<Var<'t, T>>,
        beta: Option<Var<'t, T>>,
        epsilon: T,
    ) -> Result<Var<'t, T>> {
        let shape = self.shape();
        let c = *shape.last().unwrap_or(&0);
        for (name, t) in [
            ("moving_mean", moving_mean),
            ("moving_variance", moving_variance),
        ] {
            if t.shape() != [c] {
                return Err(TensorError::InvalidArgument {
                    op: "batch_norm",
                    message: format!(
                        "{name} must have shape [{c}] (the channels), got {:?}",
                        t.shape()
                    ),
                });
            }
        }
        check_scale("batch_norm", c, gamma, beta)?;
        let tape = self.tape;
        let inv_std = (moving_variance + epsilon).sqrt().map(|s| T::one() / s);
        let normalized = self
            .try_sub(tape.constant(moving_mean))?
            .try_mul(tape.constant(&inv_std))?;
        scale_and_shift(normalized, gamma, beta)
    }
}

/// Checks that `gamma` and `beta` (where given) have shape `[c]`.
fn check_scale<T: Element>(
    op: &'static str,
    c: usize,
    gamma: Option<Var<'_, T>>,
    beta: Option<Var<'_, T>>,
) -> Result<()> {
    for (name, v) in [("gamma", gamma), ("beta", beta)] {
        if let Some(v) = v
            && v.shape() != [c]
        {
            return Err(TensorError::InvalidArgument {
                op,
                message: format!(
                    "{name} must have shape [{c}] (the last axis), got {:?}",
                    v.shape()
                ),
            });
        }
    }
    Ok(())
}

fn scale_and_shift<'t, T: Element>(
    x: Var<'t, T>,
    gamma: Option<Var<'t, T>>,
    beta: Option<Var<'t, T>>,
) -> Result<Var<'t, T>> {
    let x = match gamma {
        Some(g) => x.try_mul(g)?,
        None => x,
    };
    match beta {
        Some(b) => x.try_add(b),
        None => Ok(x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;

    #[test]
    fn batch_norm_normalizes_each_channel_and_reports_its_statistics() {
        let tape = Tape::<f64>::new();
        // Channel 0: 1, 3, 5, 7 (mean 4, variance 5); channel 1: 2, 2, 2, 2.
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 2.0, 5.0, 2.0, 7.0, 2.0], &[2, 2, 2]).unwrap();
        let (y, stats) = tape.param(&x).try_batch_norm(None, None, 1e-3).unwrap();
        assert_eq!(stats.mean.to_vec(), vec![4.0, 2.0]);
        assert_eq!(stats.variance.to_vec(), vec![5.0, 0.0]);
        let y = y.value().to_vec();
        let s = (5.0f64 + 1e-3).sqrt();
        for (a, b) in y
            .iter()
            .zip([-3.0 / s, 0.0, -1.0 / s, 0.0, 1.0 / s, 0.0, 3.0 / s, 0.0])
        {
            assert!((a - b).abs() < 1e-12, "{y:?}");
        }
        // Inference with those statistics as the moving ones gives the same.
        let z = tape
            .param(&x)
            .try_batch_norm_inference(&stats.mean, &stats.variance, None, None, 1e-3)
            .unwrap()
            .value()
            .to_vec();
        for (a, b) in y.iter().zip(&z) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn scales_of_the_wrong_shape_are_errors() {
        let tape = Tape::<f64>::new();
        let x = tape.param(&Tensor::zeros(&[4, 3]));
        let g = tape.param(&Tensor::ones(&[2]));
        let e = x
            .try_layer_norm(Some(g), None, 1e-3)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "layer_norm: gamma must have shape [3] (the last axis), got [2]"
        );
        let e = x
            .try_batch_norm_inference(&Tensor::zeros(&[3]), &Tensor::ones(&[4]), None, None, 1e-3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("moving_variance must have shape [3]"), "{e}");
        let e = tape
            .param(&Tensor::zeros(&[3]))
            .try_batch_norm(None, None, 1e-3)
            .unwrap_err();
        assert!(e.to_string().contains("at least 2 dimensions"), "{e}");
    }
}
