# SPDX-License-Identifier: MIT
# tests/daemon/test_queue_view.sh - what `vram queue` tells about each job
# (issue 15): why a finished job ended (exit status, signal, time limit,
# canceled by whom), who submitted it, when it started and ended, and the
# one --json shape every listing command shares (an object of named lists,
# never the socket's "ok" wrapper, never a bare array).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
me=$(id -un)

start_daemon && ok daemon_starts || not_ok daemon_starts "see log"
exited=$("$VRAM" submit --vram 1GiB -- sh -c 'exit 3')
killed=$("$VRAM" submit --vram 1GiB -- sh -c 'kill -KILL $$')
timed=$("$VRAM" submit --vram 1GiB --time 1s -- sleep 30)
fine=$("$VRAM" submit --vram 1GiB -- true)
running=$("$VRAM" submit --vram 1GiB -- sleep 30)
wait_until 20 sh -c "'$VRAM' queue --json --state running | grep -q '\"id\":$running,'" ||
    not_ok running_job_runs "job $running did not start"
expect cancel_running 0 "canceled $running" -- "$VRAM" cancel "$running"
"$VRAM" wait "$exited" "$killed" "$timed" "$fine" "$running" --timeout 30 >/dev/null 2>&1

"$VRAM" queue --json >"$tmp/q.json" 2>&1
if python3 - "$tmp/q.json" "$me" "$exited" "$killed" "$timed" "$fine" "$running" <<'PY'
import json, os, sys
q = json.load(open(sys.argv[1]))
assert sorted(q) == ["counts", "ended", "jobs", "leases"], sorted(q)      # no "ok", no "id"
jobs = {j["id"]: j for j in q["jobs"]}
me = sys.argv[2]
exited, killed, timed, fine, running = (jobs[int(x)] for x in sys.argv[3:8])
assert exited["reason"] == "exited with status 3", exited
assert killed["reason"] == "killed by signal 9 SIGKILL", killed
assert timed["outcome"] == "timeout" and timed["reason"] == "stopped at its time limit of 1 s", timed
assert fine["state"] == "succeeded" and fine["reason"] is None, fine
assert running["state"] == "canceled" and running["reason"].startswith("canceled by %s (uid %d)" % (me, os.getuid())), running
for j in (exited, killed, timed, fine, running):
    assert j["user"] == me and j["uid"] == os.getuid(), j
    assert j["submitted_unix_ms"] <= j["started_unix_ms"] <= j["ended_unix_ms"], j
PY
then ok queue_json_says_why_who_and_when; else not_ok queue_json_says_why_who_and_when "$(head -c 1500 "$tmp/q.json")"; fi

expect queue_header_has_user_and_times 0 'USER +STARTED +ENDED +COMMAND' -- "$VRAM" queue
expect queue_row_has_user 0 "^ *$exited +failed .* $me +[0-9:]{8} +[0-9:]{8} " -- "$VRAM" queue
expect queue_text_says_exit_status 0 '^ +exited with status 3$' -- "$VRAM" queue
expect queue_text_says_signal 0 '^ +killed by signal 9 SIGKILL$' -- "$VRAM" queue
expect queue_text_says_who_canceled 0 "^ +canceled by $me \\(uid" -- "$VRAM" queue
held=$("$VRAM" submit --vram 20GiB -- sleep 30)
behind=$("$VRAM" submit --vram 8GiB -- true)
expect cancel_queued 0 "canceled $behind" -- "$VRAM" cancel "$behind"
"$VRAM" cancel "$held" >/dev/null 2>&1
expect queued_cancel_says_who 0 "^ +canceled before it ran, by $me \\(uid" -- "$VRAM" queue

# One --json shape: an object whose keys name what it holds.
VRAM_HISTORY=$tmp/h.db "$VRAM" run --vram 1GiB -- true >/dev/null 2>&1
VRAM_HISTORY=$tmp/h.db "$VRAM" history --json >"$tmp/h.json" 2>&1
"$VRAM" profiles --json >"$tmp/p.json" 2>&1
"$VRAM" profiles show wan2.2-ti2v-5b --json >"$tmp/ps.json" 2>&1
printf 'command,vram\ntrue,1GiB\n' >"$tmp/b.csv"
"$VRAM" submit --csv "$tmp/b.csv" --json >"$tmp/s.json" 2>/dev/null
if python3 - "$tmp" <<'PY'
import json, sys
t = sys.argv[1]
h = json.load(open(t + "/h.json")); assert list(h) == ["runs"] and h["runs"][0]["ended_unix_ms"] >= h["runs"][0]["started_unix_ms"], h
p = json.load(open(t + "/p.json")); assert list(p) == ["profiles"] and p["profiles"], p
s = json.load(open(t + "/ps.json")); assert list(s) == ["profile"], s
b = json.load(open(t + "/s.json")); assert list(b) == ["jobs"] and b["jobs"][0]["line"] == 2, b
PY
then ok one_json_shape; else not_ok one_json_shape "$(head -c 300 "$tmp/h.json" "$tmp/p.json" "$tmp/s.json")"; fi
stop_daemon
exit $((failures > 0))
