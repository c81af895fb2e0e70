/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_stress.c - 100,000 tasks of random sizes, durations,
 * failures and out-of-memory errors across three simulated devices, while
 * another thread takes and returns external leases and the ledger samples
 * every few milliseconds.  Checks: never over a device's safe budget (at
 * every callback and at every sample), every task ends exactly once,
 * outcomes come back in order with the right result, nothing deadlocks,
 * and no lease is left behind.
 *
 * VRAM_STRESS_TASKS sets the count (scripts/test.sh runs it under
 * ThreadSanitizer too, where 100,000 takes a minute or two on two cores).
 */
#define TEST_THREADED 1
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define GiB (1024ull * 1024 * 1024)
#define MiB (1024ull * 1024)
#define NDEV 3
#define CLASSES 40
#define STALL_S 60

static const char *const spec = "small:8GiB:1GiB,mid:16GiB:3GiB,big:24GiB:2GiB";

/* What a task will do, from its id alone (splitmix64), so its outcome can
 * be checked. */
typedef struct plan {
    uint64_t bytes;
    unsigned sleep_us;
    int ooms;                       /* rungs that run out of memory before one works */
    int nrungs;
    bool fails;                     /* the callback fails (at the rung it reaches) */
    bool fallback;
    bool cpu_ok;
    int wait_ms;
    int priority;
    int device;
} plan;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static plan plan_of(uint64_t id)
{
    uint64_t r = mix(id), s = mix(r);
    plan p;
    p.bytes = 64 * MiB + (r % 96) * 64 * MiB;          /* 64 MiB .. 6 GiB */
    p.sleep_us = (s % 4 == 0) ? (unsigned)(s >> 8) % 300 : 0;
    p.nrungs = (int)((r >> 8) % 3);
    p.ooms = (r >> 12) % 25 == 0 ? 1 + (int)((r >> 16) % 3) : 0;    /* may outrun the ladder */
    p.fails = (r >> 20) % 50 == 0;
    p.fallback = (r >> 24) % 5 != 0;
    p.cpu_ok = (r >> 28) % 20 == 0;
    p.wait_ms = p.cpu_ok ? (int)((r >> 32) % 3) : -1;
    p.priority = (int)((s >> 4) % 3);
    p.device = (s >> 12) % 10 == 0 ? (int)((s >> 16) % NDEV) : VRAM_DEVICE_ANY;
    if (p.device == 0 && p.bytes > 7 * GiB)
        p.device = VRAM_DEVICE_ANY;
    return p;
}

typedef struct world {
    vram_ctx *ctx;
    vram_ledger *l;
    vram_sched *s;
    uint64_t cap[NDEV], others[NDEV];
    uint64_t in_use[NDEV];          /* atomic: bytes of callbacks running now */
    uint64_t over_budget;           /* atomic: violations seen */
    uint64_t samples;
    uint64_t *calls;                /* per task: callback invocations */
    uint64_t collected;             /* atomic: outcomes so far */
    bool stop;                      /* atomic */
    uint64_t churn_leases;
} world;

static world w;

static void enter(int device, uint64_t bytes)
{
    if (device < 0)
        return;
    uint64_t now = __atomic_add_fetch(&w.in_use[device], bytes, __ATOMIC_ACQ_REL);
    if (now + w.others[device] > w.cap[device])
        __atomic_add_fetch(&w.over_budget, 1, __ATOMIC_RELAXED);
}

static void leave(int device, uint64_t bytes)
{
    if (device >= 0)
        __atomic_sub_fetch(&w.in_use[device], bytes, __ATOMIC_ACQ_REL);
}

static int task_fn(vram_task_call *call)
{
    plan p = plan_of(call->task_id);
    __atomic_add_fetch(&w.calls[call->task_id], 1, __ATOMIC_RELAXED);
    enter(call->device, call->bytes);
    if (p.sleep_us) {
        struct timespec ts = { 0, (long)p.sleep_us * 1000 };
        nanosleep(&ts, NULL);
    }
    leave(call->device, call->bytes);
    if (call->rung < p.ooms && call->device != VRAM_DEVICE_CPU) {
        call->shortfall_bytes = MiB;
        return VRAM_TASK_OOM;
    }
    if (p.fails) {
        snprintf(call->reason, sizeof(call->reason), "planned failure");
        return VRAM_TASK_FAILED;
    }
    call->result = (void *)(uintptr_t)(call->task_id * 2 + 1);
    return VRAM_TASK_OK;
}

