# SPDX-License-Identifier: MIT
# tests/daemon/test_fsync_fails_http.sh - a page read while the syncer
# thread's fsync of the queue's log is failing is not served as though what
# it shows were on disk.  The kernel reports a failed writeback to one
# fsync of an open file, not to each: the page's own fsync, made beside the
# syncer's, may return 0 when the syncer's returns EIO.  An LD_PRELOAD
# library this test builds does that: while a file it names exists, the
# first fdatasync takes the error (and takes a second to return it), and the
# others return 0; every fdatasync takes 2 ms, a slow disk's, so that the
# syncer thread makes the fsync of a job's end.  Skips without a C compiler
# or python3.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
command -v python3 >/dev/null || { echo "skip - $file/all: no python3"; exit 77; }
cat >"$tmp/eio.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
/* See the test's head. */
int fdatasync(int fd)
{
    struct timespec slow = { 0, 2000000 }, taking = { 1, 0 };
    nanosleep(&slow, NULL);
    const char *when = getenv("EIO_WHEN");
    if (when && access(when, F_OK) == 0) {
        char taken[4200];
        snprintf(taken, sizeof(taken), "%s.taken", when);
        int t = open(taken, O_CREAT | O_EXCL | O_WRONLY, 0600);
        if (t < 0)
            return 0;               /* reported to another fsync already */
        close(t);
        nanosleep(&taking, NULL);
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
C
build_preload "$tmp/eio.c"

export EIO_WHEN=$tmp/disk-fails
start_daemon_preloaded || { not_ok starts "$(tail -5 "$tmp/daemon.log")"; finish; }
url=$(dashboard_url)
[ -n "$url" ] || { not_ok daemon_serves_the_dashboard "$(tail -5 "$tmp/daemon.log")"; finish; }

"$VRAM" submit --vram 1GiB -- sh -c 'while [ ! -e "$1" ]; do sleep 0.01; done' sh "$tmp/go" >"$tmp/submit" 2>&1 ||
    { not_ok submits "$(cat "$tmp/submit")"; finish; }
for _ in $(seq 1 100); do "$VRAM" queue 2>/dev/null | grep -q running && break; sleep 0.05; done
touch "$EIO_WHEN"
: >"$tmp/go"

# Once the syncer's fsync of the end has the error, and before it returns,
# the page is read.
python3 - "$url" "$EIO_WHEN.taken" >"$tmp/page" 2>&1 <<'PY'
import http.client, os, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
deadline = time.time() + 10
while not os.path.exists(sys.argv[2]) and time.time() < deadline:
    time.sleep(0.005)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
c.request("GET", "/api/jobs")
r = c.getresponse()
print(r.status, r.read().decode()[:300])
PY
read -r code _ <"$tmp/page"
if [ "$code" != 200 ]; then
    ok a_page_read_beside_a_failing_fsync_is_not_served
else
    not_ok a_page_read_beside_a_failing_fsync_is_not_served "$(head -c 400 "$tmp/page")"
fi

expect_daemon_fails vramd_stops_failing
finish
