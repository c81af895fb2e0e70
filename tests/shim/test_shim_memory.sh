#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/shim/test_shim_memory.sh - the memory the driver keeps for a job
# beyond its allocations, on the stub driver: cuMemFreeAsync (of a pool's
# memory and of plain memory) counted until its stream gets there, a pool's
# reserve after frees (release threshold, cuMemPoolTrimTo), graph memory nodes (kept by the graph pool until
# cuDeviceGraphMemTrim, refused past the budget), budgets per device, and a
# first context measured without NVML.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh" memory

# Stream-ordered memory under a 3 GiB budget (free = budget - the job's count).
"$prog/host" hard $B3 -- "$prog/memory" pool >"$tmp/out" 2>&1
want free-async-counted-until-its-stream-is-synchronized \
    "after-alloc free=$GIB" "after-free-async free=$GIB" "after-other-stream-sync free=$GIB" "after-sync free=$B3"
want pool-reserve-kept-by-release-threshold-is-counted \
    "kept-by-threshold free=$GIB" "pool-reserved=$((2 * GIB))"
want pool-reuse-is-not-refused-but-past-budget-is \
    "reuse rc=0" "reused free=$GIB" "past-budget rc=2" "freed-kept free=$GIB"
want pool-trim-gives-back "trimmed free=$B3"
want own-pool-counted-until-synchronized \
    "own-pool rc=0" "own-pool-alloc free=$((2 * GIB))" "own-pool-free-async free=$((2 * GIB))" "own-pool-sync free=$B3"
want pool-count-ends-at-zero "final used=0 peak=$((2 * GIB)) over=0 refused=1 processes=1 status=0"

# Plain memory (cuMemAlloc) freed on a stream: another stream may still use
# it until that stream gets there, so it stays counted until then.
"$prog/host" hard $B3 -- "$prog/memory" plain >"$tmp/out" 2>&1
want plain-free-async-counted-until-its-stream-gets-there \
    "plain-held free=$GIB" "plain-free-async rc=0" "plain-freed-on-stream free=$GIB" \
    "plain-beside-pending-free rc=2" "plain-other-stream-synced free=$GIB" "plain-query rc=600" \
    "plain-queried free=$GIB" "plain-stream-synced free=$((2 * GIB))"
want plain-free-async-on-destroyed-stream-until-ctx-sync \
    "plain-stream-destroyed free=$((2 * GIB))" "plain-ctx-synced free=$B3"
want plain-free-async-per-thread-stream "plain-ptsz-freed free=$((2 * GIB))" "plain-ptsz-synced free=$B3"
want plain-free-async-count-ends-at-zero "final used=0 peak=$((2 * GIB)) over=0 refused=1 processes=1 status=0"
# Streams that get there on their own (a card's do): the shim asks them at
# cuMemGetInfo and before refusing.
env VRAM_STUB_CUDA_STREAMS_DONE=1 "$prog/host" hard $B3 -- "$prog/memory" plain >"$tmp/out" 2>&1
want plain-free-async-given-back-once-the-stream-says-done \
    "plain-freed-on-stream free=$((2 * GIB))" "plain-beside-pending-free rc=0" \
    "plain-stream-destroyed free=$B3" "final used=0 peak=$B3 over=0 refused=0 processes=1 status=0"

# A driver that grows the pool rather than serve from what it keeps: the
# allocation that was let through on the pool's word is freed and refused.
env VRAM_STUB_CUDA_POOL_GROWS=1 "$prog/host" hard $B3 -- "$prog/memory" pool >"$tmp/out" 2>&1
want pool-that-grew-past-budget-refused "kept-by-threshold free=$GIB" "reuse rc=2" "trimmed free=$B3"

# Graph memory nodes.
"$prog/host" hard $B3 -- "$prog/memory" graph >"$tmp/out" 2>&1
want graph-memory-counted-from-launch-until-trim \
    "instantiate rc=0" "instantiated free=$B3" "launch rc=0" "launched free=$GIB" "kept-by-graph-pool free=$GIB" \
    "graph-reserved=$((2 * GIB))" "relaunch rc=0" "relaunched free=$GIB" "alloc-beside-graph-pool rc=2" \
    "trimmed free=$B3"
want graph-launch-refused-past-budget \
    "alloc-after-trim rc=0" "launch-past-budget rc=2" "launch-after-free rc=0" "launched-again free=$GIB"
want graph-too-big-refused-at-instantiate "instantiate-too-big rc=2" "end free=$B3"
want graph-instantiate-by-version "getproc-instantiate-12000 ok" "getproc-instantiate-11040 ok"
want graph-count-ends-at-zero "final used=0 peak=$((2 * GIB)) over=0 refused=3 processes=1 status=0"

# Soft mode: a graph launch past the budget goes through and is counted.
"$prog/host" soft $B3 -- "$prog/memory" graph >"$tmp/out" 2>&1
want graph-soft-lets-through-and-counts "launch-past-budget rc=0" "final used=0 peak=$((4 * GIB)) over=$GIB refused=0 processes=1 status=0"

# Budgets per device: from the runner's region, and from VRAM_BUDGET_BYTES.
device_lines=("device 0 total=$GIB free=$GIB device_total=$GIB" "device 0 alloc 1 ok" "device 0 alloc 2 error 2"
              "device 1 total=$B3 free=$B3 device_total=$B3" "device 1 alloc 3 ok" "device 1 alloc 4 error 2")
