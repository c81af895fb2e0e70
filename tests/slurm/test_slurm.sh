#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/slurm/test_slurm.sh - the SPANK plugin on a real single-node Slurm.
#
# Starts munged, slurmctld and slurmd (tests/slurm/slurm.sh) with two fake
# GPUs of 8 shards each, loads build/lib/slurm/vram_spank.so through
# plugstack.conf, and checks what srun, sbatch and scancel do with --vram,
# alone and with a vramd on the node (the simulated 16 GiB card).  The
# cases that need the shim and its stub libcuda.so.1 skip, saying so, while
# those are not built.  The whole test skips, saying why, where the machine
# forbids running Slurm (not root, mknod refused, the daemons cannot start).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cli/lib.sh"
. "$here/slurm.sh"
vramd=
stop_vramd() {
    [ -n "$vramd" ] || return 0
    kill -TERM "$vramd" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$vramd" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$vramd" 2>/dev/null
    wait "$vramd" 2>/dev/null
    vramd=
}
# Background commands: each a subshell running `timeout ... srun ...` (or
# python); stop_bg ends the subshell's children (timeout passes the signal
# on to srun), then the subshell.
bg_pids=()
stop_bg() {
    local p c
    for p in "${bg_pids[@]}"; do
        for c in $(pgrep -P "$p"); do kill -TERM "$c" 2>/dev/null; done
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    bg_pids=()
}
trap 'stop_bg; stop_slurm; stop_vramd; rm -rf "$tmp"' EXIT

plugin=$VRAM_BUILD/lib/slurm/vram_spank.so
shim=$VRAM_BUILD/lib/libvram_shim.so
stub=$VRAM_BUILD/stubs/cuda
probe=$VRAM_BUILD/tests/slurm/cudaprobe
sock=$tmp/vramd.sock
GiB=1073741824

if [ ! -f "$plugin" ]; then
    if [ -f /usr/include/slurm/spank.h ]; then
        echo "skip - $file: $plugin is not built: sanitizer builds leave the plugin out (Slurm's own processes load it); the plain build runs this test"
    else
        echo "skip - $file: the Slurm plugin is not built: /usr/include/slurm/spank.h is missing (Debian: libslurm-dev)"
    fi
    exit 77
fi
have_shim=0
why_no_shim="the shim is not built ($shim, $stub/libcuda.so.1)"
[ -f "$shim" ] && [ -f "$stub/libcuda.so.1" ] && have_shim=1
# Steps that need no shim say --vram-enforce=off while it is not built.
enf=--vram-enforce=off
[ $have_shim = 1 ] && enf=
# The stub's fake card: 16 GiB, as the plugin's card_bytes says.
export VRAM_STUB_CUDA_MIB=16384
# NVML, for the case that gives the plugin nvml_library= (slurmstepd reads
# this from slurmd's environment): two cards whose device files do not
# follow NVML's order, /dev/nvidia1 being NVML's first.
export VRAM_STUB_NVML="devices=A:16384|B:16384;minors=1,0"
export LD_LIBRARY_PATH=$stub${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# plugstack.conf's line for the plugin, with ARGS added.
plugstack() { echo "required $plugin card_bytes=16G socket=$sock shim=$shim lease_wait=60s $*"; }
set_plugstack() { plugstack "$@" >"$sw/etc/plugstack.conf"; }

slurm_plugstack=$(plugstack)
if ! start_slurm; then
    echo "skip - $file: $slurm_why"
    exit 77
fi

# Runs srun bounded in time.
run() { timeout 60 "$@"; }
# sbatch_wait ARGS...: what `sbatch --wait ARGS` says and exits with (the
# job's exit code), without its polls of 2 s and then 8 s: the job's record
# is read every 0.1 s until it has ended (for 60 s at most, as run gives).
sbatch_wait() {
    local id st code
    id=$(sbatch --parsable "$@") || return $?
    id=${id%%;*}
    echo "Submitted batch job $id"
    for _ in $(seq 1 600); do
        st=$(scontrol show job -o "$id" 2>/dev/null)
        case $st in
            *JobState=PENDING*|*JobState=CONFIGURING*|*JobState=RUNNING*|*JobState=COMPLETING*|'') sleep 0.1 ;;
            *) break ;;
        esac
    done
    code=$(sed -n 's/.* ExitCode=\([0-9]*\):\([0-9]*\).*/\1 \2/p' <<<"$st")
    set -- $code
    [ "${1:-1}" != 0 ] && return "$1"
    [ "${2:-0}" != 0 ] && return 1
    case $st in *JobState=COMPLETED*) return 0 ;; *) return 1 ;; esac
}
skip_case() { echo "skip - $file/$1: $2"; }
no_jobs() { [ -z "$(squeue -h -o %i)" ]; }

