# SPDX-License-Identifier: MIT
# tests/cli/test_run.sh - `vram run`: admitted, started with its plan,
# watched, retried on the next rung after an out-of-memory, recorded; and
# `vram history`, `vram report`, `vram calibrate --from-history`.
. "$(dirname "$0")/lib.sh"
mkdir -p "$tmp/state"
export VRAM_BACKEND=sim VRAM_SIM="T4:14.7GiB:8.5GiB" VRAM_HISTORY=$tmp/history.db VRAM_INTERVAL=20ms VRAM_SIM_STATE=$tmp/state
alloc=$helpers/simalloc

history_json() { "$VRAM" history --json >"$tmp/h.json" 2>&1; }
py() { python3 - "$tmp/h.json" "$@"; }

# The write-up's case: an OOM on the first rung, the second fits.
expect oom_then_next_rung 0 'retrying on rung 2: size 8GiB -> 3GiB, budget 4.0 GiB -> 3.0 GiB' -- \
    "$VRAM" run --name oomjob --ladder "size=8GiB vram=4GiB; size=3GiB vram=3GiB" -- "$alloc" oom {size}
cp "$tmp/out" "$tmp/oom.out"
expect said_what_it_tried 0 'tried to allocate 8.0 GiB with 6.2 GiB free' -- cat "$tmp/oom.out"
history_json
if py <<'PY'
import json, sys
runs = [r for r in json.load(open(sys.argv[1]))["runs"] if r["job"] == "oomjob"]
assert [r["attempt"] for r in runs] == [2, 1], runs
assert runs[1]["outcome"] == "oom" and runs[1]["exit_status"] == 1, runs[1]
assert runs[1]["oom_tried_bytes"] == 8 << 30, runs[1]
assert runs[0]["outcome"] == "ok" and runs[0]["exit_status"] == 0
assert runs[0]["command"].endswith("oom 3GiB") and runs[1]["command"].endswith("oom 8GiB")
assert runs[0]["settings"] == {"size": "3GiB"} and runs[0]["estimate_bytes"] == 3 << 30
PY
then ok history_holds_both_attempts; else not_ok history_holds_both_attempts "$(cat "$tmp/h.json")"; fi

# The plan is in the environment, the device and the budget too.
expect environment 0 '' -- "$VRAM" run --vram 2GiB --set steps=30 -- sh -c \
    'echo "CVD=$CUDA_VISIBLE_DEVICES|ALLOC=$PYTORCH_CUDA_ALLOC_CONF|LEASE=$VRAM_LEASE|BUDGET=$VRAM_BUDGET_BYTES|STEPS={steps}"; echo "$VRAM_PLAN" > '"$tmp/plan.json"
if grep -Eq '^CVD=0\|ALLOC=expandable_segments:True[^|]*\|LEASE=[0-9]+\|BUDGET=2147483648\|STEPS=30$' "$tmp/out" &&
   python3 -c "import json,sys; d=json.load(open('$tmp/plan.json')); assert d['settings']['steps']=='30' and d['budget_bytes']==2<<30" 2>/dev/null
then ok environment_has_the_plan; else not_ok environment_has_the_plan "$(cat "$tmp/out" "$tmp/plan.json")"; fi
expect user_alloc_conf_wins 0 'ALLOC=max_split_size_mb:64$' -- env PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:64 \
    "$VRAM" run --vram 1GiB -- sh -c 'echo "ALLOC=$PYTORCH_CUDA_ALLOC_CONF"'

# With a model: planned, {resolution} and {steps} from the plan.
expect model_plan 0 'RES=[0-9]+x[0-9]+ STEPS=[0-9]+ TIER=[a-z-]+' -- env VRAM_HOST_RAM=256GiB "$VRAM" run --sim "A10:24GiB" --model hunyuanvideo-avatar --vram 10GiB \
    -- sh -c 'echo "RES={resolution} STEPS={steps} TIER=$(echo "$VRAM_PLAN" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"tier\"])")"'

