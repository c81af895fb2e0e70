# SPDX-License-Identifier: MIT
"""tests/daemon/hostile.py - what a hostile local client tries on vramd's socket.

    hostile.py SOCKET peerpidfd          exit 0 when this kernel gives SO_PEERPIDFD
    hostile.py SOCKET dead-opener JOB    a child connects, hands the connection over
                                         and exits; print the reply to a claim of JOB
                                         sent on it
    hostile.py SOCKET wait-long SIZE     lease SIZE with the longest wait there is;
                                         print "waiting" if no answer comes in 1 s
    hostile.py SOCKET leases N           take N leases of 1 KiB on one connection,
                                         then release the first; print each refusal
                                         and the release's reply
    hostile.py SOCKET conns N UID        as UID, open N connections; print the reply
                                         of the first one refused (or "all taken")
    hostile.py SOCKET pipeline N         send N status requests at once and read
                                         no reply for a second (vramd stops reading
                                         while a MiB of them waits), then read them
                                         all; print how many came back ok
"""
import array
import json
import os
import socket
import sys
import threading
import time

SO_PEERPIDFD = 77


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def call(s, f, req):
    s.sendall((json.dumps(dict(v=1, **req)) + "\n").encode())
    line = f.readline()
    if not line:
        sys.exit("the daemon closed the connection")
    return line.rstrip("\n")


def dead_opener(path, job):
    """The opener's pid is the only thing a runner was known by; this one
    has ended, and its connection lives on in another process."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        s = connect(path)
        child.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [s.fileno()]))])
        os._exit(0)
    msg, anc, _, _ = parent.recvmsg(1, socket.CMSG_LEN(4))
    os.waitpid(pid, 0)              # gone, and reaped
    fd = array.array("i", anc[0][2][:4])[0]
    s = socket.socket(fileno=fd)
    print(call(s, s.makefile("r"), dict(op="job-claim", job=int(job), pid=pid)))


def main():
    path, what = sys.argv[1], sys.argv[2]
    if what == "peerpidfd":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            a.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD)
        except OSError:
            sys.exit(1)
        return
    if what == "dead-opener":
        dead_opener(path, sys.argv[3])
    elif what == "wait-long":
        s = connect(path)
        s.sendall((json.dumps(dict(v=1, op="lease", vram=sys.argv[3], wait_ms=9223372036854775807)) +
                   "\n").encode())
        s.settimeout(1.0)
        try:
            print(s.recv(4096).decode().rstrip("\n"))
        except socket.timeout:
            print("waiting")
    elif what == "leases":
        s = connect(path)
        f = s.makefile("r")
        first = None
        for _ in range(int(sys.argv[3])):
            reply = json.loads(call(s, f, dict(op="lease", vram="1KiB")))
            if not reply.get("ok"):
                print("refused:", reply.get("message"))
            elif first is None:
                first = reply["lease"]
        print("release:", call(s, f, dict(op="release", lease=first)))
    elif what == "pipeline":
        n = int(sys.argv[3])
        s = connect(path)
        sender = threading.Thread(target=s.sendall, args=(b'{"v":1,"op":"status"}\n' * n,))
        sender.start()
        time.sleep(1.0)
        f = s.makefile("r")
        good = 0
        for _ in range(n):
            line = f.readline()
            if not line:
                break
            good += '"ok":true' in line
        sender.join()
        print("ok replies:", good)
    elif what == "conns":
        os.setgid(int(sys.argv[4]))
        os.setuid(int(sys.argv[4]))
        held = []
        for _ in range(int(sys.argv[3])):
            s = connect(path)
            s.settimeout(5.0)
            f = s.makefile("r")
            try:
                s.sendall(b'{"v":1,"op":"hello"}\n')
            except OSError:
                pass                # refused and closed first: its line is still there to read
            reply = f.readline().rstrip("\n")
            if '"ok":true' not in reply:
                print(reply or "closed")
                return
            held.append((s, f))
        print("all taken")


main()
