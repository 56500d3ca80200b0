"""Resume on another number of ranks (ctest `world_resize`, issue 14 item 6).

A requeued job may get fewer or more nodes. A 4-rank run (batch 1 per rank,
no accumulation: global batch 4) is stopped mid-epoch (--steps), then
resumed from its checkpoint on 2 ranks (accumulation 2) and on 1 rank
(accumulation 4), and along a chain 4 -> 2 -> 1 (the second resume starts
from a checkpoint the 2-rank job wrote). Each ends within float
reassociation of an uninterrupted 4-rank run, and sees the same samples in
each update and each epoch: every rank appends the records of each
micro-batch to a trace (MTLORA_TRACE_RECORDS, a test hook of mpi/trainer.c).
The set has 30 training records, so an epoch has 7 updates of 4 samples on
any world and leaves 2 records out; on 2 and 1 ranks it also leaves whole
micro-batches out (15 and 30 batches of 1 per rank, 7 updates of 2 and 4).

Why these settings: batch 1 per rank and RUN.SYNC_BN False make every
micro-batch the same single sample whatever the world size, so only the
order of the gradient sums differs; dropout and drop path are 0 in the
config (their masks are keyed by rank and micro-batch, so they legitimately
differ after a resize); AMP off (f32); AdamW's eps 1e-3 as dist_test.py's
scaling check (with 1e-8 rounding noise in near-zero gradients becomes
full steps of random sign).

    world_resize_test.py MTLORA_DIST MTLORA_PACK CONFIG WORKDIR
"""
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dist_test  # noqa: E402  (reads sys.argv: the same four arguments)
from dist_test import mpirun, noise_driven, records, read_safetensors  # noqa: E402
from mpi_env import mpi_env  # noqa: E402

dist_test.ENV = mpi_env()  # with the leak checks dist_test.py runs without

DIST, PACK, CONFIG, WORK = sys.argv[1:5]
STEPS_PER_EPOCH = 7  # floor(30 / 4)
STOP, STOP2, TOTAL = 10, 13, 17  # mid-epoch 1 (3 of 7), again mid-epoch 1, mid-epoch 2
OPTS = ["--opts", "DATA.BATCH_SIZE", "1", "RUN.SYNC_BN", "False", "AMP_ENABLE", "False",
        "TRAIN.OPTIMIZER.EPS", "1e-3", "TRAIN.EPOCHS", "3", "TRAIN.WARMUP_EPOCHS", "1",
        "TRAIN.BASE_LR", "2.0", "RUN.LOG_EVERY", "1", "RUN.EVAL_EVERY", "100"]


def pack():
    src, shards = os.path.join(WORK, "src"), os.path.join(WORK, "shards")
    # 37 images, every 5th for val: 30 training records, in shards of 8
    for args in (["--synthetic", "37", src, "--min-side", "48", "--max-side", "64", "--quiet"],
                 [src, shards, "--split", "train", "--shard-size", "8", "--quiet"],
                 [src, shards, "--split", "val", "--quiet"]):
        subprocess.run([PACK, *args], check=True)
    return shards


def run(n, shards, run_dir, steps, trace, *extra, expect=0):
    env_trace = os.path.join(WORK, trace)
    old = dist_test.ENV.get("MTLORA_TRACE_RECORDS")
    dist_test.ENV["MTLORA_TRACE_RECORDS"] = env_trace
    try:
        return mpirun(n, "--data", shards, "--steps", str(steps), *extra, *OPTS, "RUN.DIR", run_dir,
                      expect=expect)
    finally:
        if old is None:
            del dist_test.ENV["MTLORA_TRACE_RECORDS"]
        else:
            dist_test.ENV["MTLORA_TRACE_RECORDS"] = old


def read_trace(*names):
    """{step: sorted records}, {epoch: sorted records} over the ranks' files of
    the traces named (a stopped run and its continuation)"""
    steps, epochs = {}, {}
    for name in names:
        prefix = os.path.join(WORK, name) + "."
        files = [f for f in os.listdir(WORK) if os.path.join(WORK, f).startswith(prefix)]
        assert files, "no trace files %s*" % prefix
        for f in files:
            for line in open(os.path.join(WORK, f)):
                w = line.split()
                assert w[0] == "step" and w[2] == "micro" and w[4] == "epoch" and w[8] == "records", line
                recs = [int(x) for x in w[9:]]
                steps.setdefault(int(w[1]), []).extend(recs)
                epochs.setdefault(int(w[5]), []).extend(recs)
    return ({k: sorted(v) for k, v in steps.items()}, {k: sorted(v) for k, v in epochs.items()})


