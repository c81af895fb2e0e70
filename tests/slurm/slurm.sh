# SPDX-License-Identifier: MIT
# tests/slurm/slurm.sh - a real single-node Slurm of the test's own, sourced
# by tests/slurm/test_*.sh after tests/cli/lib.sh.
#
# start_slurm starts, as root, from Debian's packages: munged with a key
# made for the run, slurmctld, and `slurmd -N localhost`, on loopback, with
# their slurm.conf, gres.conf and plugstack.conf, their sockets, spools,
# logs and state in $sw (a folder under the build folder).  The node has two
# fake GPUs, character devices made with mknod in $sw/dev, declared with
# AutoDetect=off and split into $slurm_shards shards each.  Every daemon is
# started in the foreground of a background job and stopped by its PID
# (stop_slurm, also on EXIT).  Each wait is bounded.
#
# Before start_slurm a test may set:
#   slurm_plugstack  lines for plugstack.conf (default: none)
#   slurm_shards     shards per GPU (default 8)
# After it: SLURM_CONF points at the cluster; slurm_why says why it could
# not start (start_slurm returns 1 when the machine forbids it: the test
# then skips, naming the reason).

PATH=$PATH:/usr/sbin:/sbin
slurm_shards=${slurm_shards:-8}
slurm_plugstack=${slurm_plugstack:-}
slurm_why=
slurm_pids=()
sw=

# A TCP port on loopback nobody listens on now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Why this machine cannot run the cluster, or nothing.
slurm_forbidden() {
    local b
    [ "$(id -u)" = 0 ] || { echo "not root (munged, slurmctld and slurmd run as root here)"; return; }
    for b in munged slurmctld slurmd srun sbatch scancel sinfo squeue; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
            { echo "$b is not installed (scripts/deps.sh test installs slurm-wlm and munge)"; return; }
    done
    command -v python3 >/dev/null 2>&1 || { echo "python3 is not installed"; return; }
}

# slurm_daemon NAME COMMAND...: runs a daemon in the foreground of a
# background job; its PID goes into slurm_pids.
slurm_daemon() {
    local name=$1
    shift
    "$@" >>"$sw/log/$name.out" 2>&1 &
    slurm_pids+=("$!")
}

slurm_write_conf() {
    local host ctld_port slurmd_port i
    host=$(uname -n | cut -d. -f1)
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
    cat >"$sw/etc/slurm.conf" <<CONF
# Written by tests/slurm/slurm.sh for one test run.
ClusterName=vramtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sw/munge/munge.socket
StateSaveLocation=$sw/state
SlurmdSpoolDir=$sw/spool/%n
SlurmctldPidFile=$sw/run/slurmctld.pid
SlurmdPidFile=$sw/run/slurmd-%n.pid
SlurmctldLogFile=$sw/log/slurmctld.log
SlurmdLogFile=$sw/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$sw/etc/plugstack.conf
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
LaunchParameters=use_interactive_step
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MessageTimeout=10
SlurmdTimeout=60
InactiveLimit=0
KillWait=2
MinJobAge=300
GresTypes=gpu,shard
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=8 Sockets=1 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=1000 Gres=gpu:2,shard:$((2 * slurm_shards)) State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=10 State=UP OverSubscribe=NO
CONF
    {
        echo "AutoDetect=off"
        for i in 0 1; do
            echo "NodeName=localhost Name=gpu File=$sw/dev/nvidia$i"
        done
        for i in 0 1; do
            echo "NodeName=localhost Name=shard Count=$slurm_shards File=$sw/dev/nvidia$i"
        done
    } >"$sw/etc/gres.conf"
    printf '%s\n' "$slurm_plugstack" >"$sw/etc/plugstack.conf"
    # Debian's slurmd reads cgroup.conf when it is there; ours keeps it off
    # cgroups entirely (the tracking above is by process group).
    printf 'CgroupPlugin=autodetect\nIgnoreSystemd=yes\n' >"$sw/etc/cgroup.conf"
}

