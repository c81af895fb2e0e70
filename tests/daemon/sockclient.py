# SPDX-License-Identifier: MIT
"""tests/daemon/sockclient.py - speaks vramd's socket protocol for tests.

    sockclient.py SOCKET raw TEXT          send TEXT as is, print what comes back
    sockclient.py SOCKET call JSON         one request line, print the reply line
    sockclient.py SOCKET hold-lease SIZE [HOLDER [RELEASE]]
                                           lease SIZE (named HOLDER), print the
                                           reply and "granted", then ask to release
                                           lease RELEASE (another's) and print the
                                           reply, then wait to be killed (the lease
                                           must come back)
    sockclient.py SOCKET submit-many N SIZE CMD   N submits pipelined, print the time
    sockclient.py SOCKET subscribe FILE     subscribe, touch FILE once subscribed, print
                                           every event until one says a job ended
                                           (or 20 s pass)
    sockclient.py SOCKET kill-and-time PID  kill -9 PID, then ask for the status on
                                           one connection until no bytes are leased;
                                           print the milliseconds (or "still N")
"""
import json
import os
import signal
import socket
import sys
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def read_line(s, f):
    line = f.readline()
    if not line:
        sys.exit("the daemon closed the connection")
    return line.rstrip("\n")


def main():
    path, what = sys.argv[1], sys.argv[2]
    s = connect(path)
    f = s.makefile("r")
    if what == "raw":
        s.sendall(sys.argv[3].encode())
        s.shutdown(socket.SHUT_WR)
        for line in f:
            print(line.rstrip("\n"))
    elif what == "call":
        s.sendall((sys.argv[3] + "\n").encode())
        print(read_line(s, f))
    elif what == "hold-lease":
        req = {"op": "lease", "vram": sys.argv[3], "id": 1}
        if len(sys.argv) > 4:
            req["holder"] = sys.argv[4]
        s.sendall((json.dumps(req) + "\n").encode())
        print(read_line(s, f), flush=True)
        print("granted", flush=True)
        if len(sys.argv) > 5:
            s.sendall((json.dumps({"op": "release", "lease": int(sys.argv[5]), "id": 2}) + "\n").encode())
            print(read_line(s, f), flush=True)
        time.sleep(3600)
    elif what == "submit-many":
        n, size, cmd = int(sys.argv[3]), sys.argv[4], sys.argv[5]
        req = {"op": "submit", "argv": ["/bin/sh", "-c", cmd], "vram": size, "cwd": "/tmp", "env": {"PATH": "/usr/bin:/bin"}}
        t0 = time.monotonic()
        batch = "".join(json.dumps(dict(req, id=i)) + "\n" for i in range(n))
        s.sendall(batch.encode())
        ok = sum(1 for _ in range(n) if json.loads(read_line(s, f)).get("ok"))
        dt = time.monotonic() - t0
        print(f"{ok} {dt:.3f}")
    elif what == "subscribe":
        s.sendall(b'{"op":"subscribe","id":"s"}\n')
        print(read_line(s, f), flush=True)
        open(sys.argv[3], "w").close()
        s.settimeout(20)
        try:
            for line in f:
                print(line.rstrip("\n"), flush=True)
                job = json.loads(line).get("job") or {}
                if job.get("state") in ("succeeded", "failed", "canceled"):
                    break
        except OSError:
            print("timed out", flush=True)
    elif what == "kill-and-time":
        def leased():
            s.sendall(b'{"op":"status"}\n')
            return sum(d["leased_bytes"] for d in json.loads(read_line(s, f))["status"]["devices"])
        os.kill(int(sys.argv[3]), signal.SIGKILL)
        t0 = time.monotonic()
        while leased() and time.monotonic() - t0 < 5:
            time.sleep(0.005)
        left = leased()
        print(f"{(time.monotonic() - t0) * 1000:.0f}" if not left else f"still {left}")


if __name__ == "__main__":
    main()
