/* SPDX-License-Identifier: MIT */
/*
 * runner/admit.c - where a job's attempts get their memory from.
 *
 * Three ways, one interface: this process's own ledger (no daemon runs),
 * a lease from vramd (a daemon answers on its socket: every job on the
 * machine then waits in one queue), or, for a job the daemon itself queued,
 * the daemon's job protocol (claim, rung, owner, progress, ended).  The two
 * daemon ways go through wire/link.c, which speaks the protocol and knows
 * what to do when vramd is gone; this file never touches the daemon's job
 * store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/runner.h"

int vram__admit_open(vram__admitter *ad, vram_ctx *ctx, uint64_t daemon_job)
{
    memset(ad, 0, sizeof(*ad));
    ad->ctx = ctx;
    ad->job = daemon_job;
    const vram_options *o = vram_ctx_options(ctx);
    int rc = vram__link_open(&ad->link, vram_options_get(o, "socket"), vram_options_get(o, "db"), daemon_job);
    if (!rc || daemon_job)
        return rc;
    vram__clear_error();
    return vram_ledger_open(ctx, NULL, &ad->ledger);
}

void vram__admit_close(vram__admitter *ad)
{
    vram__link_close(&ad->link);
    if (ad->ledger)
        vram_ledger_close(ad->ledger);
    memset(ad, 0, sizeof(*ad));
}

void vram__admit_keep(vram__admitter *ad)
{
    vram__link_keep(&ad->link);
}

const char *vram__admit_where(const vram__admitter *ad)
{
    return ad->job ? "vramd (as its job)" : ad->link.daemon ? "vramd" : "this process";
}

/* This process's ledger: waits in short slices, so an interrupt or the
 * deadline ends the wait at once. */
static int local_lease(vram__admitter *ad, const vram__lease_ask *ask, vram__lease_grant *out)
{
    vram_lease_request q = {
        .bytes = ask->bytes,
        .device = ask->device,
        .wait_ms = 0,
        .holder = ask->holder,
        .task_class = ask->task_class,
    };
    vram_lease_info lease;
    int rc = vram_lease_acquire(ad->ledger, &q, &lease);
    if (rc == VRAM_ETIMEDOUT && ask->wait_ms != 0) {
        if (ask->waiting)
            ask->waiting(ask->user);
        uint64_t deadline = ask->wait_ms < 0 ? UINT64_MAX : vram__now_ms() + (uint64_t)ask->wait_ms;
        do {
            uint64_t now = vram__now_ms();
            q.wait_ms = (int64_t)(deadline - now < 250 ? deadline - now : 250);
            rc = vram_lease_acquire(ad->ledger, &q, &lease);
        } while (rc == VRAM_ETIMEDOUT && !ask->interrupted() && vram__now_ms() < deadline);
    }
    if (rc)
        return rc;
    out->lease = lease.id;
    out->device = (int)lease.device;
    out->bytes = lease.bytes;
    return 0;
}

int vram__admit_claim(vram__admitter *ad, vram__record *record, vram__lease_grant *out)
{
    memset(out, 0, sizeof(*out));
    if (!ad->job || !ad->link.daemon)
        return vram__fail(VRAM_EINVAL, "not a daemon job's runner");
    int rc = vram__link_claim(&ad->link, (uint32_t)getpid(), &ad->claim, record);
    if (rc)
        return rc;
    ad->claimed = true;
    out->lease = ad->claim.lease;
    out->device = ad->claim.device;
    out->bytes = ad->claim.bytes;
    return 0;
}

int vram__admit(vram__admitter *ad, const vram__lease_ask *ask, vram__lease_grant *out)
{
    memset(out, 0, sizeof(*out));
    ad->attempts++;
    if (!ad->link.daemon)
        return local_lease(ad, ask, out);
    vram__grant g;
    int rc;
    if (ad->job && ad->attempts == 1 && ad->claimed) {
        g = ad->claim;              /* taken with the job's record */
        rc = 0;
    } else if (ad->job && ad->attempts == 1) {
        rc = vram__link_claim(&ad->link, (uint32_t)getpid(), &g, NULL);
    } else if (ad->job) {
        rc = vram__link_rung(&ad->link, ask->bytes, &g);
    } else {
        if (ask->waiting)
            ask->waiting(ask->user);
        rc = vram__link_lease(&ad->link, ask->bytes, ask->device, ask->wait_ms, &g);
    }
    if (rc)
        return rc;
    out->lease = g.lease;
    out->device = g.device;
    out->bytes = g.bytes ? g.bytes : ask->bytes;
    return 0;
}

void vram__admit_owner(vram__admitter *ad, uint64_t lease, uint32_t pid, uint32_t pgid)
{
    if (!ad->link.daemon && !ad->job)
        vram_lease_set_owner(ad->ledger, lease, pid, pgid);
    else
        vram__link_owner(&ad->link, lease, pgid);
}

void vram__admit_release(vram__admitter *ad, uint64_t lease)
{
    if (!ad->link.daemon && !ad->job)
        vram_lease_release(ad->ledger, lease);
    else
        vram__link_release(&ad->link, lease);
}

void vram__admit_owner_again(vram__admitter *ad)
{
    vram__link_owner_again(&ad->link);
}

void vram__admit_progress(vram__admitter *ad, double progress)
{
    vram__link_progress(&ad->link, progress);
}

void vram__admit_usage(vram__admitter *ad, uint64_t used, uint64_t over)
{
    vram__link_usage(&ad->link, used, over);
}

void vram__admit_ended(vram__admitter *ad, int exit_status, const char *outcome, uint64_t peak, bool ran,
                       vram_job_next *next)
{
    vram__link_ended(&ad->link, exit_status, outcome, peak, ran, next);
}
