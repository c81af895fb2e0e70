/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_ledger.c - the ledger and its admission policy through
 * external leases: what fits, refusals with both numbers, wake-ups on
 * release, holders, others learnt from samples, bounded backfill,
 * priorities, best fit across devices, residents and their eviction,
 * deadlines and cancellation.
 */
#define TEST_THREADED 1
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "sched_test.h"


/* A ledger that samples only when told (refresh), for deterministic tests. */
static vram_ledger *open_ledger(vram_ctx *ctx, int no_backfill)
{
    vram_ledger_config cfg = { .interval_ms = 3600000, .no_backfill = no_backfill };
    vram_ledger *l = NULL;
    return ctx && vram_ledger_open(ctx, &cfg, &l) == 0 ? l : NULL;
}

/* Frees every lease this process holds under the default holder name;
 * returns how many, or -1. */
static long release_mine(vram_ledger *l)
{
    char holder[32];
    size_t n;
    snprintf(holder, sizeof(holder), "pid %u", (unsigned)getpid());
    return vram_lease_release_holder(l, holder, &n) ? -1 : (long)n;
}

static vram_lease_request req(uint64_t bytes, int64_t wait_ms)
{
    return (vram_lease_request){ .bytes = bytes, .device = VRAM_DEVICE_ANY, .wait_ms = wait_ms };
}

static uint64_t room(vram_ledger *l, unsigned dev)
{
    vram_ledger_device d;
    return vram_ledger_device_info(l, dev, &d) ? 0 : d.available_bytes;
}

/* Records async outcomes in order. */
typedef struct record {
    pthread_mutex_t lock;
    int n;
    int status[64];
    uint64_t id[64];
    const char *tag[64];
} record;

typedef struct tagged {
    record *rec;
    const char *tag;
} tagged;

static void on_lease(void *user, int status, const vram_lease_info *lease)
{
    tagged *t = user;
    pthread_mutex_lock(&t->rec->lock);
    int i = t->rec->n++;
    t->rec->status[i] = status;
    t->rec->id[i] = lease ? lease->id : 0;
    t->rec->tag[i] = t->tag;
    pthread_mutex_unlock(&t->rec->lock);
}

static int granted(record *r, const char *tag)
{
    pthread_mutex_lock(&r->lock);
    int found = -1;
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->tag[i], tag) && r->status[i] == 0)
            found = i;
    pthread_mutex_unlock(&r->lock);
    return found;
}

