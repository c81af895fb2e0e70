/* SPDX-License-Identifier: MIT */
/*
 * sched/ledger.c - the books of vram's admission engine.
 *
 * Owns, per device, what is reserved (leases: ours), what resident models
 * hold, and what other programs use (others: the used memory of the last
 * sample that no lease or resident explains); the one queue of waiting
 * requests (priority levels, first come first served within one, and a
 * deadline list the timer thread expires); task classes and what they
 * taught; and the residents.  The policy (policy.c) decides; this file keeps
 * the state it decides on and carries the decisions out: grants, releases,
 * evictions through unload callbacks, notifications - the last two only
 * after the lock is dropped.
 *
 * Others is learnt from the ledger's own monitor: after each sample, the
 * memory our holders' processes use (capped at what they hold) is ours in
 * use; the rest of the device's used memory is others.  When the backend
 * cannot attribute memory to processes, nothing counts as ours in use and
 * others is the whole used memory: safe, if cautious.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched/sched.h"

#define LEDGER_HISTORY 600
#define MEAN_WEIGHT 0.25            /* of a new duration in the moving mean */

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* What the device can give: its total less what the driver reserved (which
 * NVML's v2 "used" no longer includes) less the margin; nothing once lost. */
uint64_t vram__dev_capacity(const vram__dev *d)
{
    return d->sampled && !d->lost ? sat_sub(d->total, d->reserved + d->margin) : 0;
}

uint64_t vram__dev_room(const vram__dev *d)
{
    return sat_sub(vram__dev_capacity(d), d->others + d->leased + d->resident);
}

/* ---- classes ------------------------------------------------------------- */

vram__class *vram__class_intern(vram_ledger *l, const char *name)
{
    if (!name || !*name)
        return NULL;
    for (unsigned i = 0; i < l->nclasses; i++)
        if (!strncmp(l->classes[i]->name, name, VRAM__CLASS_NAME_MAX - 1))
            return l->classes[i];
    if (l->nclasses == l->classes_cap) {
        unsigned cap = l->classes_cap ? l->classes_cap * 2 : 16;
        vram__class **p = realloc(l->classes, cap * sizeof(*p));
        if (!p)
            return NULL;            /* no learning for it: still schedulable */
        l->classes = p;
        l->classes_cap = cap;
    }
    vram__class *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    vram__strlcpy(c->name, name, sizeof(c->name));
    l->classes[l->nclasses++] = c;
    return c;
}

static void learn_duration(vram__class *c, uint64_t ms)
{
    c->mean_ms = c->runs ? (1 - MEAN_WEIGHT) * c->mean_ms + MEAN_WEIGHT * (double)ms : (double)ms;
    if (c->mean_ms < 1)
        c->mean_ms = 1;             /* known, if tiny */
    c->runs++;
}

void vram__ledger_oom(vram_ledger *l, const vram__req *r, uint64_t shortfall)
{
    vram__class *cls = r->cls;
    if (!cls)
        return;
    uint64_t attempt = r->granted_bytes > r->bytes ? r->granted_bytes : r->bytes;
    if (shortfall > attempt)
        shortfall = attempt;        /* one report at most doubles the estimate */
    pthread_mutex_lock(&l->lock);
    uint64_t extra = r->extra_seen + shortfall;
    if (extra > cls->extra_bytes)
        cls->extra_bytes = extra;
    cls->ooms++;
    pthread_mutex_unlock(&l->lock);
}

int vram_ledger_class_info(vram_ledger *l, const char *task_class, vram_class_info *out)
{
    if (!l || !task_class || !out)
        return vram__fail(VRAM_EINVAL, "vram_ledger_class_info: NULL argument");
    memset(out, 0, sizeof(*out));
    int rc = vram__fail(VRAM_ENOENT, "nothing is known of class '%s' yet", task_class);
    pthread_mutex_lock(&l->lock);
    for (unsigned i = 0; i < l->nclasses; i++) {
        const vram__class *c = l->classes[i];
        if (strcmp(c->name, task_class))
            continue;
        *out = (vram_class_info){ c->extra_bytes, (uint64_t)(c->mean_ms + 0.5), c->runs, c->ooms };
        rc = 0;
    }
    pthread_mutex_unlock(&l->lock);
    if (!rc)
        vram__clear_error();
    return rc;
}

/* ---- the queue ------------------------------------------------------------- */

static vram__level *find_level(vram_ledger *l, int priority)
{
    for (unsigned i = 0; i < l->nlevels; i++)
        if (l->levels[i].priority == priority)
            return &l->levels[i];
    return NULL;
}

static vram__level *add_level(vram_ledger *l, int priority)
{
    if (l->nlevels == l->levels_cap) {
        unsigned cap = l->levels_cap ? l->levels_cap * 2 : 8;
        vram__level *p = realloc(l->levels, cap * sizeof(*p));
        if (!p)
            return NULL;
        l->levels = p;
        l->levels_cap = cap;
    }
    unsigned at = 0;
    while (at < l->nlevels && l->levels[at].priority > priority)
        at++;
    memmove(&l->levels[at + 1], &l->levels[at], (l->nlevels - at) * sizeof(*l->levels));
    l->levels[at] = (vram__level){ priority, NULL, NULL };
    l->nlevels++;
    return &l->levels[at];
}

void vram__deadline_insert(vram_ledger *l, vram__req *r)
{
    vram__req *after = l->dl_tail;
    while (after && after->deadline_ns > r->deadline_ns)
        after = after->dl_prev;
    r->dl_prev = after;
    r->dl_next = after ? after->dl_next : l->dl_head;
    if (r->dl_next)
        r->dl_next->dl_prev = r;
    else
        l->dl_tail = r;
    if (after)
        after->dl_next = r;
    else
        l->dl_head = r;
    if (l->dl_head == r)
        pthread_cond_signal(&l->timer_wake);
}

void vram__deadline_remove(vram_ledger *l, vram__req *r)
{
    if (r->dl_prev)
        r->dl_prev->dl_next = r->dl_next;
    else if (l->dl_head == r)
        l->dl_head = r->dl_next;
    else
        return;                     /* not in the list */
    if (r->dl_next)
        r->dl_next->dl_prev = r->dl_prev;
    else
        l->dl_tail = r->dl_prev;
    r->dl_prev = r->dl_next = NULL;
}

/* ---- reasons, sizes and clocks of waiting requests ---------------------------- */

const char *vram__reason_name(int reason)
{
    switch (reason) {
    case WAIT_RESOURCES: return "Resources";
    case WAIT_LEASE: return "Lease";
    case WAIT_DEPENDENCY: return "Dependency";
    default: return "Priority";
    }
}

void vram__set_reason(vram__req *r, int reason)
{
    if (r->reason == reason && r->state == REQ_QUEUED)
        return;
    r->reason = (uint8_t)reason;
    if (r->reason_out)
        __atomic_store_n(r->reason_out, vram__reason_name(reason), __ATOMIC_RELEASE);
}

static unsigned bucket_of(uint64_t b)
{
    if (b < 8)
        return (unsigned)b;
    unsigned e = 63u - (unsigned)__builtin_clzll(b);
    return e * 8 + (unsigned)((b >> (e - 3)) & 7);
}

static uint64_t bucket_floor(unsigned k)
{
    unsigned e = k / 8, sub = k % 8;
    return e < 3 ? k : (8ull + sub) << (e - 3);
}

/* The least r may need on any device: the class's extra only adds to it. */
static uint64_t floor_need(const vram__req *r)
{
    uint64_t b = r->bytes;
    for (unsigned d = 0; r->device_bytes && d < r->ndevice_bytes; d++)
        if (r->device_bytes[d] && r->device_bytes[d] < b)
            b = r->device_bytes[d];
    if (r->cap_bytes && r->cap_bytes < b)
        b = r->cap_bytes;
    return b;
}

uint64_t vram__waiting_floor(vram_ledger *l)
{
    /* floor_hint is at most the lowest bucket in use: raised lazily here,
     * lowered by every insert. */
    while (l->floor_hint < VRAM__NBUCKETS && !l->bucket_count[l->floor_hint])
        l->floor_hint++;
    return l->floor_hint < VRAM__NBUCKETS ? bucket_floor(l->floor_hint) : UINT64_MAX;
}

void vram__unclocked_remove(vram_ledger *l, vram__req *r)
{
    if (!r->clocked)
        return;
    if (r->uc_prev)
        r->uc_prev->uc_next = r->uc_next;
    else
        l->uc_head = r->uc_next;
    if (r->uc_next)
        r->uc_next->uc_prev = r->uc_prev;
    r->uc_prev = r->uc_next = NULL;
    r->clocked = false;
}

static void count_waiting(vram_ledger *l, vram__req *r, int delta)
{
    l->waiting += (unsigned)delta;
    if (r->device_pref >= 0 && (unsigned)r->device_pref < l->ndev)
        l->dev[r->device_pref].waiting_pinned += (unsigned)delta;
    else
        l->waiting_any += (unsigned)delta;
    if (r->to_cpu)
        l->waiting_cpu += (unsigned)delta;
    if (delta > 0) {
        r->bucket = (uint16_t)bucket_of(floor_need(r));
        if (r->bucket < l->floor_hint)
            l->floor_hint = r->bucket;
    }
    l->bucket_count[r->bucket] += (uint32_t)delta;
}

/* Inserts by seq within its level: a retry goes back to where it stood. */
/* ---- the waiting external requests by id --------------------------------------- */

#define WAIT_INDEX_GONE ((vram__req *)&wait_index_gone)
static const char wait_index_gone;

static size_t wait_slot(uint64_t id, size_t cap)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

/* Places every entry again, tombstones dropped, in a table of at least
 * four slots for each (doubled only as the waiting grow). */
static bool wait_index_grow(vram_ledger *l)
{
    size_t live = 0, cap = l->wait_index_cap ? l->wait_index_cap : 1024;
    for (size_t i = 0; i < l->wait_index_cap; i++)
        live += l->wait_index[i] && l->wait_index[i] != WAIT_INDEX_GONE;
    while ((live + 1) * 4 > cap)
        cap *= 2;
    vram__req **t = calloc(cap, sizeof(*t));
    if (!t)
        return false;
    size_t used = 0;
    for (size_t i = 0; i < l->wait_index_cap; i++) {
        vram__req *r = l->wait_index[i];
        if (!r || r == WAIT_INDEX_GONE)
            continue;
        size_t k = wait_slot(r->id, cap);
        while (t[k])
            k = (k + 1) & (cap - 1);
        t[k] = r;
        used++;
    }
    free(l->wait_index);
    l->wait_index = t;
    l->wait_index_cap = cap;
    l->wait_index_used = used;
    return true;
}

static void wait_index_add(vram_ledger *l, vram__req *r)
{
    if ((l->wait_index_used + 1) * 2 > l->wait_index_cap && !wait_index_grow(l)) {
        l->wait_index_lost = true;
        return;
    }
    size_t k = wait_slot(r->id, l->wait_index_cap);
    while (l->wait_index[k] && l->wait_index[k] != WAIT_INDEX_GONE)
        k = (k + 1) & (l->wait_index_cap - 1);
    if (!l->wait_index[k])
        l->wait_index_used++;
    l->wait_index[k] = r;
}

static void wait_index_remove(vram_ledger *l, vram__req *r)
{
    if (!l->wait_index_cap)
        return;
    size_t k = wait_slot(r->id, l->wait_index_cap);
    for (vram__req *e; (e = l->wait_index[k]); k = (k + 1) & (l->wait_index_cap - 1))
        if (e == r) {
            l->wait_index[k] = WAIT_INDEX_GONE;
            return;
        }
}

vram__req *vram__waiting_find(vram_ledger *l, uint64_t id)
{
    if (l->wait_index_lost) {       /* not all of them indexed */
        for (unsigned i = 0; i < l->nlevels; i++)
            for (vram__req *r = l->levels[i].head; r; r = r->next)
                if (r->id == id && r->external)
                    return r;
        return NULL;
    }
    if (!l->wait_index_cap)
        return NULL;
    size_t k = wait_slot(id, l->wait_index_cap);
    for (vram__req *e; (e = l->wait_index[k]); k = (k + 1) & (l->wait_index_cap - 1))
        if (e != WAIT_INDEX_GONE && e->id == id)
            return e;
    return NULL;
}

int vram__queue_insert(vram_ledger *l, vram__req *r)
{
    vram__level *lv = find_level(l, r->priority);
    if (!lv && !(lv = add_level(l, r->priority)))
        return vram__fail(VRAM_ENOMEM, "out of host memory queueing a request");
    vram__req *after = lv->tail;
    while (after && after->seq > r->seq)
        after = after->prev;
    r->prev = after;
    r->next = after ? after->next : lv->head;
    if (r->next)
        r->next->prev = r;
    else
        lv->tail = r;
    if (after)
        after->next = r;
    else
        lv->head = r;
    r->state = REQ_QUEUED;
    if (r->external)
        wait_index_add(l, r);
    count_waiting(l, r, +1);
    r->reason = WAIT_RESOURCES;     /* so that the next line stores it */
    vram__set_reason(r, WAIT_PRIORITY);
    if (r->deadline_ns && !r->to_cpu)
        vram__deadline_insert(l, r);
    else if (!r->deadline_ns && !r->to_cpu && (r->wait_ms >= 0 || r->can_step)) {
        r->clocked = true;          /* its clock starts when memory holds it up */
        r->uc_prev = NULL;
        r->uc_next = l->uc_head;
        if (l->uc_head)
            l->uc_head->uc_prev = r;
        l->uc_head = r;
    }
    return 0;
}

void vram__queue_remove(vram_ledger *l, vram__req *r)
{
    vram__level *lv = find_level(l, r->priority);
    if (r->prev)
        r->prev->next = r->next;
    else
        lv->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        lv->tail = r->prev;
    r->prev = r->next = NULL;
    if (r->external)
        wait_index_remove(l, r);
    vram__deadline_remove(l, r);
    vram__unclocked_remove(l, r);
    count_waiting(l, r, -1);
}

/* ---- grants ------------------------------------------------------------------ */

/* Tells a request what happened: a blocked acquirer at once (it wakes when
 * the lock is dropped), anyone else after the pass. */
static void tell(vram__req *r, vram__pass_out *out)
{
    if (r->waiter) {
        pthread_cond_signal(r->waiter);
    } else if (r->notify) {
        r->out_next = NULL;
        if (out->notify_tail)
            out->notify_tail->out_next = r;
        else
            out->notify = r;
        out->notify_tail = r;
    }
}

uint64_t vram__expected_end(const vram__req *r, uint64_t now_ns)
{
    uint64_t ms = r->expected_ms;
    if (!ms && r->cls && r->cls->mean_ms > 0)
        ms = (uint64_t)(r->cls->mean_ms + 0.5);
    return ms ? now_ns + ms * 1000000ull : VRAM__NO_END;
}

void vram__grant(vram_ledger *l, vram__req *r, int device, uint64_t bytes, uint64_t now_ns,
                 vram__pass_out *out)
{
    if (!r->adopted)                /* an adopted lease never waited */
        vram__queue_remove(l, r);
    r->state = REQ_GRANTED;
    r->status = 0;
    r->device = device;
    r->start_ns = now_ns;
    r->end_ns = vram__expected_end(r, now_ns);
    r->granted_bytes = 0;
    r->extra_seen = r->cls ? r->cls->extra_bytes : 0;
    vram_resident *res = r->resident;
    if (res && device >= 0) {
        if (res->state == RES_EVICTED) {     /* the task loads it again */
            res->state = RES_LOADED;
            l->dev[device].resident += res->bytes;
            bytes = sat_sub(bytes, res->bytes);
        }
        res->pins++;
        res->last_use_ns = now_ns;
    }
    if (device >= 0) {
        r->granted_bytes = bytes;
        l->dev[device].leased += bytes;
        l->dev[device].nleases++;
        if (r->is_lease)
            l->dev[device].lease_bytes += bytes;
    }
    if (r->client)
        r->client->slots_free--;
    r->prev = NULL;
    r->next = l->grants;
    if (l->grants)
        l->grants->prev = r;
    l->grants = r;
    l->ngrants++;
    tell(r, out);
}

void vram__expire(vram_ledger *l, vram__req *r, int status, vram__pass_out *out)
{
    vram__queue_remove(l, r);
    r->state = REQ_DONE;
    r->status = status;
    tell(r, out);
}

/* Takes a granted request off the books.  Under the lock. */
static void ungrant(vram_ledger *l, vram__req *r, bool learn, bool free_slot, uint64_t now_ns)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->grants = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    l->ngrants--;
    if (r->device >= 0) {
        vram__dev *d = &l->dev[r->device];
        d->leased -= r->granted_bytes;
        d->nleases--;
        if (r->is_lease)
            d->lease_bytes -= r->granted_bytes;
        if (r->resident) {
            r->resident->pins--;
            r->resident->last_use_ns = now_ns;
        }
    }
    if (learn && r->cls && !r->adopted)     /* an adopted one's start is not known */
        learn_duration(r->cls, (now_ns - r->start_ns) / 1000000ull);
    if (free_slot && r->client)
        r->client->slots_free++;
    r->state = REQ_DONE;
}

