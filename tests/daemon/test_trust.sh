#!/usr/bin/env bash
# tests/daemon/test_trust.sh - vramd's trust boundaries (issue 10), one case
# or more per finding: one daemon per queue, a queue only its user can read,
# user text never run nor printed raw, cancel and time limits that stop
# every process a job started.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
alloc=$helpers/simalloc

start_daemon || { not_ok daemon_starts "see $tmp/daemon.log"; finish; }

# ---- 4: one daemon per queue --------------------------------------------------------
# A second daemon on the same db, on another socket, is refused with the
# first one's pid, and leaves nothing behind.
expect second_daemon_same_db_refused 1 "another vramd \\(pid $daemon\\) already runs on the queue" -- \
    timeout 10 env VRAM_SOCKET="$tmp/other.sock" VRAM_HTTP=127.0.0.1:0 "$VRAM" serve
if [ -e "$tmp/other.sock" ]; then not_ok second_daemon_leaves_no_socket "$tmp/other.sock is left"
else ok second_daemon_leaves_no_socket; fi

# ---- 3: the queue and its WAL are the daemon user's alone ----------------------------
"$VRAM" submit --vram 1GiB -- true >/dev/null
bad=$(find "$tmp" -maxdepth 1 -name 'queue.db*' -perm /077 -printf '%f %m\n')
if [ -z "$bad" ] && [ -e "$tmp/queue.db-wal" ]; then ok queue_files_0600
else not_ok queue_files_0600 "open to others: ${bad:-no WAL?} ($(ls -l "$tmp" | tr '\n' ' '))"; fi
# A queue in a folder others may write is refused, naming the folder.
mkdir -p "$tmp/shared" && chmod 1777 "$tmp/shared"
expect queue_in_shared_folder_refused 1 "others may write in the queue's folder $tmp/shared" -- \
    timeout 10 env VRAM_SOCKET="$tmp/s2.sock" VRAM_DB="$tmp/shared/queue.db" "$VRAM" serve
# An existing queue left readable is made 0600 at start.
mkdir -m 700 "$tmp/q3"
sqlite3 "$tmp/q3/queue.db" 'create table x(a)' 2>/dev/null || : >"$tmp/q3/queue.db"
chmod 644 "$tmp/q3/queue.db"
env VRAM_SOCKET="$tmp/s3.sock" VRAM_DB="$tmp/q3/queue.db" "$VRAM" serve >"$tmp/d3.log" 2>&1 &
d3=$!
wait_until 10 env VRAM_SOCKET="$tmp/s3.sock" "$VRAM" queue
kill -TERM $d3 2>/dev/null; wait $d3 2>/dev/null
mode=$(stat -c %a "$tmp/q3/queue.db")
if [ "$mode" = 600 ]; then ok old_queue_made_private; else not_ok old_queue_made_private "mode $mode"; fi

stop_daemon
finish
