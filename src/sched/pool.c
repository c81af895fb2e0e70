/* SPDX-License-Identifier: MIT */
/*
 * sched/pool.c - the worker pool: runs tasks as the ledger admits them, and
 * carries each one to exactly one end.
 *
 * Owns a task's life: checked and copied at submit, queued in the ledger as
 * a request of the pool's client (so it starts only while a worker is free,
 * by the same policy as every other request), run by a worker once granted,
 * then one of: done; out of memory, so the class learns the shortfall and
 * the task goes back to its place in the queue on its next rung; failed or
 * out of rungs, so the fallback makes the result; canceled at shutdown.
 * Cleanup hooks run after every attempt.  Counters and the progress callback
 * live here; handing outcomes back in order is collect.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched/pool.h"

#define DEFAULT_SHORTFALL_DIV 4     /* unknown shortfall: a quarter more */

static const char *const counter_names[] = {
#define POOL_COUNTER_NAME(name, text) #name,
    VRAM_SCHED_COUNTERS(POOL_COUNTER_NAME)
#undef POOL_COUNTER_NAME
};

const char *vram_outcome_name(int status)
{
    switch (status) {
    case VRAM_OUTCOME_DONE: return "done";
    case VRAM_OUTCOME_FELL_BACK: return "fell back";
    case VRAM_OUTCOME_FAILED: return "failed";
    case VRAM_OUTCOME_CANCELED: return "canceled";
    default: return "unknown";
    }
}

void vram__pool_count(vram_sched *s, int counter, uint64_t n)
{
    s->counters[counter] += n;
}

task *vram__pool_task(vram_sched *s, uint64_t id)
{
    return id >= s->base && id - s->base < s->cap ? s->tasks[id - s->base] : NULL;
}

void vram__pool_task_free(task *t)
{
    vram_ladder_free(t->ladder);
    free(t->device_bytes);
    free(t);
}

/* ---- submit -------------------------------------------------------------------- */

static int check_task(const vram_sched *s, const vram_task *t)
{
    if (!t)
        return vram__fail(VRAM_EINVAL, "vram_sched_submit: NULL task");
    int rc = vram__check_version("vram_task", t->version, VRAM_TASK_VERSION);
    if (rc)
        return rc;
    if (!t->fn)
        return vram__fail(VRAM_EINVAL, "the task has no callback");
    if (!t->bytes)
        return vram__fail(VRAM_EINVAL, "the task's estimate is 0 bytes: give the bytes one "
                          "attempt needs on the device");
    if (t->wait_ms < VRAM_WAIT_FOREVER)
        return vram__fail(VRAM_EINVAL, "wait of %lld ms: give -1 (forever), 0 or more",
                          (long long)t->wait_ms);
    if (t->device < VRAM_DEVICE_ANY || (t->device >= 0 && (unsigned)t->device >= s->l->ndev))
        return vram__fail(VRAM_ENODEV, "no device %d: there are %u", t->device, s->l->ndev);
    if (t->ndevice_bytes && !t->device_bytes)
        return vram__fail(VRAM_EINVAL, "%u per-device estimates but no array", t->ndevice_bytes);
    if (t->resident && t->device >= 0 && (unsigned)t->device != t->resident->device)
        return vram__fail(VRAM_EINVAL, "the task asks for device %d but its resident '%s' lives "
                          "on device %u", t->device, t->resident->name, t->resident->device);
    return 0;
}

/* The class a rung learns under: the task's class ("name", "name#k"), or
 * its callback when it has none. */
static void class_name(const vram_task *t, unsigned rung, vram_task_fn fn, char *buf, size_t cap)
{
    if (t->task_class && *t->task_class) {
        if (rung)
            snprintf(buf, cap, "%.80s#%u", t->task_class, rung);
        else
            snprintf(buf, cap, "%.80s", t->task_class);
        return;
    }
    uintptr_t addr;
    memcpy(&addr, &fn, sizeof(addr) < sizeof(fn) ? sizeof(addr) : sizeof(fn));
    snprintf(buf, cap, "fn:%#llx", (unsigned long long)addr);
}

static void task_notify(vram__req *r);
static void finish(vram_sched *s, task *t, int status, int error, const char *reason);

