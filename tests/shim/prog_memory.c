/* SPDX-License-Identifier: MIT */
/*
 * tests/shim/prog_memory.c - the memory the driver keeps for a program
 * beyond its allocations, and budgets per device, reached through dlsym on
 * the driver (the shim's hooks under LD_PRELOAD).  First argument:
 *
 *   pool       stream-ordered memory: cuMemFreeAsync counted until its
 *              stream is synchronized, a pool's reserve kept by its release
 *              threshold, reuse from the pool, cuMemPoolTrimTo, a pool of
 *              one's own
 *   graph      graph memory nodes: counted at launch, kept by the graph
 *              pool until cuDeviceGraphMemTrim, refused past the budget at
 *              instantiation and at launch; cuGraphInstantiate by version
 *   devices    on each of two devices: its total, and 1 GiB at a time until
 *              refused (at most 4)
 *   plain      plain memory (cuMemAlloc) freed with cuMemFreeAsync: counted
 *              until its stream is synchronized or says done, refused
 *              beside, a destroyed stream's frees until cuCtxSynchronize,
 *              the per-thread default stream; with
 *              VRAM_STUB_CUDA_STREAMS_DONE=1 (streams get there on their
 *              own) the shim's own cuStreamQuery gives them back
 *
 * It prints "STEP free=BYTES" (cuMemGetInfo's free on device 0, which under
 * the shim is the budget less the job's count) and "STEP rc=N" lines.
 */
#include <dlfcn.h>

#include "prog.h"

/* prog.h's common run is not used here. */
__attribute__((unused)) static int (*const unused_run)(const drv *, int) = drv_run;

static void *lib;
static int failed;

static void *sym(const char *name)
{
    void *p = lib ? dlsym(lib, name) : NULL;
    if (!p) {
        printf("no symbol %s\n", name);
        failed = 1;
    }
    return p;
}

#define FN(name) __typeof__(&name) name##_ = (__typeof__(&name))sym(#name)

static CUresult (*get_info)(size_t *, size_t *);

static void say_free(const char *step)
{
    size_t f = 0, t = 0;
    get_info(&f, &t);
    printf("%s free=%zu\n", step, f);
}

static CUcontext last_ctx;

static int context(int dev)
{
    FN(cuInit);
    FN(cuCtxCreate_v2);
    return failed || cuInit_(0) || cuCtxCreate_v2_(&last_ctx, 0, dev);
}

#define STREAM1 ((CUstream)0x1)
#define STREAM2 ((CUstream)0x2)

static int run_pool(void)
{
    FN(cuMemAllocAsync);
    FN(cuMemFreeAsync);
    FN(cuStreamSynchronize);
    FN(cuCtxSynchronize);
    FN(cuDeviceGetMemPool);
    FN(cuMemPoolSetAttribute);
    FN(cuMemPoolGetAttribute);
    FN(cuMemPoolTrimTo);
    FN(cuMemPoolCreate);
    FN(cuMemPoolDestroy);
    FN(cuMemAllocFromPoolAsync);
    if (failed || context(0))
        return 1;
    CUdeviceptr a = 0, b = 0;
    printf("alloc-async rc=%d\n", cuMemAllocAsync_(&a, 2 * GIB, STREAM1));
    say_free("after-alloc");
    cuMemFreeAsync_(a, STREAM1);
    say_free("after-free-async");           /* the stream has not reached it */
    cuStreamSynchronize_(STREAM2);
    say_free("after-other-stream-sync");    /* another stream's end says nothing of it */
    cuStreamSynchronize_(STREAM1);
    say_free("after-sync");

    /* A release threshold: the pool keeps what was freed, and so does the count. */
    CUmemoryPool pool;
    cuuint64_t keep = 2 * GIB, reserved = 0;
    if (cuDeviceGetMemPool_(&pool, 0) || cuMemPoolSetAttribute_(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep))
        return 1;
    cuMemAllocAsync_(&a, 2 * GIB, STREAM1);
    cuMemFreeAsync_(a, STREAM1);
    cuStreamSynchronize_(STREAM1);
    say_free("kept-by-threshold");
    cuMemPoolGetAttribute_(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved);
    printf("pool-reserved=%llu\n", reserved);
    printf("reuse rc=%d\n", cuMemAllocAsync_(&a, 2 * GIB, STREAM1));    /* served by the pool */
    say_free("reused");
    printf("past-budget rc=%d\n", cuMemAllocAsync_(&b, 2 * GIB, STREAM1));
    cuMemFreeAsync_(a, STREAM1);
    cuCtxSynchronize_();
    say_free("freed-kept");
    cuMemPoolTrimTo_(pool, 0);
    say_free("trimmed");

    /* A pool of one's own, freed and synchronized: given back (threshold 0). */
    CUmemPoolProps props;
    memset(&props, 0, sizeof(props));
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    CUmemoryPool mine;
    if (cuMemPoolCreate_(&mine, &props))
        return 1;
    printf("own-pool rc=%d\n", cuMemAllocFromPoolAsync_(&a, GIB, mine, STREAM2));
    say_free("own-pool-alloc");
    cuMemFreeAsync_(a, STREAM2);
    say_free("own-pool-free-async");
    cuStreamSynchronize_(STREAM2);
    say_free("own-pool-sync");
    cuMemPoolDestroy_(mine);
    return 0;
}

