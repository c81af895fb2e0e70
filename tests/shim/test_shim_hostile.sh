#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/shim/test_shim_hostile.sh - a job that tries to get past its budget,
# or to make its count low, on the stub driver (tests/shim/prog_hostile.c):
# each way is refused, and the count ends where the job's memory is.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh" hostile

# The driver pads each row to its pitch: a narrow row asks for 8 MiB and
# takes 4 GiB.  The padding is the budget's too.
"$prog/host" hard $B3 -- "$prog/hostile" pitch >"$tmp/out" 2>&1
want pitch-padding-is-refused-past-budget \
    "pitch rc=2" "pitch-after free=$B3" "pitch-v1 rc=2" "pitch-v1-after free=$B3" \
    "pitch-small rc=0" "pitch-small-held free=$((2 * GIB))" "pitch-small-after free=$B3"
want pitch-count-ends-at-zero "final used=0 peak=$GIB over=0 refused=2 processes=1 status=0"

# A pool made on device 1, taken from while device 0 is current: its bytes
# are device 1's, charged and given back there (device 0's count was left
# high and device 1's wrapped below zero, which let it past its budget).
VRAM_STUB_CUDA_DEVICES=2 "$prog/host" hard $B3,$B3 -- "$prog/hostile" pooldev >"$tmp/out" 2>&1
want pool-counts-on-its-own-device \
    "other-device-pool rc=0" "other-device-pool-held free=$B3" "other-device-pool-free rc=0" \
    "other-device-pool-freed free=$B3" "device1 1 rc=0" "device1 3 rc=0" "device1 4 rc=2"
want pool-device-count-ends-at-zero "final used=0 peak=$B3 over=0 refused=1 processes=1 status=0"

# A pool beyond the shim's rows (64 made first): what it keeps after a free
# stays counted (it was given back, and the pool's 1 GiB sat beside 3 GiB
# more under a 3 GiB budget).
"$prog/host" hard $B3 -- "$prog/hostile" pools >"$tmp/out" 2>&1
want pool-without-a-row-stays-counted \
    "pools made=64" "default-pool rc=0" "default-pool-free rc=0" "default-pool-keeps=$GIB" \
    "default-pool-freed free=$((2 * GIB))" "beside-kept 2 rc=0" "beside-kept 3 rc=2"

# Plain memory freed on a stream beyond the shim's stream rows (64 taken by
# frees still ahead of their streams): counted until the context is
# synchronized (it was given back at the call, while the stream that had
# not got there kept it on the card).
"$prog/host" hard $B3 -- "$prog/hostile" streams >"$tmp/out" 2>&1
want free-async-without-a-row-stays-counted \
    "streams pending=64" "big rc=0" "big-free-async rc=0" "big-freed-on-stream free=$((2 * GIB - 64 * 512))" \
    "beside-pending 1 rc=0" "beside-pending 2 rc=2" "ctx-sync rc=0" "after-ctx-sync 1 rc=0"

# Sizes near 2^64, which wrap when rounded, multiplied or added to the
# count: each refused by the shim (the driver never asked), and the count
# unharmed (2 GiB held, 1 more fits).
"$prog/host" hard $B3 -- "$prog/hostile" huge >"$tmp/out" 2>&1
want sizes-that-wrap-are-refused \
    "hold 2 rc=0" "create-wraps rc=2" "alloc-rounds-to-0 rc=2" "managed-rounds-to-0 rc=2" \
    "async-rounds-to-0 rc=2" "pitch-product-wraps rc=2" "array-extent-wraps rc=2" \
    "graph-nodes-wrap rc=2" "after-huge free=$GIB" "after-huge 1 rc=0" "after-huge 2 rc=2"
want sizes-that-wrap-count-as-refusals "final used=0 peak=$B3 over=0 refused=8 processes=1 status=0"

# cuMemCreate memory lives while its handle or a mapping of it does: a
# handle released while mapped (the usual idiom) stays counted until the
# unmap (it was given back at cuMemRelease, and the job held 4 GiB under a
# 3 GiB budget); so does one kept by cuMemRetainAllocationHandle.
"$prog/host" hard $B3 -- "$prog/hostile" vmm >"$tmp/out" 2>&1
want vmm-mapped-memory-stays-counted \
    "map rc=0" "release-mapped rc=0" "released-mapped free=$GIB" "beside-mapped rc=2" \
    "retain rc=0 same=1" "release-retained rc=0" "released-retained free=$GIB" \
    "unmap rc=0" "unmapped free=$B3" "after-unmap rc=0" "after-unmap-held free=$GIB" \
    "release rc=0" "release-again rc=1" "all-released free=$B3"
want vmm-count-ends-at-zero "final used=0 peak=$((2 * GIB)) over=0 refused=1 processes=1 status=0"