/* ---- settling: pass, evict, notify ------------------------------------------------ */

static void deliver(vram__req *list)
{
    while (list) {
        vram__req *next = list->out_next;  /* list may be freed by its notify */
        list->notify(list);
        list = next;
    }
}

void vram__ledger_settle(vram_ledger *l)
{
    for (;;) {
        vram__pass_out out = { NULL, NULL, { NULL }, 0 };
        vram__policy_pass(l, vram__now_ns(), &out);
        pthread_mutex_unlock(&l->lock);
        deliver(out.notify);
        if (!out.nevict)
            return;
        for (unsigned i = 0; i < out.nevict; i++) {
            vram_resident *r = out.evict[i];
            r->unload(r->user, r->name, r->device, r->bytes);
        }
        pthread_mutex_lock(&l->lock);
        for (unsigned i = 0; i < out.nevict; i++) {
            vram_resident *r = out.evict[i];
            r->state = RES_EVICTED;
            l->dev[r->device].resident -= r->bytes;
            l->evicting--;
        }
        pthread_cond_signal(&l->timer_wake);
    }
}

int vram__ledger_submit(vram_ledger *l, vram__req *r, uint64_t *id_out)
{
    pthread_mutex_lock(&l->lock);
    r->id = ++l->next_id;
    if (id_out)                     /* before the pass can grant, tell and free r */
        *id_out = r->id;
    if (!r->seq)
        r->seq = ++l->next_seq;
    int rc = vram__queue_insert(l, r);
    if (rc) {
        pthread_mutex_unlock(&l->lock);
        return rc;
    }
    vram__ledger_settle(l);
    return 0;
}

