#!/usr/bin/env python3
"""Trains every adapter kind and baseline on the same synthetic PASCAL-Context
set, with the same steps, data order and seed, on the same number of MPI
ranks, and prints the comparison table of docs/adapters.md (Markdown).

    bench/compare_adapters.py [--ranks 2] [--epochs 20] [--work runs/compare]
                              [--build build] [--kinds mtlora,lora,...]

Needs the build (launch/setup or cmake) and Open MPI; nothing else (Python's
standard library only). Each run is launch/quickstart.yaml (a small Swin at
128x128, four tasks) with MODEL.ADAPTER.KIND set, trained with --bench so
that mtlora_dist prints what it allreduces and its throughput, and evaluated
on the validation shards at the end. Delta_m is taken against the full
fine-tuning run of the same table (RUN.STL_BASELINES = its scores), since
single-task baselines on the synthetic set do not exist; the published
Swin-T baselines are for real PASCAL-Context only.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ["full_ft", "mtlora", "lora", "mtl_lora", "cgc_lora", "decoders_only"]
TASK_METRIC = [("semseg", "semseg mIoU", 100.0), ("human_parts", "human_parts mIoU", 100.0),
               ("sal", "sal mIoU", 100.0), ("normals", "normals mean", 1.0)]


def run(cmd, env=None, log=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if log:
        with open(log, "w") as f:
            f.write(p.stdout + p.stderr)
    if p.returncode:
        sys.exit("compare_adapters: %s failed (exit %d)\n%s%s" % (" ".join(cmd), p.returncode,
                                                                 p.stdout[-3000:], p.stderr[-3000:]))
    return p.stdout + p.stderr


def prepare_data(build, work):
    src, shards = os.path.join(work, "pascal"), os.path.join(work, "shards")
    pack = os.path.join(build, "mtlora-pack")
    if not os.path.exists(os.path.join(src, "ImageSets", "Context", "train.txt")):
        run([pack, "--synthetic", "160", src, "--min-side", "128", "--max-side", "200", "--quiet"])
    for split in ("train", "val"):
        run([pack, src, shards, "--split", split, "--quiet"])
    run([pack, "--verify", shards])
    return shards


def train(build, shards, work, kind, ranks, epochs, stl):
    run_dir = os.path.join(work, kind)
    flags = ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    threads = max(1, (os.cpu_count() or ranks) // ranks)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    opts = ["MODEL.ADAPTER.KIND", kind, "RUN.DIR", run_dir, "TRAIN.EPOCHS", str(epochs),
            "TRAIN.WARMUP_EPOCHS", str(min(2, epochs - 1)),
            "RUN.EVAL_EVERY", "0", "RUN.CHECKPOINT_EVERY", "0", "SEED", "0"]
    if stl:
        opts += ["RUN.STL_BASELINES", "[%s]" % ", ".join("%.9g" % v for v in stl)]
    cmd = ["mpirun", "-np", str(ranks), *flags, os.path.join(build, "mtlora_dist"), "--config",
           os.path.join(ROOT, "launch", "quickstart.yaml"), "--data", shards, "--quiet", "--bench",
           "--opts", *opts]
    t0 = time.time()
    os.makedirs(run_dir, exist_ok=True)
    out = run(cmd, env, os.path.join(run_dir, "compare.log"))
    wall = time.time() - t0
    m = re.search(r"allreduced per step (\d+) bytes = 4 x (\d+) trainable", out)
    ips = re.search(r"bench: ([0-9.]+) images/s", out)
    if not m or not ips:
        sys.exit("compare_adapters: no --bench lines from %s:\n%s" % (kind, out[-3000:]))
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        recs = [json.loads(l) for l in f if l.strip()]
    ev = [r for r in recs if "eval_step" in r]
    if not ev:
        sys.exit("compare_adapters: %s has no evaluation record" % kind)
    steps = [r for r in recs if "step" in r and "loss" in r]
    return {"kind": kind, "bytes": int(m.group(1)), "trainable": int(m.group(2)),
            "images_per_s": float(ips.group(1)), "eval": ev[-1], "wall_s": wall,
            "steps": steps[-1]["step"] if steps else 0,
            "final_loss": steps[-1]["loss"] if steps else float("nan")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "compare"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--kinds", default=",".join(KINDS),
                    help="comma-separated; full_ft first when given (it is the Delta_m reference)")
    a = ap.parse_args()
    kinds = a.kinds.split(",")
    for k in kinds:
        if k not in KINDS:
            sys.exit("compare_adapters: --kinds: unknown kind '%s' (known: %s)" % (k, ", ".join(KINDS)))
    os.makedirs(a.work, exist_ok=True)
    shards = prepare_data(a.build, a.work)
    results, stl = [], None
    for k in kinds:
        print("compare_adapters: training %s ..." % k, file=sys.stderr, flush=True)
        r = train(a.build, shards, a.work, k, a.ranks, a.epochs, stl)
        if k == "full_ft":
            stl = [r["eval"][key] for _, key, _ in TASK_METRIC]
            r["eval"]["delta_m"] = 0.0
        results.append(r)
        print("compare_adapters: %s done in %.0f s" % (k, r["wall_s"]), file=sys.stderr, flush=True)
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    head = ("| kind | trainable values | bytes allreduced / step | images/s | semseg mIoU | "
            "parts mIoU | sal mIoU | normals mean (deg) | Delta_m vs full FT (%) | final loss |")
    print(head)
    print("|" + " --- |" * 10)
    for r in results:
        ev = r["eval"]
        dm = ev.get("delta_m")
        cells = [r["kind"], "{:,}".format(r["trainable"]), "{:,}".format(r["bytes"]),
                 "%.1f" % r["images_per_s"]]
        cells += ["%.2f" % (ev[key] * scale) for _, key, scale in TASK_METRIC]
        cells.append("n/a" if dm is None or stl is None else "%+.2f" % (100.0 * dm))
        cells.append("%.3f" % r["final_loss"])
        print("| " + " | ".join(cells) + " |")
    print("\n%d ranks x %d thread(s), %d epochs (%d steps) each, launch/quickstart.yaml, "
          "160 synthetic scenes (128 train / 32 val), seed 0." %
          (a.ranks, max(1, (os.cpu_count() or a.ranks) // a.ranks), a.epochs, results[0]["steps"]))


if __name__ == "__main__":
    main()
