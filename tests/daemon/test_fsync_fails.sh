# SPDX-License-Identifier: MIT
# tests/daemon/test_fsync_fails.sh - when an fsync of the queue's log fails
# (an LD_PRELOAD library this test builds fails fdatasync with EIO while a
# file it names exists), vramd does not answer as though the submit were
# on disk: the client is told that it may not be queued, vramd says why
# and stops with a failing status, and a vramd started again on a sound
# disk serves the queue.  Before, a failed fsync counted as done.  Skips
# without a C compiler.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
cc=${CC:-cc}
command -v "$cc" >/dev/null || { echo "skip - $file/all: no C compiler ($cc) to build the library"; exit 77; }
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
if "$VRAM" submit --vram 1GiB -- true >"$tmp/first" 2>&1; then
    ok a_submit_on_a_sound_disk
else
    not_ok a_submit_on_a_sound_disk "$(cat "$tmp/first")"
fi

touch "$EIO_WHEN"
"$VRAM" submit --vram 1GiB -- true >"$tmp/second" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "may not be queued: vramd could not write its queue to disk (fsync: Input/output error) and stops" "$tmp/second"; then
    ok a_submit_whose_fsync_fails_is_told_so
else
    not_ok a_submit_whose_fsync_fails_is_told_so "exit $rc: $(cat "$tmp/second")"
fi

# vramd stops, and says why, with a failing status.
for _ in $(seq 1 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$daemon" 2>/dev/null; then
    not_ok vramd_stops "still running: $(tail -5 "$tmp/daemon.log")"
    stop_daemon
else
    wait "$daemon"
    status=$?
    daemon=
    if [ $status -ne 0 ] && grep -q "could not be written to disk (fsync: Input/output error): stopping" "$tmp/daemon.log"; then
        ok vramd_stops_and_says_why
    else
        not_ok vramd_stops_and_says_why "exit $status: $(tail -5 "$tmp/daemon.log")"
    fi
fi

# On a sound disk again, the next vramd serves the queue: the first job is
# there, and the command that was told "may or may not" finds out which.
rm -f "$EIO_WHEN"
start_daemon || { not_ok restarts "$(tail -5 "$tmp/daemon.log")"; finish; }
"$VRAM" queue --json >"$tmp/queue" 2>&1
if grep -q '"id":1[,}]' "$tmp/queue"; then
    ok the_next_vramd_serves_the_queue
else
    not_ok the_next_vramd_serves_the_queue "$(head -c 1000 "$tmp/queue")"
fi
finish
