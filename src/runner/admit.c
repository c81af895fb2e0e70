/*
 * runner/admit.c - where a job's attempts get their memory from.
 *
 * Three ways, one interface: this process's own ledger (no daemon runs),
 * a lease from vramd (a daemon answers on its socket: every job on the
 * machine then waits in one queue), or, for a job the daemon itself queued,
 * the daemon's job protocol (claim, rung, owner, progress, ended).  A
 * daemon job's runner outlives its daemon: when the connection is lost it
 * talks to the next vramd on the same socket (which adopted the job), and
 * when there is none, its end is written to the queue directly, so a
 * restarted daemon finds it finished and does not run it again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json_read.h"
#include "wire/queue.h"
#include "runner/runner.h"

#define CLAIM_TRIES_MS 10000        /* a daemon restarting meanwhile gets this long */
#define ENDED_TRIES_MS 2000         /* to hear a job's end, before the queue is written */
#define RECONNECT_EVERY_MS 1000     /* how often progress and owner look for a new vramd */
#define RETRY_PAUSE_MS 200          /* between askings on connections lost at once */

int vram__admit_open(vram__admitter *ad, vram_ctx *ctx, uint64_t daemon_job)
{
    memset(ad, 0, sizeof(*ad));
    ad->ctx = ctx;
    ad->job = daemon_job;
    const vram_options *o = vram_ctx_options(ctx);
    const char *socket = vram_options_get(o, "socket");
    const char *db = vram_options_get(o, "db");
    vram__strlcpy(ad->db_path, db ? db : "", sizeof(ad->db_path));
    if (daemon_job) {
        uint64_t until = vram__now_ms() + CLAIM_TRIES_MS;
        int rc;
        while ((rc = vram_client_open(socket, &ad->daemon)) && vram__now_ms() < until)
            vram__sleep_ms(200);
        return rc;
    }
    if (vram_client_open(socket, &ad->daemon) == 0)
        return 0;
    vram__clear_error();
    return vram_ledger_open(ctx, NULL, &ad->ledger);
}

void vram__admit_close(vram__admitter *ad)
{
    vram_client_close(ad->daemon);
    if (ad->ledger)
        vram_ledger_close(ad->ledger);
    memset(ad, 0, sizeof(*ad));
}

const char *vram__admit_where(const vram__admitter *ad)
{
    return ad->job ? "vramd (as its job)" : ad->daemon ? "vramd" : "this process";
}

/* Connects to the vramd now on the socket, trying for up to patience_ms
 * (0: once, and not again within RECONNECT_EVERY_MS). */
static bool reconnect(vram__admitter *ad, uint64_t patience_ms)
{
    uint64_t now = vram__now_ms(), until = now + patience_ms;
    if (!patience_ms && now < ad->next_reconnect_ms)
        return false;
    char socket[4096];
    vram__strlcpy(socket, vram_client_socket(ad->daemon), sizeof(socket));
    vram_client *c = NULL;
    while (vram_client_open(socket, &c) && vram__now_ms() < until)
        vram__sleep_ms(200);
    if (!c) {
        ad->next_reconnect_ms = vram__now_ms() + RECONNECT_EVERY_MS;
        return false;
    }
    vram_client_close(ad->daemon);
    ad->daemon = c;
    return true;
}

/* One request to the daemon; for a daemon job, a lost connection is tried
 * again on the next vramd, for as long as patience_ms (0: once).  A request
 * the dead daemon had taken is then asked of the new one, which answers
 * from the queue (a job already ended is "not running").  A connection can
 * be lost again at once - made in the instant the old daemon died, to its
 * socket not yet gone - so the asking goes on while patience lasts. */
static int daemon_call(vram__admitter *ad, const char *request, int timeout_ms, uint64_t patience_ms,
                       char **reply)
{
    uint64_t until = vram__now_ms() + patience_ms;
    for (int tries = 0;; tries++) {
        int rc = vram_client_call(ad->daemon, request, timeout_ms, reply);
        if (rc != VRAM_EIO || !ad->job || (tries > 0 && vram__now_ms() >= until))
            return rc;
        char lost[256];
        vram__strlcpy(lost, vram_last_error(), sizeof(lost));
        if (tries > 0)
            vram__sleep_ms(RETRY_PAUSE_MS);
        uint64_t now = vram__now_ms();
        if (!reconnect(ad, until > now ? until - now : 0))
            return vram__fail(rc, "%s", lost);
    }
}

/* Sends a request built in b to the daemon and reads lease, device, bytes. */
static int daemon_lease_call(vram__admitter *ad, vram__buf *b, vram__lease_grant *out)
{
    char *reply;
    int rc = b->failed ? vram__fail(VRAM_ENOMEM, "out of host memory")
                       : daemon_call(ad, b->data, -1, CLAIM_TRIES_MS, &reply);
    vram__buf_free(b);
    if (rc)
        return rc;
    vram__json_doc *doc;
    char err[128];
    rc = vram__json_read(reply, strlen(reply), 0, &doc, err, sizeof(err));
    vram_free(reply);
    if (rc)
        return vram__fail(VRAM_EPARSE, "the daemon's lease reply: %s", err);
    const vram__jv *root = vram__json_root(doc);
    uint64_t device = 0;
    if (!vram__jv_uint(vram__jv_get(root, "lease"), &out->lease) ||
        !vram__jv_uint(vram__jv_get(root, "device"), &device))
        rc = vram__fail(VRAM_EPARSE, "the daemon's lease reply lacks lease or device");
    vram__jv_uint(vram__jv_get(root, "bytes"), &out->bytes);
    out->device = (int)device;
    vram__json_doc_free(doc);
    return rc;
}

