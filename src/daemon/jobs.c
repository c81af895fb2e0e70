/*
 * daemon/jobs.c - vramd's jobs from submit to end, and after a crash.
 *
 * A queued job waits for its lease in the one ledger (an async request); when
 * granted, the job moves queued -> starting in the database and a runner
 * (`vram run --daemon-job N ...`) is forked into a session of its own, held
 * at a gate until that move is on disk.  The runner claims its job over the
 * socket (starting -> running), asks for another budget after an
 * out-of-memory (job-rung), names the job's process group (owner) and says
 * when it ended; with no daemon to tell, it writes the end to the database
 * itself.  On start, the daemon rebuilds its jobs from the database: what
 * never started is queued again, what still runs is adopted, and a job whose
 * runner died is followed to its end (its processes live on) or queued again
 * (they are gone), never run twice.
 *
 * A full disk: a move that starts work must be on disk first (a job waits
 * until there is room); one that ends work or gives it back is applied at
 * once and written when there is room, so a full disk stops nothing that
 * runs and frees every lease.  Until it is written, a vramd killed would
 * find such a job as it was on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/ctx.h"
#include "daemon/daemon.h"
#include "monitor/monitor.h"

#define USAGE_EVERY_MS 1000
#define SAVE_AGAIN_MS 1000          /* unsaved moves and waiting starts, on a full disk */

static bool is_final(int state)
{
    return state == VRAM__JOB_SUCCEEDED || state == VRAM__JOB_FAILED || state == VRAM__JOB_CANCELED;
}

/* ---- the table (ids ascending) ------------------------------------------------- */

