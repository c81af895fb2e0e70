/* SPDX-License-Identifier: MIT */
/*
 * tests/helpers/dashstub.c - the dashboard's HTTP server over a scripted
 * provider, for tests that need a live server without the daemon core
 * (the browser test, promtool).
 *
 *   dashstub [--http ADDR:PORT] [--window-ms MS] --token-file PATH
 *
 * Devices are the sim backend's (VRAM_SIM, VRAM_SIM_STATE), sampled by a
 * real monitor, so the status and the chart are the real thing; the chart
 * covers --window-ms (default five minutes: a test that lasts seconds
 * shortens it to see its own history).  Jobs come
 * in through POST /api/jobs and are moved along by commands on stdin, one a
 * line, each answered "ok" or "error: why" on stdout:
 *
 *   start ID [TIER]            queued -> running on GPU 0 (holds its estimate)
 *   progress ID FRACTION SIZE  its progress and real usage now
 *   oom ID TIER                an out-of-memory retry on a cheaper tier
 *   finish ID STATE            succeeded or failed
 *   leak PID TEXT              a leak warning
 *   quit
 *
 * It prints "url http://127.0.0.1:PORT/" once it listens.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ctx.h"
#include "daemon/http.h"

#define MAX_JOBS 64
#define MAX_EVENTS 32

typedef struct job {
    char id[16];
    int state;
    char command[256];
    char tier[32];
    uint64_t estimate, used, peak;
    double progress;                /* < 0: unknown */
    unsigned attempt;
    uint64_t submitted_ms, started_ms, ended_ms;
} job;

typedef struct event {
    uint64_t unix_ms;
    char kind[16];
    char job[16];
    char text[200];
} event;

typedef struct stub {
    vram_ctx *ctx;
    vram_monitor *mon;
    uint64_t window_ms;             /* of the chart's history */
    pthread_mutex_t lock;           /* guards everything below */
    job jobs[MAX_JOBS];
    size_t njobs;
    event events[MAX_EVENTS];       /* newest last */
    size_t nevents;
    vram__wait_histogram waits;
    uint64_t oom_retries;
    atomic_ullong version;
    atomic_ullong leased;           /* the running jobs' estimates, on GPU 0 */
    atomic_ullong in_use;           /* of those, what the jobs really use */
} stub;

/* ---- the ledger the snapshots see ---------------------------------------------- */

static int lease_view(void *ledger, unsigned device, vram__lease_view *out)
{
    stub *s = ledger;
    uint64_t leased = device == 0 ? atomic_load(&s->leased) : 0;
    uint64_t in_use = device == 0 ? atomic_load(&s->in_use) : 0;
    out->leased_bytes = leased;
    out->unused_bytes = leased > in_use ? leased - in_use : 0;
    return 0;
}

/* ---- JSON ------------------------------------------------------------------------ */

static void json_opt_uint(vram__json *j, const char *key, uint64_t v, bool known)
{
    vram__json_key(j, key);
    if (known)
        vram__json_uint(j, v);
    else
        vram__json_null(j);
}

static void json_job(vram__json *j, const job *b)
{
    bool ran = b->state != VRAM__JOB_QUEUED;
    bool done = ran && b->state != VRAM__JOB_RUNNING;
    vram__json_object_begin(j);
    vram__json_key(j, "id");
    vram__json_string(j, b->id);
    vram__json_key(j, "state");
    vram__json_string(j, vram__job_state_name(b->state));
    vram__json_key(j, "command");
    vram__json_string(j, b->command);
    vram__json_key(j, "tier");
    if (b->tier[0])
        vram__json_string(j, b->tier);
    else
        vram__json_null(j);
    json_opt_uint(j, "estimate_bytes", b->estimate, b->estimate > 0);
    json_opt_uint(j, "used_bytes", b->used, b->state == VRAM__JOB_RUNNING);
    json_opt_uint(j, "peak_bytes", b->peak, ran && b->started_ms);
    vram__json_key(j, "progress");
    if (b->progress >= 0)
        vram__json_double(j, b->progress);
    else
        vram__json_null(j);
    json_opt_uint(j, "device", 0, ran && b->started_ms);
    vram__json_key(j, "attempt");
    vram__json_uint(j, b->attempt);
    json_opt_uint(j, "submitted_unix_ms", b->submitted_ms, true);
    json_opt_uint(j, "started_unix_ms", b->started_ms, b->started_ms > 0);
    json_opt_uint(j, "ended_unix_ms", b->ended_ms, done);
    vram__json_key(j, "outcome");
    if (done)
        vram__json_string(j, b->state == VRAM__JOB_SUCCEEDED  ? "ok"
                             : b->state == VRAM__JOB_CANCELED ? "canceled"
                                                               : "failed");
    else
        vram__json_null(j);
    vram__json_key(j, "reason");
    vram__json_null(j);
    vram__json_object_end(j);
}

