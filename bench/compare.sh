#!/usr/bin/env bash
# compare.sh - the speed comparison of issue 13: the official PyTorch MTLoRA
# training step (the anchor, ../shared/anchors/torch_mtlora_step.py) and
# bench/train_step in its precisions and with activation recompute, run on
# this machine one after the other, interleaved per batch size (anchor, then
# ours at the same batch), so that drift of a shared machine hits both
# sides alike. Prints one markdown table.
#
#   bench/compare.sh [--steps N] [--batches "1 2 4 8"] [--build DIR] [--quick]
#                    [--rounds N]
#
#   --steps N     timed steps per run, after one warm-up (default 3)
#   --batches L   batch sizes (default "1 2 4 8")
#   --build DIR   the CMake build directory holding bench/train_step
#                 (default build; relative paths are tried from the current
#                 directory, then from the repository root)
#   --quick       only batch 2, no checkpoint variants
#   --rounds N    repeat the whole sequence N times (default 1), one row per run
#
# Environment: OMP_NUM_THREADS (default: nproc; also the anchor's thread
# count), MTLORA_REPO (a checkout of scale-lab/MTLoRA; unset: the anchor is
# skipped and its columns read n/a), ANCHOR_DIR (default ../shared/anchors
# next to the repository).
set -euo pipefail

usage() {
    sed -n '/^#   bench\/compare.sh/,/^#   --rounds/p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "compare.sh: $*" >&2
    exit 2
}

is_pos_int() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