# ---- the cluster and the plugin's options ---------------------------------

expect srun-true 0 "" -- run srun -N1 true
expect srun-help 0 "--vram=SIZE" -- srun --help
expect sbatch-help 0 "--vram-enforce=MODE" -- sbatch --help
expect salloc-help 0 "--vram=SIZE" -- salloc --help

# Without --vram and without shards the plugin leaves a step alone.
expect no-vram-no-env 0 "" -- run srun env
untouched='^(VRAM_(BUDGET_BYTES|LEASE|ENFORCE|JOB|DEVICE)|LD_PRELOAD)='
if grep -Eq "$untouched" "$tmp/out"; then not_ok no-vram-untouched "$(grep -E "$untouched" "$tmp/out")"
else ok no-vram-untouched; fi

# ---- budgets, without vramd -----------------------------------------------

expect vram-env 0 "^VRAM_BUDGET_BYTES=$((3 * GiB))\$" -- run srun --vram=3G --vram-enforce=off env
expect_lines vram-env-job '^VRAM_JOB=slurm-[0-9]+\.0$' 1
expect_lines vram-env-enforce '^VRAM_ENFORCE=off$' 1
expect_lines vram-env-off-no-preload '^LD_PRELOAD=' 0
expect_lines vram-env-no-lease '^VRAM_LEASE=' 0

# Shards: 4 of a 16 GiB card split in 8 are 8 GiB.
expect shard-bytes 0 "^VRAM_BUDGET_BYTES=$((8 * GiB))\$" -- run srun --gres=shard:4 --vram-enforce=off env
expect shard-bytes-1 0 "^VRAM_BUDGET_BYTES=$((2 * GiB))\$" -- run srun --gres=shard:1 --vram-enforce=off env
# Two tasks on the node split its shards.
expect shard-two-tasks 0 "" -- run srun -n2 --gres=shard:4 --vram-enforce=off env
expect_lines shard-two-tasks-split "^VRAM_BUDGET_BYTES=$((4 * GiB))\$" 2
# The job's own allocator settings win over the budget's.
expect alloc-conf-default 0 "^PYTORCH_CUDA_ALLOC_CONF=.*expandable_segments" -- run srun --vram=1G --vram-enforce=off env
PYTORCH_CUDA_ALLOC_CONF=backend:native expect alloc-conf-kept 0 "^PYTORCH_CUDA_ALLOC_CONF=backend:native\$" -- run srun --vram=1G --vram-enforce=off env
PYTORCH_ALLOC_CONF=backend:native expect alloc-conf-new-name-kept 0 "" -- run srun --vram=1G --vram-enforce=off env
expect_lines alloc-conf-new-name-not-overridden "^PYTORCH_CUDA_ALLOC_CONF=" 0
# SadTalker's torch 1.12 refuses expandable_segments at its first allocation.
VRAM_TORCH_VERSION=1.12.1 expect alloc-conf-torch-1-12 0 "^PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:64\$" -- run srun --vram=1G --vram-enforce=off env
VRAM_TORCH_VERSION=none expect alloc-conf-no-torch 0 "" -- run srun --vram=1G --vram-enforce=off env
expect_lines alloc-conf-no-torch-none "^PYTORCH_CUDA_ALLOC_CONF=" 0
# An explicit --vram wins over the shards.
expect shard-vram-wins 0 "^VRAM_BUDGET_BYTES=$((1 * GiB))\$" -- run srun --gres=shard:4 --vram=1G --vram-enforce=off env

