# SPDX-License-Identifier: MIT
# tests/daemon/test_capacity_views.sh - one capacity everywhere: on a card
# whose driver reserves 512 MiB (NVML's v2 memory), with a 1 GiB margin,
# vramd's ledger (what a submit may ask), `vram status`, the dashboard's
# /api/status and /metrics all say total - reserved - margin, and a lost GPU
# is shown lost with capacity 0 in each of them.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
export VRAM_BACKEND=nvml VRAM_NVML_LIBRARY="$VRAM_BUILD/stubs/libnvidia-ml.so.1" VRAM_HOST_RAM=off \
       VRAM_MARGIN=1GiB VRAM_STUB_NVML="devices=T:16384:1024:512|L:16384:0:0;lost=1"
unset CUDA_VISIBLE_DEVICES SLURM_JOB_GPUS SLURM_STEP_GPUS
cap=$(( (16384 - 512 - 1024) << 20 ))

start_daemon && ok daemon_starts || { not_ok daemon_starts "$(tail -3 "$tmp/daemon.log")"; finish; }
url=$(dashboard_url)
"$VRAM" status --json >"$tmp/status.json" 2>&1
python3 - "$url" "$tmp/status.json" "$cap" >"$tmp/views.out" 2>&1 <<'PY'
import json, re, sys, urllib.request
url, status, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
def devices(doc):
    return {d["index"]: d for d in doc["devices"]}
views = {"vram status --json": devices(json.load(open(status))),
         "/api/status": devices(json.load(urllib.request.urlopen(url + "api/status", timeout=10))["snapshot"])}
metrics = urllib.request.urlopen(url + "metrics", timeout=10).read().decode()
m = {}
for line in metrics.splitlines():
    g = re.match(r'vram_device_capacity_bytes\{device="(\d+)"[^}]*\} (\d+)', line)
    if g:
        m.setdefault(int(g.group(1)), {})["capacity_bytes"] = int(g.group(2))
    g = re.match(r'vram_device_lost\{device="(\d+)",name="[^"]*",uuid="([^"]*)"\} (\d+)', line)
    if g:
        m.setdefault(int(g.group(1)), {})["lost"] = g.group(3) == "1"
        m[int(g.group(1))]["uuid"] = g.group(2)
views["/metrics"] = m
for name, v in views.items():
    got = v.get(0, {}).get("capacity_bytes")
    print(("ok" if got == cap else "bad") + " %s device 0 capacity %s (want %d)" % (name, got, cap))
    lost = v.get(1, {})
    print(("ok" if lost.get("capacity_bytes", 0) == 0 else "bad") + " %s lost device capacity %s" % (name, lost.get("capacity_bytes")))
for name, v in views.items():
    lost = v.get(1, {})
    good = lost.get("lost") is True and lost.get("uuid") == "GPU-stub-0001" and v[0].get("lost") is False
    print(("ok" if good else "bad") + " %s shows device 1 (only) lost, by UUID: %s" % (name, json.dumps(lost)[:300]))
PY
if [ $? -eq 0 ] && ! grep -q '^bad' "$tmp/views.out" && [ "$(grep -c '^ok' "$tmp/views.out")" = 9 ]; then
    ok status_dashboard_metrics_agree
else
    not_ok status_dashboard_metrics_agree "$(tr '\n' ';' <"$tmp/views.out" | head -c 1500)"
fi
# The ledger: a job of exactly the capacity is taken, one MiB more is
# refused at submit, naming what the device can give.
expect ledger_takes_the_capacity 0 '' -- "$VRAM" submit --device 0 --vram $((cap >> 20))MiB -- true
expect ledger_refuses_past_it 3 'can give 14.5 GiB \(its total less driver-reserved' -- "$VRAM" submit --device 0 --vram $(((cap >> 20) + 1))MiB -- true
expect lost_device_takes_nothing 3 'GPU 1' -- "$VRAM" submit --device 1 --vram 1MiB -- true
stop_daemon
finish
