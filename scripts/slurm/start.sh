#!/usr/bin/env bash
# Start a single-node SLURM cluster with accounting on this machine: loopback only, no systemd,
# every daemon's PID file in one run dir (stop.sh ends exactly those). Idempotent. Needs root.
#   bash scripts/slurm/start.sh        # then: sinfo, sbatch, python -m edc.train -m ... hydra/launcher=slurm
set -euo pipefail
RUN=${EDC_SLURM_DIR:-/tmp/edc-slurm}
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() { for _ in $(seq 1 60); do eval "$1" >/dev/null 2>&1 && return 0; sleep 0.5; done; echo "timed out: $1" >&2; return 1; }

if alive "$RUN/munged.pid" && alive "$RUN/mariadbd.pid" && alive "$RUN/slurmdbd.pid" && alive "$RUN/slurmctld.pid" \
    && alive "$RUN/slurmd.pid" && sinfo >/dev/null 2>&1; then
  echo "SLURM already running ($RUN)"; exit 0
fi

# Packages (Debian's), once.
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge slurmdbd mariadb-server >/dev/null
fi

# The node's name must resolve to 127.0.0.1 (a 127.0.1.1 line breaks srun callbacks).
sed -i "/^127\.0\.1\.1[[:space:]].*\b$HOST\b/d" /etc/hosts
getent hosts "$HOST" | grep -q '^127\.0\.0\.1' || echo "127.0.0.1 $HOST" >> /etc/hosts

mkdir -p "$RUN"/{state,spool,mysql-run} /run/munge /run/mysqld /etc/slurm
chown mysql:mysql "$RUN/mysql-run" /run/mysqld
chown munge:munge /run/munge

# munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
if ! alive /run/munge/edc-munged.pid; then
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/edc-munged.pid
fi
ln -sf /run/munge/edc-munged.pid "$RUN/munged.pid"

# MariaDB, unix socket only.
if [ ! -d "$RUN/mysql/mysql" ]; then
  mariadb-install-db --user=mysql --datadir="$RUN/mysql" >/dev/null
fi
chown -R mysql:mysql "$RUN/mysql"
if ! alive "$RUN/mysql-run/mariadbd.pid"; then
  setsid runuser -u mysql -- mariadbd --datadir="$RUN/mysql" --socket=/run/mysqld/mysqld.sock --skip-networking \
    --pid-file="$RUN/mysql-run/mariadbd.pid" --log-error="$RUN/mysql-run/mariadbd.log" </dev/null >/dev/null 2>&1 &
  wait_for "mariadb -S /run/mysqld/mysqld.sock -e 'select 1'"
fi
ln -sf "$RUN/mysql-run/mariadbd.pid" "$RUN/mariadbd.pid"
mariadb -S /run/mysqld/mysqld.sock -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'edc';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=edc
PidFile=$RUN/slurmdbd.pid
LogFile=$RUN/slurmdbd.log
CommunicationParameters=NoInAddrAny
CONF
chmod 600 /etc/slurm/slurmdbd.conf

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=edc
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
StateSaveLocation=$RUN/state
SlurmdSpoolDir=$RUN/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$RUN/slurmctld.log
SlurmdLogFile=$RUN/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF

alive "$RUN/slurmdbd.pid" || slurmdbd
wait_for "sacctmgr -n list cluster"
sacctmgr -i add cluster edc >/dev/null 2>&1 || true
alive "$RUN/slurmctld.pid" || slurmctld
wait_for "scontrol ping | grep -q UP"
alive "$RUN/slurmd.pid" || slurmd
wait_for "sinfo -h -o %T | grep -qE 'idle|mixed|alloc'"
echo "SLURM up: node $HOST, $CPUS CPUs, run dir $RUN"
