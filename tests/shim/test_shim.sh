#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/shim/test_shim.sh - the shim on the stub driver: every way a program
# reaches CUDA sees the budget as its card and is refused past it; soft mode
# counts the overage; forked children share the count; a process killed
# with -9 gives its bytes back; threads; bad settings said once; a program
# that never touches CUDA hears nothing.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh" reach
under() { env LD_PRELOAD="$pre" VRAM_BUDGET_BYTES=3GiB "$@"; }

# check_budget NAME COMMAND...: under the shim with 3 GiB it sees 3 GiB
# total, gets the first three GiB and is refused the fourth.
check_budget() {
    local name=$1; shift
    under "$@" >"$tmp/out" 2>&1
    if ! grep -q "^total=$((3 * GIB)) free=$((3 * GIB)) device_total=$((3 * GIB)) " "$tmp/out"; then
        not_ok "$name" "does not see 3 GiB: $(head -c 600 "$tmp/out")"
    elif ! grep -q '^alloc 3 ok' "$tmp/out" || ! grep -q '^alloc 4 error 2$' "$tmp/out"; then
        not_ok "$name" "not refused at the 4th GiB: $(head -c 600 "$tmp/out")"
    elif grep -q 'wrong' "$tmp/out"; then
        not_ok "$name" "a lookup gave the wrong entry point: $(head -c 600 "$tmp/out")"
    else
        ok "$name"
    fi
}

# check_whole NAME COMMAND...: without the shim, the whole 16 GiB card.
check_whole() {
    local name=$1; shift
    "$@" >"$tmp/out" 2>&1
    if grep -q "^total=$((16 * GIB)) " "$tmp/out" && grep -q '^alloc 4 ok' "$tmp/out" &&
       ! grep -q wrong "$tmp/out"; then
        ok "$name"
    else
        not_ok "$name" "$(head -c 600 "$tmp/out")"
    fi
}

check_budget linked "$prog/linked"
check_budget dlsym "$prog/reach" dlsym
check_budget v1-names "$prog/reach" v1
check_budget late-dlopen "$prog/reach" late
check_whole linked-without-shim "$prog/linked"
check_whole dlsym-without-shim "$prog/reach" dlsym
check_budget dlvsym "$prog/reach" dlvsym
check_whole dlvsym-without-shim "$prog/reach" dlvsym
# Which library answers each name: the shim for what it interposes (each
# versioned name its own hook, dlsym and dlvsym alike; cuGetProcAddress
# choosing the name by version and stream flag), the driver for the rest.
under "$prog/reach" names >"$tmp/out" 2>&1
names_want="name cuMemAlloc shim
name cuMemAlloc_v2 shim
name cuMemFreeAsync_ptsz shim
name cuCtxCreate_v3 shim
name cuArray3DCreate_v2 shim
name cuMipmappedArrayCreate shim
name cuStreamQuery_ptsz shim
name cuDeviceGetName driver
name cuCtxGetDevice driver
name cuDriverGetVersion driver
distinct ok"
if [ "$(grep '^name \|^distinct ' "$tmp/out")" = "$names_want" ]; then
    ok names-answered-by-the-right-library
else
    not_ok names-answered-by-the-right-library "$(head -c 900 "$tmp/out")"
fi
expect_lines getproc-picks-the-versioned-name '^proc cu[A-Za-z]+ [0-9]+( ptds)? ok$' 9
expect_lines getproc-unknown-name-passes-through '^proc cuDeviceGetName driver$' 1
for v in 3020 11030 12000 driver; do
    check_budget "getproc-$v" "$prog/reach" proc $v
    check_budget "getproc-$v-ptds" "$prog/reach" proc $v ptds
    check_whole "getproc-$v-without-shim" "$prog/reach" proc $v ptds
done
# The 11030 and 12000 runs asked for cuGetProcAddress itself and for the
# _ptsz entry points; "wrong" would have failed them above.
under "$prog/reach" proc 12000 ptds >"$tmp/out" 2>&1
expect_lines getproc-self-and-ptsz-checked '^(getproc-self|ptsz) ok$' 2

# Python's ctypes: dlopen + dlsym from an interpreter.
py_prog='
import ctypes, sys
cu = ctypes.CDLL("libcuda.so.1")
b = ctypes.byref
dev, ctx = ctypes.c_int(), ctypes.c_void_p()
assert cu.cuInit(0) == 0 and cu.cuDeviceGet(b(dev), 0) == 0
assert cu.cuDevicePrimaryCtxRetain(b(ctx), dev) == 0 and cu.cuCtxSetCurrent(ctx) == 0
f, t, card = ctypes.c_size_t(), ctypes.c_size_t(), ctypes.c_size_t()
cu.cuMemGetInfo_v2(b(f), b(t)); cu.cuDeviceTotalMem_v2(b(card), dev)
print("total=%d free=%d device_total=%d (rc 0 0)" % (t.value, f.value, card.value))
for i in range(1, 5):
    p = ctypes.c_uint64()
    rc = cu.cuMemAlloc_v2(b(p), ctypes.c_size_t(1 << 30))
    print("alloc %d %s" % (i, "ok" if rc == 0 else "error %d" % rc))
