/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_pool.c - the worker pool: the SadTalker card runs
 * exactly three frames at once, the ladder and what classes learn,
 * fallbacks, results in submission order, bad input, shutdown with tasks in
 * flight, the CPU when no device can take a task in time, cleanup hooks,
 * progress and stats, residents pinned while used, frame consistency.
 */
#define TEST_THREADED 1
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "sched_test.h"


typedef struct rig {
    vram_ctx *ctx;
    vram_ledger *l;
    vram_sched *s;
} rig;

static bool rig_open(rig *r, const char *spec, const char *state, unsigned workers,
                     vram_progress_fn progress, void *user)
{
    memset(r, 0, sizeof(*r));
    vram_ledger_config lc = { .interval_ms = 3600000 };
    vram_sched_config sc = { .workers = workers, .progress = progress, .progress_user = user };
    return (r->ctx = open_sim(spec, state)) && vram_ledger_open(r->ctx, &lc, &r->l) == 0 &&
           vram_sched_open(r->l, &sc, &r->s) == 0;
}

static int rig_close(rig *r)
{
    int rc = vram_sched_close(r->s);
    if (!rc)
        rc = vram_ledger_close(r->l);
    if (!rc)
        rc = vram_ctx_close(r->ctx);
    return rc;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- concurrency ------------------------------------------------------------ */

typedef struct gauge {
    pthread_mutex_t lock;
    int now, max;
    unsigned sleep_ms;
} gauge;

static int frame(vram_task_call *call)
{
    gauge *g = call->user;
    pthread_mutex_lock(&g->lock);
    if (++g->now > g->max)
        g->max = g->now;
    pthread_mutex_unlock(&g->lock);
    sleep_ms(g->sleep_ms);
    pthread_mutex_lock(&g->lock);
    g->now--;
    pthread_mutex_unlock(&g->lock);
    call->result = (void *)(uintptr_t)(call->task_id + 1);
    return VRAM_TASK_OK;
}

TEST(the_sadtalker_card_runs_exactly_three_frames_at_once)
{
    /* The write-up's T4: 14.7 GiB, 8.5 GiB used by others, 6.2 GiB free;
     * the default 10% margin leaves 4.73 GiB: room for three 1.5 GiB frames,
     * not four, however many workers wait. */
    rig r;
    CHECK(rig_open(&r, "T4:14.7GiB:8.5GiB", NULL, 8, NULL, NULL));
    gauge g = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 30 };
    vram_task t = { .fn = frame, .bytes = 3 * GiB / 2, .user = &g, .device = VRAM_DEVICE_ANY,
                    .wait_ms = VRAM_WAIT_FOREVER, .task_class = "enhance" };
    for (int i = 0; i < 12; i++)
        CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    for (uint64_t i = 0; i < 12; i++) {
        vram_outcome o;
        CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
        CHECK_EQ_U64(o.task_id, i);
        CHECK_EQ(o.status, VRAM_OUTCOME_DONE);
        CHECK_EQ_U64((uintptr_t)o.result, i + 1);
        CHECK_EQ(o.device, 0);
        CHECK_EQ_U64(o.bytes, 3 * GiB / 2);
    }
    CHECK_EQ(g.max, 3);
    vram_sched_stats st;
    CHECK_OK(vram_sched_get_stats(r.s, &st));
    CHECK_EQ_U64(st.done, 12);
    CHECK_EQ_U64(st.leased_bytes[0], 0);
    CHECK_OK(rig_close(&r));
}

/* ---- the ladder ----------------------------------------------------------------- */

typedef struct seen {
    pthread_mutex_t lock;
    int calls;
    uint64_t bytes[8];
    int rung[8];
} seen;

static void note(vram_task_call *call)
{
    seen *s = call->user;
    pthread_mutex_lock(&s->lock);
    if (s->calls < 8) {
        s->bytes[s->calls] = call->bytes;
        s->rung[s->calls] = call->rung;
    }
    s->calls++;
    pthread_mutex_unlock(&s->lock);
}

static int oom_512m(vram_task_call *call)
{
    note(call);
    call->shortfall_bytes = 512 * MiB;
    return VRAM_TASK_OOM;
}

static int oom_unknown(vram_task_call *call)
{
    note(call);
    return VRAM_TASK_OOM;
}

