"""mtlora-predict end to end (ctest `predict_cli`), on the model reference
cases (tests/reference/mtlora_reference.py: small models of every adapter
kind with non-trivial weights):

1. A directory of odd-sized inputs (a 37x53 JPEG, a 101x67 PNG, a gray PNG,
   an RGBA PNG) plus a text file, a truncated JPEG and a missing file
   named on the command line: exit 1, each bad one named on stderr, every
   good one written; every output has its input's size; the panel is the
   input and each task's colour picture side by side with 4-pixel white
   gaps; the palette PNGs carry the VOC colour map and their indices are
   the raw label PNG's values; sal_mask agrees with sal.
2. Parity with the official pipeline: the same images through the official
   validation transform (tests/reference/augment_reference.py's port, real
   OpenCV) into mtlora-infer, its logits through the official get_output,
   cv2.resize with INFER_FLAGVALS and astype(np.uint8), equal the files.
3. --tasks picks a subset (only its files, a narrower panel); an unknown
   task is refused (2); --batch 3 --threads 1 and --batch 1 write the same
   files as the default (--batch 2, every thread).
4. An output directory that cannot be written is refused (2) before any
   work, and nothing is written.
5. Weights as .pth (torch.save of {'model': state_dict}) give the same
   files as the safetensors; weights that do not fit the model are refused
   (1), and a file named like a training checkpoint gets the command that
   writes a model from one; a merged single-task model (mtlora-export
   --merge of the lora case) runs and gives the adapted model's pictures of
   that task; every adapter kind runs; the edge task is written as gray.

    predict_cli_test.py MTLORA_PREDICT MTLORA_INFER MTLORA_EXPORT MODEL_CASES WORKDIR
"""
import io
import os
import shutil
import subprocess
import sys
import time

import cv2
import h5py
import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from augment_reference import official  # noqa: E402
from bundle import read_safetensors  # noqa: E402
from predict_reference import get_output, voc_colormap  # noqa: E402

PREDICT, INFER, EXPORT, CASES, WORK = (os.path.abspath(a) for a in sys.argv[1:6])
ENV = dict(os.environ, OMP_NUM_THREADS="2")
INFER_FLAGVALS = {"semseg": cv2.INTER_NEAREST, "human_parts": cv2.INTER_NEAREST, "sal": cv2.INTER_LINEAR,
                  "normals": cv2.INTER_LINEAR, "edge": cv2.INTER_LINEAR}
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(("PASS " if ok else "FAIL ") + name + (": " + detail if detail and not ok else ""))
    sys.stdout.flush()
    return ok


def run(*args, exe=PREDICT):
    p = subprocess.run([exe, *args], capture_output=True, text=True, env=ENV, timeout=300)
    return p.returncode, p.stdout, p.stderr


def case(name):
    d = os.path.join(CASES, name)
    return os.path.join(d, "config.yaml"), os.path.join(d, "weights.safetensors")


def tasks_of(cfg):
    for line in open(cfg):
        if line.startswith("TASKS:"):
            return [t.strip() for t in line.split("[")[1].split("]")[0].split(",")]
    raise AssertionError("no TASKS in " + cfg)


def img_size(cfg):
    for line in open(cfg):
        if line.strip().startswith("IMG_SIZE:"):
            return int(line.split(":")[1])
    raise AssertionError("no IMG_SIZE in " + cfg)


