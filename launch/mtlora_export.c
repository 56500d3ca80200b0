/* mtlora-export - what a trained model is worth outside training:
 *
 *  --merge --task T        folds task T's adapter update into a plain Swin
 *                          (full fine-tuning layout, task T's head only) and
 *                          writes it with its config, so mtlora-infer runs it
 *                          with one encoder path and no low-rank matmuls;
 *                          --bench N times both models
 *  --adapter-out DIR       the adapter alone, in Hugging Face PEFT's layout:
 *                          adapter_model.safetensors (the lora_* tensors),
 *                          trained_modules.safetensors (PEFT's modules_to_save:
 *                          every other trained tensor and the BatchNorm
 *                          buffers), config.yaml and adapter_config.json
 *  --adapter DIR           the way back: a base model (whole-model file or
 *                          ImageNet Swin) plus DIR gives the whole model
 *
 * Exit status: 0 success, 1 runtime failure, 2 bad command line or config. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mtlora/config/config.h"
#include "mtlora/model/model.h"
#include "mtlora/base/rng.h"
#include "mtlora/io/safetensors.h"

#define PROG "mtlora-export"
#define ADAPTER_FORMAT "mtlora-adapter"
#define ADAPTER_FORMAT_VERSION 1
#define PATH_CAP 4000 /* longest path argument */

static void usage(FILE *f) {
    fputs("usage: mtlora-export [--config FILE] [--opts KEY VALUE ...] --weights MODEL.safetensors\n"
          "                     --merge --task T --output MERGED.safetensors [--bench N] [--batch B]\n"
          "       mtlora-export [--config FILE] [--opts KEY VALUE ...] --weights MODEL.safetensors\n"
          "                     --adapter-out DIR\n"
          "       mtlora-export --adapter DIR (--base MODEL.safetensors | --pretrained SWIN.safetensors)\n"
          "                     --output MODEL.safetensors\n"
          "  --config       official-format YAML (default: built-in Swin-T 448 MTLoRA r64)\n"
          "  --opts         KEY VALUE pairs overriding the config (until the next --flag)\n"
          "  --weights      whole-model safetensors of that config (official state-dict names)\n"
          "  --merge        fold task T's adapter update into the frozen weights: writes a plain\n"
          "                 Swin with task T's head to --output and its config beside it\n"
          "                 (MERGED.yaml, for mtlora-infer --config); MTLoRA models with task\n"
          "                 paths cannot be merged\n"
          "  --task         the task to merge (one of the config's TASKS)\n"
          "  --bench N      time N evaluation forwards (after one warm-up) of the adapted and\n"
          "                 the merged model on random images, batch --batch (default 1)\n"
          "  --adapter-out  write the adapter to DIR (created if absent): adapter_model.safetensors\n"
          "                 (the lora_* tensors), trained_modules.safetensors (every other trained\n"
          "                 tensor and the BatchNorm buffers), config.yaml, adapter_config.json\n"
          "  --adapter      an --adapter-out directory to load: its config.yaml builds the model,\n"
          "                 adapter_config.json is checked against it\n"
          "  --base         whole-model safetensors supplying the frozen tensors\n"
          "  --pretrained   ImageNet Swin safetensors (plain names) supplying the encoder\n"
          "  --output       where the merged (--merge) or the whole (--adapter) model goes\n"
          "exit status: 0 ok, 1 runtime failure, 2 bad command line or config\n",
          f);
}

static int failf(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return rc;
}

/* A context and a model for cfg (initialised, weights still to load). */
static int open_model(mt_ctx **ctx, mt_model **m, const mt_config *cfg) {
    char err[600];
    if (mt_ctx_create(ctx, err, sizeof err)) return failf(1, "%s", err);
    if (mt_model_create(m, *ctx, cfg, 0)) {
        int rc = failf(1, "%s", mt_ctx_error(*ctx));
        mt_ctx_destroy(*ctx);
        return rc;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int is_lora(void *user, const char *name) {
    (void)user;
    return strstr(name, "lora_") != NULL;
}

/* trained_modules: every trained tensor that is not an adapter tensor, and
 * the BatchNorm buffers (running statistics, num_batches_tracked). */
static int is_trained_module(void *user, const char *name) {
    mt_model *m = user;
    if (strstr(name, "lora_")) return 0;
    const param_entry *e = param_bank_find(mt_model_bank(m), name);
    if (!e) return strstr(name, "num_batches_tracked") != NULL;
    return e->kind == MT_PARAM_TRAINABLE || e->kind == MT_PARAM_BUFFER;
}

/* ---- a growing string ---------------------------------------------------- */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) { b->oom = 1; return; }
        if (b->s && b->len + (size_t)n < b->cap) { b->len += (size_t)n; return; }
        size_t nc = (b->cap + (size_t)n + 1) * 2;
        char *p = realloc(b->s, nc);
        if (!p) { b->oom = 1; return; }
        b->s = p;
        b->cap = nc;
    }
}

