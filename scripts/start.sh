#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/start.sh - the main job: builds vram, starts vramd with its
# dashboard, runs the demo batch (examples/demo/batch.csv) through it, says
# how each job went as it ends, and keeps the daemon running until Ctrl-C.
#
# Without an NVIDIA GPU (or without PyTorch with CUDA to drive one) the
# jobs run on a simulated 24 GiB card, and vramd says so.  Options go to
# examples/demo/run.py: --once (stop when the batch has ended; for CI),
# --port N (the dashboard's, default 7860), --batch FILE, --state DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh demo
echo "building vram"
make -j"$(nproc)" lib cli >/dev/null
exec python3 examples/demo/run.py "$@"
