# SPDX-License-Identifier: MIT
# tests/cli/test_run_context.sh - the CUDA context a job's budget leaves
# room for is measured, not a flat 512 MiB: `vram run` keeps, per device
# and program, the shim's exact figure or else the first usage its
# processes showed (an upper bound, only ever lowered), uses the profile's
# cuda_context where nothing was measured, and says which in
# VRAM_CONTEXT_BYTES/VRAM_CONTEXT_SOURCE and in PyTorch's fraction cap.
. "$(dirname "$0")/lib.sh"
mkdir -p "$tmp/state"
export VRAM_BACKEND=sim VRAM_SIM="T4:16GiB:1GiB" VRAM_HISTORY=$tmp/history.db VRAM_INTERVAL=20ms \
       VRAM_SIM_STATE=$tmp/state VRAM_TORCH_VERSION=2.9.0 VRAM_HOST_RAM=off
unset PYTORCH_CUDA_ALLOC_CONF PYTORCH_ALLOC_CONF VRAM_SHIM_FD VRAM_ENFORCE VRAM_BUDGET_BYTES
show='echo "C=$VRAM_CONTEXT_BYTES S=$VRAM_CONTEXT_SOURCE A=$PYTORCH_CUDA_ALLOC_CONF"'
MIB=1048576

# Nothing measured yet: assumed, (4 GiB - 512 MiB) / 16 GiB = 0.218.
expect assumed_at_first 0 "^C=$((512 * MIB)) S=assumed A=expandable_segments:True,per_process_memory_fraction:0.218," -- \
    "$VRAM" run --vram 4GiB -- sh -c "$show"
# A job whose first usage seen is 300 MiB: the next job's cap leaves that.
expect first_usage_seen 0 '' -- "$VRAM" run --vram 4GiB -- "$helpers/simalloc" hold 300MiB 300
expect measured_from_first_usage 0 "^C=$((300 * MIB)) S=nvml A=expandable_segments:True,per_process_memory_fraction:0.231," -- \
    "$VRAM" run --vram 4GiB -- sh -c "$show"
# A larger first usage is the job's data, not a larger context: kept 300.
expect larger_first_usage 0 '' -- "$VRAM" run --vram 4GiB -- "$helpers/simalloc" hold 1GiB 300
expect upper_bound_only_lowered 0 "^C=$((300 * MIB)) S=nvml " -- "$VRAM" run --vram 4GiB -- sh -c "$show"
# A program with a profile: its measurement is its own; before one, the
# profile's cuda_context (latentsync: 500 MiB).
expect profile_context_when_unmeasured 0 "^C=$((500 * MIB)) S=profile " -- \
    "$VRAM" run --model latentsync --vram 8GiB -- sh -c "$show"
# No history kept: nothing learnt, assumed.
expect no_history_assumed 0 "^C=$((512 * MIB)) S=assumed " -- \
    env VRAM_HISTORY=- "$VRAM" run --vram 4GiB -- sh -c "$show"

# The shim measures the context exactly where it creates it (stub driver:
# a context takes 352 MiB, seen against NVML's free before it); that
# replaces the upper bound.
shim=$VRAM_BUILD/lib/libvram_shim.so
prog=$VRAM_BUILD/tests/shim/prog
stub=$VRAM_BUILD/stubs/cuda
asan=$(ldd "$VRAM" 2>/dev/null | awk '/libasan/ { print $3 }')
if [ ! -f "$shim" ] || [ ! -x "$prog/reach" ] || [ ! -f "$stub/libcuda.so.1" ]; then
    echo "skip - $file/shim_measures_context: the shim or its stub driver is not built"
elif [ -n "$asan" ]; then
    echo "skip - $file/shim_measures_context: the sanitizer build runs the shim only in tests/shim"
else
    expect shim_run 0 "" -- env LD_LIBRARY_PATH="$stub:$VRAM_BUILD/stubs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        VRAM_STUB_NVML="devices=Stub:16384:0:0" VRAM_STUB_CUDA_MIB=16384 VRAM_STUB_CUDA_CTX_MIB=352 VRAM_SHIM_LIBRARY="$shim" \
        "$VRAM" run --enforce hard --vram 3GiB -- "$prog/reach" dlsym
    expect shim_measures_context 0 "^C=$((352 * MIB)) S=shim " -- "$VRAM" run --vram 4GiB -- sh -c "$show"
fi
finish