static int ok_fn(vram_task_call *call)
{
    note(call);
    call->result = (void *)"enhanced";
    return VRAM_TASK_OK;
}

static int fail_fn(vram_task_call *call)
{
    note(call);
    snprintf(call->reason, sizeof(call->reason), "no face found");
    return VRAM_TASK_FAILED;
}

static int original(vram_task_call *call)
{
    call->result = (void *)"original";
    return VRAM_TASK_OK;
}

static int broken_fallback(vram_task_call *call)
{
    snprintf(call->reason, sizeof(call->reason), "disk full");
    return VRAM_TASK_FAILED;
}

TEST(out_of_memory_moves_down_the_ladder_and_the_class_learns)
{
    rig r;
    CHECK(rig_open(&r, "G:24GiB", NULL, 2, NULL, NULL));
    seen s = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, { 0 } };
    vram_rung ladder[] = { { GiB, oom_unknown }, { GiB / 2, ok_fn } };
    vram_task t = { .fn = oom_512m, .bytes = 2 * GiB, .ladder = ladder, .nrungs = 2,
                    .fallback = original, .task_class = "enhance", .user = &s,
                    .device = VRAM_DEVICE_ANY, .wait_ms = VRAM_WAIT_FOREVER };
    CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    vram_outcome o;
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ(o.status, VRAM_OUTCOME_DONE);
    CHECK_STR_EQ((const char *)o.result, "enhanced");
    CHECK_EQ(o.rung, 2);
    CHECK_EQ(o.ooms, 2);
    CHECK_EQ(o.attempts, 3);
    CHECK_EQ(s.calls, 3);
    CHECK_EQ_U64(s.bytes[0], 2 * GiB);
    CHECK_EQ_U64(s.bytes[1], GiB);
    CHECK_EQ_U64(s.bytes[2], GiB / 2);
    vram_class_info ci;
    CHECK_OK(vram_ledger_class_info(r.l, "enhance", &ci));
    CHECK_EQ_U64(ci.extra_bytes, 512 * MiB);    /* the shortfall it reported */
    CHECK_EQ_U64(ci.ooms, 1);
    CHECK_OK(vram_ledger_class_info(r.l, "enhance#1", &ci));
    CHECK_EQ_U64(ci.extra_bytes, GiB / 4);      /* unknown: a quarter more */
    CHECK_OK(vram_ledger_class_info(r.l, "enhance#2", &ci));
    CHECK_EQ_U64(ci.runs, 1);
    /* The next task of the class starts from the raised estimate. */
    vram_task next = { .fn = ok_fn, .bytes = 2 * GiB, .task_class = "enhance", .user = &s,
                       .device = VRAM_DEVICE_ANY, .wait_ms = VRAM_WAIT_FOREVER };
    CHECK_OK(vram_sched_submit(r.s, &next, NULL));
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ_U64(o.bytes, 2 * GiB + 512 * MiB);
    CHECK_EQ_U64(s.bytes[3], 2 * GiB + 512 * MiB);
    vram_sched_stats st;
    CHECK_OK(vram_sched_get_stats(r.s, &st));
    CHECK_EQ_U64(st.retried, 2);
    CHECK_EQ_U64(st.done, 2);
    CHECK_OK(rig_close(&r));
}

