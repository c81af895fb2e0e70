/* SPDX-License-Identifier: MIT */
/*
 * daemon/conns.c - vramd's clients on the Unix socket.
 *
 * Reads request lines from every client without blocking, answers each, and
 * pushes events to subscribers.  Submits that arrive together go to the
 * queue in one transaction before any of them is answered, which is what
 * makes durable submits fast.  A client's leases are tied to its connection:
 * when it closes (the client exited, or died), they are all given back at
 * once, and its waiting requests withdrawn.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "wire/record.h"
#include "wire/sock.h"

/* The submits of one loop round, from every client, stored together. */
typedef struct submit_batch {
    vram__request req[256];
    vramd_conn *conn[256];
    size_t n;
} submit_batch;

static void flush_submits(vramd *d, submit_batch *s);

/* ---- connections ---------------------------------------------------------------- */

vramd_conn *vramd_conn_find(vramd *d, uint64_t id)
{
    for (vramd_conn *c = d->conns; c; c = c->next)
        if (c->id == id && !c->closing)
            return c;
    return NULL;
}

/* Tells a client it cannot be served now, and closes it. */
static void refuse(int fd, const char *why)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"VRAM_EBUSY\",\"message\":\"%s\"}\n", why);
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
    close(fd);
}

/* Connections uid opened that are open now: its jobs' runners (vramd's,
 * though they run as uid) are not among them. */
static size_t conns_of(const vramd *d, uint32_t uid)
{
    size_t n = 0;
    for (const vramd_conn *c = d->conns; c; c = c->next)
        n += c->uid == uid && !c->runner;
    return n;
}

/* Accepts what waits.  At most VRAMD_MAX_CONNS clients, and of those at
 * most VRAMD_MAX_CONNS_PER_USER of one user other than the daemon's own, the
 * next ones told so; a peer whose credentials cannot be read is refused,
 * never taken for root.  At the process's fd limit a spare descriptor is
 * given up to accept and refuse one client, and the loop stops polling the
 * socket for a while rather than spin on a listen socket it cannot accept
 * from. */
void vramd_conn_accept(vramd *d)
{
    size_t n = 0;
    for (vramd_conn *c = d->conns; c; c = c->next)
        n++;
    for (;;) {
        int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
            if (d->spare_fd >= 0) {
                close(d->spare_fd);
                fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0)
                    refuse(fd, "vramd is out of file descriptors; try again later");
                d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            d->accept_after_ms = vram__now_ms() + VRAMD_ACCEPT_BACKOFF_MS;
            vram__log(VRAM__LOG_WARN, "out of file descriptors with %zu clients: not accepting for %d ms", n,
                      VRAMD_ACCEPT_BACKOFF_MS);
            return;
        }
        if (fd < 0)
            return;
        uint32_t pid, uid;
        if (vram__sock_peer(fd, &pid, &uid) != 0) {
            vram__clear_error();
            refuse(fd, "vramd cannot tell who is connecting (SO_PEERCRED failed)");
            continue;
        }
        /* The caps bound what clients open.  A runner is vramd's own child,
         * started for a job it admitted, or the runner of a job an earlier
         * vramd started and this one adopted (so their number has a bound
         * of its own), and is let in past them: refused, its job would
         * fail, or its end be told only through its end file. */
        bool full = n >= VRAMD_MAX_CONNS;
        bool user_full = !full && uid != geteuid() && conns_of(d, uid) >= VRAMD_MAX_CONNS_PER_USER;
        if ((full || user_full) && (vramd_is_my_child(pid) || vramd_jobs_runner_alive(d, pid)))
            full = user_full = false;
        if (full) {
            refuse(fd, "vramd has as many clients as it takes; try again later");
            continue;
        }
        if (user_full) {
            char why[128];
            snprintf(why, sizeof(why), "uid %u has %d connections to vramd open, as many as one user may; "
                     "close some", (unsigned)uid, VRAMD_MAX_CONNS_PER_USER);
            refuse(fd, why);
            continue;
        }
        n++;
        vramd_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        c->peer_pidfd = -1;
        c->id = ++d->next_conn_id;
        c->pid = pid;
        c->uid = uid;
        snprintf(c->holder, sizeof(c->holder), "client %llu (pid %u)", (unsigned long long)c->id, c->pid);
        vram__buf_init(&c->in);
        vram__buf_init(&c->out);
        c->next = d->conns;
        d->conns = c;
        /* A client sends its request as soon as it is connected: read now,
         * not a poll round later (nothing there yet: poll says when). */
        vramd_conn_readable(d, c);
    }
}

/* Holds a reply behind the sync it waits for (and behind those held before
 * it: a client's replies keep their order); false when it may go now. */
static bool hold(vramd *d, vramd_conn *c, const char *data, size_t len)
{
    uint64_t seq = vramd_reply_wait(d, c->runner);
    if (!seq && !c->held.len)
        return false;
    vram__buf_put(&c->held, data, len);
    if (seq > c->held_seq)
        c->held_seq = seq;
    return true;
}

