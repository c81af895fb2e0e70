# SPDX-License-Identifier: MIT
"""python/tests/test_exceptions.py - the exceptions a Python user expects:
vram.InvalidValue is a ValueError (bad sizes, settings), vram.Timeout a
TimeoutError (a lease not granted in time), vram.NotFound a LookupError
(unknown devices and models), and one vram.OutOfMemory for the device's
memory (the library's and a task's); all are vram.Error with the code's
name.  Scheduler.submit takes vram=, the old bytes= with a
DeprecationWarning, and has no default."""

import os
import pathlib
import sys
import tempfile
import unittest
import warnings

TOP = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "python"))
os.environ["VRAM_HOST_RAM"] = "off"          # plans here are for big hosts, not this one
import vram  # noqa: E402


class Exceptions(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="vram-exc-")
        os.environ["VRAM_PROFILES"] = str(TOP / "profiles")
        vram.configure(backend="sim", sim="RTX 4090:24GiB", sim_state=self.state)

    def tearDown(self):
        vram.reset()
        vram.configure()
        for f in pathlib.Path(self.state).iterdir():
            f.unlink()
        os.rmdir(self.state)

    def test_bad_sizes_and_settings_are_value_errors(self):
        with self.assertRaises(ValueError) as e:
            vram.parse_size("1.5XB")
        self.assertIsInstance(e.exception, vram.InvalidValue)
        self.assertEqual(e.exception.name, "VRAM_EINVAL")
        with self.assertRaises(ValueError):
            vram.parse_size(-1)
        with self.assertRaises(ValueError):
            vram.plan("sadtalker", budget="8GiB", batch="many")

    def test_unknown_devices_and_models_are_lookup_errors(self):
        with self.assertRaises(LookupError) as e:
            vram.device(7)
        self.assertEqual(e.exception.name, "VRAM_ENODEV")
        with self.assertRaises(LookupError) as e:
            vram.plan("no-such-model", budget="8GiB")
        self.assertIsInstance(e.exception, vram.NotFound)
        self.assertIn("no-such-model", str(e.exception))
        # A Hugging Face id finds the profile that names it; an unknown
        # one is a LookupError too.
        self.assertEqual(vram.plan("Wan-AI/Wan2.2-TI2V-5B", budget="24GiB")["model"], "wan2.2-ti2v-5b")
        with self.assertRaises(LookupError) as e:
            vram.plan("Wan-AI/Wan9", budget="8GiB")
        self.assertIn("Hugging Face id", str(e.exception))

    def test_a_wait_that_runs_out_is_a_timeout_error(self):
        with vram.lease("16GiB"):
            with self.assertRaises(TimeoutError) as e:
                with vram.lease("16GiB", wait=0.2):
                    pass
        self.assertIsInstance(e.exception, vram.Timeout)
        self.assertIsInstance(e.exception, vram.Error)

    def test_one_out_of_memory(self):
        with self.assertRaises(vram.OutOfMemory) as e:
            vram.plan("wan2.2-t2v-a14b", budget="1GiB")
        self.assertEqual(e.exception.name, "VRAM_ENOFIT")
        with self.assertRaises(vram.OutOfMemory) as e:
            vram.sim_set_usage("30GiB")
        self.assertEqual(e.exception.name, "VRAM_EOOM")
        mine = vram.OutOfMemory("batch 8 too big", shortfall=1 << 20)
        self.assertIsInstance(mine, vram.Error)
        self.assertEqual((str(mine), mine.shortfall), ("batch 8 too big", 1 << 20))
        self.assertTrue(vram.is_out_of_memory(mine))

    def test_submit_takes_vram_and_the_old_bytes_with_a_warning(self):
        with vram.Scheduler(workers=1) as s:
            s.submit(lambda: 1, vram="1GiB")
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                s.submit(lambda: 2, bytes="1GiB")
            self.assertTrue(any(issubclass(x.category, DeprecationWarning) for x in w), w)
            with self.assertRaises(TypeError) as e:
                s.submit(lambda: 3)
            self.assertIn("vram=", str(e.exception))
            with self.assertRaises(TypeError):
                s.submit(lambda: 3, vram="1GiB", bytes="1GiB")
            self.assertEqual(list(s.results()), [1, 2])


if __name__ == "__main__":
    unittest.main()
