# SPDX-License-Identifier: MIT
"""examples/demo/pipeline.py - what the demo's pipelines share: the job's
memory budget, a card to hold memory on, and the progress bar vram reads.

A program tells a Job its pipeline as it goes: load weights (an encoder, a
denoiser, a decoder), compute steps that hold activations besides them,
unload what is no longer needed.  The card under the Job is either

  - a real GPU through PyTorch: every allocation is a tensor of that size,
    each step does real matmul work on it, and PyTorch's own allocator is
    capped at the budget (set_per_process_memory_fraction), so a stage that
    needs more dies of PyTorch's real out-of-memory error; or
  - vram's simulated card (VRAM_BACKEND=sim, as vram sets it for jobs on
    simulated cards): every allocation is held through vram.sim_set_usage
    and one past the budget is refused, as the fraction refuses it; a step
    takes its time in sleep.

Either way an out-of-memory ends the program with PyTorch's message on
stderr ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate ..."),
which is what vram's runner recognises before it retries on the next rung.
The budget is VRAM_BUDGET_BYTES (vram sets it for every job) or --vram;
without either the card's whole memory.  Run outside vram with no GPU, a
program gets a simulated 24 GiB card of its own.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python"))
import vram  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
# What a process holds outside PyTorch's allocator once it uses CUDA: the
# context, cuBLAS and the kernels.  On a GPU it is kept out of the
# allocator's cap; on the simulated card it is held like any allocation.
CONTEXT_BYTES = 768 * MiB


def gib(nbytes):
    return "%.2f GiB" % (nbytes / GiB)


class OutOfMemoryError(RuntimeError):
    """PyTorch's out-of-memory error, as the simulated card raises it."""


# ---- the progress bar ------------------------------------------------------------

class Progress:
    """One tqdm-style bar for the whole job on stderr ("37%|###  | 22/60");
    vram's runner reads the last percentage for `vram queue` and the
    dashboard.  The label says the stage."""

    def __init__(self, name, total):
        self.name, self.total, self.n = name, max(1, total), 0
        self.t0 = time.monotonic()
        self.stage = ""

    def set_stage(self, stage):
        if self.stage:
            sys.stderr.write("\n")
        self.stage = stage
        self.show()

    def step(self, n=1):
        self.n = min(self.total, self.n + n)
        self.show()

    def show(self):
        frac = self.n / self.total
        bar = ("#" * int(frac * 20)).ljust(20)
        spent = time.monotonic() - self.t0
        rate = self.n / spent if spent > 0 else 0.0
        sys.stderr.write("\r%s [%s]: %3d%%|%s| %d/%d [%.1fs, %.1fit/s]" % (
            self.name, self.stage, int(frac * 100), bar, self.n, self.total, spent, rate))
        sys.stderr.flush()

    def close(self):
        sys.stderr.write("\n")
        sys.stderr.flush()


# ---- the cards ------------------------------------------------------------------------

class Card:
    """Allocations by key; the card holds the only reference to each, so
    freeing one really frees it."""

    def __init__(self, budget, total):
        self.total = total
        self.budget = budget or total
        self.live = {}
        self.next_key = 0

    def alloc(self, nbytes):
        self.next_key += 1
        self.live[self.next_key] = self._make(nbytes)
        return self.next_key

    def free(self, key):
        self._drop(self.live.pop(key))


class SimCard(Card):
    """vram's simulated card: what is allocated is held through
    vram.sim_set_usage, and refused past the budget as PyTorch's per-process
    memory fraction refuses it on a GPU."""

    mode = "sim"

    def __init__(self, budget):
        self.own_state = None
        if os.environ.get("VRAM_BACKEND") != "sim" or not os.environ.get("VRAM_SIM_STATE"):
            # Not a job on vram's simulated cards: a card of our own.
            self.own_state = tempfile.mkdtemp(prefix="vram-demo-")
            vram.configure(backend="sim", sim="RTX 4090:24GiB", sim_state=self.own_state)
        super().__init__(budget, vram.status()["devices"][0]["total_bytes"])
        self.held = self.peak = 0
        self.alloc(CONTEXT_BYTES)                       # what creating the CUDA context takes

    def _make(self, nbytes):
        if self.held + nbytes > self.budget:
            raise OutOfMemoryError(
                "CUDA out of memory. Tried to allocate %s. GPU 0 has a total capacity of %s of "
                "which %s is free. Including non-PyTorch memory, this process has %s memory in "
                "use. (Simulated card; this process may use %s.)" % (
                    gib(nbytes), gib(self.total), gib(self.budget - self.held), gib(self.held),
                    gib(self.budget)))
        try:
            vram.sim_set_usage(self.held + nbytes)
        except vram.Error as e:                         # the card itself is full
            if e.name != "VRAM_EOOM":
                raise
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate %s. GPU 0 has a total "
                                   "capacity of %s of which 0 bytes is free. (%s)"
                                   % (gib(nbytes), gib(self.total), e)) from e
        self.held += nbytes
        self.peak = max(self.peak, self.held)
        return nbytes

    def _drop(self, nbytes):
        self.held -= nbytes
        vram.sim_set_usage(self.held)

    def work(self, keys, seconds):
        time.sleep(seconds)

    def report(self):
        return {"mode": self.mode, "budget_bytes": self.budget, "peak_bytes": self.peak}

    def close(self):
        vram.sim_set_usage(0)
        if self.own_state:
            vram.configure()
            for f in pathlib.Path(self.own_state).iterdir():
                f.unlink()
            os.rmdir(self.own_state)


