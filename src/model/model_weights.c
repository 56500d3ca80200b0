/* model_io.c - model weights to and from safetensors, by official name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "mtlora/ops/layers.h"
#include "mtlora/io/safetensors.h"
#include "mtlora/io/weight_file.h"
#include "mtlora/io/pth.h"

/* ---- saving --------------------------------------------------------- */

typedef struct {
    st_entry *e;
    int n, cap;
    char **names;   /* owned copies for generated names */
    int64_t *shapes; /* owned shape storage, 4 per entry */
    void **owned;   /* owned data for generated buffers */
    int nowned;
} entries;

static int add(entries *es, const char *name, st_dtype dt, int ndim, const int64_t *shape,
               const void *data, void *owned) {
    if (es->n == es->cap) {
        int ncap = es->cap ? 2 * es->cap : 512;
        st_entry *e = realloc(es->e, (size_t)ncap * sizeof *e);
        char **nm = realloc(es->names, (size_t)ncap * sizeof *nm);
        int64_t *sh = realloc(es->shapes, (size_t)ncap * 4 * sizeof *sh);
        void **ow = realloc(es->owned, (size_t)ncap * sizeof *ow);
        if (e) es->e = e;
        if (nm) es->names = nm;
        if (sh) es->shapes = sh;
        if (ow) es->owned = ow;
        if (!e || !nm || !sh || !ow) return -1;
        es->cap = ncap;
    }
    es->names[es->n] = strdup(name);
    if (!es->names[es->n]) return -1;
    memcpy(es->shapes + 4 * es->n, shape, (size_t)ndim * sizeof *shape);
    es->owned[es->n] = owned;
    st_entry *e = &es->e[es->n];
    e->name = es->names[es->n];
    e->dtype = dt;
    e->ndim = ndim;
    e->shape = NULL; /* fixed up after all adds (shapes may move) */
    e->data = data;
    es->n++;
    return 0;
}

static void entries_free(entries *es) {
    for (int i = 0; i < es->n; i++) { free(es->names[i]); free(es->owned[i]); }
    free(es->e);
    free(es->names);
    free(es->shapes);
    free(es->owned);
}

/* A path ending in ".pth" is written as PyTorch's zip format with the
 * state dict under "model" (what the official main.py --resume reads);
 * any other as safetensors with the metadata pairs. */
static int is_pth_path(const char *path) {
    const size_t n = strlen(path);
    return n >= 4 && !strcmp(path + n - 4, ".pth");
}

static mt_status write_entries(const char *path, const entries *es, const char *const *meta, int n_meta, char *err,
                               size_t errlen) {
    if (!is_pth_path(path)) return st_write(path, es->e, es->n, meta, n_meta, err, errlen);
    pth_write_entry *pe = calloc(es->n ? (size_t)es->n : 1, sizeof *pe);
    if (!pe) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < es->n; i++) {
        const st_entry *e = &es->e[i];
        pe[i] = (pth_write_entry){e->name, e->dtype == ST_I64 ? PTH_I64 : PTH_F32, e->ndim, e->ndim ? e->shape : NULL,
                                  e->data};
    }
    mt_status st = pth_write(path, pe, es->n, "model", err, errlen);
    free(pe);
    return st;
}

mt_status mt_model_save(mt_model *m, mt_ctx *ctx, const char *path) {
    return mt_model_save_subset(m, ctx, path, NULL, NULL);
}

