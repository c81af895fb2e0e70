#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/gpu/plan_workloads.py - real PyTorch workloads shaped like the
profiles' components, measured on the GPU, used to calibrate vram profiles
on half of the sizes and to check the predictions for the other half.

Workloads (random weights, built from torch.nn alone, fp16, no grad):
  audio     a wav2vec2-base-like encoder: 7-layer conv feature extractor on
            16 kHz audio (about 50 frames a second), 12 transformer layers,
            768 wide, 3072 feed-forward
  text      a T5-base-like encoder: 32128-token embedding, 12 layers, 768
            wide, 3072 feed-forward, RMS norms
  denoiser  a convolutional video denoiser: a 3D U-Net over 16-channel
            latents (8x8 smaller than the frames), run for a few steps

Each run is a child process of its own, so that its peak is its own: the
peak PyTorch reserved (torch.cuda.max_memory_reserved) and the device's own
count (used memory sampled every millisecond, less what was used before the
child started, CUDA context included).  Each workload has a profile; it is
calibrated (vram calibrate) on the even sizes against the device count and
predicts the odd ones (vram estimate).  Checks: median error within 10%, and
no prediction short of the real peak by more than the safety margin.

  plan_workloads.py --vram PATH [--out DIR]      measure, calibrate, check
  plan_workloads.py --vram PATH --synthetic      the same pipeline on rows
                                                 made up from a known formula
                                                 (no GPU): checks this script
  plan_workloads.py --child KIND SIZE            one measurement, as JSON
Prints TAP-like "ok - ..." / "not ok - ..." lines and a table.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

FILE = "test_plan_calibration"

# Sizes per workload: audio seconds, text tokens, video side in pixels.
SIZES = {
    "audio": [2, 4, 8, 12, 16, 24, 32, 48],
    "text": [256, 512, 1024, 1536, 2048, 3072, 4096, 6144],
    "denoiser": [256, 320, 384, 448, 512, 640, 768, 896],
}
DENOISER_FRAMES = 17
DENOISER_STEPS = 3

# Profiles for the workloads, in vram's format.  The coefficients are first
# guesses from the layer shapes (ours): calibration replaces them.
PROFILE_HEAD = """# {name} - a test workload for tests/gpu (see plan_workloads.py)
[profile]
name = {name}
title = {title}
source = tests/gpu/plan_workloads.py

[defaults]
{defaults}
cfg = off
precision = fp16
memory = beefy

[latent]
stride = {stride}
patch = 1x1x1

[overhead]
cuda_context = 500MiB      ; (ours) measured ones are 300 to 600 MiB
slack = 5%                 ; (ours)
margin = 8%                ; (ours) the safety margin the checks allow

[time]
card = the GPU under test
bandwidth = 20GB
stream_latency = 0.0002

# An idle stage and component: every profile needs two, and the runs skip it.
[component unused]
params = 1M
dtype = fp16
stages = idle
blocks = 4

[stage idle]
runs = once
optional = yes
act = 1MiB
"""

PROFILES = {
    "audio": PROFILE_HEAD + """
[component model]
params = 95M               ; wav2vec2-base: 95M parameters
dtype = fp16
precision = follow
stages = encode
blocks = 12


[stage encode]
runs = once
act = 64MiB
act_per_audio = 3MiB       ; (ours) conv features of 16000 samples, then ~50 frames x 768
time = 0.01
time_per_audio = 0.002

""",
    "text": PROFILE_HEAD + """
[component model]
params = 110M              ; T5-base encoder: embedding 32128 x 768 plus 12 layers
dtype = fp16
precision = follow
stages = encode
blocks = 12


[stage encode]
runs = once
act = 64MiB
act_per_token = 24KiB      ; (ours) 768-wide states, 3072-wide feed-forward, fp16
time = 0.005
time_per_token = 2e-6

""",
    "denoiser": PROFILE_HEAD + """
[component model]
params = 60M               ; (ours) the U-Net below
dtype = fp16
precision = follow
stages = denoise
blocks = 10


[stage denoise]
runs = step
act = 64MiB
act_per_token = 2KiB       ; (ours) 128-512 channel 3D feature maps per latent cell
time = 0.005
time_per_token = 5e-7

""",
}

DEFAULTS = {
    "audio": ("audio encoder like wav2vec2-base", "1x1x1", "resolution=8px\nframes=1\nsteps=1\naudio=8"),
    "text": ("text encoder like T5-base", "1x1x1", "resolution=64x8\nframes=1\nsteps=1"),
    "denoiser": ("convolutional video denoiser", "1x8x8",
                 f"resolution=256px\nframes={DENOISER_FRAMES}\nsteps={DENOISER_STEPS}"),
}


