# SPDX-License-Identifier: MIT
# tests/cli/test_demo.sh - the main job (scripts/start.sh, less the build)
# on the simulated 24 GiB card: examples/demo/run.py starts vramd, submits
# the demo batch and says how each job ends.  Every job succeeds, t2v-720p
# after one out-of-memory on its first rung; the history holds each
# attempt's peak, equal to what the program itself held; the dashboard's
# /api/jobs lists the jobs and /metrics counts them (and passes promtool);
# Ctrl-C stops the daemon.  Then --once, with a taken port: it moves to a
# free one, and exits 0 only when every job succeeded; and Ctrl-C while a
# job runs cancels it first.
. "$(dirname "$0")/lib.sh"
export VRAM_BACKEND=sim VRAM_SIM="RTX 4090:24GiB" VRAM_INTERVAL=50ms
demo=$VRAM_TOP/examples/demo/run.py
state=$tmp/demo

python3 "$demo" --state "$state" --port 0 --vram-bin "$VRAM" >"$tmp/demo.out" 2>&1 &
pid=$!
if wait_for "$tmp/demo.out" 'the demo batch ended|did not start|not queued' 60; then
    ok batch_ended
else
    not_ok batch_ended "no end in 60 s: $(tail -c 600 "$tmp/demo.out")"
fi
sed 's/^/# /' "$tmp/demo.out"
url=$(grep -o 'dashboard: http://[^ ]*' "$tmp/demo.out" | cut -d' ' -f2)

expect_file() {                     # expect_file NAME PATTERN N: lines of the demo's output
    cp "$tmp/demo.out" "$tmp/out"
    expect_lines "$@"
}
expect_file says_simulated 'SIMULATED DEVICES' 1
expect_file every_job_succeeded '^\[ *[0-9.]+ s\] (lipsync|t2v-480p|t2v-720p|enhance) +succeeded' 4
expect_file one_oom_on_the_720p_rung 't2v-720p +attempt 1 ran out of GPU memory: tried to allocate 5\.9 GiB' 1
expect_file retried_at_480p 't2v-720p +retrying on rung 2: width 1280 -> 832, height 720 -> 480' 1
expect_file summary '4 of 4 succeeded, 1 out-of-memory retry$' 1

# The history: each attempt, with the peak the runner saw, against the
# peak the program says it held (exact on the simulated card).
VRAM_HISTORY=$state/history.db "$VRAM" history --json >"$tmp/history.json"
if python3 - "$tmp/history.json" "$state/queue.db.logs" <<'PY'
import json, pathlib, re, sys
runs = json.load(open(sys.argv[1]))["runs"]
said = {}                           # stdout and the progress bar share the log: search
for log in pathlib.Path(sys.argv[2]).glob("*.log"):
    for m in re.finditer(r"vram-demo: (\{[^}]*\})", log.read_text(errors="replace")):
        r = json.loads(m.group(1))
        said.setdefault(r["job"], []).append(r["peak_bytes"])
by_job = {}
for r in sorted(runs, key=lambda r: r["id"]):
    by_job.setdefault(r["job"], []).append(r)
    print("# %-9s attempt %d %-4s peak %5.2f GiB of %5.2f GiB %s" % (
        r["job"], r["attempt"], r["outcome"], r["peak_bytes"] / 2**30, r["estimate_bytes"] / 2**30,
        r["settings"]))
assert sorted(by_job) == ["enhance", "lipsync", "t2v-480p", "t2v-720p"], sorted(by_job)
assert [r["outcome"] for r in by_job["t2v-720p"]] == ["oom", "ok"], by_job["t2v-720p"]
assert by_job["t2v-720p"][0]["oom_tried_bytes"] > 5.9 * 2**30
assert by_job["t2v-720p"][1]["settings"]["width"] == "832"
for job, rs in by_job.items():
    for r in rs:
        assert 0 < r["peak_bytes"] <= r["estimate_bytes"], r
    assert rs[-1]["outcome"] == "ok", rs
# What lipsync and the text-to-video runs held at most, as they say.
for job in ("lipsync", "t2v-480p", "t2v-720p"):
    ok_run = by_job[job][-1]
    want = said["lipsync" if job == "lipsync" else "text-to-video"]
    assert any(abs(ok_run["peak_bytes"] - w) <= 0.01 * w for w in want), (job, ok_run, want)
