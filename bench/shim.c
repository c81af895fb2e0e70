/* SPDX-License-Identifier: MIT */
/*
 * bench/shim.c - what the shim adds to an allocate-and-free pair: the stub
 * driver's cuMemAlloc_v2/cuMemFree_v2 called directly and through the
 * shim's hooks, side by side in one run, on one thread and on eight at once,
 * and the stream-ordered pair (cuMemAllocAsync/cuMemFreeAsync) on one.
 *
 * Both libraries are loaded from this build (BUILD/stubs/cuda/libcuda.so.1,
 * BUILD/lib/libvram_shim.so) with dlopen, so the hooks run exactly the code
 * they run under LD_PRELOAD (counting into a region of their own, from
 * VRAM_BUDGET_BYTES).  Target: at most 100 ns added per pair on one thread;
 * the bench exits 1 past it.  --seconds S sets the time per measurement.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "bench.h"
#include "shim/cuda_types.h"

#define TARGET_ADDED_NS 100.0
#define THREADS 8
#define ROUNDS 5
#define SIZE 4096

typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);
typedef CUresult (*free_fn)(CUdeviceptr);

typedef CUresult (*alloc_async_fn)(CUdeviceptr *, size_t, CUstream);
typedef CUresult (*free_async_fn)(CUdeviceptr, CUstream);
typedef CUresult (*sync_fn)(CUstream);

/* A pair of calls; with alloc_async set, the stream-ordered pair, and the
 * stream synchronized every SYNC_EVERY pairs (where the shim settles). */
typedef struct pair {
    alloc_fn alloc;
    free_fn free;
    alloc_async_fn alloc_async;
    free_async_fn free_async;
    sync_fn sync;
} pair;
#define SYNC_EVERY 64

static CUcontext ctx;
static CUresult (*set_current)(CUcontext);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct job {
    const pair *p;
    long pairs;
    long errors;
    pthread_barrier_t *start;
    double t0, t1;                  /* when this thread began and ended its pairs */
} job;

static void *loop(void *arg)
{
    job *j = arg;
    set_current(ctx);
    if (j->start)
        pthread_barrier_wait(j->start);
    j->t0 = now_s();
    const pair *p = j->p;
    if (p->alloc_async) {
        CUstream s = (CUstream)0x1;
        for (long i = 0; i < j->pairs; i++) {
            CUdeviceptr d;
            if (p->alloc_async(&d, SIZE, s) || p->free_async(d, s))
                j->errors++;
            if (i % SYNC_EVERY == SYNC_EVERY - 1 && p->sync(s))
                j->errors++;
        }
        if (p->sync(s))
            j->errors++;
    } else {
        for (long i = 0; i < j->pairs; i++) {
            CUdeviceptr d;
            if (p->alloc(&d, SIZE) || p->free(d))
                j->errors++;
        }
    }
    j->t1 = now_s();
    return NULL;
}

/* ns per pair with `threads` threads each doing `pairs` pairs: wall time
 * over the pairs one thread did (what each thread sees).  The threads time
 * themselves, first start to last end: on a loaded machine the main thread
 * may wake from the barrier after they have finished. */
static double measure(const pair *p, int threads, long pairs, long *errors)
{
    pthread_t t[THREADS];
    job j[THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        j[i] = (job){ p, pairs, 0, &start, 0, 0 };
        pthread_create(&t[i], NULL, loop, &j[i]);
    }
    pthread_barrier_wait(&start);
    double t0 = 1e300, t1 = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        *errors += j[i].errors;
        t0 = j[i].t0 < t0 ? j[i].t0 : t0;
        t1 = j[i].t1 > t1 ? j[i].t1 : t1;
    }
    double dt = t1 - t0;
    pthread_barrier_destroy(&start);
    return dt * 1e9 / (double)pairs;
}

/* The best of ROUNDS, the two ways taking turns so that both see the same
 * machine. */
static void compare(const pair *direct, const pair *shim, int threads, long pairs, double *d_ns,
                    double *s_ns, long *errors)
{
    *d_ns = *s_ns = 1e18;
    for (int r = 0; r < ROUNDS; r++) {
        double a = measure(direct, threads, pairs, errors);
        double b = measure(shim, threads, pairs, errors);
        if (a < *d_ns)
            *d_ns = a;
        if (b < *s_ns)
            *s_ns = b;
    }
}

static void *must(void *h, const char *name)
{
    void *p = h ? dlsym(h, name) : NULL;
    if (!p)
        fprintf(stderr, "bench/shim: no %s: %s\n", name, dlerror());
    return p;
}

