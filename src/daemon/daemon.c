/* SPDX-License-Identifier: MIT */
/*
 * daemon/daemon.c - vramd's life: opening everything, the main loop,
 * stopping.
 *
 * One thread runs the loop: it polls the socket, the clients, a wake pipe
 * and the stop fd, handles what the ledger's callbacks posted, reaps the
 * runners it started and looks after jobs (claims overdue, orphans gone).
 * Stopping leaves running jobs running: their runners are in sessions of
 * their own and record their end in the queue themselves when no daemon
 * answers; the next daemon adopts them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/ctx.h"
#include "daemon/daemon.h"
#include "wire/sock.h"

#define LOOP_MS 200

static void syncer_start(vramd *d);
static void syncer_stop(vramd *d);


void vramd_wake(vramd *d)
{
    char b = 1;
    ssize_t w = write(d->wake[1], &b, 1);   /* a full pipe already wakes */
    (void)w;
}

/* A grant the loop made itself (a lease that fit at once, or one freed in
 * this round) is read in this round (loop_once), or else before the loop
 * sleeps again: a byte through the wake pipe would cost it a round. */
void vramd_post(vramd *d, vramd_msg *m)
{
    pthread_mutex_lock(&d->inbox_lock);
    m->next = d->inbox;
    d->inbox = m;
    pthread_mutex_unlock(&d->inbox_lock);
    if (!pthread_equal(pthread_self(), d->loop_thread))
        vramd_wake(d);
}

vramd_grant *vramd_grant_new(vramd *d, int kind, uint64_t key)
{
    vramd_grant *g = malloc(sizeof(*g));
    if (g)
        *g = (vramd_grant){ d, kind, key };
    return g;
}

/* A message that cannot be allocated loses the grant: the lease goes back
 * rather than being held by nobody. */
void vramd_on_grant(void *user, int status, const vram_lease_info *lease)
{
    vramd_grant *g = user;
    vramd_msg *m = calloc(1, sizeof(*m));
    if (m) {
        m->kind = g->kind;
        m->key = g->key;
        m->status = status;
        if (lease)
            m->lease = *lease;
        vramd_post(g->d, m);
    } else if (!status && lease) {
        vram_lease_release(g->d->ledger, lease->id);
    }
    free(g);
}

void vramd_changed(vramd *d)
{
    d->version++;
}

void vramd_event_add(vramd *d, const char *kind, uint64_t job, int device, const char *fmt, ...)
{
    vramd_event *e = &d->events[d->next_event];
    memset(e, 0, sizeof(*e));
    e->unix_ms = vram__unix_ms();
    vram__strlcpy(e->kind, kind, sizeof(e->kind));
    e->job = job;
    e->device = device;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof(e->text), fmt, ap);
    va_end(ap);
    d->next_event = (d->next_event + 1) % VRAMD_MAX_EVENTS;
    if (d->nevents < VRAMD_MAX_EVENTS)
        d->nevents++;
    vramd_changed(d);
}

/* ---- opening ---------------------------------------------------------------- */

static int default_db(char *buf, size_t cap)
{
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (state && *state)
        snprintf(buf, cap, "%s/vram/queue.db", state);
    else if (home && *home)
        snprintf(buf, cap, "%s/.local/state/vram/queue.db", home);
    else
        return vram__fail(VRAM_EINVAL, "no HOME or XDG_STATE_HOME: give the queue's path (--db)");
    return 0;
}

static int resolve_paths(vramd *d, const vram_options *o)
{
    const char *sock = vram_options_get(o, "socket"), *db = vram_options_get(o, "db");
    int rc = sock && *sock ? (vram__strlcpy(d->socket_path, sock, sizeof(d->socket_path)), 0)
                           : vram__sock_default_path(d->socket_path, sizeof(d->socket_path));
    if (!rc)
        rc = db && *db ? (vram__strlcpy(d->db_path, db, sizeof(d->db_path)), 0)
                       : default_db(d->db_path, sizeof(d->db_path));
    if (!rc)
        rc = vram__make_parent_dirs(d->db_path);
    vram__strlcpy(d->history_path, vram_options_get(o, "history") ? vram_options_get(o, "history") : "",
                  sizeof(d->history_path));
    if (!rc && d->cfg.runner && *d->cfg.runner) {
        vram__strlcpy(d->runner_path, d->cfg.runner, sizeof(d->runner_path));
    } else if (!rc) {
        ssize_t n = readlink("/proc/self/exe", d->runner_path, sizeof(d->runner_path) - 1);
        if (n <= 0)
            rc = vram__fail(VRAM_EIO, "cannot find this program's path to run jobs with");
        else
            d->runner_path[n] = '\0';
    }
    return rc;
}

