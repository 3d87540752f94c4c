#!/usr/bin/env python3
"""Generate Keras reference numbers for brick's Keras-fidelity tests.

Run by hand, from the repository root (/work/main):

    KERAS_BACKEND=jax JAX_PLATFORMS=cpu /work/venvs/keras/bin/python tools/keras_fidelity.py

It writes tests/fixtures/keras_fidelity.json (path relative to the repository
root; the script locates the root from its own path, so the working directory
does not matter).  Optional argument: an explicit output path.

Made with: Python 3.11 venv at /work/venvs/keras, Keras 3.15.1, JAX 0.10.2
(CPU), NumPy 2.4.6, backend "jax".  The script refuses to run on another
backend.  Takes about 2 minutes; output is deterministic (re-running gives a
byte-identical file on the same versions).

What it does, per case (see CASES below):
  * build keras.Sequential([Input((4,)), Dense(hidden), Dense(out)]) in float32,
    default Keras settings otherwise;
  * set the initial weights with set_weights() from a NumPy generator seeded
    from the case name (kernels uniform in [-0.5, 0.5], biases uniform in
    +-[0.02, 0.1] with random sign, i.e. never zero; the two "saturated" cases
    use a 4x first kernel and an output kernel uniform in +-12 (softmax) /
    +-30 (sigmoid) so that output probabilities fall below 1e-7 / above 1-1e-7
    and Keras's probability clipping is exercised);
  * compile with the case's optimizer (all hyper-parameters passed explicitly)
    and loss (a keras.losses class instance), metrics=['accuracy'] for
    classification cases;
  * train with model.train_on_batch(xb, yb, return_dict=True) on consecutive,
    unshuffled batches (24 samples, batch 10 -> 10, 10, 4) for 2 epochs and
    record the returned loss / metric of every call, then the final weights and
    model.evaluate(x, y, batch_size=10) on the final weights;
  * separately build a fresh identical model, call
    model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0) and
    record history.history.

Verification (printed to stdout, and the script exits non-zero if a check fails):
  1. the loss returned by train_on_batch equals the loss of model(xb) computed
     with the case's loss object *before* the call (i.e. pre-update loss);
  2. fit's epoch loss equals the batch-size-weighted mean of that epoch's
     train_on_batch losses (accumulated exactly like keras.metrics.Mean does,
     in float32), and differs from the unweighted mean;
  3. the weights after the train_on_batch steps equal the weights after fit;
  4. an independent float64 NumPy re-implementation of forward pass, loss,
     gradients and optimizer updates (written from the formulas, not calling
     Keras) reproduces the step losses and final weights; this documents the
     exact semantics the fixture encodes (probability clipping, weight decay
     order, learning-rate-schedule step, Adam epsilon placement, ...).

Keras 3 (JAX backend) semantics encoded here, all confirmed by check 4:
  * losses reduce with "sum_over_batch_size": mean over the last axis per
    sample, then sum / batch size;
  * cross-entropy on probabilities: CCE/sparse CCE first renormalise
    p / sum(p), then clip to [1e-7, 1 - 1e-7] (float32: [1e-7, 0.99999988]) and
    take log; BCE clips p the same way and uses y*log(p) + (1-y)*log(1-p).
    jnp.clip has zero gradient outside the range, so a clipped sample gives no
    gradient; there is no "use the logits behind the softmax" shortcut on JAX;
  * from_logits=True uses log_softmax / log_sigmoid;
  * 'accuracy' resolves to BinaryAccuracy (threshold 0.5 on the raw output,
    also when the output is a logit), SparseCategoricalAccuracy (y rank <
    y_pred rank) or CategoricalAccuracy;
  * the optimizer: clip gradients (clipnorm per tensor, else global_clipnorm,
    else clipvalue), then decoupled weight decay w -= w*wd*lr (all variables,
    biases included), then the update; the learning-rate schedule is evaluated
    at `iterations` before it is incremented (0 for the first update);
    Adam: alpha = lr*sqrt(1-b2^t)/(1-b1^t), w -= alpha*m/(sqrt(v)+eps);
    RMSprop/Adagrad: eps inside the sqrt; Adagrad accumulators start at 0.1;
  * the loss returned by train_on_batch / logged by fit is the pre-update loss
    of the batch; fit's epoch loss is keras.metrics.Mean over batches with
    sample_weight = batch size, i.e. sum(loss_b * n_b) / sum(n_b).
"""

