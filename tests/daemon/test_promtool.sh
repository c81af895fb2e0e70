# SPDX-License-Identifier: MIT
# tests/daemon/test_promtool.sh - `promtool check metrics` accepts what
# /metrics serves, after jobs have gone through every state (the server runs
# over the scripted provider of tests/helpers/dashstub).
. "$(dirname "$0")/../cli/lib.sh"
if ! command -v promtool >/dev/null; then
    echo "skip - $file/all: promtool is not installed (Debian package prometheus; scripts/deps.sh test installs it)"
    exit 77
fi
if python3 "$VRAM_TOP/tests/daemon/dashstub.py" metrics "$helpers/dashstub" "$tmp/metrics.txt" \
    >"$tmp/run.log" 2>&1; then
    ok served
else
    not_ok served "$(tail -5 "$tmp/run.log")"
    finish
fi
if promtool check metrics <"$tmp/metrics.txt" >"$tmp/promtool.log" 2>&1; then
    ok promtool_accepts
else
    not_ok promtool_accepts "$(head -5 "$tmp/promtool.log")"
fi
# The families the README lists, with values from the history just made.
for want in 'vram_device_total_bytes\{device="0",name="NVIDIA GeForce RTX 4090",uuid="GPU-5f2a6c1e-[^"]*"\} 25769803776' \
            'vram_device_leased_bytes\{device="0",[^}]*\} 2147483648' \
            'vram_device_safe_available_bytes\{device="1",' \
            'vram_jobs\{state="succeeded"\} 1' 'vram_jobs\{state="running"\} 1' \
            'vram_jobs\{state="canceled"\} 1' 'vram_admission_wait_seconds_count 2' \
            'vram_admission_wait_seconds_bucket\{le="\+Inf"\} 2' 'vram_oom_retries_total 1' \
            'vram_leases 1' 'vram_devices_simulated 1'; do
    name="has $(echo "$want" | tr -d '\\' | cut -d' ' -f1 | cut -c1-70)"
    if grep -Eq "^$want" "$tmp/metrics.txt"; then ok "$name"; else not_ok "$name" "no line matches /^$want/"; fi
done
cp "$tmp/metrics.txt" "$VRAM_BUILD/test-logs/metrics.txt"
finish
