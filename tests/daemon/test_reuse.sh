# SPDX-License-Identifier: MIT
# tests/daemon/test_reuse.sh - runner reuse (issue 13): a runner whose job
# ended takes its user's next queued job with the same environment, without
# a new exec (daemon/jobs.c vramd_job_runner_next, cli/cmd_run.c take_next).
# Each job still runs exactly once, in its own folder, with its own log and
# --output; a job with another environment gets a runner of its own; a
# reused runner whose next job is canceled before its turn ends without
# running it.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"

start_daemon || exit 1
runner_of() { ps -o pid=,args= --ppid "$daemon" 2>/dev/null | awk -v j="$1" '$0 ~ "--daemon-job " j " --gate 3 " { print $1 }'; }
gone() { ! kill -0 "$1" 2>/dev/null; }

mkdir -p "$tmp/one" "$tmp/two"
# A holder of the card, then six one-at-a-time jobs: each says who ran it
# ($PPID is its runner), where, and as which job.
holder=$("$VRAM" submit --vram 21GiB -- sh -c "while [ ! -e $tmp/GO ]; do sleep 0.05; done")
wait_until 30 is_state "$holder" running || not_ok holder_runs "$("$VRAM" queue 2>&1)"
jobs=()
for i in 1 2 3 4 5 6; do
    dir=$tmp/one; [ $((i % 2)) = 0 ] && dir=$tmp/two
    out=(); [ "$i" = 5 ] && out=(--output "$tmp/five.out")
    jobs+=("$(cd "$dir" && "$VRAM" submit --vram 14GiB "${out[@]}" -- \
        sh -c "echo \"\$VRAM_JOB \$PPID \$(pwd) \$(ls /proc/\$PPID/fd | wc -l)\" >>$tmp/ran; echo said-by-$i")")
done
touch "$tmp/GO"
"$VRAM" wait "${jobs[@]}" --timeout 60 >/dev/null 2>&1

each_job_ran_once "$tmp/ran" 6
runners=$(awk '{print $2}' "$tmp/ran" | sort -u | wc -l)
if [ "$runners" -lt 6 ]; then ok runners_reused; else not_ok runners_reused "6 jobs, $runners runners: $(cat "$tmp/ran")"; fi
misplaced=""
for i in 1 2 3 4 5 6; do
    id=${jobs[$((i - 1))]}
    want=$tmp/one; [ $((i % 2)) = 0 ] && want=$tmp/two
    grep -qx "vramd-$id [0-9]* $want [0-9]*" "$tmp/ran" || misplaced="$misplaced job $id not in $want;"
done
if [ -z "$misplaced" ]; then ok each_job_in_its_folder; else not_ok each_job_in_its_folder "$misplaced $(cat "$tmp/ran")"; fi

# A runner holds as many descriptors at its fifth job as at its first.
if [ "$(awk '{ print $2, $4 }' "$tmp/ran" | sort -u | awk '{ print $1 }' | uniq -d)" = "" ]; then
    ok no_descriptor_kept_per_job
else
    not_ok no_descriptor_kept_per_job "$(cat "$tmp/ran")"
fi

# Each log holds its own job's lines and output, no other's.
logs_ok=1
for i in 1 2 3 4 6; do
    id=${jobs[$((i - 1))]}
    log=$("$VRAM" log "$id" 2>&1)
    if ! printf '%s\n' "$log" | grep -q "said-by-$i" || ! printf '%s\n' "$log" | grep -q 'attempt 1 finished' ||
       printf '%s\n' "$log" | grep -v "said-by-$i" | grep -q 'said-by-'; then
        logs_ok=0
        not_ok each_log_its_own "job $id: $log"
    fi
done
[ $logs_ok = 1 ] && ok each_log_its_own
if grep -qx 'said-by-5' "$tmp/five.out" 2>/dev/null && [ "$(grep -c 'attempt 1 finished' "$tmp/five.out")" = 1 ] &&
   [ "$(grep -c '^said-by-' "$tmp/five.out")" = 1 ]; then
    ok output_file_per_job
else
    not_ok output_file_per_job "$(cat "$tmp/five.out" 2>&1) / $("$VRAM" log "${jobs[4]}" 2>&1)"
fi

