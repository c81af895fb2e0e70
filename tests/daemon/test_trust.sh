#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/daemon/test_trust.sh - vramd's trust boundaries (issue 10), one case
# or more per finding: one daemon per queue, a queue only its user can read,
# user text never run nor printed raw, cancel and time limits that stop
# every process a job started.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
alloc=$helpers/simalloc
# What a cancel or a time limit stops gets 1 s before SIGKILL, not 5: the
# daemon's flag, which its runners get from it (the jobs' own environment
# does not say it), and `vram run`'s setting where one runs alone.
start_daemon --kill-wait 1s || { not_ok daemon_starts "see $tmp/daemon.log"; finish; }

# A second user, made for this test and removed after it (where users can
# be made: root, useradd); $other is empty where they cannot.
other=
if [ "$(id -u)" = 0 ] && command -v useradd >/dev/null && command -v setpriv >/dev/null; then
    name=vramt$$$RANDOM
    for _ in 1 2 3 4 5; do useradd -M -U -d "$tmp/ohome" -s /bin/sh "$name" 2>/dev/null && { other=$name; break; }; sleep 0.2; done
fi
trap 'stop_daemon; [ -n "$other" ] && userdel "$other" 2>/dev/null; [ -n "$other" ] && groupdel "$other" 2>/dev/null; rm -rf "$tmp"' EXIT
no_other="skip - $file/%s: cannot make a second user here (needs root and useradd)\n"
# as_other COMMAND...: runs it as the second user.
as_other() { setpriv --reuid="$other" --regid="$(id -g "$other")" --clear-groups -- "$@"; }

# ---- 4: one daemon per queue --------------------------------------------------------
# A second daemon on the same db, on another socket, is refused with the
# first one's pid, and leaves nothing behind.
expect second_daemon_same_db_refused 1 "another vramd \\(pid $daemon\\) already runs on the queue" -- \
    timeout 10 env VRAM_SOCKET="$tmp/other.sock" VRAM_HTTP=127.0.0.1:0 "$VRAM" serve
if [ -e "$tmp/other.sock" ]; then not_ok second_daemon_leaves_no_socket "$tmp/other.sock is left"
else ok second_daemon_leaves_no_socket; fi

# ---- 3: the queue and its WAL are the daemon user's alone ----------------------------
"$VRAM" submit --vram 1GiB -- true >/dev/null
bad=$(find "$tmp" -maxdepth 1 -name 'queue.db*' -perm /077 -printf '%f %m\n')
if [ -z "$bad" ] && [ -e "$tmp/queue.db-wal" ]; then ok queue_files_0600
else not_ok queue_files_0600 "open to others: ${bad:-no WAL?} ($(ls -l "$tmp" | tr '\n' ' '))"; fi
# A job's environment is kept only until it has ended (it held tokens).
envjob=$(HF_TOKEN=hf_secret_at_rest "$VRAM" submit --vram 1GiB -- true)
"$VRAM" wait "$envjob" --timeout 20 >/dev/null 2>&1
kept=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select env from jobs where id = ?", (int(sys.argv[2]),)).fetchone()[0])' "$VRAM_DB" "$envjob" 2>&1)
case $kept in
*hf_secret_at_rest*) not_ok ended_jobs_environment_dropped "still in the queue: $(printf '%s' "$kept" | head -c 120)" ;;
'{}') ok ended_jobs_environment_dropped ;;
*) not_ok ended_jobs_environment_dropped "env is '$(printf '%s' "$kept" | head -c 120)'" ;;
esac
# A queue in a folder others may write is refused, naming the folder.
mkdir -p "$tmp/shared" && chmod 1777 "$tmp/shared"
expect queue_in_shared_folder_refused 1 "others may write in the queue's folder $tmp/shared" -- \
    timeout 10 env VRAM_SOCKET="$tmp/s2.sock" VRAM_DB="$tmp/shared/queue.db" "$VRAM" serve
# An existing queue left readable is made 0600 at start.
mkdir -m 700 "$tmp/q3"
sqlite3 "$tmp/q3/queue.db" 'create table x(a)' 2>/dev/null || : >"$tmp/q3/queue.db"
chmod 644 "$tmp/q3/queue.db"
env VRAM_SOCKET="$tmp/s3.sock" VRAM_DB="$tmp/q3/queue.db" "$VRAM" serve >"$tmp/d3.log" 2>&1 &
d3=$!
wait_until 10 env VRAM_SOCKET="$tmp/s3.sock" "$VRAM" queue
kill -TERM $d3 2>/dev/null; wait $d3 2>/dev/null
mode=$(stat -c %a "$tmp/q3/queue.db")
if [ "$mode" = 600 ]; then ok old_queue_made_private; else not_ok old_queue_made_private "mode $mode"; fi

# ---- 6: user text is data ----------------------------------------------------------
# A CSV value with shell syntax reaches the program as one word and runs
# nothing, whether {key} stands bare, in "..." or in '...'.
mkdir -p "$tmp/work"
cat >"$tmp/inject.csv" <<'CSV'
command,vram,prompt,name
"printf '%s|' {prompt} ""{prompt}"" '{prompt}' > out.txt",1GiB,"a cat; id > f; $(touch g); `touch h`",injected
CSV
job=$(cd "$tmp/work" && "$VRAM" submit --csv "$tmp/inject.csv" 2>/dev/null)
"$VRAM" wait "$job" --timeout 30 >/dev/null 2>&1
if [ -e "$tmp/work/f" ] || [ -e "$tmp/work/g" ] || [ -e "$tmp/work/h" ]; then
    not_ok csv_value_not_run "the value ran: $(ls "$tmp/work" | tr '\n' ' ')"
