# SPDX-License-Identifier: MIT
# tests/daemon/test_vramd_disk.sh - vramd with its queue on a disk that fills:
# a submit is refused with the reason, running jobs still end (their ends
# kept in memory, every lease given back), no job starts until there is room,
# and once there is, everything is written: a restarted vramd finds every job
# ended once.  The small disk is a 2 MiB tmpfs in a mount namespace of the
# test's own (unshare -rm, no root needed where user namespaces are allowed).
if [ "${VRAM_DISK_TEST_INSIDE:-}" != 1 ]; then
    if ! unshare -rm true 2>/dev/null; then
        echo "skip - test_vramd_disk/all: cannot make a mount namespace here (unshare -rm), so no small disk to fill"
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
alloc=$helpers/simalloc
# count STATE: how many jobs the daemon lists in that state.
count() {
    "$VRAM" queue --json 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["counts"]["'"$1"'"])' 2>/dev/null || echo -1
}

start_daemon && ok daemon_starts || not_ok daemon_starts "see $tmp/daemon.log"

# Four jobs of 10 GiB on a 24 GiB card: two run, two wait for memory.
for i in 1 2 3 4; do "$VRAM" submit --vram 10GiB -- "$alloc" hold 1GiB 1500 >/dev/null; done
for _ in $(seq 1 100); do [ "$(count running)" = 2 ] && break; sleep 0.05; done
expect two_running 0 '2 running' -- "$VRAM" queue

# The disk fills.
dd if=/dev/zero of="$tmp/disk/ballast" bs=64k >/dev/null 2>&1
expect submit_refused_disk_full 1 'not queued: .*the disk holding .*queue.db is full' -- \
    "$VRAM" submit --vram 1GiB -- true

# The two running jobs end all the same, and give their memory back; the
# two waiting cannot start while their start cannot be written.
expect running_jobs_end_on_a_full_disk 0 '' -- "$VRAM" wait 1 2 --timeout 30
for _ in $(seq 1 60); do "$VRAM" queue 2>&1 | grep -q "waiting for room on the queue's disk" && break; sleep 0.1; done
expect waiting_for_room 0 "waiting for room on the queue's disk" -- "$VRAM" queue
expect_lines none_starts_on_a_full_disk '^ *[34] +(starting|running)' 0
expect says_ends_are_kept 0 'job ends are kept in memory and written when there is room' -- cat "$tmp/daemon.log"

# Room again: what was kept is written, and the waiting jobs run.
rm -f "$tmp/disk/ballast"
expect waiting_jobs_run_once_there_is_room 0 '' -- "$VRAM" wait 3 4 --timeout 30
for _ in $(seq 1 40); do grep -q 'the queue is written again' "$tmp/daemon.log" && break; sleep 0.1; done
expect says_written_again 0 'the queue is written again' -- cat "$tmp/daemon.log"

# A new vramd reads the disk alone: every job ended, once, none lost.
stop_daemon
start_daemon
"$VRAM" queue --json >"$tmp/q.json" 2>&1
if python3 - "$tmp/q.json" <<'PY'
import json, sys
q = json.load(open(sys.argv[1]))
states = sorted((j["id"], j["state"], j["attempt"]) for j in q["jobs"])
assert states == [(i, "succeeded", 1) for i in (1, 2, 3, 4)], states
PY
then ok every_job_ended_once_on_disk; else not_ok every_job_ended_once_on_disk "$(head -c 600 "$tmp/q.json")"; fi
finish
