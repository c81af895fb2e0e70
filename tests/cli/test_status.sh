# SPDX-License-Identifier: MIT
# tests/cli/test_status.sh - `vram status`, `vram watch`, `vram leakcheck`
# and the command's handling of bad input.
. "$(dirname "$0")/lib.sh"
export VRAM_BACKEND=sim

expect status_text 0 'GPU 0: T4' -- env VRAM_SIM="T4:14.7GiB:8.5GiB" "$VRAM" status
expect status_says_simulated 0 '^SIMULATED DEVICES' -- "$VRAM" status
expect status_sizes 0 '8\.5 GiB of 14\.7 GiB used \(58%\)' -- "$VRAM" status --sim "T4:14.7GiB:8.5GiB"
expect status_safe 0 'safe available 4\.7 GiB' -- "$VRAM" status --sim "T4:14.7GiB:8.5GiB"
expect status_two_gpus 0 'GPU 1: RTX 4090' -- "$VRAM" status --sim "T4:14.7GiB:8.5GiB,RTX 4090:24GiB"
expect status_margin_flag 0 'margin 2\.0 GiB' -- "$VRAM" status --margin 2GiB
expect status_margin_eq 0 'margin 4\.8 GiB' -- "$VRAM" status --margin=20%

"$VRAM" status --json --sim "T4:14.7GiB:8.5GiB,RTX 4090:24GiB" >"$tmp/s.json" 2>&1
if python3 - "$tmp/s.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["simulated"] is True and d["backend"] == "sim", d
assert len(d["devices"]) == 2
g = d["devices"][0]
assert g["total_bytes"] == 15784004813 and g["used_bytes"] == 9126805504
assert g["free_bytes"] + g["used_bytes"] == g["total_bytes"]
assert g["safe_available_bytes"] == g["free_bytes"] - g["margin_bytes"]
assert isinstance(d["host"]["ram_total_bytes"], int)
PY
then ok status_json; else not_ok status_json "$(cat "$tmp/s.json")"; fi

# Bad input: one line naming the value, exit 2, flags and environment alike.
expect bad_flag 2 "unknown option '--frobnicate'" -- "$VRAM" status --frobnicate
expect bad_command 2 "unknown command 'stauts'" -- "$VRAM" stauts
expect bad_size_unit 2 "'12XB' is not a size" -- "$VRAM" status --margin 12XB
expect negative_size 2 "negative" -- "$VRAM" status --margin -3G
expect huge_size 2 "too large" -- "$VRAM" status --margin 1e30G
expect margin_over_100 2 "over 100%" -- "$VRAM" status --margin 150%
expect env_margin 2 "^vram status: VRAM_MARGIN: margin '150%' is over 100%" -- env VRAM_MARGIN=150% "$VRAM" status
expect env_sim 2 "VRAM_SIM: device 0 'T4:14.7XB'" -- env VRAM_SIM="T4:14.7XB" "$VRAM" status
expect flag_sim 2 "--sim: device 1 'x'" -- "$VRAM" status --sim "T4:8G,x"
expect env_backend 2 "VRAM_BACKEND: 'gpu' is not one of auto\|nvml\|sim" -- env VRAM_BACKEND=gpu "$VRAM" status
expect missing_value 2 "--margin needs a value" -- "$VRAM" status --margin
expect stray_arg 2 "unexpected argument 'now'" -- "$VRAM" status now
expect forced_nvml_without_driver 1 "no NVIDIA driver" -- "$VRAM" status --backend nvml --nvml-library /nonexistent/libnvidia-ml.so.1
"$VRAM" status --sim "T4:8G" --margin 12XB >"$tmp/out" 2>&1
expect_lines one_line_per_error '.' 1

expect help 0 'settings \(every command' -- "$VRAM" status --help
expect top_help 0 'leakcheck' -- "$VRAM" --help
expect no_command 2 'usage: vram COMMAND' -- "$VRAM"
expect version 0 '^vram [0-9]+\.[0-9]+\.[0-9]+' -- "$VRAM" --version