# Another environment: never run by a runner of the first.
rm -f "$tmp/GO" "$tmp/ran"
holder=$("$VRAM" submit --vram 21GiB -- sh -c "while [ ! -e $tmp/GO ]; do sleep 0.05; done")
wait_until 30 is_state "$holder" running || not_ok holder_runs_again "$("$VRAM" queue 2>&1)"
same=()
for _ in 1 2 3; do
    same+=("$("$VRAM" submit --vram 14GiB -- sh -c "echo \"same \$PPID\" >>$tmp/ran")")
done
other=$(VRAM_TEST_OTHER=1 "$VRAM" submit --vram 14GiB -- sh -c "echo \"other \$PPID\" >>$tmp/ran")
touch "$tmp/GO"
"$VRAM" wait "${same[@]}" "$other" --timeout 60 >/dev/null 2>&1
theirs=$(awk '$1 == "other" { print $2 }' "$tmp/ran")
if [ -n "$theirs" ] && ! awk '$1 == "same" { print $2 }' "$tmp/ran" | grep -qx "$theirs"; then
    ok other_environment_other_runner
else
    not_ok other_environment_other_runner "$(cat "$tmp/ran")"
fi

# A reused runner waits for its next job's turn; that job canceled first
# is never run, and the runner ends.  The last case's runners leave first
# (a parked one would take the first job under its own argv).
wait_until 30 no_runners || not_ok parked_runners_leave "$(runners)"
rm -f "$tmp/GO" "$tmp/ran"
holder=$("$VRAM" submit --vram 21GiB -- sh -c "while [ ! -e $tmp/GO ]; do sleep 0.05; done")
wait_until 30 is_state "$holder" running || not_ok holder_runs_a_third_time "$("$VRAM" queue 2>&1)"
seq_jobs=()
for i in 1 2 3 4 5; do
    seq_jobs+=("$("$VRAM" submit --vram 14GiB -- sh -c "echo \$VRAM_JOB >>$tmp/ran; sleep 0.6")")
done
first=${seq_jobs[0]} fourth=${seq_jobs[3]} fifth=${seq_jobs[4]}
wait_until 30 sh -c "ps -o args= --ppid $daemon | grep -q -- '--daemon-job $first --gate 3 '"
r1=$(runner_of "$first")
touch "$tmp/GO"
# The first job ends; its runner stays, waiting for the fourth's turn (the
# second and third have runners started ahead).
wait_until 30 is_state "$first" succeeded
sleep 0.2
if [ -n "$r1" ] && kill -0 "$r1" 2>/dev/null && ! is_state "$fourth" succeeded; then
    ok runner_waits_for_next_job
else
    not_ok runner_waits_for_next_job "runner '$r1'; $("$VRAM" queue 2>&1)"
fi
"$VRAM" cancel "$fourth" >/dev/null 2>&1
"$VRAM" wait "${seq_jobs[@]}" --timeout 60 >/dev/null 2>&1
if [ "$(state_of "$fourth")" = canceled ] && ! grep -qx "vramd-$fourth" "$tmp/ran" &&
   [ "$(grep -c . "$tmp/ran")" = 4 ] && [ "$(state_of "$fifth")" = succeeded ]; then
    ok canceled_next_job_never_runs
else
    not_ok canceled_next_job_never_runs "$(cat "$tmp/ran"); $("$VRAM" queue 2>&1)"
fi
if [ -n "$r1" ] && wait_until 10 gone "$r1"; then ok reused_runner_ends; else not_ok reused_runner_ends "runner $r1 still there"; fi

# A runner whose job ended with nothing queued waits a little (parked,
# VRAMD_PARK_MS) for its user's next job: a batch submitted job by job,
# each after the last ended, reuses it.
rm -f "$tmp/ran"
for i in 1 2 3 4; do
    id=$("$VRAM" submit --vram 1GiB -- sh -c "echo \"\$VRAM_JOB \$PPID\" >>$tmp/ran")
    "$VRAM" wait "$id" --timeout 30 >/dev/null 2>&1
done
runners=$(awk '{print $2}' "$tmp/ran" | sort -u | wc -l)
if [ "$(wc -l <"$tmp/ran")" = 4 ] && [ "$runners" -lt 4 ]; then
    ok parked_runner_takes_the_next_submit
else
    not_ok parked_runner_takes_the_next_submit "$(cat "$tmp/ran")"
fi
# ... and ends when none comes.
last=$(tail -1 "$tmp/ran" | awk '{print $2}')
if wait_until 10 gone "$last"; then ok parked_runner_ends_unused; else not_ok parked_runner_ends_unused "runner $last still there"; fi

finish
