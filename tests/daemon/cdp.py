# SPDX-License-Identifier: MIT
"""tests/daemon/cdp.py - a headless Chromium driven over the DevTools protocol.

Standard library only: a minimal WebSocket client (RFC 6455: masked text
frames out, text/continuation/ping/close in), a DevTools session on one page
that keeps every event it sees, and the browser's start and stop with a
fresh profile.  The dashboard's browser test uses it.
"""
import base64
import hashlib
import json
import os
import select
import socket
import struct
import subprocess
import time
import urllib.parse
import urllib.request

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0"]


class WebSocket:
    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, url, timeout=10):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n"
                           % (u.path, u.hostname, u.port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("the browser closed the DevTools connection")
            head += chunk
        accept = base64.b64encode(hashlib.sha1((key + self.GUID).encode()).digest()).decode()
        if b" 101 " not in head.split(b"\r\n")[0] or accept.encode() not in head:
            raise ConnectionError("no WebSocket upgrade: %r" % head[:200])

    def send(self, text):
        data = text.encode()
        n = len(data)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(head + mask + body)

    def _exact(self, n):
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("the browser closed the DevTools connection")
            out += chunk
        return bytes(out)

    def ready(self, timeout):
        return bool(select.select([self.sock], [], [], timeout)[0])

    def recv(self):
        """The next whole text message."""
        message = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            mask = self._exact(4) if b1 & 0x80 else None
            data = self._exact(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("the browser closed the DevTools connection")
            if opcode == 0x9:
                self.sock.sendall(bytes([0x8A, 0x80 | len(data)]) + b"\0\0\0\0" + data)
                continue
            if opcode in (0x0, 0x1):
                message += data
                if b0 & 0x80:
                    return message.decode()

    def close(self):
        self.sock.close()


class Page:
    """A DevTools session on one page: calls, and every event kept."""

    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next_id = 0
        self.events = []

    def _take(self, msg):
        if "method" in msg:
            self.events.append(msg)

    def call(self, method, timeout=30, **params):
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        end = time.time() + timeout
        while time.time() < end:
            if not self.ws.ready(max(0.0, end - time.time())):
                break
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mine:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self._take(msg)
        raise TimeoutError("%s: no answer in %d s" % (method, timeout))

    def pump(self, seconds):
        """Collects events for a while."""
        end = time.time() + seconds
        while self.ws.ready(max(0.0, end - time.time())):
            self._take(json.loads(self.ws.recv()))
            if time.time() >= end:
                break

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expression, r["exceptionDetails"].get("text")))
        return r["result"].get("value")

    def wait_for(self, expression, timeout=10.0):
        """Polls expression until it is truthy; returns (value, seconds) or (None, timeout)."""
        start = time.time()
        while time.time() - start < timeout:
            value = self.evaluate(expression)
            if value:
                return value, time.time() - start
            self.pump(0.1)
        return None, timeout

    def wait_event(self, method, timeout=15.0):
        start = time.time()
        while time.time() - start < timeout:
            if any(e["method"] == method for e in self.events):
                return True
            self.pump(0.1)
        return False


class Browser:
    """Debian's chromium, headless, with a fresh profile in work/."""

    def __init__(self, binary, work, log_path, size=(1400, 1100)):
        profile = os.path.join(work, "chromium-profile")
        os.makedirs(profile, exist_ok=True)
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [binary] + FLAGS + ["--user-data-dir=" + profile,
                                "--window-size=%d,%d" % size, "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        port_file = os.path.join(profile, "DevToolsActivePort")
        end = time.time() + 60
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if time.time() > end or self.proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port (log: %s)" % log_path)
            time.sleep(0.1)
        time.sleep(0.1)
        with open(port_file) as f:
            self.port = int(f.readline())

    def page(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % self.port, timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        return Page(page["webSocketDebuggerUrl"])

    def version(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/json/version" % self.port, timeout=10) as r:
            return json.load(r).get("Browser", "?")

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
