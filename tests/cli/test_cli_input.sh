# SPDX-License-Identifier: MIT
# tests/cli/test_cli_input.sh - the command's edges of input: VRAM_HISTORY=-
# read as "the history is off" (no file named -), numbers out of range,
# empty values given explicitly, 0 where it would mean forever, options
# that cannot go together, a folder given as a file, refusals that name
# what failed, and a {key} with no value refused before the job waits.
. "$(dirname "$0")/lib.sh"
export VRAM_BACKEND=sim VRAM_SIM="RTX 4090:24GiB" VRAM_HISTORY=-
cd "$tmp" || exit 1

# ---- VRAM_HISTORY=- records nothing, and the readers say so ----
mkdir "$tmp/off" && cd "$tmp/off" || exit 1
expect history_off 0 "^no runs recorded: the run history is off \(--history or VRAM_HISTORY is '-'\)$" -- "$VRAM" history
expect history_off_json 0 '^\{"runs":\[\]\}$' -- "$VRAM" history --json
expect history_off_flag 0 "the run history is off" -- env -u VRAM_HISTORY "$VRAM" history --history -
expect report_history_off 2 "^vram report: no run 1: the run history is off" -- "$VRAM" report 1
expect calibrate_history_off 2 "^vram calibrate: --from-history: the run history is off" -- \
    "$VRAM" calibrate --model latentsync --from-history
if [ -z "$(ls -A "$tmp/off")" ]; then ok history_off_creates_no_file
else not_ok history_off_creates_no_file "$(ls -A "$tmp/off")"; fi
cd "$tmp" || exit 1

# ---- numbers past what their type holds are refused, named ----
for id in 18446744073709551616 9223372036854775808 99999999999999999999999; do
    expect "report_id_out_of_range_$id" 2 "^vram report: '$id' is not a run number" -- \
        "$VRAM" report "$id" --history "$tmp/runs.db"
done
expect report_id_largest 2 "^vram report: no run 9223372036854775807 in the history" -- \
    "$VRAM" report 9223372036854775807 --history "$tmp/runs.db"
big=99999999999999999999999
expect submit_priority_huge 2 "^vram submit: --priority: '$big' is not a whole number from -100 to 100" -- \
    "$VRAM" submit --vram 1GiB --priority "$big" -- true
expect submit_device_huge 2 "^vram submit: --device: '$big' is not auto or a device number" -- \
    "$VRAM" submit --vram 1GiB --device "$big" -- true
printf 'a %s 1GiB 1s\n' "$big" >"$tmp/huge.trace"
expect trace_count_huge 2 "count '$big' is not a whole number" -- "$VRAM" simulate "$tmp/huge.trace"
printf 'a 1 1GiB 1s priority=%s\n' "$big" >"$tmp/huge.trace"
expect trace_priority_huge 2 "priority '$big' is not a whole number" -- "$VRAM" simulate "$tmp/huge.trace"

# ---- an empty value given as a flag is refused, not read as the default ----
mkdir "$tmp/home" && cd "$tmp/home" || exit 1
for f in db socket token-file; do
    expect "serve_empty_$f" 2 "^vram serve: --$f needs a path, not '' \(see" -- \
        env HOME="$tmp/home" XDG_STATE_HOME="$tmp/home/state" XDG_RUNTIME_DIR="$tmp/home/run" "$VRAM" serve "--$f" ''
done
expect serve_empty_socket_group 2 "^vram serve: --socket-group needs a group, not ''" -- \
    env HOME="$tmp/home" XDG_STATE_HOME="$tmp/home/state" XDG_RUNTIME_DIR="$tmp/home/run" "$VRAM" serve --socket-group=
if [ -z "$(ls -A "$tmp/home")" ]; then ok serve_empty_makes_no_state
else not_ok serve_empty_makes_no_state "$(find "$tmp/home")"; fi
cd "$tmp" || exit 1
expect queue_empty_socket 2 "^vram queue: --socket needs a path, not ''" -- "$VRAM" queue --socket ''
expect run_kill_wait_zero 2 "^vram run: --kill-wait: '0' is zero; give a positive duration" -- \
    "$VRAM" run --kill-wait 0 --vram 1GiB -- true
