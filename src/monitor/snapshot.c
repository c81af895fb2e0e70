/* SPDX-License-Identifier: MIT */
/*
 * monitor/snapshot.c - every device and the host at one moment, and that
 * moment as JSON.
 *
 * Owns the arithmetic of the key terms: ours (leased) against others (used
 * that no lease explains), and safe available (free, less the margin, less
 * what leases reserved but have not used yet).  The JSON written here is the
 * one `vram status --json`, the daemon's API and the Python binding read.
 */
#include <stdlib.h>
#include <string.h>

#include "core/ctx.h"
#include "device/host.h"
#include "core/json_read.h"
#include "monitor/monitor.h"

static int proc_by_usage(const void *a, const void *b)
{
    const vram_proc *x = a, *y = b;
    if (x->used_bytes != y->used_bytes)
        return x->used_bytes < y->used_bytes ? 1 : -1;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Lists a device's processes into a buffer of the right size. */
static int list_processes(vram_ctx *ctx, unsigned idx, vram_proc **out, size_t *count)
{
    size_t cap = 32;
    *out = NULL;
    *count = 0;
    for (int tries = 0; tries < 4; tries++) {
        vram_proc *buf = calloc(cap, sizeof(*buf));
        if (!buf)
            return vram__fail(VRAM_ENOMEM, "out of host memory listing processes");
        size_t n = 0;
        int rc = vram_device_processes(ctx, idx, buf, cap, &n);
        if (rc == VRAM_ERANGE) {
            free(buf);
            cap = n + 16;
            continue;
        }
        if (rc) {
            free(buf);
            return rc;
        }
        qsort(buf, n, sizeof(*buf), proc_by_usage);
        *out = buf;
        *count = n;
        return 0;
    }
    return vram__fail(VRAM_EAGAIN, "the process list of device %u kept growing", idx);
}

void vram__device_budget(vram_ctx *ctx, vram_device_snapshot *d)
{
    vram__lease_view lv;
    vram__ctx_lease_view(ctx, d->info.index, &lv);
    uint64_t in_use = lv.leased_bytes - (lv.unused_bytes < lv.leased_bytes ? lv.unused_bytes
                                                                           : lv.leased_bytes);
    d->leased_bytes = lv.leased_bytes;
    d->others_bytes = d->info.used_bytes > in_use ? d->info.used_bytes - in_use : 0;
    d->margin_bytes = vram__ctx_margin_bytes(ctx, d->info.total_bytes);
    uint64_t reserved = d->info.have & VRAM_HAVE_RESERVED ? d->info.driver_reserved_bytes : 0;
    uint64_t unusable = reserved + d->margin_bytes;
    d->capacity_bytes = d->info.total_bytes > unusable ? d->info.total_bytes - unusable : 0;
    uint64_t hold = d->margin_bytes + lv.unused_bytes;
    d->safe_available_bytes = d->info.free_bytes > hold ? d->info.free_bytes - hold : 0;
}

int vram__snapshot_device(vram_ctx *ctx, unsigned idx, bool with_procs, vram_device_snapshot *d)
{
    memset(d, 0, sizeof(*d));
    d->info.index = idx;
    int rc = vram_device_query(ctx, idx, &d->info);
    if (rc) {
        d->error = rc;
        vram__strlcpy(d->error_text, vram_last_error(), sizeof(d->error_text));
        d->info.index = idx;
        return rc;
    }
    vram__device_budget(ctx, d);
    if (with_procs) {
        d->procs_status = list_processes(ctx, idx, &d->procs, &d->nprocs);
        if (d->procs_status)
            vram__clear_error();
    }
    return 0;
}

int vram_snapshot_take(vram_ctx *ctx, const char *disk_path, vram_snapshot **out)
{
    if (!out || !ctx)
        return vram__fail(VRAM_EINVAL, "vram_snapshot_take: NULL argument");
    *out = NULL;
    unsigned n;
    int rc = vram_device_count(ctx, &n);
    if (rc)
        return rc;
    vram_snapshot *s = calloc(1, sizeof(*s));
    vram_device_snapshot *devs = calloc(n ? n : 1, sizeof(*devs));
    if (!s || !devs) {
        free(s);
        free(devs);
        return vram__fail(VRAM_ENOMEM, "out of host memory taking a snapshot");
    }
    s->taken_unix_ms = vram__unix_ms();
    s->backend = vram_ctx_backend(ctx);
    s->simulated = vram_ctx_is_simulated(ctx);
    s->notice = vram_ctx_notice(ctx);
    s->ndevices = n;
    s->devices = devs;
    for (unsigned i = 0; i < n; i++)
        vram__snapshot_device(ctx, i, true, &devs[i]);
    vram__host_query(disk_path ? disk_path : vram__opt_str(ctx->opts, VRAM__OPT_DISK), &s->host);
    vram__clear_error();
    *out = s;
    return 0;
}

void vram_snapshot_free(vram_snapshot *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->ndevices; i++)
        free(s->devices[i].procs);
    free(s->devices);
    free(s);
}

