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
/* The real call named `name` (SQLite takes either), then the stop. */
static ssize_t write_then_stop(const char *name, int fd, const void *buf, size_t n, off_t at)
{
    ssize_t (*real)(int, const void *, size_t, off_t) =
        (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, name);
    ssize_t r = real(fd, buf, n, at);
    stop_on_log(fd);
    return r;
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t at) { return write_then_stop("pwrite64", fd, buf, n, at); }
ssize_t pwrite(int fd, const void *buf, size_t n, off_t at) { return write_then_stop("pwrite", fd, buf, n, at); }
C
build_preload "$tmp/eio.c"

export EIO_WHEN=$tmp/disk-fails

# The SIGTERM may come with another write than the end's (a job's progress,
# which is not synced): then nothing is left to sync at the stop, and the
# try is made again, on a queue of its own.
for try in 1 2 3 4 5; do
    rm -f "$EIO_WHEN"
    : >"$tmp/daemon.log"
    export VRAM_DB=$tmp/queue$try.db
    start_daemon_preloaded || { not_ok starts "$(tail -5 "$tmp/daemon.log")"; finish; }
    # A job that ends when told; it is running before the disk fails.
    "$VRAM" submit --vram 1GiB -- sh -c 'while [ ! -e "$1" ]; do sleep 0.01; done' sh "$tmp/go$try" \
        >"$tmp/submit" 2>&1 || { not_ok submits "$(cat "$tmp/submit")"; finish; }
    for _ in $(seq 1 100); do "$VRAM" queue 2>/dev/null | grep -q running && break; sleep 0.05; done
    touch "$EIO_WHEN"
    : >"$tmp/go$try"
    daemon_exits || { not_ok vramd_stops "still running: $(tail -5 "$tmp/daemon.log")"; finish; }
    status=$daemon_status
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
