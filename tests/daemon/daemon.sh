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
# state_of JOB: the job's state, as `vram queue --json` says it (nothing
# for a job it does not list); is_state JOB STATE.
state_of() { "$VRAM" queue --json 2>/dev/null | python3 -c 'import json, sys
for j in json.load(sys.stdin)["jobs"]:
    if j["id"] == int(sys.argv[1]): print(j["state"])' "$1"; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }
dashboard_url() { grep -o 'dashboard http://[0-9.:]*/' "$tmp/daemon.log" | tail -1 | cut -d' ' -f2; }
# daemon_exits [SECONDS]: vramd ends by itself within SECONDS (5); its exit
# status is then in $daemon_status.  False, with vramd stopped, if not.
daemon_exits() {
    local _
    for _ in $(seq 1 $((${1:-5} * 20))); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$daemon" 2>/dev/null; then
        stop_daemon
        return 1
    fi
    wait "$daemon"
    daemon_status=$?
    daemon=
}
# expect_daemon_fails NAME [PATTERN]: the verdict NAME on vramd ending by
# itself with a failing status, its log matching PATTERN where given.
expect_daemon_fails() {
    if ! daemon_exits; then
        not_ok "$1" "still running: $(tail -5 "$tmp/daemon.log")"
    elif [ $daemon_status -ne 0 ] && { [ -z "${2:-}" ] || grep -q "$2" "$tmp/daemon.log"; }; then
        ok "$1"
    else
        not_ok "$1" "exit $daemon_status: $(tail -5 "$tmp/daemon.log")"
    fi
}
# build_preload SOURCE: builds SOURCE (C) as an LD_PRELOAD library in $tmp
# and sets $preload to what LD_PRELOAD takes to add it (after ASan's
# runtime, in that build); skips the test, saying why, without a C
# compiler or when the build fails.
build_preload() {
    local cc=${CC:-cc} so
    so=$tmp/$(basename "${1%.c}").so
    command -v "$cc" >/dev/null || { echo "skip - $file/all: no C compiler ($cc) to build $(basename "$1")"; exit 77; }
    "$cc" -shared -fPIC -o "$so" "$1" -ldl 2>"$tmp/cc.err" ||
        { echo "skip - $file/all: cannot build $(basename "$1"): $(head -c 200 "$tmp/cc.err")"; exit 77; }
    preload=${LD_PRELOAD:+$LD_PRELOAD:}$so
}
# start_daemon_preloaded [FLAGS]: start_daemon with $preload in vramd.
start_daemon_preloaded() {
    LD_PRELOAD=$preload ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0" start_daemon "$@"
}
# other_user: as root, makes a second user for the test ($other; as_other
# COMMAND... runs as them, drop_other removes them) whom the socket lets
# in; skips the test, saying why, where that cannot be done.
other_user() {
    other=
    if [ "$(id -u)" = 0 ] && command -v useradd >/dev/null && command -v setpriv >/dev/null; then
        local name=vramt$$$RANDOM
        for _ in 1 2 3 4 5; do useradd -M -U -s /bin/sh "$name" 2>/dev/null && { other=$name; break; }; sleep 0.2; done
    fi
    if [ -z "$other" ]; then
        echo "skip - $file: cannot make a second user here (needs root and useradd)"
        exit 77
    fi
    export VRAM_SOCKET_GROUP=$other
    chmod 711 "$tmp"
}
as_other() { setpriv --reuid="$other" --regid="$(id -g "$other")" --clear-groups -- "$@"; }
drop_other() { userdel "$other" 2>/dev/null; groupdel "$other" 2>/dev/null; }
trap 'stop_daemon; rm -rf "$tmp"' EXIT