vramd_job *vramd_job_find(vramd *d, uint64_t id)
{
    size_t lo = 0, hi = d->njobs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (d->jobs[mid]->row.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < d->njobs && d->jobs[lo]->row.id == id ? d->jobs[lo] : NULL;
}

static void job_free(vramd_job *j)
{
    if (j) {
        free(j->command);
        free(j->unsaved);
        vram__job_clear(&j->row);
        free(j);
    }
}

/* Adds j (its id larger than any there) under d->lock. */
static int table_add(vramd *d, vramd_job *j)
{
    if (d->njobs == d->cap_jobs) {
        size_t cap = d->cap_jobs ? d->cap_jobs * 2 : 256;
        vramd_job **p = realloc(d->jobs, cap * sizeof(*p));
        if (!p)
            return vram__fail(VRAM_ENOMEM, "out of host memory for jobs");
        d->jobs = p;
        d->cap_jobs = cap;
    }
    d->jobs[d->njobs++] = j;
    return 0;
}

/* Forgets the oldest finished jobs past the number kept (under d->lock). */
static void table_trim(vramd *d)
{
    if (d->finished_kept <= VRAMD_MAX_FINISHED)
        return;
    size_t out = 0;
    size_t drop = d->finished_kept - VRAMD_MAX_FINISHED;
    for (size_t i = 0; i < d->njobs; i++) {
        vramd_job *j = d->jobs[i];
        if (drop && is_final(j->row.state) && !j->unsaved) {   /* kept until on disk */
            job_free(j);
            drop--;
            d->finished_kept--;
            continue;
        }
        d->jobs[out++] = j;
    }
    d->njobs = out;
}

/* A job's new state in memory (under d->lock), with what it means. */
static void set_state(vramd *d, vramd_job *j, int state)
{
    if (!is_final(j->row.state) && is_final(state))
        d->finished_kept++;
    else if (is_final(j->row.state) && !is_final(state))
        d->finished_kept--;
    j->row.state = state;
    vramd_changed(d);
}

/* Re-reads a job's row after someone else (its runner) moved it. */
static void reload(vramd *d, vramd_job *j)
{
    vram__job fresh;
    if (j->unsaved || vram__queue_get(d->queue, j->row.id, &fresh))   /* memory is newer */
        return;
    pthread_mutex_lock(&d->lock);
    int state = fresh.state, was = j->row.state;
    vram__job_clear(&j->row);
    j->row = fresh;
    j->row.state = was;             /* so that set_state counts a move, not a second end */
    set_state(d, j, state);
    pthread_mutex_unlock(&d->lock);
}

/* ---- telling people ---------------------------------------------------------------- */

static void job_command(const vramd_job *j, char *buf, size_t cap);

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

void vramd_job_json(vramd *d, const vramd_job *j, vram__json *o)
{
    const vram__job *r = &j->row;
    const char *command = job_command_text(j);
    bool ran = r->state != VRAM__JOB_QUEUED && r->started_ms;
    vram__json_object_begin(o);
    vram__json_field_uint(o, "id", r->id);
    vram__json_field_string(o, "name", r->name);
    vram__json_field_string(o, "state", vram__job_state_name(r->state));
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
    opt_uint(o, "ended_unix_ms", r->ended_ms, is_final(r->state) && r->ended_ms);
    vram__json_key(o, "outcome");
    if (*r->outcome)
        vram__json_string(o, r->outcome);
    else
        vram__json_null(o);
    vram__json_key(o, "exit_status");
    if (is_final(r->state) && *r->outcome)
        vram__json_int(o, r->exit_status);
    else
        vram__json_null(o);
    vram__json_key(o, "reason");
    const char *why = *j->reason ? j->reason : r->note;
    if (*why)
        vram__json_string(o, why);
    else
        vram__json_null(o);
    vram__json_key(o, "log");
    char log[4200];
    snprintf(log, sizeof(log), "%s.logs/%llu.log", d->db_path, (unsigned long long)r->id);
    vram__json_string(o, log);
    vram__json_object_end(o);
}

/* Tells subscribers (vram wait, the dashboard) that a job changed. */
static void announce(vramd *d, vramd_job *j)
{
    vram__buf b;
    vram__json o;
    vram__buf_init(&b);
    vram__json_init(&o, &b);
    vram__json_object_begin(&o);
    vram__json_field_string(&o, "event", "job");
    vram__json_key(&o, "job");
    pthread_mutex_lock(&d->lock);
    vramd_job_json(d, j, &o);
    pthread_mutex_unlock(&d->lock);
    vram__json_object_end(&o);
    vram__buf_put(&b, "\n", 1);
    if (!b.failed)
        vramd_broadcast(d, b.data);
    vram__buf_free(&b);
}

/* ---- sizing -------------------------------------------------------------------------- */

/* The job's settings object as "key=value" strings. */
static int settings_of(const vramd_job *j, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    vram__json_doc *doc;
    char err[128];
    if (vram__json_read(j->row.settings_json, strlen(j->row.settings_json), 0, &doc, err, sizeof(err)))
        return vram__fail(VRAM_EPARSE, "job %llu's settings: %s", (unsigned long long)j->row.id, err);
    const vram__jv *o = vram__json_root(doc);
    char **list = calloc(o->n + 1, sizeof(*list));
    for (size_t i = 0; list && i < o->n; i++) {
        size_t len = strlen(o->keys[i]) + strlen(o->items[i]->str) + 2;
        if ((list[i] = malloc(len)))
            snprintf(list[i], len, "%s=%s", o->keys[i], o->items[i]->str);
    }
    *n = list ? o->n : 0;
    *out = list;
    vram__json_doc_free(doc);
    return list ? 0 : vram__fail(VRAM_ENOMEM, "out of host memory");
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

/* The most any device can ever admit: what a job waits for at most. */
static uint64_t largest_capacity(vramd *d, unsigned *device)
{
    unsigned n = 0;
    uint64_t best = 0;
    vram_device_count(d->ctx, &n);
    for (unsigned i = 0; i < n; i++) {
        vram_ledger_device info;
        if (!vram_ledger_device_info(d->ledger, i, &info) && info.capacity_bytes > best) {
            best = info.capacity_bytes;
            if (device)
                *device = i;
        }
    }
    return best;
}

/* A job that asks for a device there is not, or for more than its device
 * (or the largest) can ever give, is refused at submit, not left waiting. */
static int check_fits(vramd *d, const vramd_job *j, uint64_t largest)
{
    int dev = j->row.device_pref;
    vram_ledger_device info;
    if (dev >= 0 && vram_ledger_device_info(d->ledger, (unsigned)dev, &info)) {
        unsigned n = 0;
        vram_device_count(d->ctx, &n);
        return vram__fail(VRAM_ENODEV, "no device %d: there %s %u (0 to %u)", dev, n == 1 ? "is" : "are", n,
                          n ? n - 1 : 0);
    }
    uint64_t cap = dev >= 0 ? info.capacity_bytes : largest;
    if (j->estimate_bytes <= cap)
        return 0;
    char need[32], can[32], which[32] = "the largest device";
    vram_size_format(j->estimate_bytes, need, sizeof(need));
    vram_size_format(cap, can, sizeof(can));
    if (dev >= 0)
        snprintf(which, sizeof(which), "GPU %d", dev);
    return vram__fail(VRAM_ENOFIT, "the job needs %s; %s can give %s (its total less the safety margin)",
                      need, which, can);
}

int vramd_job_estimate(vramd *d, vramd_job *j)
{
    if (j->row.vram_bytes) {
        j->estimate_bytes = j->row.vram_bytes;
        return 0;
    }
    vram_profile *p;
    int rc = vram_profile_load(vram_ctx_options(d->ctx), j->row.model, &p);
    if (rc)
        return rc;
    char **settings;
    size_t n;
    if ((rc = settings_of(j, &settings, &n))) {
        vram_profile_free(p);
        return rc;
    }
    /* Planned for the largest device's whole capacity: a job waits for room,
     * it does not shrink to what happens to be free now. */
    unsigned dev = 0;
    uint64_t budget = largest_capacity(d, &dev);
    vram_plan *plan;
    rc = vram_plan_make(d->ctx, p, (const char *const *)settings, n, budget, dev, &plan);
    if (!rc) {
        vram_estimate e;
        rc = vram_plan_estimate(plan, &e);
        j->estimate_bytes = e.peak_bytes;
        vram__strlcpy(j->tier, vram_plan_tier(plan), sizeof(j->tier));
        vram_plan_free(plan);
    }
    free_list(settings, n);
    vram_profile_free(p);
    return rc;
}

/* ---- admission ---------------------------------------------------------------------------- */

static void holder_of(uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "job %llu", (unsigned long long)id);
}

/* Asks the ledger for the job's memory; the answer comes as a message. */
static int request_lease(vramd *d, vramd_job *j, uint64_t bytes, int device)
{
    char holder[64];
    holder_of(j->row.id, holder, sizeof(holder));
    vramd_grant *g = vramd_grant_new(d, VRAMD_MSG_JOB_GRANT, j->row.id);
    if (!g)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    vram_lease_request q = {
        .bytes = bytes,
        .device = device,
        .priority = j->row.priority,
        .wait_ms = VRAM_WAIT_FOREVER,
        .holder = holder,
        .task_class = *j->row.model ? j->row.model : NULL,
    };
    int rc = vram_lease_acquire_async(d->ledger, &q, vramd_on_grant, g, &j->ticket);
    if (rc)
        free(g);
    return rc;
}

/* Whether a failed write is the disk's (full, or failing), not a state
 * that moved under us. */
static bool disk_trouble(int rc)
{
    return rc == VRAM_ENOSPC || rc == VRAM_EIO;
}

/* Writes a move that ends a job or gives it back to the queue.  When the
 * disk cannot take it, the move is kept (after any kept before it: the
 * first `from` stands, the last `to` and fields win) and 0 returned, so the
 * caller applies it in memory; vramd_jobs_tick writes it later. */
static int store_end(vramd *d, vramd_job *j, int from, int to, const vram__job *f)
{
    int rc = j->unsaved ? VRAM_ENOSPC : vram__queue_move(d->queue, j->row.id, from, to, f);
    if (!disk_trouble(rc))
        return rc;
    if (!j->unsaved) {
        if (!(j->unsaved = calloc(1, sizeof(*j->unsaved))))
            return vram__fail(VRAM_ENOMEM, "out of host memory");
        if (!d->unsaved++)
            vramd_say(d, "cannot write to the queue (%s): job ends are kept in memory and "
                      "written when there is room; no job starts until then", vram_last_error());
        j->unsaved->from = from;
        d->next_save_ms = vram__now_ms() + SAVE_AGAIN_MS;
    }
    j->unsaved->fields = *f;
    j->unsaved->fields.state = to;
    vram__clear_error();
    return 0;
}

/* Tries to write a job's kept move; true when it is written (or there was none). */
static bool save_kept(vramd *d, vramd_job *j)
{
    if (!j->unsaved)
        return true;
    const vramd_unsaved *u = j->unsaved;
    int rc = vram__queue_move(d->queue, j->row.id, u->from, u->fields.state, &u->fields);
    if (disk_trouble(rc)) {
        vram__clear_error();
        return false;
    }
    if (rc)                         /* not what it was on disk: nothing we can do but say so */
        vramd_say(d, "job %llu: its kept move could not be written: %s", (unsigned long long)j->row.id,
                  vram_last_error());
    free(j->unsaved);
    j->unsaved = NULL;
    if (!--d->unsaved)
        vramd_say(d, "the queue is written again: every kept job end is on disk");
    return true;
}

/* Gives a job's memory back to the books (none held: nothing). */
static void release_lease(vramd *d, vramd_job *j)
{
    if (j->lease)
        vram_lease_release(d->ledger, j->lease);
    j->lease = 0;
}

/* Ends a job that never ran (or whose runner cannot go on) as failed, its
 * lease given back. */
static void fail_job(vramd *d, vramd_job *j, int from, const char *outcome, const char *why)
{
    release_lease(d, j);
    vram__job f = { .device = -1, .exit_status = 0 };
    vram__strlcpy(f.outcome, outcome, sizeof(f.outcome));
    vram__strlcpy(f.note, why, sizeof(f.note));
    if (store_end(d, j, from, VRAM__JOB_FAILED, &f) == 0) {
        pthread_mutex_lock(&d->lock);
        vram__strlcpy(j->row.outcome, outcome, sizeof(j->row.outcome));
        vram__strlcpy(j->row.note, why, sizeof(j->row.note));
        j->row.ended_ms = vram__unix_ms();
        set_state(d, j, VRAM__JOB_FAILED);
        pthread_mutex_unlock(&d->lock);
        vramd_say(d, "job %llu failed: %s", (unsigned long long)j->row.id, why);
        announce(d, j);
    }
}

/* Queues a job for admission: sized, then asked for. */
static void enqueue(vramd *d, vramd_job *j)
{
    int rc = j->estimate_bytes ? 0 : vramd_job_estimate(d, j);
    if (!rc)
        rc = request_lease(d, j, j->estimate_bytes, j->row.device_pref);
    if (rc) {
        char why[256];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        fail_job(d, j, VRAM__JOB_QUEUED, "not-started", why);
        return;
    }
    pthread_mutex_lock(&d->lock);
    char need[32];
    vram_size_format(j->estimate_bytes, need, sizeof(need));
    snprintf(j->reason, sizeof(j->reason), "waiting for %s of GPU memory", need);
    vramd_changed(d);
    pthread_mutex_unlock(&d->lock);
}

/* ---- runners -------------------------------------------------------------------------------- */

typedef struct strv {
    char **v;
    size_t n, cap;
} strv;

static void strv_add(strv *s, const char *text)
{
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **p = realloc(s->v, cap * sizeof(*p));
        if (!p)
            return;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n] = strdup(text);
    if (s->v[s->n])
        s->n++;
    s->v[s->n] = NULL;
}

