"""Reference cases for tests/test_pth.c: .pth files written by Debian's
torch.save, and what the C reader must make of each.

    pth_cases.py OUTDIR

writes OUTDIR/<case>.pth, OUTDIR/<case>.expect (the expected tensors' data,
concatenated: float32 for every float kind, converted exactly as
tensor.float() does, int64 for every integer kind and bool) and one
manifest OUTDIR/cases.txt, a line per fact, fields separated by tabs:

    ok      FILE  KEY|-  FORMAT  CHOSEN|-  NTENSORS  NOTHERS
    tensor  NAME  f32|i64  STORAGE  PARAM  NDIM  DIMS(comma separated, '-' if none)  OFFSET
    other   NAME  KIND
    refuse  FILE  KEY|-  NEEDLE|NEEDLE...   (each, and the file's path, must occur in the error)

(the tensor and other lines follow their ok line). The files are: every
dtype, views with offsets, a transposed, a sliced, a permuted and an
expanded (stride 0) tensor, storages shared by several tensors,
nn.Parameter wrappers, a module's state_dict (with its _metadata), nested
dicts and int keys, a bare OrderedDict and a {'model': ...} dict, the
zip and the legacy format and pickle protocols 2 and 4, a checkpoint like
the official MTLoRA one (model, optimizer = a real AdamW state_dict,
lr_scheduler, scaler, epoch, max_accuracy, config = a yacs CfgNode the
reader cannot import, args = argparse.Namespace, a numpy scalar), files whose pickle calls
os.system('touch OUTDIR/PWNED'), builtins.eval or subprocess.Popen, a
tensor over such a call, a view past its storage, a truncated zip, a
corrupted byte in a stored entry (CRC error), a missing data entry, a
deflated archive, a truncated legacy file and a tar-format file.

Exits 77 (ctest's skip) when torch is not installed. Nothing here loads a
hostile file: each is checked with pickletools to really hold the call.
"""
import argparse
import collections
import io
import os
import pickletools
import struct
import subprocess
import sys
import types
import zipfile

import numpy as np

try:
    import torch
except ImportError:
    print("pth_cases.py: torch is not installed (Debian python3-torch); skipping")
    sys.exit(77)

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
PWNED = os.path.join(OUT, "PWNED")
if os.path.exists(PWNED):
    os.remove(PWNED)
torch.manual_seed(20240611)
MANIFEST = []

STORAGE = {torch.float32: "FloatStorage", torch.float16: "HalfStorage", torch.bfloat16: "BFloat16Storage",
           torch.float64: "DoubleStorage", torch.int64: "LongStorage", torch.int32: "IntStorage",
           torch.int16: "ShortStorage", torch.int8: "CharStorage", torch.uint8: "ByteStorage",
           torch.bool: "BoolStorage"}
FLOATS = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def flatten(d, prefix=""):
    for k, v in d.items():
        name = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            yield from flatten(v, name)
        else:
            yield name, v


def expected(t):
    """The C reader's output for t: contiguous, f32 or i64."""
    t = t.detach()
    return t.float().contiguous() if t.dtype in FLOATS else t.long().contiguous()


def save(name, obj, legacy=False, protocol=2):
    path = os.path.join(OUT, name)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy, pickle_protocol=protocol)
    return path


