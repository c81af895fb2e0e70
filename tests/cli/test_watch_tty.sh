# tests/cli/test_watch_tty.sh - `vram watch` on a real terminal (a pty made
# by script(1)): it draws in place, quits on q and on Ctrl-C, and leaves the
# terminal as it found it.
. "$(dirname "$0")/lib.sh"
if ! command -v script >/dev/null; then
    echo "skip - $file/all: script(1) is not installed"; exit 77
fi
export VRAM_BACKEND=sim VRAM_SIM="T4:14.7GiB:8.5GiB"

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

watch_with q
rc=$?
if [ $rc -eq 0 ] && check_screen q; then ok quits_on_q_and_restores; else not_ok quits_on_q_and_restores "rc $rc"; fi
watch_with '\003'
rc=$?
if [ $rc -eq 0 ] && check_screen ctrl-c; then ok quits_on_ctrl_c_and_restores; else not_ok quits_on_ctrl_c_and_restores "rc $rc"; fi
finish
