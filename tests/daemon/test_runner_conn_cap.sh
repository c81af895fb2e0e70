# SPDX-License-Identifier: MIT
# tests/daemon/test_runner_conn_cap.sh - the cap on one user's connections
# to vramd (VRAMD_MAX_CONNS_PER_USER, 128) is on what that user opens, not
# on the runners vramd starts for their jobs: a job whose runner connects
# while its user holds every connection they may still runs, and a user
# with jobs running may still open as many clients as one without.  Before,
# a runner counted, and was refused at the cap.  The same holds for the
# runner of a job an earlier vramd started, which this one adopted: let in
# at the cap, its end is told to vramd, not left in its end file.  Runs as
# root with a second
# user (useradd, setpriv); skips without them.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
other_user
holder=
# The jobs are told to end, and given the time to see it, before their
# folder goes (a runner outlives its vramd, by design).
trap '[ -n "$holder" ] && kill $holder 2>/dev/null; touch "$tmp/w/go1" "$tmp/w/go2" "$tmp/w/go3" 2>/dev/null; sleep 0.3
      stop_daemon; drop_other; rm -rf "$tmp"' EXIT
mkdir -m 777 "$tmp/w"
py=/usr/bin/python3         # the system's: one under root's home is not the other user's to run
[ -x "$py" ] || py=$(command -v python3)
cat >"$tmp/hold.py" <<'PY'
import socket, sys, time
# Opens N connections to vramd's socket and keeps them, idle, until killed.
path, n, said = sys.argv[1], int(sys.argv[2]), sys.argv[3]
held = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    held.append(s)
time.sleep(0.3)
# vramd answers a connection past the cap with a refusal and closes it.
for s in held:
    s.setblocking(False)
    try:
        s.recv(1, socket.MSG_PEEK)      # a refusal's words, or the end: refused
        sys.exit("refused: %s" % s.recv(512).decode(errors="replace"))
    except BlockingIOError:
        pass
open(said, "w").write("held %d\n" % n)
time.sleep(600)
PY
# hold N: the second user keeps N idle connections until the test kills it.
hold() {
    rm -f "$tmp/w/held"
    # setpriv itself in the background (a function would be a subshell,
    # and killing it would leave the holder running).
    setpriv --reuid="$other" --regid="$(id -g "$other")" --clear-groups -- \
        "$py" "$tmp/hold.py" "$VRAM_SOCKET" "$1" "$tmp/w/held" &
    holder=$!
    wait_until 20 test -s "$tmp/w/held"
}
# unhold: the holder ended, and vramd has seen its connections close.
unhold() {
    kill $holder 2>/dev/null; wait $holder 2>/dev/null; holder=
    wait_until 10 as_other "$VRAM" queue >/dev/null 2>&1
}

start_daemon || exit 1

# 1. A job whose runner connects while its user holds all 128.  It waits
# for a job of root's, so that its runner starts only after the hold.
first=$("$VRAM" submit --vram 1GiB -- sh -c "while [ ! -e $tmp/w/go1 ]; do sleep 0.05; done")
job=$(cd "$tmp/w" && as_other "$VRAM" submit --vram 1GiB --after "$first" -- sh -c 'echo ran >ran1')
hold 128 || not_ok holds_128 "the holder did not connect"
touch "$tmp/w/go1"
if wait_until 30 test -s "$tmp/w/ran1" && wait_until 10 is_state "$job" succeeded; then
    ok a_runner_connects_while_its_user_holds_the_cap
else
    not_ok a_runner_connects_while_its_user_holds_the_cap "job $job is $(state_of "$job"): $(tail -5 "$tmp/daemon.log")"
fi
unhold

# 2. A user whose job runs (its runner connected) opens as many clients as
# the cap lets anyone: 127 held, and a list as the 128th.
job=$(cd "$tmp/w" && as_other "$VRAM" submit --vram 1GiB -- sh -c 'while [ ! -e go2 ]; do sleep 0.05; done')
wait_until 30 is_state "$job" running || not_ok second_job_runs "$("$VRAM" queue 2>&1)"
hold 127 || not_ok holds_127 "the holder did not connect"
if as_other "$VRAM" queue >"$tmp/out" 2>&1; then
    ok runners_do_not_count_against_their_users_cap
else
    not_ok runners_do_not_count_against_their_users_cap "$(cat "$tmp/out")"
fi
unhold
touch "$tmp/w/go2"
wait_until 10 is_state "$job" succeeded || not_ok second_job_ends "job $job is $(state_of "$job")"

# 3. A job running when vramd stops is adopted by the next vramd; its
# runner, which that vramd did not start, reconnects to tell its end while
# its user holds all 128.
job=$(cd "$tmp/w" && as_other "$VRAM" submit --vram 1GiB -- sh -c 'while [ ! -e go3 ]; do sleep 0.05; done')
wait_until 30 is_state "$job" running || not_ok third_job_runs "$("$VRAM" queue 2>&1)"
stop_daemon
start_daemon || exit 1
wait_until 10 is_state "$job" running || not_ok third_job_adopted "job $job is $(state_of "$job")"
hold 128 || not_ok holds_128_again "the holder did not connect"
touch "$tmp/w/go3"
reason_of() { "$VRAM" queue --json 2>/dev/null | python3 -c 'import json, sys
for j in json.load(sys.stdin)["jobs"]:
    if j["id"] == int(sys.argv[1]): print(j.get("reason") or "")' "$1"; }
if wait_until 20 is_state "$job" succeeded && ! reason_of "$job" | grep -q "end file"; then
    ok an_adopted_runner_connects_while_its_user_holds_the_cap
else
    not_ok an_adopted_runner_connects_while_its_user_holds_the_cap "job $job is $(state_of "$job"): $(reason_of "$job")"
fi
unhold
finish