# sbatch: the batch script and its inner steps have the budget.
cat >"$tmp/batch.sh" <<'EOF'
#!/bin/sh
env | grep '^VRAM_BUDGET_BYTES=' | sed 's/^/batch: /'
srun env | grep '^VRAM_BUDGET_BYTES=' | sed 's/^/step: /'
srun env | grep '^VRAM_BUDGET_BYTES=' | sed 's/^/step: /'
EOF
chmod +x "$tmp/batch.sh"
expect sbatch-inherit 0 "" -- sbatch_wait --vram=2G --vram-enforce=off -o "$tmp/batch.out" "$tmp/batch.sh"
cp "$tmp/batch.out" "$tmp/out" 2>/dev/null || : >"$tmp/out"
expect_lines sbatch-batch-budget "^batch: VRAM_BUDGET_BYTES=$((2 * GiB))\$" 1
expect_lines sbatch-steps-budget "^step: VRAM_BUDGET_BYTES=$((2 * GiB))\$" 2

# salloc: the steps of the allocation have the budget.
expect salloc-steps 0 "^VRAM_BUDGET_BYTES=$((2 * GiB))\$" -- run salloc --vram=2G --vram-enforce=off srun env

# ---- bad values: refused at submission, nothing queued ---------------------

# Job ids count every submission Slurm accepted: held jobs before and
# after the bad values show that none of those got one.
id_before=$(run sbatch --parsable --hold -o /dev/null --wrap true)
expect bad-srun-bogus 255 "vram: --vram=bogus: 'bogus' is not a size" -- run srun --vram=bogus true
expect bad-srun-zero 255 "vram: --vram=0: a budget must be more than 0" -- run srun --vram=0 true
expect bad-srun-too-big 1 "vram: --vram=100G is more than any card here \(16.0 GiB" -- run srun --vram=100G true
expect bad-srun-enforce 255 "vram: --vram-enforce=maybe: use hard, soft or off" -- run srun --vram=1G --vram-enforce=maybe true
expect bad-sbatch-bogus 255 "vram: --vram=12XB" -- run sbatch --vram=12XB --wrap true
expect bad-sbatch-too-big 1 "vram: --vram=17GiB is more than any card" -- run sbatch --vram=17GiB --wrap true
expect bad-salloc-zero 255 "vram: --vram=0G" -- run salloc --vram=0G true
id_after=$(run sbatch --parsable --hold -o /dev/null --wrap true)
if [ -n "$id_before" ] && [ "$id_after" = $((id_before + 1)) ]; then ok bad-nothing-queued
else not_ok bad-nothing-queued "job ids $id_before then $id_after: something in between was queued"; fi
timeout 10 scancel "$id_before" "$id_after" 2>/dev/null
wait_until 10 no_jobs

# ---- the shim --------------------------------------------------------------

if [ $have_shim = 0 ]; then
    # Hard enforcement needs the shim: the step fails naming it, starts nothing.
    expect hard-needs-shim 1 "needs the shim, and $shim is not there" -- run srun --vram=3G true
    for c in shim-3g-sees-3g shim-3g-oom-at-4th shim-task-shares-count shim-task-reclaims-killed \
             shim-soft-lets-through shim-substring-not-shim shim-long-preload-refused shim-no-vram-whole-card \
             shim-shard-sees-8g shim-sbatch-inner; do
        skip_case "$c" "$why_no_shim"
    done
else
    expect shim-3g-sees-3g 0 "^total_bytes=$((3 * GiB)) " -- run srun --vram=3G "$probe" 4
    if grep -q '^alloc 3: ok' "$tmp/out" && grep -q '^alloc 4: error 2$' "$tmp/out"; then ok shim-3g-oom-at-4th
    else not_ok shim-3g-oom-at-4th "$(cat "$tmp/out")"; fi
    # Soft: past the budget is let through while the card has room.
    expect shim-soft-lets-through 0 "^alloc 4: ok\$" -- run srun --vram=3G --vram-enforce=soft "$probe" 4
    # One count for all of a task's processes: a second program beside one
    # holding 2 GiB of 3 has 1 GiB left, and a child killed holding 2 GiB
    # gives them back (slurmstepd reclaims, as vram run does).
    expect shim-task-shares-count 0 "^alloc 2: error 2\$" -- \
        run srun --vram=3G sh -c "'$probe' hold & sleep 1; '$probe' 2; wait"
    expect shim-task-reclaims-killed 0 "^parent 2 GiB after the child's death: ok\$" -- \
        run srun --vram=3G "$probe" killed
    # An LD_PRELOAD entry that only contains the shim's path is not the
    # shim: it is still loaded (it was not, and the probe saw the card).
    expect shim-substring-not-shim 0 "^total_bytes=$((3 * GiB)) " -- \
        run srun --export=ALL,LD_PRELOAD="$shim.x" --vram=3G "$probe" 0
    # A task's LD_PRELOAD too long to add the shim to is not dropped: the
    # step fails saying so.
    expect shim-long-preload-refused 1 "LD_PRELOAD is over 16383 bytes" -- \
        run srun --export=ALL,LD_PRELOAD="$(head -c 17000 /dev/zero | tr '\0' a)" --vram=3G true
    expect shim-no-vram-whole-card 0 "^total_bytes=$((16 * GiB)) " -- run srun "$probe" 0
    expect shim-shard-sees-8g 0 "^total_bytes=$((8 * GiB)) " -- run srun --gres=shard:4 "$probe" 0
    printf '#!/bin/sh\nsrun %s 0\n' "$probe" >"$tmp/batch-probe.sh"
    expect shim-sbatch-run 0 "" -- sbatch_wait --vram=2G -o "$tmp/batch-probe.out" "$tmp/batch-probe.sh"
    cp "$tmp/batch-probe.out" "$tmp/out" 2>/dev/null || : >"$tmp/out"
    expect_lines shim-sbatch-inner "^total_bytes=$((2 * GiB)) " 1
    # A plugin whose shim is missing breaks only the steps that asked for it.
    set_plugstack shim=/nonexistent/libvram_shim.so
    expect hard-needs-shim 1 "needs the shim, and /nonexistent/libvram_shim.so is not there" -- run srun --vram=3G true
