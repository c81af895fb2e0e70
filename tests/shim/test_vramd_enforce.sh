#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/shim/test_vramd_enforce.sh - two jobs on one simulated card under
# vramd, each trying to take the whole card (16 GiB, one at a time) with a
# 6 GiB lease: the shim holds each to its lease, and the daemon's jobs (what
# `vram queue --json` and the dashboard show) carry the shim's counts.  A
# job submitted with --enforce soft (and one from a CSV row) gets past its
# lease and the daemon shows by how much.
. "$(dirname "$0")/../cli/lib.sh"

prog=$VRAM_BUILD/tests/shim/prog
stub=$VRAM_BUILD/stubs/cuda
if [ ! -f "$VRAM_BUILD/lib/libvram_shim.so" ] || [ ! -x "$prog/reach" ] || [ ! -f "$stub/libcuda.so.1" ]; then
    echo "skip - $file: the shim, its stub driver or its programs are not built in $VRAM_BUILD"
    exit 77
fi
. "$(dirname "$0")/../daemon/daemon.sh"
export VRAM_SIM="Stub:16GiB" VRAM_STUB_CUDA_MIB=16384
export LD_LIBRARY_PATH=$stub${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
unset VRAM_SHIM_FD VRAM_ENFORCE VRAM_BUDGET_BYTES VRAM_SHIM_LIBRARY
asan=$(ldd "$VRAM" 2>/dev/null | awk '/libasan/ { print $3 }')
if [ -n "$asan" ]; then
    export LD_PRELOAD=$asan ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
fi
GIB=1073741824
# Jobs outlive their daemon by design: cancel ours before it stops.
jobs=()
cleanup() {
    for j in "${jobs[@]}"; do "$VRAM" cancel "$j" >/dev/null 2>&1; done
    for _ in $(seq 1 100); do env -u LD_PRELOAD pgrep -f "$prog/reach hold" >/dev/null || break; sleep 0.1; done
    stop_daemon
    rm -rf "$tmp"
}
trap cleanup EXIT
start_daemon || { not_ok daemon-starts "$(tail -5 "$tmp/daemon.log")"; finish; }

# job_field JOB FIELD: the daemon's figure for the job, "" when none.
job_field() {
    "$VRAM" queue --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
for j in (d.get("jobs", []) if isinstance(d, dict) else d):
    if str(j["id"]) == sys.argv[1]:
        v = j.get(sys.argv[2])
        print("" if v is None else v)' "$1" "$2"
}

a=$("$VRAM" submit --enforce hard --vram 6GiB --name greedy-a -- "$prog/reach" hold 16)
b=$("$VRAM" submit --enforce hard --vram 6GiB --name greedy-b -- "$prog/reach" hold 16)
jobs=("$a" "$b")
held() { [ "$(job_field "$a" used_bytes)" = $((6 * GIB)) ] && [ "$(job_field "$b" used_bytes)" = $((6 * GIB)) ]; }
if wait_until 30 held; then
    ok both-held-to-their-lease
else
    not_ok both-held-to-their-lease "a: $(job_field "$a" used_bytes) ($(job_field "$a" state)), b: $(job_field "$b" used_bytes) ($(job_field "$b" state)); $(tail -5 "$tmp/daemon.log")"
fi
if [ "$(job_field "$a" counted_by)" = shim ] && [ "$(job_field "$b" counted_by)" = shim ]; then
    ok counted-by-the-shim
else
    not_ok counted-by-the-shim "a: '$(job_field "$a" counted_by)', b: '$(job_field "$b" counted_by)'"
fi
# The card never held more than the two leases: the simulated card's use
# is what the daemon admitted against, the shim's counts are what the jobs
# took.
url=$(dashboard_url)
metric() { python3 -c 'import sys, urllib.request
for line in urllib.request.urlopen(sys.argv[1] + "metrics").read().decode().splitlines():
    if line.startswith(sys.argv[2] + " "):
        print(line.split()[1])' "$url" "$1"; }
m=$(metric vram_jobs_shim_used_bytes)
if [ "$m" = $((12 * GIB)) ]; then ok metrics-shim-used; else not_ok metrics-shim-used "vram_jobs_shim_used_bytes '$m'"; fi
ua=$(job_field "$a" used_bytes) ub=$(job_field "$b" used_bytes)
sum=$(( ${ua:-0} + ${ub:-0} ))
if [ -n "$ua" ] && [ -n "$ub" ] && [ "$sum" -le $((12 * GIB)) ]; then ok neither-past-its-lease; else not_ok neither-past-its-lease "together $sum bytes"; fi
"$VRAM" cancel "$a" >/dev/null 2>&1
"$VRAM" cancel "$b" >/dev/null 2>&1
ended() { [ "$(job_field "$a" state)" = canceled ] && [ "$(job_field "$b" state)" = canceled ]; }
if wait_until 30 ended; then ok both-canceled; else not_ok both-canceled "a $(job_field "$a" state), b $(job_field "$b" state)"; fi

# Soft: past the lease, and the daemon says by how much.
s=$("$VRAM" submit --enforce soft --vram 3GiB --name softie -- "$prog/reach" dlsym)
done_s() { [ "$(job_field "$s" state)" = succeeded ]; }
if wait_until 30 done_s && [ "$(job_field "$s" over_bytes)" = $GIB ]; then
    ok soft-overage-shown
else
    not_ok soft-overage-shown "state $(job_field "$s" state), over '$(job_field "$s" over_bytes)'"
fi
# /metrics sums the overages of the jobs the daemon keeps.
m=$(metric vram_jobs_over_budget_bytes)
if [ "$m" = $GIB ]; then ok metrics-over-budget; else not_ok metrics-over-budget "vram_jobs_over_budget_bytes '$m'"; fi
printf 'command,vram,enforce,name\n%s dlsym,3GiB,soft,csv-soft\n' "$prog/reach" >"$tmp/batch.csv"
c=$("$VRAM" submit --csv "$tmp/batch.csv" | tail -n 1)
done_c() { [ "$(job_field "$c" state)" = succeeded ]; }
if wait_until 30 done_c && [ "$(job_field "$c" over_bytes)" = $GIB ]; then
    ok csv-enforce-column
else
    not_ok csv-enforce-column "job '$c': state $(job_field "$c" state), over '$(job_field "$c" over_bytes)'"
fi
printf 'command,vram,enforce\ntrue,1GiB,strict\n' >"$tmp/bad.csv"
expect csv-bad-enforce 2 "enforce: 'strict' is not hard, soft or off" -- "$VRAM" submit --csv "$tmp/bad.csv"
expect submit-bad-enforce 2 "enforce: 'strict' is not hard, soft or off" -- "$VRAM" submit --enforce strict --vram 1GiB -- true

finish
