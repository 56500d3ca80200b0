"""The official world's .pth files through mtlora's programs.

    pth_cli_test.py MTLORA_INFER MTLORA_EXPORT MODEL_CASES_DIR WORK_DIR MTLORA_DIST OFFICIAL_TSV

On the PyTorch reference cases (fixture model_cases), with files written by
Debian's torch.save:
- whole-model weights as an official-layout checkpoint ({'model': ...,
  'optimizer': a real AdamW state dict, 'lr_scheduler', 'scaler', 'epoch',
  'max_accuracy', 'config': a pickled object of a class the reader cannot
  import}), zip and legacy, and a bare state dict: `mtlora-infer --weights
  X.pth` gives logits bit-identical to the same weights in safetensors, for
  every adapter kind;
- the encoder as the Swin release lays it out (plain names, head.*, norm.*,
  relative_position_index, attn_mask, in 'model') and as timm's
  model.safetensors (downsample one stage later, head.fc, no index
  buffers): `--pretrained` of each gives the same logits, and a perturbed
  file gives other logits (the weights are really used);
- mtlora-export --output X.pth and --merge --output X.pth read back by
  torch.load(weights_only=True), tensor for tensor equal to the safetensors
  output; mtlora_dist --save-trainable X.pth of the default Swin-T 448 model
  holds under 'model' exactly the official state dict's 431 names and shapes
  (../shared/spec/official_state_dict_swin_t_448_r64.tsv: what the official
  main.py --resume X.pth --eval loads);
- a relative position bias table of another window size is refused with
  the explanation;
- refusals with a non-zero exit naming the file and what is wrong: a missing
  tensor, a wrong shape (both names, both shapes), a tar-format file, a
  truncated archive, a pickle that would run os.system (and it did not).
Prints 'N passed, M failed'.
"""
import argparse
import collections
import os
import subprocess
import sys
import tarfile

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import read_safetensors, write_safetensors  # noqa: E402
from mpi_env import mpi_env  # noqa: E402

INFER, EXPORT, CASES, WORK, DIST, OFFICIAL_TSV = sys.argv[1:7]
os.makedirs(WORK, exist_ok=True)
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(("PASS " if ok else "FAIL ") + name + (": " + detail if detail and not ok else ""))


def run(prog, args):
    p = subprocess.run([prog] + args, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def torch_sd(np_dict):
    return collections.OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in np_dict.items())


def images_for(case):
    """The case's images as the HDF5 input of mtlora-infer (from its bundle via h5)."""
    cdir = os.path.join(CASES, case)
    cfg = os.path.join(cdir, "config.yaml")
    img = os.path.join(WORK, case + "_images.h5")
    if not os.path.exists(img):
        rng = np.random.default_rng(3)
        size = None
        for line in open(cfg):
            s = line.strip()
            if s.startswith("IMG_SIZE:"):
                size = int(s.split(":")[1])
        with h5py.File(img, "w") as f:
            f["images"] = rng.standard_normal((2, 3, size, size)).astype(np.float32)
    return cfg, img


def logits(case, flag, path, tag):
    cfg, img = images_for(case)
    out = os.path.join(WORK, "%s_%s.h5" % (case, tag))
    rc, log = run(INFER, ["--config", cfg, flag, path, "--input", img, "--output", out, "--batch", "2"])
    if rc != 0:
        return None, log
    with h5py.File(out, "r") as f:
        return {k: f[k][()] for k in f}, log


def same(a, b):
    return a is not None and b is not None and a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) for k in a)


class CfgNode(dict):
    """Stands in for yacs.config.CfgNode: a class the reader cannot import."""


CfgNode.__module__ = "yacs.config"
sys.modules.setdefault("yacs", type(sys)("yacs"))
sys.modules.setdefault("yacs.config", type(sys)("yacs.config"))
sys.modules["yacs.config"].CfgNode = CfgNode