else ok csv_value_not_run; fi
want='a cat; id > f; $(touch g); `touch h`'
if [ "$(cat "$tmp/work/out.txt" 2>/dev/null)" = "$want|$want|$want|" ]; then ok csv_value_is_one_word
else not_ok csv_value_is_one_word "got '$(cat "$tmp/work/out.txt" 2>&1)'"; fi
# Names and commands with terminal escapes are shown escaped, never raw.
"$VRAM" submit --vram 1GiB --name "$(printf 'x\033[2J\033[Hforged\r\302\233y')" -- true >/dev/null
"$VRAM" queue >"$tmp/q.txt" 2>&1
if grep -q "$(printf '\033')" "$tmp/q.txt" || grep -q "$(printf '\r')" "$tmp/q.txt" || grep -q "$(printf '\302\233')" "$tmp/q.txt"; then
    not_ok queue_escapes_names "raw control characters in: $(od -c "$tmp/q.txt" | head -5)"
elif grep -Fq 'x\e[2J\e[Hforged\r\xc2\x9by' "$tmp/q.txt"; then ok queue_escapes_names
else not_ok queue_escapes_names "not shown escaped: $(cat "$tmp/q.txt")"; fi
# Error messages that carry user text are escaped too.
expect error_escapes_text 2 'unknown model .x\\e\[31mred' -- "$VRAM" estimate --model "$(printf 'x\033[31mred')"
if grep -q "$(printf '\033')" "$tmp/out"; then not_ok error_has_no_raw_escape "$(od -c "$tmp/out" | head -3)"
else ok error_has_no_raw_escape; fi
# A request id holding a newline is refused, and the reply is one line.
python3 "$(dirname "$0")/sockclient.py" "$VRAM_SOCKET" raw '{"op":"hello","id":"a\nb"}
' >"$tmp/id.out" 2>&1
if [ "$(wc -l <"$tmp/id.out")" = 1 ] && grep -q "must be a short string without quotes, backslashes or control" "$tmp/id.out"; then
    ok id_with_newline_one_reply_line
else not_ok id_with_newline_one_reply_line "$(cat "$tmp/id.out")"; fi
# A model name is never a path, at submit either.
expect model_name_not_a_path 2 "is not a model name" -- \
    "$VRAM" submit --model ../../../../etc/passwd -- true

