# SPDX-License-Identifier: MIT
# tests/daemon/daemon.sh - a vramd of the test's own, sourced after
# tests/cli/lib.sh: the simulated card, and socket, queue, token and state
# under $tmp (set daemon_db or daemon_history before sourcing to put them
# elsewhere; whatever VRAM_* the caller's shell has is not used).  start_daemon [FLAGS] returns once the daemon answers (its socket
# listens before the rest is up); stop_daemon ends it with SIGTERM, and the
# EXIT trap does so too.
mkdir -p "$tmp/state"
export VRAM_BACKEND=sim VRAM_SIM="RTX 4090:24GiB" VRAM_SIM_STATE=$tmp/state \
       VRAM_SOCKET=$tmp/vramd.sock VRAM_DB="${daemon_db:-$tmp/queue.db}" VRAM_HISTORY="${daemon_history:--}" \
       VRAM_TOKEN_FILE=$tmp/token VRAM_HTTP=127.0.0.1:0 VRAM_INTERVAL=50ms
daemon=
start_daemon() {
    "$VRAM" serve "$@" >>"$tmp/daemon.log" 2>&1 &
    daemon=$!
    for _ in $(seq 1 100); do "$VRAM" queue >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "# the daemon did not start: $(tail -5 "$tmp/daemon.log")"
    return 1
}
stop_daemon() { [ -n "$daemon" ] && kill -TERM $daemon 2>/dev/null && wait $daemon 2>/dev/null; daemon=; }
# The dashboard's address, as the daemon said it.
# No runner of the daemon's left: a runner whose job ended stays a while
# (parked, VRAMD_PARK_MS) and takes its user's next job under its first
# job's argv; a test that finds a job's runner by its argv waits for this.
# The daemon's spawner (`vram __spawner`, which forks the runners) is its
# child too, and no runner.
runners() { ps -o pid=,args= --ppid "$daemon" 2>/dev/null | grep -v -- ' __spawner\( \|$\)'; }
no_runners() { [ -z "$(runners)" ]; }
# each_job_ran_once FILE N: FILE has N lines, each from another job (the
# job's VRAM_JOB first on its line): every job ran, and none twice.
each_job_ran_once() {
    if [ "$(wc -l <"$1")" = "$2" ] && [ "$(awk '{print $1}' "$1" | sort -u | wc -l)" = "$2" ]; then
        ok each_job_ran_once
    else
        not_ok each_job_ran_once "$(cat "$1")"
    fi
}
# trace_daemon CALLS [SIZE]: strace -f of the daemon's threads (-ttt -y
# -qq, strings up to SIZE, 400 by default) into $tmp/strace, in the
# background as $tracer; the test skips where strace cannot attach.
trace_daemon() {
    strace -f -ttt -y -qq -s "${2:-400}" -e trace="$1" -p "$daemon" -o "$tmp/strace" 2>"$tmp/strace.err" &
    tracer=$!
    sleep 0.5                      # strace says nothing on attaching with -qq: give it a moment
    if ! kill -0 "$tracer" 2>/dev/null; then
        echo "skip - $file/all: strace cannot attach here: $(head -c 200 "$tmp/strace.err")"
        exit 77
    fi
}
dashboard_url() { grep -o 'dashboard http://[0-9.:]*/' "$tmp/daemon.log" | tail -1 | cut -d' ' -f2; }
trap 'stop_daemon; rm -rf "$tmp"' EXIT
