"""Golden numbers for the confusion metrics and RootMeanSquaredError from real Keras 3.

    KERAS_BACKEND=tensorflow /tmp/peers-venv/bin/python tools/keras_golden_metrics.py \
        > tests/golden/keras_metrics.json

Two parts, both read by tests/metrics.rs:
- "fixed": Keras's metric objects (AUC ROC and PR with the default 200 thresholds, Precision,
  Recall, TruePositives..FalseNegatives at 0.5, RootMeanSquaredError) updated with fixed
  predictions and labels, in two batches so the counts accumulate, for one output column and for
  three (flattened: multi_label=False). Predictions include values exactly on thresholds (0.5,
  k / 199, 0, 1) and outside [0, 1] (the kernel test covers a label 2, positive as Keras's bool
  cast makes it; binary_crossentropy refuses it in a model).
- "fit": a Dense(4, relu) -> Dense(1, sigmoid) model with fixed weights trained by SGD(0.1),
  batch 8, no shuffle, 3 epochs, with validation data: the History per epoch.
Inputs are fixed (a seeded generator, rounded to float32) and written into the JSON.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras

F32 = np.float32
rng = np.random.default_rng(2024)


def f32(a):
    return np.asarray(a, dtype=F32)


def flat(a):
    return f32(a).reshape(-1).tolist()


def metric_objects():
    # Named explicitly: Keras numbers a second object of a class ("auc_1"), which would change
    # the History's keys between the parts of this script. Every setting is Keras's default but
    # the PR curve.
    return {
        "auc": keras.metrics.AUC(name="auc"),
        "pr_auc": keras.metrics.AUC(curve="PR", name="pr_auc"),
        "precision": keras.metrics.Precision(name="precision"),
        "recall": keras.metrics.Recall(name="recall"),
        "true_positives": keras.metrics.TruePositives(name="true_positives"),
        "false_positives": keras.metrics.FalsePositives(name="false_positives"),
        "true_negatives": keras.metrics.TrueNegatives(name="true_negatives"),
        "false_negatives": keras.metrics.FalseNegatives(name="false_negatives"),
        "root_mean_squared_error": keras.metrics.RootMeanSquaredError(name="root_mean_squared_error"),
    }


def fixed_case(rows, cols):
    pred = rng.uniform(-0.1, 1.1, size=(rows, cols))
    k = rng.integers(0, 200, size=(rows, cols)) / 199.0
    pick = rng.integers(0, 6, size=(rows, cols))
    pred = np.where(pick == 0, 0.5, np.where(pick == 1, k, pred))
    pred[0, 0], pred[1, 0] = 0.0, 1.0
    pred = f32(pred)
    # Labels correlated with the predictions, so the AUC is far from 0.5.
    y = f32(rng.uniform(size=(rows, cols)) < np.clip(pred, 0.05, 0.95))
    out = {"rows": rows, "cols": cols, "pred": flat(pred), "y": flat(y)}
    half = rows // 2
    for name, m in metric_objects().items():
        m.update_state(y[:half], pred[:half])
        m.update_state(y[half:], pred[half:])
        out[name] = float(keras.ops.convert_to_numpy(m.result()))
    return out


def fit_case():
    rows, vrows = 40, 12
    x = f32(rng.normal(size=(rows, 3)))
    y = f32((x[:, 0] + 0.5 * x[:, 1] - 0.3 * x[:, 2] + rng.normal(scale=0.7, size=rows) > 0)[:, None])
    vx = f32(rng.normal(size=(vrows, 3)))
    vy = f32((vx[:, 0] + 0.5 * vx[:, 1] > 0)[:, None])
    model = keras.Sequential([
        keras.Input(shape=(3,)),
        keras.layers.Dense(4, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    weights = [f32(rng.normal(scale=0.8, size=w.shape)) for w in model.get_weights()]
    model.set_weights(weights)
    metrics = list(metric_objects().values())
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="binary_crossentropy",
                  metrics=metrics + ["binary_accuracy"])
    h = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, validation_data=(vx, vy))
    return {
        "x": flat(x), "y": flat(y), "vx": flat(vx), "vy": flat(vy),
        "weights": [flat(w) for w in weights],
        "history": {k: [float(v) for v in vals] for k, vals in h.history.items()},
    }


out = {
    "keras_version": keras.__version__,
    "backend": keras.backend.backend(),
    "fixed": [fixed_case(50, 1), fixed_case(30, 3)],
    "fit": fit_case(),
}
print(json.dumps(out, indent=1))
