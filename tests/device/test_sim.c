/* SPDX-License-Identifier: MIT */
/*
 * tests/device/test_sim.c - the simulated backend: spec forms, scripted
 * processes, faults, and allocations shared between processes.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "device/backend.h"
#include "core/ctx.h"

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

static vram_ctx *open_sim(const char *spec, const char *state_dir, int *rc_out)
{
    vram_options *o = NULL;
    vram_options_new(&o);
    vram_options_set(o, "backend", "sim", NULL);
    if (spec)
        vram_options_set(o, "sim", spec, NULL);
    if (state_dir)
        vram_options_set(o, "sim-state", state_dir, NULL);
    vram_ctx *ctx = NULL;
    int rc = vram_ctx_open(&ctx, o);
    vram_options_free(o);
    if (rc_out)
        *rc_out = rc;
    return rc ? NULL : ctx;
}

static const char *write_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/vram-sim-test-%d.spec", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* The simulation a spec file of `text` describes (the file is removed
 * again); NULL with *rc_out its error. */
static vram_ctx *open_spec_text(const char *text, int *rc_out)
{
    const char *path = write_file(text);
    char spec[128];
    snprintf(spec, sizeof(spec), "@%s", path);
    vram_ctx *ctx = open_sim(spec, NULL, rc_out);
    unlink(path);
    return ctx;
}

