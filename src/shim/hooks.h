/* SPDX-License-Identifier: MIT */
/*
 * shim/hooks.h - the one list of driver and NVML entry points the shim
 * knows.  It generates the table of real pointers, the names dlsym and
 * cuGetProcAddress answer for, and which versioned name answers a
 * cuGetProcAddress request at which CUDA version.
 *
 *   X(lib, symbol, base name, since CUDA version, per-thread stream, hooked)
 *
 * `base` is the name a caller gives cuGetProcAddress; of the rows sharing
 * it, a request at version V gets the newest row with since <= V, and the
 * per-thread-default-stream row (_ptsz) when it asks with that flag.  (From
 * CUDA 12.0 the name cuGraphInstantiate means cuGraphInstantiateWithFlags:
 * the driver answers with that entry point, which the shim knows by its
 * address; shim.c never picks an older row for it by version.)
 * Rows with hooked = 0 are driver calls the shim makes itself and never
 * hands out.  Names not in the list pass through untouched.
 */
#ifndef VRAM_SHIM_HOOKS_H
#define VRAM_SHIM_HOOKS_H

enum { LIB_CUDA, LIB_NVML };

#define SHIM_HOOK_LIST(X)                                                         \
    X(LIB_CUDA, cuInit,                        cuInit,                    0, 0, 1) \
    X(LIB_CUDA, cuGetProcAddress,              cuGetProcAddress,      11030, 0, 1) \
    X(LIB_CUDA, cuGetProcAddress_v2,           cuGetProcAddress,      12000, 0, 1) \
    X(LIB_CUDA, cuMemGetInfo,                  cuMemGetInfo,              0, 0, 1) \
    X(LIB_CUDA, cuMemGetInfo_v2,               cuMemGetInfo,           3020, 0, 1) \
    X(LIB_CUDA, cuDeviceTotalMem,              cuDeviceTotalMem,          0, 0, 1) \
    X(LIB_CUDA, cuDeviceTotalMem_v2,           cuDeviceTotalMem,       3020, 0, 1) \
    X(LIB_CUDA, cuMemAlloc,                    cuMemAlloc,                0, 0, 1) \
    X(LIB_CUDA, cuMemAlloc_v2,                 cuMemAlloc,             3020, 0, 1) \
    X(LIB_CUDA, cuMemAllocPitch,               cuMemAllocPitch,           0, 0, 1) \
    X(LIB_CUDA, cuMemAllocPitch_v2,            cuMemAllocPitch,        3020, 0, 1) \
    X(LIB_CUDA, cuMemAllocManaged,             cuMemAllocManaged,      6000, 0, 1) \
    X(LIB_CUDA, cuMemAllocAsync,               cuMemAllocAsync,       11020, 0, 1) \
    X(LIB_CUDA, cuMemAllocAsync_ptsz,          cuMemAllocAsync,       11020, 1, 1) \
    X(LIB_CUDA, cuMemAllocFromPoolAsync,       cuMemAllocFromPoolAsync, 11020, 0, 1) \
    X(LIB_CUDA, cuMemAllocFromPoolAsync_ptsz,  cuMemAllocFromPoolAsync, 11020, 1, 1) \
    X(LIB_CUDA, cuMemFree,                     cuMemFree,                 0, 0, 1) \
    X(LIB_CUDA, cuMemFree_v2,                  cuMemFree,              3020, 0, 1) \
    X(LIB_CUDA, cuMemFreeAsync,                cuMemFreeAsync,        11020, 0, 1) \
    X(LIB_CUDA, cuMemFreeAsync_ptsz,           cuMemFreeAsync,        11020, 1, 1) \
    X(LIB_CUDA, cuMemCreate,                   cuMemCreate,           10020, 0, 1) \
    X(LIB_CUDA, cuMemRelease,                  cuMemRelease,          10020, 0, 1) \
    X(LIB_CUDA, cuMemMap,                      cuMemMap,              10020, 0, 1) \
    X(LIB_CUDA, cuMemUnmap,                    cuMemUnmap,            10020, 0, 1) \
    X(LIB_CUDA, cuMemRetainAllocationHandle,   cuMemRetainAllocationHandle, 11000, 0, 1) \
    X(LIB_CUDA, cuArrayCreate,                 cuArrayCreate,             0, 0, 1) \
    X(LIB_CUDA, cuArrayCreate_v2,              cuArrayCreate,          3020, 0, 1) \
    X(LIB_CUDA, cuArray3DCreate,               cuArray3DCreate,           0, 0, 1) \
    X(LIB_CUDA, cuArray3DCreate_v2,            cuArray3DCreate,        3020, 0, 1) \
    X(LIB_CUDA, cuArrayDestroy,                cuArrayDestroy,            0, 0, 1) \
    X(LIB_CUDA, cuMipmappedArrayCreate,        cuMipmappedArrayCreate, 5000, 0, 1) \
    X(LIB_CUDA, cuMipmappedArrayDestroy,       cuMipmappedArrayDestroy, 5000, 0, 1) \
    X(LIB_CUDA, cuMemPoolCreate,               cuMemPoolCreate,       11020, 0, 1) \
    X(LIB_CUDA, cuMemPoolTrimTo,               cuMemPoolTrimTo,       11020, 0, 1) \
    X(LIB_CUDA, cuMemPoolDestroy,              cuMemPoolDestroy,      11020, 0, 1) \
    X(LIB_CUDA, cuMemPoolSetAttribute,         cuMemPoolSetAttribute, 11020, 0, 1) \
    X(LIB_CUDA, cuDeviceSetMemPool,            cuDeviceSetMemPool,    11020, 0, 1) \
    X(LIB_CUDA, cuStreamSynchronize,           cuStreamSynchronize,       0, 0, 1) \
    X(LIB_CUDA, cuStreamSynchronize_ptsz,      cuStreamSynchronize,    7000, 1, 1) \
    X(LIB_CUDA, cuStreamQuery,                 cuStreamQuery,             0, 0, 1) \
    X(LIB_CUDA, cuStreamQuery_ptsz,            cuStreamQuery,          7000, 1, 1) \
    X(LIB_CUDA, cuStreamDestroy,               cuStreamDestroy,           0, 0, 1) \
    X(LIB_CUDA, cuStreamDestroy_v2,            cuStreamDestroy,        4000, 0, 1) \
    X(LIB_CUDA, cuCtxSynchronize,              cuCtxSynchronize,          0, 0, 1) \
    X(LIB_CUDA, cuEventSynchronize,            cuEventSynchronize,        0, 0, 1) \
    X(LIB_CUDA, cuGraphAddMemAllocNode,        cuGraphAddMemAllocNode, 11040, 0, 1) \
    X(LIB_CUDA, cuGraphDestroy,                cuGraphDestroy,        10000, 0, 1) \
    X(LIB_CUDA, cuGraphInstantiate,            cuGraphInstantiate,    10000, 0, 1) \
    X(LIB_CUDA, cuGraphInstantiate_v2,         cuGraphInstantiate,    11000, 0, 1) \
    X(LIB_CUDA, cuGraphInstantiateWithFlags,   cuGraphInstantiateWithFlags, 11040, 0, 1) \
    X(LIB_CUDA, cuGraphInstantiateWithParams,  cuGraphInstantiateWithParams, 12000, 0, 1) \
    X(LIB_CUDA, cuGraphInstantiateWithParams_ptsz, cuGraphInstantiateWithParams, 12000, 1, 1) \
    X(LIB_CUDA, cuGraphExecDestroy,            cuGraphExecDestroy,    10000, 0, 1) \
    X(LIB_CUDA, cuGraphLaunch,                 cuGraphLaunch,         10000, 0, 1) \
    X(LIB_CUDA, cuGraphLaunch_ptsz,            cuGraphLaunch,         10000, 1, 1) \
    X(LIB_CUDA, cuDeviceGraphMemTrim,          cuDeviceGraphMemTrim,  11040, 0, 1) \
    X(LIB_CUDA, cuCtxCreate,                   cuCtxCreate,               0, 0, 1) \
    X(LIB_CUDA, cuCtxCreate_v2,                cuCtxCreate,            3020, 0, 1) \
    X(LIB_CUDA, cuCtxCreate_v3,                cuCtxCreate,           11040, 0, 1) \
    X(LIB_CUDA, cuCtxCreate_v4,                cuCtxCreate,           12050, 0, 1) \
    X(LIB_CUDA, cuCtxDestroy,                  cuCtxDestroy,              0, 0, 1) \
    X(LIB_CUDA, cuCtxDestroy_v2,               cuCtxDestroy,           4000, 0, 1) \
    X(LIB_CUDA, cuDevicePrimaryCtxRetain,      cuDevicePrimaryCtxRetain, 7000, 0, 1) \
    X(LIB_CUDA, cuDevicePrimaryCtxRelease,     cuDevicePrimaryCtxRelease, 7000, 0, 1) \
    X(LIB_CUDA, cuDevicePrimaryCtxRelease_v2,  cuDevicePrimaryCtxRelease, 11000, 0, 1) \
    X(LIB_CUDA, cuDevicePrimaryCtxReset,       cuDevicePrimaryCtxReset, 7000, 0, 1) \
    X(LIB_CUDA, cuDevicePrimaryCtxReset_v2,    cuDevicePrimaryCtxReset, 11000, 0, 1) \
    X(LIB_CUDA, cuCtxSetLimit,                 cuCtxSetLimit,          3010, 0, 1) \
    X(LIB_CUDA, cuCtxGetDevice,                cuCtxGetDevice,            0, 0, 0) \
    X(LIB_CUDA, cuCtxGetLimit,                 cuCtxGetLimit,          3010, 0, 0) \
    X(LIB_CUDA, cuDeviceGetAttribute,          cuDeviceGetAttribute,      0, 0, 0) \
    X(LIB_CUDA, cuCtxPushCurrent_v2,           cuCtxPushCurrent,       4000, 0, 0) \
    X(LIB_CUDA, cuCtxPopCurrent_v2,            cuCtxPopCurrent,        4000, 0, 0) \
    X(LIB_CUDA, cuMemGetAddressRange_v2,       cuMemGetAddressRange,   3020, 0, 0) \
    X(LIB_CUDA, cuDeviceGetPCIBusId,           cuDeviceGetPCIBusId,       0, 0, 0) \
    X(LIB_CUDA, cuDeviceGetCount,              cuDeviceGetCount,          0, 0, 0) \
    X(LIB_CUDA, cuMemPoolGetAttribute,         cuMemPoolGetAttribute, 11020, 0, 0) \
    X(LIB_CUDA, cuDeviceGetMemPool,            cuDeviceGetMemPool,    11020, 0, 0) \
    X(LIB_CUDA, cuDeviceGetGraphMemAttribute,  cuDeviceGetGraphMemAttribute, 11040, 0, 0) \
    X(LIB_NVML, nvmlDeviceGetMemoryInfo,       nvmlDeviceGetMemoryInfo,   0, 0, 1) \
    X(LIB_NVML, nvmlDeviceGetMemoryInfo_v2,    nvmlDeviceGetMemoryInfo_v2, 0, 0, 1) \
    X(LIB_NVML, nvmlInit_v2,                   nvmlInit_v2,               0, 0, 0) \
    X(LIB_NVML, nvmlDeviceGetHandleByPciBusId_v2, nvmlDeviceGetHandleByPciBusId_v2, 0, 0, 0)

enum {
#define X(lib, sym, base, since, ptds, hooked) HOOK_##sym,
    SHIM_HOOK_LIST(X)
#undef X
    HOOK_COUNT
};

#endif
