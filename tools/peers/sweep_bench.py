"""Many models at once: the sweeps S1/S2 (BENCHMARKS.md), the ways a careful Python user runs them.

A copy of shared/peers/python/sweep_bench.py (2026-12-03) with --device and --threads for the
PyTorch engines (on a GPU: data, parameters and row orders on the device; the engine is then
named ENGINE-DEVICE); the CPU run is the same as the original's.

Engines (--engines, comma list):
  torch-seq   one model after another, the plain PyTorch loop (what Optuna/Ray trials do on one core set)
  torch-vmap  all K models in one program: torch.func.functional_call + vmap over stacked parameters,
              Adam written over the stacked tensors with a learning rate per model (PyTorch's
              "model ensembling" recipe; each model draws its own row order)
  keras-seq   one Keras fit after another (what KerasTuner does); --keras-models limits how many
              run (time per model-epoch is what is compared)
One JSON line per sweep and engine: wall seconds, model-epochs per second, quality over the models.
Usage: sweep_bench.py [--sweeps S1,S2] [--engines torch-seq,torch-vmap,keras-seq] [--models 64]
       [--device cuda] [--threads 16]
"""
import argparse
import json
import os
import statistics
import time

import numpy as np

import common

SWEEPS = {  # data, hidden widths, loss, batch, epochs
    "S1": ("ionosphere", [16, 16], "bce", 32, 100),
    "S2": ("concrete", [128, 128], "mae", 64, 50),
}
LRS = [3e-4, 1e-3, 3e-3, 1e-2]


def configs(k):
    """Model i: learning rate LRS[i % 4], seed i // 4 (K = 64: 4 rates x 16 seeds)."""
    return [(LRS[i % len(LRS)], i // len(LRS)) for i in range(k)]


def summarize(engine, sweep, k, wall, epochs, quality, **extra):
    rec = {"engine": engine, "sweep": sweep, "models": k, "epochs": epochs, "wall_s": round(wall, 3),
           "model_epochs_per_s": round(k * epochs / wall, 1),
           "quality_median": round(statistics.median(quality), 4),
           "quality_best": round(min(quality) if SWEEPS[sweep][2] == "mae" else max(quality), 4),
           "quality": "best val MAE" if SWEEPS[sweep][2] == "mae" else "best val accuracy", **extra}
    print(json.dumps(rec), flush=True)


DEVICE, THREADS = "cpu", 2


def torch_setup():
    import torch
    torch.set_num_threads(THREADS)
    return torch, torch.device(DEVICE)


def engine_name(engine, dev):
    return engine if dev.type == "cpu" else f"{engine}-{dev.type}"


def build_torch(torch, n_in, hidden, seed):
    from torch import nn
    torch.manual_seed(seed)
    mods, prev = [], n_in
    for w in hidden:
        mods += [nn.Linear(prev, w), nn.ReLU()]
        prev = w
    model = nn.Sequential(*mods, nn.Linear(prev, 1))
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def torch_seq(sweep, k):
    torch, dev = torch_setup()
    from torch import nn
    name, hidden, loss, batch, epochs = SWEEPS[sweep]
    xt, yt, xv, yv = (torch.from_numpy(a).to(dev) for a in common.load_split(name))
    loss_fn = nn.L1Loss() if loss == "mae" else nn.BCEWithLogitsLoss()
    quality, t0 = [], time.perf_counter()
    for lr, seed in configs(k):
        model = build_torch(torch, xt.shape[1], hidden, seed).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7)
        best = None
        for _ in range(epochs):
            perm = torch.randperm(len(xt), device=dev)
            for i in range(0, len(xt), batch):
                idx = perm[i:i + batch]
                l = loss_fn(model(xt[idx]), yt[idx])
                opt.zero_grad()
                l.backward()
                opt.step()
            with torch.inference_mode():
                out = model(xv)
                q = loss_fn(out, yv).item() if loss == "mae" else ((out > 0).float() == yv).float().mean().item()
            best = q if best is None else (min(best, q) if loss == "mae" else max(best, q))
        quality.append(best)
    summarize(engine_name("torch-seq", dev), sweep, k, time.perf_counter() - t0, epochs, quality)


def torch_vmap(sweep, k):
    torch, dev = torch_setup()
    from torch import nn
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap
    name, hidden, loss, batch, epochs = SWEEPS[sweep]
    xt, yt, xv, yv = (torch.from_numpy(a).to(dev) for a in common.load_split(name))
    cfg = configs(k)
    t0 = time.perf_counter()
    models = [build_torch(torch, xt.shape[1], hidden, seed).to(dev) for _, seed in cfg]
    params, _ = stack_module_state(models)
    base = build_torch(torch, xt.shape[1], hidden, 0).to("meta")
    lr = torch.tensor([c[0] for c in cfg], device=dev)
    m = {n: torch.zeros_like(p) for n, p in params.items()}
    v = {n: torch.zeros_like(p) for n, p in params.items()}
    loss_fn = nn.L1Loss() if loss == "mae" else nn.BCEWithLogitsLoss()

    def loss_of(p, x, y):
        return loss_fn(functional_call(base, p, (x,)), y)

    step_fn = vmap(grad_and_value(loss_of))
    predict = vmap(lambda p, x: functional_call(base, p, (x,)), in_dims=(0, None))
    n, t, b1, b2, eps = len(xt), 0, 0.9, 0.999, 1e-7
    best = None
    for _ in range(epochs):
        perms = torch.stack([torch.randperm(n, device=dev) for _ in range(k)])  # each model its own order
        for i in range(0, n, batch):
            idx = perms[:, i:i + batch]
            g, _ = step_fn(params, xt[idx], yt[idx])
            t += 1
            alpha = lr * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)  # Keras's Adam (epsilon outside)
            with torch.no_grad():
                for name_ in params:
                    m[name_].mul_(b1).add_(g[name_], alpha=1 - b1)
                    v[name_].mul_(b2).addcmul_(g[name_], g[name_], value=1 - b2)
                    a = alpha.view(-1, *([1] * (params[name_].dim() - 1)))
                    params[name_].sub_(a * m[name_] / (v[name_].sqrt() + eps))
        with torch.inference_mode():
            out = predict(params, xv)  # [k, rows, 1]
            if loss == "mae":
                q = (out - yv).abs().mean(dim=(1, 2))
                best = q if best is None else torch.minimum(best, q)
            else:
                q = ((out > 0).float() == yv).float().mean(dim=(1, 2))
                best = q if best is None else torch.maximum(best, q)
    summarize(engine_name("torch-vmap", dev), sweep, k, time.perf_counter() - t0, epochs, best.tolist())


