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