static void strv_free(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

/* The settings the runner must see the same devices with. */
static void device_flags(vramd *d, strv *a)
{
    static const char *const names[] = { "backend", "sim", "sim-state", "margin", "interval",
                                         "nvml-library", "profiles" };
    const vram_options *o = vram_ctx_options(d->ctx);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = vram_options_get(o, names[i]);
        if (!v || !*v)
            continue;
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", names[i]);
        strv_add(a, flag);
        strv_add(a, !strcmp(names[i], "backend") ? vram_ctx_backend(d->ctx) : v);
    }
}

/* `vram run --daemon-job N ... -- COMMAND` */
static int runner_argv(vramd *d, const vramd_job *j, const vram_lease_info *lease, strv *a)
{
    char num[32];
    strv_add(a, d->runner_path);
    strv_add(a, "run");
    strv_add(a, "--daemon-job");
    snprintf(num, sizeof(num), "%llu", (unsigned long long)j->row.id);
    strv_add(a, num);
    strv_add(a, "--vram");
    snprintf(num, sizeof(num), "%llu", (unsigned long long)lease->bytes);
    strv_add(a, num);
    strv_add(a, "--socket");
    strv_add(a, d->socket_path);
    strv_add(a, "--db");
    strv_add(a, d->db_path);
    if (*d->history_path) {
        strv_add(a, "--history");
        strv_add(a, d->history_path);
    }
    if (*j->row.model) {
        strv_add(a, "--model");
        strv_add(a, j->row.model);
    }
    if (*j->row.ladder) {
        strv_add(a, "--ladder");
        strv_add(a, j->row.ladder);
    }
    if (*j->row.name) {
        strv_add(a, "--name");
        strv_add(a, j->row.name);
    }
    device_flags(d, a);
    char **settings;
    size_t n;
    if (!settings_of(j, &settings, &n)) {
        for (size_t i = 0; i < n; i++) {
            strv_add(a, "--set");
            strv_add(a, settings[i]);
        }
        free_list(settings, n);
    }
    strv_add(a, "--");
    vram__json_doc *doc;
    char err[128];
    if (vram__json_read(j->row.argv_json, strlen(j->row.argv_json), 0, &doc, err, sizeof(err)))
        return vram__fail(VRAM_EPARSE, "job %llu's command: %s", (unsigned long long)j->row.id, err);
    const vram__jv *arr = vram__json_root(doc);
    for (size_t i = 0; arr->kind == VRAM__JV_ARRAY && i < arr->n; i++)
        strv_add(a, vram__jv_str(arr->items[i]));
    vram__json_doc_free(doc);
    return 0;
}

