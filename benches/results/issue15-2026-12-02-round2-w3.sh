#!/usr/bin/env bash
# W3 alternated three times: wgfit's CPU path, then Keras, then PyTorch (seed 0), so that the
# machine's drift over minutes falls on every engine alike. Output: the .txt beside it.
set -uo pipefail
cd "$(dirname "$0")/../.."
for round in 1 2 3; do
  echo "## round $round, $(uptime)"
  WGFIT_BENCH_SECONDS=20 ./target/release/wgfit bench --workloads W3 --device cpu | grep '^| W3'
  for engine in keras torch; do
    ENGINES=$engine OUT=/tmp/peers-results/w3-alt.jsonl /work/shared/peers/python/run.sh --seeds 0 --workloads W3 2>&1 | grep "^W3 "
  done
done
