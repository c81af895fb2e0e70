/* SPDX-License-Identifier: MIT */
/*
 * tests/shim/prog_hostile.c - a job that tries to hold more device memory
 * than its budget, or to make its count low, the ways a careless or hostile
 * author might; chosen by the first argument.  Run it under
 * tests/shim/prog_host.c with a 3 GiB hard budget (test_shim_hostile.sh).
 *
 *   pitch     cuMemAllocPitch with a narrow row: the driver's pitch makes
 *             the allocation 512 times what width * height says
 *   pooldev   (two devices) from device 0, takes and frees 1 GiB of a pool
 *             made on device 1, then takes 1 GiB at a time on device 1
 *   pools     makes 64 pools, so that the default pool is one too many for
 *             the shim's rows, sets its release threshold to keep all, takes
 *             and frees 1 GiB of it, then takes 1 GiB at a time
 *   streams   frees plain memory on 64 streams that never get there, then
 *             1 GiB on one more, then takes 1 GiB at a time; then
 *             cuCtxSynchronize, and takes again
 *   huge      holds 2 GiB, then asks for sizes near 2^64 (which wrap when
 *             rounded, multiplied or added) each way, then takes 1 GiB at a
 *             time
 *   vmm       cuMemCreate, cuMemMap and cuMemRelease of 2 GiB (the memory
 *             lives on, mapped), then 2 GiB more; cuMemRetainAllocationHandle
 *             and its release; cuMemUnmap, then 2 GiB more
 *   fork      takes 1 GiB, forks a child that frees it (no exec; the stub's
 *             state is the child's copy, so the driver says yes), then
 *             takes 1 GiB at a time
 *   otherdev [DEV]  (two devices or more; the job was given one) takes 1 GiB
 *             on device DEV (default 1), as a job that unset
 *             CUDA_VISIBLE_DEVICES sees it, then on 0
 *   reset     takes 2 GiB in a context of its own (cuCtxCreate), then resets
 *             the device's primary context, and takes 1 GiB at a time
 *   epoch     takes 2 GiB, then retains and releases the primary context 16
 *             times (each release the last: its memory all goes, which the
 *             stub's does not), takes 2 GiB, frees the first pointer, takes
 *             1 GiB at a time
 *   limits    raises the context's malloc heap to 2 GiB, takes 1 GiB at a
 *             time, raises its stack (per thread) and printf FIFO, then
 *             lowers the heap again
 *   contexts  makes 4 contexts of its own on device 0 (cuCtxCreate), takes
 *             1 GiB at a time, destroys one
 *   next PLUGIN  dlopens PLUGIN (tests/shim/plugin.c) and has it take 1 GiB
 *             at a time,
 *             last through dlsym(RTLD_NEXT)
 *
 * It prints "STEP rc=N" for each call that matters and "STEP free=BYTES"
 * (cuMemGetInfo's free on device 0, under the shim the budget less the
 * job's count).
 */
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "prog.h"

/* prog.h's common run is not used here. */
__attribute__((unused)) static int (*const unused_run)(const drv *, int) = drv_run;

static void *lib;
static const char *mode_arg;        /* what follows the mode, if anything */

static void *sym(const char *name)
{
    void *p = lib ? dlsym(lib, name) : NULL;
    if (!p)
        printf("no symbol %s\n", name);
    return p;
}

#define FN(name) __typeof__(&name) name##_ = (__typeof__(&name))sym(#name)

static void say_free(const char *step)
{
    FN(cuMemGetInfo_v2);
    size_t f = 0, t = 0;
    if (cuMemGetInfo_v2_)
        cuMemGetInfo_v2_(&f, &t);
    printf("%s free=%zu\n", step, f);
}

/* The primary context of dev, current. */
static int context(int dev)
{
    FN(cuInit);
    FN(cuDevicePrimaryCtxRetain);
    CUresult (*set_current)(CUcontext) = (CUresult(*)(CUcontext))sym("cuCtxSetCurrent");
    CUcontext ctx;
    if (!cuInit_ || !cuDevicePrimaryCtxRetain_ || !set_current || cuInit_(0) ||
        cuDevicePrimaryCtxRetain_(&ctx, dev) || set_current(ctx)) {
        printf("context error\n");
        return -1;
    }
    return 0;
}