def official_checkpoint(sd):
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(lin.parameters(), lr=1e-3)
    lin(torch.ones(1, 3)).sum().backward()
    opt.step()
    cfg = CfgNode(MODEL=CfgNode(NAME="mtlora"), TRAIN=CfgNode(EPOCHS=300))
    return {"model": sd, "optimizer": opt.state_dict(),
            "lr_scheduler": {"last_epoch": 3, "base_lrs": [1e-3]}, "scaler": {"scale": 65536.0},
            "epoch": 3, "max_accuracy": 0.5, "config": cfg,
            "args": argparse.Namespace(cfg="x.yaml", batch_size=32)}


# ---- whole-model weights: official checkpoint, legacy, bare -------------------
for case in ("mtlora4", "lora", "mtl_lora", "cgc_lora", "decoders_only"):
    w = os.path.join(CASES, case, "weights.safetensors")
    if not os.path.exists(w):
        continue
    ref, log = logits(case, "--weights", w, "st")
    check(case + " safetensors logits", ref is not None, log[-300:])
    sd = torch_sd(read_safetensors(w))
    for tag, obj, legacy in (("ckpt_zip", official_checkpoint(sd), False),
                             ("ckpt_legacy", official_checkpoint(sd), True),
                             ("bare", sd, False)):
        p = os.path.join(WORK, "%s_%s.pth" % (case, tag))
        torch.save(obj, p, _use_new_zipfile_serialization=not legacy)
        got, log = logits(case, "--weights", p, tag)
        check("%s --weights %s.pth: logits bit-identical to safetensors" % (case, tag), same(got, ref),
              log[-400:])

# ---- the encoder: Swin release layout, timm layout -----------------------------
case = "mtlora4"
w = read_safetensors(os.path.join(CASES, case, "weights.safetensors"))
release = collections.OrderedDict()
for k, v in w.items():
    if not k.startswith("backbone.") or "lora_" in k:
        continue
    n = k[len("backbone."):].replace(".linear.", ".")
    release[n] = v
C = max(v.shape[0] for k, v in release.items() if k.startswith("layers.") and k.endswith("norm2.weight"))
rng = np.random.default_rng(5)
release["norm.weight"] = np.ones(C, np.float32)
release["norm.bias"] = np.zeros(C, np.float32)
release["head.weight"] = rng.standard_normal((10, C)).astype(np.float32)
release["head.bias"] = np.zeros(10, np.float32)
rel_pth = os.path.join(WORK, "swin_release.pth")
torch.save({"model": torch_sd(release)}, rel_pth)
rel_st = os.path.join(WORK, "swin_release.safetensors")
write_safetensors(rel_st, release)
timm = collections.OrderedDict()
for k, v in release.items():
    if "relative_position_index" in k or "attn_mask" in k:
        continue
    if k.startswith("layers.") and ".downsample." in k:
        s = int(k.split(".")[1])
        k = "layers.%d.%s" % (s + 1, k.split(".", 2)[2])
    if k.startswith("head."):
        k = "head.fc." + k[len("head."):]
    timm[k] = v
timm_st = os.path.join(WORK, "model.safetensors")
write_safetensors(timm_st, timm)
a, log_a = logits(case, "--pretrained", rel_st, "rel_st")
b, log_b = logits(case, "--pretrained", rel_pth, "rel_pth")
c, log_c = logits(case, "--pretrained", timm_st, "timm")
check("Swin-release .pth as --pretrained equals its safetensors", a is not None and same(a, b), log_b[-400:])
check("timm model.safetensors as --pretrained equals the release layout", same(a, c), log_c[-400:])
moved = collections.OrderedDict(release)
key = [k for k in moved if k.endswith("downsample.reduction.weight")][0]
moved[key] = moved[key] * 1.5
mv = os.path.join(WORK, "swin_moved.pth")
torch.save({"model": torch_sd(moved)}, mv)
d, log_d = logits(case, "--pretrained", mv, "moved")
check("a changed encoder tensor changes the logits (the file is used)", d is not None and not same(a, d), log_d[-300:])