static int run_graph(void)
{
    FN(cuGraphCreate);
    FN(cuGraphAddMemAllocNode);
    FN(cuGraphInstantiateWithFlags);
    FN(cuGraphLaunch);
    FN(cuStreamSynchronize);
    FN(cuDeviceGraphMemTrim);
    FN(cuDeviceGetGraphMemAttribute);
    FN(cuMemAlloc_v2);
    FN(cuMemFree_v2);
    FN(cuGraphExecDestroy);
    FN(cuGraphDestroy);
    FN(cuGetProcAddress_v2);
    FN(cuGetProcAddress);
    if (failed || context(0))
        return 1;
    CUgraph g, big;
    CUgraphNode node;
    CUgraphExec x, xbig;
    CUDA_MEM_ALLOC_NODE_PARAMS p;
    memset(&p, 0, sizeof(p));
    p.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.bytesize = 2 * GIB;
    if (cuGraphCreate_(&g, 0) || cuGraphAddMemAllocNode_(&node, g, NULL, 0, &p))
        return 1;
    printf("instantiate rc=%d\n", cuGraphInstantiateWithFlags_(&x, g, 0));
    say_free("instantiated");               /* nothing is taken before a launch */
    printf("launch rc=%d\n", cuGraphLaunch_(x, STREAM1));
    say_free("launched");
    cuStreamSynchronize_(STREAM1);
    say_free("kept-by-graph-pool");
    cuuint64_t reserved = 0;
    cuDeviceGetGraphMemAttribute_(0, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &reserved);
    printf("graph-reserved=%llu\n", reserved);
    printf("relaunch rc=%d\n", cuGraphLaunch_(x, STREAM1));
    say_free("relaunched");
    CUdeviceptr d = 0;
    CUresult rc = cuMemAlloc_v2_(&d, 2 * GIB);
    printf("alloc-beside-graph-pool rc=%d\n", rc);
    if (!rc)
        cuMemFree_v2_(d);
    cuDeviceGraphMemTrim_(0);
    say_free("trimmed");
    rc = cuMemAlloc_v2_(&d, 2 * GIB);
    printf("alloc-after-trim rc=%d\n", rc);
    printf("launch-past-budget rc=%d\n", cuGraphLaunch_(x, STREAM1));
    if (!rc)
        cuMemFree_v2_(d);
    printf("launch-after-free rc=%d\n", cuGraphLaunch_(x, STREAM1));
    say_free("launched-again");
    p.bytesize = 4 * GIB;
    if (cuGraphCreate_(&big, 0) || cuGraphAddMemAllocNode_(&node, big, NULL, 0, &p))
        return 1;
    printf("instantiate-too-big rc=%d\n", cuGraphInstantiateWithFlags_(&xbig, big, 0));
    cuGraphExecDestroy_(x);
    cuGraphDestroy_(g);
    cuGraphDestroy_(big);
    cuDeviceGraphMemTrim_(0);
    say_free("end");

    /* cuGraphInstantiate changed its ABI at 12.0: the name gives the
     * WithFlags entry point from there, the 5-argument _v2 below. */
    void *at12 = NULL, *at11 = NULL;
    cuGetProcAddress_v2_("cuGraphInstantiate", &at12, 12000, 0, NULL);
    cuGetProcAddress_("cuGraphInstantiate", &at11, 11040, 0);
    printf("getproc-instantiate-12000 %s\n", at12 && at12 == dlsym(lib, "cuGraphInstantiateWithFlags") ? "ok" : "wrong");
    printf("getproc-instantiate-11040 %s\n", at11 && at11 == dlsym(lib, "cuGraphInstantiate_v2") ? "ok" : "wrong");
    return 0;
}

