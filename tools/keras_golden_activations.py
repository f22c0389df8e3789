"""Keras's activations and their gradients, for tests/keras_golden.rs (activations_match_keras).

Run with the peers' environment (../shared/peers/README.md; Keras 3 on TensorFlow):
    KERAS_BACKEND=tensorflow /tmp/peers-venv/bin/python tools/keras_golden_activations.py \\
        > tests/golden/keras_activations.json
For each activation: y = activation(x) and dy/dx (an upstream gradient of ones), float32.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

X = np.array([-6.0, -3.5, -1.25, -0.5, -0.1, -1e-3, 0.0, 1e-3, 0.1, 0.5, 1.25, 3.5, 6.0, 12.0, -12.0],
             dtype=np.float32)
NAMES = ["linear", "relu", "sigmoid", "tanh", "elu", "selu", "leaky_relu", "softplus", "silu", "gelu",
         "gelu_approximate"]


def case(name):
    if name == "gelu_approximate":
        def fn(v):
            return keras.activations.gelu(v, approximate=True)
    else:
        fn = keras.activations.get(name)
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    g = tape.gradient(y, x)
    return {"y": [float(v) for v in np.asarray(y, dtype=np.float32)],
            "dy_dx": [float(v) for v in np.asarray(g, dtype=np.float32)]}


print(json.dumps({"keras_version": keras.__version__, "backend": keras.backend.backend(),
                  "x": [float(v) for v in X], "activations": {n: case(n) for n in NAMES}}, indent=1))
