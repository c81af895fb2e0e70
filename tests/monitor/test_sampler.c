/* SPDX-License-Identifier: MIT */
/*
 * tests/monitor/test_sampler.c - the sampler thread, its rings, window
 * statistics, thresholds and stage marks.
 */
#define TEST_THREADED 1
#include <time.h>
#include <unistd.h>

#include "test.h"

#define GiB (1024ull * 1024 * 1024)

static const char *spec_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/vram-sampler-%d.spec", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static vram_ctx *open_spec(const char *spec)
{
    vram_options *o = NULL;
    vram_options_new(&o);
    vram_options_set(o, "backend", "sim", NULL);
    vram_options_set(o, "sim", spec, NULL);
    vram_ctx *ctx = NULL;
    vram_ctx_open(&ctx, o);
    vram_options_free(o);
    return ctx;
}

TEST(samples_on_its_own_and_the_ring_does_not_grow)
{
    vram_ctx *ctx = open_spec("A:8GiB:1GiB,B:16GiB:2GiB");
    CHECK(ctx);
    vram_monitor *m;
    CHECK_OK(vram_monitor_start(ctx, 5, 8, &m));
    vram_sample s[32];
    size_t n = 0;
    for (int i = 0; i < 400 && n < 8; i++) {
        usleep(10000);
        CHECK_OK(vram_monitor_history(m, 1, s, 32, &n));
    }
    CHECK_EQ(n, 8);                        /* full, and no more than its length */
    usleep(60000);
    CHECK_OK(vram_monitor_history(m, 1, s, 32, &n));
    CHECK_EQ(n, 8);
    for (size_t i = 1; i < n; i++)
        CHECK(s[i].t_ms >= s[i - 1].t_ms);
    CHECK_EQ_U64(s[0].used_bytes, 2 * GiB);
    vram_device_snapshot d;
    CHECK_OK(vram_monitor_latest(m, 0, &d));
    CHECK_EQ_U64(d.info.total_bytes, 8 * GiB);
    CHECK_EQ_U64(d.safe_available_bytes, 7 * GiB - 8 * GiB / 10);
    CHECK(d.procs == NULL);
    CHECK_ERR(vram_monitor_history(m, 2, s, 32, &n), VRAM_ENODEV);
    CHECK_ERR(vram_ctx_close(ctx), VRAM_EBUSY);   /* the monitor still uses it */
    vram_monitor_stop(m);
    CHECK_OK(vram_ctx_close(ctx));
}

static int crossings[2][2];                  /* [level index][rising] */

static void on_cross(void *user, unsigned device, uint64_t level, uint64_t used, int rising)
{
    (void)device;
    (void)used;
    (void)level;
    int idx = (int)(intptr_t)user;
    __atomic_add_fetch(&crossings[idx][rising ? 1 : 0], 1, __ATOMIC_RELAXED);
}

TEST(thresholds_fire_once_per_crossing_and_windows_summarise)
{
    const char *path = spec_file("device G total=24GiB\n"
                                 "process pid=9 usage=0:10GiB,2:16GiB,3:17GiB,4:21GiB,6:22GiB,8:14GiB\n");
    char spec[128];
    snprintf(spec, sizeof(spec), "@%s", path);
    vram_ctx *ctx = open_spec(spec);
    CHECK(ctx);
    vram_monitor *m;
    /* An hour between samples: start takes the first, the test the rest. */
    CHECK_OK(vram_monitor_start(ctx, 3600 * 1000, 64, &m));
    CHECK_OK(vram_monitor_add_threshold(m, 15.0 * GiB, 0, on_cross, (void *)0));
    CHECK_OK(vram_monitor_add_threshold(m, 20.0 / 24.0 * 100.0, 1, on_cross, (void *)1));
    CHECK_ERR(vram_monitor_add_threshold(m, 150, 1, on_cross, NULL), VRAM_ERANGE);
    for (int i = 0; i < 12; i++)
        CHECK_OK(vram_monitor_sample_now(m));
    CHECK_EQ(crossings[0][1], 1);           /* over 15 GiB once ... */
    CHECK_EQ(crossings[0][0], 1);           /* ... and back under once */
    CHECK_EQ(crossings[1][1], 1);
    CHECK_EQ(crossings[1][0], 1);
    vram_window_stats w;
    CHECK_OK(vram_monitor_window(m, 0, 0, &w));
    CHECK_EQ(w.count, 13);
    CHECK_EQ_U64(w.used_min, 10 * GiB);
    CHECK_EQ_U64(w.used_max, 22 * GiB);
    CHECK(w.used_mean > 10.0 * GiB && w.used_mean < 22.0 * GiB);
    CHECK_EQ_U64(w.free_min, 2 * GiB);
    vram_monitor_stop(m);
    CHECK_OK(vram_ctx_close(ctx));
    unlink(path);
}