bool vram__ledger_withdraw(vram_ledger *l, vram__req *r)
{
    pthread_mutex_lock(&l->lock);
    if (r->state != REQ_QUEUED) {
        pthread_mutex_unlock(&l->lock);
        return false;
    }
    vram__queue_remove(l, r);
    r->state = REQ_DONE;
    vram__ledger_settle(l);
    return true;
}

vram__req *vram__ledger_withdraw_client(vram_ledger *l, const vram__client *c)
{
    vram__req *list = NULL;
    pthread_mutex_lock(&l->lock);
    for (unsigned i = 0; i < l->nlevels; i++)
        for (vram__req *r = l->levels[i].head, *next; r; r = next) {
            next = r->next;
            if (r->client != c)
                continue;
            vram__queue_remove(l, r);
            r->state = REQ_DONE;
            r->out_next = list;
            list = r;
        }
    vram__ledger_settle(l);
    return list;
}

void vram__ledger_release(vram_ledger *l, vram__req *r, bool learn, bool free_slot)
{
    pthread_mutex_lock(&l->lock);
    if (r->state == REQ_GRANTED)
        ungrant(l, r, learn, free_slot, vram__now_ns());
    else if (free_slot && r->client)
        r->client->slots_free++;
    vram__ledger_settle(l);
}

