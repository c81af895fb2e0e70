/* SPDX-License-Identifier: MIT */
/*
 * wire/link.c - a runner's line to vramd: its requests, and what becomes of
 * them when vramd is gone.
 *
 * A daemon job's runner outlives its daemon: when the connection is lost it
 * talks to the next vramd on the same socket (which adopted the job), and
 * when there is none, the job's end is written to the job store directly,
 * so a restarted daemon finds it finished and does not run it again.  That
 * fallback is the only place outside the daemon that writes the store.  A
 * runner that cannot (it runs as the job's submitter, the store is root's)
 * leaves the end in the job's end file, beside its log, for the next vramd.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/json_read.h"
#include "wire/link.h"
#include "wire/queue.h"
#include "wire/record.h"

#define CLAIM_TRIES_MS 10000        /* a daemon restarting meanwhile gets this long */
#define ENDED_TRIES_MS 2000         /* to hear a job's end, before the store is written */
#define RECONNECT_EVERY_MS 1000     /* how often progress and owner look for a new vramd */
#define RETRY_PAUSE_MS 200          /* between askings on connections lost at once */

/* A reused runner's connection between two jobs (vram__link_keep); the
 * lock is for a program whose threads run jobs of their own. */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static vram_client *kept;

void vram__link_keep(vram__link *l)
{
    if (!l->job || !l->daemon)
        return;
    pthread_mutex_lock(&kept_lock);
    vram_client *old = kept;
    kept = l->daemon;
    pthread_mutex_unlock(&kept_lock);
    l->daemon = NULL;
    vram_client_close(old);
}

/* The kept connection, when it is to `socket` (taken: kept no more). */
static vram_client *take_kept(const char *socket)
{
    pthread_mutex_lock(&kept_lock);
    vram_client *c = kept;
    if (c && !strcmp(vram_client_socket(c), socket && *socket ? socket : vram_client_socket(c)))
        kept = NULL;
    else
        c = NULL;
    pthread_mutex_unlock(&kept_lock);
    return c;
}

int vram__link_open(vram__link *l, const char *socket, const char *db_path, uint64_t job)
{
    memset(l, 0, sizeof(*l));
    l->job = job;
    vram__strlcpy(l->db_path, db_path ? db_path : "", sizeof(l->db_path));
    if (!job)
        return vram_client_open(socket, &l->daemon);
    if ((l->daemon = take_kept(socket)))
        return 0;                   /* should vramd have gone meanwhile, call() connects to the next */
    uint64_t until = vram__now_ms() + CLAIM_TRIES_MS;
    int rc;
    while ((rc = vram_client_open(socket, &l->daemon)) && vram__now_ms() < until)
        vram__sleep_ms(RETRY_PAUSE_MS);
    return rc;
}

void vram__link_close(vram__link *l)
{
    vram_client_close(l->daemon);
    memset(l, 0, sizeof(*l));
}

/* Connects to the vramd now on the socket, trying for up to patience_ms
 * (0: once, and not again within RECONNECT_EVERY_MS). */
static bool reconnect(vram__link *l, uint64_t patience_ms)
{
    uint64_t now = vram__now_ms(), until = now + patience_ms;
    if (!patience_ms && now < l->next_reconnect_ms)
        return false;
    char socket[4096];
    vram__strlcpy(socket, vram_client_socket(l->daemon), sizeof(socket));
    vram_client *c = NULL;
    while (vram_client_open(socket, &c) && vram__now_ms() < until)
        vram__sleep_ms(RETRY_PAUSE_MS);
    if (!c) {
        l->next_reconnect_ms = vram__now_ms() + RECONNECT_EVERY_MS;
        return false;
    }
    vram_client_close(l->daemon);
    l->daemon = c;
    return true;
}

/* One request to the daemon; for a daemon job, a lost connection is tried
 * again on the next vramd, for as long as patience_ms (0: once).  A request
 * the dead daemon had taken is then asked of the new one, which answers
 * from the store (a job already ended is "not running").  A connection can
 * be lost again at once - made in the instant the old daemon died, to its
 * socket not yet gone - so the asking goes on while patience lasts. */
static int call(vram__link *l, const char *request, int timeout_ms, uint64_t patience_ms, char **reply)
{
    uint64_t until = vram__now_ms() + patience_ms;
    for (int tries = 0;; tries++) {
        int rc = vram_client_call(l->daemon, request, timeout_ms, reply);
        if (rc != VRAM_EIO || !l->job || (tries > 0 && vram__now_ms() >= until))
            return rc;
        char lost[256];
        vram__strlcpy(lost, vram_last_error(), sizeof(lost));
        if (tries > 0)
            vram__sleep_ms(RETRY_PAUSE_MS);
        uint64_t now = vram__now_ms();
        if (!reconnect(l, until > now ? until - now : 0))
            return vram__fail(rc, "%s", lost);
    }
}

