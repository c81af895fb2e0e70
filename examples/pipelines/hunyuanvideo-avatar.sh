#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/pipelines/hunyuanvideo-avatar.sh - HunyuanVideo-Avatar
# (github.com/Tencent-Hunyuan/HunyuanVideo-Avatar) under vram, unchanged:
# audio-driven avatars, the videos listed in a CSV.
#
# What you type, in a HunyuanVideo-Avatar checkout:
#
#   vram run --model hunyuanvideo-avatar -- python3 hymm_sp/sample_gpu_poor.py \
#       --input hunyuan-inputs.csv --ckpt weights/ckpts/.../mp_rank_00_model_states_fp8.pt \
#       --save-path results {args}
#
# The CSV (hunyuan-inputs.csv here) has a row per video: videoid, image,
# audio, prompt, fps, as sample_gpu_poor.py reads --input.  {args} is the
# plan in its flags: --image-size, --sample-n-frames, --infer-steps,
# --cfg-scale, --cpu-offload for the offloading modes and --use-fp8 on the
# 8-bit rung (give --ckpt the fp8 checkpoint).  Here HUNYUAN is the script
# (the tests point it at a stand-in with the same options).
set -eu
exec "${VRAM:-vram}" run --model hunyuanvideo-avatar -- "${PYTHON:-python3}" \
    "${HUNYUAN:-hymm_sp/sample_gpu_poor.py}" --input "${INPUTS:-hunyuan-inputs.csv}" \
    --ckpt "${CKPT:-weights/ckpts/hunyuan-video-t2v-720p/transformers/mp_rank_00_model_states_fp8.pt}" \
    --save-path "${OUT:-results}" {args}
