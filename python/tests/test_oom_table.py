# SPDX-License-Identifier: MIT
"""python/tests/test_oom_table.py - the binding reads out-of-memory messages
with libvram's one table: every case of tests/runner/oom_messages.txt (the
file the C runner's test reads) gives the same verdict, pattern and bytes
here; the last line of each, as the exception a task would raise, is or is
not an out-of-memory; an out-of-memory's frames are cleared before the next
rung, so what the failed attempt held can be freed.  Also: the plan's
accelerate max_memory as accelerate takes it."""

import gc
import os
import pathlib
import sys
import unittest
import weakref

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.update(VRAM_BACKEND="sim", VRAM_SIM="T4:14.7GiB:8.5GiB,T4:14.7GiB:8.5GiB",
                  VRAM_HOST_RAM="256GiB")   # plans check host RAM: not this machine's
for name in ("VRAM_MARGIN", "VRAM_SIM_STATE"):
    os.environ.pop(name, None)

import vram                         # noqa: E402
from vram import _scheduler         # noqa: E402

TABLE = pathlib.Path(__file__).resolve().parents[2] / "tests" / "runner" / "oom_messages.txt"
MiB = 1 << 20


def cases():
    name = None
    for line in TABLE.read_text().splitlines():
        if line.startswith("=== "):
            if name:
                yield name, verdict, pattern, tried, "\n".join(body) + "\n"
            name, verdict, pattern, tried = line[4:].split()
            tried, body = int(tried), []
        elif name:
            body.append(line)
    yield name, verdict, pattern, tried, "\n".join(body) + "\n"


def as_exception(last_line):
    """The exception a Python task would have raised for `last_line`."""
    head, sep, message = last_line.partition(": ")
    cls_name = head.rsplit(".", 1)[-1] if sep and " " not in head else "RuntimeError"
    if not sep or " " in head:
        message = last_line
    return type(cls_name, (Exception,), {})(message)


class OomTable(unittest.TestCase):
    def test_every_message_as_the_c_runner_reads_it(self):
        seen = 0
        for name, verdict, pattern, tried, text in cases():
            with self.subTest(case=name):
                r = _scheduler.oom_report(text)
                if verdict == "oom":
                    self.assertIsNotNone(r, name)
                    self.assertEqual(r["pattern"], pattern, name)
                    self.assertEqual(r["tried_bytes"], tried, name)
                else:
                    self.assertIsNone(r, name)
            seen += 1
        self.assertGreaterEqual(seen, 20)

    def test_the_final_exception_of_each_is_or_is_not_out_of_memory(self):
        for name, verdict, _, _, text in cases():
            last = [l for l in text.splitlines() if l.strip()][-1]
            if verdict == "oom" and not last.startswith((" ", "\t", "[", "Hint", "For ", "Compile",
                                                         "node1", "20")):
                with self.subTest(case=name):
                    self.assertTrue(vram.is_out_of_memory(as_exception(last)), last)
        self.assertFalse(vram.is_out_of_memory(KeyError("'wan2.3'")))
        self.assertFalse(vram.is_out_of_memory(ValueError("could not read frame 120")))

    def test_allowed_is_the_room_under_a_memory_fraction(self):
        e = RuntimeError("CUDA out of memory. Tried to allocate 512.00 MiB (GPU 0; 23.69 GiB "
                         "total capacity; 3.20 GiB already allocated; 19.80 GiB free; 3.55 GiB "
                         "allowed; 3.50 GiB reserved in total by PyTorch)")
        # 3.55 - 3.50 GiB of room: short by 512 MiB less 51.2 MiB, not 0 (19.8 GiB free).
        self.assertAlmostEqual(vram.shortfall_of(e) / MiB, 512 - 0.05 * 1024, delta=1)

    def test_an_out_of_memory_keeps_only_its_type_and_message(self):
        class Tensor:
            pass

        held = []
        reasons = []

        def attempt():
            t = Tensor()            # what the failed attempt holds, in its frame
            held.append(weakref.ref(t))
            raise type("OutOfMemoryError", (RuntimeError,), {})(
                "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
                "14.75 GiB of which 1.06 GiB is free.")

        def cleanup():
            gc.collect()
            reasons.append(held[-1]() is None)

        with vram.Scheduler(workers=1, cleanup=[cleanup]) as s:
            s.submit(attempt, bytes="1GiB", ladder=[("512MiB", attempt)])
            (o,) = list(s.outcomes())
        self.assertEqual(o.status, "failed")
        self.assertTrue(reasons and all(reasons), reasons)    # freed before each cleanup
        self.assertIsInstance(o.exception, vram.OutOfMemory)
        self.assertIn("OutOfMemoryError: CUDA out of memory", str(o.exception))
        self.assertIsNone(o.exception.__traceback__)


