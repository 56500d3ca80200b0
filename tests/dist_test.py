"""mtlora_dist under mpirun (ctest `dist_equivalence`, `dist_cli`):

1. Equivalence (as PyTorch DDP's _test_DDP_niter): 2 ranks with batch b end
   with the same trainable values as 1 rank with batch 2b after several
   steps (synthetic batches with every label valid, dropout and drop path
   off, synchronised batch norm, LR without linear scaling), in f32 (AMP
   off); in bf16 (AMP.MATMUL bf16) within bf16 rounding; and 16 ranks
   (oversubscribed) x batch 1 as 1 rank x batch 16, in f32 and in bf16.
2. Distributed evaluation: 1, 2 and 3 ranks report the same scores.
3. Learning: 2 ranks on packed synthetic shards, the loss falls and the
   validation metrics improve.
3b. Checkpoints: stop (SIGUSR1, as SLURM sends before the time limit) and
   `--resume auto` end bit-identical to an uninterrupted run, also when the
   newest checkpoint is corrupt (the previous one is used).
4. Bad configuration: exit 2 with the key named, on every rank, no hang.

    dist_test.py MTLORA_DIST MTLORA_PACK CONFIG WORKDIR
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
from bundle import read_safetensors  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpi_env import mpi_env  # noqa: E402

DIST, PACK, CONFIG, WORK = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
# without LeakSanitizer in the ranks (mpi_env.py says why); world_resize_test,
# which imports this file, puts the leak checks back
ENV = mpi_env(leak_check=False)


def mpirun(n, *args, expect=0, timeout=300):
    cmd = ["mpirun", "-np", str(n), "--oversubscribe", DIST, "--config", CONFIG, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout)
    if p.returncode != expect:
        raise AssertionError("%s: exit %d (expected %d)\n%s%s" % (" ".join(cmd), p.returncode, expect,
                                                                 p.stdout, p.stderr))
    return p.stdout + p.stderr


# Conv biases right before a BatchNorm have a gradient that is zero in exact
# arithmetic (the batch mean removes them); AdamW divides their rounding
# noise by its own square root and takes full steps, so they, and the running
# means that absorb them, differ between any two float orderings.
def noise_driven(name):
    return name.endswith("last_layer.0.bias") or name.endswith("last_layer.1.running_mean")


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    # AMP off: the 1e-3 bound below is float-ordering noise in f32; with bf16
    # matmuls (AMP's default where the CPU has them) a different split of the
    # batch rounds other activations to bf16, 2.8e-3 here (check_bf16).
    common = ["--synthetic-data", "--steps", "6", "--quiet", "--opts", "TRAIN.WARMUP_EPOCHS", "0",
              "RUN.LR_SCALING", "False", "RUN.SYNC_BN", "True", "AMP_ENABLE", "False"]
    one, two = os.path.join(WORK, "one.safetensors"), os.path.join(WORK, "two.safetensors")
    mpirun(1, *common, "DATA.BATCH_SIZE", "4", "--save-trainable", one)
    mpirun(2, *common, "DATA.BATCH_SIZE", "2", "--save-trainable", two)
    a, b = read_safetensors(one), read_safetensors(two)
    init = os.path.join(WORK, "init.safetensors")
    mpirun(1, "--synthetic-data", "--steps", "0", "--quiet", "--save-trainable", init)
    c = read_safetensors(init)
    worst, moved, compared = 0.0, 0, 0
    for k in a:
        if noise_driven(k):
            continue
        compared += 1
        scale = np.abs(a[k]).max() + 1e-12
        worst = max(worst, float(np.abs(a[k] - b[k]).max() / scale))
        moved += int(np.abs(a[k] - c[k]).max() > 1e-6)
    print("equivalence: %d tensors compared, %d moved by training, max rel diff 1 vs 2 ranks %.3g"
          % (compared, moved, worst))
    assert moved > compared // 2, "training hardly moved the parameters: the test would prove nothing"
    # 1e-3 as the accumulation and adapter-kind checks below: AdamW divides a
    # near-zero gradient's rounding noise by its own square root, so single
    # elements move by float-ordering noise (on an AMD EPYC with oneDNN's
    # AVX-512 kernels one element of a LoRA A reaches 4.3e-4 of its tensor's
    # maximum after 6 steps); a wrong reduction differs by O(1).
    assert worst < 1e-3, "2 ranks x batch 2 differ from 1 rank x batch 4: %g" % worst

    # gradient accumulation (summed over micro-batches as the official loop,
    # reduced once per update): 2 ranks x batch 2 x 2 micro-batches equal
    # 1 rank x batch 4 x 2 micro-batches, in f32 as above (`common` has AMP
    # off). Two updates: AdamW turns rounding differences in near-zero
    # gradients (zero-initialised LoRA B) into sign flips that grow with
    # every further step.
    two_steps = [x if x != "6" else "2" for x in common]
    acc1, acc2, noacc = (os.path.join(WORK, n + ".safetensors") for n in ("acc1", "acc2", "noacc"))
    mpirun(1, *two_steps, "DATA.BATCH_SIZE", "4", "TRAIN.ACCUMULATION_STEPS", "2", "--save-trainable", acc1)
    mpirun(2, *two_steps, "DATA.BATCH_SIZE", "2", "TRAIN.ACCUMULATION_STEPS", "2", "--save-trainable", acc2)
    mpirun(1, *two_steps, "DATA.BATCH_SIZE", "4", "--save-trainable", noacc)
    a2, b2, n2 = read_safetensors(acc1), read_safetensors(acc2), read_safetensors(noacc)
    rel = lambda x, y, k: float(np.abs(x[k] - y[k]).max() / (np.abs(x[k]).max() + 1e-12))  # noqa: E731
    worst_acc = max(rel(a2, b2, k) for k in a2 if not noise_driven(k))
    differs = max(rel(a2, n2, k) for k in a2 if not noise_driven(k))
    print("accumulation: 2 ranks x 2 x 2 vs 1 rank x 4 x 2 after 2 updates: max rel diff %.3g "
          "(%.3g from the run without accumulation)" % (worst_acc, differs))
    assert worst_acc < 1e-3, worst_acc
    assert differs > 1e-2, "accumulation had no effect"

    check_bf16_and_scaling(init)
    check_adapter_kinds()
    check_pretrained()
    shards = pack_synthetic()
    check_distributed_evaluation(shards)
    check_learning(shards)
    check_resume(shards)
    check_faults()
    check_reporting()

    out = mpirun(2, "--synthetic-data", "--opts", "RUN.BUCKET_MB", "0", expect=2)
    assert "RUN.BUCKET_MB" in out, out
    out = mpirun(2, "--synthetic-data", "--opts", "TRAIN.NOT_A_KEY", "1", expect=2)
    assert "TRAIN.NOT_A_KEY" in out, out
    out = mpirun(2, "--config-typo", expect=2)
    assert "--config-typo" in out, out
    print("dist_test: all checks passed")


TASKS4 = "[semseg, human_parts, sal, normals]"


def precision_note(out):
    """rank 0's `mtlora_dist: precision: ...` line (printed without --quiet)"""
    lines = [l for l in out.splitlines() if l.startswith("mtlora_dist: precision:")]
    assert len(lines) == 1, "expected one precision line from rank 0:\n" + out
    return lines[0]