steps=3
batches="1 2 4 8"
build=build
quick=0
rounds=1
while (($#)); do
    case $1 in
        --steps) (($# >= 2)) || die "--steps needs a value"; steps=$2; shift 2 ;;
        --batches) (($# >= 2)) || die "--batches needs a value"; batches=$2; shift 2 ;;
        --build) (($# >= 2)) || die "--build needs a value"; build=$2; shift 2 ;;
        --rounds) (($# >= 2)) || die "--rounds needs a value"; rounds=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
done
is_pos_int "$steps" || die "--steps: '$steps' is not a positive integer"
is_pos_int "$rounds" || die "--rounds: '$rounds' is not a positive integer"
if ((quick)); then batches=2; fi
read -r -a batch_list <<<"$batches"
((${#batch_list[@]})) || die "--batches: no batch size given"
for b in "${batch_list[@]}"; do
    is_pos_int "$b" || die "--batches: '$b' is not a positive integer"
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ $build != /* && ! -d $build && -d $root/$build ]]; then build=$root/$build; fi
bin=$build/bench/train_step
if [[ ! -x $bin ]]; then
    echo "compare.sh: $bin not found or not executable; build it first:" >&2
    echo "  cmake -S $root -B $build -DCMAKE_BUILD_TYPE=Release &&" \
        "cmake --build $build --target train_step" >&2
    exit 1
fi

threads=${OMP_NUM_THREADS:-$(nproc)}
is_pos_int "$threads" || die "OMP_NUM_THREADS: '$threads' is not a positive integer"
export OMP_NUM_THREADS=$threads

# The anchor's model is the official Swin-T at 448, as train_step's built-in.
img=448
anchor_dir=${ANCHOR_DIR:-$root/../shared/anchors}
python=/usr/bin/python3 # Debian's, where python3-torch lives (anchors/README.md)
anchor_ok=1
if [[ -z ${MTLORA_REPO:-} ]]; then
    echo "compare.sh: MTLORA_REPO is not set (a checkout of scale-lab/MTLoRA):" \
        "skipping the PyTorch anchor" >&2
    anchor_ok=0
elif [[ ! -f $anchor_dir/torch_mtlora_step.py || ! -d $anchor_dir/stub ]]; then
    echo "compare.sh: no anchor script in $anchor_dir (set ANCHOR_DIR): skipping the anchor" >&2
    anchor_ok=0
elif [[ ! -x $python ]]; then
    echo "compare.sh: $python not found: skipping the anchor" >&2
    anchor_ok=0
fi

# Rows of the table, one per run.
rows_name=() rows_batch=() rows_step=() rows_ips=() rows_mem=() rows_util=() rows_speed=()
rows_cmd=()
# anchor step time by round:batch; the precision line by configuration
declare -A anchor_step=() precision=()
precision_order=() peak_lines=()

# The shell-quoted command line of a run, for the table.
show_cmd() {
    local s
    printf -v s '%q ' "$@"
    printf '%s' "${s% }"
}

# The first match of a sed pattern with one group in a run's output (sed
# -n 1p rather than head: it reads to the end, so no SIGPIPE under pipefail).
field() { sed -n "s|$1|\\1|p" <<<"$2" | sed -n 1p; }

add_row() { # name batch step ips mem util speed cmd
    local label=$1
    if ((rounds > 1)); then label="round $round: $1"; fi
    rows_name+=("$label") rows_batch+=("$2") rows_step+=("$3") rows_ips+=("$4")
    rows_mem+=("$5") rows_util+=("$6") rows_speed+=("$7") rows_cmd+=("$8")
}

run_anchor() { # round batch
    local key=$1:$2 out rc=0 step kib mem
    # the wrapper reports the child's peak resident set (Linux: KiB), as
    # train_step reports its own
    local cmd=(env "STUB=$anchor_dir/stub" "MTLORA_REPO=$MTLORA_REPO" "$python"
        "$anchor_dir/torch_mtlora_step.py" "$2" "$img" "$threads" "$steps")
    echo "compare.sh: running $(show_cmd "${cmd[@]}")" >&2
    out=$("$python" -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[1:])
print("child maxrss KiB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)
sys.exit(rc)' "${cmd[@]}" 2>&1) || rc=$?
    step=$(field '.*step median \([0-9.]*\)s.*' "$out")
    kib=$(field '^child maxrss KiB \([0-9]*\)$' "$out")
    if ((rc)) || [[ -z $step ]]; then
        echo "compare.sh: the anchor failed (exit $rc); its output ends:" >&2
        tail -n 5 <<<"$out" >&2
        add_row "official PyTorch (anchor)" "$2" "failed (exit $rc)" n/a n/a n/a n/a \
            "$(show_cmd "${cmd[@]}")"
        return 0
    fi
    anchor_step[$key]=$step
    mem=n/a
    [[ -n $kib ]] && mem=$(awk -v k="$kib" 'BEGIN { printf "%.2f", k * 1024 / 1e9 }')
    add_row "official PyTorch (anchor)" "$2" "$step" \
        "$(awk -v b="$2" -v s="$step" 'BEGIN { printf "%.3f", b / s }')" "$mem" n/a 1.00x \
        "$(show_cmd "${cmd[@]}")"
}

run_ours() { # round batch name [train_step arguments...]
    local round=$1 batch=$2 name=$3 out rc=0
    shift 3
    local cmd=("$bin" --batch "$batch" --steps "$steps" "$@")
    local shown
    shown="OMP_NUM_THREADS=$threads $(show_cmd "${cmd[@]}")"
    echo "compare.sh: running $shown" >&2
    out=$("${cmd[@]}" 2>&1) || rc=$?
    local step ips mem util which f32u prec peak speed=n/a
    step=$(field '^step median \([0-9.]*\) s.*' "$out")
    if ((rc)) || [[ -z $step ]]; then
        echo "compare.sh: $name at batch $batch failed (exit $rc); its output ends:" >&2
        tail -n 5 <<<"$out" >&2
        add_row "$name" "$batch" "failed (exit $rc)" n/a n/a n/a n/a "$shown"
        return 0
    fi
    ips=$(field '^images/s \([0-9.]*\)$' "$out")
    mem=$(field '^peak memory \([0-9.]*\) GB$' "$out")
    util=$(field '.*utilisation \([0-9.]*%\).*' "$out")
    which=$(field '.* \([a-z0-9]*\) matmul peak .*utilisation.*' "$out")
    f32u=$(field '.*f32-relative \([0-9.]*%\).*' "$out")
    if [[ -n $util && $which == f32 ]]; then util="$util of f32 peak"
    elif [[ -n $util ]]; then util="$util of ${which:-?} peak (${f32u:-?} of f32)"; fi
    prec=$(field '^precision: \(.*\)$' "$out")
    peak=$(field '^\(matmul peak: .*\)$' "$out")
    if [[ -n $prec && -z ${precision[$name]:-} ]]; then
        precision[$name]=$prec
        precision_order+=("$name")
    fi
    # every run's own: on a shared machine the peak moves with the load,
    # and each row's utilisation is against the peak of its own run
    if [[ -n $peak ]]; then peak_lines+=("$name, batch $batch: $peak"); fi
    if [[ -n ${anchor_step[$round:$batch]:-} ]]; then
        speed=$(awk -v a="${anchor_step[$round:$batch]}" -v s="$step" \
            'BEGIN { printf "%.2fx", a / s }')
    fi
    add_row "$name" "$batch" "$step" "${ips:-n/a}" "${mem:-n/a}" "${util:-n/a}" "$speed" "$shown"
}

for ((round = 1; round <= rounds; round++)); do
    for b in "${batch_list[@]}"; do
        if ((anchor_ok)); then run_anchor "$round" "$b"; fi
        run_ours "$round" "$b" "f32 (AMP off)" --opts AMP_ENABLE False
        run_ours "$round" "$b" "AMP (default)"
        if ((!quick)); then
            run_ours "$round" "$b" "f32 (AMP off), checkpoint" --opts AMP_ENABLE False \
                --use-checkpoint
            run_ours "$round" "$b" "AMP, checkpoint" --use-checkpoint
        fi
    done
    # the task-dependent adapter kinds (T encoder paths, docs/adapters.md),
    # at batch 2, next to the anchor's batch-2 run when there is one
    run_ours "$round" 2 "AMP, MODEL.ADAPTER.KIND mtl_lora" --opts MODEL.ADAPTER.KIND mtl_lora
    run_ours "$round" 2 "AMP, MODEL.ADAPTER.KIND cgc_lora" --opts MODEL.ADAPTER.KIND cgc_lora
done

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | sed -n 1p || true)
[[ -n $cpu ]] || cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p || true)
echo "CPU: ${cpu:-unknown}, $(nproc) CPUs, OMP_NUM_THREADS=$threads, $img x $img," \
    "timed steps per run: $steps after one warm-up, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| configuration | batch | step s (median) | images/s | peak memory GB | utilisation" \
    "| speed-up vs anchor | command |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for i in "${!rows_name[@]}"; do
    echo "| ${rows_name[$i]} | ${rows_batch[$i]} | ${rows_step[$i]} | ${rows_ips[$i]}" \
        "| ${rows_mem[$i]} | ${rows_util[$i]} | ${rows_speed[$i]} | \`${rows_cmd[$i]}\` |"
done
echo
for l in "${peak_lines[@]}"; do echo "- $l"; done
for n in "${precision_order[@]}"; do echo "- $n: precision: ${precision[$n]}"; done
