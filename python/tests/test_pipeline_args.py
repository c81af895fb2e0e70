# SPDX-License-Identifier: MIT
"""python/tests/test_pipeline_args.py - the words each profile's [args]
gives ({args} in a `vram run` command), for every tier, every memory mode
and every rung of the ladder, parsed by an argparse copy of the real
script's options (examples/pipelines/standins/, written here from the real
parsers of Wan2.2's generate.py, SadTalker's inference.py, LatentSync's
scripts/inference.py and HunyuanVideo-Avatar's sample_gpu_poor.py): each
command must parse, each value must be one the real script takes (Wan2.2's
--size among the sizes its task supports, 4n+1 frames; SadTalker's 256 or
512 renderer and an enhancer it knows or none), and each setting the plan
changes must reach the command the way the profile says."""

import contextlib
import io
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

TOP = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "python"))
os.environ["VRAM_HOST_RAM"] = "off"          # plans here are for big hosts, not this one
sys.path.insert(0, str(TOP / "examples" / "pipelines" / "standins"))
os.environ.setdefault("VRAM_BACKEND", "sim")
os.environ["VRAM_PROFILES"] = str(TOP / "profiles")
os.environ.pop("VRAM_MODE", None)

import vram  # noqa: E402
import hunyuan_avatar_sample  # noqa: E402
import latentsync_inference  # noqa: E402
import sadtalker_inference  # noqa: E402
import wan_generate  # noqa: E402

MODES = ("beefy", "lightweight", "sequential")
BUDGET = "4TiB"


def ladder(model):
    """The profile's rungs, each a dict of settings, in order."""
    rungs, inside = [], False
    for line in (TOP / "profiles" / (model + ".ini")).read_text().splitlines():
        line = line.split(";")[0].strip()
        if line.startswith("["):
            inside = line == "[ladder]"
        elif inside and line.startswith("rung"):
            rungs.append(dict(kv.split("=", 1) for kv in line.split("=", 1)[1].split()))
    return rungs


def tiers(model):
    return [line[len("[tier "):-1] for line in (TOP / "profiles" / (model + ".ini")).read_text().splitlines()
            if line.startswith("[tier ")]


def words(model, **settings):
    p = vram.plan(model, budget=BUDGET, **settings)
    return p, p["args"]


def parse(module, argv):
    """The stand-in's parser and checks over argv; the namespace, or the
    parser's error as an AssertionError."""
    parser = module.build_parser()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
            extra = module.check(parser, args)
    except SystemExit:
        raise AssertionError("%s refuses %s: %s" % (module.__name__, " ".join(argv), err.getvalue().strip()))
    return args, extra