static void begin(vram__buf *b, const char *op)
{
    vram__buf_init(b);
    vram__buf_printf(b, "{\"v\":1,\"op\":\"%s\"", op);
}

/* Sends the request built in b and reads lease, device, bytes (and, when
 * record is not NULL, the job's record). */
static int lease_call(vram__link *l, vram__buf *b, vram__grant *out, vram__record *record)
{
    memset(out, 0, sizeof(*out));
    char *reply = NULL;
    int rc = b->failed ? vram__fail(VRAM_ENOMEM, "out of host memory")
           : !l->daemon ? vram__fail(VRAM_EINVAL, "no vramd to ask")
                        : call(l, b->data, -1, CLAIM_TRIES_MS, &reply);
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
    if (!rc && record)
        rc = vram__record_read(vram__jv_get(root, "job"), record);
    const char *end = record ? vram__jv_str(vram__jv_get(root, "end_file")) : NULL;
    if (!rc && record)
        vram__strlcpy(l->end_path, end && *end == '/' ? end : "", sizeof(l->end_path));
    int end_fd = -1;                /* handed over open: never the job's (vram__end_write) */
    if (!rc && record && sscanf(l->end_path, "/dev/fd/%d", &end_fd) == 1 && end_fd > 2)
        fcntl(end_fd, F_SETFD, FD_CLOEXEC);
    vram__json_doc_free(doc);
    return rc;
}

int vram__link_lease(vram__link *l, uint64_t bytes, int device, int64_t wait_ms, vram__grant *out)
{
    vram__buf b;
    begin(&b, "lease");
    vram__buf_printf(&b, ",\"vram\":%llu", (unsigned long long)bytes);
    if (device >= 0)
        vram__buf_printf(&b, ",\"device\":%d", device);
    if (wait_ms >= 0)
        vram__buf_printf(&b, ",\"wait_ms\":%lld", (long long)wait_ms);
    vram__buf_puts(&b, "}");
    return lease_call(l, &b, out, NULL);
}

int vram__link_claim(vram__link *l, uint32_t pid, vram__grant *out, vram__record *record)
{
    vram__buf b;
    begin(&b, "job-claim");
    vram__buf_printf(&b, ",\"job\":%llu,\"pid\":%u}", (unsigned long long)l->job, (unsigned)pid);
    return lease_call(l, &b, out, record);
}

int vram__link_rung(vram__link *l, uint64_t bytes, vram__grant *out)
{
    vram__buf b;
    begin(&b, "job-rung");
    vram__buf_printf(&b, ",\"job\":%llu,\"vram\":%llu}", (unsigned long long)l->job,
                     (unsigned long long)bytes);
    return lease_call(l, &b, out, NULL);
}

/* A request to the daemon whose answer is only whether it took it (false
 * when not); the reply line is given to *reply when that is not NULL
 * (free with vram_free). */
static bool tell_back(vram__link *l, vram__buf *b, uint64_t patience_ms, char **reply_out)
{
    char *reply = NULL;
    bool ok = !b->failed && l->daemon && call(l, b->data, 5000, patience_ms, &reply) == 0;
    if (reply_out)
        *reply_out = reply;
    else
        vram_free(reply);
    vram__buf_free(b);
    if (!ok)
        vram__clear_error();
    return ok;
}

static bool tell(vram__link *l, vram__buf *b, uint64_t patience_ms)
{
    return tell_back(l, b, patience_ms, NULL);
}

/* The job store, opened only when no daemon is there to tell. */
static vram__queue *store_of(const vram__link *l)
{
    vram__queue *q = NULL;
    if (*l->db_path && vram__queue_open(l->db_path, &q))
        q = NULL;
    return q;
}

void vram__link_owner(vram__link *l, uint64_t lease, uint32_t pgid)
{
    vram__buf b;
    begin(&b, "owner");
    if (l->job)
        vram__buf_printf(&b, ",\"job\":%llu,\"pgid\":%u}", (unsigned long long)l->job, pgid);
    else
        vram__buf_printf(&b, ",\"lease\":%llu,\"pgid\":%u}", (unsigned long long)lease, pgid);
    if (tell(l, &b, 0) || !l->job) {
        l->pgid_unsent = 0;
        return;
    }
    l->pgid_unsent = pgid;          /* told again to the next vramd */
    vram__queue *q = store_of(l);   /* for the next daemon, should this one be gone */
    vram__job f = { .device = -1, .job_pgid = pgid };
    if (q)
        vram__queue_update(q, l->job, VRAM__JOB_RUNNING, &f);
    vram__queue_close(q);
}

