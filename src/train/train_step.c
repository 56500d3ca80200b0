/* train_step.c - one optimizer update (train_step.h). */
#include "mtlora/base/clock.h"
#include "mtlora/train/train_step.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/base/rng.h"

mt_status train_state_init(train_state *s, mt_model *m, mt_ctx *ctx, const mt_config *c, int world,
                           long updates_per_epoch, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    param_bank *bank = mt_model_bank(m);
    s->model = m;
    s->ctx = ctx;
    s->ngroups = param_bank_adamw_groups(bank, c->weight_decay, NULL, 0);
    s->groups = malloc(sizeof(adamw_group) * (size_t)(s->ngroups > 0 ? s->ngroups : 1));
    s->mom = calloc(bank->n_trainable + 1, sizeof(float));
    s->vel = calloc(bank->n_trainable + 1, sizeof(float));
    if (!s->groups || !s->mom || !s->vel) {
        train_state_free(s);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "out of memory for the optimizer state (%zu values)",
                       bank->n_trainable);
    }
    param_bank_adamw_groups(bank, c->weight_decay, s->groups, s->ngroups);
    s->adam = adamw_defaults(0.0f);
    s->adam.beta1 = c->betas[0];
    s->adam.beta2 = c->betas[1];
    s->adam.eps = c->optimizer_eps;
    s->sched = lr_schedule_make(c, world, updates_per_epoch);
    s->clip_grad = c->clip_grad;
    s->accumulation = c->accumulation_steps;
    s->batch = c->batch_size;
    s->seed = (uint64_t)c->seed;
    return MT_OK;
}

/* RUN.TIMELINE's view of a backward: the model reports final gradients
 * part by part, each part's right after computing it (decoders, then stage
 * by stage from the last, then the patch embedding: model.h), so a part's
 * span ends at its first report and the next one's begins there (the
 * clock is read once per part, not per tensor). */
#define PART_NONE INT_MIN
struct train_trace {
    size_t *off; /* (n,) the trainable tensors' offsets, ascending */
    int *part;   /* (n,) -1 decoders, s stage s, -2 the embedding and the rest of the encoder */
    int n, nstages;
    int cur;     /* the part reported last (PART_NONE: none yet in this backward) */
    double t_start; /* where the next part's span begins */
    int micro, forward; /* forward: also call the reduction's hook (the last micro-batch) */
};

void train_state_free(train_state *s) {
    free(s->groups);
    free(s->mom);
    free(s->vel);
    s->groups = NULL;
    s->mom = s->vel = NULL;
    if (s->tt) {
        free(s->tt->off);
        free(s->tt->part);
        free(s->tt);
        s->tt = NULL;
    }
    s->trace = NULL;
}

mt_status train_state_set_trace(train_state *s, mt_trace *t, char *err, size_t errlen) {
    s->trace = t;
    if (!t || s->tt) return MT_OK;
    const param_bank *bank = mt_model_bank(s->model);
    struct train_trace *tt = calloc(1, sizeof *tt);
    if (tt) {
        tt->off = malloc(sizeof(size_t) * (size_t)(bank->count + 1));
        tt->part = malloc(sizeof(int) * (size_t)(bank->count + 1));
    }
    if (!tt || !tt->off || !tt->part) {
        if (tt) free(tt->off), free(tt->part);
        free(tt);
        s->trace = NULL;
        return mt_errf(err, errlen, MT_ERR_NOMEM, "timeline: out of memory");
    }
    tt->nstages = mt_model_config(s->model)->nstages;
    for (int i = 0; i < bank->count; i++) {
        const param_entry *e = &bank->entries[i];
        if (e->kind != MT_PARAM_TRAINABLE) continue;
        int stage, part = -2;
        if (strncmp(e->name, "backbone.", 9)) part = -1;
        else if (sscanf(e->name, "backbone.layers.%d.", &stage) == 1 && stage >= 0) part = stage;
        /* insertion by offset (the bank registers in memory order: a no-op) */
        int k = tt->n++;
        for (; k > 0 && tt->off[k - 1] > e->offset; k--) tt->off[k] = tt->off[k - 1], tt->part[k] = tt->part[k - 1];
        tt->off[k] = e->offset;
        tt->part[k] = part;
    }
    s->tt = tt;
    return MT_OK;
}

/* The order parts come in: decoders, the last stage ... stage 0, embedding. */
static int part_order(const struct train_trace *tt, int part) {
    return part == -1 ? 0 : part == -2 ? tt->nstages + 1 : tt->nstages - part;
}

static int part_of(const struct train_trace *tt, size_t offset) {
    int lo = 0, hi = tt->n - 1;
    if (hi < 0) return -2;
    while (lo < hi) { /* the last tensor starting at or before offset */
        const int mid = (lo + hi + 1) / 2;
        if (tt->off[mid] <= offset) lo = mid;
        else hi = mid - 1;
    }
    return tt->part[lo];
}

/* The grad-ready hook while the timeline records: the first report of a
 * later part closes that part's span (a tensor reported late, out of the
 * order, counts as the current part), then the reduction's hook. */
