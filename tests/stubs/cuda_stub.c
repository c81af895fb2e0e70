/* SPDX-License-Identifier: MIT */
/*
 * tests/stubs/cuda_stub.c - a stand-in libcuda.so.1 for the shim's tests:
 * a fake card that really counts what is allocated on it, and the entry
 * points the shim interposes, under the names and ABIs the driver exports.
 *
 * Built as build/stubs/cuda/libcuda.so.1 (and libcuda.so beside it for
 * -lcuda).  Put that folder on LD_LIBRARY_PATH.  Knobs, read at cuInit (or
 * at the first call):
 *
 *   VRAM_STUB_CUDA_MIB=N       each device's size in MiB (default 16384)
 *   VRAM_STUB_CUDA_DEVICES=N   how many devices (default 1, at most 24)
 *   VRAM_STUB_CUDA_CTX_MIB=N   what each context takes from its card (default 0)
 *   VRAM_STUB_CUDA_VERSION=V   what cuDriverGetVersion says (default 12040)
 *   VRAM_STUB_CUDA_POOL_GROWS=1  pools never reuse what they keep: each
 *                              allocation grows them (as a driver may)
 *
 * Raising a context limit (cuCtxSetLimit: the stack, per resident thread
 * of 100 SMs of 2048, the printf FIFO, the malloc heap) takes what it adds
 * above the default from the card at the call, as the driver reserves it.
 *
 * A cuMemCreate allocation lives, as the driver's does, while anything
 * refers to it: its handle until cuMemRelease (once more for each
 * cuMemRetainAllocationHandle) and each cuMemMap of it until cuMemUnmap.
 *
 * The card is this process's alone: "free" is its size less what this
 * process holds (allocations, contexts, and what its memory pools and its
 * graph memory pool have reserved).  Stream-ordered memory behaves as the
 * driver's: cuMemAllocAsync takes from the device's current pool, which
 * reserves from the card as it grows; cuMemFreeAsync gives the bytes back to
 * the pool (plain memory: to the card) only when its stream is synchronized (cuStreamSynchronize,
 * cuCtxSynchronize), and a pool gives reserved bytes back to the card at a
 * synchronization only down to its release threshold (default 0), or at
 * cuMemPoolTrimTo.  A graph's memory nodes reserve from the device's graph
 * pool at cuGraphLaunch (the graph frees them before it ends); the graph
 * pool keeps what it reserved until cuDeviceGraphMemTrim.  cuGetProcAddress answers like
 * the driver's: for a base name at version V, the newest versioned entry
 * point introduced at or before V, the _ptsz one with the per-thread flag;
 * asked for "cuGetProcAddress" below 12000 it gives the 4-argument form.
 * It is linked -Bsymbolic, so the addresses it hands out are its own even
 * under the shim.  Allocation is lock-free (one atomic per call) so that
 * bench/shim measures the shim, not the stub.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "shim/cuda_types.h"

#define EXPORT __attribute__((visibility("default")))
#define MIB (1024ull * 1024ull)
#define MAX_DEV 24                      /* more than the shim counts */
#define IDS (1u << 20)                  /* live allocations the stub can tell apart */
#define BASE 0x100000000000ull          /* fake device addresses start here */
#define ID_SHIFT 20                     /* ... 1 MiB apart */

struct ctx_st { int dev; int primary_refs; };

static struct {
    _Atomic int ready;
    int ndev;
    uint64_t total;
    uint64_t ctx_bytes;
    int version;
    bool pool_grows;
    bool streams_done;
    _Atomic uint64_t used[MAX_DEV];
    _Atomic uint32_t next_id;
    _Atomic uint64_t *sizes;            /* by id: size | device << 56, 0 when free */
    struct pool_st **pool_of;           /* by id: the pool of a stream-ordered allocation */
    struct ctx_st primary[MAX_DEV];
} st;

static _Thread_local struct ctx_st *current;

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    return *end ? dflt : v;
}