VRAM_STUB_CUDA_DEVICES=2 "$prog/host" hard "$GIB,$B3" -- "$prog/memory" devices >"$tmp/out" 2>&1
want per-device-budget-from-the-region "${device_lines[@]}" "device 0 refused=3" "device 1 refused=1"
# 1 GiB on device 0, freed, then 3 GiB on device 1: the job held 3 GiB at
# most (the sum of each device's peak, 4 GiB, it never held).
want job-peak-is-the-most-held-at-once "final used=0 peak=$B3 over=0 refused=4 processes=1 status=0"
for form in "1GiB,3GiB" "0:1GiB,1:3GiB"; do
    env VRAM_STUB_CUDA_DEVICES=2 LD_PRELOAD="$pre" VRAM_BUDGET_BYTES=$form "$prog/memory" devices >"$tmp/out" 2>&1
    want "per-device-budget-from-env-$form" "${device_lines[@]}"
done
env VRAM_STUB_CUDA_DEVICES=2 LD_PRELOAD="$pre" VRAM_BUDGET_BYTES=1:3GiB "$prog/memory" devices >"$tmp/out" 2>&1
want device-left-out-of-the-list-is-not-the-jobs \
    "device 0 total=0 free=0 device_total=0" "device 0 alloc 1 error 2" "device 1 alloc 3 ok" "device 1 alloc 4 error 2"
env VRAM_STUB_CUDA_DEVICES=2 "$prog/memory" devices >"$tmp/out" 2>&1
want without-shim-each-device-whole "device 0 alloc 4 ok" "device 1 alloc 4 ok"
for bad in "1GiB,,3GiB" "0:1GiB,0:2GiB" "x:1GiB" "1GiB,0" "16:1GiB"; do
    env VRAM_STUB_CUDA_DEVICES=2 LD_PRELOAD="$pre" VRAM_BUDGET_BYTES=$bad "$prog/memory" devices >"$tmp/out" 2>&1
    if [ "$(grep -c '^vram shim: ' "$tmp/out")" = 1 ] && grep -q "VRAM_BUDGET_BYTES='$bad' is not a size" "$tmp/out" &&
       grep -q '^device 1 alloc 4 ok' "$tmp/out"; then
        ok "bad-list-passes-through-$bad"
    else
        not_ok "bad-list-passes-through-$bad" "$(head -c 600 "$tmp/out")"
    fi
done

# NVML's view per device (pynvml-style code beside CUDA): each device's own
# budget and count, the device found by its PCI bus id.
nvml_prog='
import ctypes
class M1(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]
b = ctypes.byref
cu = ctypes.CDLL("libcuda.so.1")
ctx, p = ctypes.c_void_p(), ctypes.c_uint64()
assert cu.cuInit(0) == 0 and cu.cuCtxCreate_v2(b(ctx), 0, 1) == 0
assert cu.cuMemAlloc_v2(b(p), ctypes.c_size_t(1 << 30)) == 0
nv = ctypes.CDLL("libnvidia-ml.so.1")
assert nv.nvmlInit_v2() == 0
for i in range(2):
    h, m = ctypes.c_void_p(), M1()
    assert nv.nvmlDeviceGetHandleByIndex_v2(i, b(h)) == 0 and nv.nvmlDeviceGetMemoryInfo(h, b(m)) == 0
    print("nvml %d total=%d free=%d" % (i, m.total, m.free))
'
if [ -n "$asan" ]; then
    echo "skip - $file/nvml-per-device: python is not built with ASan"
else
    env LD_LIBRARY_PATH="$VRAM_BUILD/stubs:$LD_LIBRARY_PATH" VRAM_STUB_CUDA_DEVICES=2 \
        VRAM_STUB_NVML="devices=A:16384:0:0|B:16384:0:0" LD_PRELOAD="$pre" VRAM_BUDGET_BYTES=1GiB,3GiB \
        python3 -c "$nvml_prog" >"$tmp/out" 2>&1
    want nvml-per-device "nvml 0 total=$GIB free=$GIB" "nvml 1 total=$B3 free=$((2 * GIB))"
fi

# The first context (300 MiB on the stub card), measured without NVML from
# what the runner saw free at the start and what cuMemGetInfo says after.
ctx=$((300 * 1048576))
env VRAM_STUB_CUDA_CTX_MIB=300 HOST_CARD_FREE=$((16 * GIB)) "$prog/host" hard $B3 -- "$prog/reach" dlsym >"$tmp/out" 2>&1
want context-measured-without-nvml \
    "total=$B3 free=$((B3 - ctx)) device_total=$B3 (rc 0 0)" "alloc 2 ok" "alloc 3 error 2" \
    "final used=0 peak=$((2 * GIB + ctx)) over=0 refused=2 processes=1 status=0"
env VRAM_STUB_CUDA_CTX_MIB=300 "$prog/host" hard $B3 -- "$prog/reach" dlsym >"$tmp/out" 2>&1
want context-unknown-counts-nothing "total=$B3 free=$B3 device_total=$B3 (rc 0 0)" "alloc 3 ok"

finish