'
if [ -n "$asan" ]; then
    echo "skip - $file/python-ctypes: python is not built with ASan"
else
    check_budget python-ctypes python3 -c "$py_prog"
    check_whole python-ctypes-without-shim python3 -c "$py_prog"
fi

# NVML (the stub of tests/stubs/nvml_stub.c, a 16 GiB card): pynvml-style
# code sees the budget as the card, in both forms of the memory call.
nvml_prog='
import ctypes
class M1(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]
class M2(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("total", ctypes.c_ulonglong), ("reserved", ctypes.c_ulonglong),
                ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]
nv = ctypes.CDLL("libnvidia-ml.so.1")
h = ctypes.c_void_p()
assert nv.nvmlInit_v2() == 0 and nv.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(h)) == 0
m1, m2 = M1(), M2()
m2.version = ctypes.sizeof(M2) | (2 << 24)
assert nv.nvmlDeviceGetMemoryInfo(h, ctypes.byref(m1)) == 0
assert nv.nvmlDeviceGetMemoryInfo_v2(h, ctypes.byref(m2)) == 0
print("v1 total=%d free=%d" % (m1.total, m1.free))
print("v2 total=%d free=%d" % (m2.total, m2.free))
'
if [ -n "$asan" ]; then
    echo "skip - $file/nvml-sees-budget: python is not built with ASan"
else
    env LD_LIBRARY_PATH="$VRAM_BUILD/stubs:$LD_LIBRARY_PATH" LD_PRELOAD="$pre" VRAM_BUDGET_BYTES=3GiB \
        python3 -c "$nvml_prog" >"$tmp/out" 2>&1
    if grep -q "^v1 total=$((3 * GIB)) free=$((3 * GIB))$" "$tmp/out" &&
       grep -q "^v2 total=$((3 * GIB)) free=$((3 * GIB))$" "$tmp/out"; then
        ok nvml-sees-budget
    else
        not_ok nvml-sees-budget "$(head -c 600 "$tmp/out")"
    fi
    env LD_LIBRARY_PATH="$VRAM_BUILD/stubs:$LD_LIBRARY_PATH" python3 -c "$nvml_prog" >"$tmp/out" 2>&1
    if grep -q "^v1 total=$((16 * GIB)) " "$tmp/out"; then ok nvml-whole-card-without-shim; else not_ok nvml-whole-card-without-shim "$(head -c 600 "$tmp/out")"; fi
fi

# Soft mode: the 4th GiB goes through (the card has room) and the overage
# is counted in the job's region.
"$prog/host" soft $((3 * GIB)) -- "$prog/reach" dlsym >"$tmp/out" 2>&1
if grep -q '^alloc 4 ok' "$tmp/out" && grep -q "^final used=0 peak=$((4 * GIB)) over=$GIB refused=0 " "$tmp/out"; then
    ok soft-lets-through-and-counts
else
    not_ok soft-lets-through-and-counts "$(head -c 800 "$tmp/out")"
fi
"$prog/host" hard $((3 * GIB)) -- "$prog/reach" dlsym >"$tmp/out" 2>&1
if grep -q '^alloc 4 error 2' "$tmp/out" && grep -q "^final used=0 peak=$((3 * GIB)) over=0 refused=1 processes=1 " "$tmp/out"; then
    ok hard-region-counts
else
    not_ok hard-region-counts "$(head -c 800 "$tmp/out")"
fi

# fork + exec: the child counts into the same region (1 GiB of the parent's
# plus 2 of its own, refused the third).
"$prog/host" hard $((3 * GIB)) -- "$prog/reach" fork 3 >"$tmp/out" 2>&1
if grep -q '^alloc 2 ok' "$tmp/out" && grep -q '^alloc 3 error 2' "$tmp/out" &&
   grep -q 'processes=2 ' "$tmp/out"; then
    ok fork-exec-shares-the-count
else
    not_ok fork-exec-shares-the-count "$(head -c 800 "$tmp/out")"
fi

# kill -9 while holding 2 GiB: the runner gives them back.
"$prog/host" hard $((3 * GIB)) -- "$prog/reach" hold 2 >"$tmp/host" 2>&1 &
host_pid=$!
if wait_for "$tmp/host" '^held 2' 20 && wait_for "$tmp/host" "^count used=$((2 * GIB))" 5; then
    child=$(sed -n 's/^child pid=//p' "$tmp/host")
    kill -9 "$child"
    wait "$host_pid"
    if tail -n 2 "$tmp/host" | grep -q '^count used=0$' && grep -q "^final used=0 peak=$((2 * GIB)) " "$tmp/host"; then
        ok kill-9-gives-bytes-back
    else
        not_ok kill-9-gives-bytes-back "$(cat "$tmp/host")"
    fi
else
    kill "$host_pid" 2>/dev/null
    wait "$host_pid" 2>/dev/null
    not_ok kill-9-gives-bytes-back "never held: $(head -c 600 "$tmp/host")"
