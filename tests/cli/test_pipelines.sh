# SPDX-License-Identifier: MIT
# tests/cli/test_pipelines.sh - each recipe of examples/pipelines/, as a
# user types it, against a stand-in for the real script (the same options,
# memory held on the simulated card): the command gets the pipeline's own
# flags for the tier and memory mode planned ({args}), an out-of-memory
# moves to a rung that changes the command (rungs that would not are
# passed over), and the last attempt's flags are the ones the stand-in's
# parser read.  The Wan avatar batch goes through vramd with
# `vram submit --csv`.
. "$(dirname "$0")/lib.sh"
if [ "$(basename "$VRAM_BUILD")" != build ]; then
    echo "skip - $file/all: the recipes run Python stand-ins that load libvram, which a sanitizer build cannot load into python3 (checked in the plain build)"; exit 77
fi
ex=$VRAM_TOP/examples/pipelines
standins=$ex/standins
export PYTHONPATH="$VRAM_TOP/python" VRAM_LIBRARY="$VRAM_BUILD/lib/libvram.so" VRAM_BACKEND=sim \
       VRAM_HISTORY=- VRAM_PROFILES="$VRAM_TOP/profiles" VRAM_INTERVAL=20ms STANDIN_PACE=0.02 \
       VRAM_HOST_RAM=512GiB         # the recipes' hosts have the RAM their offloading needs
unset VRAM_MODE
# Python loads this build's library: under a sanitizer, its runtime first.
san=$(ldd "$VRAM_LIBRARY" | awk '/lib(asan|tsan|ubsan)/ { print $3 }' | paste -sd: -)
export LD_PRELOAD="$san" ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

# recipe NAME CARD SCRIPT [VAR=VALUE...]: runs examples/pipelines/NAME.sh
# on a simulated CARD, with VRAM set to the binary under test; output in
# $tmp/out.
recipe() {
    local name=$1 card=$2
    shift 2
    (cd "$tmp/work" && env VRAM="$VRAM" VRAM_SIM="$card" "$@" sh "$ex/$name.sh") >"$tmp/out" 2>&1
    echo $? >"$tmp/rc"
    sed 's/\r/\n/g' "$tmp/out" | grep -E '^(vram run|standin)' | cut -c1-300 | sed 's/^/# /'
}

# the_standin_read KEY=JSON...: the stand-in's line has these options.
the_standin_read() {
    python3 - "$tmp/out" "$@" <<'PY'
import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith("standin: ")]
assert len(line) == 1, "%d standin lines" % len(line)
got = json.loads(line[0][len("standin: "):])["args"]
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    assert got.get(k) == json.loads(v), "%s: %r, wanted %s" % (k, got.get(k), v)
PY
}

mkdir -p "$tmp/work/inputs"
touch "$tmp/work/voice.wav" "$tmp/work/face.png" "$tmp/work/in.mp4" "$tmp/work/speech.wav" \
      "$tmp/work/inputs/presenter.png" "$tmp/work/inputs/presenter.wav"

# ---- SadTalker on a 6 GiB card: batch 1, then no enhancer at all ----------
recipe sadtalker "T4:6GiB" SADTALKER="$standins/sadtalker_inference.py"
[ "$(cat "$tmp/rc")" = 0 ] && ok sadtalker_succeeds || not_ok sadtalker_succeeds "exit $(cat "$tmp/rc"): $(tail -c 600 "$tmp/out")"
expect_lines sadtalker_first_with_gfpgan 'attempt 1: .* --size 256 --batch_size 2 --enhancer gfpgan on GPU' 1
expect_lines sadtalker_batch_rung 'attempt 2: .* --batch_size 1 --enhancer gfpgan on GPU' 1
expect_lines sadtalker_offload_rung_passed_over 'rung 3 passed over: it makes the same command as attempt 2' 1
expect_lines sadtalker_enhancer_dropped 'attempt 3: .*--result_dir results --size 256 --batch_size 1 on GPU' 1
the_standin_read size=256 batch_size=1 enhancer=null preprocess='"crop"' &&
    ok sadtalker_standin_read_the_plan || not_ok sadtalker_standin_read_the_plan "see above"

# ---- LatentSync on a 16 GiB card: its quality tier, guidance off after the first
cp -r "$ex/latentsync/configs" "$tmp/work/"
(cd "$tmp/work" && python3 "$ex/latentsync/make_configs.py" >"$tmp/configs.out") &&
    [ "$(wc -l <"$tmp/configs.out")" = 6 ] && grep -q 'num_frames: 8' "$tmp/work/configs/unet/vram/512px_8f.yaml" &&
    ok latentsync_configs_written || not_ok latentsync_configs_written "$(cat "$tmp/configs.out")"
