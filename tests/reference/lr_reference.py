"""Reference LRs for test_lr_schedule: a port of the official schedule
(scale-lab/MTLoRA main.py linear scaling + lr_scheduler.build_scheduler
with timm's CosineLRScheduler: t_initial = steps - warmup (warmup_prefix),
cycle_limit 1, t_in_epochs False), driven the way train_one_epoch drives
it: the optimizer update uses the LR set by the previous step_update.

    lr_reference.py OUTDIR  -> OUTDIR/lr_cases.bundle
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle import write_bundle  # noqa: E402


class Cosine:  # timm.scheduler.CosineLRScheduler, the parts the official config uses
    def __init__(self, base, t_initial, lr_min, warmup_lr_init, warmup_t, warmup_prefix=True):
        self.base, self.t_initial, self.lr_min = base, t_initial, lr_min
        self.warmup_lr_init, self.warmup_t, self.warmup_prefix = warmup_lr_init, warmup_t, warmup_prefix
        if warmup_t:
            self.warmup_step = (base - warmup_lr_init) / warmup_t
            self.lr = warmup_lr_init          # Scheduler.__init__ -> update_groups(warmup_lr_init)
        else:
            self.warmup_step = 1
            self.lr = base

    def _get_lr(self, t):
        if t < self.warmup_t:
            return self.warmup_lr_init + t * self.warmup_step
        if self.warmup_prefix:
            t = t - self.warmup_t
        i = math.floor(t / self.t_initial)
        t_i, t_curr = self.t_initial, t - self.t_initial * i
        if i < 1:  # cycle_limit
            return self.lr_min + 0.5 * (self.base - self.lr_min) * (1 + math.cos(math.pi * t_curr / t_i))
        return self.lr_min

    def step_update(self, num_updates):
        self.lr = self._get_lr(num_updates)


def official_lrs(base, warm, mn, batch, world, acc, epochs, warmup_epochs, loader_len):
    k = batch * world / 512.0
    base, warm, mn = base * k, warm * k, mn * k
    if acc > 1:
        base, warm, mn = base * acc, warm * acc, mn * acc
    n_iter = loader_len // acc
    steps, wsteps = int(epochs * n_iter), int(warmup_epochs * n_iter)
    sch = Cosine(base, steps - wsteps, mn, warm, wsteps)
    used = []
    for epoch in range(epochs):
        for idx in range(loader_len):
            if (idx + 1) % acc == 0:
                used.append(sch.lr)             # optimizer.step() with the current LR
                sch.step_update((epoch * loader_len + idx) // acc)
    return np.array(used), n_iter


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    t = {}
    cases = [(5e-4, 5e-7, 5e-6, 32, 1, 1, 6, 2, 10), (5e-4, 5e-7, 5e-6, 8, 4, 1, 5, 0, 7),
             (1e-3, 1e-6, 1e-5, 4, 2, 2, 4, 1, 12), (5e-4, 5e-7, 5e-6, 2, 1, 1, 3, 2, 9)]
    for i, c in enumerate(cases):
        lrs, n_iter = official_lrs(*c)
        t["case%d.params" % i] = np.array(list(c) + [n_iter], dtype=np.float64)
        t["case%d.lr" % i] = lrs
    t["ncases"] = np.array([len(cases)])
    write_bundle(os.path.join(out, "lr_cases.bundle"), t)


if __name__ == "__main__":
    main()
