"""A shard record corrupted mid-epoch, by RUN.BAD_RECORDS policy (ctest
`bad_records`, issue 14 item 5).

A tiny set is packed in shards of 4 records; one record's JPEG bytes are
changed with h5py inside one shard, so its checksum fails when the loader's
background thread reads it (the record is chosen from a clean run's trace,
MTLORA_TRACE_RECORDS, so that it comes in the second update). 2 ranks:

- skip: the run ends with exit 0; one warning names the shard file and the
  record; the epoch's count and the final summary say 1; every update still
  has 4 samples (the record replaced by the next one of its rank's order);
  two runs replace it the same way.
- stop (the default): exit 1, the message names the shard file and the
  record, and a checkpoint of the last completed step is left; with the
  shard restored, --resume auto continues from it and ends bit-identical to
  the clean run.

    bad_record_test.py MTLORA_DIST MTLORA_PACK CONFIG WORKDIR
"""
import os
import shutil
import subprocess
import sys

import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dist_test  # noqa: E402  (reads sys.argv: the same four arguments)
from dist_test import mpirun  # noqa: E402

DIST, PACK, CONFIG, WORK = sys.argv[1:5]
SHARD_SIZE = 4
# 20 images, every 5th for val: 16 training records; 2 ranks x batch 2: 4
# updates an epoch, every record used once
OPTS = ["--opts", "DATA.BATCH_SIZE", "2", "TRAIN.EPOCHS", "2", "RUN.LOG_EVERY", "1", "RUN.EVAL_EVERY", "100"]


def pack():
    src, shards = os.path.join(WORK, "src"), os.path.join(WORK, "shards")
    for args in (["--synthetic", "20", src, "--min-side", "48", "--max-side", "64", "--quiet"],
                 [src, shards, "--split", "train", "--shard-size", str(SHARD_SIZE), "--quiet"],
                 [src, shards, "--split", "val", "--quiet"]):
        subprocess.run([PACK, *args], check=True)
    return shards


def run(shards, run_dir, trace, *extra, keys=(), expect=0):
    dist_test.ENV["MTLORA_TRACE_RECORDS"] = os.path.join(WORK, trace)
    try:
        return mpirun(2, "--data", shards, *extra, *OPTS, *keys, "RUN.DIR", run_dir, expect=expect)
    finally:
        del dist_test.ENV["MTLORA_TRACE_RECORDS"]


def read_trace(name):
    """[(step, micro, rank, epoch, [records])] over both ranks' files"""
    out = []
    for r in (0, 1):
        path = os.path.join(WORK, "%s.%d" % (name, r))
        for line in open(path):
            w = line.split()
            assert w[0] == "step" and w[8] == "records", line
            out.append((int(w[1]), int(w[3]), r, int(w[5]), [int(x) for x in w[9:]]))
    return sorted(out)


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    shards = pack()
    clean_file = os.path.join(WORK, "clean.safetensors")
    run(shards, os.path.join(WORK, "clean"), "trace_clean", "--quiet", "--save-trainable", clean_file)
    clean = read_trace("trace_clean")
    # the victim: rank 0's first record of the second update, epoch 0
    victim = [recs for step, micro, rank, epoch, recs in clean if step == 1 and rank == 0][0][0]
    shard = "train-%05d.h5" % (victim // SHARD_SIZE)
    local = victim % SHARD_SIZE
    path = os.path.join(shards, shard)
    backup = os.path.join(WORK, shard + ".orig")
    shutil.copy(path, backup)
    with h5py.File(path, "r+") as f:
        d = f["records/%06d/image_jpeg" % local]
        data = d[()]
        data[len(data) // 2] ^= 0x5A
        d[...] = data
    named = "%s record %d" % (shard, local)

    # skip: exit 0, the record named once, counted 1 in epoch 0 and in all
    skip = ["RUN.BAD_RECORDS", "skip"]
    out = run(shards, os.path.join(WORK, "skip"), "trace_skip", "--quiet", keys=skip)
    warnings = [l for l in out.splitlines() if "warning:" in l and named in l]
    assert len(warnings) == 2, "expected one warning per epoch naming %s:\n%s" % (named, out)  # 2 epochs
    assert all("checksum mismatch" in l and "RUN.BAD_RECORDS skip" in l for l in warnings), warnings
    assert "failed their checks, skipped in epoch 0: 1 (" in out, out
    assert "failed their checks, skipped in epoch 1: 1 (" in out, out
    assert "failed their checks, skipped in this run: 2 (" in out, out
    got = read_trace("trace_skip")
    assert [x[:4] + (len(x[4]),) for x in got] == [x[:4] + (len(x[4]),) for x in clean], \
        "skip changed the batches' sizes or order"
    assert all(victim not in x[4] for x in got), "the corrupt record was used"
    changed = [(c, g) for c, g in zip(clean, got) if c != g]
    assert len(changed) == 2, changed  # the victim's micro-batch in each epoch, nothing else
    run(shards, os.path.join(WORK, "skip2"), "trace_skip2", "--quiet", keys=skip)
    assert read_trace("trace_skip2") == got, "the replacement is not deterministic"
    print("skip: %s named (checksum mismatch), 1 skipped per epoch, 2 in the run, exit 0; batches keep "
          "their size, the replacement is deterministic" % named)

    # stop (the default): exit 1 naming the record, a checkpoint of the step before
    stop_dir = os.path.join(WORK, "stop")
    out = run(shards, stop_dir, "trace_stop", expect=1)
    assert named in out and "checksum mismatch" in out and "RUN.BAD_RECORDS stop" in out, out
    assert "stopped with a checkpoint of step 1" in out, out
    ckpts = sorted(f for f in os.listdir(stop_dir) if f.startswith("ckpt-") and f.endswith(".safetensors"))
    assert ckpts and ckpts[-1] == "ckpt-%08d.safetensors" % 1, ckpts
    # still refused while the shard is bad, with the checkpoint kept
    out = run(shards, stop_dir, "trace_stop2", "--resume", "auto", expect=1)
    assert named in out and "resuming from" in out, out
    shutil.copy(backup, path)  # the shard repaired
    resumed_file = os.path.join(WORK, "resumed.safetensors")
    out = run(shards, stop_dir, "trace_resumed", "--resume", "auto", "--save-trainable", resumed_file)
    assert "resuming from" in out and "at step 1" in out, out
    assert open(clean_file, "rb").read() == open(resumed_file, "rb").read(), \
        "stopped on the bad record and resumed after the repair: differs from the clean run"
    print("stop: %s named, exit 1 with a checkpoint of step 1; refused again while corrupt; after the repair "
          "--resume auto ends bit-identical to the clean run" % named)
    print("bad_records: all checks passed")


if __name__ == "__main__":
    main()