# The exit status is the job's; a signal is 128 + it.
expect exit_status_passes 7 '' -- "$VRAM" run --vram 1GiB -- sh -c 'exit 7'
expect killed_by_signal 137 'was killed' -- "$VRAM" run --vram 1GiB -- sh -c 'kill -9 $$'
expect failure_is_not_oom 1 'attempt 1 failed with status 1' -- "$VRAM" run --vram 1GiB --ladder "x=1; x=2" -- sh -c 'echo "ValueError: bad frame {x}" >&2; exit 1'
expect_lines no_retry_without_oom 'retrying' 0

# Bad input and faults.
expect no_command 2 'no command' -- "$VRAM" run --vram 1GiB
expect empty_command 2 'the command after -- is empty' -- "$VRAM" run --vram 1GiB -- ""
expect missing_command 127 "cannot run 'no-such-program-vram'" -- "$VRAM" run --vram 1GiB -- no-such-program-vram
history_json
if py <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
assert r["outcome"] == "not-started" and r["exit_status"] == 127, r
PY
then ok missing_command_is_recorded; else not_ok missing_command_is_recorded "$(head -c 400 "$tmp/h.json")"; fi
expect no_such_device 2 'no device 7: there are 1' -- "$VRAM" run --vram 1GiB --device 7 -- true
expect size_without_unit 2 "'12' has no unit, so it would be 12 bytes: give a unit, e.g. 12GiB" -- \
    "$VRAM" run --vram 12 -- true
expect ladder_budget_twice 2 "budget \(1.0 GiB\) and its ladder's first rung \(vram=3.0 GiB\) disagree" -- \
    "$VRAM" run --vram 1GiB --ladder "a=1 vram=3GiB; a=2 vram=2GiB" -- true
expect ladder_not_cheaper 2 'does not get cheaper: rung 1 needs 2.0 GiB, rung 2 needs 4.0 GiB' -- \
    "$VRAM" run --ladder "b=1 vram=2GiB; b=2 vram=4GiB" -- true
expect too_big_for_any_device 3 '40.0 GiB.*13.2 GiB|13.2 GiB.*40.0 GiB' -- "$VRAM" run --vram 40GiB -- true
expect bad_size 2 "'6XB' is not a size" -- "$VRAM" run --vram 6XB -- true
expect unknown_template_key 2 "'\{batch\}' in the command has no value" -- "$VRAM" run --vram 1GiB -- echo {batch}
expect no_budget 2 'give --vram SIZE' -- "$VRAM" run -- true
expect bad_device 2 "--device: 'gpu0' is not auto or a device number" -- "$VRAM" run --vram 1GiB --device gpu0 -- true

# Not admitted in time: another program holds the card.
SIMALLOC_READY=$tmp/held "$alloc" hold 5GiB 3000 & holder=$!
wait_until 10 test -e "$tmp/held"
expect not_admitted_in_time 1 'was not admitted within 500 ms' -- env VRAM_SIM_STATE="$VRAM_SIM_STATE" \
    "$VRAM" run --vram 4GiB --wait 0.5 -- true
kill $holder 2>/dev/null; wait $holder 2>/dev/null

# A grandchild that keeps the GPU after its parent exits is followed.
expect grandchild_followed 0 'finished \(peak 2.0 GiB\)' -- "$VRAM" run --vram 3GiB -- "$alloc" fork-hold 2GiB 400

# A history that cannot be written: the job still runs and says so.
expect unwritable_history 0 'cannot be recorded' -- env VRAM_HISTORY=/proc/vram-no/history.db "$VRAM" run --vram 1GiB -- true
python3 - "$tmp/history.db" "$tmp/locked" <<'PY' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=0)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(4)
PY
locker=$!
wait_until 10 test -e "$tmp/locked"
expect locked_history 5 'could not record attempt 1 in the history: .*locked' -- "$VRAM" run --vram 1GiB -- sh -c 'exit 5'
wait $locker

# Interrupted while waiting for memory: it stops waiting at once.
"$VRAM" run --vram 12GiB -- true >"$tmp/out" 2>&1 & runner=$!
wait_for "$tmp/out" 'waiting for GPU memory' 10
kill -TERM $runner
wait $runner; rc=$?
if [ $rc -eq 1 ] && grep -q 'interrupted while waiting' "$tmp/out"; then ok interrupt_while_waiting; else not_ok interrupt_while_waiting "rc $rc: $(cat "$tmp/out")"; fi

