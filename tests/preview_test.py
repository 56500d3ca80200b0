"""RUN.EVAL_PREVIEW (ctest `eval_preview`): a tiny 2-rank training run on a
packed synthetic PASCAL set with --opts RUN.EVAL_PREVIEW 2 RUN.EVAL_EVERY 1
writes, at each evaluation (the end of epoch 1 and the end), the panels of
rank 0's first 2 validation images (val records 0 and 2: rank r evaluates
records r, r + 2, ...) as RUN.DIR/preview/step-<step>/<id>.png with each
task's files in <id>/, and nothing of rank 1's records (only rank 0
writes); the steps are those of eval.csv; a panel is S high and holds the
input as the model saw it (the validation transform, un-normalised) and one
tile per task. A write error (RUN.DIR/preview is a file) is reported once
and the run still succeeds; RUN.EVAL_PREVIEW 0 writes nothing.

    preview_test.py MTLORA_DIST MTLORA_PACK WORKDIR
"""
import csv
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from augment_reference import MEAN, STD, official  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpi_env import mpi_env  # noqa: E402

DIST, PACK, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
ENV = mpi_env()
S = 32
TASKS = ["semseg", "human_parts", "sal", "normals"]
CFG = """DATA:
  IMG_SIZE: %d
  BATCH_SIZE: 2
MODEL:
  TYPE: swin
  NAME: preview_test
  DROP_PATH_RATE: 0.0
  SWIN:
    EMBED_DIM: 8
    DEPTHS: [2, 2]
    NUM_HEADS: [1, 2]
    WINDOW_SIZE: 4
  DECODER_CHANNELS: [4, 4]
  MTLORA:
    ENABLED: True
    R: [3]
    SHARED_SCALE: [2.0]
    DROPOUT: [0.0]
TRAIN:
  EPOCHS: 2
  WARMUP_EPOCHS: 0
  BASE_LR: 0.05
TASKS: [%s]
""" % (S, ", ".join(TASKS))
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(("PASS " if ok else "FAIL ") + name + (": " + detail if detail and not ok else ""))
    sys.stdout.flush()
    return ok


def train(run_dir, *opts):
    cmd = ["mpirun", "-np", "2", "--oversubscribe", DIST, "--config", os.path.join(WORK, "tiny.yaml"),
           "--data", os.path.join(WORK, "shards"), "--quiet", "--opts", "RUN.DIR", run_dir, *opts]
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    return p.returncode, p.stdout + p.stderr


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    with open(os.path.join(WORK, "tiny.yaml"), "w") as f:
        f.write(CFG)
    src, shards = os.path.join(WORK, "src"), os.path.join(WORK, "shards")
    for args in (["--synthetic", "24", src, "--min-side", "40", "--max-side", "72", "--quiet"],
                 [src, shards, "--split", "train", "--quiet"], [src, shards, "--split", "val", "--quiet"]):
        subprocess.run([PACK, *args], check=True)
    val = open(os.path.join(src, "ImageSets", "Context", "val.txt")).read().split()
    assert len(val) >= 4, val

    run = os.path.join(WORK, "run")
    rc, log = train(run, "RUN.EVAL_EVERY", "1", "RUN.EVAL_PREVIEW", "2")
    check("training with RUN.EVAL_PREVIEW 2: exit 0", rc == 0, log[-2000:])
    with open(os.path.join(run, "eval.csv")) as f:
        steps = [int(r["eval_step"]) for r in csv.DictReader(f)]
    pdir = os.path.join(run, "preview")
    got = sorted(os.listdir(pdir)) if os.path.isdir(pdir) else []
    want = ["step-%06d" % s for s in steps]
    check("one preview folder per evaluation (%s)" % ", ".join(want), len(steps) == 2 and got == want,
          "%s vs %s" % (got, want))
    ids = [val[0], val[2]]  # rank 0's first two records
    for step in want:
        d = os.path.join(pdir, step)
        names = sorted(os.listdir(d)) if os.path.isdir(d) else []
        check("%s: the panels and folders of rank 0's first 2 images %s, none of rank 1's" % (step, ids),
              names == sorted([i + ".png" for i in ids] + ids), str(names))
        for i in ids:
            p = os.path.join(d, i + ".png")
            if not os.path.exists(p):
                continue
            P = np.array(Image.open(p).convert("RGB"))
            T = len(TASKS)
            check("%s/%s.png: %dx%d, the input and %d tasks" % (step, i, P.shape[1], P.shape[0], T),
                  P.shape == (S, (T + 1) * S + 4 * T, 3), str(P.shape))
            img = np.array(Image.open(os.path.join(src, "JPEGImages", i + ".jpg")).convert("RGB")).astype(float)
            x = official({"image": img}, S, None)["image"]
            u = np.rint((x * np.array(STD)[:, None, None] + np.array(MEAN)[:, None, None]) * 255)
            u = np.clip(u, 0, 255).astype(np.uint8).transpose(1, 2, 0)
            check("%s/%s.png: tile 0 is the validation input as the model saw it" % (step, i),
                  np.array_equal(P[:, :S], u), "max diff %d" % np.abs(P[:, :S].astype(int) - u).max())
            files = sorted(os.listdir(os.path.join(d, i)))
            check("%s/%s/: each task's files" % (step, i),
                  files == sorted(["semseg.png", "semseg_labels.png", "human_parts.png", "human_parts_labels.png",
                                   "sal.png", "sal_mask.png", "normals.png"]), str(files))

    # a write error: reported once, the run goes on and succeeds
    bad = os.path.join(WORK, "bad")
    os.makedirs(bad)
    open(os.path.join(bad, "preview"), "w").write("in the way\n")
    rc, log = train(bad, "RUN.EVAL_EVERY", "1", "RUN.EVAL_PREVIEW", "2")
    n = log.count("RUN.EVAL_PREVIEW")
    check("RUN.DIR/preview is a file: the run succeeds, the error is reported once (%d evaluations)" % 2,
          rc == 0 and n == 1 and os.path.exists(os.path.join(bad, "eval.csv")), "rc %d, %d reports\n%s" % (rc, n, log[-1500:]))

    off = os.path.join(WORK, "off")
    rc, log = train(off, "RUN.EVAL_EVERY", "1")
    check("RUN.EVAL_PREVIEW 0 (the default): no preview folder", rc == 0 and not os.path.exists(os.path.join(off, "preview")),
          log[-800:])
    rc, log = train(off, "RUN.EVAL_PREVIEW", "-1")
    check("RUN.EVAL_PREVIEW -1: refused (2), the key named", rc == 2 and "RUN.EVAL_PREVIEW" in log, log[-800:])

    print("%d passed, %d failed" % (sum(results), len(results) - sum(results)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
