# SPDX-License-Identifier: MIT
"""python/tests/test_apply.py - vram.apply puts real plans (vram.plan, and
the VRAM_PLAN of a `vram run --model` job) to work on a stand-in with
diffusers' method names: the dtype first, then the memory mode's own call
(to("cuda:0"), enable_model_cpu_offload, enable_sequential_cpu_offload),
then VAE tiling and slicing; accelerate's max_memory has integer GPU keys
and leaves the plan's activations free; device_map says where each
component's weights live."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import types
import unittest

TOP = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "python"))
os.environ["VRAM_HOST_RAM"] = "off"          # plans here are for big hosts, not this one
import vram  # noqa: E402
import vram.apply  # noqa: E402

# A stand-in for torch's dtypes: apply only passes them on.
TORCH = types.SimpleNamespace(float32="torch.float32", bfloat16="torch.bfloat16", float16="torch.float16")


class Part:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def to(self, *args, **kwargs):
        self.log.append(("%s.to" % self.name, args, kwargs))
        return self


class Pipeline:
    """The methods of diffusers' DiffusionPipeline that vram.apply calls."""

    def __init__(self):
        self.log = []
        self.text_encoder, self.transformer, self.vae = (Part(self.log, n) for n in ("text_encoder", "transformer", "vae"))

    def to(self, *args, **kwargs):
        self.log.append(("to", args, kwargs))
        return self

    def enable_model_cpu_offload(self, gpu_id=None):
        self.log.append(("enable_model_cpu_offload", (), {"gpu_id": gpu_id}))

    def enable_sequential_cpu_offload(self, gpu_id=None):
        self.log.append(("enable_sequential_cpu_offload", (), {"gpu_id": gpu_id}))

    def enable_vae_tiling(self):
        self.log.append(("enable_vae_tiling", (), {}))

    def enable_vae_slicing(self):
        self.log.append(("enable_vae_slicing", (), {}))


