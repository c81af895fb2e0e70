# SPDX-License-Identifier: MIT
# tests/daemon/test_lease_names.sh - a client names its lease (the request's
# `holder`, as the Slurm plugin does with its job and step ids) and `vram
# queue`, its --json and the dashboard's /api/jobs show that name, held or
# still waiting; the name is cleaned text, bounded, and never an identity:
# a client that takes another's name cannot release the other's lease, and
# its socket closing frees its own lease only; another user's names are
# shown as its jobs' commands are.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
# In the background as its own process, so that $! is the pid vramd sees.
scbg() { out=$1; shift; python3 "$VRAM_TOP/tests/daemon/sockclient.py" "$VRAM_SOCKET" "$@" >"$out" 2>&1 & }
bg=()
trap 'for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done; stop_daemon; rm -rf "$tmp"' EXIT

start_daemon && ok daemon_starts || { not_ok daemon_starts "$(tail -5 "$tmp/daemon.log")"; finish; }

# A: 12 GiB named as the plugin names a task's lease.
scbg "$tmp/a.out" hold-lease 12GiB "slurm job 12 step 0 task 0"
a=$!
bg+=("$a")
wait_for "$tmp/a.out" '^granted$' 10 && ok first_granted || not_ok first_granted "$(cat "$tmp/a.out")"
lease_a=$(grep -o '"lease": *[0-9]*' "$tmp/a.out" | grep -o '[0-9]*$')

# B: 12 GiB more cannot fit on the 24 GiB card beside A (margin): it waits,
# named with an escape sequence, a newline and more than the bound (the
# protocol's own bound, 128 bytes, refuses longer).
long=$(printf 'slurm job 13 step 0 task 0 \033[31mred\nline %s' "$(printf 'x%.0s' $(seq 1 60))")
scbg "$tmp/b.out" hold-lease 12GiB "$long"
b=$!
bg+=("$b")
wait_until 10 sh -c "\"$VRAM\" queue | grep -q waiting"

expect queue_shows_held_name 0 "^ +L$lease_a +lease +0 +- +- +12\.0 GiB .*held by pid $a for [0-9]+ s: slurm job 12 step 0 task 0\$" \
    -- "$VRAM" queue
# Its USER is the client's, as the kernel told vramd (it was "-").
me=$(id -un)
expect queue_shows_lease_user 0 "^ +L$lease_a +lease +0 +- +- +12\.0 GiB +- +$me +- +- +held by pid $a " -- "$VRAM" queue
expect queue_shows_waiting_user 0 "^ +L[0-9]+ +waiting +- +- +- +12\.0 GiB +- +$me +- +- +asked by pid $b," -- "$VRAM" queue
expect_lines queue_shows_waiting_name \
    "^ +L[0-9]+ +waiting +- +- +- +12\.0 GiB .*asked by pid $b, waiting [0-9]+ s \((Resources|Lease)\): slurm job 13 step 0 task 0 \?\[31mred\?line x+\$" 1
if grep -q "$(printf '\033')" "$tmp/out"; then not_ok queue_no_raw_escape "an escape byte reached the terminal"
else ok queue_no_raw_escape; fi
expect queue_counts_both 0 ', 2 client leases$' -- "$VRAM" queue

# --json: the cleaned name, cut to 47 bytes, beside SO_PEERCRED's pid and uid.
"$VRAM" queue --json >"$tmp/q.json" 2>&1
python3 - "$tmp/q.json" "$a" "$b" "$(id -u)" <<'EOF' && ok json_names_and_identity || not_ok json_names_and_identity "$(cat "$tmp/q.json" | head -c 600)"
import json, sys
doc, a, b, uid = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = {r["pid"]: r for r in doc["leases"]}
assert rows[a]["holder"] == "slurm job 12 step 0 task 0" and rows[a]["state"] == "held", rows
assert rows[a]["uid"] == uid and rows[a]["client"] > 0, rows
w = rows[b]
assert w["state"] == "waiting" and w["reason"] in ("Resources", "Lease"), w
assert w["holder"].startswith("slurm job 13 step 0 task 0 ?[31mred?line x") and len(w["holder"]) == 47, w
assert all(0x20 <= ord(ch) < 0x7f for ch in w["holder"]), w
EOF

# The dashboard's jobs document carries the same rows.
url=$(dashboard_url)
python3 - "${url}api/jobs" "$lease_a" <<'EOF' && ok dashboard_api_names || not_ok dashboard_api_names "$(cat "$tmp/api.err" 2>/dev/null)"
import json, sys, urllib.request
doc = json.load(urllib.request.urlopen(sys.argv[1], timeout=10))
rows = {r["id"]: r for r in doc["leases"]}
assert rows[int(sys.argv[2])]["holder"] == "slurm job 12 step 0 task 0", doc["leases"]
assert any(r["state"] == "waiting" and r["holder"].startswith("slurm job 13 ") for r in doc["leases"]), doc["leases"]
EOF

