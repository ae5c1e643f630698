#!/usr/bin/env bash
# Stop the single-node SLURM cluster started by tests/cluster/start_slurm.sh:
# slurmd, slurmctld, slurmdbd, MariaDB and munged. Idempotent; packages, config
# and the accounting database stay (the next start is quick).
# Set SLURM_PURGE_STATE=1 to also forget queued/finished jobs (slurmctld state).
set -uo pipefail

RUN_DIR=/run/slurm
die() { echo "stop_slurm.sh: error: $*" >&2; exit 1; }
[[ "$(id -u)" -eq 0 ]] || die "must run as root"

# stop PIDFILE NAME: TERM, wait up to 30 s, then KILL.
stop() {
    local pidf="$1" name="$2" pid i
    [[ -f "$pidf" ]] || return 0
    pid="$(cat "$pidf" 2>/dev/null)"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop_slurm.sh: $name ($pid) ignored TERM, killing" >&2
            kill -9 "$pid" 2>/dev/null
        fi
    fi
    rm -f "$pidf"
}

rc=0
# Jobs first, so no job step outlives its slurmd.
if command -v squeue >/dev/null && [[ -f "$RUN_DIR/slurmctld.pid" ]]; then
    jobs_left="$(squeue -h -o %i 2>/dev/null)"
    [[ -z "$jobs_left" ]] || scancel $jobs_left >/dev/null 2>&1 || true
fi
stop "$RUN_DIR/slurmd.pid" slurmd
stop "$RUN_DIR/slurmctld.pid" slurmctld
stop "$RUN_DIR/slurmdbd.pid" slurmdbd
if command -v mariadb-admin >/dev/null && mariadb-admin ping >/dev/null 2>&1; then
    /etc/init.d/mariadb stop >/dev/null 2>&1 || { echo "stop_slurm.sh: MariaDB did not stop" >&2; rc=1; }
fi
stop /run/munge/munged.pid munged
if [[ "${SLURM_PURGE_STATE:-0}" == 1 ]]; then
    rm -rf /var/lib/slurm/slurmctld/* /var/lib/slurm/slurmd/*
fi
exit "$rc"
