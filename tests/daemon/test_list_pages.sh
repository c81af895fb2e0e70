# SPDX-License-Identifier: MIT
# tests/daemon/test_list_pages.sh - vramd's list in pages: a page is at
# most 1,000 jobs and says where the next begins ("next", asked for again
# with "after"); `vram queue` and `vram queue --json` page through all of
# them, every job once, in the list's order (running, starting, queued by
# id, then the finished newest first); the counts are kept as jobs move.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
sc() { python3 "$VRAM_TOP/tests/daemon/sockclient.py" "$VRAM_SOCKET" "$@"; }
start_daemon || exit 1

holder=$("$VRAM" submit --vram 21GiB -- sleep 3600)
sc submit-many 2500 1GiB true >/dev/null
# Three finished: canceled while queued (the newest first in the list).
for id in 3 4 5; do "$VRAM" cancel "$id" >/dev/null; done
wait_until 10 sh -c "'$VRAM' queue --limit 1 | grep -q ' running '" || not_ok holder_runs "$("$VRAM" queue --limit 3)"

# One JSON document of every job, each once, in order; the counts add up.
"$VRAM" queue --json >"$tmp/all.json"
if python3 - "$tmp/all.json" "$holder" <<'PY'
import json, sys
q = json.load(open(sys.argv[1]))
ids = [j["id"] for j in q["jobs"]]
states = [j["state"] for j in q["jobs"]]
assert len(ids) == 2501 and len(set(ids)) == 2501, (len(ids), len(set(ids)))
assert ids[0] == int(sys.argv[2]) and states[0] == "running", (ids[0], states[0])
queued = [i for i, s in zip(ids, states) if s == "queued"]
assert queued == sorted(queued) and len(queued) == 2497, len(queued)
assert ids[-3:] == [5, 4, 3] and states[-3:] == ["canceled"] * 3, (ids[-3:], states[-3:])
c = q["counts"]
assert (c["queued"], c["running"], c["canceled"]) == (2497, 1, 3), c
assert sorted(q) == ["counts", "ended", "jobs", "leases"], list(q)
assert q["ended"] == {"succeeded": 0, "failed": 0, "canceled": 3}, q["ended"]
PY
then ok json_every_job_once_in_order; else not_ok json_every_job_once_in_order "$(head -c 300 "$tmp/all.json")"; fi

"$VRAM" queue >"$tmp/all.txt"
n=$(grep -Ec '^ +[0-9]+  (running|queued|canceled) ' "$tmp/all.txt")
if [ "$n" = 2501 ] && head -1 "$tmp/all.txt" | grep -q '^2497 queued, 0 starting, 1 running, 0 succeeded, 0 failed, 3 canceled'
then ok text_every_job; else not_ok text_every_job "$n rows: $(head -2 "$tmp/all.txt")"; fi
expect limit_across_pages 0 '' -- sh -c "'$VRAM' queue --json --limit 1500 | python3 -c 'import json,sys; q=json.load(sys.stdin); assert len(q[\"jobs\"]) == 1500'"
"$VRAM" queue --limit 1200 >"$tmp/out" 2>&1
expect_lines text_limit_across_pages '^ +[0-9]+  (running|queued) ' 1200

# The socket's pages: at most 1,000, and "next" goes on right after.
sc call '{"op":"list","limit":5000}' >"$tmp/p1"
if python3 - "$tmp/p1" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert len(p["jobs"]) == 1000 and p["next"] == "queued:%d" % p["jobs"][-1]["id"], (len(p["jobs"]), p.get("next"))
PY
then ok page_at_most_1000; else not_ok page_at_most_1000 "$(head -c 300 "$tmp/p1")"; fi
expect page_after_cursor 0 '"jobs":\[\{"id":8,.*"next":"queued:9"' -- sc call '{"op":"list","limit":2,"after":"queued:7"}'
expect page_after_running 0 '"jobs":\[\{"id":2,' -- sc call "{\"op\":\"list\",\"limit\":1,\"after\":\"running:$holder\"}"
expect page_done_newest_first 0 '"jobs":\[\{"id":4,.*"state":"canceled".*\{"id":3,' -- \
    sc call '{"op":"list","after":"done:5"}'
expect page_last_has_no_next 0 '"jobs":\[\]' -- sc call '{"op":"list","after":"done:3"}'
if sc call '{"op":"list","after":"done:3"}' | grep -q '"next"'; then not_ok last_page_no_next "a next after the last"
else ok last_page_no_next; fi
expect page_state_filter 0 '"jobs":\[\{"id":5,.*\{"id":4,.*\{"id":3,[^]]*\]' -- sc call '{"op":"list","state":"canceled"}'
expect bad_cursor 0 '"ok":false,"error":"VRAM_EINVAL","message":".after. is a list page.s .*not .queued:x.' -- \
    sc call '{"op":"list","after":"queued:x"}'
expect bad_cursor_phase 0 '"ok":false,"error":"VRAM_EINVAL".*not .later:3.' -- sc call '{"op":"list","after":"later:3"}'

# Counts are kept as jobs move: a cancel shows in the next list.
"$VRAM" cancel 6 >/dev/null
expect counts_follow_moves 0 '^2496 queued, 0 starting, 1 running, 0 succeeded, 0 failed, 4 canceled' -- \
    "$VRAM" queue --limit 1
"$VRAM" cancel "$holder" >/dev/null
stop_daemon
finish