void vram__link_owner_again(vram__link *l)
{
    if (!l->job || !l->pgid_unsent)
        return;
    vram__buf b;
    begin(&b, "owner");
    vram__buf_printf(&b, ",\"job\":%llu,\"pgid\":%u}", (unsigned long long)l->job, l->pgid_unsent);
    if (tell(l, &b, 0))
        l->pgid_unsent = 0;
}

void vram__link_release(vram__link *l, uint64_t lease)
{
    if (l->job)
        return;                     /* the daemon frees a job's lease itself */
    vram__buf b;
    begin(&b, "release");
    vram__buf_printf(&b, ",\"lease\":%llu}", (unsigned long long)lease);
    tell(l, &b, 0);
}

void vram__link_progress(vram__link *l, double progress)
{
    if (!l->job)
        return;
    vram__buf b;
    begin(&b, "job-progress");
    vram__buf_printf(&b, ",\"job\":%llu,\"progress\":%.3f}", (unsigned long long)l->job, progress);
    tell(l, &b, 0);
}

void vram__link_usage(vram__link *l, uint64_t used, uint64_t over)
{
    if (!l->job)
        return;
    vram__buf b;
    begin(&b, "job-progress");
    vram__buf_printf(&b, ",\"job\":%llu,\"used\":%llu,\"over\":%llu}", (unsigned long long)l->job,
                     (unsigned long long)used, (unsigned long long)over);
    tell(l, &b, 0);
}

/* The next job in an ended's reply, if any (runner reuse). */
static void read_next(const char *reply, vram_job_next *next)
{
    vram__json_doc *doc;
    char err[64];
    if (!reply || vram__json_read(reply, strlen(reply), 0, &doc, err, sizeof(err)))
        return;
    const vram__jv *n = vram__jv_get(vram__json_root(doc), "next");
    const char *cwd = vram__jv_str(vram__jv_get(n, "cwd")), *log = vram__jv_str(vram__jv_get(n, "log"));
    const char *output = vram__jv_str(vram__jv_get(n, "output")), *end = vram__jv_str(vram__jv_get(n, "end_file"));
    uint64_t job = 0;
    if (n && vram__jv_uint(vram__jv_get(n, "job"), &job) && job && cwd && *cwd == '/' && log && *log == '/' &&
        output && end && *end == '/' && strlen(cwd) < sizeof(next->cwd) && strlen(log) < sizeof(next->log) &&
        strlen(output) < sizeof(next->output) && strlen(end) < sizeof(next->end_file)) {
        strcpy(next->cwd, cwd);
        strcpy(next->log, log);
        strcpy(next->output, output);
        strcpy(next->end_file, end);
        next->job = job;
    }
    vram__json_doc_free(doc);
}

void vram__link_ended(vram__link *l, int exit_status, const char *outcome, uint64_t peak, bool ran,
                      vram_job_next *next)
{
    if (next)
        memset(next, 0, sizeof(*next));
    if (!l->job)
        return;
    int code = exit_status < 0 ? 0 : exit_status > 255 ? 255 : exit_status;
    vram__buf b;
    begin(&b, "job-ended");
    vram__buf_printf(&b, ",\"job\":%llu,\"exit_status\":%d,\"outcome\":", (unsigned long long)l->job, code);
    vram__json_escape(&b, outcome);
    vram__buf_printf(&b, ",\"peak\":%llu%s}", (unsigned long long)peak, next ? ",\"next\":true" : "");
    char *reply = NULL;
    bool told = tell_back(l, &b, ENDED_TRIES_MS, &reply);
    if (told && next)
        read_next(reply, next);
    vram_free(reply);
    if (told)
        return;
    /* No daemon to tell: the end goes to the store, where the next one finds
     * it (and does not run the job again).  A job whose command never
     * started (most often because vramd went away while it was starting) is
     * queued again instead: the next vramd starts it, within its limit of
     * starts. */
    vram__queue *q = store_of(l);
    if (!q && *l->end_path) {       /* the store is not ours to write: the end file is */
        vram__end e = { .job = l->job, .exit_status = code, .peak = peak, .ran = ran };
        vram__strlcpy(e.outcome, outcome, sizeof(e.outcome));
        if (vram__end_write(l->end_path, &e))
            vram__log(VRAM__LOG_WARN, "job %llu ended (%s) but neither vramd nor its end file took note: %s",
                      (unsigned long long)l->job, outcome, vram_last_error());
        return;
    }
    int to = !ran ? VRAM__JOB_QUEUED
           : !strcmp(outcome, "ok") ? VRAM__JOB_SUCCEEDED
           : !strcmp(outcome, "canceled") ? VRAM__JOB_CANCELED : VRAM__JOB_FAILED;
    vram__job f = { .device = -1, .exit_status = code, .peak_bytes = peak };
    vram__strlcpy(f.outcome, outcome, sizeof(f.outcome));
    if (!ran)
        vram__strlcpy(f.note, "its runner could not start it and vramd was gone: queued again",
                      sizeof(f.note));
    if (!q || vram__queue_move(q, l->job, VRAM__JOB_RUNNING, to, &f))
        vram__log(VRAM__LOG_WARN, "job %llu ended (%s) but neither vramd nor its store took note: %s",
                  (unsigned long long)l->job, outcome, vram_last_error());
    vram__queue_close(q);
}

