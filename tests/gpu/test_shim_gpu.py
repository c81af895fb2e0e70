# SPDX-License-Identifier: MIT
"""tests/gpu/test_shim_gpu.py - PyTorch under the shim on a real card, run by
test_shim_gpu.sh inside `vram run --vram 4GiB` (the shim preloaded, its
region in VRAM_SHIM_FD).

  checks        the budget as the card, refusal without dying, the count
                against memory_reserved() plus the context, nvidia-smi
  oom           only the 5 GiB refusal (run with expandable_segments:True)
  loop N        N small allocations and frees; prints the seconds

Prints one JSON line per result; the shell test judges them.
"""
import json
import mmap
import os
import subprocess
import sys
import time

import torch

GIB = 1 << 30
OOM = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
BUDGET = int(os.environ.get("VRAM_BUDGET_BYTES", 4 * GIB))


def say(**kw):
    print(json.dumps(kw), flush=True)


def region_count():
    """The job's live bytes and context bytes on device 0, from the region
    (layout: src/shim/region.h; device 0's counters start at byte 64)."""
    fd = int(os.environ["VRAM_SHIM_FD"])
    with mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ) as m:
        used = int.from_bytes(m[64:72], "little")
        ctx = int.from_bytes(m[88:96], "little")
    return used, ctx


def smi_used():
    """What nvidia-smi says this process holds, in bytes (None if it cannot say)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(os.getpid()) and parts[1].isdigit():
            return int(parts[1]) << 20
    return None


def refused_5gib():
    try:
        x = torch.empty(5 * GIB, dtype=torch.uint8, device="cuda")
        del x
        return False
    except OOM:
        return True


def checks():
    free, total = torch.cuda.mem_get_info()
    say(check="mem_get_info", total=total, free=free, ok=total == BUDGET and free <= BUDGET)
    props = torch.cuda.get_device_properties(0).total_memory
    say(check="total_memory", total_memory=props, ok=props == BUDGET)
    smi = []
    x = torch.empty(2 * GIB, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
    used, ctx = region_count()
    reserved = torch.cuda.memory_reserved()
    err = abs(used - (reserved + ctx)) / (reserved + ctx)
    say(check="count_vs_reserved", count=used, reserved=reserved, context=ctx, error=err,
        ok=err <= 0.02 and ctx > 0)
    smi.append(smi_used())
    r = refused_5gib()
    smi.append(smi_used())
    say(check="refused_5gib", ok=r)
    y = torch.empty(1 * GIB, dtype=torch.uint8, device="cuda")   # and it lives on
    y.fill_(1)
    torch.cuda.synchronize()
    say(check="lives_on", ok=int(y[0].item()) == 1)
    smi.append(smi_used())
    del x, y
    limit = BUDGET + ctx
    seen = [s for s in smi if s is not None]
    say(check="smi_within_budget", seen=seen, limit=limit, ok=bool(seen) and max(seen) <= limit)


def loop(n):
    torch.empty(1, device="cuda")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        t = torch.empty(1024, device="cuda")
        del t
    torch.cuda.synchronize()
    say(check="loop", n=n, seconds=time.perf_counter() - t0)


def near(count, want):
    """Within 2% (and a pool's 64 MiB of granularity) of want."""
    return abs(count - want) <= 0.02 * want + (64 << 20)


def pool():
    """PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync: the driver's default
    pool keeps what is freed (PyTorch sets no release threshold below the
    pool's size), and so does the shim's count; the pool serves a later
    allocation from what it keeps without a refusal; empty_cache trims it."""
    torch.empty(1, device="cuda")
    torch.cuda.synchronize()
    _, ctx = region_count()
    x = torch.empty(2 * GIB, dtype=torch.uint8, device="cuda")
    del x
    torch.cuda.synchronize()
    torch.cuda.mem_get_info()                   # a point where the shim reads the pool
    used, _ = region_count()
    say(check="async_count_keeps_pool", count=used, context=ctx, ok=near(used, 2 * GIB + ctx))
    try:
        y = torch.empty(3 * GIB, dtype=torch.uint8, device="cuda")
        ok = True
    except OOM:
        ok = False
    say(check="async_reuse_not_refused", ok=ok)
    if ok:
        del y
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    torch.cuda.mem_get_info()
    used, _ = region_count()
    say(check="async_trim_gives_back", count=used, context=ctx, ok=near(used, ctx))


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "checks"
    if mode == "checks":
        checks()
    elif mode == "oom":
        say(check="refused_5gib_" + os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""), ok=refused_5gib())
        y = torch.ones(GIB // 4, device="cuda")
        say(check="lives_on_after_oom", ok=float(y.sum().item()) == GIB // 4)
    elif mode == "pool":
        pool()
    elif mode == "loop":
        loop(int(sys.argv[2]))
