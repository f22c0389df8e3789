"""Golden reference numbers from real Keras 3 for wgfit's Rust tests.

How to run (from the repo root):

    python3 -m venv /tmp/keras-venv && /tmp/keras-venv/bin/pip install keras jax[cpu] && \
    KERAS_BACKEND=jax /tmp/keras-venv/bin/python tools/keras_golden.py > tests/golden/keras_golden.json

Use the jax backend: jax/torch compute BinaryCrossentropy with the documented
clipped-probability formula (clip to [eps, 1-eps], eps=1e-7). The TensorFlow
backend silently recovers logits from the sigmoid op instead, giving other numbers.

All inputs are fixed and hand-written (no randomness). Every number printed is
a float32 computed by Keras, converted to a Python float (repr round-trips).
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import keras

F32 = np.float32


def f32list(x):
    """Flatten-preserving conversion of a float32 array to nested Python floats."""
    return np.asarray(x, dtype=F32).tolist()


def run_optimizer(opt, w0, grads):
    """Apply each gradient in turn to a float32 keras.Variable; record weights after each step."""
    var = keras.Variable(np.array(w0, dtype=F32), dtype="float32")
    after = []
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(np.array(g, dtype=F32)), var)])
        after.append(f32list(keras.ops.convert_to_numpy(var.value)))
    return after


def as_f32_floats(vals):
    # Round hand-written inputs to float32 so the JSON holds exactly what Keras saw.
    return f32list(np.array(vals, dtype=F32))


# ---------------- optimizers ----------------
W0 = as_f32_floats([0.5, -1.0, 2.0, 0.0, -0.25, 3.0])
GRADS = as_f32_floats([
    [0.1, -0.2, 0.3, 1e-6, 0.0, -1.5],
    [-0.05, 0.4, 0.3, 0.0, 1e-6, 2.0],
    [0.2, -0.1, -0.6, -1e-6, 0.0, 0.5],
])


def adam_case(lr):
    b1, b2, eps = 0.9, 0.999, 1e-7
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=b1, beta_2=b2, epsilon=eps)
    return {"lr": lr, "beta_1": b1, "beta_2": b2, "epsilon": eps,
            "w0": W0, "grads": GRADS, "w_after": run_optimizer(opt, W0, GRADS)}


def sgd_case(momentum, nesterov):
    lr = 0.1
    opt = keras.optimizers.SGD(learning_rate=lr, momentum=momentum, nesterov=nesterov)
    return {"lr": lr, "momentum": momentum, "nesterov": nesterov,
            "w0": W0, "grads": GRADS, "w_after": run_optimizer(opt, W0, GRADS)}


# ---------------- losses / metrics ----------------
# 8x1 binary targets and probabilities exercising the [1e-7, 1-1e-7] clip.
Y_TRUE = as_f32_floats([[1.0], [0.0], [1.0], [0.0], [1.0], [0.0], [1.0], [0.0]])
Y_PRED = as_f32_floats([[1.0], [0.0], [0.0], [1.0], [0.5], [1e-9], [0.9999999], [0.3]])
LOGITS = as_f32_floats([[40.0], [-40.0], [-40.0], [40.0], [0.0], [2.5], [-1.0], [0.0]])
# 4x2 regression targets.
Y_TRUE_2 = as_f32_floats([[1.0, -2.0], [0.5, 0.0], [3.0, 1.5], [-1.0, 4.0]])
Y_PRED_2 = as_f32_floats([[0.5, -1.0], [0.5, 0.25], [2.0, 2.0], [1.0, 3.5]])


def loss_val(loss_obj, yt, yp):
    return float(F32(keras.ops.convert_to_numpy(
        loss_obj(np.array(yt, dtype=F32), np.array(yp, dtype=F32)))))


def bin_acc(yt, yp):
    m = keras.metrics.BinaryAccuracy()  # threshold 0.5: pred > 0.5 -> 1
    m.update_state(np.array(yt, dtype=F32), np.array(yp, dtype=F32))
    return float(F32(keras.ops.convert_to_numpy(m.result())))


losses = {
    "y_true": Y_TRUE,
    "y_pred": Y_PRED,
    "mae": loss_val(keras.losses.MeanAbsoluteError(), Y_TRUE, Y_PRED),
    "mse": loss_val(keras.losses.MeanSquaredError(), Y_TRUE, Y_PRED),
    "binary_crossentropy": loss_val(keras.losses.BinaryCrossentropy(), Y_TRUE, Y_PRED),
    "binary_accuracy": bin_acc(Y_TRUE, Y_PRED),
    "logits": LOGITS,
    "binary_crossentropy_from_logits": loss_val(
        keras.losses.BinaryCrossentropy(from_logits=True), Y_TRUE, LOGITS),
    "y_true_2col": Y_TRUE_2,
    "y_pred_2col": Y_PRED_2,
    "mae_2col": loss_val(keras.losses.MeanAbsoluteError(), Y_TRUE_2, Y_PRED_2),
    "mse_2col": loss_val(keras.losses.MeanSquaredError(), Y_TRUE_2, Y_PRED_2),
}

out = {
    "keras_version": keras.__version__,
    "backend": keras.backend.backend(),
    "adam": adam_case(0.001),
    "adam_lr01": adam_case(0.1),
    "sgd_momentum": sgd_case(0.9, False),
    "sgd_nesterov": sgd_case(0.9, True),
    "sgd_plain": sgd_case(0.0, False),
    "losses": losses,
}
print(json.dumps(out, indent=1))
