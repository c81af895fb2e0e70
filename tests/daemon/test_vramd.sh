# SPDX-License-Identifier: MIT
# tests/daemon/test_vramd.sh - vramd end to end on the simulated card: the
# queue, the socket protocol's refusals, CSV batches, leases that come back
# when their client dies, recovery after kill -9, and 10,000 queued jobs.
. "$(dirname "$0")/../cli/lib.sh"
daemon_history=$tmp/history.db
. "$(dirname "$0")/daemon.sh"
sc() { python3 "$VRAM_TOP/tests/daemon/sockclient.py" "$VRAM_SOCKET" "$@"; }
alloc=$helpers/simalloc

start_daemon && ok daemon_starts || not_ok daemon_starts "see log"
expect hello 0 '"ok":true,"version":"[0-9.]+","protocol":1' -- sc call '{"op":"hello","id":7}'
expect second_daemon_refused 1 'a daemon already runs at' -- "$VRAM" serve
expect empty_queue 0 '^0 queued, 0 starting, 0 running' -- "$VRAM" queue

# A job runs, is waited for, and its status comes back.
job=$("$VRAM" submit --vram 2GiB -- "$alloc" hold 1GiB 300)
expect submit_prints_id 0 '' -- test -n "$job"
expect wait_for_job 0 '' -- "$VRAM" wait "$job" --timeout 30
failing=$("$VRAM" submit --vram 1GiB -- sh -c 'exit 3')
expect wait_reports_failure 1 '' -- "$VRAM" wait "$failing" --timeout 30
"$VRAM" queue --json >"$tmp/q.json"
if python3 - "$tmp/q.json" "$job" "$failing" <<'PY'
import json, sys
q = json.load(open(sys.argv[1]))
jobs = {j["id"]: j for j in q["jobs"]}
a, b = jobs[int(sys.argv[2])], jobs[int(sys.argv[3])]
assert a["state"] == "succeeded" and a["exit_status"] == 0 and a["peak_bytes"] >= 1 << 30, a
assert b["state"] == "failed" and b["exit_status"] == 3 and b["outcome"] == "failed", b
assert q["counts"]["succeeded"] >= 1 and q["counts"]["failed"] >= 1
PY
then ok queue_json_has_outcomes; else not_ok queue_json_has_outcomes "$(head -c 600 "$tmp/q.json")"; fi

# While a job holds most of the card, the next waits, and can be canceled.
blocker=$("$VRAM" submit --vram 20GiB -- "$alloc" hold 19GiB 3000)
waiting=$("$VRAM" submit --vram 8GiB -- true)
wait_until 10 sh -c "'$VRAM' queue | grep -q 'waiting for 8.0 GiB'" || not_ok second_job_waits "not said within 10 s"
expect waits_for_memory 0 "waiting for 8.0 GiB of GPU memory" -- "$VRAM" queue
expect cancel_queued 0 "canceled $waiting" -- "$VRAM" cancel "$waiting"
expect cancel_again 1 'has already ended' -- "$VRAM" cancel "$waiting"
expect cancel_named_twice 1 'has already ended' -- "$VRAM" cancel "$waiting" "$waiting"
expect_lines cancel_named_twice_said_once 'has already ended' 1
expect cancel_running 0 "canceled $blocker" -- "$VRAM" cancel "$blocker"
expect canceled_running_ends 1 '' -- "$VRAM" wait "$blocker" --timeout 30
expect cancel_unknown 2 'no job 999999' -- "$VRAM" cancel 999999

# Bad input.
expect submit_no_command 2 'no command' -- "$VRAM" submit --vram 1GiB
expect submit_bad_size 2 "'1XB' is not a size" -- "$VRAM" submit --vram 1XB -- true
expect submit_unsized 2 'give --vram SIZE' -- "$VRAM" submit -- true
expect submit_ladder_disagrees 2 "budget \(1.0 GiB\) and its ladder's first rung \(vram=3.0 GiB\) disagree" -- \
    "$VRAM" submit --vram 1GiB --ladder "a=1 vram=3GiB; a=2 vram=2GiB" -- true
expect submit_no_such_device 2 'no device 3: there is 1 \(0 to 0\)' -- "$VRAM" submit --vram 1GiB --device 3 -- true
expect submit_too_big_for_its_device 3 'needs 23.0 GiB; GPU 0 can give 21.6 GiB' -- \
    "$VRAM" submit --vram 23GiB --device 0 -- true
