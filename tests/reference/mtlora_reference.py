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


class Spec:
    """Geometry of a small config (official key names in `yaml`)."""

    def __init__(self, img, embed, depths, heads, ws, tasks, r, rt, scale, dec, mtlora=True,
                 qkv=True, downsampler=False, freeze=True, batch=2, init="wide", proj=True,
                 fc1=True, fc2=True):
        self.__dict__.update(locals())
        del self.__dict__["self"]
        self.L = len(depths)
        self.grid0 = img // 4

    def yaml(self):
        t = ", ".join(self.tasks)
        rpt = "".join(f"      {k}: [{self.rt}]\n" for k in self.tasks)
        return (f"DATA:\n  IMG_SIZE: {self.img}\n  BATCH_SIZE: {self.batch}\n"
                f"MODEL:\n  TYPE: swin\n  NAME: parity\n  DROP_PATH_RATE: 0.0\n"
                f"  SWIN:\n    EMBED_DIM: {self.embed}\n    DEPTHS: {list(self.depths)}\n"
                f"    NUM_HEADS: {list(self.heads)}\n    WINDOW_SIZE: {self.ws}\n"
                f"  DECODER_CHANNELS: {list(self.dec)}\n"
                f"  MTLORA:\n    ENABLED: {self.mtlora}\n    R: [{self.r}]\n"
                f"    SHARED_SCALE: [{self.scale}]\n    TASK_SCALE: [{self.scale}]\n"
                f"    DROPOUT: [0.0]\n    FREEZE_PRETRAINED: {self.freeze}\n"
                f"    QKV_ENABLED: {self.qkv}\n    DOWNSAMPLER_ENABLED: {self.downsampler}\n"
                f"    PROJ_ENABLED: {self.proj}\n    FC1_ENABLED: {self.fc1}\n"
                f"    FC2_ENABLED: {self.fc2}\n"
                f"    R_PER_TASK:\n{rpt}      shared: [{self.r}]\n"
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
        if not spec.mtlora or not spec.freeze:
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

    E = spec.embed
    add("backbone.patch_embed.proj.weight", (E, 3, 4, 4))
    add("backbone.patch_embed.proj.bias", (E,))
    add("backbone.patch_embed.norm.weight", (E,))
    add("backbone.patch_embed.norm.bias", (E,))
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
            lin(f"{pre}.attn.qkv", C, 3 * C, spec.mtlora and spec.qkv, True, [])
            lin(f"{pre}.attn.proj", C, C, on["proj"], True, tasks if on["proj"] else [])
            add(f"{pre}.norm2.weight", (C,))
            add(f"{pre}.norm2.bias", (C,))
            lin(f"{pre}.mlp.fc1", C, 4 * C, on["fc1"], True, tasks if on["fc1"] else [])
            lin(f"{pre}.mlp.fc2", 4 * C, C, on["fc2"], True, tasks if on["fc2"] else [])
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
        if official and name.startswith("backbone.") and len(shape) >= 2 and \
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
    # block, whose shared output no decoder reads.
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
    for name in which:
        if name in SLOW:
            n, count = run_case(SLOW[name], os.path.join(out, name), adamw=False)
        else:
            n, count = run_case(CASES[name], os.path.join(out, name))
        print(f"{name}: {n} trainable tensors, {count} values")
