"""Reference scores for tests/test_metrics.c: the official MTLoRA evaluation
code run with torch on generated batches of logits and targets.

    python3 metrics_reference.py OUTDIR   ->  OUTDIR/metrics_cases.bundle

Ported from scale-lab/MTLoRA (commit 333a3750568f2ac9b8313fa6ff5dd86f517be13f): evaluation/
evaluate_utils.py get_output; eval_semseg.py SemsegMeter; eval_human_parts.py
HumanPartsMeter; eval_sal.py SaliencyMeter = eval_sal_no_beta.py
SaliencyMeterWithNoBeta + eval_sal_beta.py SaliencyMeterWithBeta (with
jaccard.py); eval_normals.py NormalsMeter = eval_normals_v1.py NormalsMeterV1
+ eval_normals_v2.py NormalsMeterV2; eval_edge.py EdgeMeter with
mtl_loss_schemes.py BalancedCrossEntropyLoss. The code below is the official
code with only these names routed through an `ops` object:

  ops.exp, ops.acos, ops.atan2, ops.sigmoid   per-pixel transcendental functions
  ops.batch_sum                               the per-batch torch.sum the meters .item()
  ops.loss_dtype                              dtype of the edge loss arithmetic

Each case is run twice:
  "official": ops are torch's own (float32 everywhere, as the official code);
  "exact":    the transcendental functions rounded once from float64 (the
              correctly rounded float32 value, what src/train/metrics_image.c computes),
              per-batch sums and the edge loss in float64.
The two differ only in the last bits of float sums; the data are generated
so that no pixel's thresholded decision differs between them (a logit whose
probability lands on a different side of a threshold is nudged), so every
count is the same in both.

All batches have at least 2 images: with a batch of one the official
get_output squeezes the saliency map to [H, W] and the no-beta meter then
treats each row as an image (see docs/metrics.md).

Bundle entries (tests/reference/bundle.py, float32; doubles are stored as
their 64-bit pattern in four 16-bit pieces, "<name>.f64"):
  <task>.nbatches, <task>.split            rank 0 takes batches [0, split)
  <task>.b<i>.logits  [B, K, S, S]   <task>.b<i>.target  [B, S, S] / [B, 3, S, S]
  <task>.<variant>.<key>.f64               official dict keys ("Beta maxF" -> Beta_maxF)
  semseg/human_parts.official.state        tp, fp, fn per class
  sal.<variant>.{mIoUs,mPrec,mRec}.f64       no-beta per-threshold means (15 doubles)
  sal.official.beta_state                  beta tp[19], predicted[19], actual[19]
  torch_norm_fused                         1 if torch's 2-norm fuses multiply-adds
"""
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import write_bundle  # noqa: E402


class TorchOps:
    exp = staticmethod(torch.exp)
    acos = staticmethod(torch.acos)
    atan2 = staticmethod(torch.atan2)
    sigmoid = staticmethod(torch.sigmoid)
    batch_sum = staticmethod(torch.sum)
    loss_dtype = torch.float32


def _f64(fn):
    return lambda *a: fn(*[t.double() for t in a]).float()


class ExactOps:
    exp = staticmethod(_f64(torch.exp))
    acos = staticmethod(_f64(torch.acos))
    atan2 = staticmethod(_f64(torch.atan2))
    # torch.sigmoid on CPU is 1 / (1 + exp(-x)) in float32
    sigmoid = staticmethod(lambda t: 1 / (1 + ExactOps.exp(-t)))
    batch_sum = staticmethod(lambda t: torch.sum(t.double()))
    loss_dtype = torch.float64


# ---------------------------------------------------------------- official


def get_output(output, task, ops):
    output = output.permute(0, 2, 3, 1)

    if task == 'normals':
        output = (F.normalize(output, p=2, dim=3) + 1.0) * 255 / 2.0

    elif task in {'semseg', 'human_parts'}:
        _, output = torch.max(output, dim=3)

    elif task in {'edge', 'sal'}:
        output = torch.squeeze(255 * 1 / (1 + ops.exp(-output)))

    else:
        raise ValueError('Select one of the valid tasks')

    return output


