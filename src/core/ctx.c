/* SPDX-License-Identifier: MIT */
/*
 * core/ctx.c - the context's state that is not a device's: its options, its
 * notice, what is attached to it, the margin, the lease view.
 *
 * Opening a context opens a backend, so vram_ctx_open and the device calls
 * live in device/context.c; this file knows nothing of backends.
 */
#include <stdlib.h>
#include <string.h>

#include "core/ctx.h"

const vram_options *vram_ctx_options(const vram_ctx *ctx)
{
    return ctx ? ctx->opts : NULL;
}

const char *vram_ctx_notice(const vram_ctx *ctx)
{
    return ctx ? ctx->notice : "";
}

void vram__ctx_attach(vram_ctx *ctx)
{
    __atomic_add_fetch(&ctx->attached, 1, __ATOMIC_ACQ_REL);
}

void vram__ctx_detach(vram_ctx *ctx)
{
    __atomic_sub_fetch(&ctx->attached, 1, __ATOMIC_ACQ_REL);
}

uint64_t vram__ctx_margin_bytes(const vram_ctx *ctx, uint64_t total)
{
    double pct;
    uint64_t bytes;
    int is_pct;
    vram__opt_margin(ctx->opts, &pct, &bytes, &is_pct);
    if (is_pct)
        return (uint64_t)((double)total * pct / 100.0);
    return bytes;
}

void vram__ctx_lease_view(vram_ctx *ctx, unsigned device, vram__lease_view *out)
{
    memset(out, 0, sizeof(*out));
    /* Under the context's lock, so that a ledger closing cannot go away
     * while it is asked (it detaches under the same lock). */
    pthread_mutex_lock(&ctx->lock);
    void *ledger = __atomic_load_n(&ctx->ledger, __ATOMIC_ACQUIRE);
    vram__lease_view_fn view = __atomic_load_n(&ctx->lease_view, __ATOMIC_ACQUIRE);
    if (ledger && view)
        view(ledger, device, out);
    pthread_mutex_unlock(&ctx->lock);
}
