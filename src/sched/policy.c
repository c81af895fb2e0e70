/* SPDX-License-Identifier: MIT */
/*
 * sched/policy.c - the admission policy: which waiting requests start now,
 * and on which device.
 *
 * The one piece of code that decides admission in vram, for worker-pool
 * tasks and external leases alike.  A pass walks the queue in order
 * (priority, then first come first served):
 *
 *   - a request that fits somewhere starts on the device where it fits best
 *     (least room left after it), as long as nothing before it is blocked;
 *   - the first request that fits nowhere is the blocked head.  It reserves
 *     the device where it can start soonest: its shadow time is when enough
 *     of the grants there, in order of expected end, will have ended, and
 *     the extra is what will be left over then;
 *   - a later request may pass the head (backfill, EASY as in Slurm and
 *     Maui) on another device, or on the reserved one when it is expected to
 *     end by the shadow time or fits in the extra.  When some grant's end
 *     is unknown, the extra is what is sure to be left whatever order the
 *     grants end in (one 15 GiB job holding a 24 GiB card leaves a 2 GiB
 *     job room beside the 15 GiB head that waits for it).  When the head
 *     cannot start even after every grant has ended (others hold too much),
 *     only requests whose duration is known may pass it, so it waits at
 *     most that long once others let go.  A grant running past its expected
 *     end makes the shadow time "now", so an overrun stops further passing:
 *     the head is never starved;
 *   - requests of one shape (size, device, class, duration) that cannot
 *     start are judged once per pass: at most `window` shapes are looked
 *     at, however many requests share them, and at most VISITS_PER_SHAPE
 *     times that many requests past the head in all; the walk stops once
 *     no device has room for the smallest request waiting.  So a pass
 *     costs the same however long the queue;
 *   - every request looked at is given its reason to wait, as Slurm says
 *     it: Resources, Lease, Priority or Dependency.
 *
 * Room on a device is capacity (total less margin) less others, leases and
 * residents; idle residents count as room, and are evicted least recently
 * used, through their unload callbacks, before what needed them starts.
 * Requests that waited out their limit go to the CPU when they may, or time
 * out.  The pass never calls out: it only changes the books and lists what
 * the ledger must do once the lock is dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"

typedef enum { RESV_NONE, RESV_FINITE, RESV_UNKNOWN, RESV_OTHERS } resv_kind;

/* The blocked head's claim on a device. */
typedef struct resv {
    resv_kind kind;                 /* FINITE: shadow_ns and extra are known;
                                       UNKNOWN: extra is what is sure to be left */
    int dev;
    uint64_t shadow_ns;
    uint64_t extra;
} resv;

typedef struct room_map {
    uint64_t room[VRAM_MAX_DEVICES];
    uint64_t evictable[VRAM_MAX_DEVICES];
} room_map;

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t vram__need(const vram_ledger *l, const vram__req *r, unsigned d)
{
    (void)l;
    if (r->device_pref >= 0 && (unsigned)r->device_pref != d)
        return UINT64_MAX;
    if (r->resident && r->resident->device != d)
        return UINT64_MAX;
    uint64_t b = r->bytes;
    if (r->device_bytes && d < r->ndevice_bytes && r->device_bytes[d]) {
        if (r->device_bytes[d] == UINT64_MAX)
            return UINT64_MAX;      /* never on this device */
        b = r->device_bytes[d];
    }
    if (r->cls)
        b = sat_add(b, r->cls->extra_bytes);
    if (r->cap_bytes && b > r->cap_bytes)
        b = r->cap_bytes;           /* a retry never asks for more than the attempt that failed */
    if (r->resident && r->resident->state == RES_EVICTED)
        b = sat_add(b, r->resident->bytes);
    return b < UINT64_MAX ? b : UINT64_MAX - 1;   /* huge, but not "never" */
}

/* ---- refusing at submit ------------------------------------------------------ */

