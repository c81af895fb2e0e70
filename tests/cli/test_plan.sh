# SPDX-License-Identifier: MIT
# tests/cli/test_plan.sh - `vram profiles`, `estimate`, `plan`, `optimize`
# and `calibrate`: what they print, their JSON, and bad input (one line
# naming the value, exit status 2; nothing fits: 3).
. "$(dirname "$0")/lib.sh"
export VRAM_BACKEND=sim XDG_CONFIG_HOME="$tmp/config"
# Plans check the host's RAM too; these cases are about the GPU, on any machine.
export VRAM_HOST_RAM=256GiB
unset VRAM_PROFILES VRAM_MODE
profiles="$VRAM_TOP/profiles"

# ---- profiles ----
expect profiles_list 0 'hunyuanvideo-avatar +7 ' -- "$VRAM" profiles
for m in sadtalker latentsync wan2.2-t2v-a14b wan2.2-i2v-a14b wan2.2-ti2v-5b hunyuanvideo-avatar generic-diffusion; do
    expect "profiles_lists_$m" 0 "^$m " -- "$VRAM" profiles
done
expect profiles_json 0 '"name":"latentsync"' -- "$VRAM" profiles --json
expect profiles_show 0 'maximum-quality +24GiB\+' -- "$VRAM" profiles show hunyuanvideo-avatar
expect profiles_show_json 0 '"tier":"high-performance"' -- "$VRAM" profiles show hunyuanvideo-avatar --json
expect profiles_show_unknown 2 "unknown model 'wan9' \(profiles: .*latentsync" -- "$VRAM" profiles show wan9
expect profiles_bad_word 2 "unexpected argument 'list'" -- "$VRAM" profiles list

# ---- estimate ----
expect estimate_text 0 '^peak +[0-9.]+ GiB = weights' -- "$VRAM" estimate --model wan2.2-ti2v-5b
expect estimate_modes 0 'beefy .* \| lightweight .* \| sequential' -- "$VRAM" estimate --model sadtalker
expect estimate_set_words 0 'resolution=1920x1080 frames=129 fps=16 steps=60' -- \
    "$VRAM" estimate --model wan2.2-t2v-a14b --set resolution=1080p steps=60 duration=8
expect estimate_budget_fits 0 'lightweight \(auto: the fastest that fits 24.0 GiB\)' -- \
    "$VRAM" estimate --model wan2.2-ti2v-5b --vram 24GiB cpu=text_encoder
expect estimate_budget_nofit 3 'fits +no' -- "$VRAM" estimate --model wan2.2-t2v-a14b --vram 4GiB
"$VRAM" estimate --model latentsync --json --set cfg=off >"$tmp/e.json" 2>&1
if python3 - "$tmp/e.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e = d["estimate"]
for k in ("peak_bytes", "weights_bytes", "activation_bytes", "overhead_bytes", "margin_bytes", "host_bytes"):
    assert isinstance(e[k], int) and e[k] >= 0, k
s = e["weights_bytes"] + e["activation_bytes"] + e["overhead_bytes"] + e["margin_bytes"]
assert abs(s - e["peak_bytes"]) <= 4, (s, e["peak_bytes"])
assert d["peak_bytes"] == e["peak_bytes"] and d["settings"]["cfg"] is False
assert [m["memory"] for m in d["modes"]] == ["beefy", "lightweight", "sequential"]
assert d["modes"][2]["peak_bytes"] < d["modes"][1]["peak_bytes"] < d["modes"][0]["peak_bytes"]
PY
then ok estimate_json; else not_ok estimate_json "$(head -c 400 "$tmp/e.json")"; fi

