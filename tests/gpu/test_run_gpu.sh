# SPDX-License-Identifier: MIT
# tests/gpu/test_run_gpu.sh - `vram run` on a real GPU: a PyTorch job asked
# for more than its first rung's budget dies of out-of-memory, the second
# rung finishes, and the peaks vram recorded match what PyTorch reserved
# plus the CUDA context, within 5%.  Skips without a GPU or PyTorch.
. "$(dirname "$0")/lib.sh"
need_gpu
need_torch
export VRAM_BACKEND=nvml VRAM_HISTORY=$tmp/history.db VRAM_INTERVAL=50ms
job=$VRAM_TOP/tests/gpu/run_budget.py
GiB=$((1 << 30))

expect context_only 0 '' -- "$VRAM" run --name ctx --vram 2GiB -- python3 "$job" 0 --context-only
expect oom_then_fits 0 'retrying on rung 2' -- "$VRAM" run --name gpujob \
    --ladder "size=$((3 * GiB)) vram=2GiB; size=$((1 * GiB)) vram=1.5GiB" -- python3 "$job" {size}
cat "$tmp/out" | sed 's/^/# /'
"$VRAM" history --json >"$tmp/h.json"
if python3 - "$tmp/h.json" "$tmp/out" <<'PY'
import json, re, sys
runs = json.load(open(sys.argv[1]))["runs"]
ctx = [r for r in runs if r["job"] == "ctx"][0]["peak_bytes"]
att = sorted([r for r in runs if r["job"] == "gpujob"], key=lambda r: r["attempt"])
assert [r["outcome"] for r in att] == ["oom", "ok"], [r["outcome"] for r in att]
reserved = [json.loads(l)["max_reserved"] for l in open(sys.argv[2]) if l.startswith('{"max_reserved"')][-1]
peak = att[1]["peak_bytes"]
want = reserved + ctx
err = abs(peak - want) / want
print(f"# context {ctx/2**20:.0f} MiB, torch max_reserved {reserved/2**20:.0f} MiB, "
      f"recorded peak {peak/2**20:.0f} MiB, expected {want/2**20:.0f} MiB, error {err*100:.2f}%")
assert err <= 0.05, err
PY
then ok recorded_peak_matches_torch_plus_context; else not_ok recorded_peak_matches_torch_plus_context "see above"; fi
finish