class SemsegMeter:
    """SemsegMeter('PASCALContext') and HumanPartsMeter: identical updates
    with n_classes 20 + background, resp. n_parts 6 + background."""

    def __init__(self, n_classes, ops):
        self.ignore_index = 255
        self.n_classes = n_classes
        self.tp = [0] * self.n_classes
        self.fp = [0] * self.n_classes
        self.fn = [0] * self.n_classes

    @torch.no_grad()
    def update(self, pred, gt):
        pred = pred.squeeze()
        gt = gt.squeeze()
        valid = (gt != self.ignore_index)

        for i_part in range(0, self.n_classes):
            tmp_gt = (gt == i_part)
            tmp_pred = (pred == i_part)
            self.tp[i_part] += torch.sum(tmp_gt & tmp_pred & valid).item()
            self.fp[i_part] += torch.sum(~tmp_gt & tmp_pred & valid).item()
            self.fn[i_part] += torch.sum(tmp_gt & ~tmp_pred & valid).item()

    def get_score(self):
        jac = [0] * self.n_classes
        for i_part in range(self.n_classes):
            jac[i_part] = float(
                self.tp[i_part]) / max(float(self.tp[i_part] + self.fp[i_part] + self.fn[i_part]), 1e-8)
        return {'mIoU': np.mean(jac)}


def jaccard(gt, pred, void_pixels=None):
    assert (gt.shape == pred.shape)
    if void_pixels is None:
        void_pixels = np.zeros_like(gt)
    assert (void_pixels.shape == gt.shape)
    gt = gt.astype(bool)
    pred = pred.astype(bool)
    void_pixels = void_pixels.astype(bool)
    if np.isclose(np.sum(gt & np.logical_not(void_pixels)), 0) and np.isclose(np.sum(pred & np.logical_not(void_pixels)), 0):
        return 1
    else:
        return np.sum(((gt & pred) & np.logical_not(void_pixels))) / \
            np.sum(((gt | pred) & np.logical_not(void_pixels)), dtype=float)


def precision_recall(gt, pred, void_pixels=None):
    if void_pixels is None:
        void_pixels = np.zeros_like(gt)
    gt = gt.astype(bool)
    pred = pred.astype(bool)
    void_pixels = void_pixels.astype(bool)
    tp = ((pred & gt) & ~void_pixels).sum()
    fn = ((~pred & gt) & ~void_pixels).sum()
    fp = ((pred & ~gt) & ~void_pixels).sum()
    prec = tp / (tp + fp + 1e-12)
    rec = tp / (tp + fn + 1e-12)
    return prec, rec


class SaliencyMeterWithNoBeta:
    def __init__(self):
        self.mask_thres = np.linspace(0.2, 0.9, 15)
        self.all_jacards = []
        self.prec = []
        self.rec = []

    @torch.no_grad()
    def update(self, pred, gt):
        b = pred.size(0)
        pred = pred.float().squeeze() / 255.
        gt = gt.squeeze().cpu().numpy()
        jaccards = np.zeros((b, len(self.mask_thres)))
        prec = np.zeros((b, len(self.mask_thres)))
        rec = np.zeros((b, len(self.mask_thres)))
        for j, thres in enumerate(self.mask_thres):
            mask_eval = (pred > thres).cpu().numpy()
            for i in range(b):
                jaccards[i, j] = jaccard(gt[i], mask_eval[i])
                prec[i, j], rec[i, j] = precision_recall(gt[i], mask_eval[i])
        self.all_jacards.append(jaccards)
        self.prec.append(prec)
        self.rec.append(rec)

    def get_score(self):
        eval_result = dict()
        eval_result['all_jaccards'] = np.concatenate(self.all_jacards)
        eval_result['prec'] = np.concatenate(self.prec)
        eval_result['rec'] = np.concatenate(self.rec)
        eval_result['mIoUs'] = np.mean(eval_result['all_jaccards'], 0)
        eval_result['mPrec'] = np.mean(eval_result['prec'], 0)
        eval_result['mRec'] = np.mean(eval_result['rec'], 0)
        eval_result['F'] = 2 * eval_result['mPrec'] * eval_result['mRec'] / \
            (eval_result['mPrec'] + eval_result['mRec'] + 1e-12)
        eval_result['mIoU'] = np.max(eval_result['mIoUs'])
        eval_result['maxF'] = np.max(eval_result['F'])
        return {x: eval_result[x].tolist() for x in eval_result}