fi
set_plugstack shim=/nonexistent/libvram_shim.so
expect missing-shim-plain-step 0 "" -- run srun true
expect missing-shim-shard-off 0 "^VRAM_BUDGET_BYTES=" -- run srun --gres=shard:2 --vram-enforce=off env
# plugstack.conf's enforce= is the default a step without --vram-enforce
# gets: off loads no shim (even a missing one); --vram-enforce still wins.
set_plugstack shim=/nonexistent/libvram_shim.so enforce=off
expect plugstack-enforce-default 0 "^VRAM_ENFORCE=off\$" -- run srun --vram=1G env
expect_lines plugstack-enforce-off-no-preload '^LD_PRELOAD=' 0
expect plugstack-enforce-flag-wins 1 "needs the shim" -- run srun --vram=1G --vram-enforce=hard true
# A bad plugstack.conf argument is named (Slurm then refuses the plugin, as
# it does any required plugin that fails to start).
set_plugstack enforce=sometimes
expect plugstack-bad-value-named 1 "plugstack.conf enforce=sometimes: use hard, soft or off" -- run srun true
set_plugstack

# ---- with vramd on the node ------------------------------------------------

# require_vramd=yes and no daemon: a budgeted step fails, saying so.
set_plugstack require_vramd=yes
expect require-vramd 1 "vramd is not reachable" -- run srun --vram=1G --vram-enforce=off true
expect require-vramd-plain 0 "" -- run srun true
set_plugstack

mkdir -p "$tmp/vstate"
VRAM_BACKEND=sim VRAM_SIM="Fake card:16GiB" VRAM_SIM_STATE=$tmp/vstate VRAM_SOCKET=$sock \
    VRAM_DB=$tmp/queue.db VRAM_HISTORY=- VRAM_TOKEN_FILE=$tmp/token VRAM_HTTP=127.0.0.1:0 \
    VRAM_INTERVAL=50ms "$VRAM" serve >>"$tmp/vramd.log" 2>&1 &
vramd=$!
if ! VRAM_SOCKET=$sock wait_until 10 "$VRAM" queue; then
    not_ok vramd-start "$(tail -5 "$tmp/vramd.log")"
    finish
fi
leased() { python3 "$here/leases.py" "$sock" leased; }
wait_leased() { python3 "$here/leases.py" "$sock" wait "$1" "$2"; }