static int count(record *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->n;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static uint64_t lease_of(record *r, const char *tag)
{
    int i = granted(r, tag);
    return i >= 0 ? r->id[i] : 0;
}

TEST(admits_only_what_fits_under_the_margin)
{
    vram_ctx *ctx = open_sim("G:24GiB", NULL);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l);
    vram_lease_info a, b, c;
    vram_lease_request q = req(10 * GiB, 0);
    CHECK_OK(vram_lease_acquire(l, &q, &a));
    CHECK_OK(vram_lease_acquire(l, &q, &b));
    q.bytes = 2 * GiB;              /* 24 - 2.4 margin - 20 = 1.6 GiB left */
    CHECK_ERR(vram_lease_acquire(l, &q, &c), VRAM_ETIMEDOUT);
    CHECK_CONTAINS(vram_last_error(), "not admitted within 0 ms");
    q.bytes = 3 * GiB / 2;
    CHECK_OK(vram_lease_acquire(l, &q, &c));
    vram_ledger_device d;
    CHECK_OK(vram_ledger_device_info(l, 0, &d));
    CHECK_EQ_U64(d.capacity_bytes, 24 * GiB - 24 * GiB / 10);
    CHECK_EQ_U64(d.leased_bytes, 43 * GiB / 2);
    CHECK_EQ(d.leases, 3);
    CHECK(d.available_bytes < GiB / 8);
    CHECK_OK(vram_lease_release(l, b.id));
    CHECK_ERR(vram_lease_release(l, b.id), VRAM_ENOENT);
    CHECK_EQ_U64(room(l, 0), d.available_bytes + 10 * GiB);
    CHECK_ERR(vram_ledger_close(l), VRAM_EBUSY);
    CHECK_ERR(vram_ctx_close(ctx), VRAM_EBUSY);
    CHECK_OK(vram_lease_release(l, a.id));
    CHECK_OK(vram_lease_release(l, c.id));
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(refuses_what_no_device_can_hold_with_both_numbers)
{
    vram_ctx *ctx = open_sim("T4:14.7GiB:8.5GiB,RTX 4090:24GiB", NULL);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l);
    vram_lease_request q = req(30 * GiB, VRAM_WAIT_FOREVER);
    CHECK_ERR(vram_lease_acquire(l, &q, NULL), VRAM_ENOFIT);
    CHECK_CONTAINS(vram_last_error(), "needs 30.0 GiB");
    CHECK_CONTAINS(vram_last_error(), "GPU 1 (RTX 4090), has 24.0 GiB in total, 21.6 GiB after");
    q.bytes = 0;
    CHECK_ERR(vram_lease_acquire(l, &q, NULL), VRAM_EINVAL);
    q.bytes = GiB;
    q.device = 2;
    CHECK_ERR(vram_lease_acquire(l, &q, NULL), VRAM_ENODEV);
    q.device = 0;                   /* 14 GiB fits the 4090, not the T4 it asks for */
    q.bytes = 14 * GiB;
    CHECK_ERR(vram_lease_acquire(l, &q, NULL), VRAM_ENOFIT);
    q.wait_ms = -5;
    CHECK_ERR(vram_lease_acquire(l, &q, NULL), VRAM_EINVAL);
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

typedef struct waiter {
    vram_ledger *l;
    uint64_t bytes;
    int rc;
    vram_lease_info info;
    uint64_t granted_ns;
} waiter;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *acquire_thread(void *arg)
{
    waiter *w = arg;
    vram_lease_request q = req(w->bytes, VRAM_WAIT_FOREVER);
    q.holder = "waiter";
    w->rc = vram_lease_acquire(w->l, &q, &w->info);
    w->granted_ns = now_ns();
    return NULL;
}

TEST(a_release_wakes_the_blocked_acquirer_at_once)
{
    vram_ctx *ctx = open_sim("G:24GiB", NULL);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l);
    vram_lease_info big;
    vram_lease_request q = req(20 * GiB, 0);
    CHECK_OK(vram_lease_acquire(l, &q, &big));
    waiter w = { l, 10 * GiB, -1, { 0 }, 0 };
    pthread_t th;
    pthread_create(&th, NULL, acquire_thread, &w);
    vram_ledger_device d;
    for (int i = 0; i < 2000; i++) {          /* until it is queued */
        vram_ledger_device_info(l, 0, &d);
        if (d.waiting)
            break;
        usleep(500);
    }
    CHECK_EQ(d.waiting, 1);
    uint64_t t0 = now_ns();
    CHECK_OK(vram_lease_release(l, big.id));
    pthread_join(th, NULL);
    CHECK_OK(w.rc);
    CHECK_EQ_U64(w.info.bytes, 10 * GiB);
    CHECK_STR_EQ(w.info.holder, "waiter");
    /* A wake-up, not a poll: well under a millisecond on an idle machine;
     * 20 ms leaves room for sanitizers and a busy CI box. */
    CHECK_MSG(w.granted_ns - t0 < 20000000ull, "release to grant took %.3f ms",
              (double)(w.granted_ns - t0) / 1e6);
    CHECK_OK(vram_lease_release(l, w.info.id));
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(a_holders_leases_are_listed_and_freed_together)
{
    vram_ctx *ctx = open_sim("A:16GiB,B:16GiB", NULL);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l);
    vram_lease_request q = req(4 * GiB, 0);
    q.holder = "job 17";
    for (int i = 0; i < 3; i++)
        CHECK_OK(vram_lease_acquire(l, &q, NULL));
    q.holder = "job 18";
    vram_lease_info other;
    CHECK_OK(vram_lease_acquire(l, &q, &other));
    vram_lease_info buf[8];
    size_t n;
    CHECK_OK(vram_lease_list(l, "job 17", buf, 8, &n));
    CHECK_EQ(n, 3);
    for (size_t i = 0; i < n; i++)
        CHECK_STR_EQ(buf[i].holder, "job 17");
    CHECK_ERR(vram_lease_list(l, NULL, buf, 2, &n), VRAM_ERANGE);
    CHECK_EQ(n, 4);
    /* A waiting request of the holder is canceled with its leases. */
    record rec = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, { 0 }, { 0 } };
    tagged t = { &rec, "late" };
    q.holder = "job 17";
    q.bytes = 14 * GiB;
    q.wait_ms = VRAM_WAIT_FOREVER;
    CHECK_OK(vram_lease_acquire_async(l, &q, on_lease, &t, NULL));
    CHECK_EQ(rec.n, 0);
    size_t freed;
    CHECK_OK(vram_lease_release_holder(l, "job 17", &freed));
    CHECK_EQ(freed, 3);
    CHECK_EQ(rec.n, 1);
    CHECK_ERR(rec.status[0], VRAM_ECANCELED);
    CHECK_OK(vram_lease_list(l, NULL, buf, 8, &n));
    CHECK_EQ(n, 1);
    CHECK_EQ_U64(buf[0].id, other.id);
    CHECK_OK(vram_lease_release_holder(l, "job 18", &freed));
    CHECK_EQ(freed, 1);
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(others_come_from_samples_and_our_own_use_is_not_counted_twice)
{
    char dir[] = "/tmp/vram-ledger-XXXXXX";
    CHECK(mkdtemp(dir));
    vram_ctx *ctx = open_sim("G:24GiB:2GiB", dir);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l);
    vram_ledger_device d;
    CHECK_OK(vram_ledger_device_info(l, 0, &d));
    CHECK_EQ_U64(d.others_bytes, 2 * GiB);
    /* Another program takes 8 GiB: seen at the next sample. */
    int go[2];
    CHECK(pipe(go) == 0);
    pid_t child = fork();
    if (child == 0) {
        vram_ctx *c2 = open_sim("G:24GiB:2GiB", dir);
        int rc = c2 ? vram_sim_set_usage(c2, 0, 8 * GiB) : -1;
        char byte = rc == 0;
        if (write(go[1], &byte, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char byte = 0;
    CHECK(read(go[0], &byte, 1) == 1 && byte == 1);
    CHECK_OK(vram_ledger_refresh(l));
    CHECK_OK(vram_ledger_device_info(l, 0, &d));
    CHECK_EQ_U64(d.others_bytes, 10 * GiB);
    CHECK_EQ_U64(d.available_bytes, 24 * GiB - 24 * GiB / 10 - 10 * GiB);
    /* We lease 4 GiB and really use 3 of them: others stays 10 GiB. */
    vram_lease_info mine;
    vram_lease_request q = req(4 * GiB, 0);
    CHECK_OK(vram_lease_acquire(l, &q, &mine));
    CHECK_OK(vram_sim_set_usage(ctx, 0, 3 * GiB));
    CHECK_OK(vram_ledger_refresh(l));
    CHECK_OK(vram_ledger_device_info(l, 0, &d));
    CHECK_EQ_U64(d.others_bytes, 10 * GiB);
    CHECK_EQ_U64(d.available_bytes, 24 * GiB - 24 * GiB / 10 - 14 * GiB);
    /* vram status sees ours, and safe available counts the unused GiB once. */
    vram_snapshot *s;
    CHECK_OK(vram_snapshot_take(ctx, "/", &s));
    CHECK_EQ_U64(s->devices[0].leased_bytes, 4 * GiB);
    CHECK_EQ_U64(s->devices[0].others_bytes, 10 * GiB);
    CHECK_EQ_U64(s->devices[0].safe_available_bytes, d.available_bytes);
    vram_snapshot_free(s);
    /* The other program exits: the room comes back with the next sample. */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK_OK(vram_ledger_refresh(l));
    CHECK_OK(vram_ledger_device_info(l, 0, &d));
    CHECK_EQ_U64(d.others_bytes, 2 * GiB);
    CHECK_OK(vram_sim_set_usage(ctx, 0, 0));
    CHECK_OK(vram_lease_release(l, mine.id));
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

TEST(a_job_started_after_its_lease_is_explained_by_its_process_group)
{
    char dir[] = "/tmp/vram-ledger-XXXXXX";
    CHECK(mkdtemp(dir));
    vram_ctx *ctx = open_sim("G:24GiB:2GiB", dir);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l);
    /* The lease comes first, as `vram run` takes it before starting the job. */
    vram_lease_info mine;
    vram_lease_request q = req(6 * GiB, 0);
    CHECK_OK(vram_lease_acquire(l, &q, &mine));
    /* The job: a process in its own group whose child (a worker) allocates. */
    int go[2];
    CHECK(pipe(go) == 0);
    pid_t job = fork();
    if (job == 0) {
        setpgid(0, 0);
        if (fork() == 0) {
            vram_ctx *c2 = open_sim("G:24GiB:2GiB", dir);
            char byte = c2 && vram_sim_set_usage(c2, 0, 5 * GiB) == 0;
            if (write(go[1], &byte, 1) != 1)
                _exit(1);
            pause();
            _exit(0);
        }
        pause();
        _exit(0);
    }
    setpgid(job, job);
    char byte = 0;
    CHECK(read(go[0], &byte, 1) == 1 && byte == 1);
    vram_ledger_device d;
    CHECK_OK(vram_ledger_refresh(l));
    CHECK_OK(vram_ledger_device_info(l, 0, &d));
    CHECK_EQ_U64(d.others_bytes, 7 * GiB);           /* not ours yet: counted twice */
    CHECK_OK(vram_lease_set_owner(l, mine.id, 0, (uint32_t)job));
    CHECK_OK(vram_ledger_refresh(l));
    CHECK_OK(vram_ledger_device_info(l, 0, &d));
    CHECK_EQ_U64(d.others_bytes, 2 * GiB);           /* the group's 5 GiB are the lease's */
    CHECK_EQ_U64(d.available_bytes, 24 * GiB - 24 * GiB / 10 - 8 * GiB);
    CHECK_ERR(vram_lease_set_owner(l, 999999, 0, 1), VRAM_ENOENT);
    kill(-job, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0)
        ;
    CHECK_OK(vram_lease_release(l, mine.id));
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* Queues an async request and says whether it was granted at once. */
static uint64_t async_lease(vram_ledger *l, record *rec, tagged *t, const char *tag, uint64_t bytes,
                            uint64_t expected_ms, int priority)
{
    t->rec = rec;
    t->tag = tag;
    vram_lease_request q = req(bytes, VRAM_WAIT_FOREVER);
    q.expected_ms = expected_ms;
    q.priority = priority;
    uint64_t ticket = 0;
    return vram_lease_acquire_async(l, &q, on_lease, t, &ticket) ? 0 : ticket;
}

TEST(backfill_never_delays_the_blocked_head)
{
    for (int strict = 0; strict <= 1; strict++) {
        vram_ctx *ctx = open_sim("G:24GiB", NULL);   /* capacity 21.6 GiB */
        vram_ledger *l = open_ledger(ctx, strict);
        CHECK(l);
        record rec = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, { 0 }, { 0 } };
        tagged t[8];
        async_lease(l, &rec, &t[0], "A", 12 * GiB, 10000, 0);
        CHECK(granted(&rec, "A") >= 0);
        async_lease(l, &rec, &t[1], "B", 16 * GiB, 30000, 0);   /* blocked until A ends */
        CHECK(granted(&rec, "B") < 0);
        /* C ends before A does: it cannot delay B. */
        async_lease(l, &rec, &t[2], "C", 3 * GiB / 2, 1000, 0);
        CHECK_EQ(granted(&rec, "C") >= 0, !strict);
        /* D runs long but fits in what B leaves free (21.6 - 16 = 5.6 GiB). */
        async_lease(l, &rec, &t[3], "D", 3 * GiB / 2, 60000, 0);
        CHECK_EQ(granted(&rec, "D") >= 0, !strict);
        /* E runs long and would eat into B's room: it waits. */
        async_lease(l, &rec, &t[4], "E", 5 * GiB, 60000, 0);
        CHECK(granted(&rec, "E") < 0);
        /* F's duration is unknown: only the spare room, 4.1 GiB, is safe. */
        async_lease(l, &rec, &t[5], "F", 5 * GiB, 0, 0);
        CHECK(granted(&rec, "F") < 0);
        async_lease(l, &rec, &t[6], "G", GiB, 0, 0);
        CHECK_EQ(granted(&rec, "G") >= 0, !strict);
        /* A ends: B starts at once, whatever passed it. */
        CHECK_OK(vram_lease_release(l, lease_of(&rec, "A")));
        CHECK(granted(&rec, "B") >= 0);
        CHECK(release_mine(l) >= 0);
        CHECK_OK(vram_ledger_close(l));
        CHECK_OK(vram_ctx_close(ctx));
    }
}

TEST(an_overrun_stops_further_backfill)
{
    vram_ctx *ctx = open_sim("G:24GiB", NULL);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l);
    record rec = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, { 0 }, { 0 } };
    tagged t[4];
    async_lease(l, &rec, &t[0], "A", 12 * GiB, 20, 0);   /* says 20 ms, runs on */
    async_lease(l, &rec, &t[1], "B", 16 * GiB, 1000, 0);
    usleep(40000);
    /* A is overdue: B may start any moment, so a 10 ms task that would eat
     * into B's room (21.6 - 16 = 5.6 GiB spare) may not pass it... */
    async_lease(l, &rec, &t[2], "C", 6 * GiB, 10, 0);
    CHECK(granted(&rec, "C") < 0);
    /* ...but one that fits beside B still may. */
    async_lease(l, &rec, &t[3], "D", GiB, 10000, 0);
    CHECK(granted(&rec, "D") >= 0);
    CHECK_EQ(release_mine(l), 2);        /* A and D */
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(priority_first_then_first_come_first_served)
{
    vram_ctx *ctx = open_sim("G:10GiB", NULL);   /* capacity 9 GiB */
    vram_ledger *l = open_ledger(ctx, 1);
    CHECK(l);
    record rec = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, { 0 }, { 0 } };
    tagged t[6];
    async_lease(l, &rec, &t[0], "hold", 9 * GiB, 0, 0);
    async_lease(l, &rec, &t[1], "low1", 5 * GiB, 0, 0);
    async_lease(l, &rec, &t[2], "low2", 4 * GiB, 0, 0);
    async_lease(l, &rec, &t[3], "high", 5 * GiB, 0, 5);
    async_lease(l, &rec, &t[4], "mid", 4 * GiB, 0, 1);
    CHECK_EQ(rec.n, 1);
    CHECK_OK(vram_lease_release(l, lease_of(&rec, "hold")));
    CHECK_EQ(rec.n, 3);              /* high (5) and mid (4) fill the 9 GiB */
    CHECK_STR_EQ(rec.tag[1], "high");
    CHECK_STR_EQ(rec.tag[2], "mid");
    CHECK_OK(vram_lease_release(l, lease_of(&rec, "high")));
    CHECK_EQ(rec.n, 4);
    CHECK_STR_EQ(rec.tag[3], "low1");
    CHECK_OK(vram_lease_release(l, lease_of(&rec, "mid")));
    CHECK_EQ(rec.n, 5);
    CHECK_STR_EQ(rec.tag[4], "low2");
    CHECK_EQ(release_mine(l), 2);
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(a_request_goes_where_it_fits_best)
{
    vram_ctx *ctx = open_sim("small:8GiB,big:24GiB,busy:24GiB:20GiB", NULL);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l);
    vram_lease_info a, b, c;
    vram_lease_request q = req(6 * GiB, 0);
    CHECK_OK(vram_lease_acquire(l, &q, &a));
    CHECK_EQ(a.device, 0);           /* 7.2 GiB capacity: least left over */
    q.bytes = 4 * GiB;
    CHECK_OK(vram_lease_acquire(l, &q, &b));
    CHECK_EQ(b.device, 1);           /* "busy" has 1.6 GiB, "small" 1.2 */
    q.bytes = GiB;
    CHECK_OK(vram_lease_acquire(l, &q, &c));
    CHECK_EQ(c.device, 0);           /* 1.2 GiB left on small: the tightest fit */
    CHECK_OK(vram_lease_release(l, a.id));
    CHECK_OK(vram_lease_release(l, b.id));
    CHECK_OK(vram_lease_release(l, c.id));
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

typedef struct unloads {
    int n;
    char last[32];
} unloads;

static void on_unload(void *user, const char *name, unsigned device, uint64_t bytes)
{
    unloads *u = user;
    (void)device;
    (void)bytes;
    u->n++;
    snprintf(u->last, sizeof(u->last), "%s", name);
}

TEST(idle_residents_are_evicted_lru_and_never_in_use)
{
    vram_ctx *ctx = open_sim("G:10GiB", NULL);   /* capacity 9 GiB */
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l);
    unloads u = { 0, "" };
    vram_resident *old, *used, *again;
    CHECK_OK(vram_resident_register(l, "encoder", 0, 3 * GiB, on_unload, &u, &old));
    usleep(2000);
    CHECK_OK(vram_resident_register(l, "gfpgan", 0, 3 * GiB, on_unload, &u, &used));
    CHECK_OK(vram_resident_register(l, "gfpgan", 0, 3 * GiB, on_unload, &u, &again));
    CHECK(again == used);            /* loaded once, reused */
    vram_ledger_device d;
    CHECK_OK(vram_ledger_device_info(l, 0, &d));
    CHECK_EQ_U64(d.resident_bytes, 6 * GiB);
    CHECK_EQ(d.residents, 2);
    CHECK_OK(vram_resident_use(used));
    /* 5 GiB needs 2 more than the 3 free: the idle encoder goes. */
    vram_lease_info a;
    vram_lease_request q = req(5 * GiB, 0);
    CHECK_OK(vram_lease_acquire(l, &q, &a));
    CHECK_EQ(u.n, 1);
    CHECK_STR_EQ(u.last, "encoder");
    CHECK(!vram_resident_loaded(old));
    CHECK(vram_resident_loaded(used));
    CHECK_ERR(vram_resident_use(old), VRAM_ENOENT);
    /* The enhancer is in use: never evicted, so 2 GiB more does not fit. */
    q.bytes = 2 * GiB;
    CHECK_ERR(vram_lease_acquire(l, &q, NULL), VRAM_ETIMEDOUT);
    CHECK_EQ(u.n, 1);
    CHECK_ERR(vram_resident_unregister(used), VRAM_EBUSY);
    CHECK_OK(vram_resident_done(used));
    /* Idle now: it goes for the next request that needs the room. */
    CHECK_OK(vram_lease_acquire(l, &q, NULL));
    CHECK_EQ(u.n, 2);
    CHECK_ERR(vram_ledger_close(l), VRAM_EBUSY);
    CHECK_EQ(release_mine(l), 2);
    /* Registering the encoder again counts it loaded again. */
    CHECK_OK(vram_resident_register(l, "encoder", 0, 3 * GiB, on_unload, &u, &again));
    CHECK(again == old && vram_resident_loaded(old));
    CHECK_OK(vram_resident_unregister(old));
    CHECK_OK(vram_resident_unregister(old));
    CHECK_OK(vram_resident_unregister(used));
    CHECK_OK(vram_resident_unregister(used));
    CHECK_OK(vram_ledger_device_info(l, 0, &d));
    CHECK_EQ_U64(d.resident_bytes, 0);
    CHECK_ERR(vram_resident_register(l, "", 0, GiB, NULL, NULL, &again), VRAM_EINVAL);
    CHECK_ERR(vram_resident_register(l, "x", 0, 0, NULL, NULL, &again), VRAM_EINVAL);
    CHECK_ERR(vram_resident_register(l, "x", 3, GiB, NULL, NULL, &again), VRAM_ENODEV);
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(waits_end_at_their_deadline_and_requests_can_be_canceled)
{
    vram_ctx *ctx = open_sim("G:10GiB", NULL);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l);
    vram_lease_info hold;
    vram_lease_request q = req(8 * GiB, 0);
    CHECK_OK(vram_lease_acquire(l, &q, &hold));
    q.bytes = 4 * GiB;
    q.wait_ms = 50;
    uint64_t t0 = now_ns();
    CHECK_ERR(vram_lease_acquire(l, &q, NULL), VRAM_ETIMEDOUT);
    uint64_t took = now_ns() - t0;
    CHECK_MSG(took >= 45000000ull && took < 1000000000ull, "waited %.1f ms", (double)took / 1e6);
    /* The timer thread ends async waits too. */
    record rec = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, { 0 }, { 0 } };
    tagged t1 = { &rec, "timed" }, t2 = { &rec, "canceled" };
    q.wait_ms = 30;
    CHECK_OK(vram_lease_acquire_async(l, &q, on_lease, &t1, NULL));
    q.wait_ms = VRAM_WAIT_FOREVER;
    uint64_t ticket;
    CHECK_OK(vram_lease_acquire_async(l, &q, on_lease, &t2, &ticket));
    for (int i = 0; i < 400 && count(&rec) < 1; i++)
        usleep(5000);
    pthread_mutex_lock(&rec.lock);
    int n = rec.n, st = rec.status[0];
    pthread_mutex_unlock(&rec.lock);
    CHECK_EQ(n, 1);
    CHECK_ERR(st, VRAM_ETIMEDOUT);
    CHECK_OK(vram_lease_cancel(l, ticket));
    CHECK_ERR(vram_lease_cancel(l, ticket), VRAM_ENOENT);
    pthread_mutex_lock(&rec.lock);
    n = rec.n;
    st = rec.status[1];
    pthread_mutex_unlock(&rec.lock);
    CHECK_EQ(n, 2);
    CHECK_ERR(st, VRAM_ECANCELED);
    CHECK_OK(vram_lease_release(l, hold.id));
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

