# SPDX-License-Identifier: MIT
# tests/cli/test_watch_tty.sh - `vram watch` on a real terminal (a pty made
# by script(1)): it draws in place, quits on q and on Ctrl-C, and leaves the
# terminal as it found it; TERM=dumb gets lines, NO_COLOR no colours.
. "$(dirname "$0")/lib.sh"
if ! command -v script >/dev/null; then
    echo "skip - $file/all: script(1) is not installed"; exit 77
fi
export VRAM_BACKEND=sim VRAM_SIM="T4:14.7GiB:8.5GiB" TERM=xterm
unset NO_COLOR

# watch_with KEYS: runs watch on a pty and types KEYS once it has drawn its
# screen three times (by then it has caught SIGINT). script(1) starts the
# command with $SHELL -c, and dash (CI's shell when SHELL is unset) does not
# exec a lone command: it stayed in the terminal's foreground group and Ctrl-C
# killed it, 130. So the shell is named, and it execs watch.
home=$(printf '\033[H')
watch_with() {
    rm -f "$tmp/ts"
    (for _ in $(seq 200); do
         [ "$(grep -aoF "$home" "$tmp/ts" 2>/dev/null | wc -l)" -ge 3 ] && break
         sleep 0.05
     done
     printf "$1") | SHELL=/bin/sh timeout 15 script -qfec "exec $VRAM watch --interval 50ms" "$tmp/ts" >/dev/null 2>&1
}

check_screen() {
    python3 - "$tmp/ts" "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
assert b"\x1b[?1049h" in data, "no alternate screen"
end = data.rfind(b"\x1b[?1049l")
assert end > 0, "alternate screen not left"
assert b"\x1b[?25h" in data[data.rfind(b"\x1b[?25l"):], "cursor not shown again"
assert b"GPU 0" in data and b"8.5 GiB / 14.7 GiB" in data, "no device drawn"
assert b"SIMULATED DEVICES" in data, "simulated not said"
assert data.count(b"\x1b[H") >= 3, "did not redraw in place"
PY
}

# TERM=dumb cannot place a cursor: lines, and not one escape sequence.
TERM=dumb SHELL=/bin/sh timeout 15 script -qfec "exec $VRAM watch --count 2 --interval 50ms" "$tmp/dumb" >/dev/null 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -aq 'gpu0 used 8.5 GiB' "$tmp/dumb" && ! grep -aq "$(printf '\033')" "$tmp/dumb"; then
    ok term_dumb_prints_lines
else not_ok term_dumb_prints_lines "rc $rc: $(head -c 300 "$tmp/dumb" | od -c | head -5)"; fi
# NO_COLOR: the full-screen view, without a colour or bold sequence; the
# default refresh (a second) is what the header says.
NO_COLOR=1 SHELL=/bin/sh timeout 15 script -qfec "exec $VRAM watch --count 1" "$tmp/nocolor" >/dev/null 2>&1
rc=$?
if [ $rc -eq 0 ] && python3 - "$tmp/nocolor" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
assert b"\x1b[H" in data and b"GPU 0" in data, "no screen drawn"
assert b"every 1000 ms" in data, "the refresh is not a second"
sgr = re.findall(rb"\x1b\[[0-9;]*m", data)
assert not sgr, sgr
PY
then ok no_color_draws_without_colours; else not_ok no_color_draws_without_colours "rc $rc"; fi
SHELL=/bin/sh timeout 15 script -qfec "exec $VRAM watch --count 1" "$tmp/color" >/dev/null 2>&1
if grep -aqF "$(printf '\033[33mSIMULATED')" "$tmp/color"; then ok colours_by_default
else not_ok colours_by_default "no yellow banner"; fi

watch_with q
rc=$?
if [ $rc -eq 0 ] && check_screen q; then ok quits_on_q_and_restores; else not_ok quits_on_q_and_restores "rc $rc"; fi
watch_with '\003'
rc=$?
if [ $rc -eq 0 ] && check_screen ctrl-c; then ok quits_on_ctrl_c_and_restores; else not_ok quits_on_ctrl_c_and_restores "rc $rc"; fi
finish
