/* SPDX-License-Identifier: MIT */
/*
 * daemon/jobs.c - vramd's jobs from submit to end, and after a crash: the
 * job table and every move of a job's state.
 *
 * A queued job waits for its lease in the one ledger (an async request); when
 * granted, the job moves queued -> starting in the database and a runner
 * (`vram run --daemon-job N ...`, started by spawn.c) is held at a gate
 * until that move is on disk, or the runner started ahead of the turn
 * (prepare_runners) has its held claim answered then.  The runner claims its job over the socket
 * (starting -> running), asks for another budget after an out-of-memory
 * (job-rung), names the job's process group (owner) and says when it ended;
 * with no daemon to tell, its wire/link.c writes the end to the job store.
 * How a job looks is jobview.c's; replies to clients are conns.c's.
 *
 * On start, the daemon rebuilds its jobs from the database: what never
 * started is queued again, what still runs is adopted, and a job whose
 * runner died is followed to its end (its processes live on) or queued again
 * (they are gone), never run twice.
 *
 * A full disk: a move that starts work must be on disk first (a job waits
 * until there is room); one that ends work or gives it back is applied at
 * once and written when there is room, so a full disk stops nothing that
 * runs and frees every lease.  Until it is written, a vramd killed would
 * find such a job as it was on disk.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/ctx.h"
#include "daemon/daemon.h"
#include "monitor/monitor.h"
#include "plan/plan.h"
#include "wire/link.h"

#define USAGE_EVERY_MS 1000
#define SAVE_AGAIN_MS 1000          /* unsaved moves and waiting starts, on a full disk */

/* ---- the table (ids ascending) ------------------------------------------------- */

/* The index in v (n jobs, ids ascending) of the first job whose id is at
 * least id: one search for the table and for d->done. */
size_t vramd_jobs_lower_bound(vramd_job *const *v, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid]->row.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

vramd_job *vramd_job_find(vramd *d, uint64_t id)
{
    size_t at = vramd_jobs_lower_bound(d->jobs, d->njobs, id);
    return at < d->njobs && d->jobs[at]->row.id == id && !d->jobs[at]->forgotten ? d->jobs[at] : NULL;
}

static void job_free(vramd_job *j)
{
    if (j) {
        free(j->command);
        free(j->log);
        free(j->unsaved);
        vram__job_clear(&j->row);
        free(j);
    }
}

/* ---- the jobs each loop round looks at ------------------------------------------------------- */

/* Only these can change without a message: a runner that dies or never
 * claims its job, a process group left behind, a queued job's time to ask
 * for a lease again.  Kept apart, so that an idle round costs the same with
 * 100,000 jobs queued as with none. */
static bool is_live(const vramd_job *j)
{
    return j->row.state == VRAM__JOB_STARTING || j->row.state == VRAM__JOB_RUNNING ||
           (j->row.state == VRAM__JOB_QUEUED && (j->start_again_ms || j->prepared));
}

/* Puts j in d->live or takes it out, as its state says (under d->lock). */
static void live_update(vramd *d, vramd_job *j)
{
    bool want = is_live(j);
    if (want == j->live)
        return;
    if (!want) {
        for (size_t i = 0; i < d->nlive; i++)
            if (d->live[i] == j) {
                d->live[i] = d->live[--d->nlive];
                break;
            }
        j->live = false;
        return;
    }
    if (d->nlive == d->cap_live) {
        size_t cap = d->cap_live ? d->cap_live * 2 : 64;
        vramd_job **p = realloc(d->live, cap * sizeof(*p));
        if (!p)
            return;                 /* looked at again when it next changes */
        d->live = p;
        d->cap_live = cap;
    }
    d->live[d->nlive++] = j;
    j->live = true;
}

/* Marks j waiting for its dependencies, or no longer (under d->lock):
 * d->dep_jobs lists them, so that a job's end looks at those, not at
 * every job. */
static void dep_wait_set(vramd *d, vramd_job *j, bool wait)
{
    if (wait == j->dep_wait)
        return;
    j->dep_wait = wait;
    if (!wait) {
        d->dep_waiting--;
        if (!d->dep_unlisted) {     /* the last one takes its place */
            d->dep_jobs[j->dep_at] = d->dep_jobs[d->dep_waiting];
            d->dep_jobs[j->dep_at]->dep_at = j->dep_at;
        } else if (!d->dep_waiting) {
            d->dep_unlisted = false;
        }
        return;
    }
    if (!d->dep_unlisted && d->dep_waiting == d->cap_dep_jobs) {
        size_t cap = d->cap_dep_jobs ? d->cap_dep_jobs * 2 : 64;
        vramd_job **p = realloc(d->dep_jobs, cap * sizeof(*p));
        if (p) {
            d->dep_jobs = p;
            d->cap_dep_jobs = cap;
        } else {
            d->dep_unlisted = true; /* deps_again walks the table until none wait */
        }
    }
    if (!d->dep_unlisted) {
        j->dep_at = d->dep_waiting;
        d->dep_jobs[j->dep_at] = j;
    }
    d->dep_waiting++;
}

/* Copies row into *to with strings of its own (a missing one as its empty
 * value); VRAM_ENOMEM, with nothing held, when one cannot be copied. */
static int own_strings(vram__job *to, const vram__job *row)
{
    *to = *row;
    to->argv_json = strdup(row->argv_json ? row->argv_json : "[]");
    to->env_json = strdup(row->env_json ? row->env_json : "{}");
    to->cwd = strdup(row->cwd ? row->cwd : "/");
    to->name = strdup(row->name ? row->name : "");
    to->model = strdup(row->model ? row->model : "");
    to->settings_json = strdup(row->settings_json ? row->settings_json : "{}");
    to->ladder = strdup(row->ladder ? row->ladder : "");
    to->output = strdup(row->output ? row->output : "");
    to->deps = strdup(row->deps ? row->deps : "");
    if (to->argv_json && to->env_json && to->cwd && to->name && to->model && to->settings_json && to->ladder &&
        to->output && to->deps)
        return 0;
    vram__job_clear(to);
    return VRAM_ENOMEM;
}

/* A job that has just finished joins d->done, in its place by id (a few
 * thousand pointers moved at most, whatever the queue's length).  Without
 * memory for it, it is neither listed among the finished nor forgotten. */
static void done_add(vramd *d, vramd_job *j)
{
    if (d->finished_kept == d->cap_done) {
        size_t cap = d->cap_done ? d->cap_done * 2 : 1024;
        vramd_job **p = realloc(d->done, cap * sizeof(*p));
        if (!p)
            return;
        d->done = p;
        d->cap_done = cap;
    }
    size_t at = vramd_jobs_lower_bound(d->done, d->finished_kept, j->row.id);
    memmove(d->done + at + 1, d->done + at, (d->finished_kept - at) * sizeof(*d->done));
    d->done[at] = j;
    d->finished_kept++;
}

static void done_remove(vramd *d, vramd_job *j)
{
    size_t at = vramd_jobs_lower_bound(d->done, d->finished_kept, j->row.id);
    if (at == d->finished_kept || d->done[at] != j)
        return;
    memmove(d->done + at, d->done + at + 1, (d->finished_kept - at - 1) * sizeof(*d->done));
    d->finished_kept--;
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
    if (j->row.state >= 0 && j->row.state < VRAM__JOB_STATE_COUNT)
        d->counts[j->row.state]++;
    if (vramd_state_final(j->row.state))
        done_add(d, j);
    live_update(d, j);
    return 0;
}

