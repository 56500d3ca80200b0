"""Reference operations shared by the layer and model references: Swin's
window geometry, the window-attention core and the MTLoRA task losses, in
plain PyTorch (written from the papers and the official code's semantics,
not copied from it)."""
import numpy as np
import torch
import torch.nn.functional as F


def window_partition(x, ws):
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws * ws, C)


def window_reverse(win, ws, B, H, W):
    x = win.view(B, H // ws, W // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


def shifted_mask(H, W, ws, shift):
    img = torch.zeros(1, H, W, 1, dtype=torch.float64)
    cnt = 0
    sl = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    for h in sl:
        for w in sl:
            img[:, h, w, :] = cnt
            cnt += 1
    mw = window_partition(img, ws).squeeze(-1)
    m = mw.unsqueeze(1) - mw.unsqueeze(2)
    return m.masked_fill(m != 0, -100.0).masked_fill(m == 0, 0.0)


def rel_index(ws):
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij"))
    flat = coords.flatten(1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += ws - 1
    rel[:, :, 1] += ws - 1
    rel[:, :, 0] *= 2 * ws - 1
    return rel.sum(-1)


def attention_core(qkv, table, mask, ws, C, heads):
    B_, N, _ = qkv.shape
    hd = C // heads
    q, k, v = qkv.reshape(B_, N, 3, heads, hd).permute(2, 0, 3, 1, 4)
    q = q * hd ** -0.5
    attn = q @ k.transpose(-2, -1)
    bias = table[rel_index(ws).view(-1)].view(N, N, -1).permute(2, 0, 1)
    attn = attn + bias.unsqueeze(0)
    if mask is not None:
        nW = mask.shape[0]
        attn = attn.view(B_ // nW, nW, heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, heads, N, N)
    attn = F.softmax(attn, dim=-1)
    return (attn @ v).transpose(1, 2).reshape(B_, N, C), attn


def ce_loss(out, label):
    return F.nll_loss(F.log_softmax(out, dim=1), label.long(), ignore_index=255)


def balanced_bce(output, label, pos_weight=None):
    labels = torch.ge(label, 0.5).double()
    if pos_weight is None:
        npos = labels.sum()
        nneg = (1.0 - labels).sum()
        w = nneg / (npos + nneg)
    else:
        w = pos_weight
    gt0 = torch.ge(output, 0).double()
    val = output * (labels - gt0) - torch.log(1 + torch.exp(output - 2 * output * gt0))
    lp = torch.sum(-labels * val)
    ln = torch.sum(-(1.0 - labels) * val)
    return (w * lp + (1 - w) * ln) / float(np.prod(label.size()))


def normals_loss(out, label):
    mask = label != 255
    n_valid = torch.sum(mask).item()
    qn = torch.norm(out, p=2, dim=1).unsqueeze(1) + 1e-12
    o = out / qn
    loss = F.l1_loss(torch.masked_select(o, mask), torch.masked_select(label, mask), reduction="sum")
    return loss / max(n_valid, 1e-6)
