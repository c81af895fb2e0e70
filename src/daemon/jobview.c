/* SPDX-License-Identifier: MIT */
/*
 * daemon/jobview.c - a job as people and programs see it: its JSON (for
 * `vram queue`, the socket's list and show, the dashboard, events) and the
 * lists of jobs.
 *
 * Reads the job table under the caller's lock and changes nothing in it
 * but the cached command line and log path.  Who is looking decides how
 * much is shown (d->viewer_uid, the client's SO_PEERCRED uid or the
 * dashboard's): a job's owner, root and the daemon's own user see it whole;
 * everyone else sees its summary (state, sizes, times, name, model), never
 * its command nor its log, in lists, show and the subscribe stream alike.
 * Where a job's log is, is answered here too (vramd_job_log_path).
 */
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/json_read.h"
#include "daemon/daemon.h"

/* The queue's tag in a submitter's log folder: jobs of two queues (two
 * daemons, or one moved to another --db) never share a log or an end. */
static uint32_t queue_tag(const char *db_path)
{
    uint32_t h = 2166136261u;       /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)db_path; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* ---- whether a submitter has a home of their own, in bounded time ----
 * A home may be on NFS, and a stat of a stalled mount waits for minutes:
 * on the daemon's one loop thread that would stop every client.  So the
 * stat runs in a thread of its own, waited for HOME_CHECK_MS at most; a
 * home that does not answer in time is taken as none (the job logs beside
 * the queue), and kept so HOME_KEEP_MS for that user (an answer in time
 * is not kept: a home made or removed since counts at once).
 * At most HOME_STUCK_MAX such threads may be stuck at once; past that, no
 * new one is started until one comes back. */
#define HOME_CHECK_MS 300
#define HOME_KEEP_MS 30000
#define HOME_STUCK_MAX 4
#define HOME_CACHE 16

typedef struct home_check {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done, ok, abandoned;
    uint32_t uid;
    char path[sizeof(((vramd_identity *)0)->home)];
} home_check;

static pthread_mutex_t homes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { uint32_t uid; bool ok; uint64_t until_ms; } homes[HOME_CACHE];  /* stalled ones */
static unsigned homes_next, homes_stuck;

