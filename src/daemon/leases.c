/* SPDX-License-Identifier: MIT */
/*
 * daemon/leases.c - the leases clients take through the socket, as vramd
 * shows them: the names clients give them, and their rows in lists.
 *
 * A client may name its lease (the request's `holder`: the Slurm plugin
 * says "slurm job 12 step 0 task 1"), so that `vram queue` and the
 * dashboard say whose it is.  A name is text for people and nothing more:
 * it is cleaned to printable ASCII, cut to VRAMD_LEASE_NAME_MAX, and never
 * used to decide who may release a lease or whose it is; that stays the
 * connection's (the ledger's holder "client N (pid P)", and SO_PEERCRED's
 * pid and uid, shown beside the name).  The table of names is bounded
 * (VRAMD_LEASE_NAMES_MAX); a lease past it is shown by its connection.
 * Like a job's command, a name is shown to whoever sees its user's jobs
 * (d->viewer_uid, jobview.c), and to everyone when root's: the Slurm
 * plugin speaks from slurmstepd, and a Slurm job's ids are what squeue
 * shows every user.
 *
 * Everything here runs under the daemon's lock: the main loop's, or the
 * dashboard's thread taking it (provider.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"

/* Printable ASCII of in, others as '?', spaces at either end dropped, cut
 * to cap - 1 bytes.  An empty result means no name. */
void vramd_lease_name_clean(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    if (!cap)
        return;
    while (in && *in == ' ')
        in++;
    for (; in && *in && n + 1 < cap; in++) {
        unsigned char ch = (unsigned char)*in;
        out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

/* The first entry whose lease is >= lease (ids ascending). */
static size_t lower_bound(const vramd *d, uint64_t lease)
{
    size_t lo = 0, hi = d->nnames;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->names[mid].lease < lease)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const vramd_lease_name *vramd_lease_name_find(const vramd *d, uint64_t lease)
{
    size_t i = lower_bound(d, lease);
    return i < d->nnames && d->names[i].lease == lease ? &d->names[i] : NULL;
}

void vramd_lease_name_add(vramd *d, uint64_t lease, uint64_t conn, uint32_t uid, const char *name)
{
    if (d->nnames >= VRAMD_LEASE_NAMES_MAX)
        return;
    if (d->nnames == d->cap_names) {
        size_t cap = d->cap_names ? d->cap_names * 2 : 16;
        vramd_lease_name *grown = realloc(d->names, cap * sizeof(*grown));
        if (!grown)
            return;                 /* shown by its connection instead */
        d->names = grown;
        d->cap_names = cap;
    }
    /* Tickets grow, so this is an append but for the rare late one. */
    size_t i = lower_bound(d, lease);
    memmove(&d->names[i + 1], &d->names[i], (d->nnames - i) * sizeof(*d->names));
    vramd_lease_name *e = &d->names[i];
    memset(e, 0, sizeof(*e));
    e->lease = lease;
    e->conn = conn;
    e->uid = uid;
    vramd_lease_name_clean(name, e->name, sizeof(e->name));
    d->nnames++;
}

void vramd_lease_name_drop(vramd *d, uint64_t lease)
{
    size_t i = lower_bound(d, lease);
    if (i < d->nnames && d->names[i].lease == lease) {
        memmove(&d->names[i], &d->names[i + 1], (d->nnames - i - 1) * sizeof(*d->names));
        d->nnames--;
    }
}

void vramd_lease_names_drop_conn(vramd *d, uint64_t conn)
{
    size_t k = 0;
    for (size_t i = 0; i < d->nnames; i++)
        if (d->names[i].conn != conn)
            d->names[k++] = d->names[i];
    d->nnames = k;
}

void vramd_lease_names_free(vramd *d)
{
    free(d->names);
    d->names = NULL;
    d->nnames = d->cap_names = 0;
}

/* ---- rows --------------------------------------------------------------------------- */

/* The fields every row has: who holds it, by name (when viewer may see
 * it) and by connection. */
static void row_begin(vram__json *j, uint32_t viewer, uint64_t id, const char *state, uint64_t bytes,
                      const vramd_lease_name *e, const char *fallback, uint32_t pid, uint32_t uid)
{
    vram__json_object_begin(j);
    vram__json_field_string(j, "kind", "lease");
    vram__json_field_uint(j, "id", id);
    vram__json_field_string(j, "state", state);
    vram__json_field_uint(j, "bytes", bytes);
    bool named = e && *e->name && (e->uid == 0 || vramd_viewer_sees(viewer, e->uid));
    vram__json_field_string(j, "holder", named ? e->name : fallback);
    if (e)
        vram__json_field_uint(j, "client", e->conn);
    if (e || uid != UINT32_MAX)     /* the kernel's word of who holds it, as squeue's USER */
        vram__json_field_uint(j, "uid", e ? e->uid : uid);
    vram__json_field_uint(j, "pid", pid);
}

/* The uid of the connection a ledger holder "client N (pid P)" names
 * (a lease past the table of names); UINT32_MAX when it is gone. */
static uint32_t holder_uid(vramd *d, const char *holder)
{
    unsigned long long conn;
    if (sscanf(holder, "client %llu", &conn) != 1)
        return UINT32_MAX;
    const vramd_conn *c = vramd_conn_find(d, conn);
    return c ? c->uid : UINT32_MAX;
}

void vramd_leases_json(vramd *d, vram__json *j)
{
    vram_lease_info *info = calloc(VRAMD_LEASES_SHOWN, sizeof(*info));
    size_t n = 0, shown = 0;
    int rc = info ? vram_lease_list(d->ledger, NULL, info, VRAMD_LEASES_SHOWN, &n) : VRAM_ENOMEM;
    if (rc && rc != VRAM_ERANGE)
        n = 0;
    if (n > VRAMD_LEASES_SHOWN)
        n = VRAMD_LEASES_SHOWN;
    vram__json_array_begin(j);
    for (size_t i = 0; i < n; i++) {
        const vram_lease_info *l = &info[i];
        if (strncmp(l->holder, "client ", 7) != 0)  /* a job's lease shows as its job */
            continue;
        row_begin(j, d->viewer_uid, l->id, "held", l->bytes, vramd_lease_name_find(d, l->id), l->holder, l->pid,
                  holder_uid(d, l->holder));
        vram__json_field_uint(j, "device", l->device);
        vram__json_field_uint(j, "held_ms", l->held_ms);
        vram__json_object_end(j);
        shown++;
    }
    /* Requests still waiting for room; one granted this round but not yet
     * answered is listed above already. */
    uint64_t now = vram__now_ms();
    for (const vramd_pending *p = d->pending; p && shown < VRAMD_LEASES_SHOWN; p = p->next) {
        bool granted = false;
        for (size_t i = 0; i < n && !granted; i++)
            granted = info[i].id == p->ticket;
        if (granted || !p->ticket)
            continue;
        const vramd_conn *c = vramd_conn_find(d, p->conn);
        const char *reason = __atomic_load_n(&p->reason, __ATOMIC_ACQUIRE);
        row_begin(j, d->viewer_uid, p->ticket, "waiting", p->bytes, vramd_lease_name_find(d, p->ticket),
                  c ? c->holder : "client", p->pid, c ? c->uid : UINT32_MAX);
        if (p->device >= 0)
            vram__json_field_uint(j, "device", (uint64_t)p->device);
        vram__json_field_uint(j, "waited_ms", now > p->since_ms ? now - p->since_ms : 0);
        vram__json_field_string(j, "reason", reason ? reason : "Resources");
        vram__json_object_end(j);
        shown++;
    }
    vram__json_array_end(j);
    free(info);
}