/* Forgets the oldest finished jobs past the number kept (under d->lock):
 * the first of d->done, not found among every job.  A forgotten job is
 * no longer found, listed or counted; it leaves d->jobs, and memory, at
 * the next sweep, which walks the table once for as many forgotten as an
 * eighth of it: a job's end costs O(1) amortised, with 100,000 jobs
 * queued as with none. */
static void table_trim(vramd *d)
{
    size_t out = 0, i = 0;
    for (; i < d->finished_kept && d->finished_kept - (i - out) > VRAMD_MAX_FINISHED; i++) {
        vramd_job *j = d->done[i];
        if (j->unsaved) {           /* kept until on disk */
            d->done[out++] = j;
            continue;
        }
        if (j->row.state >= 0 && j->row.state < VRAM__JOB_STATE_COUNT && d->counts[j->row.state])
            d->counts[j->row.state]--;
        vramd_job_usage_count(d, j, false);
        j->forgotten = true;
        d->forgotten++;
    }
    if (i != out) {
        memmove(d->done + out, d->done + i, (d->finished_kept - i) * sizeof(*d->done));
        d->finished_kept -= i - out;
    }
    if (d->forgotten < 256 || d->forgotten < d->njobs / 8)
        return;
    out = 0;
    for (i = 0; i < d->njobs; i++) {
        vramd_job *j = d->jobs[i];
        if (j->forgotten)
            job_free(j);
        else
            d->jobs[out++] = j;
    }
    d->njobs = out;
    d->forgotten = 0;
}

/* ---- runners started ahead ---------------------------------------------------------------- */

/* A queued job's runner may be started before its turn (spawn.c): exec'd,
 * its devices open, it claims its job at once, and its claim is held until
 * the turn comes (vramd_job_claim_ahead).  The turn then costs one reply to
 * that claim, not a fork, an exec and a round trip.  The claim is answered
 * only after the start is written (start_runner), as any claim is: a vramd
 * killed meanwhile leaves a runner whose claim the next vramd refuses (it
 * did not start it), so the job is never run twice. */
#define PREPARED_MAX 2              /* runners waiting ahead at once */
#define PREPARE_LOOK 64             /* queued jobs looked at for one, per loop round */
#define REUSED_MAX (2 * PREPARED_MAX)   /* with runners whose job ended, taking the next */

/* A runner killed: also its empty cgroups (the one it keeps for its next
 * job), which one killed by a vramd that is not its parent would leave. */
static void kill_runner(pid_t pid)
{
    kill(pid, SIGKILL);
    vramd_runner_cgroups_tidy(pid);
}

/* Ends a job's runner started ahead, when the job ended before its turn (a
 * cancel, a failure) or vramd stops: it has started nothing (it starts its
 * command only on its claim's answer), so it is killed outright; the loop
 * reaps it. */
static void unprepare(vramd *d, vramd_job *j)
{
    if (!j->prepared)
        return;
    kill_runner(j->prepared);
    j->prepared = 0;
    j->claim_conn = 0;
    d->nprepared--;
    live_update(d, j);
}

static bool take_parked(vramd *d, vramd_job *j);

/* Starts the runners of the next queued jobs ahead of their turn, when no
 * start is under way (a fork then would delay its claim).  The jobs are
 * looked at in id order from where the last look stopped, PREPARE_LOOK at
 * most: a round costs the same however long the queue. */
static void prepare_runners(vramd *d)
{
    if (d->nprepared >= PREPARED_MAX || !d->counts[VRAM__JOB_QUEUED] || d->counts[VRAM__JOB_STARTING])
        return;
    size_t lo = 0, hi = d->njobs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (d->jobs[mid]->row.id < d->prepare_from)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < d->njobs && i - lo < PREPARE_LOOK && d->nprepared < PREPARED_MAX; i++) {
        vramd_job *j = d->jobs[i];
        d->prepare_from = j->row.id + 1;
        if (j->row.state != VRAM__JOB_QUEUED || !j->ticket || j->prepared || j->dep_wait || j->unsaved)
            continue;
        if (take_parked(d, j))
            continue;
        pid_t pid;
        int gate;
        if (vramd_runner_fork(d, j, &pid, &gate)) {
            vram__clear_error();    /* started at its turn instead, or failed then with the reason */
            return;
        }
        /* Its claim, not its gate, waits for the turn. */
        if (vramd_runner_gate(d, j->row.id, pid, gate, true)) {
            vram__clear_error();
            kill_runner(pid);
            return;
        }
        j->prepared = pid;
        j->claim_conn = 0;
        d->nprepared++;
        live_update(d, j);          /* where vramd_jobs_reaped looks for its runner */
    }
}

/* Whether a runner of `ended`'s may run j as it is, without a new exec:
 * the same user and the same environment (the runner's own, which it
 * reads its settings from and hands its command), and an end file it can
 * write itself.  Its folder, log and --output it changes to. */
static bool runner_fits(vramd *d, uint32_t uid, const char *env, const vramd_job *j)
{
    char end[4300];
    return j->row.owner_uid == uid && !strcmp(j->row.env_json, env) &&
           !vramd_job_end_path(d, j, end, sizeof(end)) && !vramd_end_by_fd(d, j, end);
}

/* Makes pid the runner started ahead for j (reused: its own job ended). */
static void reuse_for(vramd *d, vramd_job *j, pid_t pid)
{
    j->prepared = pid;
    j->claim_conn = 0;
    d->nprepared++;
    live_update(d, j);              /* where vramd_jobs_reaped looks for its runner */
}

static void unpark(vramd *d, size_t i)
{
    free(d->parked[i].env);
    d->parked[i] = d->parked[--d->nparked];
}

/* The job `id` that has ended under runner pid, which may then be reused
 * (not an orphan's); else NULL. */
static vramd_job *ended_under(vramd *d, uint64_t id, uint32_t pid)
{
    vramd_job *e = vramd_job_find(d, id);
    return e && vramd_state_final(e->row.state) && e->row.runner_pid == pid && !e->orphan ? e : NULL;
}

bool vramd_runner_park(vramd *d, vramd_conn *c, const vram__request *r)
{
    vramd_job *e = ended_under(d, r->job, c->pid);
    if (!e || d->nparked >= VRAMD_PARKED_MAX)
        return false;
    struct vramd_parked *p = &d->parked[d->nparked];
    if (!(p->env = strdup(e->row.env_json)))
        return false;
    p->conn = c->id;
    vram__strlcpy(p->request_id, r->id, sizeof(p->request_id));
    p->pid = (pid_t)c->pid;
    p->uid = e->row.owner_uid;
    p->until_ms = vram__now_ms() + VRAMD_PARK_MS;
    d->nparked++;
    return true;
}

/* A parked runner that fits j becomes its runner started ahead; false
 * when none does (or none could be told). */
