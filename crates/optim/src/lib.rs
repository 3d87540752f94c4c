//! # optim
//!
//! Optimizers that update parameters from their gradients, each with Keras 3's exact update
//! rule and defaults (written out in each optimizer's documentation): [`SGD`], [`RMSprop`],
//! [`Adam`], [`AdamW`], [`Adagrad`]; gradient clipping (`clipnorm`, `clipvalue`,
//! `global_clipnorm`), decoupled weight decay, and learning-rate schedules.
//!
//! They work on plain tensors, so a hand-written training loop needs nothing else:
//!
//! ```
//! use autograd::Tape;
//! use optim::{Optimizer, SGD};
//! use tensor::Tensor;
//!
//! let mut w = Tensor::from_vec(vec![1.0f32, -2.0], &[2]).unwrap();
//! let mut sgd = SGD::new(0.1).momentum(0.9);
//! for _ in 0..3 {
//!     let g = {
//!         let tape = Tape::new();
//!         let wv = tape.param(&w);
//!         let loss = (wv * wv).sum_all(); // minimum at 0
//!         loss.backward().unwrap()[wv].clone()
//!     };
//!     sgd.step(&mut [&mut w], &[&g]).unwrap();
//! }
//! assert!(w.to_vec()[0].abs() < 1.0);
//! assert_eq!(sgd.iterations(), 3);
//! ```
//!
//! Each step follows Keras's order: clip the gradients, apply weight decay
//! (`w -= w * weight_decay * lr`), apply the update rule, then count the iteration. A
//! schedule's learning rate is read at the iteration count before the step.

#![deny(missing_docs)]

mod adagrad;
mod adam;
mod common;
mod error;
mod kernel;
mod optimizer;
mod registry;
mod rmsprop;
pub mod schedule;
mod sgd;

