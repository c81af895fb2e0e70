# SPDX-License-Identifier: MIT
# tests/daemon/test_end_sync_http.sh - the dashboard learns of a job's end
# no sooner than a socket client that is no runner: after an fsync, begun
# after the end was written, has returned (provider.c, vramd_page_sync).
# A page polls /api/jobs while a job ends; the first answer that shows it
# ended must come after such an fsync.  Traced with strace on the daemon's
# threads (test_end_sync.sh), so it skips without strace.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
here=$(cd "$(dirname "$0")" && pwd)
command -v strace >/dev/null || { echo "skip - $file/all: strace is not installed"; exit 77; }
start_daemon || exit 1
url=$(dashboard_url)
[ -n "$url" ] || { not_ok daemon_serves_the_dashboard "$(tail -5 "$tmp/daemon.log")"; finish; }

trace_daemon fdatasync,fsync,pwrite64,recvfrom

job=$("$VRAM" submit --vram 21GiB -- sh -c 'while [ ! -e "$1" ]; do sleep 0.01; done' sh "$tmp/go" |
      grep -o '[0-9][0-9]*' | head -1)
sleep 0.5
# The page: asks again and again, and says when it first saw the job ended
# (the wall clock, as strace's -ttt).
python3 - "$url" "$job" "$tmp/seen" <<'PY' &
import http.client, json, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
job, deadline = int(sys.argv[2]), time.time() + 10
while time.time() < deadline:
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    c.request("GET", "/api/jobs")
    body = c.getresponse().read()
    seen = time.time()
    c.close()
    if any(j.get("id") == job and j.get("state") == "succeeded" for j in json.loads(body)["jobs"]):
        open(sys.argv[3], "w").write("%f\n" % seen)
        break
PY
page=$!
sleep 0.3
: >"$tmp/go"
wait "$page"
sleep 0.2
kill "$tracer" 2>/dev/null; wait "$tracer" 2>/dev/null
[ -s "$tmp/seen" ] || { not_ok the_page_saw_the_end "job $job: $("$VRAM" queue 2>&1)"; finish; }

out=$(python3 - "$tmp/strace" "$here" "$job" "$(cat "$tmp/seen")" 2>&1 <<'PY'
import re, sys
sys.path.insert(0, sys.argv[2])
from fsyncs import joined, fsyncs
trace, job, seen = sys.argv[1], int(sys.argv[3]), float(sys.argv[4])
lines = list(joined(trace))
for i, (tid, t, text) in enumerate(lines):
    if re.match(r'recvfrom\(\d+<[^>]*>, ".*\\"op\\":\\"job-ended\\",\\"job\\":%d,' % job, text):
        wrote = next(u for _, u, x in lines[i:] if re.match(r"pwrite64\(\d+<[^>]*-wal>", x))
        break
else:
    raise AssertionError("no job-ended of job %d traced" % job)
synced = [s for s in fsyncs(trace) if s[1] >= wrote and s[2] is not None and s[2] <= seen]
assert synced, ("the page saw the end %.1f ms after it was written, before any fsync after it had returned"
                % ((seen - wrote) * 1e3))
print("the page saw the end %.1f ms after the fsync that covers it returned" % ((seen - synced[0][2]) * 1e3))
PY
)
if [ $? = 0 ]; then ok the_page_sees_an_end_after_its_fsync
else not_ok the_page_sees_an_end_after_its_fsync "$out"; fi
printf "%s\n" "$out" | sed "s/^/# /"
finish
