"""mtlora_dist takes the official main.py command line (ctest `official_cli`).

The two commands of the official README, with `python -m
torch.distributed.launch --nproc_per_node N --master_port P main.py`
replaced by `mpirun -np 2 mtlora_dist`, on a synthetic PASCAL_MT set at
32x32 with a tiny Swin (official-format YAML written here):

1. training: --cfg --pascal --tasks semseg,normals,sal,human_parts
   --batch-size --ckpt-freq=1 --epoch=2 --resume-backbone <ImageNet-style
   safetensors written here>, plus --output/--tag (main.py's OUTPUT) and
   --save-trainable: the set is packed once into the cache, the run trains
   from it, the epoch and final checkpoints land in OUTPUT/MODEL.NAME/TAG,
   the frozen encoder equals the --resume-backbone file;
2. evaluation: --resume <the trained weights> --eval: the cache is reused
   (the progress line says so, the shards are not rewritten), nothing is
   trained and the official scores are printed, equal to the end of run 1.
   --resume <the epoch checkpoint> continues training as before.

Then: a changed source is repacked; $MTLORA_CACHE moves the cache; the
no-effect flags (--local_rank=0, --disable_wandb, ...) are accepted; and
refusals, every one exiting on every rank without a hang: an unknown flag
(2, named), refused official flags (2, with the reason), --batch-size 0,
an ambiguous prefix, --tasks with an unknown task (2), --pascal on a
missing directory and on a set the packer fails on (1, named).

    official_cli_test.py MTLORA_DIST MTLORA_PACK WORKDIR
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

try:
    import torch
except ImportError:  # the .pth steps need Debian's python3-torch (launch/setup installs it)
    torch = None

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
from bundle import read_safetensors, write_safetensors  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpi_env import mpi_env  # noqa: E402

DIST, PACK, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
ENV = mpi_env()
ENV.pop("MTLORA_CACHE", None)

# An official-format config (as configs/mtlora/tiny_448/*.yaml), tiny.
CFG_TEXT = """DATA:
  IMG_SIZE: 32
MODEL:
  TYPE: swin
  NAME: mtlora_tiny_test
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
  WARMUP_EPOCHS: 0
  BASE_LR: 0.05