expect submit_too_big 3 'needs 40.0 GiB; the largest device can give 21.6 GiB' -- "$VRAM" submit --vram 40GiB -- true
expect wait_bad_id 2 "'x' is not a job id" -- "$VRAM" wait x
expect cancel_negative_id 2 "'-1' is not a job id" -- "$VRAM" cancel -1
expect no_daemon 1 'no daemon answers' -- env VRAM_SOCKET=$tmp/none.sock "$VRAM" queue
expect submit_zero_budget 2 "--vram: '0': a budget of 0 bytes fits nothing" -- "$VRAM" submit --vram 0 -- true
# A bad value is named before vramd is looked for: also when none answers.
expect submit_bad_size_without_daemon 2 "'1XB' is not a size" -- \
    env VRAM_SOCKET=$tmp/none.sock "$VRAM" submit --vram 1XB -- true
expect submit_no_command_without_daemon 2 'no command' -- env VRAM_SOCKET=$tmp/none.sock "$VRAM" submit --vram 1GiB
expect queue_bad_state_without_daemon 2 "--state: 'done' is not one of queued, starting, running, succeeded, failed, canceled" -- \
    env VRAM_SOCKET=$tmp/none.sock "$VRAM" queue --state done
expect csv_missing_without_daemon 2 "none.csv: " -- env VRAM_SOCKET=$tmp/none.sock "$VRAM" submit --csv "$tmp/none.csv"
expect submit_good_without_daemon 1 'no daemon answers' -- \
    env VRAM_SOCKET=$tmp/none.sock "$VRAM" submit --vram 1GiB -- true

# The socket protocol refuses what it does not understand, and goes on.
expect raw_not_json 0 '"ok":false,"error":"VRAM_EPARSE","message":"at byte 0' -- sc raw $'garbage\n'
expect raw_unknown_field 0 '"id":4,"ok":false,"error":"VRAM_EINVAL","message":"unknown field .colour. in list"' -- \
    sc raw $'{"id":4,"op":"list","colour":"red"}\n'
expect raw_unknown_op 0 "unknown op 'explode'" -- sc raw $'{"op":"explode"}\n'
python3 -c 'import sys; sys.stdout.write("{\"op\":\"hello\",\"pad\":\"" + "x"*70000 + "\"}\n")' >"$tmp/big"
expect raw_oversized 0 'over 65536 bytes' -- sc raw "$(cat "$tmp/big")"
expect still_serving 0 '"ok":true' -- sc call '{"op":"hello"}'

# CSV batches: a bad row is named; the file is refused, or the good rows go.
printf 'command,vram,steps,name\n"echo {steps}",1GiB,30,first\n"echo two",12XB,,second\n"echo three",1GiB,,third\n' >"$tmp/batch.csv"
expect csv_bad_row_refuses_file 2 'batch.csv:3: vram: .12XB. is not a size' -- "$VRAM" submit --csv "$tmp/batch.csv"
expect_lines csv_nothing_queued '^[0-9]+$' 0
expect csv_skip_bad 1 'queued 2 jobs' -- "$VRAM" submit --csv "$tmp/batch.csv" --skip-bad
expect_lines csv_two_ids '^[0-9]+$' 2
printf 'vram,steps\n1GiB,30\n' >"$tmp/nocmd.csv"
expect csv_no_command_column 2 "the header has no 'command' column" -- "$VRAM" submit --csv "$tmp/nocmd.csv"
printf 'command,vram\n"unterminated,1GiB\n' >"$tmp/quote.csv"
expect csv_bad_quote 2 'line 2: a quoted field is never closed' -- "$VRAM" submit --csv "$tmp/quote.csv"
# Rows only the daemon can judge (a size no device holds, an unknown model,
# a device not there) are asked about before anything is queued.
printf 'command,vram,model,device
"echo a",1GiB,,
"echo b",100GiB,,
"echo c",,no-such-model,
"echo d",1GiB,,5
"echo e",1GiB,,
' >"$tmp/daemon.csv"
expect csv_daemon_refuses_file 2 'daemon.csv:3: the job needs 100.0 GiB; the largest device can give' -- \
    "$VRAM" submit --csv "$tmp/daemon.csv"
expect_lines csv_daemon_nothing_queued '^[0-9]+$' 0
expect_lines csv_daemon_names_each '^vram submit: .*daemon.csv:[345]: (the job needs|unknown model|no device 5)' 3
expect csv_daemon_skip_bad 1 'queued 2 jobs' -- "$VRAM" submit --csv "$tmp/daemon.csv" --skip-bad
expect_lines csv_daemon_named_once 'daemon.csv:[345]:' 3
# A model named beside --vram is one there is: refused at the submit (it
# was queued, and failed "not started" when its runner looked).
expect submit_unknown_model_with_vram 2 "not queued: unknown model 'no-such-model'" -- \
    "$VRAM" submit --vram 1GiB --model no-such-model -- true
