#!/usr/bin/env bash
# tests/slurm/test_slurm.sh - the SPANK plugin on a real single-node Slurm.
#
# Starts munged, slurmctld and slurmd (tests/slurm/slurm.sh) with two fake
# GPUs, and checks what `srun`, `sbatch` and `scancel` do with --vram.
# Skips, saying why, where the machine forbids running Slurm (not root,
# mknod refused, the daemons cannot start).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cli/lib.sh"
. "$here/slurm.sh"
trap 'stop_slurm; rm -rf "$tmp"' EXIT

if ! start_slurm; then
    echo "skip - $file: $slurm_why"
    exit 77
fi

# ---- the cluster itself ----------------------------------------------------

expect srun-true 0 "" -- timeout 60 srun -N1 true
expect shard-gres 0 "SLURM_SHARDS_ON_NODE=4" -- timeout 60 srun --gres=shard:4 env

finish