# watch, not on a terminal: a line per device per refresh, and it stops.
expect watch_lines 0 'gpu1 used 0\.0 GiB' -- "$VRAM" watch --count 3 --interval 20ms --sim "A:8G:1G,B:8G"
expect_lines watch_line_count '^[0-9T:.-]+Z gpu[01] ' 6
expect watch_json 0 '"device":0,"total_bytes":8589934592' -- "$VRAM" watch --count 2 --json --interval 10ms --sim "A:8G:1G"
expect watch_seconds 0 'gpu0' -- "$VRAM" watch --seconds 0.3 --interval 50ms
expect watch_bad_count 2 "--count: 'many' is not a whole number" -- "$VRAM" watch --count many
expect watch_bad_interval 2 "--interval: '0' is not a refresh from 1ms to 1h" -- "$VRAM" watch --interval 0
expect watch_bad_interval_text 2 "--interval: 'soon'" -- "$VRAM" watch --interval soon
# --seconds 0 would have run for ever: refused, naming the value.
expect watch_seconds_zero_refused 2 "--seconds: '0' would stop before the first refresh: give more than 0" -- \
    timeout 10 "$VRAM" watch --seconds 0
# The refresh is a second by default: two refreshes are at least 0.9 s apart
# (a lower bound only: a slow machine makes it longer, never shorter).
expect watch_default_refresh 0 '^ok$' -- sh -c '"$1" watch --count 2 --json | python3 -c "
import json, sys, datetime
t = [datetime.datetime.fromisoformat(json.loads(l)[\"time\"].rstrip(\"Z\")) for l in sys.stdin]
assert len(t) == 2 and (t[1] - t[0]).total_seconds() >= 0.9, t
print(\"ok\")"' sh "$VRAM"
# Utilisation, temperature and power where NVML gives them (the stub
# driver's device 0 has them, device 1 does not); simulated cards have none.
stub_env="VRAM_BACKEND=nvml VRAM_NVML_LIBRARY=$VRAM_BUILD/stubs/libnvidia-ml.so.1"
stub_script="devices=A100:40960:2048:0|T4:15360:100:0;sensors0=45:62:180:300"
expect watch_sensors_lines 0 'gpu0 used 2\.0 GiB .* util 45%  temp 62C  power 180/300W' -- \
    env $stub_env VRAM_STUB_NVML="$stub_script" "$VRAM" watch --count 1 --local
expect_lines watch_sensors_only_where_given 'gpu1 .*util' 0
expect watch_sensors_json 0 '"device":0,.*"util_percent":45,"temperature_c":62,"power_watts":180\.000,"power_limit_watts":300\.000' -- \
    env $stub_env VRAM_STUB_NVML="$stub_script" "$VRAM" watch --count 1 --local --json
expect_lines watch_sensors_json_null '"device":1,.*"util_percent":null,"temperature_c":null,"power_watts":null' 1
expect watch_sim_has_no_sensors 0 '"util_percent":null' -- "$VRAM" watch --count 1 --json --sim "A:8G"

# leakcheck on the simulated card, with a program that really allocates there.
mkdir -p "$tmp/state"
export VRAM_SIM="G:24GiB" VRAM_SIM_STATE="$tmp/state"
expect leak_found 4 'growing 1[0-9]\.[0-9] MiB per sample' -- "$VRAM" leakcheck --interval 20ms -- "$helpers/simalloc" leak 16MiB 30 20
expect leak_flat 0 'flat over' -- "$VRAM" leakcheck --interval 20ms -- "$helpers/simalloc" hold 2GiB 600
expect leak_json 4 '"leaking":true' -- "$VRAM" leakcheck --json --interval 20ms -- "$helpers/simalloc" leak 16MiB 30 20
expect leak_grandchild 0 'peak 3\.0 GiB' -- "$VRAM" leakcheck --interval 20ms -- sh -c "'$helpers/simalloc' fork-hold 3GiB 500; sleep 0.7"
"$helpers/simalloc" leak 8MiB 40 25 & pid=$!
expect leak_pid 4 "pid $pid" -- "$VRAM" leakcheck --pid $pid --seconds 2 --interval 20ms
wait $pid
expect leak_exit_status 7 'not enough samples' -- "$VRAM" leakcheck --interval 20ms -- sh -c 'exit 7'
expect leak_no_such_command 127 "cannot run 'no-such-program-x'" -- "$VRAM" leakcheck -- no-such-program-x
expect leak_neither 2 'give either --pid' -- "$VRAM" leakcheck
expect leak_both 2 'not both' -- "$VRAM" leakcheck --pid 1 -- true
expect leak_bad_pid 2 "no such process" -- "$VRAM" leakcheck --pid 4000000
finish
