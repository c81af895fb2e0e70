/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_simulate.c - the admission engine in virtual time
 * (vram_sched_simulate): what each policy made of a trace, checked against
 * the lower bound; bad traces refused.  The figures are virtual time, so
 * they are the same on any machine: these are checks of what happened, not
 * of speed.
 */
#include <stdlib.h>

#include "test.h"
#include "sched_test.h"

#define CAP ((uint64_t)(21.6 * (double)GiB))

/* n tasks, one in a hundred a video job (12, 16, 20 GiB for 40, 30, 30 s),
 * at the head of the queue or spread through it; the rest 1.5 GiB, 3 s. */
static vram_sim_task *trace(size_t n, bool head)
{
    static const double gib[3] = { 12, 16, 20 }, sec[3] = { 40, 30, 30 };
    vram_sim_task *t = calloc(n, sizeof(*t));
    size_t v = 0;
    for (size_t i = 0; t && i < n; i++) {
        bool video = head ? i < n / 100 : i % 100 == 0;
        double g = video ? gib[v % 3] : 1.5, s = video ? sec[v % 3] : 3;
        v += video;
        t[i] = (vram_sim_task){ (uint64_t)(g * (double)GiB), (uint64_t)(s * 1000), (uint64_t)(s * 1000), 0 };
    }
    return t;
}

TEST(video_jobs_and_frames_backfill_within_six_percent_of_the_bound)
{
    vram_sim_task *t = trace(300, true);
    CHECK(t != NULL);
    vram_sim_result fill, fifo, one;
    CHECK_OK(vram_sched_simulate(t, 300, CAP, VRAM_SIM_BACKFILL, 0, &fill));
    CHECK_OK(vram_sched_simulate(t, 300, CAP, VRAM_SIM_NO_BACKFILL, 0, &fifo));
    CHECK_OK(vram_sched_simulate(t, 300, CAP, VRAM_SIM_ONE_AT_A_TIME, 0, &one));
    CHECK(fill.bound_ms > 0 && fill.bound_ms == fifo.bound_ms);
    CHECK_MSG(fill.makespan_ms <= fill.bound_ms * 106 / 100, "%llu ms against a bound of %llu",
              (unsigned long long)fill.makespan_ms, (unsigned long long)fill.bound_ms);
    CHECK(fill.makespan_ms >= fill.bound_ms);
    CHECK(fifo.makespan_ms > fill.makespan_ms);
    CHECK_EQ(one.most_at_once, 1);
    uint64_t sum = 0;
    for (size_t i = 0; i < 300; i++)
        sum += t[i].duration_ms;
    CHECK_EQ_U64(one.makespan_ms, sum);
    CHECK_EQ(fill.most_at_once, 14);    /* 14 frames of 1.5 GiB in 21.6 GiB */
    free(t);
}

/* Issue 13: 1.27x the bound with 1,000 large jobs at the head of 100,000
 * tasks, when the window was 256 requests.  Here 400 large jobs at the head
 * of 40,000 tasks: more than 256, and the frames behind still backfill. */
TEST(large_jobs_at_the_head_do_not_stop_backfill)
{
    size_t n = 40000;
    vram_sim_task *t = trace(n, true);
    CHECK(t != NULL);
    vram_sim_result r;
    CHECK_OK(vram_sched_simulate(t, n, CAP, VRAM_SIM_BACKFILL, 0, &r));
    CHECK_MSG(r.makespan_ms <= r.bound_ms * 106 / 100, "%.3fx the bound",
              (double)r.makespan_ms / (double)r.bound_ms);
    free(t);
}

TEST(bad_traces_are_refused)
{
    vram_sim_task t[2] = { { GiB, 1000, 0, 0 }, { 0, 1000, 0, 0 } };
    vram_sim_result r;
    CHECK_ERR(vram_sched_simulate(t, 2, CAP, VRAM_SIM_BACKFILL, 0, &r), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "task 1");
    t[1] = (vram_sim_task){ 30 * GiB, 1000, 0, 0 };
    CHECK_ERR(vram_sched_simulate(t, 2, CAP, VRAM_SIM_BACKFILL, 0, &r), VRAM_ENOFIT);
    CHECK_ERR(vram_sched_simulate(t, 1, CAP, 7, 0, &r), VRAM_EINVAL);
    CHECK_OK(vram_sched_simulate(t, 1, CAP, VRAM_SIM_BACKFILL, 0, &r));   /* unknown durations too */
    CHECK_EQ_U64(r.makespan_ms, 1000);
    /* 1,000 tasks of a year each, one at a time: 1,000 years of virtual
     * nanoseconds wrapped past 2^64 into a makespan under the bound. */
    size_t n = 1000;
    vram_sim_task *year = calloc(n, sizeof(*year));
    CHECK(year != NULL);
    for (size_t i = 0; i < n; i++)
        year[i] = (vram_sim_task){ 20 * GiB, 31536000000ull, 0, 0 };
    CHECK_ERR(vram_sched_simulate(year, n, CAP, VRAM_SIM_BACKFILL, 0, &r), VRAM_ERANGE);
    CHECK_CONTAINS(vram_last_error(), "584 years");
    CHECK_OK(vram_sched_simulate(year, 500, CAP, VRAM_SIM_BACKFILL, 0, &r));
    CHECK(r.makespan_ms >= r.bound_ms);
    free(year);
}