/* ---- one daemon per queue, and a queue only its user reads ------------------- */

/* An exclusive flock on DB.lock, held until the daemon's process ends: a
 * second daemon on the same queue (whatever its socket) is refused with the
 * first one's pid.  The lock goes with the process, so a kill -9 frees it. */
static int lock_queue(vramd *d)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s.lock", d->db_path);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return vram__fail(errno == EACCES ? VRAM_EPERM : VRAM_EIO, "cannot open the queue's lock %s: %s",
                          path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (err == EWOULDBLOCK)
            return vram__fail(VRAM_EBUSY, "another vramd (pid %s) already runs on the queue %s (it holds %s)",
                              *pid ? pid : "?", d->db_path, path);
        return vram__fail(VRAM_EIO, "cannot lock %s: %s", path, strerror(err));
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (fchmod(fd, 0600) != 0 || ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        int err = errno;
        close(fd);
        return vram__fail(VRAM_EIO, "cannot write %s: %s", path, strerror(err));
    }
    d->lock_fd = fd;
    return 0;
}

/* The queue holds each submitter's environment: its folder must be the
 * daemon user's (or root's) and writable by no one else, and the db, its WAL
 * and shared-memory files 0600 (SQLite gives the WAL the db's mode), whatever
 * --db says.  A folder others may write could hold a file planted to catch
 * what the daemon writes. */
static int private_queue(vramd *d)
{
    char dir[4096];
    vram__strlcpy(dir, d->db_path, sizeof(dir));
    char *slash = strrchr(dir, '/');
    if (!slash)
        vram__strlcpy(dir, ".", sizeof(dir));
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    struct stat st;
    if (stat(dir, &st) != 0)
        return vram__fail(VRAM_EIO, "cannot look at the queue's folder %s: %s", dir, strerror(errno));
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return vram__fail(VRAM_EPERM, "the queue's folder %s belongs to user %u, not to this user (%u): "
                          "put the queue (--db) in a folder of your own", dir, (unsigned)st.st_uid,
                          (unsigned)geteuid());
    if (st.st_mode & 022)
        return vram__fail(VRAM_EPERM, "others may write in the queue's folder %s (mode %03o): the queue holds "
                          "the jobs' environments; put it (--db) in a folder only you can write (chmod 700)",
                          dir, (unsigned)(st.st_mode & 0777));
    static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s%s", d->db_path, suffix[i]);
        int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | (i == 0 ? O_CREAT : 0), 0600);
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0)
            return vram__fail(errno == EACCES || errno == EROFS ? VRAM_EPERM : VRAM_EIO,
                              "cannot open the queue %s: %s", path, strerror(errno));
        bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid();
        if (ok && (st.st_mode & 077))
            ok = fchmod(fd, 0600) == 0;
        close(fd);
        if (!ok)
            return vram__fail(VRAM_EPERM, "%s is not a regular file of this user's with mode 0600, and cannot be "
                              "made one", path);
    }
    char logs[4200];                /* the jobs' logs: 0600 files in a 0700 folder */
    snprintf(logs, sizeof(logs), "%s.logs", d->db_path);
    if (lstat(logs, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 077) &&
        chmod(logs, 0700) != 0)
        return vram__fail(VRAM_EPERM, "cannot make %s private: %s", logs, strerror(errno));
    return 0;
}

/* The dashboard where --http says.  The default port taken by another
 * program (any local user can take a port first) does not keep vramd from
 * starting: it serves on a free one beside it, saying so.  A port given is
 * one the user asked for, and its being taken is the error. */
