"""Reference for the prediction-picture test (test_predict.c): what the
official code does with a prediction, run with the real torch and OpenCV:
get_output (scale-lab/MTLoRA evaluation/evaluate_utils.py), then
cv2.resize(value, (w, h), interpolation=INFER_FLAGVALS[task]) and
.astype(np.uint8), as save_model_predictions of the code MTLoRA's evaluation
comes from; INFER_FLAGVALS as data/mtl_ds.py (nearest for semseg and
human_parts, linear for sal, normals, edge). Also cv2.resize INTER_LINEAR
on float32 images, the VOC colour map and the normals colouring.

    predict_reference.py OUTDIR   -> OUTDIR/predict_cases.bundle

Entries: resize{k}.src [sh, sw, c], resize{k}.dst [dh, dw, c];
labels{k}.logits [K, S, S], labels{k}.out [h, w]; sal{k}.logit [1, S, S],
sal{k}.gray, sal{k}.mask [h, w]; normals{k}.logits [3, S, S],
normals{k}.rgb [h, w, 3]; voc [256, 3]; normal_vectors [n, 3],
normal_colors [n, 3].
"""
import os
import sys

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import write_bundle  # noqa: E402


def get_output(output, task):
    """evaluation/evaluate_utils.py get_output, verbatim but for the batch axis."""
    output = output.permute(0, 2, 3, 1)
    if task == "normals":
        output = (F.normalize(output, p=2, dim=3) + 1.0) * 255 / 2.0
    elif task in {"semseg", "human_parts"}:
        _, output = torch.max(output, dim=3)
    elif task in {"edge", "sal"}:
        output = torch.squeeze(255 * 1 / (1 + torch.exp(-output)))
    return output


def voc_colormap(n=256):
    """The VOC devkit's labelcolormap (bitget of the label, three bits per byte)."""
    cmap = np.zeros((n, 3), np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(16)
    T = {}
    # cv2.resize INTER_LINEAR on float32: odd sizes up and down, the same
    # size (a copy), an exact 2x downscale (OpenCV's INTER_AREA), 1 and 3 channels
    shapes = [(8, 8, 1, 37, 53), (48, 48, 1, 53, 37), (48, 48, 3, 101, 67), (48, 48, 3, 67, 101),
              (48, 48, 1, 24, 24), (48, 48, 3, 24, 24), (16, 16, 3, 16, 16), (7, 9, 1, 3, 20),
              (48, 48, 3, 96, 96), (5, 3, 1, 2, 7)]
    for k, (sh, sw, c, dh, dw) in enumerate(shapes):
        a = (rng.random((sh, sw, c)) * 255).astype(np.float32)
        r = cv2.resize(a if c > 1 else a[:, :, 0], (dw, dh), interpolation=cv2.INTER_LINEAR)
        T["resize%d.src" % k] = a
        T["resize%d.dst" % k] = r.reshape(dh, dw, c)
    S = 24
    for k, (K, h, w) in enumerate([(21, 53, 37), (7, 67, 101), (21, 24, 24), (7, 11, 5)]):
        logits = rng.standard_normal((1, K, S, S)).astype(np.float32)
        lab = get_output(torch.from_numpy(logits), "semseg")[0].numpy().astype(np.uint8)
        T["labels%d.logits" % k] = logits[0]
        T["labels%d.out" % k] = cv2.resize(lab, (w, h), interpolation=cv2.INTER_NEAREST)
    for k, (h, w) in enumerate([(53, 37), (67, 101), (24, 24), (12, 12)]):
        logit = (3 * rng.standard_normal((2, 1, S, S))).astype(np.float32)
        v = get_output(torch.from_numpy(logit), "sal")[0].numpy()
        r = cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR)
        T["sal%d.logit" % k] = logit[0]
        T["sal%d.gray" % k] = r.astype(np.uint8)
        T["sal%d.mask" % k] = np.where(r / 255.0 > 0.5, 255, 0)
    for k, (h, w) in enumerate([(53, 37), (67, 101), (24, 24)]):
        logits = rng.standard_normal((1, 3, S, S)).astype(np.float32)
        v = get_output(torch.from_numpy(logits), "normals")[0].numpy()
        T["normals%d.logits" % k] = logits[0]
        T["normals%d.rgb" % k] = cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.uint8)
    T["voc"] = voc_colormap()
    vecs = np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0], [0, 3, 4], [-2, 1, 2], [0.3, -0.2, 0.9],
                     [0, 0, 0], [1e-3, 2e-3, -5e-3]], np.float32)
    T["normal_vectors"] = vecs
    col = get_output(torch.from_numpy(vecs.reshape(1, -1, 1, 3).transpose(0, 3, 1, 2).copy()), "normals")
    T["normal_colors"] = col.numpy().reshape(-1, 3).astype(np.uint8)
    write_bundle(os.path.join(out, "predict_cases.bundle"), T)
    print("wrote %d tensors to %s" % (len(T), out))


if __name__ == "__main__":
    main()
