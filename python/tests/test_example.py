# SPDX-License-Identifier: MIT
"""python/tests/test_example.py - examples/enhance_frames.py on the
simulated SadTalker card: three frames at once, every frame back in order
and one size, the frame without a face kept as it was."""

import json
import os
import pathlib
import subprocess
import sys
import unittest

TOP = pathlib.Path(__file__).resolve().parents[2]


class Example(unittest.TestCase):
    def test_enhance_frames_on_the_simulated_card(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("VRAM_") or k == "VRAM_LIBRARY"}
        p = subprocess.run([sys.executable, str(TOP / "examples" / "enhance_frames.py"), "--sim",
                            "--frames", "100", "--json"], env=env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual(r["mode"], "sim")
        self.assertEqual(r["frames"], 100)
        self.assertTrue(r["in_order"] and r["one_size"])
        self.assertEqual(r["most_at_once"], 3)
        self.assertEqual(r["fell_back"], 1)         # frame 77: no face
        self.assertEqual(r["resampled"], 3)         # frames 40 and 90, and 77's original
        self.assertEqual(r["oom_escaped"], 0)
        self.assertLessEqual(r["max_used_bytes"], r["budget_bytes"])


if __name__ == "__main__":
    unittest.main()
