/* SPDX-License-Identifier: MIT */
/*
 * tests/shim/prog_linked.c - a CUDA program linked to libcuda.so.1 at build
 * time, calling the _v2 names as cuda.h spells them.
 *
 *   linked [COUNT]   take COUNT GiB (default 4)
 */
#include "prog.h"

int main(int argc, char **argv)
{
    drv d = {
        .init = cuInit, .device_get = cuDeviceGet, .retain = cuDevicePrimaryCtxRetain,
        .set_current = cuCtxSetCurrent, .get_info = cuMemGetInfo_v2, .total_mem = cuDeviceTotalMem_v2,
        .alloc = cuMemAlloc_v2, .free = cuMemFree_v2,
    };
    return drv_run(&d, argc > 1 ? atoi(argv[1]) : 4);
}