class Apply(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="vram-apply-")
        os.environ["VRAM_PROFILES"] = str(TOP / "profiles")
        os.environ.pop("VRAM_PLAN", None)
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        vram.configure(backend="sim", sim="RTX 4090:24GiB", sim_state=self.state)

    def tearDown(self):
        vram.reset()
        vram.configure()
        os.rmdir(self.state)

    def calls(self, plan):
        pipe = Pipeline()
        done = vram.apply.to_diffusers(pipe, plan, torch=TORCH)
        return [c[0] for c in pipe.log], pipe.log, done

    def test_each_memory_mode_is_its_diffusers_call(self):
        for mode, call in (("beefy", "to"), ("lightweight", "enable_model_cpu_offload"),
                           ("sequential", "enable_sequential_cpu_offload")):
            with self.subTest(mode=mode):
                plan = vram.plan("wan2.2-ti2v-5b", budget="80GiB", memory=mode, tier="480p")
                names, log, done = self.calls(plan)
                self.assertEqual(log[0], ("to", (), {"dtype": "torch.bfloat16"}), "the dtype comes first")
                self.assertEqual(names[1], call)
                if mode == "beefy":
                    self.assertEqual(log[1][1], ("cuda:0",))
                else:
                    self.assertEqual(log[1][2], {"gpu_id": 0})
                self.assertEqual(len(done), len(log))

    def test_cpu_components_vae_tiling_and_slicing(self):
        plan = vram.plan("wan2.2-ti2v-5b", budget="80GiB", memory="beefy", cpu="text_encoder",
                         vae_tiling="on", batch=2, tier="480p")
        names, log, _ = self.calls(plan)
        self.assertEqual(names, ["to", "to", "text_encoder.to", "enable_vae_tiling", "enable_vae_slicing"])
        self.assertEqual(log[2][1], ("cpu",))
        plan = vram.plan("sadtalker", budget="80GiB", memory="beefy", precision="fp16", batch=1)
        names, log, _ = self.calls(plan)
        self.assertEqual(names, ["to", "to"])
        self.assertEqual(log[0][2], {"dtype": "torch.float16"})

    def test_int8_is_reported_not_converted(self):
        plan = vram.plan("wan2.2-ti2v-5b", budget="80GiB", memory="lightweight", precision="int8", tier="480p")
        names, _, done = self.calls(plan)
        self.assertEqual(names, ["enable_model_cpu_offload"])
        self.assertIn("8-bit checkpoint", done[0])

    def test_max_memory_has_integer_keys_and_room_for_activations(self):
        plan = vram.plan("wan2.2-ti2v-5b", budget="20GiB", tier="480p")
        mm = vram.apply.max_memory(plan)
        self.assertEqual(sorted(k for k in mm if k != "cpu"), [0])
        e = plan["estimate"]
        self.assertEqual(mm[0], plan["budget_bytes"] - e["activation_bytes"] - e["overhead_bytes"] - e["margin_bytes"])
        self.assertLess(mm[0], plan["budget_bytes"])
        self.assertGreater(mm["cpu"], 0)
        kw = vram.apply.accelerate_kwargs(plan)
        self.assertEqual(kw["device_map"], "auto")
        self.assertEqual(kw["max_memory"], mm)
        dm = vram.apply.device_map(vram.plan("wan2.2-ti2v-5b", budget="80GiB", memory="beefy", cpu="text_encoder"))
        self.assertEqual(dm, {"text_encoder": "cpu", "transformer": 0, "vae": 0})

    def test_the_job_device_is_0_inside_vram_run(self):
        plan = vram.plan("wan2.2-ti2v-5b", budget="80GiB", tier="480p")
        plan["accelerate"]["max_memory"] = {"3": plan["budget_bytes"], "cpu": 1}
        os.environ["CUDA_VISIBLE_DEVICES"] = "3"
        try:
            self.assertEqual(vram.apply.torch_device_index(plan), 0)
            self.assertEqual(list(vram.apply.max_memory(plan)), [0, "cpu"])
        finally:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        self.assertEqual(vram.apply.torch_device_index(plan), 3)

    def test_no_plan_is_a_lookup_error(self):
        with self.assertRaises(LookupError):
            vram.apply.to_diffusers(Pipeline())
        with self.assertRaises(ValueError):
            vram.apply.max_memory({"not": "a plan"})
        with self.assertRaises(TypeError):
            vram.apply.to_diffusers(object(), vram.plan("sadtalker", budget="8GiB"), torch=TORCH)

    def test_vram_plan_of_a_vram_run_job(self):
        """`vram run --model` gives the job VRAM_PLAN; to_diffusers reads it."""
        binary = pathlib.Path(os.environ.get("VRAM_LIBRARY", TOP / "build/lib/libvram.so")).resolve().parents[1] / "bin/vram"
        if not binary.exists():
            self.skipTest("no vram binary next to the library (%s)" % binary)
        script = ("import json, sys, types; sys.path[:0] = [%r, %r]; import vram.apply, test_apply; "
                  "p = test_apply.Pipeline(); vram.apply.to_diffusers(p, torch=test_apply.TORCH); "
                  "print('calls:', json.dumps([c[0] for c in p.log]))") % (str(TOP / "python"), str(TOP / "python/tests"))
        env = dict(os.environ, VRAM_BACKEND="sim", VRAM_SIM="RTX 4090:24GiB", VRAM_HISTORY="-")
        r = subprocess.run([str(binary), "run", "--model", "wan2.2-ti2v-5b", "--set", "tier=480p", "--",
                            sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        line = [x for x in r.stdout.splitlines() if x.startswith("calls: ")]
        self.assertEqual(len(line), 1, r.stdout + r.stderr)
        calls = json.loads(line[0][len("calls: "):])
        self.assertEqual(calls[0], "to")
        self.assertIn(calls[1], ("to", "enable_model_cpu_offload", "enable_sequential_cpu_offload"))


if __name__ == "__main__":
    unittest.main()
