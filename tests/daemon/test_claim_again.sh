# SPDX-License-Identifier: MIT
# tests/daemon/test_claim_again.sh - a claim whose answer was lost with a
# killed vramd (daemon/jobs.c, claimed_before).  The old vramd wrote the
# claim (the job running under its runner's pid and start time) and died
# before it answered; the runner, which starts its command only on the
# answer, asks the next vramd.  That one answers it again, and the job
# runs once, where it refused it ("running, not starting") and then failed
# the job as lost, never run: test_vramd's every_job_ran_exactly_once saw
# two jobs so.  The state the kill leaves is made here in the queue, with a
# Python stand-in as the runner, so nothing hangs on timing.  Another
# process (another pid, or the same pid in a later life) is still refused.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
if ! command -v sqlite3 >/dev/null; then
    echo "skip - $file/all: sqlite3 is not installed (Debian package sqlite3)"; exit 77
fi
start_daemon || exit 1
job=$("$VRAM" submit --vram 1GiB -- true)
expect first_life_ends 0 '' -- "$VRAM" wait "$job" --timeout 30
stop_daemon

# The runner: its pid and start time for the queue, then, once the next
# vramd answers, its claim (and a second one), and the job's end.
python3 - "$VRAM_SOCKET" "$job" "$tmp/runner" <<'PY' >"$tmp/runner.out" 2>&1 &
import json, os, socket, sys, time
path, job, me = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]
open(me + ".tmp", "w").write("%d %s\n" % (os.getpid(), start))
os.rename(me + ".tmp", me)
while not os.path.exists(me + ".go"):
    time.sleep(0.02)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
f = s.makefile("r")
def call(req):
    s.sendall((json.dumps(req) + "\n").encode())
    return json.loads(f.readline())
r = call({"v": 1, "id": 1, "op": "job-claim", "job": job, "pid": os.getpid()})
print("claim:", json.dumps(r), flush=True)
r = call({"v": 1, "id": 2, "op": "job-ended", "job": job, "exit_status": 0, "outcome": "ok", "peak": 0})
print("ended:", json.dumps(r), flush=True)
PY
runner=$!
wait_until 10 test -e "$tmp/runner" || not_ok runner_ready "no pid in 10 s: $(cat "$tmp/runner.out")"
read -r rpid rstart <"$tmp/runner"
# What the killed vramd left: the job claimed by that runner, its lease
# granted, its command not started (no process group).
sqlite3 "$VRAM_DB" "UPDATE jobs SET state = 2, runner_pid = $rpid, runner_start = $rstart, job_pgid = 0,
    device = 0, lease_bytes = 1073741824, exit_status = -1, outcome = '', note = '' WHERE id = $job" ||
    not_ok queue_edited "sqlite3 failed"
expect queue_says_running 0 "^running$" -- sqlite3 "$VRAM_DB" "SELECT CASE state WHEN 2 THEN 'running' END FROM jobs WHERE id = $job"

# An impostor first: same job, another process.
start_daemon || exit 1
cp "$tmp/daemon.log" "$tmp/out"
expect_lines next_vramd_adopts 'recovered the queue: 0 queued, 1 running adopted' 1
expect impostor_refused 0 'only the runner vramd started' -- python3 "$VRAM_TOP/tests/daemon/sockclient.py" \
    "$VRAM_SOCKET" call "{\"v\":1,\"id\":1,\"op\":\"job-claim\",\"job\":$job,\"pid\":$rpid}"

touch "$tmp/runner.go"
wait "$runner"
cp "$tmp/runner.out" "$tmp/out"
expect_lines claim_answered_again '^claim: \{.*"ok": true' 1
expect_lines claim_gives_the_lease '^claim: .*"bytes": 1073741824' 1
expect_lines end_taken '^ended: \{.*"ok": true' 1
# Succeeded, on the attempt the first vramd counted: not started again.
expect job_succeeded_once 0 '^succeeded 1$' -- sqlite3 -separator ' ' "$VRAM_DB" \
    "SELECT CASE state WHEN 3 THEN 'succeeded' ELSE state END, attempts FROM jobs WHERE id = $job"
finish