def ok(name, obj, chosen, others=(), key=None, legacy=False, protocol=2, path=None, verify=True):
    """Saves obj (unless path is given) and records the tensors the reader must return;
    verify: torch.load the file too (never for a hostile file)."""
    if path is None:
        save(name, obj, legacy, protocol)
    sd = obj[chosen] if chosen else obj
    tensors = list(flatten(sd))
    MANIFEST.append(["ok", name, key or "-", "legacy" if legacy else "zip", chosen or "-",
                     str(len(tensors)), str(len(others))])
    blob = io.BytesIO()
    for tname, t in tensors:
        e = expected(t)
        dims = ",".join(str(s) for s in e.shape) or "-"
        MANIFEST.append(["tensor", tname, "f32" if e.dtype == torch.float32 else "i64", STORAGE[t.dtype],
                         "1" if isinstance(t, torch.nn.Parameter) else "0", str(e.dim()), dims,
                         str(blob.tell())])
        blob.write(e.numpy().tobytes())
    for oname, kind in others:
        MANIFEST.append(["other", oname, kind])
    with open(os.path.join(OUT, name + ".expect"), "wb") as f:
        f.write(blob.getvalue())
    if not verify:
        return
    # what torch itself makes of the file agrees
    back = torch.load(os.path.join(OUT, name))
    back = back[chosen] if chosen else back
    for (n1, t1), (n2, t2) in zip(tensors, flatten(back)):
        assert n1 == n2 and expected(t1).numpy().tobytes() == expected(t2).numpy().tobytes(), (name, n1)


def refuse(name, needles, key=None):
    MANIFEST.append(["refuse", name, key or "-", "|".join(needles)])


# ---- dtypes ---------------------------------------------------------------------

def dtype_dict():
    d = collections.OrderedDict()
    d["f32"] = torch.tensor([1.0, -2.5, 3e-38, float("inf"), -0.0, 1e-45], dtype=torch.float32)
    d["f16"] = torch.tensor([1.0, -2.5, 6e-8, 65504.0, float("-inf"), float("nan"), -0.0, 0.33325],
                            dtype=torch.float16)
    d["bf16"] = torch.tensor([1.0, -2.5, 1e-39, 3.0e38, float("inf"), 0.1], dtype=torch.bfloat16)
    d["f64"] = torch.tensor([1.0 / 3.0, -2.5, 1e-300, 1e300, 0.1, 1.0000000596046448,
                             1.0000001788139343, -1e-46], dtype=torch.float64)
    d["i64"] = torch.tensor([0, -1, 2**62, -2**63, 2**63 - 1, 123456789012], dtype=torch.int64)
    d["i32"] = torch.tensor([0, -1, 2**31 - 1, -2**31, 7], dtype=torch.int32)
    d["i16"] = torch.tensor([0, -1, 32767, -32768], dtype=torch.int16)
    d["i8"] = torch.tensor([0, -1, 127, -128], dtype=torch.int8)
    d["u8"] = torch.tensor([0, 1, 255, 128], dtype=torch.uint8)
    d["bool"] = torch.tensor([True, False, True], dtype=torch.bool)
    d["scalar"] = torch.tensor(3.5)
    d["scalar_i"] = torch.tensor(42)
    d["empty"] = torch.zeros(0, 3)
    d["matrix"] = torch.randn(3, 5)
    d["cube"] = torch.randn(2, 3, 4).half()
    return d


d = dtype_dict()
ok("dtypes_zip.pth", d, None)
ok("dtypes_legacy.pth", d, None, legacy=True)
ok("dtypes_proto4_zip.pth", d, None, protocol=4)
ok("dtypes_proto4_legacy.pth", d, None, legacy=True, protocol=4)

# ---- views, shared storages -------------------------------------------------------

base = torch.arange(48, dtype=torch.float32) * 0.5 - 3.0
ibase = torch.arange(30, dtype=torch.int64) * 1000003 - 7
views = collections.OrderedDict()
views["offset"] = base[5:17].view(3, 4)
views["transposed"] = base[:12].view(3, 4).t()
views["strided"] = base[1::3]
views["permuted"] = base.view(2, 3, 8)[:, 1:, 2:7].permute(2, 0, 1)
views["whole"] = base
views["expanded"] = base[40:44].expand(3, 4)
views["int_view"] = ibase[3:27].view(4, 6)[:, ::2]
views["int_whole"] = ibase
views["half_t"] = torch.randn(4, 6).half().t()
for t in ("offset", "transposed", "strided", "permuted", "whole", "expanded"):
    assert views[t].storage().data_ptr() == base.storage().data_ptr()
assert not views["transposed"].is_contiguous() and views["offset"].storage_offset() == 5
ok("views_zip.pth", views, None)
ok("views_legacy.pth", views, None, legacy=True)