TEST(failures_and_exhausted_ladders_fall_back_and_say_so)
{
    rig r;
    CHECK(rig_open(&r, "G:24GiB", NULL, 2, NULL, NULL));
    seen s = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, { 0 } };
    vram_rung one[] = { { GiB, oom_unknown } };
    vram_task fails = { .fn = fail_fn, .bytes = GiB, .fallback = original, .user = &s,
                        .device = VRAM_DEVICE_ANY, .wait_ms = VRAM_WAIT_FOREVER };
    vram_task exhausts = { .fn = oom_unknown, .bytes = 2 * GiB, .ladder = one, .nrungs = 1,
                           .fallback = original, .user = &s, .device = VRAM_DEVICE_ANY,
                           .wait_ms = VRAM_WAIT_FOREVER };
    vram_task bare = fails;
    bare.fallback = NULL;
    vram_task doubly = fails;
    doubly.fallback = broken_fallback;
    CHECK_OK(vram_sched_submit(r.s, &fails, NULL));
    CHECK_OK(vram_sched_submit(r.s, &exhausts, NULL));
    CHECK_OK(vram_sched_submit(r.s, &bare, NULL));
    CHECK_OK(vram_sched_submit(r.s, &doubly, NULL));
    vram_outcome o;
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ(o.status, VRAM_OUTCOME_FELL_BACK);
    CHECK_STR_EQ((const char *)o.result, "original");
    CHECK_STR_EQ(o.reason, "no face found");
    CHECK_EQ(o.rung, VRAM_RUNG_FALLBACK);
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ(o.status, VRAM_OUTCOME_FELL_BACK);
    CHECK_ERR(o.error, VRAM_EOOM);
    CHECK_EQ(o.ooms, 2);
    CHECK_CONTAINS(o.reason, "every rung");
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ(o.status, VRAM_OUTCOME_FAILED);
    CHECK(o.result == NULL);
    CHECK_STR_EQ(o.reason, "no face found");
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ(o.status, VRAM_OUTCOME_FAILED);
    CHECK_CONTAINS(o.reason, "the fallback failed too: disk full");
    vram_sched_stats st;
    CHECK_OK(vram_sched_get_stats(r.s, &st));
    CHECK_EQ_U64(st.fell_back, 2);
    CHECK_EQ_U64(st.failed, 2);
    CHECK_EQ_U64(st.retried, 1);
    CHECK_STR_EQ(vram_outcome_name(VRAM_OUTCOME_FELL_BACK), "fell back");
    CHECK_OK(rig_close(&r));
}

/* ---- order --------------------------------------------------------------------------- */

static int reverse_sleeper(vram_task_call *call)
{
    sleep_ms((unsigned)(40 - call->task_id % 40) / 4);
    call->result = (void *)(uintptr_t)(call->task_id * 7);
    return VRAM_TASK_OK;
}

TEST(results_come_back_in_submission_order)
{
    rig r;
    CHECK(rig_open(&r, "A:8GiB,B:8GiB", NULL, 6, NULL, NULL));
    vram_task t = { .fn = reverse_sleeper, .bytes = GiB, .device = VRAM_DEVICE_ANY,
                    .wait_ms = VRAM_WAIT_FOREVER };
    for (int i = 0; i < 60; i++) {
        uint64_t id;
        CHECK_OK(vram_sched_submit(r.s, &t, &id));
        CHECK_EQ_U64(id, (uint64_t)i);
    }
    vram_outcome o;
    CHECK_ERR(vram_sched_next(r.s, -7, &o), VRAM_EINVAL);
    for (uint64_t i = 0; i < 60; i++) {
        CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
        CHECK_EQ_U64(o.task_id, i);
        CHECK_EQ_U64((uintptr_t)o.result, i * 7);
    }
    CHECK_ERR(vram_sched_next(r.s, 0, &o), VRAM_ENOENT);
    CHECK_ERR(vram_sched_next(r.s, 20, &o), VRAM_ETIMEDOUT);
    CHECK_OK(vram_sched_shutdown(r.s, 0));
    CHECK_ERR(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o), VRAM_ENOENT);
    CHECK_OK(rig_close(&r));
}

/* ---- bad input ---------------------------------------------------------------------- */

