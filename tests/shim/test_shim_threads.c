/* SPDX-License-Identifier: MIT */
/*
 * tests/shim/test_shim_threads.c - the shim's hooks themselves under
 * threads (the ThreadSanitizer run takes this file): the stub driver and
 * the shim of this build are loaded with dlopen, as bench/shim does, and
 * eight threads allocate and free stream-ordered memory on streams of their
 * own, synchronize them, and allocate plainly (freeing half of it on their
 * stream), all at once.  When all is
 * synchronized the job's count is exactly zero again.
 */
#define TEST_THREADED 1
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

#include "test.h"
#include "shim/cuda_types.h"

#define THREADS 8
#define ROUNDS 3000
#define BUDGET (2ull << 30)

static struct {
    __typeof__(&cuCtxSetCurrent) set_current;
    __typeof__(&cuMemAllocAsync) alloc_async;
    __typeof__(&cuMemFreeAsync) free_async;
    __typeof__(&cuStreamSynchronize) sync;
    __typeof__(&cuMemAlloc_v2) alloc;
    __typeof__(&cuMemFree_v2) free;
    CUcontext ctx;
} d;

static void *worker(void *arg)
{
    long errors = 0;
    CUstream s = (CUstream)(uintptr_t)arg;
    d.set_current(d.ctx);
    for (int i = 0; i < ROUNDS; i++) {
        CUdeviceptr a, b;
        if (d.alloc_async(&a, 1u << 20, s) || d.free_async(a, s))
            errors++;
        /* Plain memory, freed at once or on the stream (counted until the
         * stream is synchronized). */
        if (d.alloc(&b, 4096) || (i % 2 ? d.free(b) : d.free_async(b, s)))
            errors++;
        if (i % 64 == 63 && d.sync(s))
            errors++;
    }
    if (d.sync(s))
        errors++;
    return (void *)errors;
}

TEST(stream_ordered_threads_count_back_to_zero)
{
    char path[4096];
    TEST_BUILD_PATH(path, "stubs/cuda/libcuda.so.1");
    void *stub = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!stub)
        TEST_SKIP("no stub driver: %s", dlerror());
    setenv("VRAM_BUDGET_BYTES", "2GiB", 1);
    setenv("VRAM_ENFORCE", "hard", 1);
    unsetenv("VRAM_SHIM_FD");
    TEST_BUILD_PATH(path, "lib/libvram_shim.so");
    void *shim = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!shim)
        TEST_SKIP("no shim: %s", dlerror());
    __typeof__(&cuInit) init = (__typeof__(&cuInit))dlsym(shim, "cuInit");
    __typeof__(&cuDevicePrimaryCtxRetain) retain =
        (__typeof__(&cuDevicePrimaryCtxRetain))dlsym(shim, "cuDevicePrimaryCtxRetain");
    __typeof__(&cuMemGetInfo_v2) info = (__typeof__(&cuMemGetInfo_v2))dlsym(shim, "cuMemGetInfo_v2");
    __typeof__(&cuCtxSynchronize) ctx_sync = (__typeof__(&cuCtxSynchronize))dlsym(shim, "cuCtxSynchronize");
    *(void **)&d.set_current = dlsym(stub, "cuCtxSetCurrent");
    *(void **)&d.alloc_async = dlsym(shim, "cuMemAllocAsync");
    *(void **)&d.free_async = dlsym(shim, "cuMemFreeAsync");
    *(void **)&d.sync = dlsym(shim, "cuStreamSynchronize");
    *(void **)&d.alloc = dlsym(shim, "cuMemAlloc_v2");
    *(void **)&d.free = dlsym(shim, "cuMemFree_v2");
    CHECK(init && retain && info && ctx_sync && d.set_current && d.alloc_async && d.free_async && d.sync &&
          d.alloc && d.free);
    CHECK_EQ(init(0), CUDA_SUCCESS);
    CHECK_EQ(retain(&d.ctx, 0), CUDA_SUCCESS);
    CHECK_EQ(d.set_current(d.ctx), CUDA_SUCCESS);

    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, worker, (void *)(i + 1)), 0);
    long errors = 0;
    for (int i = 0; i < THREADS; i++) {
        void *e;
        pthread_join(t[i], &e);
        errors += (long)e;
    }
    CHECK_EQ(errors, 0);
    CHECK_EQ(ctx_sync(), CUDA_SUCCESS);
    size_t free_b = 0, total_b = 0;
    CHECK_EQ(info(&free_b, &total_b), CUDA_SUCCESS);
    CHECK_EQ_U64(total_b, BUDGET);
    CHECK_EQ_U64(free_b, BUDGET);          /* the budget less a count of zero */
}