import os
import sys
import json
import zlib

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import keras  # noqa: E402

if keras.backend.backend() != "jax":
    sys.exit("keras_fidelity.py must run with KERAS_BACKEND=jax "
             f"(got {keras.backend.backend()})")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "fixtures", "keras_fidelity.json")

N_SAMPLES = 24
INPUT_DIM = 4
BATCH_SIZE = 10
EPOCHS = 2

F32_EPS = float(np.float32(1e-7))            # Keras backend.epsilon() as f32
F32_ONE_MINUS_EPS = float(np.float32(1.0 - 1e-7))  # 0.99999988079071044921875

# --------------------------------------------------------------------------
# Optimizer specs: JSON description (Keras argument names) + constructor.
# All hyper-parameters are passed explicitly and recorded.
# --------------------------------------------------------------------------


def sgd(lr=0.1, momentum=0.0, nesterov=False, **extra):
    return dict(name="sgd", learning_rate=lr, momentum=momentum,
                nesterov=nesterov, **extra)


def rmsprop(lr=0.01, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **extra):
    return dict(name="rmsprop", learning_rate=lr, rho=rho, momentum=momentum,
                epsilon=epsilon, centered=centered, **extra)


def adam(lr=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **extra):
    return dict(name="adam", learning_rate=lr, beta_1=beta_1, beta_2=beta_2,
                epsilon=epsilon, amsgrad=amsgrad, **extra)


def adamw(lr=0.01, weight_decay=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
          amsgrad=False, **extra):
    return dict(name="adamw", learning_rate=lr, weight_decay=weight_decay,
                beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad,
                **extra)


def adagrad(lr=0.1, initial_accumulator_value=0.1, epsilon=1e-7, **extra):
    return dict(name="adagrad", learning_rate=lr,
                initial_accumulator_value=initial_accumulator_value,
                epsilon=epsilon, **extra)


def exp_decay(initial, decay_steps, decay_rate, staircase=False):
    return dict(schedule="exponential_decay", initial_learning_rate=initial,
                decay_steps=decay_steps, decay_rate=decay_rate,
                staircase=staircase)


OPT_CLASSES = {
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "adagrad": keras.optimizers.Adagrad,
}


def make_optimizer(spec):
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    lr = kwargs["learning_rate"]
    if isinstance(lr, dict):
        assert lr["schedule"] == "exponential_decay"
        kwargs["learning_rate"] = keras.optimizers.schedules.ExponentialDecay(
            initial_learning_rate=lr["initial_learning_rate"],
            decay_steps=lr["decay_steps"],
            decay_rate=lr["decay_rate"],
            staircase=lr["staircase"],
        )
    return OPT_CLASSES[spec["name"]](**kwargs)


BASE_OPTIMIZERS = [
    ("sgd", sgd()),
    ("sgd_momentum", sgd(momentum=0.9)),
    ("sgd_nesterov", sgd(momentum=0.9, nesterov=True)),
    ("rmsprop", rmsprop()),
    ("rmsprop_centered", rmsprop(centered=True)),
    ("adam", adam()),
]

EXTRA_OPTIMIZERS = [
    ("rmsprop_momentum", rmsprop(momentum=0.5)),
    ("adam_amsgrad", adam(amsgrad=True)),
    ("adamw", adamw(lr=0.01, weight_decay=0.1)),
    ("adagrad", adagrad(lr=0.1)),
    ("sgd_clipnorm", sgd(clipnorm=0.5)),
    ("sgd_clipvalue", sgd(clipvalue=0.05)),
    ("adam_global_clipnorm", adam(global_clipnorm=0.5)),
    ("sgd_weight_decay", sgd(weight_decay=0.01)),
    ("sgd_exponential_decay", sgd(lr=exp_decay(0.1, 2, 0.5))),
]

# --------------------------------------------------------------------------
# Loss / problem specs.
#   out_units, out_activation: the output Dense layer
#   target: how y is generated
# --------------------------------------------------------------------------

