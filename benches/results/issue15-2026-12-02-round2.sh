#!/usr/bin/env bash
# Issue 15's second side-by-side run (2026-12-02, session 2): wgfit's CPU path on faer, the GPU
# path on lavapipe, and the peers, one engine at a time on the 2-core machine. Output: the .txt
# beside it. Run through /work/notes/quiet (the session's helpers paused) when they are running.
set -uo pipefail
cd "$(dirname "$0")/../.."
export XDG_RUNTIME_DIR=/tmp
W=./target/release/wgfit
echo "## uptime before: $(uptime)"
echo "## commit $(git rev-parse --short HEAD)"
echo "## wgfit CPU path"
WGFIT_BENCH_SECONDS=20 $W bench --workloads W1,W2,W3,W4 --device cpu
echo "## CPU products"
cargo bench --bench matmul -- cpu 2>&1 | grep '^|'
WGFIT_GEMM_ROUNDS=3 cargo bench --bench gemm_crates 2>&1 | grep -v '^\s*\(Compiling\|Finished\|Running\)'
echo "## peers (seed 0)"
ENGINES="torch keras" /work/shared/peers/python/run.sh --seeds 0 2>&1 | tail -22
echo "## wgfit CPU path again, W1 and W3"
WGFIT_BENCH_SECONDS=20 $W bench --workloads W1,W3 --device cpu
echo "## wgfit GPU path (lavapipe)"
WGFIT_BENCH_SECONDS=10 $W bench --workloads W1,W2,W4 --device gpu
WGFIT_BENCH_SECONDS=20 WGFIT_BENCH_EPOCHS=2 $W bench --workloads W3 --device gpu
echo "## uptime after: $(uptime)"
