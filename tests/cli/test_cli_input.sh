# SPDX-License-Identifier: MIT
# tests/cli/test_cli_input.sh - the command's edges of input: VRAM_HISTORY=-
# read as "the history is off" (no file named -), numbers out of range,
# empty values given explicitly, and 0 where it would mean forever.
. "$(dirname "$0")/lib.sh"
export VRAM_BACKEND=sim VRAM_SIM="RTX 4090:24GiB" VRAM_HISTORY=-
cd "$tmp" || exit 1

# ---- VRAM_HISTORY=- records nothing, and the readers say so ----
mkdir "$tmp/off" && cd "$tmp/off" || exit 1
expect history_off 0 "^no runs recorded: the run history is off \(--history or VRAM_HISTORY is '-'\)$" -- "$VRAM" history
expect history_off_json 0 '^\{"runs":\[\]\}$' -- "$VRAM" history --json
expect history_off_flag 0 "the run history is off" -- env -u VRAM_HISTORY "$VRAM" history --history -
expect report_history_off 2 "^vram report: no run 1: the run history is off" -- "$VRAM" report 1
expect calibrate_history_off 2 "^vram calibrate: --from-history: the run history is off" -- \
    "$VRAM" calibrate --model latentsync --from-history
if [ -z "$(ls -A "$tmp/off")" ]; then ok history_off_creates_no_file
else not_ok history_off_creates_no_file "$(ls -A "$tmp/off")"; fi
cd "$tmp" || exit 1

# ---- numbers past what their type holds are refused, named ----
for id in 18446744073709551616 9223372036854775808 99999999999999999999999; do
    expect "report_id_out_of_range_$id" 2 "^vram report: '$id' is not a run number" -- \
        "$VRAM" report "$id" --history "$tmp/runs.db"
done
expect report_id_largest 2 "^vram report: no run 9223372036854775807 in the history" -- \
    "$VRAM" report 9223372036854775807 --history "$tmp/runs.db"
big=99999999999999999999999
expect submit_priority_huge 2 "^vram submit: --priority: '$big' is not a whole number from -100 to 100" -- \
    "$VRAM" submit --vram 1GiB --priority "$big" -- true
expect submit_device_huge 2 "^vram submit: --device: '$big' is not auto or a device number" -- \
    "$VRAM" submit --vram 1GiB --device "$big" -- true
printf 'a %s 1GiB 1s\n' "$big" >"$tmp/huge.trace"
expect trace_count_huge 2 "count '$big' is not a whole number" -- "$VRAM" simulate "$tmp/huge.trace"
printf 'a 1 1GiB 1s priority=%s\n' "$big" >"$tmp/huge.trace"
expect trace_priority_huge 2 "priority '$big' is not a whole number" -- "$VRAM" simulate "$tmp/huge.trace"
finish
