# SPDX-License-Identifier: MIT
# tests/daemon/test_systemd.sh - vramd under systemd: the installed units
# pass systemd-analyze verify; started by socket activation it serves on the
# socket systemd made (and leaves the path alone when it stops); it says
# READY=1 and STOPPING=1 to NOTIFY_SOCKET; under the journal its lines carry
# no time stamps of their own.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"

if [ "$(basename "$VRAM_BUILD")" = build ] && command -v systemd-analyze >/dev/null; then
    prefix=$tmp/prefix
    make -C "$VRAM_TOP" install PREFIX="$prefix" >"$tmp/install.log" 2>&1 || not_ok install "$(tail -3 "$tmp/install.log")"
    units=$prefix/lib/systemd/system
    grep -q "^ExecStart=$prefix/bin/vramd " "$units/vramd.service" && ok unit_names_installed_vramd \
        || not_ok unit_names_installed_vramd "$(grep ExecStart "$units/vramd.service")"
    # verify wants the binary of ExecStart and the unit's man pages to exist.
    out=$(cd "$units" && SYSTEMD_LOG_LEVEL=warning MANPATH=$prefix/share/man \
          systemd-analyze verify --man=no vramd.socket vramd.service 2>&1 | grep -v -e 'Failed to .* bus' -e '^$')
    [ -z "$out" ] && ok units_verify || not_ok units_verify "$out"
else
    echo "skip - $file/units_verify: systemd-analyze is not installed, or not the plain build"
fi

# Socket activation: systemd-socket-activate listens as systemd would, and
# starts vramd on the first connection with LISTEN_FDS=1.
if command -v systemd-socket-activate >/dev/null; then
    act=$tmp/activated.sock
    systemd-socket-activate -l "$act" -E VRAM_BACKEND -E VRAM_SIM -E VRAM_SIM_STATE -E VRAM_DB \
        -E VRAM_HISTORY -E VRAM_TOKEN_FILE -E VRAM_HTTP -E VRAM_INTERVAL -E JOURNAL_STREAM \
        "$VRAM" serve --socket "$act" >"$tmp/activate.log" 2>&1 &
    activator=$!
    wait_until 5 test -S "$act"
    expect activated_serves 0 'queued' -- env VRAM_SOCKET="$act" "$VRAM" queue
    expect activated_submit 0 '' -- env VRAM_SOCKET="$act" "$VRAM" submit --vram 1GiB -- true
    kill -TERM $activator 2>/dev/null; wait $activator 2>/dev/null
    grep -q 'stopping' "$tmp/activate.log" && ok activated_daemon_stopped || not_ok activated_daemon_stopped "$(tail -3 "$tmp/activate.log")"
else
    echo "skip - $file/activated_serves: systemd-socket-activate is not installed"
fi

# Readiness: a datagram socket stands for systemd's.
cat >"$tmp/notify.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(10)
with open(sys.argv[2], "w") as out:
    for _ in range(2):
        try:
            out.write(s.recv(4096).decode() + "\n---\n"); out.flush()
        except socket.timeout:
            break
PY
python3 "$tmp/notify.py" "$tmp/notify" "$tmp/notified" &
listener=$!
wait_until 5 test -S "$tmp/notify"
NOTIFY_SOCKET=$tmp/notify JOURNAL_STREAM=8:123 "$VRAM" serve >"$tmp/journal.log" 2>&1 &
notified_daemon=$!
wait_for "$tmp/notified" 'READY=1' 10 && ok ready_notified || not_ok ready_notified "$(cat "$tmp/notified" 2>/dev/null; tail -3 "$tmp/journal.log")"
kill -TERM $notified_daemon; wait $notified_daemon 2>/dev/null
wait_for "$tmp/notified" 'STOPPING=1' 10 && ok stopping_notified || not_ok stopping_notified "$(cat "$tmp/notified")"
wait $listener 2>/dev/null
# Under the journal: "vramd 0.1.0: socket ...", not "12:00:00 vramd: ...".
if grep -Eq '^[0-9]{2}:[0-9]{2}:[0-9]{2} ' "$tmp/journal.log"; then
    not_ok journal_lines_unstamped "$(head -2 "$tmp/journal.log")"
else
    grep -q 'socket' "$tmp/journal.log" && ok journal_lines_unstamped || not_ok journal_lines_unstamped "no lines: $(cat "$tmp/journal.log")"
fi
finish