/* ---- JSON ---------------------------------------------------------------------- */

static void json_device(vram__json *j, const vram_device_snapshot *d)
{
    const vram_device_info *in = &d->info;
    vram__json_object_begin(j);
    vram__json_field_uint(j, "index", in->index);
    if (d->error) {
        vram__json_field_bool(j, "lost", d->error == VRAM_ELOST);
        if (in->uuid[0])
            vram__json_field_string(j, "uuid", in->uuid);
        vram__json_field_uint(j, "capacity_bytes", 0);
        vram__json_field_string(j, "error", vram_errname(d->error));
        vram__json_field_string(j, "error_text", d->error_text);
        vram__json_object_end(j);
        return;
    }
    vram__json_field_string(j, "name", in->name);
    vram__json_field_string(j, "uuid", in->uuid);
    vram__json_field_bool(j, "mig", (in->have & VRAM_HAVE_MIG) != 0);
    vram__json_field_bool(j, "lost", false);
    vram__json_field_uint(j, "total_bytes", in->total_bytes);
    vram__json_field_uint(j, "used_bytes", in->used_bytes);
    vram__json_field_uint(j, "free_bytes", in->free_bytes);
    vram__json_key(j, "driver_reserved_bytes");
    if (in->have & VRAM_HAVE_RESERVED)
        vram__json_uint(j, in->driver_reserved_bytes);
    else
        vram__json_null(j);
    vram__json_field_string(j, "memory_api",
                            in->memory_api == 2 ? "nvml_v2" : in->memory_api == 1 ? "nvml_v1" : "sim");
    vram__json_field_uint(j, "leased_bytes", d->leased_bytes);
    vram__json_field_uint(j, "others_bytes", d->others_bytes);
    vram__json_field_uint(j, "margin_bytes", d->margin_bytes);
    vram__json_field_uint(j, "capacity_bytes", d->capacity_bytes);
    vram__json_field_uint(j, "safe_available_bytes", d->safe_available_bytes);
    vram__json_key(j, "processes");
    if (d->procs_status) {
        vram__json_null(j);
    } else {
        vram__json_array_begin(j);
        for (size_t i = 0; i < d->nprocs; i++) {
            const vram_proc *p = &d->procs[i];
            vram__json_object_begin(j);
            vram__json_field_uint(j, "pid", p->pid);
            vram__json_field_string(j, "name", p->name);
            if (p->have & VRAM_HAVE_PROC_FOREIGN)
                vram__json_field_bool(j, "foreign_pid", true);
            vram__json_key(j, "used_bytes");
            if (p->have & VRAM_HAVE_PROC_MEM)
                vram__json_uint(j, p->used_bytes);
            else
                vram__json_null(j);
            vram__json_object_end(j);
        }
        vram__json_array_end(j);
    }
    vram__json_object_end(j);
}

static void json_host(vram__json *j, const vram_host_info *h)
{
    vram__json_object_begin(j);
    vram__json_field_uint(j, "ram_total_bytes", h->ram_total_bytes);
    vram__json_field_uint(j, "ram_available_bytes", h->ram_available_bytes);
    vram__json_field_uint(j, "cpu_count", h->cpu_count);
    vram__json_key(j, "load");
    vram__json_array_begin(j);
    vram__json_double(j, h->load_1m);
    vram__json_double(j, h->load_5m);
    vram__json_double(j, h->load_15m);
    vram__json_array_end(j);
    vram__json_field_string(j, "disk_path", h->disk_path);
    vram__json_field_uint(j, "disk_total_bytes", h->disk_total_bytes);
    vram__json_field_uint(j, "disk_free_bytes", h->disk_free_bytes);
    vram__json_object_end(j);
}