static void *home_stat(void *arg)
{
    home_check *h = arg;
    struct stat st;
    bool ok = stat(h->path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == h->uid;
    pthread_mutex_lock(&h->m);
    h->done = true;
    h->ok = ok;
    bool abandoned = h->abandoned;
    pthread_cond_signal(&h->c);
    pthread_mutex_unlock(&h->m);
    if (abandoned) {                /* the loop stopped waiting: it is ours to free */
        pthread_mutex_lock(&homes_lock);
        homes_stuck--;
        pthread_mutex_unlock(&homes_lock);
        pthread_cond_destroy(&h->c);
        pthread_mutex_destroy(&h->m);
        free(h);
    }
    return NULL;
}

/* Whether `home` is a folder of uid's own, known within HOME_CHECK_MS. */
static bool home_usable(uint32_t uid, const char *home)
{
    uint64_t now = vram__now_ms();
    pthread_mutex_lock(&homes_lock);
    for (unsigned i = 0; i < HOME_CACHE; i++)
        if (homes[i].until_ms > now && homes[i].uid == uid) {
            bool ok = homes[i].ok;
            pthread_mutex_unlock(&homes_lock);
            return ok;
        }
    bool room = homes_stuck < HOME_STUCK_MAX;
    pthread_mutex_unlock(&homes_lock);
    home_check *h = room ? calloc(1, sizeof(*h)) : NULL;
    bool ok = false, answered = false;
    if (h) {
        pthread_mutex_init(&h->m, NULL);
        pthread_cond_init(&h->c, NULL);
        h->uid = uid;
        vram__strlcpy(h->path, home, sizeof(h->path));
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        bool started = pthread_create(&t, &attr, home_stat, h) == 0;
        pthread_attr_destroy(&attr);
        if (!started) {             /* no thread: asked here, unbounded, as before */
            home_stat(h);
        } else {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += (long)HOME_CHECK_MS * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_mutex_lock(&h->m);
            while (!h->done && pthread_cond_timedwait(&h->c, &h->m, &until) == 0)
                ;
        }
        if (!started)
            pthread_mutex_lock(&h->m);
        answered = h->done;
        ok = h->ok;
        if (!answered) {            /* counted before the thread can see it abandoned */
            pthread_mutex_lock(&homes_lock);
            homes_stuck++;
            pthread_mutex_unlock(&homes_lock);
            h->abandoned = true;
        }
        pthread_mutex_unlock(&h->m);
        if (answered) {
            pthread_cond_destroy(&h->c);
            pthread_mutex_destroy(&h->m);
            free(h);
        }
    }
    if (answered)
        return ok;
    pthread_mutex_lock(&homes_lock);
    unsigned k = homes_next++ % HOME_CACHE;
    homes[k].uid = uid;
    homes[k].ok = false;
    homes[k].until_ms = now + HOME_KEEP_MS;
    pthread_mutex_unlock(&homes_lock);
    return false;
}

static int log_path_of(vramd *d, const vramd_job *j, char *buf, size_t cap)
{
    uint32_t owner = j->row.owner_uid;
    if (geteuid() != 0 || owner == geteuid()) {
        snprintf(buf, cap, "%s.logs/%llu.log", d->db_path, (unsigned long long)j->row.id);
        return 0;
    }
    vramd_identity who;
    int rc = vramd_identity_of(owner, &who);
    if (rc)
        return rc;
    /* A submitter without a home of their own (a system account) logs
     * beside the queue, in a file given to them: `vram log` reads it
     * through vramd; its end file, made there by vramd too, is handed to
     * the runner open (spawn.c), so an end with vramd gone is kept. */
    if (!home_usable(owner, who.home)) {
        snprintf(buf, cap, "%s.logs/%llu.log", d->db_path, (unsigned long long)j->row.id);
        return 0;
    }
    int n = snprintf(buf, cap, "%s%s.local/state/vram/jobs/%08x/%llu.log", who.home,
                     who.home[strlen(who.home) - 1] == '/' ? "" : "/", queue_tag(d->db_path),
                     (unsigned long long)j->row.id);
    return n > 0 && (size_t)n < cap ? 0 : vram__fail(VRAM_ERANGE, "the home of uid %u is too long a path",
                                                       (unsigned)owner);
}

int vramd_job_log_path(vramd *d, const vramd_job *j, char *buf, size_t cap)
{
    if (!j->log) {
        char path[4300];
        int rc = log_path_of(d, j, path, sizeof(path));
        if (rc)
            return rc;
        if (!(((vramd_job *)j)->log = strdup(path)))
            return vram__fail(VRAM_ENOMEM, "out of host memory");
    }
    if (strlen(j->log) >= cap)
        return vram__fail(VRAM_ERANGE, "job %llu's log path is too long", (unsigned long long)j->row.id);
    strcpy(buf, j->log);
    return 0;
}

int vramd_job_end_path(vramd *d, const vramd_job *j, char *buf, size_t cap)
{
    int rc = vramd_job_log_path(d, j, buf, cap);
    size_t n = rc ? 0 : strlen(buf);
    if (rc)
        return rc;
    if (n < 4 || strcmp(buf + n - 4, ".log"))
        return vram__fail(VRAM_EINTERNAL, "job %llu's log is not a .log", (unsigned long long)j->row.id);
    memcpy(buf + n - 4, ".end", 4);
    return 0;
}

static void job_command(const vramd_job *j, char *buf, size_t cap);

/* A few users' names, looked up once each: a list of thousands of jobs
 * asks the system (NSS: files, LDAP...) for each user once, not per job. */
#define USER_CACHE 16
static __thread struct { uint32_t uid; bool used; char name[64]; } users[USER_CACHE];
static __thread unsigned users_next;

const char *vramd_user_name(uint32_t uid)
{
    for (unsigned i = 0; i < USER_CACHE; i++)
        if (users[i].used && users[i].uid == uid)
            return users[i].name;
    unsigned k = users_next++ % USER_CACHE;
    struct passwd pw, *found = NULL;
    char buf[4096];
    users[k].uid = uid;
    users[k].used = true;
    users[k].name[0] = '\0';
    if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &found) == 0 && found && found->pw_name)
        vram__strlcpy(users[k].name, found->pw_name, sizeof(users[k].name));
    return users[k].name;
}

const char *vramd_user_text(uint32_t uid, char *buf, size_t cap)
{
    const char *name = vramd_user_name(uid);
    if (*name)
        snprintf(buf, cap, "%s (uid %u)", name, uid);
    else
        snprintf(buf, cap, "uid %u", uid);
    return buf;
}

/* Why a finished job ended as it did, when nothing more particular was
 * noted: its exit status, the signal that killed it, its last rung out of
 * memory, its time limit.  "" for a success. */
