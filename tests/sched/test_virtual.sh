# SPDX-License-Identifier: MIT
# tests/sched/test_virtual.sh - `vram simulate --virtual`: the admission
# engine alone in virtual time, FIFO one at a time, vram without backfill
# and vram with backfill side by side against the lower bound (issue 9),
# and the 100,000-task trace with its video jobs at the head (issue 13).
# Virtual time is the same on any machine, so the figures are exact.
. "$(dirname "$0")/../cli/lib.sh"

expect mixed_side_by_side 0 '^vram with backfill +109\.0s +1\.053x +14$' -- "$VRAM" simulate --virtual
cp "$tmp/out" "$tmp/mixed.out"
expect mixed_fifo 0 '^vram, no backfill +130\.0s +1\.256x' -- cat "$tmp/mixed.out"
expect mixed_one 0 '^FIFO, one at a time +550\.0s' -- cat "$tmp/mixed.out"
expect mixed_bound 0 'lower bound: 103\.5 s' -- cat "$tmp/mixed.out"

"$VRAM" simulate --virtual --tasks 100000 --json >"$tmp/head.json" 2>&1
if python3 - "$tmp/head.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
runs = {r["policy"]: r for r in d["runs"]}
lb = d["lower_bound_s"]
assert d["tasks"] == 100000
assert runs["vram"]["makespan_s"] <= 1.06 * lb, (runs["vram"], lb)
assert runs["fifo"]["makespan_s"] > runs["vram"]["makespan_s"] * 1.1, runs
print("# 100,000 tasks, video jobs at the head: %.3fx the bound" % (runs["vram"]["makespan_s"] / lb))
PY
then ok head_100k_within_1_06; else not_ok head_100k_within_1_06 "$(cat "$tmp/head.json")"; fi

expect spread 0 '^vram with backfill .* 1\.03[0-9]x' -- "$VRAM" simulate --virtual --tasks 10000 --spread
expect tasks_needs_virtual 2 '--tasks and --spread go with --virtual' -- "$VRAM" simulate --tasks 10
printf 'frame 3 1GiB 2s\n' >"$tmp/t.trace"
expect tasks_or_trace 2 '--tasks scales the built-in trace' -- "$VRAM" simulate --virtual --tasks 10 "$tmp/t.trace"
expect one_card 2 '--virtual simulates one card; --sim gives 2' -- "$VRAM" simulate --virtual --sim "G:24GiB,G:24GiB"
expect own_trace 0 '^vram with backfill +2\.0s' -- "$VRAM" simulate --virtual "$tmp/t.trace"
finish
