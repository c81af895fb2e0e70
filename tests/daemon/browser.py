# SPDX-License-Identifier: MIT
"""tests/daemon/browser.py - the dashboard in a real headless Chromium.

    browser.py NAME CHROMIUM STUB WORK SCREENSHOT

Serves the page from tests/helpers/dashstub (simulated cards, scripted
jobs), opens it in Chromium over the DevTools protocol and checks, printing
"ok - NAME/check" or "not ok - NAME/check: why" for tests/run.sh:
the page loads with no console error, no exception and no failed request;
it shows both devices and the SIMULATED banner; a job submitted through the
page's form (with the token pasted into it) appears; it follows the job as
the stub runs it, retries it after an out-of-memory and ends it; a cancel
button works; the chart has data.  The screenshot goes to SCREENSHOT.
"""
import base64
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser  # noqa: E402
from dashstub import Stub  # noqa: E402

GiB = 1 << 30


class Checks:
    def __init__(self, name):
        self.name = name
        self.failed = 0

    def check(self, what, ok, why=""):
        if ok:
            print("ok - %s/%s" % (self.name, what))
        else:
            self.failed += 1
            print("not ok - %s/%s: %s" % (self.name, what, why))
        sys.stdout.flush()
        return ok


def problems(events, origin):
    """Console errors, exceptions and failed requests among the events."""
    found = []
    for e in events:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            found.append("console.%s: %s" % (p["type"], " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", []))))
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            found.append("exception: %s" % d.get("exception", {}).get("description", d.get("text")))
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            found.append("log: %s %s" % (p["entry"].get("text"), p["entry"].get("url", "")))
        elif m == "Network.loadingFailed":
            found.append("request failed: %s %s" % (p.get("errorText"), p.get("requestId")))
        elif m == "Network.responseReceived" and p["response"]["status"] >= 400:
            found.append("HTTP %d for %s" % (p["response"]["status"], p["response"]["url"]))
        elif m == "Network.requestWillBeSent" and not p["request"]["url"].startswith(origin):
            found.append("request outside the daemon: %s" % p["request"]["url"])
    return found


def row_state(page, job):
    return page.evaluate('(document.querySelector(\'#jobs tr[data-job="%s"]\') || {dataset: {}})'
                         '.dataset.state || ""' % job)


def submit_through_the_page(page, stub, c):
    page.evaluate('document.getElementById("token").value = %r;'
                  'document.querySelector("#token-form button[type=submit]").click(); 1' % stub.token)
    c.check("token_kept_in_the_tab",
            page.evaluate('sessionStorage.getItem("vram-token")') == stub.token and
            page.evaluate('document.getElementById("token").value') == "")
    page.evaluate('document.getElementById("command").value = "python lipsync.py --face a.png";'
                  'document.getElementById("vram").value = "6GiB";'
                  'document.querySelector("#submit-form button[type=submit]").click(); 1')
    said, _ = page.wait_for('document.getElementById("message").textContent', 5)
    c.check("submit_says_the_id", said == "Submitted j-1.", "message: %r" % said)
    state, took = page.wait_for('(document.querySelector(\'#jobs tr[data-job="j-1"]\') || '
                                '{dataset: {}}).dataset.state', 5)
    c.check("submitted_job_is_shown", state == "queued", "state %r after %.1f s" % (state, took))
    cells = page.evaluate('[...document.querySelectorAll(\'#jobs tr[data-job="j-1"] td\')]'
                          '.map(td => td.textContent)')
    c.check("job_row_has_command_and_estimate",
            cells and "python lipsync.py --face a.png" in cells and "6.0 GiB" in cells,
            "cells: %r" % cells)


def follow_the_job(page, stub, c):
    stub.command("start j-1 high")
    stub.command("progress j-1 0.35 5GiB")
    got, took = page.wait_for('(() => { const r = document.querySelector(\'#jobs tr[data-job="j-1"]\');'
                              ' return r && r.dataset.state === "running" &&'
                              ' r.textContent.includes("35%") && r.textContent.includes("5.0 GiB"); })()', 5)
    c.check("running_job_shows_tier_usage_and_progress", got,
            "row: %r" % page.evaluate('(document.querySelector(\'#jobs tr[data-job="j-1"]\')'
                                      ' || {}).textContent'))
    ours, _ = page.wait_for('(() => { const d = document.querySelector(\'.device[data-index="0"]\');'
                            ' const t = d.querySelector(\'[data-field="ours"]\').textContent;'
                            ' return t === "6.0 GiB" ? t : ""; })()', 5)
    c.check("device_shows_ours", ours == "6.0 GiB", "ours: %r" % ours)
    stub.command("oom j-1 medium")
    text, _ = page.wait_for('[...document.querySelectorAll("#events li")].map(l => l.textContent)'
                            '.find(t => t.includes("ran out of memory"))', 5)
    c.check("oom_retry_is_listed", text and "retrying at tier medium" in text, "events: %r" % text)
    stub.command("leak 4242 growing 12 MiB per frame")
    text, _ = page.wait_for('[...document.querySelectorAll("#events li")].map(l => l.textContent)'
                            '.find(t => t.includes("growing 12 MiB"))', 5)
    c.check("leak_is_listed", bool(text), "no leak in the events")
    page.pump(1.5)                      # a little chart history with the job on the card
    start = time.time()
    stub.command("finish j-1 succeeded")
    state, _ = page.wait_for('(document.querySelector(\'#jobs tr[data-job="j-1"]\') || '
                             '{dataset: {}}).dataset.state === "succeeded"', 5)
    took = time.time() - start
    c.check("page_follows_the_job_to_its_end", state,
            "state %r after %.2f s" % (row_state(page, "j-1"), took))
    print("# the page showed the job's end %.0f ms after it ended" % (took * 1000))


