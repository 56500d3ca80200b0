"""mtlora-pack end to end (ctest `pack_cli`):

1. --synthetic writes a small PASCAL-layout set; pack train and val into
   shards of 3 records; --verify passes; a rerun keeps the finished shards.
2. The packed labels equal what a port of the official loader
   (scale-lab/MTLoRA data/mtl_ds.py PASCALContext, read with PIL,
   scipy.io.loadmat and cv2) produces from the same files.
3. Every bad input gives exit 1, a message naming the file (and record), and
   leaves no shard under a final name for the failing part, no .part file;
   except a bad MAT file (refused by the accessor, or libmatio's worker
   died), which costs its record only: the rest is packed, the record is
   listed at the end, no manifest is written, exit 1, and a re-run after the
   file is repaired packs the missing record and writes the manifest.

    pack_cli_test.py MTLORA_PACK WORKDIR   (WORKDIR/shards is kept for test_loader)
"""
import os
import shutil
import subprocess
import sys

import cv2
import h5py
import numpy as np
import scipy.io as sio
import scipy.sparse
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
from edge_reference import load_edge  # noqa: E402  (cv2.Laplacian + a port of skimage thin)

PACK = sys.argv[1]
WORK = sys.argv[2]
TASKS = "semseg,human_parts,sal,normals,edge"
HUMAN_PART6 = {"hair": 1, "head": 1, "lear": 1, "lebrow": 1, "leye": 1, "lfoot": 6, "lhand": 4,
               "llarm": 4, "llleg": 6, "luarm": 3, "luleg": 5, "mouth": 1, "neck": 2, "nose": 1,
               "rear": 1, "rebrow": 1, "reye": 1, "rfoot": 6, "rhand": 4, "rlarm": 4, "rlleg": 6,
               "ruarm": 3, "ruleg": 5, "torso": 2}
failures = []


def run(*args, expect=0):
    p = subprocess.run([PACK, *args], capture_output=True, text=True)
    if p.returncode != expect:
        raise AssertionError("mtlora-pack %s: exit %d, expected %d\n%s%s" % (
            " ".join(args), p.returncode, expect, p.stdout, p.stderr))
    return p.stdout + p.stderr


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


# ---- a port of the official loader's reading (no augmentation) ----
def normals_valid_ids():
    from_c = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "data",
                               "pascal_classes.c")).read()
    body = from_c.split("normals_valid_ids[] = {")[1].split("};")[0]
    return set(int(x) for x in body.replace("\n", " ").split(",") if x.strip())


def official_record(root, iid, valid):
    img = np.array(Image.open(os.path.join(root, "JPEGImages", iid + ".jpg")).convert("RGB"))
    out = {"image": img}
    out["semseg"] = np.array(Image.open(os.path.join(root, "semseg", "pascal-context", iid + ".png")))
    out["sal"] = (np.array(Image.open(os.path.join(root, "sal_distill", iid + ".png"))).astype(float)
                  / 255. > 0.5).astype(np.uint8)
    # human parts: has_human_parts (person with area > 0), then paint parts
    objs = sio.loadmat(os.path.join(root, "human_parts", iid + ".mat"))["anno"][0][0][1][0]
    has = any(int(o[1][0][0]) == 15 and np.sum(o[2]) > 0 for o in objs)
    target = None
    if has:
        for o in objs:
            if int(o[1][0][0]) == 15 and len(o[3]) != 0:
                if target is None:
                    target = np.zeros(o[2].shape)
                for p in o[3][0]:
                    target[p[1].astype(bool)] = HUMAN_PART6[str(p[0][0])]
    out["human_parts"] = (np.zeros(img.shape[:2]) if target is None else target).astype(np.uint8)
    labels = sio.loadmat(os.path.join(root, "pascal-context", "trainval", iid + ".mat"))["LabelMap"]
    tmp = 2.0 * np.array(Image.open(os.path.join(root, "normals_distill", iid + ".png"))).astype(float) / 255.0 - 1.0
    normals = np.zeros(tmp.shape)
    for x in np.unique(labels):
        if x in valid:
            normals[labels == x, :] = tmp[labels == x, :]
    out["normals"] = normals
    out["edge"] = load_edge(labels)[1].astype(np.uint8)
    return out


def packed_records(shards, split):
    recs = {}
    for name in sorted(os.listdir(shards)):
        if not (name.startswith(split + "-") and name.endswith(".h5")):
            continue
        with h5py.File(os.path.join(shards, name), "r") as f:
            ids = [x.decode() for x in f["index/ids"][()]]
            for i, iid in enumerate(ids):
                g = f["records/%06d" % i]
                r = {k: g[k][()] for k in g.keys()}
                code = r["normals"].astype(float)
                r["normals_f"] = np.where(r["normals_mask"][..., None] == 1, 2.0 * code / 255.0 - 1.0, 0.0)
                recs[iid] = r
    return recs


