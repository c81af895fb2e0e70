#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/demo/run.py - the main job's core (scripts/start.sh builds, then
runs this): starts vramd with its dashboard, submits the demo batch, says
what happens to each job as it happens, and keeps the daemon running until
Ctrl-C, which cancels what is left and stops it.

    examples/demo/run.py [--once] [--batch FILE] [--state DIR] [--port N]
                         [--vram-bin PATH]

Everything lives in one state folder (default build/demo): the daemon's
socket, queue, history, job logs, dashboard token and simulated card.  It
starts empty each time; a demo daemon still running there is left alone
(stop it first).  Without an NVIDIA GPU, or without PyTorch with CUDA to
drive one, the jobs run on a simulated 24 GiB card and the daemon says so.
The dashboard is on 127.0.0.1:7860, or on a free port when that one is
taken.  --once stops the daemon when the batch has ended and exits 0 only
when every job succeeded (for CI).
"""

import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOP = pathlib.Path(__file__).resolve().parents[2]
FINISHED = ("succeeded", "failed", "canceled")
GiB = 1 << 30


def say(line=""):
    print(line, flush=True)


def shown(path):
    """A path as short as it can be said from here."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else str(path)


def gib(nbytes):
    return "%.1f GiB" % (nbytes / GiB)


class Demo:
    def __init__(self, args):
        self.args = args
        self.bin = args.vram_bin
        self.state = pathlib.Path(args.state).resolve()
        self.daemon = None
        self.seen = {}              # job id -> (state, retry lines) last said
        self.batch = []             # the batch's job ids
        self.refused = False        # some rows were not queued
        self.t0 = time.monotonic()

    # ---- the state folder and the environment ------------------------------------

    def prepare(self):
        s = self.state
        s.mkdir(parents=True, exist_ok=True)
        sock = s / "vramd.sock"
        if len(str(sock)) > 100:    # a Unix socket's path has room for about 108 bytes
            base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.mkdtemp(prefix="vram-demo-")
            sock = pathlib.Path(base) / "vram-demo.sock"
        env = dict(os.environ,
                   VRAM_SOCKET=str(sock), VRAM_DB=str(s / "queue.db"),
                   VRAM_HISTORY=str(s / "history.db"), VRAM_TOKEN_FILE=str(s / "http-token"),
                   VRAM_SIM_STATE=str(s / "sim"))
        self.env = env
        if self.vram("queue", check=False).returncode == 0:
            sys.exit("a demo daemon already runs on %s; stop it (Ctrl-C where it was started, or "
                     "kill its vram serve) and start again" % shown(sock))
        for name in ("queue.db", "queue.db-wal", "queue.db-shm", "history.db", "history.db-wal",
                     "history.db-shm", "vramd.log"):
            (s / name).unlink(missing_ok=True)
        shutil.rmtree(s / "queue.db.logs", ignore_errors=True)
        shutil.rmtree(s / "sim", ignore_errors=True)
        (s / "sim").mkdir()
        self.choose_backend()

    def choose_backend(self):
        """Real cards when the driver shows one and PyTorch can use it; else
        the simulated card (the daemon says which)."""
        if self.env.get("VRAM_BACKEND"):
            return
        status = json.loads(self.vram("status", "--json", check=False).stdout or "{}")
        if status.get("simulated", True):
            return                  # no GPU: vramd falls back to the simulated card, saying so
        probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
        if subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode != 0:
            say("a GPU is here, but PyTorch with CUDA is not importable, and the demo's jobs "
                "need it to use the GPU: they run on the simulated card instead")
            self.env["VRAM_BACKEND"] = "sim"

    def vram(self, *argv, check=True):
        return subprocess.run([self.bin, *argv], env=self.env, cwd=TOP, capture_output=True,
                              text=True, check=check)

    # ---- the daemon ----------------------------------------------------------------

    def start_daemon(self):
        port = self.args.port
        log = self.state / "vramd.log"
        lines = self.spawn("127.0.0.1:%d" % port, log)
        if self.daemon.poll() is not None and any("port is in use" in l for l in lines):
            say("port %d is taken by another program: the dashboard goes on a free port instead"
                % port)
            lines = self.spawn("127.0.0.1:0", log)
        if self.daemon.poll() is not None:
            sys.exit("vramd did not start:\n  " + "\n  ".join(lines))
        for line in lines:
            if "dashboard http" not in line:       # said below, with the token
                say("  " + line)
        urls = [w for l in lines for w in l.split() if w.startswith("http://")]
        self.url = urls[0] if urls else "(no dashboard: see %s)" % shown(log)

    def spawn(self, http, log):
        """Starts vram serve; returns what it said once it answers on its
        socket (or has exited)."""
        with open(log, "w") as out:
            self.daemon = subprocess.Popen([self.bin, "serve", "--http", http], env=self.env,
                                           cwd=TOP, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True)   # Ctrl-C is ours to handle
        deadline = time.monotonic() + 15
        while self.daemon.poll() is None and time.monotonic() < deadline:
            if self.vram("queue", check=False).returncode == 0:
                break
            time.sleep(0.05)
        # "18:20:43 vramd: dashboard http://..." less the time
        return [l.split(" ", 1)[-1] for l in log.read_text().splitlines()]

    def stop_daemon(self):
        if not self.daemon or self.daemon.poll() is not None:
            return
        try:
            self.cancel_unfinished()
        finally:                    # whatever went wrong above, the daemon stops
            self.daemon.terminate()
            self.wait_daemon()

    def cancel_unfinished(self):
        left = [j["id"] for j in self.jobs() if j["state"] not in FINISHED]
        if not left:
            return
        say("canceling %d unfinished job%s" % (len(left), "" if len(left) == 1 else "s"))
        self.vram("cancel", *map(str, left), check=False)
        until = time.monotonic() + 10
        while time.monotonic() < until:
            jobs = self.jobs()
            for j in jobs:
                self.follow(j)
            if all(j["state"] in FINISHED for j in jobs):
                break
            time.sleep(0.2)

    def wait_daemon(self):
        try:
            self.daemon.wait(15)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
        say("vramd stopped (its log: %s)" % shown(self.state / "vramd.log"))

    # ---- the batch -------------------------------------------------------------------

    def submit(self):
        r = self.vram("submit", "--csv", str(self.args.batch), check=False)
        self.batch = [int(x) for x in r.stdout.split()]
        if r.returncode != 0:           # a bad row refuses the file; a refused row only itself
            say(r.stderr.rstrip())
            self.refused = True
            if not self.batch:
                sys.exit("nothing was queued from %s" % shown(self.args.batch))
        names = {j["id"]: j["name"] or j["command"] for j in self.jobs()}
        say("queued %d job%s from %s: %s" % (len(self.batch), "" if len(self.batch) == 1 else "s",
                                          shown(self.args.batch), ", ".join(
            "%d %s" % (i, names.get(i, "?")) for i in self.batch)))

    def jobs(self):
        r = self.vram("queue", "--json", check=False)
        return json.loads(r.stdout)["jobs"] if r.returncode == 0 else []

    def retries(self, job):
        """What the job's runner said about its out-of-memory retries."""
        try:
            text = pathlib.Path(job["log"]).read_text(errors="replace")
        except OSError:
            return []
        return [l[len("vram run: "):] for l in text.splitlines() if l.startswith("vram run: ") and
                ("ran out of GPU memory" in l or "retrying on rung" in l)]

    def follow(self, job):
        """Says what changed about one job since the last look."""
        was_state, said = self.seen.get(job["id"], ("queued", 0))
        name, state = job["name"] or "job %d" % job["id"], job["state"]
        stamp = "[%5.1f s]" % (time.monotonic() - self.t0)
        if state != "queued" and was_state == "queued" and job["started_unix_ms"]:
            say("%s %-9s started on GPU %d with %s, after %.1f s in the queue" % (
                stamp, name, job["device"], gib(job["estimate_bytes"]),
                (job["started_unix_ms"] - job["submitted_unix_ms"]) / 1000))
        lines = self.retries(job) if state != "queued" else []
        for line in lines[said:]:
            say("%s %-9s %s" % (stamp, name, line))
        if state in FINISHED and was_state not in FINISHED:
            say("%s %-9s %s" % (stamp, name, self.summary(job)))
        self.seen[job["id"]] = (state, max(said, len(lines)))

    def summary(self, job):
        """"succeeded in 2.8 s on attempt 2, peak 7.6 GiB of 8.5 GiB"; the
        budget is the last attempt's, from the history."""
        runs = json.loads(self.vram("history", "--json", "--job", job["name"] or
                                    "vramd-%d" % job["id"], check=False).stdout or '{"runs":[]}')["runs"]
        last = max(runs, key=lambda r: r["attempt"], default=None)
        budget = last["estimate_bytes"] if last else job["estimate_bytes"]
        secs = (job["ended_unix_ms"] - job["started_unix_ms"]) / 1000 if job["started_unix_ms"] \
            else 0
        text = "%s in %.1f s" % (job["state"], secs)
        if job["attempt"] > 1:
            text += " on attempt %d" % job["attempt"]
        if job["peak_bytes"] is None:   # vramd saw none of its memory in use
            text += ", no GPU memory seen in use (budget %s)" % gib(budget)
        else:
            text += ", peak %s of %s" % (gib(job["peak_bytes"]), gib(budget))
        if job["state"] == "failed":
            text += ", exit status %d" % job["exit_status"]
        if job["state"] != "succeeded" and job["reason"]:
            text += ": " + job["reason"]
        return text

    def run(self):
        self.prepare()
        say("starting vramd (state in %s)" % shown(self.state))
        self.start_daemon()
        self.submit()
        say("dashboard: %s  (cancel and submit there need the token in %s)"
            % (self.url, shown(self.state / "http-token")))
        say("the command line: VRAM_SOCKET=%s %s queue" % (shown(self.env["VRAM_SOCKET"]),
                                                           shown(self.bin)))
        said_end = False
        while True:
            jobs = self.jobs()
            if self.daemon.poll() is not None:
                say("vramd exited with status %d; see %s" % (self.daemon.returncode,
                                                            shown(self.state / "vramd.log")))
                return 1
            for j in sorted(jobs, key=lambda j: j["id"]):
                self.follow(j)
            mine = [j for j in jobs if j["id"] in self.batch]
            if not said_end and mine and all(j["state"] in FINISHED for j in mine):
                said_end = True
                ok = sum(j["state"] == "succeeded" for j in mine)
                retried = sum(j["attempt"] - 1 for j in mine)
                say("the demo batch ended in %.1f s: %d of %d succeeded, %d out-of-memory "
                    "retr%s" % (time.monotonic() - self.t0, ok, len(mine), retried,
                                "y" if retried == 1 else "ies"))
                say("every attempt with its peak: VRAM_HISTORY=%s %s history" % (
                    shown(self.env["VRAM_HISTORY"]), shown(self.bin)))
                if self.args.once:
                    return 0 if ok == len(mine) and not self.refused else 1
                say("vramd goes on serving %s; Ctrl-C stops it" % self.url)
            time.sleep(0.5)


def interrupt(signum, frame):
    """SIGTERM ends it as Ctrl-C does: what is left is canceled, vramd stops."""
    raise KeyboardInterrupt


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--once", action="store_true",
                   help="stop when the batch has ended; exit 0 only if every job succeeded")
    p.add_argument("--batch", default=str(TOP / "examples" / "demo" / "batch.csv"),
                   help="the CSV batch to submit (vram submit --csv)")
    p.add_argument("--state", default=str(TOP / "build" / "demo"), help="the state folder")
    p.add_argument("--port", type=int, default=7860, help="the dashboard's port, if free")
    p.add_argument("--vram-bin", default=str(TOP / "build" / "bin" / "vram"),
                   help="the vram command to use")
    args = p.parse_args()
    args.batch = os.path.abspath(args.batch)
    demo = Demo(args)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even if started with it ignored
    status = 1
    try:
        status = demo.run()
    except KeyboardInterrupt:
        say()
        status = 0
    finally:
        demo.stop_daemon()
    return status


if __name__ == "__main__":
    sys.exit(main())
