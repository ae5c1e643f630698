#!/usr/bin/env bash
# Start a single-node SLURM cluster on this (Debian) machine, with accounting.
#
#   sudo tests/cluster/start_slurm.sh        # idempotent: safe to run again
#   sudo tests/cluster/stop_slurm.sh
#
# What it does, as root:
#   1. apt-get installs Debian's slurm-wlm, slurmdbd, munge and mariadb-server
#      (only what is missing; `apt-get update` only when something is missing).
#   2. Writes /etc/slurm/{slurm.conf,slurmdbd.conf,gres.conf} for one node
#      (this host) with a partition "demo" and a count-only GRES "gpu:1" so
#      rules that ask for a GPU can be scheduled (no device is bound: there is
#      no GPU here). Files it did not write itself are never overwritten.
#   3. Starts munged, MariaDB, slurmdbd, slurmctld, slurmd; registers the
#      cluster, an account "mersemi" and the user(s) in the accounting DB.
#   4. Waits until `sinfo` reports the node idle.
#
# Why accounting (slurmdbd + MariaDB): snakemake-executor-plugin-slurm asks
# `sacct` for job states by default, validates `slurm_account` with `sacctmgr`,
# and real clusters all run slurmdbd. With AccountingStorageType=none, sacct in
# SLURM 22.05 only answers "Slurm accounting storage is disabled".
#
# Environment (all optional):
#   SLURM_PARTITION  partition name           (default: demo)
#   SLURM_ACCOUNT    account to create        (default: mersemi)
#   SLURM_CPUS       CPUs of the node         (default: all, from `slurmd -C`)
#   SLURM_MEM_HEADROOM_MB  memory kept back from `slurmd -C` (default: 2048)
#   SLURM_USERS      extra users to add to the account (default: $SUDO_USER)
#   SLURM_WAIT_S     how long to wait for the node to be idle (default: 120)
set -euo pipefail

PARTITION="${SLURM_PARTITION:-demo}"
ACCOUNT="${SLURM_ACCOUNT:-mersemi}"
HEADROOM_MB="${SLURM_MEM_HEADROOM_MB:-2048}"
WAIT_S="${SLURM_WAIT_S:-120}"
CLUSTER=mersemi
MARKER="# written by mersemi tests/cluster/start_slurm.sh"
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
DB_PASS_FILE=/etc/slurm/.mersemi-dbpass

die() { echo "start_slurm.sh: error: $*" >&2; exit 1; }
say() { [[ -n "${SLURM_VERBOSE:-}" ]] && echo "start_slurm.sh: $*" >&2; return 0; }

# Show the tail of a daemon log when something fails, so CI logs say why.
fail_with_log() {
    local msg="$1" log="$2"
    if [[ -f "$log" ]]; then
        echo "---- last lines of $log ----" >&2
        tail -n 20 "$log" >&2
    fi
    die "$msg"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds.
wait_for() {
    local secs="$1" what="$2"
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
    say "$what: ok"
}

[[ "$(id -u)" -eq 0 ]] || die "must run as root (it installs packages and starts daemons)"
command -v apt-get >/dev/null || die "needs a Debian/Ubuntu machine with apt-get"

# ---------------------------------------------------------------- 1. packages
PKGS=(slurm-wlm slurmdbd munge mariadb-server)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/tmp/mersemi-apt.log 2>&1 || { cat /tmp/mersemi-apt.log >&2; die "apt-get update failed"; }
    # policy-rc.d: do not let the packages start daemons with the stock config.
    policy_created=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_created=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/mersemi-apt.log 2>&1 \
        || { tail -n 30 /tmp/mersemi-apt.log >&2; die "apt-get install ${missing[*]} failed"; }
    ((policy_created)) && rm -f /usr/sbin/policy-rc.d
fi
for b in munged mariadbd slurmdbd slurmctld slurmd sinfo sacct sacctmgr sbatch; do
    command -v "$b" >/dev/null || [[ -x "/usr/sbin/$b" ]] || die "$b not found after install"
done

# ---------------------------------------------------------------- 2. config
NODE="$(hostname -s)"
# `slurmd -C` prints e.g. "NodeName=vm CPUs=2 ... RealMemory=24105"
HW="$(slurmd -C | head -n 1)"
HW_CPUS="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$HW")"
HW_MEM="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$HW")"
[[ -n "$HW_CPUS" && -n "$HW_MEM" ]] || die "cannot parse 'slurmd -C' output: $HW"
CPUS="${SLURM_CPUS:-$HW_CPUS}"
# Keep slurmd's own view of the topology (Boards/Sockets/Cores/Threads), else
# slurmctld assumes one core per socket; with SLURM_CPUS only the count is set.
if [[ -z "${SLURM_CPUS:-}" ]]; then
    TOPO="$(grep -o 'CPUs=[0-9]* Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' <<<"$HW" || echo "CPUs=$CPUS")"
else
    TOPO="CPUs=$CPUS"
fi
MEM=$((HW_MEM - HEADROOM_MB))
((MEM >= 512)) || MEM=$((HW_MEM / 2))

mkdir -p "$CONF_DIR" "$LOG_DIR" "$RUN_DIR" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /run/munge
chown slurm:slurm "$LOG_DIR" "$RUN_DIR" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd
chown munge:munge /run/munge

# write_conf PATH MODE OWNER: content from stdin; never clobbers a foreign file.
write_conf() {
    local path="$1" mode="$2" owner="$3" tmp
    if [[ -e "$path" ]] && ! grep -qF "$MARKER" "$path"; then
        die "$path exists and was not written by this script; move it away first"
    fi
    tmp="$(mktemp "$path.XXXXXX")"
    { echo "$MARKER"; cat; } >"$tmp"
    if [[ -e "$path" ]] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        return 0
    fi
    chmod "$mode" "$tmp"
    chown "$owner" "$tmp"
    mv -f "$tmp" "$path"
    CHANGED+=("$(basename "$path")")
}
CHANGED=()

