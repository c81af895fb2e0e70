# SPDX-License-Identifier: MIT
# tests/daemon/test_group_commit.sh - submits that arrive together are on
# disk with one fsync, and each is answered after it, in the order asked;
# one client's submits in a row (the loop fsyncs them itself) each wait for
# an fsync that began after their row was written;
# a job costs at most one more fsync, at its end (ends that come together
# share one, or ride on a submit's: test_end_sync.sh; its steps between are
# written without one).  Counted with
# strace on all the daemon's threads (the loop or its syncer thread fsyncs
# the queue's log), so it skips without strace; never two fsyncs at once.
# Grants the loop makes itself are handled in its round, without a wake-up
# through its pipe.  A client's request is read in the round that accepts
# its connection.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
here=$(cd "$(dirname "$0")" && pwd)
command -v strace >/dev/null || { echo "skip - $file/all: strace is not installed"; exit 77; }
start_daemon || exit 1

# A job that holds the card, so that what comes next stays queued.
"$VRAM" submit --vram 21GiB -- sleep 3600 >/dev/null
wait_for_running() {
    for _ in $(seq 1 200); do
        "$VRAM" queue --json 2>/dev/null | grep -q '"state": *"running"' && return 0
        sleep 0.05
    done
    return 1
}
wait_for_running || not_ok holder_runs "$("$VRAM" queue 2>&1)"

trace_daemon fdatasync,fsync,sendto,pwrite64,write 64
syncs() { grep -c 'sync([0-9]*<[^>]*wal>' "$tmp/strace" 2>/dev/null; }
# Whether the first reply that names a job went out after the first fsync
# of the log had returned (strace -f splits a call that another thread
# interrupts into "<unfinished ...>" and "<... resumed>").
reply_after_sync() {
    python3 - "$tmp/strace" "$here" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from fsyncs import calls, fsyncs
synced = [s[2] for s in fsyncs(sys.argv[1]) if s[2] is not None]
replied = [t for _, t, text in calls(sys.argv[1]) if text.startswith("sendto(") and '\\"job\\":' in text]
assert synced and replied, (synced, replied)
assert min(synced) <= min(replied), ("a reply at %f before the first fsync returned at %f" % (min(replied), min(synced)))
print("first fsync returned at %f, first reply at %f" % (min(synced), min(replied)))
PY
}

# Eight submits in one write on one connection: one transaction, one fsync,
# and eight replies in the order of the requests, each with a larger job id.
python3 - "$VRAM_SOCKET" >"$tmp/group.out" 2>&1 <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
req = {"op": "submit", "argv": ["true"], "vram": "20GiB", "cwd": "/tmp", "env": {"PATH": "/usr/bin:/bin"}}
s.sendall("".join(json.dumps(dict(req, id="r%d" % i)) + "\n" for i in range(8)).encode())
f = s.makefile("r")
replies = [json.loads(f.readline()) for _ in range(8)]
assert [r["id"] for r in replies] == ["r%d" % i for i in range(8)], replies
assert all(r["ok"] for r in replies), replies
jobs = [r["job"] for r in replies]
assert jobs == sorted(jobs) and len(set(jobs)) == 8, jobs
print("replies in order:", jobs)
PY
if [ $? = 0 ]; then ok replies_in_the_order_asked; else not_ok replies_in_the_order_asked "$(cat "$tmp/group.out")"; fi
sleep 0.2
n=$(syncs)
if [ "$n" = 1 ]; then ok one_fsync_for_the_group
else not_ok one_fsync_for_the_group "$n fsyncs of the queue's log for 8 submits: $(cat "$tmp/strace")"; fi
if out=$(reply_after_sync 2>&1); then ok replies_after_the_fsync
else not_ok replies_after_the_fsync "$out: $(head -c 1500 "$tmp/strace")"; fi

# One client, twenty submits in a row, each sent when the last was
# answered: every reply goes out after an fsync of the log that began after
# every write to the log before that reply (its row's among them), and the
# write of each was started on its way to the disk before that fsync.
before=$(wc -l <"$tmp/strace")
syncs0=$(syncs)
python3 - "$VRAM_SOCKET" >"$tmp/singles.out" 2>&1 <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("r")
req = {"op": "submit", "argv": ["true"], "vram": "20GiB", "cwd": "/tmp", "env": {"PATH": "/usr/bin:/bin"}}
for i in range(20):
    s.sendall((json.dumps(dict(req, id="s%d" % i)) + "\n").encode())
    r = json.loads(f.readline())
    assert r["id"] == "s%d" % i and r["ok"], r
    print(r["job"])
