# SPDX-License-Identifier: MIT
# tests/daemon/test_group_commit_slow.sh - on a slow disk (every fdatasync
# made 4 ms slower by an LD_PRELOAD library this test builds), vramd's
# fsyncs are its syncer thread's, not its loop's, while several clients
# wait; one is under way at a time; and each reply still goes out after the
# fsync of its row.  (On a quick disk the loop makes them itself:
# test_group_commit.sh.)  Skips without strace or a C compiler.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
here=$(cd "$(dirname "$0")" && pwd)
command -v strace >/dev/null || { echo "skip - $file/all: strace is not installed"; exit 77; }
cc=${CC:-cc}
command -v "$cc" >/dev/null || { echo "skip - $file/all: no C compiler ($cc) to build the slow-disk library"; exit 77; }
cat >"$tmp/slow.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int fdatasync(int fd)
{
    long us = 4000;                 /* or what the test's file says now */
    const char *file = getenv("SLOW_FILE");
    FILE *f = file ? fopen(file, "r") : NULL;
    if (f) {
        if (fscanf(f, "%ld", &us) != 1)
            us = 4000;
        fclose(f);
    }
    struct timespec pause = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&pause, NULL);
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
C
"$cc" -shared -fPIC -o "$tmp/slow.so" "$tmp/slow.c" -ldl 2>"$tmp/cc.err" ||
    { echo "skip - $file/all: cannot build the slow-disk library: $(head -c 200 "$tmp/cc.err")"; exit 77; }
# An AddressSanitizer build wants its runtime first; this library only wraps one call.
LD_PRELOAD="$tmp/slow.so" SLOW_FILE="$tmp/slow_us" ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0" start_daemon || exit 1
"$VRAM" submit --vram 21GiB -- sleep 3600 >/dev/null   # holds the card: what comes next stays queued

trace_daemon fdatasync,sendto
# Four clients at once, five submits each, each sent when its last was answered.
python3 - "$VRAM_SOCKET" >"$tmp/clients.out" 2>&1 <<'PY'
import json, socket, sys, threading
req = {"op": "submit", "argv": ["true"], "vram": "20GiB", "cwd": "/tmp", "env": {"PATH": "/usr/bin:/bin"}}
bad = []
def client(k):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    f = s.makefile("r")
    for i in range(5):
        s.sendall((json.dumps(dict(req, id="c%d-%d" % (k, i))) + "\n").encode())
        r = json.loads(f.readline())
        if r.get("id") != "c%d-%d" % (k, i) or not r.get("ok"):
            bad.append(r)
ts = [threading.Thread(target=client, args=(k,)) for k in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
assert not bad, bad
print("20 submits answered")
PY
[ $? = 0 ] && ok submits_answered || not_ok submits_answered "$(cat "$tmp/clients.out")"
sleep 0.3
kill "$tracer" 2>/dev/null; wait "$tracer" 2>/dev/null
out=$(python3 - "$tmp/strace" "$daemon" "$here" 2>&1 <<'PY'
import re, sys
sys.path.insert(0, sys.argv[3])
from fsyncs import calls, fsyncs, one_at_a_time
spans = fsyncs(sys.argv[1])
one_at_a_time(spans)
first = min(s[2] for s in spans if s[2] is not None)
replies = [t for _, t, text in calls(sys.argv[1]) if text.startswith("sendto(") and re.search(r"id.{0,6}c\d-\d", text)]
assert len(replies) == 20, "%d replies traced" % len(replies)
assert first <= min(replies), "a reply at %f before any fsync returned (%f)" % (min(replies), first)
by_loop = sum(s[0] == sys.argv[2] for s in spans)
assert len(spans) >= 2, "%d fsyncs" % len(spans)
assert by_loop * 2 < len(spans), "%d of %d fsyncs made on the loop on a slow disk" % (by_loop, len(spans))
print("%d fsyncs, %d on the loop, one at a time; 20 replies after an fsync" % (len(spans), by_loop))
PY
) && ok slow_fsyncs_are_the_syncers || not_ok slow_fsyncs_are_the_syncers "$out: $(head -c 1500 "$tmp/strace")"
# An fsync made 300 ms slow: a submit on one connection, and 100 ms later
# a list on another, in a later loop round while the syncer's fsync of the
# submit is under way.  The list may name the job only once that fsync has
# returned (nobody but its runner hears of a row before it is on disk).
echo 300000 >"$tmp/slow_us"
out=$(python3 - "$VRAM_SOCKET" 2>&1 <<'PY'
import json, select, socket, sys, time
a, b = (socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2))
a.connect(sys.argv[1]); b.connect(sys.argv[1])
req = {"op": "submit", "id": "a", "argv": ["true"], "vram": "20GiB", "cwd": "/tmp", "env": {"PATH": "/usr/bin:/bin"}}
t0 = time.time()
a.sendall((json.dumps(req) + "\n").encode())
time.sleep(0.1)
b.sendall(b'{"op": "list", "id": "b"}\n')
got, at = {a: b"", b: b""}, {}
while len(at) < 2 and time.time() - t0 < 10:
    for s in select.select([s for s in (a, b) if s not in at], [], [], 10)[0]:
        got[s] += s.recv(1 << 20)
        if got[s].endswith(b"\n"):
            at[s] = time.time() - t0
assert len(at) == 2, "no answer to both in 10 s"
job = json.loads(got[a])["job"]
named = ('"id":%d,' % job) in got[b].decode().replace(" ", "")
assert not named or at[b] >= 0.25, (
    "the list named job %d at %.3f s; its submit was answered at %.3f s, after its 300 ms fsync" % (job, at[b], at[a]))
print("submit answered at %.3f s, the list at %.3f s (naming the job: %s)" % (at[a], at[b], named))
sys.exit(0 if named else 3)
PY
)
case $? in
0) ok a_list_names_a_submit_after_its_fsync ;;
3) ok a_list_names_a_submit_after_its_fsync   # (it did not name it: nothing told early)
   echo "# $out" ;;
*) not_ok a_list_names_a_submit_after_its_fsync "$out" ;;
esac
echo 4000 >"$tmp/slow_us"
# The holder goes, and its runner with it: nothing of this test outlives
# it (vramd's stop leaves a running job running, for the next vramd).
"$VRAM" cancel 1 >/dev/null 2>&1
for _ in $(seq 1 200); do no_runners && break; sleep 0.05; done
no_runners && ok nothing_left_running || not_ok nothing_left_running "$(runners)"
finish