int vram_snapshot_to_json(const vram_snapshot *s, char **json_out)
{
    if (!s || !json_out)
        return vram__fail(VRAM_EINVAL, "vram_snapshot_to_json: NULL argument");
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_object_begin(&j);
    vram__json_field_string(&j, "version", vram_version());
    vram__json_field_uint(&j, "taken_unix_ms", s->taken_unix_ms);
    vram__json_field_string(&j, "backend", s->backend);
    vram__json_field_bool(&j, "simulated", s->simulated);
    vram__json_field_string(&j, "notice", s->notice);
    vram__json_field_bool(&j, "from_daemon", s->from_daemon);
    vram__json_key(&j, "devices");
    vram__json_array_begin(&j);
    for (unsigned i = 0; i < s->ndevices; i++)
        json_device(&j, &s->devices[i]);
    vram__json_array_end(&j);
    vram__json_key(&j, "host");
    json_host(&j, &s->host);
    vram__json_object_end(&j);
    int rc;
    *json_out = vram__buf_take(&b, &rc);
    return rc;
}

/* ---- reading it back ------------------------------------------------------------- */

/* A snapshot read from JSON, with room for the strings its pointers name. */
typedef struct read_snapshot {
    vram_snapshot s;
    char backend[16];
    char notice[512];
} read_snapshot;

static int need_uint(const vram__jv *obj, const char *key, uint64_t *out)
{
    if (vram__jv_uint(vram__jv_get(obj, key), out))
        return 0;
    return vram__fail(VRAM_EPARSE, "status: '%s' is missing or not a byte count", key);
}

static void copy_str(const vram__jv *obj, const char *key, char *buf, size_t cap)
{
    const char *v = vram__jv_str(vram__jv_get(obj, key));
    vram__strlcpy(buf, v ? v : "", cap);
}

static int read_procs(const vram__jv *arr, vram_device_snapshot *d)
{
    d->info.have |= VRAM_HAVE_PROCS;
    if (!arr || arr->kind != VRAM__JV_ARRAY || arr->n == 0)
        return 0;
    d->procs = calloc(arr->n, sizeof(*d->procs));
    if (!d->procs)
        return vram__fail(VRAM_ENOMEM, "out of host memory reading a status");
    for (size_t i = 0; i < arr->n; i++) {
        const vram__jv *p = arr->items[i];
        vram_proc *q = &d->procs[d->nprocs];
        uint64_t pid;
        if (!vram__jv_uint(vram__jv_get(p, "pid"), &pid) || pid > UINT32_MAX)
            return vram__fail(VRAM_EPARSE, "status: a process without a pid");
        q->pid = (uint32_t)pid;
        q->device = d->info.index;
        copy_str(p, "name", q->name, sizeof(q->name));
        if (vram__jv_uint(vram__jv_get(p, "used_bytes"), &q->used_bytes))
            q->have = VRAM_HAVE_PROC_MEM;
        const vram__jv *foreign = vram__jv_get(p, "foreign_pid");
        if (foreign && foreign->kind == VRAM__JV_BOOL && foreign->b)
            q->have |= VRAM_HAVE_PROC_FOREIGN;
        d->nprocs++;
    }
    return 0;
}

static int read_device(const vram__jv *o, vram_device_snapshot *d)
{
    uint64_t index;
    int rc = need_uint(o, "index", &index);
    if (rc)
        return rc;
    d->info.index = (unsigned)index;
    const char *err = vram__jv_str(vram__jv_get(o, "error"));
    if (err) {
        d->error = vram_errcode(err);
        copy_str(o, "error_text", d->error_text, sizeof(d->error_text));
        copy_str(o, "uuid", d->info.uuid, sizeof(d->info.uuid));
        return 0;
    }
    vram_device_info *in = &d->info;
    in->have = VRAM_HAVE_NAME | VRAM_HAVE_UUID | VRAM_HAVE_MEMORY;
    copy_str(o, "name", in->name, sizeof(in->name));
    copy_str(o, "uuid", in->uuid, sizeof(in->uuid));
    if ((rc = need_uint(o, "total_bytes", &in->total_bytes)) ||
        (rc = need_uint(o, "used_bytes", &in->used_bytes)) ||
        (rc = need_uint(o, "free_bytes", &in->free_bytes)) ||
        (rc = need_uint(o, "leased_bytes", &d->leased_bytes)) ||
        (rc = need_uint(o, "others_bytes", &d->others_bytes)) ||
        (rc = need_uint(o, "margin_bytes", &d->margin_bytes)) ||
        (rc = need_uint(o, "safe_available_bytes", &d->safe_available_bytes)))
        return rc;
    if (vram__jv_uint(vram__jv_get(o, "driver_reserved_bytes"), &in->driver_reserved_bytes))
        in->have |= VRAM_HAVE_RESERVED;
    const vram__jv *mig = vram__jv_get(o, "mig");
    if (mig && mig->kind == VRAM__JV_BOOL && mig->b)
        in->have |= VRAM_HAVE_MIG;
    vram__jv_uint(vram__jv_get(o, "capacity_bytes"), &d->capacity_bytes);
    const char *api = vram__jv_str(vram__jv_get(o, "memory_api"));
    in->memory_api = api && !strcmp(api, "nvml_v2") ? 2 : api && !strcmp(api, "nvml_v1") ? 1 : 0;
    const vram__jv *procs = vram__jv_get(o, "processes");
    if (!procs || procs->kind == VRAM__JV_NULL) {
        d->procs_status = VRAM_ENOTSUP;
        return 0;
    }
    return read_procs(procs, d);
}

