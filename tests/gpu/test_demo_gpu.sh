# SPDX-License-Identifier: MIT
# tests/gpu/test_demo_gpu.sh - the demo batch through vramd on the real
# card (examples/demo/run.py, as scripts/start.sh runs it): every job's
# program runs in PyTorch on the GPU; no job dies of out-of-memory unless
# its ladder then recovers it (t2v-720p must, from PyTorch's own error); the
# history holds real peaks (at least what PyTorch reserved, at most that
# plus the CUDA context); and the dashboard's device numbers (/api/status)
# match nvidia-smi within 1% of total, read between two nvidia-smi reads
# while the jobs run and once after.  Skips without a GPU or PyTorch.
. "$(dirname "$0")/lib.sh"
need_gpu
need_torch
unset VRAM_SIM VRAM_SIM_STATE VRAM_MARGIN
export VRAM_BACKEND=nvml VRAM_INTERVAL=50ms VRAM_LIBRARY="$VRAM_BUILD/lib/libvram.so"
state=$tmp/demo
smi_query=index,memory.total,memory.used,memory.reserved
nvidia-smi --query-gpu=$smi_query --format=csv,noheader,nounits >/dev/null 2>&1 ||
    smi_query=index,memory.total,memory.used

python3 "$VRAM_TOP/examples/demo/run.py" --state "$state" --port 0 --vram-bin "$VRAM" \
    >"$tmp/demo.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q 'dashboard: http' "$tmp/demo.out" && break; sleep 0.1; done
url=$(grep -o 'dashboard: http://[^ ]*' "$tmp/demo.out" | cut -d' ' -f2)

# compare SAMPLE: nvidia-smi, the dashboard, nvidia-smi again.
compare() {
    nvidia-smi --query-gpu=$smi_query --format=csv,noheader,nounits >"$tmp/smi1.$1" 2>/dev/null
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1] + "api/status", timeout=10).read().decode())' \
        "$url" >"$tmp/api.$1" 2>/dev/null
    nvidia-smi --query-gpu=$smi_query --format=csv,noheader,nounits >"$tmp/smi2.$1" 2>/dev/null
}
n=0
if [ -n "$url" ]; then
    while [ $n -lt 60 ] && ! grep -q 'the demo batch ended' "$tmp/demo.out"; do
        n=$((n + 1))
        compare "$n"
        sleep 1
    done
fi
for _ in $(seq 1 1200); do grep -Eq 'the demo batch ended|vramd exited' "$tmp/demo.out" && break; sleep 0.1; done
n=$((n + 1))
[ -n "$url" ] && compare "$n"
sed 's/^/# /' "$tmp/demo.out"

if grep -q 'the demo batch ended' "$tmp/demo.out"; then ok batch_ended; else not_ok batch_ended "no end in 3 minutes"; fi
cp "$tmp/demo.out" "$tmp/out"
expect_lines on_the_real_card 'SIMULATED|simulated card' 0
expect_lines every_job_succeeded '^\[ *[0-9.]+ s\] (lipsync|t2v-480p|t2v-720p|enhance) +succeeded' 4

VRAM_HISTORY=$state/history.db "$VRAM" history --json >"$tmp/history.json"
VRAM_SOCKET=$state/vramd.sock "$VRAM" queue --json >"$tmp/queue.json"
if python3 - "$tmp/history.json" "$tmp/queue.json" <<'PY'
import json, pathlib, re, sys
GiB = 2**30
runs = json.load(open(sys.argv[1]))["runs"]
reports = {}                        # job name -> what its program said at the end
for j in json.load(open(sys.argv[2]))["jobs"]:
    text = pathlib.Path(j["log"]).read_text(errors="replace")
    for m in re.finditer(r"vram-demo: (\{[^}]*\})", text):
        reports[j["name"]] = json.loads(m.group(1))