/* ---- pitch: the padding is the driver's, and can be most of it ---- */

static int run_pitch(void)
{
    FN(cuMemAllocPitch_v2);
    FN(cuMemAllocPitch);
    FN(cuMemFree_v2);
    FN(cuMemFree);
    if (!cuMemAllocPitch_v2_ || !cuMemAllocPitch_ || !cuMemFree_v2_ || !cuMemFree_ || context(0))
        return 1;
    /* One byte a row, 8M rows: 8 MiB as asked, 4 GiB at the stub's pitch
     * of 512 (a card's is alike). */
    CUdeviceptr p = 0;
    size_t pitch = 0;
    CUresult rc = cuMemAllocPitch_v2_(&p, &pitch, 1, 8u << 20, 4);
    printf("pitch rc=%d\n", rc);
    if (!rc)
        cuMemFree_v2_(p);
    say_free("pitch-after");
    CUdeviceptr_v1 p1 = 0;
    unsigned int pitch1 = 0;
    rc = cuMemAllocPitch_(&p1, &pitch1, 1, 8u << 20, 4);
    printf("pitch-v1 rc=%d\n", rc);
    if (!rc)
        cuMemFree_(p1);
    say_free("pitch-v1-after");
    /* A narrow pitch inside the budget still goes through. */
    rc = cuMemAllocPitch_v2_(&p, &pitch, 1, 2u << 20, 4);
    printf("pitch-small rc=%d\n", rc);
    say_free("pitch-small-held");
    if (!rc)
        cuMemFree_v2_(p);
    say_free("pitch-small-after");
    return 0;
}

/* ---- pooldev: a pool's memory is on the pool's device ---- */

static int take_gibs(const char *step, int count)
{
    FN(cuMemAlloc_v2);
    if (!cuMemAlloc_v2_)
        return -1;
    for (int i = 1; i <= count; i++) {
        CUdeviceptr p;
        printf("%s %d rc=%d\n", step, i, cuMemAlloc_v2_(&p, GIB));
    }
    return 0;
}

static int run_pooldev(void)
{
    FN(cuMemPoolCreate);
    FN(cuMemAllocFromPoolAsync);
    FN(cuMemFree_v2);
    if (!cuMemPoolCreate_ || !cuMemAllocFromPoolAsync_ || !cuMemFree_v2_ || context(0))
        return 1;
    CUmemoryPool pool;
    CUmemPoolProps props;
    memset(&props, 0, sizeof(props));
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = 1;
    if (cuMemPoolCreate_(&pool, &props))
        return 1;
    CUdeviceptr p = 0;
    CUresult rc = cuMemAllocFromPoolAsync_(&p, GIB, pool, NULL);
    printf("other-device-pool rc=%d\n", rc);
    say_free("other-device-pool-held");
    if (!rc)
        printf("other-device-pool-free rc=%d\n", cuMemFree_v2_(p));
    say_free("other-device-pool-freed");
    if (context(1))
        return 1;
    return take_gibs("device1", 4);
}

/* ---- pools: more pools than the shim has rows for ---- */

static int run_pools(void)
{
    FN(cuMemPoolCreate);
    FN(cuDeviceGetMemPool);
    FN(cuMemPoolSetAttribute);
    FN(cuMemPoolGetAttribute);
    FN(cuMemAllocAsync);
    FN(cuMemFreeAsync);
    FN(cuStreamSynchronize);
    if (!cuMemPoolCreate_ || !cuDeviceGetMemPool_ || !cuMemPoolSetAttribute_ || !cuMemPoolGetAttribute_ ||
        !cuMemAllocAsync_ || !cuMemFreeAsync_ || !cuStreamSynchronize_ || context(0))
        return 1;
    CUmemPoolProps props;
    memset(&props, 0, sizeof(props));
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    int made = 0;
    for (int i = 0; i < 64; i++) {
        CUmemoryPool pool;
        made += cuMemPoolCreate_(&pool, &props) == CUDA_SUCCESS;
    }
    printf("pools made=%d\n", made);
    CUmemoryPool dflt;
    cuuint64_t keep_all = ~0ull, reserved = 0;
    if (cuDeviceGetMemPool_(&dflt, 0) ||
        cuMemPoolSetAttribute_(dflt, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep_all))
        return 1;
    CUdeviceptr p = 0;
    printf("default-pool rc=%d\n", cuMemAllocAsync_(&p, GIB, NULL));
    printf("default-pool-free rc=%d\n", cuMemFreeAsync_(p, NULL));
    cuStreamSynchronize_(NULL);
    cuMemPoolGetAttribute_(dflt, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved);
    printf("default-pool-keeps=%llu\n", (unsigned long long)reserved);
    say_free("default-pool-freed");
    return take_gibs("beside-kept", 3);
}

