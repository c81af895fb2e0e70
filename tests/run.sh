#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/run.sh - runs the test programs of one build and counts their cases.
#
#   tests/run.sh BUILD_DIR [--threaded-only] [FILTER]
#
# Runs every C test binary under BUILD_DIR/tests, every shell test
# tests/*/test_*.sh (with VRAM pointing at BUILD_DIR/bin/vram) and, in the
# plain build, the Python tests, each in its own process with a timeout.
# Each prints "ok - ...", "not ok - ..." or "skip - ..." lines; a program
# that crashes, times out or fails without saying why counts as one failed
# case.  Ends with what each failed program's log says up to its first
# failure, then "N passed, N failed" (and skips); exits 1 on any failure.  With --threaded-only it runs only the C tests whose source says
# TEST_THREADED (the ThreadSanitizer run).
set -u
build=${1:?usage: tests/run.sh BUILD_DIR [--threaded-only] [FILTER]}
shift
threaded_only=0
if [ "${1:-}" = "--threaded-only" ]; then threaded_only=1; shift; fi
filter=${1:-}
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
timeout_s=${VRAM_TEST_TIMEOUT:-300}
log_dir=$build/test-logs
mkdir -p "$log_dir"

passed=0 failed=0 skipped=0
failures=()

# Runs one program; its output goes to a log and its verdict lines to stdout.
run_one() {
    local name=$1; shift
    local log=$log_dir/${name//\//_}.log
    local start=$SECONDS
    timeout --kill-after=10 "$timeout_s" "$@" >"$log" 2>&1
    local rc=$?
    local ok notok skip
    ok=$(grep -c '^ok - ' "$log")
    notok=$(grep -c '^not ok - ' "$log")
    skip=$(grep -c '^skip - ' "$log")
    grep -E '^(not ok|skip) - ' "$log"
    passed=$((passed + ok)); failed=$((failed + notok)); skipped=$((skipped + skip))
    if [ "$notok" -gt 0 ]; then failures+=("$name")
    elif [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
        failed=$((failed + 1)); failures+=("$name")
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            echo "not ok - $name: timed out after ${timeout_s}s"
        else
            echo "not ok - $name: exited with status $rc after its cases"
        fi
        tail -n 20 "$log" | sed 's/^/    /'
    fi
    printf '  %-40s %3d ok %3d failed %3d skipped  %3ds\n' "$name" "$ok" "$notok" "$skip" $((SECONDS - start))
}

export VRAM="$build/bin/vram" VRAM_BUILD="$build" VRAM_TOP="$top"
# Tests must not pick up the caller's settings.
unset VRAM_SIM VRAM_BACKEND VRAM_MARGIN VRAM_SIM_STATE VRAM_INTERVAL VRAM_SOCKET

for bin in $(find "$build/tests" -type f -name 'test_*' -perm -u+x | sort); do
    rel=${bin#"$build/tests/"}
    [ -n "$filter" ] && [[ $rel != *"$filter"* ]] && continue
    if [ $threaded_only = 1 ] && ! grep -q TEST_THREADED "$top/tests/$rel.c" 2>/dev/null; then
        continue
    fi
    run_one "$rel" "$bin"
done

if [ $threaded_only = 0 ]; then
    for sh in $(find "$top/tests" -name 'test_*.sh' | sort); do
        rel=${sh#"$top/tests/"}
        [ -n "$filter" ] && [[ $rel != *"$filter"* ]] && continue
        run_one "$rel" bash "$sh"
    done
    if [ -d "$top/python/tests" ] && [ "$(basename "$build")" = build ]; then
        for py in $(find "$top/python/tests" -name 'test_*.py' | sort); do
            rel=python/${py#"$top/python/tests/"}
            [ -n "$filter" ] && [[ $rel != *"$filter"* ]] && continue
            VRAM_LIBRARY="$build/lib/libvram.so" run_one "$rel" python3 "$top/tests/pytap.py" "$py"
        done
    fi
fi

# Why each failed, from its log: the lines up to its first "not ok" (a
# CI run shows only the end of what it printed, so this comes last).
explain() {
    local log=$log_dir/${1//\//_}.log at
    at=$(grep -n -m1 '^not ok - ' "$log" | cut -d: -f1)
    echo "-- $1, the end of its log up to its first failure ($log):"
    if [ -n "$at" ]; then
        head -n "$((at + 2))" "$log" | tail -n 30
    else
        tail -n 30 "$log"
    fi | cut -c1-300 | sed 's/^/    /'
}

echo
if [ ${#failures[@]} -gt 0 ]; then
    shown=0
    for name in "${failures[@]}"; do
        [ $shown -lt 5 ] && explain "$name"
        shown=$((shown + 1))
    done
    echo "failed in: ${failures[*]} (logs in $log_dir)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
