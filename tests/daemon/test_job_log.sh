# SPDX-License-Identifier: MIT
# tests/daemon/test_job_log.sh - the queue's daily conveniences (issue 15):
# `vram log JOB [--follow]` (through vramd, for the job's owner only, escaped
# on a terminal), `vram submit --after/--afterok` (waits shown as
# Dependency; a failed dependency cancels an afterok job, saying which;
# unknown ids refused) and `--output FILE` (written as the job's user;
# refused when it cannot be).
. "$(dirname "$0")/../cli/lib.sh"
other=
if [ "$(id -u)" = 0 ] && command -v useradd >/dev/null && command -v setpriv >/dev/null; then
    name=vraml$$$RANDOM
    for _ in 1 2 3 4 5; do useradd -M -U -s /bin/sh "$name" 2>/dev/null && { other=$name; break; }; sleep 0.2; done
fi
# A user without a home (their logs lie beside the queue): the one made, or
# nobody where none could be made.
homeless=$other
[ -z "$homeless" ] && [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1 && homeless=nobody
[ -n "$homeless" ] && export VRAM_SOCKET_GROUP=$(id -gn "$homeless") && chmod 711 "$tmp"
. "$(dirname "$0")/daemon.sh"
trap 'stop_daemon; [ -n "$other" ] && userdel "$other" 2>/dev/null; [ -n "$other" ] && groupdel "$other" 2>/dev/null; rm -rf "$tmp"' EXIT
as_other() { setpriv --reuid="$other" --regid="$(id -g "$other")" --clear-groups -- "$@"; }
as_homeless() { setpriv --reuid="$homeless" --regid="$(id -g "$homeless")" --clear-groups -- "$@"; }
cd "$tmp" || exit 1

start_daemon && ok daemon_starts || not_ok daemon_starts "see log"

# ---- vram log ----
gate=$tmp/gate
job=$("$VRAM" submit --vram 1GiB -- sh -c 'printf "first\033[31mred\a\n"; echo on-stderr >&2
    while [ ! -e '"$gate"' ]; do sleep 0.05; done; echo last')
"$VRAM" log --follow "$job" >"$tmp/follow.out" 2>&1 &
follower=$!
wait_for "$tmp/follow.out" 'on-stderr' 20 || not_ok follow_streams "no output while it ran: $(cat "$tmp/follow.out")"
if kill -0 $follower 2>/dev/null; then ok follow_waits_while_it_runs; else not_ok follow_waits_while_it_runs "it exited"; fi
touch "$gate"
wait $follower
rc=$?
if [ $rc = 0 ] && grep -q '^last$' "$tmp/follow.out" && grep -q 'attempt 1 finished' "$tmp/follow.out"; then
    ok follow_ends_with_the_job
else not_ok follow_ends_with_the_job "rc $rc: $(tail -c 400 "$tmp/follow.out")"; fi
# Between rounds --follow sleeps on inotify (the log file), not on a timer:
# it watches the file and never calls nanosleep while the job is quiet.
if command -v strace >/dev/null; then
    gate_follow=$tmp/gate_follow
    job2=$("$VRAM" submit --vram 1GiB -- sh -c 'echo one; while [ ! -e '"$gate_follow"' ]; do sleep 0.05; done; echo two')
    strace -f -qq -o "$tmp/follow.strace" -e trace=inotify_add_watch,poll,clock_nanosleep,nanosleep \
        "$VRAM" log --follow "$job2" >"$tmp/follow2.out" 2>&1 &
    tracer=$!
    wait_for "$tmp/follow2.out" '^one$' 20
    wait_for "$tmp/follow.strace" 'nanosleep|poll\(\[\{fd=[0-9]+, events=POLLIN\}\], 1, 1000' 20
    touch "$gate_follow"
    wait $tracer
    if grep -q '^two$' "$tmp/follow2.out" && grep -Eq 'inotify_add_watch\(.*IN_MODIFY.*= [0-9]+$' "$tmp/follow.strace" \
       && ! grep -q nanosleep "$tmp/follow.strace"; then ok follow_sleeps_on_inotify
    else not_ok follow_sleeps_on_inotify "$(grep -E 'inotify|nanosleep' "$tmp/follow.strace" | head -5; tail -c 200 "$tmp/follow2.out")"; fi
else
    echo "skip - $file/follow_sleeps_on_inotify: strace is not installed"
fi
expect log_prints_stdout_and_stderr 0 '^on-stderr$' -- "$VRAM" log "$job"
# Into a pipe the bytes are the job's own; on a terminal they are shown escaped.
if "$VRAM" log "$job" | grep -q "$(printf 'first\033\[31mred\a')"; then ok log_raw_into_a_pipe
else not_ok log_raw_into_a_pipe "$("$VRAM" log "$job" | od -c | head -3)"; fi
SHELL=/bin/sh script -qec "exec '$VRAM' log $job" /dev/null >"$tmp/tty.out" 2>&1
if grep -qF 'first\e[31mred\x07' "$tmp/tty.out" && ! grep -q "$(printf '\033')" "$tmp/tty.out"; then
    ok log_escaped_on_a_terminal
else not_ok log_escaped_on_a_terminal "$(od -c "$tmp/tty.out" | head -4)"; fi
# A log replaced by a link to a file of root's is not read through it.
planted=$("$VRAM" submit --vram 1GiB -- true)
"$VRAM" wait "$planted" --timeout 30 >/dev/null 2>&1
logfile=$("$VRAM" queue --json | python3 -c 'import json, sys
print([j for j in json.load(sys.stdin)["jobs"] if j["id"] == int(sys.argv[1])][0]["log"])' "$planted")
echo "root-secret" >"$tmp/secret" && chmod 600 "$tmp/secret"
if [ -f "$logfile" ] && ln -sf "$tmp/secret" "$logfile"; then
    expect planted_link_not_followed 1 "job $planted's log" -- "$VRAM" log "$planted"
    if grep -q root-secret "$tmp/out"; then not_ok planted_link_not_read "the secret was printed"; else ok planted_link_not_read; fi
else
    not_ok planted_link_not_followed "no log at '$logfile'"
fi
# The runner's own lines in the log quote the command escaped: even into a
# pipe, a command it could not start shows no raw ESC.
bad_cmd=$("$VRAM" submit --vram 1GiB -- "$(printf '\033[31mnothere')")
"$VRAM" wait "$bad_cmd" --timeout 30 >/dev/null 2>&1
"$VRAM" log "$bad_cmd" >"$tmp/bad_cmd.out" 2>&1
if grep -qF "cannot run '\e[31mnothere'" "$tmp/bad_cmd.out" && ! grep -q "$(printf '\033')" "$tmp/bad_cmd.out"; then
    ok log_runner_lines_escaped
else not_ok log_runner_lines_escaped "$(od -c "$tmp/bad_cmd.out" | head -6)"; fi
expect log_unknown_job 2 'no such job' -- "$VRAM" log 99999
expect log_bad_id 2 "'x1' is not a job id" -- "$VRAM" log x1
if [ -n "$other" ]; then
    expect log_of_another_user_refused 1 "job $job belongs to root .*; $other .*may not read its output" -- \
        as_other "$VRAM" log "$job"
    mkdir -m 777 "$tmp/theirs"
    ojob=$(cd "$tmp/theirs" && as_other env VRAM_SIM_STATE="$tmp/theirs" "$VRAM" submit --vram 1GiB -- sh -c 'echo mine; id -un')
    "$VRAM" wait "$ojob" --timeout 30 >/dev/null 2>&1
    expect log_of_own_job_as_other_user 0 "^$other\$" -- as_other "$VRAM" log "$ojob"
    expect output_refused_where_user_cannot_write 2 "--output '$tmp/state/x': cannot write it: Permission denied" -- \
        as_other "$VRAM" submit --vram 1GiB --output "$tmp/state/x" -- true
else
    printf 'skip - %s/%s: cannot make a second user here (needs root and useradd)\n' "$file" other_user_checks
fi

# A log beside the queue left by an earlier queue's job of the same number
# (the queue made anew, its folder of logs kept) is not handed on: the next
# job of that number, another user's, starts an empty log (it appended to
# the old one, given to them, and `vram log` showed them the old output).
if [ -n "$homeless" ]; then
    mkdir -p -m 777 "$tmp/homeless"
    last=$("$VRAM" submit --vram 1GiB -- true)
    "$VRAM" wait "$last" --timeout 30 >/dev/null 2>&1
    echo "secret of an earlier queue" >"$tmp/queue.db.logs/$((last + 1)).log"
    hjob=$(cd "$tmp/homeless" && as_homeless env VRAM_SIM_STATE="$tmp/homeless" "$VRAM" submit --vram 1GiB -- sh -c 'echo mine')
    "$VRAM" wait "$hjob" --timeout 30 >/dev/null 2>&1
    as_homeless "$VRAM" log "$hjob" >"$tmp/hlog.out" 2>&1
    if [ "$hjob" = $((last + 1)) ] && grep -q '^mine$' "$tmp/hlog.out" && ! grep -q secret "$tmp/hlog.out"; then
        ok old_log_beside_the_queue_not_handed_on
    else not_ok old_log_beside_the_queue_not_handed_on "job $hjob after $last: $(head -c 400 "$tmp/hlog.out")"; fi
else
    printf 'skip - %s/%s: no user without a home here (needs root, and useradd or nobody)\n' "$file" old_log_beside_the_queue_not_handed_on
fi

# ---- dependencies ----
gate2=$tmp/gate2
first=$("$VRAM" submit --vram 1GiB -- sh -c 'while [ ! -e '"$gate2"' ]; do sleep 0.05; done')
fails=$("$VRAM" submit --vram 1GiB -- sh -c 'exit 4')
after=$("$VRAM" submit --vram 1GiB --after "$first" -- true)
afterok_bad=$("$VRAM" submit --vram 1GiB --afterok "$fails" -- true)
after_bad=$("$VRAM" submit --vram 1GiB --after "$fails" -- true)
both=$("$VRAM" submit --vram 1GiB --afterok "$first" --after "$after,$after_bad" -- true)
wait_until 20 sh -c "'$VRAM' queue | grep -q 'waits for job $first to end'" || true
expect after_waits_with_reason 0 "^ +Dependency: waits for job $first to end$" -- "$VRAM" queue
"$VRAM" wait "$fails" "$after_bad" "$afterok_bad" --timeout 30 >/dev/null 2>&1
"$VRAM" queue --json >"$tmp/q1.json"
touch "$gate2"
"$VRAM" wait "$first" "$after" "$both" --timeout 30 >/dev/null 2>&1
"$VRAM" queue --json >"$tmp/q2.json"
if python3 - "$tmp/q1.json" "$tmp/q2.json" "$first" "$fails" "$after" "$afterok_bad" "$after_bad" "$both" <<'PY'
import json, sys
q1 = {j["id"]: j for j in json.load(open(sys.argv[1]))["jobs"]}
q2 = {j["id"]: j for j in json.load(open(sys.argv[2]))["jobs"]}
first, fails, after, afterok_bad, after_bad, both = map(int, sys.argv[3:9])
assert q1[after]["state"] == "queued" and q1[after]["reason"] == "Dependency: waits for job %d to end" % first, q1[after]
assert q1[both]["state"] == "queued" and q1[both]["reason"].startswith("Dependency: waits for job"), q1[both]
assert q1[after_bad]["state"] == "succeeded", q1[after_bad]          # --after: however it ended
bad = q1[afterok_bad]
assert bad["state"] == "canceled" and bad["started_unix_ms"] is None, bad
assert bad["reason"].startswith("dependency failed: job %d failed" % fails), bad
assert q2[after]["state"] == "succeeded" and q2[after]["started_unix_ms"] >= q2[first]["ended_unix_ms"], (q2[after], q2[first])
assert q2[both]["state"] == "succeeded", q2[both]
PY
then ok dependencies_wait_run_and_cancel; else not_ok dependencies_wait_run_and_cancel "$(head -c 1500 "$tmp/q1.json")"; fi
# A job waiting for another waits across a restart of vramd, and goes when it ends.
gate3=$tmp/gate3
held=$("$VRAM" submit --vram 1GiB -- sh -c 'while [ ! -e '"$gate3"' ]; do sleep 0.05; done')
waiter=$("$VRAM" submit --vram 1GiB --afterok "$held" -- true)
wait_until 20 sh -c "'$VRAM' queue --json --state running | grep -q '\"id\":$held,'" || true
stop_daemon
start_daemon || not_ok daemon_restarts "see log"
expect dependency_kept_across_restart 0 "^ +Dependency: waits for job $held to succeed$" -- "$VRAM" queue
touch "$gate3"
expect dependent_runs_after_restart 0 '' -- "$VRAM" wait "$held" "$waiter" --timeout 30
expect after_unknown_job_refused 2 'not queued: --after 99999: vramd has no job 99999' -- \
    "$VRAM" submit --vram 1GiB --after 99999 -- true
expect afterok_bad_id_refused 2 "--afterok: 'soon' is not a job id" -- "$VRAM" submit --vram 1GiB --afterok soon -- true
# A CSV batch: --after/--afterok hold every row, a row's 'after', 'afterok'
# and 'output' columns are its own; --output (one file) is refused for a batch.
expect output_with_csv_refused 2 "--output is one job's file, not a batch's: give each row its own in an 'output' column" -- \
    "$VRAM" submit --csv /dev/null --output x.txt
gate4=$tmp/gate4
hold=$("$VRAM" submit --vram 1GiB -- sh -c 'while [ ! -e '"$gate4"' ]; do sleep 0.05; done')
printf 'name,vram,after,output,command\nb1,1GiB,,b1.txt,echo one\nb2,1GiB,{prev},b2.txt,echo two\n' | \
    sed "s/{prev}/$hold/" >"$tmp/deps.csv"
"$VRAM" submit --csv "$tmp/deps.csv" --afterok "$hold" --json >"$tmp/batch.json" 2>"$tmp/batch.err"
wait_until 20 sh -c "'$VRAM' queue | grep -c 'Dependency: waits for job $hold to' | grep -qx 2" || true
"$VRAM" queue --json >"$tmp/q3.json"
touch "$gate4"
"$VRAM" wait --timeout 30 $(python3 -c 'import json,sys; print(" ".join(str(j["job"]) for j in json.load(open(sys.argv[1]))["jobs"]))' "$tmp/batch.json") >/dev/null 2>&1
if python3 - "$tmp/batch.json" "$tmp/q3.json" "$hold" <<'PY'
import json, sys
batch = json.load(open(sys.argv[1]))["jobs"]
q = {j["id"]: j for j in json.load(open(sys.argv[2]))["jobs"]}
hold = int(sys.argv[3])
assert len(batch) == 2, batch
for row in batch:
    j = q[row["job"]]
    assert j["state"] == "queued" and j["reason"].startswith("Dependency: waits for job %d to" % hold), j
PY
then ok csv_after_holds_every_row; else not_ok csv_after_holds_every_row "$(cat "$tmp/batch.err"; head -c 800 "$tmp/q3.json")"; fi
if grep -qx one "$tmp/b1.txt" 2>/dev/null && grep -qx two "$tmp/b2.txt" 2>/dev/null; then ok csv_output_column_per_row
else not_ok csv_output_column_per_row "$(cat "$tmp/b1.txt" "$tmp/b2.txt" 2>&1)"; fi
printf 'vram,afterok,command\n1GiB,soon,true\n' >"$tmp/baddep.csv"
expect csv_bad_after_named 2 "baddep.csv:2: afterok: 'soon' is not a job id" -- "$VRAM" submit --csv "$tmp/baddep.csv"

# ---- --output ----
out=$("$VRAM" submit --vram 1GiB --output out.txt -- sh -c 'echo to-the-file; echo err-too >&2')
"$VRAM" wait "$out" --timeout 30 >/dev/null 2>&1
if grep -q '^to-the-file$' "$tmp/out.txt" && grep -q '^err-too$' "$tmp/out.txt"; then ok output_file_written
else not_ok output_file_written "$(cat "$tmp/out.txt" 2>&1 | head -5)"; fi
expect log_reads_the_output_file 0 '^err-too$' -- "$VRAM" log "$out"
expect output_unwritable_refused 2 "--output '/proc/nope/x': cannot write it" -- \
    "$VRAM" submit --vram 1GiB --output /proc/nope/x -- true
stop_daemon
exit $((failures > 0))