static bool take_parked(vramd *d, vramd_job *j)
{
    for (size_t i = 0; i < d->nparked; i++) {
        struct vramd_parked *p = &d->parked[i];
        if (!runner_fits(d, p->uid, p->env, j))
            continue;
        uint64_t conn = p->conn;
        char id[64];
        vram__strlcpy(id, p->request_id, sizeof(id));
        pid_t pid = p->pid;
        unpark(d, i--);
        reuse_for(d, j, pid);
        if (vramd_reply_next(d, conn, id, j))
            return true;
        vramd_job_runner_gone(d, j);    /* its connection is gone: so is it, or it will be */
    }
    vram__clear_error();
    return false;
}

/* The parked runners whose wait is over are told there is no next job. */
static void unpark_expired(vramd *d, uint64_t now)
{
    for (size_t i = 0; i < d->nparked; i++)
        if (d->parked[i].until_ms <= now) {
            uint64_t conn = d->parked[i].conn;
            char id[64];
            vram__strlcpy(id, d->parked[i].request_id, sizeof(id));
            unpark(d, i--);
            vramd_reply_next(d, conn, id, NULL);
        }
}

vramd_job *vramd_job_runner_next(vramd *d, uint64_t ended, uint32_t pid)
{
    vramd_job *e = ended_under(d, ended, pid);
    if (!e || d->nprepared >= REUSED_MAX || !d->counts[VRAM__JOB_QUEUED])
        return NULL;
    /* From where prepare_runners looks, moving that on over jobs no runner
     * will be wanted for (started or ended since), at most PREPARE_LOOK. */
    size_t lo = vramd_jobs_lower_bound(d->jobs, d->njobs, d->prepare_from);
    bool front = true;
    for (size_t i = lo; i < d->njobs && i - lo < PREPARE_LOOK; i++) {
        vramd_job *j = d->jobs[i];
        bool waits = j->row.state == VRAM__JOB_QUEUED;
        if (front && !waits)
            d->prepare_from = j->row.id + 1;
        front = front && !waits;
        if (!waits || !j->ticket || j->prepared || j->dep_wait || j->unsaved ||
            !runner_fits(d, e->row.owner_uid, e->row.env_json, j))
            continue;
        reuse_for(d, j, (pid_t)pid);
        return j;
    }
    vram__clear_error();
    return NULL;
}

void vramd_job_runner_gone(vramd *d, vramd_job *j)
{
    if (!j->prepared)
        return;
    j->prepared = 0;
    j->claim_conn = 0;
    d->nprepared--;
    live_update(d, j);
}

bool vramd_job_runner_ahead(const vramd *d, uint64_t id, uint32_t pid)
{
    const vramd_job *j = vramd_job_find((vramd *)d, id);
    return j && j->row.state == VRAM__JOB_QUEUED && j->prepared > 0 && (uint32_t)j->prepared == pid;
}

bool vramd_jobs_runner_alive(vramd *d, uint32_t pid)
{
    for (size_t i = 0; pid > 1 && i < d->nlive; i++) {
        const vramd_job *j = d->live[i];
        if (j->row.runner_pid == pid &&
            (j->row.state == VRAM__JOB_STARTING || j->row.state == VRAM__JOB_RUNNING) &&
            vramd_runner_alive(d, pid, j->row.runner_start))
            return true;
    }
    return false;
}

bool vramd_job_claim_ahead(vramd *d, vramd_conn *c, const vram__request *req)
{
    vramd_job *j = vramd_job_find(d, req->job);
    if (!j || !vramd_job_runner_ahead(d, req->job, c->pid) || j->claim_conn)
        return false;
    j->claim_conn = c->id;
    vram__strlcpy(j->claim_request_id, req->id, sizeof(j->claim_request_id));
    return true;
}

/* The runner started ahead for j, if it is still there (taken from j, with
 * its held claim's connection in *conn, 0 when it has not claimed yet);
 * else 0. */
static pid_t take_prepared(vramd *d, vramd_job *j, uint64_t *conn)
{
    pid_t pid = j->prepared;
    *conn = j->claim_conn;
    if (!pid)
        return 0;
    j->prepared = 0;
    j->claim_conn = 0;
    d->nprepared--;
    live_update(d, j);
    pid_t got = waitpid(pid, NULL, WNOHANG);
    if (got == 0 && (!*conn || vramd_conn_find(d, *conn)))
        return pid;
    if (got == pid)
        vramd_runner_reaped(d, pid);
    kill_runner(pid);               /* gone, or its claim's connection is: one is forked */
    *conn = 0;
    return 0;
}

/* A job's new state in memory (under d->lock), with what it means. */
static void set_state(vramd *d, vramd_job *j, int state)
{
    if (j->prepared && state != VRAM__JOB_QUEUED)
        unprepare(d, j);
    if (!vramd_state_final(j->row.state) && vramd_state_final(state)) {
        done_add(d, j);
        /* /metrics: counted once per end, as it happens (not the kept
         * jobs, which are forgotten: a counter never goes down). */
        d->finished_total[vram__outcome_index(j->row.outcome)]++;
        if (state >= 0 && state < VRAM__JOB_STATE_COUNT)
            d->ended[state]++;      /* counted here, with the job's end, not at a later trim */
        if (j->row.started_ms && j->row.ended_ms >= j->row.started_ms)
            vram__duration_histogram_add(&d->durations,
                                         (double)(j->row.ended_ms - j->row.started_ms) / 1000.0);
    } else if (vramd_state_final(j->row.state) && !vramd_state_final(state))
        done_remove(d, j);
    if (j->row.state >= 0 && j->row.state < VRAM__JOB_STATE_COUNT && d->counts[j->row.state])
        d->counts[j->row.state]--;
    if (state >= 0 && state < VRAM__JOB_STATE_COUNT)
        d->counts[state]++;
    vramd_job_usage_count(d, j, false);
    j->row.state = state;
    vramd_job_usage_count(d, j, true);
    if (vramd_state_final(state))
        d->deps_changed = true;     /* a job waiting for it may go now (vramd_jobs_tick) */
    if (j->dep_wait && state != VRAM__JOB_QUEUED)
        dep_wait_set(d, j, false);
    live_update(d, j);
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

/* ---- sizing -------------------------------------------------------------------------- */

static void strings_free(char **list, size_t n);

/* The job's settings object as "key=value" strings, for the planner. */
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
    size_t made = 0;
    for (; list && made < o->n; made++) {
        size_t len = strlen(o->keys[made]) + strlen(o->items[made]->str) + 2;
        if (!(list[made] = malloc(len)))
            break;
        snprintf(list[made], len, "%s=%s", o->keys[made], o->items[made]->str);
    }
    bool whole = list && made == o->n;
    vram__json_doc_free(doc);
    if (!whole) {
        strings_free(list, made);
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    }
    *n = made;
    *out = list;
    return 0;
}

static void strings_free(char **list, size_t n)
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
    return vram__fail(VRAM_ENOFIT, "the job needs %s; %s can give %s (its total less "
                      "driver-reserved memory and the safety margin)", need, which, can);
}

/* Sizes the job once, at submit: its budget and tier go into its record
 * (and the job store), where recovery and its runner find them. */
