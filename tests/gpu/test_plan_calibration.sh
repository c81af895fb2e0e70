# SPDX-License-Identifier: MIT
# tests/gpu/test_plan_calibration.sh - on a real GPU, PyTorch workloads
# shaped like the profiles' components (a wav2vec2-like audio encoder, a
# T5-like text encoder, a convolutional video denoiser) at several sizes:
# their real peaks calibrate a profile on half of the sizes, which must
# predict the other half within 10% (median) and never short of the real
# peak past its safety margin.  Skips without a GPU or PyTorch.
. "$(dirname "$0")/lib.sh"
need_gpu
need_torch
export XDG_CONFIG_HOME="$tmp/config"
python3 "$(dirname "$0")/plan_workloads.py" --vram "$VRAM" --out "$tmp"
