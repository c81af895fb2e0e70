/* SPDX-License-Identifier: MIT */
/*
 * sched/simulate.c - the admission engine run in virtual time, for
 * `vram simulate` and bench/sched: how long a trace takes under vram's
 * policy, with backfill off, or one task at a time, against the lower bound.
 *
 * Owns nothing of the policy: it builds a ledger of one device with no
 * context, monitor or timer, queues every task as a request, and calls the
 * same pass (policy.c) the pool and the daemon use, at each task's end.
 * Time is a number here, so a trace of 100,000 tasks runs in seconds and
 * gives the same answer on any machine.
 */
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"

typedef struct running {
    uint64_t end_ns;
    vram__req *r;
} running;

/* A binary heap of running tasks, soonest end on top. */
typedef struct heap {
    running *v;
    size_t n;
} heap;

static void heap_push(heap *h, running x)
{
    size_t i = h->n++;
    while (i && h->v[(i - 1) / 2].end_ns > x.end_ns) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = x;
}

static running heap_pop(heap *h)
{
    running top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1].end_ns < h->v[c].end_ns)
            c++;
        if (h->v[c].end_ns >= last.end_ns)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

static void told(vram__req *r)
{
    (void)r;                        /* the loop reads the outcome from the books */
}

static int check(const vram_sim_task *t, size_t n, uint64_t capacity, int policy)
{
    if ((n && !t) || !capacity)
        return vram__fail(VRAM_EINVAL, "vram_sched_simulate: no tasks or no capacity");
    if (policy < VRAM_SIM_BACKFILL || policy > VRAM_SIM_ONE_AT_A_TIME)
        return vram__fail(VRAM_EINVAL, "policy %d: give VRAM_SIM_BACKFILL, _NO_BACKFILL or "
                          "_ONE_AT_A_TIME", policy);
    /* Virtual time is in nanoseconds: the makespan is at most the sum of
     * the durations, and an expected end is now plus an expected_ms.  Past
     * 2^64 ns (584 years) they would wrap into a makespan under the bound. */
    const uint64_t max_ms = UINT64_MAX / 1000000u;
    uint64_t total_ms = 0;
    for (size_t i = 0; i < n; i++) {
        if (!t[i].bytes || !t[i].duration_ms)
            return vram__fail(VRAM_EINVAL, "task %zu: give bytes and a duration above 0", i);
        if (t[i].bytes > capacity)
            return vram__fail(VRAM_ENOFIT, "task %zu needs more than the capacity", i);
        if (t[i].duration_ms > max_ms - total_ms || t[i].expected_ms > max_ms - total_ms - t[i].duration_ms)
            return vram__fail(VRAM_ERANGE, "task %zu: the trace's durations add up to more than "
                              "584 years (2^64 ns of virtual time)", i);
        total_ms += t[i].duration_ms + t[i].expected_ms;
    }
    return 0;
}

static void bound_of(const vram_sim_task *t, size_t n, uint64_t capacity, vram_sim_result *out)
{
    double memory_ms = 0;
    uint64_t longest = 0;
    for (size_t i = 0; i < n; i++) {
        memory_ms += (double)t[i].bytes * (double)t[i].duration_ms;
        if (t[i].duration_ms > longest)
            longest = t[i].duration_ms;
    }
    uint64_t by_memory = (uint64_t)(memory_ms / (double)capacity + 0.5);
    out->bound_ms = by_memory > longest ? by_memory : longest;
}

/* One at a time, in order: the sum of the durations. */
static void one_at_a_time(const vram_sim_task *t, size_t n, vram_sim_result *out)
{
    for (size_t i = 0; i < n; i++)
        out->makespan_ms += t[i].duration_ms;
    out->most_at_once = n ? 1 : 0;
}

static int run(vram_ledger *l, vram__req *reqs, const vram_sim_task *t, size_t n, vram_sim_result *out)
{
    heap h = { calloc(n ? n : 1, sizeof(running)), 0 };
    if (!h.v)
        return vram__fail(VRAM_ENOMEM, "out of host memory simulating %zu tasks", n);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        vram__req *r = &reqs[i];
        r->id = r->seq = i + 1;
        r->bytes = t[i].bytes;
        r->priority = t[i].priority;
        r->expected_ms = t[i].expected_ms;
        r->device_pref = VRAM_DEVICE_ANY;
        r->wait_ms = VRAM_WAIT_FOREVER;
        r->device = -1;
        r->notify = told;
        r->owner = (void *)&t[i];
        rc = vram__queue_insert(l, r);
    }
    uint64_t now = 0;
    size_t ended = 0;
    while (!rc && ended < n) {
        vram__pass_out po = { NULL, NULL, { NULL }, 0 };
        vram__policy_pass(l, now, &po);
        out->passes++;
        for (vram__req *r = po.notify; r; r = r->out_next) {
            if (r->state != REQ_GRANTED) {
                rc = vram__fail(VRAM_EINTERNAL, "a simulated task was refused (%s)",
                                vram_errname(r->status));
                break;
            }
            const vram_sim_task *task = r->owner;
            heap_push(&h, (running){ now + task->duration_ms * 1000000ull, r });
        }
        if (h.n > out->most_at_once)
            out->most_at_once = (unsigned)h.n;
        if (rc)
            break;
        if (!h.n) {
            rc = vram__fail(VRAM_EINTERNAL, "%u simulated tasks wait and none runs", l->waiting);
            break;
        }
        now = h.v[0].end_ns;
        while (h.n && h.v[0].end_ns == now) {
            running x = heap_pop(&h);
            vram__ungrant(l, x.r, false);
            ended++;
        }
    }
    out->makespan_ms = now / 1000000ull;
    free(h.v);
    return rc;
}

int vram_sched_simulate(const vram_sim_task *tasks, size_t n, uint64_t capacity_bytes, int policy,
                        unsigned window, vram_sim_result *out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram_sched_simulate: NULL result");
    memset(out, 0, sizeof(*out));
    int rc = check(tasks, n, capacity_bytes, policy);
    if (rc)
        return rc;
    bound_of(tasks, n, capacity_bytes, out);
    if (policy == VRAM_SIM_ONE_AT_A_TIME) {
        one_at_a_time(tasks, n, out);
        return 0;
    }
    vram_ledger *l = vram__ledger_bare(capacity_bytes, window, policy == VRAM_SIM_NO_BACKFILL);
    vram__req *reqs = calloc(n ? n : 1, sizeof(*reqs));
    if (!l || !reqs)
        rc = vram__fail(VRAM_ENOMEM, "out of host memory simulating %zu tasks", n);
    else
        rc = run(l, reqs, tasks, n, out);
    vram__ledger_bare_free(l);
    free(reqs);
    return rc;
}