static const char *end_reason(const vram__job *r, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!vramd_state_final(r->state) || r->state == VRAM__JOB_SUCCEEDED)
        return buf;
    const char *o = r->outcome;
    if (!strcmp(o, "failed"))
        snprintf(buf, cap, "exited with status %d", r->exit_status);
    else if (!strcmp(o, "signal")) {
        int sig = r->exit_status > 128 ? r->exit_status - 128 : r->exit_status;
        const char *abbrev = sig > 0 && sig < 65 ? sigabbrev_np(sig) : NULL;
        snprintf(buf, cap, "killed by signal %d%s%s", sig, abbrev ? " SIG" : "", abbrev ? abbrev : "");
    } else if (!strcmp(o, "oom")) {
        char peak[32];
        vram_size_format(r->peak_bytes, peak, sizeof(peak));
        snprintf(buf, cap, "out of GPU memory on its last rung (peak %s, status %d)", peak, r->exit_status);
    } else if (!strcmp(o, "timeout"))
        snprintf(buf, cap, "stopped at its time limit of %.0f s", (double)r->time_limit_ms / 1000.0);
    else if (!strcmp(o, "canceled"))
        snprintf(buf, cap, "canceled");
    else if (!strcmp(o, "lost"))
        snprintf(buf, cap, "lost: its runner went away and its end is unknown");
    else if (!strcmp(o, "not-started"))
        snprintf(buf, cap, "not started (status %d)", r->exit_status);
    else
        snprintf(buf, cap, "%s, status %d", *o ? o : "ended", r->exit_status);
    return buf;
}

/* argv as one line, for people; made once per job (lists show thousands). */
static const char *job_command_text(const vramd_job *j)
{
    if (!j->command) {
        char buf[2048];
        job_command(j, buf, sizeof(buf));
        ((vramd_job *)j)->command = strdup(buf);
    }
    return j->command ? j->command : "";
}

static void job_command(const vramd_job *j, char *buf, size_t cap)
{
    vram__json_doc *doc;
    char err[64];
    size_t n = 0;
    buf[0] = '\0';
    if (vram__json_read(j->row.argv_json, strlen(j->row.argv_json), 0, &doc, err, sizeof(err)))
        return;
    const vram__jv *a = vram__json_root(doc);
    for (size_t i = 0; a->kind == VRAM__JV_ARRAY && i < a->n && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? " " : "", vram__jv_str(a->items[i]));
    vram__json_doc_free(doc);
}

static void opt_uint(vram__json *o, const char *key, uint64_t v, bool have)
{
    vram__json_key(o, key);
    if (have)
        vram__json_uint(o, v);
    else
        vram__json_null(o);
}

bool vramd_viewer_sees(uint32_t viewer, uint32_t owner)
{
    return viewer == VRAMD_ANY_VIEWER || viewer == 0 || viewer == geteuid() || viewer == owner;
}

