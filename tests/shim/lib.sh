# SPDX-License-Identifier: MIT
# tests/shim/lib.sh - what the shim's shell tests on the stub driver share,
# sourced after tests/cli/lib.sh with the test program they run as $1
# (build/tests/shim/prog/NAME): skips when it, the shim or the stub is not
# built; puts the stub driver (a 16 GiB card) on LD_LIBRARY_PATH and clears
# the settings the tests set themselves; in the ASan build preloads ASan's
# runtime ($asan; $pre is what LD_PRELOAD takes to add the shim).  Gives
# $shim, $prog, $stub, GIB, B3 (3 GiB) and want.

shim=$VRAM_BUILD/lib/libvram_shim.so
prog=$VRAM_BUILD/tests/shim/prog
stub=$VRAM_BUILD/stubs/cuda
if [ ! -f "$shim" ] || [ ! -x "$prog/$1" ] || [ ! -f "$stub/libcuda.so.1" ]; then
    echo "skip - $file: the shim, its stub driver or its programs are not built in $VRAM_BUILD"
    exit 77
fi
export LD_LIBRARY_PATH=$stub${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export VRAM_STUB_CUDA_MIB=16384 VRAM_SHIM_LIBRARY=$shim
unset VRAM_SHIM_FD VRAM_ENFORCE VRAM_BUDGET_BYTES VRAM_STUB_CUDA_DEVICES VRAM_STUB_CUDA_CTX_MIB HOST_CARD_FREE

asan=$(ldd "$prog/$1" 2>/dev/null | awk '/libasan/ { print $3 }')
pre=$shim
if [ -n "$asan" ]; then
    pre=$asan:$shim
    export ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
    export LD_PRELOAD=$asan
fi

GIB=1073741824
B3=$((3 * GIB))

# want NAME LINE...: every LINE is in $tmp/out, first seen in that order.
want() {
    local name=$1; shift
    local expected got
    expected=$(printf '%s\n' "$@")
    got=$(grep -Fx -f <(printf '%s\n' "$@") "$tmp/out" | awk '!seen[$0]++')
    if [ "$got" = "$expected" ]; then ok "$name"; else not_ok "$name" "$(head -c 1500 "$tmp/out")"; fi
}
