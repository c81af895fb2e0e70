#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/soak/chaos.sh - rough treatment for vramd, outside the test suite:
#
#   tests/soak/chaos.sh [RUNS] [BUILD]      (defaults: 5 runs, build-asan if built, else build)
#
# Each run starts a vramd on two simulated cards and submits 120 jobs that
# really allocate (a quarter of them run out of memory and retry on a ladder),
# cancels some as it goes, kill -9s some runners, and kill -9s the daemon
# halfway and starts a new one. Then it waits for every job to end and counts:
# jobs not ended, retries lost to the restart ("no daemon answers" in a job's
# log), restarts refused, and sanitizer reports in the daemon's log. It exits
# 1 when any of those is not 0. Jobs whose runner it killed end "lost", as
# they should. A run takes 10 to 20 s.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
runs=${1:-5}
build=${2:-$([ -x "$top/build-asan/bin/vram" ] && echo build-asan || echo build)}
V=$top/$build/bin/vram
A=$top/build/tests/helpers/simalloc
[ -x "$V" ] && [ -x "$A" ] || { echo "build first: make (and make SAN=asan)" >&2; exit 2; }
dir=$(mktemp -d /tmp/vram-chaos.XXXXXX)
export VRAM_BACKEND=sim VRAM_SIM="A:24GiB,B:16GiB" VRAM_SIM_STATE=$dir/state VRAM_SOCKET=$dir/vramd.sock \
       VRAM_DB=$dir/queue.db VRAM_HISTORY=- VRAM_TOKEN_FILE=$dir/token VRAM_HTTP=127.0.0.1:0 VRAM_INTERVAL=50ms
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
daemon=
trap '[ -n "$daemon" ] && kill -TERM $daemon 2>/dev/null; rm -rf "$dir"' EXIT

start() {
    "$V" serve >>"$dir/vramd.log" 2>&1 &
    daemon=$!
    for _ in $(seq 200); do "$V" queue >/dev/null 2>&1 && return 0; sleep 0.05; done
    return 1
}

bad=0
printf '%-4s %9s %6s %8s %9s %10s %8s %8s\n' run succeeded failed canceled not-ended lost-retry refused reports
for run in $(seq "$runs"); do
    rm -rf "$dir"/queue.db* "$dir/state" "$dir/vramd.log"
    mkdir -p "$dir/state"
    start || { echo "run $run: the daemon did not start"; bad=1; continue; }
    ids=()
    for i in $(seq 120); do
        gib=$((RANDOM % 6 + 2)) ms=$((RANDOM % 800 + 100))
        if [ $((RANDOM % 4)) = 0 ]; then
            id=$("$V" submit --vram ${gib}GiB --ladder "size=$((gib + 20))GiB vram=${gib}GiB; size=1GiB vram=1GiB" \
                 -- "$A" oom {size} 2>/dev/null)
        else
            id=$("$V" submit --vram ${gib}GiB -- "$A" hold $((gib * 1024 - 100))MiB $ms 2>/dev/null)
        fi
        [ -n "$id" ] && ids+=("$id")
        if [ $((RANDOM % 6)) = 0 ] && [ ${#ids[@]} -gt 0 ]; then
            "$V" cancel "${ids[$((RANDOM % ${#ids[@]}))]}" >/dev/null 2>&1
        fi
        if [ $((RANDOM % 15)) = 0 ]; then
            p=$(pgrep -f -- "--daemon-job" | shuf -n1)
            [ -n "$p" ] && kill -9 "$p"
        fi
        if [ "$i" = 60 ]; then
            kill -9 $daemon; wait $daemon 2>/dev/null
            start || echo "run $run: the new daemon did not start"
        fi
    done
    "$V" wait --all --timeout 120 --quiet >/dev/null 2>&1
    counts=$("$V" queue --json --limit 1 | python3 -c 'import json, sys
c = json.load(sys.stdin)["counts"]
print(c["succeeded"], c["failed"], c["canceled"], c["queued"] + c["starting"] + c["running"])')
    kill -TERM $daemon; wait $daemon 2>/dev/null; daemon=
    lost=$(grep -l 'no daemon answers' "$dir"/queue.db.logs/*.log 2>/dev/null | wc -l)
    refused=$(grep -c 'already runs' "$dir/vramd.log")
    reports=$(grep -cE 'ERROR: AddressSanitizer|runtime error|LeakSanitizer' "$dir/vramd.log")
    read -r ok failed canceled open <<<"$counts"
    printf '%-4s %9s %6s %8s %9s %10s %8s %8s\n' "$run" "$ok" "$failed" "$canceled" "$open" "$lost" "$refused" "$reports"
    [ "$open" = 0 ] && [ "$lost" = 0 ] && [ "$refused" = 0 ] && [ "$reports" = 0 ] || bad=1
done
exit $bad