static int fallback_fn(vram_task_call *call)
{
    call->result = (void *)(uintptr_t)(call->task_id * 2 + 2);
    return VRAM_TASK_OK;
}

/* Samples the ledger's books: others + ours never past capacity. */
static void *sampler(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&w.stop, __ATOMIC_ACQUIRE)) {
        for (unsigned d = 0; d < NDEV; d++) {
            vram_ledger_device info;
            if (vram_ledger_device_info(w.l, d, &info))
                continue;
            if (info.others_bytes + info.leased_bytes + info.resident_bytes > info.capacity_bytes)
                __atomic_add_fetch(&w.over_budget, 1, __ATOMIC_RELAXED);
        }
        __atomic_add_fetch(&w.samples, 1, __ATOMIC_RELAXED);
        usleep(1000);
    }
    return NULL;
}

/* Another holder, through the same queue: takes and returns leases. */
static void *churn(void *arg)
{
    (void)arg;
    uint64_t i = 0;
    while (!__atomic_load_n(&w.stop, __ATOMIC_ACQUIRE)) {
        uint64_t r = mix(~i++);
        vram_lease_request q = { .bytes = 256 * MiB + (r % 16) * 256 * MiB,
                                 .device = VRAM_DEVICE_ANY, .priority = (int)(r >> 8) % 3,
                                 .wait_ms = (int64_t)((r >> 16) % 4), .holder = "churn",
                                 .expected_ms = 1 };
        vram_lease_info lease;
        if (vram_lease_acquire(w.l, &q, &lease) == 0) {
            w.churn_leases++;
            enter((int)lease.device, lease.bytes);
            usleep((r >> 24) % 300);
            leave((int)lease.device, lease.bytes);
            vram_lease_release(w.l, lease.id);
        }
    }
    return NULL;
}

/* Fails the run if outcomes stop coming: a deadlock, not a slow box. */
static void *watchdog(void *arg)
{
    (void)arg;
    uint64_t last = 0;
    int still = 0;
    while (!__atomic_load_n(&w.stop, __ATOMIC_ACQUIRE)) {
        sleep(1);
        uint64_t now = __atomic_load_n(&w.collected, __ATOMIC_ACQUIRE);
        still = now == last ? still + 1 : 0;
        last = now;
        if (still >= STALL_S) {
            printf("not ok - test_stress/all: no outcome for %d s after %llu: deadlock\n", STALL_S,
                   (unsigned long long)now);
            fflush(stdout);
            _exit(1);
        }
    }
    return NULL;
}

static uint64_t task_count(void)
{
    const char *env = getenv("VRAM_STRESS_TASKS");
    uint64_t n = env ? strtoull(env, NULL, 10) : 0;
    return n ? n : 100000;
}

static bool open_world(void)
{
    vram_options *o = NULL;
    vram_options_new(&o);
    vram_options_set(o, "backend", "sim", NULL);
    vram_options_set(o, "sim", spec, NULL);
    vram_ctx_open(&w.ctx, o);
    vram_options_free(o);
    vram_ledger_config lc = { .interval_ms = 5 };
    vram_sched_config sc = { .workers = 24 };
    if (!w.ctx || vram_ledger_open(w.ctx, &lc, &w.l) || vram_sched_open(w.l, &sc, &w.s))
        return false;
    for (unsigned d = 0; d < NDEV; d++) {
        vram_ledger_device info;
        vram_ledger_device_info(w.l, d, &info);
        w.cap[d] = info.capacity_bytes;
        w.others[d] = info.others_bytes;
    }
    return true;
}

static int submit_range(uint64_t from, uint64_t to)
{
    char cls[16];
    for (uint64_t id = from; id < to; id++) {
        plan p = plan_of(id);
        vram_rung rungs[2] = { { p.bytes / 2, task_fn }, { p.bytes / 4 + 1, task_fn } };
        snprintf(cls, sizeof(cls), "c%u", (unsigned)(id % CLASSES));
        vram_task t = { .fn = task_fn, .bytes = p.bytes, .ladder = rungs,
                        .nrungs = (unsigned)p.nrungs, .fallback = p.fallback ? fallback_fn : NULL,
                        .task_class = cls, .device = p.device, .priority = p.priority,
                        .cpu_ok = p.cpu_ok, .wait_ms = p.wait_ms };
        uint64_t got;
        int rc = vram_sched_submit(w.s, &t, &got);
        if (rc || got != id)
            return rc ? rc : -1;
    }
    return 0;
}