void vramd_conns_release(vramd *d, uint64_t done)
{
    for (vramd_conn *c = d->conns; c; c = c->next)
        if (c->held.len && c->held_seq <= done) {
            if (!c->closing)
                vram__buf_put(&c->out, c->held.data, c->held.len);
            c->held.len = 0;
            c->held.data[0] = '\0';
            c->held_seq = 0;
            if (c->held.cap > (size_t)VRAMD_CONN_OUT_MAX) {
                vram__buf_free(&c->held);
                vram__buf_init(&c->held);
            }
            vramd_conn_writable(d, c);
        }
}

void vramd_conns_fail_held(vramd *d, int err, const char *message)
{
    vram__buf line;
    vram__buf_init(&line);
    vram__reply_error(&line, NULL, err, message);
    for (vramd_conn *c = d->conns; c; c = c->next)
        if (c->held.len) {
            vram__buf_free(&c->held);
            vram__buf_init(&c->held);
            c->held_seq = 0;
            if (!c->closing && !line.failed)
                vram__buf_put(&c->out, line.data, line.len);
            vramd_conn_writable(d, c);
        }
    vram__buf_free(&line);
}

void vramd_conn_reply(vramd *d, vramd_conn *c, const char *line)
{
    if (hold(d, c, line, strlen(line)))
        return;
    vram__buf_puts(&c->out, line);
    vramd_conn_writable(d, c);
}

/* Queues a whole reply for c: taken as it is when nothing else waits to
 * be sent (a list of 100,000 jobs is not copied again), else appended. */
static void reply_buf(vramd *d, vramd_conn *c, vram__buf *b)
{
    if (hold(d, c, b->data, b->len))
        return;
    if (!c->out.len) {
        vram__buf spare = c->out;
        c->out = *b;
        c->out_sent = 0;
        *b = spare;
        vramd_conn_writable(d, c);
        return;
    }
    vram__buf_put(&c->out, b->data, b->len);
    vramd_conn_writable(d, c);
}

/* Sends what the socket takes.  What was sent stays in front of out until
 * all of it is (no copy of the rest after every send: a long reply goes out
 * in linear time), or until it is most of a large buffer that keeps
 * growing, as a subscriber's may. */
void vramd_conn_writable(vramd *d, vramd_conn *c)
{
    (void)d;
    while (c->out_sent < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                c->closing = true, c->out.len = 0, c->out_sent = 0;
            break;
        }
        c->out_sent += (size_t)n;
    }
    if (c->out_sent == c->out.len) {
        c->out.len = c->out_sent = 0;
        if (c->out.data)
            c->out.data[0] = '\0';
    } else if (c->out_sent > ((size_t)1 << 20) && c->out_sent > c->out.len / 2) {
        memmove(c->out.data, c->out.data + c->out_sent, c->out.len - c->out_sent);
        c->out.len -= c->out_sent;
        c->out.data[c->out.len] = '\0';
        c->out_sent = 0;
    }
    /* A subscriber that stops reading is dropped before it costs memory;
     * a drained buffer that grew for one large reply goes back. */
    if (c->subscribed && c->out.len > 4 * (size_t)VRAMD_CONN_OUT_MAX)
        c->closing = true, c->out.len = 0;
    if (!c->out.len && c->out.cap > (size_t)VRAMD_CONN_OUT_MAX) {
        vram__buf_free(&c->out);
        vram__buf_init(&c->out);
    }
}

/* Bytes of replies waiting for every client to read them. */
static size_t out_total(const vramd *d)
{
    size_t n = 0;
    for (const vramd_conn *c = d->conns; c; c = c->next)
        n += c->out.len;
    return n;
}

bool vramd_conn_may_ask(const vramd *d, const vramd_conn *c, size_t total_out)
{
    (void)d;
    size_t mine = c->out.len + c->held.len;
    return mine <= VRAMD_CONN_OUT_MAX && (!mine || total_out <= VRAMD_OUT_TOTAL_MAX);
}

/* A subscriber hears another user's job as its summary only: who it is
 * comes from SO_PEERCRED, as for list and show. */
void vramd_broadcast(vramd *d, const char *line, const char *others_line, uint32_t owner)
{
    for (vramd_conn *c = d->conns; c; c = c->next)
        if (c->subscribed && !c->closing)
            vramd_conn_reply(d, c, !others_line || vramd_viewer_sees(c->uid, owner) ? line : others_line);
}

unsigned vramd_subscribers(const vramd *d, uint32_t owner)
{
    unsigned who = 0;
    for (const vramd_conn *c = d->conns; c && who != 3; c = c->next)
        if (c->subscribed && !c->closing)
            who |= vramd_viewer_sees(c->uid, owner) ? 1u : 2u;
    return who;
}

