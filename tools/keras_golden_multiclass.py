"""Golden numbers for the multi-class losses, metrics and softmax from real Keras 3.

    KERAS_BACKEND=torch /tmp/peers-venv/bin/python tools/keras_golden_multiclass.py \
        > tests/golden/keras_multiclass.json

The torch backend computes the documented formulas (probabilities normalized and clipped to
[1e-7, 1 - 1e-7]); TensorFlow's would recover logits from a softmax op instead. Gradients are
torch autograd through Keras's own loss objects (mean over the batch, Keras's default reduction).
Sparse categorical cross-entropy on probabilities differs between backends where the clip acts:
TensorFlow (Keras's default backend, which wgfit follows) clips and then normalizes through
log-softmax, log(sum(clip(p))) - log(clip(p[label])); torch normalizes first. Its "scce" case is
computed by TensorFlow (this script runs itself once more with KERAS_BACKEND=tensorflow).
Inputs are fixed (a seeded generator, rounded to float32) and written into the JSON.
"""
import json
import os

import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
TF_PART = os.environ["KERAS_BACKEND"] == "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras
if not TF_PART:
    import torch

F32 = np.float32
rng = np.random.default_rng(13)
ROWS, K = 9, 7


def f32(a):
    return np.asarray(a, dtype=F32)


def flat(a):
    return f32(a).reshape(-1).tolist()


def loss_and_grad(loss_obj, y_true, y_pred):
    t = torch.tensor(f32(y_pred), requires_grad=True)
    v = loss_obj(torch.tensor(y_true), t)
    v.backward()
    return float(v.detach().numpy()), flat(t.grad.numpy())


# Probabilities: rows of a Dirichlet draw, then edge cases for the clip and the normalization.
probs = rng.dirichlet(np.ones(K), size=ROWS).astype(F32)
probs[1, 2] = 0.0          # a zero probability (clipped) ...
probs[1] /= probs[1].sum()
probs[2, :] = 1e-9         # ... and a near one-hot row, mostly clipped
probs[2, 4] = 1.0
probs[3] *= 1.3            # not normalized: Keras divides by the row's sum
probs = f32(probs)
labels = rng.integers(0, K, size=ROWS)
labels[2] = 4              # right on the near one-hot row
labels[1] = 2              # the clipped zero is the target
onehot = np.eye(K, dtype=F32)[labels]
logits = f32(rng.normal(0, 2, size=(ROWS, K)))
logits[5, :] = 0.5         # every class tied: argmax is the first, every class in the top 5
logits[6, 0] = 40.0        # large logits: softmax must subtract the row max
# Ties for top-k: three classes share the target's value on row 7.
logits[7] = f32([0.1, 0.3, 0.3, 0.3, 0.2, -1.0, 0.3])
labels_l = labels.copy()
labels_l[7] = 2
onehot_l = np.eye(K, dtype=F32)[labels_l]

if TF_PART:
    import tensorflow as tf
    p = tf.Variable(probs)
    with tf.GradientTape() as tape:
        v = keras.losses.SparseCategoricalCrossentropy()(labels.astype(F32), p)
    print(json.dumps({"loss": float(v.numpy()), "grad": flat(tape.gradient(v, p).numpy())}))
    sys.exit(0)

out = {"rows": ROWS, "classes": K, "probs": flat(probs), "labels": labels.astype(float).tolist(),
       "onehot": flat(onehot), "logits": flat(logits), "labels_logits": labels_l.astype(float).tolist(),
       "onehot_logits": flat(onehot_l)}

cases = {}
for ls in [0.0, 0.1]:
    v, g = loss_and_grad(keras.losses.CategoricalCrossentropy(label_smoothing=ls), onehot, probs)
    cases[f"cce_ls{ls}"] = {"loss": v, "grad": g}
for ls in [0.0, 0.2]:
    v, g = loss_and_grad(keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=ls), onehot_l, logits)
    cases[f"cce_logits_ls{ls}"] = {"loss": v, "grad": g}
env = dict(os.environ, KERAS_BACKEND="tensorflow")
cases["scce"] = json.loads(subprocess.run([sys.executable, __file__], env=env, check=True,
                                          capture_output=True, text=True).stdout)
v, g = loss_and_grad(keras.losses.SparseCategoricalCrossentropy(from_logits=True), labels_l.astype(F32), logits)
cases["scce_logits"] = {"loss": v, "grad": g}
out["losses"] = cases


def metric(m, y_true, y_pred):
    m.update_state(y_true, y_pred)
    return float(keras.ops.convert_to_numpy(m.result()))


out["metrics"] = {
    "categorical_accuracy": metric(keras.metrics.CategoricalAccuracy(), onehot_l, logits),
    "sparse_categorical_accuracy": metric(keras.metrics.SparseCategoricalAccuracy(), labels_l.astype(F32), logits),
    "top_k_categorical_accuracy": metric(keras.metrics.TopKCategoricalAccuracy(), onehot_l, logits),
    "sparse_top_k_categorical_accuracy": metric(
        keras.metrics.SparseTopKCategoricalAccuracy(), labels_l.astype(F32), logits),
    "top_2_categorical_accuracy": metric(keras.metrics.TopKCategoricalAccuracy(k=2), onehot_l, logits),
}

# Softmax as an activation: values, and the gradient of sum(w * softmax(x)) for weights w.
w = f32(rng.normal(size=(ROWS, K)))
x = torch.tensor(logits, requires_grad=True)
s = keras.activations.softmax(x)
(s * torch.tensor(w)).sum().backward()
out["softmax"] = {"x": flat(logits), "y": flat(s.detach().numpy()), "upstream": flat(w), "dx": flat(x.grad.numpy())}

# The fused gradient: d mean CCE(softmax(z)) / dz, which is (softmax(z) - y) / rows.
z = torch.tensor(logits, requires_grad=True)
l = keras.losses.CategoricalCrossentropy()(torch.tensor(onehot_l), keras.activations.softmax(z))
l.backward()
out["softmax_cce"] = {"loss": float(l.detach().numpy()), "dz": flat(z.grad.numpy())}
out["versions"] = {"keras": keras.__version__, "torch": torch.__version__}
print(json.dumps(out, indent=1))