# ---- back to PyTorch -----------------------------------------------------------
for case in ("mtlora4", "lora"):
    cdir = os.path.join(CASES, case)
    cfg, wst = os.path.join(cdir, "config.yaml"), os.path.join(cdir, "weights.safetensors")
    adir = os.path.join(WORK, case + "_adapter")
    rc, log = run(EXPORT, ["--config", cfg, "--weights", wst, "--adapter-out", adir])
    check(case + " --adapter-out", rc == 0, log[-300:])
    outs = {}
    for ext in ("safetensors", "pth"):
        o = os.path.join(WORK, "%s_whole.%s" % (case, ext))
        rc, log = run(EXPORT, ["--adapter", adir, "--base", wst, "--output", o])
        check("%s --adapter --output .%s" % (case, ext), rc == 0, log[-300:])
        outs[ext] = o
    st = read_safetensors(outs["safetensors"])
    try:
        ck = torch.load(outs["pth"], weights_only=True)
        sd = ck["model"]
        ok = set(sd) == set(st) and all(np.array_equal(sd[k].numpy(), st[k]) and sd[k].dtype == (
            torch.int64 if st[k].dtype == np.int64 else torch.float32) for k in st)
        check("%s: torch.load(weights_only=True) of --output .pth equals the safetensors, %d tensors"
              % (case, len(st)), ok)
    except Exception as e:  # noqa: BLE001
        check(case + ": torch.load(weights_only=True) reads --output .pth", False, repr(e))
case = "lora"
cdir = os.path.join(CASES, case)
cfg, wst = os.path.join(cdir, "config.yaml"), os.path.join(cdir, "weights.safetensors")
rc, log = run(EXPORT, ["--config", cfg, "--weights", wst, "--merge", "--task", "semseg", "--output",
                       os.path.join(WORK, "merged.pth")])
rc2, log2 = run(EXPORT, ["--config", cfg, "--weights", wst, "--merge", "--task", "semseg", "--output",
                         os.path.join(WORK, "merged.safetensors")])
if rc == 0 and rc2 == 0:
    sd = torch.load(os.path.join(WORK, "merged.pth"), weights_only=True)["model"]
    st = read_safetensors(os.path.join(WORK, "merged.safetensors"))
    check("--merge --output .pth equals the safetensors merge",
          set(sd) == set(st) and all(np.array_equal(sd[k].numpy(), st[k]) for k in st))
else:
    check("--merge --output .pth runs", False, (log + log2)[-400:])

# the default Swin-T 448 model saved as .pth: the official state dict's names and shapes
if os.path.exists(OFFICIAL_TSV):
    swint = os.path.join(WORK, "swin_t_448.pth")
    env = mpi_env()
    p = subprocess.run(["mpirun", "-np", "1", DIST, "--synthetic-data", "--steps", "0", "--quiet",
                        "--save-trainable", swint], capture_output=True, text=True, env=env)
    off = {}
    for line in open(OFFICIAL_TSV):
        f = line.rstrip("\n").split("\t")
        if len(f) >= 2 and not line.startswith("#"):
            off[f[0]] = [int(x) for x in f[1].strip("[]").split(",") if x.strip()]
    ok = p.returncode == 0
    if ok:
        sd = torch.load(swint, weights_only=True)["model"]
        ok = {k: list(v.shape) for k, v in sd.items()} == off
    check("--save-trainable X.pth of Swin-T 448: the official state dict's %d names and shapes" % len(off), ok,
          (p.stdout + p.stderr)[-300:])
    os.unlink(swint) if os.path.exists(swint) else None
else:
    print("NOTE official state dict list %s absent: names not compared" % OFFICIAL_TSV)