if [[ ! -s "$DB_PASS_FILE" ]]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DB_PASS_FILE")
fi
DB_PASS="$(cat "$DB_PASS_FILE")"

# Cgroups are not available everywhere (containers, gVisor): track processes
# through /proc instead; that is what the plugin needs and nothing more.
write_conf "$CONF_DIR/slurm.conf" 644 root:root <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs stay visible to squeue for 5 minutes after they end (plugin fallback).
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
# sacct shows the plugin's --comment (rule name and wildcards) per job.
AccountingStoreFlags=job_comment
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 $TOPO RealMemory=$MEM Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

# A stand-in GPU: gres/gpu needs a device file (a count-only gpu entry is
# reported as 0 by slurmd and the node is drained), so /dev/null plays the
# card. Jobs asking for --gpus=1 / --gres=gpu:1 are scheduled and accounted
# against it; there is no CUDA device behind it, so the workflow's code runs
# on CPU. Set SLURM_GPU_FILE to a real /dev/nvidia0 on a machine that has one.
write_conf "$CONF_DIR/gres.conf" 644 root:root <<EOF
NodeName=$NODE Name=gpu File=${SLURM_GPU_FILE:-/dev/null}
EOF

write_conf "$CONF_DIR/slurmdbd.conf" 600 slurm:slurm <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
PidFile=$RUN_DIR/slurmdbd.pid
LogFile=$LOG_DIR/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF

# ---------------------------------------------------------------- 3. daemons
running() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# munge
if ! { munge -n </dev/null | unmunge; } >/dev/null 2>&1; then
    [[ -s /etc/munge/munge.key ]] || { /usr/sbin/mungekey --create --force >/dev/null 2>&1 \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; }
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged --force >/dev/null 2>&1 || die "munged failed to start"
    wait_for 20 munge bash -c 'munge -n </dev/null | unmunge' || die "munge does not answer"
fi

# MariaDB (Debian's init script works without systemd)
if ! mariadb-admin ping >/dev/null 2>&1; then
    /etc/init.d/mariadb start >/tmp/mersemi-mariadb.log 2>&1 || true
    wait_for 60 mariadb mariadb-admin ping \
        || fail_with_log "MariaDB did not start" /tmp/mersemi-mariadb.log
fi
mariadb -u root <<EOF || die "cannot create the accounting database user"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF

# A daemon that runs with a config this run changed is restarted.
stop_daemon() {
    local pidf="$RUN_DIR/$1.pid" i
    running "$pidf" || return 0
    kill "$(cat "$pidf")" 2>/dev/null || true
    for i in $(seq 30); do running "$pidf" || return 0; sleep 1; done
    die "$1 did not stop"
}
if [[ " ${CHANGED[*]} " == *" slurmdbd.conf "* ]]; then stop_daemon slurmdbd; fi
if [[ " ${CHANGED[*]} " == *" slurm.conf "* || " ${CHANGED[*]} " == *" gres.conf "* ]]; then
    stop_daemon slurmd
    stop_daemon slurmctld
fi

# slurmdbd
if ! running "$RUN_DIR/slurmdbd.pid"; then
    slurmdbd || fail_with_log "slurmdbd failed to start" "$LOG_DIR/slurmdbd.log"
fi
wait_for 60 slurmdbd sacctmgr -n list cluster \
    || fail_with_log "slurmdbd does not answer sacctmgr" "$LOG_DIR/slurmdbd.log"

# Cluster, account and users in the accounting DB (before slurmctld registers).
sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" \
    || sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster failed"
sacctmgr -n list account format=account | grep -qw "$ACCOUNT" \
    || sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" \
        Description="mersemi test account" Organization=mersemi >/dev/null \
    || die "sacctmgr add account failed"
for u in root ${SLURM_USERS:-${SUDO_USER:-}}; do
    sacctmgr -n list assoc user="$u" account="$ACCOUNT" format=user | grep -qw "$u" \
        || sacctmgr -i add user "$u" Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null \
        || die "sacctmgr add user $u failed"
done

# slurmctld, then slurmd.
if ! running "$RUN_DIR/slurmctld.pid"; then
    slurmctld || fail_with_log "slurmctld failed to start" "$LOG_DIR/slurmctld.log"
fi
wait_for 60 slurmctld scontrol ping \
    || fail_with_log "slurmctld does not answer" "$LOG_DIR/slurmctld.log"
if ! running "$RUN_DIR/slurmd.pid"; then
    slurmd || fail_with_log "slurmd failed to start" "$LOG_DIR/slurmd.log"
fi

# ---------------------------------------------------------------- 4. ready?
node_state() { sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n 1; }
deadline=$((SECONDS + WAIT_S))
while :; do
    state="$(node_state)"
    case "$state" in
        idle | mixed | allocated) break ;;
        *inval* | *INVAL*)
            scontrol show node "$NODE" >&2 || true
            fail_with_log "node $NODE registered with resources that differ from slurm.conf" "$LOG_DIR/slurmd.log" ;;
        down* | drain*)
            # e.g. after a restart with changed resources: bring it back
            scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
    esac
    if ((SECONDS >= deadline)); then
        scontrol show node "$NODE" >&2 || true
        fail_with_log "node $NODE is '$state', not idle, after ${WAIT_S}s" "$LOG_DIR/slurmd.log"
    fi
    sleep 1
done
say "node $NODE is $state (partition $PARTITION, account $ACCOUNT, ${CPUS} CPUs, ${MEM} MB, gres gpu:1)"
