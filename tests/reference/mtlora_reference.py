"""Independent PyTorch reference of the MTLoRA multi-task Swin model.

Written for mtlora's parity tests from the semantics of the official code
(scale-lab/MTLoRA: SwinTransformerMTLoRA, MTLoRALinear in 'matrix' mode,
per-task Downsampler and HighResolutionHead, mtl_loss_schemes) as a plain
functional model over a dict of tensors named as the official state dict.
It computes in float64; dropout and drop path are off so that a step is
deterministic.

    /usr/bin/python3 tests/reference/mtlora_reference.py OUT_DIR [CASE]

writes, per case, OUT_DIR/CASE/{config.yaml, weights.safetensors,
case.bin (images, targets, logits, losses), grads.safetensors,
step2.safetensors (trainable values after two AdamW steps)}.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import write_bundle, write_safetensors  # noqa: E402
from ref_ops import (attention_core, balanced_bce, ce_loss, normals_loss,  # noqa: E402
                     shifted_mask, window_partition, window_reverse)

NUM_OUT = {"semseg": 21, "human_parts": 7, "sal": 1, "normals": 3, "edge": 1}
LOSS_W = {"semseg": 1.0, "human_parts": 2.0, "sal": 5.0, "normals": 10.0, "edge": 50.0}


KINDS = ("mtlora", "lora", "mtl_lora", "cgc_lora", "full_ft", "decoders_only")
ADAPTER_KINDS = ("lora", "mtl_lora", "cgc_lora")  # the new adapted kinds (MODEL.ADAPTER.KIND)
LAYER_KEYS = ("qkv", "proj", "fc1", "fc2")
LAYER_OF = {"attn.qkv": "qkv", "attn.proj": "proj", "mlp.fc1": "fc1", "mlp.fc2": "fc2"}


class Spec:
    """Geometry of a small config (official key names in `yaml`).

    `kind` is MODEL.ADAPTER.KIND: "mtlora" is the official MTLoRA (with
    `mtlora=False` full fine-tuning, as the official switch has it); the
    other kinds (docs/adapters.md) turn the official MTLoRA dataflow off
    (`self.mtlora` False) and take their layer kinds from `layer_kinds`
    (qkv, proj, fc1, fc2 -> lora | mtl_lora | cgc_lora | none; missing: kind)."""

    def __init__(self, img, embed, depths, heads, ws, tasks, r, rt, scale, dec, mtlora=True,
                 qkv=True, downsampler=False, freeze=True, batch=2, init="wide", proj=True,
                 fc1=True, fc2=True, kind="mtlora", layer_kinds=None, nb=3, tau=0.1, diag=False,
                 mtl_scale=2.0, cgc_shared=None, cgc_task=1, gate_dim=8, cgc_scale=2.0):
        self.__dict__.update(locals())
        del self.__dict__["self"]
        self._args = {k: v for k, v in self.__dict__.items()}
        self.layer_kinds = dict(layer_kinds or {})
        assert kind in KINDS, kind
        assert set(self.layer_kinds) <= set(LAYER_KEYS), self.layer_kinds
        assert all(v in ADAPTER_KINDS + ("none",) for v in self.layer_kinds.values())
        if kind != "mtlora":
            assert not downsampler and (not self.layer_kinds or kind in ADAPTER_KINDS)
            self.mtlora = False  # the official MTLoRA dataflow (task paths) is off
        self.L = len(depths)
        self.grid0 = img // 4

    def replace(self, **kw):
        a = dict(self._args)
        a.update(kw)
        return Spec(**a)

    def layer_kind(self, key):
        """The kind of layer kind `key` (qkv proj fc1 fc2): lora, mtl_lora,
        cgc_lora, none, or for the official model mtlora / none."""
        if self.kind == "mtlora":
            return "mtlora" if (self.mtlora and getattr(self, key)) else "none"
        if self.kind not in ADAPTER_KINDS:
            return "none"
        return self.layer_kinds.get(key, self.kind)

    @property
    def adapted(self):
        """Adapters with a frozen backbone (MTLoRA's trainable set)."""
        return self.mtlora if self.kind == "mtlora" else self.kind in ADAPTER_KINDS

    @property
    def paths(self):
        """Encoder paths: one per task when a layer is task-dependent."""
        dep = any(self.layer_kind(k) in ("mtl_lora", "cgc_lora") for k in LAYER_KEYS)
        return len(self.tasks) if dep else 1

    @property
    def uses_cgc(self):
        return any(self.layer_kind(k) == "cgc_lora" for k in LAYER_KEYS)

    @property
    def cgc_S(self):
        return self.cgc_shared if self.cgc_shared is not None else len(self.tasks)

    @property
    def cgc_re(self):
        return max(1, self.r // (self.cgc_S + len(self.tasks) * self.cgc_task))

    def yaml(self):
        t = ", ".join(self.tasks)
        rpt = "".join(f"      {k}: [{self.rt}]\n" for k in self.tasks)
        enabled = self.mtlora if self.kind == "mtlora" else self.kind in ADAPTER_KINDS
        adapter = ""
        if self.kind != "mtlora":
            over = "".join(f"    {k.upper()}: {self.layer_kinds[k]}\n" for k in LAYER_KEYS
                           if k in self.layer_kinds)
            adapter = (f"  ADAPTER:\n    KIND: {self.kind}\n{over}"
                       f"    MTL_LORA:\n      NUM_B: {self.nb}\n      TAU: {self.tau}\n"
                       f"      LAMBDA: {'diag' if self.diag else 'full'}\n"
                       f"      SCALE: {self.mtl_scale}\n      DROPOUT: 0.0\n"
                       f"    CGC_LORA:\n      SHARED_EXPERTS: {self.cgc_S}\n"
                       f"      TASK_EXPERTS: {self.cgc_task}\n      GATE_DIM: {self.gate_dim}\n"
                       f"      SCALE: {self.cgc_scale}\n      DROPOUT: 0.0\n")
        return (f"DATA:\n  IMG_SIZE: {self.img}\n  BATCH_SIZE: {self.batch}\n"
                f"MODEL:\n  TYPE: swin\n  NAME: parity\n  DROP_PATH_RATE: 0.0\n"
                f"  SWIN:\n    EMBED_DIM: {self.embed}\n    DEPTHS: {list(self.depths)}\n"
                f"    NUM_HEADS: {list(self.heads)}\n    WINDOW_SIZE: {self.ws}\n"
                f"  DECODER_CHANNELS: {list(self.dec)}\n"
                f"  MTLORA:\n    ENABLED: {enabled}\n    R: [{self.r}]\n"
                f"    SHARED_SCALE: [{self.scale}]\n    TASK_SCALE: [{self.scale}]\n"
                f"    DROPOUT: [0.0]\n    FREEZE_PRETRAINED: {self.freeze}\n"
                f"    QKV_ENABLED: {self.qkv}\n    DOWNSAMPLER_ENABLED: {self.downsampler}\n"
                f"    PROJ_ENABLED: {self.proj}\n    FC1_ENABLED: {self.fc1}\n"
                f"    FC2_ENABLED: {self.fc2}\n"
                f"    R_PER_TASK:\n{rpt}      shared: [{self.r}]\n"
                f"{adapter}"
                f"TASKS: [{t}]\n")


def stage_geom(spec, s):
    res = spec.grid0 >> s
    ws = min(spec.ws, res)
    return res, ws


def block_shift(spec, s, b):
    res, ws = stage_geom(spec, s)
    if res <= spec.ws:
        return 0
    return spec.ws // 2 if b % 2 else 0


def lora_names(p, with_lora):
    return (f"{p}.linear" if with_lora else p)


def build_params(spec, gen):
    """Official names -> (shape, trainable). Order follows the state dict."""
    P = {}

    def add(name, shape, trainable=True):
        P[name] = (tuple(shape), trainable)

    def frozen_backbone(name):
        if spec.kind == "decoders_only":
            return True
        if not spec.adapted or not spec.freeze:
            return False
        if "lora_" in name or "patch_embed" in name or "norm" in name:
            return False
        if "relative_position_bias_table" in name:
            return False
        if "downsample.reduction" in name and not spec.downsampler:
            return False
        return True

    def lin(p, fin, fout, lora, bias, tasks):
        names = []
        if lora:
            names += [(f"{p}.lora_shared_A", (spec.r, fin)), (f"{p}.lora_shared_B", (fout, spec.r))]
        base = lora_names(p, lora)
        names.append((f"{base}.weight", (fout, fin)))
        if bias:
            names.append((f"{base}.bias", (fout,)))
        for t in sorted(tasks):
            names.append((f"{p}.lora_tasks_A.{t}", (spec.rt, fin)))
        for t in sorted(tasks):
            names.append((f"{p}.lora_tasks_B.{t}", (fout, spec.rt)))
        for n, shp in names:
            add(n, shp)

    T = len(spec.tasks)

    def lin_kind(p, fin, fout, lk):
        """A layer of the new kinds (docs/adapters.md), bias always."""
        r = spec.r
        if lk == "lora":
            add(f"{p}.lora_shared_A", (r, fin))
            add(f"{p}.lora_shared_B", (fout, r))
        elif lk == "mtl_lora":
            add(f"{p}.lora_A", (r, fin))
            add(f"{p}.lora_B", (spec.nb, fout, r))
            add(f"{p}.lora_lambda", (T, r) if spec.diag else (T, r, r))
            add(f"{p}.lora_mix", (T, spec.nb))
        elif lk == "cgc_lora":
            S, Pe, re = spec.cgc_S, spec.cgc_task, spec.cgc_re
            add(f"{p}.lora_experts_shared_A", (S, re, fin))
            add(f"{p}.lora_experts_shared_B", (S, fout, re))
            add(f"{p}.lora_experts_task_A", (T * Pe, re, fin))
            add(f"{p}.lora_experts_task_B", (T * Pe, fout, re))
        else:
            assert lk == "none", lk
        base = lora_names(p, lk != "none")
        add(f"{base}.weight", (fout, fin))
        add(f"{base}.bias", (fout,))

    def layer(p, key, fin, fout, lora, tasks):
        if spec.kind == "mtlora":
            lin(p, fin, fout, lora, True, tasks)
        else:
            lin_kind(p, fin, fout, spec.layer_kind(key))

    E = spec.embed
    add("backbone.patch_embed.proj.weight", (E, 3, 4, 4))
    add("backbone.patch_embed.proj.bias", (E,))
    add("backbone.patch_embed.norm.weight", (E,))
    add("backbone.patch_embed.norm.bias", (E,))
    if spec.uses_cgc:  # one task-motivated gate for the model
        add("backbone.lora_gate.embedding", (T, spec.gate_dim))
        add("backbone.lora_gate.weight", (spec.cgc_S + spec.cgc_task, spec.gate_dim))
    for s in range(spec.L):
        C = E << s
        res, ws = stage_geom(spec, s)
        for b in range(spec.depths[s]):
            pre = f"backbone.layers.{s}.blocks.{b}"
            tasks = spec.tasks if (spec.mtlora and b == spec.depths[s] - 1) else []
            on = {k: spec.mtlora and getattr(spec, k) for k in ("proj", "fc1", "fc2")}
            add(f"{pre}.norm1.weight", (C,))
            add(f"{pre}.norm1.bias", (C,))
            add(f"{pre}.attn.relative_position_bias_table", ((2 * ws - 1) ** 2, spec.heads[s]))
            layer(f"{pre}.attn.qkv", "qkv", C, 3 * C, spec.mtlora and spec.qkv, [])
            layer(f"{pre}.attn.proj", "proj", C, C, on["proj"], tasks if on["proj"] else [])
            add(f"{pre}.norm2.weight", (C,))
            add(f"{pre}.norm2.bias", (C,))
            layer(f"{pre}.mlp.fc1", "fc1", C, 4 * C, on["fc1"], tasks if on["fc1"] else [])
            layer(f"{pre}.mlp.fc2", "fc2", 4 * C, C, on["fc2"], tasks if on["fc2"] else [])
        if s < spec.L - 1:
            lin(f"backbone.layers.{s}.downsample.reduction", 4 * C, 2 * C,
                spec.mtlora and spec.downsampler, False, [])
            add(f"backbone.layers.{s}.downsample.norm.weight", (4 * C,))
            add(f"backbone.layers.{s}.downsample.norm.bias", (4 * C,))
    fdim = [E << (s + 1 if s < spec.L - 1 else s) for s in range(spec.L)]
    for t in spec.tasks:
        for s in range(spec.L):
            add(f"downsampler.{t}.downsample_{s}.weight", (spec.dec[s], fdim[s], 1, 1))
    cs = sum(spec.dec)
    for t in spec.tasks:
        pre = f"decoders.decoders.{t}.last_layer"
        add(f"{pre}.0.weight", (4 * cs, cs, 1, 1))
        add(f"{pre}.0.bias", (4 * cs,))
        add(f"{pre}.1.weight", (4 * cs,))
        add(f"{pre}.1.bias", (4 * cs,))
        add(f"{pre}.1.running_mean", (4 * cs,), trainable=False)
        add(f"{pre}.1.running_var", (4 * cs,), trainable=False)
        add(f"{pre}.3.weight", (NUM_OUT[t], 4 * cs, 1, 1))
        add(f"{pre}.3.bias", (NUM_OUT[t],))
    params, trainable = {}, set()
    official = spec.init == "official"
    for name, (shape, tr) in P.items():
        leaf = name.rsplit(".", 1)[-1]
        # the new kinds' tensors first (names no MTLoRA case has): non-zero,
        # so that every term of the parity cases matters
        if "lora_gate." in name:
            v = torch.randn(shape, generator=gen) * 0.5
        elif leaf == "lora_lambda":
            one = torch.ones(shape) if spec.diag else torch.eye(shape[-1]).expand(shape)
            v = one + 0.1 * torch.randn(shape, generator=gen)
        elif leaf == "lora_mix":
            v = torch.randn(shape, generator=gen)
        elif leaf in ("lora_B", "lora_experts_shared_B", "lora_experts_task_B"):
            v = 0.2 * torch.randn(shape, generator=gen)
        elif leaf in ("lora_A", "lora_experts_shared_A", "lora_experts_task_A"):
            fan_in = shape[-1]  # per expert: [.., r, in]
            v = (torch.rand(shape, generator=gen) * 2 - 1) / math.sqrt(fan_in)
        elif official and name.startswith("backbone.") and len(shape) >= 2 and \
                "lora_shared_A" not in name and "lora_tasks_A" not in name and "patch_embed" not in name:
            # the official initialisation's magnitudes (trunc-normal 0.02 for
            # linears and tables), with LoRA B small but non-zero
            v = 0.02 * torch.randn(shape, generator=gen)
        elif name.endswith("running_mean"):
            v = torch.randn(shape, generator=gen) * 0.1
        elif name.endswith("running_var"):
            v = 1.0 + torch.rand(shape, generator=gen)
        elif name.endswith("norm1.weight") or name.endswith("norm2.weight") or \
                name.endswith("norm.weight") or name.endswith(".1.weight"):
            v = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif len(shape) == 1:
            v = 0.1 * torch.randn(shape, generator=gen)
        elif "relative_position_bias_table" in name:
            v = 0.5 * torch.randn(shape, generator=gen)
        elif "lora_shared_B" in name or "lora_tasks_B" in name:
            v = 0.2 * torch.randn(shape, generator=gen)  # non-zero so every path counts
        else:
            fan_in = int(np.prod(shape[1:]))
            v = (torch.rand(shape, generator=gen) * 2 - 1) / math.sqrt(fan_in)
        params[name] = v.float().double()
        if tr and not (name.startswith("backbone.") and frozen_backbone(name)):
            trainable.add(name)
    return params, trainable


def forward(spec, W, images, state, training=True):
    """Logits per task; in training `state` receives the updated BN running
    statistics, in evaluation BN normalises with them."""
    if spec.kind != "mtlora":
        return forward_kinds(spec, W, images, state, training)
    ln = lambda x, p: F.layer_norm(x, (x.shape[-1],), W[p + ".weight"], W[p + ".bias"], 1e-5)  # noqa: E731

    def lin(x, p, lora):
        base = lora_names(p, lora)
        return F.linear(x, W[base + ".weight"], W.get(base + ".bias"))

    def low_rank(x, A, B, scale):
        return scale * F.linear(F.linear(x, W[A]), W[B])

    Bn = images.shape[0]
    x = F.conv2d(images, W["backbone.patch_embed.proj.weight"], W["backbone.patch_embed.proj.bias"],
                 stride=4).flatten(2).transpose(1, 2)
    x = ln(x, "backbone.patch_embed.norm")
    feats = {t: [] for t in spec.tasks}
    for s in range(spec.L):
        C = spec.embed << s
        res, ws = stage_geom(spec, s)
        heads = spec.heads[s]
        xt = None
        for b in range(spec.depths[s]):
            pre = f"backbone.layers.{s}.blocks.{b}"
            shift = block_shift(spec, s, b)
            tasks = spec.tasks if (spec.mtlora and b == spec.depths[s] - 1) else []
            h = ln(x, pre + ".norm1").view(Bn, res, res, C)
            if shift:
                h = torch.roll(h, (-shift, -shift), (1, 2))
            win = window_partition(h, ws)
            qkv = lin(win, pre + ".attn.qkv", spec.mtlora and spec.qkv)
            if spec.mtlora and spec.qkv:
                qkv = qkv + low_rank(win, pre + ".attn.qkv.lora_shared_A",
                                     pre + ".attn.qkv.lora_shared_B", spec.scale)
            mask = shifted_mask(res, res, ws, shift) if shift else None
            ctx, _ = attention_core(qkv, W[pre + ".attn.relative_position_bias_table"], mask, ws,
                                    C, heads)

            def unwin(t):
                y = window_reverse(t, ws, Bn, res, res)
                if shift:
                    y = torch.roll(y, (shift, shift), (1, 2))
                return y.reshape(Bn, res * res, C)

            # each layer kind switched as the official code switches it:
            # task terms exist in the stage's last block for the kinds that are
            # on, and task features only when fc2 has them
            lp, l1, l2 = (spec.mtlora and spec.proj, spec.mtlora and spec.fc1,
                          spec.mtlora and spec.fc2)
            last = b == spec.depths[s] - 1 and spec.mtlora
            pb = lin(ctx, pre + ".attn.proj", lp)
            proj = pb
            if lp:
                proj = pb + low_rank(ctx, pre + ".attn.proj.lora_shared_A",
                                     pre + ".attn.proj.lora_shared_B", spec.scale)
            x1 = x + unwin(proj)
            x1t = None
            if last and lp:
                x1t = {t: x + unwin(pb + low_rank(ctx, f"{pre}.attn.proj.lora_tasks_A.{t}",
                                                  f"{pre}.attn.proj.lora_tasks_B.{t}", spec.scale))
                       for t in spec.tasks}
            n2 = ln(x1, pre + ".norm2")
            f1 = lin(n2, pre + ".mlp.fc1", l1)
            fc1 = f1
            if l1:
                fc1 = f1 + low_rank(n2, pre + ".mlp.fc1.lora_shared_A", pre + ".mlp.fc1.lora_shared_B",
                                    spec.scale)
            g = F.gelu(fc1)
            gt = None
            if last and l1:  # task input: LN2 of the task tensor, or the shared (dropped) input
                gt = {t: F.gelu(f1 + low_rank(ln(x1t[t], pre + ".norm2") if x1t else n2,
                                              f"{pre}.mlp.fc1.lora_tasks_A.{t}",
                                              f"{pre}.mlp.fc1.lora_tasks_B.{t}", spec.scale))
                      for t in spec.tasks}
            f2 = lin(g, pre + ".mlp.fc2", l2)
            out = f2
            if l2:
                out = f2 + low_rank(g, pre + ".mlp.fc2.lora_shared_A", pre + ".mlp.fc2.lora_shared_B",
                                    spec.scale)
            out = x1 + out
            if last and l2:
                xt = {}
                for t in spec.tasks:
                    f2t = f2 + low_rank(gt[t] if gt else g, f"{pre}.mlp.fc2.lora_tasks_A.{t}",
                                        f"{pre}.mlp.fc2.lora_tasks_B.{t}", spec.scale)
                    xt[t] = (x1t[t] + f2t) if x1t else f2t  # no residual without proj tasks
            x = out

        def merge(z):
            z = z.view(Bn, res, res, C)
            z = torch.cat([z[:, 0::2, 0::2], z[:, 1::2, 0::2], z[:, 0::2, 1::2], z[:, 1::2, 1::2]], -1)
            z = ln(z.view(Bn, -1, 4 * C), f"backbone.layers.{s}.downsample.norm")
            p = f"backbone.layers.{s}.downsample.reduction"
            lora = spec.mtlora and spec.downsampler
            y = lin(z, p, lora)
            if lora:
                y = y + low_rank(z, p + ".lora_shared_A", p + ".lora_shared_B", spec.scale)
            return y

        if xt is None:
            xt = {t: x for t in spec.tasks}
        if s < spec.L - 1:
            xt = {t: merge(v) for t, v in xt.items()} if (spec.mtlora and spec.fc2) else None
            x = merge(x)
            if xt is None:
                xt = {t: x for t in spec.tasks}
        for t in spec.tasks:
            feats[t].append(xt[t])
    return decode(spec, W, feats, state, training)


def decode(spec, W, feats, state, training):
    """Per-task downsamplers and HighResolutionHead on each task's stage
    features feats[t] (a list of [B, tokens, C], one per stage)."""
    Bn = feats[spec.tasks[0]][0].shape[0]
    logits = {}
    for t in spec.tasks:
        lv = []
        for s in range(spec.L):
            z = feats[t][s]
            h = int(round(math.sqrt(z.shape[1])))
            z = z.view(Bn, h, h, z.shape[2]).permute(0, 3, 1, 2)
            lv.append(F.conv2d(z, W[f"downsampler.{t}.downsample_{s}.weight"]))
        h0 = lv[0].shape[2:]
        cat = torch.cat([lv[0]] + [F.interpolate(v, h0, mode="bilinear", align_corners=False)
                                   for v in lv[1:]], 1)
        pre = f"decoders.decoders.{t}.last_layer"
        y = F.conv2d(cat, W[pre + ".0.weight"], W[pre + ".0.bias"])
        rm, rv = state[pre + ".1.running_mean"], state[pre + ".1.running_var"]
        y = F.batch_norm(y, rm, rv, W[pre + ".1.weight"], W[pre + ".1.bias"], training=training,
                         momentum=0.1, eps=1e-5)
        y = F.conv2d(F.relu(y), W[pre + ".3.weight"], W[pre + ".3.bias"])
        # .contiguous(): the conv outputs here are channels-last (the features
        # come from a permuted token view), and PyTorch 1.13's masked_select
        # backward, used by the normals loss, misplaces gradients for
        # channels-last inputs (same loss value, wrong gradient). The
        # reference wants the mathematically right gradient.
        logits[t] = F.interpolate(y, (spec.img, spec.img), mode="bilinear",
                                  align_corners=False).contiguous()
    return logits


def cgc_gate(spec, W, t):
    """pi_t = softmax(G e_t), over the S shared and task t's Pe experts."""
    logits = F.linear(W["backbone.lora_gate.embedding"][t], W["backbone.lora_gate.weight"])
    return torch.softmax(logits, 0)


def adapted_linear(spec, W, x, p, lk, t):
    """One linear of the new kinds on path t (task index; None for the one
    path of lora-only models), in the factored form the model computes."""
    y = F.linear(x, W[lora_names(p, lk != "none") + ".weight"],
                 W.get(lora_names(p, lk != "none") + ".bias"))
    if lk == "none":
        return y
    if lk == "lora":
        a = F.linear(x, W[p + ".lora_shared_A"])
        return y + spec.scale * F.linear(a, W[p + ".lora_shared_B"])
    if lk == "mtl_lora":
        pi = torch.softmax(W[p + ".lora_mix"][t] / spec.tau, 0)
        Bt = torch.einsum("i,ior->or", pi, W[p + ".lora_B"])
        lam = W[p + ".lora_lambda"][t]
        if spec.diag:
            lam = torch.diag(lam)
        u = F.linear(F.linear(x, W[p + ".lora_A"]), lam)  # Lambda_t (A x)
        return y + spec.mtl_scale * F.linear(u, Bt)
    assert lk == "cgc_lora", lk
    S, Pe = spec.cgc_S, spec.cgc_task
    pi = cgc_gate(spec, W, t)
    As, Bs = W[p + ".lora_experts_shared_A"], W[p + ".lora_experts_shared_B"]
    At, Bt = W[p + ".lora_experts_task_A"], W[p + ".lora_experts_task_B"]
    z = 0
    for j in range(S):
        z = z + pi[j] * F.linear(F.linear(x, As[j]), Bs[j])
    for k in range(Pe):
        e = t * Pe + k
        z = z + pi[S + k] * F.linear(F.linear(x, At[e]), Bt[e])
    return y + spec.cgc_scale * z


def forward_kinds(spec, W, images, state, training=True, record=None):
    """The new kinds (lora, mtl_lora, cgc_lora, full_ft, decoders_only): a
    plain Swin whose block linears carry the layer's adapter. With a
    task-dependent layer the whole encoder runs once per task (path t, every
    adapter with task t's parameters) and decoder t reads path t; otherwise
    one path feeds every decoder. `record`, when a list, receives
    (prefix, layer key, path, input, output) of every adapted linear."""
    ln = lambda x, p: F.layer_norm(x, (x.shape[-1],), W[p + ".weight"], W[p + ".bias"], 1e-5)  # noqa: E731
    kinds = {k: spec.layer_kind(k) for k in LAYER_KEYS}

    def lin(x, p, key, t):
        y = adapted_linear(spec, W, x, p, kinds[key], t)
        if record is not None and kinds[key] != "none":
            record.append((p, key, t, x, y))
        return y

    Bn = images.shape[0]
    paths = list(range(len(spec.tasks))) if spec.paths > 1 else [None]
    pfeats = {}
    for t in paths:
        x = F.conv2d(images, W["backbone.patch_embed.proj.weight"],
                     W["backbone.patch_embed.proj.bias"], stride=4).flatten(2).transpose(1, 2)
        x = ln(x, "backbone.patch_embed.norm")
        fl = []
        for s in range(spec.L):
            C = spec.embed << s
            res, ws = stage_geom(spec, s)
            for b in range(spec.depths[s]):
                pre = f"backbone.layers.{s}.blocks.{b}"
                shift = block_shift(spec, s, b)
                h = ln(x, pre + ".norm1").view(Bn, res, res, C)
                if shift:
                    h = torch.roll(h, (-shift, -shift), (1, 2))
                win = window_partition(h, ws)
                qkv = lin(win, pre + ".attn.qkv", "qkv", t)
                mask = shifted_mask(res, res, ws, shift) if shift else None
                ctx, _ = attention_core(qkv, W[pre + ".attn.relative_position_bias_table"], mask,
                                        ws, C, spec.heads[s])
                y = window_reverse(lin(ctx, pre + ".attn.proj", "proj", t), ws, Bn, res, res)
                if shift:
                    y = torch.roll(y, (shift, shift), (1, 2))
                x1 = x + y.reshape(Bn, res * res, C)
                g = F.gelu(lin(ln(x1, pre + ".norm2"), pre + ".mlp.fc1", "fc1", t))
                x = x1 + lin(g, pre + ".mlp.fc2", "fc2", t)
            if s < spec.L - 1:  # patch merging, no adapter
                z = x.view(Bn, res, res, C)
                z = torch.cat([z[:, 0::2, 0::2], z[:, 1::2, 0::2], z[:, 0::2, 1::2],
                               z[:, 1::2, 1::2]], -1)
                z = ln(z.view(Bn, -1, 4 * C), f"backbone.layers.{s}.downsample.norm")
                x = F.linear(z, W[f"backbone.layers.{s}.downsample.reduction.weight"])
            fl.append(x)
        pfeats[t] = fl
    feats = {task: pfeats[i if spec.paths > 1 else None] for i, task in enumerate(spec.tasks)}
    return decode(spec, W, feats, state, training)


def merged_delta(spec, W, name_prefix, task):
    """dW_t (out x in) of one adapted linear for task `task` (index in
    spec.tasks or its name; None: the task-independent part), any kind, in
    the merged-weight form `W + dW_t` (docs/adapters.md, Merge):
      lora      s B A
      mtl_lora  s_mtl (sum_i softmax(w_t / tau)_i B^i) Lambda_t A
      cgc_lora  s_cgc (sum_j pi_t,j Bs_j As_j + sum_k pi_t,S+k Bt_k At_k)
      mtlora    the shared s B A; for proj's task terms s B_t A_t (the task
                path's proj has no shared term); fc1/fc2 task terms are no
                merge of one input (docs/adapters.md), refused
      none      zeros (also full_ft, decoders_only)."""
    p = name_prefix
    t = spec.tasks.index(task) if isinstance(task, str) else task
    key = next((v for k, v in LAYER_OF.items() if p.endswith("." + k)), None)
    if key is not None:
        lk = spec.layer_kind(key)
    elif p.endswith("downsample.reduction") and spec.mtlora and spec.downsampler:
        lk = "mtlora"
    else:
        lk = "none"
    base = W[lora_names(p, lk != "none") + ".weight"]
    if lk == "none":
        return torch.zeros_like(base)
    if lk == "mtlora":
        tname = spec.tasks[t] if t is not None else None
        if tname is not None and f"{p}.lora_tasks_A.{tname}" in W:
            if key != "proj":
                raise ValueError(f"{p}: MTLoRA's {key} task terms act on the task's input and "
                                 "the frozen weight on the shared one; no merge")
            return spec.scale * W[f"{p}.lora_tasks_B.{tname}"] @ W[f"{p}.lora_tasks_A.{tname}"]
        return spec.scale * W[p + ".lora_shared_B"] @ W[p + ".lora_shared_A"]
    if lk == "lora":
        return spec.scale * W[p + ".lora_shared_B"] @ W[p + ".lora_shared_A"]
    if t is None:
        raise ValueError(f"{p}: {lk} depends on the task")
    if lk == "mtl_lora":
        pi = torch.softmax(W[p + ".lora_mix"][t] / spec.tau, 0)
        Bt = (pi[:, None, None] * W[p + ".lora_B"]).sum(0)
        lam = W[p + ".lora_lambda"][t]
        lam = torch.diag(lam) if spec.diag else lam
        return spec.mtl_scale * Bt @ lam @ W[p + ".lora_A"]
    Pe, (out, fin) = spec.cgc_task, base.shape
    pi = cgc_gate(spec, W, t)
    # stacked form s B_t D_t A_t over task t's S + Pe experts
    rows = list(range(Pe * t, Pe * t + Pe))
    A = torch.cat([W[p + ".lora_experts_shared_A"].reshape(-1, fin),
                   W[p + ".lora_experts_task_A"][rows].reshape(-1, fin)], 0)
    B = torch.cat([W[p + ".lora_experts_shared_B"].permute(1, 0, 2).reshape(out, -1),
                   W[p + ".lora_experts_task_B"][rows].permute(1, 0, 2).reshape(out, -1)], 1)
    D = torch.repeat_interleave(pi, spec.cgc_re)
    return spec.cgc_scale * (B * D) @ A


def task_loss(t, logits, target):
    if t in ("semseg", "human_parts"):
        return ce_loss(logits, target)
    if t == "sal":
        return balanced_bce(logits, target)
    if t == "edge":
        return balanced_bce(logits, target, 0.95)
    return normals_loss(logits, target)


def make_targets(spec, gen):
    B, S = spec.batch, spec.img
    tg = {}
    for t in spec.tasks:
        if t in ("semseg", "human_parts"):
            lab = torch.randint(0, NUM_OUT[t], (B, S, S), generator=gen).double()
            lab[torch.rand(B, S, S, generator=gen) < 0.1] = 255
            tg[t] = lab
        elif t in ("sal", "edge"):
            tg[t] = (torch.rand(B, 1, S, S, generator=gen) > 0.7).double()
        else:
            n = F.normalize(torch.randn(B, 3, S, S, generator=gen).double(), dim=1).float().double()
            n[:, :, : S // 8, :] = 255.0
            tg[t] = n
    return tg


def run_case(spec, out_dir, seed=7, lr=1e-3, adamw=True):
    gen = torch.Generator().manual_seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.yaml"), "w") as f:
        f.write(spec.yaml())
    params, trainable = build_params(spec, gen)
    weights = {k: v.clone() for k, v in params.items()}
    images = torch.randn(spec.batch, 3, spec.img, spec.img, generator=gen).float().double()
    targets = make_targets(spec, gen)
    wfile = {k: v.numpy() for k, v in params.items()}
    for t in spec.tasks:  # as in the official state dict
        wfile[f"decoders.decoders.{t}.last_layer.1.num_batches_tracked"] = np.array(3, np.int64)
    write_safetensors(os.path.join(out_dir, "weights.safetensors"), wfile)

    eval_state = {k: v.clone() for k, v in params.items() if "running_" in k}
    with torch.no_grad():
        eval_logits = forward(spec, params, images, eval_state, training=False)
    state = {k: v.clone() for k, v in params.items() if "running_" in k}
    leaves = {k: v.clone().requires_grad_(k in trainable) for k, v in params.items()}
    logits = forward(spec, leaves, images, state)
    losses = {t: task_loss(t, logits[t], targets[t]) for t in spec.tasks}
    total = sum(LOSS_W[t] * losses[t] for t in spec.tasks)
    names = sorted(trainable)
    grads = torch.autograd.grad(total, [leaves[n] for n in names], allow_unused=True)
    # A tensor the loss never reaches gets no gradient in PyTorch (grad None,
    # and AdamW then leaves it alone): the shared fc2 LoRA of the very last
    # block, whose shared output no decoder reads. (The new kinds have none:
    # every path feeds a decoder.)
    unused = [n for n, g in zip(names, grads) if g is None]
    names, grads = zip(*[(n, g) for n, g in zip(names, grads) if g is not None])
    case = {"images": images}
    for t in spec.tasks:
        case["target_" + t] = targets[t]
        case["logits_" + t] = logits[t].detach()
        case["eval_logits_" + t] = eval_logits[t]
        case["loss_" + t] = losses[t].detach().reshape(1)
    case["loss_total"] = total.detach().reshape(1)
    for k, v in state.items():
        case["state_" + k] = v
    write_bundle(os.path.join(out_dir, "case.bin"),
                 {k: v.numpy() if torch.is_tensor(v) else v for k, v in case.items()})
    write_safetensors(os.path.join(out_dir, "grads.safetensors"),
                      {n: g.numpy() for n, g in zip(names, grads)},
                      {"unused": ",".join(unused)})

    if not adamw:
        # PyTorch's own float32 run of the same step, as the yardstick for
        # what float32 can reach on this model (the C test must do as well)
        import ref_ops
        orig = ref_ops.shifted_mask
        globals()["shifted_mask"] = lambda *a: orig(*a).float()
        st32 = {k: v.clone().float() for k, v in params.items() if "running_" in k}
        l32 = {k: v.float().clone().requires_grad_(k in trainable) for k, v in params.items()}
        lg32 = forward(spec, l32, images.float(), st32)
        tot32 = sum(LOSS_W[t] * task_loss(t, lg32[t], targets[t].float()) for t in spec.tasks)
        g32 = torch.autograd.grad(tot32, [l32[n] for n in names])
        globals()["shifted_mask"] = orig
        f32 = {"logits_" + t: float((lg32[t].double() - logits[t].detach()).abs().max() /
                                    logits[t].detach().abs().max()) for t in spec.tasks}
        gmax = max(float(g.abs().max()) for g in grads)
        per = {n: float((a.double() - b).abs().max()) / max(float(b.abs().max()), 1e-3 * gmax)
               for n, a, b in zip(names, g32, grads)}
        f32["grad_worst"] = max(per.values())
        write_safetensors(os.path.join(out_dir, "torch_f32_grad_error.safetensors"),
                          {n: np.array([v], np.float32) for n, v in per.items()})
        with open(os.path.join(out_dir, "torch_f32_error.json"), "w") as f:
            json.dump(f32, f, indent=1)
        print("torch float32 vs float64:", json.dumps(f32))
        return len(names), sum(int(np.prod(params[n].shape)) for n in names)
    # Two AdamW steps as the official optimizer groups them.
    tp = {n: params[n].clone().requires_grad_(True) for n in names}
    decay = [tp[n] for n in names if not (len(params[n].shape) == 1 or n.endswith(".bias"))]
    plain = [tp[n] for n in names if len(params[n].shape) == 1 or n.endswith(".bias")]
    opt = torch.optim.AdamW([{"params": decay}, {"params": plain, "weight_decay": 0.0}], lr=lr,
                            weight_decay=0.5)  # large, so a misplaced decay shows
    state2 = {k: v.clone() for k, v in params.items() if "running_" in k}
    for _ in range(2):
        W = dict(params)
        W.update(tp)
        lg = forward(spec, W, images, state2)
        tot = sum(LOSS_W[t] * task_loss(t, lg[t], targets[t]) for t in spec.tasks)
        opt.zero_grad()
        tot.backward()
        opt.step()
    write_safetensors(os.path.join(out_dir, "step2.safetensors"),
                      {n: tp[n].detach().numpy() for n in names}, {"lr": lr})
    return len(names), sum(int(np.prod(params[n].shape)) for n in names)


def self_check():
    """Checks of the new kinds against each other and the plain Swin (run
    with the cases; raises on a mismatch)."""
    def close(a, b, what, tol=1e-10):
        err = float((a - b).abs().max()) / max(float(b.abs().max()), 1e-30)
        assert err <= tol, f"{what}: relative error {err:.3g}"
        return err

    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)).double()

    def logits_of(spec, W):
        state = {k: v.clone() for k, v in W.items() if "running_" in k}
        with torch.no_grad():
            return forward(spec, W, images, state, training=False)

    new = [n for n, sp in CASES.items() if sp.kind != "mtlora"]
    worst = {}
    for name in new:
        spec = CASES[name]
        W, trainable = build_params(spec, torch.Generator().manual_seed(11))
        # 1. every adapted linear of every path is its merged weight W + dW_t
        rec = []
        state = {k: v.clone() for k, v in W.items() if "running_" in k}
        with torch.no_grad():
            forward_kinds(spec, W, images, state, training=False, record=rec)
        e = 0.0
        for p, key, t, x, y in rec:
            base = lora_names(p, True)
            ym = F.linear(x, W[base + ".weight"] + merged_delta(spec, W, p, t), W[base + ".bias"])
            e = max(e, close(ym, y, f"{name} {p} path {t}: merged weight vs factored"))
        assert len(rec) == sum(spec.depths) * spec.paths * sum(
            spec.layer_kind(k) != "none" for k in LAYER_KEYS), name
        # 2. with every B-like tensor zero the model is the plain Swin of the
        #    official full_ft forward (same base weights, plain names)
        plain = {}
        for k, v in W.items():
            if ".lora_" in k:
                continue
            plain[k.replace(".linear.", ".")] = v
        b_like = ("lora_shared_B", "lora_B", "lora_experts_shared_B", "lora_experts_task_B")
        Wz = {k: (torch.zeros_like(v) if k.rsplit(".", 1)[-1] in b_like else v)
              for k, v in W.items()}
        ref = logits_of(spec.replace(kind="mtlora", mtlora=False, layer_kinds=None), plain)
        got = logits_of(spec, Wz)
        for t in spec.tasks:
            close(got[t], ref[t], f"{name}: zero adapters vs plain Swin ({t})", 1e-12)
        # 3. trainable sets
        bb = [n for n in trainable if n.startswith("backbone.")]
        if spec.kind == "decoders_only":
            assert not bb, bb[:3]
        else:
            assert all(not n.endswith("linear.weight") and not n.endswith("linear.bias")
                       for n in bb), name
            assert all(n in trainable for n in W if ".lora_" in n), name
        worst[name] = e
    # 4. MTL-LoRA with one up-projection and Lambda = I is LoRA (scale s_mtl)
    mspec = CASES["mtl_lora"].replace(nb=1, mtl_scale=3.0)
    W, _ = build_params(mspec, torch.Generator().manual_seed(5))
    lspec = mspec.replace(kind="lora", scale=3.0)
    WL = {}
    for k, v in W.items():
        leaf = k.rsplit(".", 1)[-1]
        if leaf == "lora_lambda":
            W[k] = torch.eye(v.shape[-1], dtype=v.dtype).expand(v.shape).clone()
        elif leaf == "lora_A":
            WL[k[:-len(leaf)] + "lora_shared_A"] = v
        elif leaf == "lora_B":
            WL[k[:-len(leaf)] + "lora_shared_B"] = v[0]
        elif leaf != "lora_mix":
            WL[k] = v
    a, b = logits_of(mspec, W), logits_of(lspec, WL)
    for t in mspec.tasks:
        close(a[t], b[t], f"mtl_lora nb=1, Lambda=I vs lora ({t})", 1e-12)
    p = "backbone.layers.1.blocks.0.mlp.fc1"
    for t in range(len(mspec.tasks)):
        close(merged_delta(mspec, W, p, t), merged_delta(lspec, WL, p, None),
              "merged nb=1 vs lora")
    # 5. the kind full_ft is the official switch MTLORA.ENABLED False
    fspec = CASES["decoders_only"].replace(kind="full_ft")
    W, tr = build_params(fspec, torch.Generator().manual_seed(6))
    a, b = logits_of(fspec, W), logits_of(fspec.replace(kind="mtlora", mtlora=False), W)
    assert tr == set(n for n in W if "running_" not in n)
    for t in fspec.tasks:
        close(a[t], b[t], f"kind full_ft vs MTLORA.ENABLED False ({t})", 0)
    # 6. CGC's merged update is a diagonal-Lambda rank-(S+Pe) r_e LoRA; check
    #    it against the expert sum written out
    spec = CASES["cgc_lora_mixed"]
    W, _ = build_params(spec, torch.Generator().manual_seed(8))
    p = "backbone.layers.2.blocks.1.mlp.fc2"
    S, Pe = spec.cgc_S, spec.cgc_task
    for t in range(len(spec.tasks)):
        pi = cgc_gate(spec, W, t)
        d = sum(pi[j] * W[p + ".lora_experts_shared_B"][j] @ W[p + ".lora_experts_shared_A"][j]
                for j in range(S))
        d = d + sum(pi[S + k] * W[p + ".lora_experts_task_B"][t * Pe + k] @
                    W[p + ".lora_experts_task_A"][t * Pe + k] for k in range(Pe))
        close(merged_delta(spec, W, p, t), spec.cgc_scale * d, "cgc merged vs expert sum")
    print("self-check of the adapter kinds passed (merged vs factored, worst relative error: " +
          ", ".join(f"{n} {e:.1e}" for n, e in worst.items()) + ")")


CASES = {
    # four stages, shifted and unshifted windows, a stage smaller than the
    # window, four tasks with task paths
    "mtlora4": Spec(img=64, embed=8, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), ws=4,
                    tasks=("semseg", "human_parts", "sal", "normals"), r=4, rt=2, scale=4.0,
                    dec=(4, 4, 6, 8)),
    # MTLoRA+: LoRA on the merging reductions (frozen), none on qkv; edge task
    "mtlora_plus": Spec(img=32, embed=8, depths=(2, 2, 2, 2), heads=(2, 2, 4, 4), ws=2,
                        tasks=("sal", "edge"), r=3, rt=3, scale=2.0, dec=(3, 3, 3, 3),
                        qkv=False, downsampler=True),
    # layer kinds switched: no task LoRA on proj (the task path has no
    # attention residual), then none on fc1 (fc2's task input is the shared one)
    "no_proj": Spec(img=32, embed=8, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), ws=2,
                    tasks=("semseg", "sal"), r=3, rt=2, scale=4.0, dec=(3, 3, 3, 3), proj=False),
    "no_fc1": Spec(img=32, embed=8, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), ws=2,
                   tasks=("normals", "human_parts"), r=3, rt=2, scale=4.0, dec=(3, 3, 3, 3), fc1=False),
    # fc2 off: task terms on proj and fc1 exist but feed nothing (no gradient)
    "no_fc2": Spec(img=32, embed=8, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), ws=2,
                   tasks=("semseg", "sal"), r=3, rt=2, scale=4.0, dec=(3, 3, 3, 3), fc2=False),
    # full fine-tuning baseline: plain Swin, everything trains
    "full_ft": Spec(img=32, embed=8, depths=(2, 2, 2, 2), heads=(1, 1, 2, 2), ws=2,
                    tasks=("semseg", "normals"), r=4, rt=4, scale=4.0, dec=(2, 3, 4, 5),
                    mtlora=False),
    # the adapter family (docs/adapters.md), MODEL.ADAPTER.KIND; rank R
    # plain LoRA on every block linear: one path for all decoders
    "lora": Spec(img=32, embed=8, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), ws=2,
                 tasks=("semseg", "sal"), r=3, rt=3, scale=2.0, dec=(3, 3, 3, 3), kind="lora"),
    # MTL-LoRA, full Lambda, 3 up-projections: one encoder path per task
    "mtl_lora": Spec(img=32, embed=8, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), ws=2,
                     tasks=("semseg", "human_parts", "normals"), r=4, rt=4, scale=2.0,
                     dec=(3, 3, 3, 3), kind="mtl_lora"),
    # diagonal Lambda, 2 up-projections, softer mixing; fc1 plain LoRA, fc2 none
    "mtl_lora_diag_mixed": Spec(img=32, embed=8, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), ws=2,
                                tasks=("sal", "normals"), r=4, rt=4, scale=2.0, dec=(3, 3, 3, 3),
                                kind="mtl_lora", diag=True, nb=2, tau=0.5,
                                layer_kinds={"fc1": "lora", "fc2": "none"}),
    # CGC-LoRA: S = T = 2 shared experts, one per task, expert rank 8 // 4 = 2
    "cgc_lora": Spec(img=32, embed=8, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), ws=2,
                     tasks=("semseg", "sal"), r=8, rt=8, scale=2.0, dec=(3, 3, 3, 3),
                     kind="cgc_lora", gate_dim=8),
    # CGC on fc1/fc2 (S = 2, 3 tasks: expert rank 6 // 5 = 1), MTL-LoRA on qkv, LoRA on proj
    "cgc_lora_mixed": Spec(img=32, embed=8, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), ws=2,
                           tasks=("human_parts", "normals", "sal"), r=6, rt=6, scale=2.0,
                           dec=(3, 3, 3, 3), kind="cgc_lora", cgc_shared=2, cgc_task=1,
                           layer_kinds={"qkv": "mtl_lora", "proj": "lora"}),
    # baseline: frozen plain Swin, only the downsamplers and decoders train
    "decoders_only": Spec(img=32, embed=8, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), ws=2,
                          tasks=("semseg", "normals"), r=3, rt=3, scale=2.0, dec=(3, 3, 3, 3),
                          kind="decoders_only"),
}

# The default model, one step (slow: float64 Swin-T at 448x448); run on
# request only, by the `model_parity_swin_t` test (ctest -L slow).
SLOW = {
    "swin_t_448": Spec(img=448, embed=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), ws=7,
                       tasks=("semseg", "human_parts", "sal", "normals"), r=64, rt=4, scale=4.0,
                       dec=(18, 36, 72, 144), batch=1, init="official"),
}

if __name__ == "__main__":
    torch.set_num_threads(2)
    out = sys.argv[1]
    which = sys.argv[2:] or list(CASES)
    if any(CASES.get(n) is not None and CASES[n].kind != "mtlora" for n in which):
        self_check()
    for name in which:
        if name in SLOW:
            n, count = run_case(SLOW[name], os.path.join(out, name), adamw=False)
        else:
            n, count = run_case(CASES[name], os.path.join(out, name))
        print(f"{name}: {n} trainable tensors, {count} values")
