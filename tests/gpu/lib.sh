# SPDX-License-Identifier: MIT
# tests/gpu/lib.sh - shared by the GPU checks: skip cleanly without a GPU.
. "$(dirname "$0")/../cli/lib.sh"

# need_gpu: exits 77 with a skip line unless nvidia-smi sees a GPU, and
# python3 (which every check's helper is written in) is here.
need_gpu() {
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        echo "skip - $file/all: no nvidia-smi on this machine (no NVIDIA driver)"; exit 77
    fi
    if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
        echo "skip - $file/all: nvidia-smi lists no GPU"; exit 77
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        echo "skip - $file/all: no python3 on this machine (the checks' helpers are Python, ctypes only)"; exit 77
    fi
}

# need_torch: exits 77 unless python3 can import torch with CUDA.
need_torch() {
    if ! python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        echo "skip - $file/all: PyTorch with CUDA is not importable here"; exit 77
    fi
}
