# SPDX-License-Identifier: MIT
# tests/cli/test_bench_jobcpu.sh - bench/jobcpu.sh runs and cleans up: a
# table of a trivial job's CPU, vram beside task-spooler (its column empty
# where tsp is not installed) and split by vram's processes, with no server
# or folder left behind; bad options are refused with exit 2, naming the
# value.  Its figures are for the README, not checked here.
. "$(dirname "$0")/lib.sh"
bench=$(dirname "$0")/../../bench/jobcpu.sh

expect jobs_not_a_count 2 "--jobs 'many' is not a count" -- "$bench" "$VRAM_BUILD" --jobs many
expect rounds_out_of_range 2 "--rounds takes 1 to 20" -- "$bench" "$VRAM_BUILD" --rounds 0
expect unknown_option 2 "unknown option '--fast'" -- "$bench" "$VRAM_BUILD" --fast
expect no_such_dir 2 "cannot make a folder in --dir '$tmp/none'" -- "$bench" "$VRAM_BUILD" --dir "$tmp/none"

mkdir "$tmp/work"
expect small_run 0 'CPU of the machine +\| +[0-9.-]+ \| +[0-9]+\.[0-9]{3} \|' -- \
    timeout 120 "$bench" "$VRAM_BUILD" --jobs 5 --rounds 1 --dir "$tmp/work"
grep -Eq "vramd's own threads +\| +- \| +[0-9]+\.[0-9]{3}" "$tmp/out" && ok split_by_process ||
    not_ok split_by_process "$(cat "$tmp/out")"
left=$(ls -A "$tmp/work")
[ -z "$left" ] && ok its_folder_removed || not_ok its_folder_removed "$left"
servers=$(ps -eo args= | grep -F -- "$tmp/work" | grep -v grep)
[ -z "$servers" ] && ok no_server_left || not_ok no_server_left "$servers"
finish
