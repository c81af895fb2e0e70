# SPDX-License-Identifier: MIT
# tests/cli/test_simulate.sh - `vram simulate`: the mixed trace through the
# scheduler, the policies compared, traces with ladders and failures, and
# bad input.
. "$(dirname "$0")/lib.sh"

# Makespans are wall-clock time sped up, so a loaded machine stretches them:
# bench/sched holds vram to its target (within 10% of the bound); here the
# trace must run to the end, and the policies keep their order where the
# gap is wide.
expect builtin 0 '^vram +[0-9.]+s +[0-9.]+x +153 ' -- "$VRAM" simulate --speed 1000 --no-progress
expect builtin_bound 0 'lower bound: 103\.5 s' -- "$VRAM" simulate --speed 1000

# The three policies on the issue's trace: every task done under each, one
# at a time really one at a time and far behind.
"$VRAM" simulate --policy all --speed 500 --json >"$tmp/all.json" 2>&1
if python3 - "$tmp/all.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
runs = {r["policy"]: r for r in d["runs"]}
lb = d["lower_bound_s"]
assert abs(lb - 103.47) < 0.1, lb
v, f, s = runs["vram"]["makespan_s"], runs["fifo"]["makespan_s"], runs["serial"]["makespan_s"]
assert v * 2 < s and f * 2 < s, (v, f, s)
assert runs["vram"]["most_at_once"] > 1
print("# vram %.1f s, fifo %.1f s, one at a time %.1f s, bound %.1f s" % (v, f, s, lb))
assert runs["serial"]["most_at_once"] == 1
assert all(r["done"] == 153 for r in runs.values())
PY
then ok policies_compared; else not_ok policies_compared "$(cat "$tmp/all.json")"; fi

# The SadTalker card: three frames at once, never four.
printf 'frame 12 1.5GiB 2s\n' >"$tmp/frames.trace"
expect sadtalker_three 0 ' 3$' -- "$VRAM" simulate "$tmp/frames.trace" --sim "T4:14.7GiB:8.5GiB" --speed 200

# Ladders, out-of-memory, failures, fallbacks and the CPU all show up.
cat >"$tmp/rough.trace" <<'T'
# name   count size   duration  options
big        2   20GiB   2s  priority=1
enhance   40   2GiB    1s  ladder=1GiB,512MiB oom=0.3 fail=0.1
cpu-ok    10   8GiB    1s  cpu wait=0.1s
T
"$VRAM" simulate "$tmp/rough.trace" --speed 200 --json >"$tmp/rough.json" 2>&1
if python3 - "$tmp/rough.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
assert r["done"] + r["fell_back"] + r["failed"] == 52, r
assert r["retried"] > 0 and r["fell_back"] > 0, r
assert r["failed"] == 0, r       # every kind has the built-in fallback
PY
then ok rough_trace; else not_ok rough_trace "$(cat "$tmp/rough.json")"; fi

# Bad input: one line naming the value, exit 2; a task no card can take: 3.
expect bad_policy 2 "^vram simulate: --policy: 'fast' is not one of vram, fifo, serial, all$" -- "$VRAM" simulate --policy fast
expect bad_workers 2 "--workers: '0' is not a whole number" -- "$VRAM" simulate --workers 0
expect bad_speed 2 "--speed: 'lots'" -- "$VRAM" simulate --speed lots
expect missing_trace 2 "cannot read trace '/nonexistent.trace'" -- "$VRAM" simulate /nonexistent.trace
printf 'frame 3 1.5XB 2s\n' >"$tmp/bad.trace"
expect bad_size 2 "bad.trace:1: size '1.5XB': '1.5XB' is not a size" -- "$VRAM" simulate "$tmp/bad.trace"
printf '\n# ok\nframe 3 1GiB 2s oom=2\n' >"$tmp/bad.trace"
expect bad_odds 2 "bad.trace:3: odds '2' are not a number from 0 to 1" -- "$VRAM" simulate "$tmp/bad.trace"
printf 'frame three 1GiB 2s\n' >"$tmp/bad.trace"
expect bad_count 2 "count 'three'" -- "$VRAM" simulate "$tmp/bad.trace"
printf 'frame 1 1GiB\n' >"$tmp/bad.trace"
expect short_line 2 "needs NAME COUNT SIZE DURATION" -- "$VRAM" simulate "$tmp/bad.trace"
printf 'frame 1 1GiB 1s color=red\n' >"$tmp/bad.trace"
expect bad_key 2 "unknown key 'color'" -- "$VRAM" simulate "$tmp/bad.trace"
printf 'huge 1 30GiB 1s\n' >"$tmp/bad.trace"
expect too_big 3 "needs 30\.0 GiB, more than any device can take: the largest, GPU 0 \(Simulated GPU\), has 24\.0 GiB in total" -- "$VRAM" simulate "$tmp/bad.trace"
# A thousand year-long tasks: 2^64 virtual nanoseconds wrapped into a
# makespan under the lower bound; refused instead.
printf 'year 1000 20GiB 8760h\n' >"$tmp/bad.trace"
expect years_refused 2 "the trace's durations add up to more than 584 years" -- "$VRAM" simulate --virtual "$tmp/bad.trace"
# The 17th word on a line was dropped unread, whatever it said.
printf 'x 2 4GiB 1s%s color=red\n' "$(printf ' priority=1%.0s' 1 2 3 4 5 6 7 8 9 10 11 12)" >"$tmp/bad.trace"
expect seventeen_words 2 "bad.trace:1: x: more than 16 words on the line" -- "$VRAM" simulate --virtual "$tmp/bad.trace"
# A task of no time made a lower bound of 0 s, and the makespan "infx" it.
printf 'z 1 1GiB 0s\n' >"$tmp/bad.trace"
expect zero_duration 2 "bad.trace:1: duration '0s' is under a millisecond" -- "$VRAM" simulate "$tmp/bad.trace"
# A margin over the card's memory leaves nothing: it wrapped to 16 EiB "to
# use", and all 153 tasks ran at once on a 24 GiB card.
expect margin_over_card 3 "GPU 0 has no memory to use" -- "$VRAM" simulate --virtual --margin 30GiB
expect margin_all 3 "GPU 0 has no memory to use" -- "$VRAM" simulate --virtual --margin 100%
"$VRAM" simulate --policy fast >"$tmp/out" 2>&1
expect_lines one_line '.' 1
expect help 0 'NAME COUNT SIZE DURATION' -- "$VRAM" simulate --help
expect listed 0 'simulate' -- "$VRAM" --help
finish