def compare_runs(x, y, init):
    """(worst element over its tensor's maximum, as main(); the whole trainable
    set's difference over how far training moved it from init)"""
    a, b, c = read_safetensors(x), read_safetensors(y), read_safetensors(init)
    keys = [k for k in a if not noise_driven(k)]
    worst = max(float(np.abs(a[k] - b[k]).max() / (np.abs(a[k]).max() + 1e-12)) for k in keys)
    sq = lambda d: sum(float(np.sum(np.square(d[k].astype(np.float64)))) for k in keys)  # noqa: E731
    diff = np.sqrt(sq({k: a[k] - b[k] for k in keys}) / sq({k: a[k] - c[k] for k in keys}))
    return worst, float(diff)


def check_bf16_and_scaling(init):
    """bf16 matmuls (AMP.MATMUL bf16) keep N ranks x batch b equal to 1 rank x
    batch Nb, within bf16 rounding; and 16 ranks (oversubscribed, one thread
    each) x batch 1 equal 1 rank x batch 16 after 4 steps, in f32 under
    main()'s bound and in bf16 under the bf16 one.

    AdamW's eps is 1e-3 here (1e-8 by default): with 1e-8 the first update
    of every element is +-LR whatever its gradient's size, so elements whose
    gradient is rounding noise take full steps of random sign and the
    trajectories part; over seeds 0-5 the f32 worst element reached 1.3e-2
    at 2 ranks and 0.23 at 16 (bf16: 0.25 and 0.46). With 1e-3 a gradient
    far below eps moves its element in proportion, so noise stays noise (f32,
    16 ranks, seeds 0-5: at most 2.9e-4); and the update is no longer blind
    to the gradient's scale, so a sum reduced as a mean would show.

    bf16 is judged on the whole trainable set: |one - many| / |one - init|
    over all tensors. A single element still flips with a bf16 rounding of
    its inputs (worst element over seeds 0-5, eps 1e-3: 1.6e-2 at 2 ranks x 6
    steps, 0.10 at 16 ranks x 4 steps), but the set moves together: at most
    7.8e-4 (2 ranks) and 1.27e-2 (16 ranks) over the seeds, 3.6e-6 and
    1.7e-3 at seed 0 here (AMX). The bounds, 5e-3 and 5e-2, are 4-6x those;
    16 ranks without the allreduce (1 rank x batch 1) measure 0.77."""
    import time
    t0 = time.time()
    base = ["--synthetic-data", "--opts", "TRAIN.WARMUP_EPOCHS", "0", "RUN.LR_SCALING", "False",
            "RUN.SYNC_BN", "True", "TRAIN.OPTIMIZER.EPS", "1e-3"]
    f32, bf16 = ["AMP_ENABLE", "False"], ["AMP_ENABLE", "True", "AMP.MATMUL", "bf16"]

    def pair(n, b, steps, amp, tag):
        one, many = (os.path.join(WORK, "%s_%d.safetensors" % (tag, k)) for k in (1, n))
        opts = ["--steps", str(steps), *base, *amp]
        notes = [precision_note(mpirun(1, *opts, "DATA.BATCH_SIZE", str(n * b), "--save-trainable", one)),
                 precision_note(mpirun(n, *opts, "DATA.BATCH_SIZE", str(b), "--save-trainable", many))]
        return compare_runs(one, many, init), notes, one

    # 2 ranks x batch 2 in bf16 (main()'s pair, 6 steps)
    (worst2, diff2), notes, _ = pair(2, 2, 6, bf16, "bf16x2")
    have_bf16 = all("in bf16 with f32 accumulation" in n for n in notes)
    if have_bf16:
        print("bf16: 2 ranks x batch 2 vs 1 rank x batch 4 after 6 steps: set diff %.3g (bound 5e-3), "
              "worst element %.3g (not bounded)" % (diff2, worst2))
        assert diff2 < 5e-3, "bf16: 2 ranks x batch 2 differ from 1 rank x batch 4: %g" % diff2
    else:  # no bf16 matmul on this CPU: the runs were f32, nothing bf16 to check
        print("bf16: SKIPPED, this CPU ran f32 (%s)" % notes[0])

    # 16 ranks x batch 1 against 1 rank x batch 16, f32
    (worst16, diff16), notes, one16 = pair(16, 1, 4, f32, "f32x16")
    assert all("AMP off" in n for n in notes), notes
    print("scaling f32: 16 ranks x batch 1 vs 1 rank x batch 16 after 4 steps: worst element %.3g "
          "(bound 1e-3), set diff %.3g" % (worst16, diff16))
    assert worst16 < 1e-3, "16 ranks x batch 1 differ from 1 rank x batch 16: %g" % worst16
    # the control: what 16 ranks would give without the allreduce
    alone = os.path.join(WORK, "f32x16_alone.safetensors")
    mpirun(1, "--steps", "4", "--quiet", *base, *f32, "DATA.BATCH_SIZE", "1", "--save-trainable", alone)
    ctrl_worst, ctrl_diff = compare_runs(one16, alone, init)
    print("scaling control: 1 rank x batch 1 vs 1 rank x batch 16: worst element %.3g, set diff %.3g"
          % (ctrl_worst, ctrl_diff))
    assert ctrl_diff > 0.25 and ctrl_worst > 1e-1, "the comparison cannot tell a missing allreduce"
    if have_bf16:
        (worst16b, diff16b), notes, _ = pair(16, 1, 4, bf16, "bf16x16")
        assert all("in bf16 with f32 accumulation" in n for n in notes), notes
        print("scaling bf16: 16 ranks x batch 1 vs 1 rank x batch 16 after 4 steps: set diff %.3g "
              "(bound 5e-2), worst element %.3g (not bounded)" % (diff16b, worst16b))
        assert diff16b < 5e-2, "bf16: 16 ranks x batch 1 differ from 1 rank x batch 16: %g" % diff16b
    # the official flags: --disable_amp is AMP_ENABLE False, --use-checkpoint
    # recomputes activations and changes no number (f32)
    plain, ckpt = (os.path.join(WORK, "flags_%s.safetensors" % k) for k in ("plain", "ckpt"))
    out = mpirun(2, "--steps", "2", *base, "DATA.BATCH_SIZE", "1", "--disable_amp",
                 "--save-trainable", plain)
    assert "AMP off" in precision_note(out), precision_note(out)
    mpirun(2, "--steps", "2", *base, "DATA.BATCH_SIZE", "1", "--disable_amp", "--use-checkpoint",
           "--save-trainable", ckpt)
    a, b = read_safetensors(plain), read_safetensors(ckpt)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), \
        "--use-checkpoint changed the trained values"
    print("flags: --disable_amp runs f32; --use-checkpoint ends bit-identical (%d tensors)" % len(a))
    print("bf16 and 16-rank checks: %.1f s" % (time.time() - t0))


