/* SPDX-License-Identifier: MIT */
/*
 * tests/shim/plugin.c - a library linked against the stub driver, for a
 * test program to dlopen (prog_hostile.c next): its dlsym(RTLD_NEXT) looks
 * after itself, where the driver is and the preloaded shim is not.
 */
#include <dlfcn.h>
#include <stdio.h>

#include "shim/cuda_types.h"

/* Takes 1 GiB `count` times through the linked name, then once through
 * dlsym on the driver's handle and once through dlsym(RTLD_NEXT), in the
 * caller's current context; prints "plugin-linked N rc=E",
 * "plugin-dlsym rc=E" and "plugin-next rc=E". */
__attribute__((visibility("default"))) int vram_test_plugin_take(int count);

int vram_test_plugin_take(int count)
{
    CUdeviceptr p;
    for (int i = 1; i <= count; i++)
        printf("plugin-linked %d rc=%d\n", i, cuMemAlloc_v2(&p, 1ull << 30));
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    CUresult (*alloc)(CUdeviceptr *, size_t) = lib ? (CUresult(*)(CUdeviceptr *, size_t))dlsym(lib, "cuMemAlloc_v2")
                                                   : NULL;
    printf("plugin-dlsym rc=%d\n", alloc ? alloc(&p, 1ull << 30) : -1);
    alloc = (CUresult(*)(CUdeviceptr *, size_t))dlsym(RTLD_NEXT, "cuMemAlloc_v2");
    printf("plugin-next rc=%d\n", alloc ? alloc(&p, 1ull << 30) : -1);
    fflush(stdout);
    return 0;
}
