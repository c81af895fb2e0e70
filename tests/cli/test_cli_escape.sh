# SPDX-License-Identifier: MIT
# tests/cli/test_cli_escape.sh - user text in the command's messages is
# escaped: an unknown command or option, a refused setting (flag or
# environment), the command `vram run` could not start, the file calibrate
# wrote and a trace's task name reach the terminal with \e, never a raw ESC.
. "$(dirname "$0")/lib.sh"
export VRAM_BACKEND=sim VRAM_SIM="RTX 4090:24GiB" VRAM_HISTORY=-
cd "$tmp" || exit 1
esc=$(printf '\033')

# escaped NAME STATUS PATTERN -- COMMAND...: as expect, and no raw ESC in
# what it printed (stdout and stderr).
escaped() {
    local name=$1
    expect "$@"
    if grep -q "$esc" "$tmp/out"; then not_ok "${name}_no_raw_esc" "$(od -c "$tmp/out" | head -4)"
    else ok "${name}_no_raw_esc"; fi
}

escaped unknown_command 2 "^vram: unknown command '\\\\e\[31mred'" -- "$VRAM" "${esc}[31mred"
escaped unknown_option 2 "^vram status: unknown option '--\\\\e\[31mx' \(see" -- "$VRAM" status "--${esc}[31mx"
escaped unknown_short_option 2 "unknown option '-\\\\e'" -- "$VRAM" status "-${esc}"
escaped bad_margin_flag 2 "^vram status: --margin: margin '\\\\e\[31mX' is not a size" -- \
    "$VRAM" status --margin "${esc}[31mX"
escaped bad_backend_env 2 "^vram status: VRAM_BACKEND: '\\\\e\[31m' is not one of" -- \
    env VRAM_BACKEND="${esc}[31m" "$VRAM" status
escaped run_missing_command 127 "cannot run '\\\\e\[31mred'" -- "$VRAM" run --vram 1GiB -- "${esc}[31mred"
expect_lines run_attempt_line "^vram run: attempt 1: \\\\e\[31mred on GPU 0" 1

cp "$(dirname "$0")/latentsync_runs.csv" "$tmp/runs.csv"
escaped calibrate_wrote 0 "^wrote x\\\\e\[31m\.ini " -- \
    "$VRAM" calibrate --model latentsync --from "$tmp/runs.csv" --out "x${esc}[31m.ini"

printf '\033[31mhuge 1 30GiB 1s\n' >"$tmp/bad.trace"
escaped simulate_task_name 3 "^vram simulate: \\\\e\[31mhuge: needs 30\.0 GiB" -- "$VRAM" simulate "$tmp/bad.trace"
finish
