#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/daemon/test_spawner_users.sh - runners the spawner (daemon/spawn.c)
# forks for another user than root's vramd: a job's process that lost the
# shim's region finds it again at its runner's /proc/PID/fd/N, as it does
# with a runner vramd exec'd (no exec made the forked runner non-dumpable:
# its /proc was root's, and the shim's calls passed unchecked).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
other_user
trap 'stop_daemon; drop_other; rm -rf "$tmp"' EXIT
mkdir -m 777 "$tmp/w"

start_daemon || exit 1
# The job closes the region's descriptor (as Python's subprocess does), then
# opens it again from its runner, which it names, once told.
job=$(cd "$tmp/w" && as_other "$VRAM" submit --vram 1GiB -- sh -c 'echo $PPID >runner
    while [ ! -e GO ]; do sleep 0.05; done
    exec 5<&-
    if head -c0 "/proc/$PPID/fd/$VRAM_SHIM_FD"; then echo reopened; else echo cannot-reopen; fi')
wait_until 30 test -s "$tmp/w/runner" || not_ok job_runs "$("$VRAM" queue 2>&1)"
runner=$(cat "$tmp/w/runner" 2>/dev/null)
if [ -n "$runner" ] && tr '\0' '\n' <"/proc/$runner/environ" | grep -qx VRAMD_SPAWNER=1 &&
   [ "$(stat -c %U "/proc/$runner")" = "$other" ]; then
    ok others_runner_forked_by_the_spawner_is_theirs
else
    not_ok others_runner_forked_by_the_spawner_is_theirs "runner '$runner': $(ls -ld "/proc/${runner:-self}")"
fi
touch "$tmp/w/GO"
"$VRAM" wait "$job" --timeout 30 >/dev/null 2>&1
"$VRAM" log "$job" >"$tmp/out" 2>&1
grep -qx reopened "$tmp/out" && ok job_reopens_region_from_its_runner ||
    not_ok job_reopens_region_from_its_runner "$(tail -3 "$tmp/out")"
finish
