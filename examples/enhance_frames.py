#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/enhance_frames.py - the SadTalker + face-enhancer case, end to
end, under vram's scheduler.

A talking-head video comes out of its renderer as 150 frames, and each goes
through a face enhancer.  One at a time leaves most of the card idle; all at
once dies of CUDA out-of-memory.  Here each frame is a task with an estimate
of the memory it needs: vram runs as many at once as fit and never more,
retries a frame on a cheaper rung (tiles instead of the whole frame) when it
runs out of memory, keeps the original frame when enhancing fails, and hands
the frames back in order, all the same size, so the video assembles.

  examples/enhance_frames.py [--frames N] [--at-once K] [--budget SIZE]
                             [--frame-ms MS] [--sim] [--json]

With PyTorch and a CUDA GPU it runs a small convolutional network on the
GPU, with a budget that lets about K frames (default 3) run at once: the
per-process memory cap and vram's margin are set from it, and the card's
used memory is sampled all along.  Without them (or with --sim) it runs on
the simulated T4 of the SadTalker write-up - 14.7 GiB, 8.5 GiB used by
others, each frame holding 1.5 GiB on it while it runs, through
vram.sim_set_usage - where vram admits exactly three frames at once.

Run by vram as a job (VRAM_BUDGET_BYTES set, as `vram run` and vramd set
it), or given --budget, it keeps to that budget instead: as many frames at
once as fit in it (1.5 GiB each on the simulated card, as measured on the
GPU), on the job's card - the GPU, or the simulated card vram runs its jobs
on - and shows a tqdm-style progress bar on stderr, which vram reads.

In both, two frames come out of the renderer a little smaller and one has
no face the enhancer can find: the first two are resampled, the third keeps
its original (smaller) frame, resampled too.  Exit status 0 when every frame
came back, in order, and no out-of-memory error escaped.
"""

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
import vram  # noqa: E402

GiB = 1 << 30
ODD_FRAMES = (40, 90)               # a few pixels short, as renderers sometimes do
NO_FACE = 77                        # the enhancer gives up on this one
FRAME_BYTES = 3 * GiB // 2          # a frame on the simulated card; 1 GiB tiled
# Outside PyTorch's allocator once CUDA is up (context, cuBLAS, kernels);
# a job's budget must hold it too.
CONTEXT_BYTES = 768 << 20


class Gauge:
    """How many frames run at once, at most."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = self.most = 0

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1


# ---- on the simulated card ----------------------------------------------------------

class SimulatedCard:
    """Frames that hold 1.5 GiB of a simulated card while they run: the T4 of
    the write-up, or, for a vram job on simulated cards, the job's card.
    max_used is the card's used memory at most, or with a budget (own=True)
    what this process held at most."""

    def __init__(self, own):
        self.state = None
        if os.environ.get("VRAM_BACKEND") != "sim" or not os.environ.get("VRAM_SIM_STATE"):
            self.state = tempfile.mkdtemp(prefix="vram-enhance-")
            vram.configure(backend="sim", sim="T4:14.7GiB:8.5GiB", sim_state=self.state)
        self.own = own
        self.lock = threading.Lock()
        self.held = 0
        self.max_used = 0

    def close(self):
        if self.state:
            vram.configure()
            shutil.rmtree(self.state, ignore_errors=True)

    def hold(self, nbytes):
        with self.lock:
            try:
                vram.sim_set_usage(self.held + nbytes)
            except vram.Error as e:
                if e.name == "VRAM_EOOM":   # what a real card would say
                    raise vram.OutOfMemory(str(e)) from e
                raise
            self.held += nbytes
            used = self.held if self.own else vram.status()["devices"][0]["used_bytes"]
            self.max_used = max(self.max_used, used)

    def drop(self, nbytes):
        with self.lock:
            self.held -= nbytes
            vram.sim_set_usage(self.held)

    def frame(self, i):
        width = 30 if i in ODD_FRAMES else 32
        return vram.Image(width, 32, 3, bytes((x * 7 + i) % 256 for x in range(width * 32 * 3)))

    def enhance(self, frame, gauge, tiles, nbytes, seconds):
        """The frame at twice the size, holding nbytes of the card meanwhile."""
        self.hold(nbytes)
        try:
            with gauge:
                time.sleep(seconds * (0.5 if tiles else 1))   # the GPU's time
                return upscale(frame)
        finally:
            self.drop(nbytes)