assert by_job["enhance"][0]["peak_bytes"] == 3 * 1536 * 2**20, by_job["enhance"]   # 3 frames at once
PY
then
    ok history_holds_the_peaks
else
    not_ok history_holds_the_peaks "see above"
fi

# The dashboard, while the daemon goes on.
if [ -n "$url" ] && python3 - "$url" "$tmp/metrics.txt" <<'PY'
import json, sys, urllib.request
base = sys.argv[1].rstrip("/")
jobs = json.load(urllib.request.urlopen(base + "/api/jobs", timeout=10))["jobs"]
print("# /api/jobs:", [(j["name"], j["state"], j["attempt"], j["peak_bytes"]) for j in jobs])
assert sorted(j["name"] for j in jobs) == ["enhance", "lipsync", "t2v-480p", "t2v-720p"], jobs
assert all(j["state"] == "succeeded" and j["peak_bytes"] > 0 for j in jobs), jobs
assert [j["attempt"] for j in jobs if j["name"] == "t2v-720p"] == [2], jobs
# After its retry the job shows the budget of the rung it ran on, not the first.
assert [j["estimate_bytes"] for j in jobs if j["name"] == "t2v-720p"] == [int(8.5 * 2**30)], jobs
metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
open(sys.argv[2], "w").write(metrics)
for want in ('vram_jobs{state="succeeded"} 4', "vram_oom_retries_total 1", "vram_devices_simulated 1"):
    assert want in metrics.splitlines(), want
PY
then
    ok dashboard_shows_the_jobs
else
    not_ok dashboard_shows_the_jobs "url '$url', see above"
fi
if ! command -v promtool >/dev/null; then
    echo "skip - $file/promtool_accepts_metrics: promtool is not installed (Debian package prometheus)"
elif promtool check metrics <"$tmp/metrics.txt" >"$tmp/promtool.log" 2>&1; then
    ok promtool_accepts_metrics
else
    not_ok promtool_accepts_metrics "$(head -5 "$tmp/promtool.log")"
fi

# --once, on a port that is taken (the running demo's): a free one instead.
port=${url##*:}
port=${port%/}
printf 'name,vram,command\nok,1GiB,true\n' >"$tmp/ok.csv"
printf 'name,vram,command\nok,1GiB,true\nbad,1GiB,exit 3\n' >"$tmp/bad.csv"
expect once_succeeds 0 '1 of 1 succeeded' -- timeout 60 python3 "$demo" --once --state "$tmp/once" \
    --port "$port" --batch "$tmp/ok.csv" --vram-bin "$VRAM"
expect_lines port_taken_said "port $port is taken by another program: the dashboard goes on a free port" 1
expect_lines once_stops_the_daemon '^vramd stopped' 1
expect once_fails_when_a_job_fails 1 '1 of 2 succeeded' -- timeout 60 python3 "$demo" --once \
    --state "$tmp/once" --port 0 --batch "$tmp/bad.csv" --vram-bin "$VRAM"

# interrupt NAME PID OUT STATE: Ctrl-C stops the demo (exit 0) and its daemon.
interrupt() {
    local rc
    kill -INT "$2"
    for _ in $(seq 1 200); do kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$2" 2>/dev/null; then
        not_ok "$1" "still running 20 s after SIGINT"
        kill -KILL "$2"
        return
    fi
    wait "$2"
    rc=$?
    if [ $rc -eq 0 ] && grep -q '^vramd stopped' "$3" && ! VRAM_SOCKET=$4/vramd.sock "$VRAM" queue >/dev/null 2>&1; then
        ok "$1"
    else
        not_ok "$1" "exit $rc; $(tail -n 3 "$3")"
    fi
}
interrupt ctrl_c_stops "$pid" "$tmp/demo.out" "$state"

# Ctrl-C while a job runs: it is canceled first.
printf 'name,vram,command\nlong,1GiB,sleep 60\n' >"$tmp/long.csv"
python3 "$demo" --state "$tmp/long" --port 0 --batch "$tmp/long.csv" --vram-bin "$VRAM" >"$tmp/long.out" 2>&1 &
pid=$!
wait_for "$tmp/long.out" 'long +started' 30
interrupt ctrl_c_while_running_stops "$pid" "$tmp/long.out" "$tmp/long"
sed 's/^/# /' "$tmp/long.out"
cp "$tmp/long.out" "$tmp/out"
expect_lines ctrl_c_cancels_the_job '^(canceling 1 unfinished job|\[ *[0-9.]+ s\] long +canceled)' 2
finish
