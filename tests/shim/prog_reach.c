/* SPDX-License-Identifier: MIT */
/*
 * tests/shim/prog_reach.c - reaches the driver the ways real software does,
 * chosen by the first argument:
 *
 *   dlsym [N]            dlopen("libcuda.so.1") and dlsym each _v2 name
 *   dlvsym [N]           the same through dlvsym (the stub's names carry
 *                        version VRAM_STUB_CUDA_1)
 *   names                which library answers each name: the shim's hook
 *                        for every name it interposes (each versioned name
 *                        its own, cuGetProcAddress choosing by version),
 *                        the driver itself for names it does not
 *   proc VERSION [ptds] [N]
 *                        dlsym only cuGetProcAddress (the _v2 form from
 *                        12000 on), and get everything else from it at
 *                        VERSION ("driver": the driver's own); with "ptds"
 *                        the per-thread-default-stream flag, and allocations
 *                        through cuMemAllocAsync (the _ptsz entry points)
 *   v1 [N]               the 3.1 names (cuMemAlloc, 32-bit sizes)
 *   late [N]             works a while, then loads the driver
 *   fork N               takes 1 GiB, then runs `child N` (fork + exec)
 *   child N              takes N GiB (the fork test's child)
 *   hold N               takes N GiB, says "held", and waits to be killed
 *   threads T N          T threads each take and give back 1 MiB N times
 *   nocuda               never touches CUDA
 *   kinds                arrays, pitch, managed, cuMemCreate, pools: each
 *                        taken, counted, given back
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "prog.h"

static void *lib;
static bool use_dlvsym;

static void *sym(const char *name)
{
    void *p = use_dlvsym ? dlvsym(lib, name, "VRAM_STUB_CUDA_1") : dlsym(lib, name);
    if (!p)
        printf("no symbol %s\n", name);
    return p;
}

static int open_driver(void)
{
    lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        printf("dlopen: %s\n", dlerror());
        return -1;
    }
    return 0;
}

#define GET(field, name) (*(void **)&d->field = sym(name))

static int by_dlsym(drv *d)
{
    if (open_driver())
        return -1;
    GET(init, "cuInit");
    GET(device_get, "cuDeviceGet");
    GET(retain, "cuDevicePrimaryCtxRetain");
    GET(set_current, "cuCtxSetCurrent");
    GET(get_info, "cuMemGetInfo_v2");
    GET(total_mem, "cuDeviceTotalMem_v2");
    GET(alloc, "cuMemAlloc_v2");
    GET(free, "cuMemFree_v2");
    return d->init && d->alloc && d->free && d->get_info && d->total_mem ? 0 : -1;
}

/* ---- cuGetProcAddress ---- */

typedef CUresult (*gpa4)(const char *, void **, int, cuuint64_t);
typedef CUresult (*gpa5)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);

static gpa4 get4;
static gpa5 get5;
static int version;
static cuuint64_t flags;

static void *proc(const char *name)
{
    void *p = NULL;
    CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SUCCESS;
    CUresult rc = get5 ? get5(name, &p, version, flags, &st) : get4(name, &p, version, flags);
    if (rc || !p)
        printf("cuGetProcAddress(%s, %d): error %d status %d\n", name, version, rc, (int)st);
    return p;
}

#define PROC(field, name) (*(void **)&d->field = proc(name))

static int by_proc(drv *d, const char *v, bool ptds)
{
    if (open_driver())
        return -1;
    if (!strcmp(v, "driver")) {
        CUresult (*ver)(int *) = (CUresult(*)(int *))sym("cuDriverGetVersion");
        if (!ver || ver(&version))
            return -1;
    } else {
        version = atoi(v);
    }
    flags = ptds ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : CU_GET_PROC_ADDRESS_DEFAULT;
    if (version >= 12000)
        get5 = (gpa5)sym("cuGetProcAddress_v2");
    else
        get4 = (gpa4)sym("cuGetProcAddress");
    if (!get4 && !get5)
        return -1;
    /* Asked for itself, cuGetProcAddress gives the form of the version
     * asked: the 4-argument one below 12000. */
    if (version >= 11030) {
        void *self = proc("cuGetProcAddress");
        void *want = dlsym(lib, version >= 12000 ? "cuGetProcAddress_v2" : "cuGetProcAddress");
        printf("getproc-self %s\n", self && self == want ? "ok" : "wrong");
    }
    PROC(init, "cuInit");
    PROC(device_get, "cuDeviceGet");
    if (version >= 7000) {
        PROC(retain, "cuDevicePrimaryCtxRetain");
        PROC(set_current, "cuCtxSetCurrent");
    } else {
        PROC(create, "cuCtxCreate");        /* the primary context came with 7.0 */
    }
    PROC(get_info, "cuMemGetInfo");
    PROC(total_mem, "cuDeviceTotalMem");
    PROC(alloc, "cuMemAlloc");
    PROC(free, "cuMemFree");
    if (ptds && version >= 11020) {
        PROC(alloc_async, "cuMemAllocAsync");
        PROC(free_async, "cuMemFreeAsync");
        void *ptsz = dlsym(lib, "cuMemAllocAsync_ptsz");
        printf("ptsz %s\n", ptsz && ptsz == (void *)d->alloc_async ? "ok" : "wrong");
    }
    return d->init && d->alloc && d->free && d->get_info ? 0 : -1;
}

