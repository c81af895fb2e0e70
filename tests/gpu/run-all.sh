#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/gpu/run-all.sh - the one script to run on a GPU machine: every
# tests/gpu/ check, then the benches, with one table at the end.
#
#   run-all.sh [--tests-only | --bench-only] [--seconds S] [--limit S]
#              [--only NAME[,NAME...]]
#
# Run from the folder scripts/gpu-bundle.sh makes (as BUNDLE/run-all.sh),
# it needs nothing installed but glibc, bash, coreutils (and python3 for
# the checks that use it): LD_LIBRARY_PATH is set to the bundle's lib/.
# Run from a checkout (tests/gpu/run-all.sh) it uses build/.  Without a
# GPU every check skips, saying why.  --seconds S: time per bench
# measurement (default 1).  --limit S: seconds each check may run before it
# is stopped and counted failed (default 600).  --only: just the checks or
# benches named (test_shim_gpu, bench/tsp: a name as the table shows it, its
# folder and .sh optional), for a rerun of what failed.  Exit status: 0 when
# nothing failed; 1 when a check failed; 2 for bad arguments.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/bin/vram" ] && [ -d "$here/tests/gpu" ]; then
    top=$here build=$here                   # a bundle
else
    top=$(cd "$here/../.." && pwd) build=$top/build
fi
tests=1 bench=1 seconds=1 limit=600 only=""
while [ $# -gt 0 ]; do
    case $1 in
        --tests-only) bench=0 ;;
        --bench-only) tests=0 ;;
        --seconds) seconds=${2:-}; shift
            [[ $seconds =~ ^[0-9]+(\.[0-9]+)?$ && ! $seconds =~ ^0*(\.0*)?$ ]] ||
                { echo "run-all: --seconds: '$(printf %s "$seconds" | tr -c '[:print:]' '?')' is not a number of seconds above 0" >&2; exit 2; } ;;
        --limit) limit=${2:-}; shift
            [[ $limit =~ ^[1-9][0-9]{0,4}$ ]] || { echo "run-all: --limit: '$limit' is not a whole number of seconds from 1 to 99999" >&2; exit 2; } ;;
        --only) only=${2:-}; shift
            [[ $only =~ ^[A-Za-z0-9_./,-]+$ ]] || { echo "run-all: --only: '$(printf %s "$only" | tr -c '[:print:]' '?')' is not a comma-separated list of check names (letters, digits, _ . / -)" >&2; exit 2; } ;;
        -h|--help) sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run-all: unknown argument '$(printf %s "$1" | tr -c '[:print:]' '?')' (--tests-only, --bench-only, --seconds S, --limit S, --only NAMES)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "${PATH:-}" ] || export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
export VRAM="$build/bin/vram" VRAM_BUILD="$build" VRAM_TOP="$top" VRAM_LIBRARY="$build/lib/libvram.so"
export LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH="$top/python${PYTHONPATH:+:$PYTHONPATH}"
export TMPDIR=${TMPDIR:-/tmp}
export HOME=${HOME:-$TMPDIR}
unset VRAM_SIM VRAM_BACKEND VRAM_MARGIN VRAM_SIM_STATE VRAM_INTERVAL VRAM_SOCKET
[ -d "$build/bin" ] && export PATH="$build/bin:$PATH"     # a bundle's tsp, for bench/tsp
logs=$(mktemp -d "$TMPDIR/vram-gpu-XXXXXX")
rows=() failed=0

# wanted NAME: whether --only names this check (gpu/test_x.sh, bench/x).
wanted() {
    [ -z "$only" ] && return 0
    local n=$1 w
    for w in ${only//,/ }; do
        case $n in "$w"|"gpu/$w"|"gpu/$w.sh"|"bench/$w") return 0 ;; esac
    done
    return 1
}

echo "vram GPU run: $(uname -n), $(date -u +%Y-%m-%dT%H:%M:%SZ), logs in $logs"
# The machine as it is: driver, GPUs, glibc against what the bundle needs.
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=index,name,memory.total,driver_version,mig.mode.current --format=csv,noheader 2>&1 | sed 's/^/  gpu: /'
else
    echo "  gpu: no nvidia-smi (no NVIDIA driver): every GPU check will skip"