static int start_dashboard(vramd *d, const vram_options *o, const vram__http_provider *p)
{
    const char *where = vram_options_get(o, "http");
    int rc = vram__http_start(where, d->token, p, &d->http);
    if (rc != VRAM_EBUSY || o->from[VRAM__OPT_HTTP] != VRAM__FROM_DEFAULT)
        return rc;
    char instead[300];
    const char *colon = strrchr(where, ':');
    snprintf(instead, sizeof(instead), "%.*s:0", colon ? (int)(colon - where) : 0, where);
    if ((rc = vram__http_start(instead, d->token, p, &d->http)))
        return rc;
    vram__log(VRAM__LOG_WARN, "vramd: the dashboard's port, %s, is in use by another program; it is on a "
              "free one instead: %s (--http ADDR:PORT chooses one)", where, vram__http_url(d->http));
    return 0;
}

/* The socket first: a second daemon is refused before it touches anything. */
static int open_all(vramd *d)
{
    const vram_options *o = d->cfg.opts;
    int rc = resolve_paths(d, o);
    if (!rc)
        rc = vramd_systemd_listen_fd(&d->listen_fd);
    if (!rc && d->listen_fd >= 0)
        d->socket_activated = true;     /* systemd owns the path: never unlinked */
    else if (!rc)
        rc = vram__sock_listen(d->socket_path, vram_options_get(o, "socket-group"), &d->listen_fd);
    if (!rc)
        rc = lock_queue(d);
    if (!rc)
        rc = private_queue(d);
    if (rc)
        return rc;
    if ((rc = vram_ctx_open(&d->ctx, o)) || (rc = vram_ledger_open(d->ctx, NULL, &d->ledger)) ||
        (rc = vram__queue_open(d->db_path, &d->queue)) || (rc = vram__queue_check(d->queue)))
        return rc;
    vramd_spawner_start(d);
    syncer_start(d);                /* the check wrote to the log: it is there to be opened */
    char token_path[4096];
    if ((rc = vram__token_path(vram_options_get(o, "token-file"), token_path, sizeof(token_path))) ||
        (rc = vram__token_new(d->token)))
        return rc;
    vram__http_provider p;
    vramd_provider(d, &p);
    /* The file once the port is ours: a daemon that cannot listen (another
     * has the port) leaves that one's token where its readers look. */
    if ((rc = start_dashboard(d, o, &p)) || (rc = vram__token_write(token_path, d->token)))
        return rc;
    pthread_mutex_lock(&d->lock);
    rc = vramd_jobs_recover(d);
    pthread_mutex_unlock(&d->lock);
    if (rc)
        return rc;
    vramd_say(d, "vramd %s: socket %s, queue %s", vram_version(), d->socket_path, d->db_path);
    vramd_say(d, "dashboard %s (changes need the token in %s)", vram__http_url(d->http), token_path);
    if (vram_ctx_is_simulated(d->ctx))
        vramd_say(d, "SIMULATED DEVICES, %s", vram_ctx_notice(d->ctx));
    vramd_systemd_notify("READY=1\nSTATUS=queue open, socket listening");
    return 0;
}

static void close_all(vramd *d)
{
    vram__http_stop(d->http);       /* no HTTP thread after this */
    d->http = NULL;
    vramd_conns_free(d);
    vramd_jobs_free(d);             /* cancels lease requests, gives leases back */
    vramd_spawner_stop(d);
    vramd_handle_inbox(d);          /* the cancels' messages */
    syncer_stop(d);                 /* what was committed is on disk */
    if (d->ledger && vram_ledger_close(d->ledger))
        vram__log(VRAM__LOG_WARN, "ledger left open: %s", vram_last_error());
    vram__queue_close(d->queue);
    if (d->ctx)
        vram_ctx_close(d->ctx);
    if (d->listen_fd > 0) {
        close(d->listen_fd);
        if (!d->socket_activated)
            unlink(d->socket_path);
    }
    for (vramd_msg *m = d->inbox, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    close(d->wake[0]);
    close(d->wake[1]);
    if (d->spare_fd >= 0)
        close(d->spare_fd);
    if (d->lock_fd >= 0)
        close(d->lock_fd);          /* the lock goes last: nothing of this daemon's is left */
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->inbox_lock);
}

/* Jobs' ends written since the last look are noted: they are to be synced
 * within VRAMD_END_SYNC_MS of the first. */
