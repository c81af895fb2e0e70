# SPDX-License-Identifier: MIT
# tests/cli/lib.sh - helpers for the command's tests, sourced by test_*.sh.
#
# Each check prints "ok - FILE/NAME" or "not ok - FILE/NAME: why"; run.sh
# counts them.  $VRAM is the vram binary under test.
set -u
: "${VRAM:?run through tests/run.sh, which sets VRAM}"
file=$(basename "$0" .sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
helpers=$VRAM_BUILD/tests/helpers

ok() { echo "ok - $file/$1"; }
not_ok() { echo "not ok - $file/$1: $2"; failures=$((failures + 1)); }

# expect NAME STATUS PATTERN -- COMMAND...: runs it, checks the exit status
# and that stdout+stderr match the extended regex PATTERN ("" for any).
expect() {
    local name=$1 want=$2 pattern=$3
    shift 4
    "$@" >"$tmp/out" 2>&1
    local got=$?
    if [ "$got" != "$want" ]; then
        not_ok "$name" "exit $got, wanted $want; output: $(head -c 600 "$tmp/out")"
    elif [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$tmp/out"; then
        not_ok "$name" "output does not match /$pattern/: $(head -c 600 "$tmp/out")"
    else
        ok "$name"
    fi
}

# expect_lines NAME PATTERN N: the last output had exactly N lines matching.
expect_lines() {
    local n
    n=$(grep -Ec -- "$2" "$tmp/out")
    if [ "$n" = "$3" ]; then ok "$1"; else not_ok "$1" "$n lines match /$2/, wanted $3"; fi
}

# wait_for FILE PATTERN SECONDS: until a line of FILE matches the extended
# regex (tests wait on what a program said, never on a fixed sleep, which
# races a slow machine).
wait_for() {
    local i
    for i in $(seq 1 $(($3 * 20))); do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# wait_until SECONDS COMMAND...: until COMMAND succeeds.
wait_until() {
    local i n=$(($1 * 20))
    shift
    for i in $(seq 1 $n); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

finish() { [ $failures -eq 0 ]; exit $?; }