int main(int argc, char **argv)
{
    double seconds = bench_seconds(argc, argv, 0.2);
    char build[4096], path[4200];
    if (!bench_build_dir(build, sizeof(build))) {
        fprintf(stderr, "bench/shim: cannot tell the build folder\n");
        return 2;
    }
    setenv("VRAM_BUDGET_BYTES", "1TiB", 1);     /* counts everything, refuses nothing */
    setenv("VRAM_ENFORCE", "hard", 1);
    unsetenv("VRAM_SHIM_FD");
    snprintf(path, sizeof(path), "%s/stubs/cuda/libcuda.so.1", build);
    void *stub = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!stub) {
        fprintf(stderr, "bench/shim: %s (run make first)\n", dlerror());
        return 2;
    }
    snprintf(path, sizeof(path), "%s/lib/libvram_shim.so", build);
    void *shim = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!shim) {
        fprintf(stderr, "bench/shim: %s (run make first)\n", dlerror());
        return 2;
    }
    CUresult (*init)(unsigned) = must(stub, "cuInit");
    CUresult (*retain)(CUcontext *, CUdevice) = must(stub, "cuDevicePrimaryCtxRetain");
    *(void **)&set_current = must(stub, "cuCtxSetCurrent");
    pair direct = { (alloc_fn)must(stub, "cuMemAlloc_v2"), (free_fn)must(stub, "cuMemFree_v2"), NULL, NULL, NULL };
    pair hooked = { (alloc_fn)must(shim, "cuMemAlloc_v2"), (free_fn)must(shim, "cuMemFree_v2"), NULL, NULL, NULL };
    pair direct_async = { NULL, NULL, (alloc_async_fn)must(stub, "cuMemAllocAsync"),
                          (free_async_fn)must(stub, "cuMemFreeAsync"), (sync_fn)must(stub, "cuStreamSynchronize") };
    pair hooked_async = { NULL, NULL, (alloc_async_fn)must(shim, "cuMemAllocAsync"),
                          (free_async_fn)must(shim, "cuMemFreeAsync"), (sync_fn)must(shim, "cuStreamSynchronize") };
    if (!init || !retain || !set_current || !direct.alloc || !direct.free || !hooked.alloc || !hooked.free ||
        !direct_async.alloc_async || !direct_async.free_async || !direct_async.sync || !hooked_async.alloc_async ||
        !hooked_async.free_async || !hooked_async.sync)
        return 2;
    if (init(0) || retain(&ctx, 0) || set_current(ctx)) {
        fprintf(stderr, "bench/shim: the stub driver would not make a context\n");
        return 2;
    }

    /* Size the loops to about `seconds` each from a short trial. */
    long errors = 0;
    double trial = measure(&hooked, 1, 20000, &errors);
    long pairs = (long)(seconds * 1e9 / (trial > 1 ? trial : 1));
    if (pairs < 10000)
        pairs = 10000;

    double d1, s1, d8, s8, da, sa;
    compare(&direct, &hooked, 1, pairs, &d1, &s1, &errors);
    compare(&direct, &hooked, THREADS, pairs / THREADS + 1, &d8, &s8, &errors);
    compare(&direct_async, &hooked_async, 1, pairs / 4 + 1, &da, &sa, &errors);

    printf("shim: one cuMemAlloc_v2 + cuMemFree_v2 of %d bytes on the stub driver, best of %d\n", SIZE, ROUNDS);
    printf("%-22s %14s %14s %12s %8s\n", "", "without shim", "with shim", "added", "ratio");
    printf("%-22s %11.1f ns %11.1f ns %+9.1f ns %7.2fx\n", "1 thread", d1, s1, s1 - d1, s1 / d1);
    printf("%-22s %11.1f ns %11.1f ns %+9.1f ns %7.2fx\n", "8 threads at once", d8, s8, s8 - d8, s8 / d8);
    printf("%-22s %11.1f ns %11.1f ns %+9.1f ns %7.2fx\n", "async, 1 thread", da, sa, sa - da, sa / da);
    printf("(8 threads: wall time over one thread's pairs, on %ld cores; async: cuMemAllocAsync +\n"
           " cuMemFreeAsync, the stream synchronized every %d pairs, where the shim reads its pool)\n",
           sysconf(_SC_NPROCESSORS_ONLN), SYNC_EVERY);
    bool within = s1 - d1 <= TARGET_ADDED_NS;
    printf("target: at most %.0f ns added per pair on one thread: %s\n", TARGET_ADDED_NS,
           within ? "met" : "MISSED");
    if (errors)
        printf("errors: %ld allocations or frees failed\n", errors);
    return within && !errors ? 0 : 1;
}