class TorchCard(Card):
    """Tensors on the GPU, with PyTorch's allocator capped at the budget less
    the context: an allocation past it is PyTorch's own out-of-memory."""

    mode = "torch"

    def __init__(self, budget):
        import torch
        self.torch = torch
        self.dev = torch.device("cuda:0")
        torch.zeros(1, device=self.dev)                 # the CUDA context
        super().__init__(budget, torch.cuda.get_device_properties(self.dev).total_memory)
        cap = max(self.budget - CONTEXT_BYTES, 0)
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap / self.total), self.dev)
        gen = torch.Generator(device=self.dev).manual_seed(0)
        # The layer every step multiplies activations with (32 MiB).
        self.weight = torch.randn(4096, 4096, device=self.dev, dtype=torch.float16,
                                  generator=gen) / 64

    def _make(self, nbytes):
        t = self.torch.empty(nbytes // 2, dtype=self.torch.float16, device=self.dev)
        t.uniform_(-1, 1)                               # written, not only reserved
        return t

    def _drop(self, tensor):
        del tensor
        self.torch.cuda.empty_cache()                   # as the pipelines do after each step

    def work(self, keys, seconds):
        """A 4096-wide matmul over the first rows of each tensor; then the rest
        of the step's time, so the demo keeps the pace it has on the simulated
        card and the dashboard can follow it."""
        t0 = time.monotonic()
        for k in keys:
            t = self.live[k]
            rows = min(t.numel() // 4096, 8192)
            if rows:
                x = t[:rows * 4096].view(rows, 4096)
                x.copy_(self.torch.tanh(x @ self.weight))
        self.torch.cuda.synchronize()
        left = seconds - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)

    def report(self):
        return {"mode": self.mode, "budget_bytes": self.budget,
                "max_reserved_bytes": self.torch.cuda.max_memory_reserved(),
                "context_allowance_bytes": CONTEXT_BYTES}

    def close(self):
        self.live.clear()
        self.torch.cuda.empty_cache()


def torch_ready():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


# ---- a job ------------------------------------------------------------------------------

def arguments(doc):
    """The options every demo program takes; it adds its own."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--vram", help="the budget when not run by vram (default: the card's memory)")
    p.add_argument("--sim", action="store_true", help="use the simulated card even with a GPU")
    p.add_argument("--pace", type=float, default=1.0, help="multiply every step's time by this")
    return p


class Job:
    """One run of a pipeline: its card, its progress bar, and what it has
    loaded.  The program calls load, unload and compute in order."""

    def __init__(self, name, args, total_steps):
        env = os.environ.get("VRAM_BUDGET_BYTES")
        budget = int(env) if env else vram.parse_size(args.vram, "--vram") if args.vram else 0
        simulated = args.sim or os.environ.get("VRAM_BACKEND") == "sim" or not torch_ready()
        self.card = SimCard(budget) if simulated else TorchCard(budget)
        self.name, self.pace = name, args.pace
        self.bar = Progress(name, total_steps)
        self.loaded = []

    def load(self, label, nbytes, seconds=0.1):
        """Weights that stay on the card until unload()."""
        self.bar.set_stage("load " + label)
        key = self.card.alloc(nbytes)
        self.loaded.append(key)
        self.card.work([], seconds * self.pace)
        return key

    def unload(self, key):
        """Moves weights off the card (to the CPU, in a real pipeline)."""
        self.loaded.remove(key)
        self.card.free(key)

    def compute(self, label, steps, seconds, per_step=0):
        """`steps` steps, each holding `per_step` bytes of activations besides
        the weights, working on them for `seconds`."""
        self.bar.set_stage(label)
        for _ in range(steps):
            act = self.card.alloc(per_step) if per_step else None
            self.card.work([act] if act else self.loaded[-1:], seconds * self.pace)
            if act:
                self.card.free(act)
            self.bar.step()


def main(name, args, total_steps, body):
    """Runs body(job); returns the exit status: 0, or 1 after PyTorch's
    out-of-memory message (which vram's runner reads) on stderr.  A run
    that finished prints "vram-demo: {...}" on stdout: the card's mode, the
    budget, and what it held at most (peak_bytes on the simulated card,
    max_reserved_bytes on the GPU), which the tests hold vram's record to."""
    job = Job(name, args, total_steps)
    try:
        body(job)
    except Exception as e:
        if type(e).__name__ != "OutOfMemoryError":      # ours, or torch.OutOfMemoryError
            raise
        job.bar.close()
        sys.stderr.write("torch.OutOfMemoryError: %s\n" % str(e).replace("\n", " "))
        job.card.close()
        return 1
    job.bar.close()
    print("vram-demo: " + json.dumps(dict(job.card.report(), job=name)), flush=True)
    job.card.close()
    return 0
