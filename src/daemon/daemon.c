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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/ctx.h"
#include "daemon/daemon.h"
#include "wire/sock.h"

#define LOOP_MS 200

static void handle_inbox(vramd *d);


void vramd_wake(vramd *d)
{
    char b = 1;
    ssize_t w = write(d->wake[1], &b, 1);   /* a full pipe already wakes */
    (void)w;
}

void vramd_post(vramd *d, vramd_msg *m)
{
    pthread_mutex_lock(&d->inbox_lock);
    m->next = d->inbox;
    d->inbox = m;
    pthread_mutex_unlock(&d->inbox_lock);
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
    if (rc)
        return rc;
    if ((rc = vram_ctx_open(&d->ctx, o)) || (rc = vram_ledger_open(d->ctx, NULL, &d->ledger)) ||
        (rc = vram__queue_open(d->db_path, &d->queue)))
        return rc;
    char token_path[4096];
    if ((rc = vram__token_path(vram_options_get(o, "token-file"), token_path, sizeof(token_path))) ||
        (rc = vram__token_create(token_path, d->token)))
        return rc;
    vram__http_provider p;
    vramd_provider(d, &p);
    if ((rc = vram__http_start(vram_options_get(o, "http"), d->token, &p, &d->http)))
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
    handle_inbox(d);                /* the cancels' messages */
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
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->inbox_lock);
}

/* ---- the loop ------------------------------------------------------------------ */

static void handle_inbox(vramd *d)
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
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        vramd_jobs_reaped(d, pid, status);
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
    fds[n++] = (struct pollfd){ d->listen_fd, POLLIN, 0 };
    if (d->cfg.stop_fd >= 0)
        fds[n++] = (struct pollfd){ d->cfg.stop_fd, POLLIN, 0 };
    size_t first_conn = n;
    for (vramd_conn *c = d->conns; c; c = c->next) {
        who[n - first_conn] = c;
        fds[n++] = (struct pollfd){ c->fd, (short)(POLLIN | (c->out.len ? POLLOUT : 0)), 0 };
    }
    int r = poll(fds, n, LOOP_MS);
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
        handle_inbox(d);
        if (fds[1].revents & POLLIN)
            vramd_conn_accept(d);
        for (size_t i = first_conn; i < n; i++) {
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
                vramd_conn_readable(d, who[i - first_conn]);
            if (fds[i].revents & POLLOUT)
                vramd_conn_writable(d, who[i - first_conn]);
        }
        vramd_conns_flush(d);
    } else {
        handle_inbox(d);
    }
    free(fds);
    free(who);
    reap(d);
    vramd_jobs_tick(d);
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
    d->listen_fd = -1;
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
    close_all(d);
    vram_options_free(own);
    free(d);
    if (rc)
        vram__fail(rc, "%s", why);
    return rc;
}