PROBLEMS = {
    "mean_squared_error": dict(
        loss={"name": "mean_squared_error"}, out=(2, "linear"),
        target="regression", metrics=[]),
    "binary_crossentropy": dict(
        loss={"name": "binary_crossentropy", "from_logits": False},
        out=(1, "sigmoid"), target="binary", metrics=["accuracy"]),
    "categorical_crossentropy": dict(
        loss={"name": "categorical_crossentropy", "from_logits": False},
        out=(3, "softmax"), target="onehot", metrics=["accuracy"]),
    "sparse_categorical_crossentropy": dict(
        loss={"name": "sparse_categorical_crossentropy", "from_logits": False},
        out=(3, "softmax"), target="sparse", metrics=["accuracy"]),
    "binary_crossentropy_logits": dict(
        loss={"name": "binary_crossentropy", "from_logits": True},
        out=(1, "linear"), target="binary", metrics=["accuracy"]),
    "categorical_crossentropy_logits": dict(
        loss={"name": "categorical_crossentropy", "from_logits": True},
        out=(3, "linear"), target="onehot", metrics=["accuracy"]),
    "mean_absolute_error": dict(
        loss={"name": "mean_absolute_error"}, out=(2, "linear"),
        target="regression_wide", metrics=[]),
    "huber": dict(
        loss={"name": "huber", "delta": 1.0}, out=(2, "linear"),
        target="regression_wide", metrics=[]),
    "log_cosh": dict(
        loss={"name": "log_cosh"}, out=(2, "linear"),
        target="regression_wide", metrics=[]),
}


def make_loss(spec):
    n = spec["name"]
    if n == "mean_squared_error":
        return keras.losses.MeanSquaredError()
    if n == "mean_absolute_error":
        return keras.losses.MeanAbsoluteError()
    if n == "huber":
        return keras.losses.Huber(delta=spec["delta"])
    if n == "log_cosh":
        return keras.losses.LogCosh()
    if n == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(from_logits=spec["from_logits"])
    if n == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(from_logits=spec["from_logits"])
    if n == "sparse_categorical_crossentropy":
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=spec["from_logits"])
    raise ValueError(n)


def build_cases():
    cases = []
    hidden_acts = ["tanh", "relu"]
    # 1. full cross product: base optimizers x {mse, bce, cce}
    for oi, (oname, ospec) in enumerate(BASE_OPTIMIZERS):
        for li, lname in enumerate(["mean_squared_error", "binary_crossentropy",
                                    "categorical_crossentropy"]):
            cases.append(dict(name=f"{oname}__{lname}", optimizer=ospec,
                              problem=lname,
                              hidden=(5, hidden_acts[(oi + li) % 2])))
    # 2. extra optimizers x {mse, cce}
    for oi, (oname, ospec) in enumerate(EXTRA_OPTIMIZERS):
        for li, lname in enumerate(["mean_squared_error",
                                    "categorical_crossentropy"]):
            cases.append(dict(name=f"{oname}__{lname}", optimizer=ospec,
                              problem=lname,
                              hidden=(5, hidden_acts[(oi + li) % 2])))
    # 3. extra losses x {sgd_momentum, adam}
    extra_losses = ["sparse_categorical_crossentropy", "binary_crossentropy_logits",
                    "categorical_crossentropy_logits", "mean_absolute_error",
                    "huber", "log_cosh"]
    for li, lname in enumerate(extra_losses):
        # Adam is not paired with MAE: MAE's output-bias gradient is
        # (#positive - #negative errors) / (B*K), often exactly zero, and Adam
        # (epsilon outside the sqrt) turns the float32 rounding noise of such a
        # zero into a ~1e-5 update, which no re-implementation can reproduce.
        # RMSprop (epsilon inside the sqrt) is insensitive to it.
        second = BASE_OPTIMIZERS[3] if lname == "mean_absolute_error" \
            else BASE_OPTIMIZERS[5]
        for oi, (oname, ospec) in enumerate([BASE_OPTIMIZERS[1], second]):
            cases.append(dict(name=f"{oname}__{lname}", optimizer=ospec,
                              problem=lname,
                              hidden=(5, hidden_acts[(oi + li) % 2])))
    # 4. saturation: probabilities pushed below 1e-7 / above 1 - 1e-7
    cases.append(dict(name="saturated_softmax__sgd__categorical_crossentropy",
                      optimizer=sgd(), problem="categorical_crossentropy",
                      hidden=(5, "tanh"), out_kernel_scale=12.0))
    cases.append(dict(name="saturated_sigmoid__sgd__binary_crossentropy",
                      optimizer=sgd(), problem="binary_crossentropy",
                      hidden=(5, "tanh"), out_kernel_scale=30.0))
    # Salt chosen (by searching with the float64 reference) so that during all
    # 6 steps no logit lies near the clip thresholds (|z| in [14.5, 18]) and no
    # y=0 sample sits at an unclipped p near 1, where float32 log(1 - p) is
    # dominated by the rounding of p and the fixture would be ill-conditioned.
    SEED_SALT["saturated_sigmoid__sgd__binary_crossentropy"] = 58
    return cases


