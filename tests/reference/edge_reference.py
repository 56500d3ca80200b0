"""Reference edge targets for tests/test_edge_map.c.

    python3 edge_reference.py OUTDIR   ->  OUTDIR/edge_cases.bin

The official MTLoRA PASCAL loader (scale-lab/MTLoRA data/mtl_ds.py, _load_edge)
makes the edge target from the 459-class LabelMap (uint16, from the .mat) as

    _edge = cv2.Laplacian(LabelMap, cv2.CV_64F)
    _edge = skimage.morphology.thin(np.abs(_edge) > 0).astype(float)

scikit-image must not be installed here, so `thin` below is a port of
skimage.morphology.thin and _generate_thin_luts from scikit-image's
skimage/morphology/_skeletonize.py, read at commit
cd0a3d22b9f359f05618d75d5c7a29b91b4951ca (0.26.1rc0.dev0, where the file lives
at src/_skimage2/morphology/_skeletonize.py); the algorithm is unchanged since
v0.22.0 (checked against the v0.22.0 tag). At that commit the hard-coded
G123_LUT / G123P_LUT that thin() uses equal what _generate_thin_luts() returns,
so generating them is faithful. The Laplacian is the real cv2.Laplacian.

Before writing anything, the port is checked against thin_brute_force, a
literal per-pixel reading of Guo and Hall's conditions (no lookup tables, no
correlation), and against the example in skimage's thin() docstring.

The bundle (tests/reference/bundle.py) holds
    count, thin_count                                  (1-element)
    c{i}_labels, c{i}_mask, c{i}_edge                  (h, w) label-map cases
    t{i}_image, t{i}_thinned                           (h, w) thin-only cases
"""
import os
import sys
import time

import cv2
import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import write_bundle  # noqa: E402


# ------------------------------------------------------------ port of skimage


def _nabe(n):
    """Neighbourhood code -> 8 booleans, bit k = Guo-Hall's x_(k+1)."""
    return [bool(n >> k & 1) for k in range(8)]


def _g1(n):
    b = _nabe(n)
    return sum(1 for i in (0, 2, 4, 6) if not b[i] and (b[i + 1] or b[(i + 2) % 8])) == 1


def _g2(n):
    b = _nabe(n)
    n1 = sum(1 for k in (1, 3, 5, 7) if b[k] or b[k - 1])
    n2 = sum(1 for k in (1, 3, 5, 7) if b[k] or b[(k + 1) % 8])
    return min(n1, n2) in (2, 3)


def _g3(n):
    b = _nabe(n)
    return not ((b[1] or b[2] or not b[7]) and b[0])


def _g3p(n):
    b = _nabe(n)
    return not ((b[5] or b[6] or not b[3]) and b[4])


def thin_luts():
    g12 = np.array([_g1(n) and _g2(n) for n in range(256)])
    g3 = np.array([_g3(n) for n in range(256)])
    g3p = np.array([_g3p(n) for n in range(256)])
    return g12 & g3, g12 & g3p


G123_LUT, G123P_LUT = thin_luts()
# skimage's correlation kernel: neighbour (dy, dx) weighs KERNEL[dy+1, dx+1].
KERNEL = np.array([[8, 4, 2], [16, 0, 1], [32, 64, 128]], dtype=np.uint8)


def thin(image):
    """skimage.morphology.thin(image, max_num_iter=None)."""
    skel = np.asarray(image, dtype=bool).astype(np.uint8)
    n_old, n_new = np.inf, np.sum(skel)
    while n_old != n_new:
        n_old = n_new
        for lut in (G123_LUT, G123P_LUT):
            code = ndi.correlate(skel, KERNEL, mode="constant")
            skel[np.take(lut, code)] = 0
        n_new = np.sum(skel)
    return skel.astype(bool)


def load_edge(label_map):
    """The official _load_edge on an in-memory LabelMap."""
    lap = cv2.Laplacian(label_map, cv2.CV_64F)
    mask = np.abs(lap) > 0
    return mask, thin(mask).astype(float)


# ------------------------------------------------------- independent check