def make_inputs(d):
    """Odd-sized pictures with structure (so that outputs vary), as PIL writes them."""
    os.makedirs(d)
    rng = np.random.default_rng(7)

    def picture(h, w):
        yy, xx = np.mgrid[0:h, 0:w]
        a = np.stack([128 + 90 * np.sin(xx / 5.0 + c) * np.cos(yy / 7.0) for c in range(3)], -1)
        a[h // 4: h // 2, w // 3: 2 * w // 3] = (250, 20, 200)
        return np.clip(a + rng.normal(0, 10, a.shape), 0, 255).astype(np.uint8)

    Image.fromarray(picture(53, 37)).save(os.path.join(d, "odd_37x53.jpg"), quality=92)
    Image.fromarray(picture(67, 101)).save(os.path.join(d, "odd_101x67.png"))
    Image.fromarray(picture(40, 30)[:, :, 1]).save(os.path.join(d, "gray.png"))
    rgba = np.dstack([picture(29, 31), np.full((29, 31), 100, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(os.path.join(d, "alpha.PNG"))
    with open(os.path.join(d, "odd_37x53.jpg"), "rb") as f:
        good = f.read()
    with open(os.path.join(d, "broken.jpg"), "wb") as f:
        f.write(good[: len(good) // 2])
    with open(os.path.join(d, "README.txt"), "w") as f:  # not an image name: not listed
        f.write("pictures\n")
    with open(os.path.join(WORK, "notes.txt"), "w") as f:  # named: tried, refused
        f.write("not an image\n")
    return {"odd_37x53": (53, 37), "odd_101x67": (67, 101), "gray": (40, 30), "alpha": (29, 31)}


def rgb_of(path):
    return np.array(Image.open(path).convert("RGB"))


def expected_files(tasks):
    out = []
    for t in tasks:
        out.append(t + ".png")
        if t in ("semseg", "human_parts"):
            out.append(t + "_labels.png")
        if t == "sal":
            out.append("sal_mask.png")
    return sorted(out)


def check_outputs(tag, out, sizes, tasks):
    ok = True
    for name, (h, w) in sizes.items():
        panel = os.path.join(out, name + ".png")
        files = sorted(os.listdir(os.path.join(out, name))) if os.path.isdir(os.path.join(out, name)) else []
        ok &= check("%s %s: files %s" % (tag, name, ", ".join(expected_files(tasks))),
                    files == expected_files(tasks) and os.path.exists(panel), str(files))
        if not ok:
            continue
        sizes_ok = all(Image.open(os.path.join(out, name, f)).size == (w, h) for f in files)
        ok &= check("%s %s: every output is the input's %dx%d" % (tag, name, w, h), sizes_ok)
        P = rgb_of(panel)
        T = len(tasks)
        ok &= check("%s %s: panel %dx%d = %d tiles + %d gaps of 4" % (tag, name, P.shape[1], P.shape[0], T + 1, T),
                    P.shape == (h, (T + 1) * w + 4 * T, 3), str(P.shape))
        if P.shape != (h, (T + 1) * w + 4 * T, 3):
            continue
        tiles = [P[:, k * (w + 4): k * (w + 4) + w] for k in range(T + 1)]
        gaps = [P[:, k * (w + 4) + w: (k + 1) * (w + 4)] for k in range(T)]
        src = [f for f in os.listdir(os.path.join(WORK, "in")) if os.path.splitext(f)[0] == name][0]
        ok &= check("%s %s: tile 0 is the input, the gaps white" % (tag, name),
                    np.array_equal(tiles[0], rgb_of(os.path.join(WORK, "in", src))) and
                    all((g == 255).all() for g in gaps))
        same = [np.array_equal(tiles[1 + i], rgb_of(os.path.join(out, name, t + ".png"))) for i, t in enumerate(tasks)]
        ok &= check("%s %s: tile k is task k's colour picture" % (tag, name), all(same), str(same))
        for t in ("semseg", "human_parts"):
            if t in tasks:
                im = Image.open(os.path.join(out, name, t + ".png"))
                pal = np.array(im.getpalette()[: 768], np.uint8).reshape(-1, 3)
                labels = np.array(Image.open(os.path.join(out, name, t + "_labels.png")))
                K = 21 if t == "semseg" else 7
                ok &= check("%s %s %s: VOC palette, indices = raw labels (0..%d)" % (tag, name, t, K - 1),
                            im.mode == "P" and np.array_equal(pal, voc_colormap()) and
                            np.array_equal(np.array(im), labels) and labels.max() < K)
        if "sal" in tasks:
            g = np.array(Image.open(os.path.join(out, name, "sal.png")))
            m = np.array(Image.open(os.path.join(out, name, "sal_mask.png")))
            ok &= check("%s %s: sal_mask is sal > 0.5" % (tag, name),
                        set(np.unique(m)) <= {0, 255} and (g[m == 255] >= 127).all() and (g[m == 0] <= 127).all())
    return ok


def official_pictures(cfg, weights, path, tasks):
    """The official pipeline on one image: validation transform, logits (mtlora-infer), get_output,
    cv2.resize(INFER_FLAGVALS), astype(np.uint8)."""
    S = img_size(cfg)
    img = np.array(Image.open(path).convert("RGB")).astype(float)
    h, w = img.shape[:2]
    x = official({"image": img}, S, None)["image"][None].astype(np.float32)
    i5, o5 = os.path.join(WORK, "x.h5"), os.path.join(WORK, "logits.h5")
    with h5py.File(i5, "w") as f:
        f["images"] = x
    rc, out, err = run("--config", cfg, "--weights", weights, "--input", i5, "--output", o5, exe=INFER)
    assert rc == 0, out + err
    pics = {}
    with h5py.File(o5, "r") as f:
        for t in tasks:
            v = get_output(torch.from_numpy(f[t][()]), t)
            v = v[0].numpy() if t in ("normals", "semseg", "human_parts") else v.numpy()
            if t in ("semseg", "human_parts"):
                v = v.astype(np.uint8)
            r = cv2.resize(v, (w, h), interpolation=INFER_FLAGVALS[t])
            pics[t] = r.astype(np.uint8)
            if t == "sal":
                pics["sal_mask"] = np.where(r / 255.0 > 0.5, 255, 0).astype(np.uint8)
    return pics


def check_parity(cfg, weights, out, tasks):
    for name in ("odd_37x53", "odd_101x67"):
        src = [f for f in os.listdir(os.path.join(WORK, "in")) if os.path.splitext(f)[0] == name][0]
        ref = official_pictures(cfg, weights, os.path.join(WORK, "in", src), tasks)
        for t, want in ref.items():
            f = t + ("_labels" if t in ("semseg", "human_parts") else "") + ".png"
            got = np.array(Image.open(os.path.join(out, name, f)))
            d = np.abs(got.astype(int) - want.astype(int))
            exact = t in ("semseg", "human_parts", "sal_mask")
            # labels exact; values equal or, where a float lands on the truncation
            # boundary after another summation order, one lower or higher
            ok = d.max() == 0 if exact else d.max() <= 1 and (d > 0).mean() < 0.01
            check("parity %s %s with the official get_output + cv2.resize + astype (%s)" %
                  (name, t, "exact" if d.max() == 0 else "%d of %d pixels off by 1" % ((d > 0).sum(), d.size)),
                  ok, "max diff %d, %d pixels differ" % (d.max(), (d > 0).sum()))


def close_trees(a, b):
    """The same files; pictures equal but for float-ordering noise: a batch of another size runs
    other matmul blockings, so a value on a truncation boundary may land one lower (at most 1 in
    255, on under 0.5% of the pixels; a label only where two classes tie to rounding)."""
    if set(a) != set(b):
        return False, "files differ: %s" % sorted(set(a) ^ set(b))[:5]
    worst = []
    for k in a:
        if a[k] == b[k]:
            continue
        x = np.array(Image.open(io.BytesIO(a[k]))).astype(int)
        y = np.array(Image.open(io.BytesIO(b[k]))).astype(int)
        d = np.abs(x - y)
        labels = "labels" in k or k.endswith(("semseg.png", "human_parts.png"))
        frac = (d > 0).mean()
        worst.append("%s: %d pixels (max %d)" % (k, (d > 0).sum(), d.max()))
        if x.shape != y.shape or frac > 0.005 or (not labels and d.max() > 1):
            return False, "; ".join(worst)
    return True, "; ".join(worst) or "identical"


def tree(d):
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, d)] = fh.read()
    return out


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    sizes = make_inputs(os.path.join(WORK, "in"))
    cfg, w = case("mtlora4")
    tasks = tasks_of(cfg)
    out = os.path.join(WORK, "out")
    missing = os.path.join(WORK, "missing.png")
    rc, so, se = run("--config", cfg, "--weights", w, "--output", out, os.path.join(WORK, "in"),
                     os.path.join(WORK, "notes.txt"), missing)
    check("bad inputs: exit 1", rc == 1, "rc %d\n%s%s" % (rc, so, se))
    for bad in ("broken.jpg", "notes.txt", "missing.png"):
        check("bad inputs: %s named and skipped" % bad, any(bad in line and "skipped" in line for line in se.splitlines()),
              se)
    check("bad inputs: README.txt of the folder is not an input", "README" not in so + se)
    check("bad inputs: 4 of 7 written", "wrote 4 of 7 images" in so, so)
    check("progress: plain lines when not a terminal", "[1/7]" in so and "\r" not in so, so)
    check_outputs("mtlora4", out, sizes, tasks)
    check("nothing written for the bad inputs",
          not any(os.path.exists(os.path.join(out, n)) for n in ("broken", "broken.png", "notes", "missing")))
    # one image per forward, as mtlora-infer runs it below: the same arithmetic, so exact
    par = os.path.join(WORK, "parity")
    rc, so, se = run("--config", cfg, "--weights", w, "--batch", "1", "--output", par,
                     *[os.path.join(WORK, "in", f) for f in ("odd_37x53.jpg", "odd_101x67.png")])
    check("parity inputs written", rc == 0, so + se)
    check_parity(cfg, w, par, tasks)

    # 3. --tasks, --batch
    sub = os.path.join(WORK, "sub")
    rc, so, se = run("--config", cfg, "--weights", w, "--tasks", "sal,normals", "--output", sub, os.path.join(WORK, "in"))
    check("--tasks sal,normals: exit 1 (broken.jpg)", rc == 1, so + se)
    check_outputs("--tasks sal,normals", sub, sizes, ["sal", "normals"])
    a = tree(out)
    same_sub = all(a.get(k) == v for k, v in tree(sub).items() if "/" in k)
    check("--tasks: the subset's files equal the full run's", same_sub)
    rc, so, se = run("--config", cfg, "--weights", w, "--tasks", "semseg,depth", "--output", sub, os.path.join(WORK, "in"))
    check("--tasks with a task the model lacks: exit 2, named", rc == 2 and "depth" in se, se)
    b3 = os.path.join(WORK, "batch3")
    rc, so, se = run("--config", cfg, "--weights", w, "--batch", "3", "--threads", "1", "--output", b3,
                     os.path.join(WORK, "in"))
    ok, why = close_trees(a, tree(b3))
    check("--batch 3 --threads 1: exit 1, the files of --batch 2 (%s)" % why, rc == 1 and ok, why)
    b1 = os.path.join(WORK, "batch1")
    rc, so, se = run("--config", cfg, "--weights", w, "--batch", "1", "--output", b1, os.path.join(WORK, "in"))
    ok, why = close_trees(a, tree(b1))
    check("--batch 1: exit 1, the files of --batch 2 (%s)" % why, rc == 1 and ok, why)

    # 4. an output directory that cannot be written: refused before any work
    blocker = os.path.join(WORK, "a_file")
    open(blocker, "w").write("x")
    t0 = time.time()
    rc, so, se = run("--config", cfg, "--weights", w, "--output", os.path.join(blocker, "out"), os.path.join(WORK, "in"))
    check("unwritable --output (a file in the way): exit 2, named, before the model",
          rc == 2 and "a_file" in se and "model" not in so, "rc %d %s%s" % (rc, so, se))
    if os.geteuid() != 0:  # root passes permission bits
        ro = os.path.join(WORK, "readonly")
        os.makedirs(ro)
        os.chmod(ro, 0o555)
        rc, so, se = run("--config", cfg, "--weights", w, "--output", ro, os.path.join(WORK, "in"))
        check("read-only --output: exit 2", rc == 2 and "not writable" in se and not os.listdir(ro), se)
        os.chmod(ro, 0o755)
    rc, so, se = run("--config", cfg, "--output", out)
    check("no inputs: exit 2", rc == 2, se)
    fake = os.path.join(WORK, "ckpt-00000007.safetensors")  # weights that do not fit, named as a checkpoint
    shutil.copy(case("lora")[1], fake)
    rc, so, se = run("--config", cfg, "--weights", fake, "--output", os.path.join(WORK, "ck"), os.path.join(WORK, "in"))
    check("weights that do not fit: exit 1, what is missing listed; a checkpoint name gets the way to a model",
          rc == 1 and "missing" in se and "--save-trainable" in se, se[-400:])

    # 5. .pth weights, a merged model, every adapter kind
    pth = os.path.join(WORK, "weights.pth")
    torch.save({"model": {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(w).items()}}, pth)
    op, os_ = os.path.join(WORK, "pth"), os.path.join(WORK, "st")
    one = os.path.join(WORK, "in", "odd_101x67.png")
    rc, so, se = run("--config", cfg, "--weights", pth, "--output", op, one)
    rc2, so2, se2 = run("--config", cfg, "--weights", w, "--output", os_, one)
    tp = tree(op)
    check("--weights .pth: the same files as the safetensors", rc == rc2 == 0 and tp and tp == tree(os_), so + se)

    lcfg, lw = case("lora")
    merged = os.path.join(WORK, "merged_sal.safetensors")
    rc, so, se = run("--config", lcfg, "--weights", lw, "--merge", "--task", "sal", "--output", merged, exe=EXPORT)
    check("mtlora-export --merge --task sal", rc == 0, so + se)
    om, oa = os.path.join(WORK, "merged"), os.path.join(WORK, "adapted")
    rc, so, se = run("--config", merged[: -len(".safetensors")] + ".yaml", "--weights", merged, "--output", om,
                     os.path.join(WORK, "in"))
    check("merged model: runs (exit 1 for broken.jpg), only sal", rc == 1 and "tasks sal;" in so, so + se)
    check_outputs("merged", om, sizes, ["sal"])
    rc, so, se = run("--config", lcfg, "--weights", lw, "--output", oa, os.path.join(WORK, "in"))
    worst = 0
    for name in sizes:
        g1 = np.array(Image.open(os.path.join(om, name, "sal.png"))).astype(int)
        g2 = np.array(Image.open(os.path.join(oa, name, "sal.png"))).astype(int)
        worst = max(worst, int(np.abs(g1 - g2).max()))
    check("merged model: its sal pictures are the adapted model's (within 1 of 255)", worst <= 1, "max diff %d" % worst)

    for kind in ("lora", "mtl_lora", "cgc_lora", "cgc_lora_mixed", "full_ft", "decoders_only", "mtlora_plus"):
        kc, kw = case(kind)
        ok_dir = os.path.join(WORK, "kind_" + kind)
        rc, so, se = run("--config", kc, "--weights", kw, "--output", ok_dir, os.path.join(WORK, "in", "odd_37x53.jpg"))
        kt = tasks_of(kc)
        check("adapter case %s (%s): runs" % (kind, ",".join(kt)), rc == 0 and
              sorted(os.listdir(os.path.join(ok_dir, "odd_37x53"))) == expected_files(kt), so + se)
        if "edge" in kt:
            e = Image.open(os.path.join(ok_dir, "odd_37x53", "edge.png"))
            check("edge: an 8-bit gray picture at the input's size", e.mode == "L" and e.size == (37, 53))

    print("%d passed, %d failed" % (sum(results), len(results) - sum(results)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
