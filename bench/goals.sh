#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/goals.sh - every speed goal of issue 13, side by side, from one run.
#
#   bench/goals.sh [BUILD] [--quick]
#
# Runs the four benches that measure them, one after the other, on this
# machine (BUILD: the build folder, default build; `make` builds them):
#   build/bench/tsp --rounds 3      CLI start, a list and a submit with their servers, end to
#                                   next start, 200 jobs, durable submits
#                                   (against task-spooler and a bare SQLite loop)
#   build/bench/daemon --jobs 100000   the costs that must not grow with the queue
#   build/bench/sched               the makespan against the lower bound
#   python3 bench/pysched.py        the Python scheduler against ThreadPoolExecutor
# Each bench's own table is printed as it ends; then one table of the goals:
# what each must reach, what this run measured and whether it met it (each
# bench appends its lines to the file $VRAM_BENCH_GOALS names; bench/bench.h).
# --quick: 1 round of bench/tsp, 10,000 jobs in bench/daemon, 2 Python
# rounds (a check that the command works, not figures to quote).
# Exit status: 0 when every goal is met, 1 otherwise.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
rounds=3 jobs=100000 pyrounds=5
for arg in "$@"; do
    case $arg in
        --quick) rounds=1 jobs=10000 pyrounds=2 ;;
        -h|--help) sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "bench/goals.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
        *) build=$(cd "$arg" 2>/dev/null && pwd) || { echo "bench/goals.sh: no build folder '$arg'" >&2; exit 2; } ;;
    esac
done
for b in tsp daemon sched; do
    [ -x "$build/bench/$b" ] || { echo "bench/goals.sh: $build/bench/$b is missing (run make)" >&2; exit 2; }
done
goals=$(mktemp /tmp/vram-goals-XXXXXX)
trap 'rm -f "$goals"' EXIT
export VRAM_BENCH_GOALS=$goals

run() {
    echo "== $*"
    "$@" || echo "($1 exited $?)"
    echo
}
run "$build/bench/tsp" --rounds "$rounds"
run "$build/bench/daemon" --jobs "$jobs"
run "$build/bench/sched"
VRAM_LIBRARY=${VRAM_LIBRARY:-$build/lib/libvram.so} run python3 "$top/bench/pysched.py" --rounds "$pyrounds"

echo "== issue 13's goals, this run ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| goal | target | measured | |"
echo "| --- | --- | --- | --- |"
awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$goals"
want=16     # bench/tsp 10 (5 CLI, 2 hand-over, 1 jobs, 2 durable), bench/daemon 4, bench/sched 1, Python 1
got=$(wc -l <"$goals")
[ "$got" -ge "$want" ] || echo "(only $got goal lines: a bench above failed or skipped some; see its output)"
! grep -q 'NOT MET' "$goals" && [ "$got" -ge "$want" ]