static void conn_free(vramd *d, vramd_conn *c)
{
    size_t released = 0;
    /* The ledger's walk of every request: only for a client that asked
     * for a lease, so that closing a submitter's connection does not cost
     * more with 100,000 jobs queued. */
    if (c->leased)
        vram_lease_release_holder(d->ledger, c->holder, &released);
    vramd_lease_names_drop_conn(d, c->id);
    /* Its lease requests still waiting for an answer are withdrawn. */
    for (vramd_pending **p = &d->pending; *p;) {
        if ((*p)->conn == c->id) {
            vramd_pending *gone = *p;
            *p = gone->next;
            vram_lease_cancel(d->ledger, gone->ticket);
            free(gone);
        } else {
            p = &(*p)->next;
        }
    }
    close(c->fd);
    if (c->peer_pidfd >= 0)
        close(c->peer_pidfd);
    vram__buf_free(&c->in);
    vram__buf_free(&c->out);
    vram__buf_free(&c->held);
    free(c);
}

void vramd_conns_sweep(vramd *d)
{
    for (vramd_conn **p = &d->conns; *p;) {
        vramd_conn *c = *p;
        if (c->closing && !c->out.len) {
            *p = c->next;
            conn_free(d, c);
        } else {
            p = &c->next;
        }
    }
}

void vramd_conns_flush(vramd *d)
{
    if (d->batch)
        flush_submits(d, d->batch);
}

void vramd_conns_free(vramd *d)
{
    if (d->batch) {
        for (size_t i = 0; i < d->batch->n; i++)
            vram__request_free(&d->batch->req[i]);
        free(d->batch);
        d->batch = NULL;
    }
    while (d->conns) {
        vramd_conn *c = d->conns;
        d->conns = c->next;
        conn_free(d, c);
    }
    for (vramd_pending *p = d->pending, *next; p; p = next) {
        next = p->next;
        vram_lease_cancel(d->ledger, p->ticket);
        free(p);
    }
    d->pending = NULL;
    vramd_lease_names_free(d);
}

/* ---- replies ------------------------------------------------------------------------ */

static void reply_error(vramd *d, vramd_conn *c, const char *id, int err, const char *message)
{
    vram__buf b;
    vram__buf_init(&b);
    vram__reply_error(&b, id, err, message);
    if (!b.failed)
        vramd_conn_reply(d, c, b.data);
    vram__buf_free(&b);
}

static void reply_failure(vramd *d, vramd_conn *c, const vram__request *r, int err)
{
    reply_error(d, c, r->id, err, vram_last_error());
}

static void reply_done(vramd *d, vramd_conn *c, vram__buf *b)
{
    if (!b->failed)
        reply_buf(d, c, b);
    vram__buf_free(b);
}

static void reply_ok(vramd *d, vramd_conn *c, const vram__request *r)
{
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__reply_begin(&b, r, &j);
    vram__reply_end(&j);
    reply_done(d, c, &b);
}

/* ---- operations ---------------------------------------------------------------------- */

static void op_hello(vramd *d, vramd_conn *c, const vram__request *r)
{
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__reply_begin(&b, r, &j);
    vram__json_field_string(&j, "version", vram_version());
    vram__json_field_uint(&j, "protocol", VRAM__PROTO_VERSION);
    vram__json_field_uint(&j, "pid", (uint64_t)getpid());
    vram__json_field_string(&j, "dashboard", d->http ? vram__http_url(d->http) : "");
    vram__reply_end(&j);
    reply_done(d, c, &b);
}

static void op_list(vramd *d, vramd_conn *c, const vram__request *r)
{
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__reply_begin(&b, r, &j);
    uint64_t counts[VRAM__JOB_STATE_COUNT];
    vramd_jobs_counts(d, counts);
    vram__json_key(&j, "counts");
    vram__json_object_begin(&j);
    for (int s = 0; s < VRAM__JOB_STATE_COUNT; s++)
        vram__json_field_uint(&j, vram__job_state_name(s), counts[s]);
    vram__json_object_end(&j);
    /* Ends since vramd started, never lowered when a kept job is
     * forgotten: `vram wait --all` judges the jobs that ended while it
     * waited by two lists' difference, whenever the trim runs. */
    vramd_jobs_ended(d, counts);
    vram__json_key(&j, "ended");
    vram__json_object_begin(&j);
    for (int s = 0; s < VRAM__JOB_STATE_COUNT; s++)
        if (vramd_state_final(s))
            vram__json_field_uint(&j, vram__job_state_name(s), counts[s]);
    vram__json_object_end(&j);
    vram__json_key(&j, "jobs");
    d->viewer_uid = c->uid;         /* others' commands are not shown to it (jobview.c) */
    char next[VRAM__LIST_CURSOR_MAX];
    vramd_jobs_list_json(d, r->state ? vram__job_state_parse(r->state) : -1, r->limit, r->after_phase,
                         r->after_id, &j, next, sizeof(next));
    vram__json_key(&j, "leases");
    vramd_leases_json(d, &j);       /* others' lease names are not shown to it either */
    d->viewer_uid = VRAMD_ANY_VIEWER;
    if (*next)
        vram__json_field_string(&j, "next", next);     /* a page: ask again with "after" */
    vram__reply_end(&j);
    reply_done(d, c, &b);
}

