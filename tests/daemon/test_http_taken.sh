# SPDX-License-Identifier: MIT
# tests/daemon/test_http_taken.sh - a second vramd (another socket and
# queue, the same token file) whose dashboard port the first one holds
# fails with a clear error, and leaves the token file as the first one
# wrote it: what the file holds still changes things on the first.  The
# default port taken is not that: vramd serves on a free one.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
start_daemon || { not_ok daemon_starts "$(tail -5 "$tmp/daemon.log")"; finish; }
url=$(dashboard_url)
port=${url##*:}; port=${port%/}
before=$(cat "$tmp/token")
mkdir "$tmp/second"
expect second_daemon_says_the_port_is_taken 1 "cannot listen on 127\.0\.0\.1:$port: the port is in use" -- \
    env VRAM_SOCKET="$tmp/second/s.sock" VRAM_DB="$tmp/second/q.db" VRAM_HTTP="127.0.0.1:$port" "$VRAM" serve
if [ "$(cat "$tmp/token")" = "$before" ]; then ok token_file_kept
else not_ok token_file_kept "the second daemon wrote its own token over the first's"; fi
# No job 999: with the first daemon's token that is a 404, not a 403.
expect file_token_still_works 0 '"status":404' -- python3 -c '
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1] + "api/jobs/999/cancel", data=b"", method="POST")
req.add_header("Authorization", "Bearer " + open(sys.argv[2]).read().strip())
try:
    print(urllib.request.urlopen(req, timeout=10).read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode())' "$url" "$tmp/token"

# The default port taken by another program (any local user may take it
# first) does not keep vramd from starting: it serves its dashboard on a
# free port, saying so.  (Where 7860 is taken already, it is taken.)
python3 -c '
import socket, sys, time
s = socket.socket()
try:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 7860)); s.listen(1)
except OSError:
    pass
print("holding", flush=True)
time.sleep(30)' >"$tmp/squat.out" 2>&1 &
squatter=$!
wait_for "$tmp/squat.out" holding 10
mkdir "$tmp/third"
env -u VRAM_HTTP VRAM_SOCKET="$tmp/third/s.sock" VRAM_DB="$tmp/third/q.db" VRAM_TOKEN_FILE="$tmp/third/token" \
    "$VRAM" serve >"$tmp/third.log" 2>&1 &
third=$!
if wait_for "$tmp/third.log" 'dashboard http://127\.0\.0\.1:[0-9]+/' 10 &&
    grep -q "the dashboard's port, 127\.0\.0\.1:7860, is in use by another program; it is on a free one instead: http://127\.0\.0\.1:[0-9]*/" "$tmp/third.log" &&
    ! grep -q 'dashboard http://127\.0\.0\.1:7860/' "$tmp/third.log"; then
    ok default_port_taken_serves_on_a_free_one
else
    not_ok default_port_taken_serves_on_a_free_one "$(head -c 600 "$tmp/third.log")"
fi
expect default_port_taken_daemon_answers 0 '' -- env VRAM_SOCKET="$tmp/third/s.sock" "$VRAM" queue
kill -TERM $third $squatter 2>/dev/null; wait $third $squatter 2>/dev/null
finish
