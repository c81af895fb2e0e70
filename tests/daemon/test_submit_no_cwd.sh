# SPDX-License-Identifier: MIT
# tests/daemon/test_submit_no_cwd.sh - `vram submit` from a folder that is
# gone sends vramd nothing: it says the job is not queued, not that it "may
# not be" (what it says when vramd stopped, or was lost, with the request).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
start_daemon || { not_ok starts "$(tail -5 "$tmp/daemon.log")"; finish; }
mkdir "$tmp/gone"
(cd "$tmp/gone" && rmdir "$tmp/gone" && "$VRAM" submit --vram 1GiB -- true) >"$tmp/out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "not queued: cannot read the current directory" "$tmp/out" &&
   ! grep -q "may not be queued" "$tmp/out"; then
    ok a_submit_from_a_folder_gone_is_not_queued
else
    not_ok a_submit_from_a_folder_gone_is_not_queued "exit $rc: $(cat "$tmp/out")"
fi
finish