int vramd_job_estimate(vramd *d, vramd_job *j)
{
    if (j->row.budget_bytes) {      /* sized already */
        j->estimate_bytes = j->row.budget_bytes;
        vram__strlcpy(j->tier, j->row.tier, sizeof(j->tier));
        return 0;
    }
    /* A model named is one there is, with --vram too: refused at the
     * submit, not when the job's runner starts. */
    bool with_model = *j->row.model || !j->row.vram_bytes;
    vram_profile *p = NULL;
    int rc = with_model ? vram_profile_load(vram_ctx_options(d->ctx), j->row.model, &p) : 0;
    if (rc)
        return rc;
    if (j->row.vram_bytes) {
        vram_profile_free(p);
        j->estimate_bytes = j->row.budget_bytes = j->row.vram_bytes;
        return 0;
    }
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
    /* A command with {args} is planned as its runner will plan it. */
    rc = vram__plan_make_for_args(d->ctx, p, (const char *const *)settings, n, budget, dev,
                                  plan__find_args(j->row.argv_json) != NULL, &plan);
    if (!rc) {
        vram_estimate e;
        rc = vram_plan_estimate(plan, &e);
        if (!rc) {
            j->estimate_bytes = j->row.budget_bytes = e.peak_bytes;
            vram__strlcpy(j->tier, vram_plan_tier(plan), sizeof(j->tier));
            vram__strlcpy(j->row.tier, j->tier, sizeof(j->row.tier));
        }
        vram_plan_free(plan);
    }
    strings_free(settings, n);
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
        .expected_ms = j->row.time_ms,
        .flags = VRAM_LEASE_JOB,
        .wait_reason = &j->wait_why,
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
        vramd_job_announce(d, j);
    }
}

/* ---- dependencies (vram submit --after / --afterok) ------------------------------------ */

static void enqueue(vramd *d, vramd_job *j);

typedef struct job_dep {
    uint64_t id;
    bool ok;                        /* afterok: only if it succeeded */
} job_dep;

/* "12,ok:13" as a list; returns how many (at most cap). */
static size_t deps_parse(const char *text, job_dep *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = text ? text : ""; *p && n < cap;) {
        bool ok = !strncmp(p, "ok:", 3);
        if (ok)
            p += 3;
        char *end;
        unsigned long long id = strtoull(p, &end, 10);
        if (end == p)
            break;
        out[n++] = (job_dep){ id, ok };
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

/* Job id's state, from the table or, for one trimmed from it, the store;
 * -1 when vramd has no such job. */
static int dep_state(vramd *d, uint64_t id)
{
    const vramd_job *o = vramd_job_find(d, id);
    if (o)
        return o->row.state;
    vram__job row;
    if (vram__queue_get(d->queue, id, &row)) {
        vram__clear_error();
        return -1;
    }
    int state = row.state;
    vram__job_clear(&row);
    return state;
}

/* At submit: every job it waits for exists. */
static int deps_known(vramd *d, const vram__job *row)
{
    job_dep deps[VRAM__PROTO_MAX_DEPS];
    size_t n = deps_parse(row->deps, deps, VRAM__PROTO_MAX_DEPS);
    for (size_t i = 0; i < n; i++)
        if (dep_state(d, deps[i].id) < 0)
            return vram__fail(VRAM_ENOENT, "--after%s %llu: vramd has no job %llu (see 'vram queue')",
                              deps[i].ok ? "ok" : "", (unsigned long long)deps[i].id,
                              (unsigned long long)deps[i].id);
    return 0;
}

static int end_canceled(vramd *d, vramd_job *j, int from, const char *note);
static void orphan_stop(vramd *d, vramd_job *j);

/* Whether a queued job may ask for its memory: 0 yes; 1 it waits for a job
 * to end (its reason says which); -1 a job it needed to succeed did not,
 * and it has ended canceled, saying so. */
static int deps_ready(vramd *d, vramd_job *j)
{
    job_dep deps[VRAM__PROTO_MAX_DEPS];
    size_t n = deps_parse(j->row.deps, deps, VRAM__PROTO_MAX_DEPS);
    for (size_t i = 0; i < n; i++) {
        int state = dep_state(d, deps[i].id);
        if (state >= 0 && !vramd_state_final(state)) {
            pthread_mutex_lock(&d->lock);
            snprintf(j->reason, sizeof(j->reason), "Dependency: waits for job %llu to %s",
                     (unsigned long long)deps[i].id, deps[i].ok ? "succeed" : "end");
            dep_wait_set(d, j, true);
            vramd_changed(d);
            pthread_mutex_unlock(&d->lock);
            return 1;
        }
        if (deps[i].ok && state != VRAM__JOB_SUCCEEDED) {
            char note[200];
            snprintf(note, sizeof(note), "dependency failed: job %llu %s, and this job was to start only "
                     "if it succeeded (--afterok)", (unsigned long long)deps[i].id,
                     state < 0 ? "is gone" : vram__job_state_name(state));
            end_canceled(d, j, VRAM__JOB_QUEUED, note);
            return -1;
        }
    }
    return 0;
}

/* Queued jobs whose dependencies may have ended since: looked at again
 * (those listed in d->dep_jobs; every job only when one could not be). */
static void deps_again(vramd *d)
{
    d->deps_changed = false;
    if (!d->dep_waiting)
        return;
    bool walk = d->dep_unlisted;
    size_t n = walk ? d->njobs : d->dep_waiting;
    vramd_job **some = malloc(n * sizeof(*some));
    if (!some)
        return;                     /* looked at again at the next end */
    memcpy(some, walk ? d->jobs : d->dep_jobs, n * sizeof(*some));
    size_t k = 0;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < n; i++) {
        vramd_job *j = some[i];
        if (!j->dep_wait || j->row.state != VRAM__JOB_QUEUED)
            continue;
        dep_wait_set(d, j, false);
        some[k++] = j;
    }
    pthread_mutex_unlock(&d->lock);
    for (size_t i = 0; i < k; i++)
        enqueue(d, some[i]);        /* waits again if it still has to */
    free(some);
}

/* Queues a job for admission: its dependencies ended, sized, then asked for. */
static void enqueue(vramd *d, vramd_job *j)
{
    int rc = j->estimate_bytes ? 0 : vramd_job_estimate(d, j);
    if (!rc && j->row.deps && *j->row.deps && deps_ready(d, j))
        return;                     /* waits for a job to end, or ended with it */
    if (!rc)
        rc = request_lease(d, j, j->estimate_bytes, j->row.device_pref);
    if (rc) {
        char why[256];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        fail_job(d, j, VRAM__JOB_QUEUED, "not-started", why);
        return;
    }
    pthread_mutex_lock(&d->lock);
    j->reason[0] = '\0';           /* the ledger says why it waits (wait_why) */
    vramd_changed(d);
    pthread_mutex_unlock(&d->lock);
}

/* ---- runners ------------------------------------------------------------------------------- */

static int claim(vramd *d, uint64_t id, uint32_t pid, bool stored, vram_lease_info *out);

/* The held claim of the runner started ahead for j, answered now that the
 * start is written, as vramd_job_claim answers one that comes later; the
 * store has the job running already (start_runner wrote both at once). */