# ---- refusals ------------------------------------------------------------------
case = "mtlora4"
cfg, img = images_for(case)
sd = torch_sd(read_safetensors(os.path.join(CASES, case, "weights.safetensors")))
gone = collections.OrderedDict(sd)
missing_name = [k for k in gone if k.endswith("attn.qkv.linear.weight")][0]
del gone[missing_name]
p = os.path.join(WORK, "missing.pth")
torch.save({"model": gone}, p)
rc, log = run(INFER, ["--config", cfg, "--weights", p, "--stats"])
check("a missing tensor is named", rc == 1 and missing_name in log and p in log, log[-300:])
wrong = collections.OrderedDict(sd)
wrong_name = [k for k in wrong if k.endswith("norm1.weight")][0]
wrong[wrong_name] = torch.zeros(wrong[wrong_name].numel() + 1)
p = os.path.join(WORK, "wrongshape.pth")
torch.save({"model": wrong}, p)
rc, log = run(INFER, ["--config", cfg, "--weights", p, "--stats"])
n0 = sd[wrong_name].numel()
check("a wrong shape names both tensors and both shapes",
      rc == 1 and wrong_name in log and "[%d]" % (n0 + 1) in log and "[%d]" % n0 in log, log[-300:])
win = collections.OrderedDict(release)
tab = [k for k in win if k.endswith("relative_position_bias_table")][0]
heads = win[tab].shape[1]
win[tab] = np.zeros((49 if win[tab].shape[0] == 25 else 25, heads), np.float32)  # window 4 or 3
p = os.path.join(WORK, "other_window.pth")
torch.save({"model": torch_sd(win)}, p)
rc, log = run(INFER, ["--config", cfg, "--pretrained", p, "--stats"])
check("a bias table of another window size is refused with the explanation",
      rc == 1 and tab in log and "resizes it bicubically" in log and "MODEL.SWIN.WINDOW_SIZE" in log, log[-400:])
tarp = os.path.join(WORK, "old_tar.pth")
with tarfile.open(tarp, "w") as t:
    for n in ("sys_info", "pickle", "storages", "tensors"):
        q = os.path.join(WORK, n)
        open(q, "wb").write(b"\x80\x02N.")
        t.add(q, arcname=n)
rc, log = run(INFER, ["--config", cfg, "--weights", tarp, "--stats"])
check("a tar-format .pth is refused with how to re-save it", rc == 1 and tarp in log and "torch.save" in log,
      log[-300:])
full = os.path.join(WORK, "mtlora4_ckpt_zip.pth")
data = open(full, "rb").read()
tr = os.path.join(WORK, "truncated.pth")
open(tr, "wb").write(data[: len(data) * 2 // 3])
rc, log = run(INFER, ["--config", cfg, "--weights", tr, "--stats"])
check("a truncated archive is refused by name", rc == 1 and tr in log, log[-300:])
pwned = os.path.join(WORK, "PWNED")
if os.path.exists(pwned):
    os.unlink(pwned)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + pwned,))


p = os.path.join(WORK, "evil.pth")
torch.save({"model": sd, "config": Evil()}, p)
rc, log = run(INFER, ["--config", cfg, "--weights", p, "--stats"])
check("a pickle naming os.system outside the state dict: loads, the command never runs",
      rc == 0 and not os.path.exists(pwned), log[-300:])
evil_sd = collections.OrderedDict(sd)
evil_sd[missing_name] = Evil()
p = os.path.join(WORK, "evil_in_model.pth")
torch.save({"model": evil_sd}, p)
rc, log = run(INFER, ["--config", cfg, "--weights", p, "--stats"])
check("os.system inside the state dict is refused naming the key, and never runs",
      rc == 1 and missing_name in log and not os.path.exists(pwned), log[-300:])

print("%d passed, %d failed" % (sum(results), len(results) - sum(results)))
sys.exit(0 if all(results) else 1)