# --------------------------------------------------------------------------
# Deterministic data / initial weights.
# --------------------------------------------------------------------------


SEED_SALT = {}   # per-case extra seed component (set in build_cases)


def case_rng(name, salt):
    return np.random.default_rng(
        [zlib.crc32(name.encode()), salt, SEED_SALT.get(name, 0), 20240531])


def make_data(name, target, out_units):
    rng = case_rng(name, 1)
    x = rng.standard_normal((N_SAMPLES, INPUT_DIM)).astype(np.float32)
    if target in ("regression", "regression_wide"):
        a = rng.uniform(-1.0, 1.0, (INPUT_DIM, out_units))
        scale = 1.0 if target == "regression" else 2.5
        y = scale * np.tanh(x @ a) + 0.3 * rng.standard_normal((N_SAMPLES, out_units))
        y_keras = y.astype(np.float32)
    elif target == "binary":
        w = rng.uniform(-1.0, 1.0, (INPUT_DIM,))
        y = ((x @ w + 0.5 * rng.standard_normal(N_SAMPLES)) > 0).astype(np.float32)
        y_keras = y.reshape(N_SAMPLES, 1)
    elif target in ("onehot", "sparse"):
        w = rng.uniform(-1.0, 1.0, (INPUT_DIM, out_units))
        cls = np.argmax(x @ w + 0.5 * rng.standard_normal((N_SAMPLES, out_units)),
                        axis=1)
        if target == "onehot":
            y_keras = np.eye(out_units, dtype=np.float32)[cls]
        else:
            y_keras = cls.astype(np.int32)          # integer labels, shape [n]
    else:
        raise ValueError(target)
    return x, y_keras


def make_weights(name, hidden_units, out_units, out_kernel_scale=None):
    rng = case_rng(name, 2)

    def bias(n):
        mag = rng.uniform(0.02, 0.1, n)
        sign = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
        return (mag * sign).astype(np.float32)

    k1 = rng.uniform(-0.5, 0.5, (INPUT_DIM, hidden_units)).astype(np.float32)
    b1 = bias(hidden_units)
    if out_kernel_scale is None:
        k2 = rng.uniform(-0.5, 0.5, (hidden_units, out_units)).astype(np.float32)
    else:
        k1 = (k1 * 4.0).astype(np.float32)          # push tanh towards +-1
        k2 = (rng.uniform(-1.0, 1.0, (hidden_units, out_units))
              * out_kernel_scale).astype(np.float32)
    b2 = bias(out_units)
    return [k1, b1, k2, b2]


def build_model(hidden, out, weights):
    model = keras.Sequential([
        keras.Input(shape=(INPUT_DIM,), dtype="float32"),
        keras.layers.Dense(hidden[0], activation=hidden[1]),
        keras.layers.Dense(out[0], activation=out[1]),
    ])
    model.set_weights([w.copy() for w in weights])
    return model


def batches():
    return [(s, min(s + BATCH_SIZE, N_SAMPLES))
            for s in range(0, N_SAMPLES, BATCH_SIZE)]


# --------------------------------------------------------------------------
# Independent float64 NumPy reference (no Keras code involved).
# --------------------------------------------------------------------------


def act_fwd(name, z):
    if name == "linear":
        return z
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(name)


def act_vjp(name, z, a, g):
    """Given upstream gradient g = dL/da, return dL/dz."""
    if name == "linear":
        return g
    if name == "tanh":
        return g * (1.0 - a * a)
    if name == "relu":
        return g * (z > 0)
    if name == "sigmoid":
        return g * a * (1.0 - a)
    if name == "softmax":
        return a * (g - (g * a).sum(axis=-1, keepdims=True))
    raise ValueError(name)