static void note_ends(vramd *d)
{
    if (vram__queue_take_lazy(d->queue) && !d->ends_unsynced_ms) {
        uint64_t now = vram__now_ms();
        d->ends_unsynced_ms = now ? now : 1;
    }
}

/* ---- the syncer ---------------------------------------------------------------- */

/* What an fsync takes is measured, and one quicker than this is made by the
 * loop at the end of its round: handing it to the syncer thread and back
 * costs two wake-ups, which on a quick disk is more than the fsync, and
 * what waits on the loop meanwhile waits less than this.  A slower disk's
 * fsync is the thread's, and the loop goes on with other clients. */
#define INLINE_SYNC_MAX_US 1000

/* One fdatasync of the queue's log; 0 when done.  A failed one is not
 * tried again (after a failed writeback the kernel may report the next
 * fsync done with the pages never written): it is kept in d->sync_errno,
 * no round is synced after it, and the loop stops vramd (sync_failed). */
static int fsync_log(vramd *d)
{
    int r;
    while ((r = fdatasync(vram__queue_log_fd(d->queue))) != 0 && errno == EINTR)
        ;
    if (r != 0) {
        int e = errno;
        pthread_mutex_lock(&d->sync_lock);
        if (!d->sync_errno)
            d->sync_errno = e ? e : EIO;
        pthread_mutex_unlock(&d->sync_lock);
        ssize_t w = write(d->wake[1], "s", 1);     /* the loop stops vramd */
        (void)w;
    }
    return r;
}

/* One fsync of the queue's log; folds its time into d->sync_us and marks
 * everything asked up to target as synced, if it was.  Called with
 * sync_lock not held and sync_busy set by the caller: one fsync at a time,
 * by either thread. */
static void sync_now(vramd *d, uint64_t target)
{
    uint64_t t0 = vram__now_ns();
    int r = fsync_log(d);
    uint64_t us = (vram__now_ns() - t0) / 1000;
    pthread_mutex_lock(&d->sync_lock);
    d->sync_us = d->sync_us ? (d->sync_us * 7 + us) / 8 : us;
    if (r == 0 && !d->sync_errno && d->sync_done < target)
        d->sync_done = target;
    d->sync_busy = false;
    pthread_cond_broadcast(&d->sync_idle);
    pthread_mutex_unlock(&d->sync_lock);
}

/* fsyncs the queue's log for every round asked, many at once when they
 * pile up while it syncs; wakes the loop to send what waited. */
static void *syncer_main(void *arg)
{
    vramd *d = arg;
    pthread_mutex_lock(&d->sync_lock);
    for (;;) {
        while (!d->sync_stop && (d->sync_done >= d->sync_want || d->sync_busy || d->sync_errno))
            pthread_cond_wait(&d->sync_cond, &d->sync_lock);
        if (d->sync_done >= d->sync_want || d->sync_errno)
            break;                  /* stopping (the loop has stopped too), and nothing left, or a failed fsync */
        uint64_t target = d->sync_want;
        d->sync_busy = true;
        pthread_mutex_unlock(&d->sync_lock);
        sync_now(d, target);
        ssize_t w = write(d->wake[1], "s", 1);
        (void)w;
        pthread_mutex_lock(&d->sync_lock);
    }
    pthread_mutex_unlock(&d->sync_lock);
    return NULL;
}

static void syncer_start(vramd *d)
{
    pthread_mutex_init(&d->sync_lock, NULL);
    pthread_cond_init(&d->sync_cond, NULL);
    pthread_cond_init(&d->sync_idle, NULL);
    /* The thread first: the queue defers its commits' fsyncs only once
     * there is a syncer to make them (else nothing would). */
    int rc = pthread_create(&d->syncer, NULL, syncer_main, d);
    if (rc != 0) {
        vramd_say(d, "commits fsync on the main loop (cannot start the syncer thread: %s)", strerror(rc));
        return;
    }
    if (vram__queue_defer_sync(d->queue) == 0) {
        d->syncer_on = true;
        /* What a daemon killed before its syncer's fsync committed is read
         * now and acted on: on disk first. */
        pthread_mutex_lock(&d->sync_lock);
        d->sync_floor = ++d->sync_want;
        pthread_cond_signal(&d->sync_cond);
        pthread_mutex_unlock(&d->sync_lock);
        return;
    }
    pthread_mutex_lock(&d->sync_lock);
    d->sync_stop = true;            /* nothing asked: it ends at once */
    pthread_cond_signal(&d->sync_cond);
    pthread_mutex_unlock(&d->sync_lock);
    pthread_join(d->syncer, NULL);
    d->sync_stop = false;
    vramd_say(d, "commits fsync on the main loop (%s)", vram_last_error());
    vram__clear_error();
}

