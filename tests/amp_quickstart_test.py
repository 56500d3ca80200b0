"""AMP against f32 on the quick-start job (ctest `amp_quickstart`, label
slow: about 10 minutes on 2 cores, outside the default run).

The quick-start data and config (launch/quickstart.yaml: a small Swin with
MTLoRA on 160 synthetic 128x128 scenes, four tasks, 20 epochs) trained twice
with the same seed, once with AMP (AMP_ENABLE True, AMP.MATMUL bf16) and
once in f32 (AMP_ENABLE False). Gates (issue 13): the final Delta_m within
2 points, and the loss curves within 5% at the end (mean of the last five
logged losses). Skipped (exit 77) where oneDNN has no bf16 matmul.

    amp_quickstart_test.py MTLORA_DIST MTLORA_PACK REPO_ROOT WORKDIR
"""
import json
import os
import shutil
import subprocess
import sys

DIST, PACK, ROOT, WORK = sys.argv[1:5]
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMP_NUM_THREADS="1", OMPI_MCA_rmaps_base_oversubscribe="1")


def train(name, amp, shards):
    run_dir = os.path.join(WORK, name)
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = ["mpirun", "-np", "2", "--oversubscribe", DIST, "--config",
           os.path.join(ROOT, "launch", "quickstart.yaml"), "--data", shards, "--quiet",
           "--opts", "RUN.DIR", run_dir, "AMP_ENABLE", "True" if amp else "False",
           "AMP.MATMUL", "bf16", "RUN.CHECKPOINT_EVERY", "0"]
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=3000)
    if p.returncode:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        recs = [json.loads(l) for l in f if l.strip()]
    losses = [r["loss"] for r in recs if "loss" in r]
    evals = [r for r in recs if "eval_step" in r]
    return losses, evals, p.stdout


def main():
    os.makedirs(WORK, exist_ok=True)
    src, shards = os.path.join(WORK, "pascal"), os.path.join(WORK, "shards")
    if not os.path.isdir(shards):
        subprocess.run([PACK, "--synthetic", "160", src, "--min-side", "128", "--max-side", "200",
                        "--quiet"], check=True)
        for split in ("train", "val"):
            subprocess.run([PACK, src, shards, "--split", split, "--quiet"], check=True)
    amp_losses, amp_evals, amp_out = train("amp", True, shards)
    if "bf16 with f32 accumulation" not in amp_out and "precision" in amp_out:
        print("amp_quickstart: bf16 did not run here (%s): skipped" %
              [l for l in amp_out.splitlines() if "precision" in l])
        sys.exit(77)
    f32_losses, f32_evals, _ = train("f32", False, shards)
    assert len(amp_losses) == len(f32_losses) >= 5, (len(amp_losses), len(f32_losses))
    la, lf = sum(amp_losses[-5:]) / 5, sum(f32_losses[-5:]) / 5
    curve = max(abs(a - b) / abs(b) for a, b in zip(amp_losses, f32_losses))
    # delta_m is logged as a fraction (docs/metrics.md); the gate is in points
    dm_a, dm_f = 100 * amp_evals[-1]["delta_m"], 100 * f32_evals[-1]["delta_m"]
    print("quick start, 20 epochs: final loss (mean of last 5 logs) AMP %.4f f32 %.4f, "
          "relative %.2f%% (gate 5%%); largest relative gap along the curve %.2f%%" %
          (la, lf, 100 * abs(la - lf) / lf, 100 * curve))
    print("final Delta_m: AMP %.2f f32 %.2f, difference %.2f points (gate 2)" %
          (dm_a, dm_f, abs(dm_a - dm_f)))
    for k in sorted(amp_evals[-1]):
        if " " in k:
            print("  %-20s AMP %8.3f  f32 %8.3f" % (k, amp_evals[-1][k], f32_evals[-1][k]))
    assert abs(la - lf) <= 0.05 * abs(lf), (la, lf)
    assert abs(dm_a - dm_f) <= 2.0, (dm_a, dm_f)
    print("passed")


if __name__ == "__main__":
    main()
