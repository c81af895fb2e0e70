# SPDX-License-Identifier: MIT
# tests/daemon/test_job_record.sh - a daemon job is sized once and travels
# as one record: vramd stores its budget and tier with it, starts its runner
# as `vram run --daemon-job N` (nothing of the job on that command line), and
# the runner gets command, settings and budget with its claim.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"

start_daemon && ok daemon_starts || not_ok daemon_starts "see log"

# The job prints its {steps}, its budget and plan, and its runner's command line.
id=$("$VRAM" submit --model latentsync --set steps=7 --name recjob -- sh -c \
    'echo "steps={steps} budget=$VRAM_BUDGET_BYTES"; echo "plan=$VRAM_PLAN"; tr "\0" "\n" </proc/$PPID/cmdline >"$0.runner"' \
    "$tmp/job")
expect job_succeeds 0 '' -- "$VRAM" wait "$id" --timeout 30
log="$VRAM_DB.logs/$id.log"
expect setting_reaches_the_command 0 '^steps=7 ' -- cat "$log"

# What the store holds: the budget and tier it was sized at, once.
python3 - "$VRAM_DB" "$id" >"$tmp/row" <<'PY'
import sqlite3, sys
row = sqlite3.connect(sys.argv[1]).execute(
    "SELECT budget_bytes, tier, lease_bytes FROM jobs WHERE id = ?", (int(sys.argv[2]),)).fetchone()
print(*row)
PY
read -r budget tier lease <"$tmp/row"
if [ "${budget:-0}" -gt 0 ] && [ -n "$tier" ] && [ "$budget" = "$lease" ]; then ok store_holds_budget_and_tier
else not_ok store_holds_budget_and_tier "budget '$budget', tier '$tier', lease '$lease'"; fi
expect runner_has_the_stored_budget 0 "budget=$budget\$" -- grep '^steps=' "$log"
expect runner_plans_the_stored_tier 0 "\"tier\":\"$tier\"" -- grep '^plan=' "$log"

# The runner's command line carries the job's number, not the job.
if grep -qx -- '--daemon-job' "$tmp/job.runner" && grep -qx -- "$id" "$tmp/job.runner"; then ok runner_is_daemon_job
else not_ok runner_is_daemon_job "$(tr '\n' ' ' <"$tmp/job.runner")"; fi
if grep -Eqx -- '--(vram|set|model|ladder|name)|--|sh' "$tmp/job.runner"; then
    not_ok runner_line_has_no_job "$(tr '\n' ' ' <"$tmp/job.runner")"
else ok runner_line_has_no_job; fi

# A ladder with budgets on its rungs reaches the runner with the record.
id=$("$VRAM" submit --ladder "size=30GiB vram=3GiB; size=1GiB vram=2GiB" -- "$helpers/simalloc" oom {size})
expect ladder_job_retries 0 '' -- "$VRAM" wait "$id" --timeout 30
expect ladder_second_rung_ran 0 'retrying on rung 2: size 30GiB -> 1GiB, budget 3.0 GiB -> 2.0 GiB' -- \
    cat "$VRAM_DB.logs/$id.log"

# A model's job retries on its profile's next rung, planned by the runner
# from the record, with a smaller budget asked of vramd.
id=$("$VRAM" submit --model latentsync -- sh -c \
    'if [ "$VRAM_ATTEMPT" = 1 ]; then echo "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB" >&2; exit 1; fi; echo "attempt $VRAM_ATTEMPT"')
expect model_job_retries 0 '' -- "$VRAM" wait "$id" --timeout 30
expect model_job_next_rung 0 'retrying on rung 2: .*budget [0-9.]+ GiB -> [0-9.]+ GiB' -- cat "$VRAM_DB.logs/$id.log"
expect model_job_second_attempt_ran 0 '^attempt 2$' -- cat "$VRAM_DB.logs/$id.log"

# `vram run --daemon-job` takes nothing of the job from flags.
expect daemon_job_refuses_command 2 'the command comes from vramd' -- "$VRAM" run --daemon-job 5 -- true
expect daemon_job_refuses_budget 2 '--vram comes from vramd' -- "$VRAM" run --daemon-job 5 --vram 1GiB

stop_daemon
exit $((failures > 0))