/* vram log: a chunk of a job's output (authz.c: its owner or root only). */
static void op_log(vramd *d, vramd_conn *c, const vram__request *r)
{
    vramd_job *job = vramd_job_find(d, r->job);
    vramd_job old = { .progress = -1 };     /* one no longer kept in memory: from the store */
    if (!job) {
        if (vram__queue_get(d->queue, r->job, &old.row)) {
            vram__clear_error();
            reply_error(d, c, r->id, VRAM_ENOENT, "no such job (see 'vram queue')");
            return;
        }
        job = &old;
    }
    int rc = 0;
    if (job == &old && c->uid != 0 && c->uid != old.row.owner_uid) {    /* as authz.c says of kept jobs */
        char owner[96], who[96];
        rc = vram__fail(VRAM_EPERM, "job %llu belongs to %s; %s may not read its output",
                        (unsigned long long)r->job, vramd_user_text(old.row.owner_uid, owner, sizeof(owner)),
                        vramd_user_text(c->uid, who, sizeof(who)));
    }
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__reply_begin(&b, r, &j);
    if (!rc)
        rc = vramd_job_log_json(d, job, r->offset, &j);
    if (job == &old) {
        free(old.log);
        free(old.command);
        vram__job_clear(&old.row);
    }
    if (rc) {
        vram__buf_free(&b);
        reply_failure(d, c, r, rc);
        return;
    }
    vram__reply_end(&j);
    reply_done(d, c, &b);
}

static void op_show(vramd *d, vramd_conn *c, const vram__request *r)
{
    vramd_job *job = vramd_job_find(d, r->job);
    if (!job) {
        reply_error(d, c, r->id, VRAM_ENOENT, "no such job (or it ended long ago: see 'vram history')");
        return;
    }
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__reply_begin(&b, r, &j);
    vram__json_key(&j, "job");
    d->viewer_uid = c->uid;
    vramd_job_json(d, job, &j);
    d->viewer_uid = VRAMD_ANY_VIEWER;
    vram__reply_end(&j);
    reply_done(d, c, &b);
}

static void op_status(vramd *d, vramd_conn *c, const vram__request *r)
{
    vram_snapshot *s;
    char *json = NULL;
    int rc = vram_snapshot_take(d->ctx, NULL, &s);
    if (!rc) {
        s->from_daemon = 1;         /* the daemon's ledger counted its leases */
        rc = vram_snapshot_to_json(s, &json);
        vram_snapshot_free(s);
    }
    if (rc) {
        reply_failure(d, c, r, rc);
        return;
    }
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__reply_begin(&b, r, &j);
    vram__json_key(&j, "status");
    vram__json_raw(&j, json);
    vram__reply_end(&j);
    free(json);
    reply_done(d, c, &b);
}

/* A client's lease: granted now or later, answered when it is.  The
 * callback may run inside vram_lease_acquire_async itself (granted at once),
 * so it is matched to its request by a key of the daemon's own, never by
 * the ledger's ticket, which is known only once the call returns.  The
 * request's holder names the lease in lists (leases.c), and only there: the
 * ledger's holder stays the connection's, which is what release and a
 * closed socket go by. */
static void op_lease(vramd *d, vramd_conn *c, const vram__request *r)
{
    size_t held = 0;
    if (c->leased)
        vram_lease_list(d->ledger, c->holder, NULL, 0, &held);
    vram__clear_error();
    if (held + c->waiting >= VRAMD_LEASES_PER_CONN) {
        char why[160];
        snprintf(why, sizeof(why), "this connection holds and waits for %d leases, as many as one connection "
                 "may; release some first", VRAMD_LEASES_PER_CONN);
        reply_error(d, c, r->id, VRAM_EBUSY, why);
        return;
    }
    vramd_pending *p = calloc(1, sizeof(*p));
    vramd_grant *g = vramd_grant_new(d, VRAMD_MSG_CLIENT_GRANT, ++d->next_grant_key);
    if (!p || !g) {
        free(p);
        free(g);
        reply_error(d, c, r->id, VRAM_ENOMEM, "out of host memory");
        return;
    }
    vram_lease_request q = {
        .bytes = r->bytes,
        .device = r->device,
        .wait_ms = r->wait_ms == UINT64_MAX ? VRAM_WAIT_FOREVER : (int64_t)r->wait_ms,
        .holder = c->holder,
        .pid = c->pid,
        .wait_reason = &p->reason,
    };
    p->key = g->key;
    p->conn = c->id;
    p->bytes = r->bytes;
    p->device = r->device;
    p->pid = c->pid;
    p->since_ms = vram__now_ms();
    vram__strlcpy(p->request_id, r->id, sizeof(p->request_id));
    /* Listed before the call: the grant's message is handled only after
     * this round, but the entry must be there whatever happens. */
    p->next = d->pending;
    d->pending = p;
    c->leased = true;
    int rc = vram_lease_acquire_async(d->ledger, &q, vramd_on_grant, g, &p->ticket);
    if (rc) {
        d->pending = p->next;
        free(p);
        free(g);
        reply_failure(d, c, r, rc);
        return;
    }
    c->waiting++;
    vramd_lease_name_add(d, p->ticket, c->id, c->uid, r->holder);
}