void vram__ledger_free_slot(vram_ledger *l, vram__client *c)
{
    pthread_mutex_lock(&l->lock);
    c->slots_free++;
    vram__ledger_settle(l);
}

void vram__ungrant(vram_ledger *l, vram__req *r, bool learn)
{
    ungrant(l, r, learn, true, vram__now_ns());
}

/* ---- sampling: others ------------------------------------------------------------- */

typedef struct holder_use {
    uint32_t pid;
    uint32_t pgid;                  /* 0: the pid alone */
    uint64_t ours;                  /* leased + resident by this holder on the device */
} holder_use;

#define MAX_HOLDER_PIDS 64

/* Adds bytes to the holder (pid, pgid) in h, making it when new. */
static size_t add_holder(holder_use *h, size_t n, uint32_t pid, uint32_t pgid, uint64_t bytes)
{
    size_t i = 0;
    while (i < n && (h[i].pid != pid || h[i].pgid != pgid))
        i++;
    if (i == n) {
        if (n == MAX_HOLDER_PIDS)
            return n;               /* unexplained: counted as others, safely */
        h[n++] = (holder_use){ pid, pgid, 0 };
    }
    h[i].ours += bytes;
    return n;
}

/* Under the lock: who holds memory on device and how much each. */
static size_t holders_on(const vram_ledger *l, unsigned device, holder_use *h)
{
    size_t n = 0;
    for (const vram__req *r = l->grants; r; r = r->next)
        if (r->device == (int)device && r->granted_bytes)
            n = add_holder(h, n, r->pid, r->pgid, r->granted_bytes);
    for (const vram_resident *res = l->residents; res; res = res->next)
        if (res->device == device && res->state != RES_EVICTED)
            n = add_holder(h, n, (uint32_t)getpid(), 0, res->bytes);
    return n;
}