# ---- parameters, module state dicts, nesting --------------------------------------

net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
net(torch.randn(5, 3))  # BatchNorm running stats and num_batches_tracked change
params = collections.OrderedDict((n, p) for n, p in net.named_parameters())
assert all(isinstance(p, torch.nn.Parameter) for p in params.values())
ok("params_zip.pth", params, None)
ok("params_legacy.pth", params, None, legacy=True)
sd = net.state_dict()
assert hasattr(sd, "_metadata")
ok("module_model_zip.pth", {"model": sd}, "model")
ok("module_bare_legacy.pth", sd, None, legacy=True)
nested = {"model": {"backbone": {"w": torch.randn(2, 2), "inner": {"b": torch.randn(3)}},
                    "head": torch.randn(1), 7: {"x": torch.arange(3)}}}
ok("nested_zip.pth", nested, "model")
ok("state_dict_key_zip.pth", {"state_dict": collections.OrderedDict(a=torch.randn(2)), "epoch": 4},
   "state_dict", others=[("epoch", "int")])
ok("model_key_given_zip.pth", {"model": {"a": torch.ones(2)}, "ema": {"a": torch.zeros(2)}}, "ema",
   key="ema", others=[("model", "dict")])

# ---- a checkpoint like the official MTLoRA one -------------------------------------

yacs = types.ModuleType("yacs")
yacs_config = types.ModuleType("yacs.config")


class CfgNode(dict):
    def __init__(self, init=None, new_allowed=False):
        super().__init__(init or {})
        self.__dict__["_immutable"] = False
        self.__dict__["_new_allowed"] = new_allowed


CfgNode.__module__ = "yacs.config"
yacs_config.CfgNode = CfgNode
yacs.config = yacs_config
sys.modules["yacs"], sys.modules["yacs.config"] = yacs, yacs_config

model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                            torch.nn.Linear(4 * 4 * 4, 3))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10)
for _ in range(2):
    opt.zero_grad()
    model(torch.randn(2, 3, 6, 6)).square().mean().backward()
    opt.step()
    sched.step()
scaler = torch.cuda.amp.GradScaler(enabled=False)
cfg = CfgNode({"MODEL": CfgNode({"NAME": "swin_tiny_patch4_window7_224", "MTLORA": CfgNode(
    {"ENABLED": True, "R": [64, 64, 64, 64]})}), "TRAIN": CfgNode({"BASE_LR": 5e-4, "EPOCHS": 300}),
    "TASKS": ["semseg", "normals"], "TAG": None})
ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(),
        "max_accuracy": 81.25, "scaler": scaler.state_dict(), "epoch": 17, "config": cfg,
        "args": argparse.Namespace(cfg="configs/x.yaml", batch_size=8), "best": np.float32(0.75)}
assert any(isinstance(k, int) for k in ckpt["optimizer"]["state"])
others = [("optimizer", "dict"), ("lr_scheduler", "dict"), ("max_accuracy", "float"), ("scaler", "dict"),
          ("epoch", "int"), ("config", "placeholder yacs.config.CfgNode"),
          ("args", "placeholder argparse.Namespace"), ("best", "placeholder numpy.core.multiarray.scalar")]
ok("ckpt_zip.pth", ckpt, "model", others)
ok("ckpt_legacy.pth", ckpt, "model", others, legacy=True)
ok("ckpt_zip.pth", ckpt, "model", others, key="model", path="ckpt_zip.pth")
refuse("ckpt_zip.pth", ["key 'optimizer'", "param_groups", "list, not a tensor"], key="optimizer")
refuse("ckpt_zip.pth", ["key 'config'", "placeholder yacs.config.CfgNode"], key="config")
refuse("ckpt_zip.pth", ["no top-level key 'ema'"], key="ema")

# ---- hostile pickles: calls that must never run ---------------------------------------