/* ---- configuration --------------------------------------------------------- */

static int load_config(mt_config *cfg, const char *path, const char *const *opts, int nopts) {
    char err[600];
    mt_status st;
    if (path) {
        mt_config_default(cfg);
        st = mt_config_load(cfg, path, err, sizeof err);
    } else {
        st = mt_config_builtin(cfg, err, sizeof err);
    }
    for (int k = 0; !st && k < nopts; k += 2) st = mt_config_set(cfg, opts[k], opts[k + 1], err, sizeof err);
    if (!st) st = mt_config_finalize(cfg, err, sizeof err);
    if (st) return failf(2, "%s", err);
    return 0;
}

static const char *const MODULE_NAMES[MT_LAYER_KINDS] = {"attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"};

/* What MODEL.ADAPTER.KIND amounts to (MODEL.MTLORA.ENABLED False is full_ft). */
static const char *model_kind(const mt_config *c) {
    if (c->adapter.baseline == MT_BASELINE_FULL_FT) return "full_ft";
    if (c->adapter.baseline == MT_BASELINE_DECODERS_ONLY) return "decoders_only";
    return c->adapter.kind;
}

static int has_kind(const mt_config *c, mt_adapter_kind k) {
    for (int i = 0; i < MT_LAYER_KINDS; i++)
        if (c->adapter.layer_kind[i] == k) return 1;
    return 0;
}

static int has_reduction_lora(const mt_config *c) {
    return c->adapter.baseline == MT_BASELINE_NONE && c->mtlora.enabled && c->mtlora.downsampler_enabled;
}

static void json_str(sbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') sb_printf(b, "\\%c", ch);
        else if (ch < 0x20) sb_printf(b, "\\u%04x", ch);
        else sb_printf(b, "%c", ch);
    }
    sb_printf(b, "\"");
}

/* Config values are floats: written as the configuration writes them. */
static void json_num(sbuf *b, double v) {
    char t[32];
    mt_config_format_float(t, sizeof t, (float)v);
    sb_printf(b, "%s", t);
}

static void json_ints(sbuf *b, const int *v, int n) {
    sb_printf(b, "[");
    for (int i = 0; i < n; i++) sb_printf(b, i ? ", %d" : "%d", v[i]);
    sb_printf(b, "]");
}

static void json_floats(sbuf *b, const float *v, int n, double mul) {
    sb_printf(b, "[");
    for (int i = 0; i < n; i++) {
        if (i) sb_printf(b, ", ");
        json_num(b, (double)v[i] * mul);
    }
    sb_printf(b, "]");
}

/* Per kind: the stage list of scale (what = 0), alpha = scale * r (1) or
 * dropout (2). */
static void kind_stage_values(sbuf *b, const mt_config *c, mt_adapter_kind k, int what) {
    const int L = c->nstages;
    float v[MT_MAX_STAGES];
    for (int s = 0; s < L; s++) {
        float scale, drop;
        if (k == MT_ADAPTER_MTL_LORA) { scale = c->adapter.mtl_scale; drop = c->adapter.mtl_dropout; }
        else if (k == MT_ADAPTER_CGC_LORA) { scale = c->adapter.cgc_scale; drop = c->adapter.cgc_dropout; }
        else { scale = c->mtlora.shared_scale[s]; drop = c->mtlora.dropout[s]; }
        v[s] = what == 0 ? scale : what == 1 ? scale * (float)c->mtlora.r[s] : drop;
    }
    json_floats(b, v, L, 1.0);
}

static void kinds_object(sbuf *b, const mt_config *c, int what) {
    static const mt_adapter_kind order[] = {MT_ADAPTER_MTLORA, MT_ADAPTER_LORA, MT_ADAPTER_MTL_LORA,
                                            MT_ADAPTER_CGC_LORA};
    sb_printf(b, "{");
    int first = 1;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        mt_adapter_kind k = order[i];
        if (!has_kind(c, k) && !(k == MT_ADAPTER_LORA && has_reduction_lora(c))) continue;
        sb_printf(b, "%s\"%s\": ", first ? "" : ", ", mt_adapter_kind_name(k));
        kind_stage_values(b, c, k, what);
        first = 0;
    }
    sb_printf(b, "}");
}

/* The fields of adapter_config.json that follow from the config alone;
 * --adapter regenerates them to check the file against config.yaml. */
