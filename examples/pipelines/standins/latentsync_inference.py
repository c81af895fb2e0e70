#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/pipelines/standins/latentsync_inference.py - a stand-in for
LatentSync's scripts/inference.py (github.com/bytedance/LatentSync, as of
commit 47ee37b): the same options, read by an argparse copy written here
from the real one's, the same two keys of its U-Net config (a YAML file,
read here without PyYAML: data.num_frames and data.resolution), and the
memory they would hold on the simulated card.

Memory (the stand-in's own model): the U-Net (5 GB in float32, half of it
in float16, as it runs on cards that have it), the VAE (335 MB) and
whisper; denoising holds 96 KiB per latent pixel (resolution / 8 squared)
of each frame of the window, twice that with --guidance_scale above 1 (the
unconditional pass in the same batch); decoding 1 KiB per pixel of the
window's frames.
"""

import argparse
import os
import re
import sys

import standin


def build_parser():
    p = argparse.ArgumentParser(description="Stand-in for LatentSync scripts/inference.py (simulated card)")
    p.add_argument("--unet_config_path", type=str, default="configs/unet.yaml")
    p.add_argument("--inference_ckpt_path", type=str, required=True)
    p.add_argument("--video_path", type=str, required=True)
    p.add_argument("--audio_path", type=str, required=True)
    p.add_argument("--video_out_path", type=str, required=True)
    p.add_argument("--inference_steps", type=int, default=20)
    p.add_argument("--guidance_scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1247)
    return p


def read_config(path):
    """data.num_frames and data.resolution of a LatentSync U-Net config."""
    data, section = {}, None
    with open(path) as f:
        for line in f:
            m = re.match(r"^(\w+):", line)
            if m:
                section = m.group(1)
            kv = re.match(r"^\s+(num_frames|resolution):\s*(\d+)\s*$", line)
            if section == "data" and kv:
                data[kv.group(1)] = int(kv.group(2))
    return data


def check(p, args):
    """What the real one refuses: a config it cannot load, inputs not there."""
    if not os.path.exists(args.unet_config_path):
        p.error("cannot load the U-Net config %s" % args.unet_config_path)
    for path in (args.video_path, args.audio_path):
        if not os.path.exists(path):
            p.error("'%s' not found" % path)
    cfg = read_config(args.unet_config_path)
    if set(cfg) != {"num_frames", "resolution"}:
        p.error("%s has no data.num_frames or data.resolution" % args.unet_config_path)
    return cfg


def stages(args, cfg):
    frames, res = cfg["num_frames"], cfg["resolution"]
    latent = frames * (res // 8) ** 2
    cfg_pass = 2 if args.guidance_scale > 1 else 1
    windows = 4                                         # a short clip
    return [("load", "whisper", 39e6 * 4), ("load", "unet", 2.5e9), ("load", "vae", 167e6),
            ("compute", "denoise", windows * args.inference_steps, latent * 96 * standin.KiB * cfg_pass),
            ("compute", "decode", windows, frames * res * res * standin.KiB)]


def main():
    p = build_parser()
    args = p.parse_args()
    cfg = check(p, args)
    args.num_frames, args.resolution = cfg["num_frames"], cfg["resolution"]   # shown on the standin line
    return standin.run("latentsync", args, stages(args, cfg))


if __name__ == "__main__":
    sys.exit(main())