/* The job's environment, as it was when it was submitted. */
static void runner_env(const vramd_job *j, strv *e)
{
    extern char **environ;
    vram__json_doc *doc;
    char err[64];
    if (vram__json_read(j->row.env_json, strlen(j->row.env_json), 0, &doc, err, sizeof(err)))
        return;
    const vram__jv *o = vram__json_root(doc);
    /* No environment of its own (a submit's "enforce" alone makes none):
     * the daemon's. */
    if (o->kind == VRAM__JV_OBJECT &&
        (o->n == 0 || (o->n == 1 && !strcmp(o->keys[0], "VRAM_ENFORCE")))) {
        for (char **v = environ; *v; v++)
            strv_add(e, *v);
    }
    for (size_t i = 0; o->kind == VRAM__JV_OBJECT && i < o->n; i++) {
        size_t len = strlen(o->keys[i]) + o->items[i]->len + 2;
        char *kv = malloc(len);
        if (kv) {
            snprintf(kv, len, "%s=%s", o->keys[i], o->items[i]->str);
            strv_add(e, kv);
            free(kv);
        }
    }
    vram__json_doc_free(doc);
}

/* In the forked runner: a session of its own, the job's folder and log,
 * then wait at the gate until the daemon has recorded the start.  The
 * daemon's descriptors go first: a runner waiting at the gate must not keep
 * the daemon's socket listening after the daemon is gone (a client would
 * connect to it and never hear back). */
static void runner_child(const char *cwd, const char *log, int gate, char **argv, char **envp)
{
    setsid();
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
        dup2(null, STDIN_FILENO);
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (out >= 0) {
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
    }
    if (gate > STDERR_FILENO + 1)
        close_range(STDERR_FILENO + 1, (unsigned)gate - 1, 0);
    close_range((unsigned)gate + 1, ~0U, 0);
    char go = 0;
    if (read(gate, &go, 1) != 1 || go != 'g')
        _exit(0);                   /* the daemon did not record the start */
    if (chdir(cwd) != 0) {
        dprintf(STDERR_FILENO, "vramd: cannot enter %s: %s\n", cwd, strerror(errno));
        _exit(126);
    }
    signal(SIGPIPE, SIG_DFL);
    execve(argv[0], argv, envp);
    dprintf(STDERR_FILENO, "vramd: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static void log_path(vramd *d, uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.logs/%llu.log", d->db_path, (unsigned long long)id);
}

/* Starts the job's runner on its granted lease. */
static int start_runner(vramd *d, vramd_job *j, const vram_lease_info *lease)
{
    strv argv = { 0 }, envp = { 0 };
    int rc = runner_argv(d, j, lease, &argv);
    if (rc) {
        strv_free(&argv);
        return rc;
    }
    runner_env(j, &envp);
    char log[4300];
    log_path(d, j->row.id, log, sizeof(log));
    vram__make_parent_dirs(log);
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) != 0) {
        strv_free(&argv);
        strv_free(&envp);
        return vram__fail(VRAM_EIO, "cannot make a pipe: %s", strerror(errno));
    }
    pid_t pid = vram__fork_clean();
    if (pid == 0) {
        close(gate[1]);
        runner_child(j->row.cwd, log, gate[0], argv.v, envp.v);
    }
    close(gate[0]);
    strv_free(&argv);
    strv_free(&envp);
    if (pid < 0) {
        close(gate[1]);
        return vram__fail(VRAM_EAGAIN, "cannot start a runner: %s", strerror(errno));
    }
    vram__job f = { .device = (int)lease->device, .lease_bytes = lease->bytes,
                    .runner_pid = (uint32_t)pid, .runner_start = vram__proc_start_ticks((uint32_t)pid) };
    rc = save_kept(d, j) ? vram__queue_move(d->queue, j->row.id, VRAM__JOB_QUEUED, VRAM__JOB_STARTING, &f)
                         : vram__fail(VRAM_ENOSPC, "job %llu's last move is not on disk yet",
                                      (unsigned long long)j->row.id);
    char go = rc ? 'x' : 'g';
    if (write(gate[1], &go, 1) != 1 && !rc)
        rc = vram__fail(VRAM_EIO, "cannot release the runner of job %llu", (unsigned long long)j->row.id);
    close(gate[1]);
    if (rc) {
        waitpid(pid, NULL, 0);
        return rc;
    }
    double waited = (double)(vram__unix_ms() - j->row.submitted_ms) / 1000.0;
    pthread_mutex_lock(&d->lock);
    j->runner = pid;
    j->lease = lease->id;
    j->row.device = (int)lease->device;
    j->row.lease_bytes = lease->bytes;
    j->row.runner_pid = f.runner_pid;
    j->row.runner_start = f.runner_start;
    j->row.started_ms = vram__unix_ms();
    j->row.attempts++;
    j->claim_by_ms = vram__now_ms() + VRAMD_CLAIM_GRACE_MS;
    j->reason[0] = '\0';
    vram__wait_histogram_add(&d->waits, waited);
    set_state(d, j, VRAM__JOB_STARTING);
    pthread_mutex_unlock(&d->lock);
    vram_lease_set_owner(d->ledger, lease->id, (uint32_t)pid, 0);
    vramd_say(d, "job %llu starting on GPU %u with %.1f GiB after %.1f s in the queue",
              (unsigned long long)j->row.id, lease->device, (double)lease->bytes / 1073741824.0, waited);
    announce(d, j);
    return 0;
}

/* A lease was granted (or refused) for a job: start it, or answer its
 * runner's request for another rung. */
