#!/bin/sh
# bench/timeline_overhead.sh - what RUN.TIMELINE costs a training step
# (docs/performance.md): mtlora_dist --bench on 2 ranks with and without
# --timeline, the two alternating run by run, the median of each over RUNS
# runs of its "bench: step" (the mean step of the slowest rank, the first
# step not counted).
#
#   bench/timeline_overhead.sh [RUNS [STEPS [CONFIG]]]    (defaults 7, 20, launch/quickstart.yaml)
#
# Environment: MTLORA_DIST (default build/mtlora_dist), OMP_NUM_THREADS
# (default 1), MPIRUN_ARGS (extra mpirun flags).
set -eu
runs=${1:-7}
steps=${2:-20}
config=${3:-launch/quickstart.yaml}
dist=${MTLORA_DIST:-build/mtlora_dist}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
one() { # one run: prints its "bench: step" seconds
  mpirun -np 2 --oversubscribe ${MPIRUN_ARGS:-} "$dist" --config "$config" --synthetic-data --steps "$steps" \
    --bench --quiet "$@" --opts RUN.DIR "$work/run" |
    sed -n 's/^bench: step \([0-9.]*\) s.*/\1/p'
}
: > "$work/off"
: > "$work/on"
i=0
while [ "$i" -lt "$runs" ]; do
  one >> "$work/off"
  one --timeline "$work/timeline.json" >> "$work/on"
  i=$((i + 1))
done
python3 - "$work/off" "$work/on" "$runs" "$steps" "$config" <<'EOF'
import statistics, sys
off = [float(x) for x in open(sys.argv[1]).read().split()]
on = [float(x) for x in open(sys.argv[2]).read().split()]
mo, mn = statistics.median(off), statistics.median(on)
print("timeline overhead: %s, %s runs of %s steps each, interleaved" % (sys.argv[5], sys.argv[3], sys.argv[4]))
print("  off: median step %.4f s  (%s)" % (mo, " ".join("%.4f" % x for x in off)))
print("  on:  median step %.4f s  (%s)" % (mn, " ".join("%.4f" % x for x in on)))
pairs = statistics.median(b / a for a, b in zip(off, on))
print("  difference of the medians %+.2f%% of a step; median of the %d pairs' ratios %+.2f%%"
      % (100.0 * (mn - mo) / mo, len(on), 100.0 * (pairs - 1.0)))
EOF