def cancel_through_the_page(page, stub, c):
    status, reply = stub.post("/api/jobs", {"command": "python t2v.py --res 720p", "vram": "12GiB"})
    job = reply.get("id")
    stub.post("/api/jobs", {"command": "python enhance.py frames/", "vram": "3GiB"})
    stub.command("start j-3 balanced")
    stub.command("progress j-3 0.6 2.5GiB")
    found, _ = page.wait_for('!!document.querySelector(\'#jobs tr[data-job="%s"] button.cancel\')'
                             % job, 5)
    c.check("queued_job_has_a_cancel_button", status == 201 and found, "status %s" % status)
    if found:
        page.evaluate('document.querySelector(\'#jobs tr[data-job="%s"] button.cancel\').click(); 1' % job)
    state, _ = page.wait_for('(document.querySelector(\'#jobs tr[data-job="%s"]\') || '
                             '{dataset: {}}).dataset.state === "canceled"' % job, 5)
    c.check("cancel_button_cancels", bool(state), "state %r" % row_state(page, job))


def check_devices(page, c):
    names, took = page.wait_for('(() => { const n = [...document.querySelectorAll(".device-name")]'
                                '.map(e => e.textContent); return n.length === 2 ? n : null; })()', 10)
    c.check("shows_both_devices", names == ["GPU 0 · NVIDIA GeForce RTX 4090", "GPU 1 · Tesla T4"],
            "devices: %r after %.1f s" % (names, took))
    c.check("simulated_banner_shown",
            page.evaluate('!document.getElementById("sim-banner").hidden && '
                          'document.getElementById("sim-banner").textContent.includes("SIMULATED")'))
    procs = page.evaluate('[...document.querySelectorAll(\'.device[data-index="0"] .procs td\')]'
                          '.map(td => td.textContent)')
    c.check("shows_the_processes", procs and "ComfyUI" in procs, "cells: %r" % procs)
    fields = page.evaluate('[0, 1].map((i) => { const d = document.querySelector(\'.device[data-index="\' + i + \'"]\');'
                           ' const f = (n) => d.querySelector(\'[data-field="\' + n + \'"]\').textContent;'
                           ' return [f("reserved"), f("capacity"), f("total")]; })')
    # The simulated 4090 has a driver reserve (as NVML v2 tells one), the T4
    # none (as a v1 driver): shown as such; capacity is the total less the
    # reserve and the margin.
    c.check("shows_driver_reserved_and_capacity",
            fields and fields[0][0] == "512.0 MiB" and fields[1][0] == "\u2013" and
            all(f[1].endswith("GiB") and f[1] != f[2] for f in fields),
            "reserved, capacity, total of each: %r" % (fields,))
    live, _ = page.wait_for('document.getElementById("live").textContent === "live"', 5)
    c.check("follows_the_stream", bool(live))


def chart_pixels(page, rgb, device=0):
    """How many pixels of a device's chart carry the colour rgb: (37, 99,
    235) the ours band, (156, 163, 175) the driver's reserve."""
    return page.evaluate('(() => { const c = document.querySelector(\'.device[data-index="%d"] canvas\');'
                         ' const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;'
                         ' let n = 0; for (let i = 0; i < d.length; i += 4)'
                         ' if (d[i] === %d && d[i+1] === %d && d[i+2] === %d) n++; return n; })()'
                         % ((device,) + tuple(rgb)))


def run(c, chromium, stub, work, screenshot):
    browser = Browser(chromium, work, os.path.join(os.path.dirname(screenshot), "chromium.log"))
    try:
        print("# %s" % browser.version())
        page = browser.page()
        for domain in ("Runtime", "Log", "Network", "Page"):
            page.call(domain + ".enable")
        page.call("Emulation.setDeviceMetricsOverride", width=1400, height=1100,
                  deviceScaleFactor=1, mobile=False)
        page.call("Page.navigate", url=stub.url)
        c.check("page_loads", page.wait_event("Page.loadEventFired"), "no load event")
        check_devices(page, c)
        submit_through_the_page(page, stub, c)
        follow_the_job(page, stub, c)
        cancel_through_the_page(page, stub, c)
        page.pump(1.5)
        pixels = chart_pixels(page, (37, 99, 235))
        c.check("chart_draws_ours", pixels > 50, "%d pixels in the ours colour" % pixels)
        reserve = [chart_pixels(page, (156, 163, 175), i) for i in (0, 1)]
        c.check("chart_draws_the_driver_reserve", reserve[0] > 20 and reserve[1] == 0,
                "pixels in the reserve's colour, GPU 0 (512 MiB) and GPU 1 (none): %r" % (reserve,))
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print("# screenshot: %s" % screenshot)
        found = problems(page.events, stub.url)
        c.check("no_console_errors_or_failed_requests", not found, "; ".join(found[:5]))
        requests = sum(1 for e in page.events if e["method"] == "Network.requestWillBeSent")
        print("# %d requests, %d DevTools events" % (requests, len(page.events)))
    finally:
        browser.close()


def main():
    name, chromium, stub_bin, work, screenshot = sys.argv[1:6]
    c = Checks(name)
    stub = Stub(stub_bin, work, window_ms=10000)
    try:
        run(c, chromium, stub, work, screenshot)
    except Exception as e:  # a broken run is one failed check, with its reason
        c.check("run", False, "%s: %s" % (type(e).__name__, e))
    finally:
        rc = stub.stop()
        c.check("server_stops_cleanly", rc == 0, "the stub exited %d" % rc)
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
