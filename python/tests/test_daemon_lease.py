# SPDX-License-Identifier: MIT
"""python/tests/test_daemon_lease.py - vram.lease() through a running vramd.

Starts the daemon of this build on a simulated card; a lease taken with the
binding is the daemon's (it shows as ours in the daemon's status, and in
vram.status(), which asks the daemon), goes back when released, and comes
back by itself when the process holding it is killed.
"""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import vram  # noqa: E402

GiB = 1 << 30


def daemon_status(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b'{"op":"status"}\n')
    buf = b""
    while not buf.endswith(b"\n"):
        buf += s.recv(1 << 20)
    s.close()
    return json.loads(buf)["status"]["devices"][0]


class DaemonLeaseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        build = os.environ.get("VRAM_BUILD") or str(pathlib.Path(vram.library_path).parents[1])
        exe = pathlib.Path(build) / "bin" / "vram"
        if not exe.exists():
            raise unittest.SkipTest("no %s" % exe)
        cls.dir = tempfile.mkdtemp(prefix="vram-pylease-")
        os.mkdir(os.path.join(cls.dir, "state"))
        cls.sock = os.path.join(cls.dir, "vramd.sock")
        env = dict(os.environ, VRAM_BACKEND="sim", VRAM_SIM="G:24GiB", VRAM_SOCKET=cls.sock,
                   VRAM_SIM_STATE=os.path.join(cls.dir, "state"), VRAM_DB=os.path.join(cls.dir, "q.db"),
                   VRAM_HISTORY="-", VRAM_TOKEN_FILE=os.path.join(cls.dir, "token"), VRAM_HTTP="127.0.0.1:0")
        cls.env = env
        cls.daemon = subprocess.Popen([str(exe), "serve"], env=env, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(cls.sock):
                try:
                    daemon_status(cls.sock)
                    break
                except OSError:
                    pass
            time.sleep(0.05)
        vram.configure(backend="sim", sim="G:24GiB", socket=cls.sock)

    @classmethod
    def tearDownClass(cls):
        cls.daemon.send_signal(signal.SIGTERM)
        cls.daemon.wait(10)
        vram.configure()
        subprocess.call(["rm", "-rf", cls.dir])

    def test_lease_is_the_daemons(self):
        with vram.lease("6GiB") as l:
            self.assertEqual(l.via, "daemon")
            self.assertEqual(daemon_status(self.sock)["leased_bytes"], 6 * GiB)
        self.assertEqual(daemon_status(self.sock)["leased_bytes"], 0)

    def test_status_is_the_daemons_view(self):
        with vram.lease("3GiB") as l:
            self.assertEqual(l.via, "daemon")
            s = vram.status()
            self.assertTrue(s["from_daemon"])
            self.assertEqual(s["devices"][0]["leased_bytes"], 3 * GiB)
            self.assertEqual(s["devices"][0]["safe_available_bytes"],
                             daemon_status(self.sock)["safe_available_bytes"])
            local = vram.status(via="local")
            self.assertFalse(local["from_daemon"])
            self.assertEqual(local["devices"][0]["leased_bytes"], 0)
        self.assertEqual(vram.status()["devices"][0]["leased_bytes"], 0)

    def test_local_when_asked(self):
        with vram.lease("1GiB", via="local") as l:
            self.assertEqual(l.via, "local")
            self.assertEqual(daemon_status(self.sock)["leased_bytes"], 0)

    def test_a_killed_holder_gives_it_back(self):
        code = ("import sys, time; sys.path.insert(0, %r); import vram; "
                "vram.configure(backend='sim', sim='G:24GiB', socket=%r); "
                "l = vram.lease('5GiB').acquire(); print(l.via, flush=True); time.sleep(60)"
                % (str(pathlib.Path(vram.__file__).parents[1]), self.sock))
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=self.env, text=True)
        self.assertEqual(child.stdout.readline().strip(), "daemon")
        self.assertEqual(daemon_status(self.sock)["leased_bytes"], 5 * GiB)
        child.kill()
        child.wait()
        t0 = time.monotonic()
        while daemon_status(self.sock)["leased_bytes"] and time.monotonic() - t0 < 3:
            time.sleep(0.02)
        self.assertEqual(daemon_status(self.sock)["leased_bytes"], 0)
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_a_lease_larger_than_any_device_is_refused(self):
        with self.assertRaises(vram.Error) as e:
            vram.lease("40GiB").acquire()
        self.assertEqual(e.exception.name, "VRAM_ENOFIT")

    def test_daemon_errors_are_the_classes_a_python_user_expects(self):
        # As the local path raises them (python/tests/test_exceptions.py).
        with self.assertRaises(vram.OutOfMemory) as e:
            vram.lease("40GiB", via="daemon").acquire()
        self.assertEqual(e.exception.name, "VRAM_ENOFIT")
        with self.assertRaises(vram.NotFound) as e:
            vram.lease("1GiB", device=5, via="daemon").acquire()
        self.assertEqual(e.exception.name, "VRAM_ENODEV")
        self.assertIsInstance(e.exception, LookupError)
        with vram.lease("20GiB", via="daemon"):
            with self.assertRaises(TimeoutError) as e:
                vram.lease("10GiB", wait=0.2, via="daemon").acquire()
            self.assertIsInstance(e.exception, vram.Timeout)
        with self.assertRaises(vram.InvalidValue) as e:
            vram.lease(0, via="daemon").acquire()
        self.assertIsInstance(e.exception, ValueError)

    def test_a_negative_wait_is_refused_not_forever(self):
        got = []
        with vram.lease("20GiB") as l:
            self.assertEqual(l.via, "daemon")
            for wait in (-1, -0.001):
                def run():
                    try:
                        vram.lease("10GiB", wait=wait).acquire().release()
                        got.append(None)
                    except vram.Error as e:
                        got.append(e)
                t = threading.Thread(target=run, daemon=True)
                t.start()
                t.join(5)
                self.assertFalse(t.is_alive(), "wait=%r waited on" % wait)
                self.assertIsInstance(got.pop(), vram.InvalidValue)


if __name__ == "__main__":
    unittest.main()