/* The start of a reply to a request answered later (a held claim, a
 * parked runner): only its id was kept. */
static void reply_begin_later(vram__buf *b, vram__json *j, const char *request_id)
{
    vram__request req = { 0 };
    vram__strlcpy(req.id, request_id ? request_id : "", sizeof(req.id));
    vram__buf_init(b);
    vram__reply_begin(b, &req, j);
}

bool vramd_reply_lease(vramd *d, uint64_t conn, const char *request_id, int status, const char *message,
                       const vram_lease_info *lease, const vram__job *record)
{
    vramd_conn *c = vramd_conn_find(d, conn);
    if (!c)
        return false;
    if (status) {
        reply_error(d, c, request_id, status, message ? message : vram_strerror(status));
        return true;
    }
    vram__buf b;
    vram__json j;
    reply_begin_later(&b, &j, request_id);
    vram__json_field_uint(&j, "lease", lease->id);
    vram__json_field_uint(&j, "device", lease->device);
    vram__json_field_uint(&j, "bytes", lease->bytes);
    if (record) {
        vram__json_key(&j, "job");
        vram__record_write(&j, record);
        /* Where the runner leaves the job's end should no vramd hear it
         * (it may not write the store: wire/link.c). */
        char end[4300];
        const vramd_job *job = vramd_job_find(d, record->id);
        if (job && !vramd_job_end_path(d, job, end, sizeof(end)))
            vram__json_field_string(&j, "end_file", vramd_end_by_fd(d, job, end) ? "/dev/fd/4" : end);
        vram__clear_error();
    }
    vram__reply_end(&j);
    bool sent = !b.failed;
    reply_done(d, c, &b);
    return sent;
}

void vramd_client_granted(vramd *d, const vramd_msg *m)
{
    vramd_pending **pp = &d->pending;
    while (*pp && (*pp)->key != m->key)
        pp = &(*pp)->next;
    vramd_pending *p = *pp;
    if (!p) {                       /* its client is gone */
        if (!m->status)
            vram_lease_release(d->ledger, m->lease.id);
        return;
    }
    *pp = p->next;
    vramd_conn *c = vramd_conn_find(d, p->conn);
    if (c && c->waiting)
        c->waiting--;
    const char *why = m->status == VRAM_ETIMEDOUT ? "not admitted within the wait asked for" : NULL;
    bool sent = vramd_reply_lease(d, p->conn, p->request_id, m->status, why, &m->lease, NULL);
    if (!sent && !m->status)
        vram_lease_release(d->ledger, m->lease.id);
    if (!sent || m->status)
        vramd_lease_name_drop(d, p->ticket);
    free(p);
}

/* Only the connection holding a lease may release or name its owner. */
static int own_lease(vramd *d, vramd_conn *c, uint64_t lease)
{
    vram_lease_info first[64], *info = first;
    size_t n = 0, cap = 64;
    int rc = vram_lease_list(d->ledger, c->holder, info, cap, &n);
    if (rc == VRAM_ERANGE) {        /* every one of them: the one asked for may be past the 64th */
        cap = n + 16;
        if (!(info = malloc(cap * sizeof(*info))))
            return vram__fail(VRAM_ENOMEM, "out of host memory");
        rc = vram_lease_list(d->ledger, c->holder, info, cap, &n);
    }
    bool found = false;
    for (size_t i = 0; (!rc || rc == VRAM_ERANGE) && i < n && i < cap && !found; i++)
        found = info[i].id == lease;
    if (info != first)
        free(info);
    return found ? 0 : vram__fail(VRAM_ENOENT, "no lease %llu on this connection", (unsigned long long)lease);
}

static void op_release(vramd *d, vramd_conn *c, const vram__request *r)
{
    int rc = own_lease(d, c, r->lease);
    if (!rc)
        rc = vram_lease_release(d->ledger, r->lease);
    if (!rc)
        vramd_lease_name_drop(d, r->lease);
    if (rc)
        reply_failure(d, c, r, rc);
    else
        reply_ok(d, c, r);
}

static void op_owner(vramd *d, vramd_conn *c, const vram__request *r)
{
    int rc;
    if (r->job)
        rc = vramd_job_owner(d, r->job, (uint32_t)r->pgid);
    else if (!(rc = own_lease(d, c, r->lease)))
        rc = vram_lease_set_owner(d->ledger, r->lease, c->pid, (uint32_t)r->pgid);
    if (rc)
        reply_failure(d, c, r, rc);
    else
        reply_ok(d, c, r);
}

static void op_claim(vramd *d, vramd_conn *c, const vram__request *r)
{
    if (vramd_job_claim_ahead(d, c, r))
        return;                     /* answered at the job's turn (jobs.c) */
    vram_lease_info lease;
    int rc = vramd_job_claim(d, r->job, c->pid, &lease);   /* the peer's pid, not the request's */
    vramd_job *job = rc ? NULL : vramd_job_find(d, r->job);
    if (rc)
        reply_failure(d, c, r, rc);
    else
        vramd_reply_lease(d, c->id, r->id, 0, NULL, &lease, job ? &job->row : NULL);
}