# ---- bad input: one line naming the value, exit 2 ----
expect bad_unknown_model 2 "unknown model 'nosuchmodel'" -- "$VRAM" estimate --model nosuchmodel
expect bad_no_model 2 '--model NAME is required' -- "$VRAM" estimate
expect bad_unknown_key 2 "unknown setting 'resolutoin'" -- "$VRAM" estimate --model latentsync --set resolutoin=720p
expect bad_resolution 2 "resolution '1280y720' is not WIDTHxHEIGHT" -- "$VRAM" plan --model wan2.2-t2v-a14b --vram 80GiB --set resolution=1280y720
expect bad_frames 2 "frames '1000000000' is absurd: at most 100000" -- "$VRAM" estimate --model wan2.2-t2v-a14b frames=1000000000
expect bad_negative 2 "steps '-4' cannot be negative" -- "$VRAM" estimate --model latentsync steps=-4
expect bad_unit 2 "'12GiBs' is not a size: unknown unit 'GiBs'" -- "$VRAM" plan --model latentsync --vram 12GiBs
expect bad_size_overflow 2 "too large: sizes go up to 16 EiB" -- "$VRAM" plan --model latentsync --vram 99999999999TiB
expect bad_estimate_overflow 2 "overflow 64-bit byte counts" -- "$VRAM" estimate --model generic-diffusion resolution=16384x16384 frames=100000 batch=1024
expect bad_word 2 "unexpected argument 'fast'" -- "$VRAM" estimate --model latentsync fast
expect bad_both_budgets 2 'not both' -- "$VRAM" plan --model latentsync --vram 8GiB --device 0
"$VRAM" estimate --model latentsync --set resolutoin=720p >"$tmp/out" 2>&1
expect_lines bad_input_is_one_line '.' 1

# A profile with a missing field, a unit typo and an unknown key: file:line.
sed '/^dtype = fp16/d' "$profiles/latentsync.ini" | sed '0,/^precision = follow/s//precision = follow/' >"$tmp/nodtype.ini"
expect bad_profile_missing_field 2 "nodtype.ini:[0-9]+: \[component unet\] has no 'dtype'" -- "$VRAM" estimate --profile "$tmp/nodtype.ini"
sed 's/^cuda_context = 500MiB/cuda_context = 500MiBs/' "$profiles/latentsync.ini" >"$tmp/typo.ini"
line=$(grep -n '^cuda_context' "$tmp/typo.ini" | cut -d: -f1)
expect bad_profile_unit_typo 2 "typo.ini:$line: cuda_context: '500MiBs' has an unknown unit" -- "$VRAM" estimate --profile "$tmp/typo.ini"
sed 's/^act_per_token = 90KiB/act_per_tokn = 90KiB/' "$profiles/latentsync.ini" >"$tmp/key.ini"
expect bad_profile_unknown_key 2 "key.ini:[0-9]+: unknown key 'act_per_tokn' in \[stage denoise\]" -- "$VRAM" profiles show "$tmp/key.ini"

# ---- plan ----
expect plan_text 0 '^tier +low' -- "$VRAM" plan --model hunyuanvideo-avatar --vram 10GiB
expect plan_allocator 0 '^allocator +PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True$' -- \
    env VRAM_TORCH_VERSION=2.4.1 "$VRAM" plan --model hunyuanvideo-avatar --vram 10GiB
expect plan_allocator_old_torch 0 '^allocator +PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:128$' -- \
    env VRAM_TORCH_VERSION=2.0.1 "$VRAM" plan --model hunyuanvideo-avatar --vram 10GiB
expect plan_why 0 '^why +balanced needs [0-9.]+ GiB at the least \(sequential\), over the 10.0 GiB budget' -- \
    "$VRAM" plan --model hunyuanvideo-avatar --vram 10GiB
# The table of seed 003 at the middle of each range: that range's tier, or
# the one under it with the reason printed.
for pair in 3:emergency: 5:ultra-minimal:emergency 7:ultra-low:ultra-minimal 10:low:ultra-low \
            14:balanced:low 20:high-performance:balanced 32:maximum-quality:high-performance; do
    IFS=: read -r gib want lower <<<"$pair"
    "$VRAM" plan --model hunyuanvideo-avatar --vram "${gib}GiB" --format json >"$tmp/p.json" 2>"$tmp/err"
    if python3 - "$tmp/p.json" "$want" "$lower" "$gib" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); want, lower, gib = sys.argv[2], sys.argv[3], int(sys.argv[4])
print(f"# {gib} GiB: tier {d['tier']}, {d['memory']}, {d['estimate']['peak_bytes'] / 2**30:.1f} GiB; why: {d['why']}")
assert d["tier"] == want or (lower and d["tier"] == lower and f"{want} needs " in d["why"]), d["tier"]
assert d["estimate"]["peak_bytes"] <= gib * 2**30
PY
    then ok "plan_hunyuan_${gib}gib"; else not_ok "plan_hunyuan_${gib}gib" "$(cat "$tmp/err")"; fi