# Starts munged and waits until it answers.
slurm_start_munge() {
    mungekey --create --keyfile="$sw/munge/munge.key" --bits=1024 >/dev/null 2>&1 ||
        dd if=/dev/urandom of="$sw/munge/munge.key" bs=128 count=1 status=none
    chmod 600 "$sw/munge/munge.key"
    slurm_daemon munged munged --foreground --force --socket="$sw/munge/munge.socket" \
        --key-file="$sw/munge/munge.key" --pid-file="$sw/run/munged.pid" \
        --log-file="$sw/log/munged.log" --seed-file="$sw/munge/munged.seed"
    local i
    for i in $(seq 1 100); do
        echo | munge --socket="$sw/munge/munge.socket" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    slurm_why="munged did not start: $(tail -3 "$sw/log/munged.log" "$sw/log/munged.out" 2>/dev/null | tr '\n' ' ')"
    return 1
}

# The node's state as sinfo says it (idle, mixed, down...).
slurm_node_state() { sinfo -h -N -o %T 2>/dev/null | head -1; }

start_slurm() {
    slurm_why=$(slurm_forbidden)
    [ -z "$slurm_why" ] || return 1
    # Unix socket paths (munged's, slurmstepd's under the spool) must fit in
    # 108 bytes: a build folder with a long path gives way to $TMPDIR.
    local parent=$VRAM_BUILD
    [ ${#parent} -le 48 ] || parent=${TMPDIR:-/tmp}
    sw=$(mktemp -d "$parent/slurm.XXXXXX")
    chmod 755 "$sw"
    mkdir -p "$sw/etc" "$sw/munge" "$sw/state" "$sw/spool/localhost" "$sw/run" "$sw/log" "$sw/dev"
    chmod 700 "$sw/munge"
    local i
    for i in 0 1; do
        if ! mknod "$sw/dev/nvidia$i" c 195 "$i" 2>"$sw/log/mknod.err"; then
            slurm_why="mknod refused: $(cat "$sw/log/mknod.err")"
            return 1
        fi
    done
    slurm_write_conf
    export SLURM_CONF=$sw/etc/slurm.conf
    slurm_start_munge || return 1
    slurm_daemon slurmctld slurmctld -D -i -f "$SLURM_CONF"
    slurm_daemon slurmd slurmd -D -N localhost -f "$SLURM_CONF"
    for i in $(seq 1 300); do
        case "$(slurm_node_state)" in
            idle*) return 0 ;;
        esac
        sleep 0.1
    done
    slurm_why="the node did not come up within 30 s (state '$(slurm_node_state)'): $(tail -3 "$sw/log/slurmctld.log" "$sw/log/slurmd-localhost.log" "$sw/log/slurmctld.out" "$sw/log/slurmd.out" 2>/dev/null | tr '\n' ' ')"
    return 1
}

# Stops every daemon it started, by PID, newest first; slurmstepd processes
# of steps still running are ended by cancelling their jobs first.
stop_slurm() {
    local i pid jobs
    if [ ${#slurm_pids[@]} -gt 1 ]; then
        jobs=$(timeout 10 squeue -h -o %i 2>/dev/null)
        # shellcheck disable=SC2086
        [ -z "$jobs" ] || timeout 10 scancel --quiet $jobs >/dev/null 2>&1
        for _ in $(seq 1 100); do
            [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
    for ((i = ${#slurm_pids[@]} - 1; i >= 0; i--)); do
        pid=${slurm_pids[$i]}
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    slurm_pids=()
    # The daemons' logs are kept with the other tests' logs; the rest goes.
    if [ -n "$sw" ] && [ -d "$sw" ]; then
        mkdir -p "$VRAM_BUILD/test-logs/slurm"
        cp "$sw"/log/* "$VRAM_BUILD/test-logs/slurm/" 2>/dev/null
        rm -rf "$sw"
    fi
    sw=
}