static int run_devices(void)
{
    FN(cuMemAlloc_v2);
    FN(cuMemFree_v2);
    FN(cuDeviceTotalMem_v2);
    FN(cuCtxDestroy_v2);
    if (failed)
        return 1;
    for (int dev = 0; dev < 2; dev++) {
        if (context(dev))
            return 1;
        size_t f = 0, t = 0, card = 0;
        get_info(&f, &t);
        cuDeviceTotalMem_v2_(&card, dev);
        printf("device %d total=%zu free=%zu device_total=%zu\n", dev, t, f, card);
        CUdeviceptr held[4];
        int got = 0;
        for (int i = 1; i <= 4; i++) {
            CUresult rc = cuMemAlloc_v2_(&held[got], GIB);
            printf("device %d alloc %d %s%.0d\n", dev, i, rc ? "error " : "ok", rc);
            if (!rc)
                got++;
        }
        while (got)
            cuMemFree_v2_(held[--got]);
        cuCtxDestroy_v2_(last_ctx);
    }
    return 0;
}

#define STREAM_A ((CUstream)0x10)
#define STREAM_B ((CUstream)0x20)
#define STREAM_C ((CUstream)0x30)

static int run_plain(void)
{
    FN(cuMemAlloc_v2);
    FN(cuMemFree_v2);
    FN(cuMemFreeAsync);
    FN(cuMemFreeAsync_ptsz);
    FN(cuStreamSynchronize);
    FN(cuStreamSynchronize_ptsz);
    FN(cuStreamQuery);
    FN(cuStreamDestroy_v2);
    FN(cuCtxSynchronize);
    if (failed || context(0))
        return 1;
    CUdeviceptr a = 0, b = 0, c = 0;
    if (cuMemAlloc_v2_(&a, GIB) || cuMemAlloc_v2_(&b, GIB))
        return 1;
    say_free("plain-held");
    printf("plain-free-async rc=%d\n", cuMemFreeAsync_(a, STREAM_A));
    say_free("plain-freed-on-stream");
    CUresult rc = cuMemAlloc_v2_(&c, 2 * GIB);
    printf("plain-beside-pending-free rc=%d\n", rc);
    if (!rc)
        cuMemFree_v2_(c);
    cuStreamSynchronize_(STREAM_B);
    say_free("plain-other-stream-synced");
    printf("plain-query rc=%d\n", cuStreamQuery_(STREAM_A));
    say_free("plain-queried");
    cuStreamSynchronize_(STREAM_A);
    say_free("plain-stream-synced");
    printf("plain-free-async-destroyed rc=%d\n", cuMemFreeAsync_(b, STREAM_C));
    cuStreamDestroy_v2_(STREAM_C);
    say_free("plain-stream-destroyed");
    cuCtxSynchronize_();
    say_free("plain-ctx-synced");
    if (cuMemAlloc_v2_(&a, GIB))
        return 1;
    printf("plain-free-async-ptsz rc=%d\n", cuMemFreeAsync_ptsz_(a, NULL));
    say_free("plain-ptsz-freed");
    cuStreamSynchronize_ptsz_(NULL);
    say_free("plain-ptsz-synced");
    return 0;
}

int main(int argc, char **argv)
{
    lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        printf("dlopen: %s\n", dlerror());
        return 1;
    }
    *(void **)&get_info = sym("cuMemGetInfo_v2");
    const char *mode = argc > 1 ? argv[1] : "";
    int rc = !strcmp(mode, "pool") ? run_pool() : !strcmp(mode, "graph") ? run_graph()
           : !strcmp(mode, "devices") ? run_devices() : !strcmp(mode, "plain") ? run_plain() : 2;
    if (rc == 2)
        fprintf(stderr, "usage: memory pool|graph|devices|plain\n");
    fflush(stdout);
    return rc;
}