/* ---- streams: more streams with frees ahead than the shim has rows ---- */

static int run_streams(void)
{
    FN(cuMemAlloc_v2);
    FN(cuMemFreeAsync);
    FN(cuCtxSynchronize);
    if (!cuMemAlloc_v2_ || !cuMemFreeAsync_ || !cuCtxSynchronize_ || context(0))
        return 1;
    int pending = 0;
    CUdeviceptr p;
    for (uintptr_t i = 1; i <= 64; i++)
        pending += !cuMemAlloc_v2_(&p, 512) && !cuMemFreeAsync_(p, (CUstream)(0x1000 + 16 * i));
    printf("streams pending=%d\n", pending);
    printf("big rc=%d\n", cuMemAlloc_v2_(&p, GIB));
    printf("big-free-async rc=%d\n", cuMemFreeAsync_(p, (CUstream)0x9000));
    say_free("big-freed-on-stream");
    if (take_gibs("beside-pending", 3))
        return 1;
    printf("ctx-sync rc=%d\n", cuCtxSynchronize_());
    return take_gibs("after-ctx-sync", 1);
}

/* ---- huge: sizes that wrap ---- */

static int run_huge(void)
{
    FN(cuMemAlloc_v2);
    FN(cuMemAllocManaged);
    FN(cuMemAllocPitch_v2);
    FN(cuMemAllocAsync);
    FN(cuMemCreate);
    FN(cuArray3DCreate_v2);
    if (!cuMemAlloc_v2_ || !cuMemAllocManaged_ || !cuMemAllocPitch_v2_ || !cuMemAllocAsync_ || !cuMemCreate_ ||
        !cuArray3DCreate_v2_ || context(0) || take_gibs("hold", 2))
        return 1;
    CUdeviceptr p;
    size_t pitch;
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof(prop));
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    CUmemGenericAllocationHandle h;
    /* 2 GiB held plus 2^64 - 2 GiB is 0, modulo 2^64. */
    printf("create-wraps rc=%d\n", cuMemCreate_(&h, (size_t)(0 - 2 * GIB), &prop, 0));
    printf("alloc-rounds-to-0 rc=%d\n", cuMemAlloc_v2_(&p, SIZE_MAX - 100));
    printf("managed-rounds-to-0 rc=%d\n", cuMemAllocManaged_(&p, SIZE_MAX - 100, 1));
    printf("async-rounds-to-0 rc=%d\n", cuMemAllocAsync_(&p, SIZE_MAX - 100, NULL));
    printf("pitch-product-wraps rc=%d\n", cuMemAllocPitch_v2_(&p, &pitch, 1ull << 33, 1ull << 31, 4));
    CUDA_ARRAY3D_DESCRIPTOR a3 = { 1ull << 32, 1ull << 32, 1, CU_AD_FORMAT_FLOAT, 1, 0 };
    CUarray a;
    printf("array-extent-wraps rc=%d\n", cuArray3DCreate_v2_(&a, &a3));
    /* Two memory nodes of 2^63 bytes: 0 bytes in all, modulo 2^64. */
    FN(cuGraphCreate);
    FN(cuGraphAddMemAllocNode);
    FN(cuGraphInstantiateWithFlags);
    CUgraph g;
    CUgraphNode node;
    CUgraphExec x;
    CUDA_MEM_ALLOC_NODE_PARAMS np;
    memset(&np, 0, sizeof(np));
    np.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    np.bytesize = 1ull << 63;
    if (!cuGraphCreate_ || !cuGraphAddMemAllocNode_ || !cuGraphInstantiateWithFlags_ || cuGraphCreate_(&g, 0) ||
        cuGraphAddMemAllocNode_(&node, g, NULL, 0, &np) || cuGraphAddMemAllocNode_(&node, g, NULL, 0, &np))
        return 1;
    printf("graph-nodes-wrap rc=%d\n", cuGraphInstantiateWithFlags_(&x, g, 0));
    say_free("after-huge");
    return take_gibs("after-huge", 2);
}