def keras_seq(sweep, k):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from tensorflow import keras
    from tensorflow.keras import layers
    tf.config.threading.set_intra_op_parallelism_threads(2)
    name, hidden, loss, batch, epochs = SWEEPS[sweep]
    xt, yt, xv, yv = common.load_split(name)
    quality, t0 = [], time.perf_counter()
    for lr, seed in configs(k):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((xt.shape[1],))] + [layers.Dense(w, activation="relu") for w in hidden]
                                 + [layers.Dense(1, activation=None if loss == "mae" else "sigmoid")])
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="mae" if loss == "mae" else "binary_crossentropy",
                      metrics=[] if loss == "mae" else ["binary_accuracy"])
        h = model.fit(xt, yt, validation_data=(xv, yv), batch_size=batch, epochs=epochs, verbose=0)
        quality.append(min(h.history["val_loss"]) if loss == "mae" else max(h.history["val_binary_accuracy"]))
    summarize("keras-seq", sweep, k, time.perf_counter() - t0, epochs, quality)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sweeps", default="S1,S2")
    p.add_argument("--engines", default="torch-seq,torch-vmap,keras-seq")
    p.add_argument("--models", type=int, default=64)
    p.add_argument("--keras-models", type=int, default=8, help="Keras is slow: time this many, compare per model-epoch")
    common.add_device_args(p)
    a = p.parse_args()
    global DEVICE, THREADS
    DEVICE, THREADS = a.device, a.threads
    run = {"torch-seq": torch_seq, "torch-vmap": torch_vmap, "keras-seq": keras_seq}
    for sweep in a.sweeps.split(","):
        for engine in a.engines.split(","):
            run[engine](sweep, a.keras_models if engine == "keras-seq" else a.models)


if __name__ == "__main__":
    main()
