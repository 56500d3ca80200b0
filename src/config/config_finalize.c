/* config_finalize.c - checking a loaded configuration and filling what
 * derives from it (mt_config_finalize).
 *
 * First every row of the key table is checked against its own bounds or
 * allowed values (config_keys.h), so a refusal names the key; then the
 * rules that tie keys together: list lengths against the stage count,
 * window and patch divisibility, heads dividing dims, the task list,
 * MTLoRA's per-stage and per-task ranks, and the adapter combinations. */
#include <stdio.h>
#include <string.h>

#include "config_keys.h"

#define fail mt_errf

/* ---- per-key bounds, from the table --------------------------------------- */

/* Value v of key `name` against row k: the bounds the loader checked
 * already, here again for values a program set itself. */
static mt_status check_number(const mt_key *k, const char *name, int index, double v, char *err,
                              size_t errlen) {
    char why[256], val[32];
    if (!mt_key_check(k, v, why, sizeof why)) return MT_OK;
    mt_key_format(k, v, val, sizeof val);
    if (index >= 0) return fail(err, errlen, MT_ERR_ARG, "%s[%d]: value %s %s", name, index, val, why);
    return fail(err, errlen, MT_ERR_ARG, "%s: value %s %s", name, val, why);
}

/* R_PER_TASK / SCALE_PER_TASK: every value of every named list. */
static mt_status check_named(const mt_key *k, const mt_named_list *l, int n, char *err,
                             size_t errlen) {
    char name[160];
    if (n < 0 || n > MT_MAX_TASKS + 4)
        return fail(err, errlen, MT_ERR_ARG, "%s: %d entries (at most %d)", k->name, n,
                    MT_MAX_TASKS + 4);
    for (int i = 0; i < n; i++) {
        if (!memchr(l[i].name, 0, sizeof l[i].name))
            return fail(err, errlen, MT_ERR_ARG, "%s: entry %d: name not terminated", k->name, i);
        snprintf(name, sizeof name, "%s.%s", k->name, l[i].name);
        if (l[i].n < 1 || l[i].n > MT_MAX_STAGES)
            return fail(err, errlen, MT_ERR_ARG, "%s: %d values (1 to %d)", name, l[i].n,
                        MT_MAX_STAGES);
        for (int e = 0; e < l[i].n; e++) {
            mt_status st = check_number(k, name, e, l[i].v[e], err, errlen);
            if (st) return st;
        }
    }
    return MT_OK;
}

/* Every row's own bounds or allowed values: numbers, each element of a
 * list (up to its count), strings of an enumeration, the named lists. */
static mt_status check_keys(const mt_config *c, char *err, size_t errlen) {
    mt_status st = MT_OK;
    for (size_t i = 0; i < MT_NKEYS && !st; i++) {
        const mt_key *k = &MT_KEYS[i];
        const char *p = (const char *)c + k->off;
        switch (k->type) {
        case K_INT: st = check_number(k, k->name, -1, *(const int *)p, err, errlen); break;
        case K_FLOAT: st = check_number(k, k->name, -1, *(const float *)p, err, errlen); break;
        case K_INTLIST:
        case K_FLOATLIST: {
            const int n = k->n_off ? *(const int *)((const char *)c + k->n_off) : (int)k->cap;
            if (n < 0 || n > (int)k->cap)
                return fail(err, errlen, MT_ERR_ARG, "%s: %d values (at most %zu)", k->name, n,
                            k->cap);
            for (int e = 0; e < n && !st; e++)
                st = check_number(k, k->name, e,
                                  k->type == K_INTLIST ? ((const int *)p)[e] : ((const float *)p)[e],
                                  err, errlen);
            break;
        }
        case K_RPT: st = check_named(k, c->raw.r_per_task, c->raw.n_r_per_task, err, errlen); break;
        case K_SPT:
            st = check_named(k, c->raw.scale_per_task, c->raw.n_scale_per_task, err, errlen);
            break;
        case K_STR: {
            char why[512];
            if (memchr(p, 0, k->cap) == NULL)
                return fail(err, errlen, MT_ERR_ARG, "%s: not terminated within %zu bytes", k->name,
                            k->cap);
            if (mt_key_check_str(k, p, why, sizeof why))
                return fail(err, errlen, MT_ERR_ARG, "%s: %s", k->name, why);
            break;
        }
        default: break; /* checked on reading, or by the rules below */
        }
    }
    return st;
}

/* ---- rules across keys ---------------------------------------------------- */

