# SPDX-License-Identifier: MIT
# tests/cli/test_submit_unanswered.sh - a submit that went and got no
# answer it can read says its job "may not be queued" (vramd may have
# stored it), as when vramd drops the connection, and exits 1 (no fault of
# its input); one vramd refused says "not queued".  A stand-in daemon on the socket answers each request with
# a line that is not JSON, or with a refusal, or hangs up (a --csv row's
# check before its submit passes).
. "$(dirname "$0")/lib.sh"

# stand_in MODE: a server on $tmp/s.sock answering every request so
# (garbage | refuse | hangup), in the background until the test ends.
stand_in() {
    rm -f "$tmp/s.sock"
    python3 - "$tmp/s.sock" "$1" <<'PY' &
import json, socket, sys
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(8)
while True:
    c, _ = s.accept()
    f = c.makefile("rb")
    for line in f:
        req = json.loads(line)
        rid = req.get("id", "")
        if req.get("check"):        # a --csv row's check before any submit: it passes
            c.sendall(json.dumps({"id": rid, "ok": True}).encode() + b"\n")
            continue
        if mode == "garbage":
            c.sendall(b"this is not json\n")
        elif mode == "refuse":
            c.sendall(json.dumps({"id": rid, "ok": False, "error": "VRAM_EINVAL",
                                  "message": "no such thing"}).encode() + b"\n")
        break
    f.close()                       # the file holds the socket open too
    c.close()
PY
    server=$!
    for _ in $(seq 1 100); do [ -S "$tmp/s.sock" ] && break; sleep 0.02; done
}
stop_stand_in() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; }

printf 'command,vram\ntrue,1GiB\n' >"$tmp/one.csv"
for mode in garbage hangup; do
    stand_in "$mode"
    "$VRAM" submit --socket "$tmp/s.sock" --vram 1GiB -- true >"$tmp/out" 2>&1
    rc=$?
    if [ $rc = 1 ] && grep -q "may not be queued" "$tmp/out"; then ok "${mode}_may_not_be_queued"
    else not_ok "${mode}_may_not_be_queued" "exit $rc: $(cat "$tmp/out")"; fi
    "$VRAM" submit --socket "$tmp/s.sock" --csv "$tmp/one.csv" >"$tmp/out" 2>&1
    if grep -q "one.csv:2: may not be queued" "$tmp/out"; then ok "${mode}_csv_row_may_not_be_queued"
    else not_ok "${mode}_csv_row_may_not_be_queued" "$(cat "$tmp/out")"; fi
    stop_stand_in
done

stand_in refuse
"$VRAM" submit --socket "$tmp/s.sock" --vram 1GiB -- true >"$tmp/out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "not queued: no such thing" "$tmp/out" && ! grep -q "may not" "$tmp/out"; then
    ok refused_is_not_queued
else
    not_ok refused_is_not_queued "exit $rc: $(cat "$tmp/out")"
fi
stop_stand_in
finish