# ---- 5: cancel and time limits that hold ------------------------------------------------
# state JOB: the job's state as the daemon lists it.
state() { "$VRAM" queue --json 2>/dev/null | python3 -c 'import json, sys
for j in json.load(sys.stdin)["jobs"]:
    if j["id"] == '"$1"': print(j["state"], j["outcome"])'; }
# alive TAG: whether a process whose command line holds TAG lives.
# A process whose command line starts with $1 (the sleep itself, not the
# sh -c that names it).
alive() { pgrep -f "^$1" >/dev/null; }
for how in cgroup tree; do
    # A command that exits leaving a child: the child is stopped before the
    # job ends, and the job is not "succeeded" while it runs.
    tag=30$RANDOM
    job=$(VRAM_CONTAIN=$how "$VRAM" submit --vram 1GiB -- sh -c "sleep 1$tag & exit 0")
    "$VRAM" wait "$job" --timeout 20 >/dev/null 2>&1
    if alive "sleep 1$tag"; then not_ok "${how}_left_child_stopped" "sleep 1$tag still runs; job: $(state "$job")"
    else ok "${how}_left_child_stopped"; fi
    # A child that called setsid (and a grandchild it left) is stopped by cancel,
    # and the job ends only once they are gone.
    job=$(VRAM_CONTAIN=$how "$VRAM" submit --vram 1GiB -- sh -c "(setsid sh -c 'sleep 2$tag & sleep 3$tag') & sleep 4$tag")
    wait_until 20 alive "sleep 3$tag"
    "$VRAM" cancel "$job" >/dev/null 2>&1
    wait_until 20 sh -c "'$VRAM' queue --json | grep -q '\"id\":$job,[^}]*\"state\":\"canceled\"'"
    st=$(state "$job")
    if alive "sleep [234]$tag"; then not_ok "${how}_cancel_stops_setsid_children" "still running: $(pgrep -af "sleep [234]$tag" | tr '\n' ' '); job: $st"
    elif [ "${st%% *}" != canceled ]; then not_ok "${how}_cancel_stops_setsid_children" "job is '$st'"
    else ok "${how}_cancel_stops_setsid_children"; fi
    # The same job, its runner killed first: vramd follows what it left,
    # and a cancel still stops all of it, setsid children too (they ran
    # on, and the job stayed "running" with its lease).
    job=$(VRAM_CONTAIN=$how "$VRAM" submit --vram 1GiB -- sh -c "(setsid sh -c 'sleep 2$tag & sleep 3$tag') & sleep 4$tag")
    wait_until 20 alive "sleep 3$tag"
    kill -9 "$(pgrep -f -- "--daemon-job $job " | head -1)" 2>/dev/null
    wait_for "$tmp/daemon.log" "job $job lost its runner" 10
    "$VRAM" cancel "$job" >/dev/null 2>&1
    wait_until 20 sh -c "'$VRAM' queue --json | grep -q '\"id\":$job,[^}]*\"state\":\"canceled\"'"
    st=$(state "$job")
    if alive "sleep [234]$tag"; then not_ok "${how}_cancel_without_runner_stops_all" "still running: $(pgrep -af "sleep [234]$tag" | tr '\n' ' '); job: $st"
    elif [ "${st%% *}" != canceled ]; then not_ok "${how}_cancel_without_runner_stops_all" "job is '$st': $(grep "job $job" "$tmp/daemon.log" | tail -3)"
    else ok "${how}_cancel_without_runner_stops_all"; fi
    # vram run --time: SIGTERM to all, SIGKILL after the grace for one that
    # ignores it; the run ends once they are gone.
    VRAM_CONTAIN=$how VRAM_KILL_WAIT=1s "$VRAM" run --vram 1GiB --time 1s -- \
        sh -c "(setsid sh -c 'trap \"\" TERM; sleep 5$tag') & sleep 6$tag" >"$tmp/time.out" 2>&1
    rc=$?
    if alive "sleep [56]$tag"; then not_ok "${how}_time_limit_stops_all" "still running: $(cat "$tmp/time.out")"
    elif ! grep -q 'stopped at its time limit' "$tmp/time.out"; then not_ok "${how}_time_limit_stops_all" "rc $rc: $(cat "$tmp/time.out")"
    else ok "${how}_time_limit_stops_all"; fi
    # vram submit --time: the same, through the daemon; the job fails with
    # outcome timeout once every process is gone.
    job=$(VRAM_CONTAIN=$how "$VRAM" submit --vram 1GiB --time 1s -- \
          sh -c "(setsid sh -c 'trap \"\" TERM; sleep 7$tag') & sleep 8$tag")
    "$VRAM" wait "$job" --timeout 30 >/dev/null 2>&1
    st=$(state "$job")
    if alive "sleep [78]$tag"; then not_ok "${how}_submit_time_limit_stops_all" "still running; job: $st"
    elif [ "$st" != "failed timeout" ]; then not_ok "${how}_submit_time_limit_stops_all" "job is '$st'"
    else ok "${how}_submit_time_limit_stops_all"; fi
    # Its runner gave them vramd's --kill-wait, and said so.
    if "$VRAM" log "$job" 2>&1 | grep -q 'reached its time limit (1 s): stopping every process it started (SIGTERM, SIGKILL after 1.0 s)'
    then ok "${how}_runner_takes_vramds_kill_wait"
    else not_ok "${how}_runner_takes_vramds_kill_wait" "$("$VRAM" log "$job" 2>&1 | tail -3)"; fi
    # A child that called setsid and holds GPU memory after the command
    # exits is followed to its end (measured, not stopped): the run is not
    # over while it holds the memory.
    expect "${how}_setsid_gpu_holder_followed" 0 'finished \(peak 1.0 GiB\)' -- \
        env VRAM_CONTAIN=$how "$VRAM" run --vram 2GiB -- sh -c "setsid '$alloc' hold 1GiB 800 & exit 0"
    for p in $(pgrep -f "sleep [1-8]$tag"); do kill -9 "$p"; done
done
# A time limit holds with the job's runner gone: vramd stops what it left.
tag=31$RANDOM
job=$(VRAM_CONTAIN=tree "$VRAM" submit --vram 1GiB --time 2s -- sh -c "(setsid sh -c 'trap \"\" TERM; sleep 7$tag') & sleep 8$tag")
wait_until 20 alive "sleep 7$tag"
kill -9 "$(pgrep -f -- "--daemon-job $job " | head -1)" 2>/dev/null
"$VRAM" wait "$job" --timeout 30 >/dev/null 2>&1
st=$(state "$job")
if alive "sleep [78]$tag"; then not_ok orphan_time_limit_stops_all "still running; job: $st"
elif [ "$st" != "failed timeout" ]; then not_ok orphan_time_limit_stops_all "job is '$st': $(grep "job $job" "$tmp/daemon.log" | tail -3)"
else ok orphan_time_limit_stops_all; fi
for p in $(pgrep -f "sleep [78]$tag"); do kill -9 "$p"; done
# A job submitted from inside a job is not the outer job's: cancelling the
# outer one, its runner gone, leaves the inner job and its runner alone.
job=$(VRAM_CONTAIN=tree "$VRAM" submit --vram 1GiB -- sh -c "'$VRAM' submit --vram 1GiB -- sleep 9$tag >'$tmp/inner.id'; sleep 4$tag")
wait_until 20 alive "sleep 9$tag"
wait_until 20 alive "sleep 4$tag"
wait_until 20 test -s "$tmp/inner.id"
inner=$(cat "$tmp/inner.id")
kill -9 "$(pgrep -f -- "--daemon-job $job " | head -1)" 2>/dev/null
wait_for "$tmp/daemon.log" "job $job lost its runner" 10
"$VRAM" cancel "$job" >/dev/null 2>&1
wait_until 20 sh -c "'$VRAM' queue --json | grep -q '\"id\":$job,[^}]*\"state\":\"canceled\"'"
if alive "sleep 4$tag"; then not_ok orphan_cancel_spares_inner_job "the outer job's sleep still runs"
elif ! alive "sleep 9$tag" || [ "$(state "$inner")" != "running None" ]; then
    not_ok orphan_cancel_spares_inner_job "inner job $inner is '$(state "$inner")'"
else ok orphan_cancel_spares_inner_job; fi
"$VRAM" cancel "$inner" >/dev/null 2>&1
"$VRAM" wait "$inner" --timeout 20 >/dev/null 2>&1
for p in $(pgrep -f "sleep [49]$tag"); do kill -9 "$p"; done

# ---- 2: runner-only operations, from the runner only ---------------------------------------
sc() { python3 "$(dirname "$0")/sockclient.py" "$VRAM_SOCKET" call "$1"; }
job=$("$VRAM" submit --vram 8GiB -- sleep 30)
wait_until 20 sh -c "'$VRAM' queue | grep -Eq '^ *$job +running'"
runner=$(pgrep -f -- "--daemon-job $job" | head -1)
expect impostor_job_ended_refused 0 '"error":"VRAM_EPERM".*only the runner vramd started for job' -- \
    sc '{"op":"job-ended","job":'"$job"',"exit_status":0,"outcome":"ok","peak":0}'
expect impostor_job_rung_refused 0 '"error":"VRAM_EPERM"' -- sc '{"op":"job-rung","job":'"$job"',"vram":1}'
expect impostor_job_claim_refused 0 '"error":"VRAM_EPERM"' -- \
    sc '{"op":"job-claim","job":'"$job"',"pid":'"${runner:-1}"'}'
expect impostor_job_progress_refused 0 '"error":"VRAM_EPERM"' -- sc '{"op":"job-progress","job":'"$job"',"progress":0.5}'
expect impostor_job_owner_refused 0 '"error":"VRAM_EPERM"' -- sc '{"op":"owner","job":'"$job"',"pgid":1}'
expect job_still_running_after_impostors 0 "^ *$job +running +0 +1 .* 8.0 GiB" -- "$VRAM" queue

# ---- 1: a job is its submitter's; a daemon not run as root takes its own user's jobs ----
if [ -n "$other" ]; then
    # A second daemon whose socket the other user's group may use.
    chmod 711 "$tmp"
    mkdir -m 711 "$tmp/pub"
    env VRAM_SOCKET="$tmp/pub/s.sock" VRAM_SOCKET_GROUP="$other" VRAM_DB="$tmp/pubq/q.db" \
        "$VRAM" serve >"$tmp/pub.log" 2>&1 &
    pubd=$!
    wait_until 10 env VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" queue
    mkdir -m 700 "$tmp/ohome" && chown "$other:$(id -g "$other")" "$tmp/ohome"
    cp "$(dirname "$0")/sockclient.py" "$tmp/sockclient.py" && chmod 644 "$tmp/sockclient.py"
    mkdir -m 777 "$tmp/subs"
    # The subscribe stream: another user hears that root's job ran, not
    # what it ran; root hears it whole.
    as_other /usr/bin/python3 "$tmp/sockclient.py" "$tmp/pub/s.sock" subscribe "$tmp/subs/other" >"$tmp/sub-other.out" 2>&1 &
    sub1=$!
    python3 "$tmp/sockclient.py" "$tmp/pub/s.sock" subscribe "$tmp/subs/root" >"$tmp/sub-root.out" 2>&1 &
    sub2=$!
    wait_until 10 test -e "$tmp/subs/other" -a -e "$tmp/subs/root"
    sjob=$(VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" submit --vram 1GiB -- sh -c 'true topsecret-sub')
    wait $sub1 $sub2 2>/dev/null
    if grep -q topsecret "$tmp/sub-other.out"; then not_ok other_user_subscribe_hides_command "$(grep topsecret "$tmp/sub-other.out" | head -2)"
    elif ! grep -q "\"id\":$sjob,[^}]*\"command\":\"(another user's job)\"" "$tmp/sub-other.out"; then
        not_ok other_user_subscribe_hides_command "no summary of job $sjob heard: $(head -c 600 "$tmp/sub-other.out")"
    elif grep -q "\"id\":$sjob,[^}]*\"log\":\"" "$tmp/sub-other.out"; then not_ok other_user_subscribe_hides_command "the log path was heard"
    else ok other_user_subscribe_hides_command; fi
    if grep -q "\"id\":$sjob,[^}]*topsecret-sub" "$tmp/sub-root.out"; then ok owner_subscribe_hears_command
    else not_ok owner_subscribe_hears_command "$(head -c 600 "$tmp/sub-root.out")"; fi
    # The dashboard: the same, by the kernel's word of who is at the other
    # end of the loopback connection (the token's holder sees all).
    purl=$(grep -o 'dashboard http://[0-9.:]*/' "$tmp/pub.log" | tail -1 | cut -d' ' -f2)
    as_other curl -s -m 5 "${purl}api/jobs" >"$tmp/dash-other.json"
    curl -s -m 5 "${purl}api/jobs" >"$tmp/dash-root.json"
    if grep -q topsecret "$tmp/dash-other.json"; then not_ok other_user_dashboard_hides_command "$(head -c 300 "$tmp/dash-other.json")"
    elif ! grep -q "\"id\":$sjob,[^}]*\"command\":\"(another user's job)\"" "$tmp/dash-other.json"; then
        not_ok other_user_dashboard_hides_command "no summary of job $sjob: $(head -c 300 "$tmp/dash-other.json")"
    elif grep -q topsecret "$tmp/dash-root.json"; then ok other_user_dashboard_hides_command
    else not_ok other_user_dashboard_hides_command "root does not see it either: $(head -c 300 "$tmp/dash-root.json")"; fi
    rjob=$(VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" submit --vram 1GiB -- sleep 30)
    expect other_user_cancel_refused 1 "job $rjob belongs to root .*; $other .*may not cancel it" -- \
        as_other env VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" cancel "$rjob"
    expect other_user_sees_no_command 0 "\"id\":$rjob,[^}]*\"command\":\"\(another user's job\)\"" -- \
        as_other env VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" queue --json
    expect other_user_sees_no_log 0 "\"id\":$rjob,[^}]*\"log\":null" -- \
        as_other /usr/bin/python3 "$tmp/sockclient.py" "$tmp/pub/s.sock" call '{"op":"show","job":'"$rjob"'}'
    expect owner_cancel_accepted 0 '' -- env VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" cancel "$rjob"
    # A root daemon runs the other user's job as that user, in their folder;
    # it cannot read root's files.
    mkdir -m 777 "$tmp/pubout" "$tmp/ostate"
    echo secret >"$tmp/pubout/root-only" && chmod 600 "$tmp/pubout/root-only"
    ojob=$(cd "$tmp/pubout" && as_other env HOME=/root USER=root LOGNAME=root SHELL=/bin/false \
           VRAM_SOCKET="$tmp/pub/s.sock" VRAM_SIM_STATE="$tmp/ostate" \
           "$VRAM" submit --vram 1GiB -- sh -c 'id -u >uid; cat root-only >stolen 2>/dev/null; echo "$HOME $USER $LOGNAME $SHELL" >home; echo log-line-of-job')
    env VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" wait "$ojob" --timeout 30 >/dev/null 2>&1
    oshow=$(as_other /usr/bin/python3 "$tmp/sockclient.py" "$tmp/pub/s.sock" call '{"op":"show","job":'"$ojob"'}')
    olog=$(printf '%s' "$oshow" | python3 -c 'import json, sys; print(json.load(sys.stdin)["job"]["log"] or "")' 2>/dev/null)
    if [ "$(cat "$tmp/pubout/uid" 2>/dev/null)" = "$(id -u "$other")" ] && [ ! -s "$tmp/pubout/stolen" ]; then
        ok job_runs_as_its_submitter
    else not_ok job_runs_as_its_submitter "uid '$(cat "$tmp/pubout/uid" 2>&1)', stolen '$(cat "$tmp/pubout/stolen" 2>&1)'; $(tail -3 "$olog" 2>&1) $(tail -3 "$tmp/pub.log")"; fi
    # Its HOME, USER, LOGNAME and SHELL are its submitter's account's, not
    # root's nor what the submit said.
    if [ "$(cat "$tmp/pubout/home" 2>/dev/null)" = "$tmp/ohome $other $other /bin/sh" ]; then ok job_gets_submitters_home_and_user
    else not_ok job_gets_submitters_home_and_user "got '$(cat "$tmp/pubout/home" 2>&1)'"; fi
    # Its log is the submitter's, in their folder: they read it, no one else
    # may (0600 in a 0700 folder of theirs), and its owner is told where.
    case $olog in
    "$tmp/ohome/.local/state/vram/jobs/"*) ;;
    *) olog= ;;
    esac
    if [ -z "$olog" ]; then not_ok submitters_log_is_theirs "show says '$oshow'"
    elif ! as_other grep -q log-line-of-job "$olog"; then not_ok submitters_log_is_theirs "the submitter cannot read $olog: $(ls -l "$olog" 2>&1)"
    elif [ "$(stat -c '%U %a' "$olog")" != "$other 600" ] || [ "$(stat -c '%U %a' "$(dirname "$olog")")" != "$other 700" ]; then
        not_ok submitters_log_is_theirs "$(stat -c '%n %U %a' "$olog" "$(dirname "$olog")" | tr '\n' ' ')"
    else ok submitters_log_is_theirs; fi
    # vramd killed while a job run as its submitter ends: the runner cannot
    # write root's queue, so it leaves the end in its end file, and the
    # next vramd records it (it was recorded lost, or run again).
    ejob=$(cd "$tmp/pubout" && as_other env VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" submit --vram 1GiB -- sh -c 'sleep 2; exit 3')
    wait_until 20 sh -c "env VRAM_SOCKET='$tmp/pub/s.sock' '$VRAM' queue | grep -Eq '^ *$ejob +running'"
    sleep 0.5                       # its process group reaches the disk
    kill -9 $pubd; wait $pubd 2>/dev/null
    wait_until 20 sh -c "! pgrep -f -- '--daemon-job $ejob ' >/dev/null"
    env VRAM_SOCKET="$tmp/pub/s.sock" VRAM_SOCKET_GROUP="$other" VRAM_DB="$tmp/pubq/q.db" \
        "$VRAM" serve >>"$tmp/pub.log" 2>&1 &
    pubd=$!
    wait_until 10 env VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" queue
    est=$(env VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" queue --json | python3 -c 'import json, sys
for j in json.load(sys.stdin)["jobs"]:
    if j["id"] == '"$ejob"': print(j["state"], j["outcome"], j["exit_status"])')
    if [ "$est" = "failed failed 3" ]; then ok end_of_submitters_job_kept_without_vramd
    else not_ok end_of_submitters_job_kept_without_vramd "job $ejob is '$est': $(grep "job $ejob" "$tmp/pub.log" | tail -3)"; fi
    # A submitter without a home of their own logs beside the queue, in a
    # folder of root's they cannot enter: vramd hands the runner its end
    # file open, so with vramd gone the end is kept all the same (it was
    # lost, the job recorded lost), and the job never runs a second time.
    mv "$tmp/ohome" "$tmp/ohome.away"
    hjob=$(cd "$tmp/pubout" && as_other env VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" submit --vram 1GiB -- sh -c 'echo ran >>ran-homeless; ls /proc/$$/fd >fds-homeless; sleep 2; exit 3')
    wait_until 20 sh -c "env VRAM_SOCKET='$tmp/pub/s.sock' '$VRAM' queue | grep -Eq '^ *$hjob +running'"
    sleep 0.5                       # its process group reaches the disk
    kill -9 $pubd; wait $pubd 2>/dev/null
    wait_until 20 sh -c "! pgrep -f -- '--daemon-job $hjob ' >/dev/null"
    env VRAM_SOCKET="$tmp/pub/s.sock" VRAM_SOCKET_GROUP="$other" VRAM_DB="$tmp/pubq/q.db" \
        "$VRAM" serve >>"$tmp/pub.log" 2>&1 &
    pubd=$!
    wait_until 10 env VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" queue
    sleep 1
    hst=$(env VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" queue --json | python3 -c 'import json, sys
for j in json.load(sys.stdin)["jobs"]:
    if j["id"] == '"$hjob"': print(j["state"], j["outcome"], j["exit_status"])')
    if [ "$hst" = "failed failed 3" ] && [ "$(wc -l <"$tmp/pubout/ran-homeless")" = 1 ]; then ok homeless_submitters_end_kept_without_vramd
    else not_ok homeless_submitters_end_kept_without_vramd "job $hjob is '$hst', ran $(wc -l <"$tmp/pubout/ran-homeless" 2>&1) times"; fi
    if grep -qx 4 "$tmp/pubout/fds-homeless" 2>/dev/null || [ ! -s "$tmp/pubout/fds-homeless" ]; then
        not_ok homeless_end_file_not_the_jobs "the job's descriptors: $(tr '\n' ' ' <"$tmp/pubout/fds-homeless" 2>&1)"
    else ok homeless_end_file_not_the_jobs; fi
    mv "$tmp/ohome.away" "$tmp/ohome"
    # A uid the root daemon cannot become (no account) is refused at submit,
    # named, and nothing is queued.
    nouid=$((54000 + RANDOM % 1000))
    while getent passwd "$nouid" >/dev/null; do nouid=$((nouid + 1)); done
    expect submitter_without_account_refused 1 "cannot run a job as uid $nouid: no such user" -- \
        setpriv --reuid="$nouid" --regid="$(id -g "$other")" --clear-groups -- \
        env VRAM_SOCKET="$tmp/pub/s.sock" "$VRAM" submit --vram 1GiB -- true
    kill -TERM $pubd; wait $pubd 2>/dev/null
    # A daemon run by the other user: root's job would run as that user, so
    # it is refused, unless the daemon says --group-jobs yes.
    mkdir -m 700 "$tmp/od" && chown "$other" "$tmp/od"
    odaemon() { setpriv --reuid="$other" --regid="$(id -g "$other")" --clear-groups -- env -u HOME VRAM_SOCKET="$tmp/od/s.sock" VRAM_DB="$tmp/od/q.db" VRAM_TOKEN_FILE="$tmp/od/token" \
                VRAM_SIM_STATE="$tmp/od" "$@" "$VRAM" serve >>"$tmp/od.log" 2>&1 & }
    odaemon; od=$!
    export VRAM_DAEMON_USER=$other     # root trusts that user's daemon, as said
    wait_until 10 env VRAM_SOCKET="$tmp/od/s.sock" "$VRAM" queue
    expect nonroot_daemon_refuses_other_users_job 1 "takes jobs only from that user: a job of root \(uid 0\) would run as $other" -- \
        env VRAM_SOCKET="$tmp/od/s.sock" "$VRAM" submit --vram 1GiB -- true
    kill -TERM $od; wait $od 2>/dev/null
    odaemon VRAM_GROUP_JOBS=yes; od=$!
    wait_until 10 env VRAM_SOCKET="$tmp/od/s.sock" "$VRAM" queue
    expect group_jobs_yes_takes_them 0 '^[0-9]+$' -- env VRAM_SOCKET="$tmp/od/s.sock" "$VRAM" submit --vram 1GiB -- true
    kill -TERM $od; wait $od 2>/dev/null
    unset VRAM_DAEMON_USER
    # ---- 3: a squatted socket hears nothing ----
    # The other user listens on the path a root client was pointed at, in a
    # shared folder: the client refuses before sending its environment.
    mkdir -m 1777 "$tmp/sq"
    setpriv --reuid="$other" --regid="$(id -g "$other")" --clear-groups -- /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
open(sys.argv[2], "w").close()
got = b""
while True:
    c, _ = s.accept(); c.settimeout(2)
    try:
        while True:
            b = c.recv(65536)
            if not b: break
            got += b
            open(sys.argv[2], "wb").write(got)
    except OSError: pass
' "$tmp/sq/s.sock" "$tmp/sq/heard" &
squat=$!
    wait_until 10 test -e "$tmp/sq/heard"
    expect squatted_socket_refused 1 "the socket $tmp/sq/s.sock belongs to uid $(id -u "$other"), not to you or root" -- \
        env VRAM_SOCKET="$tmp/sq/s.sock" HF_TOKEN=hf_secret "$VRAM" submit --vram 1GiB -- true
    if [ -s "$tmp/sq/heard" ]; then not_ok squatter_heard_nothing "it got: $(head -c 200 "$tmp/sq/heard")"
    else ok squatter_heard_nothing; fi
    kill $squat 2>/dev/null; wait $squat 2>/dev/null
else
    for t in other_user_subscribe_hides_command owner_subscribe_hears_command other_user_dashboard_hides_command \
             other_user_sees_no_log job_gets_submitters_home_and_user submitters_log_is_theirs end_of_submitters_job_kept_without_vramd \
             homeless_submitters_end_kept_without_vramd homeless_end_file_not_the_jobs submitter_without_account_refused other_user_cancel_refused other_user_sees_no_command owner_cancel_accepted job_runs_as_its_submitter nonroot_daemon_refuses_other_users_job \
             group_jobs_yes_takes_them squatted_socket_refused squatter_heard_nothing; do
        printf "$no_other" $t; done
fi

# ---- 7: a job claimed whose process group never reached the disk is not run again ---------
# Its runner had its command and is gone; the command may have started (and
# may run on, where nothing follows it): recorded lost, never queued again.
mkdir -m 700 "$tmp/pg"
pgserve() { env VRAM_SOCKET="$tmp/pg/s.sock" VRAM_DB="$tmp/pg/q.db" "$VRAM" serve >>"$tmp/pg.log" 2>&1 & pgd=$!
            wait_until 10 env VRAM_SOCKET="$tmp/pg/s.sock" "$VRAM" queue; }
pgserve
pj=$(VRAM_SOCKET="$tmp/pg/s.sock" "$VRAM" submit --vram 1GiB -- true)
VRAM_SOCKET="$tmp/pg/s.sock" "$VRAM" wait "$pj" --timeout 20 >/dev/null 2>&1
kill -TERM $pgd; wait $pgd 2>/dev/null
gone=$(sh -c 'echo $$')
python3 - "$tmp/pg/q.db" "$pj" "$gone" "$tmp/pg/ran" <<'PY'
import json, sqlite3, sys
db, job, pid, ran = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = sqlite3.connect(db)
c.execute("update jobs set state = 2, argv = ?, runner_pid = ?, runner_start = 1, job_pgid = 0, outcome = '',"
          " ended_ms = 0, exit_status = 0, attempts = 1 where id = ?", (json.dumps(["touch", ran]), pid, job))
c.commit()
PY
pgserve
wait_until 10 sh -c "env VRAM_SOCKET='$tmp/pg/s.sock' '$VRAM' queue --json | grep -q '\"running\":0,\"succeeded\"\\|\"id\":$pj,[^}]*\"state\":\"\\(failed\\|succeeded\\)\"'"
sleep 0.5
pst=$(env VRAM_SOCKET="$tmp/pg/s.sock" "$VRAM" queue --json | python3 -c 'import json, sys
for j in json.load(sys.stdin)["jobs"]:
    if j["id"] == '"$pj"': print(j["state"], j["outcome"])')
if [ -e "$tmp/pg/ran" ]; then not_ok claimed_job_without_pgid_not_run_again "it ran again; job is '$pst'"
elif [ "$pst" != "failed lost" ]; then not_ok claimed_job_without_pgid_not_run_again "job is '$pst'"
else ok claimed_job_without_pgid_not_run_again; fi
kill -TERM $pgd; wait $pgd 2>/dev/null

# ---- 7: an idempotency key: a retried submit makes no second job ----------------------------
k1=$("$VRAM" submit --vram 1GiB --key retry-1 -- true)
k2=$("$VRAM" submit --vram 1GiB --key retry-1 -- true)
k3=$("$VRAM" submit --vram 1GiB --key retry-2 -- true)
if [ -n "$k1" ] && [ "$k1" = "$k2" ] && [ "$k3" != "$k1" ]; then ok submit_key_idempotent
else not_ok submit_key_idempotent "ids '$k1' '$k2' '$k3'"; fi
printf 'command,vram,key\ntrue,1GiB,retry-1\ntrue,1GiB,row-2\n' >"$tmp/keys.csv"
"$VRAM" submit --csv "$tmp/keys.csv" >"$tmp/keys.out" 2>/dev/null
if [ "$(head -1 "$tmp/keys.out")" = "$k1" ]; then ok csv_key_column_idempotent
else not_ok csv_key_column_idempotent "$(cat "$tmp/keys.out") (first job $k1)"; fi
expect bad_key_refused 2 "'key' is 1 to 64 of" -- "$VRAM" submit --vram 1GiB --key 'a b' -- true

# ---- 8: key floods and clients that never read --------------------------------------------
# Two clients send 64 KiB requests of 8,000 distinct keys, ten each; a
# third's hello is answered at once all the same (it took 8 s when every
# key was compared with all before it).
python3 - "$VRAM_SOCKET" >"$tmp/flood.out" 2>&1 <<'PY'
import json, socket, sys, threading, time
path = sys.argv[1]
b36 = lambda i: (b36(i // 36) if i >= 36 else "") + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i % 36]
keys = ",".join('"%s":1' % b36(i) for i in range(8000))     # 64,000 bytes: under the line limit
line = ('{"op":"hello",' + keys + '}\n').encode()
def flood():
    s = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile("rb")
    for _ in range(10):
        s.sendall(line)
        if not f.readline():
            print("flood refused unread"); return
threads = [threading.Thread(target=flood) for _ in range(2)]
for t in threads: t.start()
time.sleep(0.2)
s = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile("rb")
worst = 0
for _ in range(5):
    t0 = time.monotonic(); s.sendall(b'{"op":"hello"}\n'); f.readline()
    worst = max(worst, time.monotonic() - t0)
for t in threads: t.join()
print("worst_hello_ms %d" % (worst * 1000))
PY
read -r _ worst <"$tmp/flood.out"
if [ "${worst:-99999}" -lt 500 ]; then ok key_flood_does_not_stall_others
else not_ok key_flood_does_not_stall_others "$(cat "$tmp/flood.out")"; fi

# Eight clients ask for the list of 2,000 jobs forty times each and never
# read: the daemon stops answering them once a MiB waits for each, rather
# than holding every reply (it grew from 24 to 665 MiB).
hold=$("$VRAM" submit --vram 20GiB -- sleep 300)
python3 "$(dirname "$0")/sockclient.py" "$VRAM_SOCKET" submit-many 2000 10GiB true >/dev/null
rss() { awk '/VmRSS/ {print int($2 / 1024)}' /proc/$daemon/status; }
before=$(rss)
python3 - "$VRAM_SOCKET" <<'PY' &
import socket, sys, time
conns = []
for _ in range(8):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.setblocking(False)
    try:
        s.sendall(b'{"op":"list","limit":10000}\n' * 40)
    except BlockingIOError:
        pass
    conns.append(s)
time.sleep(8)
PY
greedy=$!
sleep 4
after=$(rss)
expect others_answered_beside_greedy_readers 0 '' -- "$VRAM" queue --limit 1
kill $greedy 2>/dev/null; wait $greedy 2>/dev/null
if [ $((after - before)) -lt 100 ]; then ok unread_replies_bounded
else not_ok unread_replies_bounded "the daemon grew from $before to $after MiB"; fi
# The 2,000 waiting jobs stay behind in that queue; the next cases get a new one.
"$VRAM" cancel "$hold" >/dev/null 2>&1
"$VRAM" wait "$hold" --timeout 20 >/dev/null 2>&1
stop_daemon
export VRAM_DB=$tmp/queue2.db
start_daemon || not_ok daemon_restarts "see $tmp/daemon.log"

# ---- 9: corrupt or unusable state, said at start ----------------------------------------
# A row with a state out of range (it overflowed a counter array), a row
# with NULL columns (it crashed the start), a read-only queue (it started
# and then refused every submit).
mkdir -m 700 "$tmp/bad"
serve_bad() { timeout 20 env VRAM_SOCKET="$tmp/bad/s.sock" VRAM_DB="$tmp/bad/$1" "$VRAM" serve; }
timeout 20 env VRAM_SOCKET="$tmp/bad/s.sock" VRAM_DB="$tmp/bad/state.db" "$VRAM" serve >"$tmp/bad.log" 2>&1 &
bd=$!
wait_until 10 env VRAM_SOCKET="$tmp/bad/s.sock" "$VRAM" queue
VRAM_SOCKET="$tmp/bad/s.sock" "$VRAM" submit --vram 30GiB -- true >/dev/null 2>&1
VRAM_SOCKET="$tmp/bad/s.sock" "$VRAM" submit --vram 1GiB -- sleep 0 >/dev/null
kill -TERM $bd; wait $bd 2>/dev/null
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("update jobs set state = 99"); c.commit()' "$tmp/bad/state.db"
expect corrupt_state_named_at_start 2 "the queue $tmp/bad/state.db is damaged: job [0-9]+ has a state that is not one of 0 to" -- serve_bad state.db
python3 - "$tmp/bad/null.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("create table jobs (id integer primary key, state integer, argv text, env text, cwd text, name text,"
          " model text, settings text, ladder text, priority integer, vram_bytes integer, device_pref integer,"
          " owner_uid integer, submitted_ms integer, started_ms integer default 0, ended_ms integer default 0,"
          " device integer default -1, lease_bytes integer default 0, runner_pid integer default 0,"
          " runner_start integer default 0, job_pgid integer default 0, attempts integer default 0,"
          " exit_status integer default 0, outcome text default '', peak_bytes integer default 0,"
          " note text default '', budget_bytes integer default 0, tier text default '')")
c.execute("insert into jobs (id, state, argv, env, cwd, name, model, settings, ladder, priority, vram_bytes,"
          " device_pref, owner_uid, submitted_ms) values (7, 0, '[\"true\"]', '{}', '/', NULL, '', '{}', '', 0,"
          " 1073741824, -1, 0, 1)")
c.commit()
PY
expect null_column_named_at_start 2 "the queue $tmp/bad/null.db is damaged: job 7 has no text in its 'name' column" -- serve_bad null.db
if unshare -rm true 2>/dev/null; then
    expect readonly_queue_said_at_start 1 "cannot (open|write).*$tmp/bad/ro/q.db.*(Read-only|readonly)" -- \
        unshare -rm sh -c 'mkdir -p "$1/ro" && mount -t tmpfs -o size=1m,mode=0700 tmpfs "$1/ro" &&
            : >"$1/ro/q.db" && mount -o remount,ro "$1/ro" && exec env VRAM_SOCKET="$1/ro-s.sock" VRAM_DB="$1/ro/q.db" timeout 20 "$2" serve' \
        sh "$tmp/bad" "$VRAM"
else echo "skip - $file/readonly_queue_said_at_start: cannot make a mount namespace here (unshare -rm)"; fi

# ---- 8: HTTP clients that hold connections or streams -------------------------------------
url=$(dashboard_url)
port=${url##*:}; port=${port%/}
# 70 clients that send a byte a second and never finish a request: the
# page is still answered, every time.
python3 - "$port" >"$tmp/slow.out" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
conns = []
for i in range(70):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    conns.append(s)
print("holding", len(conns), flush=True)
closed = 0
for t in range(14):
    time.sleep(1)
    closed = 0
    for s in conns:
        try:
            s.sendall(b"X")
        except OSError:
            closed += 1
print("closed by the server:", closed, flush=True)
PY
slow=$!
wait_for "$tmp/slow.out" holding 10
answered=0
for i in 1 2 3 4; do
    curl -s -m 3 -o /dev/null -w '%{http_code}\n' "${url}api/status" | grep -q 200 && answered=$((answered + 1))
done
if [ "$answered" = 4 ]; then ok http_page_answered_beside_70_slow_clients
else not_ok http_page_answered_beside_70_slow_clients "$answered of 4 probes answered"; fi
wait $slow
if grep -q 'closed by the server: 70' "$tmp/slow.out"; then ok http_slow_clients_cut_off
else not_ok http_slow_clients_cut_off "$(cat "$tmp/slow.out")"; fi
# Streams are counted per client: one user holding 16 gets 8, and another
# user's page still gets its stream.
python3 - "$port" >"$tmp/streams.out" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
got = []
for i in range(16):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    s.settimeout(3)
    got.append((s, s.recv(4096)))
print("streams", sum(b" 200 " in b.split(b"\r\n")[0] for _, b in got), "refused",
      sum(b" 503 " in b.split(b"\r\n")[0] for _, b in got), flush=True)
time.sleep(6)
PY
streams=$!
wait_for "$tmp/streams.out" streams 15
if grep -q 'streams 8 refused 8' "$tmp/streams.out"; then ok http_streams_limited_per_client
else not_ok http_streams_limited_per_client "$(cat "$tmp/streams.out")"; fi
if [ -n "$other" ]; then
    code=$(as_other curl -s -m 3 -N -o /dev/null -w '%{http_code}' "${url}api/stream")
    if [ "$code" = 200 ]; then ok http_other_users_stream_answered
    else not_ok http_other_users_stream_answered "another user's stream got $code"; fi
else printf "$no_other" http_other_users_stream_answered; fi
kill $streams 2>/dev/null; wait $streams 2>/dev/null

# ---- 8: the socket at the fd limit ------------------------------------------------------
# A daemon with 128 descriptors and 200 clients: those it cannot take are
# told why, and it rests rather than spins (it used 37% of a core).
mkdir -m 700 "$tmp/fd"
(ulimit -n 128; exec env VRAM_SOCKET="$tmp/fd/s.sock" VRAM_DB="$tmp/fd/q.db" "$VRAM" serve) >"$tmp/fd.log" 2>&1 &
fdd=$!
wait_until 10 env VRAM_SOCKET="$tmp/fd/s.sock" "$VRAM" queue
python3 - "$tmp/fd/s.sock" "$fdd" >"$tmp/fd.out" 2>&1 <<'PY'
import os, socket, sys, time
path, pid = sys.argv[1], sys.argv[2]
conns, told = [], 0
for i in range(200):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    conns.append(s)
time.sleep(1)
for s in conns:
    s.setblocking(False)
    try:
        if b"out of file descriptors" in s.recv(4096):
            told += 1
    except OSError:
        pass
def ticks():
    f = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
t0 = ticks(); time.sleep(2); used = ticks() - t0
print("told", told, "cpu_ticks_in_2s", used, "of", 2 * os.sysconf("SC_CLK_TCK"))
PY
read -r _ told _ used _ all <"$tmp/fd.out"
if [ "${told:-0}" -gt 0 ] && [ "${used:-999}" -lt $((all / 4)) ]; then ok fd_limit_refuses_and_rests
else not_ok fd_limit_refuses_and_rests "$(cat "$tmp/fd.out")"; fi
kill -TERM $fdd; wait $fdd 2>/dev/null

stop_daemon
finish