def ref_loss_and_grad_out(loss_spec, y, out_act, z, p):
    """Loss value (sum_over_batch_size) and dL/dz for the output layer."""
    n = loss_spec["name"]
    B = z.shape[0]
    if n == "sparse_categorical_crossentropy":
        y = np.eye(z.shape[1])[y.astype(int)]
        n = "categorical_crossentropy"
    if n in ("mean_squared_error", "mean_absolute_error", "huber", "log_cosh"):
        e = p - y
        K = e.shape[1]
        if n == "mean_squared_error":
            per, g = e * e, 2.0 * e
        elif n == "mean_absolute_error":
            per, g = np.abs(e), np.sign(e)
        elif n == "huber":
            d = loss_spec["delta"]
            quad = np.abs(e) <= d
            per = np.where(quad, 0.5 * e * e, d * np.abs(e) - 0.5 * d * d)
            g = np.where(quad, e, d * np.sign(e))
        else:  # log_cosh, Keras form x + softplus(-2x) - log 2
            per = e + np.logaddexp(0.0, -2.0 * e) - np.log(2.0)
            g = np.tanh(e)
        loss = per.mean(axis=1).mean()
        return loss, act_vjp(out_act, z, p, g / (B * K)), 0
    if n == "binary_crossentropy":
        K = z.shape[1]
        if loss_spec["from_logits"]:
            assert out_act == "linear"
            per = np.logaddexp(0.0, z) - y * z
            return per.mean(axis=1).mean(), (act_fwd("sigmoid", z) - y) / (B * K), 0
        c = np.clip(p, F32_EPS, F32_ONE_MINUS_EPS)
        mask = (p >= F32_EPS) & (p <= F32_ONE_MINUS_EPS)
        per = -(y * np.log(c) + (1.0 - y) * np.log(1.0 - c))
        g = mask * (-(y / c) + (1.0 - y) / (1.0 - c)) / (B * K)
        return per.mean(axis=1).mean(), act_vjp(out_act, z, p, g), int((~mask).sum())
    if n == "categorical_crossentropy":
        if loss_spec["from_logits"]:
            assert out_act == "linear"
            lse = np.logaddexp.reduce(z, axis=1, keepdims=True)
            per = -(y * (z - lse)).sum(axis=1)
            return per.mean(), (act_fwd("softmax", z) - y) / B, 0
        s = p.sum(axis=1, keepdims=True)
        q = p / s                                    # Keras renormalises first
        c = np.clip(q, F32_EPS, F32_ONE_MINUS_EPS)
        mask = (q >= F32_EPS) & (q <= F32_ONE_MINUS_EPS)
        per = -(y * np.log(c)).sum(axis=1)
        gq = mask * (-y / c) / B
        gp = (gq - (gq * q).sum(axis=1, keepdims=True)) / s
        return per.mean(), act_vjp(out_act, z, p, gp), int((~mask).sum())
    raise ValueError(n)


class RefOptimizer:
    def __init__(self, spec, shapes):
        self.s = spec
        self.it = 0
        z = [np.zeros(sh) for sh in shapes]
        self.m = [a.copy() for a in z]
        self.v = [a.copy() for a in z]
        self.a = [a.copy() for a in z]
        self.vhat = [a.copy() for a in z]
        if spec["name"] == "adagrad":
            self.v = [np.full(sh, spec["initial_accumulator_value"]) for sh in shapes]

    def lr(self):
        lr = self.s["learning_rate"]
        if isinstance(lr, dict):  # evaluated at iterations *before* increment
            return lr["initial_learning_rate"] * lr["decay_rate"] ** (
                self.it / lr["decay_steps"])
        return lr

    def step(self, ws, gs):
        s, lr, name = self.s, self.lr(), self.s["name"]
        clipped = False
        if s.get("clipnorm"):
            c = s["clipnorm"]
            norms = [np.sqrt((g * g).sum()) for g in gs]
            clipped = any(nm > c for nm in norms)
            gs = [g * c / max(nm, c) for g, nm in zip(gs, norms)]
        elif s.get("global_clipnorm"):
            c = s["global_clipnorm"]
            gn = np.sqrt(sum((g * g).sum() for g in gs))
            clipped = gn > c
            gs = [g * c * min(1.0 / gn, 1.0 / c) for g in gs]
        elif s.get("clipvalue"):
            c = s["clipvalue"]
            clipped = any((np.abs(g) > c).any() for g in gs)
            gs = [np.clip(g, -c, c) for g in gs]
        if s.get("weight_decay"):   # decoupled, applied before the update step
            ws = [w - w * s["weight_decay"] * lr for w in ws]
        out = []
        for i, (w, g) in enumerate(zip(ws, gs)):
            if name == "sgd":
                mom = s["momentum"]
                if mom != 0:
                    self.m[i] = mom * self.m[i] - lr * g
                    if s["nesterov"]:
                        w = w + mom * self.m[i] - lr * g
                    else:
                        w = w + self.m[i]
                else:
                    w = w - lr * g
            elif name == "rmsprop":
                rho = s["rho"]
                self.v[i] = rho * self.v[i] + (1 - rho) * g * g
                if s["centered"]:
                    self.a[i] = rho * self.a[i] + (1 - rho) * g
                    den = self.v[i] - self.a[i] ** 2 + s["epsilon"]
                else:
                    den = self.v[i] + s["epsilon"]
                inc = lr * g / np.sqrt(den)
                if s["momentum"] > 0:
                    self.m[i] = s["momentum"] * self.m[i] + inc
                    w = w - self.m[i]
                else:
                    w = w - inc
            elif name in ("adam", "adamw"):
                t = self.it + 1
                b1, b2 = s["beta_1"], s["beta_2"]
                alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                self.m[i] = self.m[i] + (g - self.m[i]) * (1 - b1)
                self.v[i] = self.v[i] + (g * g - self.v[i]) * (1 - b2)
                v = self.v[i]
                if s["amsgrad"]:
                    self.vhat[i] = np.maximum(self.vhat[i], v)
                    v = self.vhat[i]
                w = w - self.m[i] * alpha / (np.sqrt(v) + s["epsilon"])
            elif name == "adagrad":
                self.v[i] = self.v[i] + g * g
                w = w - lr * g / np.sqrt(self.v[i] + s["epsilon"])
            else:
                raise ValueError(name)
            out.append(w)
        self.it += 1
        return out, clipped