class PipelineArgs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vram-args-")
        shutil.copytree(TOP / "examples" / "pipelines" / "latentsync" / "configs", cls.tmp + "/configs")
        subprocess.run([sys.executable, str(TOP / "examples/pipelines/latentsync/make_configs.py"), cls.tmp],
                       check=True, capture_output=True)
        for f in ("v.mp4", "a.wav", "face.png"):
            open(os.path.join(cls.tmp, f), "w").close()
        with open(os.path.join(cls.tmp, "in.csv"), "w") as f:
            f.write("videoid,image,audio,prompt,fps\nx,face.png,a.wav,a face,25\n")
        cls.cwd = os.getcwd()
        os.chdir(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        os.chdir(cls.cwd)
        shutil.rmtree(cls.tmp)

    def every_plan(self, model):
        """(what, plan, words) for every tier x memory mode, and every rung
        of the ladder from each tier (settings laid one rung on another)."""
        for tier in tiers(model):
            for mode in MODES:
                p, w = words(model, tier=tier, memory=mode)
                yield "%s %s" % (tier, mode), p, w
            settings = {"tier": tier}
            for i, rung in enumerate(ladder(model), 1):
                settings.update(rung)
                p, w = words(model, **settings)
                yield "%s rung %d (%s)" % (tier, i, rung), p, w

    def test_wan_size_frames_steps_and_offload(self):
        for model, task in (("wan2.2-t2v-a14b", "t2v-A14B"), ("wan2.2-i2v-a14b", "i2v-A14B"),
                            ("wan2.2-ti2v-5b", "ti2v-5B")):
            n = 0
            for what, p, w in self.every_plan(model):
                with self.subTest(model=model, plan=what):
                    args, _ = parse(wan_generate, ["--task", task, "--ckpt_dir", "ckpt"] + w)
                    x = p["params"]
                    self.assertIn(args.size, wan_generate.SUPPORTED[task])
                    self.assertEqual(args.size, "%s*%s" % (x["width"], x["height"]))
                    self.assertEqual(args.frame_num, x["frames"])
                    self.assertEqual((args.frame_num - 1) % 4, 0, "Wan takes 4n+1 frames")
                    self.assertEqual(args.sample_steps, x["steps"])
                    self.assertEqual(args.offload_model, p["memory"] != "beefy")
                    self.assertEqual(args.t5_cpu, "text_encoder" in str(x["cpu"]))
                    self.assertTrue(args.convert_model_dtype)
                    n += 1
            self.assertEqual(n, len(tiers(model)) * (len(MODES) + len(ladder(model))))

    def test_sadtalker_size_batch_and_enhancer(self):
        for what, p, w in self.every_plan("sadtalker"):
            with self.subTest(plan=what):
                args, _ = parse(sadtalker_inference, ["--driven_audio", "a.wav", "--source_image", "face.png"] + w)
                x = p["params"]
                self.assertEqual(args.size, x["width"])
                self.assertEqual(args.batch_size, x["batch"])
                skipped = "enhance" in str(x["skip"])
                self.assertEqual(args.enhancer, None if skipped else "gfpgan")
                self.assertEqual("--enhancer" in w, not skipped, "enhancer off is no flag at all")

    def test_latentsync_config_steps_and_guidance(self):
        for what, p, w in self.every_plan("latentsync"):
            with self.subTest(plan=what):
                args, cfg = parse(latentsync_inference, ["--inference_ckpt_path", "c.pt", "--video_path", "v.mp4",
                                                         "--audio_path", "a.wav", "--video_out_path", "o.mp4"] + w)
                x = p["params"]
                self.assertEqual(cfg["resolution"], x["width"])
                self.assertEqual(cfg["num_frames"], x["chunk"])
                self.assertEqual(args.inference_steps, x["steps"])
                self.assertEqual(args.guidance_scale > 1, x["cfg"] in (True, "on"))

    def test_hunyuan_avatar_size_frames_and_offload(self):
        for what, p, w in self.every_plan("hunyuanvideo-avatar"):
            with self.subTest(plan=what):
                args, rows = parse(hunyuan_avatar_sample, ["--input", "in.csv", "--ckpt", "c.pt"] + w)
                x = p["params"]
                self.assertEqual(args.image_size, x["width"])
                self.assertEqual(args.sample_n_frames, x["frames"])
                self.assertEqual(args.infer_steps, x["steps"])
                self.assertEqual(args.cpu_offload, p["memory"] != "beefy")
                self.assertEqual(args.use_fp8, p["precision"] == "int8")
                self.assertEqual(len(rows), 1)

    def test_every_ladder_reaches_the_command(self):
        """From the highest tier, the ladder changes the command more than
        once; from any tier, every rung that changes a setting [args] maps
        changes the command."""
        mapped = {"wan2.2-t2v-a14b": ("resolution", "memory", "cpu"), "wan2.2-ti2v-5b": ("resolution", "memory", "cpu"),
                  "sadtalker": ("batch", "skip", "resolution"), "latentsync": ("cfg", "chunk"),
                  "hunyuanvideo-avatar": ("precision", "resolution")}
        for model, keys in mapped.items():
            for tier in tiers(model):
                with self.subTest(model=model, tier=tier):
                    settings = {"tier": tier}
                    p, before = words(model, **settings)
                    seen = {tuple(before)}
                    for rung in ladder(model):
                        was = dict(p["params"], memory=p["memory"])
                        settings.update(rung)
                        p, now = words(model, **settings)
                        changed = [k for k in rung if k in keys and str(was[k]) != str(p["params"][k] if k != "memory" else p["memory"])]
                        if changed and not (changed == ["memory"] and {was["memory"], p["memory"]} == {"lightweight", "sequential"}):
                            self.assertNotEqual(now, before, "%s rung %s changes %s, not the command" % (model, rung, changed))
                        seen.add(tuple(now))
                        before = now
                    if tier == tiers(model)[-1]:
                        self.assertGreater(len(seen), 2, "the ladder of %s hardly reaches its command" % model)

    def test_a_profile_without_args_has_none(self):
        self.assertIsNone(vram.plan("generic-diffusion", budget=BUDGET)["args"])


if __name__ == "__main__":
    unittest.main()