static void read_host(const vram__jv *o, vram_host_info *h)
{
    uint64_t cpus = 0;
    vram__jv_uint(vram__jv_get(o, "ram_total_bytes"), &h->ram_total_bytes);
    vram__jv_uint(vram__jv_get(o, "ram_available_bytes"), &h->ram_available_bytes);
    vram__jv_uint(vram__jv_get(o, "cpu_count"), &cpus);
    h->cpu_count = (unsigned)cpus;
    const vram__jv *load = vram__jv_get(o, "load");
    double *slot[3] = { &h->load_1m, &h->load_5m, &h->load_15m };
    for (size_t i = 0; load && load->kind == VRAM__JV_ARRAY && i < load->n && i < 3; i++)
        if (load->items[i]->kind == VRAM__JV_NUMBER)
            *slot[i] = load->items[i]->num;
    copy_str(o, "disk_path", h->disk_path, sizeof(h->disk_path));
    vram__jv_uint(vram__jv_get(o, "disk_total_bytes"), &h->disk_total_bytes);
    vram__jv_uint(vram__jv_get(o, "disk_free_bytes"), &h->disk_free_bytes);
}

static int read_snapshot_doc(const vram__jv *root, read_snapshot *r)
{
    vram_snapshot *s = &r->s;
    const vram__jv *devs = vram__jv_get(root, "devices");
    if (!devs || devs->kind != VRAM__JV_ARRAY)
        return vram__fail(VRAM_EPARSE, "status: no 'devices' array");
    if (devs->n > VRAM_MAX_DEVICES)
        return vram__fail(VRAM_EPARSE, "status: %zu devices, at most %d", devs->n, VRAM_MAX_DEVICES);
    vram__jv_uint(vram__jv_get(root, "taken_unix_ms"), &s->taken_unix_ms);
    copy_str(root, "backend", r->backend, sizeof(r->backend));
    copy_str(root, "notice", r->notice, sizeof(r->notice));
    s->backend = r->backend;
    s->notice = r->notice;
    const vram__jv *sim = vram__jv_get(root, "simulated");
    s->simulated = sim && sim->kind == VRAM__JV_BOOL && sim->b;
    const vram__jv *daemon = vram__jv_get(root, "from_daemon");
    s->from_daemon = daemon && daemon->kind == VRAM__JV_BOOL && daemon->b;
    s->devices = calloc(devs->n ? devs->n : 1, sizeof(*s->devices));
    if (!s->devices)
        return vram__fail(VRAM_ENOMEM, "out of host memory reading a status");
    for (size_t i = 0; i < devs->n; i++, s->ndevices++) {
        int rc = read_device(devs->items[i], &s->devices[i]);
        if (rc) {
            s->ndevices++;          /* its processes are freed with the rest */
            return rc;
        }
    }
    read_host(vram__jv_get(root, "host"), &s->host);
    return 0;
}

int vram__snapshot_from_jv(const vram__jv *root, vram_snapshot **out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram__snapshot_from_jv: NULL argument");
    *out = NULL;
    if (!root || root->kind != VRAM__JV_OBJECT)
        return vram__fail(VRAM_EPARSE, "status: not a JSON object");
    read_snapshot *r = calloc(1, sizeof(*r));
    int rc = r ? read_snapshot_doc(root, r) : vram__fail(VRAM_ENOMEM, "out of host memory reading a status");
    if (rc) {
        vram_snapshot_free(r ? &r->s : NULL);
        return rc;
    }
    *out = &r->s;
    return 0;
}

int vram__snapshot_from_json(const char *text, size_t len, vram_snapshot **out)
{
    if (!out || !text)
        return vram__fail(VRAM_EINVAL, "vram__snapshot_from_json: NULL argument");
    *out = NULL;
    char err[256];
    vram__json_doc *doc = NULL;
    int rc = vram__json_read(text, len, 0, &doc, err, sizeof(err));
    if (rc)
        return vram__fail(rc, "status: %s", err);
    rc = vram__snapshot_from_jv(vram__json_root(doc), out);
    vram__json_doc_free(doc);
    return rc;
}
