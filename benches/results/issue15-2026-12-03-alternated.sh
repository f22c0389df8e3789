#!/usr/bin/env bash
# W1 and W3: wgfit's CPU path and PyTorch (CPU, 2 threads: tools/peers/torch_bench.py, the shared
# peer's loop) alternated, five pairs, on the 2-core host; ms per epoch, median of epochs 2..N.
set -uo pipefail
cd "$(dirname "$0")/../.."
export XDG_RUNTIME_DIR=/tmp
PY=${PY:-/tmp/peers-venv/bin/python}
for pair in 1 2 3 4 5; do
    echo "## pair $pair $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    ./target/release/wgfit bench --device cpu --workloads W1,W3 --json | grep '^\[' |
        python3 -c 'import json,sys; [print("wgfit", r["workload"], round(r["ms_per_epoch"], 3)) for r in json.load(sys.stdin)]'
    "$PY" tools/peers/torch_bench.py --workloads W1,W3 2>/dev/null |
        python3 -c 'import json,sys; [print("torch", r["workload"], r["ms_per_epoch_median"]) for r in map(json.loads, sys.stdin)]'
done