TEST(bad_input_is_refused_with_a_clear_error)
{
    rig r;
    CHECK(rig_open(&r, "T4:14.7GiB:8.5GiB,RTX 4090:24GiB", NULL, 2, NULL, NULL));
    vram_task good = { .fn = ok_fn, .bytes = GiB, .device = VRAM_DEVICE_ANY,
                       .wait_ms = VRAM_WAIT_FOREVER };
    vram_task t = good;
    t.fn = NULL;
    CHECK_ERR(vram_sched_submit(r.s, &t, NULL), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "no callback");
    t = good;
    t.bytes = 0;
    CHECK_ERR(vram_sched_submit(r.s, &t, NULL), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "0 bytes");
    vram_rung growing[] = { { GiB / 2, ok_fn }, { GiB, ok_fn } };
    t = good;
    t.ladder = growing;
    t.nrungs = 2;
    CHECK_ERR(vram_sched_submit(r.s, &t, NULL), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "does not get cheaper: rung 1 needs 512.0 MiB, rung 2 needs 1.0 GiB");
    vram_rung no_fn[] = { { GiB / 2, NULL } };
    t.ladder = no_fn;
    t.nrungs = 1;
    CHECK_ERR(vram_sched_submit(r.s, &t, NULL), VRAM_EINVAL);
    vram_rung zero[] = { { 0, ok_fn } };
    t.ladder = zero;
    CHECK_ERR(vram_sched_submit(r.s, &t, NULL), VRAM_EINVAL);
    t = good;
    t.bytes = (uint64_t)-1;         /* a negative size that came through a cast */
    CHECK_ERR(vram_sched_submit(r.s, &t, NULL), VRAM_ENOFIT);
    t.bytes = 30 * GiB;
    CHECK_ERR(vram_sched_submit(r.s, &t, NULL), VRAM_ENOFIT);
    CHECK_CONTAINS(vram_last_error(), "needs 30.0 GiB");
    CHECK_CONTAINS(vram_last_error(), "has 24.0 GiB in total");
    t = good;
    t.device = 5;
    CHECK_ERR(vram_sched_submit(r.s, &t, NULL), VRAM_ENODEV);
    t = good;
    t.wait_ms = -3;
    CHECK_ERR(vram_sched_submit(r.s, &t, NULL), VRAM_EINVAL);
    CHECK_ERR(vram_sched_submit(NULL, &good, NULL), VRAM_EINVAL);
    CHECK_ERR(vram_sched_submit(r.s, NULL, NULL), VRAM_EINVAL);
    CHECK_ERR(vram_sched_add_cleanup(r.s, NULL, NULL), VRAM_EINVAL);
    vram_sched_stats st;
    CHECK_OK(vram_sched_get_stats(r.s, &st));
    CHECK_EQ_U64(st.submitted, 0);  /* nothing refused was counted */
    CHECK_OK(vram_sched_shutdown(r.s, 0));
    CHECK_ERR(vram_sched_submit(r.s, &good, NULL), VRAM_ESHUTDOWN);
    CHECK_CONTAINS(vram_last_error(), "shut down");
    CHECK_ERR(vram_ledger_close(r.l), VRAM_EBUSY);   /* the scheduler is still open */
    CHECK_OK(rig_close(&r));
}

/* ---- shutdown ------------------------------------------------------------------------------ */

TEST(shutdown_with_tasks_in_flight_finishes_or_cancels_every_one)
{
    for (int cancel = 0; cancel <= 1; cancel++) {
        rig r;
        CHECK(rig_open(&r, "G:10GiB", NULL, 4, NULL, NULL));   /* one 6 GiB at a time */
        gauge g = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 40 };
        vram_task t = { .fn = frame, .bytes = 6 * GiB, .user = &g, .device = VRAM_DEVICE_ANY,
                        .wait_ms = VRAM_WAIT_FOREVER };
        for (int i = 0; i < 6; i++)
            CHECK_OK(vram_sched_submit(r.s, &t, NULL));
        for (int i = 0; i < 200; i++) {       /* until the first has started */
            pthread_mutex_lock(&g.lock);
            int max = g.max;
            pthread_mutex_unlock(&g.lock);
            if (max)
                break;
            sleep_ms(1);
        }
        CHECK_OK(vram_sched_shutdown(r.s, cancel));
        int done = 0, canceled = 0;
        vram_outcome o;
        for (int i = 0; i < 6; i++) {
            CHECK_OK(vram_sched_next(r.s, 0, &o));   /* all ended already */
            CHECK_EQ_U64(o.task_id, (uint64_t)i);
            done += o.status == VRAM_OUTCOME_DONE;
            canceled += o.status == VRAM_OUTCOME_CANCELED;
            if (o.status == VRAM_OUTCOME_CANCELED)
                CHECK_CONTAINS(o.reason, "canceled at shutdown");
        }
        CHECK_ERR(vram_sched_next(r.s, 0, &o), VRAM_ENOENT);
        CHECK_EQ(done + canceled, 6);
        if (cancel)
            CHECK(done >= 1 && canceled >= 4);
        else
            CHECK_EQ(done, 6);
        CHECK_EQ(g.max, 1);
        CHECK_OK(rig_close(&r));
    }
}