# One step: a lease while it runs, VRAM_LEASE in its tasks, back after.
expect lease-env 0 "^VRAM_LEASE=[1-9][0-9]*\$" -- run srun --vram=3G $enf env
expect_lines lease-env-device '^VRAM_DEVICE=0$' 1
expect_lines lease-env-vramd-card '^CUDA_VISIBLE_DEVICES=0$' 1
# Two tasks: a lease each, both held while they run (each stays a second,
# so that neither ends, giving its lease back, before the other has looked).
expect lease-two-tasks 0 "" -- run srun -n2 --vram=3G $enf sh -c "echo lease=\$VRAM_LEASE; python3 '$here/leases.py' '$sock' leased; sleep 1"
expect_lines lease-two-tasks-held "^$((6 * GiB))\$" 2
if [ "$(grep '^lease=' "$tmp/out" | sort -u | wc -l)" = 2 ]; then ok lease-two-tasks-distinct
else not_ok lease-two-tasks-distinct "$(grep '^lease=' "$tmp/out")"; fi
# Cards Slurm gave stay the step's: the lease is on the first.
expect lease-gres-cards-kept 0 "^CUDA_VISIBLE_DEVICES=0,1\$" -- run srun --gres=gpu:2 --vram=1G $enf env
expect_lines lease-gres-device '^VRAM_DEVICE=0$' 1
# Slurm's GPU ids are device-file numbers, vramd's NVML's order: where they
# differ, the lease is on the card Slurm meant (Slurm's GPU 1 is NVML's 0;
# taken as vramd's number it was a card vramd's one-card node lacks).
set_plugstack nvml_library="$VRAM_BUILD/stubs/libnvidia-ml.so.1"
expect lease-slurm-gpu-by-file 0 '^VRAM_DEVICE=0$' -- run srun --export=ALL,SLURM_JOB_GPUS=1 --vram=1G $enf env
set_plugstack
r=$(wait_leased 0 5)
case $r in still*) not_ok lease-back-after-step "$r bytes leased" ;; *) ok lease-back-after-step ;; esac

# Two steps of 10 GiB on one 16 GiB card: the second waits for the first.
run srun --vram=10G $enf sh -c "echo first-started; while [ ! -e '$tmp/go1' ]; do sleep 0.05; done; echo first-done" \
    >"$tmp/first.out" 2>&1 &
bg_pids+=("$!")
if wait_for "$tmp/first.out" first-started 30; then ok two-first-runs; else not_ok two-first-runs "$(cat "$tmp/first.out")"; fi
run srun --vram=10G $enf sh -c 'echo second-started' >"$tmp/second.out" 2>&1 &
bg_pids+=("$!")
second=$!
# The second job is running in Slurm's eyes, its step waiting in vramd's.
wait_until 10 sh -c "squeue -h -t R -o %i | wc -l | grep -qx 2"
sleep 1.5
if grep -q second-started "$tmp/second.out"; then not_ok two-second-waits "it started beside the first"
else ok two-second-waits; fi
r=$(leased)
[ "$r" = $((10 * GiB)) ] && ok two-one-lease || not_ok two-one-lease "$r bytes leased, wanted 10 GiB"
# vram queue and the dashboard show both, each by its Slurm job and step.
j1=$(squeue -h -t R -o %i | sort -n | head -1)
j2=$(squeue -h -t R -o %i | sort -n | tail -1)
expect two-queue-names-first 0 "lease +0 +- +- +10\.0 GiB .*held by pid [0-9]+ for [0-9]+ s: slurm job $j1 step 0 task 0\$" \
    -- env VRAM_SOCKET="$sock" "$VRAM" queue
expect_lines two-queue-names-second "waiting .*10\.0 GiB .*\((Resources|Lease)\): slurm job $j2 step 0 task 0\$" 1
url=$(grep -o 'dashboard http://[0-9.:]*/' "$tmp/vramd.log" | tail -1 | cut -d' ' -f2)
if python3 - "${url}api/jobs" "$j1" "$j2" <<'EOF'
import json, sys, urllib.request
rows = json.load(urllib.request.urlopen(sys.argv[1], timeout=10))["leases"]
names = {(r["state"], r["holder"]) for r in rows}
assert ("held", "slurm job %s step 0 task 0" % sys.argv[2]) in names, rows
assert ("waiting", "slurm job %s step 0 task 0" % sys.argv[3]) in names, rows
EOF
then ok two-dashboard-names; else not_ok two-dashboard-names "jobs $j1 $j2, dashboard $url"; fi
touch "$tmp/go1"
if wait_for "$tmp/second.out" second-started 30; then ok two-second-runs-after; else not_ok two-second-runs-after "$(cat "$tmp/second.out")"; fi
wait "$second" 2>/dev/null
r=$(wait_leased 0 5)
case $r in still*) not_ok two-leases-back "$r bytes leased" ;; *) ok two-leases-back ;; esac
stop_bg

