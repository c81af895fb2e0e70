# SPDX-License-Identifier: MIT
# tests/daemon/test_http_taken.sh - a second vramd (another socket and
# queue, the same token file) whose dashboard port the first one holds
# fails with a clear error, and leaves the token file as the first one
# wrote it: what the file holds still changes things on the first.
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
finish