static void adapter_config_fields(sbuf *b, const mt_config *c) {
    const mt_adapter_config *a = &c->adapter;
    const int L = c->nstages;
    /* peft_type: the kind of the adapted block linears, MIXED if they differ */
    mt_adapter_kind first = MT_ADAPTER_NONE;
    int mixed = 0;
    for (int k = 0; k < MT_LAYER_KINDS; k++) {
        if (a->layer_kind[k] == MT_ADAPTER_NONE) continue;
        if (first == MT_ADAPTER_NONE) first = a->layer_kind[k];
        else if (a->layer_kind[k] != first) mixed = 1;
    }
    char peft[24];
    if (mixed) {
        snprintf(peft, sizeof peft, "MIXED");
    } else {
        snprintf(peft, sizeof peft, "%s", mt_adapter_kind_name(first));
        for (char *p = peft; *p; p++)
            if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    }
    sb_printf(b, "  \"peft_type\": ");
    json_str(b, peft);
    sb_printf(b, ",\n  \"format\": \"%s\",\n  \"format_version\": %d,\n", ADAPTER_FORMAT,
              ADAPTER_FORMAT_VERSION);
    sb_printf(b, "  \"base_model\": {\"type\": \"swin\", \"embed_dim\": %d, \"depths\": ", c->embed_dim);
    json_ints(b, c->depths, L);
    sb_printf(b, ", \"num_heads\": ");
    json_ints(b, c->heads, L);
    sb_printf(b, ", \"window_size\": %d, \"img_size\": %d, \"patch_size\": %d, \"in_chans\": %d, "
                 "\"mlp_ratio\": ",
              c->window_size, c->img_size, c->patch_size, c->in_chans);
    json_num(b, c->mlp_ratio);
    sb_printf(b, ", \"qkv_bias\": %s},\n", c->qkv_bias ? "true" : "false");
    sb_printf(b, "  \"tasks\": [");
    for (int t = 0; t < c->ntasks; t++) {
        if (t) sb_printf(b, ", ");
        json_str(b, c->tasks[t]);
    }
    sb_printf(b, "],\n  \"target_modules\": [");
    int n = 0;
    for (int k = 0; k < MT_LAYER_KINDS; k++)
        if (a->layer_kind[k] != MT_ADAPTER_NONE) sb_printf(b, "%s\"%s\"", n++ ? ", " : "", MODULE_NAMES[k]);
    if (has_reduction_lora(c)) sb_printf(b, "%s\"downsample.reduction\"", n++ ? ", " : "");
    sb_printf(b, "],\n  \"layer_kinds\": {");
    for (int k = 0; k < MT_LAYER_KINDS; k++)
        sb_printf(b, "%s\"%s\": \"%s\"", k ? ", " : "", MODULE_NAMES[k],
                  mt_adapter_kind_name(a->layer_kind[k]));
    if (has_reduction_lora(c)) sb_printf(b, ", \"downsample.reduction\": \"lora\"");
    sb_printf(b, "},\n  \"r\": ");
    json_ints(b, c->mtlora.r, L);
    sb_printf(b, ",\n  \"lora_alpha\": ");
    kinds_object(b, c, 1);
    sb_printf(b, ",\n  \"scaling\": ");
    kinds_object(b, c, 0);
    sb_printf(b, ",\n  \"lora_dropout\": ");
    kinds_object(b, c, 2);
    sb_printf(b, ",\n  \"bias\": \"none\"");
    if (has_kind(c, MT_ADAPTER_MTLORA)) {
        /* the task-specific terms of the last block of each stage */
        sb_printf(b, ",\n  \"mtlora\": {\"r_per_task\": {");
        for (int t = 0; t < c->ntasks; t++) {
            sb_printf(b, "%s\"%s\": ", t ? ", " : "", c->tasks[t]);
            json_ints(b, c->mtlora.r_task[t], L);
        }
        sb_printf(b, "}, \"task_scale\": {");
        for (int t = 0; t < c->ntasks; t++) {
            sb_printf(b, "%s\"%s\": ", t ? ", " : "", c->tasks[t]);
            json_floats(b, c->mtlora.task_scale[t], L, 1.0);
        }
        sb_printf(b, "}}");
    }
    if (has_kind(c, MT_ADAPTER_MTL_LORA)) {
        sb_printf(b, ",\n  \"mtl_lora\": {\"num_b\": %d, \"tau\": ", a->mtl_num_b);
        json_num(b, a->mtl_tau);
        sb_printf(b, ", \"lambda\": ");
        json_str(b, a->mtl_lambda);
        sb_printf(b, "}");
    }
    if (has_kind(c, MT_ADAPTER_CGC_LORA)) {
        int re[MT_MAX_STAGES];
        for (int s = 0; s < L; s++) re[s] = mt_config_cgc_expert_rank(c, s);
        sb_printf(b, ",\n  \"cgc_lora\": {\"shared_experts\": %d, \"task_experts\": %d, \"gate_dim\": %d, "
                     "\"expert_r\": ", a->n_shared_experts, a->cgc_task, a->cgc_gate_dim);
        json_ints(b, re, L);
        sb_printf(b, "}");
    }
}

/* ---- a small JSON reader: spans of values, no tree ------------------------ */

typedef struct {
    const char *p, *end;
} jspan;

