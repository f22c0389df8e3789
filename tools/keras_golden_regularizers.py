"""Golden numbers for weight regularizers from real Keras 3 (TensorFlow backend; MSE has no backend differences).

How to run (from the repo root; the peers' environment has Keras):

    KERAS_BACKEND=tensorflow python tools/keras_golden_regularizers.py > tests/golden/keras_regularizers.json

A Dense(3, relu) -> Dense(1) model with fixed weights, fixed data, SGD(0.1), MSE, no shuffle,
batch 4 over 8 rows (two steps per epoch), two epochs with validation data: for each
regularizer setting the History (loss, val_loss), the final weights, and `evaluate` on the
validation data. Also each regularizer name's defaults and penalty on a fixed vector.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import keras

F32 = np.float32


def f32list(x):
    return np.asarray(x, dtype=F32).tolist()


X = np.array([[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [0.1, 0.3],
              [2.0, -0.5], [-1.25, -1.5], [0.8, 0.9], [-0.3, 1.2]], dtype=F32)
Y = np.array([[1.0], [0.5], [-0.5], [0.2], [1.5], [-1.0], [0.7], [0.1]], dtype=F32)
XV = np.array([[0.2, 0.4], [-1.0, 0.5], [1.0, 1.0]], dtype=F32)
YV = np.array([[0.3], [-0.2], [0.9]], dtype=F32)
W1 = np.array([[0.3, -0.6, 0.9], [0.7, 0.2, -0.4]], dtype=F32)
B1 = np.array([0.1, -0.05, 0.0], dtype=F32)
W2 = np.array([[0.5], [-0.8], [0.6]], dtype=F32)
B2 = np.array([0.05], dtype=F32)


def reg(spec):
    if spec is None:
        return None
    kind, l1, l2 = spec
    if kind == "l1":
        return keras.regularizers.L1(l1)
    if kind == "l2":
        return keras.regularizers.L2(l2)
    return keras.regularizers.L1L2(l1=l1, l2=l2)


def case(kernel, bias):
    model = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(3, activation="relu", kernel_regularizer=reg(kernel), bias_regularizer=reg(bias)),
        keras.layers.Dense(1, kernel_regularizer=reg(kernel)),
    ])
    model.set_weights([W1, B1, W2, B2])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    h = model.fit(X, Y, batch_size=4, epochs=2, shuffle=False, validation_data=(XV, YV), verbose=0)
    ev = model.evaluate(XV, YV, verbose=0)
    return {
        "kernel": kernel, "bias": bias,
        "loss": [float(v) for v in h.history["loss"]],
        "val_loss": [float(v) for v in h.history["val_loss"]],
        "evaluate": float(ev),
        "weights": [f32list(w) for w in model.get_weights()],
    }


V = np.array([0.5, -1.0, 0.0, 2.0, -0.25], dtype=F32)
defaults = {}
for name in ["l1", "l2", "l1l2"]:
    r = keras.regularizers.get(name)
    cfg = r.get_config()
    defaults[name] = {"config": {k: float(v) for k, v in cfg.items()}, "penalty": float(r(V))}

out = {
    "x": f32list(X), "y": f32list(Y), "x_val": f32list(XV), "y_val": f32list(YV),
    "w1": f32list(W1), "b1": f32list(B1), "w2": f32list(W2), "b2": f32list(B2),
    "vector": f32list(V),
    "defaults": defaults,
    "cases": [
        case(None, None),
        case(("l2", 0.0, 0.01), None),
        case(("l1", 0.02, 0.0), ("l2", 0.0, 0.05)),
        case(("l1l2", 0.01, 0.03), ("l1", 0.04, 0.0)),
    ],
}
print(json.dumps(out, indent=1))
