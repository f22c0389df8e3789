"""Golden numbers for sample and class weights from real Keras 3 (TensorFlow backend).

How to run (from the repo root; the peers' environment has Keras):

    KERAS_BACKEND=tensorflow /tmp/peers-venv/bin/python tools/keras_golden_weights.py \
        > tests/golden/keras_weights.json

Each case is a Dense(3, relu) -> Dense(k) model with fixed weights, fixed data (10 rows, batch 4:
batches of 4, 4 and 2 rows, so the epoch's mean weighted by batch size shows), SGD(0.1), no
shuffle, two epochs, weighted validation data, then `evaluate` with weights. Recorded: the
History (loss, metrics, their val_ twins), the final weights and the weighted evaluate. The losses
are ones every backend computes alike (mse, cross-entropies on logits; the softmax case's loss is
computed by TensorFlow from the softmax's logits, as wgfit's fused gradient is). Also what Keras
does with `class_weight` and `sample_weight` together (a ValueError) and with a class missing
from `class_weight` (weight 1). Keras weights the loss only: `metrics` stay unweighted means,
`weighted_metrics` are weighted means sum(w * m) / sum(w) (0 when sum(w) is 0).
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import keras

F32 = np.float32
rng = np.random.default_rng(61)


def f32(a):
    return np.asarray(a, dtype=F32)


def f32list(x):
    return f32(x).tolist()


ROWS, VROWS = 10, 5
X = f32(np.round(rng.normal(size=(ROWS, 2)), 2))
XV = f32(np.round(rng.normal(size=(VROWS, 2)), 2))
W1 = f32([[0.3, -0.6, 0.9], [0.7, 0.2, -0.4]])
B1 = f32([0.1, -0.05, 0.0])
SW = f32([1.0, 0.5, 2.0, 0.0, 1.5, 3.0, 0.25, 1.0, 2.5, 0.75])
VW = f32([2.0, 0.0, 1.0, 0.5, 3.0])


def head(k):
    w = f32(np.round(rng.normal(scale=0.7, size=(3, k)), 2))
    b = f32(np.round(rng.normal(scale=0.1, size=(k,)), 2))
    return w, b


def run(name, k, activation, loss, metrics, y, yv, fit_kw, vw=VW, weighted=False):
    w2, b2 = head(k)
    model = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(3, activation="relu"),
        keras.layers.Dense(k, activation=activation),
    ])
    model.set_weights([W1, B1, w2, b2])
    if weighted:
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss, weighted_metrics=metrics)
    else:
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss, metrics=metrics)
    validation = (XV, yv, vw) if vw is not None else (XV, yv)
    h = model.fit(X, y, batch_size=4, epochs=2, shuffle=False, validation_data=validation, verbose=0, **fit_kw)
    ev = model.evaluate(XV, yv, sample_weight=vw, verbose=0, return_dict=True)
    case = {
        "name": name, "weighted_metrics": weighted, "units": k, "activation": activation, "y": f32list(y), "y_val": f32list(yv),
        "w2": f32list(w2), "b2": f32list(b2),
        "history": {key: [float(v) for v in vals] for key, vals in h.history.items()},
        "evaluate": {key: float(v) for key, v in ev.items()},
        "weights": [f32list(w) for w in model.get_weights()],
    }
    if "sample_weight" in fit_kw:
        case["sample_weight"] = f32list(fit_kw["sample_weight"])
    if "class_weight" in fit_kw:
        case["class_weight"] = {str(c): float(v) for c, v in fit_kw["class_weight"].items()}
    case["val_weight"] = f32list(vw) if vw is not None else None
    return case


y_reg = f32(np.round(rng.normal(size=(ROWS, 2)), 2))
yv_reg = f32(np.round(rng.normal(size=(VROWS, 2)), 2))
y_bin = f32([[1], [0], [0], [1], [1], [0], [1], [0], [0], [1]])
yv_bin = f32([[0], [1], [1], [0], [1]])
y_cls = f32([0, 2, 1, 1, 0, 2, 2, 1, 0, 2])
yv_cls = f32([1, 0, 2, 2, 1])
onehot = np.eye(3, dtype=F32)[y_cls.astype(int)]
onehot_v = np.eye(3, dtype=F32)[yv_cls.astype(int)]
bce_logits = keras.losses.BinaryCrossentropy(from_logits=True)
scce_logits = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

cases = [
    run("regression_sample_weight", 2, "linear", "mse", ["mae"], y_reg, yv_reg, {"sample_weight": SW}),
    run("binary_class_weight", 1, "linear", bce_logits, ["binary_accuracy", "mae"], y_bin, yv_bin,
        {"class_weight": {0: 0.5, 1: 3.0}}),
    # A class missing from class_weight weighs 1; unweighted validation data.
    run("binary_class_weight_partial", 1, "linear", bce_logits, ["binary_accuracy"], y_bin, yv_bin,
        {"class_weight": {1: 4.0}}, vw=None),
    run("sparse_class_weight", 3, "linear", scce_logits, ["sparse_categorical_accuracy"], y_cls, yv_cls,
        {"class_weight": {0: 1.0, 1: 2.0, 2: 0.5}}),
    run("onehot_sample_weight", 3, "softmax", "categorical_crossentropy", ["categorical_accuracy"], onehot,
        onehot_v, {"sample_weight": SW}),
    # Keras's weighted_metrics: the metrics are weighted means sum(w * m) / sum(w) too.
    run("regression_weighted_metrics", 2, "linear", "mse", ["mae"], y_reg, yv_reg, {"sample_weight": SW},
        weighted=True),
    run("sparse_weighted_metrics", 3, "linear", scce_logits, ["sparse_categorical_accuracy"], y_cls, yv_cls,
        {"class_weight": {0: 1.0, 1: 2.0, 2: 0.5}}, weighted=True),
    # Every weight of the validation data zero: Keras's metrics divide with divide_no_nan.
    run("zero_validation_weights", 1, "linear", bce_logits, ["binary_accuracy"], y_bin, yv_bin,
        {"sample_weight": SW}, vw=f32(np.zeros(VROWS)), weighted=True),
]

# validation_split slices sample_weight with x and y (the last 20% validate, weighted).
split = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
w2s, b2s = head(2)
split.set_weights([W1, B1, w2s, b2s])
split.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
hs = split.fit(X, y_reg, batch_size=4, epochs=2, shuffle=False, validation_split=0.2, sample_weight=SW, verbose=0)
split_case = {"w2": f32list(w2s), "b2": f32list(b2s),
              "history": {key: [float(v) for v in vals] for key, vals in hs.history.items()},
              "weights": [f32list(w) for w in split.get_weights()]}

try:
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).compile(loss="mse") or None
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    m.compile(loss="mse")
    m.fit(X, y_bin, sample_weight=SW, class_weight={0: 1.0, 1: 2.0}, verbose=0)
    both = "accepted"
except ValueError as e:
    both = str(e)

out = {
    "keras": keras.__version__, "backend": keras.backend.backend(),
    "x": f32list(X), "x_val": f32list(XV), "w1": f32list(W1), "b1": f32list(B1),
    "cases": cases, "validation_split": split_case, "sample_and_class_weight": both,
}
print(json.dumps(out, indent=1))