def lrs(run_dir):
    return {r["step"]: r["lr"] for r in records(run_dir) if "lr" in r and "step" in r}


def trained(name):
    """the trainable values: not BatchNorm's running statistics, which follow
    what rank 0 saw (other samples on another world size), nor its counter of
    training forwards (accumulation 2 makes two a step); nor the
    noise-driven biases of dist_test.py"""
    return not (noise_driven(name) or ".running_" in name or name.endswith("num_batches_tracked"))


def max_rel_diff(x, y):
    a, b = read_safetensors(x), read_safetensors(y)
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max() / (np.abs(a[k]).max() + 1e-12))
               for k in a if trained(k))


def resume_from(stopped_dir, name):
    d = os.path.join(WORK, name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(stopped_dir, d)
    return d


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    shards = pack()
    ref_file, ref_dir = os.path.join(WORK, "ref.safetensors"), os.path.join(WORK, "ref")
    run(4, shards, ref_dir, TOTAL, "trace_ref", "--quiet", "--save-trainable", ref_file)
    ref_steps, ref_epochs = read_trace("trace_ref")
    assert sorted(ref_steps) == list(range(TOTAL)), sorted(ref_steps)
    for e in (0, 1):  # whole epochs: 28 distinct records of the 30
        assert len(ref_epochs[e]) == 4 * STEPS_PER_EPOCH == len(set(ref_epochs[e])), ref_epochs[e]
    assert all(len(v) == 4 for v in ref_steps.values())

    stopped = os.path.join(WORK, "stopped")
    mid_file = os.path.join(WORK, "mid.safetensors")
    run(4, shards, stopped, STOP, "trace_stop", "--quiet", "--save-trainable", mid_file)
    moved = max_rel_diff(ref_file, mid_file)
    assert moved > 1e-2, "steps %d-%d hardly moved the values: the comparison would prove nothing" % (STOP, TOTAL)

    # a world that cannot keep the global batch (4 on 3 ranks) is refused, naming the numbers
    out = run(3, shards, resume_from(stopped, "on3"), TOTAL, "trace_3", "--resume", "auto", expect=1)
    assert "global batch 4" in out and "cannot be kept on 3 ranks" in out, out

    results = []
    for n, acc in ((2, 2), (1, 4)):
        d = resume_from(stopped, "on%d" % n)
        f = os.path.join(WORK, "on%d.safetensors" % n)
        out = run(n, shards, d, TOTAL, "trace_%d" % n, "--resume", "auto", "--save-trainable", f)
        line = "resumed a 4-rank checkpoint on %d ranks: accumulation 1 -> %d" % (n, acc)
        assert line in out and "global batch 4 kept" in out, out
        results.append((n, f, d, ("trace_stop", "trace_%d" % n)))

    # the chain 4 -> 2 -> 1: the 2-rank job's checkpoint keeps the 4-rank units
    d = resume_from(stopped, "chain")
    run(2, shards, d, STOP2, "trace_chain2", "--quiet", "--resume", "auto")
    f = os.path.join(WORK, "chain.safetensors")
    out = run(1, shards, d, TOTAL, "trace_chain1", "--resume", "auto", "--save-trainable", f)
    assert "resumed a 4-rank checkpoint on 1 ranks: accumulation 1 -> 4" in out, out
    results.append(("2 then 1", f, d, ("trace_stop", "trace_chain2", "trace_chain1")))

    ref_lr = lrs(ref_dir)
    for n, f, d, traces in results:
        steps, epochs = read_trace(*traces)
        assert steps == ref_steps, "resumed on %s ranks: the updates saw other samples\n%s\n%s" % (
            n, steps, ref_steps)
        assert epochs == ref_epochs, "resumed on %s ranks: the epochs saw other samples" % n
        got_lr = lrs(d)
        assert got_lr == ref_lr, "resumed on %s ranks: the LR changed\n%s\n%s" % (n, got_lr, ref_lr)
        worst = max_rel_diff(ref_file, f)
        print("resumed at step %d on %s ranks: same samples in each of %d updates and %d epochs, same LR; "
              "max rel diff %.3g from the uninterrupted 4-rank run (%.3g moved since step %d)"
              % (STOP, n, len(steps), len(epochs), worst, moved, STOP))
        assert worst < 1e-4, "resumed on %s ranks: max rel diff %g" % (n, worst)
    print("world_resize: all checks passed")


if __name__ == "__main__":
    main()
