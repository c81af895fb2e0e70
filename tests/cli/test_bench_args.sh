# SPDX-License-Identifier: MIT
# tests/cli/test_bench_args.sh - the benches other than bench/tsp
# (test_bench_tsp.sh) read their command line alike (bench/bench.h's
# bench_args): --help prints the usage and exits 0; an unknown option, a
# missing value or a value out of range exits 2 with one line naming it and
# what is accepted, control characters shown as '?'.  Nothing is measured.
. "$(dirname "$0")/lib.sh"
for b in daemon monitor shim plan sched; do
    [ -x "$VRAM_BUILD/bench/$b" ] || { echo "skip - $file/all: $VRAM_BUILD/bench/$b is not built"; exit 77; }
done
B=$VRAM_BUILD/bench

expect daemon_help 0 '^usage: bench/daemon \[--seconds S\] \[--jobs N\]$' -- "$B/daemon" --help
expect monitor_help 0 '^usage: bench/monitor \[--seconds S\]$' -- "$B/monitor" -h
expect shim_help 0 '^usage: bench/shim \[--seconds S\]$' -- "$B/shim" --help
expect plan_help 0 '^usage: bench/plan \[--seconds S\]$' -- "$B/plan" --help
expect sched_help 0 '^usage: bench/sched \[--scale N\]$' -- "$B/sched" --help

expect daemon_unknown_option 2 "bench/daemon: unknown option '--fast'" -- "$B/daemon" --fast
expect plan_positional_refused 2 "bench/plan: unknown option '0.5'" -- "$B/plan" 0.5
expect monitor_missing_value 2 'bench/monitor: --seconds needs a value' -- "$B/monitor" --seconds
expect shim_not_a_number 2 "bench/shim: --seconds takes a number from 0.01 to 3600, not 'soon'" -- "$B/shim" --seconds soon
expect shim_infinite 2 "--seconds takes a number from 0.01 to 3600, not 'inf'" -- "$B/shim" --seconds inf
expect daemon_jobs_whole 2 "bench/daemon: --jobs takes a whole number from 100 to 10000000, not '1.5'" -- "$B/daemon" --jobs 1.5
expect daemon_jobs_too_many 2 "--jobs takes a whole number from 100 to 10000000, not '1e9'" -- "$B/daemon" --jobs 1e9
expect sched_scale_zero 2 "bench/sched: --scale takes a number from 1 to 10000, not '0'" -- "$B/sched" --scale 0
expect sched_control_characters_shown_safely 2 "not '\\?\\[31mred'" -- "$B/sched" --scale $'\e[31mred'
expect_lines sched_no_escape_printed $'\e' 0
finish