# C takes A's name and tries to release A's lease: refused, and C's socket
# closing leaves A's lease held.
scbg "$tmp/c.out" hold-lease 1GiB "slurm job 12 step 0 task 0" "$lease_a"
c=$!
bg+=("$c")
wait_for "$tmp/c.out" '"id": *2|"id":"2"|VRAM_E' 10
if grep -q "no lease $lease_a on this connection" "$tmp/c.out"; then ok name_is_no_identity_release
else not_ok name_is_no_identity_release "$(cat "$tmp/c.out")"; fi
kill "$c"; wait "$c" 2>/dev/null
wait_until 10 sh -c "! \"$VRAM\" queue --json | grep -q '\"pid\": *$c[,}]'"
expect name_is_no_identity_close 0 "held by pid $a for [0-9]+ s: slurm job 12 step 0 task 0\$" -- "$VRAM" queue

# A ends: B gets the room and is listed held, under its own name.
kill "$a"; wait "$a" 2>/dev/null
wait_for "$tmp/b.out" '^granted$' 10 && ok waiting_one_granted || not_ok waiting_one_granted "$(cat "$tmp/b.out")"
expect queue_after_grant 0 "lease +0 +- +- +12\.0 GiB .*held by pid $b for [0-9]+ s: slurm job 13 step 0 task 0 " -- "$VRAM" queue
expect_lines queue_after_grant_one_row ' L[0-9]+ ' 1
kill "$b"; wait "$b" 2>/dev/null

# Another user's lease name is shown to that user and root, as its jobs'
# commands are, and not to a third user (here nobody, on the dashboard,
# which knows the loopback client's user from the kernel); root's names
# (the Slurm plugin's, from slurmstepd) are shown to everyone.
other=
if [ "$(id -u)" = 0 ] && command -v useradd >/dev/null && command -v setpriv >/dev/null &&
   id nobody >/dev/null 2>&1; then
    name=vraml$$$RANDOM
    for _ in 1 2 3 4 5; do useradd -M -U -s /bin/sh "$name" 2>/dev/null && { other=$name; break; }; sleep 0.2; done
fi
if [ -z "$other" ]; then
    echo "skip - $file/names_shown_as_commands_are: cannot make a second user here (needs root and useradd)"
else
    trap 'for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done; stop_daemon; userdel "$other" 2>/dev/null; groupdel "$other" 2>/dev/null; rm -rf "$tmp"' EXIT
    stop_daemon
    chmod 711 "$tmp"
    mkdir -m 711 "$tmp/pub"
    cp "$VRAM_TOP/tests/daemon/sockclient.py" "$tmp/sockclient.py" && chmod 644 "$tmp/sockclient.py"
    export VRAM_SOCKET=$tmp/pub/s.sock VRAM_SOCKET_GROUP=$other
    start_daemon
    setpriv --reuid="$other" --regid="$(id -g "$other")" --clear-groups -- \
        /usr/bin/python3 "$tmp/sockclient.py" "$VRAM_SOCKET" hold-lease 1GiB "private name 42" >"$tmp/o.out" 2>&1 &
    bg+=("$!")
    scbg "$tmp/r.out" hold-lease 1GiB "slurm job 99 step 0 task 0"
    bg+=("$!")
    wait_for "$tmp/o.out" '^granted$' 10 && wait_for "$tmp/r.out" '^granted$' 10
    url=$(dashboard_url)
    look() { "$@" /usr/bin/python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "${url}api/jobs"; }
    look setpriv --reuid=65534 --regid=65534 --clear-groups -- >"$tmp/nobody.json" 2>&1
    look setpriv --reuid="$other" --regid="$(id -g "$other")" --clear-groups -- >"$tmp/owner.json" 2>&1
    look env >"$tmp/root.json" 2>&1
    if grep -q "private name 42" "$tmp/nobody.json"; then not_ok names_shown_as_commands_are "nobody sees it: $(head -c 400 "$tmp/nobody.json")"
    elif ! grep -q '"holder":"slurm job 99 step 0 task 0"' "$tmp/nobody.json"; then not_ok names_shown_as_commands_are "nobody does not see root's name: $(head -c 400 "$tmp/nobody.json")"
    elif ! grep -q '"holder":"private name 42"' "$tmp/owner.json"; then not_ok names_shown_as_commands_are "its user does not see it: $(head -c 400 "$tmp/owner.json")"
    elif ! grep -q '"holder":"private name 42"' "$tmp/root.json"; then not_ok names_shown_as_commands_are "root does not see it: $(head -c 400 "$tmp/root.json")"
    else ok names_shown_as_commands_are; fi
fi
finish
