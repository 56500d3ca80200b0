"""Reference cases for tests/test_image_codec.c: image files and the arrays
PIL decodes from them, which the C codec must reproduce exactly.

    codec_reference.py OUTDIR

writes OUTDIR/<name>.{jpg,png} and OUTDIR/cases.bundle holding, per file,
a tensor named after the file:
  - JPEG: np.array(Image.open(f).convert('RGB'))  (h, w, 3)
  - PNG:  np.array(Image.open(f))                 (h, w) or (h, w, c)
and, for each file the codec must refuse, a one-element tensor named
"refuse:<file>". Every file is checked here to really be the kind of file
its name claims (sampling, progressive, bit depth, tRNS), so a PIL change
cannot quietly turn a case into a weaker one.
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, JpegImagePlugin

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import write_bundle  # noqa: E402

RNG = np.random.default_rng(20240611)


def photo(h, w, channels):
    """Smooth gradients plus noise: exercises both DC and high-frequency paths."""
    y, x = np.mgrid[0:h, 0:w]
    base = [(x * 255.0 / max(w - 1, 1)), (y * 255.0 / max(h - 1, 1)), ((x + y) * 3.0) % 256]
    planes = [np.clip(base[k] + RNG.normal(0, 24, (h, w)), 0, 255) for k in range(channels)]
    a = np.stack(planes, axis=-1).astype(np.uint8)
    return a[..., 0] if channels == 1 else a


# ---- PNG bytes written by hand, for kinds PIL cannot save ----------------

def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(rows, w, h, depth, color_type, interlace=0, extra=b""):
    """rows: already-filtered scanlines (each starting with its filter byte)."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra +
            _chunk(b"IDAT", zlib.compress(b"".join(rows))) + _chunk(b"IEND", b""))


def pack_row(values, depth):
    bits = "".join(format(int(v), "0%db" % depth) for v in values)
    bits += "0" * (-len(bits) % 8)
    return b"\x00" + int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b"\x00"


def low_depth_png(values, depth, color_type, extra=b""):
    h, w = values.shape
    return raw_png([pack_row(r, depth) for r in values], w, h, depth, color_type, extra=extra)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def interlaced_rgb_png(a):
    h, w, _ = a.shape
    rows = []
    for x0, y0, dx, dy in ADAM7:
        sub = a[y0::dy, x0::dx]
        if sub.shape[0] and sub.shape[1]:
            rows += [b"\x00" + r.tobytes() for r in sub]
    return raw_png(rows, w, h, 8, 2, interlace=1)


def png_header(path):
    with open(path, "rb") as f:
        head = f.read(33)
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return {"w": w, "h": h, "depth": depth, "type": ctype, "interlace": interlace}


def png_has_chunk(path, kind):
    with open(path, "rb") as f:
        return kind in f.read()


# ---- the cases -------------------------------------------------------------

def jpeg_cases():
    """name -> (PIL image, save kwargs, check on the reopened image)."""
    sampling = JpegImagePlugin.get_sampling
    return {
        "gray.jpg": (Image.fromarray(photo(53, 37, 1), "L"), {"quality": 90},
                     lambda im: im.mode == "L"),
        "rgb420.jpg": (Image.fromarray(photo(53, 37, 3)), {"quality": 85, "subsampling": 2},
                       lambda im: sampling(im) == 2),
        "rgb422.jpg": (Image.fromarray(photo(37, 53, 3)), {"quality": 80, "subsampling": 1},
                       lambda im: sampling(im) == 1),
        "rgb444.jpg": (Image.fromarray(photo(53, 37, 3)), {"quality": 95, "subsampling": 0},
                       lambda im: sampling(im) == 0),
        "rgb420_large.jpg": (Image.fromarray(photo(251, 333, 3)), {"quality": 75},
                             lambda im: sampling(im) == 2),
        "progressive.jpg": (Image.fromarray(photo(45, 61, 3)),
                            {"quality": 88, "progressive": True, "optimize": True},
                            lambda im: im.info.get("progressive") == 1),
        "gray_progressive.jpg": (Image.fromarray(photo(29, 31, 1), "L"),
                                 {"quality": 70, "progressive": True},
                                 lambda im: im.mode == "L" and im.info.get("progressive") == 1),
        "tiny.jpg": (Image.fromarray(photo(1, 1, 3)), {"quality": 50}, lambda im: im.size == (1, 1)),
    }


def write_jpegs(out, tensors):
    for name, (im, kwargs, check) in jpeg_cases().items():
        path = os.path.join(out, name)
        im.save(path, "JPEG", **kwargs)
        with Image.open(path) as back:
            assert check(back), name
            tensors[name] = np.array(back.convert("RGB"))


