# tests/daemon/test_dashboard_vramd.sh - the real vramd's dashboard in a
# headless Chromium: a job submitted through the page runs on the simulated
# card and the page follows it to its end (tests/daemon/browser_vramd.py).
# Leaves a screenshot in BUILD/test-logs/dashboard-vramd.png.
. "$(dirname "$0")/../cli/lib.sh"
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
    echo "skip - $file/all: chromium is not installed (Debian package chromium; scripts/deps.sh test installs it)"
    exit 77
fi
mkdir -p "$tmp/state"
export VRAM_BACKEND=sim VRAM_SIM="RTX 4090:24GiB" VRAM_SIM_STATE=$tmp/state VRAM_SOCKET=$tmp/vramd.sock \
       VRAM_DB=$tmp/queue.db VRAM_HISTORY=- VRAM_TOKEN_FILE=$tmp/token VRAM_HTTP=127.0.0.1:0 VRAM_INTERVAL=50ms
"$VRAM" serve >"$tmp/daemon.log" 2>&1 &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do "$VRAM" queue >/dev/null 2>&1 && break; sleep 0.05; done
url=$(grep -o 'dashboard http://[0-9.:]*/' "$tmp/daemon.log" | head -1 | cut -d' ' -f2)
if [ -z "$url" ]; then
    not_ok daemon_serves_the_dashboard "$(tail -5 "$tmp/daemon.log")"
    finish
fi
python3 "$VRAM_TOP/tests/daemon/browser_vramd.py" "$file" "$chromium" "$url" "$tmp/token" \
    "$helpers/simalloc hold 2GiB 2500" "$tmp" "$VRAM_BUILD/test-logs/dashboard-vramd.png"
