#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/demo/lipsync.py - a lip-sync job shaped like LatentSync, in
miniature: an audio encoder turns speech into features and is moved off the
card; a denoising UNet then runs its steps over the video in chunks of
frames, with classifier-free guidance (guidance above 1) doubling the batch
and so the activations; a VAE decodes each chunk.

    examples/demo/lipsync.py [--frames 48] [--chunk 16] [--steps 20]
                             [--guidance 1.5] [--size 256] [--vram SIZE]

Memory (the program's own model, in the proportions of the write-up):
audio encoder 0.75 GiB, UNet 2.5 GiB, VAE 0.35 GiB, the CUDA context
0.75 GiB; per denoising step 0.9 GiB x (size/256)^2 x (chunk/16), twice that
with guidance; per decode 1.2 GiB x (size/256)^2 x (chunk/16).  The
defaults peak at 5.4 GiB.  See pipeline.py for how it runs on a GPU or on
vram's simulated card.
"""

import sys

import pipeline
from pipeline import GiB

ENCODER, UNET, VAE = 0.75 * GiB, 2.5 * GiB, 0.35 * GiB
STEP_ACT, DECODE_ACT = 0.9 * GiB, 1.2 * GiB


def main():
    p = pipeline.arguments(__doc__)
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--chunk", type=int, default=16, help="frames denoised together")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=1.5, help="above 1: CFG, twice the batch")
    p.add_argument("--size", type=int, default=256, help="face crop side, pixels")
    args = p.parse_args()
    if min(args.frames, args.chunk, args.steps, args.size) < 1:
        p.error("--frames, --chunk, --steps and --size must be positive")
    chunks = -(-args.frames // args.chunk)
    scale = (args.size / 256) ** 2 * (args.chunk / 16)
    cfg = 2 if args.guidance > 1 else 1
    step_bytes, decode_bytes = int(STEP_ACT * scale * cfg), int(DECODE_ACT * scale)
    peak = pipeline.CONTEXT_BYTES + UNET + VAE + max(step_bytes, decode_bytes)
    print("lipsync: %d frames at %d px in %d chunks of %d, %d steps, guidance %g%s; "
          "about %s at the peak" % (args.frames, args.size, chunks, args.chunk, args.steps,
                                    args.guidance, " (CFG doubles the batch)" if cfg == 2 else "",
                                    pipeline.gib(peak)), flush=True)

    def body(job):
        encoder = job.load("audio encoder", int(ENCODER))
        job.compute("audio features", 4, 0.05)
        job.unload(encoder)                             # off to the CPU, as the write-up does
        job.load("unet", int(UNET))
        job.load("vae", int(VAE))
        for c in range(chunks):
            job.compute("denoise chunk %d/%d" % (c + 1, chunks), args.steps, 0.04, step_bytes)
            job.compute("decode chunk %d/%d" % (c + 1, chunks), 1, 0.2, decode_bytes)

    return pipeline.main("lipsync", args, 4 + chunks * (args.steps + 1), body)


if __name__ == "__main__":
    sys.exit(main())