def check_adapter_kinds():
    """MTL-LoRA and CGC-LoRA train through mtlora_dist by config alone: their
    gradients (cgc's gate included) are allreduced like the rest (2 ranks x
    batch 2 equal 1 rank x batch 4), and a run resumed from a checkpoint ends
    bit-identical to an uninterrupted one."""
    # TAU 1: with the default 0.1 the mixture is so sharp that some of the
    # zero-initialised up-projections get gradients near rounding level, and
    # AdamW turns their rounding differences into full steps (as the conv
    # biases of noise_driven)
    for kind, extra in (("mtl_lora", ["MODEL.ADAPTER.FC2", "lora", "MODEL.ADAPTER.MTL_LORA.TAU", "1.0"]),
                        ("cgc_lora", ["MODEL.ADAPTER.CGC_LORA.GATE_DIM", "8"])):
        # AMP off: 1 rank against 2 under the f32 bound (as main()'s); the
        # resume below is bit-identical in bf16 too (check_resume runs in it)
        common = ["--synthetic-data", "--steps", "4", "--quiet", "--opts", "TRAIN.WARMUP_EPOCHS", "0",
                  "RUN.LR_SCALING", "False", "RUN.SYNC_BN", "True", "AMP_ENABLE", "False",
                  "MODEL.ADAPTER.KIND", kind,
                  "MODEL.ADAPTER.MTL_LORA.DROPOUT", "0", "MODEL.ADAPTER.CGC_LORA.DROPOUT", "0", *extra]
        one, two = (os.path.join(WORK, "%s_%d.safetensors" % (kind, n)) for n in (1, 2))
        mpirun(1, *common, "DATA.BATCH_SIZE", "4", "--save-trainable", one)
        mpirun(2, *common, "DATA.BATCH_SIZE", "2", "--save-trainable", two)
        a, b = read_safetensors(one), read_safetensors(two)
        adapter = [k for k in a if ("lora_" in k and "lora_shared" not in k)]
        assert adapter, "no %s tensors were trained" % kind
        worst = max(float(np.abs(a[k] - b[k]).max() / (np.abs(a[k]).max() + 1e-12))
                    for k in a if not noise_driven(k))
        assert worst < 2e-3, "%s: 2 ranks x batch 2 differ from 1 rank x batch 4: %g" % (kind, worst)
        # resume: a straight run of 8 steps against one resumed from step 4
        opts = [*common[:1], "--steps", "8", *common[4:], "DATA.BATCH_SIZE", "2",
                "RUN.CHECKPOINT_EVERY", "4"]
        a_dir, b_dir = (os.path.join(WORK, "%s_run%s" % (kind, x)) for x in "AB")
        a_file, b_file = (os.path.join(WORK, "%s_%s.safetensors" % (kind, x)) for x in "AB")
        mpirun(2, *opts, "RUN.DIR", a_dir, "--save-trainable", a_file)
        mpirun(2, *opts, "RUN.DIR", b_dir)
        for f in os.listdir(b_dir):  # forget everything after step 4
            if f.startswith("ckpt-") and int("".join(ch for ch in f if ch.isdigit()) or 0) > 4:
                os.remove(os.path.join(b_dir, f))
        out = mpirun(2, *opts, "RUN.DIR", b_dir, "--resume", "auto", "--save-trainable", b_file)
        assert "resuming from" in out, out
        assert open(a_file, "rb").read() == open(b_file, "rb").read(), \
            "%s: the resumed run differs from the uninterrupted one" % kind
        print("adapter kind %s: %d adapter tensors; 2 ranks vs 1 rank max rel diff %.3g; resumed from "
              "step 4, step 8 bit-identical" % (kind, len(adapter), worst))