/* Of what our holders hold on device, how much the device sees them use:
 * a holder's own process, and every process of its group when it has one. */
static uint64_t explained_on(vram_ledger *l, unsigned device, const holder_use *h, size_t n,
                             uint64_t device_used)
{
    if (n == 0)
        return 0;
    size_t cap = 64, count = 0;
    vram_proc *procs = NULL;
    int rc = VRAM_ERANGE;
    for (int tries = 0; tries < 3 && rc == VRAM_ERANGE; tries++) {
        free(procs);
        procs = calloc(cap, sizeof(*procs));
        if (!procs)
            return 0;
        rc = vram_device_processes(l->ctx, device, procs, cap, &count);
        cap = count + 16;
    }
    uint32_t *pgrp = rc ? NULL : calloc(count ? count : 1, sizeof(*pgrp));
    bool groups = false;
    for (size_t i = 0; i < n; i++)
        groups |= h[i].pgid != 0;
    for (size_t p = 0; pgrp && groups && p < count; p++)
        pgrp[p] = vram__proc_pgrp(procs[p].pid);
    uint64_t explained = 0;
    bool foreign = false;
    for (size_t p = 0; pgrp && p < count; p++)
        foreign |= (procs[p].have & VRAM_HAVE_PROC_FOREIGN) != 0;
    if (foreign) {
        /* The driver's pids are another namespace's (a container): no pid
         * can be matched, so our leases are taken as in use up to what the
         * device shows used, instead of counting them again as others. */
        for (size_t i = 0; i < n; i++)
            explained += h[i].ours;
        free(pgrp);
        pgrp = NULL;
        explained = explained < device_used ? explained : device_used;
    }
    for (size_t i = 0; pgrp && i < n; i++) {
        uint64_t used = 0;
        for (size_t p = 0; p < count; p++)
            if ((procs[p].pid == h[i].pid || (h[i].pgid && pgrp[p] == h[i].pgid)) &&
                (procs[p].have & VRAM_HAVE_PROC_MEM))
                used += procs[p].used_bytes;
        explained += used < h[i].ours ? used : h[i].ours;
    }
    free(pgrp);
    free(procs);
    vram__clear_error();
    return explained;
}

/* Our holders' use is read apart from the device's used memory; if the
 * device moved meanwhile (a task allocated or freed between the two reads),
 * the difference could count bytes of ours that `used` did not hold yet and
 * make others look smaller than it is.  Such a sample may raise others but
 * never lower it. */