/* A job's end, taken.  A runner that asked for it gets its user's next
 * job (runner reuse, jobs.c): the job's number and where the runner puts
 * itself for it (folder, log, --output, end file), which are the job's
 * user's own; its command it gets with its claim, as any runner.  With
 * none queued it may wait for one, parked (jobs.c). */
bool vramd_reply_next(vramd *d, uint64_t conn, const char *request_id, vramd_job *next)
{
    vramd_conn *c = vramd_conn_find(d, conn);
    char log[4300], end[4300];
    if (next && (!c || vramd_job_log_path(d, next, log, sizeof(log)) ||
                 vramd_job_end_path(d, next, end, sizeof(end)))) {
        vram__clear_error();
        vramd_job_runner_gone(d, next);
        next = NULL;
    }
    if (!c)
        return false;
    vram__buf b;
    vram__json j;
    reply_begin_later(&b, &j, request_id);
    if (next) {
        vram__json_key(&j, "next");
        vram__json_object_begin(&j);
        vram__json_field_uint(&j, "job", next->row.id);
        vram__json_field_string(&j, "cwd", next->row.cwd);
        vram__json_field_string(&j, "log", log);
        vram__json_field_string(&j, "output", next->row.output ? next->row.output : "");
        vram__json_field_string(&j, "end_file", end);
        vram__json_object_end(&j);
    }
    vram__reply_end(&j);
    bool sent = !b.failed;
    if (!sent && next)
        vramd_job_runner_gone(d, next);
    reply_done(d, c, &b);
    return sent;
}

/* next: the job vramd_job_runner_next gave the ended runner before the
 * grants its end made were handled (one of them may be next's start, on
 * this runner); NULL when it gave none or is no longer this runner's. */
static void reply_ended(vramd *d, vramd_conn *c, const vram__request *r, vramd_job *next)
{
    if (next && (vramd_state_final(next->row.state) ||
                 (next->prepared != (pid_t)c->pid && next->row.runner_pid != c->pid)))
        next = NULL;                /* ended meanwhile (its runner-ahead mark went with it) */
    if (r->next && !next && vramd_runner_park(d, c, r))
        return;                     /* answered when a job comes, or at the park's end */
    vramd_reply_next(d, c->id, r->id, next);
}

/* ---- dispatch ------------------------------------------------------------------------ */

/* Turns a submit request into a queue row (borrowing its strings). */
static int submit_row(vramd_conn *c, const vram__request *r, vram__job *row, vram__buf *scratch)
{
    memset(row, 0, sizeof(*row));
    size_t at[4];
    vram__json j;
    vram__json_init(&j, scratch);
    at[0] = scratch->len;
    vram__json_array_begin(&j);
    for (size_t i = 0; i < r->argc; i++)
        vram__json_string(&j, r->argv[i]);
    vram__json_array_end(&j);
    vram__buf_put(scratch, "", 1);
    at[1] = scratch->len;
    vram__json_init(&j, scratch);
    vram__json_object_begin(&j);
    for (size_t i = 0; r->env && i < r->env->n; i++)
        if (!r->enforce || strcmp(r->env->keys[i], "VRAM_ENFORCE"))
            vram__json_field_string(&j, r->env->keys[i], r->env->items[i]->str);
    /* The job's runner (vram run) reads its enforcement from there. */
    if (r->enforce)
        vram__json_field_string(&j, "VRAM_ENFORCE", r->enforce);
    vram__json_object_end(&j);
    vram__buf_put(scratch, "", 1);
    at[2] = scratch->len;
    vram__json_init(&j, scratch);
    vram__json_object_begin(&j);
    for (size_t i = 0; r->settings && i < r->settings->n; i++)
        vram__json_field_string(&j, r->settings->keys[i], r->settings->items[i]->str);
    vram__json_object_end(&j);
    vram__buf_put(scratch, "", 1);
    at[3] = scratch->len;           /* the jobs it waits for: "12,ok:13" (jobs.c) */
    for (size_t i = 0; i < r->ndeps; i++)
        vram__buf_printf(scratch, "%s%s%llu", i ? "," : "", r->dep_ok[i] ? "ok:" : "",
                         (unsigned long long)r->deps[i]);
    vram__buf_put(scratch, "", 1);
    if (scratch->failed)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    /* Offsets, made pointers by the caller once the scratch stops growing. */
    row->argv_json = (char *)(uintptr_t)at[0];
    row->env_json = (char *)(uintptr_t)at[1];
    row->settings_json = (char *)(uintptr_t)at[2];
    row->deps = (char *)(uintptr_t)at[3];
    row->output = (char *)(r->output ? r->output : "");
    row->cwd = (char *)(r->cwd ? r->cwd : "/");
    row->name = (char *)(r->name ? r->name : "");
    row->model = (char *)(r->model ? r->model : "");
    row->ladder = (char *)(r->ladder ? r->ladder : "");
    row->priority = (int)r->priority;
    row->time_ms = r->time_ms;
    row->vram_bytes = r->bytes;
    row->device_pref = r->device;
    row->owner_uid = c->uid;
    row->idem_key = r->key;
    row->time_limit_ms = r->time_limit_ms;
    return 0;
}