/* The last rounds synced, then the thread gone. */
static void syncer_stop(vramd *d)
{
    if (!d->syncer_on)
        return;
    note_ends(d);
    pthread_mutex_lock(&d->sync_lock);
    if (d->round_unsynced || vram__queue_take_unsynced(d->queue) || d->ends_unsynced_ms)
        d->sync_want++;
    d->sync_stop = true;
    pthread_cond_signal(&d->sync_cond);
    pthread_mutex_unlock(&d->sync_lock);
    pthread_join(d->syncer, NULL);
    d->syncer_on = false;
}

uint64_t vramd_reply_wait(vramd *d, bool to_runner)
{
    if (!d->syncer_on)
        return 0;
    if (vram__queue_take_unsynced(d->queue))
        d->round_unsynced = true;
    note_ends(d);
    /* A client that may learn of a job's end (a list, a wait, a cancel's
     * answer) hears nothing before the ends written so far are on disk:
     * this round's fsync covers them.  A runner does not wait for them: the
     * end of its job, and the next job's start, go on meanwhile. */
    if (!to_runner && d->ends_unsynced_ms)
        d->round_told_end = true;
    pthread_mutex_lock(&d->sync_lock);
    uint64_t want = d->sync_want, done = d->sync_done;
    pthread_mutex_unlock(&d->sync_lock);
    /* A reply about what this round committed waits for its fsync.  So
     * does any reply to a client that is no runner while an earlier round's
     * fsync is under way (on a slow disk, the syncer's): it may name a job
     * submitted or ended then, not yet on disk.  A runner's does not (its
     * claim of the next job is not held behind the fsync of the last one's
     * end), but every reply waits for the fsync made at the start. */
    if (d->round_unsynced || (!to_runner && d->round_told_end))
        return want + 1;
    if (!to_runner && done < want)
        return want;
    return done < d->sync_floor ? d->sync_floor : 0;
}

/* A page's answer once the queue's log could not be fsync'ed; what the
 * page's own submit wrote (unsynced) keeps the loop's replies held, so
 * that they are told of it too. */
static int page_sync_failed(vramd *d, int failed, bool unsynced)
{
    d->round_unsynced |= unsynced;
    return vram__fail(VRAM_EIO, "vramd could not write its queue to disk (fsync: %s) and stops", strerror(failed));
}

int vramd_page_sync(vramd *d)
{
    if (!d->syncer_on)
        return 0;
    note_ends(d);
    bool unsynced = vram__queue_take_unsynced(d->queue);    /* a page's submit */
    /* Not beside the syncer's fsync: a failed writeback is reported to one
     * fsync of the log, and the page's, returning 0, would not know of the
     * syncer's failing.  (The loop makes none meanwhile: we hold d->lock.) */
    pthread_mutex_lock(&d->sync_lock);
    while (d->sync_busy)
        pthread_cond_wait(&d->sync_idle, &d->sync_lock);
    bool asked = d->sync_done < d->sync_want;
    int failed = d->sync_errno;
    bool due = !failed && (d->ends_unsynced_ms || asked || unsynced);
    d->sync_busy = due;
    pthread_mutex_unlock(&d->sync_lock);
    if (failed)
        return page_sync_failed(d, failed, unsynced);
    if (!due)
        return 0;
    /* A page has no `held` to wait in: its thread makes the fsync, under
     * d->lock, so that no end is written between it and the page's read
     * (the loop waits that long: a page read in the VRAMD_END_SYNC_MS
     * after an end costs the loop one fsync).  The ends not yet asked for
     * are on disk then, and need no fsync of their own; rounds asked and
     * not yet synced are on disk too, but keep their own fsync (the
     * syncer's or the loop's), which their replies wait for. */
    fsync_log(d);
    pthread_mutex_lock(&d->sync_lock);
    failed = d->sync_errno;
    d->sync_busy = false;
    pthread_cond_broadcast(&d->sync_idle);
    pthread_cond_signal(&d->sync_cond);     /* the syncer left what was asked meanwhile to us */
    pthread_mutex_unlock(&d->sync_lock);
    if (failed)
        return page_sync_failed(d, failed, unsynced);
    d->ends_unsynced_ms = 0;
    return 0;
}

