/* SPDX-License-Identifier: MIT */
/*
 * daemon/provider.c - what the HTTP server asks of vramd (see http.h).
 *
 * Runs on the server's threads, under the daemon's one lock (d->lock), which
 * the main loop holds for all of each round's work: what the page reads is
 * never half-changed.  Submits and cancels from the page go through the
 * main loop's own code paths, so the page can do nothing a socket client
 * cannot.  Nor does it learn more: a job's end is fsync'ed before a page
 * shows it (vramd_page_sync), as before a socket client hears of it.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

static int status_json(void *user, char **json)
{
    vramd *d = user;
    return vram__dashboard_status_json(d->ctx, vram_ledger_monitor(d->ledger), 0, 0, json);
}

static int jobs_json(void *user, uint32_t viewer, char **json)
{
    vramd *d = user;
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_object_begin(&j);
    vram__json_key(&j, "jobs");
    pthread_mutex_lock(&d->lock);
    int rc = vramd_page_sync(d);
    if (rc) {
        pthread_mutex_unlock(&d->lock);
        vram__buf_free(&b);
        return rc;
    }
    uint32_t was = d->viewer_uid;   /* others' jobs as summaries (jobview.c) */
    d->viewer_uid = viewer == VRAM__HTTP_VIEWER_ALL ? VRAMD_ANY_VIEWER
                  : viewer == VRAM__HTTP_VIEWER_NONE ? VRAMD_NO_VIEWER : viewer;
    vramd_jobs_list_json(d, -1, 500, -1, 0, &j, NULL, 0);
    vram__json_key(&j, "leases");
    vramd_leases_json(d, &j);
    d->viewer_uid = was;
    pthread_mutex_unlock(&d->lock);
    vram__json_object_end(&j);
    *json = vram__buf_take(&b, &rc);
    return rc;
}

static int events_json(void *user, char **json)
{
    vramd *d = user;
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_object_begin(&j);
    vram__json_key(&j, "events");
    vram__json_array_begin(&j);
    pthread_mutex_lock(&d->lock);
    int rc = vramd_page_sync(d);
    if (rc) {
        pthread_mutex_unlock(&d->lock);
        vram__buf_free(&b);
        return rc;
    }
    for (size_t k = 0; k < d->nevents; k++) {
        const vramd_event *e = &d->events[(d->next_event + VRAMD_MAX_EVENTS - 1 - k) % VRAMD_MAX_EVENTS];
        vram__json_object_begin(&j);
        vram__json_field_uint(&j, "unix_ms", e->unix_ms);
        vram__json_field_string(&j, "kind", e->kind);
        vram__json_key(&j, "job");
        if (e->job)
            vram__json_uint(&j, e->job);
        else
            vram__json_null(&j);
        vram__json_key(&j, "device");
        if (e->device >= 0)
            vram__json_int(&j, e->device);
        else
            vram__json_null(&j);
        vram__json_field_string(&j, "text", e->text);
        vram__json_object_end(&j);
    }
    pthread_mutex_unlock(&d->lock);
    vram__json_array_end(&j);
    vram__json_object_end(&j);
    *json = vram__buf_take(&b, &rc);
    return rc;
}

static int metrics(void *user, vram__metrics *m)
{
    vramd *d = user;
    int rc = vram__dashboard_metrics_devices(d->ctx, m);
    size_t leases = 0;
    vram_lease_list(d->ledger, NULL, NULL, 0, &leases);
    vram__clear_error();
    pthread_mutex_lock(&d->lock);
    int synced = vramd_page_sync(d);
    if (synced) {
        pthread_mutex_unlock(&d->lock);
        return synced;
    }
    vramd_jobs_counts(d, m->jobs);
    vramd_jobs_shim(d, &m->shim_used_bytes, &m->over_bytes);
    m->admission_wait = d->waits;
    memcpy(m->finished_total, d->finished_total, sizeof(m->finished_total));
    m->job_duration = d->durations;
    m->oom_retries_total = d->oom_retries;
    pthread_mutex_unlock(&d->lock);
    m->leases = leases;
    return rc;
}

/* The page's submit: {"command": "TEXT", "vram": "SIZE", "ladder": "TEXT"},
 * run as /bin/sh -c TEXT in the daemon's folder. */
