# SPDX-License-Identifier: MIT
# tests/daemon/test_fsync_fails_page_submit.sh - the dashboard's submit is
# answered once the job is on disk, as a socket client's is: when the fsync
# of the queue's log fails, the page is told so, not given the job's id.
# Before, its answer went before any fsync.  An LD_PRELOAD library
# (tests/daemon/eio.c) fails fdatasync with EIO while a file it names
# exists.  Skips without a C compiler or python3.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
command -v python3 >/dev/null || { echo "skip - $file/all: no python3"; exit 77; }
build_preload "$(dirname "$0")/eio.c"
export EIO_WHEN=$tmp/disk-fails
start_daemon_preloaded || { not_ok starts "$(tail -5 "$tmp/daemon.log")"; finish; }
url=$(dashboard_url)
[ -n "$url" ] || { not_ok daemon_serves_the_dashboard "$(tail -5 "$tmp/daemon.log")"; finish; }

touch "$EIO_WHEN"
python3 - "$url" "$VRAM_TOKEN_FILE" >"$tmp/page" 2>&1 <<'PY'
import json, sys, urllib.request, urllib.error
url, token = sys.argv[1], open(sys.argv[2]).read().strip()
req = urllib.request.Request(url + "api/jobs", data=json.dumps({"command": "true", "vram": "1GiB"}).encode(),
                             method="POST")
req.add_header("Authorization", "Bearer " + token)
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status, r.read().decode()[:300])
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode()[:300])
except Exception as e:
    print("lost", e)
PY
read -r code _ <"$tmp/page"
case $code in
    2*) not_ok a_page_submit_whose_fsync_fails_is_told_so "$(head -c 400 "$tmp/page")" ;;
    *) ok a_page_submit_whose_fsync_fails_is_told_so ;;
esac

expect_daemon_fails vramd_stops_failing
finish
