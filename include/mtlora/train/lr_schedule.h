/* lr_schedule.h - the official learning-rate schedule (scale-lab/MTLoRA
 * main.py + lr_scheduler.py): LRs scaled linearly by the global batch,
 * base * batch * world / 512 (times TRAIN.ACCUMULATION_STEPS), then timm's
 * CosineLRScheduler per optimizer update with a linear warmup prefix:
 *   t < W:  warmup + t (base - warmup) / W
 *   t >= W: min + (base - min) (1 + cos(pi (t - W) / (T - W))) / 2, min after T
 * with W = WARMUP_EPOCHS and T = EPOCHS in updates. As in the official loop
 * the scheduler is stepped after each update, so update u uses value(u - 1)
 * (update 0 the initial warmup LR). */
#ifndef MTLORA_LR_SCHEDULE_H
#define MTLORA_LR_SCHEDULE_H

#include "mtlora/config/config.h"

typedef struct {
    double base, warmup, min;
    long warmup_updates, total_updates;
} lr_schedule;

/* updates_per_epoch: optimizer updates in one epoch (batches / accumulation). */
lr_schedule lr_schedule_make(const mt_config *c, int world, long updates_per_epoch);
/* timm's value after `t` scheduler steps. */
double lr_schedule_value(const lr_schedule *s, long t);
/* The LR of optimizer update u (0-based). */
double lr_schedule_for_update(const lr_schedule *s, long u);

#endif