def check_pretrained():
    """--pretrained: an ImageNet-style Swin file (plain names) read by the
    node's first rank initialises the encoder on every rank (frozen tensors
    through the shared window, trainable ones through the broadcast)."""
    from bundle import write_safetensors
    full, out = os.path.join(WORK, "seed9.safetensors"), os.path.join(WORK, "pre_out.safetensors")
    mpirun(1, "--synthetic-data", "--steps", "0", "--quiet", "--seed", "9", "--save-trainable", full)
    src = read_safetensors(full)
    plain = {}
    for k, v in src.items():
        if not k.startswith("backbone.") or "lora_" in k or v.dtype != np.float32:
            continue
        plain[k[len("backbone."):].replace(".linear.", ".")] = v
    pre = os.path.join(WORK, "swin_plain.safetensors")
    write_safetensors(pre, plain)
    d = os.path.join(WORK, "pre", "nested", "run")  # RUN.DIR's parents are created too
    mpirun(2, "--synthetic-data", "--steps", "2", "--quiet", "--pretrained", pre, "--opts",
           "DATA.BATCH_SIZE", "2", "RUN.DIR", d, "--save-trainable", out)
    assert os.path.exists(os.path.join(d, "config.yaml")), "nested RUN.DIR not created"
    got = read_safetensors(out)
    frozen_checked = 0
    for k, v in src.items():
        if k.startswith("backbone.") and "lora_" not in k and ".linear." in k:  # frozen encoder linears
            assert np.array_equal(got[k], v), k
            frozen_checked += 1
    init = read_safetensors(os.path.join(WORK, "init.safetensors"))  # seed 0, not the pretrained one
    assert not np.array_equal(init["backbone.layers.0.blocks.0.attn.qkv.linear.weight"],
                              got["backbone.layers.0.blocks.0.attn.qkv.linear.weight"])
    out_bad = mpirun(2, "--synthetic-data", "--steps", "1", "--pretrained", os.path.join(WORK, "missing.st"),
                     expect=1)
    assert "missing.st" in out_bad, out_bad
    print("pretrained: %d frozen encoder tensors read once per node equal the file after 2 steps on 2 ranks"
          % frozen_checked)


