#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/test.sh - builds vram three ways and runs the test suite on each:
# plain (everything, Python included), AddressSanitizer + UBSan (every C and
# shell test) and ThreadSanitizer (the threaded tests); then builds it with
# clang.  Every build here makes warnings errors (WERROR=1; the Makefile's
# default does not).  Ends with each failure's log excerpt again, then the
# line "N passed, N failed"; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test || exit 1
jobs=$(nproc)
total_pass=0 total_fail=0 total_skip=0
status=0
why=$(mktemp)
trap 'rm -f "$why"' EXIT

phase() {
    local name=$1 build=$2; shift 2
    echo
    echo "== $name =="
    local start=$SECONDS
    local out
    out=$(mktemp)
    tests/run.sh "$build" "$@" | tee "$out"
    local line
    line=$(tail -n 1 "$out")
    # What the phase said of its failures, told again at the very end.
    sed -n "/^-- .*, the end of its log up to/,\$p" "$out" | sed '$d' | sed "s/^/[$name] /" >>"$why"
    rm -f "$out"
    local p f s
    read -r p _ f _ s _ <<<"$(echo "$line" | tr -d ',')"
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
    [ "$f" -eq 0 ] || status=1
    echo "($name: $((SECONDS - start)) s)"
}

build() {
    echo "building $*"
    make -j"$jobs" WERROR=1 "$@" all >/dev/null || { echo "build failed: make WERROR=1 $*"; exit 1; }
}

build
phase "plain build" build
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
build SAN=asan OPT="-O1 -g"
phase "AddressSanitizer + UndefinedBehaviorSanitizer" build-asan
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
build SAN=tsan OPT="-O1 -g"
phase "ThreadSanitizer (threaded tests)" build-tsan --threaded-only

# The code builds warning-free with clang as well as gcc (built only: the
# runs above cover behaviour).
echo
echo "== clang =="
if make -j"$jobs" WERROR=1 CC=clang BUILD=build-clang all >/dev/null; then
    echo "ok - clang_builds_with_no_warning"
    total_pass=$((total_pass + 1))
else
    echo "not ok - clang_builds_with_no_warning: see the make output above"
    total_fail=$((total_fail + 1)); status=1
fi

if [ -s "$why" ]; then
    echo
    echo "== the failures again, with their logs =="
    cut -c1-400 "$why"
fi
echo
echo "$total_skip skipped (GPU checks skip without a GPU)"
echo "$total_pass passed, $total_fail failed"
exit $status