def reference_run(case, weights, x, y):
    hidden_act, (_, out_act) = case["hidden"][1], case["out"]
    ws = [w.astype(np.float64) for w in weights]
    opt = RefOptimizer(case["optimizer"], [w.shape for w in ws])
    losses, n_clipped_probs, n_grad_clipped = [], 0, 0
    for _ in range(EPOCHS):
        for s, e in batches():
            xb, yb = x[s:e].astype(np.float64), y[s:e].astype(np.float64)
            z1 = xb @ ws[0] + ws[1]
            h = act_fwd(hidden_act, z1)
            z2 = h @ ws[2] + ws[3]
            p = act_fwd(out_act, z2)
            loss, dz2, nclip = ref_loss_and_grad_out(case["loss"], yb, out_act, z2, p)
            n_clipped_probs += nclip
            dh = dz2 @ ws[2].T
            dz1 = act_vjp(hidden_act, z1, h, dh)
            gs = [xb.T @ dz1, dz1.sum(0), h.T @ dz2, dz2.sum(0)]
            ws, clipped = opt.step(ws, gs)
            n_grad_clipped += int(clipped)
            losses.append(loss)
    return losses, ws, n_clipped_probs, n_grad_clipped


# --------------------------------------------------------------------------
# Running Keras.
# --------------------------------------------------------------------------


def compile_model(model, case):
    model.compile(optimizer=make_optimizer(case["optimizer"]),
                  loss=make_loss(case["loss"]),
                  metrics=list(case["metrics"]))


def f32_weighted_mean(values, counts):
    """What keras.metrics.Mean does with (value, sample_weight=batch_size)."""
    total = np.float32(0.0)
    count = np.float32(0.0)
    for v, n in zip(values, counts):
        total = np.float32(total + np.float32(np.float32(v) * np.float32(n)))
        count = np.float32(count + np.float32(n))
    return float(np.float32(total / count))


def tensor_json(a):
    a = np.asarray(a)
    return {"shape": list(a.shape),
            "data": [float(v) for v in a.astype(np.float32).reshape(-1)]}


