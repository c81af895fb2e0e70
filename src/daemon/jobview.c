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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    const char *why = *j->reason ? j->reason : r->note;
    char waits[160];
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

void vramd_jobs_counts(vramd *d, uint64_t counts[VRAM__JOB_STATE_COUNT])
{
    memset(counts, 0, VRAM__JOB_STATE_COUNT * sizeof(counts[0]));
    for (size_t i = 0; i < d->njobs; i++)
        if (d->jobs[i]->row.state >= 0 && d->jobs[i]->row.state < VRAM__JOB_STATE_COUNT)
            counts[d->jobs[i]->row.state]++;
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
        if (vramd_state_final(d->jobs[i]->row.state) && (state < 0 || state == d->jobs[i]->row.state)) {
            vramd_job_json(d, d->jobs[i], out);
            n++;
        }
    vram__json_array_end(out);
    return 0;
}