void vramd_job_json(vramd *d, const vramd_job *j, vram__json *o)
{
    const vram__job *r = &j->row;
    /* Another user's job is shown as a summary: its state, size, name and
     * model, never its command or where its log is (see the top of the
     * file: d->viewer_uid is whose eyes this is for). */
    bool whole = vramd_viewer_sees(d->viewer_uid, r->owner_uid);
    const char *command = whole ? job_command_text(j) : VRAMD_HIDDEN_COMMAND;
    bool ran = r->state != VRAM__JOB_QUEUED && r->started_ms;
    vram__json_object_begin(o);
    vram__json_field_uint(o, "id", r->id);
    vram__json_field_string(o, "name", r->name);
    vram__json_field_string(o, "state", vram__job_state_name(r->state));
    vram__json_field_string(o, "user", vramd_user_name(r->owner_uid));
    vram__json_field_uint(o, "uid", r->owner_uid);
    vram__json_field_string(o, "command", command);
    vram__json_field_string(o, "model", r->model);
    vram__json_key(o, "tier");
    if (*j->tier)
        vram__json_string(o, j->tier);
    else
        vram__json_null(o);
    opt_uint(o, "estimate_bytes", j->estimate_bytes, j->estimate_bytes != 0);
    opt_uint(o, "used_bytes", j->used_bytes, r->state == VRAM__JOB_RUNNING);
    opt_uint(o, "peak_bytes", r->peak_bytes, r->peak_bytes != 0);
    opt_uint(o, "over_bytes", j->over_bytes, j->over_bytes != 0);
    if (j->shim_ms && r->state == VRAM__JOB_RUNNING)
        vram__json_field_string(o, "counted_by", "shim");
    vram__json_key(o, "progress");
    if (r->state == VRAM__JOB_SUCCEEDED)
        vram__json_double(o, 1.0);
    else if (r->state == VRAM__JOB_RUNNING && j->progress >= 0)
        vram__json_double(o, j->progress);
    else
        vram__json_null(o);
    vram__json_key(o, "device");
    if (r->device >= 0)
        vram__json_int(o, r->device);
    else
        vram__json_null(o);
    opt_uint(o, "attempt", j->rung ? j->rung : r->attempts, r->attempts != 0);
    vram__json_field_int(o, "priority", r->priority);
    opt_uint(o, "submitted_unix_ms", r->submitted_ms, true);
    opt_uint(o, "started_unix_ms", r->started_ms, ran);
    opt_uint(o, "ended_unix_ms", r->ended_ms, vramd_state_final(r->state) && r->ended_ms);
    vram__json_key(o, "outcome");
    if (*r->outcome)
        vram__json_string(o, r->outcome);
    else
        vram__json_null(o);
    vram__json_key(o, "exit_status");
    if (vramd_state_final(r->state) && *r->outcome)
        vram__json_int(o, r->exit_status);
    else
        vram__json_null(o);
    vram__json_key(o, "reason");
    char waits[160], ended[160];
    const char *why = *j->reason ? j->reason : *r->note ? r->note : end_reason(r, ended, sizeof(ended));
    const char *slurm = j->ticket ? __atomic_load_n(&j->wait_why, __ATOMIC_ACQUIRE) : NULL;
    if (!*why && r->state == VRAM__JOB_QUEUED && slurm) {
        char need[32];
        vram_size_format(j->estimate_bytes, need, sizeof(need));
        if (!strcmp(slurm, "Priority"))
            snprintf(waits, sizeof(waits), "Priority: a job ahead of it comes first (it needs %s of "
                     "GPU memory)", need);
        else if (!strcmp(slurm, "Lease"))
            snprintf(waits, sizeof(waits), "Lease: waiting for %s of GPU memory that leases hold", need);
        else
            snprintf(waits, sizeof(waits), "%s: waiting for %s of GPU memory", slurm, need);
        why = waits;
    }
    if (*why)
        vram__json_string(o, why);
    else
        vram__json_null(o);
    vram__json_key(o, "log");
    char log[4300];
    if (whole && vramd_job_log_path(d, j, log, sizeof(log)) == 0)
        vram__json_string(o, log);
    else
        vram__json_null(o);
    vram__json_object_end(o);
}

/* {"event":"job","job":JOB} as viewer sees it, one line. */
static void event_line(vramd *d, vramd_job *j, uint32_t viewer, vram__buf *b)
{
    vram__json o;
    vram__buf_init(b);
    vram__json_init(&o, b);
    vram__json_object_begin(&o);
    vram__json_field_string(&o, "event", "job");
    vram__json_key(&o, "job");
    pthread_mutex_lock(&d->lock);
    uint32_t was = d->viewer_uid;
    d->viewer_uid = viewer;
    vramd_job_json(d, j, &o);
    d->viewer_uid = was;
    pthread_mutex_unlock(&d->lock);
    vram__json_object_end(&o);
    vram__buf_put(b, "\n", 1);
}

/* Subscribers who may see the job get it whole, the others its summary
 * (conns.c chooses, by each one's SO_PEERCRED uid). */
void vramd_job_announce(vramd *d, vramd_job *j)
{
    unsigned who = vramd_subscribers(d, j->row.owner_uid);
    if (!who)
        return;
    vram__buf whole, summary;
    vram__buf_init(&whole);
    vram__buf_init(&summary);
    if (who & 1)
        event_line(d, j, VRAMD_ANY_VIEWER, &whole);
    if (who & 2)
        event_line(d, j, VRAMD_NO_VIEWER, &summary);
    if (!whole.failed && !summary.failed)
        vramd_broadcast(d, who & 1 ? whole.data : summary.data, who & 2 ? summary.data : NULL,
                        j->row.owner_uid);
    vram__buf_free(&whole);
    vram__buf_free(&summary);
}


/* A job's part of the sums: its bytes while it runs with a shim's count,
 * its overage until it is forgotten.  Kept as they change (jobs.c), not
 * summed over every job: a /metrics scrape costs the same at 100,000 jobs
 * as at 10.  Unsigned arithmetic wraps, so out-then-in is exact. */