done
"$VRAM" plan --model hunyuanvideo-avatar --vram 14GiB --format json >"$tmp/p.json"
if python3 - "$tmp/p.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
a = d["accelerate"]
e = d["estimate"]   # the GPU entry is room for weights: activations need the rest
assert abs(a["max_memory"]["0"] - (14 * 2**30 - e["activation_bytes"] - e["overhead_bytes"] - e["margin_bytes"])) <= 2
assert isinstance(a["max_memory"]["cpu"], int)
assert set(a["device_map"]) == {"transformer", "text_encoder", "clip_text", "audio_encoder", "vae"}
assert a["offload"] in ("none", "model", "sequential")
assert d["allocator"]["PYTORCH_CUDA_ALLOC_CONF"].startswith("expandable_segments:True")
assert d["params"]["resolution"] == "512x512" and d["params"]["memory"] == d["memory"]
PY
then ok plan_json_accelerate; else not_ok plan_json_accelerate "$(head -c 300 "$tmp/p.json")"; fi
expect plan_env 0 '^VRAM_PLAN_TIER=ultra-low$' -- "$VRAM" plan --model hunyuanvideo-avatar --vram 7GiB --format env
if (eval "$("$VRAM" plan --model hunyuanvideo-avatar --vram 7GiB --format shell)" &&
    [ "$VRAM_PLAN_RESOLUTION" = 256x256 ] && [[ $PYTORCH_CUDA_ALLOC_CONF == expandable_segments:True* ]]); then
    ok plan_shell_eval; else not_ok plan_shell_eval "eval did not set the variables"; fi
expect plan_device 0 'safe available on GPU 0' -- "$VRAM" plan --model hunyuanvideo-avatar --device 0 --sim "T4:16GiB:4GiB"
expect plan_device_tier 0 '^tier +low' -- "$VRAM" plan --model hunyuanvideo-avatar --sim "T4:16GiB:4GiB"
expect plan_device_says_simulated 0 'SIMULATED DEVICES \(backend sim\)' -- "$VRAM" plan --model sadtalker --sim "T4:14.7GiB:8.5GiB"
# The seed's SadTalker card: 14.7 GiB, 8.5 used by others, the default margin.
expect plan_seed_sadtalker_card 0 '^tier +standard' -- "$VRAM" plan --model sadtalker --sim "T4:14.7GiB:8.5GiB"
expect plan_device_missing 2 "device 3" -- "$VRAM" plan --model hunyuanvideo-avatar --device 3 --sim "T4:16GiB"
expect plan_forced_mode 0 '^tier +low \(forced\)' -- "$VRAM" plan --model hunyuanvideo-avatar --vram 40GiB --mode low
expect plan_forced_env 0 '^tier +ultra-low \(forced\)' -- env VRAM_MODE=ultra-low "$VRAM" plan --model hunyuanvideo-avatar --vram 40GiB
expect plan_forced_refused 3 "tier 'maximum-quality' \(forced\) needs [0-9.]+ GiB at the least \(sequential\), over the 20.0 GiB budget" -- \
    env VRAM_MODE=maximum-quality "$VRAM" plan --model hunyuanvideo-avatar --vram 20GiB
expect plan_forced_unknown 2 "tier 'huge' is not a tier of hunyuanvideo-avatar \(tiers: emergency" -- \
    "$VRAM" plan --model hunyuanvideo-avatar --vram 20GiB --mode huge
expect plan_nothing_fits 3 'nothing fits the 0.2 GiB budget: the lowest tier, emergency' -- \
    "$VRAM" plan --model hunyuanvideo-avatar --vram 256MiB
# A Hugging Face model id finds the profile that names it (hf_id), case
# aside; it is looked up, never read as a path.
expect plan_hf_id 0 '^model +wan2.2-ti2v-5b ' -- "$VRAM" plan --model Wan-AI/Wan2.2-TI2V-5B --vram 24GiB
expect estimate_hf_id 0 'wan2.2-t2v-a14b' -- "$VRAM" estimate --model wan-ai/wan2.2-t2v-a14b-diffusers --vram 80GiB
expect profiles_show_hf_id 0 '^hf_id +Wan-AI/Wan2.2-TI2V-5B ' -- "$VRAM" profiles show Wan-AI/Wan2.2-TI2V-5B
# Every shipped profile's hf_id (each checked against the public repository
# that downloads it; see the profile) finds that profile.
bad=""
for ini in "$VRAM_TOP"/profiles/*.ini; do
    name=$(sed -n 's/^name *= *//p' "$ini")
    for id in $(sed -n 's/^hf_id *= *\([^;]*\).*/\1/p' "$ini"); do
        "$VRAM" profiles show "$id" 2>&1 | grep -Eq "^$name( |\$)" || bad="$bad $id->?($name)"
    done