class SaliencyMeterWithBeta:
    def __init__(self, ops, ignore_index=255, threshold_step=0.05, beta_squared=0.3):
        self.ops = ops
        self.ignore_index = ignore_index
        self.beta_squared = beta_squared
        self.thresholds = torch.arange(threshold_step, 1, threshold_step)
        self.true_positives = torch.zeros(len(self.thresholds))
        self.predicted_positives = torch.zeros(len(self.thresholds))
        self.actual_positives = torch.zeros(len(self.thresholds))

    @torch.no_grad()
    def update(self, preds, target):
        preds = preds.float() / 255.
        if target.shape[1] == 1 and len(target.shape) == 4:
            target = target.squeeze(1)
        if len(preds.shape) == 2:
            preds = preds.unsqueeze(0)
        if len(preds.shape) == len(target.shape) + 1:
            assert preds.shape[1] == 2
            preds = torch.nn.functional.softmax(preds, dim=1)[:, 1, :, :]
        else:
            preds = self.ops.sigmoid(preds)
        valid_mask = (target != self.ignore_index)
        for idx, thresh in enumerate(self.thresholds):
            f_preds = (preds >= thresh).long()
            f_target = target.long()
            f_preds = torch.masked_select(f_preds, valid_mask)
            f_target = torch.masked_select(f_target, valid_mask)
            self.true_positives[idx] += torch.sum(f_preds * f_target).cpu()
            self.predicted_positives[idx] += torch.sum(f_preds).cpu()
            self.actual_positives[idx] += torch.sum(f_target).cpu()

    def get_score(self):
        precision = self.true_positives.float() / self.predicted_positives
        recall = self.true_positives.float() / self.actual_positives
        num = (1 + self.beta_squared) * precision * recall
        denom = self.beta_squared * precision + recall
        fscore = num / denom
        fscore[fscore != fscore] = 0
        return {'maxF': fscore.max().item()}


class SaliencyMeter:
    def __init__(self, ops):
        self.no_beta = SaliencyMeterWithNoBeta()
        self.with_beta = SaliencyMeterWithBeta(ops)

    def update(self, pred, gt):
        self.no_beta.update(pred, gt)
        self.with_beta.update(pred, gt)

    def get_score(self):
        no_beta_result = self.no_beta.get_score()
        with_beta_result = self.with_beta.get_score()
        self.per_threshold = {k: no_beta_result[k] for k in ('mIoUs', 'mPrec', 'mRec')}
        return {'Beta maxF': with_beta_result['maxF'], 'maxF': no_beta_result['maxF'],
                'mIoU': no_beta_result['mIoU']}


class NormalsMeterV1:
    def __init__(self, ops):
        self.ops = ops
        self.eval_dict = {'mean': 0., 'rmse': 0., '11.25': 0., '22.5': 0., '30': 0., 'n': 0}

    @torch.no_grad()
    def update(self, pred, gt):
        pred = 2 * pred / 255 - 1
        pred = pred.permute(0, 3, 1, 2)  # [B, C, H, W]
        valid_mask = (gt != 255)
        invalid_mask = (gt == 255)
        pred[invalid_mask] = 0.0
        gt[invalid_mask] = 0.0
        deg_diff_tmp = (
            180 / math.pi) * (self.ops.acos(torch.clamp(torch.sum(pred * gt, 1), min=-1, max=1)))
        deg_diff_tmp = torch.masked_select(deg_diff_tmp, valid_mask[:, 0])
        self.eval_dict['mean'] += self.ops.batch_sum(deg_diff_tmp).item()
        self.eval_dict['rmse'] += self.ops.batch_sum(torch.sqrt(torch.pow(deg_diff_tmp, 2))).item()
        self.eval_dict['n'] += deg_diff_tmp.numel()

    def get_score(self):
        return {'mean': self.eval_dict['mean'] / self.eval_dict['n'],
                'rmse': self.eval_dict['mean'] / self.eval_dict['n']}


def normalize_tensor(input_tensor, dim):
    norm = torch.norm(input_tensor, p='fro', dim=dim, keepdim=True)
    zero_mask = (norm == 0)
    norm[zero_mask] = 1
    out = input_tensor.div(norm)
    out[zero_mask.expand_as(out)] = 0
    return out


class NormalsMeterV2:
    def __init__(self, ops, ignore_index=255):
        self.ops = ops
        self.sum_deg_diff = 0
        self.total = 0
        self.ignore_index = ignore_index

    @torch.no_grad()
    def update(self, pred, gt):
        pred = pred.permute(0, 3, 1, 2)
        pred = 2 * pred / 255 - 1
        valid_mask = (gt != self.ignore_index).all(dim=1)
        pred = normalize_tensor(pred, dim=1)
        gt = normalize_tensor(gt, dim=1)
        deg_diff = torch.rad2deg(
            2 * self.ops.atan2(torch.norm(pred - gt, dim=1), torch.norm(pred + gt, dim=1)))
        deg_diff = torch.masked_select(deg_diff, valid_mask)
        self.sum_deg_diff += self.ops.batch_sum(deg_diff).cpu().item()
        self.total += deg_diff.numel()

    def get_score(self):
        return {'mean': self.sum_deg_diff / self.total, 'rmse': self.sum_deg_diff / self.total}


