# SPDX-License-Identifier: MIT
# tests/daemon/test_hostile_clients.sh - what one local client may not do to
# vramd and to the other users of its socket (daemon/conns.c, authz.c,
# wire/protocol.c, wire/sock.c):
#   - speak for a runner on a connection whose opener has ended (a runner is
#     known by its pid, which the kernel hands out again: the opener's pidfd,
#     SO_PEERPIDFD, tells that process from a later one with its number);
#   - have an outcome of its own text stored and written to vramd's log;
#   - name a job by a number past 64 bits (it was read as the largest one);
#   - ask for the longest wait there is and be told at once it timed out
#     (the deadline's product wrapped);
#   - hold leases past the 64th that it then could not give back, or more
#     leases than a connection may (each costs vramd memory);
#   - hold every connection vramd takes (as another user, where the test
#     runs as root);
# and what it may: send many requests before reading a reply.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
hostile=$(dirname "$0")/hostile.py
start_daemon || exit 1

running=$("$VRAM" submit --vram 20GiB -- sleep 30)
wait_for_state() { for _ in $(seq 1 100); do "$VRAM" queue | grep -Eq "^ *$1 +running" && return; sleep 0.1; done; }
wait_for_state "$running"

if python3 "$hostile" "$VRAM_SOCKET" peerpidfd; then
    expect dead_opener_not_a_runner 0 '"error":"VRAM_EPERM".*opened this connection \(pid [0-9]+\) has ended' -- \
        python3 "$hostile" "$VRAM_SOCKET" dead-opener "$running"
else
    echo "skip - $file/dead_opener_not_a_runner: this kernel gives no SO_PEERPIDFD (Linux 6.5); a runner is known by its pid alone"
fi

sc() { python3 "$(dirname "$0")/sockclient.py" "$VRAM_SOCKET" call "$1"; }
expect outcome_text_refused 0 '"error":"VRAM_EINVAL".*.outcome. must be an outcome' -- \
    sc '{"v":1,"op":"job-ended","job":'"$running"',"exit_status":0,"outcome":"ok\u001b[2K\rFAKE"}'
grep -q 'FAKE' "$tmp/daemon.log" && not_ok outcome_not_logged "$(grep FAKE "$tmp/daemon.log")" || ok outcome_not_logged
expect job_number_past_64_bits 0 '"error":"VRAM_EINVAL".*.job. must be a whole number' -- \
    sc '{"v":1,"op":"cancel","job":99999999999999999999}'
expect longest_wait_waits 0 '^waiting$' -- python3 "$hostile" "$VRAM_SOCKET" wait-long 10GiB

# 258 asked on one connection: 256 held, 2 refused; the first is still its
# to give back (only the first 64 were looked at).
expect leases_capped 0 'refused: this connection holds and waits for 256 leases' -- \
    python3 "$hostile" "$VRAM_SOCKET" leases 258
expect_lines leases_refused_past_cap '^refused:' 2
grep -Eq '^release: \{"ok":true' "$tmp/out" && ok first_of_many_leases_released ||
    not_ok first_of_many_leases_released "$(tail -1 "$tmp/out")"

# Text the queue cannot keep as it is (not UTF-8) is refused by name before
# anything is sent, never queued changed (JSON out writes U+FFFD for it).
expect submit_word_not_utf8 2 "word 2 of the command is not UTF-8 text \('n\\\\xffx'\)" -- \
    "$VRAM" submit --vram 1GiB -- true "$(printf 'n\377x')"
expect submit_env_not_utf8 2 "the environment's BAD_TEXT is not UTF-8 text" -- \
    env BAD_TEXT="$(printf '\376')" "$VRAM" submit --vram 1GiB -- true

expect submit_too_big_said_why 2 "the job's command, environment and settings come to [0-9]+ bytes; vramd takes at most 65536" -- \
    "$VRAM" submit --vram 1GiB -- true "$(head -c 70000 /dev/zero | tr '\0' x)"

# A client that sends many requests before it reads a reply is served all
# of them once it reads (it was closed as if one line were too long).
expect pipelined_requests_all_answered 0 '^ok replies: 12000$' -- \
    timeout 60 python3 "$hostile" "$VRAM_SOCKET" pipeline 12000

if [ "$(id -u)" = 0 ]; then
    chmod 0711 "$tmp"               # the socket's folder, for that uid to reach it
    chmod 0666 "$VRAM_SOCKET"
    expect one_user_cannot_take_every_connection 0 'uid 65534 has 128 connections to vramd open' -- \
        python3 "$hostile" "$VRAM_SOCKET" conns 200 65534
    chmod 0700 "$tmp"
    expect others_still_served 0 '' -- "$VRAM" queue
else
    echo "skip - $file/one_user_cannot_take_every_connection: needs root (a second uid to connect as)"
fi
# A dashboard open to the network says where it listens: every address,
# not the 127.0.0.1 its URL names to open it from here; and that the token
# a page sends it from elsewhere crosses the network as plain text.
VRAM_SOCKET=$tmp/open.sock VRAM_DB=$tmp/open.db VRAM_TOKEN_FILE=$tmp/open.token VRAM_HTTP=0.0.0.0:0 "$VRAM" serve >"$tmp/open.log" 2>&1 &
open_daemon=$!
if wait_for "$tmp/open.log" 'dashboard http' 10 &&
    grep -Eq 'listens on 0\.0\.0\.0 port [0-9]+ \(every address\)' "$tmp/open.log" &&
    grep -q 'unencrypted' "$tmp/open.log"; then
    ok exposed_dashboard_named_as_bound
else
    not_ok exposed_dashboard_named_as_bound "$(cat "$tmp/open.log")"
fi
kill -TERM $open_daemon; wait $open_daemon

"$VRAM" cancel "$running" >/dev/null
finish
