/* SPDX-License-Identifier: MIT */
/*
 * web/app.js - the dashboard's behaviour, plain JavaScript with no library.
 *
 * Follows /api/stream (server-sent events): each event ("hello", a "tick"
 * every second, a "change" as soon as jobs or events change) reloads the
 * status, the jobs and the events.  Text goes into the page through textContent only, never as HTML.
 * Changes (submit, cancel) carry the token the person pastes, kept in
 * sessionStorage for this tab only.
 */
"use strict";

(function () {
  const TOKEN_KEY = "vram-token";
  const COLORS = { ours: "#2563eb", others: "#f59e0b", free: "#86efac", reserved: "#9ca3af" };
  const $ = (id) => document.getElementById(id);

  const state = { seq: 0, lastMessageMs: 0, status: null };

  /* ---- formatting ------------------------------------------------------ */

  function size(bytes) {
    if (bytes === null || bytes === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = bytes, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return u === 0 ? v + " B" : v.toFixed(1) + " " + units[u];
  }

  function duration(ms) {
    if (ms === null || ms === undefined || ms < 0) return "–";
    const s = Math.round(ms / 1000);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function clock(unixMs) {
    return new Date(unixMs).toLocaleTimeString([], { hour12: false });
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function say(text, bad) {
    const m = $("message");
    m.textContent = text;
    m.classList.toggle("bad", !!bad);
  }

  /* ---- talking to the daemon ------------------------------------------- */

  // Reads carry the token too when one is set: the daemon then shows every
  // job whole; without it, other users' jobs come as summaries (no command).
  async function getJson(path) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = token ? { "Authorization": "Bearer " + token } : {};
    const r = await fetch(path, { cache: "no-store", headers: headers });
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  async function change(path, body) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      say("Paste the daemon's token first (Submit and cancel, below).", true);
      return null;
    }
    const r = await fetch(path, {
      method: "POST",
      headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
      body: body === undefined ? "" : JSON.stringify(body),
    });
    const reply = await r.json().catch(() => ({}));
    if (!r.ok) {
      say((reply.message || "HTTP " + r.status) + (r.status === 401 || r.status === 403
        ? " (is the token the one the daemon wrote at its last start?)" : ""), true);
      return null;
    }
    return reply;
  }

  /* ---- devices ---------------------------------------------------------- */

  function deviceCard(index) {
    let card = document.querySelector('.device[data-index="' + index + '"]');
    if (!card) {
      card = $("device-template").content.firstElementChild.cloneNode(true);
      card.dataset.index = index;
      $("devices").appendChild(card);
    }
    return card;
  }

  function renderDevice(d, history) {
    const card = deviceCard(d.index);
    const err = card.querySelector(".device-error");
    card.querySelector(".device-name").textContent = "GPU " + d.index + (d.name ? " · " + d.name : "");
    card.querySelector(".device-uuid").textContent = d.uuid || "";
    err.hidden = !d.error;
    err.textContent = d.lost ? "LOST, takes no work: " + d.error_text
                             : d.error ? d.error + ": " + d.error_text : "";
    if (d.error) return;
    const field = (name, v) => { card.querySelector('[data-field="' + name + '"]').textContent = v; };
    field("total", size(d.total_bytes));
    field("used", size(d.used_bytes));
    field("ours", size(d.leased_bytes));
    field("others", size(d.others_bytes));
    field("free", size(d.free_bytes));
    // NVML v2: outside used and free, so used + free + reserved = total.
    field("reserved", size(d.driver_reserved_bytes));
    field("capacity", size(d.capacity_bytes));   // total - driver reserved - margin
    field("safe", size(d.safe_available_bytes));
    renderProcs(card.querySelector(".procs tbody"), d.processes);
    drawChart(card.querySelector("canvas"), d.total_bytes, history);
  }

  function renderProcs(body, procs) {
    const rows = [];
    if (procs === null) {
      const tr = el("tr");
      const td = el("td", "This driver does not list processes.", "muted");
      td.colSpan = 3;
      tr.appendChild(td);
      rows.push(tr);
    }
    for (const p of procs || []) {
      const tr = el("tr");
      tr.appendChild(el("td", p.pid, "num"));
      tr.appendChild(el("td", p.name || "?"));
      tr.appendChild(el("td", size(p.used_bytes), "num"));
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  }

  /* Stacked areas over the last window: ours at the bottom, then others,
   * then free up to the device's total.  x is seconds ago, y is GiB. */
  function drawChart(canvas, total, h) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, ht = canvas.clientHeight;
    if (!w || !ht) return;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(ht * dpr);
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, ht);
    const left = 44, right = 6, top = 6, bottom = 18;
    const pw = w - left - right, ph = ht - top - bottom;
    const window_ms = (h && h.window_ms) || 300000;
    const x = (age) => left + pw * (1 - age / window_ms);
    const y = (bytes) => top + ph * (1 - Math.min(bytes / (total || 1), 1));
    const ink = getComputedStyle(document.body).color;

    g.font = "10px system-ui, sans-serif";
    g.fillStyle = ink;
    g.strokeStyle = "rgba(127,127,127,0.25)";
    g.lineWidth = 1;
    for (let q = 0; q <= 4; q++) {
      const yy = Math.round(y((total * q) / 4)) + 0.5;
      g.beginPath(); g.moveTo(left, yy); g.lineTo(left + pw, yy); g.stroke();
      g.fillText(size((total * q) / 4).replace(".0 ", " "), 2, yy + 3);
    }
    const step = [5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5].find((s) => window_ms / s <= 6) || 6e5;
    for (let age = 0; age <= window_ms; age += step) {
      const xx = Math.round(x(age)) + 0.5;
      g.beginPath(); g.moveTo(xx, top); g.lineTo(xx, top + ph); g.stroke();
      const label = age === 0 ? "now" : age < 6e4 ? "-" + age / 1000 + " s" : "-" + age / 6e4 + " min";
      g.fillText(label, Math.min(xx - 12, w - 34), ht - 4);
    }
    if (!h || !h.age_ms || h.age_ms.length === 0) return;

    const n = h.age_ms.length;
    const band = (lower, upper, color) => {
      g.beginPath();
      for (let i = 0; i < n; i++) g.lineTo(x(h.age_ms[i]), y(upper(i)));
      for (let i = n - 1; i >= 0; i--) g.lineTo(x(h.age_ms[i]), y(lower(i)));
      g.closePath();
      g.fillStyle = color;
      g.fill();
    };
    const ours = (i) => h.leased_bytes[i];
    const taken = (i) => h.leased_bytes[i] + h.others_bytes[i];
    const unreserved = (i) => taken(i) + h.free_bytes[i];
    band(unreserved, () => total, COLORS.reserved);   // the driver's: total - used - free
    band(taken, unreserved, COLORS.free + "80");
    band(ours, taken, COLORS.others);
    band(() => 0, ours, COLORS.ours);
  }

  function renderHost(s) {
    const h = s.host;
    if (!h) return;
    $("host").textContent = h.cpu_count + " CPUs · load " + h.load[0].toFixed(2) +
      " · RAM " + size(h.ram_available_bytes) + " free of " + size(h.ram_total_bytes) +
      " · disk " + size(h.disk_free_bytes) + " free";
  }

  function renderStatus(doc) {
    const s = doc.snapshot || {};
    state.status = doc;
    $("sim-banner").hidden = !s.simulated;
    $("sim-notice").textContent = s.simulated ? (s.notice || "these are not real cards") : "";
    $("version").textContent = s.version || "";
    renderHost(s);
    const history = {};
    for (const h of doc.history || []) history[h.index] = h;
    for (const d of s.devices || []) renderDevice(d, history[d.index]);
  }

  /* ---- jobs and events --------------------------------------------------- */

  function jobTime(j, now) {
    if (j.state === "queued") return "waiting " + duration(now - j.submitted_unix_ms);
    if (j.state === "running") return "running " + duration(now - j.started_unix_ms);
    if (j.started_unix_ms && j.ended_unix_ms) return "ran " + duration(j.ended_unix_ms - j.started_unix_ms);
    return "–";
  }

  function progressCell(p) {
    const td = el("td");
    if (p === null || p === undefined) { td.textContent = "–"; return td; }
    const bar = el("progress");
    bar.max = 1;
    bar.value = p;
    td.appendChild(bar);
    td.appendChild(document.createTextNode(" " + Math.round(p * 100) + "%"));
    return td;
  }

  /* The peak, and how far --enforce soft let the job past its budget
   * (over_bytes: the refusals hard mode would have made). */
  function peakCell(j) {
    const td = el("td", size(j.peak_bytes), "num");
    if (j.over_bytes > 0) {
      const over = el("span", "+" + size(j.over_bytes) + " over budget", "over");
      over.title = "--enforce soft let it past its budget by up to " + size(j.over_bytes) +
        "; hard enforcement would have refused that";
      td.appendChild(el("br"));
      td.appendChild(over);
    }
    return td;
  }

  function jobRow(j, now) {
    const tr = el("tr");
    tr.dataset.job = j.id;
    tr.dataset.state = j.state;
    tr.appendChild(el("td", j.id, "mono"));
    const st = el("td");
    st.appendChild(el("span", j.state, "state state-" + j.state));
    tr.appendChild(st);
    tr.appendChild(el("td", j.user || (j.uid === undefined ? "–" : "uid " + j.uid)));
    const cmd = el("td", j.command, "cmd");
    cmd.title = j.command || "";
    tr.appendChild(cmd);
    tr.appendChild(el("td", j.tier || "–"));
    tr.appendChild(el("td", size(j.estimate_bytes), "num"));
    tr.appendChild(el("td", size(j.used_bytes), "num"));
    tr.appendChild(peakCell(j));
    tr.appendChild(progressCell(j.progress));
    tr.appendChild(el("td", j.device === null || j.device === undefined ? "–" : "GPU " + j.device));
    tr.appendChild(el("td", j.attempt || 1, "num"));
    tr.appendChild(el("td", jobTime(j, now)));
    tr.appendChild(el("td", [j.outcome, j.reason].filter(Boolean).join(": ") || "–"));
    const act = el("td");
    if (j.state === "queued" || j.state === "running") {
      const b = el("button", "Cancel", "cancel");
      b.type = "button";
      b.addEventListener("click", () => cancelJob(j.id));
      act.appendChild(b);
    }
    tr.appendChild(act);
    return tr;
  }

  /* A lease a client holds or waits for through vramd's socket (a Slurm
   * step's, a Python `with vram.lease()`): the name its client gave it, as
   * text, and the pid vramd saw. */
  function leaseRow(l) {
    const tr = el("tr", null, "lease");
    tr.dataset.lease = l.id;
    tr.dataset.state = l.state;
    tr.appendChild(el("td", "L" + l.id, "mono"));
    const st = el("td");
    st.appendChild(el("span", l.state === "waiting" ? "waiting" : "lease",
                      "state state-" + (l.state === "waiting" ? "queued" : "running")));
    tr.appendChild(st);
    tr.appendChild(el("td", l.uid === undefined ? "–" : "uid " + l.uid));
    const who = el("td", (l.holder || "client") + " (pid " + l.pid + ")", "cmd holder");
    who.title = who.textContent;
    tr.appendChild(who);
    tr.appendChild(el("td", "–"));
    tr.appendChild(el("td", size(l.bytes), "num"));
    tr.appendChild(el("td", "–", "num"));
    tr.appendChild(el("td", "–", "num"));
    tr.appendChild(el("td", "–"));
    tr.appendChild(el("td", l.device === null || l.device === undefined ? "–" : "GPU " + l.device));
    tr.appendChild(el("td", "–", "num"));
    tr.appendChild(el("td", l.state === "waiting" ? "waiting " + duration(l.waited_ms)
                                                  : "held " + duration(l.held_ms)));
    tr.appendChild(el("td", l.state === "waiting" ? l.reason || "Resources" : "–"));
    tr.appendChild(el("td"));
    return tr;
  }

  function renderJobs(doc) {
    const jobs = doc.jobs || [];
    const leases = doc.leases || [];
    const now = Date.now();
    document.querySelector("#jobs tbody").replaceChildren(...jobs.map((j) => jobRow(j, now)),
                                                          ...leases.map(leaseRow));
    $("jobs").hidden = jobs.length + leases.length === 0;
    $("jobs-empty").hidden = jobs.length + leases.length !== 0;
    const counts = {};
    for (const j of jobs) counts[j.state] = (counts[j.state] || 0) + 1;
    $("job-counts").textContent = Object.keys(counts).map((k) => counts[k] + " " + k).join(" · ");
  }

  function renderEvents(doc) {
    const events = doc.events || [];
    $("events").replaceChildren(...events.map((e) => {
      const li = el("li");
      li.appendChild(el("time", e.unix_ms ? clock(e.unix_ms) : ""));
      li.appendChild(el("span", (e.kind || "").replace("_", " "), "kind kind-" + e.kind));
      li.appendChild(el("span", e.text));
      return li;
    }));
    $("events-empty").hidden = events.length !== 0;
  }

  /* ---- refreshing --------------------------------------------------------- */

  function problem(text) {
    $("error-banner").hidden = !text;
    $("error-banner").textContent = text || "";
  }

  /* Reloads everything; a reply that arrives after a newer one is dropped. */
  async function refresh() {
    const seq = ++state.seq;
    try {
      const [status, jobs, events] = await Promise.all(
        ["api/status", "api/jobs", "api/events"].map(getJson));
      if (seq !== state.seq) return;
      renderStatus(status);
      renderJobs(jobs);
      renderEvents(events);
      problem("");
    } catch (e) {
      if (seq === state.seq) problem("Cannot read the daemon: " + e.message);
    }
  }

  function follow() {
    const live = $("live");
    const source = new EventSource("api/stream");
    const onEvent = (ev) => {
      state.lastMessageMs = Date.now();
      live.dataset.state = "live";
      live.textContent = "live";
      refresh();
    };
    for (const name of ["hello", "tick", "change"]) source.addEventListener(name, onEvent);
    source.onerror = () => {
      live.dataset.state = "reconnecting";
      live.textContent = "reconnecting";
    };
    /* Should a proxy hold the stream back, poll instead. */
    setInterval(() => {
      if (Date.now() - state.lastMessageMs > 5000) refresh();
    }, 5000);
  }

  /* ---- changes -------------------------------------------------------------- */

  async function cancelJob(id) {
    const reply = await change("api/jobs/" + encodeURIComponent(id) + "/cancel");
    if (reply) say("Canceled " + id + ".");
  }

  function showToken() {
    const has = !!sessionStorage.getItem(TOKEN_KEY);
    $("token-state").textContent = has ? "token set for this tab" : "no token: reading only";
  }

  function wireForms() {
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = $("token").value.trim();
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      $("token").value = "";
      showToken();
    });
    $("token-clear").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showToken();
    });
    $("submit-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { command: $("command").value.trim() };
      if ($("vram").value.trim()) body.vram = $("vram").value.trim();
      if ($("ladder").value.trim()) body.ladder = $("ladder").value.trim();
      const reply = await change("api/jobs", body);
      if (reply) {
        say("Submitted " + reply.id + ".");
        $("command").value = "";
        refresh();
      }
    });
  }

  window.addEventListener("resize", () => { if (state.status) renderStatus(state.status); });
  wireForms();
  showToken();
  refresh();
  follow();
})();