int mt_config_task_index(const mt_config *cfg, const char *name) {
    for (int i = 0; i < cfg->ntasks; i++)
        if (!strcmp(cfg->tasks[i], name)) return i;
    return -1;
}

/* Expands a list of length 1 to every stage, as config.py does. */
static mt_status expand(const char *key, const float *src, int n, int nstages, float *dst,
                        char *err, size_t errlen) {
    if (n != 1 && n != nstages)
        return fail(err, errlen, MT_ERR_ARG, "%s: %d values for %d stages (give 1 or %d)", key, n,
                    nstages, nstages);
    for (int i = 0; i < nstages; i++) dst[i] = src[n == 1 ? 0 : i];
    return MT_OK;
}

static const mt_named_list *find_list(const mt_named_list *l, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(l[i].name, name)) return &l[i];
    return NULL;
}

static const char *const ADAPTER_NAMES[] = {"none", "mtlora", "lora", "mtl_lora", "cgc_lora"};
static const char *const LAYER_KEYS[MT_LAYER_KINDS] = {"QKV", "PROJ", "FC1", "FC2"};

const char *mt_adapter_kind_name(mt_adapter_kind k) {
    return (unsigned)k < sizeof ADAPTER_NAMES / sizeof ADAPTER_NAMES[0] ? ADAPTER_NAMES[k] : "?";
}

static int adapter_kind_parse(const char *s, mt_adapter_kind *out) {
    for (size_t i = 0; i < sizeof ADAPTER_NAMES / sizeof ADAPTER_NAMES[0]; i++)
        if (!strcmp(s, ADAPTER_NAMES[i])) {
            *out = (mt_adapter_kind)i;
            return 0;
        }
    return -1;
}

/* MODEL.ADAPTER.*: the kind of every layer kind, the baselines, and what
 * they imply for MODEL.MTLORA.ENABLED (the adapters take their ranks from
 * MODEL.MTLORA.R). The names themselves were checked against the table;
 * a name the enum does not know is still refused, so the two lists cannot
 * drift apart silently. */
static mt_status finalize_adapter(mt_config *c, char *err, size_t errlen) {
    mt_adapter_config *a = &c->adapter;
    mt_mtlora_config *m = &c->mtlora;
    mt_adapter_kind def = MT_ADAPTER_MTLORA;
    a->baseline = MT_BASELINE_NONE;
    if (!strcmp(a->kind, "full_ft")) {
        a->baseline = MT_BASELINE_FULL_FT;
        m->enabled = 0;
    } else if (!strcmp(a->kind, "decoders_only")) {
        a->baseline = MT_BASELINE_DECODERS_ONLY;
        m->enabled = 0;
    } else if (adapter_kind_parse(a->kind, &def) || def == MT_ADAPTER_NONE) {
        return fail(err, errlen, MT_ERR_ARG, "MODEL.ADAPTER.KIND: unknown kind '%s'", a->kind);
    } else if (def == MT_ADAPTER_MTLORA) {
        /* the official switch: MODEL.MTLORA.ENABLED False is full fine-tuning */
        if (!m->enabled) a->baseline = MT_BASELINE_FULL_FT;
    } else {
        m->enabled = 1;
    }
    const int on[MT_LAYER_KINDS] = {m->qkv_enabled, m->proj_enabled, m->fc1_enabled,
                                    m->fc2_enabled};
    a->paths = 1;
    for (int k = 0; k < MT_LAYER_KINDS; k++) {
        mt_adapter_kind lk = def;
        if (a->layer[k][0] && adapter_kind_parse(a->layer[k], &lk))
            return fail(err, errlen, MT_ERR_ARG, "MODEL.ADAPTER.%s: unknown kind '%s'", LAYER_KEYS[k],
                        a->layer[k]);
        if (a->baseline != MT_BASELINE_NONE) {
            if (a->layer[k][0] && lk != MT_ADAPTER_NONE)
                return fail(err, errlen, MT_ERR_ARG,
                            "MODEL.ADAPTER.%s: '%s' with the %s baseline (no adapters)",
                            LAYER_KEYS[k], a->layer[k],
                            a->baseline == MT_BASELINE_FULL_FT ? "full_ft" : "decoders_only");
            lk = MT_ADAPTER_NONE;
        } else if ((def == MT_ADAPTER_MTLORA) != (lk == MT_ADAPTER_MTLORA) && lk != MT_ADAPTER_NONE) {
            return fail(err, errlen, MT_ERR_ARG,
                        "MODEL.ADAPTER.%s: '%s' cannot be combined with %s (mtlora's task paths "
                        "are its own; mix mtlora only with none)", LAYER_KEYS[k],
                        mt_adapter_kind_name(lk), def == MT_ADAPTER_MTLORA ? "KIND mtlora" : "mtlora");
        }
        if (!on[k]) lk = MT_ADAPTER_NONE; /* MODEL.MTLORA.<LAYER>_ENABLED False */
        a->layer_kind[k] = lk;
        if (lk == MT_ADAPTER_MTL_LORA || lk == MT_ADAPTER_CGC_LORA) a->paths = c->ntasks;
    }
    if (def == MT_ADAPTER_MTLORA && a->baseline == MT_BASELINE_NONE) {
        /* MODEL.ADAPTER.<LAYER>: none switches the layer kind off as
         * MODEL.MTLORA.<LAYER>_ENABLED False does */
        m->qkv_enabled = a->layer_kind[MT_LAYER_QKV] != MT_ADAPTER_NONE;
        m->proj_enabled = a->layer_kind[MT_LAYER_PROJ] != MT_ADAPTER_NONE;
        m->fc1_enabled = a->layer_kind[MT_LAYER_FC1] != MT_ADAPTER_NONE;
        m->fc2_enabled = a->layer_kind[MT_LAYER_FC2] != MT_ADAPTER_NONE;
    }
    a->mtl_diag = !strcmp(a->mtl_lambda, "diag");
    a->n_shared_experts = a->cgc_shared ? a->cgc_shared : c->ntasks;
    return MT_OK;
}

