# SPDX-License-Identifier: MIT
# tests/daemon/test_container_usage.sh - vramd in a container without
# --pid=host: the stub NVML lists a host pid that this /proc does not have,
# so no job's process group can be matched; the running job's usage is then
# accounted per lease from the device's growth (never 0, never past its
# lease), and the daemon says once why.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
# used_step: every query of the card adds 64 MiB to its used memory (a job
# allocating); pid 4000003 (no process here) stands for the job's host pid.
export VRAM_BACKEND=nvml VRAM_NVML_LIBRARY="$VRAM_BUILD/stubs/libnvidia-ml.so.1" VRAM_INTERVAL=1s \
       VRAM_HOST_RAM=off VRAM_STUB_NVML="devices=A:65536:1024:0;procs0=4000003:512;used_step=64"
unset CUDA_VISIBLE_DEVICES SLURM_JOB_GPUS SLURM_STEP_GPUS

start_daemon && ok daemon_starts || not_ok daemon_starts "$(tail -3 "$tmp/daemon.log")"
job=$("$VRAM" submit --vram 2GiB -- sleep 30)
used_shown() {
    "$VRAM" queue --json >"$tmp/q.json" 2>&1
    python3 - "$tmp/q.json" "$job" <<'PY'
import json, sys
j = [x for x in json.load(open(sys.argv[1]))["jobs"] if x["id"] == int(sys.argv[2])][0]
sys.exit(0 if j["state"] == "running" and j.get("used_bytes", 0) > 0 else 1)
PY
}
if wait_until 20 used_shown; then ok running_job_used_from_the_device
else not_ok running_job_used_from_the_device "$(head -c 600 "$tmp/q.json")"; fi
if python3 - "$tmp/q.json" "$job" <<'PY'
import json, sys
j = [x for x in json.load(open(sys.argv[1]))["jobs"] if x["id"] == int(sys.argv[2])][0]
assert 0 < j["used_bytes"] <= j["estimate_bytes"] == 2 << 30, j
assert j["peak_bytes"] >= j["used_bytes"], j
PY
then ok usage_within_its_lease; else not_ok usage_within_its_lease "$(head -c 600 "$tmp/q.json")"; fi
# A second job on the card: what the device grew by is shared by lease
# (2 GiB and 6 GiB: one share to three), each within its own lease.
big=$("$VRAM" submit --vram 6GiB -- sleep 30)
both_used() {
    "$VRAM" queue --json >"$tmp/q2.json" 2>&1
    python3 - "$tmp/q2.json" "$job" "$big" <<'PY'
import json, sys
jobs = {x["id"]: x for x in json.load(open(sys.argv[1]))["jobs"]}
a, b = jobs[int(sys.argv[2])], jobs[int(sys.argv[3])]
sys.exit(0 if a.get("used_bytes") and b.get("used_bytes") else 1)
PY
}
if wait_until 20 both_used && python3 - "$tmp/q2.json" "$job" "$big" <<'PY'
import json, sys
jobs = {x["id"]: x for x in json.load(open(sys.argv[1]))["jobs"]}
a, b = jobs[int(sys.argv[2])], jobs[int(sys.argv[3])]
assert a["used_bytes"] <= 2 << 30 and b["used_bytes"] <= 6 << 30, (a, b)
# Shares of one sample: 1 to 3 unless the smaller reached its lease.
assert a["used_bytes"] == 2 << 30 or abs(b["used_bytes"] - 3 * a["used_bytes"]) <= 3, (a, b)
PY
then ok two_jobs_share_by_lease; else not_ok two_jobs_share_by_lease "$(head -c 800 "$tmp/q2.json")"; fi
"$VRAM" cancel "$big" >/dev/null 2>&1
# Said once, however many samples were taken.
expect_said() { grep -c 'another pid namespace' "$tmp/daemon.log"; }
n=$(expect_said)
[ "$n" = 1 ] && ok container_said_once || not_ok container_said_once "said $n times: $(tail -5 "$tmp/daemon.log")"
"$VRAM" cancel "$job" >/dev/null 2>&1
stop_daemon
finish