static void traced_ready(void *user, size_t offset, size_t count) {
    train_state *s = user;
    struct train_trace *tt = s->tt;
    if (count) {
        const int p = part_of(tt, offset);
        if (tt->cur == PART_NONE || part_order(tt, p) > part_order(tt, tt->cur)) {
            const double now = mt_now_s();
            mt_trace_add(s->trace, MT_SPAN_BACKWARD_PART, MT_TRACE_TID_MAIN, tt->t_start, now, tt->micro, p);
            tt->t_start = now;
            tt->cur = p;
        }
    }
    if (tt->forward) s->reduce.ready(s->reduce.user, offset, count);
}

/* mt_model_backward, its span and its parts' when the timeline records. */
static mt_status backward(train_state *s, int micro, int last) {
    struct train_trace *tt = s->tt;
    if (!s->trace || !tt) return mt_model_backward(s->model, s->ctx);
    tt->cur = PART_NONE;
    tt->micro = micro;
    tt->forward = last && s->reduce.ready;
    const double t0 = mt_now_s();
    tt->t_start = t0;
    mt_model_set_grad_ready(s->model, traced_ready, s);
    const mt_status st = mt_model_backward(s->model, s->ctx);
    mt_trace_add(s->trace, MT_SPAN_BACKWARD, MT_TRACE_TID_MAIN, t0, mt_now_s(), micro, 0);
    return st;
}

static int all_finite(const float *g, size_t n) {
    int ok = 1;
    #pragma omp parallel for reduction(&& : ok)
    for (size_t i = 0; i < n; i++) ok = ok && isfinite(g[i]);
    return ok;
}

/* torch.nn.utils.clip_grad_norm_: scale by max / (norm + 1e-6) when that is
 * below 1. Returns the norm before clipping. */
static double clip_by_global_norm(float *g, size_t n, double max_norm) {
    double ss = 0.0;
    #pragma omp parallel for reduction(+ : ss)
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    const double norm = sqrt(ss);
    if (max_norm > 0) {
        const double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            const float k = (float)coef;
            #pragma omp parallel for
            for (size_t i = 0; i < n; i++) g[i] *= k;
        }
    }
    return norm;
}

mt_status train_step(train_state *s, long update, train_batch_fn next_batch, void *user,
                     train_step_result *r, char *err, size_t errlen) {
    mt_model *m = s->model;
    mt_ctx *ctx = s->ctx;
    const mt_config *c = mt_model_config(m);
    param_bank *bank = mt_model_bank(m);
    memset(r, 0, sizeof *r);
    memset(bank->grads, 0, sizeof(float) * bank->n_trainable);
    const int acc = s->accumulation > 0 ? s->accumulation : 1;
    mt_status st;
    for (int micro = 0; micro < acc; micro++) {
        train_batch tb;
        memset(&tb, 0, sizeof tb);
        const double t0 = mt_now_s();
        if ((st = next_batch(user, update, micro, &tb, err, errlen))) return st;
        const double t1 = mt_now_s();
        r->data_s += t1 - t0;
        mt_trace_add(s->trace, MT_SPAN_DATA, MT_TRACE_TID_MAIN, t0, t1, micro, 0);
        /* Dropout and drop path: a pure function of (run seed, micro-batch
         * number, rank), so a resumed run draws the same masks. */
        const uint64_t seed = mt_rng_mix64((s->seed << 32) ^ (uint64_t)(update * acc + micro)) +
                              s->seed_offset;
        const int last = micro == acc - 1;
        if (last && s->reduce.begin) s->reduce.begin(s->reduce.user);
        mt_model_set_grad_ready(m, last ? s->reduce.ready : NULL, s->reduce.user);
        double total_loss = 0.0, task_loss[MT_MAX_TASKS];
        if (s->trace) { /* RUN.TIMELINE: the same calls, timed */
            const double f0 = mt_now_s();
            st = mt_model_forward(m, ctx, tb.images, s->batch, 1, seed);
            const double f1 = mt_now_s();
            mt_trace_add(s->trace, MT_SPAN_FORWARD, MT_TRACE_TID_MAIN, f0, f1, micro, 0);
            if (!st) st = mt_model_loss(m, ctx, &tb.targets, &total_loss, task_loss, 1);
            mt_trace_add(s->trace, MT_SPAN_LOSS, MT_TRACE_TID_MAIN, f1, mt_now_s(), micro, 0);
            if (!st) st = backward(s, micro, last);
        } else if (!(st = mt_model_forward(m, ctx, tb.images, s->batch, 1, seed)) &&
                   !(st = mt_model_loss(m, ctx, &tb.targets, &total_loss, task_loss, 1))) {
            st = mt_model_backward(m, ctx);
        }
        if (st) {
            mt_model_set_grad_ready(m, NULL, NULL);
            return mt_errf(err, errlen, st, "%s", mt_ctx_error(ctx));
        }
        r->loss[0] += total_loss;
        for (int t = 0; t < c->ntasks; t++) r->loss[1 + t] += task_loss[t];
        r->micro_batches++;
    }
    mt_model_set_grad_ready(m, NULL, NULL);
    const double w0 = s->trace ? mt_now_s() : 0.0;
    if (s->reduce.finish && (st = s->reduce.finish(s->reduce.user, &r->exposed_comm_s, err, errlen)))
        return st;
    const double w1 = s->trace ? mt_now_s() : 0.0;
    if (s->reduce.finish) mt_trace_add(s->trace, MT_SPAN_GRAD_WAIT, MT_TRACE_TID_MAIN, w0, w1, 0, 0);
    r->lr = lr_schedule_for_update(&s->sched, update);
    r->finite = all_finite(bank->grads, bank->n_trainable);
    if (r->finite) r->grad_norm = clip_by_global_norm(bank->grads, bank->n_trainable, s->clip_grad);
    const double c1 = s->trace ? mt_now_s() : 0.0;
    mt_trace_add(s->trace, MT_SPAN_CLIP, MT_TRACE_TID_MAIN, w1, c1, 0, 0);
    if (!r->finite) return MT_OK;
    adamw_config ac = s->adam;
    ac.lr = (float)r->lr;
    if ((st = adamw_step(ctx, bank->trainable, bank->grads, s->mom, s->vel, bank->n_trainable, s->groups,
                         s->ngroups, ac, ++s->adam_step)))
        return mt_errf(err, errlen, st, "%s", mt_ctx_error(ctx));
    if (s->trace) mt_trace_add(s->trace, MT_SPAN_OPTIMIZER, MT_TRACE_TID_MAIN, c1, mt_now_s(), 0, 0);
    return MT_OK;
}