/* Makes a row's offsets into the scratch pointers, once it stops growing. */
static void row_strings(vram__job *row, const vram__buf *scratch)
{
    row->argv_json = scratch->data + (uintptr_t)row->argv_json;
    row->env_json = scratch->data + (uintptr_t)row->env_json;
    row->settings_json = scratch->data + (uintptr_t)row->settings_json;
    row->deps = scratch->data + (uintptr_t)row->deps;
}

/* A submit with "check": would it be queued?  Nothing is. */
static void op_check(vramd *d, vramd_conn *c, const vram__request *r)
{
    vram__job row;
    vram__buf scratch;
    vram__buf_init(&scratch);
    char err[512] = "";
    int rc = submit_row(c, r, &row, &scratch);
    if (rc) {
        vram__strlcpy(err, vram_last_error(), sizeof(err));
    } else {
        row_strings(&row, &scratch);
        rc = vramd_jobs_check(d, &row, err, sizeof(err));
    }
    if (rc)
        reply_error(d, c, r->id, rc, err);
    else
        reply_ok(d, c, r);
    vram__buf_free(&scratch);
}

static void reply_submitted(vramd *d, vramd_conn *c, const vram__request *r, uint64_t job)
{
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__reply_begin(&b, r, &j);
    vram__json_field_uint(&j, "job", job);
    vram__reply_end(&j);
    reply_done(d, c, &b);
}

/* Queues the batch in one transaction; when the queue refuses it, one job at
 * a time, so that a job that cannot be taken refuses only itself.  Rows that
 * cannot be built (no host memory) queue nothing, and every client hears. */
static void flush_submits(vramd *d, submit_batch *s)
{
    if (!s->n)
        return;
    vram__job rows[256];
    vram__buf scratch;
    vram__buf_init(&scratch);
    int rc = 0;
    for (size_t i = 0; i < s->n && !rc; i++)
        rc = submit_row(s->conn[i], &s->req[i], &rows[i], &scratch);
    if (rc) {
        for (size_t i = 0; i < s->n; i++)
            reply_error(d, s->conn[i], s->req[i].id, rc, vram_last_error());
    } else {
        for (size_t i = 0; i < s->n; i++)
            row_strings(&rows[i], &scratch);
        char err[512] = "";
        bool together = s->n > 1 && vramd_jobs_submit(d, rows, s->n, err, sizeof(err)) == 0;
        for (size_t i = 0; i < s->n; i++) {
            int one = together ? 0 : vramd_jobs_submit(d, &rows[i], 1, err, sizeof(err));
            if (one)
                reply_error(d, s->conn[i], s->req[i].id, one, err);
            else
                reply_submitted(d, s->conn[i], &s->req[i], rows[i].id);
        }
        d->round_submitted = true;
    }
    for (size_t i = 0; i < s->n; i++)
        vram__request_free(&s->req[i]);
    vram__buf_free(&scratch);
    s->n = 0;
}

static bool batch_has(const submit_batch *s, const vramd_conn *c)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->conn[i] == c)
            return true;
    return false;
}

