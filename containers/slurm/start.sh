#!/usr/bin/env bash
# Start a single-node Slurm (munge, slurmctld, slurmd) for CI and tests, state under $1.
# Installs the Debian packages if missing. Writes $1/env with SLURM_CONF; stop with stop.sh $1.
set -euo pipefail
DIR=$(realpath -m "${1:-.ci/work/slurm}")
mkdir -p "$DIR"/{state,spool,log}
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge slurmctld slurmd slurm-client >/dev/null
fi
HOST=$(hostname -s)
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
MEM=$((MEM * 9 / 10))
CPUS=$(nproc)
cat > "$DIR/slurm.conf" <<CONF
ClusterName=argyro
SlurmctldHost=$HOST
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
MinJobAge=600
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$DIR/slurm.conf
echo "export SLURM_CONF=$DIR/slurm.conf" > "$DIR/env"
install -d -o munge -g munge -m0755 /run/munge
if ! munge -n </dev/null >/dev/null 2>&1; then
    [ -f /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    # munged runs as user munge, which may not reach $DIR (e.g. a 0700 temp folder): its pid file
    # lives in /run/munge, and $DIR/munged.pidfile records where
    PIDF=/run/munge/argyro-$(printf '%s' "$DIR" | md5sum | cut -c1-12).pid
    runuser -u munge -- /usr/sbin/munged --pid-file="$PIDF"
    echo "$PIDF" > "$DIR/munged.pidfile"
fi
/usr/sbin/slurmctld -f "$SLURM_CONF"
/usr/sbin/slurmd -f "$SLURM_CONF"
for _ in $(seq 1 60); do
    state=$(sinfo -h -o %t 2>/dev/null || true)
    [ "$state" = "idle" ] && { echo "slurm up: $HOST idle (SLURM_CONF=$SLURM_CONF)"; exit 0; }
    sleep 0.5
done
echo "slurm did not become idle: $(sinfo 2>&1)" >&2
exit 1
