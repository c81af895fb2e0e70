# SPDX-License-Identifier: MIT
# tests/daemon/test_end_sync.sh - a job's end is written to the queue's log
# at once and fsynced soon (wire/queue.c, daemon.c): its runner is answered
# before that fsync, and goes on to its user's next job meanwhile; with no
# client asking, the fsync comes by itself within VRAMD_END_SYNC_MS (20 ms:
# asserted as "after 10 ms, within a second", not as a timing), by the
# syncer thread, not the loop (nobody waits for it); a client
# that is no runner (a subscriber here) hears of the end only after an
# fsync that began after the end was written.  Traced with strace on the
# daemon's threads, so it skips without strace.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
here=$(cd "$(dirname "$0")" && pwd)
command -v strace >/dev/null || { echo "skip - $file/all: strace is not installed"; exit 77; }
start_daemon || exit 1

trace_daemon fdatasync,fsync,pwrite64,sendto,recvfrom

# A job that holds the card until a file appears, six short ones queued
# behind it (more than vramd starts runners ahead for, so its runner is
# given the next one in its end's answer), then a quiet second: no client
# asks anything while the jobs end.
gated() {   # gated NAME: submits a job that ends once $tmp/NAME exists; prints its number
    "$VRAM" submit --vram 21GiB -- sh -c 'while [ ! -e "$1" ]; do sleep 0.01; done' sh "$tmp/$1" |
        grep -o '[0-9][0-9]*' | head -1
}
first=$(gated go1)
for _ in 1 2 3 4 5 6; do "$VRAM" submit --vram 21GiB -- true >/dev/null; done
sleep 0.5
: >"$tmp/go1"
sleep 1.5
done_count() { "$VRAM" queue --json 2>/dev/null | grep -o '"state": *"succeeded"' | wc -l; }
[ "$(done_count)" = 7 ] || not_ok seven_jobs_ran "$("$VRAM" queue 2>&1)"

# Then a subscriber, and another gated job's end, which it hears of.
python3 - "$VRAM_SOCKET" "$tmp/events" <<'PY' &
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'{"op":"subscribe","id":"sub"}\n')
with open(sys.argv[2], "w") as out:
    for line in s.makefile("r"):
        out.write(line)
        out.flush()
PY
listener=$!
second=$(gated go2)
sleep 0.5
: >"$tmp/go2"
sleep 1
kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null
kill "$tracer" 2>/dev/null; wait "$tracer" 2>/dev/null

out=$(python3 - "$tmp/strace" "$here" "$first" "$second" 2>&1 <<'PY'
import re, sys
sys.path.insert(0, sys.argv[2])
from fsyncs import joined, fsyncs
trace, first, second = sys.argv[1], int(sys.argv[3]), int(sys.argv[4])
lines = list(joined(trace))
spans = fsyncs(trace)

loop = None     # the thread that reads requests: vramd's loop

def end_of(job):
    """(the job-ended request's time, its connection, the time of the log
    write that follows it: the end's commit)."""
    global loop
    for i, (tid, t, text) in enumerate(lines):
        m = re.match(r'recvfrom\((\d+)<[^>]*>, ".*\\"op\\":\\"job-ended\\",\\"job\\":%d,' % job, text)
        if m:
            loop = tid
            wrote = next(u for _, u, x in lines[i:] if re.match(r"pwrite64\(\d+<[^>]*-wal>", x))
            return t, m.group(1), wrote
    raise AssertionError("no job-ended of job %d traced" % job)

def first_sync_after(t):
    return min((s for s in spans if s[1] >= t), key=lambda s: s[1])

# The first job's end: its runner's answer went out before the fsync that
# covers the end began, and that fsync came by itself, 10 ms to 1 s later.
asked, conn, wrote = end_of(first)
answer = next(t for _, t, x in lines if t >= asked and x.startswith("sendto(%s<" % conn))
sync = first_sync_after(wrote)
assert answer < sync[1], "the runner was answered at %f, after the fsync begun at %f" % (answer, sync[1])
assert 0.010 <= sync[1] - wrote <= 1.0, "the end written at %f was fsynced at %f" % (wrote, sync[1])
assert sync[0] != loop, "the loop (thread %s) made the fsync that nobody waited for" % loop
print("runner answered %.1f ms after its end; the fsync began %.1f ms after the end was written" %
      ((answer - asked) * 1e3, (sync[1] - wrote) * 1e3))
answered_first = '\\"next\\":{\\"job\\":' in next(x for _, t, x in lines if t == answer)
print("its answer gave it the next job: %s" % answered_first)

# The second job's end: what the subscriber heard of it went out after an
# fsync, begun after the end was written, had returned.
asked, conn, wrote = end_of(second)
told = [t for _, t, x in lines if x.startswith("sendto(") and '\\"event\\":\\"job\\",\\"job\\":{\\"id\\":%d,' % second in x and t >= asked
        and not x.startswith("sendto(%s<" % conn)]
assert told, "no client heard of job %d's end" % second
sync = first_sync_after(wrote)
assert sync[2] is not None and sync[2] <= min(told), (
    "a client heard of the end at %f; the fsync after it began at %f, returned at %s" % (min(told), sync[1], sync[2]))
print("the subscriber heard %.1f ms after the end's fsync returned" % ((min(told) - sync[2]) * 1e3))
sys.exit(0 if answered_first else 3)
PY
)
rc=$?
case $rc in
0|3) ok runner_answered_before_its_ends_fsync; ok an_end_is_fsynced_by_itself_soon
     ok the_syncer_not_the_loop_makes_it; ok a_subscriber_hears_of_an_end_after_its_fsync ;;
*)   not_ok end_sync "$out: $(head -c 3000 "$tmp/strace")" ;;
esac
if [ $rc = 0 ]; then ok the_runner_was_given_its_next_job
else not_ok the_runner_was_given_its_next_job "$out"; fi
printf "%s\n" "$out" | sed "s/^/# /"
finish
