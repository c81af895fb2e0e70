# SPDX-License-Identifier: MIT
"""python/tests/test_estimate.py - what pipeline code asks in one call
(issue 15): vram.estimate and vram.optimize give the figures `vram estimate
--json` and `vram optimize --json` print for the same model and settings
(a Hugging Face id finds the profile too), vram.available the safe
available bytes `vram status` shows; bad input raises the exceptions a
Python user expects."""

import json
import os
import pathlib
import subprocess
import sys
import unittest

TOP = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "python"))
os.environ.update(VRAM_BACKEND="sim", VRAM_SIM="T4:14.7GiB:8.5GiB", VRAM_HOST_RAM="off",
                  VRAM_PROFILES=str(TOP / "profiles"))
for name in ("VRAM_MARGIN", "VRAM_SIM_STATE", "VRAM_SOCKET"):
    os.environ.pop(name, None)
import vram  # noqa: E402

GiB = 1 << 30
BIN = pathlib.Path(os.environ.get("VRAM_LIBRARY", TOP / "build/lib/libvram.so")).resolve().parents[1] / "bin/vram"


def cli(*args):
    out = subprocess.run([str(BIN), *args], capture_output=True, text=True)
    return json.loads(out.stdout)


@unittest.skipUnless(vram._native.has_planner, "this libvram has no planner")
class OneCall(unittest.TestCase):
    def test_estimate_is_the_commands(self):
        e = vram.estimate("wan2.2-ti2v-5b", budget="24GiB", steps=30)
        c = cli("estimate", "--model", "wan2.2-ti2v-5b", "--vram", "24GiB", "steps=30", "--json")["estimate"]
        for key in ("memory", "peak_bytes", "weights_bytes", "activation_bytes", "overhead_bytes",
                    "margin_bytes", "host_bytes", "peak_stage"):
            self.assertEqual(e[key], c[key], key)
        self.assertAlmostEqual(e["seconds"], c["seconds"], places=2)
        self.assertTrue(e["fits"])
        self.assertLessEqual(e["peak_bytes"], 24 * GiB)

    def test_estimate_by_hugging_face_id_and_what_does_not_fit(self):
        by_id = vram.estimate("Wan-AI/Wan2.2-TI2V-5B", memory="beefy")
        self.assertEqual(by_id, vram.estimate("wan2.2-ti2v-5b", memory="beefy"))
        small = vram.estimate("wan2.2-ti2v-5b", budget="4GiB")
        self.assertFalse(small["fits"])
        self.assertGreater(small["peak_bytes"], 4 * GiB)

    def test_optimize_is_the_commands(self):
        o = vram.optimize("wan2.2-ti2v-5b", "12GiB")
        c = cli("optimize", "--model", "wan2.2-ti2v-5b", "--vram", "12GiB", "--json")
        self.assertEqual(o["fits"], c["fits"])
        self.assertTrue(o["fits"])
        self.assertEqual([(s["parameter"], s["from"], s["to"], s["saved_bytes"]) for s in o["suggestions"]],
                         [(s["parameter"], s["from"], s["to"], s["saved_bytes"]) for s in c["suggestions"]])
        self.assertLessEqual(o["after"]["peak_bytes"], 12 * GiB)
        self.assertEqual(vram.optimize("wan2.2-ti2v-5b", "80GiB", memory="beefy")["suggestions"], [])

    def test_available_is_status_safe_available(self):
        got = vram.available(0, via="local")
        self.assertEqual(got, vram.status(via="local")["devices"][0]["safe_available_bytes"])
        self.assertGreater(got, 0)
        with self.assertRaises(LookupError):
            vram.available(7, via="local")

    def test_bad_input_raises_what_python_users_expect(self):
        with self.assertRaises(LookupError):
            vram.estimate("no-such-model")
        with self.assertRaises(ValueError):
            vram.estimate("wan2.2-ti2v-5b", steps="many")
        with self.assertRaises(ValueError):
            vram.optimize("wan2.2-ti2v-5b", "12GiB", level="extreme")
        with self.assertRaises(ValueError):
            vram.optimize("wan2.2-ti2v-5b", "twelve")


if __name__ == "__main__":
    unittest.main()
