#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/shim/test_run_enforce.sh - `vram run` gives the job the shim: with
# --vram 3GiB a CUDA program (on the stub driver) sees a 3 GiB card and is
# refused the 4th GiB, the peak comes from the shim's count, --enforce soft
# lets it through and `vram history` shows the overage, --enforce off shows
# the whole card.
. "$(dirname "$0")/../cli/lib.sh"

shim=$VRAM_BUILD/lib/libvram_shim.so
prog=$VRAM_BUILD/tests/shim/prog
stub=$VRAM_BUILD/stubs/cuda
if [ ! -f "$shim" ] || [ ! -x "$prog/reach" ] || [ ! -f "$stub/libcuda.so.1" ]; then
    echo "skip - $file: the shim, its stub driver or its programs are not built in $VRAM_BUILD"
    exit 77
fi
mkdir -p "$tmp/state"
export VRAM_BACKEND=sim VRAM_SIM="Stub:16GiB:0" VRAM_HISTORY=$tmp/history.db VRAM_INTERVAL=20ms \
       VRAM_SIM_STATE=$tmp/state VRAM_STUB_CUDA_MIB=16384
export LD_LIBRARY_PATH=$stub${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
unset VRAM_SHIM_FD VRAM_ENFORCE VRAM_BUDGET_BYTES VRAM_SHIM_LIBRARY

# In a sanitizer build vram run enforces only when asked (the runtime must
# come first in every job, so it goes in LD_PRELOAD, which vram run keeps
# ahead of the shim).
asan=$(ldd "$VRAM" 2>/dev/null | awk '/libasan/ { print $3 }')
hard=()
if [ -n "$asan" ]; then
    export LD_PRELOAD=$asan ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
    hard=(--enforce hard)
fi
GIB=1073741824

expect hard-by-default 0 "finished \(peak 3.0 GiB\)" -- "$VRAM" run "${hard[@]}" --vram 3GiB -- "$prog/reach" dlsym
if grep -q "^total=$((3 * GIB)) free=$((3 * GIB)) " "$tmp/out" && grep -q '^alloc 4 error 2$' "$tmp/out"; then
    ok hard-sees-budget-and-is-refused
else
    not_ok hard-sees-budget-and-is-refused "$(head -c 800 "$tmp/out")"
fi

for way in "linked" "reach proc 11030 ptds" "reach proc 12000" "reach v1" "reach late"; do
    name=run-${way// /-}
    # shellcheck disable=SC2086
    "$VRAM" run "${hard[@]}" --vram 3GiB -- "$prog"/$way >"$tmp/out" 2>&1
    if grep -q "^total=$((3 * GIB)) " "$tmp/out" && grep -q '^alloc 4 error 2$' "$tmp/out" &&
       ! grep -q wrong "$tmp/out"; then
        ok "$name"
    else
        not_ok "$name" "$(head -c 800 "$tmp/out")"
    fi
done

if [ -z "$asan" ]; then
    "$VRAM" run --vram 3GiB -- python3 -c '
import ctypes
cu = ctypes.CDLL("libcuda.so.1"); b = ctypes.byref
dev, ctx, f, t = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_size_t(), ctypes.c_size_t()
cu.cuInit(0); cu.cuDeviceGet(b(dev), 0); cu.cuDevicePrimaryCtxRetain(b(ctx), dev); cu.cuCtxSetCurrent(ctx)
cu.cuMemGetInfo_v2(b(f), b(t)); print("total=%d" % t.value)
print(["ok" if cu.cuMemAlloc_v2(b(ctypes.c_uint64()), ctypes.c_size_t(1 << 30)) == 0 else "oom" for i in range(4)])
' >"$tmp/out" 2>&1
    if grep -q "^total=$((3 * GIB))$" "$tmp/out" && grep -q "\['ok', 'ok', 'ok', 'oom'\]" "$tmp/out"; then
        ok run-python-ctypes
    else
        not_ok run-python-ctypes "$(head -c 800 "$tmp/out")"
    fi
else
    echo "skip - $file/run-python-ctypes: python is not built with ASan"
fi

# fork + exec under vram run: one count for the job.
"$VRAM" run "${hard[@]}" --vram 3GiB -- "$prog/reach" fork 3 >"$tmp/out" 2>&1
if grep -q '^alloc 3 error 2' "$tmp/out"; then ok run-fork-shares; else not_ok run-fork-shares "$(head -c 800 "$tmp/out")"; fi

# The job's one device is its CUDA ordinal 0: a job that sees more (it
# unset CUDA_VISIBLE_DEVICES; here the stub's second device) has no budget
# on the others (it had the whole budget again on each).
if [ -x "$prog/hostile" ]; then
    VRAM_STUB_CUDA_DEVICES=2 "$VRAM" run "${hard[@]}" --vram 3GiB -- "$prog/hostile" otherdev >"$tmp/out" 2>&1
    if grep -q '^device1 1 rc=2$' "$tmp/out" && grep -q '^device0 1 rc=0$' "$tmp/out"; then
        ok run-no-budget-on-other-devices
    else
        not_ok run-no-budget-on-other-devices "$(head -c 800 "$tmp/out")"
    fi
fi

# Soft: the 4th GiB goes through; the overage is said and recorded.
expect soft-lets-through 0 "went 1.0 GiB past its budget" -- \
    "$VRAM" run --enforce soft --name softjob --vram 3GiB -- "$prog/reach" dlsym
if grep -q '^alloc 4 ok' "$tmp/out" && grep -q "^total=$((16 * GIB)) " "$tmp/out"; then
    ok soft-shows-the-card
else
    not_ok soft-shows-the-card "$(head -c 800 "$tmp/out")"
fi
expect history-shows-overage 0 "OVER.*COMMAND" -- "$VRAM" history --job softjob
expect history-overage-figure 0 "softjob .* 4.0 GiB +3.0 GiB +1.0 GiB +.*reach dlsym" -- "$VRAM" history --job softjob
"$VRAM" history --json --job softjob >"$tmp/h.json" 2>&1
# grep, not python3: under the ASan build this script preloads ASan's runtime.
if grep -q '"peak_bytes":4294967296,' "$tmp/h.json" && grep -q '"over_bytes":1073741824' "$tmp/h.json"; then
    ok history-json-over-bytes
else
    not_ok history-json-over-bytes "$(head -c 600 "$tmp/h.json")"
fi

# Off: no shim, the whole card.
"$VRAM" run --enforce off --vram 3GiB -- "$prog/reach" dlsym >"$tmp/out" 2>&1
if grep -q "^total=$((16 * GIB)) " "$tmp/out" && grep -q '^alloc 4 ok' "$tmp/out"; then
    ok off-whole-card
else
    not_ok off-whole-card "$(head -c 800 "$tmp/out")"
fi

# A program that never touches CUDA: no word from the shim, and its peak
# still comes from the backend.
expect no-cuda-silent 0 "" -- "$VRAM" run "${hard[@]}" --vram 3GiB -- "$prog/reach" nocuda
if grep -q 'vram shim' "$tmp/out"; then not_ok no-cuda-no-shim-line "$(cat "$tmp/out")"; else ok no-cuda-no-shim-line; fi

# The job holds the count's descriptor (VRAM_SHIM_FD) and may truncate it:
# refused (the memfd is sealed at its size), so vram run reads its count
# on (it died of SIGBUS at its next read, leaving the job
# unwatched, unrecorded and its end unsaid).
expect count-cannot-be-truncated 3 "attempt 1 failed with status 3" -- "$VRAM" run "${hard[@]}" --vram 1GiB -- \
    sh -c 'truncate -s 0 /proc/self/fd/$VRAM_SHIM_FD && echo truncated; sleep 0.3; exit 3'
if grep -q '^truncated$' "$tmp/out"; then not_ok count-stays-its-size "$(head -c 800 "$tmp/out")"
else ok count-stays-its-size; fi

expect bad-enforce 2 "--enforce: 'strict' is not hard, soft or off" -- "$VRAM" run --enforce strict --vram 1GiB -- true
expect enforce-without-shim 2 "cannot enforce 'hard': VRAM_SHIM_LIBRARY=/nonexistent/libvram_shim.so: no such library" -- \
    env VRAM_SHIM_LIBRARY=/nonexistent/libvram_shim.so "$VRAM" run --enforce hard --vram 1GiB -- true

finish
