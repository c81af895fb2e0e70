# SPDX-License-Identifier: MIT
# tests/daemon/test_spawner.sh - vramd's spawner (daemon/spawn.c): one
# `vram __spawner` beside vramd forks its runners without an exec.  A
# runner is still vramd's child, shown by ps as `vram run --daemon-job N
# --gate 3 ...`, and runs its job once; the spawner keeps no job's words
# once its runner is forked; a runner whose environment gives the loader
# other settings than vramd's is exec'd; with the spawner gone, runners are
# forked and exec'd, vramd says so, and no job is lost; --spawner no
# starts none.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"

expect spawner_by_hand_refused 2 "__spawner is vramd's own" -- "$VRAM" __spawner

start_daemon || exit 1
spawner=$(ps -o pid=,args= --ppid "$daemon" | awk '$3 == "__spawner" { print $1 }')
[ "$(echo "$spawner" | grep -c .)" = 1 ] && ok one_spawner_beside_vramd ||
    not_ok one_spawner_beside_vramd "$(ps -o pid=,args= --ppid "$daemon")"
# Its environment is the loader's variables and its mark: none of vramd's.
if tr '\0' '\n' <"/proc/$spawner/environ" | grep -qx VRAMD_SPAWNER=1 &&
   ! tr '\0' '\n' <"/proc/$spawner/environ" | grep -q '^VRAM_SOCKET='; then
    ok spawner_has_no_environment_of_vramds
else
    not_ok spawner_has_no_environment_of_vramds "$(tr '\0' ' ' <"/proc/$spawner/environ")"
fi

runner_of() { ps -o pid=,args= --ppid "$daemon" 2>/dev/null | awk -v j="$1" '$0 ~ "--daemon-job " j " --gate 3 " { print $1 }'; }

# A job with a secret in its environment: its runner, forked by the
# spawner (whose environment it shows), is vramd's child, and its command
# line is a runner's.
job=$(VRAM_TEST_SECRET=s3cr3t-$$-word "$VRAM" submit --vram 1GiB -- sh -c "while [ ! -e $tmp/GO ]; do sleep 0.05; done")
wait_until 30 is_state "$job" running || not_ok job_runs "$("$VRAM" queue 2>&1)"
runner=$(runner_of "$job")
if [ -n "$runner" ] && tr '\0' '\n' <"/proc/$runner/environ" | grep -qx VRAMD_SPAWNER=1; then
    ok runner_forked_by_the_spawner
else
    not_ok runner_forked_by_the_spawner "runner '$runner': $(runners)"
fi
[ -n "$runner" ] && [ "$(ps -o ppid= -p "$runner" | tr -d ' ')" = "$daemon" ] && ok runner_is_vramds_child ||
    not_ok runner_is_vramds_child "runner '$runner', ppid $(ps -o ppid= -p "${runner:-1}")"
if [ -n "$runner" ] && tr '\0' '\n' <"/proc/$runner/cmdline" | head -6 | tr '\n' ' ' |
   grep -q -- " run --daemon-job $job --gate 3 "; then
    ok runner_shows_its_command_line
else
    not_ok runner_shows_its_command_line "$(tr '\0' ' ' <"/proc/${runner:-self}/cmdline" | cut -c1-200)"
fi
# The spawner's memory holds no word of that job's once its runner is
# forked (a later runner, another user's maybe, is a copy of it).
found=$(python3 - "$spawner" "s3cr3t-$$-word" <<'PY'
import re, sys
pid, word = sys.argv[1], sys.argv[2].encode()
hits = 0
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (r)", line)
        if not m or "[vvar]" in line or "[vsyscall]" in line:
            continue
        lo, hi = int(m.group(1), 16), int(m.group(2), 16)
        if hi - lo > 1 << 28:   # a sanitizer's shadow, sparse: no heap of ours
            continue
        at, tail = lo, b""
        while at < hi:          # a MiB at a time, a word's length kept across reads
            try:
                mem.seek(at)
                chunk = tail + mem.read(min(1 << 20, hi - at))
            except OSError:
                break
            hits += chunk.count(word)
            tail = chunk[-(len(word) - 1):]
            at += 1 << 20
print(hits)
PY
)
[ "$found" = 0 ] && ok spawner_keeps_no_jobs_words || not_ok spawner_keeps_no_jobs_words "found $found times"
touch "$tmp/GO"
wait_until 30 is_state "$job" succeeded || not_ok job_succeeds "$(state_of "$job")"