recipe latentsync "RTX 4080:16GiB" LATENTSYNC="$standins/latentsync_inference.py"
[ "$(cat "$tmp/rc")" = 0 ] && ok latentsync_succeeds || not_ok latentsync_succeeds "exit $(cat "$tmp/rc"): $(tail -c 600 "$tmp/out")"
expect_lines latentsync_first_with_guidance 'attempt 1: .* --unet_config_path configs/unet/vram/512px_16f.yaml --inference_steps 50 --guidance_scale 1.5 on GPU' 1
expect_lines latentsync_oom_then_no_guidance 'attempt 2: .* --guidance_scale 1.0 on GPU' 1
the_standin_read guidance_scale=1.0 num_frames=16 resolution=512 inference_steps=50 &&
    ok latentsync_standin_read_the_plan || not_ok latentsync_standin_read_the_plan "see above"

# ---- Wan2.2 T2V-A14B on a 48 GiB card: 480p offloaded, at once -----------
# generate.py has one offload flag, --offload_model True, for lightweight and
# sequential alike, so a plan for its command knows only beefy (102 GiB at
# 720p) and lightweight (59.9 GiB): 720p fits neither within 43.2 GiB, and
# 480p offloaded (40.9 GiB, published ~41) runs first time.  (The planner
# used to pick sequential at 720p, 31.8 GiB, which the command could not
# express: three attempts, the last out of memory.)
recipe wan2.2 "L40S:48GiB" WAN_GENERATE="$standins/wan_generate.py"
[ "$(cat "$tmp/rc")" = 0 ] && ok wan_succeeds || not_ok wan_succeeds "exit $(cat "$tmp/rc"): $(tail -c 600 "$tmp/out")"
expect_lines wan_first_at_480p_offloading 'attempt 1: .* --size 832\*480 --frame_num 81 --sample_steps 40 --offload_model True --convert_model_dtype on GPU 0 \(L40S\) with 40\.9 GiB, tier 480p' 1
expect_lines wan_one_attempt 'attempt 2:' 0
the_standin_read size='"832*480"' frame_num=81 sample_steps=40 offload_model=true t5_cpu=false &&
    ok wan_standin_read_the_plan || not_ok wan_standin_read_the_plan "see above"
# On an 80 GiB card 720p offloaded fits: lightweight, never a sequential plan.
recipe wan2.2 "H100:80GiB" WAN_GENERATE="$standins/wan_generate.py"
[ "$(cat "$tmp/rc")" = 0 ] && ok wan_720p_succeeds || not_ok wan_720p_succeeds "exit $(cat "$tmp/rc"): $(tail -c 600 "$tmp/out")"
expect_lines wan_720p_offloading 'attempt 1: .* --size 1280\*720 .* --offload_model True .* with 59\.9 GiB, tier 720p' 1

# ---- HunyuanVideo-Avatar on a 24 GiB card, its CSV of image, audio, prompt --
cp "$ex/hunyuan-inputs.csv" "$tmp/work/"
recipe hunyuanvideo-avatar "RTX 4090:24GiB" HUNYUAN="$standins/hunyuan_avatar_sample.py"
[ "$(cat "$tmp/rc")" = 0 ] && ok hunyuan_succeeds || not_ok hunyuan_succeeds "exit $(cat "$tmp/rc"): $(tail -c 600 "$tmp/out")"
expect_lines hunyuan_first_with_its_flags 'attempt 1: .* --image-size [0-9]+ --sample-n-frames [0-9]+ --infer-steps [0-9]+ --cfg-scale 7\.5 --cpu-offload( --use-fp8)? on GPU' 1
# What the stand-in read is what the last attempt's command said, the CSV's one video included.
last=$(grep -o 'attempt [0-9]*: .* on GPU' "$tmp/out" | tail -1)
size=$(echo "$last" | sed -n 's/.*--image-size \([0-9]*\).*/\1/p')
frames=$(echo "$last" | sed -n 's/.*--sample-n-frames \([0-9]*\).*/\1/p')
fp8=$(echo "$last" | grep -q -- '--use-fp8' && echo true || echo false)
the_standin_read videos='["presenter"]' image_size="$size" sample_n_frames="$frames" use_fp8="$fp8" cpu_offload=true &&
    ok hunyuan_standin_read_the_csv || not_ok hunyuan_standin_read_the_csv "see above"
