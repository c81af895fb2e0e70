#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/gpu/cuda_helper.py - a torch-free CUDA program for the GPU checks:
the CUDA driver API through ctypes over libcuda.so.1, nothing else.

    cuda_helper.py probe          exits 0 when libcuda loads and sees a device
    cuda_helper.py info [SECONDS] a context on device 0, then one JSON line:
                                  {"pid", "free", "total", "uuid"} from
                                  cuMemGetInfo_v2 and cuDeviceGetUuid; then
                                  holds the context SECONDS (default 0) so
                                  that NVML can list this process
    cuda_helper.py alloc BYTES    cuMemAlloc_v2(BYTES): "ok BYTES" and exit 0,
                                  or the driver's error by name, as a C
                                  program prints it ("cuMemAlloc(BYTES)
                                  failed: CUDA_ERROR_OUT_OF_MEMORY"), exit 1

Sizes take a plain byte count or a suffix (K, M, G with optional iB).
"""

import ctypes
import json
import os
import sys
import time

CUDA_SUCCESS = 0


def load():
    try:
        return ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        print("no libcuda.so.1: %s" % e, file=sys.stderr)
        sys.exit(77)


# cuda.h's names of the codes these checks meet, for a driver (or stand-in)
# without cuGetErrorName: the out-of-memory must read as a C program says it.
KNOWN_ERRORS = {1: "CUDA_ERROR_INVALID_VALUE", 2: "CUDA_ERROR_OUT_OF_MEMORY",
                3: "CUDA_ERROR_NOT_INITIALIZED", 100: "CUDA_ERROR_NO_DEVICE",
                101: "CUDA_ERROR_INVALID_DEVICE", 999: "CUDA_ERROR_UNKNOWN"}


def error_name(cu, rc):
    name = ctypes.c_char_p()
    fn = getattr(cu, "cuGetErrorName", None)
    if fn and fn(rc, ctypes.byref(name)) == CUDA_SUCCESS and name.value:
        return name.value.decode()
    return KNOWN_ERRORS.get(rc, "CUDA error %d" % rc)


def check(cu, rc, what):
    if rc != CUDA_SUCCESS:
        print("%s failed: %s" % (what, error_name(cu, rc)), file=sys.stderr, flush=True)
        sys.exit(1)


def context(cu):
    check(cu, cu.cuInit(0), "cuInit")
    count = ctypes.c_int()
    check(cu, cu.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
    if count.value < 1:
        print("CUDA sees no device", file=sys.stderr)
        sys.exit(77)
    dev = ctypes.c_int()
    check(cu, cu.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
    ctx = ctypes.c_void_p()
    check(cu, cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
    check(cu, cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
    return dev


def uuid_of(cu, dev):
    raw = (ctypes.c_ubyte * 16)()
    fn = getattr(cu, "cuDeviceGetUuid_v2", None) or getattr(cu, "cuDeviceGetUuid", None)
    if not fn or fn(raw, dev) != CUDA_SUCCESS:
        return ""
    h = bytes(raw).hex()
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


def parse_size(text):
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().replace("IB", "").replace("B", "")
    suffix = t[-1] if t and t[-1] in units else ""
    return int(float(t[:-1] if suffix else t) * units[suffix])


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cu = load()
    cmd = argv[1]
    if cmd == "probe":
        context(cu)
        return 0
    dev = context(cu)
    cu.cuMemGetInfo_v2.argtypes = [ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
    if cmd == "info":
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        check(cu, cu.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)), "cuMemGetInfo")
        print(json.dumps({"pid": os.getpid(), "free": free.value, "total": total.value,
                          "uuid": uuid_of(cu, dev)}), flush=True)
        time.sleep(float(argv[2]) if len(argv) > 2 else 0)
        return 0
    if cmd == "alloc":
        want = parse_size(argv[2])
        ptr = ctypes.c_uint64()
        cu.cuMemAlloc_v2.argtypes = [ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t]
        check(cu, cu.cuMemAlloc_v2(ctypes.byref(ptr), want), "cuMemAlloc(%d)" % want)
        print("ok %d" % want, flush=True)
        return 0
    print("unknown command %r" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
