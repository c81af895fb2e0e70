# SPDX-License-Identifier: MIT
# tests/cli/test_run_oom_kinds.sh - `vram run --ladder` retries on the next
# rung after every kind of out-of-memory in tests/runner/oom_messages.txt
# (the table's cases, with the lines real logs put around them), and does
# not retry when the last failure in the output is something else.
. "$(dirname "$0")/lib.sh"
mkdir -p "$tmp/state" "$tmp/cases"
export VRAM_BACKEND=sim VRAM_SIM="T4:14.7GiB:8.5GiB" VRAM_HISTORY=$tmp/history.db VRAM_INTERVAL=20ms VRAM_SIM_STATE=$tmp/state

python3 - "$VRAM_TOP/tests/runner/oom_messages.txt" "$tmp/cases" <<'PY'
import sys
name, out = None, None
for line in open(sys.argv[1]):
    if line.startswith("=== "):
        name, verdict = line.split()[1:3]
        out = open("%s/%s.%s" % (sys.argv[2], name, verdict), "w")
    elif out:
        out.write(line)
PY

n=0
for f in "$tmp"/cases/*; do
    case=$(basename "$f")
    name=${case%.*} verdict=${case##*.}
    n=$((n + 1))
    # Rung 1 prints the case's output and fails; rung 2 succeeds.
    if [ "$verdict" = oom ]; then
        expect "retries_after_$name" 0 'retrying on rung 2' -- \
            "$VRAM" run --vram 1GiB --ladder "x=1; x=2" -- sh -c 'if [ {x} = 1 ]; then cat "$0" >&2; exit 1; fi' "$f"
    else
        expect "no_retry_after_$name" 1 'attempt 1 failed with status 1' -- \
            "$VRAM" run --vram 1GiB --ladder "x=1; x=2" -- sh -c 'if [ {x} = 1 ]; then cat "$0" >&2; exit 1; fi' "$f"
        expect_lines "not_retried_$name" 'retrying' 0
    fi
done
if [ "$n" -ge 20 ]; then ok all_cases_ran; else not_ok all_cases_ran "only $n cases"; fi
# Under a memory-fraction cap the room is what was allowed less what PyTorch
# held, not the device's free (70.12 GiB in the torch 2 case).
expect fraction_room_torch2 0 'tried to allocate 2\.0 GiB with 419\.8 MiB left of the 7\.9 GiB allowed' -- \
    "$VRAM" run --vram 1GiB --ladder "x=1; x=2" -- sh -c 'if [ {x} = 1 ]; then cat "$0" >&2; exit 1; fi' "$tmp/cases/pytorch2-fraction.oom"
expect fraction_room_torch1 0 'tried to allocate 512\.0 MiB with 51\.2 MiB left of the 3\.5 GiB allowed' -- \
    "$VRAM" run --vram 1GiB --ladder "x=1; x=2" -- sh -c 'if [ {x} = 1 ]; then cat "$0" >&2; exit 1; fi' "$tmp/cases/pytorch1-fraction.oom"
expect no_fraction_says_free 0 'tried to allocate 22\.8 GiB with 12\.7 GiB free' -- \
    "$VRAM" run --vram 1GiB --ladder "x=1; x=2" -- sh -c 'if [ {x} = 1 ]; then cat "$0" >&2; exit 1; fi' "$tmp/cases/pytorch2.oom"
finish