static void answer_claim_ahead(vramd *d, vramd_job *j, uint64_t conn)
{
    vram_lease_info lease;
    int rc = claim(d, j->row.id, j->row.runner_pid, true, &lease);
    char why[256] = "";
    if (rc)
        vram__strlcpy(why, vram_last_error(), sizeof(why));
    bool told = vramd_reply_lease(d, conn, j->claim_request_id, rc, rc ? why : NULL, &lease, rc ? NULL : &j->row);
    vram__clear_error();
    if (!told)                      /* its runner is going: the tick sees it gone */
        kill_runner((pid_t)j->row.runner_pid);
}

/* Starts the job's runner on its granted lease: the one started ahead
 * (its held claim answered once the start is written), or one forked now
 * and held at its gate until then. */
static int start_runner(vramd *d, vramd_job *j, const vram_lease_info *lease)
{
    int gate = -1;
    uint64_t claim_conn = 0;
    pid_t pid = take_prepared(d, j, &claim_conn);
    if (!pid && take_parked(d, j))
        pid = take_prepared(d, j, &claim_conn);
    int rc = pid ? 0 : vramd_runner_fork(d, j, &pid, &gate);
    if (rc)
        return rc;
    vram__job f = { .device = (int)lease->device, .lease_bytes = lease->bytes,
                    .runner_pid = (uint32_t)pid, .runner_start = vramd_runner_start(d, (uint32_t)pid) };
    /* A runner that claimed ahead gets it at once: started and claimed in
     * one write (one store transaction a job fewer on the hand-over). */
    int to = claim_conn ? VRAM__JOB_RUNNING : VRAM__JOB_STARTING;
    rc = save_kept(d, j) ? vram__queue_move(d->queue, j->row.id, VRAM__JOB_QUEUED, to, &f)
                         : vram__fail(VRAM_ENOSPC, "job %llu's last move is not on disk yet",
                                      (unsigned long long)j->row.id);
    int gated = gate < 0 ? 0 : vramd_runner_gate(d, j->row.id, pid, gate, rc == 0);
    if (rc && gate < 0)
        kill_runner(pid);           /* started ahead, and its claim is not to be answered */
    if (rc || gated)
        return rc ? rc : gated;
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
    vramd_job_announce(d, j);
    if (claim_conn)
        answer_claim_ahead(d, j, claim_conn);
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
        uint64_t conn = j->rung_conn;
        j->rung_conn = 0;
        if (!m->status) {
            j->lease = m->lease.id;
            vram_lease_set_owner(d->ledger, j->lease, j->row.runner_pid, j->row.job_pgid);
            pthread_mutex_lock(&d->lock);   /* the queue shows the rung's budget from now on */
            j->estimate_bytes = m->lease.bytes;
            j->row.lease_bytes = m->lease.bytes;
            j->row.device = (int)m->lease.device;
            vramd_changed(d);
            pthread_mutex_unlock(&d->lock);
        }
        bool told = vramd_reply_lease(d, conn, j->rung_request_id, m->status, "no budget for the next rung",
                                      &m->lease, NULL);
        if (!told && !m->status)
            release_lease(d, j);
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
            live_update(d, j);
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

/* What a claim is answered with: the job's lease. */
static void fill_claim(const vramd_job *j, vram_lease_info *out)
{
    memset(out, 0, sizeof(*out));
    out->id = j->lease;
    out->device = j->row.device >= 0 ? (unsigned)j->row.device : 0;
    out->bytes = j->row.lease_bytes;
}

/* Whether pid asks again for a job it was given: the last vramd wrote the
 * claim (running, under this very process: its pid and start time) and
 * was killed before it answered, so the runner, which starts its command
 * only on the answer, asks the next one.  Its command has not started
 * (no process group yet): the answer is given again, and the job runs
 * once.  Refused, it was failed as lost, never run. */
static bool claimed_before(vramd *d, const vramd_job *j, uint32_t pid)
{
    return j->row.state == VRAM__JOB_RUNNING && j->adopted && !j->row.job_pgid && j->row.runner_pid == pid &&
           j->row.runner_start && j->row.runner_start == vramd_runner_start(d, pid);
}

/* The claim of a starting job by runner pid; `stored`: its move to running
 * is in the store already (written with its start: answer_claim_ahead). */
static int claim(vramd *d, uint64_t id, uint32_t pid, bool stored, vram_lease_info *out)
{
    vramd_job *j = vramd_job_find(d, id);
    if (!j)
        return vram__fail(VRAM_ENOENT, "no job %llu", (unsigned long long)id);
    if (claimed_before(d, j, pid)) {
        fill_claim(j, out);         /* the claim again, its answer lost with the last vramd */
        return 0;
    }
    if (j->row.state != VRAM__JOB_STARTING)
        return vram__fail(VRAM_EAGAIN, "job %llu is %s, not starting: it is not yours to run",
                          (unsigned long long)id, vram__job_state_name(j->row.state));
    if (j->row.runner_pid && j->row.runner_pid != pid)
        return vram__fail(VRAM_EPERM, "job %llu was given to runner %u, not %u", (unsigned long long)id,
                          j->row.runner_pid, pid);
    vram__job f = { .device = -1, .runner_pid = pid, .runner_start = vramd_runner_start(d, pid) };
    int rc = stored ? 0 : vram__queue_move(d->queue, id, VRAM__JOB_STARTING, VRAM__JOB_RUNNING, &f);
    if (rc)
        return rc;
    pthread_mutex_lock(&d->lock);
    j->row.runner_pid = pid;
    j->row.runner_start = f.runner_start;
    j->progress = -1;
    set_state(d, j, VRAM__JOB_RUNNING);
    pthread_mutex_unlock(&d->lock);
    fill_claim(j, out);
    vramd_job_announce(d, j);
    return 0;
}

int vramd_job_claim(vramd *d, uint64_t id, uint32_t pid, vram_lease_info *out)
{
    return claim(d, id, pid, false, out);
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
        vramd_job_usage_count(d, j, false);
        j->shim_ms = vram__now_ms();
        j->used_bytes = used;
        if (used > j->row.peak_bytes)
            j->row.peak_bytes = used;
        if (over > j->over_bytes)
            j->over_bytes = over;
        vramd_job_usage_count(d, j, true);
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
    if (vramd_state_final(j->row.state))
        return 0;                   /* told again: by a runner whose daemon died before answering */
    int to = final_state_of(outcome);
    vram__job f = { .device = -1, .exit_status = exit_status, .peak_bytes = peak };
    vram__strlcpy(f.outcome, outcome, sizeof(f.outcome));
    if (to == VRAM__JOB_CANCELED && *j->cancel_by)
        snprintf(f.note, sizeof(f.note), "canceled by %s while it ran", j->cancel_by);
    int rc = store_end(d, j, VRAM__JOB_RUNNING, to, &f);
    if (rc == VRAM_EAGAIN) {
        reload(d, j);               /* its runner wrote the end itself */
        rc = vramd_state_final(j->row.state) ? 0 : rc;
    } else if (!rc) {
        pthread_mutex_lock(&d->lock);
        j->row.exit_status = exit_status;
        vram__strlcpy(j->row.outcome, outcome, sizeof(j->row.outcome));
        vram__strlcpy(j->row.note, f.note, sizeof(j->row.note));
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
        vramd_job_announce(d, j);
    }
    return rc;
}

/* ---- submit, cancel ---------------------------------------------------------------------------- */

/* Sized, and on a device that can hold it: what a submit asks of a job. */
static int acceptable(vramd *d, vramd_job *j, uint64_t largest)
{
    int rc = deps_known(d, &j->row);
    if (rc)
        return rc;
    rc = vramd_job_estimate(d, j);
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
        rows[i].budget_bytes = made[i]->row.budget_bytes;     /* stored with the job */
        vram__strlcpy(rows[i].tier, made[i]->row.tier, sizeof(rows[i].tier));
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
        /* Own copies of the strings from here on.  The rows are on disk: a
         * job that cannot be kept in memory is failed there, not lost. */
        int kept = own_strings(&j->row, &rows[i]);
        pthread_mutex_lock(&d->lock);
        if (!kept)
            kept = table_add(d, j);
        if (!kept)
            vramd_changed(d);
        pthread_mutex_unlock(&d->lock);
        if (kept) {
            vram__job f = { .device = -1 };
            snprintf(f.outcome, sizeof(f.outcome), "not-started");
            snprintf(f.note, sizeof(f.note), "vramd ran out of host memory taking it");
            vram__queue_move(d->queue, rows[i].id, VRAM__JOB_QUEUED, VRAM__JOB_FAILED, &f);
            vram__clear_error();
            job_free(j);
            continue;
        }
        enqueue(d, j);
    }
    free(made);
    return 0;
}

