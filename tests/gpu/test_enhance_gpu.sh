# SPDX-License-Identifier: MIT
# tests/gpu/test_enhance_gpu.sh - examples/enhance_frames.py for real: a
# small convolutional network in PyTorch enhances 150 frames on the GPU
# under the scheduler, with a budget that lets three run at once.  No
# out-of-memory error may escape, all 150 frames come back in order and one
# size, and the card's used memory - sampled by the example and, apart, by
# nvidia-smi every 20 ms - never passes the budget.
. "$(dirname "$0")/lib.sh"
need_gpu
need_torch
export VRAM_LIBRARY="$VRAM_BUILD/lib/libvram.so"
unset VRAM_BACKEND VRAM_SIM VRAM_SIM_STATE VRAM_MARGIN

nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 20 >"$tmp/smi.csv" 2>/dev/null &
smi=$!
python3 "$VRAM_TOP/examples/enhance_frames.py" --frames 150 --at-once 3 --json >"$tmp/out.json" 2>"$tmp/err"
rc=$?
kill "$smi" 2>/dev/null
wait "$smi" 2>/dev/null
echo "# example: $(cat "$tmp/out.json")"
echo "# nvidia-smi: $(sort -n "$tmp/smi.csv" | tail -n 1) MiB at most over $(wc -l <"$tmp/smi.csv") samples"

if [ $rc -eq 0 ]; then ok example_exit; else not_ok example_exit "exit $rc: $(tail -c 600 "$tmp/err")"; fi
if python3 - "$tmp/out.json" "$tmp/smi.csv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["mode"] == "torch", r
assert r["frames"] == 150 and r["in_order"] and r["one_size"], r
assert r["oom_escaped"] == 0, r
assert r["max_used_bytes"] <= r["budget_bytes"], r
assert 2 <= r["most_at_once"] <= 3, r
smi = [int(x) for x in open(sys.argv[2]).read().split() if x.strip().isdigit()]
assert smi, "no nvidia-smi samples"
assert max(smi) * 2**20 <= r["budget_bytes"] + 2**20, (max(smi), r["budget_bytes"])
PY
then ok frames_in_order_within_budget; else not_ok frames_in_order_within_budget "$(cat "$tmp/out.json")"; fi
finish
