/* SPDX-License-Identifier: MIT */
/*
 * tests/slurm/cudaprobe.c - what a CUDA program in a Slurm task sees: the
 * card's total and free memory, then N allocations of 1 GiB.
 *
 *   cudaprobe [N]     N defaults to 4
 *   cudaprobe fork    2 GiB here, then a child that asks for 2 GiB more
 *   cudaprobe killed  a child takes 2 GiB and dies of SIGKILL holding it;
 *                     a second later this process asks for 2 GiB
 *   cudaprobe hold    takes 2 GiB, says so, and holds it for 3 seconds
 *
 * Reaches the driver as cudart does, through dlopen and dlsym, so it runs
 * against the shim's stub libcuda.so.1 (LD_LIBRARY_PATH) with the shim
 * preloaded or not.  Prints "total_bytes=T free_bytes=F", then one line per
 * allocation: "alloc I: ok" or "alloc I: error E" (2 is out of memory).
 * Exits 0 when it could ask, 3 when the driver is not there.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int (*init_fn)(unsigned);
typedef int (*device_get_fn)(int *, int);
typedef int (*ctx_create_fn)(void **, unsigned, int);
typedef int (*mem_get_info_fn)(size_t *, size_t *);
typedef int (*mem_alloc_fn)(unsigned long long *, size_t);

static mem_alloc_fn mem_alloc;

/* One allocation of gib GiB, said on one line as "WHO: ok" or "WHO: error E". */
static int alloc_say(const char *who, unsigned gib)
{
    unsigned long long p = 0;
    int e = mem_alloc(&p, (size_t)gib << 30);
    if (e)
        printf("%s: error %d\n", who, e);
    else
        printf("%s: ok\n", who);
    fflush(stdout);
    return e;
}

/* The processes of one task: a child's allocation counts with its
 * parent's, and a child killed holding memory gives it back. */
static int family(const char *how)
{
    pid_t pid;
    int status;
    if (!strcmp(how, "fork")) {
        alloc_say("parent 2 GiB", 2);
        if ((pid = fork()) == 0)
            _exit(alloc_say("child 2 GiB", 2) ? 1 : 0);
        waitpid(pid, &status, 0);
        return 0;
    }
    if (!strcmp(how, "hold")) {
        alloc_say("holder 2 GiB", 2);
        sleep(3);
        return 0;
    }
    if ((pid = fork()) == 0) {
        if (!alloc_say("child 2 GiB", 2))
            raise(SIGKILL);
        _exit(1);
    }
    waitpid(pid, &status, 0);
    sleep(1);
    alloc_say("parent 2 GiB after the child's death", 2);
    return 0;
}

int main(int argc, char **argv)
{
    const char *how = argc > 1 && (!strcmp(argv[1], "fork") || !strcmp(argv[1], "killed") ||
                                   !strcmp(argv[1], "hold")) ? argv[1] : NULL;
    int n = argc > 1 && !how ? atoi(argv[1]) : 4;
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    if (!h) {
        printf("no driver: %s\n", dlerror());
        return 3;
    }
    init_fn init = (init_fn)dlsym(h, "cuInit");
    device_get_fn device_get = (device_get_fn)dlsym(h, "cuDeviceGet");
    ctx_create_fn ctx_create = (ctx_create_fn)dlsym(h, "cuCtxCreate_v2");
    mem_get_info_fn mem_get_info = (mem_get_info_fn)dlsym(h, "cuMemGetInfo_v2");
    mem_alloc = (mem_alloc_fn)dlsym(h, "cuMemAlloc_v2");
    if (!init || !device_get || !mem_get_info || !mem_alloc) {
        printf("the driver lacks cuInit, cuDeviceGet, cuMemGetInfo_v2 or cuMemAlloc_v2\n");
        return 3;
    }
    int dev = 0, rc = init(0);
    if (!rc)
        rc = device_get(&dev, 0);
    void *ctx = NULL;
    if (!rc && ctx_create)
        rc = ctx_create(&ctx, 0, dev);
    size_t free_b = 0, total_b = 0;
    if (!rc)
        rc = mem_get_info(&free_b, &total_b);
    if (rc) {
        printf("the driver failed: error %d\n", rc);
        return 3;
    }
    printf("total_bytes=%zu free_bytes=%zu\n", total_b, free_b);
    fflush(stdout);
    if (how)
        return family(how);
    for (int i = 1; i <= n; i++) {
        unsigned long long p = 0;
        int e = mem_alloc(&p, (size_t)1 << 30);
        if (e)
            printf("alloc %d: error %d\n", i, e);
        else
            printf("alloc %d: ok\n", i);
    }
    fflush(stdout);
    return 0;
}
