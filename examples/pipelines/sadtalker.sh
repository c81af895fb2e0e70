#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/pipelines/sadtalker.sh - SadTalker (github.com/OpenTalker/SadTalker)
# under vram, unchanged: the talking head from one photo and a voice.
#
# What you type, in a SadTalker checkout:
#
#   vram run --model sadtalker -- python inference.py \
#       --driven_audio voice.wav --source_image face.png --result_dir results {args}
#
# {args} is the plan's settings in inference.py's own flags (the profile's
# [args]): --size 256|512, --batch_size N, and --enhancer gfpgan, or no
# --enhancer at all on the tier and rung that leave GFPGAN out.  After an
# out-of-memory the next rung changes the command: batch 1, then no
# enhancer, then the 256px renderer.  Here SADTALKER is the script (the
# tests point it at a stand-in with the same options), AUDIO and IMAGE the
# inputs.
set -eu
exec "${VRAM:-vram}" run --model sadtalker -- "${PYTHON:-python3}" "${SADTALKER:-inference.py}" \
    --driven_audio "${AUDIO:-voice.wav}" --source_image "${IMAGE:-face.png}" --result_dir "${OUT:-results}" {args}
