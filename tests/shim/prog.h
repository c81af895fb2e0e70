/* SPDX-License-Identifier: MIT */
/*
 * tests/shim/prog.h - what the shim's test programs share: the driver calls
 * they make, reached one way or another, and the lines they print.
 *
 * Each program fills a `drv` table its own way (linked, dlsym,
 * cuGetProcAddress ...) and runs the same steps: make a context, say what
 * the card looks like ("total=BYTES free=BYTES"), then take 1 GiB at a time
 * up to `count` times ("alloc N ok" / "alloc N error E") and free them.  The
 * shell tests read those lines.
 */
#ifndef VRAM_TESTS_SHIM_PROG_H
#define VRAM_TESTS_SHIM_PROG_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim/cuda_types.h"

#define GIB (1024ull * 1024ull * 1024ull)

typedef struct drv {
    CUresult (*init)(unsigned int);
    CUresult (*device_get)(CUdevice *, int);
    CUresult (*retain)(CUcontext *, CUdevice);
    CUresult (*set_current)(CUcontext);
    CUresult (*create)(CUcontext *, unsigned int, CUdevice);   /* when the two above are missing */
    CUresult (*get_info)(size_t *, size_t *);
    CUresult (*total_mem)(size_t *, CUdevice);
    CUresult (*alloc)(CUdeviceptr *, size_t);
    CUresult (*free)(CUdeviceptr);
    /* stream-ordered, used instead of alloc/free when set */
    CUresult (*alloc_async)(CUdeviceptr *, size_t, CUstream);
    CUresult (*free_async)(CUdeviceptr, CUstream);
} drv;

static int drv_context(const drv *d)
{
    CUdevice dev;
    CUcontext ctx;
    CUresult rc;
    if (!d->init || !d->device_get || (!(d->retain && d->set_current) && !d->create)) {
        printf("context error: missing entry points\n");
        return -1;
    }
    if ((rc = d->init(0)) || (rc = d->device_get(&dev, 0)) ||
        (d->retain && d->set_current ? (rc = d->retain(&ctx, dev)) || (rc = d->set_current(ctx))
                                     : (rc = d->create(&ctx, 0, dev)))) {
        printf("context error %d\n", rc);
        return -1;
    }
    return 0;
}

static void drv_view(const drv *d)
{
    size_t free_b = 0, total_b = 0, card = 0;
    CUresult rc = d->get_info(&free_b, &total_b);
    CUresult rc2 = d->total_mem(&card, 0);
    printf("total=%zu free=%zu device_total=%zu (rc %d %d)\n", total_b, free_b, card, rc, rc2);
}

/* Takes `count` GiB one at a time; returns how many it got, keeping them
 * in held[]. */
static int drv_take(const drv *d, int count, CUdeviceptr *held)
{
    int got = 0;
    for (int i = 1; i <= count; i++) {
        CUdeviceptr p = 0;
        CUresult rc = d->alloc_async ? d->alloc_async(&p, GIB, NULL) : d->alloc(&p, GIB);
        if (rc) {
            printf("alloc %d error %d\n", i, rc);
            continue;
        }
        printf("alloc %d ok\n", i);
        held[got++] = p;
    }
    fflush(stdout);
    return got;
}

static void drv_give(const drv *d, CUdeviceptr *held, int n)
{
    for (int i = 0; i < n; i++) {
        CUresult rc = d->free_async ? d->free_async(held[i], NULL) : d->free(held[i]);
        if (rc)
            printf("free %d error %d\n", i + 1, rc);
    }
}

/* The usual run: context, view, take count GiB, view again, give back. */
static int drv_run(const drv *d, int count)
{
    CUdeviceptr held[64];
    if (count > 64)
        count = 64;
    if (drv_context(d))
        return 1;
    drv_view(d);
    int got = drv_take(d, count, held);
    drv_view(d);
    drv_give(d, held, got);
    drv_view(d);
    return 0;
}

#endif