class Call:
    """Pickles as fn(*args): torch.load would run it; the C reader never does."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def pickle_holds(path, needle):
    """The file's pickle really names the global (checked without loading it)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            data = z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])
    else:
        data = open(path, "rb").read()
    text = io.StringIO()
    f = io.BytesIO(data)
    for _ in range(1 if zipfile.is_zipfile(path) else 4):
        pickletools.dis(f, out=text)
    text = text.getvalue()
    assert "posix system" in text or "eval" in text or "Popen" in text, path
    assert needle in text, (path, needle)


touch = f"touch {PWNED}"
small = collections.OrderedDict(w=torch.arange(6, dtype=torch.float32).view(2, 3))
# protocol 2 writes Python 2 names (fix_imports: builtins -> __builtin__,
# subprocess -> commands) through GLOBAL; protocol 4 the real ones through
# STACK_GLOBAL
evil_eval = Call(eval, f"__import__('os').system('{touch}')")
evil_popen = Call(subprocess.Popen, ["touch", PWNED])
hostile = [
    ("pwned_os_zip.pth", Call(os.system, touch), 2, "posix.system", False),
    ("pwned_os_legacy.pth", Call(os.system, touch), 2, "posix.system", True),
    ("pwned_eval_zip.pth", evil_eval, 2, "__builtin__.eval", False),
    ("pwned_eval_proto4_zip.pth", evil_eval, 4, "builtins.eval", False),
    ("pwned_popen_zip.pth", evil_popen, 2, "commands.Popen", False),
    ("pwned_popen_proto4_legacy.pth", evil_popen, 4, "subprocess.Popen", True),
]
for fname, evil, proto, glob, legacy in hostile:
    needle = glob.replace(".", " ") if proto == 2 else glob.split(".")[1]
    # beside a state dict: loaded, the call listed as an inert placeholder
    save(fname, {"model": small, "evil": evil}, legacy, proto)
    pickle_holds(os.path.join(OUT, fname), needle)
    ok(fname, {"model": small}, "model", [("evil", "placeholder " + glob)], legacy=legacy, path=fname,
       verify=False)
    # inside the state dict: refused naming the key
    bare = "bare_" + fname
    save(bare, collections.OrderedDict(w=small["w"], evil=evil), legacy, proto)
    pickle_holds(os.path.join(OUT, bare), needle)
    refuse(bare, ["entry evil", "placeholder " + glob, "not a tensor"])
    nested_name = "nested_" + fname
    save(nested_name, {"model": {"block": {"evil": evil}, "w": small["w"]}}, legacy, proto)
    refuse(nested_name, ["model.block.evil", glob])

# a tensor whose storage argument is a call, and one over a placeholder storage type
save("tensor_over_call_zip.pth", collections.OrderedDict(
    w=Call(torch._utils._rebuild_tensor_v2, Call(os.system, touch), 0, (1,), (1,), False,
           collections.OrderedDict())))
pickle_holds(os.path.join(OUT, "tensor_over_call_zip.pth"), "_rebuild_tensor_v2")
refuse("tensor_over_call_zip.pth", ["entry w", "tensor over a placeholder posix.system"])
save("param_over_call_zip.pth", collections.OrderedDict(
    w=Call(torch._utils._rebuild_parameter, Call(subprocess.Popen, ["touch", PWNED]), False,
           collections.OrderedDict())))
refuse("param_over_call_zip.pth", ["entry w", "parameter of a placeholder commands.Popen"])

# a view reaching past its storage
store = torch.arange(8, dtype=torch.float32)
save("view_past_storage_zip.pth", collections.OrderedDict(
    ok=store, bad=Call(torch._utils._rebuild_tensor_v2, store.storage(), 6, (5,), (1,), False,
                       collections.OrderedDict())))
refuse("view_past_storage_zip.pth", ["tensor bad", "reaches past the end of storage"])
save("view_past_storage_legacy.pth", collections.OrderedDict(
    bad=Call(torch._utils._rebuild_tensor_v2, store.storage(), 0, (3, 3), (3, 1), False,
             collections.OrderedDict())), legacy=True)
