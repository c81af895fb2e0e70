# SPDX-License-Identifier: MIT
"""tests/daemon/dashstub.py - runs tests/helpers/dashstub for Python tests.

Starts the stub on simulated cards (two devices, one with another
program's memory that changes over time), reads its address and token,
and offers get/post over HTTP and the stub's stdin commands.  Standard
library only.

As a program, `dashstub.py metrics STUB OUT` makes some history (jobs
submitted, run, retried, finished) and writes the served /metrics to OUT,
for promtool.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SPEC = """clock ms
device "NVIDIA GeForce RTX 4090" total=24GiB used=0 reserved=512MiB uuid=GPU-5f2a6c1e-0d1b-4c8e-9a77-24aa0b1c4090
device "Tesla T4" total=15GiB used=0 uuid=GPU-3c9e4f10-7a2b-4b6d-8e01-000000000054
process pid=4242 name=ComfyUI device=0 usage=0:3GiB,6000:4.5GiB,12000:3.5GiB
process pid=5151 name=python3 device=1 usage=0:6GiB,9000:7GiB
"""


class Stub:
    def __init__(self, binary, work, window_ms=30000):
        os.makedirs(os.path.join(work, "state"), exist_ok=True)
        spec = os.path.join(work, "sim.spec")
        with open(spec, "w") as f:
            f.write(SPEC)
        env = dict(os.environ, VRAM_SIM="@" + spec, VRAM_SIM_STATE=os.path.join(work, "state"))
        token_file = os.path.join(work, "token")
        self.log = open(os.path.join(work, "dashstub.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "--token-file", token_file, "--window-ms", str(window_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("url "):
            raise RuntimeError("the stub did not start: see " + self.log.name)
        self.url = line.split()[1]
        with open(token_file) as f:
            self.token = f.read().strip()

    def command(self, text):
        """Sends one stdin command; raises unless the stub says ok."""
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError("stub: %s: %s" % (text, answer))

    def get(self, path):
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()

    def post(self, path, body):
        req = urllib.request.Request(self.url + path.lstrip("/"), data=json.dumps(body).encode(),
                                     method="POST",
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def stop(self):
        """Asks the stub to quit; returns its exit status."""
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc


def make_history(stub):
    """A few jobs through every state, so every metric has a value."""
    ids = [stub.post("/api/jobs", {"command": "python job%d.py" % i, "vram": "2GiB"})[1]["id"]
           for i in range(3)]
    stub.command("start %s high" % ids[0])
    stub.command("progress %s 0.5 1GiB" % ids[0])
    stub.command("oom %s medium" % ids[0])
    stub.command("finish %s succeeded" % ids[0])
    stub.command("start %s" % ids[1])
    stub.post("/api/jobs/%s/cancel" % ids[2], {})
    stub.command("leak 4242 growing 12 MiB per frame")


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "metrics":
        sys.exit("usage: dashstub.py metrics STUB OUT")
    with tempfile.TemporaryDirectory() as work:
        stub = Stub(sys.argv[2], work)
        try:
            make_history(stub)
            status, ctype, text = stub.get("/metrics")
        finally:
            rc = stub.stop()
        with open(sys.argv[3], "w") as f:
            f.write(text)
        print("# /metrics: HTTP %d, %s, %d lines; the stub exited %d"
              % (status, ctype, text.count("\n"), rc))
        sys.exit(0 if status == 200 and rc == 0 else 1)


if __name__ == "__main__":
    main()
