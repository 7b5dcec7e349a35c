#!/usr/bin/env bash
# Stop exactly the daemons scripts/slurm/start.sh started, by their PID files.
set -u
RUN=${EDC_SLURM_DIR:-/tmp/edc-slurm}
for daemon in slurmd slurmctld slurmdbd mariadbd munged; do
  pidfile="$RUN/$daemon.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile" 2>/dev/null) || continue
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    echo "stopped $daemon ($pid)"
  fi
done
