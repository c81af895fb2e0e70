#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/pipelines/standins/hunyuan_avatar_sample.py - a stand-in for
HunyuanVideo-Avatar's hymm_sp/sample_gpu_poor.py
(github.com/Tencent-Hunyuan/HunyuanVideo-Avatar): the options its README's
single-GPU commands give it (its parser, hymm_sp/config.py, has more; this
copy takes the ones vram's profile and the recipes use), and its --input:
a CSV with the columns videoid, image, audio, prompt and fps, one video a
row, read as its data loader reads it.

Memory (the stand-in's own model): the 13B transformer in bf16, or 8-bit
with --use-fp8; with --cpu-offload its blocks are streamed (a tenth on the
GPU at a time), and so are the text encoders' (8B llava-llama and CLIP in
fp16), which leave once the prompt is encoded; denoising holds 60 KiB per
latent token ((frames - 1) / 4 + 1 latent frames of (size / 16) squared
tokens) and 1.5 bytes per pair of tokens (attention), twice that with
--cfg-scale above 1; the VAE decodes in tiles (its default).
"""

import argparse
import csv
import os
import sys

import standin

COLUMNS = ("videoid", "image", "audio", "prompt", "fps")


def build_parser():
    p = argparse.ArgumentParser(description="Stand-in for HunyuanVideo-Avatar sample_gpu_poor.py (simulated card)")
    p.add_argument("--input", type=str, required=True, help="CSV: videoid,image,audio,prompt,fps")
    p.add_argument("--ckpt", type=str, required=True)
    p.add_argument("--sample-n-frames", type=int, default=129)
    p.add_argument("--seed", type=int, default=128)
    p.add_argument("--image-size", type=int, default=704)
    p.add_argument("--cfg-scale", type=float, default=7.5)
    p.add_argument("--infer-steps", type=int, default=50)
    p.add_argument("--use-deepcache", type=int, default=1)
    p.add_argument("--flow-shift-eval-video", type=float, default=5.0)
    p.add_argument("--save-path", type=str, default="./results")
    p.add_argument("--use-fp8", action="store_true")
    p.add_argument("--cpu-offload", action="store_true")
    p.add_argument("--infer-min", action="store_true")
    return p


def read_rows(p, path):
    """The rows of --input, each with every column; the files it names must be there."""
    if not os.path.exists(path):
        p.error("--input %s: no such file" % path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            p.error("--input %s: no column %s (it needs %s)" % (path, ", ".join(missing), ", ".join(COLUMNS)))
        rows = list(reader)
    base = os.path.dirname(os.path.abspath(path))
    for r in rows:
        for c in ("image", "audio"):
            f = r[c] if os.path.isabs(r[c]) else os.path.join(base, r[c])
            if not os.path.exists(f) and not os.path.exists(r[c]):
                p.error("--input %s: row %s: %s '%s' not found" % (path, r["videoid"], c, r[c]))
        float(r["fps"])
    if not rows:
        p.error("--input %s: no rows" % path)
    return rows


def check(p, args):
    if args.image_size % 16:
        p.error("--image-size %d: a multiple of 16 (the VAE's 8 and the 2x2 patches)" % args.image_size)
    if args.sample_n_frames < 1:
        p.error("--sample-n-frames must be positive")
    return read_rows(p, args.input)


def stages(args, rows):
    dit = 13e9 * (1 if args.use_fp8 else 2)
    resident = dit / 10 if args.cpu_offload else dit
    tokens = ((args.sample_n_frames - 1) // 4 + 1) * (args.image_size // 16) ** 2
    act = 512 * standin.MiB + (tokens * 60 * standin.KiB + tokens * tokens * 1.5) * (2 if args.cfg_scale > 1 else 1)
    encoders = 16.5e9 / 10 if args.cpu_offload else 16.5e9
    out = []
    for r in rows:
        out += [("load", "text_encoders", encoders), ("compute", "encode " + r["videoid"], 1, 256 * standin.MiB),
                ("free", "text_encoders"), ("load", "transformer", resident),
                ("compute", "denoise " + r["videoid"], args.infer_steps, act), ("free", "transformer"),
                ("load", "vae", 0.5e9), ("compute", "decode " + r["videoid"], 1, 2 * standin.GiB),
                ("free", "vae")]
    return out


def main():
    p = build_parser()
    args = p.parse_args()
    rows = check(p, args)
    args.videos = [r["videoid"] for r in rows]
    return standin.run("hunyuan-avatar", args, stages(args, rows))


if __name__ == "__main__":
    sys.exit(main())
