# SPDX-License-Identifier: MIT
"""python/tests/test_arguments.py - what the binding does with the values it
hands to C: waits in seconds (negative, NaN and infinite ones refused, not
read as "forever"), a lease acquired twice, sizes and indices too big for
their C types (refused, not wrapped), and text (str only, no NUL byte).
Runs on a simulated RTX 4090."""

import math
import os
import pathlib
import sys
import threading
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.update(VRAM_BACKEND="sim", VRAM_SIM="RTX 4090:24GiB", VRAM_HISTORY="-")
for name in ("VRAM_MARGIN", "VRAM_SIM_STATE", "VRAM_SOCKET"):
    os.environ.pop(name, None)

import vram                         # noqa: E402

GiB = 1 << 30


def within(test, seconds, fn):
    """fn() on a thread; fails the test when it has not ended in `seconds`
    (a hang), else returns what it raised (None when nothing)."""
    got = []

    def run():
        try:
            fn()
            got.append(None)
        except BaseException as e:      # handed back to the test
            got.append(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        test.fail("still waiting after %ss" % seconds)
    return got[0]


class Arguments(unittest.TestCase):
    def setUp(self):
        vram.configure()

    def tearDown(self):
        vram.reset()

    def test_a_wait_is_seconds_finite_and_not_negative(self):
        with vram.lease("20GiB", via="local"):
            for wait in (-0.001, -1, float("nan"), float("inf"), -math.inf):
                e = within(self, 5, lambda: vram.lease("10GiB", via="local", wait=wait).acquire())
                self.assertIsInstance(e, vram.InvalidValue, repr(wait))
                self.assertIn(repr(wait), str(e))
            for bad in ("1", True):
                with self.assertRaises(TypeError):
                    vram.lease("10GiB", via="local", wait=bad)
            with self.assertRaises(vram.InvalidValue):
                vram.lease("1GiB", via="local", expected=-2.5)
            e = within(self, 5, lambda: vram.lease("10GiB", via="local", wait=0).acquire())
            self.assertIsInstance(e, vram.Timeout)
        with vram.Scheduler(workers=1, cleanup=[]) as s:
            for wait in (-0.001, float("nan"), float("inf")):
                with self.assertRaises(vram.InvalidValue) as e:
                    s.submit(lambda: 1, vram="1GiB", wait=wait)
                self.assertIn("wait", str(e.exception))
            with self.assertRaises(vram.InvalidValue):
                s.submit(lambda: 1, vram="1GiB", expected=float("nan"))
            s.submit(lambda: 1, vram="1GiB", wait=0.5, expected=1.5)
            self.assertEqual(list(s.results()), [1])

    def test_a_held_lease_is_not_acquired_again(self):
        l = vram.lease("1GiB", via="local")
        l.acquire()
        held = l.id
        with self.assertRaises(vram.Error) as e:
            l.acquire()
        self.assertEqual(e.exception.name, "VRAM_EBUSY")
        self.assertIn("held already (lease %d)" % held, str(e.exception))
        self.assertEqual(l.id, held)
        self.assertEqual(vram.device(0)["leased_bytes"], GiB)
        l.release()
        self.assertEqual(vram.device(0)["leased_bytes"], 0)
        with l:
            with self.assertRaises(vram.Error):
                with l:
                    pass
            self.assertEqual(vram.device(0)["leased_bytes"], GiB)
        self.assertEqual(vram.device(0)["leased_bytes"], 0)
        with l:                     # released, it can be taken again
            self.assertEqual(vram.device(0)["leased_bytes"], GiB)
        vram.reset()                # nothing left held

    def test_sizes_past_2_to_the_64_are_refused_not_wrapped(self):
        for size in (2**64, 2**64 + GiB, 2.0**64, float("inf")):
            with self.assertRaises(vram.InvalidValue, msg=repr(size)) as e:
                vram.parse_size(size)
            self.assertEqual(e.exception.name, "VRAM_ERANGE")
        with self.assertRaises(vram.InvalidValue):
            vram.parse_size(float("nan"))
        self.assertEqual(vram.parse_size(2**64 - 1), 2**64 - 1)
        big = 2**64 + GiB            # held 1 GiB and said 16 EiB
        calls = [lambda: vram.lease(big, via="local"),
                 lambda: vram.register_resident("big", big),
                 lambda: vram.sim_set_usage(big),
                 lambda: vram.estimate("sadtalker", budget=big)]
        for call in calls:
            with self.assertRaises(vram.InvalidValue) as e:
                call()
            self.assertEqual(e.exception.name, "VRAM_ERANGE")
        with vram.Scheduler(workers=1, cleanup=[]) as s:
            with self.assertRaises(vram.InvalidValue):
                s.submit(lambda: 1, vram=big)
            with self.assertRaises(vram.InvalidValue):
                s.submit(lambda: 1, vram="1GiB", ladder=[(2**64, lambda: 2)])
            self.assertEqual(s.stats()["submitted"], 0)
        self.assertEqual(vram.device(0)["leased_bytes"], 0)
        self.assertEqual(vram.device(0)["resident_bytes"], 0)

    def test_format_size_takes_bytes_as_an_int_only(self):
        self.assertEqual(vram.format_size(GiB), "1.0 GiB")
        self.assertEqual(vram.format_size(0), "0 B")
        for bad in (-1, 2**64):
            with self.assertRaises(vram.InvalidValue, msg=repr(bad)):
                vram.format_size(bad)
        for bad in (None, "x", 1.5, True):
            with self.assertRaises(TypeError, msg=repr(bad)):
                vram.format_size(bad)

    def test_device_indices_and_counts_are_ints_in_range(self):
        big = 2**32                 # was device 0, the default count
        calls = {"device": lambda d: vram.device(d),
                 "mark": lambda d: vram.mark("x", d),
                 "sim_set_usage": lambda d: vram.sim_set_usage("1GiB", d),
                 "register_resident": lambda d: vram.register_resident("m", "1GiB", device=d),
                 "lease": lambda d: vram.lease("1GiB", device=d, via="local").acquire(),
                 "available": lambda d: vram.available(d, via="local"),
                 "plan": lambda d: vram.plan("sadtalker", device=d)}
        for name, call in calls.items():
            for d in (big, 2**31, -1):
                with self.assertRaises(vram.InvalidValue, msg="%s(%d)" % (name, d)) as e:
                    call(d)
                self.assertIn("device %d" % d, str(e.exception))
                self.assertNotIn("4294967295", str(e.exception))
            for d in ("0", None, 0.5, True):
                if d is None and name in ("lease",):
                    continue        # None: any device
                with self.assertRaises(TypeError, msg="%s(%r)" % (name, d)):
                    call(d)
        with self.assertRaises(vram.NotFound):
            vram.device(1)
        self.assertEqual(vram.marks().count("\n"), 1)     # no mark was made
        self.assertEqual(vram.device(0)["leased_bytes"], 0)
        self.assertEqual(vram.device(0)["resident_bytes"], 0)
        with self.assertRaises(vram.InvalidValue):
            vram.lease("1GiB", priority=2**40, via="local")
        with self.assertRaises(vram.InvalidValue) as e:
            vram.Scheduler(workers=big)
        self.assertIn("workers %d" % big, str(e.exception))
        with self.assertRaises(vram.InvalidValue):
            vram.Scheduler(workers=-1)
        with self.assertRaises(TypeError):
            vram.Scheduler(workers=2.5)
        with vram.Scheduler(workers=1, cleanup=[]) as s:
            for kwargs in (dict(device=big), dict(device=-1), dict(priority=2**40),
                           dict(priority=-2**31 - 1)):
                with self.assertRaises(vram.InvalidValue, msg=str(kwargs)):
                    s.submit(lambda: 1, vram="1GiB", **kwargs)
            with self.assertRaises(TypeError):
                s.submit(lambda: 1, vram="1GiB", device="0")
            self.assertEqual(s.stats()["submitted"], 0)
            s.submit(lambda: 1, vram="1GiB", device=0, priority=2**31 - 1)
            self.assertEqual(list(s.results()), [1])

    def test_text_for_c_is_a_str_without_nul_bytes(self):
        with self.assertRaises(vram.InvalidValue) as e:
            vram.parse_size("1GiB\x00junk")      # was 1 GiB
        self.assertIn("NUL", str(e.exception))
        cut = {"resident name": lambda t: vram.register_resident(t, "1GiB"),
               "stage": lambda t: vram.mark(t),
               "holder": lambda t: vram.lease("1GiB", holder=t, via="local"),
               "disk": lambda t: vram.status(disk=t, via="local"),
               "setting steps": lambda t: vram.estimate("sadtalker", steps=t),
               "model": lambda t: vram.plan(t)}
        for what, call in cut.items():
            for t in ("a\x00b", "\udcff"):
                with self.assertRaises(vram.InvalidValue, msg="%s %r" % (what, t)) as e:
                    call(t)
                self.assertIn(what, str(e.exception))
        for what, call in (("resident name", lambda: vram.register_resident(None, "1GiB")),
                           ("disk", lambda: vram.status(disk=5, via="local")),
                           ("holder", lambda: vram.lease("1GiB", holder=5, via="local")),
                           ("task_class", lambda: vram.lease("1GiB", task_class=b"x", via="local"))):
            with self.assertRaises(TypeError, msg=what) as e:
                call()
            self.assertIn(what, str(e.exception))
        with vram.Scheduler(workers=1, cleanup=[]) as s:
            for kwargs in (dict(task_class="a\x00b"), dict(task_class="\udcff")):
                with self.assertRaises(vram.InvalidValue):
                    s.submit(lambda: 1, vram="1GiB", **kwargs)
            with self.assertRaises(TypeError):
                s.submit(lambda: 1, vram="1GiB", resident=5)
            with self.assertRaises(TypeError):
                s.submit(lambda: 1, vram="1GiB", task_class=5)
            self.assertEqual(s.stats()["submitted"], 0)
        self.assertEqual(vram.device(0)["resident_bytes"], 0)
        self.assertEqual(vram.marks().count("\n"), 1)     # no mark was made
        with vram.lease("1GiB", holder="ok", task_class="", via="local") as l:
            self.assertEqual(l.via, "local")


if __name__ == "__main__":
    unittest.main()
