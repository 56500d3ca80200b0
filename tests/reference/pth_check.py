"""Reads the .pth files tests/test_pth.c wrote with pth_write, with
torch.load(weights_only=True), and checks every tensor against the
values the C test recorded.

    pth_check.py DIR

DIR holds, per written file F, F (the .pth), F.manifest and F.expect (the
tensors' data, concatenated, float32 or int64 little-endian). The
manifest: a line "file<TAB>F<TAB>TOP_KEY|-", then per tensor
"tensor<TAB>NAME<TAB>f32|i64<TAB>NDIM<TAB>DIMS|-<TAB>OFFSET". Each file
must load as an OrderedDict (under TOP_KEY if given) of exactly those
tensors, in that order, with those dtypes, shapes and bytes, contiguous.
Exits 77 (ctest's skip) when torch is missing, 1 on any mismatch.
"""
import collections
import glob
import os
import sys

try:
    import torch
except ImportError:
    print("pth_check.py: torch is not installed (Debian python3-torch); skipping")
    sys.exit(77)

DIR = sys.argv[1]
manifests = sorted(glob.glob(os.path.join(DIR, "*.manifest")))
if not manifests:
    sys.exit(f"pth_check.py: no manifests in {DIR} (did the pth test run?)")
checked = 0
for m in manifests:
    lines = [line.rstrip("\n").split("\t") for line in open(m, encoding="utf-8")]
    assert lines[0][0] == "file", m
    fname, top = lines[0][1], lines[0][2]
    path = os.path.join(DIR, fname)
    expect = open(path + ".expect", "rb").read()
    obj = torch.load(path, weights_only=True)
    if top != "-":
        assert isinstance(obj, dict) and list(obj.keys()) == [top], (path, type(obj))
        obj = obj[top]
    assert isinstance(obj, collections.OrderedDict), (path, type(obj))
    rows = lines[1:]
    assert list(obj.keys()) == [r[1] for r in rows], (path, list(obj.keys())[:5])
    for _, name, dt, ndim, dims, off in rows:
        t = obj[name]
        want_dtype = torch.float32 if dt == "f32" else torch.int64
        shape = [] if dims == "-" else [int(x) for x in dims.split(",")]
        assert t.dtype == want_dtype, (path, name, t.dtype)
        assert list(t.shape) == shape and t.dim() == int(ndim), (path, name, t.shape)
        assert t.is_contiguous() and t.storage_offset() == 0, (path, name)
        n = t.numel() * t.element_size()
        got = t.numpy().tobytes() if t.numel() else b""
        assert got == expect[int(off):int(off) + n], (path, name, "values differ")
        checked += 1
print(f"pth_check.py: {len(manifests)} files, {checked} tensors read by torch.load(weights_only=True) "
      "equal to what pth_write was given")