static void setup(void)
{
    if (atomic_load_explicit(&st.ready, memory_order_acquire))
        return;
    int ndev = (int)env_u64("VRAM_STUB_CUDA_DEVICES", 1);
    st.ndev = ndev < 1 ? 1 : ndev > MAX_DEV ? MAX_DEV : ndev;
    st.total = env_u64("VRAM_STUB_CUDA_MIB", 16384) * MIB;
    st.ctx_bytes = env_u64("VRAM_STUB_CUDA_CTX_MIB", 0) * MIB;
    st.version = (int)env_u64("VRAM_STUB_CUDA_VERSION", 12040);
    st.pool_grows = env_u64("VRAM_STUB_CUDA_POOL_GROWS", 0) != 0;
    st.streams_done = env_u64("VRAM_STUB_CUDA_STREAMS_DONE", 0) != 0;
    void *m = mmap(NULL, IDS * sizeof(uint64_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    st.sizes = m == MAP_FAILED ? NULL : m;
    m = mmap(NULL, IDS * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
             -1, 0);
    st.pool_of = m == MAP_FAILED ? NULL : m;
    for (int d = 0; d < MAX_DEV; d++)
        st.primary[d].dev = d;
    atomic_store_explicit(&st.ready, 1, memory_order_release);
}

/* Takes bytes of dev's card. */
static CUresult card_take(int dev, uint64_t bytes)
{
    uint64_t now = atomic_fetch_add(&st.used[dev], bytes) + bytes;
    if (now > st.total) {
        atomic_fetch_sub(&st.used[dev], bytes);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

static CUresult new_id(int dev, uint64_t bytes, CUdeviceptr *out);

static CUresult take(int dev, uint64_t bytes, CUdeviceptr *out)
{
    setup();
    if (!out || !st.sizes)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev < 0 || dev >= st.ndev)
        return CUDA_ERROR_INVALID_CONTEXT;
    CUresult rc = card_take(dev, bytes);
    if (rc != CUDA_SUCCESS)
        return rc;
    return new_id(dev, bytes, out);
}

static CUresult new_id(int dev, uint64_t bytes, CUdeviceptr *out)
{
    /* Ids come round again; one still live (its owner slept through a lap)
     * is skipped. */
    uint64_t v = bytes | (uint64_t)dev << 56 | 1ull << 55, zero;
    uint32_t id;
    do {
        id = (atomic_fetch_add_explicit(&st.next_id, 1, memory_order_relaxed) % (IDS - 1)) + 1;
        zero = 0;
    } while (!atomic_compare_exchange_strong_explicit(&st.sizes[id], &zero, v, memory_order_relaxed,
                                                      memory_order_relaxed));
    *out = BASE + ((uint64_t)id << ID_SHIFT);
    return CUDA_SUCCESS;
}

static CUresult pool_give(uint64_t id, uint64_t v);

static CUresult give(CUdeviceptr p)
{
    setup();
    if (p < BASE || !st.sizes || ((p - BASE) & ((1ull << ID_SHIFT) - 1)))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t id = (p - BASE) >> ID_SHIFT;
    if (id == 0 || id >= IDS)
        return CUDA_ERROR_INVALID_VALUE;
    if (st.pool_of && st.pool_of[id])
        return pool_give(id, 0);
    uint64_t v = atomic_exchange_explicit(&st.sizes[id], 0, memory_order_relaxed);
    if (!v)
        return CUDA_ERROR_INVALID_VALUE;
    atomic_fetch_sub(&st.used[v >> 56], v & ((1ull << 55) - 1));
    return CUDA_SUCCESS;
}

static int cur_dev(void)
{
    return current ? current->dev : -1;
}

/* ---- driver, devices, contexts ---- */

EXPORT CUresult cuInit(unsigned int flags) { (void)flags; setup(); return CUDA_SUCCESS; }
EXPORT CUresult cuDriverGetVersion(int *v) { setup(); if (!v) return CUDA_ERROR_INVALID_VALUE; *v = st.version; return CUDA_SUCCESS; }
EXPORT CUresult cuDeviceGetCount(int *n) { setup(); if (!n) return CUDA_ERROR_INVALID_VALUE; *n = st.ndev; return CUDA_SUCCESS; }

EXPORT CUresult cuDeviceGet(CUdevice *d, int ordinal)
{
    setup();
    if (!d || ordinal < 0 || ordinal >= st.ndev)
        return CUDA_ERROR_INVALID_DEVICE;
    *d = ordinal;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice d)
{
    setup();
    if (!name || len < 1 || d < 0 || d >= st.ndev)
        return CUDA_ERROR_INVALID_VALUE;
    strncpy(name, "Stub CUDA GPU", (size_t)len - 1);
    name[len - 1] = '\0';
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetPCIBusId(char *bus, int len, CUdevice d)
{
    setup();
    if (!bus || len < 13 || d < 0 || d >= st.ndev)
        return CUDA_ERROR_INVALID_VALUE;
    memcpy(bus, "0000:00:00.0", 13);
    bus[9] = (char)('0' + d);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice d)
{
    setup();
    if (!bytes || d < 0 || d >= st.ndev)
        return CUDA_ERROR_INVALID_VALUE;
    *bytes = (size_t)st.total;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceTotalMem(unsigned int *bytes, CUdevice d)
{
    size_t b;
    CUresult rc = cuDeviceTotalMem_v2(&b, d);
    if (rc == CUDA_SUCCESS && bytes)
        *bytes = b > 0xffffffffu ? 0xffffffffu : (unsigned int)b;
    return rc;
}

/* A context takes ctx_bytes of its card while it lives: the primary one
 * (however often retained) and each cuCtxCreate's. */
static void ctx_charge(int dev, int delta)
{
    if (delta > 0)
        atomic_fetch_add(&st.used[dev], st.ctx_bytes);
    else
        atomic_fetch_sub(&st.used[dev], st.ctx_bytes);
}

EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice d)
{
    setup();
    if (!pctx || d < 0 || d >= st.ndev)
        return CUDA_ERROR_INVALID_VALUE;
    if (st.primary[d].primary_refs++ == 0)
        ctx_charge(d, +1);
    *pctx = (CUcontext)&st.primary[d];
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d)
{
    setup();
    if (d < 0 || d >= st.ndev || st.primary[d].primary_refs <= 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (--st.primary[d].primary_refs == 0)
        ctx_charge(d, -1);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice d) { return cuDevicePrimaryCtxRelease_v2(d); }
EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice d) { (void)d; return CUDA_SUCCESS; }
EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice d) { (void)d; return CUDA_SUCCESS; }

EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice d)
{
    (void)flags;
    setup();
    if (!pctx || d < 0 || d >= st.ndev)
        return CUDA_ERROR_INVALID_VALUE;
    struct ctx_st *c = calloc(1, sizeof(*c));
    if (!c)
        return CUDA_ERROR_OUT_OF_MEMORY;
    c->dev = d;
    ctx_charge(d, +1);
    current = c;
    *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice d) { return cuCtxCreate_v2(pctx, flags, d); }
EXPORT CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *p, int n, unsigned int flags, CUdevice d)
{
    (void)p, (void)n;
    return cuCtxCreate_v2(pctx, flags, d);
}

EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    struct ctx_st *c = (struct ctx_st *)ctx;
    if (!c || (c >= st.primary && c < st.primary + MAX_DEV))
        return CUDA_ERROR_INVALID_CONTEXT;
    ctx_charge(c->dev, -1);
    if (current == c)
        current = NULL;
    free(c);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxDestroy(CUcontext ctx) { return cuCtxDestroy_v2(ctx); }
EXPORT CUresult cuCtxSetCurrent(CUcontext ctx) { current = (struct ctx_st *)ctx; return CUDA_SUCCESS; }
EXPORT CUresult cuCtxGetCurrent(CUcontext *ctx) { if (!ctx) return CUDA_ERROR_INVALID_VALUE; *ctx = (CUcontext)current; return CUDA_SUCCESS; }

static _Thread_local struct ctx_st *stack[8];
static _Thread_local int depth;

EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    if (depth >= 8)
        return CUDA_ERROR_INVALID_VALUE;
    stack[depth++] = current;
    current = (struct ctx_st *)ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *ctx)
{
    if (depth <= 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (ctx)
        *ctx = (CUcontext)current;
    current = stack[--depth];
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetDevice(CUdevice *d)
{
    if (!d)
        return CUDA_ERROR_INVALID_VALUE;
    if (!current)
        return CUDA_ERROR_INVALID_CONTEXT;
    *d = current->dev;
    return CUDA_SUCCESS;
}

/* ---- memory ---- */

EXPORT CUresult cuMemGetInfo_v2(size_t *free_b, size_t *total_b)
{
    setup();
    int d = cur_dev();
    if (d < 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (!free_b || !total_b)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t used = atomic_load(&st.used[d]);
    *total_b = (size_t)st.total;
    *free_b = (size_t)(used >= st.total ? 0 : st.total - used);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemGetInfo(unsigned int *free_b, unsigned int *total_b)
{
    size_t f, t;
    CUresult rc = cuMemGetInfo_v2(&f, &t);
    if (rc == CUDA_SUCCESS && free_b && total_b) {
        *free_b = f > 0xffffffffu ? 0xffffffffu : (unsigned int)f;
        *total_b = t > 0xffffffffu ? 0xffffffffu : (unsigned int)t;
    }
    return rc;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n)
{
    if (!n)
        return CUDA_ERROR_INVALID_VALUE;
    return take(cur_dev(), n, p);
}

EXPORT CUresult cuMemAlloc(CUdeviceptr_v1 *p, unsigned int n)
{
    /* A 32-bit address cannot hold the stub's; it hands out the id only. */
    CUdeviceptr full;
    CUresult rc = cuMemAlloc_v2(&full, n);
    if (rc == CUDA_SUCCESS)
        *p = (CUdeviceptr_v1)((full - BASE) >> ID_SHIFT);
    return rc;
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr p) { return give(p); }
EXPORT CUresult cuMemFree(CUdeviceptr_v1 p) { return give(BASE + ((uint64_t)p << ID_SHIFT)); }

EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *p, size_t *pitch, size_t w, size_t h, unsigned int elem)
{
    (void)elem;
    if (!pitch || !w || !h)
        return CUDA_ERROR_INVALID_VALUE;
    *pitch = (w + 511) & ~(size_t)511;
    return take(cur_dev(), (uint64_t)*pitch * h, p);
}

EXPORT CUresult cuMemAllocPitch(CUdeviceptr_v1 *p, unsigned int *pitch, unsigned int w, unsigned int h,
                                unsigned int elem)
{
    size_t pt;
    CUdeviceptr full;
    CUresult rc = cuMemAllocPitch_v2(&full, &pt, w, h, elem);
    if (rc == CUDA_SUCCESS) {
        *p = (CUdeviceptr_v1)((full - BASE) >> ID_SHIFT);
        *pitch = (unsigned int)pt;
    }
    return rc;
}

EXPORT CUresult cuMemAllocManaged(CUdeviceptr *p, size_t n, unsigned int flags)
{
    (void)flags;
    return take(cur_dev(), n, p);
}

/* ---- context limits ---- */

#define STUB_THREADS (100ull * 2048ull)   /* resident threads: SMs times threads per SM */
static const uint64_t limit_default[3] = { 1024, 1 << 20, 8 << 20 };
static uint64_t limit_now[MAX_DEV][3];     /* 0: the default */
static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;

/* What limit at value v keeps above its default, in bytes. */
static uint64_t limit_extra(int limit, uint64_t v)
{
    uint64_t d = limit_default[limit];
    if (v <= d)
        return 0;
    return limit == CU_LIMIT_STACK_SIZE ? ((v - d) > UINT64_MAX / STUB_THREADS ? UINT64_MAX : (v - d) * STUB_THREADS)
                                        : v - d;
}

EXPORT CUresult cuCtxGetLimit(size_t *v, int limit)
{
    if (!v || limit < 0 || limit > 2)
        return CUDA_ERROR_INVALID_VALUE;
    if (!current)
        return CUDA_ERROR_INVALID_CONTEXT;
    uint64_t now = limit_now[current->dev][limit];
    *v = now ? now : limit_default[limit];
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSetLimit(int limit, size_t v)
{
    if (limit < 0 || limit > 2)
        return CUDA_ERROR_INVALID_VALUE;
    if (!current)
        return CUDA_ERROR_INVALID_CONTEXT;
    int dev = current->dev;
    pthread_mutex_lock(&limit_lock);
    uint64_t was = limit_extra(limit, limit_now[dev][limit] ? limit_now[dev][limit] : limit_default[limit]);
    uint64_t want = limit_extra(limit, v);
    CUresult rc = CUDA_SUCCESS;
    if (want > was)
        rc = want - was > st.total ? CUDA_ERROR_OUT_OF_MEMORY : card_take(dev, want - was);
    else
        atomic_fetch_sub(&st.used[dev], was - want);
    if (rc == CUDA_SUCCESS)
        limit_now[dev][limit] = v;
    pthread_mutex_unlock(&limit_lock);
    return rc;
}

EXPORT CUresult cuDeviceGetAttribute(int *v, int attr, CUdevice d)
{
    setup();
    if (!v || d < 0 || d >= st.ndev)
        return CUDA_ERROR_INVALID_VALUE;
    if (attr == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        *v = 100;
    else if (attr == CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR)
        *v = 2048;
    else
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

/* ---- stream-ordered memory: pools, streams, synchronization ---- */

struct pool_st { int dev; uint64_t reserved, used, threshold; bool created; };
static struct pool_st default_pool[MAX_DEV];
static struct pool_st *current_pool[MAX_DEV];
static struct pool_st *created_pools[64];          /* made by cuMemPoolCreate, live */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

/* Frees that wait for their stream. */
#define PENDING 4096
static struct { uint64_t id; CUstream stream; bool plain; } pending[PENDING];
static int npending;

static struct pool_st *pool_current(int dev)
{
    if (!current_pool[dev]) {
        default_pool[dev].dev = dev;
        current_pool[dev] = &default_pool[dev];
    }
    return current_pool[dev];
}

/* Gives back to the card what pl holds unused above keep. */
static void pool_shrink(struct pool_st *pl, uint64_t keep)
{
    uint64_t floor = pl->used > keep ? pl->used : keep;
    if (pl->reserved > floor) {
        atomic_fetch_sub(&st.used[pl->dev], pl->reserved - floor);
        pl->reserved = floor;
    }
}

static CUresult pool_take(struct pool_st *pl, uint64_t n, CUdeviceptr *out)
{
    setup();
    if (!out || !pl || !st.pool_of)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    CUresult rc = CUDA_SUCCESS;
    if (st.pool_grows) {
        if ((rc = card_take(pl->dev, n)) == CUDA_SUCCESS)
            pl->reserved += n;
    } else if (pl->used + n > pl->reserved) {
        rc = card_take(pl->dev, pl->used + n - pl->reserved);
        if (rc == CUDA_SUCCESS)
            pl->reserved = pl->used + n;
    }
    if (rc == CUDA_SUCCESS && (rc = new_id(pl->dev, n, out)) == CUDA_SUCCESS) {
        pl->used += n;
        st.pool_of[(*out - BASE) >> ID_SHIFT] = pl;
    }
    pthread_mutex_unlock(&pool_lock);
    return rc;
}

/* The allocation id goes back to its pool (the pool keeps the bytes). */
static void pool_return(uint64_t id)
{
    uint64_t v = atomic_exchange_explicit(&st.sizes[id], 0, memory_order_relaxed);
    struct pool_st *pl = st.pool_of[id];
    st.pool_of[id] = NULL;
    if (v && pl)
        pl->used -= v & ((1ull << 55) - 1);
}

/* Every pool lets go of what it holds above its release threshold. */
static void pools_release(void)
{
    for (int i = 0; i < 64; i++)
        if (created_pools[i])
            pool_shrink(created_pools[i], created_pools[i]->threshold);
    for (int d = 0; d < MAX_DEV; d++)
        pool_shrink(&default_pool[d], default_pool[d].threshold);
}

/* A synchronous free of stream-ordered memory: the driver waits, the bytes
 * go back to the pool, the pool releases down to its threshold. */
static CUresult pool_give(uint64_t id, uint64_t unused)
{
    (void)unused;
    pthread_mutex_lock(&pool_lock);
    pool_return(id);
    pools_release();
    pthread_mutex_unlock(&pool_lock);
    return CUDA_SUCCESS;
}

static CUresult free_async(CUdeviceptr p, CUstream s)
{
    setup();
    if (p < BASE || !st.pool_of || ((p - BASE) & ((1ull << ID_SHIFT) - 1)))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t id = (p - BASE) >> ID_SHIFT;
    if (id == 0 || id >= IDS || !atomic_load(&st.sizes[id]))
        return CUDA_ERROR_INVALID_VALUE;
    /* Plain memory too is freed only when the stream gets there (the
     * stub's streams get there when synchronized); until then it is the
     * card's. */
    pthread_mutex_lock(&pool_lock);
    CUresult rc = CUDA_SUCCESS;
    for (int i = 0; i < npending; i++)
        if (pending[i].id == id)
            rc = CUDA_ERROR_INVALID_VALUE;          /* freed twice */
    if (rc == CUDA_SUCCESS && npending < PENDING) {
        pending[npending].id = id;
        pending[npending].plain = !st.pool_of[id];
        pending[npending++].stream = s;
    } else if (rc == CUDA_SUCCESS) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&pool_lock);
    return rc;
}

/* A plain allocation freed on a stream, now that the stream got there. */
static void plain_return(uint64_t id)
{
    uint64_t v = atomic_exchange_explicit(&st.sizes[id], 0, memory_order_relaxed);
    if (v)
        atomic_fetch_sub(&st.used[v >> 56], v & ((1ull << 55) - 1));
}

static CUresult sync_streams(CUstream s, bool all);

/* Whether stream s has frees still to reach: CUDA_ERROR_NOT_READY.  With
 * VRAM_STUB_CUDA_STREAMS_DONE=1 streams get there on their own, as a
 * card's do: a query finds it done. */
static CUresult query(CUstream s)
{
    setup();
    if (st.streams_done)
        return sync_streams(s, false);
    pthread_mutex_lock(&pool_lock);
    CUresult rc = CUDA_SUCCESS;
    for (int i = 0; i < npending; i++)
        if (pending[i].stream == s)
            rc = CUDA_ERROR_NOT_READY;
    pthread_mutex_unlock(&pool_lock);
    return rc;
}

/* The stream (every stream when all) reached its frees. */
static CUresult sync_streams(CUstream s, bool all)
{
    setup();
    pthread_mutex_lock(&pool_lock);
    int keep = 0;
    for (int i = 0; i < npending; i++) {
        if (!all && pending[i].stream != s)
            pending[keep++] = pending[i];
        else if (pending[i].plain)
            plain_return(pending[i].id);
        else
            pool_return(pending[i].id);
    }
    npending = keep;
    pools_release();
    pthread_mutex_unlock(&pool_lock);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAllocAsync(CUdeviceptr *p, size_t n, CUstream s)
{
    (void)s;
    setup();
    int d = cur_dev();
    if (d < 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&pool_lock);
    struct pool_st *pl = pool_current(d);
    pthread_mutex_unlock(&pool_lock);
    return pool_take(pl, n, p);
}
EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *p, size_t n, CUstream s) { return cuMemAllocAsync(p, n, s); }
EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *p, size_t n, CUmemoryPool pool, CUstream s)
{
    (void)s;
    return pool_take((struct pool_st *)pool, n, p);
}
EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *p, size_t n, CUmemoryPool pool, CUstream s)
{
    return cuMemAllocFromPoolAsync(p, n, pool, s);
}
EXPORT CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s) { return free_async(p, s); }
/* In a _ptsz call the null stream is the thread's own (CU_STREAM_PER_THREAD;
 * the stub keeps one for all threads). */
#define PTSZ(s) ((s) ? (s) : (CUstream)0x2)
EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream s) { return free_async(p, PTSZ(s)); }
EXPORT CUresult cuStreamSynchronize(CUstream s) { return sync_streams(s, false); }
EXPORT CUresult cuStreamSynchronize_ptsz(CUstream s) { return sync_streams(PTSZ(s), false); }
EXPORT CUresult cuCtxSynchronize(void) { return sync_streams(NULL, true); }
EXPORT CUresult cuStreamQuery(CUstream s) { return query(s); }
EXPORT CUresult cuStreamQuery_ptsz(CUstream s) { return query(PTSZ(s)); }
/* A destroyed stream's frees still happen, when the context is synchronized. */
EXPORT CUresult cuStreamDestroy(CUstream s) { (void)s; setup(); return CUDA_SUCCESS; }
EXPORT CUresult cuStreamDestroy_v2(CUstream s) { (void)s; setup(); return CUDA_SUCCESS; }
EXPORT CUresult cuEventSynchronize(CUevent e) { (void)e; return sync_streams(NULL, true); }

EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    setup();
    if (!pool || !props || props->location.type != CU_MEM_LOCATION_TYPE_DEVICE || props->location.id < 0 ||
        props->location.id >= st.ndev)
        return CUDA_ERROR_INVALID_VALUE;
    struct pool_st *pl = calloc(1, sizeof(*pl));
    if (!pl)
        return CUDA_ERROR_OUT_OF_MEMORY;
    pl->dev = props->location.id;
    pl->created = true;
    pthread_mutex_lock(&pool_lock);
    int i = 0;
    while (i < 64 && created_pools[i])
        i++;
    if (i < 64)
        created_pools[i] = pl;
    pthread_mutex_unlock(&pool_lock);
    if (i == 64) {
        free(pl);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pool = (CUmemoryPool)pl;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    struct pool_st *pl = (struct pool_st *)pool;
    if (!pl || !pl->created)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    pool_shrink(pl, 0);
    bool empty = !pl->used;
    for (int d = 0; d < MAX_DEV; d++)
        if (current_pool[d] == pl)
            current_pool[d] = &default_pool[d];
    if (empty)
        for (int i = 0; i < 64; i++)
            if (created_pools[i] == pl)
                created_pools[i] = NULL;
    pthread_mutex_unlock(&pool_lock);
    if (empty)
        free(pl);                   /* one still in use stays (a stub's leak) */
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t keep)
{
    struct pool_st *pl = (struct pool_st *)pool;
    if (!pl)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    pool_shrink(pl, keep);
    pthread_mutex_unlock(&pool_lock);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, int attr, void *value)
{
    struct pool_st *pl = (struct pool_st *)pool;
    if (!pl || !value)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    uint64_t v = attr == CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT ? pl->reserved
               : attr == CU_MEMPOOL_ATTR_USED_MEM_CURRENT ? pl->used
               : attr == CU_MEMPOOL_ATTR_RELEASE_THRESHOLD ? pl->threshold : UINT64_MAX;
    pthread_mutex_unlock(&pool_lock);
    if (v == UINT64_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    *(cuuint64_t *)value = v;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, int attr, void *value)
{
    struct pool_st *pl = (struct pool_st *)pool;
    if (!pl || !value || attr != CU_MEMPOOL_ATTR_RELEASE_THRESHOLD)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    pl->threshold = *(cuuint64_t *)value;
    pthread_mutex_unlock(&pool_lock);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice d)
{
    setup();
    if (!pool || d < 0 || d >= st.ndev)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    *pool = (CUmemoryPool)pool_current(d);
    pthread_mutex_unlock(&pool_lock);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceSetMemPool(CUdevice d, CUmemoryPool pool)
{
    setup();
    struct pool_st *pl = (struct pool_st *)pool;
    if (!pl || d < 0 || d >= st.ndev || pl->dev != d)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    current_pool[d] = pl;
    pthread_mutex_unlock(&pool_lock);
    return CUDA_SUCCESS;
}

/* ---- graphs: memory nodes reserve from the device's graph pool ---- */

struct graph_st { uint64_t bytes[MAX_DEV]; unsigned nodes; };
static uint64_t graph_reserved[MAX_DEV], graph_reserved_high[MAX_DEV], graph_used_high[MAX_DEV];

EXPORT CUresult cuGraphCreate(CUgraph *g, unsigned int flags)
{
    (void)flags;
    if (!g)
        return CUDA_ERROR_INVALID_VALUE;
    *g = (CUgraph)calloc(1, sizeof(struct graph_st));
    return *g ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

EXPORT CUresult cuGraphDestroy(CUgraph g) { free(g); return CUDA_SUCCESS; }

EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t ndeps,
                                       CUDA_MEM_ALLOC_NODE_PARAMS *params)
{
    (void)deps, (void)ndeps;
    setup();
    struct graph_st *gr = (struct graph_st *)g;
    if (!node || !gr || !params || !params->bytesize || params->poolProps.location.id < 0 ||
        params->poolProps.location.id >= st.ndev)
        return CUDA_ERROR_INVALID_VALUE;
    gr->bytes[params->poolProps.location.id] += params->bytesize;
    params->dptr = 0x200000000000ull + ((uint64_t)++gr->nodes << 32);
    *node = (CUgraphNode)(uintptr_t)gr->nodes;
    return CUDA_SUCCESS;
}

static CUresult instantiate(CUgraphExec *e, CUgraph g)
{
    if (!e || !g)
        return CUDA_ERROR_INVALID_VALUE;
    struct graph_st *x = malloc(sizeof(*x));
    if (!x)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *x = *(struct graph_st *)g;
    *e = (CUgraphExec)x;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGraphInstantiate(CUgraphExec *e, CUgraph g, CUgraphNode *en, char *log, size_t n)
{
    (void)en, (void)log, (void)n;
    return instantiate(e, g);
}
EXPORT CUresult cuGraphInstantiate_v2(CUgraphExec *e, CUgraph g, CUgraphNode *en, char *log, size_t n)
{
    return cuGraphInstantiate(e, g, en, log, n);
}
EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *e, CUgraph g, unsigned long long flags)
{
    (void)flags;
    return instantiate(e, g);
}
EXPORT CUresult cuGraphInstantiateWithParams(CUgraphExec *e, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    (void)p;
    return instantiate(e, g);
}
EXPORT CUresult cuGraphInstantiateWithParams_ptsz(CUgraphExec *e, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    (void)p;
    return instantiate(e, g);
}
EXPORT CUresult cuGraphExecDestroy(CUgraphExec e) { free(e); return CUDA_SUCCESS; }

/* A launch reserves what its memory nodes need beyond what the graph pool
 * holds, and frees them before it ends (the pool keeps the bytes). */
EXPORT CUresult cuGraphLaunch(CUgraphExec e, CUstream s)
{
    (void)s;
    setup();
    struct graph_st *x = (struct graph_st *)e;
    if (!x)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    CUresult rc = CUDA_SUCCESS;
    for (int d = 0; d < st.ndev && rc == CUDA_SUCCESS; d++) {
        if (x->bytes[d] > graph_reserved[d] &&
            (rc = card_take(d, x->bytes[d] - graph_reserved[d])) == CUDA_SUCCESS)
            graph_reserved[d] = x->bytes[d];
        if (graph_reserved[d] > graph_reserved_high[d])
            graph_reserved_high[d] = graph_reserved[d];
        if (x->bytes[d] > graph_used_high[d])
            graph_used_high[d] = x->bytes[d];
    }
    pthread_mutex_unlock(&pool_lock);
    return rc;
}
EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec e, CUstream s) { return cuGraphLaunch(e, s); }

EXPORT CUresult cuDeviceGraphMemTrim(CUdevice d)
{
    setup();
    if (d < 0 || d >= st.ndev)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&pool_lock);
    atomic_fetch_sub(&st.used[d], graph_reserved[d]);
    graph_reserved[d] = 0;
    pthread_mutex_unlock(&pool_lock);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetGraphMemAttribute(CUdevice d, int attr, void *value)
{
    setup();
    if (d < 0 || d >= st.ndev || !value)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    uint64_t v = attr == CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT ? 0
               : attr == CU_GRAPH_MEM_ATTR_USED_MEM_HIGH ? graph_used_high[d]
               : attr == CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT ? graph_reserved[d]
               : graph_reserved_high[d];
    pthread_mutex_unlock(&pool_lock);
    *(cuuint64_t *)value = v;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr *base, size_t *size, CUdeviceptr p)
{
    setup();
    if (p < BASE || !st.sizes)
        return CUDA_ERROR_NOT_FOUND;
    uint64_t id = (p - BASE) >> ID_SHIFT;
    uint64_t v = id < IDS ? atomic_load(&st.sizes[id]) : 0;
    if (!v)
        return CUDA_ERROR_NOT_FOUND;
    if (base)
        *base = BASE + (id << ID_SHIFT);
    if (size)
        *size = (size_t)(v & ((1ull << 55) - 1));
    return CUDA_SUCCESS;
}

/* Handles of the virtual memory calls are the fake addresses; each has a
 * count of what refers to it, and the mappings are a short list. */
#define MAPPINGS 256
static struct { uint64_t refs[MAX_DEV * 64]; uint64_t ids[MAX_DEV * 64]; int n; } vmm;
static struct { CUdeviceptr va; size_t size; uint64_t id; } mapping[MAPPINGS];
static pthread_mutex_t vmm_lock = PTHREAD_MUTEX_INITIALIZER;

/* The reference count of allocation id (made when add), or NULL. */
static uint64_t *vmm_refs(uint64_t id, bool add)
{
    for (int i = 0; i < vmm.n; i++)
        if (vmm.ids[i] == id)
            return &vmm.refs[i];
    if (!add)
        return NULL;
    for (int i = 0; i < vmm.n; i++)
        if (!vmm.refs[i]) {
            vmm.ids[i] = id;
            return &vmm.refs[i];
        }
    if (vmm.n == MAX_DEV * 64)
        return NULL;
    vmm.ids[vmm.n] = id;
    vmm.refs[vmm.n] = 0;
    return &vmm.refs[vmm.n++];
}

static uint64_t handle_id(CUmemGenericAllocationHandle h)
{
    return h >= BASE && !((h - BASE) & ((1ull << ID_SHIFT) - 1)) ? (h - BASE) >> ID_SHIFT : 0;
}

/* One reference to allocation id went: the last frees it. */
static CUresult vmm_unref(uint64_t id)
{
    uint64_t *r = vmm_refs(id, false);
    if (!r || !*r)
        return CUDA_ERROR_INVALID_VALUE;
    if (--*r == 0)
        give(BASE + (id << ID_SHIFT));
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *h, size_t n, const CUmemAllocationProp *prop,
                            unsigned long long flags)
{
    (void)flags;
    if (!h || !prop || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    CUdeviceptr p;
    CUresult rc = take(prop->location.id, n, &p);
    if (rc != CUDA_SUCCESS)
        return rc;
    pthread_mutex_lock(&vmm_lock);
    uint64_t *r = vmm_refs(handle_id(p), true);
    if (r)
        *r = 1;
    pthread_mutex_unlock(&vmm_lock);
    if (!r) {
        give(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *h = p;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle h)
{
    pthread_mutex_lock(&vmm_lock);
    CUresult rc = vmm_unref(handle_id(h));
    pthread_mutex_unlock(&vmm_lock);
    return rc;
}

EXPORT CUresult cuMemMap(CUdeviceptr va, size_t size, size_t offset, CUmemGenericAllocationHandle h,
                         unsigned long long flags)
{
    (void)flags;
    if (!va || !size || offset)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vmm_lock);
    uint64_t *r = vmm_refs(handle_id(h), false);
    int i = 0;
    while (i < MAPPINGS && mapping[i].va)
        i++;
    CUresult rc = !r || !*r ? CUDA_ERROR_INVALID_VALUE : i == MAPPINGS ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
    if (rc == CUDA_SUCCESS) {
        mapping[i].va = va;
        mapping[i].size = size;
        mapping[i].id = handle_id(h);
        ++*r;
    }
    pthread_mutex_unlock(&vmm_lock);
    return rc;
}

/* Unmaps every mapping in [va, va + size). */
EXPORT CUresult cuMemUnmap(CUdeviceptr va, size_t size)
{
    pthread_mutex_lock(&vmm_lock);
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    for (int i = 0; i < MAPPINGS; i++)
        if (mapping[i].va && mapping[i].va >= va && mapping[i].va - va < size) {
            vmm_unref(mapping[i].id);
            mapping[i].va = 0;
            rc = CUDA_SUCCESS;
        }
    pthread_mutex_unlock(&vmm_lock);
    return rc;
}

EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *h, void *addr)
{
    CUdeviceptr a = (CUdeviceptr)(uintptr_t)addr;
    pthread_mutex_lock(&vmm_lock);
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    for (int i = 0; h && i < MAPPINGS && rc; i++)
        if (mapping[i].va && a >= mapping[i].va && a - mapping[i].va < mapping[i].size) {
            ++*vmm_refs(mapping[i].id, false);
            *h = BASE + (mapping[i].id << ID_SHIFT);
            rc = CUDA_SUCCESS;
        }
    pthread_mutex_unlock(&vmm_lock);
    return rc;
}

/* Arrays are allocations whose handle points at their fake address. */
static CUresult array_take(uint64_t bytes, void **out)
{
    CUdeviceptr *p = malloc(sizeof(*p));
    if (!p)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = take(cur_dev(), bytes, p);
    if (rc != CUDA_SUCCESS) {
        free(p);
        return rc;
    }
    *out = p;
    return CUDA_SUCCESS;
}

static CUresult array_give(void *a)
{
    if (!a)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = give(*(CUdeviceptr *)a);
    if (rc == CUDA_SUCCESS)
        free(a);
    return rc;
}

static uint64_t elem(CUarray_format f, unsigned ch)
{
    unsigned b = f == CU_AD_FORMAT_UNSIGNED_INT8 || f == CU_AD_FORMAT_SIGNED_INT8 ? 1
               : f == CU_AD_FORMAT_UNSIGNED_INT16 || f == CU_AD_FORMAT_SIGNED_INT16 || f == CU_AD_FORMAT_HALF ? 2 : 4;
    return (uint64_t)b * (ch ? ch : 1);
}

#define ONE(x) ((x) ? (uint64_t)(x) : 1)

EXPORT CUresult cuArrayCreate_v2(CUarray *a, const CUDA_ARRAY_DESCRIPTOR *d)
{
    if (!a || !d)
        return CUDA_ERROR_INVALID_VALUE;
    return array_take(ONE(d->Width) * ONE(d->Height) * elem(d->Format, d->NumChannels), (void **)a);
}

EXPORT CUresult cuArrayCreate(CUarray *a, const CUDA_ARRAY_DESCRIPTOR_v1 *d)
{
    if (!a || !d)
        return CUDA_ERROR_INVALID_VALUE;
    return array_take(ONE(d->Width) * ONE(d->Height) * elem(d->Format, d->NumChannels), (void **)a);
}

EXPORT CUresult cuArray3DCreate_v2(CUarray *a, const CUDA_ARRAY3D_DESCRIPTOR *d)
{
    if (!a || !d)
        return CUDA_ERROR_INVALID_VALUE;
    return array_take(ONE(d->Width) * ONE(d->Height) * ONE(d->Depth) * elem(d->Format, d->NumChannels),
                      (void **)a);
}

EXPORT CUresult cuArray3DCreate(CUarray *a, const CUDA_ARRAY3D_DESCRIPTOR_v1 *d)
{
    if (!a || !d)
        return CUDA_ERROR_INVALID_VALUE;
    return array_take(ONE(d->Width) * ONE(d->Height) * ONE(d->Depth) * elem(d->Format, d->NumChannels),
                      (void **)a);
}

EXPORT CUresult cuArrayDestroy(CUarray a) { return array_give(a); }

EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray *a, const CUDA_ARRAY3D_DESCRIPTOR *d, unsigned int levels)
{
    if (!a || !d)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t n = ONE(d->Width) * ONE(d->Height) * ONE(d->Depth) * elem(d->Format, d->NumChannels);
    return array_take(levels > 1 ? n * 4 / 3 : n, (void **)a);
}

EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray a) { return array_give(a); }

/* ---- cuGetProcAddress ---- */

typedef struct { const char *base; const char *name; int since; int ptds; void *fn; } proc_row;

#define ROW(base, sym, since, ptds) { #base, #sym, since, ptds, (void *)&sym }

EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags);
EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags,
                                    CUdriverProcAddressQueryResult *status);

