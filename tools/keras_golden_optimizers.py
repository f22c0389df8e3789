"""Golden numbers from Keras 3 for wgfit's optimizers, gradient clipping, weight decay and
learning-rate schedules (tests/optimizers.rs).

How to run (from the repo root):

    KERAS_BACKEND=tensorflow /tmp/peers-venv/bin/python tools/keras_golden_optimizers.py \
        > tests/golden/keras_optimizers.json

Each optimizer case applies four fixed gradients to two float32 variables (a 2x3 "kernel" and a
3-value "bias", so clipnorm's per-variable norms differ from global_clipnorm's) through
`optimizer.apply_gradients`, and records both variables after every step. Each schedule case
records the schedule's value at fixed steps. Inputs are hand-written; every number is the
float32 Keras computed, as a Python float.

The TensorFlow backend runs Keras's generic `BaseOptimizer` and `update_step` formulas
(`w - w * wd * lr`, `m + (g - m) * (1 - beta_1)`); the torch backend has its own fused variants
(`w * (1 - wd * lr)`, `m * beta_1 + (1 - beta_1) * g`) that round differently, and jax is not
installed here.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import keras

F32 = np.float32
S = keras.optimizers.schedules


def f32list(x):
    return np.asarray(x, dtype=F32).tolist()


KERNEL0 = f32list([[0.5, -1.0, 2.0], [0.0, -0.25, 3.0]])
BIAS0 = f32list([0.1, -0.2, 0.05])
# Per step: (kernel gradient, bias gradient). Norms vary around 1 so clipping at 0.5..2 bites
# on some steps and not on others.
GRADS = [
    (f32list([[0.1, -0.2, 0.3], [1e-6, 0.0, -1.5]]), f32list([0.05, -0.02, 0.4])),
    (f32list([[-0.05, 0.4, 0.3], [0.0, 1e-6, 2.0]]), f32list([1.5, 0.3, -0.7])),
    (f32list([[0.2, -0.1, -0.6], [-1e-6, 0.0, 0.5]]), f32list([0.0, 0.01, -0.02])),
    (f32list([[0.03, 0.02, -0.01], [0.04, -0.05, 0.02]]), f32list([0.01, 0.0, 0.03])),
]


def run(opt):
    k = keras.Variable(np.array(KERNEL0, dtype=F32), dtype="float32")
    b = keras.Variable(np.array(BIAS0, dtype=F32), dtype="float32")
    after = []
    for gk, gb in GRADS:
        opt.apply_gradients([
            (keras.ops.convert_to_tensor(np.array(gk, dtype=F32)), k),
            (keras.ops.convert_to_tensor(np.array(gb, dtype=F32)), b),
        ])
        after.append(f32list(np.concatenate([np.ravel(keras.ops.convert_to_numpy(k.value)),
                                             keras.ops.convert_to_numpy(b.value)])))
    return after


def exp_decay():
    return S.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)


CASES = {
    "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=0.01),
    "rmsprop_momentum": lambda: keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.9),
    "rmsprop_centered": lambda: keras.optimizers.RMSprop(learning_rate=0.01, centered=True),
    "rmsprop_centered_momentum": lambda: keras.optimizers.RMSprop(
        learning_rate=0.01, rho=0.8, momentum=0.5, centered=True, epsilon=1e-3),
    "rmsprop_weight_decay": lambda: keras.optimizers.RMSprop(learning_rate=0.01, weight_decay=0.1),
    "adamw": lambda: keras.optimizers.AdamW(learning_rate=0.01),
    "adamw_wd01": lambda: keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1),
    "adamw_schedule": lambda: keras.optimizers.AdamW(learning_rate=exp_decay(), weight_decay=0.1),
    "adam_amsgrad": lambda: keras.optimizers.Adam(learning_rate=0.01, amsgrad=True),
    "adamw_amsgrad": lambda: keras.optimizers.AdamW(learning_rate=0.01, amsgrad=True, weight_decay=0.05),
    "sgd_weight_decay": lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.01),
    "sgd_schedule": lambda: keras.optimizers.SGD(learning_rate=exp_decay()),
    "adam_clipnorm": lambda: keras.optimizers.Adam(learning_rate=0.01, clipnorm=0.5),
    "sgd_clipnorm": lambda: keras.optimizers.SGD(learning_rate=0.1, clipnorm=0.5),
    "sgd_global_clipnorm": lambda: keras.optimizers.SGD(learning_rate=0.1, global_clipnorm=1.0),
    "rmsprop_global_clipnorm": lambda: keras.optimizers.RMSprop(learning_rate=0.01, global_clipnorm=1.0),
    "sgd_clipvalue": lambda: keras.optimizers.SGD(learning_rate=0.1, clipvalue=0.25),
    "adam_clipvalue": lambda: keras.optimizers.Adam(learning_rate=0.01, clipvalue=0.25),
}

SCHEDULES = {
    "exponential": S.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5),
    "exponential_staircase": S.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5, staircase=True),
    "inverse_time": S.InverseTimeDecay(0.1, decay_steps=3, decay_rate=0.5),
    "inverse_time_staircase": S.InverseTimeDecay(0.1, decay_steps=3, decay_rate=0.5, staircase=True),
    "piecewise": S.PiecewiseConstantDecay([2, 5], [0.1, 0.05, 0.01]),
    "cosine": S.CosineDecay(0.1, decay_steps=7),
    "cosine_alpha": S.CosineDecay(0.1, decay_steps=7, alpha=0.1),
    "cosine_warmup": S.CosineDecay(0.0, decay_steps=7, alpha=0.1, warmup_target=0.2, warmup_steps=3),
}
STEPS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 13, 100]

out = {
    "keras_version": keras.__version__,
    "backend": keras.backend.backend(),
    "kernel0": KERNEL0,
    "bias0": BIAS0,
    "grads": [gk[0] + gk[1] + gb for gk, gb in GRADS],
    "cases": {name: run(make()) for name, make in CASES.items()},
    "schedule_steps": STEPS,
    "schedules": {
        name: [float(F32(keras.ops.convert_to_numpy(s(np.int64(step))))) for step in STEPS]
        for name, s in SCHEDULES.items()
    },
}
print(json.dumps(out, indent=1))
