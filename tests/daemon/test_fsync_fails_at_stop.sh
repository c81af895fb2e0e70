# SPDX-License-Identifier: MIT
# tests/daemon/test_fsync_fails_at_stop.sh - the last fsync of the queue's
# log, made as vramd stops (a job's end written in the VRAMD_END_SYNC_MS
# before a SIGTERM), fails: vramd says so and stops with a failing status,
# as when an fsync fails while it runs (test_fsync_fails.sh).  Before, it
# said nothing and exited 0.  An LD_PRELOAD library this test builds fails
# fdatasync with EIO, and sends vramd its SIGTERM as it writes the job's
# end to the log, while a file it names exists.  Skips without a C compiler.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
cc=${CC:-cc}
command -v "$cc" >/dev/null || { echo "skip - $file/all: no C compiler ($cc) to build the library"; exit 77; }
cat >"$tmp/eio.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* Whether the file EIO_WHEN names exists. */
static int armed(void)
{
    const char *when = getenv("EIO_WHEN");
    return when && access(when, F_OK) == 0;
}
/* fdatasync fails with EIO while armed. */
int fdatasync(int fd)
{
    if (armed()) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
/* The first write to a -wal file while armed sends this process SIGTERM. */
static void stop_on_log(int fd)
{
    static int sent;
    char link[64], path[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (sent || n < 4 || !armed())
        return;
    path[n] = '\0';
    if (strcmp(path + n - 4, "-wal"))
        return;
    sent = 1;
    kill(getpid(), SIGTERM);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t at)
{
    ssize_t (*real)(int, const void *, size_t, off_t) =
        (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
    ssize_t r = real(fd, buf, n, at);
    stop_on_log(fd);
    return r;
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t at)
{
    ssize_t (*real)(int, const void *, size_t, off_t) =
        (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    ssize_t r = real(fd, buf, n, at);
    stop_on_log(fd);
    return r;
}
C
"$cc" -shared -fPIC -o "$tmp/eio.so" "$tmp/eio.c" -ldl 2>"$tmp/cc.err" ||
    { echo "skip - $file/all: cannot build the library: $(head -c 200 "$tmp/cc.err")"; exit 77; }

export EIO_WHEN=$tmp/disk-fails
preload=$tmp/eio.so
[ -n "${LD_PRELOAD:-}" ] && preload=$LD_PRELOAD:$preload     # ASan's runtime first, in that build

# The SIGTERM may come with another write than the end's (a job's progress,
# which is not synced): then nothing is left to sync at the stop, and the
# try is made again, on a queue of its own.
for try in 1 2 3 4 5; do
    rm -f "$EIO_WHEN"
    : >"$tmp/daemon.log"
    export VRAM_DB=$tmp/queue$try.db
    LD_PRELOAD=$preload ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0" \
        start_daemon || { not_ok starts "$(tail -5 "$tmp/daemon.log")"; finish; }
    # A job that ends when told; it is running before the disk fails.
    "$VRAM" submit --vram 1GiB -- sh -c 'while [ ! -e "$1" ]; do sleep 0.01; done' sh "$tmp/go$try" \
        >"$tmp/submit" 2>&1 || { not_ok submits "$(cat "$tmp/submit")"; finish; }
    for _ in $(seq 1 100); do "$VRAM" queue 2>/dev/null | grep -q running && break; sleep 0.05; done
    touch "$EIO_WHEN"
    : >"$tmp/go$try"
    for _ in $(seq 1 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$daemon" 2>/dev/null; then
        not_ok vramd_stops "still running: $(tail -5 "$tmp/daemon.log")"
        stop_daemon
        finish
    fi
    wait "$daemon"
    status=$?
    daemon=
    grep -q "job 1 succeeded" "$tmp/daemon.log" && break
    status=
done
if [ -z "$status" ]; then
    echo "skip - $file/vramd_says_its_last_fsync_failed: the stop never came after the job's end"
elif [ "$status" -ne 0 ] && grep -q "could not be written to disk (fsync: Input/output error)" "$tmp/daemon.log"; then
    ok vramd_says_its_last_fsync_failed
else
    not_ok vramd_says_its_last_fsync_failed "exit $status: $(tail -5 "$tmp/daemon.log")"
fi
finish