done
[ -z "$bad" ] && ok every_shipped_hf_id_finds_its_profile || not_ok every_shipped_hf_id_finds_its_profile "$bad"
expect plan_hf_id_unknown 2 "unknown model 'Wan-AI/Wan9': no profile names that Hugging Face id" -- \
    "$VRAM" plan --model Wan-AI/Wan9 --vram 24GiB
expect plan_hf_id_not_a_path 2 "is not a model name" -- "$VRAM" plan --model Wan-AI/../../etc/passwd --vram 24GiB

# In JSON, nothing fitting still gives one document: the smallest plan,
# the refusal, what it needs and what to change; the status is still 3.
"$VRAM" plan --model wan2.2-t2v-a14b --vram 12.5GiB --format json >"$tmp/nofit.json" 2>"$tmp/nofit.err"
rc=$?
expect plan_json_nothing_fits 0 '^ok$' -- python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert sys.argv[2] == "3", "exit " + sys.argv[2]
assert d["fits"] is False and d["tier"] == "480p" and d["memory"] == "sequential", d
assert d["budget_bytes"] == 13421772800 and d["needs_bytes"] > d["budget_bytes"], d
assert d["short_bytes"] == d["needs_bytes"] - d["budget_bytes"], d
assert "nothing fits the 12.5 GiB budget" in d["why"], d["why"]
params = [c["parameter"] for c in d["change"]]
assert params[-1] == "vram" and d["change"][-1]["to"] == d["needs_bytes"], d["change"]
assert "memory" in params and "resolution" in params, params
print("ok")' "$tmp/nofit.json" "$rc"
expect plan_json_nothing_fits_says_so 0 'nothing fits the 12.5 GiB budget' -- cat "$tmp/nofit.err"
"$VRAM" plan --model hunyuanvideo-avatar --vram 256MiB --json >"$tmp/nofit.json" 2>/dev/null
rc=$?
expect plan_json_nothing_fits_at_all 0 '^ok$' -- python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert sys.argv[2] == "3" and d["fits"] is False and d["tier"] == "emergency", (sys.argv[2], d["tier"])
assert [c["parameter"] for c in d["change"]] == ["vram"], d["change"]
print("ok")' "$tmp/nofit.json" "$rc"
expect plan_text_nothing_fits 3 '^vram plan: nothing fits' -- \
    "$VRAM" plan --model hunyuanvideo-avatar --vram 256MiB
expect plan_bad_format 2 "--format: 'yaml' is not one of text\|json\|env\|shell" -- \
    "$VRAM" plan --model hunyuanvideo-avatar --vram 8GiB --format yaml

# ---- optimize ----
expect optimize_example 0 'resolution +1920x1080 +832x480' -- \
    "$VRAM" optimize --model wan2.2-t2v-a14b --set resolution=1080p steps=60 duration=8 --vram 24GiB
expect optimize_memory_first 0 'memory +beefy +sequential' -- \
    "$VRAM" optimize --model wan2.2-t2v-a14b --set resolution=1080p steps=60 duration=8 --vram 24GiB
expect optimize_fits_already 0 'nothing to change' -- "$VRAM" optimize --model latentsync --vram 80GiB
expect optimize_nothing_fits 3 'the smallest peak the levers reach is' -- \
    "$VRAM" optimize --model hunyuanvideo-avatar tier=maximum-quality --vram 8GiB --level basic
expect optimize_json 0 '"fits":true,.*"suggestions":\[\{"parameter":"memory"' -- \
    "$VRAM" optimize --model wan2.2-t2v-a14b --set resolution=1080p --vram 24GiB --json
expect optimize_bad_level 2 "--level: 'extreme' is not one of basic\|balanced\|maximum" -- \
    "$VRAM" optimize --model latentsync --vram 8GiB --level extreme
expect optimize_max_time 0 'steps|resolution|cfg' -- \
    "$VRAM" optimize --model wan2.2-ti2v-5b --vram 80GiB --level maximum --max-time 1m

# ---- calibrate ----
cp "$(dirname "$0")/latentsync_runs.csv" "$tmp/runs.csv"
before=$(md5sum "$profiles/latentsync.ini")
mkdir -p "$tmp/cal"
expect calibrate_report 0 'median absolute error: memory [0-9.]+%' -- \
    "$VRAM" calibrate --model latentsync --from "$tmp/runs.csv" --out "$tmp/cal/latentsync.ini"
