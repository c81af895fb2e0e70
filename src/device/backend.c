/* SPDX-License-Identifier: MIT */
/*
 * device/backend.c - the wrappers every caller goes through to reach a
 * backend, and fault injection.
 *
 * Owns the rules of the contract: a version check at open, VRAM_ENOTSUP for
 * a missing optional method, argument checks the backends need not repeat,
 * and the countdowns that make the Nth call of a kind fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/backend.h"

static const vram_backend_ops *const backends[] = { &vram__nvml_ops, &vram__sim_ops };

int vram__backend_open(const char *name, const vram_options *opts, vram_backend **out)
{
    *out = NULL;
    const vram_backend_ops *ops = NULL;
    for (size_t i = 0; i < VRAM__ARRAY_LEN(backends); i++)
        if (!strcmp(backends[i]->name, name))
            ops = backends[i];
    if (!ops)
        return vram__fail(VRAM_EINVAL, "unknown backend '%s' (use nvml or sim)", name);
    if (ops->version < 1 || ops->instance_size < sizeof(vram_backend) || !ops->open ||
        !ops->close || !ops->device_count || !ops->device_query)
        return vram__fail(VRAM_EINTERNAL, "backend '%s' does not fulfil the contract", name);

    vram_backend *be = calloc(1, ops->instance_size);
    if (!be)
        return vram__fail(VRAM_ENOMEM, "out of host memory opening backend %s", name);
    be->ops = ops;
    int rc = ops->open(be, opts);
    if (rc) {
        free(be);
        return rc;
    }
    *out = be;
    return 0;
}

void vram__backend_close(vram_backend *be)
{
    if (!be)
        return;
    be->ops->close(be);
    free(be);
}

/* Counts the call; returns the injected error when this one must fail. */
static int fault_check(vram_backend *be, int call)
{
    static const char *call_names[] = { "device count", "device query", "process list" };
    uint64_t n = ++be->calls[call];
    for (unsigned i = 0; i < be->nfaults; i++) {
        const vram__fault *f = &be->faults[i];
        if (f->call == call && n >= f->nth && n < f->nth + f->times)
            return vram__fail(f->err, "injected fault: %s call %llu fails (%s)", call_names[call],
                              (unsigned long long)n, vram_strerror(f->err));
    }
    return 0;
}

int vram__backend_inject_fault(vram_backend *be, int call, uint64_t nth, uint64_t times, int err)
{
    if (call < 0 || call >= VRAM__CALL_KINDS || nth == 0 || times == 0 || err >= 0)
        return vram__fail(VRAM_EINVAL, "bad fault: call %d, nth %llu, times %llu, error %d", call,
                          (unsigned long long)nth, (unsigned long long)times, err);
    if (be->nfaults >= VRAM__MAX_FAULTS)
        return vram__fail(VRAM_ERANGE, "at most %d faults", VRAM__MAX_FAULTS);
    be->faults[be->nfaults++] = (vram__fault){ call, nth, times, err };
    return 0;
}

int vram__backend_device_count(vram_backend *be, unsigned *count_out)
{
    if (!count_out)
        return vram__fail(VRAM_EINVAL, "device count: NULL output");
    *count_out = 0;
    int rc = fault_check(be, VRAM__CALL_COUNT);
    return rc ? rc : be->ops->device_count(be, count_out);
}

int vram__backend_device_query(vram_backend *be, unsigned idx, vram_device_info *out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "device query: NULL output");
    memset(out, 0, sizeof(*out));
    int rc = fault_check(be, VRAM__CALL_QUERY);
    if (rc)
        return rc;
    out->index = idx;
    return be->ops->device_query(be, idx, out);
}

int vram__backend_process_list(vram_backend *be, unsigned idx, vram_proc *buf, size_t cap,
                               size_t *count_out)
{
    if (!count_out || (cap && !buf))
        return vram__fail(VRAM_EINVAL, "process list: NULL buffer or count");
    *count_out = 0;
    if (!be->ops->process_list)
        return vram__fail(VRAM_ENOTSUP, "the %s backend cannot list processes", be->ops->name);
    int rc = fault_check(be, VRAM__CALL_PROCESSES);
    return rc ? rc : be->ops->process_list(be, idx, buf, cap, count_out);
}

int vram__backend_set_usage(vram_backend *be, unsigned idx, uint64_t bytes)
{
    if (!be->ops->set_usage)
        return vram__fail(VRAM_ENOTSUP, "the %s backend has real devices; only sim takes usage",
                          be->ops->name);
    return be->ops->set_usage(be, idx, bytes);
}

int vram__backend_device_minor(vram_backend *be, unsigned idx, unsigned *minor_out)
{
    if (!minor_out)
        return vram__fail(VRAM_EINVAL, "device minor: NULL output");
    if (!be->ops->device_minor)
        return vram__fail(VRAM_ENOTSUP, "the %s backend's devices have no /dev/nvidiaN", be->ops->name);
    return be->ops->device_minor(be, idx, minor_out);
}

void vram__proc_name(uint32_t pid, char *buf, size_t cap)
{
    char path[64];
    buf[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%u/comm", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(buf, (int)cap, f))
        buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

void vram__opt_source(const vram_options *o, int id, const char *flag, char *buf, size_t cap)
{
    const char *name = flag;
    char env[64];
    if (o && o->from[id] == VRAM__FROM_ENV) {
        snprintf(env, sizeof(env), "VRAM_%s", flag + 2);
        for (char *p = env; *p; p++)
            *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        name = env;
    }
    vram__strlcpy(buf, name, cap);
}
