/* dist_eval.c - a distributed pass over the validation shards: each rank
 * evaluates its part, the meters' states (sums) are added over ranks, rank
 * 0 reports the official scores and Delta_m (trainer_internal.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mtlora/base/clock.h"
#include "mtlora/train/metrics.h"
#include "dist_preview.h"
#include "trainer_internal.h"

/* Rank 0: the reduced meters as one record. */
static void report(trainer *s, metrics_meter *const *meter, long step, int epoch, long images, double t0) {
    const mt_config *c = &s->cfg;
    eval_record e;
    memset(&e, 0, sizeof e);
    e.step = step;
    e.epoch = epoch;
    e.images = images;
    e.seconds = mt_now_s() - t0;
    double key[MT_MAX_TASKS], stl[MT_MAX_TASKS];
    int delta_ok = 1;
    for (int t = 0; t < c->ntasks; t++) {
        metrics_scores sc;
        metrics_score(meter[t], &sc);
        for (int k = 0; k < sc.count && e.n < (int)(sizeof e.value / sizeof e.value[0]); k++, e.n++) {
            snprintf(e.name[e.n], sizeof e.name[e.n], "%s %s", c->tasks[t], sc.name[k]);
            e.value[e.n] = sc.value[k];
        }
        const char *kname = metrics_delta_key(c->task_kind[t]);
        if (!kname || metrics_scores_get(&sc, kname, &key[t])) delta_ok = 0;
        if (c->run.n_stl) stl[t] = c->run.stl[t];
        else if (metrics_stl_baseline(c->task_kind[t], &stl[t])) delta_ok = 0;
    }
    e.delta_m = NAN;
    double delta;
    if (delta_ok && !metrics_delta_m(&delta, c->ntasks, c->task_kind, key, stl)) e.delta_m = delta;
    report_eval(&s->R, &e);
}

int trainer_evaluate(trainer *s, long step, int epoch) {
    const mt_config *c = &s->cfg;
    char err[TRAINER_ERRLEN];
    int tasks = 0;
    for (int t = 0; t < c->ntasks; t++) tasks |= 1 << (int)c->task_kind[t];
    loader_opts lo = {c->data_path, "val", tasks, s->d->rank, s->d->size, c->batch_size,
                      c->img_size, 0, (uint64_t)c->seed, 2, 0, 0};
    shard_loader *L;
    if (loader_open(&L, &lo, err, sizeof err)) return trainer_fail(s, err);
    metrics_meter *meter[MT_MAX_TASKS] = {0};
    for (int t = 0; t < c->ntasks; t++)
        if (metrics_create(&meter[t], c->task_kind[t])) return trainer_fail(s, "out of memory for meters");
    const double t0 = mt_now_s();
    long images = 0;
    dist_preview preview; /* RUN.EVAL_PREVIEW: rank 0's first images */
    dist_preview_start(&preview, c, s->d->rank, step);
    for (;;) {
        loader_batch *b;
        if (loader_next(L, &b, err, sizeof err)) return trainer_fail(s, err);
        if (!b) break;
        watchdog_mark(&s->wd, "evaluating");
        if (mt_model_forward(s->m, s->ctx, b->images, b->n, 0, 0)) return trainer_fail(s, mt_ctx_error(s->ctx));
        if (preview.left) dist_preview_batch(&preview, c, s->m, L, b);
        const metrics_targets tg = {.n = b->n, .semseg = b->semseg, .human_parts = b->human_parts,
                                    .sal = b->sal, .edge = b->edge, .normals = b->normals};
        for (int t = 0; t < c->ntasks; t++)
            if (metrics_update_targets(meter[t], mt_model_logits(s->m, t), c->num_outputs[t], c->img_size, &tg))
                return trainer_fail(s, metrics_error(meter[t]));
        images += b->n;
    }
    loader_close(L);
    long all_images = 0;
    int rc = MPI_Reduce(&images, &all_images, 1, MPI_LONG, MPI_SUM, 0, s->d->sync);
    if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Reduce (evaluated images)");
    for (int t = 0; t < c->ntasks; t++) {
        double *state;
        size_t n;
        metrics_state(meter[t], &state, &n);
        rc = MPI_Allreduce(MPI_IN_PLACE, state, (int)n, MPI_DOUBLE, MPI_SUM, s->d->sync);
        if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Allreduce (evaluation meters)");
    }
    if (s->d->rank == 0) report(s, meter, step, epoch, all_images, t0);
    for (int t = 0; t < c->ntasks; t++) metrics_destroy(meter[t]);
    return 0;
}