def split_ids(root, split):
    return [l.strip() for l in open(os.path.join(root, "ImageSets", "Context", split + ".txt")) if l.strip()]


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    src, shards = os.path.join(WORK, "src"), os.path.join(WORK, "shards")
    out = run("--synthetic", "12", src, "--min-side", "40", "--max-side", "90", "--seed", "3", "--quiet")
    for split in ("train", "val"):
        out = run(src, shards, "--split", split, "--shard-size", "3", "--tasks", TASKS)
        print(out.strip().splitlines()[-1])
    out = run("--verify", shards)
    check("verified" in out, "verify reports success: " + out)

    # restart: finished shards are kept, not rewritten
    mt = {n: os.stat(os.path.join(shards, n)).st_mtime_ns for n in os.listdir(shards)}
    out = run(src, shards, "--split", "train", "--shard-size", "3", "--tasks", TASKS)
    check("already packed, kept" in out, "rerun keeps shards: " + out)
    for n, t in mt.items():
        if n.endswith(".h5"):
            check(os.stat(os.path.join(shards, n)).st_mtime_ns == t, "shard %s rewritten on rerun" % n)
    # a shard removed is repacked, identical content
    first = os.path.join(shards, "train-00000.h5")
    with h5py.File(first, "r") as f:
        before = f["index/checksum"][()].copy()
    os.remove(first)
    run(src, shards, "--split", "train", "--shard-size", "3", "--tasks", TASKS, "--threads", "1")
    with h5py.File(first, "r") as f:
        check(np.array_equal(before, f["index/checksum"][()]), "repacked shard has the same checksums")

    # parity with the official loader's reading
    valid = normals_valid_ids()
    for split in ("train", "val"):
        recs = packed_records(shards, split)
        ids = split_ids(src, split)
        check(list(recs) == ids, "%s: packed ids in split order" % split)
        for iid in ids:
            ref, got = official_record(src, iid, valid), recs[iid]
            check(got["image_jpeg"].tobytes() == open(os.path.join(src, "JPEGImages", iid + ".jpg"), "rb").read(),
                  "%s: JPEG bytes stored unchanged" % iid)
            for k in ("semseg", "human_parts", "sal", "edge"):
                check(np.array_equal(ref[k], got[k]), "%s: %s equals the official loader's" % (iid, k))
            check(np.array_equal(ref["normals"], got["normals_f"]), "%s: normals equal the official loader's" % iid)
    people = sum(int((r["human_parts"] > 0).any()) for r in packed_records(shards, "train").values())
    check(0 < people < len(split_ids(src, "train")), "some images with people, some without (%d)" % people)

    bad_inputs(src)
    if failures:
        print("%d failures" % len(failures))
        sys.exit(1)
    print("pack_cli: all checks passed")


# ---- bad inputs ----
def fresh_copy(src, name):
    d = os.path.join(WORK, "bad", name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(src, d)
    return d


def expect_failure(name, root, needle, extra=()):
    out_dir = os.path.join(WORK, "bad", name + "-out")
    shutil.rmtree(out_dir, ignore_errors=True)
    out = run(root, out_dir, "--split", "train", "--shard-size", "100", "--tasks", TASKS, *extra, expect=1)
    check(needle in out, "%s: message names %s: %s" % (name, needle, out.strip()))
    left = os.listdir(out_dir) if os.path.isdir(out_dir) else []
    check(not any(n.endswith(".h5") or n.endswith(".part") or n.endswith(".manifest") for n in left),
          "%s: nothing left under a final name or as .part: %s" % (name, left))
    return out


def expect_skip(name, src, iid, rel, spoil, needle):
    """A bad MAT file costs its record: the rest is packed, the record is
    listed, no manifest, exit 1; repaired, a re-run completes the split."""
    d = fresh_copy(src, name)
    out_dir = os.path.join(WORK, "bad", name + "-out")
    shutil.rmtree(out_dir, ignore_errors=True)
    victim = os.path.join(d, rel)
    saved = open(victim, "rb").read()
    spoil(victim)
    args = (d, out_dir, "--split", "train", "--shard-size", "3", "--tasks", TASKS)
    out = run(*args, expect=1)
    check(needle in out, "%s: message names %s: %s" % (name, needle, out.strip()))
    check("record 1 (%s) skipped" % iid in out and "skipped 1 of" in out and "\n  %s: " % iid in out,
          "%s: the skipped record is reported and listed: %s" % (name, out.strip()))
    left = os.listdir(out_dir)
    check(not any(n.endswith(".manifest") or ".tmp." in n or n.endswith(".part") for n in left),
          "%s: no manifest, no temporary: %s" % (name, left))
    ids = split_ids(d, "train")
    got = packed_records(out_dir, "train")
    check(sorted(got) == sorted(i for i in ids if i != iid), "%s: every other record packed: %s" % (name, sorted(got)))
    open(victim, "wb").write(saved)
    out = run(*args)
    check("packing it again" in out, "%s: the re-run repacks the shard missing the record: %s" % (name, out.strip()))
    check(os.path.exists(os.path.join(out_dir, "train.manifest")), "%s: manifest after the repaired re-run" % name)
    check(list(packed_records(out_dir, "train")) == ids, "%s: all records after the re-run" % name)


def truncate(path, keep=0.5):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: int(len(data) * keep)])