# Ctrl-C: the job's group gets SIGTERM and the attempt ends as canceled.
"$VRAM" run --vram 1GiB -- sleep 30 >"$tmp/out" 2>&1 & runner=$!
wait_for "$tmp/out" 'attempt 1: sleep 30' 10
kill -INT $runner
wait $runner; rc=$?
if [ $rc -eq 143 ] && grep -q 'was canceled' "$tmp/out"; then ok ctrl_c_cancels; else not_ok ctrl_c_cancels "rc $rc: $(cat "$tmp/out")"; fi

# vram report: valid SVG, an axis in GiB, one line per run.
history_json
ids=$(python3 -c "import json; r=json.load(open('$tmp/h.json'))['runs']; print(' '.join(str(x['id']) for x in r if x['job']=='oomjob'))")
expect report 0 'wrote' -- "$VRAM" report $ids -o "$tmp/r.svg"
if python3 - "$tmp/r.svg" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg"
texts = " ".join(t.text or "" for t in root.iter(ns + "text"))
assert "GiB" in texts, texts
assert len(list(root.iter(ns + "polyline"))) == 2
PY
then ok report_is_svg_with_gib_axis_and_two_lines; else not_ok report_is_svg_with_gib_axis_and_two_lines "$(head -c 300 "$tmp/r.svg")"; fi
expect report_missing_run 2 'no run 99999' -- "$VRAM" report 99999 -o "$tmp/x.svg"
expect report_bad_arg 2 "'abc' is not a run number" -- "$VRAM" report abc

# Runs of a model feed its calibration.
for s in 20 30 40; do
    "$VRAM" run --quiet --sim "A10:24GiB" --wait 20 --model latentsync --vram 12GiB --set steps=$s -- "$alloc" hold 3GiB 150 >/dev/null 2>&1
done
expect calibrate_from_history 0 'calibrated latentsync from the run history \(3 rows\)' -- \
    "$VRAM" calibrate --model latentsync --from-history --dry-run
expect calibrate_history_empty 2 'no finished run of sadtalker' -- "$VRAM" calibrate --model sadtalker --from-history --dry-run
expect calibrate_both_sources 2 'not both' -- "$VRAM" calibrate --model sadtalker --from-history --from x.csv
# A job's end is noticed at once, not at the next sample: with an hour
# between samples, the run still ends before a 20 s watchdog does.
: >"$tmp/order"
(VRAM_INTERVAL=3600s "$VRAM" run --name quick --vram 1GiB -- sh -c 'exit 0' >"$tmp/quick.out" 2>&1
 echo "run ended $?" >>"$tmp/order") &
quick=$!
(sleep 20; echo watchdog >>"$tmp/order") &
dog=$!
while [ ! -s "$tmp/order" ]; do sleep 0.05; done
kill "$dog" 2>/dev/null; wait "$dog" 2>/dev/null
pkill -P "$quick" 2>/dev/null; wait "$quick" 2>/dev/null
if [ "$(head -1 "$tmp/order")" = "run ended 0" ]; then ok end_noticed_before_the_next_sample
else not_ok end_noticed_before_the_next_sample "$(cat "$tmp/order" "$tmp/quick.out")"; fi

# A command that chooses its GPU itself and holds memory on one its lease is
# not on is told so, once, naming both; one on its own GPU is not.
mkdir -p "$tmp/two"
expect elsewhere_said 0 'attempt 1: its processes hold 1\.0 GiB on GPU 1, where it has no lease \(its lease is on GPU 0' -- \
    env VRAM_SIM="A:24GiB,B:24GiB" VRAM_SIM_STATE="$tmp/two" "$VRAM" run --vram 2GiB --device 0 -- \
    env VRAM_DEVICE=1 "$alloc" hold 1GiB 1500
expect_lines elsewhere_said_once 'where it has no lease' 1
expect own_gpu_not_said 0 'finished \(peak 1\.0 GiB\)' -- \
    env VRAM_SIM="A:24GiB,B:24GiB" VRAM_SIM_STATE="$tmp/two" "$VRAM" run --vram 2GiB --device 1 -- "$alloc" hold 1GiB 1500
expect_lines own_gpu_nothing_elsewhere 'where it has no lease' 0
finish