def check_reporting():
    """CSV beside the JSON lines; --metrics-url posts every record with the
    bearer token (never printed); a dead or slow endpoint does not stall
    training."""
    import http.server
    import threading
    import time
    got = []

    class Handler(http.server.BaseHTTPRequestHandler):
        delay = 0.0

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.append((self.headers.get("Authorization"), json.loads(body)))
            time.sleep(self.delay)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/metrics" % srv.server_address[1]
    env = dict(ENV, MTLORA_METRICS_TOKEN="s3cret-token")
    d = os.path.join(WORK, "report")
    base = ["mpirun", "-np", "2", "--oversubscribe", DIST, "--config", CONFIG, "--synthetic-data",
            "--steps", "6", "--opts", "DATA.BATCH_SIZE", "2", "RUN.LOG_EVERY", "2", "RUN.DIR"]
    p = subprocess.run(base + [d, "--metrics-url", url], capture_output=True, text=True, env=env, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "s3cret" not in out, "the token was printed"
    recs = records(d)
    assert len(got) == len(recs) == 3, (len(got), len(recs))
    assert all(a == "Bearer s3cret-token" for a, _ in got), got
    assert [r for _, r in got] == recs, "posted records differ from metrics.jsonl"
    rows = open(os.path.join(d, "metrics.csv")).read().splitlines()
    assert rows[0].startswith("step,epoch,lr,loss") and len(rows) == 4, rows
    # dead endpoint: training finishes, failures are counted
    t0 = time.time()
    p = subprocess.run(base + [os.path.join(WORK, "report2"), "--metrics-url", "http://127.0.0.1:9/x"],
                       capture_output=True, text=True, env=ENV, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "3 failed" in out, out
    dead_s = time.time() - t0
    # slow endpoint (3 s per request): the steps do not wait for it
    Handler.delay = 3.0
    t0 = time.time()
    p = subprocess.run(base + [os.path.join(WORK, "report3"), "--metrics-url", url], capture_output=True,
                       text=True, env=ENV, timeout=300)
    slow_s = time.time() - t0
    assert p.returncode == 0, p.stdout + p.stderr
    steps = [r["step_s_max"] for r in records(os.path.join(WORK, "report3"))]
    assert max(steps) < 1.0, steps
    srv.shutdown()
    print("reporting: %d records posted with the bearer token, equal to metrics.jsonl and metrics.csv; "
          "dead endpoint: run %.1f s, failures counted; slow endpoint (3 s/request): steps %.3f s max, "
          "run %.1f s" % (len(got), dead_s, max(steps), slow_s))


def check_faults():
    import signal
    import time
    base = ["--synthetic-data", "--opts", "DATA.BATCH_SIZE", "2", "RUN.LOG_EVERY", "1"]
    # non-finite gradients on one rank: every rank skips the same steps
    env = dict(ENV, MTLORA_FAULT_NAN="1:3:2")
    d = os.path.join(WORK, "nan")
    p = subprocess.run(["mpirun", "-np", "2", "--oversubscribe", DIST, "--config", CONFIG, *base,
                        "RUN.DIR", d, "--steps", "8"], capture_output=True, text=True, env=env, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "step 3: non-finite" in out and "step 4: non-finite" in out, out
    assert records(d)[-1]["skipped_steps"] == 2, records(d)[-1]
    # ... and stop after RUN.MAX_BAD_STEPS in a row
    env = dict(ENV, MTLORA_FAULT_NAN="0:2:10")
    p = subprocess.run(["mpirun", "-np", "2", "--oversubscribe", DIST, "--config", CONFIG, *base,
                        "RUN.DIR", d, "RUN.MAX_BAD_STEPS", "3", "--steps", "20"], capture_output=True,
                       text=True, env=env, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "3 non-finite steps in a row" in out, out
    # a hung rank: the others give up after RUN.STEP_TIMEOUT, naming themselves and where
    env = dict(ENV, MTLORA_FAULT_HANG="1:3")
    t0 = time.time()
    p = subprocess.run(["mpirun", "-np", "2", "--oversubscribe", DIST, "--config", CONFIG, *base,
                        "RUN.DIR", d, "RUN.STEP_TIMEOUT", "5", "--steps", "50"], capture_output=True,
                       text=True, env=env, timeout=120)
    hang_s = time.time() - t0
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "rank 0: no progress for" in out, out
    assert hang_s < 60, hang_s
    # a killed rank: mpirun ends the job and names the rank
    cmd = ["mpirun", "-np", "2", "--oversubscribe", DIST, "--config", CONFIG, *base, "RUN.DIR", d,
           "--steps", "100000"]
    q = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    for line in q.stdout:
        if line.startswith("step 3/"):
            break
    victim = None
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            env_b = open("/proc/%s/environ" % pid, "rb").read()
            cmdline = open("/proc/%s/cmdline" % pid, "rb").read()
        except OSError:
            continue
        if DIST.encode() in cmdline and b"OMPI_COMM_WORLD_RANK=1\0" in env_b:
            victim = int(pid)
    assert victim, "rank 1 not found"
    t0 = time.time()
    os.kill(victim, signal.SIGKILL)
    rest, _ = q.communicate(timeout=120)
    kill_s = time.time() - t0
    assert q.returncode != 0 and "rank 1" in rest, rest
    print("faults: NaN steps 3-4 on rank 1 skipped on both ranks (logged, counted); 3 in a row stop the "
          "run; a hung rank ends the job after %.1f s (timeout 5 s); a killed rank after %.1f s, named"
          % (hang_s, kill_s))


def check_resume(shards):
    import signal
    K = 160
    opts = ["--data", shards, "--opts", "DATA.BATCH_SIZE", "2", "TASKS", TASKS4, "TRAIN.EPOCHS", "100",
            "RUN.CHECKPOINT_EVERY", "20", "RUN.LOG_EVERY", "5"]
    a_dir, b_dir = os.path.join(WORK, "resumeA"), os.path.join(WORK, "resumeB")
    a_file, b_file = os.path.join(WORK, "A.safetensors"), os.path.join(WORK, "B.safetensors")
    mpirun(2, *opts, "RUN.DIR", a_dir, "--steps", str(K), "--quiet", "--save-trainable", a_file)
    cmd = ["mpirun", "-np", "2", "--oversubscribe", DIST, "--config", CONFIG, *opts, "RUN.DIR", b_dir,
           "--steps", str(K)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    lines = []
    for line in p.stdout:  # the first logged step, then the signal
        lines.append(line)
        if line.startswith("step 25/"):
            p.send_signal(signal.SIGUSR1)
            break
    rest, _ = p.communicate(timeout=120)
    out = "".join(lines) + rest
    assert p.returncode == 3, "expected exit 3 after the stop signal, got %d\n%s" % (p.returncode, out)
    stopped = [l for l in out.splitlines() if "checkpoint (stop signal)" in l]
    assert stopped, out
    at = int(stopped[0].split("after step ")[1].split(":")[0])
    assert 25 <= at < K, at
    # the newest checkpoint corrupt: resume must fall back to the previous one
    ckpts = sorted(f for f in os.listdir(b_dir) if f.startswith("ckpt-"))
    newest = os.path.join(b_dir, ckpts[-1])
    with open(newest, "r+b") as f:
        f.seek(os.path.getsize(newest) // 2)
        byte = f.read(1)
        f.seek(os.path.getsize(newest) // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    out = mpirun(2, *opts, "RUN.DIR", b_dir, "--steps", str(K), "--resume", "auto", "--save-trainable", b_file)
    assert "checksum mismatch" in out and "resuming from" in out, out
    assert open(a_file, "rb").read() == open(b_file, "rb").read(), "resumed run differs from the uninterrupted one"
    print("resume: stopped by SIGUSR1 after step %d (checkpoint written, exit 3); the newest checkpoint "
          "corrupted; resumed from %s; step %d bit-identical to the uninterrupted run"
          % (at, [l for l in out.splitlines() if "resuming from" in l][0].split("/")[-1], K))
    out = mpirun(2, *opts, "RUN.DIR", b_dir, "--resume", os.path.join(WORK, "nope.safetensors"), expect=1)
    assert "nope.safetensors" in out, out


def pack_synthetic():
    src, shards = os.path.join(WORK, "src"), os.path.join(WORK, "shards")
    for args in (["--synthetic", "40", src, "--min-side", "48", "--max-side", "96", "--quiet"],
                 [src, shards, "--split", "train", "--quiet"], [src, shards, "--split", "val", "--quiet"]):
        subprocess.run([PACK, *args], check=True)
    return shards


def records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(l) for l in f if l.strip()]


def check_distributed_evaluation(shards):
    scores = []
    for n in (1, 2, 3):
        d = os.path.join(WORK, "eval%d" % n)
        mpirun(n, "--data", shards, "--steps", "0", "--quiet", "--opts", "DATA.BATCH_SIZE", "1",
               "TASKS", TASKS4, "RUN.DIR", d)
        ev = [r for r in records(d) if "eval_step" in r]
        assert len(ev) == 1 and ev[0]["images"] == 8, ev
        scores.append({k: v for k, v in ev[0].items() if " " in k or k == "delta_m"})
    assert scores[0] == scores[1] == scores[2], scores
    print("evaluation: 1, 2 and 3 ranks give identical scores (%d values)" % len(scores[0]))


def check_learning(shards):
    d = os.path.join(WORK, "learn")
    opts = ["--data", shards, "--quiet", "--opts", "DATA.BATCH_SIZE", "4", "TASKS", TASKS4,
            "RUN.DIR", d, "RUN.LR_SCALING", "False", "TRAIN.BASE_LR", "0.003", "TRAIN.EPOCHS", "20",
            "TRAIN.WARMUP_EPOCHS", "1", "RUN.LOG_EVERY", "8", "RUN.EVAL_EVERY", "100"]
    mpirun(2, "--steps", "0", *opts)
    mpirun(2, *opts)
    recs = records(d)
    evals = [r for r in recs if "eval_step" in r]
    losses = [r["loss"] for r in recs if "loss" in r]
    first, last = evals[0], evals[-1]
    print("learning: loss %.3f -> %.3f; normals mean %.1f -> %.1f deg; sal maxF %.3f -> %.3f"
          % (losses[0], losses[-1], first["normals mean"], last["normals mean"],
             first["sal maxF"], last["sal maxF"]))
    assert losses[-1] < 0.7 * losses[0], losses
    assert last["normals mean"] < first["normals mean"] - 10, (first, last)
    assert last["sal maxF"] > first["sal maxF"], (first, last)


if __name__ == "__main__":
    main()