PY
[ $? = 0 ] || not_ok singles_answered "$(cat "$tmp/singles.out")"
sleep 0.2
singles_after_sync() {
    tail -n +"$((before + 1))" "$tmp/strace" | python3 -c '
import re, sys
writes = 0            # writes to the log seen so far
started = {}          # thread -> writes seen when its fsync began
durable = 0           # writes covered by an fsync that has returned
replies = 0
for line in sys.stdin:
    m = re.match(r"(\d+) +[\d.]+ (.*)", line)
    if not m:
        continue
    pid, rest = m.group(1), m.group(2)
    if re.match(r"pwrite64\(\d+<[^>]*-wal>", rest):
        writes += 1
    elif re.match(r"f(data)?sync\(\d+<[^>]*-wal>", rest):
        if "<unfinished" in rest:
            started[pid] = writes
        elif rest.rstrip().endswith("= 0"):
            durable = max(durable, writes)
    elif "resumed>" in rest and "sync" in rest and pid in started:
        durable = max(durable, started.pop(pid))
    elif rest.startswith("sendto(") and re.search(r"id.{0,6}s\d+", rest):
        replies += 1
        assert writes and durable == writes, "reply %d (%s) with %d writes to the log, %d of them fsynced" % (
            replies, rest[:90], writes, durable)
assert replies == 20, "%d replies traced" % replies
'
}
if out=$(singles_after_sync 2>&1); then ok one_clients_submits_each_after_its_fsync
else not_ok one_clients_submits_each_after_its_fsync "$out: $(tail -n +"$((before + 1))" "$tmp/strace" | head -c 2500)"; fi
# They go (each cancel is a job's end, fsynced): the card's holder is next.
for job in $(cat "$tmp/singles.out"); do "$VRAM" cancel "$job" >/dev/null 2>&1; done
singles=$(($(syncs) - syncs0))

# The holder's end and the eight jobs' ends: at most one fsync each
# (ends that come in one loop round share one), nothing for their starts.
"$VRAM" cancel 1 >/dev/null
for _ in $(seq 1 400); do
    [ "$("$VRAM" queue --json 2>/dev/null | grep -o '"state": *"succeeded"' | wc -l)" = 8 ] && break
    sleep 0.05
done
sleep 0.3
n=$(($(syncs) - singles))
if [ "$n" -ge 2 ] && [ "$n" -le 10 ]; then ok at_most_one_fsync_a_job_end
else not_ok at_most_one_fsync_a_job_end "$n fsyncs for the group, then 9 ends (2 to 10 wanted): $(cat "$tmp/strace")"; fi
# Grants the loop made itself (a cancel's refusal, a job's end letting the
# next ones in) were handled in the loop's round: none woke it through its
# pipe, a round each.
kill "$tracer" 2>/dev/null; wait "$tracer" 2>/dev/null
woke=$(grep -c 'write([0-9]*<pipe:\[[0-9]*\]>, "\\1", 1)' "$tmp/strace")
if [ "$woke" = 0 ]; then ok grants_the_loop_made_need_no_wake
else not_ok grants_the_loop_made_need_no_wake "$woke wake-ups through the pipe: $(grep '<pipe:' "$tmp/strace" | head -5)"; fi

# Whichever thread makes an fsync of the log (the loop at its round's end
# when fsyncs are quick, the syncer when not), one is under way at a time:
# an fsync that began is over before the next begins.
out=$(python3 - "$tmp/strace" "$here" 2>&1 <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from fsyncs import fsyncs, one_at_a_time
spans = fsyncs(sys.argv[1])
assert len(spans) >= 3, "%d fsyncs traced" % len(spans)
one_at_a_time(spans)
print("%d fsyncs, one at a time" % len(spans))
PY
) && ok one_fsync_at_a_time || not_ok one_fsync_at_a_time "$out"

# Ten clients, each connected with its request sent at once (as `vram`
# does): the loop reads a request in the round that accepted its
# connection, not a poll round later (some may come after the accept: those
# wait for poll, so at least half, not all, are asked).
strace -qq -e trace=accept4,recvfrom,poll -p "$daemon" -o "$tmp/accept" 2>"$tmp/accept.err" &
tracer=$!
sleep 0.5
python3 - "$VRAM_SOCKET" >"$tmp/shows.out" 2>&1 <<'PY'
import json, socket, sys, time
for i in range(10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.sendall((json.dumps({"op": "show", "job": 1, "id": "a%d" % i}) + "\n").encode())
    r = json.loads(s.makefile("r").readline())
    assert r["id"] == "a%d" % i, r
    s.close()
    time.sleep(0.02)
PY
[ $? = 0 ] || not_ok shows_answered "$(cat "$tmp/shows.out")"
sleep 0.2
kill "$tracer" 2>/dev/null; wait "$tracer" 2>/dev/null
at_once=$(python3 - "$tmp/accept" <<'PY'
import re, sys
fresh, at_once = set(), 0
for line in open(sys.argv[1]):
    m = re.match(r"accept4\(.*\) = (\d+)", line)
    if m:
        fresh.add(m.group(1))
    elif line.startswith("poll("):
        fresh.clear()
    else:
        m = re.match(r"recvfrom\((\d+), .*show.* = \d+", line)
        if m and m.group(1) in fresh:
            at_once += 1
print(at_once)
PY
)
if [ "${at_once:-0}" -ge 5 ]; then ok a_request_is_read_when_accepted
else not_ok a_request_is_read_when_accepted "${at_once:-none} of 10 read in the accepting round: $(head -c 1500 "$tmp/accept")"; fi
finish