int vramd_job_cancel(vramd *d, uint64_t id, const char *by)
{
    vramd_job *j = vramd_job_find(d, id);
    if (!j)
        return vram__fail(VRAM_ENOENT, "no job %llu (or it ended long ago)", (unsigned long long)id);
    if (vramd_state_final(j->row.state))
        return vram__fail(VRAM_EBUSY, "job %llu has already ended (%s)", (unsigned long long)id,
                          vram__job_state_name(j->row.state));
    if (by && !*j->cancel_by)
        vram__strlcpy(j->cancel_by, by, sizeof(j->cancel_by));
    if (j->row.state == VRAM__JOB_RUNNING || j->row.state == VRAM__JOB_STARTING) {
        /* Its runner ends the job's processes and records "canceled"; with
         * its runner gone, vramd stops them itself (stop.c). */
        if (j->row.runner_pid && vram__proc_alive(j->row.runner_pid, j->row.runner_start))
            kill((pid_t)j->row.runner_pid, SIGTERM);
        else if (j->orphan)
            orphan_stop(d, j);
        j->cancel_asked = true;
        if (j->row.state == VRAM__JOB_RUNNING)
            return 0;
    }
    char note[128];
    snprintf(note, sizeof(note), "canceled before it ran, by %s", *j->cancel_by ? j->cancel_by : "someone");
    return end_canceled(d, j, j->row.state, note);
}

/* Records the job canceled (from state `from`) and gives its room back. */
static int end_canceled(vramd *d, vramd_job *j, int from, const char *note)
{
    if (j->ticket)
        vram_lease_cancel(d->ledger, j->ticket);
    j->ticket = 0;
    vram__job f = { .device = -1 };
    snprintf(f.outcome, sizeof(f.outcome), "canceled");
    snprintf(f.note, sizeof(f.note), "%s", note);
    int rc = store_end(d, j, from, VRAM__JOB_CANCELED, &f);
    if (rc)
        return rc;
    release_lease(d, j);
    pthread_mutex_lock(&d->lock);
    vram__strlcpy(j->row.outcome, "canceled", sizeof(j->row.outcome));
    j->row.ended_ms = vram__unix_ms();
    j->reason[0] = '\0';
    vram__strlcpy(j->row.note, f.note, sizeof(j->row.note));
    set_state(d, j, VRAM__JOB_CANCELED);
    pthread_mutex_unlock(&d->lock);
    vramd_job_announce(d, j);
    return 0;
}

/* ---- runners that went away ----------------------------------------------------------------------- */

/* How long an orphan's processes have between SIGTERM and SIGKILL: as its
 * runner would have given them (--kill-wait, Slurm's KillWait). */
static uint64_t orphan_grace_ms(vramd *d)
{
    uint64_t ms = 5000;
    vram_duration_parse(vram_options_get(vram_ctx_options(d->ctx), "kill-wait"), 1, &ms);
    return ms;
}
/* How often an orphan's processes are looked for (a walk of /proc). */
#define ORPHAN_LOOK_MS 200

/* Stops what an orphan still runs: SIGTERM now, SIGKILL after the grace. */
static void orphan_stop(vramd *d, vramd_job *j)
{
    if (j->orphan_kill_ms)
        return;
    size_t n = vramd_job_signal_orphan(d, j, SIGTERM);
    j->orphan_kill_ms = vram__now_ms() + orphan_grace_ms(d);
    vramd_say(d, "job %llu: its runner is gone; vramd stops its %zu process%s itself",
              (unsigned long long)j->row.id, n, n == 1 ? "" : "es");
}

/* A running job whose runner is gone may have left its end in its end
 * file (the runner could not write the store: it runs as the job's
 * submitter).  True when that end is taken: the job ended, or (its command
 * never started) is queued again.  The file is the job owner's, read as
 * such (wire/link.c): a user can only speak for their own job. */
static bool end_from_file(vramd *d, vramd_job *j)
{
    char path[4300];
    vram__end e;
    int rc = vramd_job_end_path(d, j, path, sizeof(path));
    if (!rc)
        rc = vram__end_read(path, j->row.owner_uid, &e);
    if (!rc && e.job != j->row.id)
        rc = vram__fail(VRAM_EPARSE, "the end file %s is job %llu's", path, (unsigned long long)e.job);
    if (rc) {
        if (rc != VRAM_ENOENT)
            vramd_say(d, "job %llu: %s", (unsigned long long)j->row.id, vram_last_error());
        vram__clear_error();
        return false;
    }
    release_lease(d, j);
    int to = !e.ran ? VRAM__JOB_QUEUED : final_state_of(e.outcome);
    vram__job f = { .device = -1, .exit_status = e.exit_status, .peak_bytes = e.peak };
    vram__strlcpy(f.outcome, e.ran ? e.outcome : "", sizeof(f.outcome));
    vram__strlcpy(f.note, e.ran ? "its end was read from its runner's end file (vramd was gone when it ended)"
                                : "its runner could not start it and vramd was gone: queued again",
                  sizeof(f.note));
    if (store_end(d, j, VRAM__JOB_RUNNING, to, &f) != 0) {
        vram__clear_error();
        return false;
    }
    pthread_mutex_lock(&d->lock);
    vram__strlcpy(j->row.note, f.note, sizeof(j->row.note));
    if (to == VRAM__JOB_QUEUED) {
        j->row.runner_pid = 0;
        j->row.job_pgid = 0;
        j->row.device = -1;
    } else {
        j->row.exit_status = e.exit_status;
        vram__strlcpy(j->row.outcome, e.outcome, sizeof(j->row.outcome));
        if (e.peak > j->row.peak_bytes)
            j->row.peak_bytes = e.peak;
        j->row.ended_ms = vram__unix_ms();
    }
    set_state(d, j, to);
    pthread_mutex_unlock(&d->lock);
    vramd_say(d, "job %llu %s, as its end file says (%s)", (unsigned long long)j->row.id,
              vram__job_state_name(to), e.ran ? e.outcome : "never started");
    if (to == VRAM__JOB_QUEUED)
        enqueue(d, j);
    vramd_job_announce(d, j);
    return true;
}

