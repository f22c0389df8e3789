#!/bin/bash
# One session, one engine at a time: wgfit sweeps (CPU full, GPU shortened where noted), then peers.
export XDG_RUNTIME_DIR=/tmp
W=/work/main/target/release/wgfit
echo "# session $(date -u +%FT%TZ) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo)"
echo "## wgfit CPU, K=64, full epochs"
$W bench --sweeps --models 64 --device cpu
echo "## wgfit CPU, K=256, full epochs"
$W bench --sweeps --models 256 --device cpu
echo "## wgfit CPU, K=1 (one model), full epochs"
$W bench --sweeps --models 1 --device cpu
echo "## wgfit GPU (lavapipe), K=64, 10 epochs (WGFIT_BENCH_EPOCHS=10)"
WGFIT_BENCH_EPOCHS=10 $W bench --sweeps --models 64 --device gpu
echo "## wgfit GPU (lavapipe), K=256, 5 epochs"
WGFIT_BENCH_EPOCHS=5 $W bench --sweeps --models 256 --device gpu
echo "## wgfit GPU (lavapipe), K=1, 10 epochs"
WGFIT_BENCH_EPOCHS=10 $W bench --sweeps --models 1 --device gpu
echo "## peers: sweep_bench.py (torch-seq, torch-vmap 64 models; keras-seq 4 models)"
cd /work/shared/peers/python && /tmp/peers-venv/bin/python sweep_bench.py --sweeps S1,S2 --engines torch-seq,torch-vmap,keras-seq --models 64 --keras-models 4 2>/dev/null
echo "# end $(date -u +%FT%TZ)"