class NormalsMeter:
    def __init__(self, ops):
        self.v1 = NormalsMeterV1(ops)
        self.v2 = NormalsMeterV2(ops)

    def update(self, pred, gt):
        self.v1.update(pred.clone(), gt.clone())
        self.v2.update(pred, gt)

    def get_score(self):
        eval_v1 = self.v1.get_score()
        eval_v2 = self.v2.get_score()
        return {'mean': eval_v1['mean'], 'rmse': eval_v1['rmse'],
                'mean_v2': eval_v2['mean'], 'rmse_v2': eval_v2['rmse']}


class BalancedCrossEntropyLoss:
    def __init__(self, ops, size_average=True, batch_average=True, pos_weight=None):
        self.ops = ops
        self.size_average = size_average
        self.batch_average = batch_average
        self.pos_weight = pos_weight

    def __call__(self, output, label, void_pixels=None):
        output = output.to(self.ops.loss_dtype)
        assert (output.size() == label.size())
        labels = torch.ge(label, 0.5).to(self.ops.loss_dtype)
        w = self.pos_weight  # EdgeMeter always passes 0.95
        output_gt_zero = torch.ge(output, 0).to(self.ops.loss_dtype)
        loss_val = torch.mul(output, (labels - output_gt_zero)) - torch.log(
            1 + torch.exp(output - 2 * torch.mul(output, output_gt_zero)))
        loss_pos_pix = -torch.mul(labels, loss_val)
        loss_neg_pix = -torch.mul(1.0 - labels, loss_val)
        loss_pos = torch.sum(loss_pos_pix)
        loss_neg = torch.sum(loss_neg_pix)
        final_loss = w * loss_pos + (1 - w) * loss_neg
        if self.size_average:
            final_loss /= float(np.prod(label.size()))
        elif self.batch_average:
            final_loss /= label.size()[0]
        return final_loss


class EdgeMeter:
    def __init__(self, ops, pos_weight=0.95):
        self.loss = 0
        self.n = 0
        self.loss_function = BalancedCrossEntropyLoss(ops, size_average=True, pos_weight=pos_weight)

    @torch.no_grad()
    def update(self, pred, gt):
        gt = gt.squeeze()
        pred = pred.float().squeeze() / 255.
        loss = self.loss_function(pred, gt).item()
        numel = gt.numel()
        self.n += numel
        self.loss += numel * loss

    def get_score(self):
        return {'loss': self.loss / self.n}


def make_meter(task, ops):
    return {'semseg': lambda: SemsegMeter(21, ops), 'human_parts': lambda: SemsegMeter(7, ops),
            'sal': lambda: SaliencyMeter(ops), 'normals': lambda: NormalsMeter(ops),
            'edge': lambda: EdgeMeter(ops)}[task]()


# ---------------------------------------------------------------- data

S = 20
BATCHES = [3, 2, 4, 3]  # rank 0 takes the first three, rank 1 the last: uneven
SPLIT = 3
NOBETA_T = np.linspace(0.2, 0.9, 15).astype(np.float32)
BETA_T = torch.arange(0.05, 1, 0.05).numpy()


def official_target(task, t):
    """Targets as the official loader's collate gives them: [B, 1, S, S]
    float (labels too), normals [B, 3, S, S]."""
    t = torch.from_numpy(np.asarray(t, dtype=np.float32))
    return t if task == 'normals' else t[:, None]


def sal_probs(x, ops):
    """The probability both saliency meters see, and the beta meter's
    second sigmoid of it."""
    p = get_output(torch.from_numpy(x)[:, None], 'sal', ops).float() / 255.
    return p.numpy(), ops.sigmoid(p).numpy()


def sal_decisions(x, ops):
    p, p2 = sal_probs(x, ops)
    return np.concatenate([(p[..., None] > NOBETA_T).reshape(-1),
                           (p2[..., None] >= BETA_T).reshape(-1)])


def settle_sal_logits(x):
    """Nudges logits whose thresholded decisions depend on the last bit of
    exp (torch's vectorised exp vs the correctly rounded one)."""
    for _ in range(20):
        a = sal_decisions(x, TorchOps).reshape(x.size, -1)
        b = sal_decisions(x, ExactOps).reshape(x.size, -1)
        bad = np.any(a != b, axis=1).reshape(x.shape)
        if not bad.any():
            return x
        x = np.where(bad, x + np.float32(1e-3), x).astype(np.float32)
    raise RuntimeError('could not settle saliency logits')