static int task_new(vram_sched *s, const vram_task *t, task **out)
{
    *out = NULL;
    task *k = calloc(1, sizeof(*k));
    if (!k)
        return vram__fail(VRAM_ENOMEM, "out of host memory for a task");
    int rc = vram__ladder_from_task(t->bytes, t->fn, t->ladder, t->nrungs, &k->ladder);
    if (!rc && t->ndevice_bytes && !(k->device_bytes = malloc(t->ndevice_bytes * sizeof(uint64_t))))
        rc = vram__fail(VRAM_ENOMEM, "out of host memory for a task");
    if (rc) {
        vram__pool_task_free(k);
        return rc;
    }
    if (t->ndevice_bytes)
        memcpy(k->device_bytes, t->device_bytes, t->ndevice_bytes * sizeof(uint64_t));
    k->nrungs = t->nrungs;
    k->fallback = t->fallback;
    k->user = t->user;
    k->free_result = t->free_result;
    k->submit_ns = vram__now_ns();
    k->out.device = -1;
    vram__req *r = &k->req;
    r->bytes = t->bytes;
    r->device_bytes = k->device_bytes;
    r->ndevice_bytes = t->ndevice_bytes;
    r->device_pref = t->resident ? (int)t->resident->device : t->device;
    r->priority = t->priority;
    r->wait_ms = t->wait_ms;
    r->expected_ms = t->expected_ms;
    r->cpu_ok = t->cpu_ok != 0;
    r->can_step = t->nrungs > 0;
    r->resident = t->resident;
    r->client = &s->client;
    r->pid = (uint32_t)getpid();
    r->device = -1;
    r->notify = task_notify;
    r->owner = k;
    *out = k;
    return 0;
}