/* Running first, then queued, then finished newest first. */
static int job_rank(const job *b)
{
    return b->state == VRAM__JOB_RUNNING ? 0 : b->state == VRAM__JOB_QUEUED ? 1 : 2;
}

/* {"KEY": [...]}, the items written by fn with the lock held. */
static int json_list(stub *s, const char *key, void (*fn)(stub *, vram__json *), char **json)
{
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_object_begin(&j);
    vram__json_key(&j, key);
    vram__json_array_begin(&j);
    pthread_mutex_lock(&s->lock);
    fn(s, &j);
    pthread_mutex_unlock(&s->lock);
    vram__json_array_end(&j);
    vram__json_object_end(&j);
    int rc;
    *json = vram__buf_take(&b, &rc);
    return rc;
}

static void jobs_items(stub *s, vram__json *j)
{
    for (int rank = 0; rank < 3; rank++)
        for (size_t k = 0; k < s->njobs; k++) {
            size_t i = rank == 2 ? s->njobs - 1 - k : k;
            if (job_rank(&s->jobs[i]) == rank)
                json_job(j, &s->jobs[i]);
        }
}

static void events_items(stub *s, vram__json *j)
{
    for (size_t k = 0; k < s->nevents; k++) {
        const event *e = &s->events[s->nevents - 1 - k];
        vram__json_object_begin(j);
        vram__json_key(j, "unix_ms");
        vram__json_uint(j, e->unix_ms);
        vram__json_key(j, "kind");
        vram__json_string(j, e->kind);
        vram__json_key(j, "job");
        if (e->job[0])
            vram__json_string(j, e->job);
        else
            vram__json_null(j);
        vram__json_key(j, "device");
        vram__json_uint(j, 0);
        vram__json_key(j, "text");
        vram__json_string(j, e->text);
        vram__json_object_end(j);
    }
}

static int p_jobs(void *user, uint32_t viewer, char **json)
{
    (void)viewer;             /* a stub: every job is shown whole */
    return json_list(user, "jobs", jobs_items, json);
}

static int p_events(void *user, char **json)
{
    return json_list(user, "events", events_items, json);
}

static int p_status(void *user, char **json)
{
    stub *s = user;
    return vram__dashboard_status_json(s->ctx, s->mon, s->window_ms, 0, json);
}

static int p_metrics(void *user, vram__metrics *m)
{
    stub *s = user;
    int rc = vram__dashboard_metrics_devices(s->ctx, m);
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->njobs; i++)
        m->jobs[s->jobs[i].state]++;
    m->admission_wait = s->waits;
    m->oom_retries_total = s->oom_retries;
    m->leases = m->jobs[VRAM__JOB_RUNNING];
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static uint64_t p_version(void *user)
{
    stub *s = user;
    return atomic_load(&s->version);
}

/* ---- changes ----------------------------------------------------------------------- */

static job *find_job(stub *s, const char *id)
{
    for (size_t i = 0; i < s->njobs; i++)
        if (!strcmp(s->jobs[i].id, id))
            return &s->jobs[i];
    return NULL;
}

/* Checks a submit request; fills command and estimate. */
static int read_request(const vram__jv *req, const char **command, uint64_t *estimate)
{
    for (size_t i = 0; i < req->n; i++)
        if (strcmp(req->keys[i], "command") && strcmp(req->keys[i], "vram") &&
            strcmp(req->keys[i], "ladder"))
            return vram__fail(VRAM_EINVAL, "unknown field \"%s\" (known: command, vram, ladder)",
                              req->keys[i]);
    *command = vram__jv_str(vram__jv_get(req, "command"));
    if (!*command || !**command)
        return vram__fail(VRAM_EINVAL, "a job needs \"command\": the command line to run");
    const vram__jv *vram = vram__jv_get(req, "vram");
    *estimate = 0;
    if (vram && !vram__jv_str(vram))
        return vram__fail(VRAM_EINVAL, "\"vram\" is a size such as \"8GiB\"");
    return vram ? vram_size_parse(vram__jv_str(vram), estimate) : 0;
}