# The stand-in refuses what the real script would: a CSV without its columns.
printf 'videoid,image\nx,face.png\n' >"$tmp/work/bad.csv"
recipe hunyuanvideo-avatar "RTX 4090:24GiB" HUNYUAN="$standins/hunyuan_avatar_sample.py" INPUTS=bad.csv
grep -q 'no column audio, prompt, fps' "$tmp/out" && ok hunyuan_csv_checked || not_ok hunyuan_csv_checked "$(tail -c 400 "$tmp/out")"

# ---- vram plan shows the words -----------------------------------------------------
expect plan_shows_args 0 '^args +--size 256 --batch_size 2 --enhancer gfpgan$' -- \
    env VRAM_SIM="T4:16GiB" "$VRAM" plan --model sadtalker --vram 6GiB
expect plan_json_has_args 0 '"args":\["--size","256","--batch_size","1"\]' -- \
    env VRAM_SIM="T4:16GiB" "$VRAM" plan --model sadtalker --vram 6GiB --set tier=minimal --format json

expect profile_shows_args 0 'skip=enhance +\(no flag\)' -- "$VRAM" profiles show sadtalker

# ---- {args} where it cannot stand ----------------------------------------------
expect args_needs_a_model 2 '\{args\} in the command needs a model' -- \
    env VRAM_SIM="T4:16GiB" "$VRAM" run --vram 1GiB -- true {args}
expect args_is_a_word 2 "must be a word of its own .* 'x\{args\}'" -- \
    env VRAM_SIM="T4:16GiB" "$VRAM" run --model sadtalker -- true x{args}
expect args_needs_an_args_section 2 'profile generic-diffusion has no \[args\] section' -- \
    env VRAM_SIM="T4:16GiB" "$VRAM" run --model generic-diffusion -- true {args}
# In a shell's script each word is one word, quoted: '*' is not a glob there.
expect args_in_a_script 0 '^<--size> <832\*480>' -- \
    env VRAM_SIM="T4:16GiB" "$VRAM" run --model wan2.2-ti2v-5b --set tier=480p --set memory=lightweight -- \
    sh -c 'printf "<%s> " {args}; echo'

# ---- the Wan avatar batch through vramd ------------------------------------------
. "$(dirname "$0")/../daemon/daemon.sh"
# 720p of TI2V-5B offloaded is 22.9 GiB: a 32 GiB card takes it (a 24 GiB
# one plans every row at 480p, generate.py having no sequential mode).
export VRAM_HISTORY=$tmp/history.db VRAM_SIM="RTX 5090:32GiB"
start_daemon && ok daemon_starts || { not_ok daemon_starts "$(tail -5 "$tmp/daemon.log")"; finish; }
if (cd "$tmp/work" && WAN_GENERATE="$standins/wan_generate.py" "$VRAM" submit --csv "$ex/wan-avatar-batch.csv") \
        >"$tmp/jobs" 2>"$tmp/submit.err"; then
    ok batch_queued
else
    not_ok batch_queued "$(cat "$tmp/submit.err")"
fi
expect batch_succeeds 0 '' -- "$VRAM" wait --all --timeout 120 --quiet
"$VRAM" queue >"$tmp/queue.txt" 2>&1
sed 's/^/# /' "$tmp/queue.txt"
cat "$tmp"/queue.db.logs/*.log 2>/dev/null | grep '^standin: ' >"$tmp/out"
expect_lines batch_three_videos '"script": "wan-generate"' 3
expect_lines batch_720p_rows '"size": "1280\*704"' 2
expect_lines batch_480p_row '"size": "832\*480"' 1
expect_lines batch_images_as_given '"image": "faces/(ana|ben|cleo)\.png"' 3
# A plain command through vramd: the runner splices {args} the same way; a
# job whose {args} has no model is refused at its submit, saying why.
one=$(cd "$tmp/work" && "$VRAM" submit --model sadtalker -- python3 "$standins/sadtalker_inference.py" \
      --driven_audio voice.wav --source_image face.png {args})
expect daemon_job_args_without_model 2 "^vram submit: not queued: \{args\} in the command needs a model" -- \
    "$VRAM" submit --vram 1GiB -- echo {args}
"$VRAM" wait "$one" --timeout 60 --quiet >/dev/null 2>&1
grep -q -- '--size 512 --batch_size 4 --enhancer gfpgan on GPU' "$tmp/queue.db.logs/$one.log" &&
    grep -q '^standin: ' "$tmp/queue.db.logs/$one.log" && ok daemon_job_gets_args ||
    not_ok daemon_job_gets_args "$(tail -c 600 "$tmp/queue.db.logs/$one.log" 2>&1)"
stop_daemon
finish
