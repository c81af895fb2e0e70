/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_backfill.c - EASY backfill past a blocked head of queue,
 * as the daemon's jobs meet it (issue 9), the reasons a request waits, and
 * the backfill window counted in shapes of request, not in requests (issue
 * 13: 1,000 large jobs at the head no longer hide the small ones behind).
 */
#define TEST_THREADED 1
#include <pthread.h>
#include <unistd.h>

#include "test.h"
#include "sched_test.h"

static vram_ledger *open_ledger(vram_ctx *ctx, unsigned window)
{
    vram_ledger_config cfg = { .interval_ms = 3600000, .backfill_window = window };
    vram_ledger *l = NULL;
    return ctx && vram_ledger_open(ctx, &cfg, &l) == 0 ? l : NULL;
}

typedef struct outcome {
    pthread_mutex_t lock;
    int status;
    uint64_t id;
    bool told;
} outcome;

static void on_lease(void *user, int status, const vram_lease_info *lease)
{
    outcome *o = user;
    pthread_mutex_lock(&o->lock);
    o->status = status;
    o->id = lease ? lease->id : 0;
    o->told = true;
    pthread_mutex_unlock(&o->lock);
}

static bool told(outcome *o)
{
    pthread_mutex_lock(&o->lock);
    bool t = o->told;
    pthread_mutex_unlock(&o->lock);
    return t;
}

static const char *reason(const char **slot)
{
    const char *r = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    return r ? r : "(none)";
}

static vram_lease_request job(uint64_t bytes, const char **why)
{
    return (vram_lease_request){ .bytes = bytes, .device = VRAM_DEVICE_ANY, .wait_ms = VRAM_WAIT_FOREVER,
                                 .flags = VRAM_LEASE_JOB, .wait_reason = why, .holder = "job" };
}

/* The write-up: A (15 GiB, its end unknown) runs on a 24 GiB card (21.6
 * GiB to use), B (15 GiB) waits for it, C (2 GiB) comes after B.  Whatever
 * A's duration, B can start when A ends and leave 6.6 GiB: C fits in that,
 * so it starts now instead of waiting the whole of A. */
TEST(a_small_job_starts_past_a_blocked_head_it_cannot_delay)
{
    vram_ctx *ctx = open_sim("G:24GiB", NULL);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l != NULL);
    const char *why_b = NULL, *why_c = NULL, *why_d = NULL;
    vram_lease_request a = job(15 * GiB, NULL);
    a.wait_ms = 0;
    vram_lease_info la, lc;
    CHECK_OK(vram_lease_acquire(l, &a, &la));
    outcome ob = { PTHREAD_MUTEX_INITIALIZER, 0, 0, false }, od = ob;
    vram_lease_request b = job(15 * GiB, &why_b);
    CHECK_OK(vram_lease_acquire_async(l, &b, on_lease, &ob, NULL));
    CHECK(!told(&ob));
    CHECK_STR_EQ(reason(&why_b), "Resources");
    vram_lease_request c = job(2 * GiB, &why_c);
    c.wait_ms = 300;
    CHECK_OK(vram_lease_acquire(l, &c, &lc));   /* old: not admitted within 300 ms */
    /* D (5 GiB) would not fit beside B once A ends: it waits its turn. */
    vram_lease_request d = job(5 * GiB, &why_d);
    CHECK_OK(vram_lease_acquire_async(l, &d, on_lease, &od, NULL));
    CHECK(!told(&od));
    CHECK_STR_EQ(reason(&why_d), "Priority");
    CHECK_STR_EQ(reason(&why_b), "Resources");
    CHECK_OK(vram_lease_release(l, la.id));
    CHECK(told(&ob) && ob.status == 0);
    CHECK(!told(&od));
    CHECK_STR_EQ(reason(&why_d), "Resources");   /* first in line now */
    CHECK_OK(vram_lease_release(l, lc.id));
    CHECK(told(&od) && od.status == 0);
    CHECK_OK(vram_lease_release(l, ob.id));
    CHECK_OK(vram_lease_release(l, od.id));
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

/* A job held up by a lease taken outside the queue waits for "Lease". */
TEST(a_job_held_up_by_a_lease_says_so)
{
    vram_ctx *ctx = open_sim("G:24GiB", NULL);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l != NULL);
    vram_lease_request lease = { .bytes = 12 * GiB, .device = VRAM_DEVICE_ANY, .wait_ms = 0 };
    vram_lease_info li;
    CHECK_OK(vram_lease_acquire(l, &lease, &li));
    const char *why = NULL;
    outcome o = { PTHREAD_MUTEX_INITIALIZER, 0, 0, false };
    vram_lease_request j = job(12 * GiB, &why);
    CHECK_OK(vram_lease_acquire_async(l, &j, on_lease, &o, NULL));
    CHECK_STR_EQ(reason(&why), "Lease");
    CHECK_OK(vram_lease_release(l, li.id));
    CHECK(told(&o) && o.status == 0);
    CHECK_OK(vram_lease_release(l, o.id));
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

/* 300 large jobs wait behind a large one that runs; a small one behind
 * them fits beside the first of them.  A window of 256 requests never
 * reached it; a window of shapes does, however many share the shape. */
TEST(many_large_jobs_at_the_head_do_not_hide_a_small_one)
{
    vram_ctx *ctx = open_sim("G:24GiB", NULL);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l != NULL);
    enum { N = 300 };
    static outcome big[N];
    for (int i = 0; i < N; i++) {
        big[i] = (outcome){ PTHREAD_MUTEX_INITIALIZER, 0, 0, false };
        vram_lease_request q = job(20 * GiB, NULL);
        CHECK_OK(vram_lease_acquire_async(l, &q, on_lease, &big[i], NULL));
    }
    CHECK(told(&big[0]) && !told(&big[1]));
    vram_ledger_device info;
    CHECK_OK(vram_ledger_device_info(l, 0, &info));
    CHECK_EQ(info.waiting, N - 1);
    vram_lease_request small = job(GiB, NULL);
    small.wait_ms = 300;
    vram_lease_info ls;
    CHECK_OK(vram_lease_acquire(l, &small, &ls));
    CHECK_OK(vram_lease_release(l, ls.id));
    CHECK_OK(vram_lease_release_holder(l, "job", NULL));
    CHECK_OK(vram_ledger_device_info(l, 0, &info));
    CHECK_EQ(info.waiting, 0);
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}
