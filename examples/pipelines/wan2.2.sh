#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/pipelines/wan2.2.sh - Wan2.2 text to video (github.com/Wan-Video/Wan2.2)
# under vram, unchanged.
#
# What you type, in a Wan2.2 checkout:
#
#   vram run --model wan2.2-t2v-a14b -- python generate.py --task t2v-A14B \
#       --ckpt_dir ./Wan2.2-T2V-A14B --prompt "Two cats boxing on a stage" {args}
#
# {args} is the plan in generate.py's own flags: --size 1280*720 (its
# WIDTH*HEIGHT), --frame_num 81, --sample_steps 40, and the memory mode as
# its offload flags (--offload_model False for beefy, True for the others),
# --t5_cpu when the text encoder goes to the CPU, --convert_model_dtype.
# After an out-of-memory the next rung that changes the command runs: rungs
# generate.py has no flag for (VAE tiling, streaming, 8-bit weights) are
# passed over.  Here WAN_GENERATE is the script (the tests point it at a
# stand-in with the same options), WAN_CKPT the checkpoint folder.
set -eu
exec "${VRAM:-vram}" run --model wan2.2-t2v-a14b -- "${PYTHON:-python3}" "${WAN_GENERATE:-generate.py}" \
    --task t2v-A14B --ckpt_dir "${WAN_CKPT:-./Wan2.2-T2V-A14B}" \
    --prompt "${PROMPT:-Two anthropomorphic cats in comfy boxing gear fight on a spotlighted stage.}" {args}