def run_case(case, report):
    prob = PROBLEMS[case["problem"]]
    case["loss"] = prob["loss"]
    case["out"] = prob["out"]
    case["metrics"] = prob["metrics"]
    name = case["name"]
    hidden, out = case["hidden"], case["out"]
    x, y = make_data(name, prob["target"], out[0])
    w0 = make_weights(name, hidden[0], out[0], case.get("out_kernel_scale"))

    keras.utils.set_random_seed(0)
    model = build_model(hidden, out, w0)
    compile_model(model, case)
    loss_obj = make_loss(case["loss"])

    step_losses, pre_losses, counts = [], [], []
    step_metrics = {m: [] for m in case["metrics"]}
    my_acc, my_acc_sigmoid_rule = [], []
    for _ in range(EPOCHS):
        for s, e in batches():
            xb, yb = x[s:e], y[s:e]
            # Loss computed by hand from model(xb) *before* the update.
            pred = model(xb, training=False)
            pre_losses.append(float(np.asarray(loss_obj(yb, pred))))
            # Accuracy recomputed by hand from the same pre-update predictions.
            pn = np.asarray(pred)
            if out[0] == 1:          # BinaryAccuracy: threshold 0.5 on the output
                hits = (pn > 0.5).astype(np.float32) == yb
                hits_sig = (pn > 0.0).astype(np.float32) == yb
                my_acc_sigmoid_rule.append(
                    float(np.float32(hits_sig.sum()) / np.float32(e - s)))
            elif yb.ndim == 1:       # SparseCategoricalAccuracy
                hits = np.argmax(pn, axis=1) == yb
            else:                    # CategoricalAccuracy
                hits = np.argmax(pn, axis=1) == np.argmax(yb, axis=1)
            my_acc.append(float(np.float32(hits.sum()) / np.float32(e - s)))
            logs = model.train_on_batch(xb, yb, return_dict=True)
            step_losses.append(float(logs["loss"]))
            counts.append(e - s)
            for m in case["metrics"]:
                step_metrics[m].append(float(logs[m]))
    final_weights = [np.asarray(w) for w in model.get_weights()]
    full_loss_final = float(np.asarray(loss_obj(y, model(x, training=False))))
    ev = model.evaluate(x, y, batch_size=BATCH_SIZE, verbose=0, return_dict=True)
    evaluate = {"loss": float(ev["loss"])}
    for m in case["metrics"]:
        evaluate[m] = float(ev[m])
    metric_classes = {m.name: type(m).__name__
                      for m in model._compile_metrics.metrics} \
        if case["metrics"] else {}

    # Fresh model, same initial weights, fit().
    keras.utils.set_random_seed(0)
    fmodel = build_model(hidden, out, w0)
    compile_model(fmodel, case)
    hist = fmodel.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=False,
                      verbose=0)
    fit_losses = [float(v) for v in hist.history["loss"]]
    fit_metrics = {m: [float(v) for v in hist.history[m]] for m in case["metrics"]}
    fit_weights = [np.asarray(w) for w in fmodel.get_weights()]

    # ---- verification -----------------------------------------------------
    nb = len(batches())
    v = {}
    v["pre_loss_max_rel"] = max(abs(a - b) / max(abs(b), 1e-30)
                                for a, b in zip(step_losses, pre_losses))
    v["pre_exact"] = sum(a == b for a, b in zip(step_losses, pre_losses))
    v["pre_exact_after_mean_roundtrip"] = sum(
        a == float(np.float32(np.float32(np.float32(b) * np.float32(n))
                              / np.float32(n)))
        for a, b, n in zip(step_losses, pre_losses, counts))
    v["n_steps"] = len(step_losses)
    v["evaluate_vs_fullbatch_rel"] = abs(evaluate["loss"] - full_loss_final) / \
        max(abs(full_loss_final), 1e-30)
    if case["metrics"]:
        v["acc_recomputed_mismatch"] = sum(
            a != b for a, b in zip(step_metrics["accuracy"], my_acc))
        if my_acc_sigmoid_rule and case["loss"].get("from_logits"):
            v["acc_if_logit_gt_0_mismatch"] = sum(
                a != b for a, b in zip(step_metrics["accuracy"], my_acc_sigmoid_rule))
    v["fit_vs_f32mean_max_abs"] = max(
        abs(fit_losses[ep] - f32_weighted_mean(step_losses[ep * nb:(ep + 1) * nb],
                                               counts[ep * nb:(ep + 1) * nb]))
        for ep in range(EPOCHS))
    v["fit_vs_unweighted_max_abs"] = max(
        abs(fit_losses[ep] - float(np.mean(step_losses[ep * nb:(ep + 1) * nb])))
        for ep in range(EPOCHS))
    v["fit_vs_tob_weights_max_abs"] = max(float(np.max(np.abs(a - b)))
                                          for a, b in zip(final_weights, fit_weights))
    ref_losses, ref_w, n_clip_p, n_clip_g = reference_run(case, w0, x, y)
    v["ref_loss_max_rel"] = max(abs(a - b) / max(abs(b), 1e-3)
                                for a, b in zip(step_losses, ref_losses))
    v["ref_weights_max_abs"] = max(float(np.max(np.abs(a - b)))
                                   for a, b in zip(final_weights, ref_w))
    v["clipped_probs"] = n_clip_p
    v["grad_clip_steps"] = n_clip_g
    # fit's epoch accuracy = sample-weighted mean of per-step accuracies
    for m in case["metrics"]:
        v[f"fit_{m}_vs_weighted_max_abs"] = max(
            abs(fit_metrics[m][ep] - f32_weighted_mean(
                step_metrics[m][ep * nb:(ep + 1) * nb], counts[ep * nb:(ep + 1) * nb]))
            for ep in range(EPOCHS))
    v["metric_classes"] = metric_classes
    report[name] = v

    y_json = np.asarray(y, dtype=np.float32)
    return {
        "name": name,
        "input_dim": INPUT_DIM,
        "layers": [{"units": hidden[0], "activation": hidden[1]},
                   {"units": out[0], "activation": out[1]}],
        "optimizer": case["optimizer"],
        "loss": case["loss"],
        "metrics": list(case["metrics"]),
        "batch_size": BATCH_SIZE,
        "epochs": EPOCHS,
        "weights": [tensor_json(w) for w in w0],
        "x": tensor_json(x),
        "y": tensor_json(y_json),
        "step_losses": step_losses,
        "step_metrics": step_metrics,
        "final_weights": [tensor_json(w) for w in final_weights],
        "fit_epoch_losses": fit_losses,
        "fit_epoch_metrics": fit_metrics,
        "evaluate": evaluate,
    }