/* ---- the 3.1 ABI ---- */

static CUresult (*alloc_v1)(CUdeviceptr_v1 *, unsigned int);
static CUresult (*free_v1)(CUdeviceptr_v1);
static CUresult (*info_v1)(unsigned int *, unsigned int *);

static CUresult alloc_via_v1(CUdeviceptr *p, size_t n)
{
    CUdeviceptr_v1 p1 = 0;
    CUresult rc = alloc_v1(&p1, (unsigned int)n);
    *p = p1;
    return rc;
}

static CUresult free_via_v1(CUdeviceptr p) { return free_v1((CUdeviceptr_v1)p); }

static CUresult info_via_v1(size_t *f, size_t *t)
{
    unsigned int f1 = 0, t1 = 0;
    CUresult rc = info_v1(&f1, &t1);
    *f = f1;
    *t = t1;
    return rc;
}

static int by_v1(drv *d)
{
    if (by_dlsym(d))
        return -1;
    *(void **)&alloc_v1 = sym("cuMemAlloc");
    *(void **)&free_v1 = sym("cuMemFree");
    *(void **)&info_v1 = sym("cuMemGetInfo");
    d->alloc = alloc_via_v1;
    d->free = free_via_v1;
    d->get_info = info_via_v1;
    return alloc_v1 && free_v1 && info_v1 ? 0 : -1;
}

/* ---- threads ---- */

static drv threads_drv;
static int threads_rounds;
static CUcontext threads_ctx;

static void *thread_main(void *arg)
{
    long errors = 0;
    threads_drv.set_current(threads_ctx);
    for (int i = 0; i < threads_rounds; i++) {
        CUdeviceptr p;
        if (threads_drv.alloc(&p, 1 << 20) || threads_drv.free(p))
            errors++;
    }
    return (void *)errors;
}

static int run_threads(int nthreads, int rounds)
{
    if (by_dlsym(&threads_drv) || drv_context(&threads_drv))
        return 1;
    CUdevice dev;
    threads_drv.device_get(&dev, 0);
    threads_drv.retain(&threads_ctx, dev);
    threads_rounds = rounds;
    pthread_t t[64];
    if (nthreads > 64)
        nthreads = 64;
    for (int i = 0; i < nthreads; i++)
        pthread_create(&t[i], NULL, thread_main, NULL);
    long errors = 0;
    for (int i = 0; i < nthreads; i++) {
        void *e;
        pthread_join(t[i], &e);
        errors += (long)e;
    }
    printf("threads done errors=%ld\n", errors);
    drv_view(&threads_drv);
    return 0;
}

/* ---- the kinds of allocation besides cuMemAlloc ---- */

static int run_kinds(void)
{
    drv d = { 0 };
    if (by_dlsym(&d) || drv_context(&d))
        return 1;
    CUresult (*pitch)(CUdeviceptr *, size_t *, size_t, size_t, unsigned int) = sym("cuMemAllocPitch_v2");
    CUresult (*managed)(CUdeviceptr *, size_t, unsigned int) = sym("cuMemAllocManaged");
    CUresult (*arr)(CUarray *, const CUDA_ARRAY_DESCRIPTOR *) = sym("cuArrayCreate_v2");
    CUresult (*arr3)(CUarray *, const CUDA_ARRAY3D_DESCRIPTOR *) = sym("cuArray3DCreate_v2");
    CUresult (*arr_free)(CUarray) = sym("cuArrayDestroy");
    CUresult (*mip)(CUmipmappedArray *, const CUDA_ARRAY3D_DESCRIPTOR *, unsigned int) = sym("cuMipmappedArrayCreate");
    CUresult (*mip_free)(CUmipmappedArray) = sym("cuMipmappedArrayDestroy");
    CUresult (*create)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *, unsigned long long) =
        sym("cuMemCreate");
    CUresult (*release)(CUmemGenericAllocationHandle) = sym("cuMemRelease");
    CUresult (*pool_create)(CUmemoryPool *, const CUmemPoolProps *) = sym("cuMemPoolCreate");
    CUresult (*pool_alloc)(CUdeviceptr *, size_t, CUmemoryPool, CUstream) = sym("cuMemAllocFromPoolAsync");
    CUresult (*pool_trim)(CUmemoryPool, size_t) = sym("cuMemPoolTrimTo");
    if (!pitch || !managed || !arr || !arr3 || !arr_free || !mip || !mip_free || !create || !release ||
        !pool_create || !pool_alloc || !pool_trim)
        return 1;
    /* Each kind takes 2 GiB, then 2 GiB more (which a 3 GiB budget refuses),
     * and gives the first back: "KIND first second free-after". */
    size_t fb, tb, pt;
    CUdeviceptr p1 = 0, p2 = 0;
    CUresult r1, r2;
