#!/usr/bin/env bash
# Issue 15's side-by-side run (2026-12-02): wgfit's CPU and GPU (lavapipe) paths and the peers, one
# engine at a time, on the 2-core machine with nothing else running. Output: the .txt beside it.
set -uo pipefail
cd "$(dirname "$0")/../.."
export XDG_RUNTIME_DIR=/tmp
W=./target/release/wgfit
echo "## uptime before: $(uptime)"
echo "## wgfit CPU path"
WGFIT_BENCH_SECONDS=20 $W bench --workloads W1,W2,W3,W4 --device cpu
echo "## wgfit GPU path (lavapipe)"
WGFIT_BENCH_SECONDS=20 WGFIT_BENCH_EPOCHS=2 $W bench --workloads W3 --device gpu
WGFIT_BENCH_SECONDS=10 $W bench --workloads W1,W2,W4 --device gpu
echo "## streamed data on lavapipe: W1 whole, then through a one-batch chunk (WGFIT_MAX_DATA_BYTES=10240), twice"
for i in 1 2; do
  WGFIT_BENCH_SECONDS=10 $W bench --workloads W1 --device gpu | grep '^| W1'
  WGFIT_MAX_DATA_BYTES=10240 WGFIT_BENCH_SECONDS=10 $W bench --workloads W1 --device gpu | grep '^| W1'
done
echo "## CPU products"
cargo bench --bench matmul -- cpu 2>&1 | grep '^|'
cargo bench --bench gemm_crates 2>&1 | grep -v '^\s*\(Compiling\|Finished\|Running\)'
echo "## peers (seed 0)"
ENGINES="gemm torch keras" /work/shared/peers/python/run.sh --seeds 0 2>&1 | tail -20
echo "## uptime after: $(uptime)"
