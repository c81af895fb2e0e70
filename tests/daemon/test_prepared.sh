# SPDX-License-Identifier: MIT
# tests/daemon/test_prepared.sh - the runners vramd starts ahead of a queued
# job's turn (daemon/jobs.c, prepare_runners): started and waiting at their
# gate, two at most; each runs its job exactly once when the turn comes; one
# whose job is canceled first, or whose vramd is killed, ends without
# running it, and the next vramd runs that job once.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"

expect gate_only_for_daemon_jobs 2 "--gate: only vramd's runners" -- "$VRAM" run --gate 3 --vram 1GiB -- true

start_daemon || exit 1
# Every state a job passes through in the store, as vramd writes it (0
# queued, 1 starting, 2 running): a trigger on the live queue logs each move.
sqlite3 "$VRAM_DB" "CREATE TABLE moves (job INTEGER, from_state INTEGER, to_state INTEGER);
    CREATE TRIGGER log_moves AFTER UPDATE OF state ON jobs WHEN OLD.state != NEW.state
    BEGIN INSERT INTO moves VALUES (NEW.id, OLD.state, NEW.state); END;" ||
    not_ok moves_logged "cannot add the trigger"
moves_of() { sqlite3 "$VRAM_DB" "SELECT group_concat(from_state || '>' || to_state, ' ') FROM
    (SELECT * FROM moves WHERE job = $1 ORDER BY rowid)" 2>&1; }
# The runner of job $1 waiting (or running) under this daemon: its pid.
runner_of() { ps -o pid=,args= --ppid "$daemon" 2>/dev/null | awk -v j="$1" '$0 ~ "--daemon-job " j " --gate 3 " { print $1 }'; }
waiting() { ps -o args= --ppid "$daemon" 2>/dev/null | grep -c -- '--gate 3 '; }
has_runner() { [ -n "$(runner_of "$1")" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
ran_count() { grep -cx "vramd-$1" "$tmp/ran" 2>/dev/null; }

# A holder of the card, then four jobs that must wait for it.
holder=$("$VRAM" submit --vram 21GiB -- sh -c "while [ ! -e $tmp/GO ]; do sleep 0.05; done")
wait_until 30 is_state "$holder" running || not_ok holder_runs "$("$VRAM" queue 2>&1)"
jobs=()
for _ in 1 2 3 4; do
    jobs+=("$("$VRAM" submit --vram 14GiB -- sh -c "echo \$VRAM_JOB >>$tmp/ran")")
done
a=${jobs[0]} b=${jobs[1]} c=${jobs[2]} e=${jobs[3]}
if wait_until 30 has_runner "$a" && wait_until 30 has_runner "$b"; then
    ok runners_started_ahead_for_the_next_two
else
    not_ok runners_started_ahead_for_the_next_two "$(runners)"
fi
sleep 0.3                           # a third would have been started by now
if [ -z "$(runner_of "$c")" ] && [ "$(waiting)" = 3 ]; then   # the holder's and two ahead
    ok no_more_than_two_ahead
else
    not_ok no_more_than_two_ahead "$(runners)"
fi
[ "$(state_of "$a")" = queued ] && ok job_stays_queued_while_its_runner_waits ||
    not_ok job_stays_queued_while_its_runner_waits "$(state_of "$a")"

# Canceled before its turn: its runner ends, having run nothing, and the
# next queued job gets one.
ra=$(runner_of "$a")
"$VRAM" cancel "$a" >/dev/null
if wait_until 30 gone "$ra" && wait_until 30 has_runner "$c"; then
    ok canceled_jobs_runner_ends_and_the_next_is_started
else
    not_ok canceled_jobs_runner_ends_and_the_next_is_started "$(runners)"
fi
[ "$(state_of "$a")" = canceled ] && ok canceled_job_is_canceled || not_ok canceled_job_is_canceled "$(state_of "$a")"

# The turns come: each job runs once, on the runner started for it.
rb=$(runner_of "$b")
touch "$tmp/GO"
expect all_end 0 '' -- "$VRAM" wait --all --timeout 60 --quiet
ran_by=$(sqlite3 "$VRAM_DB" "SELECT runner_pid FROM jobs WHERE id = $b" 2>&1)
if [ -n "$rb" ] && [ "$ran_by" = "$rb" ]; then ok the_runner_started_ahead_ran_it
else not_ok the_runner_started_ahead_ran_it "started ahead: pid '$rb'; ran by: '$ran_by'"; fi
for j in "$b" "$c" "$e"; do
    if [ "$(ran_count "$j")" = 1 ]; then ok "job_ran_once_$j"; else not_ok "job_ran_once_$j" "$(cat "$tmp/ran")"; fi
done
# Its runner had claimed it ahead: started and claimed in one write, queued
# to running; the holder's runner, forked at its turn, claimed it after.
[ "$(moves_of "$b")" = "0>2 2>3" ] && ok claimed_ahead_is_one_write_to_running ||
    not_ok claimed_ahead_is_one_write_to_running "moves of job $b: $(moves_of "$b")"
[ "$(moves_of "$holder")" = "0>1 1>2 2>3" ] && ok forked_at_its_turn_starts_then_runs ||
    not_ok forked_at_its_turn_starts_then_runs "moves of job $holder: $(moves_of "$holder")"
if [ "$(ran_count "$a")" = 0 ]; then ok canceled_job_never_ran; else not_ok canceled_job_never_ran "$(cat "$tmp/ran")"; fi

# vramd killed while a runner waits ahead: the runner ends (its gate reads
# end of file), and the next vramd runs the job exactly once.  First the
# last batch's runners leave (a parked one would take f under its own
# argv, and f would have no runner started ahead for it).
wait_until 30 no_runners || not_ok parked_runners_leave "$(runners)"
rm -f "$tmp/GO"
holder=$("$VRAM" submit --vram 21GiB -- sh -c "while [ ! -e $tmp/GO ]; do sleep 0.05; done")
wait_until 30 is_state "$holder" running || not_ok holder_runs_again "$("$VRAM" queue 2>&1)"
f=$("$VRAM" submit --vram 14GiB -- sh -c "echo \$VRAM_JOB >>$tmp/ran")
wait_until 30 has_runner "$f" || not_ok runner_ahead_before_kill "$(runners)"
rf=$(runner_of "$f")
kill -9 "$daemon"; wait "$daemon" 2>/dev/null; daemon=
if wait_until 30 gone "$rf"; then
    ok waiting_runner_ends_with_its_daemon
else
    not_ok waiting_runner_ends_with_its_daemon "pid $rf: $(ps -o args= -p "$rf")"
fi
[ "$(ran_count "$f")" = 0 ] && ok not_run_by_the_killed_daemons_runner ||
    not_ok not_run_by_the_killed_daemons_runner "$(cat "$tmp/ran")"
start_daemon || not_ok restart "$(tail -5 "$tmp/daemon.log")"
touch "$tmp/GO"
expect all_end_after_restart 0 '' -- "$VRAM" wait --all --timeout 60 --quiet
if [ "$(ran_count "$f")" = 1 ]; then ok job_ran_once_after_restart; else not_ok job_ran_once_after_restart "$(cat "$tmp/ran")"; fi
stop_daemon
finish
