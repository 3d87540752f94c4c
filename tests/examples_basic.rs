//! The examples' results, checked: each example's `run` is called with a fixed seed (and,
//! where training takes long in a debug build, less work) and must achieve what the example
//! promises.

#[path = "../examples/xor.rs"]
#[allow(dead_code)]
mod xor;

#[path = "../examples/dense_layers.rs"]
#[allow(dead_code)]
mod dense_layers;

#[path = "../examples/perceptron.rs"]
#[allow(dead_code)]
mod perceptron;

#[path = "../examples/mnist_convnet.rs"]
#[allow(dead_code)]
mod mnist_convnet;

#[path = "../examples/custom_loop.rs"]
#[allow(dead_code)]
mod custom_loop;

use brick::prelude::*;

#[test]
fn xor_is_learned_exactly() {
    let result = xor::run(1000, 1).unwrap();
    assert_eq!(result.targets, [0.0, 1.0, 1.0, 0.0]);
    assert_eq!(result.accuracy, 1.0, "predictions {:?}", result.predictions);
    for (p, t) in result.predictions.iter().zip(&result.targets) {
        // Confident, not just on the right side of 0.5.
        assert!((p - t).abs() < 0.1, "predictions {:?}", result.predictions);
    }
}

#[test]
fn xor_is_not_learned_without_training_enough() {
    // One step cannot solve XOR: the accuracy above comes from the training.
    let result = xor::run(1, 1).unwrap();
    assert!(
        result.accuracy < 1.0,
        "predictions {:?}",
        result.predictions
    );
}

#[test]
fn dense_layers_count_keras_parameters() {
    let result = dense_layers::run(0).unwrap();
    assert_eq!(result.params, 101);
    assert!(result.summary.contains(" Total params: 101 (404.00 B)\n"));
    for (name, shape, params) in [
        ("dense (Dense)", "(None, 8)", "40"),
        ("dense_1 (Dense)", "(None, 6)", "54"),
        ("dense_2 (Dense)", "(None, 1)", "7"),
    ] {
        let line = result
            .summary
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no row for {name} in\n{}", result.summary));
        assert!(
            line.contains(shape) && line.trim_end_matches(" │").ends_with(params),
            "{line}"
        );
    }

    assert_eq!(result.layer_names, ["dense", "dense_1", "dense_2"]);
    assert!(result.dot.starts_with("digraph G {"));
    for (name, input, output) in [("dense", 4, 8), ("dense_1", 8, 6), ("dense_2", 6, 1)] {
        let node = result
            .dot
            .lines()
            .find(|l| l.starts_with(&format!("\"{name}\" [")))
            .unwrap_or_else(|| panic!("no node for {name} in\n{}", result.dot));
        assert!(node.contains(&format!("<b>{name}</b> (Dense)")), "{node}");
        assert!(
            node.contains(&format!("Input shape: <b>(None, {input})</b>")),
            "{node}"
        );
        assert!(
            node.contains(&format!("Output shape: <b>(None, {output})</b>")),
            "{node}"
        );
    }
    assert!(result.dot.contains("\"dense\" -> \"dense_1\""));
    assert!(result.dot.contains("\"dense_1\" -> \"dense_2\""));

    let counts: Vec<usize> = result.single_layers.iter().map(|m| m.params).collect();
    assert_eq!(counts, [4, 15, 28]);
}

#[test]
fn perceptron_separates_setosa() {
    let result = perceptron::run(100, 0.1, 0).unwrap();
    // Converged: the last epoch made no error, the ones before did.
    let errors = &result.errors_per_epoch;
    assert_eq!(errors.last(), Some(&0), "errors per epoch {errors:?}");
    assert!(errors.len() < 100, "errors per epoch {errors:?}");
    assert!(errors[0] > 0, "errors per epoch {errors:?}");
    assert_eq!(result.train_accuracy, 1.0);
    assert_eq!(result.prediction, 1.0);

    // The learned boundary: small petals are setosa, large ones are not.
    let points =
        Tensor::from_vec(vec![1.4f32, 0.2, 2.0, 0.5, 4.5, 1.5, 6.0, 2.5], &[4, 2]).unwrap();
    assert_eq!(
        result.model.predict_batched(&points, 4).unwrap().to_vec(),
        [1.0, 1.0, 0.0, 0.0]
    );
    // The reported weights are the model's.
    let weights = result.model.get_weights();
    assert_eq!(weights[0].to_vec(), result.weights);
    assert_eq!(weights[1].item(), result.bias);
}

#[test]
fn perceptron_without_training_is_not_perfect() {
    // Zero epochs: the initial weights, which do not separate the classes.
    let result = perceptron::run(0, 0.1, 0).unwrap();
    assert!(result.errors_per_epoch.is_empty());
    assert!(result.train_accuracy < 1.0, "{}", result.train_accuracy);
}

#[test]
fn custom_loop_reaches_90_percent_on_mnist() {
    // The example's own run: 3 epochs of batch 128 on the 8,000 training images, about 10 s
    // in a debug build. One epoch would be faster, but it lands at 87.7%-90.3% depending on
    // the seed, too close to the bar; after three, seeds 0-3, 7 and 42 give 91.8%-93.0%.
    let result = custom_loop::run(3, 128, None, 42).unwrap();
    assert_eq!((result.train_rows, result.test_rows), (8000, 2000));
    let losses = &result.epoch_losses;
    assert_eq!(losses.len(), 3);
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]) && losses[2] < 0.3,
        "epoch losses {losses:?}"
    );
    assert!(
        result.test_accuracy >= 0.9,
        "test accuracy {}",
        result.test_accuracy
    );
}

#[test]
fn mnist_convnet_learns_digits_from_1000_images() {
    // The keras.io convnet, four epochs on the first 1,000 training images (32 steps, about
    // 40 s in a debug build; two epochs give only 51%): the full 12-epoch run on 8,000 is
    // the release example's (97%+). The same network, data path and Dropout, checked to
    // learn: 10% is chance.
    let outcome = mnist_convnet::run(4, 42, Some(1000), 0).unwrap();
    assert_eq!(outcome.params, 34_826);
    assert!(
        outcome.test_accuracy >= 0.75,
        "test accuracy {}",
        outcome.test_accuracy
    );
}
