# SPDX-License-Identifier: MIT
# tests/daemon/test_reuse_backfill.sh - runner reuse (test_reuse.sh) for a
# job its user's ended job lets in while it has no runner started ahead:
# the ended job's runner takes it, no new runner is started.  Here the
# runners started ahead (two at most, jobs.c PREPARED_MAX) are two large
# jobs' of another environment, blocked; a small job behind them of the
# ended job's user and environment backfills into the room the end left.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
start_daemon || exit 1

# 10 GiB held to the end; 8 GiB until GO: 3.6 GiB of the 21.6 vramd gives
# (24 GiB less its 10% margin) left.
holder=$("$VRAM" submit --vram 10GiB --time 1h -- sh -c "while [ ! -e $tmp/STOP ]; do sleep 0.05; done")
first=$("$VRAM" submit --vram 8GiB --time 1h -- \
    sh -c "echo \$PPID >$tmp/first; while [ ! -e $tmp/GO ]; do sleep 0.02; done")
wait_until 30 is_state "$first" running || not_ok first_runs "$("$VRAM" queue 2>&1)"
# Two of 20 GiB (another environment): blocked until the holder ends, their
# runners started ahead.
big1=$(env OTHER_ENV=1 "$VRAM" submit --vram 20GiB --time 1h -- true)
big2=$(env OTHER_ENV=1 "$VRAM" submit --vram 20GiB --time 1h -- true)
wait_until 10 sh -c "[ \$(ps -o args= --ppid $daemon | grep -c -- '--daemon-job \\($big1\\|$big2\\) ') = 2 ]" ||
    not_ok big_runners_ahead "$(ps -o pid=,args= --ppid "$daemon")"
# 5 GiB: no room now, room once the first job ends (11.6 free), and it
# ends (--time 10s) before the big ones can start (the holder: 1h).
small=$("$VRAM" submit --vram 5GiB --time 10s -- sh -c "echo \$PPID >$tmp/small")
sleep 0.5
is_state "$small" queued || not_ok small_waits "$("$VRAM" queue 2>&1)"
touch "$tmp/GO"
"$VRAM" wait "$small" --timeout 20 >/dev/null 2>&1 || not_ok small_runs "$("$VRAM" queue 2>&1)"
if [ -s "$tmp/small" ] && [ "$(cat "$tmp/small")" = "$(cat "$tmp/first")" ]; then
    ok ended_runner_takes_backfilled_job
else
    not_ok ended_runner_takes_backfilled_job "first ran under $(cat "$tmp/first"), the next under $(cat "$tmp/small" 2>&1)"
fi
touch "$tmp/STOP"
"$VRAM" wait "$big1" "$big2" --timeout 30 >/dev/null 2>&1
stop_daemon
finish