/* MODEL.MTLORA.*: ranks, scales and dropout per stage and per task. Only
 * with MTLoRA on, as config.py reads them, so their bounds are here and
 * not in the table: R_PER_TASK.shared replaces R when given. */
static mt_status finalize_mtlora(mt_config *c, char *err, size_t errlen) {
    mt_mtlora_config *m = &c->mtlora;
    const int L = c->nstages;
    mt_status st;
    float tmp[MT_MAX_STAGES];
    if ((st = expand("MODEL.MTLORA.R", c->raw.r, c->raw.n_r, L, tmp, err, errlen))) return st;
    for (int s = 0; s < L; s++) m->r[s] = (int)tmp[s];
    if ((st = expand("MODEL.MTLORA.SHARED_SCALE", c->raw.shared_scale, c->raw.n_shared_scale, L,
                     m->shared_scale, err, errlen)))
        return st;
    if ((st = expand("MODEL.MTLORA.DROPOUT", c->raw.dropout, c->raw.n_dropout, L, m->dropout, err,
                     errlen)))
        return st;
    /* config.py: with R_PER_TASK empty every task and 'shared' take R;
     * otherwise 'shared' and every trained task must be listed. */
    const int have_rpt = c->raw.n_r_per_task > 0;
    if (have_rpt) {
        const mt_named_list *shared = find_list(c->raw.r_per_task, c->raw.n_r_per_task, "shared");
        if (!shared) return fail(err, errlen, MT_ERR_ARG, "MODEL.MTLORA.R_PER_TASK.shared: missing");
        if ((st = expand("MODEL.MTLORA.R_PER_TASK.shared", shared->v, shared->n, L, tmp, err,
                         errlen)))
            return st;
        for (int s = 0; s < L; s++) m->r[s] = (int)tmp[s];
    }
    for (int t = 0; t < c->ntasks; t++) {
        char key[96];
        snprintf(key, sizeof key, "MODEL.MTLORA.R_PER_TASK.%s", c->tasks[t]);
        if (have_rpt) {
            const mt_named_list *l = find_list(c->raw.r_per_task, c->raw.n_r_per_task, c->tasks[t]);
            if (!l) return fail(err, errlen, MT_ERR_ARG, "%s: missing", key);
            if ((st = expand(key, l->v, l->n, L, tmp, err, errlen))) return st;
            for (int s = 0; s < L; s++) m->r_task[t][s] = (int)tmp[s];
        } else {
            for (int s = 0; s < L; s++) m->r_task[t][s] = m->r[s];
        }
        const mt_named_list *sl =
            find_list(c->raw.scale_per_task, c->raw.n_scale_per_task, c->tasks[t]);
        snprintf(key, sizeof key, "MODEL.MTLORA.SCALE_PER_TASK.%s", c->tasks[t]);
        if (!sl && c->raw.n_scale_per_task > 0)
            return fail(err, errlen, MT_ERR_ARG, "%s: missing (SCALE_PER_TASK names other tasks)",
                        key);
        if (sl) {
            if ((st = expand(key, sl->v, sl->n, L, m->task_scale[t], err, errlen))) return st;
        } else {
            memcpy(m->task_scale[t], m->shared_scale, sizeof m->task_scale[t]);
        }
    }
    for (int s = 0; s < L; s++) {
        if (m->r[s] < 1)
            return fail(err, errlen, MT_ERR_ARG, "MODEL.MTLORA.R: stage %d rank %d must be >= 1", s,
                        m->r[s]);
        if (!(m->dropout[s] >= 0.0f && m->dropout[s] < 1.0f))
            return fail(err, errlen, MT_ERR_ARG, "MODEL.MTLORA.DROPOUT: stage %d value %g not in "
                        "[0, 1)", s, (double)m->dropout[s]);
        for (int t = 0; t < c->ntasks; t++)
            if (m->r_task[t][s] < 1)
                return fail(err, errlen, MT_ERR_ARG,
                            "MODEL.MTLORA.R_PER_TASK.%s: stage %d rank %d must be >= 1", c->tasks[t],
                            s, m->r_task[t][s]);
    }
    return MT_OK;
}