/* The outcome the plan allows, given where it ran. */
static bool outcome_fits_plan(const vram_outcome *o)
{
    plan p = plan_of(o->task_id);
    uintptr_t own = (uintptr_t)(o->task_id * 2 + 1), fell = own + 1;
    switch (o->status) {
    case VRAM_OUTCOME_DONE:
        return !p.fails && (uintptr_t)o->result == own &&
               (o->rung >= p.ooms || o->device == VRAM_DEVICE_CPU);
    case VRAM_OUTCOME_FELL_BACK:
        return p.fallback && (uintptr_t)o->result == fell;
    case VRAM_OUTCOME_FAILED:
        return !p.fallback && o->result == NULL;
    default:
        return false;
    }
}

TEST(a_hundred_thousand_tasks_end_exactly_once_in_budget_and_in_order)
{
    uint64_t n = task_count();
    memset(&w, 0, sizeof(w));
    w.calls = calloc(n, sizeof(*w.calls));
    CHECK(w.calls);
    CHECK(open_world());
    pthread_t th_sampler, th_churn, th_watch;
    pthread_create(&th_sampler, NULL, sampler, NULL);
    pthread_create(&th_churn, NULL, churn, NULL);
    pthread_create(&th_watch, NULL, watchdog, NULL);

    /* Half up front, so the queue is deep; the rest while it drains. */
    CHECK_OK(submit_range(0, n / 2));
    uint64_t bad_order = 0, bad_outcome = 0, by_status[4] = { 0 };
    for (uint64_t id = 0; id < n; id++) {
        if (id == n / 4)
            CHECK_OK(submit_range(n / 2, n));
        vram_outcome o;
        CHECK_OK(vram_sched_next(w.s, VRAM_WAIT_FOREVER, &o));
        __atomic_add_fetch(&w.collected, 1, __ATOMIC_RELEASE);
        bad_order += o.task_id != id;
        bad_outcome += !outcome_fits_plan(&o);
        if (o.status >= 0 && o.status < 4)
            by_status[o.status]++;
    }
    __atomic_store_n(&w.stop, true, __ATOMIC_RELEASE);
    pthread_join(th_sampler, NULL);
    pthread_join(th_churn, NULL);
    pthread_join(th_watch, NULL);
    vram_sched_stats st;
    CHECK_OK(vram_sched_get_stats(w.s, &st));

    CHECK_EQ_U64(bad_order, 0);
    CHECK_EQ_U64(bad_outcome, 0);
    CHECK_EQ_U64(w.over_budget, 0);
    CHECK(w.samples > 10);
    CHECK_EQ_U64(st.submitted, n);
    CHECK_EQ_U64(st.done + st.fell_back + st.failed + st.canceled, n);
    CHECK_EQ_U64(st.done, by_status[VRAM_OUTCOME_DONE]);
    CHECK_EQ_U64(st.queued + st.running, 0);
    CHECK(st.retried > 0 && st.fell_back > 0 && st.failed > 0 && st.on_cpu > 0);
    uint64_t never_ran = 0;
    for (uint64_t id = 0; id < n; id++)
        never_ran += w.calls[id] == 0 && plan_of(id).cpu_ok == false;
    CHECK_EQ_U64(never_ran, 0);     /* only timed-out CPU-shy tasks may skip their callback */
    vram_outcome o;
    CHECK_ERR(vram_sched_next(w.s, 0, &o), VRAM_ENOENT);

    /* No lease left behind, by the pool or the churning holder. */
    size_t leases;
    CHECK_OK(vram_lease_list(w.l, NULL, NULL, 0, &leases));
    CHECK_EQ(leases, 0);
    for (unsigned d = 0; d < NDEV; d++) {
        vram_ledger_device info;
        CHECK_OK(vram_ledger_device_info(w.l, d, &info));
        CHECK_EQ_U64(info.leased_bytes, 0);
        CHECK_EQ(info.leases, 0);
        CHECK_EQ(info.waiting, 0);
        CHECK_EQ_U64(st.leased_bytes[d], 0);
    }
    printf("# %llu tasks: %llu done, %llu fell back, %llu failed, %llu retries, %llu on the CPU; "
           "%llu external leases; %llu samples\n",
           (unsigned long long)n, (unsigned long long)st.done, (unsigned long long)st.fell_back,
           (unsigned long long)st.failed, (unsigned long long)st.retried,
           (unsigned long long)st.on_cpu, (unsigned long long)w.churn_leases,
           (unsigned long long)w.samples);
    CHECK_OK(vram_sched_close(w.s));
    CHECK_OK(vram_ledger_close(w.l));
    CHECK_OK(vram_ctx_close(w.ctx));
    free(w.calls);
}
