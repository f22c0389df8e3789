#!/bin/bash
# A `wgfit tune` search as a Slurm job array: each array task runs one shard of the trial list
# (the trials whose number modulo the task count is its index; wgfit reads SLURM_ARRAY_TASK_ID,
# SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT) and writes results/shard-I-of-N.json.
#
#   sbatch deploy/slurm-tune.sh
#   # when every task has finished (or chain it: sbatch --dependency=afterok:<jobid> ...):
#   wgfit tune --collect results/            # the whole leaderboard; add --json for one JSON object
#
# Every task must run the same command (same grid, options and data): collect refuses shards
# whose fingerprints differ, and names missing or duplicated shards.
#SBATCH --job-name=wgfit-tune
#SBATCH --array=0-7                 # 8 shards; the count reaches wgfit through Slurm
#SBATCH --gres=gpu:1                # one GPU per shard (drop it and add --device cpu for CPU nodes)
#SBATCH --cpus-per-task=4
#SBATCH --time=02:00:00
#SBATCH --output=wgfit-tune-%A_%a.out

set -euo pipefail

wgfit tune --data data/concrete.csv --validation-split 0.3 \
    --layers 64,64 --layers 256,256 --layers 512,512,512 \
    --lr 0.0003,0.001,0.003 --dropout 0,0.2 --seeds 3 \
    --epochs 500 --batch-size 256 --patience 20 --verbose 2 \
    --out results/
