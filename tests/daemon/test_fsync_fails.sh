# SPDX-License-Identifier: MIT
# tests/daemon/test_fsync_fails.sh - when an fsync of the queue's log fails
# (an LD_PRELOAD library, tests/daemon/eio.c, fails fdatasync with EIO
# while a file it names exists), vramd does not answer as though the submit
# were on disk: the client is told that it may not be queued, vramd says why
# and stops with a failing status, and a vramd started again on a sound
# disk serves the queue.  Before, a failed fsync counted as done.  Skips
# without a C compiler.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
build_preload "$(dirname "$0")/eio.c"
export EIO_WHEN=$tmp/disk-fails
start_daemon_preloaded || { not_ok starts "$(tail -5 "$tmp/daemon.log")"; finish; }
if "$VRAM" submit --vram 1GiB -- true >"$tmp/first" 2>&1; then
    ok a_submit_on_a_sound_disk
else
    not_ok a_submit_on_a_sound_disk "$(cat "$tmp/first")"
fi

touch "$EIO_WHEN"
"$VRAM" submit --vram 1GiB -- true >"$tmp/second" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "may not be queued: vramd could not write its queue to disk (fsync: Input/output error) and stops" "$tmp/second"; then
    ok a_submit_whose_fsync_fails_is_told_so
else
    not_ok a_submit_whose_fsync_fails_is_told_so "exit $rc: $(cat "$tmp/second")"
fi

# vramd stops, and says why, with a failing status.
expect_daemon_fails vramd_stops_and_says_why "could not be written to disk (fsync: Input/output error): stopping"

# On a sound disk again, the next vramd serves the queue: the first job is
# there, and the command that was told "may or may not" finds out which.
rm -f "$EIO_WHEN"
start_daemon || { not_ok restarts "$(tail -5 "$tmp/daemon.log")"; finish; }
"$VRAM" queue --json >"$tmp/queue" 2>&1
if grep -q '"id":1[,}]' "$tmp/queue"; then
    ok the_next_vramd_serves_the_queue
else
    not_ok the_next_vramd_serves_the_queue "$(head -c 1000 "$tmp/queue")"
fi
finish