/* Whether the loop has nothing to do but wait for this round's fsync: one
 * client waits for it, and no grant is waiting to start a job. */
static bool only_waiting(vramd *d)
{
    size_t held = 0;
    for (vramd_conn *c = d->conns; c && held < 2; c = c->next)
        held += c->held.len > 0;
    pthread_mutex_lock(&d->inbox_lock);
    bool idle = !d->inbox;
    pthread_mutex_unlock(&d->inbox_lock);
    return held == 1 && idle;
}

/* Sends the held replies of every round synced so far. */
static void release_synced(vramd *d)
{
    pthread_mutex_lock(&d->sync_lock);
    uint64_t done = d->sync_done;
    pthread_mutex_unlock(&d->sync_lock);
    vramd_conns_release(d, done);
}

/* Starts the fsync of what was asked, unless it is synced or one is under
 * way already: on the loop now (on_loop), or by the syncer thread. */
static void start_sync(vramd *d, bool on_loop)
{
    pthread_mutex_lock(&d->sync_lock);
    uint64_t target = d->sync_want;
    bool due = d->sync_done < target && !d->sync_busy && !d->sync_errno;
    if (due && on_loop)
        d->sync_busy = true;        /* the syncer, should it wake, leaves it to the loop */
    else if (due)
        pthread_cond_signal(&d->sync_cond);
    pthread_mutex_unlock(&d->sync_lock);
    if (due && on_loop)
        sync_now(d, target);
}

static bool sync_quick(vramd *d)
{
    pthread_mutex_lock(&d->sync_lock);
    bool quick = d->sync_us < INLINE_SYNC_MAX_US;
    pthread_mutex_unlock(&d->sync_lock);
    return quick;
}

/* Mid-round: what the round committed so far is asked to be synced (the
 * replies about it wait for that), so that what the rest of the round does
 * (a grant's start, a claim's answer) is not held behind it; and the
 * replies of rounds synced meanwhile go.  The loop makes the fsync now when
 * submits are among it and an fsync is quick (their clients wait for
 * nothing else, and the grants that follow, the job just submitted
 * starting, can wait that long); a slow one is the syncer's, started now
 * to run beside the rest of the round. */
static void sync_ask(vramd *d)
{
    if (!d->syncer_on)
        return;
    note_ends(d);
    bool ends_due = d->ends_unsynced_ms && vram__now_ms() - d->ends_unsynced_ms >= VRAMD_END_SYNC_MS;
    bool waited_for = d->round_unsynced || vram__queue_take_unsynced(d->queue) || d->round_told_end;
    bool submitted = d->round_submitted;
    d->round_unsynced = d->round_submitted = d->round_told_end = false;
    if (waited_for || ends_due) {
        pthread_mutex_lock(&d->sync_lock);
        d->sync_want++;
        pthread_mutex_unlock(&d->sync_lock);
        d->ends_unsynced_ms = 0;    /* written before the fsync asked now begins: it covers them */
        /* Jobs' ends that nobody waits for are the syncer's to fsync: the
         * loop goes on (a hand-over is not held behind it). */
        d->sync_unwaited = !waited_for;
        bool quick = sync_quick(d);
        if (submitted && quick)
            start_sync(d, true);
        else if (!quick || d->sync_unwaited)
            start_sync(d, false);
    }
    release_synced(d);
}

/* End of a round: what it asked is synced, and the replies of the rounds
 * synced go.  The loop makes the fsync itself when an fsync is quick
 * (INLINE_SYNC_MAX_US) or it has nothing else to do meanwhile; else the
 * syncer thread makes it and wakes the loop when it is done. */
