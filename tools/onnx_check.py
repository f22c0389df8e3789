"""Checks wgfit's ONNX exports with the official tools: the onnx checker (full check, with shape
inference) and onnxruntime, whose outputs must match wgfit's predict (relative 1e-5).

Not part of CI (it needs Python packages). Run once after changing the exporter:

    /tmp/peers-venv/bin/pip install onnx onnxruntime
    WGFIT_ONNX_DUMP=/tmp/wgfit-onnx cargo test --release --test onnx
    /tmp/peers-venv/bin/python tools/onnx_check.py /tmp/wgfit-onnx

tests/onnx.rs writes, for every model it exports, NAME.onnx and NAME.json with the rows it fed
the model ("input") and what Sequential::predict or `wgfit predict` returned ("expected").
Exit status 0 when every file passes.
"""
import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort


def check(onnx_path):
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    case = json.loads(onnx_path.with_suffix(".json").read_text())
    x = np.asarray(case["input"], dtype=np.float32)
    want = np.asarray(case["expected"], dtype=np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["output"], {"input": x})
    if got.shape != want.shape:
        return f"output shape {got.shape}, predict {want.shape}"
    err = np.abs(got - want)
    tol = 1e-5 * np.maximum(np.abs(got), np.abs(want)) + 1e-6
    if np.any(err > tol):
        i = np.unravel_index(np.argmax(err - tol), err.shape)
        return f"value {i}: onnxruntime {got[i]} vs predict {want[i]}"
    meta = {p.key: p.value for p in model.metadata_props}
    if model.opset_import[0].version < 13:
        return f"opset {model.opset_import[0].version}"
    return None, meta


def main():
    folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/wgfit-onnx")
    files = sorted(folder.glob("*.onnx"))
    if not files:
        sys.exit(f"no .onnx files in {folder}: run WGFIT_ONNX_DUMP={folder} cargo test --release --test onnx")
    failed = 0
    for f in files:
        try:
            result = check(f)
        except Exception as e:  # the checker's and the runtime's errors, reported per file
            result = f"{type(e).__name__}: {e}"
        if isinstance(result, tuple):
            print(f"ok    {f.name}  task={result[1].get('task')}")
        else:
            failed += 1
            print(f"FAIL  {f.name}: {result}")
    print(f"{len(files) - failed}/{len(files)} files pass (onnx {onnx.__version__}, onnxruntime {ort.__version__})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
