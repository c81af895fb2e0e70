/* SPDX-License-Identifier: MIT */
/*
 * tests/runner/test_start_fails.c - a job whose start fails before its
 * command (the enforcement's region cannot be made) leaves the caller's
 * descriptors as they were.  Its never-started child once had descriptor
 * 0 as its stderr, and closing the child closed the caller's stdin: the
 * next file a reused runner opened became the next job's stdin.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test.h"
#include "../sched/sched_test.h"

static int fail_memfd;

/* Ours, not libc's (the test links libvram statically): the region's
 * memfd cannot be made while fail_memfd is set. */
int memfd_create(const char *name, unsigned int flags)
{
    if (fail_memfd) {
        errno = EMFILE;
        return -1;
    }
    return (int)syscall(SYS_memfd_create, name, flags);
}

TEST(failed_start_keeps_descriptor_0)
{
    char shim[4200];
    TEST_BUILD_PATH(shim, "lib/libvram_shim.so");
    setenv("VRAM_SHIM_LIBRARY", shim, 1);
    int null = open("/dev/null", O_RDONLY);
    CHECK(null >= 0);
    CHECK(dup2(null, 0) == 0);
    close(null);
    struct stat before, after;
    CHECK(fstat(0, &before) == 0);

    vram_ctx *ctx = open_sim("G:24GiB", NULL);
    CHECK(ctx);
    char *argv[] = { "true", NULL };
    vram_job_spec j = VRAM_JOB_SPEC_INIT;
    j.argv = argv;
    j.vram_bytes = GiB;
    j.enforce = "hard";
    j.history = "-";
    vram_job_result res;
    fail_memfd = 1;
    CHECK_OK(vram_job_run(ctx, &j, &res));     /* it ran, as far as a start goes: never */
    fail_memfd = 0;
    CHECK_EQ(res.exit_status, 127);
    CHECK_CONTAINS(res.outcome, "not-started");

    CHECK(fstat(0, &after) == 0);
    CHECK_EQ((long long)after.st_ino, (long long)before.st_ino);
    CHECK_EQ((long long)after.st_dev, (long long)before.st_dev);
    /* And the next job runs (unenforced: under a sanitizer the shim,
     * built with it, cannot be preloaded into /bin/true). */
    j.enforce = "off";
    CHECK_OK(vram_job_run(ctx, &j, &res));
    CHECK_EQ(res.exit_status, 0);
    CHECK_OK(vram_ctx_close(ctx));
}