#define SAY(kind) (d.get_info(&fb, &tb), printf("%s %d %d free=%zu\n", kind, r1, r2, fb))
    r1 = pitch(&p1, &pt, 2u << 20, 1024, 4);
    r2 = pitch(&p2, &pt, 2u << 20, 1024, 4);
    if (!r1) d.free(p1);
    if (!r2) d.free(p2);
    SAY("pitch");
    r1 = managed(&p1, 2 * GIB, 1);
    r2 = managed(&p2, 2 * GIB, 1);
    if (!r1) d.free(p1);
    if (!r2) d.free(p2);
    SAY("managed");
    CUDA_ARRAY_DESCRIPTOR ad = { 32768, 16384, CU_AD_FORMAT_FLOAT, 1 };
    CUarray a1 = NULL, a2 = NULL;
    r1 = arr(&a1, &ad);
    r2 = arr(&a2, &ad);
    if (!r1) arr_free(a1);
    if (!r2) arr_free(a2);
    SAY("array");
    CUDA_ARRAY3D_DESCRIPTOR a3 = { 1024, 1024, 512, CU_AD_FORMAT_FLOAT, 1, 0 };
    r1 = arr3(&a1, &a3);
    r2 = arr3(&a2, &a3);
    if (!r1) arr_free(a1);
    if (!r2) arr_free(a2);
    SAY("array3d");
    CUmipmappedArray m1 = NULL, m2 = NULL;
    r1 = mip(&m1, &a3, 4);
    r2 = mip(&m2, &a3, 4);
    if (!r1) mip_free(m1);
    if (!r2) mip_free(m2);
    SAY("mipmap");
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof(prop));
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    CUmemGenericAllocationHandle h1 = 0, h2 = 0;
    r1 = create(&h1, 2 * GIB, &prop, 0);
    r2 = create(&h2, 2 * GIB, &prop, 0);
    if (!r1) release(h1);
    if (!r2) release(h2);
    SAY("vmm");
    CUmemoryPool pool;
    CUmemPoolProps pprops;
    memset(&pprops, 0, sizeof(pprops));
    pprops.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    if (pool_create(&pool, &pprops))
        return 1;
    r1 = pool_alloc(&p1, 2 * GIB, pool, NULL);
    r2 = pool_alloc(&p2, 2 * GIB, pool, NULL);
    if (!r1) d.free(p1);
    if (!r2) d.free(p2);
    pool_trim(pool, 0);
    SAY("pool");
    drv_view(&d);
    return 0;
}

/* ---- who answers each name ---- */

/* "shim" or "driver": the library that p lies in. */
static const char *owner(void *p)
{
    Dl_info info;
    if (!p || !dladdr(p, &info) || !info.dli_fname)
        return "none";
    return strstr(info.dli_fname, "libvram_shim") ? "shim" : strstr(info.dli_fname, "libcuda") ? "driver" : "other";
}

