# SPDX-License-Identifier: MIT
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
. "$(dirname "$0")/daemon.sh"
start_daemon || { not_ok daemon_starts "$(tail -5 "$tmp/daemon.log")"; finish; }
url=$(dashboard_url)
if [ -z "$url" ]; then
    not_ok daemon_serves_the_dashboard "$(tail -5 "$tmp/daemon.log")"
    finish
fi
python3 "$VRAM_TOP/tests/daemon/browser_vramd.py" "$file" "$chromium" "$url" "$tmp/token" \
    "$helpers/simalloc hold 2GiB 2500" "$tmp" "$VRAM_BUILD/test-logs/dashboard-vramd.png"