# scancel of a running step: its lease is back within a second.
run srun --vram=4G $enf sh -c 'echo held; sleep 50' >"$tmp/cancel.out" 2>&1 &
bg_pids+=("$!")
wait_for "$tmp/cancel.out" held 30
job=$(squeue -h -t R -o %i | head -1)
if [ -n "$job" ] && [ "$(leased)" = $((4 * GiB)) ]; then
    t0=$(date +%s%N)
    scancel "$job"
    r=$(wait_leased 0 1)
    ms=$((($(date +%s%N) - t0) / 1000000))
    case $r in
        still*) not_ok scancel-lease-back "1 s after scancel returned: $r bytes leased" ;;
        *) ok scancel-lease-back; echo "# scancel: the lease was back ${ms} ms after scancel began" ;;
    esac
else
    not_ok scancel-lease-back "no running job with a 4 GiB lease (job '$job', leased $(leased))"
fi
stop_bg
wait_until 10 no_jobs

# A node that kills the step (slurmstepd dies by SIGKILL): the lease goes
# with its connection.
run srun --vram=4G $enf sh -c 'echo held; sleep 50' >"$tmp/kill.out" 2>&1 &
bg_pids+=("$!")
wait_for "$tmp/kill.out" held 30
job=$(squeue -h -t R -o %i | head -1)
stepd=$(pgrep -f "^slurmstepd: \[$job\.0\]" | head -1)
if [ -n "$stepd" ] && [ "$(leased)" = $((4 * GiB)) ]; then
    tasks=$(pgrep -P "$stepd" | tr '\n' ' ')
    kill -KILL "$stepd"
    r=$(wait_leased 0 1)
    case $r in
        still*) not_ok stepd-killed-lease-back "1 s after kill -9: $r bytes leased" ;;
        *) ok stepd-killed-lease-back ;;
    esac
    # Its tasks, orphans now, lead process groups of their own (proctrack/pgid).
    for t in $tasks; do kill -KILL -- "-$t" 2>/dev/null; done
else
    not_ok stepd-killed-lease-back "no slurmstepd for job '$job' with a 4 GiB lease (pid '$stepd', leased $(leased))"
fi
timeout 10 scancel "$job" 2>/dev/null
stop_bg
wait_until 20 no_jobs

# sbatch with vramd: the batch step holds the lease, its inner steps share it.
cat >"$tmp/batch-lease.sh" <<EOF
#!/bin/sh
echo "batch: \$VRAM_LEASE"
srun sh -c 'echo "step: \$VRAM_LEASE \$VRAM_BUDGET_BYTES"; python3 "$here/leases.py" "$sock" leased'
srun --vram=3G sh -c 'echo "bigger: \$VRAM_LEASE \$VRAM_BUDGET_BYTES"; python3 "$here/leases.py" "$sock" leased'
EOF
expect sbatch-lease-run 0 "" -- sbatch_wait --vram=2G $enf -o "$tmp/batch-lease.out" "$tmp/batch-lease.sh"
cp "$tmp/batch-lease.out" "$tmp/out" 2>/dev/null || : >"$tmp/out"
lease=$(sed -n 's/^batch: //p' "$tmp/out")
if [ -n "$lease" ] && grep -qx "step: $lease $((2 * GiB))" "$tmp/out" && grep -qx $((2 * GiB)) "$tmp/out"; then
    ok sbatch-steps-share-lease
else
    not_ok sbatch-steps-share-lease "$(cat "$tmp/out")"
fi
# A step that asks for more than the batch step holds takes a lease of its own.
if grep -Eq "^bigger: [0-9]+ $((3 * GiB))\$" "$tmp/out" && ! grep -q "^bigger: $lease " "$tmp/out" &&
   grep -qx $((5 * GiB)) "$tmp/out"; then
    ok sbatch-bigger-step-own-lease
else
    not_ok sbatch-bigger-step-own-lease "$(cat "$tmp/out")"
fi

# What the job writes into its own environment does not pass for a lease:
# a made-up VRAM_LEASE with this job's VRAM_JOB (it was inherited, and the
# step ran on no lease at all), and a VRAM_SOCKET where no vramd answers
# (the step ran unrefereed); each step takes a lease of its own here.
cat >"$tmp/forged.sh" <<EOF
#!/bin/sh
VRAM_JOB=slurm-\$SLURM_JOB_ID.x VRAM_LEASE=987654 VRAM_BUDGET_BYTES=18446744073709551615 \\
    srun --vram=1G sh -c 'echo "forged: \$VRAM_LEASE \$VRAM_BUDGET_BYTES"; python3 "$here/leases.py" "$sock" leased'
