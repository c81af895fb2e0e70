#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/daemon/test_trust_disk.sh - exactly once on a full disk (issue 10,
# finding 7): jobs that started, then ended while the queue's disk was full
# (their ends kept in memory only), then a kill -9 of the daemon and a
# restart: none runs a second time; each is recorded as lost.  The small
# disk is a tmpfs in a mount namespace of the test's own, as in
# test_vramd_disk.sh.
if [ "${VRAM_DISK_TEST_INSIDE:-}" != 1 ]; then
    if ! unshare -rm true 2>/dev/null; then
        echo "skip - test_trust_disk/all: cannot make a mount namespace here (unshare -rm), so no small disk to fill"
        exit 0
    fi
    VRAM_DISK_TEST_INSIDE=1 exec unshare -rm bash "$0" "$@"
fi
. "$(dirname "$0")/../cli/lib.sh"
mkdir -p "$tmp/disk"
if ! mount -t tmpfs -o size=2m,mode=0700 tmpfs "$tmp/disk" 2>"$tmp/mount.err"; then
    echo "skip - $file/all: cannot mount a small tmpfs: $(cat "$tmp/mount.err")"
    exit 0
fi
daemon_db=$tmp/disk/queue.db
. "$(dirname "$0")/daemon.sh"
trap 'stop_daemon; umount "$tmp/disk" 2>/dev/null; rm -rf "$tmp"' EXIT
count() {
    "$VRAM" queue --json 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["counts"]["'"$1"'"])' 2>/dev/null || echo -1
}

start_daemon && ok daemon_starts || not_ok daemon_starts "see $tmp/daemon.log"
for i in $(seq 1 10); do
    "$VRAM" submit --vram 1GiB -- sh -c "echo \$VRAM_JOB >>'$tmp/ran.txt'; sleep 2" >/dev/null
done
for _ in $(seq 1 200); do [ "$(count running)" = 10 ] && break; sleep 0.05; done
sleep 0.5                           # their process groups reach the disk
# The disk fills while they run; they end; their ends stay in memory.
dd if=/dev/zero of="$tmp/disk/ballast" bs=64k >/dev/null 2>&1
"$VRAM" wait --all --timeout 30 >/dev/null 2>&1
wait_for "$tmp/daemon.log" 'kept in memory' 10
kill -9 $daemon; wait $daemon 2>/dev/null; daemon=
rm -f "$tmp/disk/ballast"
start_daemon
"$VRAM" wait --all --timeout 30 >/dev/null 2>&1
sleep 1
runs=$(wc -l <"$tmp/ran.txt")
twice=$(sort "$tmp/ran.txt" | uniq -d | wc -l)
if [ "$runs" = 10 ] && [ "$twice" = 0 ]; then ok no_job_runs_twice_after_full_disk_and_kill
else not_ok no_job_runs_twice_after_full_disk_and_kill "$runs runs, $twice jobs more than once"; fi
expect ended_jobs_recorded_lost 0 '"queued":0,"starting":0,"running":0' -- "$VRAM" queue --json --limit 1
expect says_why_lost 0 'not run a second time' -- "$VRAM" queue --limit 20
finish
