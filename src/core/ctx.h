/* SPDX-License-Identifier: MIT */
/*
 * core/ctx.h - the context's insides, shared by the modules that hang off it.
 *
 * A context is a set of options, one open backend and the lock that
 * serialises calls into it.  Core keeps the context but not the backend:
 * device/context.c opens it and makes every call into it.  Modules that
 * keep state across calls (the monitor, the scheduler's ledger) attach to
 * it and are counted, so that closing a context still in use is refused.
 */
#ifndef VRAM_CORE_CTX_H
#define VRAM_CORE_CTX_H

#include <pthread.h>

#include "core/options.h"

/* Opened and used by device/ only; the context holds it. */
typedef struct vram_backend vram_backend;

/* What the ledger tells a snapshot about a device (see sched). */
typedef struct vram__lease_view {
    uint64_t leased_bytes;          /* reserved through leases */
    uint64_t unused_bytes;          /* of those, not yet seen in use */
} vram__lease_view;

typedef int (*vram__lease_view_fn)(void *ledger, unsigned device, vram__lease_view *out);

struct vram_ctx {
    vram_options *opts;
    vram_backend *be;
    pthread_mutex_t lock;           /* held around every backend call */
    char notice[512];
    int attached;                   /* monitors and schedulers alive (atomic) */
    void *ledger;                   /* set by the scheduler while one is open */
    vram__lease_view_fn lease_view;
};

void vram__ctx_attach(vram_ctx *ctx);
void vram__ctx_detach(vram_ctx *ctx);

/* Margin in bytes for a device of total bytes, from the ctx's options. */
uint64_t vram__ctx_margin_bytes(const vram_ctx *ctx, uint64_t total);

/* The lease view of a device: zeros when no ledger is attached.  Calls the
 * ledger under the context's lock: a ledger never takes that lock while
 * holding its own. */
void vram__ctx_lease_view(vram_ctx *ctx, unsigned device, vram__lease_view *out);

#endif /* VRAM_CORE_CTX_H */