# A job that gives the loader another library path: its runner is exec'd
# (the loader reads that at an exec), with the job's environment.
job=$(LD_LIBRARY_PATH=$tmp/nolib "$VRAM" submit --vram 1GiB -- sh -c "while [ ! -e $tmp/GO2 ]; do sleep 0.05; done")
wait_until 30 is_state "$job" running || not_ok loader_job_runs "$("$VRAM" queue 2>&1)"
runner=$(runner_of "$job")
if [ -n "$runner" ] && tr '\0' '\n' <"/proc/$runner/environ" | grep -qx "LD_LIBRARY_PATH=$tmp/nolib"; then
    ok loader_settings_runner_is_execd
else
    not_ok loader_settings_runner_is_execd "runner '$runner': $(tr '\0' ' ' <"/proc/${runner:-self}/environ" | cut -c1-200)"
fi
touch "$tmp/GO2"
wait_until 30 is_state "$job" succeeded || not_ok loader_job_succeeds "$(state_of "$job")"

# The spawner killed: the next jobs are run all the same, each once, by
# runners vramd forks and execs itself, and vramd says so once.
kill -9 "$spawner"
: >"$tmp/ran"
for _ in 1 2 3; do "$VRAM" submit --vram 1GiB -- sh -c 'echo $VRAM_JOB >>'"$tmp/ran" >/dev/null; done
"$VRAM" wait --all >/dev/null 2>&1 || wait_until 30 sh -c "[ \$(wc -l <$tmp/ran) -ge 3 ]"
each_job_ran_once "$tmp/ran" 3
[ "$(grep -c 'runners are started by fork and exec from now on' "$tmp/daemon.log")" = 1 ] &&
    ok said_once_without_spawner || not_ok said_once_without_spawner "$(tail -5 "$tmp/daemon.log")"
[ -z "$(ps -o pid=,args= --ppid "$daemon" | awk '$3 == "__spawner"')" ] && ok dead_spawner_reaped ||
    not_ok dead_spawner_reaped "$(ps -o pid=,stat=,args= --ppid "$daemon")"

# --spawner no: no spawner, and a job runs all the same.
stop_daemon
start_daemon --spawner no || exit 1
[ -z "$(ps -o pid=,args= --ppid "$daemon" | awk '$3 == "__spawner"')" ] && ok spawner_no_starts_none ||
    not_ok spawner_no_starts_none "$(ps -o pid=,args= --ppid "$daemon")"
job=$("$VRAM" submit --vram 1GiB -- true)
wait_until 30 is_state "$job" succeeded && ok spawner_no_job_runs || not_ok spawner_no_job_runs "$(state_of "$job")"

# vramd started with its stdin closed: the spawner's fd 0 was free, a gate
# was received there and lost to the runner's /dev/null, and no job ran.
stop_daemon
"$VRAM" serve <&- >>"$tmp/daemon.log" 2>&1 &
daemon=$!
wait_until 10 "$VRAM" queue
job=$("$VRAM" submit --vram 1GiB -- true)
"$VRAM" wait "$job" --timeout 20 >/dev/null 2>&1
is_state "$job" succeeded && ok stdin_closed_vramds_job_runs ||
    not_ok stdin_closed_vramds_job_runs "$(state_of "$job"): $(tail -3 "$tmp/daemon.log")"

# vramd as a container's first process, pid 1 of its pid namespace: its
# spawner starts all the same (it took a parent of pid 1 for none of
# vramd's, and each runner was exec'd), and forks the job's runner.
stop_daemon
if [ "$(id -u)" = 0 ] && unshare --pid --fork --kill-child --mount-proc true 2>/dev/null; then
    : >"$tmp/pid1.log"
    unshare --pid --fork --kill-child --mount-proc "$VRAM" serve >>"$tmp/pid1.log" 2>&1 &
    pid1=$!
    wait_until 10 "$VRAM" queue
    job=$("$VRAM" submit --vram 1GiB -- sh -c 'tr "\0" "\n" </proc/$PPID/environ')
    "$VRAM" wait "$job" --timeout 20 >/dev/null 2>&1
    if "$VRAM" log "$job" 2>&1 | grep -qx VRAMD_SPAWNER=1 && ! grep -q 'fork and exec\|__spawner' "$tmp/pid1.log"; then
        ok spawner_of_pid_1_vramd_forks
    else
        not_ok spawner_of_pid_1_vramd_forks "$(tail -3 "$tmp/pid1.log")"
    fi
    kill -KILL "$pid1" 2>/dev/null     # unshare: its child, vramd, goes with it
    wait "$pid1" 2>/dev/null
else
    echo "skip - $file/spawner_of_pid_1_vramd_forks: no pid namespace here (needs root and unshare)"
fi
finish