int vram__policy_check(const vram_ledger *l, const vram__req *r, bool *cpu_only)
{
    *cpu_only = false;
    if (r->device_pref >= 0 && (unsigned)r->device_pref >= l->ndev)
        return vram__fail(VRAM_ENODEV, "no device %d: there are %u", r->device_pref, l->ndev);
    int best = -1;
    uint64_t best_cap = 0, best_need = 0;
    for (unsigned d = 0; d < l->ndev; d++) {
        uint64_t need = vram__need(l, r, d), cap = vram__dev_capacity(&l->dev[d]);
        if (need == UINT64_MAX)
            continue;
        if (need <= cap)
            return 0;
        if (best < 0 || cap > best_cap) {
            best = (int)d;
            best_cap = cap;
            best_need = need;
        }
    }
    if (r->cpu_ok) {
        *cpu_only = true;
        return 0;
    }
    if (best < 0)
        return vram__fail(VRAM_EINVAL, "the request may run on none of the %u device(s)", l->ndev);
    const vram__dev *d = &l->dev[best];
    char need[32], total[32], cap[32], margin[32];
    vram_size_format(best_need, need, sizeof(need));
    vram_size_format(d->total, total, sizeof(total));
    vram_size_format(best_cap, cap, sizeof(cap));
    vram_size_format(d->margin, margin, sizeof(margin));
    return vram__fail(VRAM_ENOFIT, "needs %s, more than any device can take: the largest, GPU %d "
                      "(%s), has %s in total, %s after its %s margin", need, best, d->name,
                      total, cap, margin);
}

/* ---- room ----------------------------------------------------------------------- */

static void room_now(const vram_ledger *l, room_map *m)
{
    for (unsigned d = 0; d < l->ndev; d++) {
        m->room[d] = vram__dev_room(&l->dev[d]);
        m->evictable[d] = 0;
    }
    for (const vram_resident *res = l->residents; res; res = res->next)
        if (res->state == RES_LOADED && !res->pins && res->unload)
            m->evictable[res->device] += res->bytes;
}

static bool fits_ever(const vram_ledger *l, const vram__req *r)
{
    for (unsigned d = 0; d < l->ndev; d++)
        if (vram__need(l, r, d) <= vram__dev_capacity(&l->dev[d]))
            return true;
    return false;
}

/* May r, started now, pass the blocked head on its reserved device? */
static bool may_pass(const vram__req *r, const resv *rv, uint64_t need, uint64_t now_ns,
                     bool *into_extra)
{
    uint64_t end = vram__expected_end(r, now_ns);
    switch (rv->kind) {
    case RESV_FINITE:
        if (end <= rv->shadow_ns)
            return true;
        *into_extra = need <= rv->extra;
        return *into_extra;
    case RESV_UNKNOWN:
        *into_extra = need <= rv->extra;
        return *into_extra;
    case RESV_OTHERS:
        return end != VRAM__NO_END;
    default:
        return false;
    }
}

/* The device where r fits best now (least room left after it), or -1.  With
 * a reservation, its device takes r only if r may pass the head. */
static int best_fit(const vram_ledger *l, const vram__req *r, const room_map *m, const resv *rv,
                    uint64_t now_ns, bool *into_extra)
{
    int best = -1;
    uint64_t best_left = UINT64_MAX;
    for (unsigned d = 0; d < l->ndev; d++) {
        uint64_t need = vram__need(l, r, d);
        uint64_t have = m->room[d] + m->evictable[d];
        if (!l->dev[d].sampled || need == UINT64_MAX || need > have)
            continue;
        bool extra = false;
        if (rv && rv->kind != RESV_NONE && rv->dev == (int)d && !may_pass(r, rv, need, now_ns, &extra))
            continue;
        if (have - need < best_left) {
            best = (int)d;
            best_left = have - need;
            *into_extra = extra;
        }
    }
    return best;
}

/* ---- the blocked head's reservation ------------------------------------------------ */

static int by_end(const void *a, const void *b)
{
    const vram__span *x = a, *y = b;
    return x->end_ns < y->end_ns ? -1 : x->end_ns > y->end_ns;
}

/* The grants on device d as spans, soonest end first (overdue ones end now). */
static size_t spans_on(vram_ledger *l, unsigned d, uint64_t now_ns)
{
    if (l->scratch_cap < l->ngrants) {
        size_t cap = l->ngrants + 64;
        vram__span *p = realloc(l->scratch, cap * sizeof(*p));
        if (!p)
            return 0;               /* no spans: the head waits for others, safely */
        l->scratch = p;
        l->scratch_cap = cap;
    }
    size_t n = 0;
    for (const vram__req *g = l->grants; g; g = g->next)
        if (g->device == (int)d && g->granted_bytes)
            l->scratch[n++] = (vram__span){ g->end_ns < now_ns ? now_ns : g->end_ns,
                                            g->granted_bytes };
    if (n > 1)                      /* scratch is NULL until the first grant */
        qsort(l->scratch, n, sizeof(*l->scratch), by_end);
    return n;
}

