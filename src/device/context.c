/* SPDX-License-Identifier: MIT */
/*
 * device/context.c - opening and closing a context (which opens its
 * backend), and the device calls of the public API, serialised through the
 * context's lock.
 */
#include <stdlib.h>
#include <string.h>

#include "core/ctx.h"
#include "device/backend.h"

int vram_ctx_open(vram_ctx **out, const vram_options *opts)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram_ctx_open: NULL output");
    *out = NULL;
    vram_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return vram__fail(VRAM_ENOMEM, "out of host memory opening a context");
    int rc = vram__options_clone(opts, &ctx->opts);
    if (rc)
        goto fail;
    if (!opts)
        vram__options_load_env_lenient(ctx->opts);
    rc = vram__backend_select(ctx->opts, &ctx->be, ctx->notice, sizeof(ctx->notice));
    if (rc)
        goto fail;
    if ((rc = pthread_mutex_init(&ctx->lock, NULL)) != 0) {
        vram__backend_close(ctx->be);
        rc = vram__fail(VRAM_ENOMEM, "cannot create a mutex");
        goto fail;
    }
    *out = ctx;
    return 0;
fail:
    vram_options_free(ctx->opts);
    free(ctx);
    return rc;
}

int vram_ctx_close(vram_ctx *ctx)
{
    if (!ctx)
        return 0;
    int attached = __atomic_load_n(&ctx->attached, __ATOMIC_ACQUIRE);
    if (attached > 0)
        return vram__fail(VRAM_EBUSY, "the context still has %d monitor(s) or scheduler(s) open",
                          attached);
    vram__backend_close(ctx->be);
    pthread_mutex_destroy(&ctx->lock);
    vram_options_free(ctx->opts);
    free(ctx);
    return 0;
}

const char *vram_ctx_backend(const vram_ctx *ctx)
{
    return ctx ? ctx->be->ops->name : "";
}

int vram_ctx_is_simulated(const vram_ctx *ctx)
{
    return ctx && ctx->be->ops == &vram__sim_ops;
}

/* ---- device calls ------------------------------------------------------------ */

int vram_device_count(vram_ctx *ctx, unsigned *count_out)
{
    if (!ctx || !count_out)
        return vram__fail(VRAM_EINVAL, "vram_device_count: NULL argument");
    pthread_mutex_lock(&ctx->lock);
    int rc = vram__backend_device_count(ctx->be, count_out);
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}

int vram_device_query(vram_ctx *ctx, unsigned idx, vram_device_info *out)
{
    if (!ctx || !out)
        return vram__fail(VRAM_EINVAL, "vram_device_query: NULL argument");
    pthread_mutex_lock(&ctx->lock);
    int rc = vram__backend_device_query(ctx->be, idx, out);
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}

int vram_device_processes(vram_ctx *ctx, unsigned idx, vram_proc *buf, size_t cap,
                          size_t *count_out)
{
    if (!ctx || !count_out)
        return vram__fail(VRAM_EINVAL, "vram_device_processes: NULL argument");
    pthread_mutex_lock(&ctx->lock);
    int rc = vram__backend_process_list(ctx->be, idx, buf, cap, count_out);
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}

int vram_device_minor(vram_ctx *ctx, unsigned idx, unsigned *minor_out)
{
    if (!ctx)
        return vram__fail(VRAM_EINVAL, "vram_device_minor: NULL context");
    pthread_mutex_lock(&ctx->lock);
    int rc = vram__backend_device_minor(ctx->be, idx, minor_out);
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}

int vram_sim_set_usage(vram_ctx *ctx, unsigned idx, uint64_t bytes)
{
    if (!ctx)
        return vram__fail(VRAM_EINVAL, "vram_sim_set_usage: NULL context");
    pthread_mutex_lock(&ctx->lock);
    int rc = vram__backend_set_usage(ctx->be, idx, bytes);
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}