expect calibrate_wrote 0 "^wrote $tmp/cal/latentsync.ini" -- \
    "$VRAM" calibrate --model latentsync --from "$tmp/runs.csv" --out "$tmp/cal/latentsync.ini"
expect calibrate_copy_loads 0 'latentsync .*\[calibrated\]' -- "$VRAM" profiles --profiles "$tmp/cal"
cp "$tmp/cal/latentsync.ini" "$tmp/cal/other.ini"
expect calibrate_copy_name_checked 2 "other.ini: the file is other.ini but names itself 'latentsync'" -- \
    "$VRAM" estimate --model other --profiles "$tmp/cal"
expect calibrate_default_place 0 "wrote $tmp/config/vram/profiles/latentsync.ini" -- \
    "$VRAM" calibrate --model latentsync --from "$tmp/runs.csv"
expect calibrate_found_first 0 "calibrated +[0-9]+ rows" -- "$VRAM" profiles show latentsync
expect calibrate_never_over_shipped 1 'never writes over it' -- \
    "$VRAM" calibrate --profile "$profiles/latentsync.ini" --from "$tmp/runs.csv" --out "$profiles/latentsync.ini"
if [ "$(md5sum "$profiles/latentsync.ini")" = "$before" ]; then ok calibrate_shipped_unchanged; else not_ok calibrate_shipped_unchanged "the shipped profile changed"; fi
echo 'cfg,peak' >"$tmp/bad.csv"; echo 'on,12XB' >>"$tmp/bad.csv"
expect calibrate_bad_csv 2 "bad.csv:2: peak: '12XB' is not a size" -- "$VRAM" calibrate --model latentsync --from "$tmp/bad.csv" --dry-run
expect calibrate_needs_from 2 'give --from FILE \(a CSV of measured runs\) or --from-history' -- "$VRAM" calibrate --model latentsync
expect calibrate_json 0 '"rows":\[\{"observed_bytes":' -- "$VRAM" calibrate --model latentsync --from "$tmp/runs.csv" --dry-run --json

# The GPU check's pipeline (profiles, CSV, calibrate on half, predict the
# other half) on made-up rows: it must hold together where no GPU is.
if python3 "$VRAM_TOP/tests/gpu/plan_workloads.py" --vram "$VRAM" --out "$tmp" --synthetic >"$tmp/gpu.out" 2>&1 &&
    [ "$(grep -c '^ok - ' "$tmp/gpu.out")" = 6 ]; then
    ok gpu_check_pipeline_on_made_up_rows
else
    not_ok gpu_check_pipeline_on_made_up_rows "$(grep -v '^ok' "$tmp/gpu.out" | head -5)"
fi

# ---- help tells the truth ----
for c in profiles estimate plan optimize calibrate; do
    expect "help_$c" 0 "^usage: vram $c " -- "$VRAM" "$c" --help
done
expect help_top 0 'optimize +find the cheapest change' -- "$VRAM" --help

# ---- host RAM (issue 11): --host-ram on the command line counts, for a
# budget given with --vram too; a plan whose offload pins more than the host
# has does not fit, says so and says what does; optimize suggests only that.
expect host_ram_flag_plan_refused 3 'offload needs 63.2 GiB of host RAM, over the 23.5 GiB this host has \(--host-ram\); what fits \(vram optimize\): precision=int8 \(beefy' -- \
    "$VRAM" plan --model wan2.2-t2v-a14b --vram 80GiB --host-ram 23.5GiB
expect host_ram_enough_fits 0 '^memory +lightweight' -- "$VRAM" plan --model wan2.2-t2v-a14b --vram 80GiB --host-ram 64GiB
expect host_ram_bad_value 2 "host-ram: 'lots' is not auto, off or a size" -- "$VRAM" plan --model wan2.2-t2v-a14b --vram 80GiB --host-ram lots
expect host_ram_optimize_suggests_what_fits 0 'precision +bf16 +int8' -- \
    "$VRAM" optimize --model wan2.2-t2v-a14b --vram 80GiB --host-ram 23.5GiB
if grep -q 'lightweight' "$tmp/out"; then not_ok host_ram_optimize_no_offload "$(head -c 400 "$tmp/out")"; else ok host_ram_optimize_no_offload; fi
expect host_ram_optimize_with_room_offloads 0 'memory +beefy +lightweight' -- \
    "$VRAM" optimize --model wan2.2-t2v-a14b --vram 80GiB --host-ram 64GiB
finish