static int p_submit(void *user, const vram__jv *req, char **reply)
{
    stub *s = user;
    const char *command = NULL;
    uint64_t estimate = 0;
    int rc = read_request(req, &command, &estimate);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->lock);
    if (s->njobs == MAX_JOBS) {
        pthread_mutex_unlock(&s->lock);
        return vram__fail(VRAM_EAGAIN, "the stub holds %d jobs at most", MAX_JOBS);
    }
    job *b = &s->jobs[s->njobs++];
    memset(b, 0, sizeof(*b));
    snprintf(b->id, sizeof(b->id), "j-%zu", s->njobs);
    vram__strlcpy(b->command, command, sizeof(b->command));
    b->state = VRAM__JOB_QUEUED;
    b->estimate = estimate;
    b->progress = -1;
    b->attempt = 1;
    b->submitted_ms = vram__unix_ms();
    char text[64];
    snprintf(text, sizeof(text), "{\"id\":\"%s\"}", b->id);
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->version, 1);
    *reply = strdup(text);
    return *reply ? 0 : VRAM_ENOMEM;
}

static int p_cancel(void *user, const char *id, char **reply)
{
    stub *s = user;
    pthread_mutex_lock(&s->lock);
    job *b = find_job(s, id);
    int rc = !b ? vram__fail(VRAM_ENOENT, "no job %s", id)
             : b->state > VRAM__JOB_RUNNING ? vram__fail(VRAM_EBUSY, "job %s has already ended", id)
                                            : 0;
    if (!rc) {
        if (b->state == VRAM__JOB_RUNNING)
            atomic_fetch_sub(&s->leased, b->estimate);
        b->state = VRAM__JOB_CANCELED;
        b->ended_ms = vram__unix_ms();
    }
    pthread_mutex_unlock(&s->lock);
    if (rc)
        return rc;
    atomic_fetch_add(&s->version, 1);
    char text[80];
    snprintf(text, sizeof(text), "{\"id\":\"%s\",\"state\":\"canceled\"}", id);
    *reply = strdup(text);
    return *reply ? 0 : VRAM_ENOMEM;
}

/* ---- stdin commands ---------------------------------------------------------------- */

static void add_event(stub *s, const char *kind, const char *id, const char *text)
{
    if (s->nevents == MAX_EVENTS) {
        memmove(s->events, s->events + 1, (MAX_EVENTS - 1) * sizeof(event));
        s->nevents--;
    }
    event *e = &s->events[s->nevents++];
    e->unix_ms = vram__unix_ms();
    vram__strlcpy(e->kind, kind, sizeof(e->kind));
    vram__strlcpy(e->job, id, sizeof(e->job));
    vram__strlcpy(e->text, text, sizeof(e->text));
}

/* Applies one command to job b (the lock held); returns an error text or NULL. */
static const char *job_command(stub *s, job *b, const char *verb, const char *a1, const char *a2)
{
    uint64_t bytes = 0;
    if (!strcmp(verb, "start") && b->state == VRAM__JOB_QUEUED) {
        b->state = VRAM__JOB_RUNNING;
        b->started_ms = vram__unix_ms();
        vram__wait_histogram_add(&s->waits, (double)(b->started_ms - b->submitted_ms) / 1000.0);
        vram__strlcpy(b->tier, a1 ? a1 : "", sizeof(b->tier));
        b->progress = 0;
        atomic_fetch_add(&s->leased, b->estimate);
    } else if (!strcmp(verb, "progress") && a1 && a2 && !vram_size_parse(a2, &bytes)) {
        b->progress = atof(a1);
        b->used = bytes;
        b->peak = bytes > b->peak ? bytes : b->peak;
    } else if (!strcmp(verb, "oom") && a1) {
        char text[200];
        snprintf(text, sizeof(text), "%s ran out of memory at tier %s; retrying at tier %s",
                 b->id, b->tier[0] ? b->tier : "(none)", a1);
        add_event(s, "oom_retry", b->id, text);
        vram__strlcpy(b->tier, a1, sizeof(b->tier));
        b->attempt++;
        s->oom_retries++;
    } else if (!strcmp(verb, "finish") && a1 && b->state == VRAM__JOB_RUNNING) {
        b->state = !strcmp(a1, "failed") ? VRAM__JOB_FAILED : VRAM__JOB_SUCCEEDED;
        b->ended_ms = vram__unix_ms();
        b->progress = b->state == VRAM__JOB_SUCCEEDED ? 1 : b->progress;
        b->used = 0;
        atomic_fetch_sub(&s->leased, b->estimate);
    } else {
        return "not a command for this job in its state";
    }
    return NULL;
}

