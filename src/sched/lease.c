/* SPDX-License-Identifier: MIT */
/*
 * sched/lease.c - external leases: memory reserved for a holder outside the
 * worker pool (a `vram run` child, a daemon client, a Python `with` block).
 *
 * Owns the public lease calls.  A lease request waits in the same queue, and
 * is admitted by the same policy, as the pool's tasks; the ledger owns the
 * request from submit to release.  A blocked acquirer sleeps on a condition
 * variable of its own that the admission pass signals; an async one is told
 * through its callback after the pass.  Holders are names: all of a
 * holder's leases can be listed and freed at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched/sched.h"

typedef struct async_call {
    vram_lease_fn fn;
    void *user;
} async_call;

void vram__lease_info_of(const vram__req *r, uint64_t now_ns, vram_lease_info *out)
{
    memset(out, 0, sizeof(*out));
    out->id = r->id;
    out->device = r->device >= 0 ? (unsigned)r->device : 0;
    out->bytes = r->granted_bytes;
    vram__strlcpy(out->holder, r->holder, sizeof(out->holder));
    out->pid = r->pid;
    out->uid = UINT32_MAX;
    out->held_ms = (now_ns - r->start_ns) / 1000000ull;
}

static void req_free(vram__req *r)
{
    if (r) {
        free(r->owner);
        free(r);
    }
}

/* Checks a request and makes the ledger's copy of it.  An adopted one is
 * not checked against the devices' capacity: it runs already. */