mt_status mt_model_save_subset(mt_model *m, mt_ctx *ctx, const char *path,
                               int (*keep)(void *user, const char *name), void *user) {
    if (!ctx) return MT_ERR_ARG;
    if (!m || !path) return mt_fail(ctx, MT_ERR_ARG, "mt_model_save: NULL argument");
    for (int i = 0; i < m->bank.count; i++) {
        const param_entry *p = &m->bank.entries[i];
        if ((!keep || keep(user, p->name)) && !param_bank_value(&m->bank, p))
            return mt_fail(ctx, MT_ERR_ARG,
                           "mt_model_save %s: %s is held in bf16 only (AMP in mtlora_dist); save "
                           "the trainable tensors instead", path, p->name);
    }
    entries es;
    memset(&es, 0, sizeof es);
    int bad = 0;
    for (int i = 0; i < m->bank.count && !bad; i++) {
        const param_entry *p = &m->bank.entries[i];
        if (keep && !keep(user, p->name)) continue;
        bad = add(&es, p->name, ST_F32, p->ndim, p->shape, param_bank_value(&m->bank, p), NULL);
    }
    char name[MT_PARAM_NAME_LEN];
    for (int s = 0; s < m->L && !bad && !keep; s++)
        for (int b = 0; b < m->stages[s].depth && !bad; b++) {
            const swin_block *blk = &m->stages[s].blocks[b];
            int64_t N = (int64_t)blk->ws * blk->ws;
            int64_t *idx = malloc((size_t)N * N * sizeof *idx);
            int32_t *i32 = malloc((size_t)N * N * sizeof *i32);
            if (!idx || !i32) { free(idx); free(i32); bad = 1; break; }
            swin_relative_position_index(i32, blk->ws);
            for (int64_t k = 0; k < N * N; k++) idx[k] = i32[k];
            free(i32);
            int64_t sh[3] = {N, N, 0};
            snprintf(name, sizeof name, "backbone.layers.%d.blocks.%d.attn.relative_position_index", s, b);
            bad = add(&es, name, ST_I64, 2, sh, idx, idx);
            if (bad) { free(idx); break; }
            if (blk->shift) {
                int64_t nw = (int64_t)(blk->H / blk->ws) * (blk->W / blk->ws);
                int64_t shm[3] = {nw, N, N};
                snprintf(name, sizeof name, "backbone.layers.%d.blocks.%d.attn_mask", s, b);
                bad = add(&es, name, ST_F32, 3, shm, blk->mask, NULL);
            }
        }
    int64_t scalar_shape[1] = {0};
    for (int t = 0; t < m->T && !bad; t++) {
        snprintf(name, sizeof name, "decoders.decoders.%s.last_layer.1.num_batches_tracked",
                 m->cfg.tasks[t]);
        if (keep && !keep(user, name)) continue;
        bad = add(&es, name, ST_I64, 0, scalar_shape, &m->dec[t].bn_tracked, NULL);
    }
    if (bad) {
        entries_free(&es);
        return mt_fail(ctx, MT_ERR_NOMEM, "mt_model_save: out of memory");
    }
    for (int i = 0; i < es.n; i++) es.e[i].shape = es.shapes + 4 * i;
    char err[512];
    const char *meta[4] = {"format", "pt", "producer", "mtlora"};
    mt_status st = write_entries(path, &es, meta, 2, err, sizeof err);
    entries_free(&es);
    if (st) return mt_fail(ctx, st, "%s", err);
    return MT_OK;
}

mt_status mt_model_save_grads(mt_model *m, mt_ctx *ctx, const char *path, double loss) {
    if (!ctx) return MT_ERR_ARG;
    if (!m || !path) return mt_fail(ctx, MT_ERR_ARG, "mt_model_save_grads: NULL argument");
    entries es;
    memset(&es, 0, sizeof es);
    int bad = 0;
    for (int i = 0; i < m->bank.count && !bad; i++) {
        const param_entry *p = &m->bank.entries[i];
        if (p->kind != MT_PARAM_TRAINABLE) continue;
        bad = add(&es, p->name, ST_F32, p->ndim, p->shape, param_bank_grad(&m->bank, p), NULL);
    }
    if (bad) {
        entries_free(&es);
        return mt_fail(ctx, MT_ERR_NOMEM, "mt_model_save_grads: out of memory");
    }
    for (int i = 0; i < es.n; i++) es.e[i].shape = es.shapes + 4 * i;
    char lossbuf[64], err[512];
    snprintf(lossbuf, sizeof lossbuf, "%.17g", loss);
    const char *meta[4] = {"loss", lossbuf, "producer", "mtlora"};
    mt_status st = st_write(path, es.e, es.n, meta, 2, err, sizeof err);
    entries_free(&es);
    if (st) return mt_fail(ctx, st, "%s", err);
    return MT_OK;
}

/* ---- loading ---------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
    int count;
} name_list;

static void list_add(name_list *l, const char *what) {
    l->count++;
    if (l->count > 12) return; /* the first dozen are enough to act on */
    size_t need = strlen(what) + 3;
    if (l->len + need + 1 > l->cap) {
        size_t nc = (l->cap + need) * 2 + 256;
        char *b = realloc(l->buf, nc);
        if (!b) return;
        l->buf = b;
        l->cap = nc;
    }
    l->len += (size_t)sprintf(l->buf + l->len, "%s%s", l->len ? ", " : "", what);
}

/* timm's Swin (Hugging Face `swin_*.ms_in1k`) keeps the release's tensors
 * but moves each stage's patch merging to the start of the next stage
 * (release layers.i.downsample = timm layers.(i+1).downsample, the same
 * channel order) and names the classifier head.fc. A file is in timm's
 * layout when it has a downsample in stage 3 or a head.fc. */
static int is_timm_layout(const st_file *f) {
    for (int i = 0; i < f->count; i++) {
        const char *n = f->tensors[i].name;
        if (!strncmp(n, "backbone.", 9)) n += 9;
        if (!strncmp(n, "layers.3.downsample.", 20) || !strncmp(n, "head.fc.", 8)) return 1;
    }
    return 0;
}

