"""PyTorch (eager) on workloads W1-W4 (BENCHMARKS.md): the plain loop a careful user writes.

One JSON line per workload and seed. Usage: torch_bench.py [--smoke] [--workloads W1,W3] [--seeds 0,1]
[--device cuda] [--threads 16]. On a GPU the data lives on the device and each epoch's loss is
summed there (one synchronisation per epoch, not per step); the engine is then named torch-DEVICE.
A copy of shared/peers/python/torch_bench.py (2026-12-03); on the CPU it runs the same loop.
"""
import copy
import time

_t = time.perf_counter()
import torch
from torch import nn
IMPORT_S = time.perf_counter() - _t

import common

PROCESS = {**common.INFO, "torch": torch.__version__, "import_s": round(IMPORT_S, 3)}


def dense_stack(n_in, widths):
    mods, prev = [], n_in
    for w in widths:
        mods += [nn.Linear(prev, w), nn.ReLU()]
        prev = w
    return nn.Sequential(*mods, nn.Linear(prev, 1))


def w3_model():
    def block(n_in):  # BatchNorm with Keras's defaults: momentum 0.99 (= torch 0.01), eps 1e-3
        return [nn.Linear(n_in, 1024), nn.ReLU(), nn.BatchNorm1d(1024, eps=1e-3, momentum=0.01),
                nn.Dropout(0.3)]
    return nn.Sequential(*block(common.W3_FEATURES), *block(1024),
                         nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1))


def glorot(model):
    """Keras's Dense defaults (torch's own are Kaiming-uniform weights, uniform biases)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def process_warmup(device):
    """One-time lazy initialization (the first optimizer imports ~1 s of modules; a GPU's context),
    paid once per process."""
    t = time.perf_counter()
    m = nn.Linear(2, 1).to(device)
    opt = torch.optim.Adam(m.parameters())
    m(torch.zeros(4, 2, device=device)).sum().backward()
    opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def run(workload, seed, args):
    torch.manual_seed(seed)  # weights + shuffling
    if workload == "W1":
        data = common.load_split("concrete")
    elif workload == "W3":
        data = common.synthetic(args.w3_rows) + (None, None)
    else:
        data = common.load_split("ionosphere")
    dev = torch.device(args.device)
    xt, yt, xv, yv = (None if a is None else torch.from_numpy(a).to(dev) for a in data)

    t = time.perf_counter()
    binary = workload in ("W2", "W4")
    if workload == "W1":
        model, loss_fn, batch = dense_stack(8, [512, 512, 512]), nn.L1Loss(), 256
    elif workload == "W3":
        model, loss_fn, batch = w3_model(), nn.MSELoss(), 1024
    else:  # sigmoid output + binary cross-entropy, fused as the numerically stable logits form
        model, loss_fn, batch = dense_stack(33, [4, 4]), nn.BCEWithLogitsLoss(), 512
    glorot(model)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-7)
    setup_s = time.perf_counter() - t

    n, times, hist = len(xt), [], []
    stopper = common.EarlyStopper(patience=10, min_delta=0.001) if workload == "W4" else None
    best_state = None
    with common.Probe() as probe:
        for epoch in range(args.epochs[workload]):
            t = time.perf_counter()
            model.train()
            perm = torch.randperm(n, device=dev)
            total = 0.0 if dev.type == "cpu" else torch.zeros((), device=dev)
            for i in range(0, n, batch):
                idx = perm[i:i + batch]
                loss = loss_fn(model(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += (loss.item() if dev.type == "cpu" else loss.detach()) * len(idx)
            logs = {"loss": float(total) / n}
            if xv is not None:
                model.eval()
                with torch.inference_mode():
                    out = model(xv)
                    logs["val_loss"] = loss_fn(out, yv).item()
                    if binary:  # sigmoid(out) > 0.5  <=>  out > 0
                        logs["val_acc"] = ((out > 0).float() == yv).float().mean().item()
            times.append(time.perf_counter() - t)
            hist.append(logs)
            if stopper:
                improved, stop = stopper.step(epoch, logs["val_loss"])
                if improved:
                    best_state = copy.deepcopy(model.state_dict())
                if stop:
                    break
        if best_state is not None:
            model.load_state_dict(best_state)  # restore_best_weights=True

    extra = {"final_train_loss": hist[-1]["loss"]}
    if workload == "W1":
        extra.update(final_val_metric=hist[-1]["val_loss"], metric="val_mae")
    elif workload == "W2":
        extra.update(final_val_metric=hist[-1]["val_acc"], metric="val_binary_accuracy",
                     final_val_loss=hist[-1]["val_loss"])
    elif workload == "W3":
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        extra.update(final_val_metric=None, metric=None, params=params)
    else:
        extra.update(final_val_metric=stopper.best, metric="best_val_loss",
                     best_epoch=stopper.best_epoch + 1,
                     val_acc_at_best=hist[stopper.best_epoch]["val_acc"],
                     min_val_loss=min(h["val_loss"] for h in hist))
    engine = "torch" if dev.type == "cpu" else f"torch-{dev.type}"
    common.report(engine, {**PROCESS, "device": str(dev), "threads": torch.get_num_threads()}, workload, seed, "smoke" if args.smoke else "full",
                  setup_s, times, n, probe, **extra)


if __name__ == "__main__":
    args = common.parse_args()
    torch.set_num_threads(args.threads)
    PROCESS["process_warmup_s"] = round(process_warmup(torch.device(args.device)), 3)
    for seed in args.seeds:
        for w in args.workloads:
            run(w, seed, args)
