#!/usr/bin/env bash
# A real single-node SLURM cluster for the tests: Debian's slurm-wlm and munge, slurmctld + slurmd on
# localhost, proctrack/linuxproc, no cgroups, no accounting. Needs root (CI runs as root).
#
#   Testing/slurm/cluster.sh start   install (first time), configure, start, wait until the node is idle
#   Testing/slurm/cluster.sh stop    cancel jobs, stop the daemons
#   Testing/slurm/cluster.sh status  sinfo
set -euo pipefail

CONF_DIR=/etc/slurm
STATE=/var/lib/slurm-test
LOGS=/var/log/slurm-test

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "cluster.sh: run as root (it installs and starts system daemons)" >&2
    exit 2
  fi
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v munged >/dev/null; then return; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

write_config() {
  mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$LOGS"
  local topology
  topology=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ UpTime=.*//')
  cat > "$CONF_DIR/slurm.conf" <<CONF
ClusterName=improvednnunet-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
KillWait=20
MailProg=/bin/true
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=localhost NodeAddr=127.0.0.1 $topology State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
}

start_munge() {
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null || true
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  if ! pgrep -x munged >/dev/null; then
    su -s /bin/sh munge -c munged 2>/dev/null || munged --force
  fi
  for _ in $(seq 50); do munge -n >/dev/null 2>&1 && return; sleep 0.1; done
  echo "cluster.sh: munged did not start" >&2
  exit 1
}

alive() { [ -f "$1" ] && [ -d "/proc/$(cat "$1")" ] && ! grep -q ') Z ' "/proc/$(cat "$1")/stat" 2>/dev/null; }

start() {
  need_root
  install_packages
  start_munge
  if alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid"; then
    sinfo -h -o '%T' | grep -qx idle && { echo "SLURM test cluster already running"; return; }
  fi
  write_config
  alive "$STATE/slurmctld.pid" || slurmctld -i
  alive "$STATE/slurmd.pid" || slurmd -N localhost
  for _ in $(seq 100); do
    if [ "$(sinfo -h -o '%T' 2>/dev/null | head -1)" = idle ]; then
      # the daemons exit 0 even when a step cannot run: check a real step's output
      if [ "$(srun -N1 -t 1 echo slurm-ok 2>/dev/null)" = slurm-ok ]; then
        echo "SLURM test cluster up: $(sinfo -h -o '%P %D %c %T')"
        return
      fi
    fi
    sleep 0.2
  done
  echo "cluster.sh: the node did not become idle; see $LOGS" >&2
  exit 1
}

stop() {
  need_root
  scancel --full --quiet -u root 2>/dev/null || true
  for pid in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    if [ -f "$pid" ]; then kill "$(cat "$pid")" 2>/dev/null || true; fi
  done
  echo "SLURM test cluster stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