/* ---- the end file ---------------------------------------------------------------- */

int vram__end_write(const char *path, const vram__end *e)
{
    if (!vram__job_outcome_ok(e->outcome))
        return vram__fail(VRAM_EINVAL, "an end's outcome is a-z and '-' only");
    int given = -1;                 /* an end file vramd made and handed over open */
    if (sscanf(path, "/dev/fd/%d", &given) == 1 && given > 2) {
        char line[256];
        int n = snprintf(line, sizeof(line), "{\"job\":%llu,\"exit_status\":%d,\"outcome\":\"%s\",\"peak\":%llu,"
                         "\"ran\":%s}\n", (unsigned long long)e->job, e->exit_status, e->outcome,
                         (unsigned long long)e->peak, e->ran ? "true" : "false");
        if (ftruncate(given, 0) != 0 || pwrite(given, line, (size_t)n, 0) != n || fsync(given) != 0)
            return vram__fail(VRAM_EIO, "cannot write the end file (fd %d): %s", given, strerror(errno));
        return 0;
    }
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return vram__fail(VRAM_EIO, "cannot make %s: %s", tmp, strerror(errno));
    char line[256];
    int n = snprintf(line, sizeof(line), "{\"job\":%llu,\"exit_status\":%d,\"outcome\":\"%s\",\"peak\":%llu,"
                     "\"ran\":%s}\n", (unsigned long long)e->job, e->exit_status, e->outcome,
                     (unsigned long long)e->peak, e->ran ? "true" : "false");
    bool ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return vram__fail(VRAM_EIO, "cannot write %s: %s", path, strerror(err));
    }
    return 0;
}

int vram__end_read(const char *path, uint32_t uid, vram__end *out)
{
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR
                   ? vram__fail(VRAM_ENOENT, "no end file %s", path)
                   : vram__fail(VRAM_EPERM, "the end file %s cannot be opened: %s", path, strerror(errno));
    struct stat st;
    char buf[4097];
    ssize_t n = -1;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = vram__fail(VRAM_EPERM, "the end file %s is not a plain file", path);
    else if (st.st_uid != uid)
        rc = vram__fail(VRAM_EPERM, "the end file %s belongs to uid %u, not to the job's uid %u", path,
                        (unsigned)st.st_uid, (unsigned)uid);
    else if (st.st_size == 0)       /* made for its runner, who never wrote it */
        rc = vram__fail(VRAM_ENOENT, "the end file %s is empty", path);
    else if (st.st_size > 4096 || (n = read(fd, buf, sizeof(buf) - 1)) < 0 || n > 4096)
        rc = vram__fail(VRAM_EPARSE, "the end file %s is over 4 KiB or cannot be read", path);
    close(fd);
    if (rc)
        return rc;
    buf[n] = '\0';
    vram__json_doc *doc;
    char err[128];
    if (vram__json_read(buf, (size_t)n, 64, &doc, err, sizeof(err)))
        return vram__fail(VRAM_EPARSE, "the end file %s: %s", path, err);
    const vram__jv *o = vram__json_root(doc), *ran = vram__jv_get(o, "ran");
    const char *outcome = vram__jv_str(vram__jv_get(o, "outcome"));
    uint64_t exit_status = 0;
    if (!vram__jv_uint(vram__jv_get(o, "job"), &out->job) ||
        !vram__jv_uint(vram__jv_get(o, "exit_status"), &exit_status) || exit_status > 255 ||
        !vram__jv_uint(vram__jv_get(o, "peak"), &out->peak) || !outcome ||
        strlen(outcome) >= sizeof(out->outcome) || !vram__job_outcome_ok(outcome) || !ran || ran->kind != VRAM__JV_BOOL)
        rc = vram__fail(VRAM_EPARSE, "the end file %s is not a job's end", path);
    else {
        out->exit_status = (int)exit_status;
        vram__strlcpy(out->outcome, outcome, sizeof(out->outcome));
        out->ran = ran->b;
    }
    vram__json_doc_free(doc);
    return rc;
}