by_job = {}
for r in sorted(runs, key=lambda r: r["id"]):
    by_job.setdefault(r["job"], []).append(r)
    print("# %-9s attempt %d %-4s peak %6.2f GiB of %6.2f GiB  %s" % (
        r["job"], r["attempt"], r["outcome"], r["peak_bytes"] / GiB, r["estimate_bytes"] / GiB,
        r["note"][:120]))
for name, rep in sorted(reports.items()):
    print("# %s: %s" % (name, rep))
assert sorted(by_job) == ["enhance", "lipsync", "t2v-480p", "t2v-720p"], sorted(by_job)
# No job dies of out-of-memory unless its ladder then recovers it.
for job, rs in by_job.items():
    assert rs[-1]["outcome"] == "ok", (job, rs[-1])
    for r in rs[:-1]:
        assert r["outcome"] == "oom", (job, r)
t2v = by_job["t2v-720p"]
assert [r["outcome"] for r in t2v] == ["oom", "ok"], t2v
assert "CUDA out of memory" in t2v[0]["note"] and "Simulated" not in t2v[0]["note"], t2v[0]["note"]
# Real peaks: on the GPU, at least what PyTorch reserved, at most that and the context.
assert sorted(reports) == ["lipsync", "t2v-480p", "t2v-720p"], reports
for name, rep in reports.items():
    assert rep["mode"] == "torch", rep
    peak, res = by_job[name][-1]["peak_bytes"], rep["max_reserved_bytes"]
    assert res <= peak <= res + 1.5 * GiB, (name, "peak", peak, "reserved", res)
for job, rs in by_job.items():
    assert 0 < rs[-1]["peak_bytes"] <= rs[-1]["estimate_bytes"] * 1.02, (job, rs[-1])
PY
then ok history_holds_real_peaks; else not_ok history_holds_real_peaks "see above"; fi

if [ -n "$url" ] && python3 - "$tmp" "$n" <<'PY'
import json, sys
tmp, n = sys.argv[1], int(sys.argv[2])
MiB = 2**20

def smi(path):
    rows = {}
    for line in open(path):
        f = [x.strip() for x in line.split(",")]
        reserved = int(f[3]) if len(f) > 3 and f[3].isdigit() else 0
        rows[int(f[0])] = (int(f[1]) * MiB, int(f[2]) * MiB, reserved * MiB)
    return rows

compared = 0
for i in range(1, n + 1):
    try:
        api = json.load(open("%s/api.%d" % (tmp, i)))["snapshot"]["devices"]
        a, b = smi("%s/smi1.%d" % (tmp, i)), smi("%s/smi2.%d" % (tmp, i))
    except (OSError, ValueError):
        continue                    # a read that did not happen
    for d in api:
        total = d["total_bytes"]
        t1, u1, r1 = a[d["index"]]
        t2, u2, r2 = b[d["index"]]
        if d["memory_api"] == "nvml_v1":    # reserved counted as used, as the old API does
            u1, u2 = u1 + r1, u2 + r2
        lo, hi = min(u1, u2) - 0.01 * total, max(u1, u2) + 0.01 * total
        print("# sample %d gpu %d: dashboard used %.0f MiB of %.0f; nvidia-smi %.0f then %.0f MiB of %.0f"
              % (i, d["index"], d["used_bytes"] / MiB, total / MiB, u1 / MiB, u2 / MiB, t1 / MiB))
        assert abs(total - t1) <= 0.01 * total, ("total", total, t1)
        assert lo <= d["used_bytes"] <= hi, ("used", d["used_bytes"], u1, u2)
        compared += 1
assert compared, "no sample could be compared"
PY
then ok dashboard_matches_nvidia_smi; else not_ok dashboard_matches_nvidia_smi "see above"; fi

kill -INT "$pid"
for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
    not_ok ctrl_c_stops "still running 30 s after SIGINT"
    kill -KILL "$pid"
elif wait "$pid"; then
    ok ctrl_c_stops
else
    not_ok ctrl_c_stops "exit $?"
fi
finish
