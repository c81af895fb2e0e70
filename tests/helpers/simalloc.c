/* SPDX-License-Identifier: MIT */
/*
 * tests/helpers/simalloc.c - a program that really allocates on the
 * simulated card, for tests that need a GPU user they can steer.
 *
 *   simalloc hold SIZE MS            take SIZE, keep it MS ms, exit 0
 *   simalloc leak STEP COUNT MS      take STEP more every MS ms, COUNT times
 *   simalloc oom SIZE                take SIZE; when it does not fit, print
 *                                    PyTorch's out-of-memory message, exit 1
 *   simalloc fork-hold SIZE MS       a grandchild holds SIZE for MS ms; the
 *                                    process itself exits at once
 *
 * It reads VRAM_SIM, VRAM_SIM_STATE and VRAM_DEVICE (default 0) from the
 * environment, with the backend forced to sim.  With SIMALLOC_READY=FILE,
 * hold and fork-hold create FILE once the memory is taken, so that a test
 * waits for that rather than for a fixed time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/exports.h"
#include "vram.h"

static vram_ctx *ctx;
static unsigned device;

static uint64_t size_arg(const char *text)
{
    uint64_t v;
    if (vram_size_parse(text, &v)) {
        fprintf(stderr, "simalloc: %s\n", vram_last_error());
        exit(2);
    }
    return v;
}

static void say_ready(void)
{
    const char *ready = getenv("SIMALLOC_READY");
    FILE *f = ready ? fopen(ready, "w") : NULL;
    if (f)
        fclose(f);
}

static void take(uint64_t bytes)
{
    int rc = vram_sim_set_usage(ctx, device, bytes);
    if (rc == VRAM_EOOM) {
        /* What PyTorch prints when the caching allocator cannot get memory. */
        double gib = (double)bytes / (1024.0 * 1024 * 1024);
        vram_device_info in;
        vram_device_query(ctx, device, &in);
        fprintf(stderr,
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate %.2f GiB. "
                "GPU %u has a total capacity of %.2f GiB of which %.2f GiB is free. "
                "Of the allocated memory 0 bytes is allocated by PyTorch, and 0 bytes is "
                "reserved by PyTorch but unallocated.\n",
                gib, device, (double)in.total_bytes / (1024.0 * 1024 * 1024),
                (double)in.free_bytes / (1024.0 * 1024 * 1024));
        exit(1);
    }
    if (rc) {
        fprintf(stderr, "simalloc: %s\n", vram_last_error());
        exit(3);
    }
}

int main(int argc, char **argv)
{
    setenv("VRAM_BACKEND", "sim", 1);
    const char *dev = getenv("VRAM_DEVICE");
    device = dev ? (unsigned)atoi(dev) : 0;
    if (argc < 3) {
        fprintf(stderr, "usage: simalloc hold|leak|oom|fork-hold ...\n");
        return 2;
    }
    if (vram_ctx_open(&ctx, NULL)) {
        fprintf(stderr, "simalloc: %s\n", vram_last_error());
        return 3;
    }
    const char *what = argv[1];
    if (!strcmp(what, "hold") && argc == 4) {
        take(size_arg(argv[2]));
        say_ready();
        usleep((useconds_t)atoi(argv[3]) * 1000);
    } else if (!strcmp(what, "leak") && argc == 5) {
        uint64_t step = size_arg(argv[2]), total = 0;
        for (int i = 0; i < atoi(argv[3]); i++) {
            take(total += step);
            usleep((useconds_t)atoi(argv[4]) * 1000);
        }
    } else if (!strcmp(what, "oom") && argc == 3) {
        take(size_arg(argv[2]));
    } else if (!strcmp(what, "fork-hold") && argc == 4) {
        if (fork() == 0) {
            vram_ctx_close(ctx);
            vram_ctx_open(&ctx, NULL);
            take(size_arg(argv[2]));
            say_ready();
            usleep((useconds_t)atoi(argv[3]) * 1000);
        }
        return 0;
    } else {
        fprintf(stderr, "simalloc: bad arguments\n");
        return 2;
    }
    vram_sim_set_usage(ctx, device, 0);
    vram_ctx_close(ctx);
    return 0;
}