static int run_names(void)
{
    if (open_driver())
        return 1;
    /* dlsym and dlvsym: the hook for an interposed name, each versioned
     * name its own, the driver's own entry point for any other. */
    static const char *const names[] = { "cuMemAlloc", "cuMemAlloc_v2", "cuMemFreeAsync_ptsz", "cuCtxCreate_v3",
                                         "cuArray3DCreate_v2", "cuMipmappedArrayCreate", "cuStreamQuery_ptsz",
                                         "cuDeviceGetName", "cuCtxGetDevice", "cuDriverGetVersion" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        void *a = dlsym(lib, names[i]), *b = dlvsym(lib, names[i], "VRAM_STUB_CUDA_1");
        printf("name %s %s%s\n", names[i], owner(a), a == b ? "" : " (dlvsym differs)");
    }
    printf("distinct %s\n", dlsym(lib, "cuMemAlloc") != dlsym(lib, "cuMemAlloc_v2") &&
                                   dlsym(lib, "cuCtxCreate_v2") != dlsym(lib, "cuCtxCreate_v3") ? "ok" : "wrong");
    /* cuGetProcAddress: the versioned name the version asks for. */
    get5 = (gpa5)sym("cuGetProcAddress_v2");
    if (!get5)
        return 1;
    static const struct { const char *base; int version; bool ptds; const char *want; } ask[] = {
        { "cuCtxCreate", 3010, false, "cuCtxCreate" },   { "cuCtxCreate", 3020, false, "cuCtxCreate_v2" },
        { "cuCtxCreate", 11040, false, "cuCtxCreate_v3" }, { "cuMemAlloc", 3000, false, "cuMemAlloc" },
        { "cuMemAlloc", 12000, false, "cuMemAlloc_v2" }, { "cuMemFreeAsync", 12000, true, "cuMemFreeAsync_ptsz" },
        { "cuMemFreeAsync", 12000, false, "cuMemFreeAsync" }, { "cuStreamQuery", 12000, true, "cuStreamQuery_ptsz" },
        { "cuDevicePrimaryCtxRelease", 11000, false, "cuDevicePrimaryCtxRelease_v2" },
    };
    for (size_t i = 0; i < sizeof(ask) / sizeof(ask[0]); i++) {
        version = ask[i].version;
        flags = ask[i].ptds ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : CU_GET_PROC_ADDRESS_DEFAULT;
        void *p = proc(ask[i].base);
        printf("proc %s %d%s %s\n", ask[i].base, ask[i].version, ask[i].ptds ? " ptds" : "",
               p && p == dlsym(lib, ask[i].want) ? "ok" : "wrong");
    }
    version = 12000;
    flags = CU_GET_PROC_ADDRESS_DEFAULT;
    printf("proc cuDeviceGetName %s\n", owner(proc("cuDeviceGetName")));
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "dlsym";
    drv d = { 0 };
    int count = 4;
    if (!strcmp(mode, "nocuda")) {
        printf("no cuda\n");
        return 0;
    }
    if (!strcmp(mode, "dlsym")) {
        if (argc > 2)
            count = atoi(argv[2]);
        return by_dlsym(&d) ? 1 : drv_run(&d, count);
    }
    if (!strcmp(mode, "dlvsym")) {
        if (argc > 2)
            count = atoi(argv[2]);
        use_dlvsym = true;
        return by_dlsym(&d) ? 1 : drv_run(&d, count);
    }
    if (!strcmp(mode, "names"))
        return run_names();
    if (!strcmp(mode, "v1")) {
        if (argc > 2)
            count = atoi(argv[2]);
        return by_v1(&d) ? 1 : drv_run(&d, count);
    }
    if (!strcmp(mode, "proc") && argc > 2) {
        bool ptds = argc > 3 && !strcmp(argv[3], "ptds");
        if (argc > 3 + ptds)
            count = atoi(argv[3 + ptds]);
        return by_proc(&d, argv[2], ptds) ? 1 : drv_run(&d, count);
    }
    if (!strcmp(mode, "late")) {
        if (argc > 2)
            count = atoi(argv[2]);
        /* Some work first (the process runs well before the driver loads). */
        volatile unsigned long x = 0;
        for (unsigned long i = 0; i < 10000000ul; i++)
            x += i;
        printf("loading the driver now (%lu)\n", (unsigned long)x);
        return by_dlsym(&d) ? 1 : drv_run(&d, count);
    }
    if ((!strcmp(mode, "child") || !strcmp(mode, "hold")) && argc > 2) {
        CUdeviceptr held[64];
        if (by_dlsym(&d) || drv_context(&d))
            return 1;
        int got = drv_take(&d, atoi(argv[2]), held);
        if (!strcmp(mode, "hold")) {
            printf("held %d\n", got);
            fflush(stdout);
            for (;;)
                pause();
        }
        drv_view(&d);
        return 0;
    }
    if (!strcmp(mode, "fork") && argc > 2) {
        CUdeviceptr held[1];
        if (by_dlsym(&d) || drv_context(&d) || drv_take(&d, 1, held) != 1)
            return 1;
        pid_t pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "child", argv[2], (char *)NULL);
            _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        drv_view(&d);
        return 0;
    }
    if (!strcmp(mode, "threads") && argc > 3)
        return run_threads(atoi(argv[2]), atoi(argv[3]));
    if (!strcmp(mode, "kinds"))
        return run_kinds();
    fprintf(stderr, "usage: reach dlsym|proc V [ptds]|v1|late|fork N|child N|hold N|threads T N|nocuda|kinds\n");
    return 2;
}
