#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/pysched.py - what vram.Scheduler costs per task, side by side with
concurrent.futures.ThreadPoolExecutor on the same empty tasks.

    python3 bench/pysched.py [--tasks N] [--rounds R] [--workers W]

Each round submits N tasks that return None to each pool in turn (the order
flips every round) and collects every result in submission order; a task's
cost is the round's wall time over N.  The table gives each side's median
over the rounds and the ratio (goal, issue 13: vram within 1.5x), in wall
time and in CPU time of the process (steadier on a busy machine).  vram runs
on the simulated backend, with no cleanup hooks (nothing to clean after an
empty task), each task asking for 1 MiB of a 24 GiB card.
"""
import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "python"))
os.environ.setdefault("VRAM_BACKEND", "sim")
os.environ.setdefault("VRAM_SIM", "RTX 4090:24GiB")
import vram  # noqa: E402


def empty():
    return None


def with_executor(n, workers):
    t0, c0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(workers) as ex:
        futures = [ex.submit(empty) for _ in range(n)]
        for f in futures:
            f.result()
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def with_scheduler(n, workers):
    t0, c0 = time.perf_counter(), time.process_time()
    with vram.Scheduler(workers, cleanup=[]) as s:
        for _ in range(n):
            s.submit(empty, vram="1MiB")
        for _ in s.results():
            pass
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    with_scheduler(200, a.workers)          # warm: loads the library, opens the session
    with_executor(200, a.workers)
    tpe, sched = [], []
    for r in range(a.rounds):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            if side == 0:
                tpe.append(with_executor(a.tasks, a.workers))
            else:
                sched.append(with_scheduler(a.tasks, a.workers))
    t = statistics.median(w for w, _ in tpe) * 1e6
    s = statistics.median(w for w, _ in sched) * 1e6
    tc = statistics.median(c for _, c in tpe) * 1e6
    sc = statistics.median(c for _, c in sched) * 1e6
    print("vram %s  bench/pysched.py  (%d empty tasks a round, %d workers, %d rounds, medians)\n"
          % (vram.__version__, a.tasks, a.workers, a.rounds))
    print("| %-40s | %14s | %14s |" % ("pool", "wall per task", "CPU per task"))
    print("|------------------------------------------|----------------|----------------|")
    print("| %-40s | %11.1f us | %11.1f us |" % ("concurrent.futures.ThreadPoolExecutor", t, tc))
    print("| %-40s | %11.1f us | %11.1f us |" % ("vram.Scheduler", s, sc))
    print("\nvram.Scheduler / ThreadPoolExecutor: %.2fx wall, %.2fx CPU (goal <= 1.5x: %s)"
          % (s / t, sc / tc, "met" if s <= 1.5 * t else "NOT MET"))
    goals = os.environ.get("VRAM_BENCH_GOALS")
    if goals:                           # one line for bench/goals.sh
        with open(goals, "a") as f:
            f.write("Python scheduler per task against ThreadPoolExecutor.submit\t<= 1.5x\t"
                    "%.2fx wall, %.2fx CPU (%.1f us against %.1f us)\t%s\n"
                    % (s / t, sc / tc, s, t, "met" if s <= 1.5 * t else "NOT MET"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
