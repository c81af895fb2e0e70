# SPDX-License-Identifier: MIT
# tests/daemon/test_spawner_fork_fails.sh - a fork the spawner cannot make
# (EAGAIN: a process limit, memory) costs vramd that one runner's start by
# the spawner, not the spawner: that runner is forked and exec'd, its job
# runs, vramd says why, and the next runner is the spawner's again.
# Before, one fork error took the spawner down until vramd restarted.  An
# LD_PRELOAD library this test builds fails the spawner's clone while a
# file exists.  Skips without a C compiler.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
# The spawner keeps only the loader's variables, so the file's name is
# built into the library.
cat >"$tmp/nofork.c" <<C
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>
/* syscall(SYS_clone, ...), the spawner's fork, fails with EAGAIN while
 * $tmp/nofork exists; every other call is the real one (its six words
 * passed on as they came: the x86-64 and aarch64 ABIs allow it). */
long syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (n == SYS_clone && access("$tmp/nofork", F_OK) == 0) {
        errno = EAGAIN;
        return -1;
    }
    long (*real)(long, ...) = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
C
build_preload "$tmp/nofork.c"
# vramd, its spawner and the submitters alike: a runner whose loader
# settings differ from vramd's is exec'd, never the spawner's.
export LD_PRELOAD=$preload ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0"
start_daemon || exit 1

touch "$tmp/nofork"
job=$("$VRAM" submit --vram 1GiB -- true)
if wait_until 30 is_state "$job" succeeded; then
    ok a_job_runs_while_the_spawner_cannot_fork
else
    not_ok a_job_runs_while_the_spawner_cannot_fork "job $job is $(state_of "$job"): $(tail -3 "$tmp/daemon.log")"
fi
if grep -q "the spawner cannot fork (Resource temporarily unavailable)" "$tmp/daemon.log"; then
    ok vramd_says_the_spawner_could_not_fork
else
    not_ok vramd_says_the_spawner_could_not_fork "$(tail -3 "$tmp/daemon.log")"
fi

# Another environment: no parked runner takes it, so a runner is started.
rm -f "$tmp/nofork"
job=$(VRAM_TEST_OTHER=1 "$VRAM" submit --vram 1GiB -- sh -c "tr '\\0' '\\n' </proc/\$PPID/environ >$tmp/runner.env")
wait_until 30 is_state "$job" succeeded || not_ok second_job_runs "job $job is $(state_of "$job")"
if grep -qx VRAMD_SPAWNER=1 "$tmp/runner.env" && ! grep -q "from now on" "$tmp/daemon.log"; then
    ok the_spawner_outlives_a_fork_error
else
    not_ok the_spawner_outlives_a_fork_error "$(tail -3 "$tmp/daemon.log")"
fi
finish