static void sync_round(vramd *d)
{
    if (!d->syncer_on)
        return;
    sync_ask(d);
    pthread_mutex_lock(&d->sync_lock);
    bool due = d->sync_done < d->sync_want && !d->sync_busy;
    pthread_mutex_unlock(&d->sync_lock);
    if (due)
        start_sync(d, !d->sync_unwaited && (sync_quick(d) || only_waiting(d)));
    release_synced(d);
}

/* ---- the loop ------------------------------------------------------------------ */

void vramd_handle_inbox(vramd *d)
{
    pthread_mutex_lock(&d->inbox_lock);
    vramd_msg *list = d->inbox;
    d->inbox = NULL;
    pthread_mutex_unlock(&d->inbox_lock);
    /* Posted newest first: reverse, so grants are handled in order. */
    vramd_msg *ordered = NULL;
    while (list) {
        vramd_msg *next = list->next;
        list->next = ordered;
        ordered = list;
        list = next;
    }
    for (vramd_msg *m = ordered, *next; m; m = next) {
        next = m->next;
        if (m->kind == VRAMD_MSG_JOB_GRANT)
            vramd_job_granted(d, m);
        else
            vramd_client_granted(d, m);
        free(m);
    }
}

static void reap(vramd *d)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        vramd_spawner_reaped(d, pid);
        vramd_jobs_reaped(d, pid, status);
    }
}

/* How long a round waits for something to happen: LOOP_MS, or less when
 * jobs' ends written are due to be synced sooner. */
static int loop_wait_ms(const vramd *d)
{
    if (!d->ends_unsynced_ms)
        return LOOP_MS;
    uint64_t now = vram__now_ms(), due = d->ends_unsynced_ms + VRAMD_END_SYNC_MS;
    return now >= due ? 0 : due - now < LOOP_MS ? (int)(due - now) : LOOP_MS;
}

/* After a failed fsync of the queue's log, what the rounds since committed
 * may not be on disk, and no later fsync can say that it is: every client
 * whose answer waits for one is told so instead, and vramd stops (its
 * runners go on; the next vramd reads the queue as the disk has it).
 * False when that happened. */
static bool sync_failed(vramd *d)
{
    pthread_mutex_lock(&d->sync_lock);
    int e = d->sync_errno;
    pthread_mutex_unlock(&d->sync_lock);
    if (!e)
        return false;
    char message[256];
    snprintf(message, sizeof(message),
             "vramd could not write its queue to disk (fsync: %s) and stops; see vram queue once it is back",
             strerror(e));
    vramd_conns_fail_held(d, VRAM_EIO, message);
    vramd_say(d, "the queue's log %s-wal could not be written to disk (fsync: %s): stopping, so that no "
              "answer says a job is stored when the disk may not hold it; check the disk, then start vramd "
              "again", d->db_path, strerror(e));
    return true;
}

