#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/jobcpu.sh - the CPU a trivial job costs, vram beside task-spooler,
# and where vram's goes: vramd, its runners, the jobs themselves.
#
#   bench/jobcpu.sh [BUILD] [--jobs N] [--rounds R] [--dir DIR]
#
# Each round, each side in turn (tsp first in odd rounds): a server of its
# own in a fresh folder under DIR (default /tmp), two jobs that hold both
# slots (each blocks reading a FIFO), N `true` jobs queued behind them
# (default 400), a second for vramd's runners started ahead to be ready;
# then the FIFO is written and the time and CPU until the last end are
# taken (`tsp -w` and `vram wait` on the last job).  "machine" is every core's busy time from /proc/stat (the fairest
# figure for both sides, and the one a busy neighbour spoils); for vram it
# is also split by process from /proc/PID/stat: vramd's own threads, its
# runners' own time, and the jobs they started and reaped (runners that
# exit meanwhile are counted in vramd's children, shown apart).  vramd runs
# on a simulated 24 GiB card, records no history (VRAM_HISTORY=-), as
# bench/tsp's does.  Medians over the rounds.
#
# DIR is where both sides make their files: each job's output file (tsp's
# ts-out.*, vram's log) and vramd's queue.  On a file system where making
# a file is dear (ext4 without a journal skips every inode freed in the
# last minute or so), `--dir /dev/shm` tells the disk's share from the rest.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
jobs=400 rounds=3 dir=/tmp
while [ $# -gt 0 ]; do
    case $1 in
        --jobs) jobs=${2:-}; shift ;;
        --rounds) rounds=${2:-}; shift ;;
        --dir) dir=${2:-}; shift ;;
        -h|--help) sed -n '3,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "bench/jobcpu.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
        *) build=$(cd "$1" 2>/dev/null && pwd) || { echo "bench/jobcpu.sh: no build folder '$1'" >&2; exit 2; } ;;
    esac
    shift
