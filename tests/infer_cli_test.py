"""End-to-end test of mtlora-infer against the PyTorch reference cases.

    infer_cli_test.py MTLORA_INFER MODEL_CASES_DIR WORK_DIR

For every reference case: writes the images and targets to HDF5, runs
`--output` (evaluation mode, BatchNorm running statistics) and `--grad`
(training mode) and compares logits, loss and every gradient with the
reference; then checks that bad input is refused with a clear message and
the right exit status. Prints 'N passed, M failed'.
"""
import json
import os
import struct
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
from bundle import read_safetensors  # noqa: E402

INFER, CASES, WORK = sys.argv[1:4]
os.makedirs(WORK, exist_ok=True)
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + name + (": " + detail if detail else ""))


def read_bundle(path):
    d = open(path, "rb").read()
    (count,) = struct.unpack("<I", d[8:12])
    o, out = 12, {}
    for _ in range(count):
        (n,) = struct.unpack("<I", d[o:o + 4]); o += 4
        name = d[o:o + n].decode(); o += n
        (nd,) = struct.unpack("<I", d[o:o + 4]); o += 4
        dims = struct.unpack("<%dq" % nd, d[o:o + 8 * nd]); o += 8 * nd
        c = int(np.prod(dims)) if nd else 1
        out[name] = np.frombuffer(d[o:o + 4 * c], dtype=np.float32).reshape(dims); o += 4 * c
    return out


def run(args):
    p = subprocess.run([INFER] + args, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


for case in sorted(os.listdir(CASES)):
    cdir = os.path.join(CASES, case)
    if not os.path.exists(os.path.join(cdir, "case.bin")):
        continue
    b = read_bundle(os.path.join(cdir, "case.bin"))
    tasks = [k[len("logits_"):] for k in b if k.startswith("logits_")]
    img = os.path.join(WORK, case + "_images.h5")
    with h5py.File(img, "w") as f:
        f["images"] = b["images"]
    tgt = os.path.join(WORK, case + "_targets.h5")
    with h5py.File(tgt, "w") as f:
        for t in tasks:
            v = b["target_" + t]
            if t in ("semseg", "human_parts"):
                f[t] = v.astype(np.uint8)          # integer labels
            elif v.ndim == 4 and v.shape[1] == 1:
                f[t] = v[:, 0]                     # N x S x S
            else:
                f[t] = v
    cfg, w = os.path.join(cdir, "config.yaml"), os.path.join(cdir, "weights.safetensors")
    out = os.path.join(WORK, case + "_out.h5")
    rc, log = run(["--config", cfg, "--weights", w, "--input", img, "--output", out, "--batch", "1"])
    check(case + " --output runs", rc == 0 and os.path.exists(out), log.strip()[-300:])
    if rc == 0:
        with h5py.File(out, "r") as f:
            for t in tasks:
                e = rel(f[t][()], b["eval_logits_" + t])
                check("%s eval logits %s (max rel err %.2e)" % (case, t, e), e <= 1e-4)
    gout = os.path.join(WORK, case + "_grads.safetensors")
    rc, log = run(["--config", cfg, "--weights", w, "--input", img, "--grad", tgt, "--grad-output", gout])
    check(case + " --grad runs", rc == 0, log.strip()[-300:])
    if rc == 0:
        ours, ref = read_safetensors(gout), read_safetensors(os.path.join(cdir, "grads.safetensors"))
        with open(gout, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            meta = json.loads(f.read(n))["__metadata__"]
        le = abs(float(meta["loss"]) - float(b["loss_total"][0])) / abs(float(b["loss_total"][0]))
        check("%s loss (rel err %.2e)" % (case, le), le <= 1e-4)
        gmax = max(float(np.abs(v).max()) for v in ref.values())
        worst = max(float(np.abs(ours[k] - v).max()) / max(float(np.abs(v).max()), 1e-3 * gmax)
                    for k, v in ref.items())
        check("%s gradients by name (worst %.2e)" % (case, worst), worst <= 1e-3 and set(ref) <= set(ours))

# ---- refusals ---------------------------------------------------------------
c4 = os.path.join(CASES, "mtlora4")
cfg, w = os.path.join(c4, "config.yaml"), os.path.join(c4, "weights.safetensors")
img = os.path.join(WORK, "mtlora4_images.h5")
rc, log = run(["--config", cfg, "--opts", "MODEL.SWIN.NO_SUCH_KEY", "1", "--stats"])
check("unknown --opts key refused by name", rc == 2 and "MODEL.SWIN.NO_SUCH_KEY" in log, log.strip())
bad = os.path.join(WORK, "bad.yaml")
open(bad, "w").write("MODEL:\n  SWIN:\n    EMBED_DIM: lots\n")
rc, log = run(["--config", bad, "--stats"])
check("bad config value refused by name", rc == 2 and "MODEL.SWIN.EMBED_DIM" in log, log.strip())
rc, log = run(["--config", cfg, "--opts", "DATA.IMG_SIZE", "60", "--stats"])
check("image size not divisible refused", rc == 2 and "IMG_SIZE" in log, log.strip())
rc, log = run(["--config", cfg, "--weights", w, "--input", img, "--grad", img, "--grad-output",
               os.path.join(WORK, "x.safetensors")])
check("targets file without task datasets refused", rc == 1 and "no dataset" in log, log.strip())
empty = os.path.join(WORK, "noimages.h5")
with h5py.File(empty, "w") as f:
    f["pictures"] = np.zeros((1, 3, 64, 64), np.float32)
rc, log = run(["--config", cfg, "--input", empty, "--output", os.path.join(WORK, "o.h5")])
check("input without /images refused", rc == 1 and "images" in log, log.strip())
wrong = os.path.join(WORK, "wrongsize.h5")
with h5py.File(wrong, "w") as f:
    f["images"] = np.zeros((1, 3, 32, 32), np.float32)
rc, log = run(["--config", cfg, "--input", wrong, "--output", os.path.join(WORK, "o.h5")])
check("wrongly sized images refused", rc == 1 and "N x 3 x 64 x 64" in log, log.strip())
trunc = os.path.join(WORK, "trunc.safetensors")
data = open(w, "rb").read()
open(trunc, "wb").write(data[: len(data) // 2])
rc, log = run(["--config", cfg, "--weights", trunc, "--stats"])
check("truncated weights refused", rc == 1 and "truncated" in log, log.strip())
rc, log = run(["--config", cfg, "--weights", os.path.join(CASES, "full_ft", "weights.safetensors"), "--stats"])
check("weights of another model listed by name", rc == 1 and "missing" in log and "wrongly shaped" in log,
      log.strip()[:300])
rc, log = run(["--stats", "--output", "x.h5"])
check("conflicting modes refused", rc == 2, log.strip()[:200])
print("%d passed, %d failed" % (sum(results), len(results) - sum(results)))
sys.exit(0 if all(results) else 1)
