# SPDX-License-Identifier: MIT
# tests/daemon/test_syncer_missing.sh - a vramd whose syncer thread cannot
# start (pthread_create fails: an LD_PRELOAD library this test builds fails
# one call, tried in turn until vramd says so) fsyncs each commit itself:
# a submit's answer goes out after an fsync of the queue.  Its commits were
# once deferred all the same, for a syncer that was not there, and nothing
# fsynced them.  Traced with strace; skips without strace or a C compiler.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
command -v strace >/dev/null || { echo "skip - $file/all: strace is not installed"; exit 77; }
cat >"$tmp/nothread.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
static int calls;
/* Fails the NOTHREAD_FAIL-th thread this process starts. */
int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg)
{
    const char *fail = getenv("NOTHREAD_FAIL");
    if (fail && atoi(fail) == ++calls)
        return EAGAIN;
    int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
        (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(RTLD_NEXT, "pthread_create");
    return real(t, a, f, arg);
}
C
build_preload "$tmp/nothread.c"

found=
for n in 1 2 3 4 5 6 7 8; do
    : >"$tmp/daemon.log"
    LD_PRELOAD=$preload NOTHREAD_FAIL=$n ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0" \
        "$VRAM" serve >>"$tmp/daemon.log" 2>&1 &
    daemon=$!
    for _ in $(seq 1 100); do   # until it answers, or has given up (another thread it needs)
        kill -0 "$daemon" 2>/dev/null || break
        "$VRAM" queue >/dev/null 2>&1 && break
        sleep 0.05
    done
    if kill -0 "$daemon" 2>/dev/null && grep -q "commits fsync on the main loop" "$tmp/daemon.log"; then
        found=$n
        break
    fi
    stop_daemon
    wait "$daemon" 2>/dev/null
    daemon=
done
[ -n "$found" ] || { echo "skip - $file/all: no failed pthread_create left vramd without its syncer"; exit 77; }
ok vramd_runs_without_its_syncer

trace_daemon fdatasync,fsync,sendto,recvfrom 200
"$VRAM" submit --vram 1GiB -- true >/dev/null
sleep 0.3
kill "$tracer" 2>/dev/null; wait "$tracer" 2>/dev/null
# Between the submit's request and its answer, an fsync of the queue.
if awk '/recvfrom\(.*\\"op\\":\\"submit\\"/ { asked = 1; next }
        asked && /f(data)?sync\(.*queue\.db/ { synced = 1; next }
        asked && /sendto\(/ { exit !synced }
        END { if (!asked) exit 1 }' "$tmp/strace"; then
    ok a_submit_is_fsynced_before_its_answer
else
    not_ok a_submit_is_fsynced_before_its_answer "$(grep -E 'submit|sync|sendto' "$tmp/strace" | head -c 2000)"
fi
finish
