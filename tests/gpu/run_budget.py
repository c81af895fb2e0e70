# SPDX-License-Identifier: MIT
"""tests/gpu/run_budget.py - a PyTorch job for `vram run` on a real GPU.

Keeps to the budget vram gives it (VRAM_BUDGET_BYTES, through PyTorch's
per-process memory fraction), allocates SIZE bytes, holds them a moment so
vram's sampler sees them, and prints what PyTorch reserved at most.  Asked
for more than its budget, it dies of PyTorch's own out-of-memory error.
    python3 run_budget.py SIZE_BYTES [--context-only]
"""
import json
import os
import sys
import time

import torch

torch.zeros(1, device="cuda")                 # the CUDA context
if "--context-only" in sys.argv:
    time.sleep(1.5)
    print(json.dumps({"max_reserved": 0}))
    sys.exit(0)
free, total = torch.cuda.mem_get_info()
budget = int(os.environ["VRAM_BUDGET_BYTES"])
torch.cuda.set_per_process_memory_fraction(min(1.0, budget / total))
x = torch.empty(int(sys.argv[1]), dtype=torch.uint8, device="cuda")
x.fill_(1)
torch.cuda.synchronize()
time.sleep(1.5)
print(json.dumps({"max_reserved": torch.cuda.max_memory_reserved()}), flush=True)
