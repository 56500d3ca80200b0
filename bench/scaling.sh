#!/usr/bin/env bash
# scaling.sh - weak scaling of mtlora_dist on one machine: 1, 2, 4, 8, 16
# ranks x 1 thread each, every rank with the same batch, on the built-in
# Swin-T 448 MTLoRA model with synthetic data (mtlora_dist --bench). Prints
# one markdown table: ranks, images/s in total and per rank, weak-scaling
# efficiency (images/s per rank against 1 rank's), the exposed communication
# as a share of a step, and the node-shared frozen weights per rank; with the
# CPU model (lscpu) and the precision line of the runs.
#
#   bench/scaling.sh [--steps N] [--batch B] [--ranks "1 2 4 8 16"]
#                    [--build DIR] [--amp on|off]
#
#   --steps N     optimizer steps per run, N >= 2; the first is a warm-up and
#                 not timed (default 4)
#   --batch B     images per rank per step (default 1)
#   --ranks L     rank counts, one run each (default "1 2 4 8 16")
#   --build DIR   the CMake build directory holding mtlora_dist (default
#                 build; relative paths are tried from the current directory,
#                 then from the repository root)
#   --amp on|off  on: AMP as configured by default (AMP.MATMUL auto: bf16
#                 where the CPU's bf16 matmul is fast); off: AMP_ENABLE False,
#                 every matmul in f32 (default on)
#
# Meant for a machine with at least as many cores as the largest rank count
# (not a CI test: it times things). Ranks are bound to cores
# (--bind-to core) while they fit, oversubscribed and unbound beyond.
# Time: a Swin-T 448 step at batch 1 takes about 1-2 s on one core (2.1 s
# measured on a Xeon with AMX, bf16 and f32 alike), more when 16 ranks share
# the memory bandwidth; with the start-up (model, shared window, the bench's
# own allreduce timing, about 5-10 s a run) the defaults take about 1.5-3
# minutes for all five runs on a 16-core machine; each run is killed after
# 60 s + 15 s per step and image. Exit status: 0 done, 1 a run failed
# (its output's end is printed), 2 usage error.
set -euo pipefail

usage() {
    sed -n '/^#   bench\/scaling.sh/,/^#                 every matmul/p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "scaling.sh: $*" >&2
    exit 2
}

fail() {
    echo "scaling.sh: FAILED: $*" >&2
    exit 1
}

is_pos_int() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

