#!/usr/bin/env bash
# scripts/start.sh - the main job: build vram, show every GPU, and watch them.
#
# On a machine without an NVIDIA GPU, vram says so and shows a simulated card.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
make -j"$(nproc)" lib cli >/dev/null
echo
build/bin/vram status
echo
echo "vram watch (5 seconds; 'build/bin/vram watch' runs until q or Ctrl-C):"
build/bin/vram watch --seconds 5 --interval 500ms