/* Interns the classes of every rung and checks the task fits somewhere. */
static int task_admissible(vram_sched *s, const vram_task *t, task *k, bool *cpu_only)
{
    vram_ledger *l = s->l;
    char name[VRAM__CLASS_NAME_MAX];
    pthread_mutex_lock(&l->lock);
    for (unsigned i = 0; i <= k->nrungs; i++) {
        vram_rung g;
        vram_ladder_rung(k->ladder, i, &g);
        class_name(t, i, g.fn, name, sizeof(name));
        k->cls[i] = vram__class_intern(l, name);
    }
    k->req.cls = k->cls[0];
    int rc = vram__policy_check(l, &k->req, cpu_only);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

/* Makes room for one more task pointer, dropping collected ones first. */
static int tasks_reserve(vram_sched *s)
{
    if (s->submitted - s->base < s->cap)
        return 0;
    uint64_t gone = s->collected - s->base;
    if (gone > s->cap / 2) {
        memmove(s->tasks, s->tasks + gone, (s->cap - gone) * sizeof(*s->tasks));
        memset(s->tasks + (s->cap - gone), 0, gone * sizeof(*s->tasks));
        s->base += gone;
        return 0;
    }
    size_t cap = s->cap ? s->cap * 2 : 256;
    task **p = realloc(s->tasks, cap * sizeof(*p));
    if (!p)
        return vram__fail(VRAM_ENOMEM, "out of host memory for %zu tasks", cap);
    memset(p + s->cap, 0, (cap - s->cap) * sizeof(*p));
    s->tasks = p;
    s->cap = cap;
    return 0;
}

int vram_sched_submit(vram_sched *s, const vram_task *t, uint64_t *id_out)
{
    if (id_out)
        *id_out = 0;
    if (!s)
        return vram__fail(VRAM_EINVAL, "vram_sched_submit: NULL scheduler");
    int rc = check_task(s, t);
    if (rc)
        return rc;
    task *k;
    if ((rc = task_new(s, t, &k)))
        return rc;
    bool cpu_only = false;
    if ((rc = task_admissible(s, t, k, &cpu_only))) {
        vram__pool_task_free(k);
        return rc;
    }
    k->req.to_cpu = cpu_only;
    pthread_mutex_lock(&s->submit_lock);
    pthread_mutex_lock(&s->lock);
    if (s->shut)
        rc = vram__fail(VRAM_ESHUTDOWN, "the scheduler is shut down: no more tasks");
    else if (!(rc = tasks_reserve(s))) {
        k->id = s->submitted++;
        s->tasks[k->id - s->base] = k;
        s->counters[C_submitted]++;
    }
    pthread_mutex_unlock(&s->lock);
    if (rc) {
        pthread_mutex_unlock(&s->submit_lock);
        vram__pool_task_free(k);
        return rc;
    }
    if (id_out)
        *id_out = k->id;
    /* From here the task may run and end at any time: k is not ours. */
    int queued = vram__ledger_submit(s->l, &k->req, NULL);
    pthread_mutex_unlock(&s->submit_lock);
    if (queued)                     /* it has an id: it must still end, once */
        finish(s, k, VRAM_OUTCOME_FAILED, queued, "could not be queued: out of host memory");
    return 0;
}

/* ---- running ---------------------------------------------------------------------- */

static void task_notify(vram__req *r)
{
    task *k = r->owner;
    vram_sched *s = (vram_sched *)((char *)r->client - offsetof(vram_sched, client));
    pthread_mutex_lock(&s->lock);
    k->ready_next = NULL;
    if (s->ready_tail)
        s->ready_tail->ready_next = k;
    else
        s->ready_head = k;
    s->ready_tail = k;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
}

/* Runs the cleanup hooks; returns what the device saw them free. */
static uint64_t run_cleanup(vram_sched *s, int device)
{
    unsigned n = __atomic_load_n(&s->nhooks, __ATOMIC_ACQUIRE);
    if (!n)
        return 0;
    vram_device_info before, after;
    bool measured = device >= 0 && !vram_device_query(s->l->ctx, (unsigned)device, &before);
    for (unsigned i = 0; i < n; i++)
        s->hooks[i].fn(s->hooks[i].user, device);
    if (!measured || vram_device_query(s->l->ctx, (unsigned)device, &after))
        return 0;
    return before.used_bytes > after.used_bytes ? before.used_bytes - after.used_bytes : 0;
}

static void stats_snapshot(vram_sched *s, vram_sched_stats *st);

/* Under s->progress_lock, so reports reach the callback in the order their
 * counts were taken: a progress bar never goes back. */
static void report_progress(vram_sched *s, vram_sched_stats *st)
{
    vram_ledger *l = s->l;
    pthread_mutex_lock(&l->lock);
    for (unsigned d = 0; d < st->ndevices; d++)
        st->leased_bytes[d] = l->dev[d].leased;
    pthread_mutex_unlock(&l->lock);
    s->progress(s->progress_user, st);
}

/* The task's one end.  After this, t belongs to the collector. */
static void finish(vram_sched *s, task *t, int status, int error, const char *reason)
{
    t->out.task_id = t->id;
    t->out.status = status;
    t->out.error = error;
    t->out.ooms = t->ooms;
    t->out.attempts = t->attempts;
    t->out.wait_ms = (vram__now_ns() - t->submit_ns) / 1000000ull;
    t->out.wait_ms = t->out.wait_ms > t->out.run_ms ? t->out.wait_ms - t->out.run_ms : 0;
    if (reason && reason != t->out.reason)
        vram__strlcpy(t->out.reason, reason, sizeof(t->out.reason));
    static const int counter_of[] = { C_done, C_fell_back, C_failed, C_canceled };
    vram_sched_stats st;
    if (s->progress)                /* counted and reported in one order */
        pthread_mutex_lock(&s->progress_lock);
    pthread_mutex_lock(&s->lock);
    s->counters[counter_of[status]]++;
    if (t->on_worker)
        s->running--;
    if (s->progress)
        stats_snapshot(s, &st);
    pthread_mutex_unlock(&s->lock);
    /* Progress first: whoever collects this outcome has seen it counted. */
    if (s->progress) {
        report_progress(s, &st);
        pthread_mutex_unlock(&s->progress_lock);
    }
    pthread_mutex_lock(&s->lock);
    s->ended++;
    t->ended = true;
    pthread_cond_broadcast(&s->ended_cond);
    pthread_mutex_unlock(&s->lock);
}

/* The task failed or ran out of rungs: the fallback makes its result. */
static void fall_back(vram_sched *s, task *t, int error, const char *why)
{
    if (t->holds_slot)
        vram__ledger_free_slot(s->l, &s->client);
    t->holds_slot = false;
    if (!t->fallback) {
        finish(s, t, VRAM_OUTCOME_FAILED, error, why);
        return;
    }
    vram_task_call call = { .task_id = t->id, .user = t->user, .device = VRAM_DEVICE_CPU,
                            .rung = VRAM_RUNG_FALLBACK, .attempt = t->attempts + 1 };
    int rc = t->fallback(&call);
    t->out.device = t->out.device == -1 ? VRAM_DEVICE_CPU : t->out.device;
    t->out.rung = VRAM_RUNG_FALLBACK;
    if (rc != VRAM_TASK_OK) {
        char reason[sizeof(t->out.reason)];
        snprintf(reason, sizeof(reason), "%.60s; the fallback failed too%s%.60s", why,
                 call.reason[0] ? ": " : "", call.reason);
        finish(s, t, VRAM_OUTCOME_FAILED, error ? error : VRAM_EINTERNAL, reason);
        return;
    }
    t->out.result = call.result;
    t->out.image = call.image;
    finish(s, t, VRAM_OUTCOME_FELL_BACK, error, why);
}

/* Back to its place in the queue, one rung down. */
static void retry(vram_sched *s, task *t)
{
    pthread_mutex_lock(&s->lock);
    bool canceled = s->cancel;
    s->counters[C_retried] += !canceled;
    if (!canceled) {
        s->running--;               /* back in the queue, off this worker */
        t->on_worker = false;
    }
    pthread_mutex_unlock(&s->lock);
    if (canceled) {
        finish(s, t, VRAM_OUTCOME_CANCELED, VRAM_ECANCELED, "canceled at shutdown before its retry");
        return;
    }
    t->rung++;
    vram__req *r = &t->req;
    if (r->granted_bytes)           /* a retry never asks for more than what failed */
        r->cap_bytes = r->granted_bytes;
    r->can_step = t->rung < t->nrungs;
    vram_rung g;
    vram_ladder_rung(t->ladder, t->rung, &g);
    r->bytes = g.bytes;
    r->device_bytes = NULL;         /* per-device estimates are the task's own */
    r->ndevice_bytes = 0;
    r->cls = t->cls[t->rung];
    r->deadline_ns = 0;
    r->to_cpu = false;
    r->device = -1;
    r->expected_ms = 0;
    vram__ledger_submit(s->l, r, NULL);  /* keeps its seq: its old place */
}

static int normalise(int rc, vram_task_call *call)
{
    if (rc == VRAM_TASK_OK || rc == VRAM_TASK_FAILED || rc == VRAM_TASK_OOM)
        return rc;
    snprintf(call->reason, sizeof(call->reason),
             "the callback returned %d, not VRAM_TASK_OK, _FAILED or _OOM", rc);
    return VRAM_TASK_FAILED;
}

/* One attempt on the device (or CPU) the ledger granted. */
static void attempt(vram_sched *s, task *t)
{
    vram__req *r = &t->req;
    t->holds_slot = true;
    vram_task_call call = { .task_id = t->id, .user = t->user, .device = r->device,
                            .rung = (int)t->rung, .bytes = r->granted_bytes,
                            .attempt = ++t->attempts };
    vram_rung g;
    vram_ladder_rung(t->ladder, t->rung, &g);
    vram_task_fn fn = g.fn;
    if (r->device == VRAM_DEVICE_CPU) {
        pthread_mutex_lock(&s->lock);
        s->counters[C_on_cpu]++;
        pthread_mutex_unlock(&s->lock);
    }
    uint64_t t0 = vram__now_ns();
    int rc = normalise(fn(&call), &call);
    t->out.run_ms = (vram__now_ns() - t0) / 1000000ull;
    t->out.device = r->device;
    t->out.bytes = r->granted_bytes;
    t->out.rung = (int)t->rung;
    uint64_t freed = run_cleanup(s, r->device);
    t->out.freed_bytes += freed;
    if (freed) {
        pthread_mutex_lock(&s->lock);
        s->counters[C_cleanup_freed_bytes] += freed;
        pthread_mutex_unlock(&s->lock);
    }
    if (rc == VRAM_TASK_OK) {
        t->out.result = call.result;
        t->out.image = call.image;
        vram__ledger_release(s->l, r, true, true);
        finish(s, t, VRAM_OUTCOME_DONE, 0, NULL);
        return;
    }
    if (rc == VRAM_TASK_OOM) {
        t->ooms++;
        uint64_t base = r->granted_bytes > r->bytes ? r->granted_bytes : r->bytes;
        vram__ledger_oom(s->l, r, call.shortfall_bytes ? call.shortfall_bytes
                                                       : base / DEFAULT_SHORTFALL_DIV);
        if (t->rung < t->nrungs) {
            vram__ledger_release(s->l, r, false, true);
            t->holds_slot = false;
            retry(s, t);
            return;
        }
        vram__ledger_release(s->l, r, false, false);
        fall_back(s, t, VRAM_EOOM, "out of device memory on every rung");
        return;
    }
    vram__ledger_release(s->l, r, false, false);
    fall_back(s, t, VRAM_EINTERNAL, call.reason[0] ? call.reason : "the callback failed");
}

/* A request that ended without a grant: it waited too long, or its class
 * learnt it no longer fits. */
static void not_admitted(vram_sched *s, task *t)
{
    int status = t->req.status;
    /* Not admitted within its patience, or grown past every card: the next
     * rung, if there is one; the fallback only after the last. */
    if ((status == VRAM_ENOFIT || status == VRAM_ETIMEDOUT) && t->rung < t->nrungs) {
        retry(s, t);
        return;
    }
    char why[sizeof(t->out.reason)];
    char need[32];
    vram_size_format(t->req.bytes, need, sizeof(need));
    if (status == VRAM_ETIMEDOUT)
        snprintf(why, sizeof(why), "no device could take %s within %lld ms", need,
                 (long long)t->req.wait_ms);
    else
        snprintf(why, sizeof(why), "%s no longer fits any device (its class's estimate grew)",
                 need);
    fall_back(s, t, status, why);
}

static void *worker_main(void *arg)
{
    vram_sched *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->ready_head && !s->stopping)
            pthread_cond_wait(&s->work, &s->lock);
        task *t = s->ready_head;
        if (!t)
            break;
        s->ready_head = t->ready_next;
        if (!s->ready_head)
            s->ready_tail = NULL;
        s->running++;               /* until it ends or goes back to the queue */
        t->on_worker = true;
        pthread_mutex_unlock(&s->lock);
        if (t->req.state == REQ_GRANTED)
            attempt(s, t);
        else
            not_admitted(s, t);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- stats -------------------------------------------------------------------------- */

/* Under the pool's lock; leased_bytes is filled by the caller. */
static void stats_snapshot(vram_sched *s, vram_sched_stats *st)
{
    memset(st, 0, sizeof(*st));
    uint64_t *c = s->counters;
    c[C_running] = s->running;
    c[C_queued] = s->submitted - s->ended - s->running;
#define POOL_COPY(name, text) st->name = c[C_##name];
    VRAM_SCHED_COUNTERS(POOL_COPY)
#undef POOL_COPY
    st->ndevices = s->l->ndev;
}

int vram_sched_get_stats(vram_sched *s, vram_sched_stats *out)
{
    if (!s || !out)
        return vram__fail(VRAM_EINVAL, "vram_sched_get_stats: NULL argument");
    pthread_mutex_lock(&s->lock);
    stats_snapshot(s, out);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_lock(&s->l->lock);
    for (unsigned d = 0; d < out->ndevices; d++)
        out->leased_bytes[d] = s->l->dev[d].leased;
    pthread_mutex_unlock(&s->l->lock);
    return 0;
}

int vram_sched_stats_json(vram_sched *s, char **json_out)
{
    if (json_out)
        *json_out = NULL;
    vram_sched_stats st;
    int rc = json_out ? vram_sched_get_stats(s, &st)
                      : vram__fail(VRAM_EINVAL, "vram_sched_stats_json: NULL output");
    if (rc)
        return rc;
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_object_begin(&j);
    uint64_t values[] = {
#define POOL_VALUE(name, text) st.name,
        VRAM_SCHED_COUNTERS(POOL_VALUE)
#undef POOL_VALUE
    };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(values); i++)
        vram__json_field_uint(&j, counter_names[i], values[i]);
    vram__json_key(&j, "leased_bytes");
    vram__json_array_begin(&j);
    for (unsigned d = 0; d < st.ndevices; d++)
        vram__json_uint(&j, st.leased_bytes[d]);
    vram__json_array_end(&j);
    vram__json_object_end(&j);
    *json_out = vram__buf_take(&b, &rc);
    return rc;
}

