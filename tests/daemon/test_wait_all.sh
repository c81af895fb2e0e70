# SPDX-License-Identifier: MIT
# tests/daemon/test_wait_all.sh - what `vram wait --all` judges (cli/cmd_queue.c,
# wait_ends): the jobs that end while it waits, from the daemon's ends since
# its start (vramd.ended), never lowered when it forgets a kept job.  A
# failure that ended before the wait began never counts, though vramd still
# lists it (it read the failed count before, so its answer hung on when vramd
# trimmed its kept finished jobs: test_vramd's all_jobs_end flaked on it); a
# failure or a cancel while it waits always counts.  The wait has taken its
# first list once its progress bar is drawn on a pty (script(1)), so no step
# here hangs on timing.  A vramd older than its ends (a fake one) is judged
# by its counts.
. "$(dirname "$0")/../cli/lib.sh"
if ! command -v script >/dev/null; then
    echo "skip - $file/all: script(1) is not installed"; exit 77
fi
. "$(dirname "$0")/daemon.sh"
start_daemon || exit 1

# A failure, ended and still listed, then a job that succeeds.
failed=$("$VRAM" submit --vram 1GiB -- false)
expect earlier_job_fails 1 '' -- "$VRAM" wait "$failed" --timeout 30
expect failure_still_listed 0 "failed" -- "$VRAM" queue
fine=$("$VRAM" submit --vram 1GiB -- true)
expect earlier_failure_does_not_count 0 '' -- "$VRAM" wait --all --timeout 30 --quiet
expect nothing_left_is_success 0 '' -- "$VRAM" wait --all --timeout 30 --quiet
expect by_id_still_failed 1 '' -- "$VRAM" wait "$failed" "$fine" --timeout 30

# wait_on_pty OUT: `vram wait --all` on a pty in the background (pid in $w),
# returning once it has drawn its bar: its first list is taken.
wait_on_pty() {
    rm -f "$1"
    SHELL=/bin/sh timeout 60 script -qfec "exec $VRAM wait --all --timeout 40" "$1" >/dev/null 2>&1 &
    w=$!
    wait_until 20 grep -aq ' done ' "$1"
}

# A job that fails while the wait waits: counted, and shown in the bar.
late=$("$VRAM" submit --vram 1GiB -- sh -c "while [ ! -e $tmp/GO ]; do sleep 0.05; done; exit 3")
wait_on_pty "$tmp/bar1" || not_ok failure_meanwhile_bar "no bar in 20 s: $(head -c 300 "$tmp/bar1")"
touch "$tmp/GO"
wait $w
rc=$?
if [ $rc = 1 ] && grep -aq '1/1 done .* 1 failed' "$tmp/bar1"; then ok failure_meanwhile_counts
else not_ok failure_meanwhile_counts "rc $rc: $(tr '\r' '\n' <"$tmp/bar1" | tail -3)"; fi

# A job canceled while the wait waits: counted too (as `vram wait JOB` does).
rm -f "$tmp/GO"
sleeper=$("$VRAM" submit --vram 1GiB -- sh -c "while [ ! -e $tmp/GO ]; do sleep 0.05; done")
wait_on_pty "$tmp/bar2" || not_ok cancel_meanwhile_bar "no bar in 20 s: $(head -c 300 "$tmp/bar2")"
"$VRAM" cancel "$sleeper" >/dev/null 2>&1
wait $w
rc=$?
if [ $rc = 1 ]; then ok cancel_meanwhile_counts
else not_ok cancel_meanwhile_counts "rc $rc: $(tr '\r' '\n' <"$tmp/bar2" | tail -3)"; fi

# Then, with both still listed, a batch that succeeds waits to 0.
touch "$tmp/GO"
for _ in 1 2 3; do "$VRAM" submit --vram 1GiB -- true >/dev/null; done
expect batch_after_failures_succeeds 0 '' -- "$VRAM" wait --all --timeout 30 --quiet

# A vramd from before "ended" (a fake one here): its counts are judged
# instead, so a failure while the wait waits still fails it (the ends,
# absent, read as none: it said success).
python3 - "$tmp/old.sock" <<'PY' >"$tmp/old.out" 2>&1 &
import json, os, socket, sys
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1])
srv.listen(4)
print("listening", flush=True)
calls = 0
while calls < 50:
    c, _ = srv.accept()
    f = c.makefile("r")
    for line in f:
        req = json.loads(line)
        if req.get("op") != "list":     # subscribe: ok, and no event ever comes
            c.sendall((json.dumps({"id": req["id"], "ok": True}) + "\n").encode())
            continue
        calls += 1
        done = calls > 1                # the first list: one runs; then it has failed
        counts = {"queued": 0, "starting": 0, "running": 0 if done else 1,
                  "succeeded": 3, "failed": 1 if done else 0, "canceled": 0}
        c.sendall((json.dumps({"id": req["id"], "ok": True, "counts": counts, "jobs": [],
                               "leases": [], "next": None}) + "\n").encode())
    c.close()
PY
old=$!
if wait_for "$tmp/old.out" listening 10; then
    expect older_vramd_failure_counts 1 '' -- env VRAM_SOCKET="$tmp/old.sock" "$VRAM" wait --all --timeout 20 --quiet
else
    not_ok older_vramd_failure_counts "the fake vramd did not start: $(cat "$tmp/old.out")"
fi
kill "$old" 2>/dev/null
wait "$old" 2>/dev/null
finish