def settings_for(kind, size):
    """vram settings of one run: what the estimate of it takes."""
    s = ["memory=beefy", "skip=idle"]
    if kind == "audio":
        s.append(f"audio={size}")
    elif kind == "text":
        s.append(f"resolution={size // 8}x8")     # tokens laid out as 8 rows
    else:
        s += [f"resolution={size}px", f"frames={DENOISER_FRAMES}", f"steps={DENOISER_STEPS}"]
    return s


# ---------------------------------------------------------------- workloads

def build(kind, torch):
    nn = torch.nn
    F = torch.nn.functional

    class RMSNorm(nn.Module):
        """T5's norm (torch.nn.RMSNorm is only in torch >= 2.4)."""

        def __init__(self, d):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))

        def forward(self, x):
            return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6).to(x.dtype) * self.weight

    class Block(nn.Module):
        """A pre-norm transformer layer with fused attention."""

        def __init__(self, d, ff, heads, rms):
            super().__init__()
            self.heads = heads
            self.n1 = RMSNorm(d) if rms else nn.LayerNorm(d)
            self.n2 = RMSNorm(d) if rms else nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d, bias=not rms)
            self.o = nn.Linear(d, d, bias=not rms)
            self.ff1 = nn.Linear(d, ff, bias=not rms)
            self.ff2 = nn.Linear(ff, d, bias=not rms)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.n1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
            a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
            x = x + self.o(a.transpose(1, 2).reshape(b, t, d))
            return x + self.ff2(F.gelu(self.ff1(self.n2(x))))

    class Wav2Vec2Like(nn.Module):
        def __init__(self):
            super().__init__()
            convs, c_in = [], 1
            for k, s in zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)):
                convs += [nn.Conv1d(c_in, 512, k, s, bias=False), nn.GELU()]
                c_in = 512
            self.features = nn.Sequential(*convs)
            self.proj = nn.Linear(512, 768)
            self.layers = nn.ModuleList(Block(768, 3072, 12, False) for _ in range(12))

        def forward(self, wav):
            x = self.proj(self.features(wav.unsqueeze(1)).transpose(1, 2))
            for layer in self.layers:
                x = layer(x)
            return x

    class T5Like(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(32128, 768)
            self.layers = nn.ModuleList(Block(768, 3072, 12, True) for _ in range(12))
            self.norm = RMSNorm(768)

        def forward(self, ids):
            x = self.embed(ids)
            for layer in self.layers:
                x = layer(x)
            return self.norm(x)

    class Denoiser(nn.Module):
        """A 3D U-Net: two levels down, two up, skips concatenated."""

        def __init__(self):
            super().__init__()

            def block(i, o):
                return nn.Sequential(nn.Conv3d(i, o, 3, padding=1), nn.GroupNorm(8, o), nn.SiLU(),
                                     nn.Conv3d(o, o, 3, padding=1), nn.GroupNorm(8, o), nn.SiLU())
            self.inp = nn.Conv3d(16, 128, 3, padding=1)
            self.d1, self.d2 = block(128, 256), block(256, 512)
            self.mid = block(512, 512)
            self.u2, self.u1 = block(1024, 256), block(512, 128)
            self.out = nn.Conv3d(128, 16, 3, padding=1)
            self.pool = nn.AvgPool3d((1, 2, 2))

        def forward(self, x):
            h0 = self.inp(x)
            h1 = self.d1(self.pool(h0))
            h2 = self.d2(self.pool(h1))
            m = self.mid(h2)
            up = nn.functional.interpolate
            u2 = self.u2(torch.cat([m, h2], 1))
            u2 = up(u2, size=h1.shape[2:])
            u1 = self.u1(torch.cat([u2, h1], 1))
            u1 = up(u1, size=h0.shape[2:])
            return self.out(u1)

    return {"audio": Wav2Vec2Like, "text": T5Like, "denoiser": Denoiser}[kind]()


def gpu_index():
    vis = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    return vis if vis.isdigit() else "0"


def smi_used_bytes():
    out = subprocess.run(["nvidia-smi", "-i", gpu_index(), "--query-gpu=memory.used",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[0]) * 2**20


def child(kind, size):
    """One workload at one size: prints its peaks and time as JSON."""
    before = smi_used_bytes()
    import torch
    torch.manual_seed(0)
    dev = torch.device("cuda")
    total = torch.cuda.get_device_properties(dev).total_memory
    peak = {"device": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            free, _ = torch.cuda.mem_get_info(dev)
            peak["device"] = max(peak["device"], total - free)
            time.sleep(0.001)

    model = build(kind, torch).to(dev, torch.float16).eval()
    if kind == "audio":
        x = torch.randn(1, int(size * 16000), device=dev, dtype=torch.float16)
    elif kind == "text":
        x = torch.randint(0, 32128, (1, size), device=dev)
    else:
        x = torch.randn(1, 16, DENOISER_FRAMES, size // 8, size // 8, device=dev, dtype=torch.float16)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(dev)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(DENOISER_STEPS if kind == "denoiser" else 1):
            y = model(x)
            if kind == "denoiser":
                x = x - 0.1 * y
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    time.sleep(0.01)
    stop.set()
    sampler.join()
    free, _ = torch.cuda.mem_get_info(dev)
    peak["device"] = max(peak["device"], total - free)
    print(json.dumps({"kind": kind, "size": size, "reserved": torch.cuda.max_memory_reserved(dev),
                      "device": peak["device"] - before, "seconds": seconds}))


def measure(kind, size):
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(size)], capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} {size}: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def synthetic(kind, size):
    """Made-up measurements from a known formula, to check this script."""
    unit = {"audio": 7.5 * 2**20, "text": 40 * 2**10, "denoiser": 11 * 2**10}[kind]
    n = size if kind != "denoiser" else DENOISER_FRAMES * (size // 8) ** 2
    act = 96 * 2**20 + unit * n
    weights = {"audio": 95e6, "text": 110e6, "denoiser": 60e6}[kind] * 2
    device = int(420 * 2**20 + 1.05 * (weights + act))
    return {"kind": kind, "size": size, "reserved": device - 420 * 2**20, "device": device,
            "seconds": 0.02 + n * 1e-6}


# ---------------------------------------------------------------- the check

def run_vram(vram, *args):
    out = subprocess.run([vram, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"vram {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def check_kind(vram, out, kind, rows):
    """Calibrates on the even sizes, predicts the odd ones; returns lines."""
    prof = os.path.join(out, f"gpu-{kind}.ini")
    title, stride, defaults = DEFAULTS[kind]
    with open(prof, "w") as f:
        f.write(PROFILES[kind].format(name=f"gpu-{kind}", title=title, stride=stride, defaults=defaults))
    train, test = rows[0::2], rows[1::2]
    csv = os.path.join(out, f"gpu-{kind}.csv")
    keys = ["memory", "skip", "audio", "resolution", "frames", "steps"]
    with open(csv, "w") as f:
        f.write(",".join(keys) + ",peak_bytes,seconds\n")
        for r in train:
            s = dict(kv.split("=", 1) for kv in settings_for(kind, r["size"]))
            f.write(",".join(s.get(k, "") for k in keys) + f",{r['device']},{r['seconds']}\n")
    cal = os.path.join(out, f"gpu-{kind}-calibrated.ini")
    run_vram(vram, "calibrate", "--profile", prof, "--from", csv, "--out", cal, "--force")
    results = []
    for r in test:
        e = json.loads(run_vram(vram, "estimate", "--profile", cal, "--json", *settings_for(kind, r["size"])))
        est = e["estimate"]
        fit = est["peak_bytes"] - est["margin_bytes"]
        results.append({**r, "predicted": est["peak_bytes"], "fit": fit, "margin": est["margin_bytes"],
                        "error": (fit - r["device"]) / r["device"],
                        "short": r["device"] - est["peak_bytes"]})   # > 0: past the margin too
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vram")
    ap.add_argument("--out")
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--child", nargs=2)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]))
        return 0
    out = a.out or tempfile.mkdtemp(prefix="vram-gpu-")
    get = synthetic if a.synthetic else measure
    failures = 0
    MiB = 2**20
    print(f"# {'workload':9} {'size':>6} {'reserved':>10} {'device':>10} {'predicted':>10} "
          f"{'fit':>10} {'error':>7} {'seconds':>8}")
    for kind, sizes in SIZES.items():
        try:
            rows = [get(kind, s) for s in sizes]
            results = check_kind(a.vram, out, kind, rows)
        except Exception as e:                      # one line, then the next workload
            print(f"not ok - {FILE}/{kind}: {e}")
            failures += 1
            continue
        for r in results:
            print(f"# {kind:9} {r['size']:>6} {r['reserved'] / MiB:>9.0f}M {r['device'] / MiB:>9.0f}M "
                  f"{r['predicted'] / MiB:>9.0f}M {r['fit'] / MiB:>9.0f}M {100 * r['error']:>+6.1f}% "
                  f"{r['seconds']:>8.3f}")
        median = statistics.median(abs(r["error"]) for r in results)
        # The fit may fall short of the real peak by at most its margin:
        # the peak with the margin (what vram plans with) covers the run.
        worst = max(r["short"] for r in results)
        name = f"{kind}_median_error_within_10pct"
        if median <= 0.10:
            print(f"ok - {FILE}/{name} ({100 * median:.1f}%)")
        else:
            print(f"not ok - {FILE}/{name}: {100 * median:.1f}%")
            failures += 1
        name = f"{kind}_never_short_beyond_the_margin"
        if worst <= 0:
            print(f"ok - {FILE}/{name}")
        else:
            print(f"not ok - {FILE}/{name}: short by {worst / MiB:.0f} MiB past the margin")
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