expect run_kill_wait_env_bad 2 "VRAM_KILL_WAIT.*'soon' is not a duration" -- \
    env VRAM_KILL_WAIT=soon "$VRAM" run --vram 1GiB -- true
expect submit_empty_vram 2 "^vram submit: --vram: an empty size" -- "$VRAM" submit --vram '' -- true
expect submit_empty_priority 2 "^vram submit: --priority: '' is not a whole number" -- \
    "$VRAM" submit --vram 1GiB --priority '' -- true
expect submit_empty_time 2 "^vram submit: --time: '' is not a time limit" -- "$VRAM" submit --vram 1GiB --time '' -- true
expect submit_empty_device 2 "^vram submit: --device: '' is not auto or a device number" -- \
    "$VRAM" submit --vram 1GiB --device '' -- true
expect submit_empty_enforce 2 "^vram submit: --enforce: '' is not hard, soft or off" -- \
    "$VRAM" submit --vram 1GiB --enforce '' -- true
# In a batch an empty cell is a value not given: the row is checked, then
# no daemon answers (exit 1), not refused as bad input.
printf 'command,vram,device,priority,time,enforce\ntrue,1GiB,,,,\n' >"$tmp/batch.csv"
expect submit_csv_empty_cells 1 "no daemon answers" -- "$VRAM" submit --csv "$tmp/batch.csv" --socket "$tmp/none.sock"

# ---- 0 where the loop would read it as "for ever" is refused ----
expect wait_timeout_zero 2 "^vram wait: --timeout: '0' would give up before the first look: give more than 0" -- \
    timeout 10 "$VRAM" wait 1 --timeout 0 --socket "$tmp/none.sock"
expect wait_timeout_zero_s 2 "^vram wait: --timeout: '0s'" -- timeout 10 "$VRAM" wait --all --timeout 0s
expect leakcheck_seconds_zero 2 "^vram leakcheck: --seconds: '0' would stop before the first sample: give more than 0" -- \
    timeout 10 "$VRAM" leakcheck --pid $$ -s 0
expect leakcheck_command_seconds_zero 2 "^vram leakcheck: --seconds: '0ms'" -- \
    timeout 10 "$VRAM" leakcheck --seconds 0ms -- true
expect wait_help_says 0 'give up after S seconds \(more than 0' -- "$VRAM" wait --help
expect leakcheck_help_says 0 'sample for S seconds \(more than 0' -- "$VRAM" leakcheck --help

# ---- one error, one message ----
expect run_bad_device 2 "^vram run: --device: 'x' is not auto or a device number$" -- \
    "$VRAM" run --vram 1GiB --device x -- true
expect_lines run_bad_device_one_line '.' 1

# ---- options that cannot go together, and a batch of nothing ----
printf 'command,vram\n' >"$tmp/header_only.csv"
printf 'command,vram\ntrue,1GiB\n' >"$tmp/one.csv"
expect csv_header_only 2 "header_only.csv: a header and no job rows: nothing to queue" -- \
    "$VRAM" submit --csv "$tmp/header_only.csv" --socket "$tmp/none.sock"
expect csv_with_vram_flag 2 "with --csv, each job's vram comes from the file \(a 'vram' column\), not --vram" -- \
    "$VRAM" submit --csv "$tmp/one.csv" --vram 2GiB --socket "$tmp/none.sock"
expect csv_with_priority_flag 2 "each job's priority comes from the file" -- \
    "$VRAM" submit --csv "$tmp/one.csv" --priority 5 --socket "$tmp/none.sock"
expect csv_with_set_flag 2 "a job's settings come from the file" -- \
    "$VRAM" submit --csv "$tmp/one.csv" --set steps=30 --socket "$tmp/none.sock"
expect skip_bad_without_csv 2 "--skip-bad is for a --csv batch" -- \
    "$VRAM" submit --skip-bad --vram 1GiB --socket "$tmp/none.sock" -- true
expect profile_is_a_folder 2 "^vram estimate: $tmp is a folder, not a profile file" -- "$VRAM" estimate --profile "$tmp"
expect profile_path_not_a_folder 2 "cannot open /etc/passwd/x: Not a directory" -- \
    "$VRAM" estimate --profile /etc/passwd/x