class Device(unittest.TestCase):
    def test_a_task_learns_the_device_it_was_admitted_on(self):
        seen = []
        self.assertIsNone(vram.current_device())
        with vram.Scheduler(workers=1) as s:
            s.submit(lambda: seen.append(vram.current_device()) or "x", bytes="1GiB")
            list(s.outcomes())
        self.assertEqual(seen, ["cuda:0"])
        self.assertIsNone(vram.current_device())

    def test_the_second_device_and_the_cpu_are_told_as_such(self):
        seen = {}
        with vram.Scheduler(workers=2) as s:
            s.submit(lambda: seen.setdefault("one", vram.current_device()), vram="1GiB", device=1)
            # Larger than any device: with cpu_ok it runs on the CPU, and knows it.
            s.submit(lambda: seen.setdefault("big", vram.current_device()), vram="100GiB",
                     cpu_ok=True, wait=0)
            outs = list(s.outcomes())
        self.assertEqual([o.status for o in outs], ["done", "done"])
        self.assertEqual([o.device for o in outs], [1, "cpu"])
        self.assertEqual(seen, {"one": "cuda:1", "big": "cpu"})


    def test_with_torch_loaded_the_device_is_cudas_number_found_by_uuid(self):
        import types
        uuids = [d["uuid"] for d in vram.status(via="local")["devices"]]
        self.assertEqual(len(uuids), 2)

        class Props:
            def __init__(self, uuid):
                self.uuid = uuid
        # CUDA numbers the two the other way round (fastest first, say).
        cuda = types.SimpleNamespace(is_available=lambda: True, device_count=lambda: 2,
                                     get_device_properties=lambda i: Props(uuids[1 - i]),
                                     empty_cache=lambda: None)
        saved = sys.modules.get("torch")
        import importlib.machinery
        fake = types.ModuleType("torch")
        fake.__spec__ = importlib.machinery.ModuleSpec("torch", None)
        fake.cuda = cuda
        sys.modules["torch"] = fake
        _scheduler._ORDINALS.clear()
        seen = {}
        try:
            with vram.Scheduler(workers=1) as s:
                s.submit(lambda: seen.setdefault(1, vram.current_device()), vram="1GiB", device=1)
                s.submit(lambda: seen.setdefault(0, vram.current_device()), vram="1GiB", device=0)
                list(s.outcomes())
        finally:
            if saved is None:
                del sys.modules["torch"]
            else:
                sys.modules["torch"] = saved
            _scheduler._ORDINALS.clear()
        self.assertEqual(seen, {1: "cuda:0", 0: "cuda:1"})


class Accelerate(unittest.TestCase):
    def test_max_memory_has_integer_gpu_keys_and_room_for_activations(self):
        from vram import _native
        if not _native.has_planner:
            self.skipTest("this libvram has no planner")
        p = vram.plan("hunyuanvideo-avatar", budget="10GiB", device=0, audio=3)
        mm = p["accelerate"]["max_memory"]
        self.assertIn(0, mm)
        self.assertNotIn("0", mm)
        self.assertIn("cpu", mm)
        self.assertLess(mm[0], 10 << 30)
        self.assertIn(p["accelerate"]["device_map"], ("balanced", None))
        self.assertEqual(p["accelerate"]["device_map"] is None, p["accelerate"]["offload"] != "none")
        self.assertIn("transformer", p["accelerate"]["placement"])
        e = p["estimate"]
        self.assertAlmostEqual(mm[0], (10 << 30) - e["activation_bytes"] - e["overhead_bytes"] -
                               e["margin_bytes"], delta=2)


if __name__ == "__main__":
    unittest.main()