void vramd_job_granted(vramd *d, const vramd_msg *m)
{
    vramd_job *j = vramd_job_find(d, m->key);
    bool waiting_rung = j && j->row.state == VRAM__JOB_RUNNING && j->rung_conn;
    if (j)
        j->ticket = 0;
    if (!j || (j->row.state != VRAM__JOB_QUEUED && !waiting_rung)) {
        if (m->status == 0)
            vram_lease_release(d->ledger, m->lease.id);
        return;
    }
    if (waiting_rung) {
        vramd_conn *c = vramd_conn_find(d, j->rung_conn);
        j->rung_conn = 0;
        vram__buf b;
        vram__buf_init(&b);
        if (m->status) {
            vram__reply_error(&b, j->rung_request_id, m->status, "no budget for the next rung");
        } else {
            j->lease = m->lease.id;
            vram_lease_set_owner(d->ledger, j->lease, j->row.runner_pid, j->row.job_pgid);
            pthread_mutex_lock(&d->lock);   /* the queue shows the rung's budget from now on */
            j->estimate_bytes = m->lease.bytes;
            j->row.lease_bytes = m->lease.bytes;
            j->row.device = (int)m->lease.device;
            vramd_changed(d);
            pthread_mutex_unlock(&d->lock);
            vram__json o;
            vram__request req = { 0 };
            vram__strlcpy(req.id, j->rung_request_id, sizeof(req.id));
            vram__reply_begin(&b, &req, &o);
            vram__json_field_uint(&o, "lease", m->lease.id);
            vram__json_field_uint(&o, "device", m->lease.device);
            vram__json_field_uint(&o, "bytes", m->lease.bytes);
            vram__reply_end(&o);
        }
        if (c && !b.failed)
            vramd_conn_reply(d, c, b.data);
        else if (!m->status)
            release_lease(d, j);
        vram__buf_free(&b);
        return;
    }
    if (m->status) {
        if (m->status != VRAM_ECANCELED)
            fail_job(d, j, VRAM__JOB_QUEUED, "not-started", vram_strerror(m->status));
        return;
    }
    int rc = start_runner(d, j, &m->lease);
    if (rc) {
        char why[256];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        vram_lease_release(d->ledger, m->lease.id);
        if (disk_trouble(rc)) {     /* a start must be on disk: wait for room */
            pthread_mutex_lock(&d->lock);
            snprintf(j->reason, sizeof(j->reason), "waiting for room on the queue's disk: %.120s", why);
            j->start_again_ms = vram__now_ms() + SAVE_AGAIN_MS;
            vramd_changed(d);
            pthread_mutex_unlock(&d->lock);
        } else if (rc != VRAM_EAGAIN) {
            fail_job(d, j, VRAM__JOB_QUEUED, "not-started", why);
        } else {
            enqueue(d, j);
        }
    }
}

/* ---- what runners say ------------------------------------------------------------------------ */

int vramd_job_claim(vramd *d, uint64_t id, uint32_t pid, vram_lease_info *out)
{
    vramd_job *j = vramd_job_find(d, id);
    if (!j)
        return vram__fail(VRAM_ENOENT, "no job %llu", (unsigned long long)id);
    if (j->row.state != VRAM__JOB_STARTING)
        return vram__fail(VRAM_EAGAIN, "job %llu is %s, not starting: it is not yours to run",
                          (unsigned long long)id, vram__job_state_name(j->row.state));
    if (j->row.runner_pid && j->row.runner_pid != pid)
        return vram__fail(VRAM_EPERM, "job %llu was given to runner %u, not %u", (unsigned long long)id,
                          j->row.runner_pid, pid);
    vram__job f = { .device = -1, .runner_pid = pid, .runner_start = vram__proc_start_ticks(pid) };
    int rc = vram__queue_move(d->queue, id, VRAM__JOB_STARTING, VRAM__JOB_RUNNING, &f);
    if (rc)
        return rc;
    pthread_mutex_lock(&d->lock);
    j->row.runner_pid = pid;
    j->row.runner_start = f.runner_start;
    j->progress = -1;
    set_state(d, j, VRAM__JOB_RUNNING);
    pthread_mutex_unlock(&d->lock);
    memset(out, 0, sizeof(*out));
    out->id = j->lease;
    out->device = j->row.device >= 0 ? (unsigned)j->row.device : 0;
    out->bytes = j->row.lease_bytes;
    announce(d, j);
    return 0;
}

int vramd_job_rung(vramd *d, vramd_conn *c, const vram__request *req)
{
    vramd_job *j = vramd_job_find(d, req->job);
    if (!j || j->row.state != VRAM__JOB_RUNNING)
        return vram__fail(VRAM_EAGAIN, "job %llu is not running", (unsigned long long)req->job);
    if (j->rung_conn)
        return vram__fail(VRAM_EBUSY, "job %llu is already waiting for a rung", (unsigned long long)req->job);
    release_lease(d, j);
    pthread_mutex_lock(&d->lock);
    j->rung = (j->rung ? j->rung : 1) + 1;    /* the attempt the runner goes on to */
    d->oom_retries++;
    char need[32];
    vram_size_format(req->bytes, need, sizeof(need));
    vramd_event_add(d, "oom_retry", j->row.id, j->row.device,
                    "job %llu ran out of GPU memory; retrying on a cheaper rung with %s",
                    (unsigned long long)j->row.id, need);
    pthread_mutex_unlock(&d->lock);
    j->rung_conn = c->id;
    vram__strlcpy(j->rung_request_id, req->id, sizeof(j->rung_request_id));
    int rc = request_lease(d, j, req->bytes, req->device);
    if (rc)
        j->rung_conn = 0;
    return rc;
}

int vramd_job_owner(vramd *d, uint64_t id, uint32_t pgid)
{
    vramd_job *j = vramd_job_find(d, id);
    if (!j || j->row.state != VRAM__JOB_RUNNING)
        return vram__fail(VRAM_EAGAIN, "job %llu is not running", (unsigned long long)id);
    vram__job f = { .device = -1, .job_pgid = pgid };
    vram__queue_update(d->queue, id, VRAM__JOB_RUNNING, &f);
    j->row.job_pgid = pgid;
    if (j->lease)
        vram_lease_set_owner(d->ledger, j->lease, j->row.runner_pid, pgid);
    return 0;
}

