# SPDX-License-Identifier: MIT
# tests/sched/test_daemon_backfill.sh - backfill in the daemon, as the
# write-up tried it (issue 9): with A (15 GiB) running and B (15 GiB)
# waiting for it, C (2 GiB) starts at once beside them, since B keeps the
# room it will need when A ends; `vram queue` says why each waits, as
# Slurm does (Resources, Priority); `vram submit --time`; a ladder whose
# rung the command never uses is refused at submit.
. "$(dirname "$0")/../cli/lib.sh"
. "$VRAM_TOP/tests/daemon/daemon.sh"
start_daemon || { not_ok daemon_starts "$(tail -5 "$tmp/daemon.log")"; finish; }

a=$("$VRAM" submit --name A --vram 15GiB -- sleep 8)
wait_until 10 sh -c "'$VRAM' queue --json | grep -q '\"state\":\"running\"'" || not_ok a_runs "A did not start"
b=$("$VRAM" submit --name B --vram 15GiB -- true)
c=$("$VRAM" submit --name C --vram 2GiB -- true)
expect small_job_backfills 0 '' -- "$VRAM" wait "$c" --timeout 4
expect head_says_resources 0 'Resources: waiting for 15.0 GiB of GPU memory' -- "$VRAM" queue
d=$("$VRAM" submit --name D --vram 8GiB -- true)
wait_until 5 sh -c "'$VRAM' queue | grep -q 'Priority: a job ahead of it comes first'"
expect behind_says_priority 0 'Priority: a job ahead of it comes first \(it needs 8.0 GiB' -- "$VRAM" queue
"$VRAM" cancel "$a" >/dev/null 2>&1
expect all_finish 0 '' -- "$VRAM" wait "$b" "$d" --timeout 20

# --time: how long a job runs at most; a bad one is refused with the value.
expect time_given 0 '^[0-9]+$' -- "$VRAM" submit --vram 1GiB --time 90s -- true
timed=$(cat "$tmp/out")
if python3 -c "import sqlite3,sys; c=sqlite3.connect('file:$VRAM_DB?mode=ro', uri=True); sys.exit(c.execute('SELECT time_ms FROM jobs WHERE id=?', ($timed,)).fetchone()[0] != 90000)"
then ok time_is_stored; else not_ok time_is_stored "job $timed"; fi
expect bad_time 2 "--time: 'soon' is not a time limit" -- "$VRAM" submit --vram 1GiB --time soon -- true
expect unused_rung 2 "rung 2 would run the same command again: the command never uses 'enhancer'" -- \
    "$VRAM" submit --vram 1GiB --ladder "batch=8; enhancer=none" -- echo {batch}
finish