static const char *jfar; /* furthest point the reader got to (for messages) */

static const char *jws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    if (p > jfar) jfar = p;
    return p;
}

/* Skips one value starting at p (after whitespace); NULL if malformed. */
static const char *jskip(const char *p, const char *e, int depth) {
    p = jws(p, e);
    if (p >= e || depth > 64) return NULL;
    if (*p == '"') {
        for (p++; p < e; p++) {
            if (*p == '\\') { p++; continue; }
            if (*p == '"') return p + 1;
            if ((unsigned char)*p < 0x20) return NULL;
        }
        return NULL;
    }
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p = jws(p + 1, e);
        if (p < e && *p == close) return p + 1;
        for (;;) {
            if (obj) {
                p = jws(p, e);
                if (p >= e || *p != '"') return NULL;
                if (!(p = jskip(p, e, depth + 1))) return NULL;
                p = jws(p, e);
                if (p >= e || *p != ':') return NULL;
                p++;
            }
            if (!(p = jskip(p, e, depth + 1))) return NULL;
            p = jws(p, e);
            if (p >= e) return NULL;
            if (*p == close) return p + 1;
            if (*p != ',') return NULL;
            p++;
        }
    }
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        const char *q = p;
        while (q < e && strchr("+-0123456789.eE", *q)) q++;
        return q;
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(lits[i]);
        if ((size_t)(e - p) >= n && !memcmp(p, lits[i], n)) return p + n;
    }
    return NULL;
}

/* The value of key in object v; found: 1. */
static int jget(jspan v, const char *key, jspan *out) {
    const char *p = jws(v.p, v.end), *e = v.end;
    if (p >= e || *p != '{') return 0;
    p = jws(p + 1, e);
    size_t kl = strlen(key);
    while (p < e && *p == '"') {
        const char *ks = p + 1, *ke = jskip(p, e, 0);
        if (!ke) return 0;
        p = jws(ke, e);
        if (p >= e || *p != ':') return 0;
        const char *vs = jws(p + 1, e), *ve = jskip(vs, e, 0);
        if (!ve) return 0;
        if ((size_t)(ke - 1 - ks) == kl && !memcmp(ks, key, kl)) {
            out->p = vs;
            out->end = ve;
            return 1;
        }
        p = jws(ve, e);
        if (p < e && *p == ',') p = jws(p + 1, e);
    }
    return 0;
}

/* Structural equality: objects by key (any order), numbers by value. */
static int jequal(jspan a, jspan b, int depth) {
    const char *p = jws(a.p, a.end), *q = jws(b.p, b.end);
    if (p >= a.end || q >= b.end || depth > 64) return 0;
    if (*p == '{' || *q == '{') {
        if (*p != *q) return 0;
        int na = 0, nb = 0;
        for (int side = 0; side < 2; side++) {
            jspan o = side ? b : a;
            const char *r = jws(jws(o.p, o.end) + 1, o.end);
            while (r < o.end && *r == '"') {
                const char *ks = r + 1, *ke = jskip(r, o.end, 0);
                if (!ke) return 0;
                r = jws(ke, o.end);
                if (r >= o.end || *r != ':') return 0;
                const char *ve = jskip(r + 1, o.end, 0);
                if (!ve) return 0;
                if (side == 0) {
                    char key[128];
                    size_t kl = (size_t)(ke - 1 - ks);
                    if (kl >= sizeof key) return 0;
                    memcpy(key, ks, kl);
                    key[kl] = '\0';
                    jspan vb, va = {r + 1, ve};
                    if (!jget(b, key, &vb) || !jequal(va, vb, depth + 1)) return 0;
                    na++;
                } else {
                    nb++;
                }
                r = jws(ve, o.end);
                if (r < o.end && *r == ',') r = jws(r + 1, o.end);
            }
        }
        return na == nb;
    }
    if (*p == '[' || *q == '[') {
        if (*p != *q) return 0;
        p = jws(p + 1, a.end);
        q = jws(q + 1, b.end);
        for (;;) {
            int ea = p < a.end && *p == ']', eb = q < b.end && *q == ']';
            if (ea || eb) return ea && eb;
            const char *pe = jskip(p, a.end, 0), *qe = jskip(q, b.end, 0);
            if (!pe || !qe) return 0;
            jspan x = {p, pe}, y = {q, qe};
            if (!jequal(x, y, depth + 1)) return 0;
            p = jws(pe, a.end);
            q = jws(qe, b.end);
            if (p < a.end && *p == ',') p = jws(p + 1, a.end);
            if (q < b.end && *q == ',') q = jws(q + 1, b.end);
        }
    }
    const char *pe = jskip(p, a.end, 0), *qe = jskip(q, b.end, 0);
    if (!pe || !qe) return 0;
    int pnum = *p == '-' || (*p >= '0' && *p <= '9'), qnum = *q == '-' || (*q >= '0' && *q <= '9');
    if (pnum || qnum) {
        if (!(pnum && qnum)) return 0;
        char x[64], y[64];
        if (pe - p >= 64 || qe - q >= 64) return 0;
        memcpy(x, p, (size_t)(pe - p));
        x[pe - p] = '\0';
        memcpy(y, q, (size_t)(qe - q));
        y[qe - q] = '\0';
        return strtod(x, NULL) == strtod(y, NULL);
    }
    return pe - p == qe - q && !memcmp(p, q, (size_t)(pe - p));
}

