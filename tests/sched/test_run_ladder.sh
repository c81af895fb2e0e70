# SPDX-License-Identifier: MIT
# tests/sched/test_run_ladder.sh - `vram run` climbing down its ladder, as
# a user meets it (issue 9): a rung not admitted within --wait steps down;
# no retry asks for more memory than the attempt that failed, for a text
# ladder and a profile's alike; a rung that would run the same command
# again is refused, naming the key the command does not use.
. "$(dirname "$0")/../cli/lib.sh"
mkdir -p "$tmp/state"
export VRAM_BACKEND=sim VRAM_SIM="A10:24GiB" VRAM_HISTORY=$tmp/history.db VRAM_INTERVAL=20ms VRAM_SIM_STATE=$tmp/state
alloc=$helpers/simalloc

# Another program holds 18 GiB of the 21.6 GiB: rung 1 (6 GiB) cannot be
# admitted within --wait, rung 2 (2 GiB) can, and runs.
SIMALLOC_READY=$tmp/held "$alloc" hold 18GiB 8000 & holder=$!
wait_until 10 test -e "$tmp/held"
expect wait_steps_down 0 'N=2$' -- "$VRAM" run --wait 0.5 --ladder "n=1 vram=6GiB; n=2 vram=2GiB" -- echo "N={n}"
cp "$tmp/out" "$tmp/wait.out"
expect_lines ran_once '^N=' 1
expect said_why 0 'rung 1 \(6.0 GiB\) was not admitted within 500 ms; trying rung 2' -- cat "$tmp/wait.out"
# Past the last rung it is still "not admitted" (exit 1), as before.
expect last_rung_times_out 1 'was not admitted within 500 ms' -- \
    "$VRAM" run --wait 0.5 --ladder "n=1 vram=8GiB; n=2 vram=6GiB" -- echo "N={n}"
kill $holder 2>/dev/null; wait $holder 2>/dev/null

# A profile's ladder after out-of-memory: every retry asks for at most what
# the attempt before it had (the write-up: "memory lightweight -> beefy,
# budget 14.3 GiB -> 17.8 GiB").
cat >"$tmp/oom.sh" <<'SH'
#!/bin/sh
echo "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 24.00 GiB of which 1.00 GiB is free." >&2
exit 1
SH
chmod +x "$tmp/oom.sh"
for model in wan2.2-ti2v-5b sadtalker latentsync; do
    "$VRAM" run --name "p-$model" --model "$model" -- "$tmp/oom.sh" >"$tmp/out" 2>&1
    "$VRAM" history --json >"$tmp/h.json" 2>&1
    if python3 - "$tmp/h.json" "p-$model" <<'PY'
import json, sys
runs = sorted((r for r in json.load(open(sys.argv[1]))["runs"] if r["job"] == sys.argv[2]), key=lambda r: r["attempt"])
assert len(runs) >= 3, runs
est = [r["estimate_bytes"] for r in runs]
assert all(b <= a for a, b in zip(est, est[1:])), est
PY
    then ok "profile_ladder_never_grows_$model"
    else not_ok "profile_ladder_never_grows_$model" "$(grep -E 'retrying|budget' "$tmp/out" | head -c 900)"; fi
done
# oom.sh uses no {key}: each of latentsync's 5 retries says that only VRAM_PLAN
# carries the change.
expect_lines same_command_said 'runs the same command as the one before: what rung [0-9]+ changes reaches the job only through VRAM_PLAN' 5

# A rung that changes nothing the command uses is refused before anything runs.
expect unused_key_refused 2 "rung 2 would run the same command again: the command never uses 'enhancer'" -- \
    "$VRAM" run --vram 1GiB --ladder "batch=8; enhancer=none" -- echo "--batch {batch}"
expect same_value_refused 2 'rung 2 would run the same command again' -- \
    "$VRAM" run --vram 1GiB --ladder "batch=8; batch=8" -- echo "--batch {batch}"
expect used_keys_run 0 'batch 8$' -- "$VRAM" run --vram 1GiB --ladder "batch=8; batch=1" -- echo "batch {batch}"
finish
