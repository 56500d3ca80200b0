#!/usr/bin/env bash
# cluster/slurm/run_test.sh - a real single-host SLURM (Debian's slurmctld,
# slurmd and munge) runs launch/mtlora.sbatch:
#   1. a short job on a tiny config: it completes with exit 0, writes
#      metrics and a checkpoint;
#   2. a longer job gets the pre-time-limit signal (USR1 to the batch
#      script, as --signal=B:USR1@120 sends it): the ranks checkpoint, the
#      job requeues itself and the requeued run resumes from that checkpoint
#      and completes.
# Installs slurm-wlm and munge if missing (root), starts the daemons in a
# temporary directory, and tears everything down at the end.
#   cluster/slurm/run_test.sh [BUILD_DIR]     (exit 0: passed)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
build="${1:-build}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
for p in slurmctld slurmd munge; do
  if ! dpkg -s "$( [ $p = munge ] && echo munge || echo slurm-wlm )" >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
    break
  fi
done
work=$(mktemp -d /tmp/mtlora-slurm.XXXXXX)
export SLURM_CONF="$work/slurm.conf"
sed -e "s|@HOST@|$(hostname)|g" -e "s|@CPUS@|$(nproc)|g" -e "s|@STATE@|$work|g" \
  cluster/slurm/slurm.conf.in > "$SLURM_CONF"
mkdir -p "$work/state" "$work/spool" /etc/munge /run/munge /var/lib/munge /var/log/munge

cleanup() {
  scancel --quiet --user=root 2>/dev/null || true
  [ -f "$work/slurmd.pid" ] && kill "$(cat "$work/slurmd.pid")" 2>/dev/null || true
  [ -f "$work/slurmctld.pid" ] && kill "$(cat "$work/slurmctld.pid")" 2>/dev/null || true
  if [ -n "${started_munge:-}" ]; then pkill -x munged 2>/dev/null || true; fi
  sleep 1
}
trap cleanup EXIT

if ! pgrep -x munged >/dev/null; then
  [ -f /etc/munge/munge.key ] || mungekey -c -f >/dev/null 2>&1 || \
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
  chmod 400 /etc/munge/munge.key
  munged --force 2>/dev/null
  started_munge=1
fi
slurmctld
slurmd
for i in $(seq 30); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 1; done
sinfo

echo "== data: a small synthetic set"
"$build/mtlora-pack" --synthetic 48 "$work/pascal" --min-side 128 --max-side 160 --quiet
"$build/mtlora-pack" "$work/pascal" "$work/shards" --split train --quiet
"$build/mtlora-pack" "$work/pascal" "$work/shards" --split val --quiet

job_state() { scontrol show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
wait_done() { # job, timeout s
  for i in $(seq "$2"); do
    s=$(job_state "$1" JobState)
    case "$s" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) echo "$s"; return;; esac
    sleep 1
  done
  echo "STILL-$s"
}

export MTLORA_CONFIG="$root/launch/quickstart.yaml" MTLORA_DATA="$work/shards" MTLORA_BIN="$build/mtlora_dist"
echo "== job 1: a short run"
export MTLORA_RUN_DIR="$work/run1"
j1=$(sbatch --parsable -D "$work" -o "$work/job1.out" launch/mtlora.sbatch --opts TRAIN.EPOCHS 3 RUN.LOG_EVERY 5)
s1=$(wait_done "$j1" 600)
cat "$work/job1.out"
echo "job $j1: $s1, exit code $(job_state "$j1" ExitCode)"
[ "$s1" = COMPLETED ] && [ "$(job_state "$j1" ExitCode)" = "0:0" ]
grep -q '"eval_step"' "$work/run1/metrics.jsonl"
ls "$work/run1"/ckpt-*.safetensors >/dev/null
grep -q "SLURM job $j1" "$work/job1.out"

echo "== job 2: the pre-time-limit signal, checkpoint, requeue, resume"
export MTLORA_RUN_DIR="$work/run2"
j2=$(sbatch --parsable -D "$work" -o "$work/job2.out" launch/mtlora.sbatch \
       --opts TRAIN.EPOCHS 12 RUN.LOG_EVERY 5 RUN.CHECKPOINT_EVERY 1000)
for i in $(seq 300); do grep -q "^step 10/" "$work/job2.out" 2>/dev/null && break; sleep 1; done
scancel --signal=USR1 --batch "$j2"
s2=$(wait_done "$j2" 900)
# a requeued job runs again under the same id: wait for its second run
for i in $(seq 600); do
  [ "$(job_state "$j2" Restarts)" -ge 1 ] && [ "$(wait_done "$j2" 1)" = COMPLETED ] && break
  sleep 1
done
cat "$work/job2.out"
s2=$(job_state "$j2" JobState)
echo "job $j2: $s2, restarts $(job_state "$j2" Restarts), exit code $(job_state "$j2" ExitCode)"
[ "$s2" = COMPLETED ] && [ "$(job_state "$j2" Restarts)" -ge 1 ]
stopped=$(sed -n 's/.*checkpoint (stop signal) after step \([0-9]*\).*/\1/p' "$work/job2.out" | head -1)
resumed=$(sed -n 's/.*resuming from .* at step \([0-9]*\).*/\1/p' "$work/job2.out" | head -1)
total=$(sed -n 's/^step \([0-9]*\)\/\([0-9]*\) .*/\2/p' "$work/job2.out" | tail -1)
last=$(sed -n 's/^step \([0-9]*\)\/.*/\1/p' "$work/job2.out" | tail -1)
echo "summary: job $j1 completed; job $j2 stopped after step $stopped, requeued, resumed at step $resumed, finished step $last of $total"
[ -n "$stopped" ] && [ "$stopped" = "$resumed" ] && [ "$last" = "$total" ]
echo "cluster/slurm/run_test.sh: passed"