def pil_pngs():
    """name -> (PIL image, save kwargs, check(header dict, path))."""
    idx = RNG.integers(0, 21, (53, 37)).astype(np.uint8)
    idx[0, :5] = 255  # VOC's "void" index
    pal_img = Image.fromarray(idx, "P")
    pal_img.putpalette(list(RNG.integers(0, 256, 768)))
    pal16 = Image.fromarray((RNG.integers(0, 16, (37, 53))).astype(np.uint8), "P")
    pal16.putpalette(list(RNG.integers(0, 256, 48)))
    one_bit = Image.fromarray(RNG.integers(0, 2, (53, 37)).astype(bool))
    return {
        "palette.png": (pal_img, {}, lambda h, p: h["type"] == 3 and h["depth"] == 8),
        "palette_trns.png": (pal_img, {"transparency": bytes([0, 128, 255])},
                             lambda h, p: h["type"] == 3 and png_has_chunk(p, b"tRNS")),
        "palette_4bit.png": (pal16, {"bits": 4}, lambda h, p: h["type"] == 3 and h["depth"] == 4),
        "gray1.png": (one_bit, {}, lambda h, p: h["type"] == 0 and h["depth"] == 1),
        "gray8.png": (Image.fromarray(photo(53, 37, 1), "L"), {},
                      lambda h, p: h["type"] == 0 and h["depth"] == 8),
        "gray_trns.png": (Image.fromarray(photo(37, 53, 1), "L"), {"transparency": 7},
                          lambda h, p: h["type"] == 0 and png_has_chunk(p, b"tRNS")),
        "rgb.png": (Image.fromarray(photo(53, 37, 3)), {}, lambda h, p: h["type"] == 2),
        "rgb_trns.png": (Image.fromarray(photo(53, 37, 3)), {"transparency": (1, 2, 3)},
                         lambda h, p: h["type"] == 2 and png_has_chunk(p, b"tRNS")),
        "gray_alpha.png": (Image.fromarray(np.stack([photo(37, 53, 1)] * 2, -1), "LA"), {},
                           lambda h, p: h["type"] == 4),
        "rgba.png": (Image.fromarray(np.concatenate([photo(53, 37, 3), photo(53, 37, 1)[..., None]], -1),
                                     "RGBA"), {}, lambda h, p: h["type"] == 6),
    }


def handmade_pngs():
    """name -> (bytes, check(header dict, path))."""
    rgb = photo(19, 23, 3)
    return {
        "gray2.png": (low_depth_png(RNG.integers(0, 4, (11, 13)), 2, 0),
                      lambda h, p: h["type"] == 0 and h["depth"] == 2),
        "gray4.png": (low_depth_png(RNG.integers(0, 16, (11, 13)), 4, 0),
                      lambda h, p: h["type"] == 0 and h["depth"] == 4),
        "palette_1bit.png": (low_depth_png(RNG.integers(0, 2, (9, 17)), 1, 3,
                                           extra=_chunk(b"PLTE", bytes([0, 0, 0, 255, 255, 255]))),
                             lambda h, p: h["type"] == 3 and h["depth"] == 1),
        "interlaced.png": (interlaced_rgb_png(rgb), lambda h, p: h["interlace"] == 1),
    }


def write_pngs(out, tensors):
    checks = {}
    for name, (im, kwargs, check) in pil_pngs().items():
        im.save(os.path.join(out, name), "PNG", **kwargs)
        checks[name] = check
    for name, (data, check) in handmade_pngs().items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        checks[name] = check
    for name, check in checks.items():
        path = os.path.join(out, name)
        assert check(png_header(path), path), name
        with Image.open(path) as back:
            tensors[name] = np.array(back).astype(np.uint8)


def write_refusals(out, tensors):
    """Files the codec must refuse with MT_ERR_FORMAT."""
    gray16 = (RNG.integers(0, 65536, (13, 11))).astype(np.uint16)
    refuse = {}
    buf = io.BytesIO()
    Image.fromarray(gray16).save(buf, "PNG")
    refuse["gray16.png"] = buf.getvalue()
    rgb16 = RNG.integers(0, 65536, (5, 7, 3)).astype(">u2")
    refuse["rgb16.png"] = raw_png([b"\x00" + r.tobytes() for r in rgb16], 7, 5, 16, 2)
    buf = io.BytesIO()
    Image.fromarray(photo(21, 17, 3)).convert("CMYK").save(buf, "JPEG", quality=90)
    refuse["cmyk.jpg"] = buf.getvalue()
    with Image.open(io.BytesIO(refuse["cmyk.jpg"])) as back:
        assert back.mode == "CMYK", back.mode
    buf = io.BytesIO()
    Image.fromarray(photo(64, 64, 3)).save(buf, "JPEG", quality=90)
    refuse["truncated.jpg"] = buf.getvalue()[: len(buf.getvalue()) * 3 // 5]
    refuse["text.png"] = b"this is a text file, not an image\n"
    refuse["text.jpg"] = b"this is a text file, not an image\n"
    assert struct.unpack(">B", refuse["gray16.png"][24:25])[0] == 16
    for name, data in refuse.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        tensors["refuse:" + name] = np.zeros(1)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: codec_reference.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    tensors = {}
    write_jpegs(out, tensors)
    write_pngs(out, tensors)
    write_refusals(out, tensors)
    write_bundle(os.path.join(out, "cases.bundle"), tensors)
    print("%d codec cases in %s" % (len(tensors), out))


if __name__ == "__main__":
    main()