/* ---- vmm: memory lives while mapped, released or not ---- */

static int run_vmm(void)
{
    FN(cuMemCreate);
    FN(cuMemRelease);
    FN(cuMemMap);
    FN(cuMemUnmap);
    FN(cuMemRetainAllocationHandle);
    if (!cuMemCreate_ || !cuMemRelease_ || !cuMemMap_ || !cuMemUnmap_ || !cuMemRetainAllocationHandle_ ||
        context(0))
        return 1;
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof(prop));
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    CUmemGenericAllocationHandle h, h2, again;
    CUdeviceptr va = 0x7f0000000000ull;     /* the stub does not reserve ranges */
    if (cuMemCreate_(&h, 2 * GIB, &prop, 0))
        return 1;
    printf("map rc=%d\n", cuMemMap_(va, 2 * GIB, 0, h, 0));
    printf("release-mapped rc=%d\n", cuMemRelease_(h));
    say_free("released-mapped");
    printf("beside-mapped rc=%d\n", cuMemCreate_(&h2, 2 * GIB, &prop, 0));
    CUresult rc = cuMemRetainAllocationHandle_(&again, (void *)(uintptr_t)(va + 4096));
    printf("retain rc=%d same=%d\n", rc, again == h);
    printf("release-retained rc=%d\n", cuMemRelease_(again));
    say_free("released-retained");
    printf("unmap rc=%d\n", cuMemUnmap_(va, 2 * GIB));
    say_free("unmapped");
    printf("after-unmap rc=%d\n", cuMemCreate_(&h2, 2 * GIB, &prop, 0));
    say_free("after-unmap-held");
    printf("release rc=%d\n", cuMemRelease_(h2));
    printf("release-again rc=%d\n", cuMemRelease_(h2));
    say_free("all-released");
    return 0;
}

/* ---- fork: a child frees what its parent holds ---- */

static int run_fork(void)
{
    FN(cuMemAlloc_v2);
    FN(cuMemFree_v2);
    if (!cuMemAlloc_v2_ || !cuMemFree_v2_ || context(0))
        return 1;
    CUdeviceptr p;
    printf("parent rc=%d\n", cuMemAlloc_v2_(&p, GIB));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        printf("child-free rc=%d\n", cuMemFree_v2_(p));
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    say_free("after-child");
    return take_gibs("parent", 3);
}

/* ---- otherdev: a device that is not the job's ---- */

static int run_otherdev(void)
{
    char step[32];
    int dev = mode_arg ? atoi(mode_arg) : 1;
    snprintf(step, sizeof(step), "device%d", dev);
    if (context(dev) || take_gibs(step, 1) || context(0))
        return 1;
    return take_gibs("device0", 1);
}

/* ---- reset: a primary context's reset frees only what is in it ---- */

static int run_reset(void)
{
    FN(cuInit);
    FN(cuCtxCreate_v2);
    FN(cuDevicePrimaryCtxRetain);
    FN(cuDevicePrimaryCtxReset_v2);
    CUcontext own, primary;
    if (!cuInit_ || !cuCtxCreate_v2_ || !cuDevicePrimaryCtxRetain_ || !cuDevicePrimaryCtxReset_v2_ ||
        cuInit_(0) || cuCtxCreate_v2_(&own, 0, 0) || take_gibs("own", 2) || cuDevicePrimaryCtxRetain_(&primary, 0))
        return 1;
    printf("reset rc=%d\n", cuDevicePrimaryCtxReset_v2_(0));
    say_free("after-reset");
    return take_gibs("after-reset", 2);
}

/* ---- epoch: what went with a context stays gone ---- */