void vramd_job_usage_count(vramd *d, const vramd_job *j, bool in)
{
    if (j->forgotten)
        return;
    uint64_t used = j->shim_ms && j->row.state == VRAM__JOB_RUNNING ? j->used_bytes : 0;
    d->shim_used += in ? used : -used;
    d->over_total += in ? j->over_bytes : -j->over_bytes;
}

void vramd_jobs_shim(vramd *d, uint64_t *used, uint64_t *over)
{
    *used = d->shim_used;
    *over = d->over_total;
}

/* Kept as jobs move (jobs.c), not counted: a list costs the same with
 * 100,000 jobs queued as with none. */
void vramd_jobs_counts(vramd *d, uint64_t counts[VRAM__JOB_STATE_COUNT])
{
    memcpy(counts, d->counts, VRAM__JOB_STATE_COUNT * sizeof(counts[0]));
}

void vramd_jobs_ended(vramd *d, uint64_t ended[VRAM__JOB_STATE_COUNT])
{
    memcpy(ended, d->ended, VRAM__JOB_STATE_COUNT * sizeof(ended[0]));
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = (*(vramd_job *const *)a)->row.id, y = (*(vramd_job *const *)b)->row.id;
    return x < y ? -1 : x > y;
}

typedef struct page {
    vramd *d;
    vram__json *out;
    uint64_t n, limit;
    int phase;                      /* of the last job given */
    uint64_t id;
} page;

static void give(page *p, const vramd_job *j, int phase)
{
    vramd_job_json(p->d, j, p->out);
    p->n++;
    p->phase = phase;
    p->id = j->row.id;
}

/* Running or starting jobs with ids above `from`: they are all in d->live
 * (what each loop round looks at), a few, not the queue. */
static void give_live(page *p, int state, int phase, uint64_t from)
{
    vramd *d = p->d;
    vramd_job **pick = malloc((d->nlive ? d->nlive : 1) * sizeof(*pick));
    size_t k = 0;
    for (size_t i = 0; pick && i < d->nlive; i++)
        if (d->live[i]->row.state == state && d->live[i]->row.id > from)
            pick[k++] = d->live[i];
    qsort(pick, k, sizeof(*pick), by_id);
    for (size_t i = 0; i < k && p->n < p->limit; i++)
        give(p, pick[i], phase);
    free(pick);
}

int vramd_jobs_list_json(vramd *d, int state, uint64_t limit, int after_phase, uint64_t after_id,
                         vram__json *out, char *next, size_t nextcap)
{
    page p = { d, out, 0, limit && limit < VRAMD_LIST_PAGE_MAX ? limit : VRAMD_LIST_PAGE_MAX, -1, 0 };
    if (next && nextcap)
        next[0] = '\0';
    vram__json_array_begin(out);
    for (int ph = after_phase < 0 ? 0 : after_phase; ph < VRAM__LIST_PHASES && p.n < p.limit; ph++) {
        bool here = ph == after_phase;          /* continuing this phase after after_id */
        uint64_t from = here ? after_id : 0;
        if (ph == VRAM__LIST_RUNNING || ph == VRAM__LIST_STARTING) {
            int want = ph == VRAM__LIST_RUNNING ? VRAM__JOB_RUNNING : VRAM__JOB_STARTING;
            if (state < 0 || state == want)
                give_live(&p, want, ph, from);
        } else if (ph == VRAM__LIST_QUEUED) {
            if (state >= 0 && state != VRAM__JOB_QUEUED)
                continue;
            size_t first = vramd_jobs_lower_bound(d->jobs, d->njobs, from + 1);
            for (size_t i = first; i < d->njobs && p.n < p.limit; i++)
                if (d->jobs[i]->row.state == VRAM__JOB_QUEUED)
                    give(&p, d->jobs[i], ph);
        } else {
            if (state >= 0 && !vramd_state_final(state))
                continue;
            /* The finished ones kept, newest first: d->done, not the queue. */
            size_t end = here ? vramd_jobs_lower_bound(d->done, d->finished_kept, from) : d->finished_kept;
            for (size_t i = end; i-- > 0 && p.n < p.limit;)
                if (state < 0 || state == d->done[i]->row.state)
                    give(&p, d->done[i], ph);
        }
    }
    vram__json_array_end(out);
    if (p.n == p.limit && next && nextcap)
        vram__list_cursor_format(next, nextcap, p.phase, p.id);
    return 0;
}
