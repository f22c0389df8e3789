"""The multi-class quality bar in Keras 3 (TensorFlow backend): digits on the shipped split
(data/digits.json, min-max scaled with the training rows' statistics as wgfit's
data::shipped::digits), 64 relu -> 64 relu -> 10 softmax, Adam, sparse categorical cross-entropy,
batch 32, 30 epochs, seeds 0-2. Prints each seed's final val_accuracy and the mean +- sd; with
--history PATH writes seed 0's History as JSON.

    /tmp/peers-venv/bin/python tools/keras_digits.py [--history PATH]
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras

here = os.path.dirname(os.path.abspath(__file__))
data = np.loadtxt(os.path.join(here, "..", "data", "digits.csv"), delimiter=",", skiprows=1, dtype=np.float32)
split = json.load(open(os.path.join(here, "..", "data", "digits.json")))
x, y = data[:, :-1], data[:, -1]
xt, yt, xv, yv = x[split["train"]], y[split["train"]], x[split["valid"]], y[split["valid"]]
lo, hi = xt.min(axis=0), xt.max(axis=0)
span = np.where(hi > lo, hi - lo, 1.0).astype(np.float32)
xt, xv = (xt - lo) / span, (xv - lo) / span

accs = []
for seed in range(3):
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(xt, yt, validation_data=(xv, yv), batch_size=32, epochs=30, verbose=0)
    acc = h.history["val_accuracy"][-1]
    accs.append(acc)
    print(f"keras seed {seed}: val_accuracy {acc:.4f}, val_loss {h.history['val_loss'][-1]:.4f}", flush=True)
    if seed == 0 and "--history" in sys.argv:
        json.dump({k: [float(v) for v in vs] for k, vs in h.history.items()}, open(sys.argv[sys.argv.index("--history") + 1], "w"))
a = np.array(accs)
print(f"keras: val accuracy {a.mean():.4f} +- {a.std(ddof=1):.4f} over 3 seeds")