def upscale(frame):
    """Twice the width and height (nearest pixel), a little brighter."""
    w, h = frame.width, frame.height
    px = bytes(min(255, v + 20) for v in frame.data)
    out = bytearray()
    for y in range(h):
        row = b"".join(px[(y * w + x) * 3:(y * w + x) * 3 + 3] * 2 for x in range(w))
        out += row * 2
    return vram.Image(w * 2, h * 2, 3, bytes(out))


def run_simulated(args):
    card = SimulatedCard(own=bool(args.budget))
    gauge = Gauge()
    # With a budget, no more frames at once than fit in it.
    workers = max(1, args.budget // FRAME_BYTES) if args.budget else 8
    seconds = args.frame_ms / 1000
    try:
        frames = [card.frame(i) for i in range(args.frames)]
        t0 = time.monotonic()
        with vram.Scheduler(workers=workers, progress=progress_bar(args.frames)) as s:
            for i, f in enumerate(frames):
                def whole(f=f, i=i):
                    if i == NO_FACE:
                        raise ValueError("no face found in frame %d" % i)
                    return card.enhance(f, gauge, False, FRAME_BYTES, seconds)

                def tiled(f=f):
                    return card.enhance(f, gauge, True, GiB, seconds)

                s.submit(whole, vram="1.5GiB", ladder=[("1GiB", tiled)], fallback=lambda f=f: f,
                         task_class="enhance")
            outcomes = list(s.outcomes())
            stats = s.stats()
        elapsed = time.monotonic() - t0
        budget = args.budget or vram.device(0)["capacity_bytes"]   # total less the margin
        return summary("sim", outcomes, stats, gauge.most, elapsed, card.max_used, budget)
    finally:
        card.close()


# ---- on a GPU with PyTorch --------------------------------------------------------------

def torch_ready():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def run_torch(args):
    import torch
    import numpy as np

    dev = torch.device("cuda:0")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 3, 3, padding=1), torch.nn.Sigmoid()).to(dev).eval()

    def enhance(frame, tiles):
        with torch.inference_mode():
            x = torch.from_numpy(frame).to(dev).permute(2, 0, 1)[None].float() / 255
            if tiles:                   # the cheaper rung: four quarters, one after another
                h, w = x.shape[2] // 2, x.shape[3] // 2
                parts = [[net(x[:, :, r * h:(r + 1) * h, c * w:(c + 1) * w]) for c in (0, 1)]
                         for r in (0, 1)]
                y = torch.cat([torch.cat(p, 3) for p in parts], 2)
            else:
                y = net(x)
            out = (y[0].permute(1, 2, 0) * 255).to(torch.uint8).contiguous().cpu().numpy()
            del x, y
            return out

    size = args.size
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (size, size - 2 if i in ODD_FRAMES else size, 3), np.uint8)
              for i in range(args.frames)]

    # What one frame needs, measured alone; the budget lets about K run at once.
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base_alloc = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    enhance(frames[0], False)
    per_frame = int((torch.cuda.max_memory_allocated() - base_alloc) * 1.25)
    torch.cuda.empty_cache()
    free, total = torch.cuda.mem_get_info()
    used_now = total - free
    workers = 8
    if args.budget:
        # A vram job: the budget is this process's, context included.  The
        # pool never runs more frames than fit in it; the ledger still
        # watches the whole card.
        budget = args.budget
        cap = max(budget - CONTEXT_BYTES, 0)
        workers = min(8, max(1, int((cap - torch.cuda.memory_reserved()) / per_frame)))
    else:
        budget = used_now + int(per_frame * (args.at_once + 0.5))
        # vram admits into total - margin; the allocator may not grow past the
        # budget either, so a wrong estimate is an out-of-memory, not an overrun.
        vram.configure(margin=str(total - budget))
        cap = budget - (used_now - torch.cuda.memory_reserved())
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total), dev)

    max_used = [used_now]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            f, t = torch.cuda.mem_get_info()
            max_used[0] = max(max_used[0], t - f)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    gauge = Gauge()

    def timed(fn):
        def run():
            with gauge:
                return fn()
        return run

    t0 = time.monotonic()
    with vram.Scheduler(workers=workers, progress=progress_bar(args.frames)) as s:
        # (cleanup after each frame: gc.collect + torch.cuda.empty_cache)
        for i, f in enumerate(frames):
            def whole(f=f, i=i):
                if i == NO_FACE:
                    raise ValueError("no face found in frame %d" % i)
                return enhance(f, False)

            def tiled(f=f):
                return enhance(f, True)

            s.submit(timed(whole), vram=per_frame, ladder=[(per_frame // 2, timed(tiled))],
                     fallback=lambda f=f: f, task_class="enhance")
        outcomes = list(s.outcomes())
        stats = s.stats()
    elapsed = time.monotonic() - t0
    stop.set()
    sampler.join()
    if args.budget:                 # the card's usage is everyone's; ours is what counts
        max_used[0] = torch.cuda.max_memory_reserved() + CONTEXT_BYTES
    return summary("torch", outcomes, stats, gauge.most, elapsed, max_used[0], budget,
                   per_frame=per_frame)


# ---- report ----------------------------------------------------------------------------

def progress_bar(total):
    """A tqdm-style bar on stderr ("37%|#######   | 55/150"), which vram's
    runner reads for `vram queue` and the dashboard."""
    def show(stats):
        n = stats["done"] + stats["fell_back"] + stats["failed"] + stats["canceled"]
        bar = "#" * (20 * n // total)
        sys.stderr.write("\renhance: %3d%%|%-20s| %d/%d" % (100 * n // total, bar, n, total))
        if n == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def shape_of(result):
    if isinstance(result, vram.Image):
        return (result.height, result.width, result.channels)
    return tuple(getattr(result, "shape", ()))


def summary(mode, outcomes, stats, most, elapsed, max_used, budget, per_frame=None):
    shapes = {shape_of(o.result) for o in outcomes if o.result is not None}
    escaped = [o for o in outcomes if o.status == "failed" and o.error == "VRAM_EOOM"]
    return {
        "mode": mode,
        "frames": len(outcomes),
        "in_order": [o.task_id for o in outcomes] == list(range(len(outcomes))),
        "one_size": len(shapes) == 1,
        "most_at_once": most,
        "done": stats["done"], "retried": stats["retried"], "fell_back": stats["fell_back"],
        "failed": stats["failed"], "resampled": stats["resampled"],
        "oom_escaped": len(escaped),
        "seconds": round(elapsed, 3),
        "max_used_bytes": max_used, "budget_bytes": budget,
        "per_frame_bytes": per_frame,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--at-once", type=int, default=3, help="frames the GPU budget allows at once")
    p.add_argument("--size", type=int, default=256, help="frame side on the GPU, in pixels")
    p.add_argument("--budget", default=os.environ.get("VRAM_BUDGET_BYTES"),
                   help="GPU memory this run may use (default: the vram job's, VRAM_BUDGET_BYTES)")
    p.add_argument("--frame-ms", type=float, default=20,
                   help="a frame's time on the simulated card")
    p.add_argument("--sim", action="store_true", help="use the simulated card even with a GPU")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args()
    if args.frames < 1 or args.at_once < 1 or args.size < 16 or args.frame_ms < 0:
        p.error("--frames and --at-once must be positive, --size at least 16, "
                "--frame-ms not negative")
    try:
        args.budget = vram.parse_size(args.budget, "--budget") if args.budget else 0
    except vram.Error as e:
        p.error(str(e))
    simulated = args.sim or os.environ.get("VRAM_BACKEND") == "sim" or not torch_ready()
    r = run_simulated(args) if simulated else run_torch(args)
    if args.json:
        print(json.dumps(r))
    else:
        print("%(frames)d frames on %(mode)s in %(seconds).2f s: in order %(in_order)s, one size "
              "%(one_size)s; at most %(most_at_once)d at once" % r)
        print("done %(done)d, retried %(retried)d, fell back %(fell_back)d, failed %(failed)d, "
              "resampled %(resampled)d; out-of-memory errors that escaped: %(oom_escaped)d" % r)
        print("card used at most %.2f GiB of a %.2f GiB budget" % (r["max_used_bytes"] / GiB,
                                                                  r["budget_bytes"] / GiB))
    ok = r["frames"] == args.frames and r["in_order"] and r["one_size"] and not r["oom_escaped"] \
        and r["max_used_bytes"] <= r["budget_bytes"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
