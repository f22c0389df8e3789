"""Shared data prep and reporting for the peer benchmarks (workloads: BENCHMARKS.md).

A copy of the workplace's shared/peers/python/common.py (2026-12-03) that reads the datasets this
repository ships (data/) and takes --device and --threads, so the PyTorch peer runs on a GPU
machine beside scripts/gpu-proof (README.md beside this file)."""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

DATA = os.environ.get(
    "PEERS_DATA", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data"))

INFO = {"python": platform.python_version(), "numpy": np.__version__}

# Full-mode epochs per workload (W4 is the EarlyStopping cap); smoke mode shrinks them.
FULL = {"W1": 100, "W2": 200, "W3": 3, "W4": 1000}
SMOKE = {"W1": 5, "W2": 10, "W3": 2, "W4": 30}
W3_ROWS_FULL, W3_ROWS_SMOKE, W3_FEATURES = 65536, 4096, 256


def load_split(name):
    """The course's split: df.sample(frac=0.7, random_state=0) / df.drop(train.index).

    pandas draws that sample as RandomState(0).permutation(n)[:round(0.7 n)], and drop keeps
    the remaining rows in file order. Features are min-max scaled with train min/max;
    the target (last column) is left raw. Returns float32 arrays, y shaped (n, 1).
    """
    train_idx, valid_idx = split_indices(name)
    a = np.loadtxt(os.path.join(DATA, name + ".csv"), delimiter=",", skiprows=1)
    x, y = a[:, :-1], a[:, -1:]
    lo, hi = x[train_idx].min(0), x[train_idx].max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    scale = lambda v: ((v - lo) / span).astype(np.float32)
    return (scale(x[train_idx]), y[train_idx].astype(np.float32),
            scale(x[valid_idx]), y[valid_idx].astype(np.float32))


def split_indices(name):
    n = sum(1 for _ in open(os.path.join(DATA, name + ".csv"))) - 1
    perm = np.random.RandomState(0).permutation(n)
    k = round(0.7 * n)
    return perm[:k], np.sort(perm[k:])


def synthetic(rows):
    """W3 data: x ~ U(-1, 1), y = sin(x0 + ... + x7)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, size=(rows, W3_FEATURES)).astype(np.float32)
    y = np.sin(x[:, :8].sum(1, keepdims=True)).astype(np.float32)
    return x, y


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--smoke", action="store_true", help="few epochs, small W3")
    p.add_argument("--workloads", default="W1,W2,W3,W4")
    p.add_argument("--seeds", default="0",
                   help="comma list: each seed reruns every workload (init + shuffle; split fixed)")
    add_device_args(p)
    args = p.parse_args()
    args.epochs = SMOKE if args.smoke else FULL
    args.w3_rows = W3_ROWS_SMOKE if args.smoke else W3_ROWS_FULL
    args.workloads = args.workloads.split(",")
    args.seeds = [int(s) for s in args.seeds.split(",")]
    return args


def add_device_args(p):
    p.add_argument("--device", default="cpu", help="torch device: cpu, or cuda on a GPU machine")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (the 2-core machine's 2)")


def cpu_jiffies():
    """(busy, total) jiffies for the whole machine, from /proc/stat."""
    f = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


class Probe:
    """Wall, this process's CPU time and machine-wide busy fraction over a block."""

    def __enter__(self):
        self.t, self.cpu, self.j = time.perf_counter(), time.process_time(), cpu_jiffies()
        return self

    def __exit__(self, *exc):
        b, t = cpu_jiffies()
        self.wall = time.perf_counter() - self.t
        self.proc_cpu_s = time.process_time() - self.cpu
        self.machine_busy = (b - self.j[0]) / max(1, t - self.j[1])
        # Share of the machine's CPU time that other processes used meanwhile: contention.
        own = self.proc_cpu_s / (os.cpu_count() * self.wall)
        self.others_busy = max(0.0, self.machine_busy - own)


def report(engine, process, workload, seed, mode, setup_s, epoch_s, n_train, probe, **extra):
    """One JSON line. Steady time = median of epochs 2..N; startup = setup + (epoch 1 - steady)."""
    steady = statistics.median(epoch_s[1:]) if len(epoch_s) > 1 else epoch_s[0]
    if "params" in extra:  # W3: dense training costs ~6 FLOP per parameter per sample
        extra["achieved_gflops"] = round(6 * extra["params"] * n_train / steady / 1e9, 2)
    rec = {
        "engine": engine, "workload": workload, "mode": mode, "seed": seed,
        "startup_s": round(setup_s + epoch_s[0] - steady, 4),
        "ms_per_epoch_median": round(steady * 1e3, 3),
        "epochs": len(epoch_s),
        "samples_per_s": round(n_train / steady, 1),
        "n_train": n_train,
        "first_epoch_ms": round(epoch_s[0] * 1e3, 3),
        "setup_s": round(setup_s, 4),
        "fit_wall_s": round(probe.wall, 4),
        "fit_wall_excl_startup_s": round(probe.wall - (epoch_s[0] - steady), 4),
        "proc_cpu_s": round(probe.proc_cpu_s, 3),
        "machine_busy_frac": round(probe.machine_busy, 3),
        "others_busy_frac": round(probe.others_busy, 3),
        "loadavg": open("/proc/loadavg").read().split()[:3],
        **extra,
        "process": process,
        "epoch_ms": [round(e * 1e3, 3) for e in epoch_s],
    }
    print(json.dumps(rec), flush=True)
    return rec


class EarlyStopper:
    """Keras EarlyStopping(monitor="val_loss") bookkeeping, for engines without it."""

    def __init__(self, patience=10, min_delta=0.001):
        self.patience, self.min_delta = patience, min_delta
        self.best, self.best_epoch, self.wait = float("inf"), -1, 0

    def step(self, epoch, val_loss):
        """Returns (improved, stop)."""
        self.wait += 1
        if val_loss + self.min_delta < self.best:
            self.best, self.best_epoch, self.wait = val_loss, epoch, 0
            return True, False
        return False, self.wait >= self.patience and epoch > 0


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--dump-splits":
    # Write the exact row indices (0-based, header excluded) so other engines use the same split.
    os.makedirs(sys.argv[2], exist_ok=True)
    for name in ("concrete", "ionosphere"):
        tr, va = split_indices(name)
        with open(os.path.join(sys.argv[2], name + ".json"), "w") as f:
            json.dump({"train": tr.tolist(), "valid": va.tolist()}, f)
