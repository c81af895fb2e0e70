# SPDX-License-Identifier: MIT
"""python/tests/test_binding.py - the binding's plumbing: finding libvram,
structures that match the C header, status, settings, errors, leases,
residents, stage marks, the planner's absence, sizes.  Runs under plain
python3 on the simulated backend."""

import os
import pathlib
import subprocess
import sys
import threading
import time
import unittest

PYTHON_DIR = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PYTHON_DIR))
os.environ.update(VRAM_BACKEND="sim", VRAM_SIM="T4:14.7GiB:8.5GiB")
for name in ("VRAM_MARGIN", "VRAM_SIM_STATE"):
    os.environ.pop(name, None)

import vram                         # noqa: E402
from vram import _native  # noqa: E402

GiB = 1 << 30
T4_TOTAL = 15784004813              # 14.7 GiB


class Binding(unittest.TestCase):
    def setUp(self):
        os.environ.pop("VRAM_MARGIN", None)
        vram.configure()

    def test_the_library_is_found_and_its_version_matches(self):
        self.assertEqual(vram.__version__, "0.1.0")
        self.assertTrue(vram.library_path.endswith("libvram.so"), vram.library_path)

    def test_status_reads_the_card_as_vram_status_does(self):
        d = vram.status("/")
        self.assertTrue(d["simulated"])
        g = d["devices"][0]
        self.assertEqual(g["name"], "T4")
        self.assertEqual(g["total_bytes"], T4_TOTAL)
        self.assertEqual(g["others_bytes"], int(8.5 * GiB))
        self.assertEqual(g["safe_available_bytes"] // int(1.5 * GiB), 3)
        self.assertEqual(vram.device(0)["capacity_bytes"], T4_TOTAL - T4_TOTAL // 10)

    def test_settings_come_from_the_environment_and_configure(self):
        os.environ["VRAM_MARGIN"] = "150%"
        with self.assertRaises(vram.Error) as e:
            vram.configure()
        self.assertEqual(e.exception.name, "VRAM_ERANGE")
        self.assertIn("VRAM_MARGIN", str(e.exception))
        self.assertIn("150%", str(e.exception))
        os.environ["VRAM_MARGIN"] = "1GiB"
        vram.configure()
        self.assertEqual(vram.status()["devices"][0]["margin_bytes"], GiB)
        vram.configure(margin="2GiB")           # wins over the environment
        self.assertEqual(vram.status()["devices"][0]["margin_bytes"], 2 * GiB)
        with self.assertRaises(vram.Error) as e:
            vram.configure(margin="12XB")
        self.assertIn("'12XB' is not a size", str(e.exception))
        self.assertIn("vram.configure(margin=...)", str(e.exception))
        with self.assertRaises(vram.Error) as e:
            vram.configure(colour="red")
        self.assertEqual(e.exception.name, "VRAM_ENOENT")

    def test_a_lease_shows_as_ours_and_goes_back(self):
        with vram.lease("3GiB", holder="test") as l:
            self.assertEqual(l.device, 0)
            g = vram.status()["devices"][0]
            self.assertEqual(g["leased_bytes"], 3 * GiB)
            self.assertEqual(vram.device(0)["leases"], 1)
            with self.assertRaises(vram.Error) as e:
                vram.lease("2GiB", wait=0).acquire()   # 3 + 2 > 4.73 GiB
            self.assertEqual(e.exception.name, "VRAM_ETIMEDOUT")
        self.assertEqual(vram.status()["devices"][0]["leased_bytes"], 0)
        with self.assertRaises(vram.Error) as e:
            with vram.lease("30GiB"):
                pass
        self.assertEqual(e.exception.name, "VRAM_ENOFIT")
        self.assertIn("needs 30.0 GiB", str(e.exception))
        self.assertIn("14.7 GiB in total", str(e.exception))

    def test_a_blocked_lease_starts_when_another_is_released(self):
        held = vram.lease("4GiB").acquire()
        threading.Timer(0.2, held.release).start()
        t0 = time.monotonic()
        with vram.lease("2GiB"):
            waited = time.monotonic() - t0
        self.assertGreater(waited, 0.15)
        self.assertLess(waited, 5)

    def test_residents_are_reused_evicted_and_pinned(self):
        unloaded = []
        r = vram.register_resident("gfpgan", "2GiB", unload=unloaded.append)
        self.assertIs(vram.register_resident("gfpgan", "2GiB"), r)
        self.assertEqual(vram.device(0)["resident_bytes"], 2 * GiB)
        with r.use():
            with self.assertRaises(vram.Error):
                vram.lease("3GiB", wait=0).acquire()   # in use: not evicted
        with vram.lease("3GiB", wait=0):               # idle: evicted for the room
            self.assertEqual(unloaded, ["gfpgan"])
            self.assertFalse(r.loaded)
        with self.assertRaises(vram.Error) as e:
            with r.use():
                pass
        self.assertEqual(e.exception.name, "VRAM_ENOENT")
        r.unregister()
        r.unregister()
        self.assertEqual(vram.device(0)["residents"], 0)
        self.assertFalse(r.loaded)
        with self.assertRaises(vram.Error) as e:
            r.unregister()
        self.assertIn("unregistered", str(e.exception))

    def test_stage_marks(self):
        vram.mark("start")
        vram.mark("after audio encoder")
        text = vram.marks()
        self.assertIn("after audio encoder", text)
        self.assertIn("8.5 GiB", text)

    def test_stage_marks_with_torch_figures(self):
        """PyTorch's allocated and reserved beside the device's used, read
        from a stand-in with torch.cuda's method names, on the GPU as torch
        numbers it (its place in CUDA_VISIBLE_DEVICES)."""
        asked = []

        class Cuda:
            def is_available(self):
                return True

            def memory_allocated(self, index):
                asked.append(index)
                return 3 * GiB

            def memory_reserved(self, index):
                return 4 * GiB

        torch = type("torch", (), {"cuda": Cuda()})
        saved = os.environ.get("CUDA_VISIBLE_DEVICES")
        os.environ["CUDA_VISIBLE_DEVICES"] = "3,0"
        try:
            if "torch" not in sys.modules:  # a torch without cuda: no figures
                vram.mark("no torch here", torch=type("torch", (), {}))
            vram.mark("after the unet", torch=torch)
        finally:
            if saved is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES")
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved
        self.assertEqual(asked, [1])            # device 0 is torch's cuda:1 here
        lines = vram.marks().splitlines()
        self.assertIn("torch alloc", lines[0])
        self.assertIn("torch reserved", lines[0])
        row = [line for line in lines if line.startswith("after the unet")][0]
        self.assertRegex(row, r"8\.5 GiB .* 3\.0 GiB +4\.0 GiB$")
        if "torch" not in sys.modules:
            row = [line for line in lines if line.startswith("no torch here")][0]
            self.assertRegex(row, r" +- +-$")

    def test_plan_needs_the_planner(self):
        if _native.has_planner:
            self.assertIsInstance(vram.plan("sadtalker"), dict)
            return
        with self.assertRaises(vram.Error) as e:
            vram.plan("sadtalker", budget="6GiB", size=512)
        self.assertEqual(e.exception.name, "VRAM_ENOTSUP")
        self.assertIn("vram_plan_json", str(e.exception))

    def test_sizes(self):
        self.assertEqual(vram.parse_size("1.5GiB"), 3 * GiB // 2)
        self.assertEqual(vram.parse_size(4096), 4096)
        self.assertEqual(vram.format_size(3 * GiB // 2), "1.5 GiB")
        with self.assertRaises(vram.Error) as e:
            vram.parse_size(-1)
        self.assertEqual(e.exception.name, "VRAM_EINVAL")
        self.assertIn("negative", str(e.exception))
        with self.assertRaises(vram.Error) as e:
            vram.parse_size("12XB")
        self.assertIn("'12XB' is not a size", str(e.exception))
        with self.assertRaises(TypeError):
            vram.parse_size(None)

    def test_the_library_is_looked_for_in_order(self):
        if not (PYTHON_DIR / "vram").is_dir():
            self.skipTest("the installed package has no build tree beside it")
        env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
        env["VRAM_LIBRARY"] = "/nonexistent/libvram.so"
        p = subprocess.run([sys.executable, "-c", "import vram"], env=env,
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("VRAM_LIBRARY", p.stderr)
        env.pop("VRAM_LIBRARY")
        p = subprocess.run([sys.executable, "-c", "import vram; print(vram.library_path)"],
                           env=env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.strip().endswith("build/lib/libvram.so"), p.stdout)


if __name__ == "__main__":
    unittest.main()
