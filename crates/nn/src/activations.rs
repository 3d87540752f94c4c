//! Activation functions by name, as Keras users write them (`activation="relu"`), or as
//! typed values.

use std::fmt;
use std::str::FromStr;

use autograd::{OutputActivation, Var};
use tensor::{Element, cst};

use crate::error::{Error, Result};

/// An activation function applied element-wise (softmax: over the last axis).
///
/// ```
/// use nn::Activation;
/// assert_eq!("relu".parse::<Activation>().unwrap(), Activation::Relu);
/// assert_eq!("leaky_relu".parse::<Activation>().unwrap(), Activation::LeakyRelu { negative_slope: 0.2 });
/// let err = "rleu".parse::<Activation>().unwrap_err();
/// assert!(err.to_string().starts_with("unknown activation 'rleu'; valid names are: linear, relu"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// The identity (Keras's default: no activation).
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`, computed stably.
    Sigmoid,
    /// The hyperbolic tangent.
    Tanh,
    /// Softmax over the last axis.
    Softmax,
    /// `ln(1 + e^x)`, computed stably.
    Softplus,
    /// `x / (1 + |x|)`.
    Softsign,
    /// `x` for `x > 0`, `alpha (e^x - 1)` below; Keras's default `alpha` is 1.
    Elu {
        /// The scale of the negative part.
        alpha: f64,
    },
    /// Scaled ELU with Keras's constants (`alpha` 1.6733, `scale` 1.0507).
    Selu,
    /// `x` for `x > 0`, `negative_slope * x` below; Keras's default slope is 0.2.
    LeakyRelu {
        /// The slope below zero.
        negative_slope: f64,
    },
    /// The exact (erf) GELU, Keras's default.
    Gelu,
    /// `x * sigmoid(x)`, also called SiLU.
    Swish,
    /// Keras 3's `clip(x / 6 + 0.5, 0, 1)`.
    HardSigmoid,
    /// `e^x`.
    Exponential,
    /// The Heaviside step, 1 for `x >= 0` and 0 below: the perceptron's activation.
    Step,
}

/// Every name [`Activation::from_str`] accepts.
pub const ACTIVATION_NAMES: &[&str] = &[
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "softplus",
    "softsign",
    "elu",
    "selu",
    "leaky_relu",
    "gelu",
    "swish",
    "silu",
    "hard_sigmoid",
    "exponential",
    "step",
];

impl Activation {
    /// The Keras name.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::Softplus => "softplus",
            Activation::Softsign => "softsign",
            Activation::Elu { .. } => "elu",
            Activation::Selu => "selu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Gelu => "gelu",
            Activation::Swish => "swish",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::Exponential => "exponential",
            Activation::Step => "step",
        }
    }

    /// The form a fused layer op (Dense, Conv2D) computes in its own pass: the activations
    /// whose derivative follows from their output. `None` for the others, which the layer
    /// applies as a separate op.
    pub fn fused(&self) -> Option<OutputActivation> {
        match self {
            Activation::Linear => Some(OutputActivation::Linear),
            Activation::Relu => Some(OutputActivation::Relu),
            Activation::Sigmoid => Some(OutputActivation::Sigmoid),
            Activation::Tanh => Some(OutputActivation::Tanh),
            _ => None,
        }
    }

    /// Applies the activation on the tape.
    pub fn apply<'t, T: Element>(&self, x: Var<'t, T>) -> Var<'t, T> {
        match *self {
            Activation::Linear => x,
            Activation::Relu => x.relu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Softmax => x.softmax(-1),
            Activation::Softplus => x.softplus(),
            Activation::Softsign => x.softsign(),
            Activation::Elu { alpha } => x.elu(cst(alpha)),
            Activation::Selu => x.selu(),
            Activation::LeakyRelu { negative_slope } => x.leaky_relu(cst(negative_slope)),
            Activation::Gelu => x.gelu(),
            Activation::Swish => x.swish(),
            Activation::HardSigmoid => x.hard_sigmoid(),
            Activation::Exponential => x.exp(),
            Activation::Step => x.step(),
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Keras's names with Keras's default parameters; `"silu"` is swish.
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "linear" => Activation::Linear,
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            "softplus" => Activation::Softplus,
            "softsign" => Activation::Softsign,
            "elu" => Activation::Elu { alpha: 1.0 },
            "selu" => Activation::Selu,
            "leaky_relu" => Activation::LeakyRelu {
                negative_slope: 0.2,
            },
            "gelu" => Activation::Gelu,
            "swish" | "silu" => Activation::Swish,
            "hard_sigmoid" => Activation::HardSigmoid,
            "exponential" => Activation::Exponential,
            "step" => Activation::Step,
            _ => {
                return Err(Error::UnknownName {
                    kind: "activation",
                    name: name.to_string(),
                    valid: ACTIVATION_NAMES.to_vec(),
                });
            }
        })
    }
}

/// What builder methods accept as an activation: a Keras name or an [`Activation`].
pub trait IntoActivation {
    /// Converts, or explains why not.
    fn into_activation(self) -> Result<Activation>;
}

impl IntoActivation for Activation {
    fn into_activation(self) -> Result<Activation> {
        Ok(self)
    }
}

impl IntoActivation for &str {
    fn into_activation(self) -> Result<Activation> {
        self.parse()
    }
}

impl IntoActivation for String {
    fn into_activation(self) -> Result<Activation> {
        self.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::Tape;
    use tensor::Tensor;

    #[test]
    fn every_name_parses_and_round_trips() {
        for &name in ACTIVATION_NAMES {
            let a: Activation = name.parse().unwrap();
            let expected = if name == "silu" { "swish" } else { name };
            assert_eq!(a.name(), expected);
        }
    }

    #[test]
    fn values_match_the_formulas() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(&Tensor::from_vec(vec![-2.0, -0.5, 0.0, 1.5], &[4]).unwrap());
        let v = |a: Activation| a.apply(x).value().to_vec();
        assert_eq!(v(Activation::Linear), vec![-2.0, -0.5, 0.0, 1.5]);
        assert_eq!(v(Activation::Step), vec![0.0, 0.0, 1.0, 1.0]);
        assert_eq!(v("leaky_relu".parse().unwrap()), vec![-0.4, -0.1, 0.0, 1.5]);
        let hs = v(Activation::HardSigmoid);
        assert!(
            (hs[0] - (1.0 / 6.0)).abs() < 1e-15 && hs[2] == 0.5 && (hs[3] - 0.75).abs() < 1e-15
        );
        let elu = v(Activation::Elu { alpha: 1.0 });
        assert!((elu[0] - ((-2.0f64).exp() - 1.0)).abs() < 1e-15);
        let selu = v(Activation::Selu);
        assert!((selu[3] - 1.5 * 1.0507009873554805).abs() < 1e-12);
        let gelu = v(Activation::Gelu);
        // GELU(1.5) = 1.5 * Phi(1.5) = 1.5 * 0.9331927987311419
        assert!((gelu[3] - 1.5 * 0.9331927987311419).abs() < 1e-12);
        let sw = v(Activation::Swish);
        assert!((sw[3] - 1.5 / (1.0 + (-1.5f64).exp())).abs() < 1e-15);
        let ss = v(Activation::Softsign);
        assert_eq!(ss[1], -0.5 / 1.5);
        assert_eq!(v(Activation::Exponential)[2], 1.0);
    }

    #[test]
    fn softmax_is_over_the_last_axis() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(&Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap());
        let s = Activation::Softmax.apply(x).value();
        assert!(s.sum(-1, false).allclose(&Tensor::ones(&[2]), 1e-15, 0.0));
    }
}