/* The runner of a starting or running job is gone without a word: follow
 * what it left running, or queue the job again if nothing of it is left. */
static void runner_lost(vramd *d, vramd_job *j)
{
    reload(d, j);
    if (vramd_state_final(j->row.state)) {
        release_lease(d, j);
        vramd_job_announce(d, j);
        return;
    }
    if (j->row.state == VRAM__JOB_QUEUED) {     /* it could not start it and gave it back */
        release_lease(d, j);
        vramd_say(d, "job %llu queued again by its runner: %s", (unsigned long long)j->row.id, j->row.note);
        enqueue(d, j);
        vramd_job_announce(d, j);
        return;
    }
    /* Its processes, as stop.c finds them (the user's, started since its
     * runner): not any group of its number, which may be another's once
     * its own has ended (a root vramd followed that one, its lease held). */
    if (vramd_job_signal_orphan(d, j, 0)) {
        j->orphan = true;           /* its processes still run: never start it twice */
        j->orphan_seen_ms = vram__now_ms();
        vramd_say(d, "job %llu lost its runner; following its processes to their end",
                  (unsigned long long)j->row.id);
        if (j->cancel_asked)        /* canceled while its runner died: stopped all the same */
            orphan_stop(d, j);
        return;
    }
    if (j->row.state == VRAM__JOB_RUNNING && end_from_file(d, j))
        return;
    release_lease(d, j);
    int from = j->row.state;
    if (j->row.attempts >= VRAMD_MAX_ATTEMPTS) {
        fail_job(d, j, from, "lost", "its runner was lost too many times");
        return;
    }
    /* Its command started (its process group is on disk, written when the
     * runner started it) and is gone: it may have ended with its end lost to
     * a full disk and a restart.  Exactly once: it is never run again.  Only
     * a job never claimed (starting: its runner never had its command) goes
     * back to the queue. */
    /* Canceled, and everything it started is gone: the cancel was done,
     * whether or not the runner's own word of it arrived. */
    if (j->cancel_asked) {
        char note[160];
        snprintf(note, sizeof(note), "canceled by %s; its runner ended its processes",
                 *j->cancel_by ? j->cancel_by : "someone");
        end_canceled(d, j, from, note);
        return;
    }
    if (from == VRAM__JOB_RUNNING && j->row.job_pgid) {
        fail_job(d, j, from, "lost", "its runner was lost after the job started (its end was never written): "
                 "not run a second time");
        return;
    }
    /* Claimed (its runner had its command) but no process group on disk:
     * the command may have started, and may still run where nothing can
     * follow it.  Never started a second time on a guess. */
    if (from == VRAM__JOB_RUNNING) {
        fail_job(d, j, from, "lost", "its runner was lost after it took the job, before its process group "
                 "reached the disk: it may have run, so it is not run a second time");
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
        vramd_job_announce(d, j);
    }
}

void vramd_jobs_reaped(vramd *d, pid_t pid, int status)
{
    (void)status;
    vramd_runner_reaped(d, pid);
    vramd_runner_cgroups_tidy(pid);
    for (size_t i = 0; i < d->nparked; i++)
        if (d->parked[i].pid == pid)
            unpark(d, i--);         /* never handed a job, nor its pid killed, once reaped */
    /* A runner's job is starting or running, or queued with its runner
     * started ahead: in d->live, not looked for among every job.  One
     * whose job already ended needs nothing. */
    for (size_t i = 0; i < d->nlive; i++) {
        vramd_job *j = d->live[i];
        if (j->prepared == pid) {   /* a runner started ahead ended before its turn */
            j->prepared = 0;
            j->claim_conn = 0;
            d->nprepared--;
            live_update(d, j);
            return;
        }
        if (j->runner != pid)
            continue;
        j->runner = 0;              /* the tick decides, once its last words are read */
        return;
    }
}

/* How long a gone runner's socket is read before its job is taken for lost. */
#define RUNNER_WORDS_GRACE_MS 500

/* An orphan's processes have all ended: what they came to is unknown. */
static void orphan_done(vramd *d, vramd_job *j)
{
    j->orphan = false;
    j->orphan_kill_ms = 0;
    if (j->cancel_asked) {
        char note[160];
        snprintf(note, sizeof(note), "canceled by %s; its runner was gone, vramd stopped its processes",
                 *j->cancel_by ? j->cancel_by : "someone");
        end_canceled(d, j, VRAM__JOB_RUNNING, note);
    } else if (j->orphan_timeout) {
        fail_job(d, j, VRAM__JOB_RUNNING, "timeout",
                 "stopped at its time limit by vramd (its runner was gone)");
    } else {
        fail_job(d, j, VRAM__JOB_RUNNING, "lost",
                 "its runner died; its processes ran to their end, but their exit status is lost");
    }
}

/* An orphan, each loop round: stopped at its time limit, SIGKILL after the
 * grace, done once nothing of it is left (its group, its cgroup, and
 * whatever carries its mark: a child that called setsid). */
static void orphan_tick(vramd *d, vramd_job *j, uint64_t now)
{
    if (j->row.time_limit_ms && !j->orphan_kill_ms && j->row.started_ms &&
        vram__unix_ms() >= j->row.started_ms + j->row.time_limit_ms) {
        j->orphan_timeout = true;
        orphan_stop(d, j);
    }
    if (j->orphan_kill_ms && now >= j->orphan_kill_ms) {
        vramd_job_signal_orphan(d, j, SIGKILL);
        j->orphan_kill_ms = now + 1000;     /* again, for any that were starting */
    }
    if (now - j->orphan_seen_ms < ORPHAN_LOOK_MS)
        return;
    j->orphan_seen_ms = now;
    if (!vramd_job_signal_orphan(d, j, 0))
        orphan_done(d, j);
}

/* How long a runner's report of the shim's count stands for the sample. */
#define SHIM_FRESH_MS 3000

/* Where NVML's pids are not this /proc's (vramd in a container without
 * --pid=host) no group's usage can be read: the jobs on such a device are
 * accounted per lease from it, as `vram run` does.  What the device uses
 * beyond its base (its use with no job of ours on it) is theirs, less what
 * the shim counted exactly for some; each of the others takes its lease's
 * share of the rest, never more than its lease.  The backend says once that
 * it is so (device/nvml.c). */
