#!/usr/bin/env python3
"""Keras reference numbers for brick's shaped layers (Conv2D, pooling, BatchNormalization).

Run by hand, from anywhere:

    KERAS_BACKEND=jax JAX_PLATFORMS=cpu ~/.venvs/peers/bin/python tools/keras_fidelity_conv.py

It writes tests/fixtures/keras_fidelity_conv.json, which tests/keras_fidelity_conv.rs reads
(no Python needed there). Made with Keras 3.15.1 on JAX 0.10.2 (CPU), NumPy 2.4.6, float32;
the peers' virtualenv (../shared/bench/peers/setup_venv.sh) has these versions.

Cases (each: given initial weights, consecutive unshuffled batches through
`train_on_batch`, the loss of every step, then the final weights, Keras's order per layer
as `get_weights` gives it, and `predict` on all inputs, in inference mode):
  * convnet: the keras.io "Simple MNIST convnet" with Dropout rate 0 (random streams
    differ between frameworks), Adam, categorical cross-entropy, on 16 bundled digits in
    batches of 8 for 2 epochs;
  * same_stride2_batchnorm: Conv2D with `same` padding and strides 2, BatchNormalization
    (its moving statistics move through 3 training steps; predict then uses them), average
    pooling with `same` padding; SGD with momentum;
  * poolings: max pooling with `same` padding and an odd input, average pooling with
    `valid` padding and strides 1, max pooling with `valid` padding and strides 2 before a
    global average; RMSprop.
"""
import gzip
import json
import os
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
from keras import layers  # noqa: E402

assert keras.backend.backend() == "jax", "run with KERAS_BACKEND=jax"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digits(n):
    with gzip.open(os.path.join(ROOT, "data/mnist-10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16)[: n * 784]
    with gzip.open(os.path.join(ROOT, "data/mnist-10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    x = (x.astype(np.float32) / 255.0).reshape(n, 28, 28, 1)
    return x, np.eye(10, dtype=np.float32)[y]


def init_weights(model, rng):
    """Kernels uniform in Glorot's range (+-sqrt(6 / (fan_in + fan_out))), biases in
    +-0.05, gamma in [0.8, 1.2], beta in +-0.1, all rounded to multiples of 1/4096 (exact in
    float32 and short in JSON); moving statistics as Keras starts them (0 and 1)."""
    for layer in model.layers:
        ws = []
        for w in layer.weights:
            name, shape = w.name, tuple(w.shape)
            if name == "kernel":
                receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
                fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                v = rng.uniform(-limit, limit, shape)
            elif name == "bias":
                v = rng.uniform(-0.05, 0.05, shape)
            elif name == "gamma":
                v = rng.uniform(0.8, 1.2, shape)
            elif name == "beta":
                v = rng.uniform(-0.1, 0.1, shape)
            elif name == "moving_mean":
                v = np.zeros(shape)
            elif name == "moving_variance":
                v = np.ones(shape)
            else:
                raise ValueError(name)
            ws.append((np.round(v * 4096) / 4096).astype(np.float32))
        if ws:
            layer.set_weights(ws)


def tensor(a):
    a = np.asarray(a, np.float32)
    # 9 significant digits: every float32 reads back exactly.
    return {"shape": list(a.shape), "data": [float("%.9g" % v) for v in a.ravel()]}


def weights(model):
    return [[tensor(w) for w in layer.get_weights()] for layer in model.layers]


def run(name, model, optimizer, optimizer_spec, x, y, batch, epochs):
    rng = np.random.default_rng(sum(map(ord, name)))
    init_weights(model, rng)
    initial = weights(model)
    model.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy())
    losses = []
    for _ in range(epochs):
        for start in range(0, len(x), batch):
            logs = model.train_on_batch(x[start : start + batch], y[start : start + batch], return_dict=True)
            losses.append(float(logs["loss"]))
    return {
        "name": name,
        "optimizer": optimizer_spec,
        "batch_size": batch,
        "epochs": epochs,
        "x": tensor(x),
        "y": tensor(y),
        "initial_weights": initial,
        "step_losses": losses,
        "final_weights": weights(model),
        "predictions": tensor(model.predict(x, batch_size=batch, verbose=0)),
    }


def main():
    cases = []
    x, y = digits(16)
    convnet = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.0),
            layers.Dense(10, activation="softmax"),
        ]
    )
    cases.append(run("convnet", convnet, keras.optimizers.Adam(1e-3), {"name": "adam", "learning_rate": 1e-3}, x, y, 8, 2))

    rng = np.random.default_rng(7)
    xs = rng.uniform(0.0, 1.0, (12, 10, 10, 2)).astype(np.float32)
    ys = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 12)]
    bn = keras.Sequential(
        [
            keras.Input((10, 10, 2)),
            layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.AveragePooling2D(2, padding="same"),
            layers.Flatten(),
            layers.Dense(3, activation="softmax"),
        ]
    )
    cases.append(
        run("same_stride2_batchnorm", bn, keras.optimizers.SGD(0.1, momentum=0.9),
            {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}, xs, ys, 4, 1)
    )

    xp = rng.uniform(-1.0, 1.0, (12, 9, 9, 2)).astype(np.float32)
    yp = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 12)]
    pools = keras.Sequential(
        [
            keras.Input((9, 9, 2)),
            layers.Conv2D(3, 2, activation="tanh"),
            layers.MaxPooling2D(3, strides=2, padding="same"),
            layers.AveragePooling2D(2, strides=1, padding="valid"),
            layers.Conv2D(4, 1, activation="linear"),
            layers.MaxPooling2D(2, strides=2, padding="valid"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(3, activation="softmax"),
        ]
    )
    cases.append(
        run("poolings", pools, keras.optimizers.RMSprop(0.01),
            {"name": "rmsprop", "learning_rate": 0.01}, xp, yp, 4, 2)
    )
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests/fixtures/keras_fidelity_conv.json")
    with open(out + ".tmp", "w") as f:
        json.dump({"keras": keras.__version__, "backend": "jax", "cases": cases}, f)
    os.replace(out + ".tmp", out)
    for c in cases:
        print(c["name"], ["%.6f" % v for v in c["step_losses"]])


if __name__ == "__main__":
    main()
