# SPDX-License-Identifier: MIT
# tests/gpu/test_status_vs_smi.sh - on a real GPU, `vram status --json`
# agrees with nvidia-smi, and a process that allocates 2 GiB shows up with
# its usage.  Skips without a GPU.
. "$(dirname "$0")/lib.sh"
need_gpu
export VRAM_BACKEND=nvml

"$VRAM" status --json >"$tmp/vram.json" 2>"$tmp/err" || { not_ok status_json "$(cat "$tmp/err")"; finish; }
nvidia-smi --query-gpu=index,memory.total,memory.used,memory.reserved --format=csv,noheader,nounits \
    >"$tmp/smi.csv" 2>/dev/null ||
nvidia-smi --query-gpu=index,memory.total,memory.used --format=csv,noheader,nounits >"$tmp/smi.csv"
cat "$tmp/smi.csv" | sed 's/^/# nvidia-smi: /'
if python3 - "$tmp/vram.json" "$tmp/smi.csv" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
MiB = 1024 * 1024
for line in open(sys.argv[2]):
    f = [x.strip() for x in line.split(",")]
    idx, total, used = int(f[0]), int(f[1]), int(f[2])
    reserved = int(f[3]) if len(f) > 3 and f[3].isdigit() else None
    d = v["devices"][idx]
    print(f"# gpu {idx}: vram total {d['total_bytes'] // MiB} MiB used {d['used_bytes'] / MiB:.0f} MiB "
          f"reserved {d['driver_reserved_bytes']} api {d['memory_api']}; smi total {total} used {used} reserved {reserved}")
    assert d["total_bytes"] // MiB == total, "totals differ"
    ours = d["used_bytes"]
    theirs = used * MiB
    # Count driver-reserved memory the same way on both sides.
    if d["memory_api"] == "nvml_v1" and reserved is not None:
        theirs += reserved * MiB
    assert abs(ours - theirs) <= 0.01 * d["total_bytes"], f"used differs by {abs(ours - theirs) / MiB:.0f} MiB"
PY
then ok totals_equal_and_used_within_1pct; else not_ok totals_equal_and_used_within_1pct "see the lines above"; fi

if python3 -c 'import torch' 2>/dev/null; then
    python3 -u -c '
import time, torch
x = torch.empty(2 << 30, dtype=torch.uint8, device="cuda")
torch.cuda.synchronize()
print("ready", flush=True)
time.sleep(20)
' >"$tmp/alloc.out" 2>&1 &
    holder=$!
    for _ in $(seq 1 200); do grep -q ready "$tmp/alloc.out" && break; sleep 0.1; done
    "$VRAM" status --json >"$tmp/after.json"
    if python3 - "$tmp/after.json" "$holder" <<'PY'
import json, sys
v = json.load(open(sys.argv[1])); pid = int(sys.argv[2])
found = [p for d in v["devices"] for p in (d["processes"] or []) if p["pid"] == pid]
print("# holder:", found)
assert found, "the allocating process is not listed"
assert found[0]["used_bytes"] is None or found[0]["used_bytes"] >= 2 << 30, "less than 2 GiB"
PY
    then ok process_with_2gib_listed; else not_ok process_with_2gib_listed "see above"; fi
    kill $holder 2>/dev/null; wait $holder 2>/dev/null
else
    echo "skip - $file/process_with_2gib_listed: PyTorch is not importable here"
fi
finish
