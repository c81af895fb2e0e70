#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/demo/text_to_video.py - a text-to-video job shaped like Wan2.2,
in miniature: a text encoder turns the prompt into embeddings and is moved
off the card; a diffusion transformer (DiT) runs its denoising steps over
the video's latent tokens, whose activations grow with pixels x frames
(and double with classifier-free guidance); a VAE decodes the frames.

    examples/demo/text_to_video.py [--width 832] [--height 480] [--frames 33]
                                   [--steps 20] [--guidance 5] [--vram SIZE]

Memory (the program's own model, in the proportions of the write-ups):
text encoder 2 GiB, DiT 4 GiB, VAE 0.25 GiB, the CUDA context 0.75 GiB;
the latent has (width/16) x (height/16) x ((frames-1)/4+1) tokens, and each
denoising step holds 96 KiB per token, twice that with guidance; decoding
holds 48 bytes per output pixel.  832x480, 33 frames peaks at 7.6 GiB;
1280x720 needs 10.9 GiB, which is what the demo's 10 GiB first rung lacks.
See pipeline.py for how it runs on a GPU or on vram's simulated card.
"""

import sys

import pipeline
from pipeline import GiB, KiB

TEXT_ENCODER, DIT, VAE = 2 * GiB, 4 * GiB, 0.25 * GiB
TOKEN_BYTES, PIXEL_BYTES = 96 * KiB, 48
STEP_SECONDS_480P = 0.08            # a step's time at 832x480x33 (14,040 tokens)


def main():
    p = pipeline.arguments(__doc__)
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--frames", type=int, default=33)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=5.0, help="above 1: CFG, twice the batch")
    args = p.parse_args()
    if min(args.width, args.height, args.frames, args.steps) < 1:
        p.error("--width, --height, --frames and --steps must be positive")
    tokens = (args.width // 16) * (args.height // 16) * ((args.frames - 1) // 4 + 1)
    cfg = 2 if args.guidance > 1 else 1
    step_bytes = tokens * TOKEN_BYTES * cfg
    decode_bytes = args.width * args.height * args.frames * PIXEL_BYTES
    peak = pipeline.CONTEXT_BYTES + DIT + VAE + max(step_bytes, decode_bytes)
    print("text-to-video: %dx%d, %d frames (%d latent tokens), %d steps, guidance %g; "
          "about %s at the peak" % (args.width, args.height, args.frames, tokens, args.steps,
                                    args.guidance, pipeline.gib(peak)), flush=True)
    step_seconds = STEP_SECONDS_480P * tokens / 14040

    def body(job):
        encoder = job.load("text encoder", int(TEXT_ENCODER))
        job.compute("encode prompt", 2, 0.1)
        job.unload(encoder)                             # offloaded once the prompt is encoded
        job.load("dit", int(DIT))
        job.load("vae", int(VAE))
        job.compute("denoise %dx%d" % (args.width, args.height), args.steps, step_seconds,
                    int(step_bytes))
        job.compute("decode %d frames" % args.frames, 1, 0.3, int(decode_bytes))

    return pipeline.main("text-to-video", args, 2 + args.steps + 1, body)


if __name__ == "__main__":
    sys.exit(main())