fi
have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')
need=$(awk '$1 == "glibc" { print $2 }' "$build/MANIFEST" 2>/dev/null)
echo "  glibc: ${have:-unknown}${need:+ (the bundle needs $need)}"
if [ -n "$need" ] && [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
    echo "run-all: this machine's glibc $have is older than the $need the bundle was built against; build it on an older system" >&2
    exit 1
fi
if ! "$VRAM" --version >"$logs/version" 2>&1; then
    echo "run-all: $VRAM does not start here: $(head -c 300 "$logs/version")" >&2
    exit 1
fi
echo "  vram: $(head -1 "$logs/version")"
"$VRAM" status --backend nvml >"$logs/status" 2>&1
echo "  vram status (NVML): $(head -3 "$logs/status" | tr '\n' ' ' | cut -c1-200)"

# One check: its log, and a row (name, ok, failed, skipped, seconds, note).
run_one() {
    local name=$1 limit=$2; shift 2
    local log=$logs/${name//\//_}.log start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
    local rc=$? ok notok skip note=""
    ok=$(grep -c '^ok - ' "$log"); notok=$(grep -c '^not ok - ' "$log"); skip=$(grep -c '^skip - ' "$log")
    if [ "$notok" -gt 0 ]; then
        note=$(grep -m1 '^not ok - ' "$log" | cut -c1-120)
    elif [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
        notok=$((notok + 1))
        note="exit $rc$([ $rc -eq 124 ] && echo " (timed out after ${limit}s)"): $(tail -1 "$log" | cut -c1-100)"
    elif [ "$skip" -gt 0 ] && [ "$ok" -eq 0 ]; then
        note=$(grep -m1 '^skip - ' "$log" | sed 's/^skip - [^:]*: //' | cut -c1-120)
    fi
    [ "$notok" -gt 0 ] && failed=$((failed + notok))
    rows+=("$(printf '%-34s %4s %6s %7s %5ss  %s' "$name" "$ok" "$notok" "$skip" $((SECONDS - start)) "$note")")
    echo "-- ${rows[-1]}"                   # as it ends, in case the run is cut short
}

if [ $tests = 1 ]; then
    for t in "$top"/tests/gpu/test_*.sh; do
        wanted "gpu/$(basename "$t")" || continue
        run_one "gpu/$(basename "$t")" "$limit" bash "$t"
    done
fi
if [ $bench = 1 ]; then
    # A bench prints its table; its row says whether it ran.  bench/tsp
    # needs task-spooler, which a bare machine lacks.
    for b in monitor shim plan sched daemon tsp; do
        wanted "bench/$b" || continue
        exe=$build/bench/$b
        if [ ! -x "$exe" ]; then
            rows+=("$(printf '%-34s %4s %6s %7s %5ss  %s' "bench/$b" 0 0 1 0 "not built")"); continue
        fi
        if [ $b = tsp ] && ! command -v tsp >/dev/null 2>&1 && ! command -v ts >/dev/null 2>&1; then
            rows+=("$(printf '%-34s %4s %6s %7s %5ss  %s' "bench/$b" 0 0 1 0 "no task-spooler (tsp) here")"); continue
        fi
        case $b in
            sched) args=() ;;
            tsp) args=(--rounds 1 --seconds "$seconds") ;;
            *) args=(--seconds "$seconds") ;;
        esac
        start=$SECONDS
        timeout --kill-after=10 "$((limit < 120 ? limit : 120))" "$exe" "${args[@]}" >"$logs/bench_$b.log" 2>&1
        rc=$?
        note="table in $logs/bench_$b.log"
        [ $rc -ne 0 ] && note="exit $rc: $(tail -1 "$logs/bench_$b.log" | cut -c1-100)"
        rows+=("$(printf '%-34s %4s %6s %7s %5ss  %s' "bench/$b" $((rc == 0)) $((rc != 0)) 0 $((SECONDS - start)) "$note")")
        [ $rc -ne 0 ] && failed=$((failed + 1))
        echo "---- bench/$b"; cat "$logs/bench_$b.log"
    done
fi

echo
printf '%-34s %4s %6s %7s %6s  %s\n' check ok failed skipped time note
for r in "${rows[@]}"; do echo "$r"; done
echo
echo "$failed failed (logs in $logs)"
[ $failed -eq 0 ]
