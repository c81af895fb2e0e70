#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/pipelines/latentsync.sh - LatentSync (github.com/bytedance/LatentSync)
# under vram, unchanged: lips synced to new speech.
#
# Once, in a LatentSync checkout (the profile's {args} names a U-Net config
# per resolution and window of frames, data.resolution and data.num_frames,
# which LatentSync reads from that file, not from flags):
#
#   python3 /path/to/vram/examples/pipelines/latentsync/make_configs.py
#
# Then what you type:
#
#   vram run --model latentsync -- python -m scripts.inference \
#       --inference_ckpt_path checkpoints/latentsync_unet.pt \
#       --video_path in.mp4 --audio_path speech.wav --video_out_path out.mp4 {args}
#
# {args} becomes --unet_config_path configs/unet/vram/512px_16f.yaml
# --inference_steps 20 --guidance_scale 1.5 (or 1.0: no unconditional pass)
# as the plan says; the rungs drop guidance, then halve the window.  Here
# LATENTSYNC is the script (python -m scripts.inference by default; the
# tests point it at a stand-in with the same options).
set -eu
if [ -n "${LATENTSYNC:-}" ]; then set -- "$LATENTSYNC"; else set -- -m scripts.inference; fi
exec "${VRAM:-vram}" run --model latentsync -- "${PYTHON:-python3}" "$@" \
    --inference_ckpt_path "${CKPT:-checkpoints/latentsync_unet.pt}" --video_path "${VIDEO:-in.mp4}" \
    --audio_path "${AUDIO:-speech.wav}" --video_out_path "${OUT:-out.mp4}" {args}