/* When the grants of device d end in an order nobody knows, the head (short
 * of `deficit`) starts once enough of them have ended; the room left over
 * then is at least the smallest grant less the deficit, whatever the order
 * (the last grant to end before it starts is at least the smallest, and
 * what ended before it was less than the deficit). */
static uint64_t sure_extra(const vram__span *s, size_t n, uint64_t deficit, uint64_t total)
{
    if (total < deficit)
        return 0;
    uint64_t least = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (s[i].bytes < least)
            least = s[i].bytes;
    return least != UINT64_MAX && least > deficit ? least - deficit : 0;
}

static resv shadow_on(vram_ledger *l, unsigned d, uint64_t need, const room_map *m, uint64_t now_ns)
{
    uint64_t room = m->room[d] + m->evictable[d], at = now_ns;
    size_t n = spans_on(l, d, now_ns);
    for (size_t i = 0; i < n && room < need; i++) {
        if (l->scratch[i].end_ns == VRAM__NO_END) {
            uint64_t total = 0;
            for (size_t k = i; k < n; k++)
                total += l->scratch[k].bytes;
            return (resv){ RESV_UNKNOWN, (int)d, 0,
                           sure_extra(l->scratch + i, n - i, need - room, total) };
        }
        room += l->scratch[i].bytes;
        at = l->scratch[i].end_ns;
    }
    if (room >= need)
        return (resv){ RESV_FINITE, (int)d, at, room - need };
    return (resv){ RESV_OTHERS, (int)d, 0, 0 };
}

static bool sooner(const resv *a, const resv *b)
{
    if (a->kind != b->kind)
        return b->kind == RESV_NONE || (a->kind != RESV_NONE && a->kind < b->kind);
    return a->kind == RESV_FINITE && a->shadow_ns < b->shadow_ns;
}

/* The device where the head can start soonest. */
static resv reserve(vram_ledger *l, const vram__req *r, const room_map *m, uint64_t now_ns)
{
    resv best = { RESV_NONE, -1, 0, 0 };
    for (unsigned d = 0; d < l->ndev; d++) {
        uint64_t need = vram__need(l, r, d);
        if (need > vram__dev_capacity(&l->dev[d]))
            continue;
        resv c = shadow_on(l, d, need, m, now_ns);
        if (sooner(&c, &best))
            best = c;
    }
    return best;
}

/* ---- acting ----------------------------------------------------------------------- */

/* Marks idle residents of device d for eviction, least recently used first,
 * until `shortfall` bytes will be free. */
static void plan_evictions(vram_ledger *l, unsigned d, uint64_t shortfall, vram__pass_out *out)
{
    uint64_t freed = 0;
    while (freed < shortfall && out->nevict < VRAM__ARRAY_LEN(out->evict)) {
        vram_resident *lru = NULL;
        for (vram_resident *res = l->residents; res; res = res->next)
            if (res->device == d && res->state == RES_LOADED && !res->pins && res->unload &&
                (!lru || res->last_use_ns < lru->last_use_ns))
                lru = res;
        if (!lru)
            return;
        lru->state = RES_EVICTING;
        l->evicting++;
        out->evict[out->nevict++] = lru;
        freed += lru->bytes;
    }
}

/* Sends r to the CPU: at once (its client has a free worker: checked by
 * the caller), never again to a device. */
static void mark_cpu(vram_ledger *l, vram__req *r)
{
    if (r->to_cpu)
        return;
    r->to_cpu = true;
    if (r->state == REQ_QUEUED)
        l->waiting_cpu++;
}

static void go_cpu(vram_ledger *l, vram__req *r, uint64_t now_ns, vram__pass_out *out)
{
    mark_cpu(l, r);
    vram__grant(l, r, VRAM_DEVICE_CPU, 0, now_ns, out);
}

/* A task's wait limit counts from when memory, not its turn or a worker,
 * is what holds it up. */
static void start_clock(vram_ledger *l, vram__req *r, uint64_t now_ns)
{
    vram__unclocked_remove(l, r);
    if (r->wait_ms < 0 || r->deadline_ns)
        return;
    r->deadline_ns = vram__deadline_after(now_ns, (uint64_t)r->wait_ms);
    vram__deadline_insert(l, r);
}