expect plan_json_and_format_text 2 "--json is --format json: not with --format 'text'" -- \
    "$VRAM" plan --model latentsync --vram 24GiB --json --format text
expect simulate_virtual_with_policy 2 "--policy is for the run with threads, not --virtual" -- \
    "$VRAM" simulate --virtual --policy fifo "$tmp/none.trace"
# A refusal names the limit that failed: here the time, not the memory.
expect optimize_time_limit_named 3 "nothing fits 16.0 GiB within 10 s at level balanced: plans that fit the memory" -- \
    "$VRAM" optimize --model wan2.2-ti2v-5b --vram 16GiB --max-time 10s
# --max-time 0 dropped the limit (0 is none to the library); 1ms said "within 0 s".
expect optimize_max_time_zero 2 "^vram optimize: --max-time: '0' is no time" -- \
    "$VRAM" optimize --model wan2.2-ti2v-5b --vram 16GiB --max-time 0
expect optimize_max_time_1ms 3 "nothing fits 16.0 GiB within 0.001 s" -- \
    "$VRAM" optimize --model wan2.2-ti2v-5b --vram 16GiB --max-time 1ms
printf 'x 1 1GiB 1s cpu=yes\n' >"$tmp/cpu.trace"
expect trace_cpu_takes_no_value 2 "cpu.trace:1: cpu takes no value \('cpu=yes'\): write the word cpu" -- \
    "$VRAM" simulate "$tmp/cpu.trace"
expect report_output_empty 2 "^vram report: --output needs a file name \(or - for stdout\), not ''" -- \
    "$VRAM" report 1 -o ''
expect history_no_runs_of_job 0 "^no runs of job 99999 in $tmp/h.db" -- "$VRAM" history --job 99999 --history "$tmp/h.db"
expect gate_not_open 2 "--gate 99 is not an open descriptor: --gate is vramd's" -- \
    "$VRAM" run --daemon-job 999 --gate 99 --socket "$tmp/none.sock"
# A folder given as a file to read is said to be one.
expect csv_is_a_folder 2 "cannot read '$tmp': Is a directory" -- "$VRAM" submit --csv "$tmp" --socket "$tmp/none.sock"
expect trace_is_a_folder 2 "cannot read trace '$tmp': Is a directory" -- "$VRAM" simulate "$tmp"
expect measurements_are_a_folder 2 "cannot open $tmp: Is a directory" -- \
    "$VRAM" calibrate --model latentsync --from "$tmp"
expect submit_help_exit_3 0 "3 when no device could ever hold the job" -- "$VRAM" submit --help

# ---- a {key} nothing gives a value is refused before a wait or a queue ----
expect run_key_without_value 2 "^vram run: '\{steps\}' in the command has no value \(known: none" -- \
    "$VRAM" run --vram 1GiB --socket "$tmp/none.sock" -- echo '{steps}'
expect_lines run_key_refused_before_waiting "waiting for GPU memory" 0
. "$(dirname "$0")/../daemon/daemon.sh"
start_daemon || exit 1
expect submit_key_without_value 2 "^vram submit: not queued: '\{steps\}' in the command has no value \(known: none" -- \
    "$VRAM" submit --vram 1GiB -- echo '{steps}'
expect submit_key_from_later_rung 2 "'\{fps\}' in the command has no value \(known: \{steps\}" -- \
    "$VRAM" submit --vram 1GiB --ladder 'steps=4; fps=2' -- echo '{steps}' '{fps}'
expect submit_args_without_model 2 "\{args\} in the command needs a model" -- \
    "$VRAM" submit --vram 1GiB -- sh -c 'gen {args}'
expect submit_key_not_planned 2 "'\{bogus\}' in the command has no value \(known: \{resolution\}" -- \
    "$VRAM" submit --model sadtalker -- echo '{bogus}'
expect submit_key_from_set 0 "^1$" -- "$VRAM" submit --vram 1GiB --set steps=3 -- echo '{steps}'
wait_until 20 sh -c '"$VRAM" queue | grep -q " 1 succeeded"'
expect submit_key_queued_once 0 "^0 queued, 0 starting, 0 running, 1 succeeded, 0 failed" -- "$VRAM" queue
expect submit_key_given_its_value 0 "^3$" -- "$VRAM" log 1
finish