/* A value as one line (whitespace outside strings dropped, ", " and ": "
 * between items), cut to cap-1 characters. */
static void jshow(jspan v, char *out, size_t cap) {
    size_t n = 0;
    int in_str = 0, cut = 0;
    for (const char *p = jws(v.p, v.end); p < v.end && !cut; p++) {
        char ch = *p;
        char add[3] = {ch, 0, 0};
        if (in_str) {
            if (ch == '\\' && p + 1 < v.end) add[1] = *++p;
            else if (ch == '"') in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
            continue;
        } else if (ch == ',' || ch == ':') {
            add[1] = ' ';
        }
        size_t k = strlen(add);
        if (n + k + 4 > cap) { cut = 1; break; }
        memcpy(out + n, add, k);
        n += k;
    }
    if (cut && cap >= 4) { memcpy(out + n, "...", 3); n += 3; }
    out[n] = '\0';
}

/* The whole file as text; NULL (and a message) on failure. */
static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { failf(1, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    int oom = !s;
    while (!oom) {
        if (n == cap) {
            char *p = cap > ((size_t)64 << 20) ? NULL : realloc(s, cap * 2);
            if (!p) { oom = 1; break; }
            s = p;
            cap *= 2;
        }
        size_t r = fread(s + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (oom || bad) {
        free(s);
        failf(1, "%s: cannot read (%s)", path, oom ? "too large or out of memory" : "read error");
        return NULL;
    }
    *len = n;
    return s;
}

/* ---- files ----------------------------------------------------------------- */

static int write_text_atomic(const char *path, const char *text, size_t len) {
    char tmp[PATH_CAP + 8];
    snprintf(tmp, sizeof tmp, "%.*s.tmp", PATH_CAP, path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return failf(1, "%s: cannot write: %s", tmp, strerror(errno));
    int bad = fwrite(text, 1, len, f) != len;
    bad |= fflush(f) != 0;
    bad |= fclose(f) != 0;
    if (bad) { remove(tmp); return failf(1, "%s: write failed: %s", tmp, strerror(errno)); }
    if (rename(tmp, path)) {
        int e = errno;
        remove(tmp);
        return failf(1, "%s: cannot rename %s into place: %s", path, tmp, strerror(e));
    }
    return 0;
}

static int file_exists(const char *path) {
    struct stat sb;
    return !stat(path, &sb) && S_ISREG(sb.st_mode);
}

/* ---- mode 1: merge --------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds per forward of n timed evaluation forwards after one
 * warm-up; negative on failure (the message is in ctx). */
static double bench_forward(mt_model *m, mt_ctx *ctx, const float *images, int B, int n) {
    double *t = malloc((size_t)n * sizeof *t);
    if (!t) return -1.0;
    if (mt_model_forward(m, ctx, images, B, 0, 0)) { free(t); return -1.0; }
    for (int i = 0; i < n; i++) {
        double t0 = now_s();
        if (mt_model_forward(m, ctx, images, B, 0, 0)) { free(t); return -1.0; }
        t[i] = now_s() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    free(t);
    return med;
}

/* Standard normal images (what normalised inputs look like): the
 * project's counter-based generator and Box-Muller. */
static float *random_images(size_t count, uint64_t seed) {
    float *x = malloc(count * sizeof *x);
    if (!x) return NULL;
    for (size_t i = 0; i < count; i += 2) {
        double u[2];
        for (int k = 0; k < 2; k++)
            u[k] = ((double)(mt_rng_bits(seed, i + (size_t)k) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double r = sqrt(-2.0 * log(u[0])), th = 6.283185307179586 * u[1];
        x[i] = (float)(r * cos(th));
        if (i + 1 < count) x[i + 1] = (float)(r * sin(th));
    }
    return x;
}

static int run_merge(mt_model *m, mt_ctx *ctx, const mt_config *cfg, int t, const char *output,
                     int bench, int batch) {
    char yaml[PATH_CAP + 64], err[600];
    if (ends_with(output, ".safetensors"))
        snprintf(yaml, sizeof yaml, "%.*s.yaml", (int)(strlen(output) - strlen(".safetensors")), output);
    else
        snprintf(yaml, sizeof yaml, "%s.yaml", output);
    mt_config pc;
    if (mt_model_merged_config(m, ctx, t, &pc)) return failf(1, "%s", mt_ctx_error(ctx));
    mt_model *plain;
    if (mt_model_create(&plain, ctx, &pc, 0)) return failf(1, "%s", mt_ctx_error(ctx));
    int rc = 0;
    if (mt_model_merge_task(m, ctx, t, plain)) rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc && mt_model_save(plain, ctx, output)) rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc && mt_config_write_yaml(&pc, yaml, err, sizeof err)) rc = failf(1, "%s", err);
    if (!rc)
        printf("merged task %s (%s model, %d encoder path%s) into %s: %d tensors, %zu parameters; "
               "config %s\n",
               cfg->tasks[t], model_kind(cfg), cfg->adapter.paths, cfg->adapter.paths == 1 ? "" : "s",
               output, mt_model_bank(plain)->count, mt_model_param_counts(plain).total, yaml);
    if (!rc && bench > 0) {
        size_t per = (size_t)cfg->in_chans * cfg->img_size * cfg->img_size;
        float *im = random_images(per * (size_t)batch, 12345);
        if (!im) {
            rc = failf(1, "out of memory for %d bench images", batch);
        } else {
            double ta = bench_forward(m, ctx, im, batch, bench);
            double tm = ta < 0 ? -1.0 : bench_forward(plain, ctx, im, batch, bench);
            if (ta < 0 || tm < 0)
                rc = failf(1, "bench: %s", mt_ctx_error(ctx)[0] ? mt_ctx_error(ctx) : "out of memory");
            else
                printf("bench: adapted model %.4f s/batch (all %d tasks, %d encoder path%s), merged "
                       "task %s %.4f s/batch, speed-up %.2fx (batch %d, %dx%d, median of %d)\n",
                       ta, cfg->ntasks, cfg->adapter.paths, cfg->adapter.paths == 1 ? "" : "s",
                       cfg->tasks[t], tm, ta / tm, batch, cfg->img_size, cfg->img_size, bench);
            free(im);
        }
    }
    mt_model_destroy(plain);
    return rc;
}

/* ---- mode 2: adapter export ------------------------------------------------ */

static int run_adapter_out(mt_model *m, mt_ctx *ctx, const mt_config *cfg, const char *dir) {
    struct stat sb;
    if (!stat(dir, &sb)) {
        if (!S_ISDIR(sb.st_mode)) return failf(1, "%s: exists and is not a directory", dir);
    } else if (errno != ENOENT || mkdir(dir, 0777)) {
        return failf(1, "%s: cannot create the directory: %s", dir, strerror(errno));
    }
    const param_bank *bank = mt_model_bank(m);
    size_t na = 0, va = 0, nt = 0, vt = 0;
    for (int i = 0; i < bank->count; i++) {
        const param_entry *e = &bank->entries[i];
        if (is_lora(NULL, e->name)) { na++; va += e->count; }
        else if (is_trained_module(m, e->name)) { nt++; vt += e->count; }
    }
    nt += (size_t)cfg->ntasks; /* num_batches_tracked */
    vt += (size_t)cfg->ntasks;
    if (!na)
        return failf(1, "the model has no adapter (lora_*) tensors (MODEL.ADAPTER.KIND %s): there is "
                        "nothing to export as an adapter; its weights file is the model",
                     model_kind(cfg));
    char path[PATH_CAP + 64], err[600];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (mt_model_save_subset(m, ctx, path, is_lora, NULL)) return failf(1, "%s", mt_ctx_error(ctx));
    snprintf(path, sizeof path, "%s/trained_modules.safetensors", dir);
    if (mt_model_save_subset(m, ctx, path, is_trained_module, m)) return failf(1, "%s", mt_ctx_error(ctx));
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    if (mt_config_write_yaml(cfg, path, err, sizeof err)) return failf(1, "%s", err);
    sbuf b = {0};
    sb_printf(&b, "{\n");
    adapter_config_fields(&b, cfg);
    sb_printf(&b, ",\n  \"modules_to_save_file\": \"trained_modules.safetensors\",\n");
    sb_printf(&b, "  \"adapter_tensors\": %zu,\n  \"adapter_values\": %zu,\n", na, va);
    sb_printf(&b, "  \"trained_module_tensors\": %zu,\n  \"trained_module_values\": %zu\n}\n", nt, vt);
    if (b.oom) { free(b.s); return failf(1, "out of memory"); }
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    int rc = write_text_atomic(path, b.s, b.len);
    free(b.s);
    if (!rc)
        printf("wrote adapter to %s: %zu adapter tensors (%zu values), %zu trained-module tensors "
               "(%zu values), config.yaml, adapter_config.json\n", dir, na, va, nt, vt);
    return rc;
}

/* ---- mode 3: load back ------------------------------------------------------ */

/* Checks adapter_config.json against what config.yaml implies. */
static int check_adapter_config(const char *path, const mt_config *cfg) {
    size_t len;
    char *text = read_text(path, &len);
    if (!text) return 1;
    jspan doc = {text, text + len};
    jfar = text;
    const char *end = jskip(text, text + len, 0);
    int rc = 0;
    if (!end || jws(end, text + len) != text + len || *jws(text, text + len) != '{') {
        long at = end ? (long)(end - text) : (long)(jfar - text);
        rc = failf(1, "%s: not a JSON object (%s near byte %ld of %zu)", path,
                   end ? "unexpected content" : at >= (long)len ? "cut short" : "malformed", at, len);
        free(text);
        return rc;
    }
    sbuf want = {0};
    sb_printf(&want, "{\n");
    adapter_config_fields(&want, cfg);
    sb_printf(&want, "\n}\n");
    if (want.oom) { free(text); free(want.s); return failf(1, "out of memory"); }
    jspan w = {want.s, want.s + want.len};
    static const char *const fields[] = {"format", "format_version", "peft_type", "base_model", "tasks",
                                         "r", "target_modules", "layer_kinds", "mtlora", "mtl_lora",
                                         "cgc_lora"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0] && !rc; i++) {
        jspan a, e;
        int have_e = jget(w, fields[i], &e), have_a = jget(doc, fields[i], &a);
        if (!have_e && !have_a) continue;
        char sa[240] = "(absent)", se[240] = "(absent)";
        if (have_a) jshow(a, sa, sizeof sa);
        if (have_e) jshow(e, se, sizeof se);
        if (!have_a || !have_e || !jequal(a, e, 0))
            rc = failf(1, "%s: field \"%s\" is %s, but the adapter's config.yaml implies %s", path,
                       fields[i], sa, se);
    }
    free(want.s);
    free(text);
    return rc;
}

/* Every name of the model that keep() selects must be in the file. */
static int check_covers(const char *path, mt_model *m, int (*keep)(void *, const char *), void *user,
                        const char *what) {
    st_file f;
    char err[600];
    if (st_load(&f, path, err, sizeof err)) return failf(1, "%s", err);
    const param_bank *bank = mt_model_bank(m);
    const mt_config *c = mt_model_config(m);
    int missing = 0;
    char first[3][MT_PARAM_NAME_LEN];
    for (int i = 0; i < bank->count + c->ntasks; i++) {
        char nbt[MT_PARAM_NAME_LEN];
        const char *name;
        if (i < bank->count) {
            name = bank->entries[i].name;
        } else {
            snprintf(nbt, sizeof nbt, "decoders.decoders.%s.last_layer.1.num_batches_tracked",
                     c->tasks[i - bank->count]);
            name = nbt;
        }
        if (!keep(user, name) || st_find(&f, name)) continue;
        if (missing < 3) snprintf(first[missing], sizeof first[0], "%s", name);
        missing++;
    }
    st_free(&f);
    if (missing)
        return failf(1, "%s: lacks %d %s tensor%s of the model (%s%s%s%s%s%s)", path, missing, what,
                     missing == 1 ? "" : "s", first[0], missing > 1 ? ", " : "",
                     missing > 1 ? first[1] : "", missing > 2 ? ", " : "", missing > 2 ? first[2] : "",
                     missing > 3 ? ", ..." : "");
    return 0;
}

static int run_adapter_in(const char *dir, const char *base, const char *pretrained, const char *output) {
    char cfg_path[PATH_CAP + 64], json[PATH_CAP + 64], am[PATH_CAP + 64], tm[PATH_CAP + 64];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", dir);
    snprintf(json, sizeof json, "%s/adapter_config.json", dir);
    snprintf(am, sizeof am, "%s/adapter_model.safetensors", dir);
    snprintf(tm, sizeof tm, "%s/trained_modules.safetensors", dir);
    struct stat sb;
    if (stat(dir, &sb)) return failf(1, "%s: cannot open the adapter directory: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return failf(1, "%s: not a directory (--adapter wants an --adapter-out directory)", dir);
    const char *need[4] = {json, cfg_path, am, tm};
    for (int i = 0; i < 4; i++)
        if (!file_exists(need[i]))
            return failf(1, "%s: missing (an --adapter-out directory holds adapter_config.json, "
                            "config.yaml, adapter_model.safetensors and trained_modules.safetensors)",
                         need[i]);
    const char *src = base ? base : pretrained;
    if (!file_exists(src)) return failf(1, "%s: no such file", src);
    mt_config cfg;
    int rc = load_config(&cfg, cfg_path, NULL, 0);
    if (rc) return rc;
    if ((rc = check_adapter_config(json, &cfg))) return rc;
    mt_ctx *ctx;
    mt_model *m;
    if ((rc = open_model(&ctx, &m, &cfg))) return rc;
    if (mt_model_load(m, ctx, src, base ? MT_LOAD_CHECKPOINT : MT_LOAD_PRETRAINED))
        rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc) rc = check_covers(am, m, is_lora, NULL, "adapter (lora_*)");
    if (!rc) rc = check_covers(tm, m, is_trained_module, m, "trained-module");
    if (!rc && mt_model_load(m, ctx, am, MT_LOAD_SUBSET)) rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc && mt_model_load(m, ctx, tm, MT_LOAD_SUBSET)) rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc && mt_model_save(m, ctx, output)) rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc) {
        printf("wrote %s: %s %s + adapter %s (%s, tasks", output, base ? "base" : "pretrained encoder",
               src, dir, model_kind(&cfg));
        for (int t = 0; t < cfg.ntasks; t++) printf(" %s", cfg.tasks[t]);
        printf(")\n");
    }
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
    return rc;
}

/* ---- command line ----------------------------------------------------------- */

static int parse_count(const char *flag, const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 1000000) return failf(2, "%s: '%s' is not a positive count", flag, s);
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv) {
    const char *config = NULL, *weights = NULL, *task = NULL, *output = NULL, *adapter_out = NULL;
    const char *adapter = NULL, *base = NULL, *pretrained = NULL;
    const char *opts[128];
    int nopts = 0, merge = 0, bench = 0, batch = 1, have_batch = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--merge")) merge = 1;
        else if (!strcmp(a, "--config") && more) config = argv[++i];
        else if (!strcmp(a, "--weights") && more) weights = argv[++i];
        else if (!strcmp(a, "--task") && more) task = argv[++i];
        else if (!strcmp(a, "--output") && more) output = argv[++i];
        else if (!strcmp(a, "--adapter-out") && more) adapter_out = argv[++i];
        else if (!strcmp(a, "--adapter") && more) adapter = argv[++i];
        else if (!strcmp(a, "--base") && more) base = argv[++i];
        else if (!strcmp(a, "--pretrained") && more) pretrained = argv[++i];
        else if (!strcmp(a, "--bench") && more) { if (parse_count(a, argv[++i], &bench)) return 2; }
        else if (!strcmp(a, "--batch") && more) {
            if (parse_count(a, argv[++i], &batch)) return 2;
            have_batch = 1;
        } else if (!strcmp(a, "--opts")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                if (nopts >= 128) return failf(2, "too many --opts");
                opts[nopts++] = argv[++i];
            }
            if (nopts % 2) return failf(2, "--opts takes KEY VALUE pairs");
        } else {
            fprintf(stderr, PROG ": unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    int modes = merge + (adapter_out != NULL) + (adapter != NULL);
    const char *why = NULL;
    if (modes != 1) why = "choose one of --merge, --adapter-out DIR or --adapter DIR";
    else if (merge && (!weights || !task || !output)) why = "--merge needs --weights, --task and --output";
    else if (adapter_out && !weights) why = "--adapter-out needs --weights";
    else if (adapter_out && output) why = "--adapter-out writes into its directory; --output is for --merge and --adapter";
    else if (adapter && (!output || !base == !pretrained))
        why = "--adapter needs --output and exactly one of --base / --pretrained";
    else if (adapter && (config || nopts || weights))
        why = "--adapter takes its config from DIR/config.yaml (no --config, --opts or --weights)";
    else if (!adapter && (base || pretrained)) why = "--base and --pretrained go with --adapter";
    else if (!merge && (task || bench || have_batch)) why = "--task, --bench and --batch go with --merge";
    const char *paths[] = {config, weights, output, adapter_out, adapter, base, pretrained};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0] && !why; k++)
        if (paths[k] && strlen(paths[k]) > PATH_CAP) why = "a path longer than 4000 characters";
    if (why) {
        fprintf(stderr, PROG ": %s\n", why);
        usage(stderr);
        return 2;
    }
    if (adapter) return run_adapter_in(adapter, base, pretrained, output);

    mt_config cfg;
    int rc = load_config(&cfg, config, opts, nopts);
    if (rc) return rc;
    int t = -1;
    if (merge) {
        t = mt_config_task_index(&cfg, task);
        if (t < 0) {
            char list[MT_MAX_TASKS * (MT_TASK_NAME_LEN + 2)] = "";
            for (int k = 0; k < cfg.ntasks; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", cfg.tasks[k]);
            return failf(2, "--task %s: no such task in the config (TASKS: %s)", task, list);
        }
    }
    if (!file_exists(weights)) return failf(1, "%s: no such file", weights);
    mt_ctx *ctx;
    mt_model *m;
    if ((rc = open_model(&ctx, &m, &cfg))) return rc;
    if (mt_model_load(m, ctx, weights, MT_LOAD_CHECKPOINT)) rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc) rc = merge ? run_merge(m, ctx, &cfg, t, output, bench, batch) : run_adapter_out(m, ctx, &cfg, adapter_out);
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
    return rc;
}
