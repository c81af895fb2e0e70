# SPDX-License-Identifier: MIT
"""python/tests/test_scheduler.py - vram.Scheduler on the simulated
SadTalker card: three frames at once, results in order, the ladder and the
three ways to say "out of memory", what classes learn, fallbacks, failures,
bad input, shutdown with tasks in flight, cleanup hooks that free memory,
frames resampled to the first, progress, the CPU, and leases sharing the
queue."""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.update(VRAM_BACKEND="sim", VRAM_SIM="T4:14.7GiB:8.5GiB")
for name in ("VRAM_MARGIN", "VRAM_SIM_STATE"):
    os.environ.pop(name, None)

import vram                         # noqa: E402

GiB = 1 << 30
MiB = 1 << 20


def in_child(test, code, timeout=60):
    """Runs `code` in a fresh python3 with this package (a crash or a hang
    there fails the test, not the whole file); returns its stdout."""
    prelude = ("import sys; sys.path.insert(0, %r)\nimport vram, threading, time\n"
               % str(pathlib.Path(__file__).resolve().parents[1]))
    try:
        p = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        test.fail("hung for %ds:\n%s" % (timeout, code))
    test.assertEqual(p.returncode, 0, "exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))
    return p.stdout


class OutOfMemoryError(RuntimeError):
    """Named like PyTorch's."""


class Gauge:
    def __init__(self):
        self.lock = threading.Lock()
        self.now = self.most = 0

    def frame(self, i, seconds=0.03):
        def run():
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            time.sleep(seconds)
            with self.lock:
                self.now -= 1
            return i * 10
        return run


class SchedulerTests(unittest.TestCase):
    def setUp(self):
        vram.configure()

    def test_the_sadtalker_card_runs_three_frames_at_once_in_order(self):
        g = Gauge()
        with vram.Scheduler(workers=8) as s:
            ids = [s.submit(g.frame(i), bytes="1.5GiB") for i in range(12)]
            self.assertEqual(ids, list(range(12)))
            self.assertEqual(list(s.results()), [i * 10 for i in range(12)])
            self.assertEqual(s.stats()["done"], 12)
        self.assertEqual(g.most, 3)

    def test_out_of_memory_in_three_spellings_walks_the_ladder(self):
        calls = []

        def says(exc):
            def run():
                calls.append(type(exc).__name__)
                raise exc
            return run

        torch_msg = RuntimeError("CUDA out of memory. Tried to allocate 512.00 MiB. GPU 0 has "
                                 "a total capacity of 14.75 GiB of which 256.00 MiB is free.")
        self.assertEqual(vram.shortfall_of(torch_msg), 256 * MiB)
        self.assertTrue(vram.is_out_of_memory(OutOfMemoryError("x")))
        self.assertFalse(vram.is_out_of_memory(ValueError("bad frame")))
        with vram.Scheduler(workers=2) as s:
            s.submit(says(vram.OutOfMemory("batch 8 too big", shortfall=128 * MiB)), bytes="3GiB",
                     ladder=[("2GiB", says(OutOfMemoryError("batch 4"))),
                             ("1GiB", says(torch_msg))],
                     fallback=lambda: "original frame")
            (o,) = list(s.outcomes())
        self.assertEqual(calls, ["OutOfMemory", "OutOfMemoryError", "RuntimeError"])
        self.assertEqual(o.status, "fell back")
        self.assertEqual(o.result, "original frame")
        self.assertEqual(o.ooms, 3)
        self.assertEqual(o.error, "VRAM_EOOM")
        self.assertEqual(o.rung, "fallback")

    def test_a_class_learns_from_its_out_of_memory(self):
        tried = []

        def enhance():
            if not tried:
                tried.append(1)
                raise vram.OutOfMemory(shortfall=256 * MiB)
            return "ok"

        with vram.Scheduler(workers=1) as s:
            s.submit(enhance, bytes="1GiB", ladder=[("512MiB", enhance)])
            s.submit(enhance, bytes="1GiB")
            first, second = list(s.outcomes())
        self.assertEqual((first.status, first.rung, first.error), ("done", 1, None), first.reason)
        self.assertEqual(second.bytes, GiB + 256 * MiB)   # raised by the shortfall

    def test_error_codes_are_never_seen_half_read(self):
        # The flake above: its task raised OutOfMemory on a worker while the
        # collecting thread was reading the table of codes (VRAM_ETIMEDOUT);
        # the worker found it begun, not finished, and got KeyError
        # 'VRAM_EOOM', so the first task failed on rung 0.  Here a second
        # thread asks while the first is a few codes into the table.
        from vram import _native as n
        real = n.lib.vram_errname
        seen, calls = [], [0]

        def errname(value):
            calls[0] += 1
            if calls[0] == 10:
                def other():
                    try:
                        seen.append(n._code("VRAM_EOOM"))
                    except Exception as e:  # the old table: KeyError
                        seen.append(e)
                t = threading.Thread(target=other)
                t.start()
                t.join()
            return real(value)

        n._code("VRAM_EOOM")
        saved = dict(n._codes)
        n._codes.clear()
        n.lib.vram_errname = errname
        try:
            timed_out = n._code("VRAM_ETIMEDOUT")
        finally:
            n.lib.vram_errname = real
            n._codes.clear()
            n._codes.update(saved)
        self.assertEqual(seen, [saved["VRAM_EOOM"]])
        self.assertEqual(timed_out, saved["VRAM_ETIMEDOUT"])

    def test_failures_fall_back_or_raise_task_failed(self):
        def no_face():
            raise ValueError("no face in frame")

        with vram.Scheduler(workers=2) as s:
            s.submit(no_face, bytes="1GiB", fallback=lambda: "original")
            s.submit(no_face, bytes="1GiB")
            s.submit(lambda: "fine", bytes="1GiB")
            results = s.results()
            self.assertEqual(next(results), "original")
            with self.assertRaises(vram.TaskFailed) as e:
                next(results)
            self.assertIsInstance(e.exception.__cause__, ValueError)
            self.assertIn("ValueError: no face in frame", e.exception.outcome.reason)
            self.assertEqual(e.exception.outcome.task_id, 1)
            self.assertEqual([o.result for o in s.outcomes()], ["fine"])
            st = s.stats()
        self.assertEqual((st["done"], st["fell_back"], st["failed"]), (1, 1, 1))

    def test_bad_input_raises_errors_that_name_the_problem(self):
        with vram.Scheduler(workers=1) as s:
            cases = [
                (dict(fn=None, vram="1GiB"), "VRAM_EINVAL", "no callback"),
                (dict(fn=lambda: 1, bytes=0), "VRAM_EINVAL", "0 bytes"),
                (dict(fn=lambda: 1, bytes=-5), "VRAM_EINVAL", "negative"),
                (dict(fn=lambda: 1, bytes="1GiB", ladder=[("2GiB", lambda: 1)]), "VRAM_EINVAL",
                 "rungs must get cheaper"),
                (dict(fn=lambda: 1, bytes="1GiB", ladder=[("512MiB", None)]), "VRAM_EINVAL",
                 "no callback"),
                (dict(fn=lambda: 1, bytes="30GiB"), "VRAM_ENOFIT", "14.7 GiB in total"),
                (dict(fn=lambda: 1, bytes="1GiB", device=3), "VRAM_ENODEV", "no device 3"),
                (dict(fn=lambda: 1, bytes="1.5XB"), "VRAM_EINVAL", "'1.5XB' is not a size"),
            ]
            for kwargs, name, text in cases:
                with self.assertRaises(vram.Error, msg=str(kwargs)) as e:
                    s.submit(**kwargs)
                self.assertEqual(e.exception.name, name, str(kwargs))
                self.assertIn(text, str(e.exception))
            with self.assertRaises(TypeError):
                s.submit(42)
            self.assertEqual(s.stats()["submitted"], 0)
        with self.assertRaises(vram.Error) as e:
            s.submit(lambda: 1)
        self.assertEqual(e.exception.name, "VRAM_ESHUTDOWN")

    def test_a_closed_scheduler_says_so_and_does_not_crash(self):
        out = in_child(self, """
for how in ("close", "reset"):
    for call in ("results", "outcomes", "stats", "submit"):
        s = vram.Scheduler(workers=1)
        s.submit(lambda: 1, vram="1GiB")
        s.close() if how == "close" else vram.reset()
        try:
            if call == "stats":
                s.stats()
            elif call == "submit":
                s.submit(lambda: 1, vram="1GiB")
            else:
                list(getattr(s, call)())
            print(how, call, "no error")
        except vram.Error as e:
            print(how, call, e.name)
        s.shutdown()
        s.close()
""")
        self.assertEqual(out.split("\n")[:-1], ["%s %s VRAM_ESHUTDOWN" % (how, call)
                                                for how in ("close", "reset")
                                                for call in ("results", "outcomes", "stats", "submit")])

    def test_close_races_with_submits_results_and_other_closes(self):
        # Submits from four threads while the main thread closes (it
        # crashed), and close from several threads at once (it hung).
        out = in_child(self, """
for round in range(20):
    s = vram.Scheduler(workers=2, cleanup=[])
    said = set()
    def submitter():
        try:
            for i in range(200):
                s.submit(lambda: 1, vram="1MiB", fallback=(lambda: 0) if i % 5 == 0 else None)
        except vram.Error as e:
            said.add(e.name)
    def collector():
        try:
            for _ in s.results():
                s.stats()
        except vram.Error as e:
            said.add(e.name)
    threads = [threading.Thread(target=submitter) for _ in range(4)] + [threading.Thread(target=collector)]
    for t in threads:
        t.start()
    time.sleep(0.001 * (round % 5))
    s.close()
    for t in threads:
        t.join()
    assert said <= {"VRAM_ESHUTDOWN"}, said
    s = vram.Scheduler(workers=2, cleanup=[])
    for _ in range(20):
        s.submit(lambda: time.sleep(0.001), vram="1MiB")
    closers = [threading.Thread(target=s.close) for _ in range(4)]
    for t in closers:
        t.start()
    for t in closers:
        t.join()
print("ok")
""", timeout=120)
        self.assertEqual(out, "ok\n")

    def test_shutdown_with_tasks_in_flight_reports_every_one(self):
        g = Gauge()
        s = vram.Scheduler(workers=4)
        for i in range(5):
            s.submit(g.frame(i, 0.1), bytes="3GiB")     # one at a time on 4.73 GiB
        while not g.most:
            time.sleep(0.005)
        s.shutdown(cancel=True)
        statuses = [o.status for o in s.outcomes()]
        s.close()
        self.assertEqual(len(statuses), 5)
        self.assertEqual(statuses[0], "done")
        self.assertEqual(statuses.count("canceled"), 4)

    def test_cleanup_hooks_run_after_each_task_and_report_what_they_freed(self):
        state = tempfile.mkdtemp(prefix="vram-py-")
        try:
            vram.configure(sim_state=state)
            freed = []

            def allocate():
                vram.sim_set_usage("1GiB")
                return "frame"

            def empty_cache():
                freed.append(1)
                vram.sim_set_usage(0)

            with vram.Scheduler(workers=1, cleanup=[empty_cache]) as s:
                for _ in range(3):
                    s.submit(allocate, bytes="1.5GiB")
                outcomes = list(s.outcomes())
                st = s.stats()
            self.assertEqual(len(freed), 3)
            self.assertEqual([o.freed_bytes for o in outcomes], [GiB] * 3)
            self.assertEqual(st["cleanup_freed_bytes"], 3 * GiB)
        finally:
            vram.configure()
            shutil.rmtree(state)

    def test_an_odd_frame_is_resampled_to_the_first(self):
        def frame(w, h, c, value):
            return lambda: vram.Image(w, h, c, bytes([value]) * (w * h * c))

        with vram.Scheduler(workers=3) as s:
            s.submit(frame(8, 6, 3, 100), bytes="1GiB")
            s.submit(frame(16, 12, 4, 100), bytes="1GiB")
            s.submit(frame(8, 6, 3, 50), bytes="1GiB")
            outcomes = list(s.outcomes())
            st = s.stats()
        self.assertEqual([o.resampled for o in outcomes], [False, True, False])
        odd = outcomes[1].result
        self.assertIsInstance(odd, vram.Image)
        self.assertEqual((odd.width, odd.height, odd.channels), (8, 6, 3))
        self.assertEqual(set(bytes(odd.data)), {100})
        self.assertEqual(st["resampled"], 1)

    def test_numpy_frames_come_back_as_numpy(self):
        try:
            import numpy as np
        except ImportError:
            self.skipTest("numpy is not installed")
        with vram.Scheduler(workers=2) as s:
            s.submit(lambda: np.full((6, 8, 3), 7, np.uint8), bytes="1GiB")
            s.submit(lambda: np.full((12, 16), 7, np.uint8), bytes="1GiB")
            a, b = list(s.results())
        self.assertEqual(b.shape, (6, 8, 3))
        self.assertTrue((b == 7).all())

    def test_progress_is_reported_after_every_task(self):
        seen = []
        with vram.Scheduler(workers=2, progress=seen.append) as s:
            for i in range(6):
                s.submit(lambda: None, bytes="1GiB")
            list(s.results())
        self.assertEqual(len(seen), 6)
        self.assertEqual(seen[-1]["done"], 6)
        self.assertEqual(len(seen[-1]["leased_bytes"]), 1)

    def test_cpu_ok_tasks_run_on_the_cpu_when_no_device_frees_in_time(self):
        with vram.lease("4GiB"):
            with vram.Scheduler(workers=2) as s:
                s.submit(lambda: "on cpu", bytes="2GiB", cpu_ok=True, wait=0.05)
                (o,) = list(s.outcomes())
        self.assertEqual(o.device, "cpu")
        self.assertEqual(o.result, "on cpu")

    def test_leases_and_tasks_wait_in_one_queue(self):
        order = []
        held = vram.lease("4GiB").acquire()
        with vram.Scheduler(workers=2) as s:
            s.submit(lambda: order.append("task"), bytes="1.5GiB")
            time.sleep(0.1)
            order.append("release")
            held.release()
            list(s.results())
        self.assertEqual(order, ["release", "task"])

    def test_tasks_from_three_threads_run_once_each_and_come_back_in_id_order(self):
        # submit()'s short path (plain tasks, the GIL kept over the C call)
        # and its long one (a fallback) interleaved, from three threads.
        ran = {}
        lock = threading.Lock()
        ids = []

        def task(tag):
            def run():
                with lock:
                    ran[tag] = ran.get(tag, 0) + 1
                return tag
            return run

        def submitter(k):
            for i in range(300):
                tag = (k, i)
                if i % 7 == 0:
                    tid = s.submit(task(tag), vram="1MiB", fallback=lambda: "fell back")
                else:
                    tid = s.submit(task(tag), vram=MiB)
                with lock:
                    ids.append((tid, tag))

        with vram.Scheduler(workers=3, cleanup=[]) as s:
            threads = [threading.Thread(target=submitter, args=(k,)) for k in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            outcomes = list(s.outcomes())
        self.assertEqual(sorted(tid for tid, _ in ids), list(range(900)))
        by_id = dict(ids)
        self.assertEqual([o.task_id for o in outcomes], list(range(900)))
        self.assertEqual([o.result for o in outcomes], [by_id[i] for i in range(900)])
        self.assertEqual(set(ran.values()), {1})
        self.assertEqual(len(ran), 900)

    def test_a_worker_keeps_its_python_thread_state_from_task_to_task(self):
        # The pool's C threads keep one Python thread state each, so a
        # threading.local set by one task is there for the next on that worker.
        local = threading.local()
        seen = []

        def count():
            local.n = getattr(local, "n", 0) + 1
            return threading.get_ident(), local.n

        for _ in range(3):          # closing deletes the kept states; again, and again
            with vram.Scheduler(workers=2, cleanup=[]) as s:
                for _ in range(200):
                    s.submit(count, vram=MiB)
                got = list(s.results())
            per_thread = {}
            for ident, n in got:
                per_thread.setdefault(ident, []).append(n)
            self.assertLessEqual(len(per_thread), 2)
            for ns in per_thread.values():
                self.assertEqual(sorted(ns), list(range(1, len(ns) + 1)))
            seen.append(len(got))
        self.assertEqual(seen, [200, 200, 200])


if __name__ == "__main__":
    unittest.main()