static int submit(void *user, const vram__jv *request, char **reply_json)
{
    vramd *d = user;
    for (size_t i = 0; i < request->n; i++)
        if (strcmp(request->keys[i], "command") && strcmp(request->keys[i], "vram") &&
            strcmp(request->keys[i], "ladder") && strcmp(request->keys[i], "name"))
            return vram__fail(VRAM_EINVAL, "unknown field '%s' (use command, vram, ladder, name)",
                              request->keys[i]);
    const char *command = vram__jv_str(vram__jv_get(request, "command"));
    const char *vram = vram__jv_str(vram__jv_get(request, "vram"));
    const char *ladder = vram__jv_str(vram__jv_get(request, "ladder"));
    const char *name = vram__jv_str(vram__jv_get(request, "name"));
    if (!command || !*command)
        return vram__fail(VRAM_EINVAL, "'command' is required: the command line to run");
    uint64_t bytes = 0;
    int rc = vram ? vram_size_parse(vram, &bytes) : vram__fail(VRAM_EINVAL, "'vram' is required: "
                                                              "the job's budget, e.g. 6GiB");
    if (!rc)
        rc = vram_ladder_check_text(ladder, bytes, &bytes);
    if (rc)
        return rc;
    vram__buf argv;
    vram__json j;
    vram__buf_init(&argv);
    vram__json_init(&j, &argv);
    vram__json_array_begin(&j);
    vram__json_string(&j, "/bin/sh");
    vram__json_string(&j, "-c");
    vram__json_string(&j, command);
    vram__json_array_end(&j);
    if (argv.failed) {
        vram__buf_free(&argv);
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    }
    vram__job row = { .argv_json = argv.data, .env_json = "{}", .cwd = "/", .settings_json = "{}",
                      .name = (char *)(name ? name : ""), .model = "", .ladder = (char *)(ladder ? ladder : ""),
                      .vram_bytes = bytes, .device_pref = -1, .owner_uid = geteuid() };
    const char *home = getenv("HOME");
    if (home && *home)
        row.cwd = (char *)home;
    char err[512];
    pthread_mutex_lock(&d->lock);
    rc = vramd_jobs_submit(d, &row, 1, err, sizeof(err));
    int synced = rc ? 0 : vramd_page_sync(d);  /* the job is on disk before the page hears its id */
    pthread_mutex_unlock(&d->lock);
    vram__buf_free(&argv);
    if (rc)
        return vram__fail(rc, "%s", err);
    if (synced)
        return synced;
    vramd_wake(d);
    vram__buf b;
    vram__buf_init(&b);
    vram__buf_printf(&b, "{\"id\":%llu}", (unsigned long long)row.id);   /* a number, as in the list */
    *reply_json = vram__buf_take(&b, &rc);
    return rc;
}

static int cancel(void *user, const char *job_id, char **reply_json)
{
    vramd *d = user;
    char *end;
    unsigned long long id = strtoull(job_id, &end, 10);
    if (!*job_id || *end || !id)
        return vram__fail(VRAM_ENOENT, "no job '%s'", job_id);
    pthread_mutex_lock(&d->lock);
    int rc = vramd_job_cancel(d, id, "the dashboard");
    const char *state = "";
    vramd_job *j = rc ? NULL : vramd_job_find(d, id);
    if (j)
        state = vram__job_state_name(j->row.state);
    int synced = vramd_page_sync(d);    /* a canceled job's end is on disk before the page hears of it */
    pthread_mutex_unlock(&d->lock);
    if (rc || synced)
        return rc ? rc : synced;
    vramd_wake(d);
    vram__buf b;
    vram__buf_init(&b);
    vram__buf_printf(&b, "{\"id\":%llu,\"state\":\"%s\"}", id, state);
    *reply_json = vram__buf_take(&b, &rc);
    return rc;
}

static uint64_t version(void *user)
{
    vramd *d = user;
    pthread_mutex_lock(&d->lock);
    uint64_t v = d->version;
    pthread_mutex_unlock(&d->lock);
    return v;
}

void vramd_provider(vramd *d, vram__http_provider *p)
{
    *p = (vram__http_provider){
        .user = d,
        .status_json = status_json,
        .jobs_json = jobs_json,
        .events_json = events_json,
        .metrics = metrics,
        .submit = submit,
        .cancel = cancel,
        .version = version,
    };
}