static int req_make(vram_ledger *l, const vram_lease_request *q, bool adopted, vram__req **out)
{
    *out = NULL;
    if (!l || !q)
        return vram__fail(VRAM_EINVAL, "lease request: NULL argument");
    if (vram__check_version("vram_lease_request", q->version, VRAM_LEASE_REQUEST_VERSION))
        return VRAM_EINVAL;
    if (q->bytes == 0)
        return vram__fail(VRAM_EINVAL, "lease request of 0 bytes: ask for the bytes you need");
    if (!adopted && q->wait_ms < VRAM_WAIT_FOREVER)
        return vram__fail(VRAM_EINVAL, "wait of %lld ms: give -1 (forever), 0 or more",
                          (long long)q->wait_ms);
    if (q->device < VRAM_DEVICE_ANY)
        return vram__fail(VRAM_ENODEV, "no device %d", q->device);
    vram__req *r = calloc(1, sizeof(*r));
    if (!r)
        return vram__fail(VRAM_ENOMEM, "out of host memory for a lease request");
    r->external = true;
    r->adopted = adopted;
    r->bytes = q->bytes;
    r->device_pref = q->device;
    r->priority = q->priority;
    r->wait_ms = q->wait_ms;
    r->expected_ms = q->expected_ms;
    r->pid = q->pid ? q->pid : (uint32_t)getpid();
    r->pgid = q->pgid;
    r->device = -1;
    r->is_lease = !(q->flags & VRAM_LEASE_JOB);
    r->reason_out = q->wait_reason;
    if (q->holder)
        vram__strlcpy(r->holder, q->holder, sizeof(r->holder));
    else
        snprintf(r->holder, sizeof(r->holder), "pid %u", (unsigned)getpid());
    if (!adopted && q->wait_ms >= 0)
        r->deadline_ns = vram__deadline_after(vram__now_ns(), (uint64_t)q->wait_ms);
    pthread_mutex_lock(&l->lock);
    r->cls = vram__class_intern(l, q->task_class);
    bool cpu_only;
    int rc = adopted ? 0 : vram__policy_check(l, r, &cpu_only);
    pthread_mutex_unlock(&l->lock);
    if (rc) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* The message for a request that ended without a lease, on the caller's thread. */
static int not_granted(const vram__req *r, int status)
{
    char need[32];
    vram_size_format(r->bytes, need, sizeof(need));
    switch (status) {
    case VRAM_ETIMEDOUT:
        return vram__fail(status, "%s for '%s' was not admitted within %lld ms", need, r->holder,
                          (long long)r->wait_ms);
    case VRAM_ECANCELED:
        return vram__fail(status, "the request of %s for '%s' was canceled", need, r->holder);
    case VRAM_ENOFIT:
        return vram__fail(status, "%s for '%s' no longer fits any device (its class's estimate "
                          "grew)", need, r->holder);
    default:
        return vram__fail(status, "the request of %s for '%s' failed", need, r->holder);
    }
}

int vram_lease_acquire(vram_ledger *l, const vram_lease_request *q, vram_lease_info *out)
{
    if (out)
        memset(out, 0, sizeof(*out));
    vram__req *r;
    int rc = req_make(l, q, false, &r);
    if (rc)
        return rc;
    pthread_cond_t cond;
    pthread_cond_init(&cond, NULL);
    r->waiter = &cond;
    if ((rc = vram__ledger_submit(l, r, NULL))) {
        pthread_cond_destroy(&cond);
        req_free(r);
        return rc;
    }
    pthread_mutex_lock(&l->lock);
    while (r->state == REQ_QUEUED)
        pthread_cond_wait(&cond, &l->lock);
    r->waiter = NULL;
    int status = r->state == REQ_GRANTED ? 0 : r->status;
    if (!status && out)
        vram__lease_info_of(r, vram__now_ns(), out);
    pthread_mutex_unlock(&l->lock);
    pthread_cond_destroy(&cond);
    if (status) {
        rc = not_granted(r, status);
        req_free(r);
        return rc;
    }
    return 0;
}

int vram_lease_adopt(vram_ledger *l, const vram_lease_request *q, vram_lease_info *out)
{
    if (out)
        memset(out, 0, sizeof(*out));
    if (!l || !q)
        return vram__fail(VRAM_EINVAL, "vram_lease_adopt: NULL argument");
    if (q->device < 0 || (unsigned)q->device >= l->ndev)
        return vram__fail(VRAM_ENODEV, "an adopted lease names its device: no device %d (there are %u)",
                          q->device, l->ndev);
    vram__req *r;
    int rc = req_make(l, q, true, &r);
    if (rc)
        return rc;
    uint64_t now = vram__now_ns();
    pthread_mutex_lock(&l->lock);
    r->id = ++l->next_id;
    r->seq = ++l->next_seq;
    vram__pass_out told = { NULL, NULL, { NULL }, 0 };
    vram__grant(l, r, q->device, r->bytes, now, &told);   /* no waiter, no callback: nobody told */
    if (out)
        vram__lease_info_of(r, now, out);
    pthread_mutex_unlock(&l->lock);
    return 0;
}

/* Tells an async caller; a request that ended without a lease is freed. */
static void async_notify(vram__req *r)
{
    async_call call = *(async_call *)r->owner;
    if (r->status) {
        call.fn(call.user, r->status, NULL);
        req_free(r);
        return;
    }
    vram_lease_info info;
    vram__lease_info_of(r, r->start_ns, &info);
    call.fn(call.user, 0, &info);     /* it may release the lease: r is gone then */
}

int vram_lease_acquire_async(vram_ledger *l, const vram_lease_request *q, vram_lease_fn fn,
                             void *user, uint64_t *ticket_out)
{
    if (ticket_out)
        *ticket_out = 0;
    if (!fn)
        return vram__fail(VRAM_EINVAL, "vram_lease_acquire_async: NULL callback");
    vram__req *r;
    int rc = req_make(l, q, false, &r);
    if (rc)
        return rc;
    async_call *call = malloc(sizeof(*call));
    if (!call) {
        req_free(r);
        return vram__fail(VRAM_ENOMEM, "out of host memory for a lease request");
    }
    *call = (async_call){ fn, user };
    r->owner = call;
    r->notify = async_notify;
    if ((rc = vram__ledger_submit(l, r, ticket_out)))
        req_free(r);
    return rc;
}

/* Finds a request of the ledger's own (not a task) by id: waiting or granted. */
static vram__req *find_external(vram_ledger *l, uint64_t id, bool granted)
{
    if (granted) {
        for (vram__req *r = l->grants; r; r = r->next)
            if (r->id == id && r->external)
                return r;
        return NULL;
    }
    return vram__waiting_find(l, id);
}

int vram_lease_cancel(vram_ledger *l, uint64_t ticket)
{
    if (!l)
        return vram__fail(VRAM_EINVAL, "vram_lease_cancel: NULL ledger");
    pthread_mutex_lock(&l->lock);
    vram__req *r = find_external(l, ticket, false);
    if (!r) {
        pthread_mutex_unlock(&l->lock);
        return vram__fail(VRAM_ENOENT, "no waiting request %llu", (unsigned long long)ticket);
    }
    vram__pass_out out = { NULL, NULL, { NULL }, 0 };
    vram__expire(l, r, VRAM_ECANCELED, &out);
    vram__req *told = out.notify;
    vram__ledger_settle(l);
    while (told) {                  /* the canceled one, told before anything else */
        vram__req *next = told->out_next;
        told->notify(told);
        told = next;
    }
    return 0;
}

int vram_lease_set_owner(vram_ledger *l, uint64_t lease_id, uint32_t pid, uint32_t pgid)
{
    if (!l)
        return vram__fail(VRAM_EINVAL, "vram_lease_set_owner: NULL ledger");
    pthread_mutex_lock(&l->lock);
    vram__req *r = find_external(l, lease_id, true);
    if (r) {
        if (pid)
            r->pid = pid;
        r->pgid = pgid;
    }
    pthread_mutex_unlock(&l->lock);
    if (!r)
        return vram__fail(VRAM_ENOENT, "no lease %llu (never granted, or already released)",
                          (unsigned long long)lease_id);
    return 0;
}

int vram_lease_release(vram_ledger *l, uint64_t lease_id)
{
    if (!l)
        return vram__fail(VRAM_EINVAL, "vram_lease_release: NULL ledger");
    pthread_mutex_lock(&l->lock);
    vram__req *r = find_external(l, lease_id, true);
    if (!r) {
        pthread_mutex_unlock(&l->lock);
        return vram__fail(VRAM_ENOENT, "no lease %llu (never granted, or already released)",
                          (unsigned long long)lease_id);
    }
    vram__ungrant(l, r, true);
    vram__ledger_settle(l);
    req_free(r);
    return 0;
}

static bool holder_is(const vram__req *r, const char *holder)
{
    return !holder || !strncmp(r->holder, holder, sizeof(r->holder) - 1);
}

int vram_lease_list(vram_ledger *l, const char *holder, vram_lease_info *buf, size_t cap,
                    size_t *count_out)
{
    if (!l || !count_out || (cap && !buf))
        return vram__fail(VRAM_EINVAL, "vram_lease_list: NULL argument");
    size_t n = 0;
    uint64_t now = vram__now_ns();
    pthread_mutex_lock(&l->lock);
    for (const vram__req *r = l->grants; r; r = r->next) {
        if (r->device < 0 || !holder_is(r, holder))
            continue;
        if (n < cap)
            vram__lease_info_of(r, now, &buf[n]);
        n++;
    }
    pthread_mutex_unlock(&l->lock);
    *count_out = n;
    if (n > cap)
        return vram__fail(VRAM_ERANGE, "%zu leases, room for %zu", n, cap);
    return 0;
}

int vram_lease_release_holder(vram_ledger *l, const char *holder, size_t *released_out)
{
    if (released_out)
        *released_out = 0;
    if (!l || !holder)
        return vram__fail(VRAM_EINVAL, "vram_lease_release_holder: NULL argument");
    vram__req *freed = NULL;
    size_t n = 0;
    vram__pass_out out = { NULL, NULL, { NULL }, 0 };
    pthread_mutex_lock(&l->lock);
    for (vram__req *r = l->grants, *next; r; r = next) {
        next = r->next;
        if (!r->external || !holder_is(r, holder))
            continue;
        vram__ungrant(l, r, false);
        r->out_next = freed;
        freed = r;
        n++;
    }
    for (unsigned i = 0; i < l->nlevels; i++)
        for (vram__req *r = l->levels[i].head, *next; r; r = next) {
            next = r->next;
            if (r->external && holder_is(r, holder))
                vram__expire(l, r, VRAM_ECANCELED, &out);
        }
    vram__ledger_settle(l);
    for (vram__req *r = out.notify, *next; r; r = next) {
        next = r->out_next;
        r->notify(r);
    }
    while (freed) {
        vram__req *next = freed->out_next;
        req_free(freed);
        freed = next;
    }
    if (released_out)
        *released_out = n;
    return 0;
}