static bool steady_since(vram_ledger *l, unsigned device, const vram_device_snapshot *d)
{
    vram_device_info again;
    return !vram_device_query(l->ctx, device, &again) && again.used_bytes == d->info.used_bytes;
}

static void on_sample(void *user, unsigned device, const vram_device_snapshot *d)
{
    vram_ledger *l = user;
    if (d->error == VRAM_ELOST && device < l->ndev) {
        pthread_mutex_lock(&l->lock);
        l->dev[device].lost = true;
        vram__ledger_settle(l);
        return;
    }
    if (d->error || device >= l->ndev)
        return;                     /* the last good sample stands */
    holder_use h[MAX_HOLDER_PIDS];
    pthread_mutex_lock(&l->lock);
    size_t n = holders_on(l, device, h);
    pthread_mutex_unlock(&l->lock);
    uint64_t explained = explained_on(l, device, h, n, d->info.used_bytes);
    bool steady = n == 0 || steady_since(l, device, d);
    vram__clear_error();
    uint64_t margin = vram__ctx_margin_bytes(l->ctx, d->info.total_bytes);
    uint64_t others = sat_sub(d->info.used_bytes, explained);

    pthread_mutex_lock(&l->lock);
    vram__dev *dv = &l->dev[device];
    dv->total = d->info.total_bytes;
    dv->reserved = d->info.have & VRAM_HAVE_RESERVED ? d->info.driver_reserved_bytes : 0;
    dv->margin = margin;
    if (steady || !dv->sampled || others > dv->others) {
        dv->others = others;
        dv->explained = explained;
    }
    dv->sampled = true;
    vram__strlcpy(dv->name, d->info.name, sizeof(dv->name));
    vram__ledger_settle(l);
}

/* What snapshots of the context show: ours, and how much of it is not yet
 * seen in use (so safe available does not count it twice). */
static int lease_view(void *ledger, unsigned device, vram__lease_view *out)
{
    vram_ledger *l = ledger;
    if (device >= l->ndev)
        return VRAM_ENODEV;
    pthread_mutex_lock(&l->lock);
    const vram__dev *d = &l->dev[device];
    uint64_t ours = d->leased + d->resident;
    out->leased_bytes = ours;
    out->unused_bytes = sat_sub(ours, d->explained);
    pthread_mutex_unlock(&l->lock);
    return 0;
}

/* ---- the timer: deadlines ------------------------------------------------------------ */

static void *timer_main(void *arg)
{
    vram_ledger *l = arg;
    pthread_mutex_lock(&l->lock);
    while (!l->stopping) {
        uint64_t now = vram__now_ns();
        if (l->dl_head && l->dl_head->deadline_ns <= now && !l->evicting) {
            vram__ledger_settle(l);
            pthread_mutex_lock(&l->lock);
            continue;
        }
        if (!l->dl_head || l->evicting) {   /* an eviction's end wakes it */
            pthread_cond_wait(&l->timer_wake, &l->lock);
            continue;
        }
        uint64_t at = l->dl_head->deadline_ns;
        struct timespec ts = { (time_t)(at / 1000000000ull), (long)(at % 1000000000ull) };
        pthread_cond_timedwait(&l->timer_wake, &l->lock, &ts);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

/* ---- life ------------------------------------------------------------------------------ */

static void ledger_free(vram_ledger *l)
{
    for (unsigned i = 0; i < l->nclasses; i++)
        free(l->classes[i]);
    free(l->classes);
    free(l->levels);
    free(l->wait_index);
    free(l->scratch);
    free(l->dev);
    free(l);
}

static int ledger_alloc(vram_ctx *ctx, const vram_ledger_config *cfg, vram_ledger **out)
{
    unsigned n;
    int rc = vram_device_count(ctx, &n);
    if (rc)
        return rc;
    if (n > VRAM_MAX_DEVICES)
        return vram__fail(VRAM_ERANGE, "%u devices: the ledger handles at most %d", n,
                          VRAM_MAX_DEVICES);
    vram_ledger *l = calloc(1, sizeof(*l));
    if (!l || !(l->dev = calloc(n ? n : 1, sizeof(*l->dev)))) {
        free(l);
        return vram__fail(VRAM_ENOMEM, "out of host memory opening a ledger");
    }
    l->ctx = ctx;
    l->ndev = n;
    l->window = cfg && cfg->backfill_window ? cfg->backfill_window : VRAM__DEFAULT_WINDOW;
    l->no_backfill = cfg && cfg->no_backfill;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->timer_wake, &attr);
    pthread_condattr_destroy(&attr);
    *out = l;
    return 0;
}

vram_ledger *vram__ledger_bare(uint64_t capacity, unsigned window, bool no_backfill)
{
    vram_ledger *l = calloc(1, sizeof(*l));
    if (!l || !(l->dev = calloc(1, sizeof(*l->dev)))) {
        free(l);
        return NULL;
    }
    l->ndev = 1;
    l->dev[0].sampled = true;
    l->dev[0].total = capacity;
    vram__strlcpy(l->dev[0].name, "simulated", sizeof(l->dev[0].name));
    l->window = window ? window : VRAM__DEFAULT_WINDOW;
    l->no_backfill = no_backfill;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->timer_wake, NULL);
    return l;
}

