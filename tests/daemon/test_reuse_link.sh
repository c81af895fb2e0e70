# SPDX-License-Identifier: MIT
# tests/daemon/test_reuse_link.sh - a reused runner keeps its connection to
# vramd from one job to the next (issue 13, wire/link.c vram__link_keep):
# every job a runner runs finds it on the same socket, and each job still
# runs once, with its own log.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"

start_daemon || exit 1

# A holder of the card, then five one-at-a-time jobs: each says which job it
# is, its runner ($PPID) and the runner's sockets.
holder=$("$VRAM" submit --vram 21GiB -- sh -c "while [ ! -e $tmp/GO ]; do sleep 0.05; done")
wait_until 30 is_state "$holder" running || not_ok holder_runs "$("$VRAM" queue 2>&1)"
jobs=()
for i in 1 2 3 4 5; do
    jobs+=("$("$VRAM" submit --vram 14GiB -- sh -c \
        "echo \"\$VRAM_JOB \$PPID \$(ls -l /proc/\$PPID/fd | grep -o 'socket:\[[0-9]*\]' | sort | tr '\n' ' ')\" >>$tmp/ran; echo said-by-$i")")
done
touch "$tmp/GO"
"$VRAM" wait "${jobs[@]}" --timeout 60 >/dev/null 2>&1

each_job_ran_once "$tmp/ran" 5
# For each runner that ran two jobs or more: a socket all of them saw.
verdict=$(python3 - "$tmp/ran" <<'PY'
import sys
by = {}
for line in open(sys.argv[1]):
    w = line.split()
    by.setdefault(w[1], []).append(set(w[2:]))
reused = [s for s in by.values() if len(s) > 1]
if not reused:
    print("no runner ran two jobs")
elif any(not set.intersection(*s) for s in reused):
    print("a reused runner's jobs saw no socket in common")
else:
    print("ok")
PY
)
if [ "$verdict" = ok ]; then ok one_connection_a_runner; else not_ok one_connection_a_runner "$verdict: $(cat "$tmp/ran")"; fi
logs_ok=1
for i in 1 2 3 4 5; do
    log=$("$VRAM" log "${jobs[$((i - 1))]}" 2>&1)
    if ! printf '%s\n' "$log" | grep -q "said-by-$i" || printf '%s\n' "$log" | grep -v "said-by-$i" | grep -q 'said-by-'; then
        logs_ok=0
        not_ok each_log_its_own "job ${jobs[$((i - 1))]}: $log"
    fi
done
[ $logs_ok = 1 ] && ok each_log_its_own
finish