TEST(stage_marks_table_with_deltas)
{
    const char *path = spec_file("device G total=24GiB used=2GiB\n"
                                 "process pid=9 usage=0:0,1:2GiB,2:3GiB,3:1GiB\n");
    char spec[128];
    snprintf(spec, sizeof(spec), "@%s", path);
    vram_ctx *ctx = open_spec(spec);
    CHECK(ctx);
    vram_monitor *m;
    CHECK_OK(vram_monitor_start(ctx, 3600 * 1000, 16, &m));
    CHECK_OK(vram_monitor_mark(m, 0, "start"));
    CHECK_OK(vram_monitor_mark(m, 0, "after audio encoder"));
    CHECK_OK(vram_monitor_mark(m, 0, "after denoise"));
    CHECK_ERR(vram_monitor_mark(m, 3, "nowhere"), VRAM_ENODEV);
    CHECK_ERR(vram_monitor_mark(m, 0, NULL), VRAM_EINVAL);
    char *text;
    CHECK_OK(vram_monitor_marks_text(m, &text));
    CHECK_CONTAINS(text, "after audio encoder");
    CHECK_CONTAINS(text, "4.0 GiB");
    CHECK_CONTAINS(text, "+1.0 GiB");
    CHECK_CONTAINS(text, "-2.0 GiB");
    vram_free(text);
    vram_monitor_stop(m);
    CHECK_OK(vram_ctx_close(ctx));
    unlink(path);
}

TEST(stop_is_prompt_even_mid_interval)
{
    vram_ctx *ctx = open_spec("A:8GiB");
    CHECK(ctx);
    vram_monitor *m;
    CHECK_OK(vram_monitor_start(ctx, 3600 * 1000, 4, &m));
    usleep(10000);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    vram_monitor_stop(m);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double took = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    CHECK_MSG(took < 10.0, "stop took %.3f s (the interval is an hour)", took);
    CHECK_OK(vram_ctx_close(ctx));
    vram_monitor_stop(NULL);
}

TEST(failing_samples_leave_gaps_not_zeros)
{
    const char *path = spec_file("device G total=8GiB used=3GiB\nfault call=query nth=2 times=2\n");
    char spec[128];
    snprintf(spec, sizeof(spec), "@%s", path);
    vram_ctx *ctx = open_spec(spec);
    CHECK(ctx);
    vram_monitor *m;
    CHECK_OK(vram_monitor_start(ctx, 3600 * 1000, 16, &m));   /* query 1 */
    CHECK_ERR(vram_monitor_sample_now(m), VRAM_EDRIVER);
    CHECK_ERR(vram_monitor_sample_now(m), VRAM_EDRIVER);
    CHECK_OK(vram_monitor_sample_now(m));
    vram_sample s[16];
    size_t n;
    CHECK_OK(vram_monitor_history(m, 0, s, 16, &n));
    CHECK_EQ(n, 2);
    CHECK_EQ_U64(s[0].used_bytes, 3 * GiB);
    CHECK_EQ_U64(s[1].used_bytes, 3 * GiB);
    vram_monitor_stop(m);
    CHECK_OK(vram_ctx_close(ctx));
    unlink(path);
}
