"""Tensor bundle: the little file format the parity tests share with C.

    b"MTTB" u32 version=1 u32 count
    count x { u32 name_len, name (utf-8), u32 ndim, i64 dims[ndim], f32 data }

Little-endian. Everything is stored as float32 (integer labels too); see
tests/tensor_bundle.h for the reader.
"""
import struct

import numpy as np


def write_bundle(path, tensors):
    with open(path, "wb") as f:
        f.write(b"MTTB")
        f.write(struct.pack("<II", 1, len(tensors)))
        for name, arr in tensors.items():
            a = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", a.ndim))
            f.write(struct.pack("<%dq" % a.ndim, *a.shape))
            f.write(a.tobytes())
