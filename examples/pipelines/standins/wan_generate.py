#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/pipelines/standins/wan_generate.py - a stand-in for Wan2.2's
generate.py (github.com/Wan-Video/Wan2.2): the same options, read by an
argparse copy written here from the real one's (tasks, the --size choices of
wan/configs SIZE_CONFIGS and the sizes each task supports, --offload_model
as str2bool), and the memory its options would hold on the simulated card.

Memory (the stand-in's own model, a little heavier than vram's profile at
720p, as a real run can be): the DiT experts (two of 14B for the A14B
tasks, one of 5B for ti2v-5B) in bf16 with --convert_model_dtype, else
float32; umt5-xxl (11.4 GB) on the GPU unless --t5_cpu; with
--offload_model True one model at a time on the GPU (the VAE for the
decode only), else all of them;
activations per latent token (4x temporal, 8x spatial VAE compression for
A14B, 16x for ti2v-5B, 2x2 patches) with attention growing with their
square; the VAE's decode per pixel of a frame.
"""

import argparse
import sys

import standin

GB = 1e9
TASKS = ("t2v-A14B", "i2v-A14B", "ti2v-5B", "animate-14B", "s2v-14B")
SIZES = ("720*1280", "1280*720", "480*832", "832*480", "704*1280", "1280*704", "1024*704", "704*1024")
SUPPORTED = {
    "t2v-A14B": ("720*1280", "1280*720", "480*832", "832*480"),
    "i2v-A14B": ("720*1280", "1280*720", "480*832", "832*480"),
    "ti2v-5B": ("704*1280", "1280*704", "480*832", "832*480"),
    "s2v-14B": SIZES,
    "animate-14B": ("720*1280", "1280*720"),
}
DEFAULT_STEPS = {"t2v-A14B": 40, "i2v-A14B": 40, "ti2v-5B": 50, "animate-14B": 20, "s2v-14B": 40}
DEFAULT_FRAMES = {"t2v-A14B": 81, "i2v-A14B": 81, "ti2v-5B": 121, "animate-14B": 77, "s2v-14B": 80}


def str2bool(v):
    """Wan's str2bool: yes/true/t/y/1 and no/false/f/n/0, any case."""
    if isinstance(v, bool):
        return v
    if v.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if v.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError("Boolean value expected (True/False)")


def build_parser():
    p = argparse.ArgumentParser(description="Stand-in for Wan2.2 generate.py (simulated card)")
    p.add_argument("--task", type=str, default="t2v-A14B", choices=TASKS)
    p.add_argument("--size", type=str, default="1280*720", choices=SIZES)
    p.add_argument("--frame_num", type=int, default=None)
    p.add_argument("--ckpt_dir", type=str, default=None)
    p.add_argument("--offload_model", type=str2bool, default=None)
    p.add_argument("--ulysses_size", type=int, default=1)
    p.add_argument("--t5_fsdp", action="store_true", default=False)
    p.add_argument("--t5_cpu", action="store_true", default=False)
    p.add_argument("--dit_fsdp", action="store_true", default=False)
    p.add_argument("--save_file", type=str, default=None)
    p.add_argument("--prompt", type=str, default=None)
    p.add_argument("--use_prompt_extend", action="store_true", default=False)
    p.add_argument("--prompt_extend_method", type=str, default="local_qwen", choices=["dashscope", "local_qwen"])
    p.add_argument("--prompt_extend_model", type=str, default=None)
    p.add_argument("--prompt_extend_target_lang", type=str, default="zh", choices=["zh", "en"])
    p.add_argument("--base_seed", type=int, default=-1)
    p.add_argument("--image", type=str, default=None)
    p.add_argument("--sample_solver", type=str, default="unipc", choices=["unipc", "dpm++"])
    p.add_argument("--sample_steps", type=int, default=None)
    p.add_argument("--sample_shift", type=float, default=None)
    p.add_argument("--sample_guide_scale", type=float, default=None)
    p.add_argument("--convert_model_dtype", action="store_true", default=False)
    p.add_argument("--src_root_path", type=str, default=None)
    p.add_argument("--refert_num", type=int, default=77)
    p.add_argument("--replace_flag", action="store_true", default=False)
    p.add_argument("--use_relighting_lora", action="store_true", default=False)
    p.add_argument("--num_clip", type=int, default=None)
    p.add_argument("--audio", type=str, default=None)
    p.add_argument("--enable_tts", action="store_true", default=False)
    p.add_argument("--tts_prompt_audio", type=str, default=None)
    p.add_argument("--tts_prompt_text", type=str, default=None)
    p.add_argument("--tts_text", type=str, default=None)
    p.add_argument("--pose_video", type=str, default=None)
    p.add_argument("--start_from_ref", action="store_true", default=False)
    p.add_argument("--infer_frames", type=int, default=80)
    return p


def check(p, args):
    """What the real script checks after parsing (its _validate_args), as
    errors instead of assertions."""
    if args.ckpt_dir is None:
        p.error("Please specify the checkpoint directory.")
    if "s2v" not in args.task and args.size not in SUPPORTED[args.task]:
        p.error("Unsupport size %s for task %s, supported sizes are: %s"
                % (args.size, args.task, ", ".join(SUPPORTED[args.task])))
    if args.sample_steps is None:
        args.sample_steps = DEFAULT_STEPS[args.task]
    if args.frame_num is None:
        args.frame_num = DEFAULT_FRAMES[args.task]
    if args.offload_model is None:          # one process: generate.py offloads
        args.offload_model = True


def stages(args):
    w, h = (int(v) for v in args.size.split("*"))
    small = args.task == "ti2v-5B"
    dtype = 2 if args.convert_model_dtype else 4
    experts = [("dit", 5e9 * dtype)] if small else [("high_noise", 14e9 * dtype), ("low_noise", 14e9 * dtype)]
    vae = (0.7e9 if small else 0.127e9) * 4
    stride = 32 if small else 16
    tokens = ((args.frame_num - 1) // 4 + 1) * (h // stride) * (w // stride)
    per_token = 90 * standin.KiB if small else 150 * standin.KiB
    act = 512 * standin.MiB + tokens * per_token + tokens * tokens * (0.5 if small else 2.0)
    decode = (14 if small else 8) * standin.KiB * w * h
    steps = args.sample_steps
    out = []
    if not args.t5_cpu:
        out += [("load", "t5", 11.4 * GB), ("compute", "encode", 1, 256 * standin.MiB)]
        if args.offload_model:
            out.append(("free", "t5"))
    if not args.offload_model:
        out.append(("load", "vae", vae))
    for i, (name, nbytes) in enumerate(experts):
        n = steps if small else (steps * 63 // 100 if i == 0 else steps - steps * 63 // 100)
        out += [("load", name, nbytes), ("compute", "denoise " + name, n, act)]
        if args.offload_model:
            out.append(("free", name))
    if args.offload_model:
        out.append(("load", "vae", vae))
    out.append(("compute", "decode", 1, decode))
    return out


def main():
    p = build_parser()
    args = p.parse_args()
    check(p, args)
    return standin.run("wan-generate", args, stages(args))


if __name__ == "__main__":
    sys.exit(main())