int vramd_job_progress(vramd *d, uint64_t id, double progress, bool usage, uint64_t used, uint64_t over)
{
    vramd_job *j = vramd_job_find(d, id);
    if (!j || j->row.state != VRAM__JOB_RUNNING)
        return vram__fail(VRAM_EAGAIN, "job %llu is not running", (unsigned long long)id);
    pthread_mutex_lock(&d->lock);
    if (progress >= 0)
        j->progress = progress;
    if (usage) {
        j->shim_ms = vram__now_ms();
        j->used_bytes = used;
        if (used > j->row.peak_bytes)
            j->row.peak_bytes = used;
        if (over > j->over_bytes)
            j->over_bytes = over;
    }
    vramd_changed(d);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static int final_state_of(const char *outcome)
{
    return !strcmp(outcome, "ok") ? VRAM__JOB_SUCCEEDED
         : !strcmp(outcome, "canceled") ? VRAM__JOB_CANCELED : VRAM__JOB_FAILED;
}

int vramd_job_ended(vramd *d, uint64_t id, int exit_status, const char *outcome, uint64_t peak)
{
    vramd_job *j = vramd_job_find(d, id);
    if (!j)
        return vram__fail(VRAM_ENOENT, "no job %llu", (unsigned long long)id);
    if (is_final(j->row.state))
        return 0;                   /* told again: by a runner whose daemon died before answering */
    int to = final_state_of(outcome);
    vram__job f = { .device = -1, .exit_status = exit_status, .peak_bytes = peak };
    vram__strlcpy(f.outcome, outcome, sizeof(f.outcome));
    int rc = store_end(d, j, VRAM__JOB_RUNNING, to, &f);
    if (rc == VRAM_EAGAIN) {
        reload(d, j);               /* its runner wrote the end itself */
        rc = is_final(j->row.state) ? 0 : rc;
    } else if (!rc) {
        pthread_mutex_lock(&d->lock);
        j->row.exit_status = exit_status;
        vram__strlcpy(j->row.outcome, outcome, sizeof(j->row.outcome));
        if (peak > j->row.peak_bytes)
            j->row.peak_bytes = peak;
        j->row.ended_ms = vram__unix_ms();
        if (!strcmp(outcome, "oom"))
            vramd_event_add(d, "oom_failed", id, j->row.device,
                            "job %llu ran out of GPU memory on its last rung", (unsigned long long)id);
        set_state(d, j, to);
        pthread_mutex_unlock(&d->lock);
    }
    release_lease(d, j);
    if (!rc) {
        vramd_say(d, "job %llu %s (%s, status %d)", (unsigned long long)id,
                  vram__job_state_name(j->row.state), j->row.outcome, j->row.exit_status);
        announce(d, j);
    }
    pthread_mutex_lock(&d->lock);
    table_trim(d);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/* ---- submit, cancel ---------------------------------------------------------------------------- */

/* Sized, and on a device that can hold it: what a submit asks of a job. */
static int acceptable(vramd *d, vramd_job *j, uint64_t largest)
{
    int rc = vramd_job_estimate(d, j);
    return rc ? rc : check_fits(d, j, largest);
}

int vramd_jobs_check(vramd *d, const vram__job *row, char *err, size_t errcap)
{
    vramd_job j = { .row = *row, .progress = -1 };
    int rc = acceptable(d, &j, largest_capacity(d, NULL));
    if (rc)
        vram__strlcpy(err, vram_last_error(), errcap);
    return rc;
}

int vramd_jobs_submit(vramd *d, vram__job *rows, size_t n, char *err, size_t errcap)
{
    vramd_job **made = calloc(n ? n : 1, sizeof(*made));
    if (!made)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    int rc = 0;
    /* Sized before anything is stored: a job no device can ever hold is
     * refused now, with both numbers, not left waiting for ever. */
    uint64_t largest = largest_capacity(d, NULL);
    for (size_t i = 0; i < n && !rc; i++) {
        made[i] = calloc(1, sizeof(**made));
        if (!made[i]) {
            rc = vram__fail(VRAM_ENOMEM, "out of host memory");
            break;
        }
        made[i]->row = rows[i];     /* borrowed until stored */
        made[i]->progress = -1;
        rc = acceptable(d, made[i], largest);
    }
    if (!rc)
        rc = vram__queue_add(d->queue, rows, n);
    if (rc) {
        vram__strlcpy(err, vram_last_error(), errcap);
        for (size_t i = 0; i < n; i++)
            free(made[i]);
        free(made);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        vramd_job *j = made[i];
        /* Own copies of the strings from here on. */
        vram__job row = rows[i];
        row.argv_json = strdup(rows[i].argv_json ? rows[i].argv_json : "[]");
        row.env_json = strdup(rows[i].env_json ? rows[i].env_json : "{}");
        row.cwd = strdup(rows[i].cwd ? rows[i].cwd : "/");
        row.name = strdup(rows[i].name ? rows[i].name : "");
        row.model = strdup(rows[i].model ? rows[i].model : "");
        row.settings_json = strdup(rows[i].settings_json ? rows[i].settings_json : "{}");
        row.ladder = strdup(rows[i].ladder ? rows[i].ladder : "");
        j->row = row;
        pthread_mutex_lock(&d->lock);
        table_add(d, j);
        vramd_changed(d);
        pthread_mutex_unlock(&d->lock);
        enqueue(d, j);
    }
    free(made);
    return 0;
}

int vramd_job_cancel(vramd *d, uint64_t id)
{
    vramd_job *j = vramd_job_find(d, id);
    if (!j)
        return vram__fail(VRAM_ENOENT, "no job %llu (or it ended long ago)", (unsigned long long)id);
    if (is_final(j->row.state))
        return vram__fail(VRAM_EBUSY, "job %llu has already ended (%s)", (unsigned long long)id,
                          vram__job_state_name(j->row.state));
    if (j->row.state == VRAM__JOB_RUNNING || j->row.state == VRAM__JOB_STARTING) {
        /* Its runner ends the job's processes and records "canceled". */
        if (j->row.runner_pid && vram__proc_alive(j->row.runner_pid, j->row.runner_start))
            kill((pid_t)j->row.runner_pid, SIGTERM);
        if (j->row.state == VRAM__JOB_RUNNING)
            return 0;
    }
    if (j->ticket)
        vram_lease_cancel(d->ledger, j->ticket);
    j->ticket = 0;
    vram__job f = { .device = -1 };
    snprintf(f.outcome, sizeof(f.outcome), "canceled");
    snprintf(f.note, sizeof(f.note), "canceled before it ran");
    int rc = store_end(d, j, j->row.state, VRAM__JOB_CANCELED, &f);
    if (rc)
        return rc;
    release_lease(d, j);
    pthread_mutex_lock(&d->lock);
    vram__strlcpy(j->row.outcome, "canceled", sizeof(j->row.outcome));
    j->row.ended_ms = vram__unix_ms();
    j->reason[0] = '\0';
    set_state(d, j, VRAM__JOB_CANCELED);
    pthread_mutex_unlock(&d->lock);
    announce(d, j);
    return 0;
}

/* ---- runners that went away ----------------------------------------------------------------------- */

/* The runner of a starting or running job is gone without a word: follow
 * what it left running, or queue the job again if nothing of it is left. */
static void runner_lost(vramd *d, vramd_job *j)
{
    reload(d, j);
    if (is_final(j->row.state)) {
        release_lease(d, j);
        announce(d, j);
        return;
    }
    if (j->row.state == VRAM__JOB_QUEUED) {     /* it could not start it and gave it back */
        release_lease(d, j);
        vramd_say(d, "job %llu queued again by its runner: %s", (unsigned long long)j->row.id, j->row.note);
        enqueue(d, j);
        announce(d, j);
        return;
    }
    if (j->row.job_pgid && kill(-(pid_t)j->row.job_pgid, 0) == 0) {
        j->orphan = true;           /* its processes still run: never start it twice */
        vramd_say(d, "job %llu lost its runner; following its processes to their end",
                  (unsigned long long)j->row.id);
        return;
    }
    release_lease(d, j);
    int from = j->row.state;
    if (j->row.attempts >= VRAMD_MAX_ATTEMPTS) {
        fail_job(d, j, from, "lost", "its runner was lost too many times");
        return;
    }
    vram__job f = { .device = -1 };
    snprintf(f.note, sizeof(f.note), "queued again: its runner was lost before the job ran to its end");
    if (store_end(d, j, from, VRAM__JOB_QUEUED, &f) == 0) {
        pthread_mutex_lock(&d->lock);
        j->row.runner_pid = 0;
        j->row.job_pgid = 0;
        j->row.device = -1;
        vram__strlcpy(j->row.note, f.note, sizeof(j->row.note));
        set_state(d, j, VRAM__JOB_QUEUED);
        pthread_mutex_unlock(&d->lock);
        vramd_say(d, "job %llu queued again (runner lost)", (unsigned long long)j->row.id);
        enqueue(d, j);
        announce(d, j);
    }
}

void vramd_jobs_reaped(vramd *d, pid_t pid, int status)
{
    (void)status;
    for (size_t i = 0; i < d->njobs; i++) {
        vramd_job *j = d->jobs[i];
        if (j->runner != pid)
            continue;
        j->runner = 0;
        if (j->row.state == VRAM__JOB_STARTING || j->row.state == VRAM__JOB_RUNNING)
            runner_lost(d, j);
        return;
    }
}

/* An orphan's processes have all ended: what they came to is unknown. */
static void orphan_done(vramd *d, vramd_job *j)
{
    j->orphan = false;
    fail_job(d, j, VRAM__JOB_RUNNING, "lost",
             "its runner died; its processes ran to their end, but their exit status is lost");
}

/* How long a runner's report of the shim's count stands for the sample. */
#define SHIM_FRESH_MS 3000

/* Every running job's real usage (its process group's, on every device),
 * read in one pass over the devices however many jobs run. */
static void sample_usage(vramd *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->njobs; i++)
        n += d->jobs[i]->row.state == VRAM__JOB_RUNNING && d->jobs[i]->row.job_pgid;
    if (!n)
        return;
    vramd_job **jobs = malloc(n * sizeof(*jobs));
    uint32_t *pgids = malloc(n * sizeof(*pgids));
    uint64_t *used = malloc(n * sizeof(*used));
    n = 0;
    for (size_t i = 0; jobs && pgids && used && i < d->njobs; i++)
        if (d->jobs[i]->row.state == VRAM__JOB_RUNNING && d->jobs[i]->row.job_pgid) {
            jobs[n] = d->jobs[i];
            pgids[n++] = d->jobs[i]->row.job_pgid;
        }
    if (n && !vram__process_groups_usage(d->ctx, pgids, n, used)) {
        pthread_mutex_lock(&d->lock);
        uint64_t now = vram__now_ms();
        for (size_t k = 0; k < n; k++) {
            vramd_job *j = jobs[k];
            if (j->shim_ms && now - j->shim_ms < SHIM_FRESH_MS)
                continue;           /* the shim's count, sent by its runner, is exact */
            if (used[k] != j->used_bytes)
                vramd_changed(d);
            j->used_bytes = used[k];
            if (used[k] > j->row.peak_bytes)
                j->row.peak_bytes = used[k];
        }
        pthread_mutex_unlock(&d->lock);
    }
    vram__clear_error();
    free(jobs);
    free(pgids);
    free(used);
}

void vramd_jobs_tick(vramd *d)
{
    static const int states = (1 << VRAM__JOB_STARTING) | (1 << VRAM__JOB_RUNNING);
    uint64_t now = vram__now_ms();
    bool sample = now >= d->next_usage_ms;
    if (sample)
        d->next_usage_ms = now + USAGE_EVERY_MS;
    if (d->unsaved && now >= d->next_save_ms) {
        d->next_save_ms = now + SAVE_AGAIN_MS;
        for (size_t i = 0; i < d->njobs && d->unsaved; i++)
            if (!save_kept(d, d->jobs[i]))
                break;              /* still full: again later */
    }
    for (size_t i = 0; i < d->njobs; i++) {
        vramd_job *j = d->jobs[i];
        if (j->start_again_ms && now >= j->start_again_ms && j->row.state == VRAM__JOB_QUEUED && !j->ticket) {
            j->start_again_ms = 0;
            enqueue(d, j);
        }
        if (!((1 << j->row.state) & states))
            continue;
        if (j->orphan) {
            if (kill(-(pid_t)j->row.job_pgid, 0) != 0)
                orphan_done(d, j);
            continue;
        }
        bool ours = j->runner != 0;
        bool alive = ours || vram__proc_alive(j->row.runner_pid, j->row.runner_start);
        if (!alive) {
            runner_lost(d, j);
            continue;
        }
        if (j->row.state == VRAM__JOB_STARTING && j->claim_by_ms && now > j->claim_by_ms) {
            kill((pid_t)j->row.runner_pid, SIGKILL);    /* a runner that never claims is stuck */
            j->claim_by_ms = 0;
            continue;
        }
    }
    if (sample)
        sample_usage(d);
}

/* ---- recovery ---------------------------------------------------------------------------------- */

static int keep_row(void *user, const vram__job *row)
{
    vramd *d = user;
    vramd_job *j = calloc(1, sizeof(*j));
    if (!j)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    j->row = *row;
    j->progress = -1;
    j->row.argv_json = strdup(row->argv_json);
    j->row.env_json = strdup(row->env_json);
    j->row.cwd = strdup(row->cwd);
    j->row.name = strdup(row->name);
    j->row.model = strdup(row->model);
    j->row.settings_json = strdup(row->settings_json);
    j->row.ladder = strdup(row->ladder);
    if (!j->row.argv_json || !j->row.env_json || !j->row.cwd || !j->row.name || !j->row.model ||
        !j->row.settings_json || !j->row.ladder) {
        job_free(j);
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    }
    if (is_final(row->state))
        d->finished_kept++;
    return table_add(d, j);
}

/* A job found running at restart holds its memory again in the books,
 * under its old budget, so that nothing is admitted into its room. */
static void adopt_lease(vramd *d, vramd_job *j)
{
    if (j->row.device < 0 || !j->row.lease_bytes)
        return;                     /* never granted: nothing to hold */
    char holder[64];
    holder_of(j->row.id, holder, sizeof(holder));
    vram_lease_request q = {
        .bytes = j->row.lease_bytes,
        .device = j->row.device,
        .holder = holder,
        .pid = j->row.runner_pid,
        .pgid = j->row.job_pgid,
    };
    vram_lease_info lease;
    if (vram_lease_adopt(d->ledger, &q, &lease) == 0) {
        j->lease = lease.id;
        return;
    }
    vramd_say(d, "job %llu runs without its lease (%s): its memory counts as another program's",
              (unsigned long long)j->row.id, vram_last_error());
    vram__clear_error();
}

int vramd_jobs_recover(vramd *d)
{
    pthread_mutex_lock(&d->lock);
    int rc = vram__queue_each(d->queue, ~0u, keep_row, d);
    table_trim(d);
    pthread_mutex_unlock(&d->lock);
    if (rc)
        return rc;
    unsigned queued = 0, adopted = 0, lost = 0;
    for (size_t i = 0; i < d->njobs; i++) {
        vramd_job *j = d->jobs[i];
        switch (j->row.state) {
        case VRAM__JOB_QUEUED:
            enqueue(d, j);
            queued++;
            break;
        case VRAM__JOB_STARTING:
        case VRAM__JOB_RUNNING:
            if (vramd_job_estimate(d, j))
                vram__clear_error();    /* shown as unknown; the job runs anyway */
            adopt_lease(d, j);          /* runner_lost lets go of it if the job is done */
            if (vram__proc_alive(j->row.runner_pid, j->row.runner_start)) {
                j->adopted = true;
                j->claim_by_ms = vram__now_ms() + VRAMD_CLAIM_GRACE_MS;
                adopted++;
            } else {
                runner_lost(d, j);
                lost++;
            }
            break;
        }
    }
    if (queued || adopted || lost)
        vramd_say(d, "recovered the queue: %u queued, %u running adopted, %u whose runner was lost",
                  queued, adopted, lost);
    return 0;
}

void vramd_jobs_free(vramd *d)
{
    for (size_t i = 0; i < d->njobs && d->unsaved; i++)
        save_kept(d, d->jobs[i]);   /* a last try */
    if (d->unsaved)
        vramd_say(d, "%zu job%s changes could not be written (the queue's disk is full): the next "
                  "vramd finds them as they were on disk", d->unsaved, d->unsaved == 1 ? "'s" : "s'");
    for (size_t i = 0; i < d->njobs; i++) {
        vramd_job *j = d->jobs[i];
        if (j->ticket)
            vram_lease_cancel(d->ledger, j->ticket);
        if (j->lease)
            vram_lease_release(d->ledger, j->lease);
        job_free(j);
    }
    free(d->jobs);
    d->jobs = NULL;
    d->njobs = d->cap_jobs = 0;
    /* Cancels deliver their callbacks: their messages are freed with the inbox. */
}

/* ---- lists ------------------------------------------------------------------------------------- */

void vramd_jobs_counts(vramd *d, uint64_t counts[VRAM__JOB_STATE_COUNT])
{
    memset(counts, 0, VRAM__JOB_STATE_COUNT * sizeof(counts[0]));
    for (size_t i = 0; i < d->njobs; i++)
        counts[d->jobs[i]->row.state]++;
}

void vramd_jobs_shim(vramd *d, uint64_t *used, uint64_t *over)
{
    *used = *over = 0;
    for (size_t i = 0; i < d->njobs; i++) {
        const vramd_job *j = d->jobs[i];
        if (j->shim_ms && j->row.state == VRAM__JOB_RUNNING)
            *used += j->used_bytes;
        *over += j->over_bytes;
    }
}

/* Running first, then starting, then queued in queue order, then finished
 * newest first; `state` < 0 for all. */
int vramd_jobs_list_json(vramd *d, int state, uint64_t limit, vram__json *out)
{
    static const int order[] = { VRAM__JOB_RUNNING, VRAM__JOB_STARTING, VRAM__JOB_QUEUED };
    uint64_t n = 0;
    if (!limit)
        limit = UINT64_MAX;
    vram__json_array_begin(out);
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++)
        for (size_t i = 0; i < d->njobs && n < limit; i++)
            if (d->jobs[i]->row.state == order[k] && (state < 0 || state == order[k])) {
                vramd_job_json(d, d->jobs[i], out);
                n++;
            }
    for (size_t i = d->njobs; i-- > 0 && n < limit;)
        if (is_final(d->jobs[i]->row.state) && (state < 0 || state == d->jobs[i]->row.state)) {
            vramd_job_json(d, d->jobs[i], out);
            n++;
        }
    vram__json_array_end(out);
    return 0;
}
