/*
 * daemon/jobview.c - a job as people and programs see it: its JSON (for
 * `vram queue`, the socket's list and show, the dashboard, events) and the
 * lists of jobs.
 *
 * Reads the job table under the caller's lock and changes nothing in it
 * but the cached command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_read.h"
#include "daemon/daemon.h"

void vramd_job_log_path(vramd *d, uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.logs/%llu.log", d->db_path, (unsigned long long)id);
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
    if (*why)
        vram__json_string(o, why);
    else
        vram__json_null(o);
    vram__json_key(o, "log");
    char log[4300];
    vramd_job_log_path(d, r->id, log, sizeof(log));
    vram__json_string(o, log);
    vram__json_object_end(o);
}

void vramd_job_announce(vramd *d, vramd_job *j)
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



void vramd_jobs_counts(vramd *d, uint64_t counts[VRAM__JOB_STATE_COUNT])
{
    memset(counts, 0, VRAM__JOB_STATE_COUNT * sizeof(counts[0]));
    for (size_t i = 0; i < d->njobs; i++)
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