TEST(default_is_one_24_gib_card_and_says_simulated)
{
    vram_ctx *ctx = open_sim(NULL, NULL, NULL);
    CHECK(ctx);
    unsigned n;
    CHECK_OK(vram_device_count(ctx, &n));
    CHECK_EQ(n, 1);
    vram_device_info in;
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_EQ_U64(in.total_bytes, 24 * GiB);
    CHECK_EQ_U64(in.used_bytes, 0);
    CHECK(vram_ctx_is_simulated(ctx));
    CHECK_CONTAINS(vram_ctx_notice(ctx), "not real cards");
    unsigned minor;                 /* no device file to number */
    CHECK_ERR(vram_device_minor(ctx, 0, &minor), VRAM_ENOTSUP);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(short_form)
{
    vram_ctx *ctx = open_sim("T4:14.7GiB:8.5GiB, RTX 4090:24GiB", NULL, NULL);
    CHECK_MSG(ctx, "%s", vram_last_error());
    unsigned n;
    CHECK_OK(vram_device_count(ctx, &n));
    CHECK_EQ(n, 2);
    vram_device_info a, b;
    CHECK_OK(vram_device_query(ctx, 0, &a));
    CHECK_OK(vram_device_query(ctx, 1, &b));
    CHECK_STR_EQ(a.name, "T4");
    CHECK_STR_EQ(b.name, "RTX 4090");
    uint64_t total;
    vram_size_parse("14.7GiB", &total);
    CHECK_EQ_U64(a.total_bytes, total);
    CHECK_EQ_U64(a.used_bytes, 17 * GiB / 2);
    CHECK_EQ_U64(a.free_bytes, total - 17 * GiB / 2);
    CHECK_EQ_U64(b.used_bytes, 0);
    CHECK_ERR(vram_device_query(ctx, 2, &a), VRAM_ENODEV);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(bad_specs_are_refused_with_the_value)
{
    static const struct { const char *spec, *says; } bad[] = {
        { "T4", "expected NAME:TOTAL[:USED]" },
        { "T4:14.7XB", "unknown unit 'XB'" },
        { ":8G", "no name" },
        { "T4:8G:9G", "used is more than total" },
        { "T4:0", "total must be more than 0" },
        { "T4:-3G", "negative" },
        { "a:1G:2M:3", "expected NAME:TOTAL[:USED]" },
        { ",", "names no device" },
        { "T4:1e30G", "too large" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc;
        CHECK_MSG(!open_sim(bad[i].spec, NULL, &rc), "'%s' was accepted", bad[i].spec);
        CHECK_MSG(rc == VRAM_EINVAL || rc == VRAM_ERANGE, "'%s': %s", bad[i].spec, vram_errname(rc));
        CHECK_CONTAINS(vram_last_error(), bad[i].says);
        CHECK_CONTAINS(vram_last_error(), "--sim");
    }
    int rc;
    CHECK(!open_sim("@/nonexistent/spec", NULL, &rc));
    CHECK_EQ(rc, VRAM_ENOENT);
    CHECK(!open_sim(NULL, "/nonexistent/dir", &rc));
    CHECK_EQ(rc, VRAM_ENOENT);
}

TEST(file_form_scripted_processes_follow_the_query_clock)
{
    vram_ctx *ctx = open_spec_text(
         "# a T4 shared with a scripted process\n"
         "device \"Tesla T4\" total=15GiB used=1GiB\n"
         "device A100 total=40GiB\n"
         "process pid=4242 name=python usage=0:2GiB,2:5GiB,4:0\n"
         "process pid=4343 device=1 name=\"other job\" used=3GiB\n", NULL);
    CHECK_MSG(ctx, "%s", vram_last_error());
    uint64_t want[] = { 3 * GiB, 3 * GiB, 6 * GiB, 6 * GiB, 1 * GiB, 1 * GiB };
    for (int q = 0; q < 6; q++) {
        vram_device_info in;
        CHECK_OK(vram_device_query(ctx, 0, &in));
        CHECK_MSG(in.used_bytes == want[q], "query %d: used %llu, want %llu", q,
                  (unsigned long long)in.used_bytes, (unsigned long long)want[q]);
    }
    vram_proc p[4];
    size_t n;
    CHECK_OK(vram_device_processes(ctx, 0, p, 4, &n));
    CHECK_EQ(n, 1);                              /* at 0 bytes it still exists */
    CHECK_OK(vram_device_processes(ctx, 1, p, 4, &n));
    CHECK_EQ(n, 1);
    CHECK_STR_EQ(p[0].name, "other job");
    CHECK_EQ_U64(p[0].used_bytes, 3 * GiB);
    CHECK_OK(vram_ctx_close(ctx));
}

/* A driver's reserve, as NVML v2 gives it: neither used nor free. */
TEST(reserved_memory_is_outside_used_and_free)
{
    vram_ctx *ctx = open_spec_text("device H100 total=80GiB used=2GiB reserved=512MiB\n"
                                   "process pid=4242 used=10GiB\n"
                                   "device T4 total=15GiB\n", NULL);
    CHECK_MSG(ctx, "%s", vram_last_error());
    vram_device_info in;
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK(in.have & VRAM_HAVE_RESERVED);
    CHECK_EQ_U64(in.driver_reserved_bytes, 512 * MiB);
    CHECK_EQ_U64(in.used_bytes, 12 * GiB);
    CHECK_EQ_U64(in.used_bytes + in.free_bytes + in.driver_reserved_bytes, in.total_bytes);
    CHECK_OK(vram_device_query(ctx, 1, &in));
    CHECK(!(in.have & VRAM_HAVE_RESERVED));          /* none said: as a v1 driver */
    CHECK_EQ_U64(in.free_bytes, 15 * GiB);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(file_errors_name_file_and_line)
{
    static const struct { const char *text, *says; } bad[] = {
        { "device T4 total=8G\nfrobnicate\n", ":2: unknown statement 'frobnicate'" },
        { "device T4\n", ":1: device 'T4' needs total=SIZE" },
        { "device T4 total=8XB\n", ":1: '8XB' is not a size" },
        { "device T4 total=8G colour=red\n", ":1: unknown key 'colour'" },
        { "device T4 total=8G\nprocess pid=1 used=1G usage=0:1G\n", ":2: a process needs used" },
        { "device T4 total=8G\nprocess pid=x used=1G\n", ":2: pid='x'" },
        { "device T4 total=8G\nprocess pid=1 usage=5:1G,3:2G\n", ":2: usage times must increase" },
        { "device T4 total=8G\nprocess pid=1 device=3 used=1G\n", "process 1 is on device 3" },
        { "device \"T4 total=8G\n", ":1: unterminated quote" },
        { "# nothing\n", "describes no device" },
        { "device T4 total=8G\nfault call=melt nth=1\n", ":2: call='melt'" },
        { "device T4 total=8G\nfault call=query nth=1 error=bogus\n", ":2: error='bogus'" },
        { "device T4 total=8G used=6G reserved=3G\n", ":1: device 'T4': used and reserved are more than total" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc;
        CHECK_MSG(!open_spec_text(bad[i].text, &rc), "case %zu was accepted", i);
        CHECK_EQ(rc, VRAM_EINVAL);
        CHECK_CONTAINS(vram_last_error(), bad[i].says);
    }
}

TEST(injected_faults_fail_the_nth_call)
{
    vram_ctx *ctx = open_spec_text("device T4 total=8G\n"
                                   "fault call=query nth=3 times=2 error=driver\n"
                                   "fault call=processes nth=1\n", NULL);
    CHECK_MSG(ctx, "%s", vram_last_error());
    vram_device_info in;
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_ERR(vram_device_query(ctx, 0, &in), VRAM_EDRIVER);
    CHECK_CONTAINS(vram_last_error(), "injected fault");
    CHECK_ERR(vram_device_query(ctx, 0, &in), VRAM_EDRIVER);
    CHECK_OK(vram_device_query(ctx, 0, &in));
    vram_proc p[1];
    size_t n;
    CHECK_ERR(vram_device_processes(ctx, 0, p, 1, &n), VRAM_EDRIVER);
    CHECK_OK(vram_device_processes(ctx, 0, p, 1, &n));
    /* The same countdowns work on any backend through the wrapper. */
    CHECK_OK(vram__backend_inject_fault(ctx->be, VRAM__CALL_COUNT, 1, 1, VRAM_EINTERNAL));
    unsigned count;
    CHECK_ERR(vram_device_count(ctx, &count), VRAM_EINTERNAL);
    CHECK_OK(vram_device_count(ctx, &count));
    CHECK_ERR(vram__backend_inject_fault(ctx->be, VRAM__CALL_COUNT, 0, 1, VRAM_EIO), VRAM_EINVAL);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(allocations_are_shared_through_the_state_dir)
{
    char dir[] = "/tmp/vram-sim-state-XXXXXX";
    CHECK(mkdtemp(dir));
    vram_ctx *ctx = open_sim("T4:14.7GiB:8.5GiB", dir, NULL);
    CHECK_MSG(ctx, "%s", vram_last_error());
    CHECK_OK(vram_sim_set_usage(ctx, 0, 2 * GiB));
    vram_device_info in;
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_EQ_U64(in.used_bytes, 21 * GiB / 2);
    vram_proc p[4];
    size_t n;
    CHECK_OK(vram_device_processes(ctx, 0, p, 4, &n));
    CHECK_EQ(n, 1);
    CHECK_EQ(p[0].pid, (uint32_t)getpid());
    CHECK_EQ_U64(p[0].used_bytes, 2 * GiB);
    CHECK(p[0].name[0] != '\0');

    /* More than is free is a simulated out-of-memory, and changes nothing. */
    CHECK_ERR(vram_sim_set_usage(ctx, 0, 7 * GiB), VRAM_EOOM);
    CHECK_CONTAINS(vram_last_error(), "out of memory");
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_EQ_U64(in.used_bytes, 21 * GiB / 2);

    /* Another process's allocation counts while it lives, not after. */
    int ready[2], go[2];
    CHECK(pipe(ready) == 0 && pipe(go) == 0);
    pid_t child = fork();
    if (child == 0) {
        vram_ctx *c2 = open_sim("T4:14.7GiB:8.5GiB", dir, NULL);
        int ok = c2 && vram_sim_set_usage(c2, 0, 1 * GiB) == 0;
        char b = ok ? 'y' : 'n';
        if (write(ready[1], &b, 1) != 1 || read(go[0], &b, 1) != 1)
            _exit(2);
        _exit(0);                    /* exits without clearing: death must clear it */
    }
    char b = 0;
    CHECK(read(ready[0], &b, 1) == 1 && b == 'y');
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_EQ_U64(in.used_bytes, 23 * GiB / 2);
    CHECK(write(go[1], "x", 1) == 1);
    waitpid(child, NULL, 0);
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_EQ_U64(in.used_bytes, 21 * GiB / 2);

    CHECK_OK(vram_sim_set_usage(ctx, 0, 0));
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_EQ_U64(in.used_bytes, 17 * GiB / 2);
    CHECK_OK(vram_ctx_close(ctx));

    /* Without a state dir, or on another backend, it is refused. */
    ctx = open_sim(NULL, NULL, NULL);
    CHECK_ERR(vram_sim_set_usage(ctx, 0, 1), VRAM_ENOTSUP);
    CHECK_OK(vram_ctx_close(ctx));
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

TEST(clock_in_milliseconds)
{
    vram_ctx *ctx = open_spec_text("clock ms\ndevice T4 total=8G\nprocess pid=7 usage=0:1G,150:2G\n", NULL);
    CHECK_MSG(ctx, "%s", vram_last_error());
    vram_device_info in;
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_EQ_U64(in.used_bytes, 1 * GiB);
    usleep(200 * 1000);
    CHECK_OK(vram_device_query(ctx, 0, &in));
    CHECK_EQ_U64(in.used_bytes, 2 * GiB);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(forced_backend_names)
{
    vram_options *o;
    CHECK_OK(vram_options_new(&o));
    CHECK_ERR(vram_options_set(o, "backend", "cuda", NULL), VRAM_EINVAL);
    CHECK_OK(vram_options_set(o, "backend", "nvml", NULL));
    CHECK_OK(vram_options_set(o, "nvml-library", "/nonexistent/libnvidia-ml.so.1", NULL));
    vram_ctx *ctx;
    CHECK_ERR(vram_ctx_open(&ctx, o), VRAM_ENOLIB);   /* forced nvml never falls back */
    CHECK(ctx == NULL);
    vram_options_free(o);
}