/* ---- life -------------------------------------------------------------------------------- */

int vram_sched_add_cleanup(vram_sched *s, vram_cleanup_fn fn, void *user)
{
    if (!s || !fn)
        return vram__fail(VRAM_EINVAL, "vram_sched_add_cleanup: NULL scheduler or hook");
    pthread_mutex_lock(&s->lock);
    unsigned n = s->nhooks;
    int rc = 0;
    if (n == POOL_MAX_HOOKS)
        rc = vram__fail(VRAM_ERANGE, "at most %d cleanup hooks", POOL_MAX_HOOKS);
    else {
        s->hooks[n] = (hook){ fn, user };
        __atomic_store_n(&s->nhooks, n + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void sched_free(vram_sched *s)
{
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->submit_lock);
    pthread_mutex_destroy(&s->collect_lock);
    pthread_mutex_destroy(&s->progress_lock);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->ended_cond);
    free(s->threads);
    free(s->tasks);
    free(s);
}

static void stop_workers(vram_sched *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->lock);
    for (unsigned i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    s->nthreads = 0;
}

int vram_sched_open(vram_ledger *l, const vram_sched_config *cfg, vram_sched **out)
{
    if (out)
        *out = NULL;
    if (!l || !out)
        return vram__fail(VRAM_EINVAL, "vram_sched_open: NULL argument");
    int rc = cfg ? vram__check_version("vram_sched_config", cfg->version, VRAM_SCHED_CONFIG_VERSION) : 0;
    if (rc)
        return rc;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned workers = cfg && cfg->workers ? cfg->workers : (unsigned)(cpus > 0 ? cpus : 1);
    if (workers > 4096)
        return vram__fail(VRAM_ERANGE, "%u workers: at most 4096", workers);
    vram_sched *s = calloc(1, sizeof(*s));
    if (!s || !(s->threads = calloc(workers, sizeof(pthread_t)))) {
        free(s);
        return vram__fail(VRAM_ENOMEM, "out of host memory opening a scheduler");
    }
    s->l = l;
    s->nworkers = workers;
    s->client.slots_free = workers;
    s->progress = cfg ? cfg->progress : NULL;
    s->progress_user = cfg ? cfg->progress_user : NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->submit_lock, NULL);
    pthread_mutex_init(&s->collect_lock, NULL);
    pthread_mutex_init(&s->progress_lock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->ended_cond, &attr);
    pthread_condattr_destroy(&attr);
    for (unsigned i = 0; i < workers; i++) {
        if (pthread_create(&s->threads[i], NULL, worker_main, s) != 0) {
            stop_workers(s);
            sched_free(s);
            return vram__fail(VRAM_ENOMEM, "cannot start worker %u of %u", i + 1, workers);
        }
        s->nthreads++;
    }
    pthread_mutex_lock(&l->lock);
    l->scheds++;
    pthread_mutex_unlock(&l->lock);
    *out = s;
    return 0;
}