static void count_cb(void *user, int status, const vram_lease_info *lease)
{
    (void)lease;
    int *n = user;
    __atomic_fetch_add(&n[status == VRAM_ECANCELED ? 0 : status == 0 ? 1 : 2], 1, __ATOMIC_RELAXED);
}

/* Thousands of waiting requests, canceled in a scrambled order: each is
 * found by its ticket (the ledger indexes them, growing and cleaning its
 * table as they come and go), once; one granted meanwhile is no longer
 * a waiting request. */
TEST(thousands_waiting_are_each_canceled_by_ticket)
{
    vram_ctx *ctx = open_sim("G:10GiB", NULL);
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l);
    vram_lease_info hold;
    vram_lease_request q = req(8 * GiB, 0);
    CHECK_OK(vram_lease_acquire(l, &q, &hold));
    enum { N = 5000 };
    static uint64_t tickets[N];
    int seen[3] = { 0, 0, 0 };
    q.wait_ms = VRAM_WAIT_FOREVER;
    q.bytes = 4 * GiB;
    for (int i = 0; i < N; i++)
        CHECK_OK(vram_lease_acquire_async(l, &q, count_cb, seen, &tickets[i]));
    /* Every 7th (7 and 5000 coprime): all of them, in a scrambled order;
     * the first half of them twice. */
    for (int k = 0; k < N; k++) {
        uint64_t t = tickets[(size_t)k * 7 % N];
        CHECK_OK(vram_lease_cancel(l, t));
        if (k < N / 2)
            CHECK_ERR(vram_lease_cancel(l, t), VRAM_ENOENT);
        if (k == N - 2)
            break;                  /* one left waiting */
    }
    CHECK_EQ(__atomic_load_n(&seen[0], __ATOMIC_RELAXED), N - 1);
    /* The holder goes: the one left is granted, and is no longer
     * canceled as a waiting request. */
    CHECK_OK(vram_lease_release(l, hold.id));
    for (int i = 0; i < 400 && __atomic_load_n(&seen[1], __ATOMIC_RELAXED) < 1; i++)
        usleep(5000);
    CHECK_EQ(__atomic_load_n(&seen[1], __ATOMIC_RELAXED), 1);
    int left = 0;
    for (int k = N - 1; k < N; k++)
        left += vram_lease_cancel(l, tickets[(size_t)k * 7 % N]) == 0;
    CHECK_EQ(left, 0);              /* the granted one: not waiting */
    CHECK_EQ(__atomic_load_n(&seen[2], __ATOMIC_RELAXED), 0);
    CHECK_EQ(release_mine(l), 1);
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(one_ledger_per_context_and_closing_in_order)
{
    vram_ctx *ctx = open_sim("G:8GiB", NULL);
    vram_ledger *l = open_ledger(ctx, 0), *second = NULL;
    CHECK(l);
    CHECK_ERR(vram_ledger_open(ctx, NULL, &second), VRAM_EBUSY);
    CHECK(second == NULL);
    CHECK_ERR(vram_ledger_open(NULL, NULL, &second), VRAM_EINVAL);
    CHECK(vram_ledger_monitor(l) != NULL);
    vram_class_info ci;
    CHECK_ERR(vram_ledger_class_info(l, "never", &ci), VRAM_ENOENT);
    CHECK_ERR(vram_ledger_device_info(l, 1, NULL), VRAM_EINVAL);
    vram_ledger_device d;
    CHECK_ERR(vram_ledger_device_info(l, 1, &d), VRAM_ENODEV);
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ledger_close(NULL));
    /* Closed: a new one may open. */
    CHECK((l = open_ledger(ctx, 0)) != NULL);
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(adopted_leases_are_granted_at_once_and_hold_room)
{
    vram_ctx *ctx = open_sim("G:24GiB", NULL);   /* capacity 21.6 GiB */
    vram_ledger *l = open_ledger(ctx, 0);
    CHECK(l);
    vram_lease_request q = { .bytes = 16 * GiB, .device = 0, .wait_ms = 0, .holder = "job 7" };
    vram_lease_info a, b;
    CHECK_OK(vram_lease_adopt(l, &q, &a));
    CHECK_EQ(a.device, 0);
    CHECK_EQ_U64(a.bytes, 16 * GiB);
    CHECK_STR_EQ(a.holder, "job 7");
    q.bytes = 8 * GiB;               /* past the room that is left: it runs already */
    q.holder = "job 8";
    CHECK_OK(vram_lease_adopt(l, &q, &b));
    vram_ledger_device d;
    CHECK_OK(vram_ledger_device_info(l, 0, &d));
    CHECK_EQ_U64(d.leased_bytes, 24 * GiB);
    CHECK_EQ(d.leases, 2);
    CHECK_EQ_U64(d.available_bytes, 0);
    /* A new request waits for the adopted work to end. */
    record rec = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, { 0 }, { 0 } };
    tagged t = { &rec, "new" };
    vram_lease_request w = req(6 * GiB, VRAM_WAIT_FOREVER);
    CHECK_OK(vram_lease_acquire_async(l, &w, on_lease, &t, NULL));
    CHECK(granted(&rec, "new") < 0);
    CHECK_OK(vram_lease_release(l, b.id));
    CHECK(granted(&rec, "new") < 0);    /* 16 + 6 > 21.6 */
    CHECK_OK(vram_lease_release(l, a.id));
    CHECK(granted(&rec, "new") >= 0);
    CHECK_OK(vram_lease_release(l, lease_of(&rec, "new")));
    /* It names its device, and the device must be there. */
    q.device = VRAM_DEVICE_ANY;
    CHECK_ERR(vram_lease_adopt(l, &q, &a), VRAM_ENODEV);
    CHECK_CONTAINS(vram_last_error(), "names its device");
    q.device = 3;
    CHECK_ERR(vram_lease_adopt(l, &q, &a), VRAM_ENODEV);
    q.device = 0;
    q.bytes = 0;
    CHECK_ERR(vram_lease_adopt(l, &q, &a), VRAM_EINVAL);
    CHECK_ERR(vram_lease_adopt(NULL, &q, &a), VRAM_EINVAL);
    CHECK_OK(vram_ledger_close(l));
    CHECK_OK(vram_ctx_close(ctx));
}