void train_targets_from_loader(const mt_config *c, const loader_batch *b, mt_targets *tg) {
    memset(tg, 0, sizeof *tg);
    for (int t = 0; t < c->ntasks; t++) switch (c->task_kind[t]) {
        case MT_TASK_SEMSEG: tg->labels[t] = b->semseg; break;
        case MT_TASK_HUMAN_PARTS: tg->labels[t] = b->human_parts; break;
        case MT_TASK_SAL: tg->values[t] = b->sal; break;
        case MT_TASK_NORMALS: tg->values[t] = b->normals; break;
        case MT_TASK_EDGE: tg->values[t] = b->edge; break;
        }
}

mt_status synthetic_batch_alloc(synthetic_batch *o, int B, int S, char *err, size_t errlen) {
    const size_t px = (size_t)B * S * S;
    memset(o, 0, sizeof *o);
    o->B = B;
    o->S = S;
    o->images = malloc(sizeof(float) * 3 * px);
    o->normals = malloc(sizeof(float) * 3 * px);
    o->sal = malloc(sizeof(float) * px);
    o->edge = malloc(sizeof(float) * px);
    o->semseg = malloc(px);
    o->parts = malloc(px);
    if (!o->images || !o->normals || !o->sal || !o->edge || !o->semseg || !o->parts) {
        synthetic_batch_free(o);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "out of memory for a synthetic batch of %d at %d", B, S);
    }
    return MT_OK;
}

void synthetic_batch_free(synthetic_batch *o) {
    free(o->images);
    free(o->normals);
    free(o->sal);
    free(o->edge);
    free(o->semseg);
    free(o->parts);
    memset(o, 0, sizeof *o);
}

void synthetic_batch_fill(synthetic_batch *o, const mt_config *c, uint64_t seed, int64_t first_sample,
                          train_batch *tb) {
    const size_t plane = (size_t)o->S * o->S;
    for (int k = 0; k < o->B; k++) {
        const uint64_t s = mt_rng_mix64(seed ^ mt_rng_mix64((uint64_t)(first_sample + k) + 1));
        for (size_t i = 0; i < 3 * plane; i++)
            o->images[(size_t)k * 3 * plane + i] = 2.0f * mt_rng_uniform(s, i) - 1.0f;
        for (size_t i = 0; i < plane; i++) {
            const uint64_t bits = mt_rng_bits(s + 1, i);
            o->semseg[(size_t)k * plane + i] = (uint8_t)(bits % 21);
            o->parts[(size_t)k * plane + i] = (uint8_t)((bits >> 8) % 7);
            o->sal[(size_t)k * plane + i] = (float)((bits >> 16) & 1);
            o->edge[(size_t)k * plane + i] = (float)((bits >> 17) & 1);
            float n[3];
            for (int ch = 0; ch < 3; ch++) n[ch] = 2.0f * mt_rng_uniform(s + 2 + (uint64_t)ch, i) - 1.0f;
            const float len = sqrtf(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]) + 1e-6f;
            for (int ch = 0; ch < 3; ch++)
                o->normals[(size_t)k * 3 * plane + (size_t)ch * plane + i] = n[ch] / len;
        }
    }
    tb->images = o->images;
    /* the same task -> plane mapping as a loader batch */
    const loader_batch view = {.n = o->B, .semseg = o->semseg, .human_parts = o->parts, .sal = o->sal,
                               .edge = o->edge, .normals = o->normals, .images = o->images};
    train_targets_from_loader(c, &view, &tb->targets);
}