/* Whether r could not start even once every grant on the books ended: the
 * room it needs is held by others. */
static bool blocked_by_others(const vram_ledger *l, const vram__req *r, const room_map *m)
{
    for (unsigned d = 0; d < l->ndev; d++)
        if (vram__need(l, r, d) <= m->room[d] + m->evictable[d] + l->dev[d].leased)
            return false;
    return true;
}

/* A task with a cheaper rung waits at most VRAM__STEP_PATIENCE_MS for room
 * that others hold, then steps down (expire_due). */
static void limit_patience(vram_ledger *l, vram__req *r, const room_map *m, uint64_t now_ns)
{
    if (!r->can_step || !blocked_by_others(l, r, m))
        return;
    uint64_t at = now_ns + VRAM__STEP_PATIENCE_MS * 1000000ull;
    if (r->deadline_ns && r->deadline_ns <= at)
        return;
    if (r->deadline_ns)
        vram__deadline_remove(l, r);
    r->deadline_ns = at;
    vram__deadline_insert(l, r);
}

/* Starts r on d, evicting first when the room is in idle residents.
 * Returns false when it must wait for the evictions. */
static bool start_on(vram_ledger *l, vram__req *r, unsigned d, room_map *m, uint64_t now_ns,
                     vram__pass_out *out)
{
    uint64_t need = vram__need(l, r, d);
    if (need > m->room[d]) {
        plan_evictions(l, d, need - m->room[d], out);
        return false;
    }
    m->room[d] -= need;
    vram__grant(l, r, (int)d, need, now_ns, out);
    return true;
}

/* Why the blocked head waits: Resources when it fits no device now (Lease
 * when what it misses is held by leases taken outside a queue).  Everyone
 * blocked behind it waits for Priority, as in Slurm. */
static int head_reason(const vram_ledger *l, const vram__req *r, const room_map *m)
{
    bool fits_now = false, fits_without_leases = false;
    for (unsigned d = 0; d < l->ndev; d++) {
        uint64_t need = vram__need(l, r, d), have = m->room[d] + m->evictable[d];
        if (need == UINT64_MAX)
            continue;
        fits_now = fits_now || need <= have;
        fits_without_leases = fits_without_leases || need <= have + l->dev[d].lease_bytes;
    }
    if (fits_now)
        return WAIT_PRIORITY;
    return fits_without_leases ? WAIT_LEASE : WAIT_RESOURCES;
}

/* What the pass remembers of a shape of request that could not start. */
typedef struct shape {
    uint64_t bytes, cap, expected_ms;
    const vram__class *cls;
    const vram_resident *resident;
    const vram__client *client;
    int device_pref;
    bool cpu_ok, can_step;
} shape;

#define SHAPES 32
#define VISITS_PER_SHAPE 16

static bool shapeless(const vram__req *r)
{
    return r->device_bytes != NULL || r->to_cpu;
}

static shape shape_of(const vram__req *r)
{
    return (shape){ r->bytes, r->cap_bytes, r->expected_ms, r->cls, r->resident, r->client,
                    r->device_pref, r->cpu_ok, r->can_step };
}

static const shape *seen_shape(const shape *s, unsigned n, const vram__req *r)
{
    for (unsigned i = 0; i < n; i++)
        if (s[i].bytes == r->bytes && s[i].cap == r->cap_bytes && s[i].expected_ms == r->expected_ms &&
            s[i].cls == r->cls && s[i].resident == r->resident && s[i].client == r->client &&
            s[i].device_pref == r->device_pref && s[i].cpu_ok == r->cpu_ok &&
            s[i].can_step == r->can_step)
            return &s[i];
    return NULL;
}

/* Whether no device has room for the smallest request waiting: nothing
 * further down the queue can start in this pass. */
static bool no_room_left(const vram_ledger *l, const room_map *m, uint64_t floor)
{
    if (l->waiting_cpu)
        return false;               /* those start on the CPU, room or not */
    for (unsigned d = 0; d < l->ndev; d++)
        if (l->dev[d].sampled && m->room[d] + m->evictable[d] >= floor)
            return false;
    return true;
}

/* The pass stops early: memory, not their turn, holds up the requests it
 * did not reach, so their clocks start. */