static int count_free;

static void free_result(void *p)
{
    (void)p;
    __atomic_add_fetch(&count_free, 1, __ATOMIC_RELAXED);
}

TEST(closing_passes_uncollected_results_to_free_result)
{
    rig r;
    CHECK(rig_open(&r, "G:24GiB", NULL, 2, NULL, NULL));
    seen s = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, { 0 } };
    vram_task t = { .fn = ok_fn, .bytes = GiB, .user = &s, .device = VRAM_DEVICE_ANY,
                    .wait_ms = VRAM_WAIT_FOREVER, .free_result = free_result };
    for (int i = 0; i < 5; i++)
        CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    vram_outcome o;
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_OK(vram_sched_shutdown(r.s, 0));
    CHECK_OK(rig_close(&r));
    CHECK_EQ(count_free, 4);
}

/* ---- the CPU ------------------------------------------------------------------------------- */

static int where(vram_task_call *call)
{
    call->result = (void *)(intptr_t)(call->device + 100);
    return VRAM_TASK_OK;
}

TEST(cpu_ok_tasks_run_on_the_cpu_when_no_device_can_take_them_in_time)
{
    rig r;
    CHECK(rig_open(&r, "G:10GiB", NULL, 3, NULL, NULL));
    /* Another holder keeps most of the card, for as long as it likes. */
    vram_lease_request q = { .bytes = 8 * GiB, .device = VRAM_DEVICE_ANY, .wait_ms = 0 };
    vram_lease_info hold;
    CHECK_OK(vram_lease_acquire(r.l, &q, &hold));
    vram_task t = { .fn = where, .bytes = 4 * GiB, .device = VRAM_DEVICE_ANY, .cpu_ok = 1,
                    .wait_ms = 30, .fallback = original };
    CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    t.cpu_ok = 0;                   /* the same, but it may not use the CPU */
    CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    t.cpu_ok = 1;
    t.bytes = 40 * GiB;             /* no device could ever take it: CPU at once */
    t.wait_ms = VRAM_WAIT_FOREVER;
    CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    vram_outcome o;
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ(o.status, VRAM_OUTCOME_DONE);
    CHECK_EQ(o.device, VRAM_DEVICE_CPU);
    CHECK_EQ((intptr_t)o.result, VRAM_DEVICE_CPU + 100);
    CHECK(o.wait_ms >= 25);
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ(o.status, VRAM_OUTCOME_FELL_BACK);
    CHECK_ERR(o.error, VRAM_ETIMEDOUT);
    CHECK_CONTAINS(o.reason, "within 30 ms");
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ(o.device, VRAM_DEVICE_CPU);
    vram_sched_stats st;
    CHECK_OK(vram_sched_get_stats(r.s, &st));
    CHECK_EQ_U64(st.on_cpu, 2);
    CHECK_OK(vram_lease_release(r.l, hold.id));
    CHECK_OK(rig_close(&r));
}

/* ---- cleanup hooks, progress, stats ---------------------------------------------------------- */

typedef struct sim_user {
    vram_ctx *ctx;
    int hooks;
} sim_user;

static int allocate_2g(vram_task_call *call)
{
    sim_user *u = call->user;
    return vram_sim_set_usage(u->ctx, (unsigned)call->device, 2 * GiB) ? VRAM_TASK_FAILED
                                                                     : VRAM_TASK_OK;
}

static void empty_cache(void *user, int device)
{
    sim_user *u = user;
    u->hooks++;
    vram_sim_set_usage(u->ctx, (unsigned)device, 0);
}

typedef struct progress {
    int calls;
    uint64_t last_done;
} progress;

static void on_progress(void *user, const vram_sched_stats *st)
{
    progress *p = user;
    p->calls++;                     /* never called twice at once */
    p->last_done = st->done;
}

