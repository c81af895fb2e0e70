# SPDX-License-Identifier: MIT
# tests/cli/test_run_alloc.sh - what `vram run` puts in PYTORCH_CUDA_ALLOC_CONF:
# nothing over a user's setting in either name, only what the job's PyTorch
# accepts, the cap at the budget from PyTorch 2.9; and the device as CUDA
# numbers it.
. "$(dirname "$0")/lib.sh"
mkdir -p "$tmp/state"
export VRAM_BACKEND=sim VRAM_SIM="T4:16GiB:1GiB" VRAM_HISTORY=$tmp/history.db VRAM_INTERVAL=20ms VRAM_SIM_STATE=$tmp/state
show='echo "A=$PYTORCH_CUDA_ALLOC_CONF|B=$PYTORCH_ALLOC_CONF|D=$VRAM_DEVICE|I=$VRAM_DEVICE_INDEX"'

expect user_pytorch_alloc_conf_wins 0 '^A=\|B=backend:cudaMallocAsync\|' -- \
    env PYTORCH_ALLOC_CONF=backend:cudaMallocAsync "$VRAM" run --vram 4GiB -- sh -c "$show"
expect torch_1_12_gets_no_expandable_segments 0 '^A=max_split_size_mb:64\|B=\|' -- \
    env VRAM_TORCH_VERSION=1.12.1 "$VRAM" run --vram 4GiB -- sh -c "$show"
expect torch_2_4_gets_expandable_segments_alone 0 '^A=expandable_segments:True\|' -- \
    env VRAM_TORCH_VERSION=2.4.1 "$VRAM" run --vram 4GiB -- sh -c "$show"
# (4 GiB - 512 MiB) / 16 GiB = 0.21875
expect torch_2_9_is_capped_at_the_budget 0 '^A=expandable_segments:True,per_process_memory_fraction:0.218,garbage_collection_threshold:0.6\|' -- \
    env VRAM_TORCH_VERSION=2.9.0 "$VRAM" run --vram 4GiB -- sh -c "$show"
expect no_torch_found_is_taken_as_recent 0 '^A=expandable_segments:True\|' -- \
    env -u VRAM_TORCH_VERSION PATH=/usr/bin:/bin HOME=$tmp "$VRAM" run --vram 4GiB -- sh -c "$show"
expect simulated_device_index 0 '\|D=0\|I=0$' -- "$VRAM" run --vram 1GiB -- sh -c "$show"
finish