static const proc_row rows[] = {
    ROW(cuInit, cuInit, 2000, 0),
    ROW(cuDriverGetVersion, cuDriverGetVersion, 2020, 0),
    ROW(cuDeviceGet, cuDeviceGet, 2000, 0),
    ROW(cuDeviceGetCount, cuDeviceGetCount, 2000, 0),
    ROW(cuDeviceGetName, cuDeviceGetName, 2000, 0),
    ROW(cuDeviceGetPCIBusId, cuDeviceGetPCIBusId, 4010, 0),
    ROW(cuDeviceTotalMem, cuDeviceTotalMem, 2000, 0),
    ROW(cuDeviceTotalMem, cuDeviceTotalMem_v2, 3020, 0),
    ROW(cuGetProcAddress, cuGetProcAddress, 11030, 0),
    ROW(cuGetProcAddress, cuGetProcAddress_v2, 12000, 0),
    ROW(cuMemGetInfo, cuMemGetInfo, 2000, 0),
    ROW(cuMemGetInfo, cuMemGetInfo_v2, 3020, 0),
    ROW(cuMemAlloc, cuMemAlloc, 2000, 0),
    ROW(cuMemAlloc, cuMemAlloc_v2, 3020, 0),
    ROW(cuMemAllocPitch, cuMemAllocPitch, 2000, 0),
    ROW(cuMemAllocPitch, cuMemAllocPitch_v2, 3020, 0),
    ROW(cuMemAllocManaged, cuMemAllocManaged, 6000, 0),
    ROW(cuMemAllocAsync, cuMemAllocAsync, 11020, 0),
    ROW(cuMemAllocAsync, cuMemAllocAsync_ptsz, 11020, 1),
    ROW(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync, 11020, 0),
    ROW(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync_ptsz, 11020, 1),
    ROW(cuMemFree, cuMemFree, 2000, 0),
    ROW(cuMemFree, cuMemFree_v2, 3020, 0),
    ROW(cuMemFreeAsync, cuMemFreeAsync, 11020, 0),
    ROW(cuMemFreeAsync, cuMemFreeAsync_ptsz, 11020, 1),
    ROW(cuMemGetAddressRange, cuMemGetAddressRange_v2, 3020, 0),
    ROW(cuMemCreate, cuMemCreate, 10020, 0),
    ROW(cuMemRelease, cuMemRelease, 10020, 0),
    ROW(cuMemMap, cuMemMap, 10020, 0),
    ROW(cuMemUnmap, cuMemUnmap, 10020, 0),
    ROW(cuMemRetainAllocationHandle, cuMemRetainAllocationHandle, 11000, 0),
    ROW(cuArrayCreate, cuArrayCreate, 2000, 0),
    ROW(cuArrayCreate, cuArrayCreate_v2, 3020, 0),
    ROW(cuArray3DCreate, cuArray3DCreate, 2000, 0),
    ROW(cuArray3DCreate, cuArray3DCreate_v2, 3020, 0),
    ROW(cuArrayDestroy, cuArrayDestroy, 2000, 0),
    ROW(cuMipmappedArrayCreate, cuMipmappedArrayCreate, 5000, 0),
    ROW(cuMipmappedArrayDestroy, cuMipmappedArrayDestroy, 5000, 0),
    ROW(cuMemPoolCreate, cuMemPoolCreate, 11020, 0),
    ROW(cuMemPoolTrimTo, cuMemPoolTrimTo, 11020, 0),
    ROW(cuMemPoolDestroy, cuMemPoolDestroy, 11020, 0),
    ROW(cuMemPoolGetAttribute, cuMemPoolGetAttribute, 11020, 0),
    ROW(cuMemPoolSetAttribute, cuMemPoolSetAttribute, 11020, 0),
    ROW(cuDeviceGetMemPool, cuDeviceGetMemPool, 11020, 0),
    ROW(cuDeviceSetMemPool, cuDeviceSetMemPool, 11020, 0),
    ROW(cuStreamSynchronize, cuStreamSynchronize, 2000, 0),
    ROW(cuStreamSynchronize, cuStreamSynchronize_ptsz, 7000, 1),
    ROW(cuCtxSynchronize, cuCtxSynchronize, 2000, 0),
    ROW(cuStreamQuery, cuStreamQuery, 2000, 0),
    ROW(cuStreamQuery, cuStreamQuery_ptsz, 7000, 1),
    ROW(cuStreamDestroy, cuStreamDestroy, 2000, 0),
    ROW(cuStreamDestroy, cuStreamDestroy_v2, 4000, 0),
    ROW(cuEventSynchronize, cuEventSynchronize, 2000, 0),
    ROW(cuGraphCreate, cuGraphCreate, 10000, 0),
    ROW(cuGraphDestroy, cuGraphDestroy, 10000, 0),
    ROW(cuGraphAddMemAllocNode, cuGraphAddMemAllocNode, 11040, 0),
    ROW(cuGraphInstantiate, cuGraphInstantiate, 10000, 0),
    ROW(cuGraphInstantiate, cuGraphInstantiate_v2, 11000, 0),
    ROW(cuGraphInstantiate, cuGraphInstantiateWithFlags, 12000, 0),
    ROW(cuGraphInstantiateWithFlags, cuGraphInstantiateWithFlags, 11040, 0),
    ROW(cuGraphInstantiateWithParams, cuGraphInstantiateWithParams, 12000, 0),
    ROW(cuGraphInstantiateWithParams, cuGraphInstantiateWithParams_ptsz, 12000, 1),
    ROW(cuGraphExecDestroy, cuGraphExecDestroy, 10000, 0),
    ROW(cuGraphLaunch, cuGraphLaunch, 10000, 0),
    ROW(cuGraphLaunch, cuGraphLaunch_ptsz, 10000, 1),
    ROW(cuDeviceGraphMemTrim, cuDeviceGraphMemTrim, 11040, 0),
    ROW(cuDeviceGetGraphMemAttribute, cuDeviceGetGraphMemAttribute, 11040, 0),
    ROW(cuCtxCreate, cuCtxCreate, 2000, 0),
    ROW(cuCtxCreate, cuCtxCreate_v2, 3020, 0),
    ROW(cuCtxCreate, cuCtxCreate_v3, 11040, 0),
    ROW(cuCtxDestroy, cuCtxDestroy, 2000, 0),
    ROW(cuCtxDestroy, cuCtxDestroy_v2, 4000, 0),
    ROW(cuCtxSetCurrent, cuCtxSetCurrent, 4000, 0),
    ROW(cuCtxGetCurrent, cuCtxGetCurrent, 4000, 0),
    ROW(cuCtxGetDevice, cuCtxGetDevice, 2000, 0),
    ROW(cuCtxSetLimit, cuCtxSetLimit, 3010, 0),
    ROW(cuCtxGetLimit, cuCtxGetLimit, 3010, 0),
    ROW(cuDeviceGetAttribute, cuDeviceGetAttribute, 2000, 0),
    ROW(cuCtxPushCurrent, cuCtxPushCurrent_v2, 4000, 0),
    ROW(cuCtxPopCurrent, cuCtxPopCurrent_v2, 4000, 0),
    ROW(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain, 7000, 0),
    ROW(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease, 7000, 0),
    ROW(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease_v2, 11000, 0),
    ROW(cuDevicePrimaryCtxReset, cuDevicePrimaryCtxReset, 7000, 0),
    ROW(cuDevicePrimaryCtxReset, cuDevicePrimaryCtxReset_v2, 11000, 0),
};

static CUresult lookup(const char *symbol, void **pfn, int version, cuuint64_t flags,
                       CUdriverProcAddressQueryResult *status)
{
    setup();
    if (!symbol || !pfn)
        return CUDA_ERROR_INVALID_VALUE;
    const proc_row *best = NULL;
    bool known = false;
    bool ptds = flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const proc_row *r = &rows[i];
        if (strcmp(r->base, symbol))
            continue;
        known = true;
        if (r->since > version || (r->ptds && !ptds))
            continue;
        if (!best || r->since > best->since || (r->since == best->since && r->ptds))
            best = r;
    }
    *pfn = best ? best->fn : NULL;
    if (status)
        *status = best ? CU_GET_PROC_ADDRESS_SUCCESS
                : known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return best ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags)
{
    return lookup(symbol, pfn, version, flags, NULL);
}

EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags,
                                    CUdriverProcAddressQueryResult *status)
{
    return lookup(symbol, pfn, version, flags, status);
}