# A forked child holds none of its parent's device memory (contexts do not
# cross a fork): its free of the parent's pointer gives nothing back (it
# gave the parent's 1 GiB back from the job's count, which let the parent
# hold 4 GiB under a 3 GiB budget and left the count below zero at its end).
"$prog/host" hard $B3 -- "$prog/hostile" fork >"$tmp/out" 2>&1
want fork-child-cannot-free-the-parents-bytes \
    "parent rc=0" "child-free rc=0" "after-child free=$((2 * GIB))" "parent 2 rc=0" "parent 3 rc=2"
want fork-count-ends-at-zero "final used=0 peak=$B3 over=0 refused=1 processes=1 status=0"

# A reset of the primary context frees what it held, not what a context of
# the job's own (cuCtxCreate) holds on the same device: that stays counted
# (all of the device's count was given back, and the job held 4 GiB under a
# 3 GiB budget).
"$prog/host" hard $B3 -- "$prog/hostile" reset >"$tmp/out" 2>&1
want primary-reset-keeps-other-contexts-counted \
    "own 2 rc=0" "reset rc=0" "after-reset free=$GIB" "after-reset 1 rc=0" "after-reset 2 rc=2"

# What went with a device's last context stays gone, however many times
# that happens: an entry left from before (here a pointer the stub still
# knows; on a card, an address the driver hands out again) gives nothing
# back.  (After 16 times its old mark was current again: the free gave
# 2 GiB back a second time, and the job held 5 GiB under a 3 GiB budget.)
"$prog/host" hard $B3 -- "$prog/hostile" epoch >"$tmp/out" 2>&1
want stale-entries-give-nothing-back \
    "cycles=16" "after-cycles free=$B3" "held 2 rc=0" "stale-free rc=0" "after-stale-free free=$GIB" \
    "after-stale-free 1 rc=0" "after-stale-free 2 rc=2"

# Raising a context's limits (the malloc heap, the stack for every resident
# thread, the printf FIFO) is memory the driver keeps for it: counted from
# the call and refused past the budget (the heap's 2 GiB sat uncounted
# beside 2 GiB more under a 3 GiB budget); lowering gives it back.
"$prog/host" hard $B3 -- "$prog/hostile" limits >"$tmp/out" 2>&1
want context-limits-are-counted \
    "heap rc=0" "heap-set free=$((GIB + 8 * 1048576))" "beside-heap 1 rc=0" "beside-heap 2 rc=2" \
    "stack rc=2" "fifo rc=2" "heap-lowered rc=0" "heap-lowered free=$((2 * GIB))"

# Each context of the job's own (cuCtxCreate) is memory of its own, measured
# as the first one is, and given back when it is destroyed (only the first
# was counted: 4 contexts of 512 MiB and 2 GiB beside them under a 3 GiB
# budget).
VRAM_STUB_CUDA_CTX_MIB=512 HOST_CARD_FREE=$((16 * GIB)) "$prog/host" hard $B3 -- "$prog/hostile" contexts \
    >"$tmp/out" 2>&1
want every-context-is-counted \
    "contexts made=4" "contexts free=$GIB" "beside-contexts 1 rc=0" "beside-contexts 2 rc=2" \
    "destroy rc=0" "one-destroyed free=$((512 * 1048576))"

# A device past the 16 the region counts has no budget: hard mode refuses
# there (it let everything through).
VRAM_STUB_CUDA_DEVICES=17 "$prog/host" hard $B3 -- "$prog/hostile" otherdev 16 >"$tmp/out" 2>&1
want device-past-the-region-is-refused "device16 1 rc=2" "device0 1 rc=0"

# dlsym(RTLD_NEXT) of a name the shim interposes, from a library after the
# shim in the search order (where the driver is): the shim's entry point
# (it was the driver's, past the budget).
"$prog/host" hard $B3 -- "$prog/hostile" next "$prog/libplugin.so" >"$tmp/out" 2>&1
want rtld-next-is-fenced "plugin-linked 2 rc=0" "plugin-dlsym rc=0" "plugin-next rc=2"

# A process that lost the region's descriptor on the way (a subprocess that
# closed its descriptors, as Python's does by default; a shell that put
# another file at that number) opens it again from an ancestor that holds
# it (it passed its calls through unchecked and saw the whole card).
for way in closed:'>&-' another-file:'>/dev/null'; do
    "$prog/host" hard $B3 -- sh -c 'eval "exec $VRAM_SHIM_FD$1"; exec "$0" dlsym' "$prog/reach" "${way#*:}" \
        >"$tmp/out" 2>&1
    if grep -q "^total=$B3 " "$tmp/out" && grep -q '^alloc 3 ok' "$tmp/out" && grep -q '^alloc 4 error 2' "$tmp/out" &&
       ! grep -q '^vram shim:' "$tmp/out" && grep -q "^final used=0 peak=$B3 " "$tmp/out"; then
        ok "lost-descriptor-found-again-${way%%:*}"
    else
        not_ok "lost-descriptor-found-again-${way%%:*}" "$(head -c 800 "$tmp/out")"
    fi
done

finish