int vram_sched_shutdown(vram_sched *s, int cancel_queued)
{
    if (!s)
        return vram__fail(VRAM_EINVAL, "vram_sched_shutdown: NULL scheduler");
    pthread_mutex_lock(&s->submit_lock);
    pthread_mutex_lock(&s->lock);
    s->shut = true;
    s->cancel = s->cancel || cancel_queued;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->submit_lock);
    if (cancel_queued) {
        vram__req *list = vram__ledger_withdraw_client(s->l, &s->client);
        while (list) {
            vram__req *next = list->out_next;
            finish(s, list->owner, VRAM_OUTCOME_CANCELED, VRAM_ECANCELED,
                   "canceled at shutdown before it started");
            list = next;
        }
    }
    pthread_mutex_lock(&s->lock);
    while (s->ended < s->submitted)
        pthread_cond_wait(&s->ended_cond, &s->lock);
    pthread_cond_broadcast(&s->ended_cond);   /* collectors waiting for more */
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int vram_sched_close(vram_sched *s)
{
    if (!s)
        return 0;
    vram_sched_shutdown(s, 1);
    stop_workers(s);
    for (uint64_t id = s->collected; id < s->submitted; id++) {
        task *t = vram__pool_task(s, id);
        if (!t)
            continue;
        if (t->free_result && t->out.result)
            t->free_result(t->out.result);
        vram__pool_task_free(t);
    }
    pthread_mutex_lock(&s->l->lock);
    s->l->scheds--;
    pthread_mutex_unlock(&s->l->lock);
    sched_free(s);
    return 0;
}