static void begin(vram__buf *b, const char *op)
{
    vram__buf_init(b);
    vram__buf_printf(b, "{\"v\":1,\"op\":\"%s\"", op);
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

int vram__admit(vram__admitter *ad, const vram__lease_ask *ask, vram__lease_grant *out)
{
    memset(out, 0, sizeof(*out));
    ad->attempts++;
    if (!ad->daemon)
        return local_lease(ad, ask, out);
    vram__buf b;
    if (ad->job && ad->attempts == 1) {
        begin(&b, "job-claim");
        vram__buf_printf(&b, ",\"job\":%llu,\"pid\":%u}", (unsigned long long)ad->job, (unsigned)getpid());
    } else if (ad->job) {
        begin(&b, "job-rung");
        vram__buf_printf(&b, ",\"job\":%llu,\"vram\":%llu}", (unsigned long long)ad->job,
                         (unsigned long long)ask->bytes);
    } else {
        begin(&b, "lease");
        vram__buf_printf(&b, ",\"vram\":%llu", (unsigned long long)ask->bytes);
        if (ask->device >= 0)
            vram__buf_printf(&b, ",\"device\":%d", ask->device);
        if (ask->wait_ms >= 0)
            vram__buf_printf(&b, ",\"wait_ms\":%lld", (long long)ask->wait_ms);
        vram__buf_puts(&b, "}");
        if (ask->waiting)
            ask->waiting(ask->user);
    }
    int rc = daemon_lease_call(ad, &b, out);
    if (!rc && !out->bytes)
        out->bytes = ask->bytes;
    return rc;
}

/* A fire-and-forget request to the daemon; false when it did not take it. */
static bool tell(vram__admitter *ad, vram__buf *b, uint64_t patience_ms)
{
    char *reply = NULL;
    bool ok = !b->failed && ad->daemon && daemon_call(ad, b->data, 5000, patience_ms, &reply) == 0;
    vram_free(reply);
    vram__buf_free(b);
    if (!ok)
        vram__clear_error();
    return ok;
}

/* The daemon's queue, opened only when the daemon is not there to tell. */
static vram__queue *queue_of(vram__admitter *ad)
{
    vram__queue *q = NULL;
    if (*ad->db_path && vram__queue_open(ad->db_path, &q))
        q = NULL;
    return q;
}

void vram__admit_owner(vram__admitter *ad, uint64_t lease, uint32_t pid, uint32_t pgid)
{
    if (!ad->daemon) {
        vram_lease_set_owner(ad->ledger, lease, pid, pgid);
        return;
    }
    vram__buf b;
    begin(&b, "owner");
    if (ad->job)
        vram__buf_printf(&b, ",\"job\":%llu,\"pgid\":%u}", (unsigned long long)ad->job, pgid);
    else
        vram__buf_printf(&b, ",\"lease\":%llu,\"pgid\":%u}", (unsigned long long)lease, pgid);
    if (tell(ad, &b, 0) || !ad->job)
        return;
    vram__queue *q = queue_of(ad);  /* for the next daemon, should this one be gone */
    vram__job f = { .device = -1, .job_pgid = pgid };
    if (q)
        vram__queue_update(q, ad->job, VRAM__JOB_RUNNING, &f);
    vram__queue_close(q);
}

void vram__admit_release(vram__admitter *ad, uint64_t lease)
{
    if (!ad->daemon) {
        vram_lease_release(ad->ledger, lease);
        return;
    }
    if (ad->job)
        return;                     /* the daemon frees a job's lease itself */
    vram__buf b;
    begin(&b, "release");
    vram__buf_printf(&b, ",\"lease\":%llu}", (unsigned long long)lease);
    tell(ad, &b, 0);
}

void vram__admit_progress(vram__admitter *ad, double progress)
{
    if (!ad->job)
        return;
    vram__buf b;
    begin(&b, "job-progress");
    vram__buf_printf(&b, ",\"job\":%llu,\"progress\":%.3f}", (unsigned long long)ad->job, progress);
    tell(ad, &b, 0);
}

void vram__admit_ended(vram__admitter *ad, int exit_status, const char *outcome, uint64_t peak, bool ran)
{
    if (!ad->job)
        return;
    int code = exit_status < 0 ? 0 : exit_status > 255 ? 255 : exit_status;
    vram__buf b;
    begin(&b, "job-ended");
    vram__buf_printf(&b, ",\"job\":%llu,\"exit_status\":%d,\"outcome\":\"%s\",\"peak\":%llu}",
                     (unsigned long long)ad->job, code, outcome, (unsigned long long)peak);
    if (tell(ad, &b, ENDED_TRIES_MS))
        return;
    /* No daemon to tell: the end goes to the queue, where the next one
     * finds it (and does not run the job again).  A job whose command never
     * started (most often because vramd went away while it was starting) is
     * queued again instead: the next vramd starts it, within its limit of
     * starts. */
    vram__queue *q = queue_of(ad);
    int to = !ran ? VRAM__JOB_QUEUED
           : !strcmp(outcome, "ok") ? VRAM__JOB_SUCCEEDED
           : !strcmp(outcome, "canceled") ? VRAM__JOB_CANCELED : VRAM__JOB_FAILED;
    vram__job f = { .device = -1, .exit_status = code, .peak_bytes = peak };
    vram__strlcpy(f.outcome, outcome, sizeof(f.outcome));
    if (!ran)
        vram__strlcpy(f.note, "its runner could not start it and vramd was gone: queued again",
                      sizeof(f.note));
    if (!q || vram__queue_move(q, ad->job, VRAM__JOB_RUNNING, to, &f))
        vram__log(VRAM__LOG_WARN, "job %llu ended (%s) but neither vramd nor its queue took note: %s",
                  (unsigned long long)ad->job, outcome, vram_last_error());
    vram__queue_close(q);
}