steps=4
batch=1
ranks="1 2 4 8 16"
build=build
amp=on
while (($#)); do
    case $1 in
        --steps) (($# >= 2)) || die "--steps needs a value"; steps=$2; shift 2 ;;
        --batch) (($# >= 2)) || die "--batch needs a value"; batch=$2; shift 2 ;;
        --ranks) (($# >= 2)) || die "--ranks needs a value"; ranks=$2; shift 2 ;;
        --build) (($# >= 2)) || die "--build needs a value"; build=$2; shift 2 ;;
        --amp) (($# >= 2)) || die "--amp needs a value"; amp=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
done
is_pos_int "$steps" || die "--steps: '$steps' is not a positive integer"
((steps >= 2)) || die "--steps: at least 2 (the first step is not timed)"
is_pos_int "$batch" || die "--batch: '$batch' is not a positive integer"
[[ $amp == on || $amp == off ]] || die "--amp: 'on' or 'off', not '$amp'"
read -r -a rank_list <<<"$ranks"
((${#rank_list[@]})) || die "--ranks: no rank count given"
for n in "${rank_list[@]}"; do
    is_pos_int "$n" || die "--ranks: '$n' is not a positive integer"
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ $build != /* && ! -d $build && -d $root/$build ]]; then build=$root/$build; fi
bin=
for c in "$build/mtlora_dist" "$build/launch/mtlora_dist"; do
    if [[ -x $c && -f $c ]]; then bin=$c; break; fi
done
if [[ -z $bin ]]; then
    echo "scaling.sh: no mtlora_dist in $build; build it first:" >&2
    echo "  cmake -S $root -B $build -DCMAKE_BUILD_TYPE=Release &&" \
        "cmake --build $build --target mtlora_dist" >&2
    exit 1
fi
command -v mpirun >/dev/null || fail "mpirun not found (Open MPI)"
command -v timeout >/dev/null || fail "timeout not found (coreutils)"

# Cores this process may use: the CPUs of its affinity mask (nproc), counted
# once per physical core (hyperthreads of one core share it), as
# --bind-to core counts them.
cpus=$(nproc)
cores=$(awk -v list="$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status 2>/dev/null)" '
    BEGIN { n = split(list, r, ","); for (i = 1; i <= n; i++) {
                m = split(r[i], ab, "-"); for (c = ab[1]; c <= (m > 1 ? ab[2] : ab[1]); c++) ok[c] = 1 } }
    /^#/ { next }
    { split($0, f, ","); if (f[1] in ok && !((f[2] "," f[3]) in seen)) { seen[f[2] "," f[3]] = 1; k++ } }
    END { print k + 0 }' < <(lscpu -p=CPU,Core,Socket 2>/dev/null || true))
((cores >= 1 && cores <= cpus)) || cores=$cpus
model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | sed -n 1p)

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
amp_opts=()
[[ $amp == off ]] && amp_opts=(AMP_ENABLE False)

work=$(mktemp -d "${TMPDIR:-/tmp}/mtlora_scaling.XXXXXX")
trap 'rm -rf "$work"' EXIT

field() { sed -n "s|$1|\\1|p" <<<"$2" | sed -n 1p; }

limit=$((60 + 15 * steps * batch))
echo "scaling.sh: $bin; ${model:-unknown CPU}, $cpus CPUs = $cores cores;" \
    "ranks ${rank_list[*]} x 1 thread, batch $batch per rank, $steps steps" \
    "($((steps - 1)) timed), AMP $amp; at most $limit s per run" >&2

rows=()
base_ips=
base_n=
precision=
for n in "${rank_list[@]}"; do
    bind=(--bind-to core)
    if ((n > cores)); then bind=(--oversubscribe --bind-to none); fi
    cmd=(mpirun -np "$n" "${bind[@]}" "$bin" --synthetic-data --bench --steps "$steps" --quiet
        --opts DATA.BATCH_SIZE "$batch" RUN.DIR "$work/run$n" "${amp_opts[@]}")
    printf -v shown '%q ' "${cmd[@]}"
    echo "scaling.sh: running OMP_NUM_THREADS=1 ${shown% }" >&2
    rc=0
    t0=$SECONDS
    out=$(timeout --kill-after=10 "$limit" "${cmd[@]}" 2>&1) || rc=$?
    if ((rc == 124 || rc == 137)); then
        tail -n 20 <<<"$out" >&2
        fail "$n ranks: no result within $limit s (killed); the output's end is above"
    elif ((rc)); then
        tail -n 20 <<<"$out" >&2
        fail "$n ranks: mpirun exit $rc; the output's end is above"
    fi
    ips=$(field '^bench: \([0-9.]*\) images/s (.*$' "$out")
    per=$(field '^bench: [0-9.]* images/s (\([0-9.]*\) per rank)$' "$out")
    comm=$(field '.*exposed communication .* = \([0-9.]*\)% of a step.*' "$out")
    shared=$(field '^bench: node-shared frozen weights .* MB per node, \([0-9.]*\) MB per rank$' "$out")
    prec=$(field '^bench: precision: \(.*\)$' "$out")
    if [[ -z $ips || -z $per || -z $comm || -z $shared ]]; then
        tail -n 20 <<<"$out" >&2
        fail "$n ranks: the --bench report is missing from the output (end above)"
    fi
    awk -v x="$per" 'BEGIN { exit !(x > 0) }' || fail "$n ranks: $per images/s per rank"
    if [[ -z $precision ]]; then precision=$prec
    elif [[ $prec != "$precision" ]]; then
        echo "scaling.sh: note: $n ranks ran with another precision: $prec" >&2
    fi
    if [[ -z $base_ips ]]; then base_ips=$per base_n=$n; fi
    eff=$(awk -v p="$per" -v b="$base_ips" 'BEGIN { printf "%.1f%%", 100 * p / b }')
    rows+=("| $n | $ips | $per | $eff | $comm% | $shared |")
    echo "scaling.sh: $n ranks done in $((SECONDS - t0)) s: $ips images/s" >&2
done

vs="1 rank"
((base_n == 1)) || vs="$base_n ranks"
echo "CPU: ${model:-unknown} ($cpus CPUs, $cores cores); batch $batch per rank, $steps steps" \
    "($((steps - 1)) timed), 1 thread per rank, AMP $amp"
echo "precision: $precision"
echo
echo "| ranks | images/s | images/s per rank | weak-scaling efficiency vs $vs | exposed communication (% of a step) | node-shared frozen MB per rank |"
echo "|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