static void dispatch(vramd *d, vramd_conn *c, vram__request *r, submit_batch *batch)
{
    vramd_job *next;
    /* A connection hears its replies in the order it asked: a request
     * answered now sends the submits it made before first. */
    bool batched = r->op == VRAM__OP_SUBMIT && !r->check;
    if (!batched && batch_has(batch, c))
        flush_submits(d, batch);
    int rc = vramd_authorize(d, c, r);
    if (rc) {                       /* authz.c: who asks is the kernel's word, not the request's */
        if (batch_has(batch, c))
            flush_submits(d, batch);
        reply_failure(d, c, r, rc);
        vram__request_free(r);
        return;
    }
    switch (r->op) {
    case VRAM__OP_SUBMIT:
        if (r->check) {
            op_check(d, c, r);
            break;
        }
        if (r->key) {
            /* Idempotent: the job this user already submitted with this key
             * is the answer.  A keyed submit goes alone (the ones before it
             * first), so two with one key in a round cannot both be queued. */
            flush_submits(d, batch);
            uint64_t had = 0;
            if ((rc = vram__queue_find_key(d->queue, c->uid, r->key, &had)))
                reply_failure(d, c, r, rc);
            else if (had)
                reply_submitted(d, c, r, had);
            if (rc || had)
                break;
            batch->req[batch->n] = *r;
            batch->conn[batch->n++] = c;
            r->doc = NULL;
            flush_submits(d, batch);
            return;
        }
        batch->req[batch->n] = *r;
        batch->conn[batch->n++] = c;
        r->doc = NULL;              /* the batch owns it now */
        if (batch->n == 256)
            flush_submits(d, batch);
        return;
    case VRAM__OP_HELLO: op_hello(d, c, r); break;
    case VRAM__OP_LIST: op_list(d, c, r); break;
    case VRAM__OP_SHOW: op_show(d, c, r); break;
    case VRAM__OP_LOG: op_log(d, c, r); break;
    case VRAM__OP_STATUS: op_status(d, c, r); break;
    case VRAM__OP_LEASE: op_lease(d, c, r); break;
    case VRAM__OP_RELEASE: op_release(d, c, r); break;
    case VRAM__OP_OWNER: op_owner(d, c, r); break;
    case VRAM__OP_SUBSCRIBE:
        c->subscribed = true;
        reply_ok(d, c, r);
        break;
    case VRAM__OP_CANCEL: {
        char who[64];
        if ((rc = vramd_job_cancel(d, r->job, vramd_user_text(c->uid, who, sizeof(who)))))
            reply_failure(d, c, r, rc);
        else
            reply_ok(d, c, r);
        break;
    }
    case VRAM__OP_JOB_CLAIM: op_claim(d, c, r); break;
    case VRAM__OP_JOB_RUNG:
        if ((rc = vramd_job_rung(d, c, r)))
            reply_failure(d, c, r, rc);
        break;                      /* answered when the new lease is granted */
    case VRAM__OP_JOB_PROGRESS:
        if ((rc = vramd_job_progress(d, r->job, r->progress, r->have_usage, r->used, r->over)))
            reply_failure(d, c, r, rc);
        else
            reply_ok(d, c, r);
        break;
    case VRAM__OP_JOB_ENDED:
        if ((rc = vramd_job_ended(d, r->job, r->exit_status, r->outcome, r->peak))) {
            reply_failure(d, c, r, rc);
            break;
        }
        /* The room it left lets the next job in: that job's runner, waiting
         * in its claim, is answered before this one, whose next job (if
         * any) waits for a turn of its own - the start, not this reply, is
         * what a user waits for.  Unless a commit of this round holds the
         * replies to runners too (a submit's, sent alone): its grants then
         * go once its fsync is asked, as every round's do (loop_once).
         * The ended runner's next job is chosen before them: a job the end
         * lets in that has no runner started ahead is then this runner's
         * (reuse), not a new one's (test_reuse_backfill.sh). */
        next = r->next ? vramd_job_runner_next(d, r->job, c->pid) : NULL;
        if (!vramd_reply_wait(d, true))
            vramd_handle_inbox(d);
        reply_ended(d, c, r, next);
        break;
    }
    vram__request_free(r);
}

void vramd_conn_readable(vramd *d, vramd_conn *c)
{
    if (c->closing)
        return;
    char chunk[65536];
    ssize_t n = -1;
    errno = EAGAIN;
    while (vramd_conn_may_ask(d, c, 0) && (n = recv(c->fd, chunk, sizeof(chunk), 0)) > 0) {
        vram__buf_put(&c->in, chunk, (size_t)n);
        /* Less than asked for: the socket is drained for now, and poll
         * says when more comes (or the end).  A read more would only say
         * EAGAIN, once a request. */
        if ((size_t)n < sizeof(chunk) || c->in.len > 4 * VRAM__PROTO_MAX_LINE)
            break;                  /* (or one round's worth; the rest waits) */
    }
    bool eof = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    if (!d->batch && !(d->batch = calloc(1, sizeof(*d->batch)))) {
        c->closing = true;
        return;
    }
    size_t start = 0, total_out = out_total(d);
    for (;;) {
        /* A client that does not read its replies is not answered more
         * (its requests wait, unread, in its socket): at most
         * VRAMD_CONN_OUT_MAX, and VRAMD_OUT_TOTAL_MAX over all clients. */
        if (!vramd_conn_may_ask(d, c, total_out))
            break;
        char *nl = c->in.len > start ? memchr(c->in.data + start, '\n', c->in.len - start) : NULL;
        if (!nl)
            break;
        size_t before = c->out.len;
        size_t len = (size_t)(nl - (c->in.data + start));
        vram__request r;
        char err[512];
        int rc = vram__request_parse(c->in.data + start, len, &r, err, sizeof(err));
        start += len + 1;
        if (rc)
            reply_error(d, c, r.id, rc, err);
        else
            dispatch(d, c, &r, d->batch);
        total_out = total_out + c->out.len - (before < c->out.len ? before : c->out.len);
    }
    if (start) {
        memmove(c->in.data, c->in.data + start, c->in.len - start);
        c->in.len -= start;
        if (c->in.data)
            c->in.data[c->in.len] = '\0';
    }
    /* Over a line's worth with no line's end: a line too long.  Whole lines
     * waiting behind replies the client has not read are not that: they
     * are read once it reads (and no more comes in meanwhile). */
    if (c->in.len > VRAM__PROTO_MAX_LINE && !memchr(c->in.data, '\n', c->in.len)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "a request line over %d bytes; closing the connection",
                 VRAM__PROTO_MAX_LINE);
        reply_error(d, c, NULL, VRAM_EINVAL, msg);
        c->closing = true;
        c->in.len = 0;
    }
    if (eof)
        c->closing = true, c->out.len = 0, c->out_sent = 0;
}