static int run_epoch(void)
{
    FN(cuDevicePrimaryCtxRetain);
    FN(cuDevicePrimaryCtxRelease_v2);
    FN(cuMemAlloc_v2);
    FN(cuMemFree_v2);
    CUresult (*set_current)(CUcontext) = (CUresult(*)(CUcontext))sym("cuCtxSetCurrent");
    CUdeviceptr p;
    CUcontext ctx;
    if (!cuDevicePrimaryCtxRetain_ || !cuDevicePrimaryCtxRelease_v2_ || !cuMemAlloc_v2_ || !cuMemFree_v2_ ||
        !set_current || context(0) || cuMemAlloc_v2_(&p, 2 * GIB))
        return 1;
    int cycles = 0;
    cycles += !cuDevicePrimaryCtxRelease_v2_(0);
    for (int i = 1; i < 16; i++)
        cycles += !cuDevicePrimaryCtxRetain_(&ctx, 0) && !cuDevicePrimaryCtxRelease_v2_(0);
    printf("cycles=%d\n", cycles);
    if (cuDevicePrimaryCtxRetain_(&ctx, 0) || set_current(ctx))
        return 1;
    say_free("after-cycles");
    if (take_gibs("held", 2))
        return 1;
    printf("stale-free rc=%d\n", cuMemFree_v2_(p));
    say_free("after-stale-free");
    return take_gibs("after-stale-free", 2);
}

/* ---- limits: memory the driver keeps for a context's limits ---- */

static int run_limits(void)
{
    FN(cuCtxSetLimit);
    if (!cuCtxSetLimit_ || context(0))
        return 1;
    printf("heap rc=%d\n", cuCtxSetLimit_(CU_LIMIT_MALLOC_HEAP_SIZE, 2 * GIB));
    say_free("heap-set");
    if (take_gibs("beside-heap", 2))
        return 1;
    printf("stack rc=%d\n", cuCtxSetLimit_(CU_LIMIT_STACK_SIZE, 64 << 10));
    printf("fifo rc=%d\n", cuCtxSetLimit_(CU_LIMIT_PRINTF_FIFO_SIZE, GIB));
    printf("heap-lowered rc=%d\n", cuCtxSetLimit_(CU_LIMIT_MALLOC_HEAP_SIZE, 8 << 20));
    say_free("heap-lowered");
    return 0;
}

/* ---- contexts: each context is memory of its own ---- */

static int run_contexts(void)
{
    FN(cuInit);
    FN(cuCtxCreate_v2);
    FN(cuCtxDestroy_v2);
    CUcontext ctx[4];
    if (!cuInit_ || !cuCtxCreate_v2_ || !cuCtxDestroy_v2_ || cuInit_(0))
        return 1;
    int made = 0;
    for (int i = 0; i < 4; i++)
        made += !cuCtxCreate_v2_(&ctx[i], 0, 0);
    printf("contexts made=%d\n", made);
    say_free("contexts");
    if (take_gibs("beside-contexts", 2))
        return 1;
    printf("destroy rc=%d\n", cuCtxDestroy_v2_(ctx[0]));
    say_free("one-destroyed");
    return 0;
}

/* ---- next: a library that finds the driver past the shim ---- */

static int plugin_take(int count)
{
    if (!mode_arg || context(0))
        return 1;
    void *plugin = dlopen(mode_arg, RTLD_NOW | RTLD_LOCAL);
    int (*take)(int) = plugin ? (int (*)(int))dlsym(plugin, "vram_test_plugin_take") : NULL;
    if (!take) {
        printf("plugin: %s\n", dlerror());
        return 1;
    }
    return take(count);
}

static int run_next(void)
{
    return plugin_take(2);
}

static const struct mode {
    const char *name;
    int (*run)(void);
} modes[] = {
    { "pitch", run_pitch }, { "pooldev", run_pooldev }, { "pools", run_pools }, { "streams", run_streams },
    { "huge", run_huge }, { "vmm", run_vmm }, { "fork", run_fork }, { "otherdev", run_otherdev },
    { "reset", run_reset }, { "epoch", run_epoch }, { "limits", run_limits },
    { "contexts", run_contexts },
    { "next", run_next },
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    mode_arg = argc > 2 ? argv[2] : NULL;
    for (size_t i = 0; lib && argc > 1 && i < sizeof(modes) / sizeof(modes[0]); i++)
        if (!strcmp(argv[1], modes[i].name))
            return modes[i].run();
    printf("usage: hostile MODE [ARG] (the modes are listed at the top of prog_hostile.c)\n");
    return 2;
}