mt_status mt_config_finalize(mt_config *c, char *err, size_t errlen) {
    mt_status st;
    if ((st = check_keys(c, err, errlen))) return st;
    if (c->raw.n_depths < 1 || c->raw.n_depths > MT_MAX_STAGES)
        return fail(err, errlen, MT_ERR_ARG, "MODEL.SWIN.DEPTHS: 1 to %d stages", MT_MAX_STAGES);
    c->nstages = c->raw.n_depths;
    const int L = c->nstages;
    if (c->raw.n_heads != L)
        return fail(err, errlen, MT_ERR_ARG, "MODEL.SWIN.NUM_HEADS: %d values for %d stages",
                    c->raw.n_heads, L);
    if (c->raw.n_decoder_channels != L)
        return fail(err, errlen, MT_ERR_ARG, "MODEL.DECODER_CHANNELS: %d values for %d stages",
                    c->raw.n_decoder_channels, L);
    if (c->img_size % c->patch_size)
        return fail(err, errlen, MT_ERR_ARG, "DATA.IMG_SIZE %d is not a multiple of the patch size %d",
                    c->img_size, c->patch_size);
    int grid = c->img_size / c->patch_size;
    for (int s = 0; s < L; s++) {
        const int dim = c->embed_dim << s;
        if (dim % c->heads[s])
            return fail(err, errlen, MT_ERR_ARG,
                        "MODEL.SWIN.NUM_HEADS[%d]: stage %d: depth %d, heads %d: heads must divide "
                        "the dimension %d (MODEL.SWIN.EMBED_DIM << %d)", s, s, c->depths[s],
                        c->heads[s], dim, s);
        const int ws = grid <= c->window_size ? grid : c->window_size;
        if (grid % ws)
            return fail(err, errlen, MT_ERR_ARG,
                        "DATA.IMG_SIZE %d: stage %d grid %dx%d does not divide into %dx%d windows "
                        "(MODEL.SWIN.WINDOW_SIZE)", c->img_size, s, grid, grid, ws, ws);
        if (s < L - 1 && grid % 2)
            return fail(err, errlen, MT_ERR_ARG,
                        "DATA.IMG_SIZE %d: stage %d grid %d is odd and cannot be merged", c->img_size,
                        s, grid);
        if (s < L - 1) grid /= 2;
    }
    if (c->ntasks < 1) return fail(err, errlen, MT_ERR_ARG, "TASKS: no task given");
    for (int t = 0; t < c->ntasks; t++) {
        /* names were checked when the list was set */
        const mt_task_info *ti = mt_task_info_find(c->tasks[t]);
        if (!ti) return fail(err, errlen, MT_ERR_ARG, "TASKS: unknown task '%s'", c->tasks[t]);
        c->task_kind[t] = ti->kind;
        c->num_outputs[t] = ti->outputs;
        c->loss_weight[t] = ti->weight;
    }
    if ((st = finalize_adapter(c, err, errlen))) return st;
    if (c->mtlora.enabled && (st = finalize_mtlora(c, err, errlen))) return st;
    if (c->warmup_epochs >= c->epochs)
        return fail(err, errlen, MT_ERR_ARG, "TRAIN.WARMUP_EPOCHS must be in 0..TRAIN.EPOCHS-1");
    if (c->run.n_stl && c->run.n_stl != c->ntasks)
        return fail(err, errlen, MT_ERR_ARG, "RUN.STL_BASELINES: %d values for %d tasks",
                    c->run.n_stl, c->ntasks);
    return MT_OK;
}