def bad_inputs(src):
    iid = split_ids(src, "train")[1]

    d = fresh_copy(src, "missing")
    os.remove(os.path.join(d, "sal_distill", iid + ".png"))
    expect_failure("missing", d, "sal_distill/%s.png" % iid)

    d = fresh_copy(src, "jpeg")
    truncate(os.path.join(d, "JPEGImages", iid + ".jpg"))
    expect_failure("jpeg", d, "JPEGImages/%s.jpg" % iid)

    d = fresh_copy(src, "png")
    truncate(os.path.join(d, "semseg", "pascal-context", iid + ".png"))
    expect_failure("png", d, "semseg/pascal-context/%s.png" % iid)

    parts = os.path.join("human_parts", iid + ".mat")
    labels = os.path.join("pascal-context", "trainval", iid + ".mat")
    expect_skip("mat", src, iid, parts, lambda p: sio.savemat(p, {"something": np.ones((2, 2))}),
                "human_parts/%s.mat: no struct variable 'anno'" % iid)
    expect_skip("matfields", src, iid, labels, lambda p: sio.savemat(p, {"Labels": np.ones((4, 4))}),
                "trainval/%s.mat: no variable 'LabelMap'" % iid)
    expect_skip("mat-truncated", src, iid, parts, truncate, "human_parts/%s.mat" % iid)
    # 20 bytes of MAT v4 header claiming 16384 x 16384 doubles: libmatio would allocate 2 GiB
    expect_skip("mat-v4", src, iid, labels,
                lambda p: open(p, "wb").write(np.array([0, 16384, 16384, 0, 9], "<u4").tobytes()),
                "trainval/%s.mat: MAT v4 variable 1 declares 16384x16384 elements" % iid)
    expect_skip("mat-sparse", src, iid, labels,
                lambda p: sio.savemat(p, {"LabelMap": scipy.sparse.csc_matrix(np.eye(4))}),
                "trainval/%s.mat: variable LabelMap: is sparse" % iid)
    expect_skip("mat-range", src, iid, labels,
                lambda p: sio.savemat(p, {"LabelMap": np.full((4, 4), 1e12)}),
                "trainval/%s.mat: variable LabelMap: value 1e+12 at row 0 col 0 is not a class id" % iid)

    d = fresh_copy(src, "range")
    p = os.path.join(d, "semseg", "pascal-context", iid + ".png")
    a = np.array(Image.open(p))
    a[0, 0] = 30
    Image.fromarray(a).save(p)
    expect_failure("range", d, "label 30 at row 0 col 0 is out of range")

    d = fresh_copy(src, "size")
    p = os.path.join(d, "sal_distill", iid + ".png")
    a = np.array(Image.open(p))
    Image.fromarray(cv2.resize(a, (a.shape[1] + 3, a.shape[0]), interpolation=cv2.INTER_NEAREST)).save(p)
    expect_failure("size", d, "sal_distill/%s.png: label is" % iid)
    # ... which the official loader resizes instead; so does --resize-labels
    run(d, os.path.join(WORK, "bad", "size-resized"), "--split", "train", "--tasks", TASKS, "--resize-labels")

    d = fresh_copy(src, "split")
    with open(os.path.join(d, "ImageSets", "Context", "train.txt"), "a") as f:
        f.write("2099_999999\n")
    expect_failure("split", d, "JPEGImages/2099_999999.jpg")

    # corrupt and truncated shards are named by --verify
    good = os.path.join(WORK, "shards")
    bad = os.path.join(WORK, "bad", "shards-corrupt")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(good, bad)
    victim = os.path.join(bad, "train-00001.h5")
    with h5py.File(victim, "r") as f:
        off = f["records/000001/image_jpeg"].id.get_offset()
        bad_id = f["index/ids"][1].decode()
    with open(victim, "r+b") as f:
        f.seek(off + 100)
        b = f.read(1)
        f.seek(off + 100)
        f.write(bytes([b[0] ^ 0x5A]))
    out = run("--verify", bad, expect=1)
    check("train-00001.h5 record 1 (%s): checksum mismatch" % bad_id in out, "corrupt record named: " + out)

    bad = os.path.join(WORK, "bad", "shards-truncated")  # both kept for test_loader
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(good, bad)
    truncate(os.path.join(bad, "val-00000.h5"), 0.6)
    out = run("--verify", bad, expect=1)
    check("val-00000.h5" in out, "truncated shard named: " + out)

    # bad flags: usage errors exit 2 and name the flag
    out = run(src, good, "--split", "test", expect=2)
    check("--split" in out, "bad split named: " + out)
    out = run(src, good, "--split", "train", "--tasks", "semseg,depth", expect=2)
    check("'depth'" in out, "unknown task named: " + out)
    out = run(src, good, "--split", "train", "--shard-size", "0", expect=2)
    check("--shard-size" in out, "bad shard size named: " + out)


if __name__ == "__main__":
    main()