def thin_brute_force(image):
    """Guo & Hall 1989, algorithm A1, pixel by pixel, straight from the paper:
    neighbours x1..x8 counter-clockwise from east, outside = background; a
    sub-iteration decides every pixel from the image as it was before it."""
    img = np.asarray(image, dtype=bool).copy()
    h, w = img.shape

    def px(y, x):
        return bool(img[y, x]) if 0 <= y < h and 0 <= x < w else False

    def neighbours(y, x):
        # x1=E, x2=NE, x3=N, x4=NW, x5=W, x6=SW, x7=S, x8=SE; x[9] = x[1]
        xs = [px(y, x + 1), px(y - 1, x + 1), px(y - 1, x), px(y - 1, x - 1),
              px(y, x - 1), px(y + 1, x - 1), px(y + 1, x), px(y + 1, x + 1)]
        return dict(zip(range(1, 10), xs + xs[:1]))

    def deletable(x, first):
        xh = sum(1 for i in range(1, 5) if not x[2 * i - 1] and (x[2 * i] or x[2 * i + 1]))
        n1 = sum(1 for k in range(1, 5) if x[2 * k - 1] or x[2 * k])
        n2 = sum(1 for k in range(1, 5) if x[2 * k] or x[2 * k + 1])
        if first:
            g3 = not ((x[2] or x[3] or not x[8]) and x[1])
        else:
            g3 = not ((x[6] or x[7] or not x[4]) and x[5])
        return xh == 1 and 2 <= min(n1, n2) <= 3 and g3

    changed = True
    while changed:
        changed = False
        for first in (True, False):
            doomed = [(y, x) for y in range(h) for x in range(w)
                      if img[y, x] and deletable(neighbours(y, x), first)]
            for y, x in doomed:
                img[y, x] = False
            changed = changed or bool(doomed)
    return img


# Example from skimage's thin() docstring, with its documented output.
DOC_INPUT = np.zeros((7, 7), dtype=bool)
DOC_INPUT[1:-1, 2:-2] = True
DOC_INPUT[0, 1] = True
DOC_OUTPUT = np.zeros((7, 7), dtype=bool)
DOC_OUTPUT[[0, 1, 2, 3, 4], [1, 2, 3, 3, 3]] = True


def self_check(rng):
    assert G123_LUT.sum() == 37 and G123P_LUT.sum() == 37, "LUT sizes"
    assert np.array_equal(thin(DOC_INPUT), DOC_OUTPUT), "skimage docstring example"
    assert np.array_equal(thin_brute_force(DOC_INPUT), DOC_OUTPUT), "brute force, docstring"
    images = [rng.random((h, w)) < p for h, w, p in
              [(9, 11, 0.5), (12, 10, 0.7), (16, 16, 0.85), (1, 8, 0.6), (8, 1, 0.6), (10, 13, 0.3)]]
    images.append(np.ones((6, 9), dtype=bool))
    images.append(load_edge(random_blobs(rng, 24, 30, 5))[0])
    for k, im in enumerate(images):
        assert np.array_equal(thin(im), thin_brute_force(im)), f"port != brute force on image {k}"
    # An image Guo-Hall actually thins (so the check above was not vacuous).
    assert thin(images[2]).sum() < images[2].sum()


# ------------------------------------------------------------------- cases


def random_blobs(rng, h, w, n, max_id=459):
    """Background class plus overlapping ellipses and rectangles of random
    class ids (uint16, the LabelMap dtype, up to 459)."""
    lab = np.full((h, w), rng.integers(0, max_id + 1), dtype=np.uint16)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(n):
        cid = rng.integers(0, max_id + 1)
        cy, cx = rng.uniform(-0.1, 1.1) * h, rng.uniform(-0.1, 1.1) * w
        ry, rx = rng.uniform(0.05, 0.4) * h + 1, rng.uniform(0.05, 0.4) * w + 1
        if rng.random() < 0.5:
            sel = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        else:
            sel = (abs(yy - cy) <= ry) & (abs(xx - cx) <= rx)
        lab[sel] = cid
    lab[rng.integers(0, h), rng.integers(0, w)] = max_id  # the largest id appears
    return lab


def thin_structures(h, w):
    """1-px lines, single pixels and small patterns on a background."""
    lab = np.zeros((h, w), dtype=np.uint16)
    lab[5, 3:w - 3] = 7            # horizontal line
    lab[8:h - 4, 10] = 200          # vertical line
    for k in range(min(h, w) - 20):  # diagonal line
        lab[15 + k, 20 + k] = 459
    lab[2, 2] = 3                   # isolated pixels
    lab[h - 3, w - 3] = 4
    lab[30:36, 40:46] = (np.indices((6, 6)).sum(0) % 2) * 11  # checkerboard
    lab[h - 1, :] = 9               # a line on the border
    return lab