"""
TASKS = "semseg,normals,sal,human_parts"


def mpirun(*args, expect=0, env=None, n=2):
    cmd = ["mpirun", "-np", str(n), "--oversubscribe", DIST, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env or ENV, timeout=180, cwd=WORK)
    out = p.stdout + p.stderr
    if p.returncode != expect:
        raise AssertionError("%s: exit %d (expected %d)\n%s" % (" ".join(cmd), p.returncode, expect, out))
    return out


def evals(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    return [r for r in recs if "eval_step" in r]


def shard_state(cache):
    return {n: os.stat(os.path.join(cache, n)).st_mtime_ns for n in sorted(os.listdir(cache))}


def imagenet_style_backbone(cfg):
    """A Swin file with plain ImageNet names (no backbone., no LoRA, no
    decoders), as --resume-backbone reads, from a model saved at seed 9."""
    full = os.path.join(WORK, "seed9.safetensors")
    mpirun("--cfg", cfg, "--tasks", TASKS, "--synthetic-data", "--steps", "0", "--quiet", "--seed", "9",
           "--save-trainable", full, n=1)
    plain = {}
    for k, v in read_safetensors(full).items():
        if k.startswith("backbone.") and "lora_" not in k and v.dtype == np.float32:
            plain[k[len("backbone."):].replace(".linear.", ".")] = v
    path = os.path.join(WORK, "swin_imagenet_style.safetensors")
    write_safetensors(path, plain)
    if torch is not None:
        # as the Swin release ships it: {'model': state dict} with the
        # classifier and the final norm, which the official loader leaves over
        C = max(v.shape[0] for k, v in plain.items() if k.endswith("norm2.weight"))
        sd = {k: torch.from_numpy(np.array(v)) for k, v in plain.items()}
        sd.update({"norm.weight": torch.ones(C), "norm.bias": torch.zeros(C),
                   "head.weight": torch.zeros(7, C), "head.bias": torch.zeros(7)})
        path = os.path.join(WORK, "swin_tiny_patch4_window4_32.pth")
        torch.save({"model": sd}, path)
    return full, path


def official_checkpoint(src, dst):
    """An official MTLoRA ckpt_epoch_N.pth from mtlora's .pth: the model
    plus optimizer, lr_scheduler, scaler, epoch, max_accuracy and a config
    object of a class the reader cannot import (yacs' CfgNode)."""
    mod = type(sys)("yacs.config")
    CfgNode = type("CfgNode", (dict,), {"__module__": "yacs.config", "__qualname__": "CfgNode"})
    mod.CfgNode = CfgNode
    sys.modules.setdefault("yacs", type(sys)("yacs"))
    sys.modules["yacs.config"] = mod
    lin = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(lin.parameters())
    lin(torch.ones(1, 2)).sum().backward()
    opt.step()
    model = torch.load(src, weights_only=True)["model"]
    torch.save({"model": model, "optimizer": opt.state_dict(), "lr_scheduler": {"last_epoch": 2},
                "scaler": {"scale": 65536.0}, "epoch": 1, "max_accuracy": 0.0,
                "config": CfgNode(MODEL=CfgNode(NAME="mtlora_tiny_test"))}, dst)


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    cfg = os.path.join(WORK, "mtlora_tiny_test.yaml")
    with open(cfg, "w") as f:
        f.write(CFG_TEXT)
    pascal = os.path.join(WORK, "PASCAL_MT")
    subprocess.run([PACK, "--synthetic", "24", pascal, "--min-side", "48", "--max-side", "96", "--quiet"],
                   check=True)
    seed9, backbone = imagenet_style_backbone(cfg)
    out_root = os.path.join(WORK, "output")
    cache = os.path.join(pascal, ".mtlora-cache", "semseg,human_parts,sal,normals")
    weights = os.path.join(WORK, "mtlora_trained.pth" if torch is not None else "mtlora_trained.safetensors")

    # 1. the README's training command (batch 2, 2 epochs, every epoch a checkpoint)
    out = mpirun("--cfg", cfg, "--pascal", pascal, "--tasks", TASKS, "--batch-size", "2", "--ckpt-freq=1",
                 "--epoch=2", "--resume-backbone", backbone, "--output", out_root, "--tag", "train",
                 "--save-trainable", weights)
    assert "pascal: packing %s into %s (no cache yet)" % (pascal, cache) in out, out
    run1 = os.path.join(out_root, "mtlora_tiny_test", "train")
    ckpts = sorted(n for n in os.listdir(run1) if n.startswith("ckpt-"))
    assert ckpts == ["ckpt-00000005.safetensors", "ckpt-00000010.safetensors"], ckpts
    assert "checkpoint (epoch) after step 5" in out and "training 10 updates (5 per epoch)" in out, out
    assert "pretrained encoder weights: %s" % backbone in out, out
    if torch is not None:
        got = {k: v.numpy() for k, v in torch.load(weights, weights_only=True)["model"].items()}
    else:
        got = read_safetensors(weights)
    src = read_safetensors(seed9)
    frozen = [k for k in src if k.startswith("backbone.") and ".linear." in k and "lora_" not in k]
    assert frozen and all(np.array_equal(got[k], src[k]) for k in frozen), "--resume-backbone not loaded"
    ev1 = evals(run1)
    assert len(ev1) == 1 and ev1[0]["eval_step"] == 10, ev1
    before = shard_state(cache)
    print("training: packed once, 10 updates, checkpoints %s in output/mtlora_tiny_test/train, %d frozen "
          "encoder tensors from --resume-backbone" % (", ".join(ckpts), len(frozen)))

    # 2. the README's evaluation command, on the trained weights (as an
    # official checkpoint, ckpt_epoch_N.pth, when torch is here)
    if torch is not None:
        official = os.path.join(WORK, "ckpt_epoch_1.pth")
        official_checkpoint(weights, official)
        weights = official
    out = mpirun("--cfg", cfg, "--pascal", pascal, "--tasks", TASKS, "--batch-size", "2", "--resume", weights,
                 "--eval", "--output", out_root, "--tag", "eval")
    assert "pascal: reusing the shards in %s" % cache in out and "not repacking" in out, out
    assert "pascal: packing" not in out and "packed train" not in out, out
    assert shard_state(cache) == before, "the cache was rewritten"
    assert "model weights: %s" % weights in out and "training 0 updates" in out, out
    line = [ln for ln in out.splitlines() if ln.startswith("eval after step 0")]
    assert len(line) == 1, out
    for name in ("semseg mIoU", "normals mean", "normals rmse", "sal maxF", "sal Beta maxF", "sal mIoU",
                 "human_parts mIoU", "Delta_m"):
        assert name in line[0], (name, line[0])
    ev2 = evals(os.path.join(out_root, "mtlora_tiny_test", "eval"))
    strip = lambda e: {k: v for k, v in e.items() if k not in ("eval_step", "epoch")}  # noqa: E731
    assert len(ev2) == 1 and strip(ev2[0]) == strip(ev1[0]), (ev1, ev2)
    assert not [n for n in os.listdir(os.path.join(out_root, "mtlora_tiny_test", "eval")) if n.startswith("ckpt")]
    print("evaluation: cache reused (not rewritten), scores equal the end of training: " + line[0])
    if torch is not None:
        out = mpirun("--cfg", cfg, "--pascal", pascal, "--tasks", TASKS, "--batch-size", "2", "--resume",
                     weights, "--eval", "--skip_decoder", "--output", out_root, "--tag", "eval_nodec")
        assert "model weights without decoders: %s" % weights in out, out
        assert "beside it in the file: " in out and "config (placeholder yacs.config.CfgNode)" in out, out
        ev4 = evals(os.path.join(out_root, "mtlora_tiny_test", "eval_nodec"))
        assert len(ev4) == 1 and strip(ev4[0]) != strip(ev1[0]), (ev1, ev4)
        print("--skip_decoder: the official checkpoint's decoders left out, other scores")

    # --resume of the epoch checkpoint continues training (same flags: same configuration)
    out = mpirun("--cfg", cfg, "--pascal", pascal, "--tasks", TASKS, "--batch-size", "2", "--ckpt-freq=1",
                 "--epoch=2", "--resume-backbone", backbone, "--output", out_root, "--tag", "train",
                 "--resume", os.path.join(run1, "ckpt-00000005.safetensors"), "--quiet")
    ev3 = evals(run1)
    assert len(ev3) == 2 and strip(ev3[1]) == strip(ev3[0]), ev3
    print("resume: the epoch-1 checkpoint continued to the same final scores")

    # the source changes: repacked, naming what changed; $MTLORA_CACHE moves the cache
    os.utime(os.path.join(pascal, "JPEGImages", "2008_000001.jpg"), ns=(1, 1))
    out = mpirun("--cfg", cfg, "--pascal", pascal, "--tasks", TASKS, "--batch-size", "2", "--eval")
    assert "(the source changed: JPEGImages differs)" in out, out
    env = dict(ENV, MTLORA_CACHE=os.path.join(WORK, "cache"))
    out = mpirun("--cfg", cfg, "--pasc=" + pascal, "--tasks", "semseg,normals", "--batch-size", "2", "--eval",
                 "--local_rank=0", "--disable_wandb", "--skip_initial_validation", "--fused_layernorm",
                 "--amp-opt-level", "O1", "--run_name", "x", "--cache-mode", "no", env=env)
    assert "pascal: packing" in out and os.path.join(WORK, "cache", "PASCAL_MT-") in out, out
    assert os.path.isdir(os.path.join(WORK, "cache")) and "eval after step 0" in out, out
    print("cache: a changed source is repacked; MTLORA_CACHE holds it elsewhere; no-effect flags accepted")

    # refusals: exit status and the named reason, on every rank, no hang
    base = ["--cfg", cfg, "--tasks", TASKS, "--batch-size", "2"]
    for args, code, words in [
        (["--no-such-flag"], 2, "unknown option '--no-such-flag'"),
        (["--zip"], 2, "--zip: zipped ImageNet folders"),
        (["--throughput"], 2, "--throughput: the inference throughput test is not implemented"),
        (["--no_eval_50"], 2, "--no_eval_50: in main.py this store_false flag"),
        (["--eval-training-freq=5"], 2, "--eval-training-freq: scores on training batches"),
        (["--nyud", pascal], 2, "--nyud: NYUD-v2 is not supported"),
        (["--batch-size", "0"], 2, "--batch-size: DATA.BATCH_SIZE: value 0 must be in 1..65536"),
        (["--re", "x"], 2, "ambiguous option: --re could match --resume, --resume-backbone"),
        (["--eval=yes"], 2, "--eval takes no value"),
        (["--tasks", "semseg,depth"], 2, "--tasks: TASKS: unknown task 'depth'"),
        (["--pascal", os.path.join(WORK, "missing_dir")], 1, "--pascal %s: No such file or directory"
         % os.path.join(WORK, "missing_dir")),
    ]:
        out = mpirun(*base, *args, expect=code)
        assert words in out, (args, out)
    bad = os.path.join(WORK, "PASCAL_bad")
    shutil.copytree(pascal, bad, ignore=shutil.ignore_patterns(".mtlora-cache"))
    os.remove(os.path.join(bad, "JPEGImages", "2008_000003.jpg"))
    out = mpirun(*base, "--pascal", bad, expect=1)
    assert "mtlora-pack exited with status 1 packing the train split" in out, out
    print("refusals: unknown, refused official flags, bad values, unknown task, missing or bad --pascal: "
          "named, every rank exited")
    print("official_cli: all checks passed")


if __name__ == "__main__":
    main()
