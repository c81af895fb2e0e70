# SPDX-License-Identifier: MIT
# tests/daemon/test_dashboard_browser.sh - the dashboard in a real headless
# Chromium (Debian's chromium), driven over the DevTools protocol by
# tests/daemon/browser.py: no console errors or failed requests, the
# devices, a job submitted through the page followed to its end, a cancel
# button, the chart.  Leaves a screenshot in BUILD/test-logs/dashboard.png.
. "$(dirname "$0")/../cli/lib.sh"
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
    echo "skip - $file/all: chromium is not installed (Debian package chromium; scripts/deps.sh test installs it)"
    exit 77
fi
python3 "$VRAM_TOP/tests/daemon/browser.py" "$file" "$chromium" "$helpers/dashstub" "$tmp" \
    "$VRAM_BUILD/test-logs/dashboard.png"
