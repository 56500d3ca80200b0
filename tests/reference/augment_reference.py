"""Reference for the augmentation parity test: a Python port of the official
PASCAL-Context transforms (scale-lab/MTLoRA data/custom_transforms.py, as
composed by data/mtl_ds.py get_transformations) run with the real OpenCV,
numpy and torch on generated records with fixed random draws.

    augment_reference.py OUTDIR   -> OUTDIR/augment_cases.bundle

Bundle entries per case k: rec{k}.<elem> inputs (uint8 values as float32),
case{k}.draw = [is_train, flip, rot, scale, S, record], case{k}.<elem> outputs.
"""
import os
import sys

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import write_bundle  # noqa: E402

FLAGS = {"image": cv2.INTER_CUBIC, "semseg": cv2.INTER_NEAREST, "human_parts": cv2.INTER_NEAREST,
         "sal": cv2.INTER_NEAREST, "normals": cv2.INTER_CUBIC, "edge": cv2.INTER_NEAREST}
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


# --- the official transforms, ported (same numpy/cv2 calls, same order) ---
def horizontal_flip(sample):
    for k in sample:
        sample[k] = cv2.flip(sample[k], flipCode=1)
        if k == "normals":
            sample[k][:, :, 0] *= -1
    return sample


def scale_n_rotate(sample, rot, sc):
    for k in sample:
        tmp = sample[k]
        h, w = tmp.shape[:2]
        M = cv2.getRotationMatrix2D((w / 2, h / 2), rot, sc)
        if k == "normals":
            in_plane = np.arctan2(tmp[:, :, 0], tmp[:, :, 1])
            nrm_0 = np.sqrt(tmp[:, :, 0] ** 2 + tmp[:, :, 1] ** 2)
            rot_rad = rot * 2 * np.pi / 360
            tmp[:, :, 0] = np.sin(in_plane + rot_rad) * nrm_0
            tmp[:, :, 1] = np.cos(in_plane + rot_rad) * nrm_0
        sample[k] = cv2.warpAffine(tmp, M, (w, h), flags=FLAGS[k])
    return sample


def fixed_resize(sample, S):
    for k in sample:
        sample[k] = cv2.resize(sample[k], (S, S), interpolation=FLAGS[k])
        if k == "normals":
            n = sample[k]
            nn = np.sqrt(n[:, :, 0] ** 2 + n[:, :, 1] ** 2 + n[:, :, 2] ** 2) + np.finfo(float).eps
            n[:, :, 0], n[:, :, 1], n[:, :, 2] = n[:, :, 0] / nn, n[:, :, 1] / nn, n[:, :, 2] / nn
    return sample


def add_ignore_regions(sample):
    if "normals" in sample:
        t = sample["normals"]
        nn = np.sqrt(t[:, :, 0] ** 2 + t[:, :, 1] ** 2 + t[:, :, 2] ** 2)
        t[nn == 0, :] = 255.
    if "human_parts" in sample and (sample["human_parts"] == 0).all():
        sample["human_parts"] = 255 * np.ones(sample["human_parts"].shape)
    return sample


def to_tensor_normalize(sample):
    out = {}
    for k, t in sample.items():
        if t.ndim == 2:
            t = t[:, :, None]
        if k == "image":
            img = torch.from_numpy(t.astype(np.uint8).transpose((2, 0, 1))).contiguous()
            img = img.to(dtype=torch.float32).div(255)
            mean = torch.as_tensor(MEAN, dtype=torch.float32)[:, None, None]
            std = torch.as_tensor(STD, dtype=torch.float32)[:, None, None]
            out[k] = img.sub_(mean).div_(std).numpy()
        else:
            out[k] = t.transpose((2, 0, 1)).astype(float)
    return out


def official(sample, S, draw):
    sample = {k: v.copy() for k, v in sample.items()}
    if draw is not None:
        flip, rot, sc = draw
        if flip:
            sample = horizontal_flip(sample)
        sample = scale_n_rotate(sample, rot, sc)
    sample = add_ignore_regions(fixed_resize(sample, S))
    return to_tensor_normalize(sample)