expect raw_check_fits 0 '^\{"ok":true\}$' -- sc call '{"op":"submit","argv":["true"],"vram":"1GiB","check":true}'
expect raw_check_nofit 0 '"error":"VRAM_ENOFIT"' -- \
    sc call '{"op":"submit","argv":["true"],"vram":"100GiB","check":true}'
expect raw_check_type 0 "'check' must be true or false" -- \
    sc call '{"op":"submit","argv":["true"],"vram":"1GiB","check":"yes"}'

# A client that dies with a lease: the lease is back within a second.
python3 "$VRAM_TOP/tests/daemon/sockclient.py" "$VRAM_SOCKET" hold-lease 10GiB >"$tmp/lease.out" 2>&1 & holder=$!
for _ in $(seq 1 100); do grep -q granted "$tmp/lease.out" && break; sleep 0.05; done
leased() { sc call '{"op":"status"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["devices"][0]["leased_bytes"])'; }
if [ "$(leased)" = $((10 << 30)) ]; then ok lease_is_ours; else not_ok lease_is_ours "leased $(leased): $(cat "$tmp/lease.out")"; fi
# Killed and timed from one process on one connection, so that starting
# a program per look does not count against the daemon on a slow machine.
ms=$(sc kill-and-time $holder); wait $holder 2>/dev/null
case $ms in
    still*) not_ok dead_client_lease_back "after 5 s: $ms bytes leased" ;;
    *) if [ "$ms" -lt 1000 ]; then ok "dead_client_lease_back_in_${ms}ms"; else not_ok dead_client_lease_back "after $ms ms"; fi ;;
esac

# The dashboard of the real daemon shows the jobs; /metrics is Prometheus text.
url=$(dashboard_url)
expect api_jobs 0 "\"id\":$job," -- python3 -c "import urllib.request as u; print(u.urlopen('${url}api/jobs').read().decode())"
python3 -c "import urllib.request as u; print(u.urlopen('${url}metrics').read().decode(), end='')" >"$tmp/metrics.txt"
if grep -q '^vram_jobs{state="succeeded"} [1-9]' "$tmp/metrics.txt" && grep -q '^vram_device_total_bytes{' "$tmp/metrics.txt"; then
    ok metrics_have_jobs_and_devices
else not_ok metrics_have_jobs_and_devices "$(head -c 400 "$tmp/metrics.txt")"; fi
# Finished jobs are a counter by outcome, their run times a histogram, and
# the daemon's own process_* family is there.
metric() { awk -v n="$1" '$1 == n { print $2; exit }' "$tmp/metrics.txt"; }
succeeded=$(metric 'vram_jobs{state="succeeded"}')
finished_ok=$(metric 'vram_jobs_finished_total{outcome="ok"}')
if grep -q '^# TYPE vram_jobs_finished_total counter$' "$tmp/metrics.txt" && [ -n "$finished_ok" ] &&
   [ "$finished_ok" -ge 1 ] && [ "$finished_ok" -ge "${succeeded:-0}" ]; then
    ok metrics_finished_counter_by_outcome
else not_ok metrics_finished_counter_by_outcome "ok=$finished_ok succeeded=$succeeded: $(grep finished_total "$tmp/metrics.txt")"; fi
durations=$(metric vram_job_duration_seconds_count)
inf=$(metric 'vram_job_duration_seconds_bucket{le="+Inf"}')
if [ -n "$durations" ] && [ "$durations" -ge 1 ] && [ "$durations" = "$inf" ] &&
   grep -q '^vram_job_duration_seconds_sum ' "$tmp/metrics.txt"; then
    ok metrics_job_duration_histogram
else not_ok metrics_job_duration_histogram "$(grep duration "$tmp/metrics.txt")"; fi
missing=
for m in process_cpu_seconds_total process_resident_memory_bytes process_open_fds process_start_time_seconds; do
    v=$(metric $m)
    awk -v v="${v:-0}" 'BEGIN { exit !(v > 0) }' || missing="$missing $m=$v"
done
[ -z "$missing" ] && ok metrics_process_family || not_ok metrics_process_family "$missing"
if command -v promtool >/dev/null; then
    expect promtool_accepts_metrics 0 '' -- promtool check metrics <"$tmp/metrics.txt"
fi