def logit_on_threshold(target, beta):
    """A float32 logit whose probability (beta: second sigmoid) is exactly
    the float32 `target` in both variants: pixels on a threshold test the
    strict > of the no-beta meter and the >= of the beta meter."""
    p = float(target) if not beta else math.log(float(target) / (1 - float(target)))
    x0 = np.float32(math.log(p / (1 - p)))
    steps = np.arange(-100000, 100000, dtype=np.float32)
    xs = (x0 + steps * np.spacing(x0)).astype(np.float32)
    xs = xs[np.argsort(np.abs(steps))].reshape(1, 1, -1)
    ok = np.ones(xs.size, bool)
    for ops in (TorchOps, ExactOps):
        q, q2 = sal_probs(xs, ops)
        ok &= (q2 if beta else q).reshape(-1) == target
    if not ok.any():
        raise RuntimeError('no logit for threshold %r' % target)
    return xs.reshape(-1)[np.argmax(ok)]


def onehot_logits(labels, K, rng, scale=6.0):
    B = labels.shape[0]
    x = rng.normal(0, 0.5, (B, K, S, S)).astype(np.float32)
    lab = np.where(labels == 255, 0, labels)
    for k in range(K):
        x[:, k] += np.float32(scale) * (lab == k)
    return x


def labels_case(K, rng):
    """Random logits and labels, plus: a perfect image, an all-ignore image,
    a tie image (all logits 0: torch.max picks class 0), and one class never
    labelled nor predicted (IoU 0/1e-8 = 0 is still averaged in)."""
    absent = K - 1
    out = []
    for bi, B in enumerate(BATCHES):
        labels = rng.integers(0, K - 1, (B, S, S)).astype(np.uint8)  # never `absent`
        labels[rng.random((B, S, S)) < 0.1] = 255
        x = rng.normal(0, 2, (B, K, S, S)).astype(np.float32)
        # correlate logits with labels so that IoUs are far from 0
        x += onehot_logits(labels, K, rng, 1.5) * (rng.random((B, 1, S, S)) < 0.6)
        if bi == 0:
            x[1] = onehot_logits(labels[1:2], K, rng)[0]   # perfect
            labels[2] = 255                               # all ignored
        if bi == 1:
            x[0] = 0.0                                    # ties
        x[:, absent] = -50.0
        out.append((x.astype(np.float32), labels))
    return out


def blobs(B, rng):
    """0/1 maps of a few rectangles."""
    m = np.zeros((B, S, S), np.float32)
    for b in range(B):
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, S - 4, 2)
            h, w = rng.integers(3, 9, 2)
            m[b, y:y + h, x:x + w] = 1
    return m


def sal_case(rng):
    """Random logits correlated with blob targets, plus: an image without any
    positive, a perfect image, ignore (255) pixels, and pixels exactly on
    thresholds (both variants agree on those)."""
    out = []
    on_t = [logit_on_threshold(t, False) for t in NOBETA_T[[0, 6, 14]]]
    on_b = [logit_on_threshold(t, True) for t in BETA_T[[10, 11, 13]]]
    for bi, B in enumerate(BATCHES):
        t = blobs(B, rng)
        x = (rng.normal(0, 2.5, (B, S, S)) + 3.0 * (2 * t - 1) * (rng.random((B, S, S)) < 0.7)).astype(np.float32)
        if bi == 0:
            t[1] = 0                                    # no positive saliency
            x[2] = np.where(t[2] > 0, 12.0, -12.0)      # perfect
        if bi == 1:
            t[0, :3] = 255                              # ignored by beta, positive for no-beta
        x = settle_sal_logits(x)
        if bi == 2:
            x[0, 0, :3] = on_t                          # p == 0.2f, 0.5f, 0.9f
            x[0, 1, :3] = on_b                          # sigmoid(p) == 0.55f, 0.59999996f, 0.7f
            x[0, 2, :3] = [0.0, -200.0, 200.0]          # p = 0.5, 0 (sigmoid(p) = 0.5), 1
        out.append((x[:, None].astype(np.float32), t))
    return out