TEST(cleanup_hooks_report_what_the_device_saw_freed)
{
    char dir[] = "/tmp/vram-pool-XXXXXX";
    CHECK(mkdtemp(dir));
    rig r;
    progress p = { 0, 0 };
    CHECK(rig_open(&r, "G:24GiB", dir, 1, on_progress, &p));
    sim_user u = { r.ctx, 0 };
    CHECK_OK(vram_sched_add_cleanup(r.s, empty_cache, &u));
    vram_task t = { .fn = allocate_2g, .bytes = 3 * GiB, .user = &u, .device = VRAM_DEVICE_ANY,
                    .wait_ms = VRAM_WAIT_FOREVER };
    for (int i = 0; i < 3; i++)
        CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    vram_outcome o;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
        CHECK_EQ(o.status, VRAM_OUTCOME_DONE);
        CHECK_EQ_U64(o.freed_bytes, 2 * GiB);
    }
    CHECK_EQ(u.hooks, 3);
    vram_sched_stats st;
    CHECK_OK(vram_sched_get_stats(r.s, &st));
    CHECK_EQ_U64(st.cleanup_freed_bytes, 6 * GiB);
    CHECK_EQ(p.calls, 3);
    CHECK_EQ_U64(p.last_done, 3);
    char *json;
    CHECK_OK(vram_sched_stats_json(r.s, &json));
    CHECK_CONTAINS(json, "\"done\":3,");
    CHECK_CONTAINS(json, "\"cleanup_freed_bytes\":6442450944");
    CHECK_CONTAINS(json, "\"leased_bytes\":[0]");
    vram_free(json);
    CHECK_OK(rig_close(&r));
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

static int nothing(vram_task_call *call)
{
    (void)call;
    return VRAM_TASK_OK;
}

typedef struct ordered_progress {
    uint64_t last_done;
    int calls, backwards;
} ordered_progress;

static void count_in_order(void *user, const vram_sched_stats *st)
{
    ordered_progress *p = user;
    p->calls++;
    if (st->done != p->last_done + 1)
        p->backwards++;
    p->last_done = st->done;
}

TEST(progress_counts_only_go_up)
{
    /* Eight workers ending 2,000 tasks at once: each report counts one more
     * than the one before (a progress bar must not go back). */
    rig r;
    ordered_progress p = { 0, 0, 0 };
    CHECK(rig_open(&r, "G:24GiB", NULL, 8, count_in_order, &p));
    vram_task t = { .fn = nothing, .bytes = 1 << 20, .device = VRAM_DEVICE_ANY,
                    .wait_ms = VRAM_WAIT_FOREVER };
    for (int i = 0; i < 2000; i++)
        CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    vram_outcome o;
    for (int i = 0; i < 2000; i++)
        CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_OK(rig_close(&r));
    CHECK_EQ(p.calls, 2000);
    CHECK_EQ(p.backwards, 0);
    CHECK_EQ_U64(p.last_done, 2000);
}

/* ---- residents ------------------------------------------------------------------------------ */

typedef struct with_res {
    vram_ledger *l;
    vram_resident *res;
    int loaded_while_running;
} with_res;

static int uses_model(vram_task_call *call)
{
    with_res *w = call->user;
    vram_lease_request q = { .bytes = 6 * GiB, .device = 0, .wait_ms = 0 };
    vram_lease_info big;
    /* Needs the enhancer's room, but the enhancer is in use: refused. */
    if (vram_lease_acquire(w->l, &q, &big) == 0) {
        vram_lease_release(w->l, big.id);
        return VRAM_TASK_FAILED;
    }
    w->loaded_while_running = vram_resident_loaded(w->res);
    return VRAM_TASK_OK;
}

static void unload_model(void *user, const char *name, unsigned device, uint64_t bytes)
{
    (void)user;
    (void)name;
    (void)device;
    (void)bytes;
}

TEST(a_tasks_resident_is_pinned_while_it_runs)
{
    rig r;
    CHECK(rig_open(&r, "G:10GiB", NULL, 2, NULL, NULL));   /* capacity 9 GiB */
    with_res w = { r.l, NULL, 0 };
    CHECK_OK(vram_resident_register(r.l, "gfpgan", 0, 4 * GiB, unload_model, NULL, &w.res));
    vram_task t = { .fn = uses_model, .bytes = GiB, .user = &w, .resident = w.res,
                    .device = VRAM_DEVICE_ANY, .wait_ms = VRAM_WAIT_FOREVER };
    CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    vram_outcome o;
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ(o.status, VRAM_OUTCOME_DONE);
    CHECK_EQ(w.loaded_while_running, 1);
    /* Idle again: evictable for a lease that needs its room. */
    vram_lease_request q = { .bytes = 6 * GiB, .device = 0, .wait_ms = 0 };
    vram_lease_info big;
    CHECK_OK(vram_lease_acquire(r.l, &q, &big));
    CHECK(!vram_resident_loaded(w.res));
    CHECK_OK(vram_lease_release(r.l, big.id));
    /* A task that needs an evicted resident reserves its bytes again. */
    CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ(o.status, VRAM_OUTCOME_DONE);
    CHECK_EQ(w.loaded_while_running, 1);
    CHECK(vram_resident_loaded(w.res));
    CHECK_OK(vram_sched_close(r.s));
    r.s = NULL;
    CHECK_OK(vram_resident_unregister(w.res));
    CHECK_OK(vram_ledger_close(r.l));
    CHECK_OK(vram_ctx_close(r.ctx));
}

