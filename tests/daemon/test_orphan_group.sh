# SPDX-License-Identifier: MIT
# tests/daemon/test_orphan_group.sh - a job whose runner is gone is followed
# through its own processes, not through a process group of its number: once
# its group has ended, that number may be another user's group (a pid used
# again), and a root vramd followed that one instead, the job "running" and
# its lease held for as long as the stranger's group lived.
. "$(dirname "$0")/../cli/lib.sh"
# The job's user: not root (the stranger's group is root's), nobody.
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null || ! id nobody >/dev/null 2>&1 ||
   [ ! -w /proc/sys/kernel/ns_last_pid ]; then
    echo "skip - $file: needs root, setpriv, the user nobody and a writable ns_last_pid"
    exit 77
fi
export VRAM_SOCKET_GROUP=$(id -gn nobody)
chmod 711 "$tmp"
. "$(dirname "$0")/daemon.sh"
as_nobody() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "$@"; }

start_daemon && ok daemon_starts || { not_ok daemon_starts "see $tmp/daemon.log"; finish; }
mkdir -m 777 "$tmp/work"
# The job kills its runner and lives on a moment: vramd follows it.
job=$(cd "$tmp/work" && as_nobody env VRAM_SIM_STATE="$tmp/work" "$VRAM" submit --vram 1GiB -- \
      sh -c 'echo $$ >pgid; kill -9 $PPID; exec sleep 1')
wait_for "$tmp/daemon.log" "job $job lost its runner; following its processes" 20 ||
    not_ok orphan_followed "$(tail -3 "$tmp/daemon.log")"
pgid=$(cat "$tmp/work/pgid")
# Root's group of that number, made as soon as the job's has ended (vramd
# looks every 200 ms), by taking the pid when it comes round.
deadline=$((SECONDS + 20))
while [ -e "/proc/$pgid" ] && [ $SECONDS -lt $deadline ]; do :; done
stranger=
for _ in $(seq 1 200); do
    echo $((pgid - 1)) >/proc/sys/kernel/ns_last_pid
    setsid sleep 30 &
    [ $! = "$pgid" ] && { stranger=$!; break; }
    kill $! 2>/dev/null
done
if [ -z "$stranger" ]; then
    echo "skip - $file/orphan_ends_with_its_own_processes: pid $pgid was not to be had again"
else
    "$VRAM" wait "$job" --timeout 10 >/dev/null 2>&1
    if "$VRAM" queue | grep -Eq "^ +$job +failed"; then
        ok orphan_ends_with_its_own_processes
    else not_ok orphan_ends_with_its_own_processes "$("$VRAM" queue | grep -E "^ +$job ") (root's group $pgid lives)"; fi
    kill "$stranger" 2>/dev/null
fi
finish
