# SPDX-License-Identifier: MIT
# tests/cli/test_bench_tsp.sh - bench/tsp refuses bad options with exit 2,
# naming the value (bench_args, as every bench); with --only it shows the
# rows it measured and no others (none of them as 0 or NOT MET), the
# hand-over's shim share among them; a --dir holding a quote is used as a
# folder, never as shell text, and is left as it was.  Its figures are for the README, not checked here.
. "$(dirname "$0")/lib.sh"
bench=$VRAM_BUILD/bench/tsp
[ -x "$bench" ] || { echo "skip - $file/all: $bench is not built"; exit 77; }

expect rounds_out_of_range 2 "--rounds takes a whole number from 1 to 16, not '0'" -- "$bench" --rounds 0
expect rounds_not_a_count 2 "--rounds takes a whole number from 1 to 16, not 'three'" -- "$bench" --rounds three
expect only_unknown_part 2 "--only takes one of start\\|submits\\|handover\\|jobs\\|durable, not 'fast'" -- "$bench" --only fast
expect unknown_option 2 "unknown option '--fast'" -- "$bench" --fast
expect option_without_value 2 "--dir needs a value" -- "$bench" --dir
expect seconds_not_a_number 2 "--seconds takes a number from 0.01 to 3600, not 'x'" -- "$bench" --seconds x
expect seconds_not_infinite 2 "to 3600, not 'inf'" -- "$bench" --seconds inf
expect no_such_dir 2 "cannot make a folder in --dir '$tmp/none'" -- "$bench" --dir "$tmp/none"

work="$tmp/it's here"
mkdir "$work"
expect handover_only 0 'end to next start, 1 slot, p50 +\| +([0-9.]+ ms|-) +\| +[0-9.]+ ms' -- \
    timeout 120 "$bench" --only handover --rounds 1 --dir "$work"
grep -Eq 'end to next start, 1 slot, p50 +\| +[^|]*\| +0\.00 ms' "$tmp/out" &&
    not_ok handover_measured "$(cat "$tmp/out")" || ok handover_measured
# The shim's share: the hand-overs again with vram's jobs under --enforce off.
grep -Eq "p50, vram's jobs without the shim +\| +[^|]*\| +[0-9.]+ ms" "$tmp/out" &&
    ! grep -Eq "p50, vram's jobs without the shim +\| +[^|]*\| +0\.00 ms" "$tmp/out" &&
    ok shim_share_measured || not_ok shim_share_measured "$(cat "$tmp/out")"
# A lone job's start (no runner to reuse): measured on vram's side.
grep -Eq "a lone job's submit to its start, p50 +\| +[^|]*\| +[0-9.]+ ms" "$tmp/out" &&
    ! grep -Eq "a lone job's submit to its start, p50 +\| +[^|]*\| +0\.00 ms" "$tmp/out" &&
    ok lone_start_measured || not_ok lone_start_measured "$(cat "$tmp/out")"
unmeasured=$(grep -E '200 `true` jobs|200 jobs, vram|CLI start|CLI submits|durable submits|NOT MET' "$tmp/out")
[ -z "$unmeasured" ] && ok only_what_was_measured || not_ok only_what_was_measured "$unmeasured"
left=$(ls -A "$work")
[ -z "$left" ] && ok its_folder_removed || not_ok its_folder_removed "$left"
finish
