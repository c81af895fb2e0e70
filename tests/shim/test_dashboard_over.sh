#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/shim/test_dashboard_over.sh - the dashboard's job table shows how far
# --enforce soft let a job past its budget (the job's over_bytes), and shows
# nothing of it for a job that stayed within.  Runs web/app.js under node
# with a small stand-in for the page (no browser on CI).
. "$(dirname "$0")/../cli/lib.sh"

if ! command -v node >/dev/null 2>&1; then
    echo "skip - $file: no node to run web/app.js"
    exit 77
fi
app=$(cd "$(dirname "$0")/../.." && pwd)/web/app.js

cat >"$tmp/run.js" <<'EOF'
"use strict";
const vm = require("vm");
const fs = require("fs");
const GIB = 1024 ** 3;
class Node {
  constructor(tag) {
    this.tag = tag; this.children = []; this.dataset = {}; this.hidden = false; this.value = "";
    this._text = ""; this.className = ""; this.title = "";
    this.classList = { toggle() {}, add() {}, remove() {} };
  }
  set textContent(t) { this._text = String(t); this.children = []; }
  get textContent() { return this._text + this.children.map((c) => c.textContent).join(""); }
  appendChild(c) { this.children.push(c); return c; }
  replaceChildren(...c) { this.children = c; }
  addEventListener() {}
  querySelector() { return byId("#q"); }
  getContext() { return new Proxy({}, { get: () => () => {} }); }
}
const ids = {};
function byId(id) { return ids[id] || (ids[id] = new Node("div")); }
const jobs = [
  { id: "j-soft", state: "succeeded", command: "soft job", peak_bytes: 4 * GIB, over_bytes: GIB },
  { id: "j-hard", state: "succeeded", command: "hard job", peak_bytes: 3 * GIB },
];
const replies = { "api/status": { devices: [] }, "api/jobs": { jobs }, "api/events": { events: [] } };
const sandbox = {
  document: {
    getElementById: byId,
    querySelector: (sel) => byId(sel),
    createElement: (tag) => new Node(tag),
    createTextNode: (t) => { const n = new Node("#text"); n.textContent = t; return n; },
  },
  window: { addEventListener() {}, devicePixelRatio: 1 },
  sessionStorage: { getItem: () => null, setItem() {}, removeItem() {} },
  EventSource: class { addEventListener() {} },
  fetch: async (path) => ({ ok: true, status: 200, json: async () => replies[path], text: async () => "" }),
  setInterval: () => 0, setTimeout, Date, Promise, Math, String, JSON, Object, encodeURIComponent, console,
};
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), sandbox);
setTimeout(() => {
  for (const tr of byId("#jobs tbody").children)
    console.log(tr.dataset.job + ": " + tr.children.map((td) => td.textContent).join(" | "));
}, 50);
EOF

node "$tmp/run.js" "$app" >"$tmp/out" 2>&1
if grep -q '^j-soft: .*| 4.0 GiB+1.0 GiB over budget |' "$tmp/out"; then
    ok soft-job-shows-its-overage
else
    not_ok soft-job-shows-its-overage "$(head -c 800 "$tmp/out")"
fi
if grep -q '^j-hard: .*| 3.0 GiB |' "$tmp/out" && ! grep '^j-hard' "$tmp/out" | grep -q 'over budget'; then
    ok job-within-budget-shows-none
else
    not_ok job-within-budget-shows-none "$(head -c 800 "$tmp/out")"
fi
finish
