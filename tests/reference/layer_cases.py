"""Independent PyTorch reference for every op of the layer library.

Writes one tensor bundle per (op, shape) case into OUT_DIR. Inputs are
float32; the reference is computed in float64 by PyTorch's own modules and
functionals (the same ones the official MTLoRA code calls), so the C library
is measured against the exact result. Run with Debian's python3-torch:

    /usr/bin/python3 tests/reference/layer_cases.py OUT_DIR
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import write_bundle  # noqa: E402
from ref_ops import (attention_core, balanced_bce, ce_loss, normals_loss,  # noqa: E402
                     rel_index, shifted_mask, window_partition)

torch.manual_seed(1234)
OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)


def rnd(*shape, scale=1.0):
    """float32 values, returned as a float64 tensor requiring grad."""
    t = (torch.randn(*shape) * scale).float()
    return t.double().requires_grad_(True)


def emit(name, tensors):
    write_bundle(os.path.join(OUT, name + ".bin"),
                 {k: (v.detach().numpy() if torch.is_tensor(v) else v) for k, v in tensors.items()})


def backward(out, dout, *leaves):
    grads = torch.autograd.grad(out, leaves, dout, allow_unused=True)
    return [g if g is not None else torch.zeros_like(l) for g, l in zip(grads, leaves)]


# ---- linear -----------------------------------------------------------------
for i, (rows, fin, fout) in enumerate([(5, 7, 3), (128, 96, 288), (98, 192, 96)]):
    x, w, b = rnd(rows, fin), rnd(fout, fin, scale=0.1), rnd(fout, scale=0.1)
    out = F.linear(x, w, b)
    dout = rnd(rows, fout).detach()
    dx, dw, db = backward(out, dout, x, w, b)
    emit(f"linear_{i}", dict(dims=[rows, fin, fout], inp=x, weight=w, bias=b, dout=dout,
                             out=out, dinp=dx, dweight=dw, dbias=db))

# ---- low-rank update: y = base + s * (x A^T) B^T -----------------------------
for i, (rows, fin, fout, r, sc) in enumerate([(7, 10, 6, 3, 4.0), (392, 96, 384, 64, 4.0),
                                              (98, 384, 96, 4, 2.0)]):
    x, A, B = rnd(rows, fin), rnd(r, fin, scale=0.3), rnd(fout, r, scale=0.3)
    base = rnd(rows, fout).detach()
    out = base + sc * F.linear(F.linear(x, A), B)
    dout = rnd(rows, fout).detach()
    dx, dA, dB = backward(out, dout, x, A, B)
    emit(f"lora_{i}", dict(dims=[rows, fin, fout, r], scale=[sc], inp=x, A=A, B=B, base=base,
                           dout=dout, out=out, dinp=dx, dA=dA, dB=dB))

# ---- layer norm -------------------------------------------------------------
for i, (rows, ch) in enumerate([(10, 96), (256, 384), (3, 5)]):
    x = rnd(rows, ch, scale=2.0)
    x.data += 0.5
    w, b = rnd(ch), rnd(ch)
    out = F.layer_norm(x, (ch,), w, b, eps=1e-5)
    dout = rnd(rows, ch).detach()
    dx, dw, db = backward(out, dout, x, w, b)
    emit(f"layernorm_{i}", dict(dims=[rows, ch], inp=x, weight=w, bias=b, dout=dout, out=out,
                                dinp=dx, dweight=dw, dbias=db))

# ---- elementwise and softmax --------------------------------------------------
for i, n in enumerate([1000, 4099]):
    x = rnd(n, scale=3.0)
    dout = rnd(n).detach()
    for op, fn in (("gelu", torch.nn.GELU()), ("relu", F.relu)):
        out = fn(x)
        (dx,) = backward(out, dout, x)
        emit(f"{op}_{i}", dict(dims=[n], inp=x, dout=dout, out=out, dinp=dx))
for i, (rows, cols) in enumerate([(30, 49), (7, 1000)]):
    x = rnd(rows, cols, scale=3.0)
    out = F.softmax(x, dim=-1)
    dout = rnd(rows, cols).detach()
    (dx,) = backward(out, dout, x)
    emit(f"softmax_{i}", dict(dims=[rows, cols], inp=x, dout=dout, out=out, dinp=dx))


# ---- Swin window geometry --------------------------------------------------
for i, (B, H, W, C, ws, shift) in enumerate([(2, 14, 14, 5, 7, 3), (1, 8, 12, 3, 4, 2)]):
    x = rnd(B, H, W, C)
    win = window_partition(x, ws)
    dwin = rnd(*win.shape).detach()
    (dx,) = backward(win, dwin, x)
    rolled = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
    drolled = rnd(B, H, W, C).detach()
    (dxr,) = backward(rolled, drolled, x)
    emit(f"window_{i}", dict(dims=[B, H, W, C, ws, shift], x=x, windows=win, dwindows=dwin,
                             dx_partition=dx, rolled=rolled, drolled=drolled, dx_roll=dxr,
                             mask=shifted_mask(H, W, ws, shift), rel_index=rel_index(ws)))


# ---- window attention core -------------------------------------------------
for i, (B, H, ws, C, heads, shift) in enumerate([(2, 14, 7, 48, 3, 3), (1, 8, 4, 32, 2, 0),
                                                  (3, 7, 7, 24, 2, 0)]):
    nW = (H // ws) ** 2
    qkv = rnd(B * nW, ws * ws, 3 * C)
    table = rnd((2 * ws - 1) ** 2, heads, scale=0.5)
    mask = shifted_mask(H, H, ws, shift) if shift else None
    out, probs = attention_core(qkv, table, mask, ws, C, heads)
    dout = rnd(*out.shape).detach()
    dqkv, dtable = backward(out, dout, qkv, table)
    t = dict(dims=[B * nW, nW, ws, C, heads, 1 if shift else 0], qkv=qkv, table=table,
             dout=dout, out=out, probs=probs, dqkv=dqkv, dtable=dtable)
    if mask is not None:
        t["mask"] = mask
    emit(f"attention_{i}", t)

# ---- convolution, patch embedding, patch merging ---------------------------
for i, (B, Cin, H, W, Cout, k, nhwc) in enumerate([(2, 3, 16, 16, 24, 4, 1), (2, 20, 7, 7, 12, 1, 0),
                                                    (1, 270, 14, 14, 36, 1, 0)]):
    x, w, b = rnd(B, Cin, H, W), rnd(Cout, Cin, k, k, scale=0.2), rnd(Cout, scale=0.2)
    out = F.conv2d(x, w, b, stride=k)
    if nhwc:
        out = out.permute(0, 2, 3, 1)
    dout = rnd(*out.shape).detach()
    dx, dw, db = backward(out, dout, x, w, b)
    emit(f"conv_{i}", dict(dims=[B, Cin, H, W, Cout, k, nhwc], inp=x, weight=w, bias=b, dout=dout,
                           out=out, dinp=dx, dweight=dw, dbias=db))

for i, (B, Cin, H, C, p) in enumerate([(2, 3, 32, 24, 4), (1, 3, 28, 16, 4)]):
    img = rnd(B, Cin, H, H)
    cw, cb, lw, lb = rnd(C, Cin, p, p, scale=0.2), rnd(C, scale=0.2), rnd(C), rnd(C)
    y = F.conv2d(img, cw, cb, stride=p).flatten(2).transpose(1, 2)
    out = F.layer_norm(y, (C,), lw, lb, eps=1e-5)
    dout = rnd(*out.shape).detach()
    g = backward(out, dout, img, cw, cb, lw, lb)
    emit(f"patch_embed_{i}", dict(dims=[B, Cin, H, H, C, p], img=img, conv_w=cw, conv_b=cb,
                                  ln_w=lw, ln_b=lb, dout=dout, out=out, dimg=g[0], dconv_w=g[1],
                                  dconv_b=g[2], dln_w=g[3], dln_b=g[4]))

for i, (B, H, W, C) in enumerate([(2, 8, 8, 12), (1, 14, 6, 24)]):
    x = rnd(B, H, W, C)
    lw, lb, rw = rnd(4 * C), rnd(4 * C), rnd(2 * C, 4 * C, scale=0.1)
    x0, x1 = x[:, 0::2, 0::2, :], x[:, 1::2, 0::2, :]
    x2, x3 = x[:, 0::2, 1::2, :], x[:, 1::2, 1::2, :]
    cat = torch.cat([x0, x1, x2, x3], -1).view(B, -1, 4 * C)
    out = F.linear(F.layer_norm(cat, (4 * C,), lw, lb, eps=1e-5), rw)
    dout = rnd(*out.shape).detach()
    g = backward(out, dout, x, lw, lb, rw)
    emit(f"patch_merging_{i}", dict(dims=[B, H, W, C], x=x, ln_w=lw, ln_b=lb, red_w=rw, dout=dout,
                                    out=out, dx=g[0], dln_w=g[1], dln_b=g[2], dred_w=g[3]))

# ---- batch norm -------------------------------------------------------------
for i, (B, C, H) in enumerate([(2, 16, 7), (4, 1080, 4)]):
    x = rnd(B, C, H, H, scale=2.0)
    w, b = rnd(C), rnd(C)
    rm0, rv0 = torch.randn(C).float().double(), (torch.rand(C) + 0.5).float().double()
    rm, rv = rm0.clone(), rv0.clone()
    out = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
    dout = rnd(*out.shape).detach()
    dx, dw, db = backward(out, dout, x, w, b)
    out_eval = F.batch_norm(x, rm, rv, w, b, training=False, eps=1e-5)
    emit(f"batchnorm_{i}", dict(dims=[B, C, H * H], inp=x, weight=w, bias=b, running_mean0=rm0,
                                running_var0=rv0, dout=dout, out=out, dinp=dx, dweight=dw,
                                dbias=db, running_mean=rm, running_var=rv, out_eval=out_eval))

# ---- bilinear resize --------------------------------------------------------
for i, (B, C, hi, wi, ho, wo) in enumerate([(2, 3, 7, 7, 28, 28), (2, 3, 28, 28, 7, 7),
                                            (1, 2, 5, 9, 13, 4), (1, 4, 14, 14, 56, 56)]):
    x = rnd(B, C, hi, wi)
    out = F.interpolate(x, size=(ho, wo), mode="bilinear", align_corners=False)
    dout = rnd(*out.shape).detach()
    (dx,) = backward(out, dout, x)
    emit(f"resize_{i}", dict(dims=[B, C, hi, wi, ho, wo], inp=x, dout=dout, out=out, dinp=dx))


# ---- losses, as mtl_loss_schemes.py defines them ----------------------------
for i, (B, K, H) in enumerate([(2, 21, 16), (1, 7, 9)]):
    logits = rnd(B, K, H, H, scale=2.0)
    lab = torch.randint(0, K, (B, H, H)).double()
    lab[torch.rand(B, H, H) < 0.2] = 255
    loss = ce_loss(logits, lab)
    (dl,) = backward(loss, torch.tensor(1.0, dtype=torch.float64), logits)
    emit(f"ce_loss_{i}", dict(dims=[B, K, H * H], logits=logits, labels=lab, loss=loss.reshape(1),
                              dlogits=dl))

for i, (B, H, pw) in enumerate([(2, 16, -1.0), (1, 11, 0.95)]):
    logits = rnd(B, 1, H, H, scale=3.0)
    lab = (torch.rand(B, 1, H, H) > 0.7).double()
    loss = balanced_bce(logits, lab, None if pw < 0 else pw)
    (dl,) = backward(loss, torch.tensor(1.0, dtype=torch.float64), logits)
    emit(f"bce_loss_{i}", dict(dims=[B * H * H], pos_weight=[pw], logits=logits, labels=lab,
                               loss=loss.reshape(1), dlogits=dl))

for i, (B, H) in enumerate([(2, 12), (1, 7)]):
    logits = rnd(B, 3, H, H)
    lab = F.normalize(torch.randn(B, 3, H, H).double(), dim=1).float().double()
    lab[:, :, :2, :3] = 255.0
    loss = normals_loss(logits, lab)
    (dl,) = backward(loss, torch.tensor(1.0, dtype=torch.float64), logits)
    emit(f"normals_loss_{i}", dict(dims=[B, 3, H * H], logits=logits, labels=lab,
                                   loss=loss.reshape(1), dlogits=dl))

# ---- AdamW: torch.optim.AdamW on two groups (decay / no decay), 3 steps -----
for i, (n_decay, n_plain, lr) in enumerate([(100, 30, 1e-3), (4097, 513, 3.125e-5)]):
    p1 = torch.randn(n_decay).float().requires_grad_(True)
    p2 = torch.randn(n_plain).float().requires_grad_(True)
    params0 = torch.cat([p1.detach(), p2.detach()]).clone()
    opt = torch.optim.AdamW([{"params": [p1], "weight_decay": 0.05},
                             {"params": [p2], "weight_decay": 0.0}], lr=lr)
    grads = []
    for step in range(3):
        g = torch.randn(n_decay + n_plain).float() * (0.1 if step else 1e-3)
        p1.grad, p2.grad = g[:n_decay].clone(), g[n_decay:].clone()
        opt.step()
        grads.append(g)
    emit(f"adamw_{i}", dict(dims=[n_decay, n_plain, 3], lr=[lr], params0=params0,
                            grads=torch.stack(grads),
                            params=torch.cat([p1.detach(), p2.detach()])))

print("wrote", len(os.listdir(OUT)), "cases to", OUT)