static void usage_per_lease(vramd *d, vramd_job **jobs, uint64_t *used, size_t n,
                            const vram__device_use *dev, uint64_t now)
{
    for (unsigned k = 0; k < VRAM_MAX_DEVICES; k++) {
        if (!dev[k].read)
            continue;
        uint64_t leases = 0, exact = 0, shown = 0;
        size_t on = 0;
        for (size_t i = 0; i < n; i++) {
            if (jobs[i]->row.device != (int)k)
                continue;
            on++;
            shown += jobs[i]->used_bytes;
            if (jobs[i]->shim_ms && now - jobs[i]->shim_ms < SHIM_FRESH_MS)
                exact += jobs[i]->used_bytes;
            else
                leases += jobs[i]->row.lease_bytes;
        }
        if (!on) {
            d->usage_base[k] = dev[k].used_bytes;
            d->usage_base_known[k] = true;
            continue;
        }
        if (!dev[k].foreign)
            continue;
        if (!d->usage_base_known[k]) {  /* first seen busy: what is not shown as ours */
            d->usage_base[k] = dev[k].used_bytes > shown ? dev[k].used_bytes - shown : 0;
            d->usage_base_known[k] = true;
        }
        uint64_t ours = dev[k].used_bytes > d->usage_base[k] ? dev[k].used_bytes - d->usage_base[k] : 0;
        ours = ours > exact ? ours - exact : 0;
        for (size_t i = 0; i < n; i++) {
            if (jobs[i]->row.device != (int)k || (jobs[i]->shim_ms && now - jobs[i]->shim_ms < SHIM_FRESH_MS))
                continue;
            uint64_t lease = jobs[i]->row.lease_bytes;
            uint64_t share = leases ? (uint64_t)((double)ours * (double)lease / (double)leases) : 0;
            used[i] = share < lease ? share : lease;
        }
    }
}

/* Every running job's real usage (its process group's, on every device),
 * read in one pass over the devices however many jobs run; also while jobs
 * only wait, so that each device's base is known before one starts. */
static void sample_usage(vramd *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->nlive; i++)
        n += d->live[i]->row.state == VRAM__JOB_RUNNING && d->live[i]->row.job_pgid;
    if (!d->nlive)
        return;
    vramd_job **jobs = malloc((n ? n : 1) * sizeof(*jobs));
    uint32_t *pgids = malloc((n ? n : 1) * sizeof(*pgids));
    uint64_t *used = malloc((n ? n : 1) * sizeof(*used));
    vram__device_use *dev = calloc(VRAM_MAX_DEVICES, sizeof(*dev));
    n = 0;
    for (size_t i = 0; jobs && pgids && used && i < d->nlive; i++)
        if (d->live[i]->row.state == VRAM__JOB_RUNNING && d->live[i]->row.job_pgid) {
            jobs[n] = d->live[i];
            pgids[n++] = d->live[i]->row.job_pgid;
        }
    if (jobs && pgids && used && dev &&
        !vram__process_groups_usage_on(d->ctx, pgids, n, used, dev, VRAM_MAX_DEVICES)) {
        pthread_mutex_lock(&d->lock);
        uint64_t now = vram__now_ms();
        usage_per_lease(d, jobs, used, n, dev, now);
        for (size_t k = 0; k < n; k++) {
            vramd_job *j = jobs[k];
            if (j->shim_ms && now - j->shim_ms < SHIM_FRESH_MS)
                continue;           /* the shim's count, sent by its runner, is exact */
            if (used[k] != j->used_bytes)
                vramd_changed(d);
            vramd_job_usage_count(d, j, false);
            j->used_bytes = used[k];
            vramd_job_usage_count(d, j, true);
            if (used[k] > j->row.peak_bytes)
                j->row.peak_bytes = used[k];
        }
        pthread_mutex_unlock(&d->lock);
    }
    vram__clear_error();
    free(jobs);
    free(pgids);
    free(used);
    free(dev);
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
    /* The live jobs as they are now: handling one may change the list. */
    size_t n = d->nlive;
    vramd_job **live = n ? malloc(n * sizeof(*live)) : NULL;
    if (live)
        memcpy(live, d->live, n * sizeof(*live));
    for (size_t i = 0; live && i < n; i++) {
        vramd_job *j = live[i];
        if (j->start_again_ms && now >= j->start_again_ms && j->row.state == VRAM__JOB_QUEUED && !j->ticket) {
            j->start_again_ms = 0;
            live_update(d, j);
            enqueue(d, j);
        }
        if (!((1 << j->row.state) & states))
            continue;
        if (j->orphan) {
            orphan_tick(d, j, now);
            continue;
        }
        bool ours = j->runner != 0;
        bool alive = ours || vram__proc_alive(j->row.runner_pid, j->row.runner_start);
        if (!alive) {
            /* A runner's end is sent before it exits, but its exit may be
             * reaped before the loop reads the socket: its last words get a
             * grace before the job is taken for lost. */
            if (!j->gone_ms)
                j->gone_ms = now;
            if (now - j->gone_ms >= RUNNER_WORDS_GRACE_MS) {
                j->gone_ms = 0;
                runner_lost(d, j);
            }
            continue;
        }
        if (j->row.state == VRAM__JOB_STARTING && j->claim_by_ms && now > j->claim_by_ms) {
            kill_runner((pid_t)j->row.runner_pid);      /* a runner that never claims is stuck */
            j->claim_by_ms = 0;
            continue;
        }
    }
    free(live);
    if (d->deps_changed)
        deps_again(d);
    prepare_runners(d);
    unpark_expired(d, now);
    table_trim(d);                  /* the jobs that ended since (the table swept now and then) */
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
    j->progress = -1;
    if (own_strings(&j->row, row)) {
        job_free(j);
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    }
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
    vramd_runner_cgroups_tidy(0);   /* what runners killed while no vramd was there left */
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
    pid_t killed[64];               /* reaped below, so that their empty cgroups go too */
    size_t nkilled = 0;
    for (size_t i = 0; i < d->nparked; i++) {  /* their jobs ended; they wait for nothing now */
        kill_runner(d->parked[i].pid);
        if (nkilled < sizeof(killed) / sizeof(killed[0]))
            killed[nkilled++] = d->parked[i].pid;
    }
    while (d->nparked)
        unpark(d, 0);
    for (size_t i = 0; i < d->njobs; i++) {
        vramd_job *j = d->jobs[i];
        if (j->prepared && nkilled < sizeof(killed) / sizeof(killed[0]))
            killed[nkilled++] = j->prepared;
        unprepare(d, j);
        if (j->ticket)
            vram_lease_cancel(d->ledger, j->ticket);
        if (j->lease)
            vram_lease_release(d->ledger, j->lease);
        job_free(j);
    }
    free(d->jobs);
    d->jobs = NULL;
    free(d->done);
    d->done = NULL;
    d->finished_kept = d->cap_done = d->forgotten = 0;
    d->njobs = d->cap_jobs = 0;
    memset(d->counts, 0, sizeof(d->counts));
    d->shim_used = d->over_total = 0;
    free(d->live);
    d->live = NULL;
    d->nlive = d->cap_live = 0;
    free(d->dep_jobs);
    d->dep_jobs = NULL;
    d->dep_waiting = d->cap_dep_jobs = 0;
    d->dep_unlisted = false;
    /* Cancels deliver their callbacks: their messages are freed with the inbox. */
    uint64_t until = vram__now_ms() + 500;   /* a SIGKILL takes effect at once, nearly always */
    for (size_t i = 0; i < nkilled; i++) {
        while (waitpid(killed[i], NULL, WNOHANG) == 0 && vram__now_ms() < until)
            vram__sleep_ms(2);
        vramd_runner_cgroups_tidy(killed[i]);
    }
    vramd_runner_kids_free(d);
}