# --- generated records ---
def make_record(rng, h, w, with_person=True):
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(xx / 7.0 + c) * np.cos(yy / 5.0) for c in range(3)], -1)
    img += rng.normal(0, 20, img.shape)
    img[h // 3: h // 2, w // 4: w // 2] = [255, 0, 255]     # sharp edges: bicubic overshoot
    img = np.clip(img, 0, 255).astype(np.uint8)
    semseg = np.zeros((h, w), np.uint8)
    for _ in range(4):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(3, max(4, h // 3))
        semseg[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(1, 21)
    semseg[0:2, :] = 255
    parts = np.zeros((h, w), np.uint8)
    if with_person:
        for p in range(1, 7):
            cy, cx = rng.integers(h // 4, 3 * h // 4), rng.integers(w // 4, 3 * w // 4)
            parts[(np.abs(yy - cy) < h // 10) & (np.abs(xx - cx) < w // 12)] = p
    sal = (semseg > 0).astype(np.uint8)
    edge = np.zeros((h, w), np.uint8)
    edge[:, w // 2] = 1
    edge[h // 3, :] = 1
    nx = np.sin(xx / 9.0) * 0.5
    ny = np.cos(yy / 11.0) * 0.5
    nz = np.sqrt(np.maximum(1 - nx * nx - ny * ny, 0))
    normals = np.clip(np.round((np.stack([nx, ny, nz], -1) + 1) / 2 * 255), 0, 255).astype(np.uint8)
    mask = ((xx + yy) % 17 > 3).astype(np.uint8)
    mask[h // 2:, : w // 3] = 0
    return {"image": img, "semseg": semseg, "human_parts": parts, "sal": sal, "edge": edge,
            "normals": normals, "normals_mask": mask}


def loader_view(rec):
    """The float64 arrays the official loader hands to the transforms."""
    n = 2.0 * rec["normals"].astype(float) / 255.0 - 1.0
    n[rec["normals_mask"] == 0, :] = 0
    return {"image": rec["image"].astype(float), "semseg": rec["semseg"].astype(float),
            "human_parts": rec["human_parts"].astype(float), "sal": rec["sal"].astype(float),
            "edge": rec["edge"].astype(float), "normals": n}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    recs = [make_record(rng, 61, 83), make_record(rng, 90, 64, with_person=False),
            make_record(rng, 375, 500)]
    f32 = lambda v: float(np.float32(v))  # noqa: E731  draws travel as float32
    cases = [(0, (1, f32(17.3), f32(1.21)), 48), (0, (0, f32(-19.9), f32(0.76)), 48),
             (0, (1, 0.0, 1.0), 48), (0, None, 48), (1, (0, f32(5.5), f32(0.9)), 40),
             (1, (1, f32(-3.25), f32(1.249)), 56), (1, None, 32), (2, (1, f32(11.7), f32(0.8)), 448),
             (2, None, 448)]
    for _ in range(6):  # random draws from the official formulas
        r = rng.random(3)
        cases.append((int(rng.integers(0, 2)),
                      (int(r[0] < 0.5), f32(40 * r[1] - 20), f32(0.5 * r[2] - 0.25 + 1)), 48))
    tensors = {}
    for i, rec in enumerate(recs):
        for k, v in rec.items():
            tensors["rec%d.%s" % (i, k)] = v
    for k, (ri, draw, S) in enumerate(cases):
        res = official(loader_view(recs[ri]), S, draw)
        d = [0, 0, 0, 1, S, ri] if draw is None else [1, draw[0], draw[1], draw[2], S, ri]
        tensors["case%d.draw" % k] = np.array(d, dtype=np.float64)
        for name, v in res.items():
            tensors["case%d.%s" % (k, name)] = v
    tensors["ncases"] = np.array([len(cases)])
    write_bundle(os.path.join(out, "augment_cases.bundle"), tensors)


if __name__ == "__main__":
    main()
