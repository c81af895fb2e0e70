# SPDX-License-Identifier: MIT
"""tests/slurm/leases.py - what vramd has leased, for the Slurm tests.

    leases.py SOCKET leased                    the bytes leased now, all devices
    leases.py SOCKET wait BYTES SECONDS        until exactly BYTES are leased:
                                               prints the milliseconds it took,
                                               or "still N" after SECONDS
"""
import json
import socket
import sys
import time


def main():
    path, what = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    f = s.makefile("r")

    def leased():
        s.sendall(b'{"op": "status"}\n')
        line = f.readline()
        if not line:
            sys.exit("the daemon closed the connection")
        return sum(d["leased_bytes"] for d in json.loads(line)["status"]["devices"])

    if what == "leased":
        print(leased())
    elif what == "wait":
        want, limit = int(sys.argv[3]), float(sys.argv[4])
        t0 = time.monotonic()
        now = leased()
        while now != want and time.monotonic() - t0 < limit:
            time.sleep(0.005)
            now = leased()
        print(f"{(time.monotonic() - t0) * 1000:.0f}" if now == want else f"still {now}")


if __name__ == "__main__":
    main()
