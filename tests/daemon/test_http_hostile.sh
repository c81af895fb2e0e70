# SPDX-License-Identifier: MIT
# tests/daemon/test_http_hostile.sh - whose eyes the dashboard reads jobs
# for (daemon/http.c) when the reader lies about who it is: a local user who
# connects from a port that TIME_WAIT rows share (the kernel lists those as
# root's), and a web page whose name rebinds to this machine, sending its own
# Host to a dashboard that listens on every address.  Neither sees a
# command the daemon hides from it.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
start_daemon || { not_ok daemon_starts "$(tail -5 "$tmp/daemon.log")"; finish; }
secret="echo hidden-from-others-$$"
"$VRAM" submit --vram 1GiB -- sh -c "$secret" >/dev/null
url=$(dashboard_url)

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
    chmod 711 "$tmp"
    cp "$VRAM_TOP/tests/daemon/httphostile.py" "$tmp/httphostile.py" && chmod 644 "$tmp/httphostile.py"
    as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- /usr/bin/python3 "$tmp/httphostile.py" "$@"; }
    expect plain_reader_sees_a_summary 0 "another user's job" -- as_nobody "$url" host "127.0.0.1"
    expect timewait_port_is_not_root 0 "another user's job" -- as_nobody "$url" timewait
    if grep -q "$secret" "$tmp/out"; then not_ok timewait_port_hides_the_command "$(head -c 400 "$tmp/out")"
    else ok timewait_port_hides_the_command; fi
else
    echo "skip - $file/timewait_port_is_not_root: needs root, setpriv and the user nobody"
fi

# The daemon's own user reads its jobs whole, at an address it may have
# typed; a page at a name of its own, rebound here, is not that user.
stop_daemon
export VRAM_HTTP=0.0.0.0:0
start_daemon || { not_ok daemon_starts_on_every_address "$(tail -5 "$tmp/daemon.log")"; finish; }
url=$(dashboard_url)
port=${url##*:}; port=${port%/}
expect own_user_reads_whole 0 "$secret" -- python3 "$VRAM_TOP/tests/daemon/httphostile.py" "$url" host "127.0.0.1:$port"
expect rebound_page_reads_summaries 0 "another user's job" -- \
    python3 "$VRAM_TOP/tests/daemon/httphostile.py" "$url" host "rebound.example:$port"
if grep -q "$secret" "$tmp/out"; then not_ok rebound_page_not_shown_the_command "$(head -c 400 "$tmp/out")"
else ok rebound_page_not_shown_the_command; fi
finish
