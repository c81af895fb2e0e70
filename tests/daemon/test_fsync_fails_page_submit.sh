# SPDX-License-Identifier: MIT
# tests/daemon/test_fsync_fails_page_submit.sh - the dashboard's submit is
# answered once the job is on disk, as a socket client's is: when the fsync
# of the queue's log fails, the page is told so, not given the job's id.
# Before, its answer went before any fsync.  An LD_PRELOAD library this
# test builds fails fdatasync with EIO while a file it names exists.  Skips
# without a C compiler or python3.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
cc=${CC:-cc}
command -v "$cc" >/dev/null || { echo "skip - $file/all: no C compiler ($cc) to build the library"; exit 77; }
command -v python3 >/dev/null || { echo "skip - $file/all: no python3"; exit 77; }
cat >"$tmp/eio.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
/* fdatasync fails with EIO while the file EIO_WHEN names exists. */
int fdatasync(int fd)
{
    const char *when = getenv("EIO_WHEN");
    if (when && access(when, F_OK) == 0) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
C
"$cc" -shared -fPIC -o "$tmp/eio.so" "$tmp/eio.c" -ldl 2>"$tmp/cc.err" ||
    { echo "skip - $file/all: cannot build the library: $(head -c 200 "$tmp/cc.err")"; exit 77; }

export EIO_WHEN=$tmp/disk-fails
preload=$tmp/eio.so
[ -n "${LD_PRELOAD:-}" ] && preload=$LD_PRELOAD:$preload     # ASan's runtime first, in that build
LD_PRELOAD=$preload ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0" \
    start_daemon || { not_ok starts "$(tail -5 "$tmp/daemon.log")"; finish; }
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

for _ in $(seq 1 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$daemon" 2>/dev/null; then
    not_ok vramd_stops "still running: $(tail -5 "$tmp/daemon.log")"
else
    wait "$daemon"
    status=$?
    daemon=
    [ $status -ne 0 ] && ok vramd_stops_failing || not_ok vramd_stops_failing "exit $status"
fi
finish