static void start_clocks(vram_ledger *l, const room_map *m, uint64_t now_ns)
{
    while (l->uc_head) {
        vram__req *r = l->uc_head;
        start_clock(l, r, now_ns);  /* takes it off the list */
        limit_patience(l, r, m, now_ns);
    }
}

/* One walk of the queue.  Returns true when it stopped for evictions. */
static bool walk(vram_ledger *l, uint64_t now_ns, vram__pass_out *out)
{
    room_map m;
    room_now(l, &m);
    resv rv = { RESV_NONE, -1, 0, 0 };
    bool have_head = false;
    unsigned looked = 0, nshapes = 0;
    uint64_t visited = 0, max_visits = (uint64_t)l->window * VISITS_PER_SHAPE;
    shape shapes[SHAPES];
    uint64_t floor = vram__waiting_floor(l);  /* only grows as requests start */
    for (unsigned lv = 0; lv < l->nlevels; lv++) {
        for (vram__req *r = l->levels[lv].head, *next; r; r = next) {
            next = r->next;
            if (looked >= l->window || (have_head && ++visited > max_visits))
                return false;
            if (have_head && !r->to_cpu && no_room_left(l, &m, floor)) {
                start_clocks(l, &m, now_ns);
                return false;
            }
            if ((r->client && !r->client->slots_free) ||
                (r->resident && r->resident->state == RES_EVICTING)) {
                vram__set_reason(r, WAIT_DEPENDENCY);
                looked++;           /* each counts: a pool keeps its queue short */
                continue;
            }
            if (r->to_cpu) {
                go_cpu(l, r, now_ns, out);
                continue;
            }
            const shape *seen = shapeless(r) ? NULL : seen_shape(shapes, nshapes, r);
            if (seen) {             /* judged already in this pass: it cannot start */
                vram__set_reason(r, WAIT_PRIORITY);
                start_clock(l, r, now_ns);
                limit_patience(l, r, &m, now_ns);
                continue;
            }
            bool extra = false;
            int d = best_fit(l, r, &m, have_head ? &rv : NULL, now_ns, &extra);
            if (d >= 0) {
                uint64_t need = vram__need(l, r, (unsigned)d);
                if (!start_on(l, r, (unsigned)d, &m, now_ns, out))
                    return true;
                if (extra)
                    rv.extra -= need;
                continue;
            }
            looked++;
            if (!fits_ever(l, r)) {    /* what its class learnt made it too big */
                if (r->cpu_ok && !r->can_step)
                    go_cpu(l, r, now_ns, out);
                else
                    vram__expire(l, r, VRAM_ENOFIT, out);
                continue;
            }
            int reason = have_head ? WAIT_PRIORITY : head_reason(l, r, &m);
            vram__set_reason(r, reason);
            if (!shapeless(r) && nshapes < SHAPES)
                shapes[nshapes++] = shape_of(r);
            start_clock(l, r, now_ns);
            limit_patience(l, r, &m, now_ns);
            if (have_head)
                continue;
            rv = reserve(l, r, &m, now_ns);
            if (r->cpu_ok && !r->can_step && r->deadline_ns && rv.kind == RESV_FINITE &&
                rv.shadow_ns > r->deadline_ns) {
                go_cpu(l, r, now_ns, out);   /* no device can take it in time */
                continue;
            }
            have_head = true;
            if (l->no_backfill)
                return false;
        }
    }
    return false;
}

/* Requests whose wait ran out: to the CPU when they may, else timed out. */
static bool expire_due(vram_ledger *l, uint64_t now_ns, vram__pass_out *out)
{
    bool any = false;
    while (l->dl_head && l->dl_head->deadline_ns <= now_ns) {
        vram__req *r = l->dl_head;
        if (r->cpu_ok && !r->can_step) {   /* a cheaper rung comes before the CPU */
            vram__deadline_remove(l, r);
            mark_cpu(l, r);         /* starts when its client has a worker */
        } else {
            vram__expire(l, r, VRAM_ETIMEDOUT, out);
        }
        any = true;
    }
    return any;
}

void vram__policy_pass(vram_ledger *l, uint64_t now_ns, vram__pass_out *out)
{
    if (walk(l, now_ns, out) || l->evicting)
        return;                     /* no one times out while room is being made */
    if (expire_due(l, now_ns, out))
        walk(l, now_ns, out);       /* what expired may have held the line */
}