# --------------------------------------------------------------------------
# Compact JSON writer: objects indented, number arrays on one line.
# --------------------------------------------------------------------------


def to_json(obj, indent=0):
    pad, pad1 = "  " * indent, "  " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad1}{json.dumps(k)}: {to_json(v, indent + 1)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(v, (dict, list)) for v in obj):
            return "[" + ", ".join(to_json(v) for v in obj) + "]"
        if all(isinstance(v, dict) and len(json.dumps(v)) < 100 for v in obj):
            return "[" + ", ".join(json.dumps(v) for v in obj) + "]"
        return "[\n" + ",\n".join(pad1 + to_json(v, indent + 1) for v in obj) \
            + "\n" + pad + "]"
    if isinstance(obj, float):
        if not np.isfinite(obj):
            raise ValueError("non-finite value in fixture")
        return repr(obj)
    return json.dumps(obj)


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    report = {}
    cases = [run_case(c, report) for c in build_cases()]

    print(f"{'case':58s} {'pre/tob':>9s} {'fit-f32m':>9s} {'fit-unw':>9s} "
          f"{'fit/tobW':>9s} {'ref loss*':>9s} {'ref W':>9s} clipP clipG")
    ok = True
    for name, v in report.items():
        print(f"{name:58s} {v['pre_loss_max_rel']:9.2e} "
              f"{v['fit_vs_f32mean_max_abs']:9.2e} {v['fit_vs_unweighted_max_abs']:9.2e} "
              f"{v['fit_vs_tob_weights_max_abs']:9.2e} {v['ref_loss_max_rel']:9.2e} "
              f"{v['ref_weights_max_abs']:9.2e} {v['clipped_probs']:5d} "
              f"{v['grad_clip_steps']:5d} {v['metric_classes'] or ''}")
        ok &= v["pre_loss_max_rel"] < 1e-5
        ok &= v["fit_vs_f32mean_max_abs"] < 1e-5 * max(1.0, abs(v["fit_vs_f32mean_max_abs"]))
        ok &= v["fit_vs_tob_weights_max_abs"] < 1e-5
        ok &= v["ref_loss_max_rel"] < 1e-4
        ok &= v["ref_weights_max_abs"] < 1e-4
        ok &= v.get("acc_recomputed_mismatch", 0) == 0
        extra = {k: v[k] for k in ("pre_exact", "pre_exact_after_mean_roundtrip",
                                   "evaluate_vs_fullbatch_rel",
                                   "acc_if_logit_gt_0_mismatch") if k in v}
        print(f"{'':58s} {extra}")
        for k, val in v.items():
            if k.startswith("fit_") and k.endswith("_vs_weighted_max_abs"):
                ok &= val < 1e-6
    doc = {
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "generated_by": "tools/keras_fidelity.py",
        "cases": cases,
    }
    text = to_json(doc) + "\n"
    json.loads(text)  # sanity
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        f.write(text)
    print(f"wrote {len(cases)} cases, {len(text)} bytes to {out_path}")
    if not ok:
        sys.exit("VERIFICATION FAILED (see table above)")


if __name__ == "__main__":
    main()