/* The bytes the running jobs really use: what this process holds on the card. */
static uint64_t running_usage(stub *s)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < s->njobs; i++)
        if (s->jobs[i].state == VRAM__JOB_RUNNING)
            sum += s->jobs[i].used;
    return sum;
}

static const char *command(stub *s, char *line)
{
    char *save = NULL;
    char *verb = strtok_r(line, " \n", &save);
    char *a0 = strtok_r(NULL, " \n", &save);
    char *a1 = strtok_r(NULL, " \n", &save);
    char *a2 = strtok_r(NULL, "\n", &save);
    if (!verb || !a0)
        return "give a command and its arguments";
    const char *err = NULL;
    uint64_t usage;
    pthread_mutex_lock(&s->lock);
    if (!strcmp(verb, "leak")) {
        char text[200];
        snprintf(text, sizeof(text), "process %s: %s%s%s", a0, a1 ? a1 : "", a2 ? " " : "",
                 a2 ? a2 : "");
        add_event(s, "leak", "", text);
    } else {
        job *b = find_job(s, a0);
        err = b ? job_command(s, b, verb, a1, a2) : "no such job";
    }
    usage = running_usage(s);
    pthread_mutex_unlock(&s->lock);
    if (err)
        return err;
    /* Outside the lock: the backend's lock may be held by a sampler asking us. */
    vram_sim_set_usage(s->ctx, 0, usage);
    atomic_store(&s->in_use, usage);
    atomic_fetch_add(&s->version, 1);
    return NULL;
}

/* ---- main --------------------------------------------------------------------------- */

static int open_devices(stub *s)
{
    vram_options *o;
    int rc = vram_options_new(&o);
    if (!rc)
        rc = vram_options_set(o, "backend", "sim", NULL);
    if (!rc)
        rc = vram_options_load_env(o);
    if (!rc)
        rc = vram_ctx_open(&s->ctx, o);
    vram_options_free(o);
    if (rc)
        return rc;
    s->ctx->lease_view = lease_view;
    __atomic_store_n(&s->ctx->ledger, s, __ATOMIC_RELEASE);
    return vram_monitor_start(s->ctx, 0, 0, &s->mon);
}

int main(int argc, char **argv)
{
    const char *http = "127.0.0.1:0", *token_file = NULL;
    stub s = { 0 };
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--http"))
            http = argv[i + 1];
        else if (!strcmp(argv[i], "--token-file"))
            token_file = argv[i + 1];
        else if (!strcmp(argv[i], "--window-ms"))
            s.window_ms = strtoull(argv[i + 1], NULL, 10);
    }
    if (!token_file) {
        fprintf(stderr, "usage: dashstub [--http ADDR:PORT] [--window-ms MS] --token-file PATH\n");
        return 2;
    }
    pthread_mutex_init(&s.lock, NULL);
    char token[VRAM__TOKEN_LEN + 1];
    vram__http *h = NULL;
    vram__http_provider p = { &s, p_status, p_jobs, p_events, p_metrics, p_submit, p_cancel,
                              p_version };
    int rc = open_devices(&s);
    if (!rc)
        rc = vram__token_create(token_file, token);
    if (!rc)
        rc = vram__http_start(http, token, &p, &h);
    if (rc) {
        fprintf(stderr, "dashstub: %s\n", vram_last_error());
        return 1;
    }
    printf("url %s\n", vram__http_url(h));
    fflush(stdout);
    char line[512];
    while (fgets(line, sizeof(line), stdin) && strncmp(line, "quit", 4) != 0) {
        const char *err = command(&s, line);
        printf(err ? "error: %s\n" : "ok\n", err);
        fflush(stdout);
    }
    vram__http_stop(h);
    vram_monitor_stop(s.mon);
    __atomic_store_n(&s.ctx->ledger, NULL, __ATOMIC_RELEASE);
    vram_ctx_close(s.ctx);
    return 0;
}