# A job found running after kill -9 and a restart keeps its room in the
# books: it uses 2 GiB of its 16 GiB budget (for 8 s, time for a restart),
# and a job of 8 GiB waits for it.
"$VRAM" wait --all --timeout 60 >/dev/null 2>&1
big=$(SIMALLOC_READY=$tmp/big.held "$VRAM" submit --vram 16GiB -- "$alloc" hold 2GiB 8000)
wait_until 20 test -e "$tmp/big.held" || not_ok big_job_runs "job $big did not start within 20 s"
kill -9 $daemon; wait $daemon 2>/dev/null; daemon=
start_daemon || not_ok restart_with_a_running_job "see log"
small=$("$VRAM" submit --vram 8GiB -- true)
expect adopted_job_keeps_its_room 0 "waiting for 8.0 GiB" -- "$VRAM" queue
expect adopted_job_ends 0 '' -- "$VRAM" wait "$big" --timeout 30
expect then_the_next_runs 0 '' -- "$VRAM" wait "$small" --timeout 30
expect adopted_lease_said 0 "1 running adopted" -- cat "$tmp/daemon.log"

# The runner of an adopted job talks to the new daemon: its out-of-memory
# retry is admitted there, and its end is heard there.
oomer=$("$VRAM" submit --name adopted-oom --ladder "size=30GiB vram=4GiB; size=2GiB vram=3GiB" -- \
        sh -c "touch $tmp/oomer.started; sleep 2; exec '$alloc' oom {size}")
wait_until 20 test -e "$tmp/oomer.started" || not_ok oomer_runs "job $oomer did not start within 20 s"
kill -9 $daemon; wait $daemon 2>/dev/null; daemon=
start_daemon || not_ok restart_with_a_running_job "see log"
expect adopted_job_retries_on_the_new_daemon 0 '' -- "$VRAM" wait "$oomer" --timeout 30
expect retry_seen_by_the_new_daemon 0 '^2 ok$' -- sh -c "'$VRAM' queue --json | python3 -c \
    'import json, sys; j = [j for j in json.load(sys.stdin)[\"jobs\"] if j[\"id\"] == $oomer][0]; print(j[\"attempt\"], j[\"outcome\"])'"

# With no new daemon, the retry cannot be admitted: the runner looks for
# one for 10 s, then writes the job's end, failed with its out-of-memory,
# into the queue, where the next daemon finds it.
lost=$("$VRAM" submit --ladder "size=30GiB vram=4GiB; size=2GiB vram=3GiB" -- \
       sh -c "touch $tmp/lost.started; sleep 3; exec '$alloc' oom {size}")
wait_until 20 test -e "$tmp/lost.started" || not_ok lost_runs "job $lost did not start within 20 s"
kill -9 $daemon; wait $daemon 2>/dev/null; daemon=
wait_until 30 sh -c "! pgrep -f -- '--daemon-job $lost( |\$)'" || not_ok lost_runner_ends "its runner still runs after 30 s"
start_daemon || not_ok restart_after_a_lost_rung "see log"
expect lost_rung_ends_as_oom 0 '^failed oom$' -- sh -c "'$VRAM' queue --json | python3 -c \
    'import json, sys; j = [j for j in json.load(sys.stdin)[\"jobs\"] if j[\"id\"] == $lost][0]; print(j[\"state\"], j[\"outcome\"])'"

# Changing things over HTTP needs the token; ids are numbers, as in the list.
url=$(dashboard_url)          # the restarted daemon's
python3 - "$url" "$VRAM_TOKEN_FILE" >"$tmp/http.out" 2>&1 <<'PY'
import json, sys, time, urllib.request, urllib.error
url, token = sys.argv[1], open(sys.argv[2]).read().strip()
def post(path, body=None, auth=True):
    req = urllib.request.Request(url + path, data=json.dumps(body or {}).encode(), method="POST")
    if auth:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
st, _ = post("api/jobs", {"command": "sleep 30", "vram": "1GiB"}, auth=False)
assert st == 401, st
st, reply = post("api/jobs", {"command": "sleep 30", "vram": "1GiB", "name": "over-http"})
assert st == 201 and isinstance(reply["id"], int), (st, reply)
st, body = post("api/jobs", {"command": "true", "vram": "lots"})
assert st == 400 and "'lots' is not a size" in body, (st, body)
st, c = post("api/jobs/%d/cancel" % reply["id"])
# queued: canceled at once; started already: running until its runner stops it
assert st == 200 and c["id"] == reply["id"] and c["state"] in ("canceled", "running"), (st, c)
for _ in range(200):
    jobs = json.load(urllib.request.urlopen(url + "api/jobs"))["jobs"]
    if [j for j in jobs if j["id"] == reply["id"]][0]["state"] == "canceled":
        break
    time.sleep(0.05)
