/* SPDX-License-Identifier: MIT */
/*
 * daemon/dashboard.c - the device half of what the dashboard shows.
 *
 * Owns the status document (`vram status --json` plus each device's recent
 * history for the chart, bucketed so that a page asking every second gets
 * a few kilobytes, not the monitor's whole ring) and the device part of the
 * metrics.  It reads a context and its monitor; jobs are not its business.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/http.h"

#define DEFAULT_WINDOW_MS (5 * 60 * 1000)
#define DEFAULT_POINTS 300
#define MAX_SAMPLES 8192            /* read from the monitor per device */

/* One bucket of the chart: its sample with the most taken (ours + others;
 * the newest of equals), so short peaks stay visible. */
typedef struct bucket {
    bool used;
    uint64_t age_ms, ours, others, total;
} bucket;

static void bucket_add(bucket *k, const vram_sample *s, uint64_t age_ms)
{
    uint64_t total = s->used_bytes + s->free_bytes;
    if (!k->used || s->leased_bytes + s->others_bytes >= k->ours + k->others) {
        k->ours = s->leased_bytes;
        k->others = s->others_bytes;
        k->total = total;
    }
    if (!k->used || age_ms < k->age_ms)
        k->age_ms = age_ms;
    k->used = true;
}

static uint64_t bucket_age(const bucket *k) { return k->age_ms; }
static uint64_t bucket_ours(const bucket *k) { return k->ours; }
static uint64_t bucket_others(const bucket *k) { return k->others; }

/* What neither ours nor others take: the chart's three bands sum to total. */
static uint64_t bucket_free(const bucket *k)
{
    uint64_t taken = k->ours + k->others;
    return k->total > taken ? k->total - taken : 0;
}

static const struct series {
    const char *key;
    uint64_t (*value)(const bucket *k);
} series[] = {
    { "age_ms", bucket_age },
    { "leased_bytes", bucket_ours },
    { "others_bytes", bucket_others },
    { "free_bytes", bucket_free },
};

static void write_series(vram__json *j, const struct series *s, const bucket *k, unsigned n)
{
    vram__json_key(j, s->key);
    vram__json_array_begin(j);
    for (unsigned i = 0; i < n; i++)
        if (k[i].used)
            vram__json_uint(j, s->value(&k[i]));
    vram__json_array_end(j);
}

/* Buckets the samples of the last window_ms, oldest first. */
static void fill_buckets(const vram_sample *s, size_t n, uint64_t window_ms, bucket *k,
                         unsigned points)
{
    memset(k, 0, points * sizeof(*k));
    if (!n)
        return;
    uint64_t now = s[n - 1].t_ms;
    for (size_t i = 0; i < n; i++) {
        uint64_t age = now - s[i].t_ms;
        if (age >= window_ms)
            continue;
        unsigned slot = points - 1 - (unsigned)(age * points / window_ms);
        bucket_add(&k[slot], &s[i], age);
    }
}

static int write_history(vram__json *j, vram_monitor *mon, unsigned ndev, uint64_t window_ms,
                         unsigned points)
{
    vram_sample *s = mon ? malloc(MAX_SAMPLES * sizeof(*s)) : NULL;
    bucket *k = calloc(points, sizeof(*k));
    if ((mon && !s) || !k) {
        free(s);
        free(k);
        return vram__fail(VRAM_ENOMEM, "out of host memory for the dashboard's history");
    }
    vram__json_array_begin(j);
    for (unsigned d = 0; d < ndev; d++) {
        size_t n = 0;
        if (!mon || vram_monitor_history(mon, d, s, MAX_SAMPLES, &n) != 0)
            n = 0;
        fill_buckets(s, n, window_ms, k, points);
        vram__json_object_begin(j);
        vram__json_field_uint(j, "index", d);
        vram__json_field_uint(j, "window_ms", window_ms);
        for (size_t i = 0; i < VRAM__ARRAY_LEN(series); i++)
            write_series(j, &series[i], k, points);
        vram__json_object_end(j);
    }
    vram__json_array_end(j);
    vram__clear_error();
    free(s);
    free(k);
    return 0;
}

int vram__dashboard_status_json(vram_ctx *ctx, vram_monitor *mon, uint64_t window_ms,
                                unsigned points, char **json)
{
    if (!ctx || !json)
        return vram__fail(VRAM_EINVAL, "vram__dashboard_status_json: NULL argument");
    *json = NULL;
    window_ms = window_ms ? window_ms : DEFAULT_WINDOW_MS;
    points = points ? points : DEFAULT_POINTS;
    vram_snapshot *snap;
    char *snap_json = NULL;
    int rc = vram_snapshot_take(ctx, NULL, &snap);
    if (rc)
        return rc;
    snap->from_daemon = 1;          /* the dashboard is vramd's: its ledger's view */
    rc = vram_snapshot_to_json(snap, &snap_json);
    if (!rc) {
        vram__buf b;
        vram__json j;
        vram__buf_init(&b);
        vram__json_init(&j, &b);
        vram__json_object_begin(&j);
        vram__json_key(&j, "snapshot");
        vram__json_raw(&j, snap_json);
        vram__json_key(&j, "history");
        rc = write_history(&j, mon, snap->ndevices, window_ms, points);
        vram__json_object_end(&j);
        if (!rc)
            *json = vram__buf_take(&b, &rc);
        vram__buf_free(&b);
    }
    vram_free(snap_json);
    vram_snapshot_free(snap);
    return rc;
}

int vram__dashboard_metrics_devices(vram_ctx *ctx, vram__metrics *m)
{
    if (!ctx || !m)
        return vram__fail(VRAM_EINVAL, "vram__dashboard_metrics_devices: NULL argument");
    vram_snapshot *snap;
    int rc = vram_snapshot_take(ctx, NULL, &snap);
    if (rc)
        return rc;
    m->simulated = snap->simulated;
    m->ndevices = 0;
    for (unsigned i = 0; i < snap->ndevices && m->ndevices < VRAM__METRICS_MAX_DEVICES; i++) {
        const vram_device_snapshot *d = &snap->devices[i];
        if (d->error && d->error != VRAM_ELOST)
            continue;
        vram__metrics_device *o = &m->devices[m->ndevices++];
        o->index = d->info.index;
        if (d->error) {             /* lost: shown, every amount 0 */
            o->lost = 1;
            vram__strlcpy(o->uuid, d->info.uuid, sizeof(o->uuid));
            continue;
        }
        vram__strlcpy(o->name, d->info.name, sizeof(o->name));
        vram__strlcpy(o->uuid, d->info.uuid, sizeof(o->uuid));
        o->total_bytes = d->info.total_bytes;
        o->used_bytes = d->info.used_bytes;
        o->free_bytes = d->info.free_bytes;
        o->leased_bytes = d->leased_bytes;
        o->others_bytes = d->others_bytes;
        o->safe_available_bytes = d->safe_available_bytes;
        o->driver_reserved_bytes = d->info.have & VRAM_HAVE_RESERVED ? d->info.driver_reserved_bytes : 0;
        o->capacity_bytes = d->capacity_bytes;
    }
    vram_snapshot_free(snap);
    return 0;
}