/* ---- devices ---------------------------------------------------------------------------------- */

TEST(tasks_use_every_device_and_per_device_estimates)
{
    rig r;
    CHECK(rig_open(&r, "A:8GiB,B:8GiB,C:8GiB", NULL, 12, NULL, NULL));
    gauge g = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 20 };
    vram_task t = { .fn = frame, .bytes = 3 * GiB, .user = &g, .device = VRAM_DEVICE_ANY,
                    .wait_ms = VRAM_WAIT_FOREVER };
    for (int i = 0; i < 12; i++)
        CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    int per_dev[3] = { 0, 0, 0 };
    vram_outcome o;
    for (int i = 0; i < 12; i++) {
        CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
        CHECK(o.device >= 0 && o.device < 3);
        per_dev[o.device]++;
    }
    CHECK(per_dev[0] && per_dev[1] && per_dev[2]);
    CHECK_EQ(g.max, 6);              /* two 3 GiB per 7.2 GiB card */
    /* Only on device 2, and smaller there. */
    uint64_t per[] = { UINT64_MAX, UINT64_MAX, GiB };
    t.device_bytes = per;
    t.ndevice_bytes = 3;
    CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
    CHECK_EQ(o.device, 2);
    CHECK_EQ_U64(o.bytes, GiB);
    CHECK_OK(rig_close(&r));
}

/* ---- images ------------------------------------------------------------------------------------ */

typedef struct frames {
    uint8_t small[8 * 8 * 3];
    uint8_t odd[16 * 12 * 4];
} frames;

static int make_frame(vram_task_call *call)
{
    frames *f = call->user;
    if (call->task_id == 2) {
        call->image = (vram_image){ 16, 12, 4, 16 * 4, f->odd };
    } else {
        call->image = (vram_image){ 8, 8, 3, 8 * 3, f->small };
    }
    call->result = call->image.data;
    return VRAM_TASK_OK;
}

TEST(an_odd_frame_is_resampled_to_the_first_frames_size_and_counted)
{
    rig r;
    CHECK(rig_open(&r, "G:24GiB", NULL, 3, NULL, NULL));
    frames f;
    memset(f.small, 200, sizeof(f.small));
    memset(f.odd, 200, sizeof(f.odd));
    vram_task t = { .fn = make_frame, .bytes = GiB, .user = &f, .device = VRAM_DEVICE_ANY,
                    .wait_ms = VRAM_WAIT_FOREVER };
    for (int i = 0; i < 4; i++)
        CHECK_OK(vram_sched_submit(r.s, &t, NULL));
    vram_outcome o;
    for (int i = 0; i < 4; i++) {
        CHECK_OK(vram_sched_next(r.s, VRAM_WAIT_FOREVER, &o));
        CHECK_EQ(o.image.width, 8);
        CHECK_EQ(o.image.height, 8);
        CHECK_EQ(o.image.channels, 3);
        CHECK_EQ(o.resampled, i == 2);
        if (o.resampled) {
            CHECK(o.image.data != f.odd);
            CHECK_EQ(o.image.data[0], 200);     /* a flat frame stays flat */
            CHECK_EQ(o.image.data[8 * 8 * 3 - 1], 200);
            vram_free(o.image.data);
        }
    }
    vram_sched_stats st;
    CHECK_OK(vram_sched_get_stats(r.s, &st));
    CHECK_EQ_U64(st.resampled, 1);
    CHECK_OK(rig_close(&r));
}