EOF
expect forged-lease-run 0 "" -- sbatch_wait $enf -o "$tmp/forged.out" "$tmp/forged.sh"
cp "$tmp/forged.out" "$tmp/out" 2>/dev/null || : >"$tmp/out"
if grep -Eq "^forged: [1-9][0-9]* $GiB\$" "$tmp/out" && ! grep -q "^forged: 987654 " "$tmp/out" &&
   grep -qx "$GiB" "$tmp/out"; then
    ok forged-lease-not-inherited
else
    not_ok forged-lease-not-inherited "$(cat "$tmp/out")"
fi
expect job-socket-not-used 0 "^VRAM_LEASE=[1-9][0-9]*\$" -- \
    run srun --export=ALL,VRAM_SOCKET=/nonexistent/vramd.sock --vram=1G $enf env
# A --vram value is the user's text: the plugin's lines show it escaped
# (Slurm's own line about the refused option is Slurm's).
expect vram-value-escaped 255 '--vram=1\\e\[31mX' -- run srun --vram="$(printf '1\033[31mX')" true
if grep 'vram: --vram=' "$tmp/out" | grep -q "$(printf '\033')"; then
    not_ok vram-value-no-raw-esc "$(grep 'vram: --vram=' "$tmp/out" | od -c | head -5)"
else
    ok vram-value-no-raw-esc
fi

# A budget that does not fit in time: the step fails, says why, holds nothing.
python3 "$here/../daemon/sockclient.py" "$sock" hold-lease 10GiB >"$tmp/hold.out" 2>&1 &
bg_pids+=("$!")
wait_for "$tmp/hold.out" granted 10
set_plugstack lease_wait=1s
expect lease-timeout 1 "no room for 10.0 GiB on the node's GPUs within 1.0 s" -- run srun --vram=10G $enf true
r=$(leased)
[ "$r" = $((10 * GiB)) ] && ok lease-timeout-holds-nothing || not_ok lease-timeout-holds-nothing "$r bytes leased"
# The same for a batch job: the reason is in its output, FAILED in its record.
expect sbatch-lease-timeout 1 "Submitted batch job" -- sbatch_wait --vram=10G $enf -o "$tmp/bt.out" --wrap 'echo ran'
job=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' "$tmp/out")
if grep -q "vram: job $job step batch: no room for 10.0 GiB" "$tmp/bt.out" && ! grep -q '^ran$' "$tmp/bt.out"; then
    ok sbatch-lease-timeout-says-why
else
    not_ok sbatch-lease-timeout-says-why "$(cat "$tmp/bt.out")"
fi
expect sbatch-lease-timeout-record 0 "JobState=FAILED" -- scontrol show job "$job"
set_plugstack

# scancel of a step still waiting for room: it ends at once and leaves
# vramd's queue (nothing is granted to it when the room comes).
wait_until 20 no_jobs
run srun --vram=10G $enf sh -c 'echo never' >"$tmp/wait-cancel.out" 2>&1 &
bg_pids+=("$!")
wait_until 20 sh -c 'squeue -h -t R -o %i | grep -q .'
job=$(squeue -h -t R -o %i | head -1)
wait_until 10 pgrep -f "^slurmstepd: \[$job\.0\]"
sleep 0.5
scancel "$job"
if wait_until 5 sh -c "! pgrep -f '^slurmstepd: \[$job\.0\]'"; then ok waiting-step-cancel-ends
else not_ok waiting-step-cancel-ends "slurmstepd of job $job still there 5 s after scancel"; fi
stop_bg
r=$(wait_leased 0 2)
sleep 0.5
case "$r $(leased)" in
    still*) not_ok waiting-step-cancel-not-granted "after the room came: $r" ;;
    *" 0") ok waiting-step-cancel-not-granted ;;
    *) not_ok waiting-step-cancel-not-granted "the cancelled step got $(leased) bytes" ;;
esac
if grep -q never "$tmp/wait-cancel.out"; then not_ok waiting-step-cancel-never-ran "$(cat "$tmp/wait-cancel.out")"
else ok waiting-step-cancel-never-ran; fi

finish
