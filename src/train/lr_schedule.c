/* lr_schedule.c - see lr_schedule.h. */
#include "mtlora/train/lr_schedule.h"

#include <math.h>

lr_schedule lr_schedule_make(const mt_config *c, int world, long updates_per_epoch) {
    lr_schedule s;
    /* main.py: linear scaling by the global batch, and by the accumulation. */
    double k = 1.0;
    if (c->run.lr_scaling) k = (double)c->batch_size * world / 512.0 * c->accumulation_steps;
    s.base = (double)c->base_lr * k;
    s.warmup = (double)c->warmup_lr * k;
    s.min = (double)c->min_lr * k;
    s.total_updates = (long)c->epochs * updates_per_epoch;
    s.warmup_updates = (long)c->warmup_epochs * updates_per_epoch;
    return s;
}

double lr_schedule_value(const lr_schedule *s, long t) {
    if (t < s->warmup_updates)
        return s->warmup + (double)t * ((s->base - s->warmup) / (double)s->warmup_updates);
    const long t_initial = s->total_updates - s->warmup_updates; /* warmup prefix */
    const long tc = t - s->warmup_updates;
    if (t_initial <= 0 || tc >= t_initial) return s->min; /* cycle_limit 1 */
    return s->min + 0.5 * (s->base - s->min) * (1.0 + cos(3.141592653589793 * (double)tc / (double)t_initial));
}

double lr_schedule_for_update(const lr_schedule *s, long u) {
    if (u <= 0) return s->warmup_updates > 0 ? s->warmup : s->base;
    return lr_schedule_value(s, u - 1);
}
