"""Golden numbers for the Normalization layer from Keras 3 (TensorFlow backend):

    python tools/keras_golden_normalization.py > tests/golden/keras_normalization.json
"""
import os, json
os.environ["KERAS_BACKEND"]="tensorflow"
import numpy as np, keras
X = np.array([[1.0, 10.0, 5.0], [2.0, 20.0, 5.0], [4.0, 15.0, 5.0], [-3.0, 0.5, 5.0], [0.5, 12.0, 5.0]], dtype=np.float32)
T = np.array([[0.0, 1.0, 5.0], [3.0, -2.0, 4.0]], dtype=np.float32)
n = keras.layers.Normalization(); n.adapt(X)
inv = keras.layers.Normalization(invert=True); inv.adapt(X)
out = {"x": X.tolist(), "t": T.tolist(),
 "mean": np.asarray(n.mean).reshape(-1).tolist(), "variance": np.asarray(n.variance).reshape(-1).tolist(),
 "weights": [np.asarray(w).reshape(-1).tolist() for w in n.get_weights()],
 "weight_names": [w.path for w in n.weights],
 "normalized": np.asarray(n(T)).tolist(), "inverted": np.asarray(inv(T)).tolist(),
 "given": np.asarray(keras.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 0.0, 0.25])(T)).tolist()}
print(json.dumps(out))
