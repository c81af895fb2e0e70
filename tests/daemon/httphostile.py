# SPDX-License-Identifier: MIT
"""tests/daemon/httphostile.py - what a hostile local user or web page tries
on vramd's dashboard (daemon/http.c).

    httphostile.py URL timewait    read URL's /api/jobs from a source port that
                                   TIME_WAIT rows (uid 0 in /proc/net/tcp, no
                                   inode) share; print each job's command
    httphostile.py URL host NAME   read URL's /api/jobs with Host: NAME, as a
                                   page at NAME that rebinds it to this
                                   machine would; print each job's command
"""
import json
import socket
import sys
from urllib.parse import urlsplit


def jobs(s, host):
    s.sendall(("GET /api/jobs HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host).encode())
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return ["HTTP: " + head.split(b"\r\n")[0].decode()]
    return [j["command"] for j in json.loads(body)["jobs"]]


def reuse(port=0):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    return s


def timewait(addr):
    """Leaves TIME_WAIT rows for one source port (this end closes first),
    each to another listener of its own, then connects from that port."""
    listeners = []
    for _ in range(8):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listeners.append(listener)
    seen = []
    for _ in range(10):
        port = 0
        for listener in listeners:
            s = reuse(port)
            port = s.getsockname()[1]
            s.connect(listener.getsockname())
            peer, _ = listener.accept()
            s.close()
            peer.close()
        s = reuse(port)
        s.connect(addr)
        seen += jobs(s, "%s:%d" % addr)
        s.close()
    return seen


def main():
    url = urlsplit(sys.argv[1])
    addr = (url.hostname, url.port)
    if sys.argv[2] == "timewait":
        seen = timewait(addr)
    else:
        seen = jobs(socket.create_connection(addr), sys.argv[3])
    for command in sorted(set(seen)):
        print(command)


if __name__ == "__main__":
    main()