fi

# Processes that never reach CUDA take no slot: 270 of them (more than the
# region's 256 slots) alive, and a CUDA process killed -9 still gives back.
"$prog/host" hard $((3 * GIB)) -- sh -c '
    for i in $(seq 270); do sleep 60 & echo $! >>"$1"; done
    exec "$2" hold 2' sh "$tmp/sleepers" "$prog/reach" >"$tmp/host" 2>&1 &
host_pid=$!
if wait_for "$tmp/host" '^held 2' 60 && wait_for "$tmp/host" "^count used=$((2 * GIB))" 5; then
    kill -9 "$(sed -n 's/^child pid=//p' "$tmp/host")"
    wait "$host_pid"
    if tail -n 2 "$tmp/host" | grep -q '^count used=0$'; then
        ok many-non-cuda-processes-take-no-slot
    else
        not_ok many-non-cuda-processes-take-no-slot "$(tail -n 5 "$tmp/host")"
    fi
else
    kill "$host_pid" 2>/dev/null
    wait "$host_pid" 2>/dev/null
    not_ok many-non-cuda-processes-take-no-slot "never held: $(head -c 600 "$tmp/host")"
fi
xargs -r kill <"$tmp/sleepers" 2>/dev/null

# Threads allocating and freeing at once: no error, nothing left counted.
"$prog/host" hard $((3 * GIB)) -- "$prog/reach" threads 8 20000 >"$tmp/out" 2>&1
if grep -q '^threads done errors=0' "$tmp/out" && grep -q "^total=$((3 * GIB)) free=$((3 * GIB)) " "$tmp/out" &&
   grep -q '^final used=0 ' "$tmp/out"; then
    ok threads-count-exactly
else
    not_ok threads-count-exactly "$(head -c 800 "$tmp/out")"
fi

# Arrays, pitched, managed, cuMemCreate, pools: each counted and given back.
"$prog/host" hard $((3 * GIB)) -- "$prog/reach" kinds >"$tmp/out" 2>&1
expect_lines every-kind-refused-past-budget-and-given-back "^[a-z0-9]+ 0 2 free=$((3 * GIB))$" 7

# A program that never touches CUDA hears nothing, even with a bad budget.
env LD_PRELOAD="$pre" VRAM_BUDGET_BYTES=lots "$prog/reach" nocuda >"$tmp/out" 2>&1
if [ "$(cat "$tmp/out")" = "no cuda" ]; then ok no-cuda-no-message; else not_ok no-cuda-no-message "$(cat "$tmp/out")"; fi

# Bad settings: said once, calls pass through.
check_pass() {
    local name=$1 pattern=$2; shift 2
    env LD_PRELOAD="$pre" "$@" "$prog/reach" dlsym >"$tmp/out" 2>&1
    local said
    said=$(grep -c '^vram shim: ' "$tmp/out")
    if [ "$said" = 1 ] && grep -Eq "$pattern" "$tmp/out" && grep -q '^alloc 4 ok' "$tmp/out"; then
        ok "$name"
    else
        not_ok "$name" "said $said times: $(head -c 600 "$tmp/out")"
    fi
}
check_pass bad-budget-passes-through "VRAM_BUDGET_BYTES='lots' is not a size" VRAM_BUDGET_BYTES=lots
check_pass zero-budget-passes-through "not a size above zero" VRAM_BUDGET_BYTES=0
check_pass bad-mode-passes-through "VRAM_ENFORCE='strict' is not hard, soft or off" VRAM_BUDGET_BYTES=3GiB VRAM_ENFORCE=strict
check_pass no-budget-passes-through "no budget" VRAM_SHIM_FD=
check_pass bad-descriptor-passes-through "VRAM_SHIM_FD=77 is not the job's region" VRAM_SHIM_FD=77

# A budget larger than the card: the card is the limit, and it says so once.
env LD_PRELOAD="$pre" VRAM_BUDGET_BYTES=64GiB "$prog/reach" dlsym 17 >"$tmp/out" 2>&1
if grep -q "^total=$((16 * GIB)) " "$tmp/out" && [ "$(grep -c 'more than the card' "$tmp/out")" = 1 ] &&
   grep -q '^alloc 16 ok' "$tmp/out" && grep -q '^alloc 17 error 2' "$tmp/out"; then
    ok budget-above-card
else
    not_ok budget-above-card "$(head -c 800 "$tmp/out")"
fi

# What every process of a job makes the loader write: the shim's tables
# hold no pointers but its hooks' addresses (about 80), where a table of
# names as pointers made 244 relocations.  Instrumented builds differ.
relocs=$(readelf -rW "$shim" | grep -c R_X86_64_RELATIVE)
if [ -n "$asan" ]; then
    echo "skip - $file/tables-hold-few-pointers: an instrumented build lays the shim out otherwise"
elif [ "$relocs" -gt 0 ] && [ "$relocs" -le 120 ]; then
    ok tables-hold-few-pointers
else
    not_ok tables-hold-few-pointers "$relocs relative relocations (at most 120)"
fi

finish
