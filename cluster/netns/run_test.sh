#!/usr/bin/env bash
# cluster/netns/run_test.sh - two "hosts" on one machine: network namespaces
# mtlora-h1 and mtlora-h2 (10.231.0.1, 10.231.0.2) joined by veth pairs on a
# bridge, nothing else reachable. mpirun runs in h1 and starts the remote
# ranks through cluster/netns/netns_agent (in place of ssh); ranks talk over
# Open MPI's TCP transport, and the frozen weights are shared per host.
#   1. a run across the hosts completes (2 nodes, one shared window each);
#   2. fault: host 2's link is cut mid-run; the job must end within a bounded
#      time with a message naming the lost rank or host; a rerun with
#      --resume auto continues from the last checkpoint and completes.
# Tears everything down at the end. Needs root (ip netns).
#   cluster/netns/run_test.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
build="${1:-build}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
command -v ip >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2 >/dev/null
work=$(mktemp -d /tmp/mtlora-netns.XXXXXX)

cleanup() {
  for n in 1 2; do
    for p in $(ip netns pids "mtlora-h$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "mtlora-h$n" 2>/dev/null || true
  done
  ip link del mtlora-br 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip link add mtlora-br type bridge
ip link set mtlora-br up
for n in 1 2; do
  ip netns add "mtlora-h$n"
  ip link add "mtlora-v$n" type veth peer name eth0 netns "mtlora-h$n"
  ip link set "mtlora-v$n" master mtlora-br up
  ip -n "mtlora-h$n" addr add "10.231.0.$n/24" dev eth0
  ip -n "mtlora-h$n" link set eth0 up
  ip -n "mtlora-h$n" link set lo up
done
# (no ping on a minimal machine: the first run proves connectivity)

"$build/mtlora-pack" --synthetic 40 "$work/pascal" --min-side 64 --max-side 96 --quiet
"$build/mtlora-pack" "$work/pascal" "$work/shards" --split train --quiet
"$build/mtlora-pack" "$work/pascal" "$work/shards" --split val --quiet

run() { # run directory, extra args...
  local dir="$1"
  shift
  ip netns exec mtlora-h1 env OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    mpirun --allow-run-as-root -np 2 --host 10.231.0.1:1,10.231.0.2:1 \
    --mca plm_rsh_agent "$root/cluster/netns/netns_agent" \
    --mca btl tcp,self --mca btl_tcp_if_include 10.231.0.0/24 --mca oob_tcp_if_include 10.231.0.0/24 \
    "$build/mtlora_dist" --config "$root/tests/data/dist_tiny.yaml" --data "$work/shards" \
    --opts DATA.BATCH_SIZE 2 TASKS "[semseg, human_parts, sal, normals]" RUN.DIR "$dir" "$@"
}

echo "== 1. training across two hosts"
run "$work/run1" --opts TRAIN.EPOCHS 4 RUN.LOG_EVERY 8 > "$work/run1.log" 2>&1 || { cat "$work/run1.log"; exit 1; }
cat "$work/run1.log" | grep -E "^training|frozen|^eval|^step" | tail -6
grep -q "2 ranks on 2 node(s)" "$work/run1.log"

# Background run; waits until the log shows update $2, then returns.
start_run() { # run directory, wait-for-step, extra args...
  local dir="$1" at="$2"
  shift 2
  run "$dir" "$@" > "$dir.log" 2>&1 &
  job=$!
  for i in $(seq 600); do grep -q "^step $at/" "$dir.log" 2>/dev/null && break; sleep 0.5; done
}
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

echo "== 2a. host 2's ranks are killed mid-run"
long=(--opts TRAIN.EPOCHS 400 RUN.LOG_EVERY 10 RUN.CHECKPOINT_EVERY 20 RUN.STEP_TIMEOUT 10)
start_run "$work/run2" 40 "${long[@]}"
t0=$(date +%s.%N)
for p in $(ip netns pids mtlora-h2); do
  grep -q mtlora_dist "/proc/$p/cmdline" 2>/dev/null && kill -9 "$p"
done
rc=0
wait "$job" || rc=$?
kill_s=$(elapsed "$t0")
echo "job ended with exit $rc, $kill_s s after host 2's ranks were killed"
grep -E "rank 1|exited on signal" "$work/run2.log" | head -3
[ "$rc" != 0 ] && grep -q "rank 1" "$work/run2.log"

echo "== 2b. host 2 loses its link mid-run"
start_run "$work/run2b" 40 "${long[@]}"
t0=$(date +%s.%N)
ip link set mtlora-v2 down
for i in $(seq 120); do grep -q "no progress for" "$work/run2b.log" && break; sleep 0.5; done
cut_s=$(elapsed "$t0")
grep "no progress for" "$work/run2b.log" | head -2
grep -q "no progress for" "$work/run2b.log"
echo "the surviving rank gave up $cut_s s after the link was cut (RUN.STEP_TIMEOUT 10)"
# mpirun itself now waits for the unreachable daemon of host 2: the job is
# over, its launcher is stopped here as a scheduler would stop it.
kill "$job" 2>/dev/null || true
sleep 1
kill -9 "$job" 2>/dev/null || true
for n in 1 2; do for p in $(ip netns pids "mtlora-h$n"); do kill -9 "$p" 2>/dev/null || true; done; done

echo "== 3. link back, a rerun resumes from the killed run's checkpoint"
ip link set mtlora-v2 up
run "$work/run2" "${long[@]}" --steps 80 --resume auto > "$work/run3.log" 2>&1 || { cat "$work/run3.log"; exit 1; }
grep -E "^resuming|^step 80/" "$work/run3.log"
grep -q "^resuming from" "$work/run3.log"
echo "summary: 2 hosts trained together; killed ranks ended the job in $kill_s s; a cut link made the surviving rank give up in $cut_s s; the rerun resumed and reached step 80"
echo "cluster/netns/run_test.sh: passed"
