# SPDX-License-Identifier: MIT
# tests/cli/test_status_vramd.sh - one view of the card while vramd runs:
# with a job's lease, a client's lease (Python's vram.lease via the daemon)
# and a program outside vram on the simulated card, `vram status --json`,
# `vram watch --json`, the dashboard's /api/status and Python's
# vram.status() give the same ours, others and safe available, and `vram
# queue` lists the client's lease with its pid.
. "$(dirname "$0")/lib.sh"
if [ "$(basename "$VRAM_BUILD")" != build ]; then
    echo "skip - $file/all: Python's vram.status() loads libvram, which a sanitizer build cannot load into python3 (checked in the plain build)"; exit 77
fi
. "$(dirname "$0")/../daemon/daemon.sh"
alloc=$helpers/simalloc
GiB=1073741824
export PYTHONPATH="$VRAM_TOP/python" VRAM_LIBRARY="$VRAM_BUILD/lib/libvram.so"
# Python loads this build's library: under a sanitizer, its runtime first.
san=$(ldd "$VRAM_LIBRARY" | awk '/lib(asan|tsan|ubsan)/ { print $3 }' | paste -sd: -)
vpy=(env LD_PRELOAD="$san" ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" python3)

start_daemon && ok daemon_starts || { not_ok daemon_starts "$(tail -5 "$tmp/daemon.log")"; finish; }

# A job: a 6 GiB lease of which its program uses 2 GiB.
job=$(SIMALLOC_READY=$tmp/job.ready "$VRAM" submit --vram 6GiB -- "$alloc" hold 2GiB 120000)
wait_until 20 test -e "$tmp/job.ready" && ok job_runs || not_ok job_runs "$("$VRAM" queue)"

# A client's lease: 4 GiB through the socket, held until its stdin closes.
mkfifo "$tmp/hold"
"${vpy[@]}" -c '
import sys, vram
l = vram.lease("4GiB", via="daemon").acquire()
open(sys.argv[1], "w").write("%d %s\n" % (l.id, l.via))
sys.stdin.read()
' "$tmp/lease.ready" <"$tmp/hold" &
holder=$!
exec 9>"$tmp/hold"
wait_for "$tmp/lease.ready" 'daemon' 20 && ok client_lease_granted || not_ok client_lease_granted "no lease"

# Others: 1 GiB that no lease explains.
SIMALLOC_READY=$tmp/other.ready "$alloc" hold 1GiB 120000 9>&- &
other=$!
wait_until 20 test -e "$tmp/other.ready" || not_ok other_user_runs "simalloc did not take its 1 GiB"

# The daemon samples every 50 ms: wait until it has seen both programs.
settled() {
    "$VRAM" status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)["devices"][0]
sys.exit(not (d["leased_bytes"] == 10 << 30 and d["others_bytes"] == 1 << 30))'
}
wait_until 20 settled || not_ok daemon_sees_the_card "$("$VRAM" status)"
"$VRAM" status --json >"$tmp/cli.json" 2>&1
"$VRAM" watch --count 1 --json >"$tmp/watch.json" 2>&1
"${vpy[@]}" -c 'import json, vram; print(json.dumps(vram.status()))' >"$tmp/py.json" 2>&1
python3 -c '
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1] + "api/status", timeout=10).read().decode())
' "$(dashboard_url)" >"$tmp/dash.json" 2>&1
"$VRAM" status --local --json >"$tmp/local.json" 2>&1
if python3 - "$tmp" "$GiB" <<'PY'
import json, sys
tmp, gib = sys.argv[1], int(sys.argv[2])
def dev(doc):
    d = doc["devices"][0]
    return d["leased_bytes"], d["others_bytes"], d["safe_available_bytes"]
cli = json.load(open(tmp + "/cli.json"))
py = json.load(open(tmp + "/py.json"))
dash = json.load(open(tmp + "/dash.json"))["snapshot"]
w = json.loads(open(tmp + "/watch.json").read().splitlines()[-1])
views = {"vram status": dev(cli), "python": dev(py), "dashboard": dev(dash),
         "vram watch": (w["leased_bytes"], w["others_bytes"], w["safe_available_bytes"])}
assert len(set(views.values())) == 1, views
leased, others, safe = views["vram status"]
assert leased == 10 * gib, views          # the job's 6 GiB and the client's 4 GiB
assert others == gib, views               # simalloc outside any lease
assert cli["from_daemon"] and py["from_daemon"] and dash["from_daemon"] and w["from_daemon"]
local = json.load(open(tmp + "/local.json"))
assert not local["from_daemon"] and local["devices"][0]["leased_bytes"] == 0, local
PY
then ok views_agree; else not_ok views_agree "cli $(head -c 300 "$tmp/cli.json") py $(head -c 300 "$tmp/py.json") dash $(head -c 300 "$tmp/dash.json") watch $(cat "$tmp/watch.json")"; fi

expect status_text_says_vramd 0 'as vramd counts them.*' -- "$VRAM" status
expect status_text_ours 0 'ours 10\.0 GiB \(vram leases\)   others 1\.0 GiB' -- "$VRAM" status
expect queue_lists_client_lease 0 "L[0-9]+ +lease +0 +- +- +4\.0 GiB .*held by pid $holder " -- "$VRAM" queue
expect queue_counts_leases 0 ', 1 client lease$' -- "$VRAM" queue
"$VRAM" queue --json >"$tmp/q.json"
if python3 - "$tmp/q.json" "$holder" <<'PY'
import json, sys
q = json.load(open(sys.argv[1]))
leases = q["leases"]
assert len(leases) == 1 and leases[0]["kind"] == "lease", leases
assert leases[0]["pid"] == int(sys.argv[2]) and leases[0]["bytes"] == 4 << 30, leases
PY
then ok queue_json_lists_lease; else not_ok queue_json_lists_lease "$(head -c 600 "$tmp/q.json")"; fi

# The client goes: its lease comes back, and every view says so.
exec 9>&-
wait $holder
wait_until 10 sh -c "'$VRAM' queue | grep -q ', 0 client leases'" && ok lease_gone_from_queue ||
    not_ok lease_gone_from_queue "$("$VRAM" queue)"
expect status_after_client 0 'ours 6\.0 GiB' -- "$VRAM" status
"$VRAM" cancel "$job" >/dev/null 2>&1
kill "$other" 2>/dev/null
wait "$other" 2>/dev/null
stop_daemon
finish