def border_touching(h, w):
    """Quadrants and a diagonal band that all run off the image edges."""
    yy, xx = np.mgrid[0:h, 0:w]
    lab = (1 + (yy >= h // 2) * 2 + (xx >= w // 3)).astype(np.uint16) * 57
    lab[abs(yy - xx) <= 2] = 459
    lab[:, 0] = 12                  # a column along the left edge
    return lab


def label_cases(rng):
    cases = [
        ("tiny_7x5", rng.integers(0, 4, size=(7, 5)).astype(np.uint16)),
        ("blobs_64x48", random_blobs(rng, 64, 48, 8)),
        ("blobs_375x500", random_blobs(rng, 375, 500, 40)),
        ("blobs_500x375", random_blobs(rng, 500, 375, 25)),
        ("row_1x37", rng.integers(0, 3, size=(1, 37)).astype(np.uint16)),
        ("col_41x1", np.repeat(np.array([0, 5, 5, 9, 1, 1, 3, 3, 3, 0, 0], np.uint16), 4)[:41, None]),
        ("pixel_1x1", np.array([[42]], dtype=np.uint16)),
        ("two_2x2", np.array([[1, 2], [2, 2]], dtype=np.uint16)),
        ("strip_2x19", rng.integers(0, 2, size=(2, 19)).astype(np.uint16)),
        ("constant_20x30", np.full((20, 30), 17, dtype=np.uint16)),
        ("border_40x30", border_touching(40, 30)),
        ("thin_structs_50x60", thin_structures(50, 60)),
        ("noise_33x29", rng.integers(0, 3, size=(33, 29)).astype(np.uint16)),
        ("split_16x20", np.repeat(np.array([[3] * 10 + [8] * 10], np.uint16), 16, axis=0)),
        ("coarse_noise_96x128", cv2.resize(rng.integers(0, 460, size=(12, 16)).astype(np.uint16),
                                           (128, 96), interpolation=cv2.INTER_NEAREST)),
    ]
    return cases


def thin_cases(rng):
    """Binary images that need many passes (thick regions), for thin alone."""
    yy, xx = np.mgrid[0:80, 0:90]
    disks = np.zeros((80, 90), dtype=bool)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, 80), rng.uniform(0, 90), rng.uniform(5, 20)
        disks |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return [
        ("disks_80x90", disks),
        ("full_12x9", np.ones((12, 9), dtype=bool)),
        ("noise_40x40", rng.random((40, 40)) < 0.6),
        ("rect_with_hole_24x40", np.pad(np.pad(np.zeros((4, 20), bool), 6, constant_values=True), 4)),
        ("doc_example_7x7", DOC_INPUT),
    ]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: edge_reference.py OUTDIR")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    rng = np.random.default_rng(20240611)
    self_check(rng)

    tensors = {}
    lcases = label_cases(rng)
    tensors["count"] = np.array([len(lcases)])
    for i, (name, lab) in enumerate(lcases):
        assert lab.dtype == np.uint16 and lab.ndim == 2
        mask, edge = load_edge(lab)
        tensors[f"c{i}_labels"] = lab
        tensors[f"c{i}_mask"] = mask
        tensors[f"c{i}_edge"] = edge
        print(f"case {i:2d} {name:22s} {lab.shape} mask {int(mask.sum()):6d} edge {int(edge.sum()):6d}")

    tcases = thin_cases(rng)
    tensors["thin_count"] = np.array([len(tcases)])
    for i, (name, im) in enumerate(tcases):
        th = thin(im)
        tensors[f"t{i}_image"] = im
        tensors[f"t{i}_thinned"] = th
        print(f"thin {i:2d} {name:22s} {im.shape} in {int(im.sum()):6d} out {int(th.sum()):6d}")

    write_bundle(os.path.join(out_dir, "edge_cases.bin"), tensors)
    print(f"wrote {out_dir}/edge_cases.bin in {time.time() - t0:.2f}s")


if __name__ == "__main__":
    main()