pub use adagrad::Adagrad;
pub use adam::{Adam, AdamW};
pub use common::{Common, CommonOption, LearningRate};
pub use error::OptimError;
pub use optimizer::Optimizer;
pub use registry::{IntoOptimizer, OPTIMIZER_NAMES, OptimizerFactory, by_name, register_optimizer};
pub use rmsprop::RMSprop;
pub use schedule::LearningRateSchedule;
pub use sgd::SGD;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::schedule::ExponentialDecay;
    use tensor::Tensor;

    pub(crate) fn t(v: &[f64]) -> Tensor<f64> {
        Tensor::from_shape_slice(v, &[v.len()]).unwrap()
    }

    /// Runs `steps` steps on one parameter starting at `w0` with constant gradient `g`.
    pub(crate) fn run(
        opt: &mut dyn Optimizer<f64>,
        w0: &[f64],
        g: &[f64],
        steps: usize,
    ) -> Vec<f64> {
        let mut w = t(w0);
        let g = t(g);
        for _ in 0..steps {
            opt.step(&mut [&mut w], &[&g]).unwrap();
        }
        w.to_vec()
    }

    pub(crate) fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn decoupled_weight_decay_comes_before_the_update() {
        // w = 1 - 1 * 0.1 * 0.5 = 0.95, then w -= 0.5 * 0.2 = 0.85
        close(
            &run(&mut SGD::new(0.5).weight_decay(0.1), &[1.0], &[0.2], 1),
            &[0.85],
        );
    }

    #[test]
    fn clipnorm_clips_each_tensor_by_its_own_norm() {
        let mut sgd = SGD::new(1.0).clipnorm(1.0);
        let (mut a, mut b) = (t(&[0.0, 0.0]), t(&[0.0]));
        sgd.step(&mut [&mut a, &mut b], &[&t(&[3.0, 4.0]), &t(&[0.5])])
            .unwrap();
        close(&a.to_vec(), &[-0.6, -0.8]);
        close(&b.to_vec(), &[-0.5]);
    }

    #[test]
    fn global_clipnorm_scales_all_gradients_together() {
        let mut sgd = SGD::new(1.0).global_clipnorm(1.0);
        let (mut a, mut b) = (t(&[0.0]), t(&[0.0]));
        sgd.step(&mut [&mut a, &mut b], &[&t(&[3.0]), &t(&[4.0])])
            .unwrap();
        close(&a.to_vec(), &[-0.6]);
        close(&b.to_vec(), &[-0.8]);
        // Below the limit nothing changes.
        let mut sgd = SGD::new(1.0).global_clipnorm(10.0);
        close(&run(&mut sgd, &[0.0], &[3.0], 1), &[-3.0]);
    }

    #[test]
    fn clipvalue_clips_elements() {
        close(
            &run(
                &mut SGD::new(1.0).clipvalue(0.5),
                &[0.0, 0.0],
                &[2.0, -0.25],
                1,
            ),
            &[-0.5, 0.25],
        );
    }

    #[test]
    fn a_schedule_is_read_at_the_iteration_before_the_step() {
        let mut sgd = SGD::<f64>::new(ExponentialDecay::new(0.1, 1, 0.5));
        assert_eq!(sgd.learning_rate(), 0.1);
        // steps use 0.1, then 0.05
        close(&run(&mut sgd, &[0.0], &[1.0], 2), &[-0.15]);
        assert_eq!(sgd.learning_rate(), 0.025);
        assert!(sgd.set_learning_rate(0.3).is_err());
        let mut constant = SGD::<f64>::new(0.1);
        constant.set_learning_rate(0.3).unwrap();
        assert_eq!(constant.learning_rate(), 0.3);
        assert!(constant.set_learning_rate(-1.0).is_err());
    }

    #[test]
    fn named_parameters_keep_their_own_state_in_any_order() {
        let (g1, g2) = (t(&[0.5, -1.0]), t(&[2.0]));
        let (mut a1, mut a2) = (t(&[1.0, 2.0]), t(&[3.0]));
        let (mut b1, mut b2) = (a1.clone(), a2.clone());
        let mut positional = Adam::<f64>::new(0.1);
        let mut named = Adam::<f64>::new(0.1);
        for step in 0..3 {
            positional
                .step(&mut [&mut a1, &mut a2], &[&g1, &g2])
                .unwrap();
            if step % 2 == 0 {
                named
                    .step_named(&["w1", "w2"], &mut [&mut b1, &mut b2], &[&g1, &g2])
                    .unwrap();
            } else {
                named
                    .step_named(&["w2", "w1"], &mut [&mut b2, &mut b1], &[&g2, &g1])
                    .unwrap();
            }
        }
        assert_eq!((a1, a2), (b1.clone(), b2.clone()));
        // State by name round-trips into a fresh optimizer.
        let saved: std::collections::HashMap<String, Tensor<f64>> = named
            .named_state()
            .into_iter()
            .map(|(n, t)| (n, t.clone()))
            .collect();
        let mut fresh = Adam::<f64>::new(0.1);
        let params = [("w1".to_string(), vec![2]), ("w2".to_string(), vec![1])];
        fresh
            .restore_named(&params, &mut |k| saved.get(k).cloned(), named.iterations())
            .unwrap();
        let (mut c1, mut c2) = (b1.clone(), b2.clone());
        named
            .step_named(&["w1", "w2"], &mut [&mut b1, &mut b2], &[&g1, &g2])
            .unwrap();
        fresh
            .step_named(&["w2", "w1"], &mut [&mut c2, &mut c1], &[&g2, &g1])
            .unwrap();
        assert_eq!((b1, b2), (c1, c2));
        // A missing tensor is an error naming it, and leaves the optimizer unbuilt.
        let mut other = Adam::<f64>::new(0.1);
        let err = other
            .restore_named(
                &params,
                &mut |k| {
                    if k == "w2/velocity" {
                        None
                    } else {
                        saved.get(k).cloned()
                    }
                },
                3,
            )
            .unwrap_err();
        assert!(err.to_string().contains("'w2/velocity'"), "{err}");
        assert!(!other.common().is_built());
        // Names the optimizer was not built for, or unnamed steps after named ones, are errors.
        let mut w = t(&[1.0, 2.0]);
        assert!(named.step(&mut [&mut w], &[&g1]).is_err());
    }

    #[test]
    fn mismatched_parameters_are_errors_that_change_nothing() {
        let mut sgd = SGD::<f64>::new(0.1).momentum(0.9);
        let mut w = t(&[1.0, 2.0]);
        let e = sgd.step(&mut [&mut w], &[]).unwrap_err();
        assert_eq!(e.to_string(), "sgd.step: got 1 parameters but 0 gradients");
        let e = sgd.step(&mut [&mut w], &[&t(&[1.0])]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sgd.step: parameter 0 has shape [2] but its gradient has shape [1]"
        );
        assert_eq!(w.to_vec(), vec![1.0, 2.0]);
        assert_eq!(sgd.iterations(), 0);
        sgd.step(&mut [&mut w], &[&t(&[1.0, 1.0])]).unwrap();
        let mut other = t(&[1.0, 2.0, 3.0]);
        let e = sgd
            .step(&mut [&mut other], &[&t(&[1.0, 1.0, 1.0])])
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("had shape [2] at earlier steps, now [3]"),
            "{e}"
        );
        assert_eq!(other.to_vec(), vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn invalid_hyperparameters_are_reported_by_name() {
        let mut w = t(&[1.0]);
        let g = t(&[1.0]);
        let e = SGD::<f64>::new(0.1)
            .momentum(1.5)
            .step(&mut [&mut w], &[&g])
            .unwrap_err();
        assert_eq!(e.to_string(), "sgd: momentum must be in [0, 1], got 1.5");
        let e = RMSprop::<f64>::new(-0.1)
            .step(&mut [&mut w], &[&g])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "rmsprop: learning_rate must be in [0, inf], got -0.1"
        );
        let e = Adam::<f64>::new(0.1)
            .clipnorm(1.0)
            .clipvalue(1.0)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("clipnorm and clipvalue"), "{e}");
        assert_eq!(w.to_vec(), vec![1.0]);
    }

    #[test]
    fn names_give_keras_defaults() {
        let expect = [
            ("sgd", 0.01),
            ("rmsprop", 0.001),
            ("adam", 0.001),
            ("adamw", 0.001),
            ("adagrad", 0.001),
        ];
        for (name, lr) in expect {
            let o = by_name::<f32>(name).unwrap();
            assert_eq!((o.name(), o.learning_rate()), (name, lr));
        }
        assert_eq!(by_name::<f32>("Adam").unwrap().name(), "adam");
        assert!(by_name::<f32>("nadam").is_err());
        let o: Box<dyn Optimizer<f32>> = RMSprop::new(0.01).into_optimizer().unwrap();
        assert_eq!(o.learning_rate(), 0.01);
    }

    #[test]
    fn hyperparameters_round_trip_through_set_hyperparameter() {
        let originals: Vec<Box<dyn Optimizer<f64>>> = vec![
            Box::new(SGD::new(0.1).momentum(0.8).nesterov(true)),
            Box::new(
                RMSprop::new(0.1)
                    .rho(0.8)
                    .momentum(0.3)
                    .epsilon(1e-5)
                    .centered(true),
            ),
            Box::new(
                Adam::new(0.1)
                    .beta_1(0.8)
                    .beta_2(0.95)
                    .epsilon(1e-6)
                    .amsgrad(true),
            ),
            Box::new(AdamW::new(0.1).beta_1(0.7)),
            Box::new(
                Adagrad::new(0.1)
                    .initial_accumulator_value(0.3)
                    .epsilon(1e-4),
            ),
        ];
        for original in &originals {
            let mut fresh = by_name::<f64>(original.name()).unwrap();
            assert_ne!(fresh.hyperparameters(), original.hyperparameters());
            for (k, v) in original.hyperparameters() {
                fresh.set_hyperparameter(k, v).unwrap();
            }
            assert_eq!(fresh.hyperparameters(), original.hyperparameters());
        }
        let mut sgd = SGD::<f64>::new(0.1);
        let e = sgd
            .set_hyperparameter("beta_1", 0.9)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "sgd has no hyperparameter 'beta_1'; valid names are: momentum, nesterov"
        );
        let e = sgd
            .set_hyperparameter("nesterov", 0.5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be 0 (false) or 1 (true), got 0.5"), "{e}");
    }

    #[test]
    fn restore_rejects_state_of_another_shape_and_leaves_the_optimizer_unbuilt() {
        let mut opt = RMSprop::<f64>::new(0.1);
        let wrong = vec![Tensor::<f64>::zeros(&[3])];
        let e = opt.restore(&[vec![2]], wrong, 5).unwrap_err().to_string();
        assert!(
            e.contains("expected 1 tensors of shapes [[2]]") && e.contains("[[3]]"),
            "{e}"
        );
        assert!(!opt.common().is_built());
        assert_eq!(opt.iterations(), 0);
        let e = opt.restore(&[vec![2]], vec![], 5).unwrap_err().to_string();
        assert!(e.contains("got 0"), "{e}");
    }
}
