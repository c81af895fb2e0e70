# SPDX-License-Identifier: MIT
# tests/gpu/test_cuda_driver.sh - on a real GPU, with no PyTorch: vram's
# NVML view against the CUDA driver's own (tests/gpu/cuda_helper.py, ctypes
# over libcuda.so.1).  NVML lists the helper's pid; NVML total less
# driver-reserved is CUDA's total; NVML free agrees with cuMemGetInfo within
# 64 MiB; what vram would admit (safe available) cuMemAlloc can give; a real
# CUDA_ERROR_OUT_OF_MEMORY is read by `vram run` and retried on the next
# rung; MIG mode is reported as nvidia-smi says.  Skips without a GPU.
. "$(dirname "$0")/lib.sh"
need_gpu
helper="$(dirname "$0")/cuda_helper.py"
python3 "$helper" probe 2>"$tmp/probe" || {
    echo "skip - $file/all: the CUDA driver cannot make a context: $(head -c 200 "$tmp/probe")"; exit 77; }
export VRAM_BACKEND=nvml VRAM_HISTORY=- VRAM_MARGIN=64MiB

# ---- one process with a context, seen from both sides --------------------------
python3 - "$VRAM" <<'PY' >"$tmp/out" 2>&1
import ctypes, json, os, subprocess, sys
vram = sys.argv[1]
cu = ctypes.CDLL("libcuda.so.1")
assert cu.cuInit(0) == 0
dev = ctypes.c_int()
assert cu.cuDeviceGet(ctypes.byref(dev), 0) == 0
ctx = ctypes.c_void_p()
assert cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev) == 0
assert cu.cuCtxSetCurrent(ctx) == 0
cu.cuMemGetInfo_v2.argtypes = [ctypes.POINTER(ctypes.c_size_t)] * 2
cu.cuMemAlloc_v2.argtypes = [ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t]
raw = (ctypes.c_ubyte * 16)()
(getattr(cu, "cuDeviceGetUuid_v2", None) or cu.cuDeviceGetUuid)(raw, dev)
h = bytes(raw).hex()
uuid = "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
free, total = ctypes.c_size_t(), ctypes.c_size_t()
# An allocation of our own, so that NVML has something to list.
keep = ctypes.c_uint64()
assert cu.cuMemAlloc_v2(ctypes.byref(keep), 256 << 20) == 0
assert cu.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)) == 0
snap = json.loads(subprocess.run([vram, "status", "--json"], capture_output=True, text=True).stdout)
MiB = 1 << 20
devs = [d for d in snap["devices"] if d.get("uuid", "").endswith(uuid)]
def verdict(name, cond, why=""):
    print(("ok - test_cuda_driver/%s" % name) if cond else ("not ok - test_cuda_driver/%s: %s" % (name, why)),
          flush=True)
if not devs:
    verdict("device_found_by_uuid", False, "CUDA device 0 (%s) is not in vram status" % uuid)
    sys.exit(0)
d = devs[0]
print("# cuda: total %d MiB free %d MiB; nvml: total %d MiB reserved %s used %d MiB free %d MiB, api %s"
      % (total.value // MiB, free.value // MiB, d["total_bytes"] // MiB,
         d["driver_reserved_bytes"] and d["driver_reserved_bytes"] // MiB, d["used_bytes"] // MiB,
         d["free_bytes"] // MiB, d["memory_api"]))
pids = [p["pid"] for p in d["processes"] or []]
verdict("nvml_lists_the_helpers_pid", os.getpid() in pids, "pids %s" % pids)
if d["driver_reserved_bytes"] is None:
    print("skip - test_cuda_driver/total_less_reserved_is_cuda_total: NVML v1 (no reserved figure)")
else:
    diff = d["total_bytes"] - d["driver_reserved_bytes"] - total.value
    verdict("total_less_reserved_is_cuda_total", abs(diff) <= 2 * MiB, "differ by %d MiB" % (diff // MiB))
verdict("free_within_64_mib", abs(d["free_bytes"] - free.value) <= 64 * MiB,
        "nvml %d MiB, cuda %d MiB" % (d["free_bytes"] // MiB, free.value // MiB))
# What vram would admit now, cuMemAlloc must give.
want = d["safe_available_bytes"]
ptr = ctypes.c_uint64()
rc = cu.cuMemAlloc_v2(ctypes.byref(ptr), want)
verdict("safe_available_is_allocatable", rc == 0, "cuMemAlloc(%d MiB) returned %d" % (want // MiB, rc))
if rc == 0:
    cu.cuMemFree_v2(ptr)
# More than there is: the driver's own out-of-memory.
rc = cu.cuMemAlloc_v2(ctypes.byref(ptr), free.value + (1 << 30))
name = ctypes.c_char_p()
cu.cuGetErrorName(rc, ctypes.byref(name))
verdict("over_free_is_cuda_error_out_of_memory", name.value == b"CUDA_ERROR_OUT_OF_MEMORY", name.value)
PY
cat "$tmp/out"
grep -Eq '^(ok|not ok|skip) - ' "$tmp/out" || not_ok cuda_vs_nvml "$(tail -5 "$tmp/out")"
failures=$((failures + $(grep -c '^not ok - ' "$tmp/out")))

# ---- a real CUDA_ERROR_OUT_OF_MEMORY, read and retried -------------------------
total=$(python3 "$helper" info | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
expect real_oom_is_retried 0 'retrying on rung 2' -- "$VRAM" run --vram 1GiB \
    --ladder "size=$((total * 2)); size=64MiB" -- python3 "$helper" alloc {size}
cp "$tmp/out" "$tmp/oom.out"
expect real_oom_was_read 0 'CUDA_ERROR_OUT_OF_MEMORY' -- cat "$tmp/oom.out"

# ---- MIG mode, as nvidia-smi says -------------------------------------------------
mig=$(nvidia-smi --query-gpu=mig.mode.current --format=csv,noheader 2>/dev/null | head -1)
"$VRAM" status --json >"$tmp/s.json" 2>/dev/null
if python3 - "$tmp/s.json" "$mig" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); mig = sys.argv[2].strip()
migs = [d for d in s["devices"] if d.get("mig")]
print("# nvidia-smi mig.mode.current: %r; vram MIG devices: %s" % (mig, [d["uuid"] for d in migs]))
if mig == "Enabled":
    assert migs and all(d["uuid"].startswith("MIG-") for d in migs), "MIG on, but vram lists no MIG- device"
else:
    assert not migs, "MIG is %r, but vram lists MIG devices" % mig
PY
then ok mig_mode_reported; else not_ok mig_mode_reported "see above"; fi
finish
