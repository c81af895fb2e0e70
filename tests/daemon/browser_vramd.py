# SPDX-License-Identifier: MIT
"""tests/daemon/browser_vramd.py - the real vramd's dashboard in headless Chromium.

    browser_vramd.py NAME CHROMIUM URL TOKEN_FILE COMMAND WORK SCREENSHOT

Where browser.py drives the page against a scripted stub, this opens the
page a running `vram serve` serves (on the simulated card) and checks, for
tests/run.sh: it loads with no console error, exception or failed request;
it shows the daemon's device and the SIMULATED banner; a job submitted
through the page's form (token pasted in) runs COMMAND for real, shows its
usage as it runs and its end when it ends; the chart has data; a lease a
client takes through the socket, named as the Slurm plugin names a task's,
shows as a row with that name.
"""
import base64
import os
import json
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser import Checks, chart_pixels, problems, row_state  # noqa: E402
from cdp import Browser  # noqa: E402

ROW = '(document.querySelector(\'#jobs tr[data-job="%s"]\') || {dataset: {}, textContent: ""})'


def run(c, chromium, url, token, command, work, screenshot):
    browser = Browser(chromium, work, os.path.join(os.path.dirname(screenshot), "chromium-vramd.log"))
    try:
        page = browser.page()
        for domain in ("Runtime", "Log", "Network", "Page"):
            page.call(domain + ".enable")
        page.call("Page.navigate", url=url)
        c.check("page_loads", page.wait_event("Page.loadEventFired"), "no load event")
        names, took = page.wait_for('(() => { const n = [...document.querySelectorAll(".device-name")]'
                                    '.map(e => e.textContent); return n.length ? n : null; })()', 10)
        c.check("shows_the_daemons_device", names == ["GPU 0 · RTX 4090"],
                "devices: %r after %.1f s" % (names, took))
        c.check("simulated_banner_shown",
                page.evaluate('!document.getElementById("sim-banner").hidden'))

        page.evaluate('document.getElementById("token").value = %r;'
                      'document.querySelector("#token-form button[type=submit]").click(); 1' % token)
        page.evaluate('document.getElementById("command").value = %r;'
                      'document.getElementById("vram").value = "3GiB";'
                      'document.querySelector("#submit-form button[type=submit]").click(); 1' % command)
        said, _ = page.wait_for('(() => { const t = document.getElementById("message").textContent;'
                                ' return t.startsWith("Submitted") ? t : ""; })()', 5)
        m = re.match(r"Submitted (\S+)\.$", said or "")
        c.check("submit_says_the_id", bool(m), "message: %r" % said)
        job = m.group(1) if m else "1"

        running, took = page.wait_for('(() => { const r = %s; return r.dataset.state === "running" &&'
                                      ' r.textContent.includes("2.0 GiB"); })()' % (ROW % job), 10)
        c.check("running_job_shows_its_real_usage", running,
                "row after %.1f s: %r" % (took, page.evaluate(ROW % job + ".textContent")))
        ours, _ = page.wait_for('(() => { const t = document.querySelector(\'.device[data-index="0"] '
                                '[data-field="ours"]\').textContent; return t === "3.0 GiB" ? t : ""; })()', 5)
        c.check("device_shows_the_jobs_lease_as_ours", ours == "3.0 GiB", "ours: %r" % ours)
        page.pump(1.0)
        start = time.time()
        ended, _ = page.wait_for('%s.dataset.state === "succeeded"' % (ROW % job), 15)
        c.check("page_follows_the_job_to_its_end", ended,
                "state %r after %.1f s" % (row_state(page, job), time.time() - start))
        c.check("chart_draws_ours", chart_pixels(page, (37, 99, 235)) > 50, "no pixels in the ours colour")

        held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        held.connect(os.environ["VRAM_SOCKET"])
        held.sendall(b'{"op": "lease", "vram": "1GiB", "holder": "slurm job 77 step 3 task 0"}\n')
        reply = json.loads(held.makefile("r").readline() or "{}")
        lease = reply.get("lease")
        shown, took = page.wait_for('(() => { const r = document.querySelector(\'#jobs tr[data-lease="%s"]\');'
                                    ' return r ? r.textContent : ""; })()' % lease, 10)
        cells, _ = page.wait_for('(() => { const r = document.querySelector(\'#jobs tr[data-lease="%s"]\');'
                                 ' return r ? r.children.length : 0; })()' % lease, 1)
        heads = page.evaluate('document.querySelectorAll("#jobs thead th").length')
        c.check("named_lease_shows_its_slurm_ids", bool(lease) and "slurm job 77 step 3 task 0" in (shown or "")
                and "1.0 GiB" in shown and cells == heads,
                "reply %r; row after %.1f s: %r (%r cells, %r columns)" % (reply, took, shown, cells, heads))
        held.close()
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print("# screenshot: %s" % screenshot)
        found = problems(page.events, url.rstrip("/"))
        c.check("no_console_errors_or_failed_requests", not found, "; ".join(found[:5]))
    finally:
        browser.close()


def main():
    name, chromium, url, token_file, command, work, screenshot = sys.argv[1:8]
    c = Checks(name)
    try:
        with open(token_file) as f:
            token = f.read().strip()
        run(c, chromium, url, token, command, work, screenshot)
    except Exception as e:  # a broken run is one failed check, with its reason
        c.check("run", False, "%s: %s" % (type(e).__name__, e))
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