/* Maps a file name to a model name; NULL when the tensor is to be skipped. */
static const char *map_name(const mt_model *m, const char *in, mt_load_mode mode, int timm, char *out,
                            size_t cap) {
    const char *s = in;
    if (strstr(s, "relative_position_index") || strstr(s, "attn_mask")) return NULL; /* derived */
    if (mode == MT_LOAD_NO_DECODERS && !strncmp(s, "decoders.", 9)) return NULL;
    if (mode != MT_LOAD_PRETRAINED) return in;
    if (!strncmp(s, "backbone.", 9)) s += 9;
    if (!strncmp(s, "head.", 5) || !strncmp(s, "norm.", 5)) return NULL; /* classifier, final norm */
    char shifted[ST_NAME_LEN + 8];
    int stage;
    int at = 0;
    if (timm && sscanf(s, "layers.%d.downsample.%n", &stage, &at) == 1 && at > 0 && stage >= 1 && stage <= 9) {
        snprintf(shifted, sizeof shifted, "layers.%d.downsample.%s", stage - 1, s + at);
        s = shifted;
    }
    snprintf(out, cap, "backbone.%s", s);
    if (param_bank_find(&m->bank, out)) return out;
    /* plain Linear "x.weight" becomes "x.linear.weight" inside MTLoRALinear */
    const char *dot = strrchr(s, '.');
    if (dot) {
        snprintf(out, cap, "backbone.%.*s.linear%s", (int)(dot - s), s, dot);
        if (param_bank_find(&m->bank, out)) return out;
    }
    snprintf(out, cap, "backbone.%s", s);
    return out;
}

static int same_shape(const param_entry *p, const st_tensor *t) {
    if (p->ndim != t->ndim) return 0;
    for (int d = 0; d < p->ndim; d++)
        if (p->shape[d] != t->shape[d]) return 0;
    return 1;
}

static int expected_missing(const char *name, mt_load_mode mode) {
    if (mode == MT_LOAD_SUBSET) return 1;
    if (mode == MT_LOAD_CHECKPOINT) return 0;
    if (mode == MT_LOAD_NO_DECODERS) return !strncmp(name, "decoders.", 9);
    return strstr(name, "lora_") || strncmp(name, "backbone.", 9);
}

mt_status mt_model_load(mt_model *m, mt_ctx *ctx, const char *path, mt_load_mode mode) {
    return mt_model_load_report(m, ctx, path, mode, NULL, 0);
}

/* A relative position bias table of another window size: the official
 * loader resizes it bicubically; we say so instead of guessing. */
static void explain_window(const char *name, const param_entry *p, const st_tensor *t, char *msg, size_t cap) {
    if (!strstr(name, "relative_position_bias_table") || t->ndim != 2 || p->ndim != 2 || t->shape[1] != p->shape[1])
        return;
    int wf = 0, wm = 0;
    while ((2 * wf + 1) * (2 * wf + 1) < t->shape[0]) wf++;
    while ((2 * wm + 1) * (2 * wm + 1) < p->shape[0]) wm++;
    const size_t L = strlen(msg);
    snprintf(msg + L, cap - L, " [a window-%d table for a window-%d model: the official loader resizes it "
             "bicubically, mtlora does not; use weights of window %d or set MODEL.SWIN.WINDOW_SIZE %d]",
             wf + 1, wm + 1, wm + 1, wf + 1);
}

