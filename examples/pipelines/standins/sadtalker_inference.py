#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/pipelines/standins/sadtalker_inference.py - a stand-in for
SadTalker's inference.py (github.com/OpenTalker/SadTalker): the same
options, read by an argparse copy written here from the real one's, and the
memory they would hold on the simulated card.

Memory (the stand-in's own model): the SadTalker networks (691 MB, float32)
and, with --enhancer, GFPGAN and its face helpers (517 MB); rendering holds
per frame of the batch (--batch_size) 8 KiB a pixel of the --size face;
the enhancer, per frame of the batch, 1.5 GB for a 512px aligned face (as
the write-up vram grew from budgets it).  No --enhancer: no enhancer at all
(the real default, None).
"""

import sys
from argparse import ArgumentParser

import standin

MB = 1e6
ENHANCERS = ("gfpgan", "RestoreFormer")     # what its help lists; the real one passes any text on


def build_parser():
    p = ArgumentParser(description="Stand-in for SadTalker inference.py (simulated card)")
    p.add_argument("--driven_audio", default="./examples/driven_audio/bus_chinese.wav")
    p.add_argument("--source_image", default="./examples/source_image/full_body_1.png")
    p.add_argument("--ref_eyeblink", default=None)
    p.add_argument("--ref_pose", default=None)
    p.add_argument("--checkpoint_dir", default="./checkpoints")
    p.add_argument("--result_dir", default="./results")
    p.add_argument("--pose_style", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=2)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--expression_scale", type=float, default=1.)
    p.add_argument("--input_yaw", nargs="+", type=int, default=None)
    p.add_argument("--input_pitch", nargs="+", type=int, default=None)
    p.add_argument("--input_roll", nargs="+", type=int, default=None)
    p.add_argument("--enhancer", type=str, default=None)
    p.add_argument("--background_enhancer", type=str, default=None)
    p.add_argument("--cpu", dest="cpu", action="store_true")
    p.add_argument("--face3dvis", action="store_true")
    p.add_argument("--still", action="store_true")
    p.add_argument("--preprocess", default="crop", choices=["crop", "extcrop", "resize", "full", "extfull"])
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--old_version", action="store_true")
    p.add_argument("--net_recon", type=str, default="resnet50", choices=["resnet18", "resnet34", "resnet50"])
    p.add_argument("--init_path", type=str, default=None)
    p.add_argument("--use_last_fc", default=False)
    p.add_argument("--bfm_folder", type=str, default="./checkpoints/BFM_Fitting/")
    p.add_argument("--bfm_model", type=str, default="BFM_model_front.mat")
    p.add_argument("--focal", type=float, default=1015.)
    p.add_argument("--center", type=float, default=112.)
    p.add_argument("--camera_d", type=float, default=10.)
    p.add_argument("--z_near", type=float, default=5.)
    p.add_argument("--z_far", type=float, default=15.)
    return p


def check(p, args):
    """The face renderer has checkpoints for 256 and 512 only (the real one
    fails loading any other size's); the enhancer must be one it knows."""
    if args.size not in (256, 512):
        p.error("--size %d: SadTalker's renderer comes in 256 and 512" % args.size)
    if args.enhancer is not None and args.enhancer not in ENHANCERS:
        p.error("--enhancer %s: SadTalker knows gfpgan and RestoreFormer" % args.enhancer)
    if args.batch_size < 1:
        p.error("--batch_size must be at least 1")


def stages(args):
    frames = 10 * 25                                  # a ten-second clip at 25 fps
    out = [("load", "sadtalker", 691 * MB), ("compute", "coefficients", 1, 256 * standin.MiB)]
    render = args.batch_size * 8 * standin.KiB * args.size * args.size
    out.append(("compute", "render", frames // args.batch_size, render))
    if args.enhancer:
        out += [("load", "gfpgan", 517 * MB),
                ("compute", "enhance", frames // args.batch_size, args.batch_size * 1.5e9)]
    return out


def main():
    p = build_parser()
    args = p.parse_args()
    check(p, args)
    return standin.run("sadtalker", args, stages(args))


if __name__ == "__main__":
    sys.exit(main())
