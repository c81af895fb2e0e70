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
finish