void vram__ledger_bare_free(vram_ledger *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->timer_wake);
    ledger_free(l);
}

static void ledger_destroy(vram_ledger *l)
{
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->timer_wake);
    ledger_free(l);
}

int vram_ledger_open(vram_ctx *ctx, const vram_ledger_config *cfg, vram_ledger **out)
{
    if (!ctx || !out)
        return vram__fail(VRAM_EINVAL, "vram_ledger_open: NULL argument");
    *out = NULL;
    vram_ledger *l = NULL;
    int rc = cfg ? vram__check_version("vram_ledger_config", cfg->version, VRAM_LEDGER_CONFIG_VERSION) : 0;
    if (!rc)
        rc = ledger_alloc(ctx, cfg, &l);
    if (rc)
        return rc;
    void *none = NULL;
    __atomic_store_n(&ctx->lease_view, lease_view, __ATOMIC_RELEASE);  /* the same for every ledger */
    if (!__atomic_compare_exchange_n(&ctx->ledger, &none, l, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        ledger_destroy(l);
        return vram__fail(VRAM_EBUSY, "this context already has a ledger open");
    }
    unsigned interval = cfg ? cfg->interval_ms : 0;
    if ((rc = vram_monitor_start(ctx, interval, LEDGER_HISTORY, &l->mon))) {
        __atomic_store_n(&ctx->ledger, NULL, __ATOMIC_RELEASE);
        ledger_destroy(l);
        return rc;
    }
    vram__monitor_set_listener(l->mon, on_sample, l);
    vram_monitor_sample_now(l->mon);     /* others known before the first request */
    vram__clear_error();
    if (pthread_create(&l->timer, NULL, timer_main, l) != 0) {
        vram_monitor_stop(l->mon);
        __atomic_store_n(&ctx->ledger, NULL, __ATOMIC_RELEASE);
        ledger_destroy(l);
        return vram__fail(VRAM_ENOMEM, "cannot start the ledger's timer thread");
    }
    l->timer_started = true;
    vram__ctx_attach(ctx);
    *out = l;
    return 0;
}

int vram_ledger_close(vram_ledger *l)
{
    if (!l)
        return 0;
    pthread_mutex_lock(&l->lock);
    unsigned scheds = l->scheds, grants = l->ngrants, waiting = l->waiting;
    bool residents = l->residents != NULL;
    if (!scheds && !grants && !waiting && !residents)
        l->stopping = true;
    pthread_cond_signal(&l->timer_wake);
    pthread_mutex_unlock(&l->lock);
    if (scheds || grants || waiting || residents)
        return vram__fail(VRAM_EBUSY, "the ledger still has %u scheduler(s), %u lease(s), %u "
                          "waiting request(s)%s", scheds, grants, waiting,
                          residents ? " and resident models" : "");
    pthread_join(l->timer, NULL);
    vram_monitor_stop(l->mon);
    vram_ctx *ctx = l->ctx;
    pthread_mutex_lock(&ctx->lock);     /* no snapshot is asking it now */
    __atomic_store_n(&ctx->ledger, NULL, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&ctx->lock);
    vram__ctx_detach(ctx);
    ledger_destroy(l);
    return 0;
}

int vram_ledger_refresh(vram_ledger *l)
{
    if (!l)
        return vram__fail(VRAM_EINVAL, "vram_ledger_refresh: NULL ledger");
    return vram_monitor_sample_now(l->mon);
}

vram_monitor *vram_ledger_monitor(vram_ledger *l)
{
    return l ? l->mon : NULL;
}

int vram_ledger_device_info(vram_ledger *l, unsigned device, vram_ledger_device *out)
{
    if (!l || !out)
        return vram__fail(VRAM_EINVAL, "vram_ledger_device_info: NULL argument");
    memset(out, 0, sizeof(*out));
    if (device >= l->ndev)
        return vram__fail(VRAM_ENODEV, "no device %u: the ledger has %u", device, l->ndev);
    pthread_mutex_lock(&l->lock);
    const vram__dev *d = &l->dev[device];
    out->index = device;
    out->sampled = d->sampled;
    out->total_bytes = d->total;
    out->margin_bytes = d->margin;
    out->capacity_bytes = vram__dev_capacity(d);
    out->others_bytes = d->others;
    out->leased_bytes = d->leased;
    out->resident_bytes = d->resident;
    out->available_bytes = vram__dev_room(d);
    out->leases = d->nleases;
    for (const vram_resident *r = l->residents; r; r = r->next) {
        if (r->device != device)
            continue;
        out->residents++;
        if (r->state == RES_LOADED && !r->pins && r->unload)
            out->evictable_bytes += r->bytes;
    }
    out->waiting = l->waiting_any + d->waiting_pinned;   /* counted, not walked */
    pthread_mutex_unlock(&l->lock);
    return 0;
}

/* ---- residents ---------------------------------------------------------------------------- */

int vram_resident_register(vram_ledger *l, const char *name, unsigned device, uint64_t bytes,
                           vram_unload_fn unload, void *user, vram_resident **out)
{
    if (out)
        *out = NULL;
    if (!l || !name || !out)
        return vram__fail(VRAM_EINVAL, "vram_resident_register: NULL argument");
    if (!*name || strlen(name) >= VRAM__CLASS_NAME_MAX)
        return vram__fail(VRAM_EINVAL, "a resident needs a name of 1 to %d characters",
                          VRAM__CLASS_NAME_MAX - 1);
    if (bytes == 0)
        return vram__fail(VRAM_EINVAL, "resident '%s' has 0 bytes", name);
    if (device >= l->ndev)
        return vram__fail(VRAM_ENODEV, "no device %u for resident '%s': there are %u", device,
                          name, l->ndev);
    pthread_mutex_lock(&l->lock);
    vram_resident *r = l->residents;
    while (r && (r->device != device || strcmp(r->name, name)))
        r = r->next;
    if (r) {                        /* the same model again: reuse it */
        vram__dev *d = &l->dev[device];
        if (r->state == RES_EVICTED)
            d->resident += bytes;
        else if (r->state == RES_LOADED)
            d->resident = d->resident - r->bytes + bytes;
        if (r->state != RES_EVICTING) {
            r->bytes = bytes;
            r->state = RES_LOADED;
        }
        r->refs++;
        r->last_use_ns = vram__now_ns();
        pthread_mutex_unlock(&l->lock);
        *out = r;
        return 0;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        pthread_mutex_unlock(&l->lock);
        return vram__fail(VRAM_ENOMEM, "out of host memory registering '%s'", name);
    }
    *r = (vram_resident){ .l = l, .device = device, .bytes = bytes, .unload = unload,
                          .user = user, .refs = 1, .state = RES_LOADED,
                          .last_use_ns = vram__now_ns(), .next = l->residents };
    vram__strlcpy(r->name, name, sizeof(r->name));
    if (l->residents)
        l->residents->prev = r;
    l->residents = r;
    l->dev[device].resident += bytes;
    l->dev[device].nresidents++;
    pthread_mutex_unlock(&l->lock);
    *out = r;
    return 0;
}

int vram_resident_use(vram_resident *r)
{
    if (!r)
        return vram__fail(VRAM_EINVAL, "vram_resident_use: NULL resident");
    pthread_mutex_lock(&r->l->lock);
    int rc = 0;
    if (r->state != RES_LOADED)
        rc = vram__fail(VRAM_ENOENT, "resident '%s' was evicted: load it and register it again",
                        r->name);
    else {
        r->pins++;
        r->last_use_ns = vram__now_ns();
    }
    pthread_mutex_unlock(&r->l->lock);
    return rc;
}

int vram_resident_done(vram_resident *r)
{
    if (!r)
        return vram__fail(VRAM_EINVAL, "vram_resident_done: NULL resident");
    vram_ledger *l = r->l;
    pthread_mutex_lock(&l->lock);
    if (!r->pins) {
        pthread_mutex_unlock(&l->lock);
        return vram__fail(VRAM_EINVAL, "resident '%s' is not in use", r->name);
    }
    r->pins--;
    r->last_use_ns = vram__now_ns();
    vram__ledger_settle(l);          /* it may be evicted for a waiting request now */
    return 0;
}

int vram_resident_loaded(const vram_resident *r)
{
    if (!r)
        return 0;
    pthread_mutex_lock(&r->l->lock);
    int loaded = r->state == RES_LOADED;
    pthread_mutex_unlock(&r->l->lock);
    return loaded;
}

int vram_resident_unregister(vram_resident *r)
{
    if (!r)
        return vram__fail(VRAM_EINVAL, "vram_resident_unregister: NULL resident");
    vram_ledger *l = r->l;
    pthread_mutex_lock(&l->lock);
    if (r->pins || r->state == RES_EVICTING) {
        pthread_mutex_unlock(&l->lock);
        return vram__fail(VRAM_EBUSY, "resident '%s' is %s", r->name,
                          r->pins ? "in use" : "being evicted");
    }
    if (--r->refs > 0) {
        pthread_mutex_unlock(&l->lock);
        return 0;
    }
    if (r->state == RES_LOADED)
        l->dev[r->device].resident -= r->bytes;
    l->dev[r->device].nresidents--;
    if (r->prev)
        r->prev->next = r->next;
    else
        l->residents = r->next;
    if (r->next)
        r->next->prev = r->prev;
    free(r);
    vram__ledger_settle(l);
    return 0;
}
