# SPDX-License-Identifier: MIT
# tests/daemon/test_conn_fds.sh - a client's connection costs vramd one
# descriptor, whatever it asks: a connection that sends a runner's request
# for a job it does not run (refused, authz.c) leaves no pidfd of its opener
# open in vramd.  VRAMD_MAX_CONNS (512) clients then fit under the usual
# soft limit of 1024 descriptors with room for the jobs' own files (their
# logs, their runners' pipes); with a pidfd kept for each, the limit is
# reached and a job cannot be submitted or started while they stay.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
python3 "$(dirname "$0")/hostile.py" /dev/null peerpidfd ||
    { echo "skip - $file/all: this kernel gives no SO_PEERPIDFD (Linux 6.5)"; exit 77; }
ulimit -n 1024 || { echo "skip - $file/all: cannot set the descriptor limit"; exit 77; }
start_daemon || exit 1
running=$("$VRAM" submit --vram 1GiB -- sleep 60)
wait_until 30 is_state "$running" running || not_ok holder_runs "$("$VRAM" queue 2>&1)"
fds() { ls "/proc/$daemon/fd" | wc -l; }
before=$(fds)

# N connections, each asking as if it were the job's runner (refused), held
# open while vramd's descriptors are counted and a job is submitted.
n=508
python3 - "$VRAM_SOCKET" "$running" "$n" "$tmp/held" <<'PY' &
import json, os, socket, sys, time
path, job, n, flag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
conns = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall((json.dumps(dict(v=1, op="job-progress", job=job, progress=0.5)) + "\n").encode())
    s.recv(4096)
    conns.append(s)
open(flag, "w").close()
time.sleep(20)
PY
holder=$!
wait_for_held() { [ -e "$tmp/held" ]; }
wait_until 60 wait_for_held || not_ok clients_connected "no $n connections"
after=$(fds)
grew=$((after - before))
if [ "$grew" -le $((n + 16)) ]; then ok one_descriptor_a_connection
else not_ok one_descriptor_a_connection "$n connections cost vramd $grew descriptors ($before before)"; fi
job=$("$VRAM" submit --vram 1GiB -- true 2>&1)
if printf '%s' "$job" | grep -Eqx '[0-9]+' && "$VRAM" wait "$job" --timeout 20 >/dev/null 2>&1; then
    ok job_runs_beside_many_clients
else
    not_ok job_runs_beside_many_clients "$job: $(tail -3 "$tmp/daemon.log")"
fi
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
"$VRAM" cancel "$running" >/dev/null 2>&1
stop_daemon
finish