mt_status mt_model_load_report(mt_model *m, mt_ctx *ctx, const char *path, mt_load_mode mode, char *note,
                               size_t notelen) {
    if (!ctx) return MT_ERR_ARG;
    if (!m || !path) return mt_fail(ctx, MT_ERR_ARG, "mt_model_load: NULL argument");
    if (note && notelen) note[0] = '\0';
    st_file f;
    char err[512];
    weight_file_info info;
    mt_status st = weight_file_load(&f, path, &info, err, sizeof err);
    if (st) return mt_fail(ctx, st, "%s", err);
    const int timm = mode == MT_LOAD_PRETRAINED && is_timm_layout(&f);
    const param_bank *bank = &m->bank;
    const st_tensor **src = calloc((size_t)bank->count, sizeof *src);
    if (!src) { st_free(&f); return mt_fail(ctx, MT_ERR_NOMEM, "mt_model_load: out of memory"); }
    name_list missing = {0}, unexpected = {0}, mismatched = {0}, unused = {0};
    int dec_left = 0; /* decoders.* tensors of the file left out (MT_LOAD_NO_DECODERS) */
    int64_t tracked[MT_MAX_TASKS];
    int have_tracked[MT_MAX_TASKS] = {0};
    char mapped[ST_NAME_LEN + 32], msg[512];
    for (int i = 0; i < f.count; i++) {
        const st_tensor *t = &f.tensors[i];
        const char *name = map_name(m, t->name, mode, timm, mapped, sizeof mapped);
        if (!name) {
            if (mode == MT_LOAD_NO_DECODERS && !strncmp(t->name, "decoders.", 9)) dec_left++;
            else if (!strstr(t->name, "relative_position_index") && !strstr(t->name, "attn_mask"))
                list_add(&unused, t->name);
            continue;
        }
        const char *nbt = strstr(name, ".last_layer.1.num_batches_tracked");
        if (nbt && mode != MT_LOAD_PRETRAINED) {
            int found = 0;
            for (int k = 0; k < m->T; k++) {
                char want[MT_PARAM_NAME_LEN];
                snprintf(want, sizeof want, "decoders.decoders.%s.last_layer.1.num_batches_tracked",
                         m->cfg.tasks[k]);
                if (!strcmp(want, name) && !st_read_i64(&f, t, &tracked[k], err, sizeof err)) {
                    have_tracked[k] = found = 1;
                }
            }
            if (!found) list_add(&unexpected, t->name);
            continue;
        }
        const param_entry *p = param_bank_find(bank, name);
        if (!p) { list_add(&unexpected, t->name); continue; }
        if (!same_shape(p, t)) {
            char sa[64] = "", sb[64] = "";
            for (int d = 0; d < p->ndim; d++)
                snprintf(sa + strlen(sa), sizeof sa - strlen(sa), d ? ",%lld" : "%lld", (long long)p->shape[d]);
            for (int d = 0; d < t->ndim; d++)
                snprintf(sb + strlen(sb), sizeof sb - strlen(sb), d ? ",%lld" : "%lld", (long long)t->shape[d]);
            snprintf(msg, sizeof msg, "%s (file [%s], model %s [%s])", t->name, sb, name, sa);
            explain_window(name, p, t, msg, sizeof msg);
            list_add(&mismatched, msg);
            continue;
        }
        src[p - bank->entries] = t;
    }
    for (int i = 0; i < bank->count; i++)
        if (!src[i] && !expected_missing(bank->entries[i].name, mode))
            list_add(&missing, bank->entries[i].name);
    if (mode == MT_LOAD_CHECKPOINT)
        for (int k = 0; k < m->T; k++)
            if (!have_tracked[k]) {
                snprintf(msg, sizeof msg, "decoders.decoders.%s.last_layer.1.num_batches_tracked",
                         m->cfg.tasks[k]);
                list_add(&missing, msg);
            }
    if (missing.count || unexpected.count || mismatched.count) {
        /* counts first, so the summary survives any truncation of the lists */
        mt_fail(ctx, MT_ERR_FORMAT,
                "%s: %d missing, %d unexpected, %d wrongly shaped tensors%s%s%s%s%s%s%s%s%s",
                path, missing.count, unexpected.count, mismatched.count,
                mismatched.count ? "; wrongly shaped: " : "", mismatched.count ? mismatched.buf : "",
                mismatched.count > 12 ? ", ..." : "",
                missing.count ? "; missing: " : "", missing.count ? missing.buf : "",
                missing.count > 12 ? ", ..." : "",
                unexpected.count ? "; unexpected: " : "", unexpected.count ? unexpected.buf : "",
                unexpected.count > 12 ? ", ..." : "");
        st = MT_ERR_FORMAT;
    } else {
        m->frozen_h_fresh = 0; /* the bf16 copy follows the new frozen values */
        for (int i = 0; i < bank->count && !st; i++)
            if (src[i] && !param_bank_value(bank, &bank->entries[i])) {
                st = mt_fail(ctx, MT_ERR_ARG, "%s: %s is held in bf16 only (AMP in mtlora_dist): "
                             "load weights before sharing them", path, bank->entries[i].name);
            } else if (src[i]) {
                st = st_read_f32(&f, src[i], param_bank_value(bank, &bank->entries[i]), err, sizeof err);
                if (st) mt_fail(ctx, st, "%s: %s", path, err);
            }
        for (int k = 0; k < m->T; k++)
            if (have_tracked[k]) m->dec[k].bn_tracked = tracked[k];
    }
    if (!st && note && notelen) {
        char dec[64] = "";
        if (dec_left) snprintf(dec, sizeof dec, "; %d decoders.* tensors left out", dec_left);
        snprintf(note, notelen, "%s%s%s%s%s%s%s%s%s%s%s", info.format, info.key[0] ? ", key '" : "", info.key,
                 info.key[0] ? "'" : "", timm ? ", timm layout (downsample moved back a stage)" : "", dec,
                 unused.count ? "; not used: " : "", unused.count ? unused.buf : "",
                 unused.count > 12 ? ", ..." : "", info.others[0] ? "; beside it in the file: " : "",
                 info.others);
    }
    free(missing.buf);
    free(unexpected.buf);
    free(mismatched.buf);
    free(unused.buf);
    free(src);
    st_free(&f);
    return st;
}