done
case $jobs in ''|*[!0-9]*) echo "bench/jobcpu.sh: --jobs '$jobs' is not a count of jobs (1 to 100000)" >&2; exit 2 ;; esac
case $rounds in ''|*[!0-9]*) echo "bench/jobcpu.sh: --rounds '$rounds' is not a count (1 to 20)" >&2; exit 2 ;; esac
if [ ${#jobs} -gt 6 ] || [ "$jobs" -lt 1 ] || [ "$jobs" -gt 100000 ]; then
    echo "bench/jobcpu.sh: --jobs takes 1 to 100000, not $jobs" >&2; exit 2
fi
if [ ${#rounds} -gt 2 ] || [ "$rounds" -lt 1 ] || [ "$rounds" -gt 20 ]; then
    echo "bench/jobcpu.sh: --rounds takes 1 to 20, not $rounds" >&2; exit 2
fi
vram=$build/bin/vram
[ -x "$vram" ] || { echo "bench/jobcpu.sh: no $vram (run make first)" >&2; exit 2; }
work=$(mktemp -d "$dir/vram-bench-jobcpu-XXXXXX") || { echo "bench/jobcpu.sh: cannot make a folder in --dir '$dir'" >&2; exit 2; }
vp=
cleanup() {
    [ -n "$vp" ] && kill "$vp" 2>/dev/null
    [ -n "${TS_SOCKET:-}" ] && tsp -K >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
have_tsp=false
command -v tsp >/dev/null && have_tsp=true
export VRAM_BACKEND=sim VRAM_SIM="RTX 4090:24GiB" VRAM_HISTORY=- VRAM_HTTP=127.0.0.1:0
tick=$(getconf CLK_TCK)
busy() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
now() { date +%s.%N; }
serial=0
fail() { echo "bench/jobcpu.sh: $*" >&2; exit 1; }
# Lets the two holders go: opening the FIFO waits for its readers, so not forever.
release() { timeout 60 sh -c 'echo go >"$1"' sh "$1" || fail "the jobs holding the slots never started"; }

# One side's round: prints "wall_ms_per_job machine_ms_per_job [vramd runners jobs exited]".
round_tsp() {
    local d=$work/t$((serial += 1)); mkdir "$d"; mkfifo "$d/fifo"
    export TS_SOCKET=$d/ts.sock TMPDIR=$d TS_SLOTS=2
    tsp -S 2 >/dev/null
    # The FIFO is the holders' argument, never part of their script (--dir is the user's text).
    tsp sh -c 'read x <"$1"' sh "$d/fifo" >/dev/null && tsp sh -c 'read x <"$1"' sh "$d/fifo" >/dev/null ||
        fail "a tsp submit failed"
    local i last=0
    for ((i = 0; i < jobs; i++)); do last=$(tsp true) || fail "a tsp submit failed"; done
    sleep 1
    local u0 t0 t1 u1
    u0=$(busy); t0=$(now); release "$d/fifo"; tsp -w "$last" >/dev/null; t1=$(now); u1=$(busy)
    tsp -K >/dev/null 2>&1; unset TS_SOCKET
    awk -v t0="$t0" -v t1="$t1" -v u="$((u1 - u0))" -v n="$jobs" -v k="$tick" \
        'BEGIN { printf "%.3f %.3f\n", (t1 - t0) * 1000 / n, u * 1000 / k / n }'
}

round_vram() {
    local d=$work/v$((serial += 1)); mkdir "$d" "$d/state"; mkfifo "$d/fifo"
    export VRAM_SOCKET=$d/vramd.sock VRAM_DB=$d/queue.db VRAM_SIM_STATE=$d/state VRAM_TOKEN_FILE=$d/token
    "$vram" serve 2>/dev/null &
    vp=$!
    local i last
    for ((i = 0; i < 200; i++)); do [ -S "$d/vramd.sock" ] && break; sleep 0.05; done
    for ((i = 0; i < 2; i++)); do
        "$vram" submit --vram 10GiB -- sh -c 'read x <"$1"' sh "$d/fifo" >/dev/null || fail "a vram submit failed"
    done
    for ((i = 0; i < jobs; i++)); do last=$("$vram" submit --vram 10GiB -- true) || fail "a vram submit failed"; done
    sleep 1
    # vramd's own ticks and its reaped children's; each live runner's own and its reaped jobs'.
    snap() {
        awk '{ print $14 + $15, $16 + $17 }' "/proc/$vp/stat"
        for k in $(cat /proc/"$vp"/task/*/children 2>/dev/null); do
            awk '{ s += $14 + $15; c += $16 + $17 } END { print s + 0, c + 0 }' "/proc/$k/stat" 2>/dev/null
        done | awk '{ s += $1; c += $2 } END { print s + 0, c + 0 }'
    }
    local a b u0 t0 t1 u1
    a=($(snap)); u0=$(busy); t0=$(now)
    release "$d/fifo"
    "$vram" wait --quiet --timeout 600 "$last" >/dev/null || fail "vram wait did not see job $last end"

    t1=$(now); u1=$(busy); b=($(snap))
    kill "$vp"; wait "$vp" 2>/dev/null; vp=
    awk -v t0="$t0" -v t1="$t1" -v u="$((u1 - u0))" -v n="$jobs" -v k="$tick" \
        -v d="$((b[0] - a[0]))" -v x="$((b[1] - a[1]))" -v r="$((b[2] - a[2]))" -v j="$((b[3] - a[3]))" \
        'BEGIN { printf "%.3f %.3f %.3f %.3f %.3f %.3f\n", (t1 - t0) * 1000 / n, u * 1000 / k / n,
                 d * 1000 / k / n, r * 1000 / k / n, j * 1000 / k / n, x * 1000 / k / n }'
}

: >"$work/tsp.txt"; : >"$work/vram.txt"
for ((r = 1; r <= rounds; r++)); do
    if $have_tsp && [ $((r % 2)) = 1 ]; then round_tsp >>"$work/tsp.txt"; fi
    round_vram >>"$work/vram.txt"
    if $have_tsp && [ $((r % 2)) = 0 ]; then round_tsp >>"$work/tsp.txt"; fi
    echo "bench/jobcpu: round $r of $rounds done" >&2
done

# Median of column $2 in file $1.
median() { sort -g -k"$2","$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END { if (NR) print v[int((NR + 1) / 2)]; else print "" }'; }
tw=$(median "$work/tsp.txt" 1) tm=$(median "$work/tsp.txt" 2)
vw=$(median "$work/vram.txt" 1) vm=$(median "$work/vram.txt" 2)
vd=$(median "$work/vram.txt" 3) vr=$(median "$work/vram.txt" 4) vj=$(median "$work/vram.txt" 5) vx=$(median "$work/vram.txt" 6)
printf 'vram %s  bench/jobcpu  (%s `true` jobs queued behind 2 that hold both slots; rounds: %s, medians; files in %s)\n\n' \
    "$("$vram" --version 2>/dev/null | awk '{ print $2 }')" "$jobs" "$rounds" "$dir"
printf '| %-42s | %-10s | %-10s | %s\n' "per job, ms" "tsp" "vram" "vram against tsp"
printf '|--------------------------------------------|------------|------------|------------------\n'
row() {  # what, tsp, vram
    local ratio=-
    [ -n "$2" ] && [ -n "$3" ] && ratio=$(awk -v a="$2" -v b="$3" 'BEGIN { if (a > 0) printf "%.2fx", b / a; else print "-" }')
    printf '| %-42s | %10s | %10s | %s\n' "$1" "${2:--}" "${3:--}" "$ratio"
}
$have_tsp || echo "(tsp: task-spooler is not installed (apt-get install task-spooler): its column is empty)"
row "wall, release to last end (2 slots)" "$tw" "$vw"
row "CPU of the machine" "$tm" "$vm"
row "  vramd's own threads" "" "$vd"
row "  its runners (their own time)" "" "$vr"
row "  the jobs (true, with the shim)" "" "$vj"
row "  runners that ended meanwhile" "" "$vx"
rest=$(awk -v m="$vm" -v d="$vd" -v r="$vr" -v j="$vj" -v x="$vx" 'BEGIN { if (m != "") printf "%.3f", m - d - r - j - x }')
row "  the rest (the kernel's threads, \`wait\`)" "" "$rest"