refuse("view_past_storage_legacy.pth", ["tensor bad", "reaches past the end of storage"])
save("bare_tensor_zip.pth", torch.ones(3))
refuse("bare_tensor_zip.pth", ["the saved object is a tensor, not a dict"])

# ---- damaged archives -------------------------------------------------------------------

src = os.path.join(OUT, "dtypes_zip.pth")
raw = open(src, "rb").read()
with open(os.path.join(OUT, "truncated_zip.pth"), "wb") as f:
    f.write(raw[: len(raw) // 2])
refuse("truncated_zip.pth", ["zip archive"])
with open(os.path.join(OUT, "truncated_tail_zip.pth"), "wb") as f:
    f.write(raw[:-10])
refuse("truncated_tail_zip.pth", ["zip"])

with zipfile.ZipFile(src) as z:
    info = z.getinfo("dtypes_zip/data/0")
    assert info.compress_type == zipfile.ZIP_STORED and info.file_size > 0
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    at = info.header_offset + 30 + name_len + extra_len
bad = bytearray(raw)
bad[at + 1] ^= 0x40
with open(os.path.join(OUT, "crc_zip.pth"), "wb") as f:
    f.write(bytes(bad))
with zipfile.ZipFile(os.path.join(OUT, "crc_zip.pth")) as z:
    assert z.testzip() == "dtypes_zip/data/0"
refuse("crc_zip.pth", ["dtypes_zip/data/0", "CRC"])


def rewrite(dst, drop=None, replace=None, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(os.path.join(OUT, dst), "w", compression) as zo:
        for info in zi.infolist():
            if info.filename == drop:
                continue
            data = zi.read(info.filename)
            if replace and info.filename == replace[0]:
                data = replace[1]
            zo.writestr(info.filename, data, compress_type=compression)


rewrite("missing_entry_zip.pth", drop="dtypes_zip/data/3")
refuse("missing_entry_zip.pth", ["dtypes_zip/data/3", "missing"])
rewrite("short_entry_zip.pth", replace=("dtypes_zip/data/2", b"\0" * 6))
refuse("short_entry_zip.pth", ["dtypes_zip/data/2"])
rewrite("deflated_zip.pth", compression=zipfile.ZIP_DEFLATED)
with zipfile.ZipFile(os.path.join(OUT, "deflated_zip.pth")) as z:
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
ok("deflated_zip.pth", d, None, path="deflated_zip.pth")
rewrite("big_endian_zip.pth", replace=("dtypes_zip/version", b"3\n"))
with zipfile.ZipFile(os.path.join(OUT, "big_endian_zip.pth"), "a") as z:
    z.writestr("dtypes_zip/byteorder", b"big")
refuse("big_endian_zip.pth", ["dtypes_zip/byteorder", "big-endian"])

lraw = open(os.path.join(OUT, "dtypes_legacy.pth"), "rb").read()
with open(os.path.join(OUT, "truncated_legacy.pth"), "wb") as f:
    f.write(lraw[:-5])
refuse("truncated_legacy.pth", ["storage", "past the end of the file"])
with open(os.path.join(OUT, "truncated_pickle_legacy.pth"), "wb") as f:
    f.write(lraw[:300])
refuse("truncated_pickle_legacy.pth", ["pickle 4 of 5"])

# torch < 0.4's tar format: a ustar header
tar = bytearray(1024)
tar[0:8] = b"sys_info"
tar[257:263] = b"ustar\0"
with open(os.path.join(OUT, "tar_format.pth"), "wb") as f:
    f.write(bytes(tar))
refuse("tar_format.pth", ["tar archive", "torch.save(torch.load("])

with open(os.path.join(OUT, "cases.txt"), "w") as f:
    for row in MANIFEST:
        assert all("\t" not in x and "\n" not in x for x in row)
        f.write("\t".join(row) + "\n")
assert not os.path.exists(PWNED)
print(f"pth_cases.py: {sum(r[0] == 'ok' for r in MANIFEST)} files to read, "
      f"{sum(r[0] == 'refuse' for r in MANIFEST)} to refuse, in {OUT}")
