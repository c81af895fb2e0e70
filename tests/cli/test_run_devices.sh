# SPDX-License-Identifier: MIT
# tests/cli/test_run_devices.sh - `vram run` on the stub NVML: a job is told
# its device as CUDA will number it (one visible device: cuda:0), by UUID,
# a MIG instance's included, in VRAM_DEVICE and in its plan; vram sees only
# the devices CUDA_VISIBLE_DEVICES gives it.
. "$(dirname "$0")/lib.sh"
export VRAM_BACKEND=nvml VRAM_NVML_LIBRARY="$VRAM_BUILD/stubs/libnvidia-ml.so.1" VRAM_HISTORY=- \
       VRAM_INTERVAL=20ms VRAM_HOST_RAM=off
unset CUDA_VISIBLE_DEVICES SLURM_JOB_GPUS SLURM_STEP_GPUS
export VRAM_STUB_NVML="devices=A:16384:1024:512|B:16384:1024:512|H100:81559:0:0;mig2=40192:0:0|19968:0:0"
show='echo "CVD=$CUDA_VISIBLE_DEVICES DEV=$VRAM_DEVICE IDX=$VRAM_DEVICE_INDEX"; echo "$VRAM_PLAN" >'"$tmp/plan.json"

expect second_gpu_by_uuid 0 '^CVD=GPU-stub-0001 DEV=0 IDX=1$' -- "$VRAM" run --vram 1GiB --device 1 -- sh -c "$show"
expect mig_instance_by_uuid 0 '^CVD=MIG-stub-0002-1 DEV=0 IDX=3$' -- "$VRAM" run --vram 1GiB --device 3 -- sh -c "$show"
expect plan_says_cuda_0 0 '' -- "$VRAM" run --model latentsync --vram 8GiB --device 1 -- sh -c "$show"
if python3 - "$tmp/plan.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["accelerate"]
assert list(k for k in a["max_memory"] if k != "cpu") == ["0"], a["max_memory"]
assert set(a["execution"].values()) <= {"cuda:0", "cpu"}, a["execution"]
PY
then ok plan_max_memory_and_execution_on_cuda_0; else not_ok plan_max_memory_and_execution_on_cuda_0 "$(head -c 400 "$tmp/plan.json")"; fi
# In a container without --pid=host NVML's pid is no process here: the job
# is accounted from its device's growth, up to its budget, not as 0.
expect container_job_has_a_peak 0 '' -- env VRAM_HISTORY="$tmp/h.db" \
    VRAM_STUB_NVML="devices=A:16384:1024:0;procs0=4000003:512;used_step=64" \
    "$VRAM" run --name inbox --vram 2GiB -- sleep 0.5
env VRAM_HISTORY="$tmp/h.db" "$VRAM" history --json >"$tmp/h.json" 2>&1
if python3 - "$tmp/h.json" <<'PY'
import json, sys
r = [x for x in json.load(open(sys.argv[1]))["runs"] if x["job"] == "inbox"][0]
assert 0 < r["peak_bytes"] <= 2 << 30, r["peak_bytes"]
PY
then ok container_peak_from_the_device; else not_ok container_peak_from_the_device "$(head -c 300 "$tmp/h.json")"; fi
expect status_sees_only_visible 0 '"uuid":"GPU-stub-0001"' -- env CUDA_VISIBLE_DEVICES=GPU-stub-0001 "$VRAM" status --json
expect_lines one_device_only '"index":1' 0
expect status_capacity 0 'capacity 14.5 GiB' -- "$VRAM" status --margin 1GiB
expect status_lost_gpu 1 'GPU 1: LOST, takes no work \(capacity 0\)' -- env VRAM_STUB_NVML="devices=A:16384|B:16384;lost=1" "$VRAM" status
expect version_mismatch_is_no_sim 1 'version mismatch' -- env VRAM_STUB_NVML="fail_init=18" "$VRAM" status --backend auto
# A machine with an NVIDIA driver (/dev/nvidiactl) whose NVML cannot be
# used: an error naming why, never the simulated card.  The node is made in
# a private mount namespace (root, or an unprivileged user namespace).
nodeless='mount -t tmpfs none /dev && : >/dev/nvidiactl && exec "$@"'
probe='mount -t tmpfs none /dev && : >/dev/nvidiactl'
if unshare -m sh -c "$probe" 2>/dev/null; then ns="unshare -m"
elif unshare -rm sh -c "$probe" 2>/dev/null; then ns="unshare -rm"
else ns=; fi
if [ -n "$ns" ]; then
    expect driver_node_means_no_sim 1 '/dev/nvidiactl exists \(vram does not fall back to simulated' -- \
        $ns sh -c "$nodeless" sh env VRAM_NVML_LIBRARY=/nonexistent/libnvidia-ml.so.1 "$VRAM" status --backend auto
    if grep -q SIMULATED "$tmp/out"; then not_ok driver_node_shows_no_sim "$(head -c 300 "$tmp/out")"; else ok driver_node_shows_no_sim; fi
    expect no_driver_node_is_sim 0 'SIMULATED DEVICES' -- \
        $ns sh -c 'mount -t tmpfs none /dev && exec "$@"' sh env VRAM_NVML_LIBRARY=/nonexistent/libnvidia-ml.so.1 "$VRAM" status --backend auto
else
    echo "skip - $file/driver_node_means_no_sim: unshare cannot mount a private /dev here (needs root or user namespaces)"
fi
finish