st, _ = post("api/jobs/%d/cancel" % reply["id"])
assert st == 409, st
st, _ = post("api/jobs/999999/cancel")
assert st == 404, st
print("ok")
PY
if [ $? -eq 0 ]; then ok http_submit_and_cancel_with_token; else not_ok http_submit_and_cancel_with_token "$(tail -c 400 "$tmp/http.out" | tr "\n" " ")"; fi

# kill -9 of the daemon with 1,000 jobs queued and some running, then a
# restart: every job ends exactly once.
"$VRAM" wait --all --timeout 60 >/dev/null 2>&1
: >"$tmp/ran.txt"
export VRAM_HISTORY=-
stop_daemon; start_daemon
read -r n secs <<<"$(sc submit-many 1000 2.4GiB "echo \$VRAM_JOB >> $tmp/ran.txt")"
if [ "$n" = 1000 ]; then ok "submitted_1000_in_${secs}s"; else not_ok submitted_1000 "only $n"; fi
sleep 0.5
kill -9 $daemon; wait $daemon 2>/dev/null; daemon=
running=$(wc -l <"$tmp/ran.txt")
echo "# daemon killed with $running of 1000 jobs run"
expect stale_socket_left 0 '' -- test -S "$VRAM_SOCKET"
start_daemon && ok restart_after_kill_9 || not_ok restart_after_kill_9 "see log"
expect all_jobs_end 0 '' -- "$VRAM" wait --all --timeout 240 --quiet
sqlite3 "$VRAM_DB" "SELECT id, state, attempts, outcome, exit_status, note FROM jobs WHERE state != 3 AND id > 8" 2>/dev/null |
while IFS='|' read -r id rest; do
    echo "# not succeeded: job $id: $rest"
    sed 's/^/#   /' "$VRAM_DB.logs/$id.log" 2>/dev/null | tail -8
done
python3 - "$tmp/ran.txt" <<'PY' >"$tmp/once.out" 2>&1
import collections, sys
seen = collections.Counter(l.strip() for l in open(sys.argv[1]) if l.strip())
twice = [k for k, v in seen.items() if v > 1]
print(f"{len(seen)} jobs ran, {len(twice)} more than once")
assert len(seen) == 1000 and not twice, twice[:10]
PY
if [ $? -eq 0 ]; then ok "every_job_ran_exactly_once ($(cat "$tmp/once.out"))"; else not_ok every_job_ran_exactly_once "$(cat "$tmp/once.out")"; fi
expect queue_counts_after_recovery 0 '"succeeded":1000,' -- "$VRAM" queue --json --limit 1
# An end told again (a runner whose daemon died before answering tells the
# next one) changes nothing: the daemon still keeps its 1,000 finished jobs.
newest=$("$VRAM" queue --json --limit 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["jobs"][0]["id"])')
for _ in 1 2 3; do
    sc call "{\"op\":\"job-ended\",\"job\":$newest,\"exit_status\":0,\"outcome\":\"ok\",\"peak\":0}" >/dev/null
done
expect end_told_again_is_no_second_end 0 '"succeeded":1000,' -- "$VRAM" queue --json --limit 1
# The first job is no longer kept in memory (1,000 finished are): its log is still read, from the store.
if "$VRAM" queue --json | grep -q "\"id\":$job,"; then not_ok first_job_forgotten "job $job is still listed"
else expect log_of_a_job_no_longer_kept 0 'attempt 1 finished' -- "$VRAM" log "$job"; fi

# 10,000 queued jobs (none can start: a job holds the card) are all listed.
hold=$("$VRAM" submit --vram 21GiB -- sleep 600)
wait_until 10 sh -c "'$VRAM' queue --json --state running | grep -q '\"id\":$hold,'" || not_ok holder_runs "job $hold did not start within 10 s"
read -r n secs <<<"$(sc submit-many 10000 20GiB true)"
if [ "$n" = 10000 ]; then ok "submitted_10000_in_${secs}s"; else not_ok submitted_10000 "only $n"; fi
t0=$(date +%s%N)
"$VRAM" queue --json --state queued >"$tmp/q10k.json"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
count=$(python3 -c "import json; print(len(json.load(open('$tmp/q10k.json'))['jobs']))")
if [ "$count" = 10000 ]; then ok "queue_lists_10000 (${ms} ms)"; else not_ok queue_lists_10000 "$count"; fi
"$VRAM" cancel "$hold" >/dev/null
finish