/* One round: wait for something, then handle everything that is ready. */
static bool loop_once(vramd *d)
{
    size_t nconns = 0;
    for (vramd_conn *c = d->conns; c; c = c->next)
        nconns++;
    struct pollfd *fds = calloc(nconns + 3, sizeof(*fds));
    vramd_conn **who = calloc(nconns + 1, sizeof(*who));
    if (!fds || !who) {
        free(fds);
        free(who);
        vram__sleep_ms(LOOP_MS);
        return true;
    }
    size_t n = 0;
    fds[n++] = (struct pollfd){ d->wake[0], POLLIN, 0 };
    /* At the fd limit the socket rests (vramd_conn_accept), not spins. */
    fds[n++] = (struct pollfd){ vram__now_ms() >= d->accept_after_ms ? d->listen_fd : -1, POLLIN, 0 };
    if (d->cfg.stop_fd >= 0)
        fds[n++] = (struct pollfd){ d->cfg.stop_fd, POLLIN, 0 };
    size_t first_conn = n;
    for (vramd_conn *c = d->conns; c; c = c->next) {
        who[n - first_conn] = c;
        /* A client with too many unread replies is not read (conns.c). */
        short in = vramd_conn_may_ask(d, c, 0) ? POLLIN : 0;
        fds[n++] = (struct pollfd){ c->fd, (short)(in | (c->out.len ? POLLOUT : 0)), 0 };
    }
    pthread_mutex_lock(&d->inbox_lock);
    bool posted = d->inbox != NULL; /* by this thread, which did not wake itself */
    pthread_mutex_unlock(&d->inbox_lock);
    /* Under the lock: an HTTP thread notes jobs' ends too (a page's cancel,
     * provider.c); one it notes after this look wakes the loop (vramd_wake),
     * so its sync is not left a whole LOOP_MS. */
    pthread_mutex_lock(&d->lock);
    int wait_ms = posted ? 0 : loop_wait_ms(d);
    pthread_mutex_unlock(&d->lock);
    int r = poll(fds, n, wait_ms);
    bool go_on = true;
    pthread_mutex_lock(&d->lock);
    if (r > 0) {
        if (fds[0].revents) {
            char drain[256];
            while (read(d->wake[0], drain, sizeof(drain)) > 0)
                ;
        }
        if (d->cfg.stop_fd >= 0 && fds[2].revents)
            go_on = false;
        vramd_handle_inbox(d);
        if (fds[1].revents & POLLIN)
            vramd_conn_accept(d);
        for (size_t i = first_conn; i < n; i++) {
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
                vramd_conn_readable(d, who[i - first_conn]);
            if (fds[i].revents & POLLOUT) {
                vramd_conn_writable(d, who[i - first_conn]);
                if (who[i - first_conn]->in.len)   /* requests held back while it did not read */
                    vramd_conn_readable(d, who[i - first_conn]);
            }
        }
        vramd_conns_flush(d);
    } else {
        vramd_handle_inbox(d);
    }
    free(fds);
    free(who);
    /* The replies to what was read go first (a client waits for them);
     * reaping and the jobs' round run while it reads, and what they
     * committed is synced at once after them.  Grants this round made (a
     * job that ended let the next one in) are started after its sync is
     * asked, so that the start's reply does not wait for the round's
     * fsync; a job-ended request starts them before it is answered when
     * nothing of the round holds a runner's reply (conns.c). */
    sync_ask(d);
    vramd_handle_inbox(d);
    reap(d);
    vramd_jobs_tick(d);
    sync_round(d);
    if (sync_failed(d))
        go_on = false;
    vramd_conns_sweep(d);
    pthread_mutex_unlock(&d->lock);
    return go_on;
}

int vram_daemon_run(const vram_daemon_config *cfg)
{
    if (!cfg)
        return vram__fail(VRAM_EINVAL, "vram_daemon_run: NULL config");
    int rc = vram__check_version("vram_daemon_config", cfg->version, VRAM_DAEMON_CONFIG_VERSION);
    if (rc)
        return rc;
    vramd *d = calloc(1, sizeof(*d));
    if (!d)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    d->cfg = *cfg;
    d->loop_thread = pthread_self();
    d->listen_fd = -1;
    d->lock_fd = -1;
    d->spawner_fd = -1;
    d->viewer_uid = VRAMD_ANY_VIEWER;
    d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&d->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    pthread_mutex_init(&d->inbox_lock, NULL);
    if (pipe2(d->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(d);
        return vram__fail(VRAM_EIO, "cannot make a pipe: %s", strerror(errno));
    }
    vram_options *own = NULL;
    if (!d->cfg.opts) {
        vram_options_new(&own);
        vram_options_load_env(own);
        d->cfg.opts = own;
    }
    rc = open_all(d);
    char why[1024] = "";
    if (rc)
        vram__strlcpy(why, vram_last_error(), sizeof(why));
    else
        while (loop_once(d))
            ;
    if (!rc) {
        vramd_say(d, "stopping; running jobs go on and will be adopted by the next vramd");
        vramd_systemd_notify("STOPPING=1");
    }
    /* After close_all: the syncer's last fsync, of what the last rounds
     * and the stop itself wrote, fails as well as one made while running. */
    bool syncer = d->syncer_on;
    close_all(d);
    int sync_errno = syncer ? d->sync_errno : 0;    /* the syncer has ended */
    if (!rc && sync_errno) {
        rc = VRAM_EIO;
        snprintf(why, sizeof(why), "the queue's log %.800s-wal could not be written to disk (fsync: %s)", d->db_path,
                 strerror(sync_errno));
    }
    vram_options_free(own);
    free(d);
    if (rc)
        vram__fail(rc, "%s", why);
    return rc;
}