def unit_vectors(shape, rng):
    v = rng.normal(0, 1, shape).astype(np.float64)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def normals_case(rng):
    """Random logits near the target, plus: ignored regions (all three
    channels 255), a fully ignored image, a pixel with zero logits (normalised
    to 0: 90 degrees), pixels with only channel 1 ignored (V1 counts them,
    V2 does not) and a near-perfect image."""
    out = []
    for bi, B in enumerate(BATCHES):
        g = unit_vectors((B, 3, S, S), rng)
        x = (g * 2 + rng.normal(0, 0.8, (B, 3, S, S))).astype(np.float32)
        hole = rng.random((B, S, S)) < 0.15
        g[np.broadcast_to(hole[:, None], g.shape)] = 255
        if bi == 0:
            g[1] = 255                                  # all ignored
            x[2] = g[2] * 5                             # near perfect
            x[0, :, 4, 4] = 0.0                         # zero vector
        if bi == 2:
            g[1, 1, 0, :5] = 255                        # only channel 1 ignored
        out.append((x, g))
    return out


def edge_case(rng):
    out = []
    for B in BATCHES:
        t = (rng.random((B, S, S)) < 0.1).astype(np.float32)
        x = (rng.normal(0, 2, (B, S, S)) + 2.0 * (2 * t - 1)).astype(np.float32)
        out.append((x[:, None], t))
    return out


def run_meter(task, batches, ops):
    meter = make_meter(task, ops)
    for x, t in batches:
        pred = get_output(torch.from_numpy(x.copy()), task, ops)
        meter.update(pred, official_target(task, t.copy()))
    return meter, meter.get_score()


def f64_pieces(v):
    """A double as its bit pattern in four 16-bit pieces (exact in float32)."""
    bits, = struct.unpack('<Q', struct.pack('<d', float(v)))
    return np.array([(bits >> (16 * k)) & 0xFFFF for k in range(4)], dtype=np.float32)


def torch_norm_is_fused():
    """Whether torch's float32 2-norm over 3 channels fuses its multiply-adds
    (its AVX2 kernels do; src/train/metrics_image.c does, with fmaf). Without it the
    normals scores differ from ours in the last bits (about 1e-9)."""
    x = torch.randn(4096, 3, generator=torch.Generator().manual_seed(5)) * 3
    a = x.numpy()
    d = np.float64
    acc = a[:, 0] * a[:, 0]
    acc = (acc.astype(d) + a[:, 1].astype(d) * a[:, 1]).astype(np.float32)
    acc = (acc.astype(d) + a[:, 2].astype(d) * a[:, 2]).astype(np.float32)
    return bool(np.array_equal(np.sqrt(acc), torch.norm(x, dim=1).numpy()))


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(20240611)
    cases = {'semseg': labels_case(21, rng), 'human_parts': labels_case(7, rng),
             'sal': sal_case(rng), 'normals': normals_case(rng), 'edge': edge_case(rng)}
    bundle = {'torch_norm_fused': np.array([torch_norm_is_fused()])}
    for task, batches in cases.items():
        bundle[task + '.nbatches'] = np.array([len(batches)])
        bundle[task + '.split'] = np.array([SPLIT])
        for i, (x, t) in enumerate(batches):
            bundle['%s.b%d.logits' % (task, i)] = x
            bundle['%s.b%d.target' % (task, i)] = t
        scores = {}
        for variant, ops in (('official', TorchOps), ('exact', ExactOps)):
            meter, sc = run_meter(task, batches, ops)
            scores[variant] = sc
            for key, v in sc.items():
                bundle['%s.%s.%s.f64' % (task, variant, key.replace(' ', '_'))] = f64_pieces(v)
            if variant == 'official' and task in ('semseg', 'human_parts'):
                bundle[task + '.official.state'] = np.array(meter.tp + meter.fp + meter.fn)
            if task == 'sal':
                for k, arr in meter.per_threshold.items():
                    bundle['sal.%s.%s.f64' % (variant, k)] = np.concatenate([f64_pieces(v) for v in arr])
            if variant == 'official' and task == 'sal':
                b = meter.with_beta
                bundle['sal.official.beta_state'] = torch.cat(
                    [b.true_positives, b.predicted_positives, b.actual_positives]).numpy()
        for key in scores['official']:
            o, e = scores['official'][key], scores['exact'][key]
            print('%-12s %-9s official %.17g exact %.17g rel %.2g' %
                  (task, key, o, e, abs(o - e) / max(abs(e), 1e-300)))
    path = os.path.join(out_dir, 'metrics_cases.bundle')
    write_bundle(path, bundle)
    print('wrote', path)


if __name__ == '__main__':
    main()
