/* config_keys.c - every configuration key, one row each (config_keys.h),
 * and the defaults they give.
 *
 * Every key of the official config.py is here, with what we do with it:
 * parse into mt_config, accept and ignore (data-loader, augmentation and
 * AMP knobs of the PyTorch code), or accept only at its default value
 * (features we do not implement), so an official file loads unchanged and
 * nothing is silently misread. Defaults are config.py's, exactly; ours
 * (RUN.*, MODEL.ADAPTER.*) are those of docs/adapters.md and docs. */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_keys.h"

#define OFF(f) offsetof(mt_config, f)
#define SIZE(f) sizeof(((mt_config *)0)->f)

/* Row makers: name, field in mt_config, default, what finalize accepts. */
#define IGNORE(k) {.name = (k), .type = K_IGNORE}
#define INT(k, f, d, b) {.name = (k), .type = K_INT, .off = OFF(f), .def = (d), b}
#define FLOAT(k, f, d, b) {.name = (k), .type = K_FLOAT, .off = OFF(f), .def = (d), b}
#define BOOL(k, f, d) {.name = (k), .type = K_BOOL, .off = OFF(f), .def = (d)}
#define STR(k, f, d, b) {.name = (k), .type = K_STR, .off = OFF(f), .cap = SIZE(f), .def_str = (d), b}
/* lists: n is the field holding the count, d the LIST(...) default */
#define INTS(k, f, n, d, b) \
    {.name = (k), .type = K_INTLIST, .off = OFF(f), .cap = SIZE(f) / sizeof(int), .n_off = OFF(n), d, b}
#define FLOATS(k, f, n, d, b) \
    {.name = (k), .type = K_FLOATLIST, .off = OFF(f), .cap = SIZE(f) / sizeof(float), .n_off = OFF(n), d, b}
/* a list of exactly as many values as the field holds (no count) */
#define FLOATS_FIXED(k, f, d, b) \
    {.name = (k), .type = K_FLOATLIST, .off = OFF(f), .cap = SIZE(f) / sizeof(float), d, b}
#define FIXED_BOOL(k, v) {.name = (k), .type = K_FIXED_BOOL, .def = (v)}
#define FIXED_STR(k, v) {.name = (k), .type = K_FIXED_STR, .def_str = (v)}
#define NULL_ONLY(k) {.name = (k), .type = K_NULL_ONLY}
#define SPECIAL(k, t) {.name = (k), .type = (t)}
/* a map of named lists (R_PER_TASK, SCALE_PER_TASK): b bounds every value */
#define NAMED_LISTS(k, t, b) {.name = (k), .type = (t), b}

#define LIST(...) \
    .def_list = (const double[]){__VA_ARGS__}, .def_n = sizeof((double[]){__VA_ARGS__}) / sizeof(double)
#define NOLIST .def_n = 0

/* Bounds. */
#define ANY .bounds = 0
#define AT_LEAST(a) .bounds = B_LO, .lo = (a)
#define RANGE(a, b) .bounds = B_LO | B_HI, .lo = (a), .hi = (b)
#define ABOVE_UPTO(a, b) .bounds = B_LO | B_LO_OPEN | B_HI, .lo = (a), .hi = (b) /* (a, b] */
#define POSITIVE .bounds = B_LO | B_LO_OPEN, .lo = 0
#define UNIT .bounds = B_LO | B_HI | B_HI_OPEN, .lo = 0, .hi = 1 /* [0, 1): rates */
/* Ranks are floats in the table (R_PER_TASK shares the float lists) but
 * whole numbers; 0 is let through here and refused by finalize only when
 * MTLoRA is on, as config.py reads them only then. */
#define RANK .bounds = B_LO | B_HI | B_WHOLE, .lo = 0, .hi = 4096
/* Scales multiply an adapter's output: finite and not negative. */
#define SCALE RANGE(0, 65536)
/* Learning rates: a fraction of one in practice; the bound keeps the LR
 * scaling (batch * world / 512) far from float overflow. */
#define LR RANGE(0, 1000)
/* Counts of epochs and steps: far below what int arithmetic on them
 * (epoch * steps per epoch, in int64) could overflow. */
#define EPOCHS(a) RANGE(a, 1000000)
#define ONE_OF(list) .allowed = (list)
#define NOTED(b, text) b, .note = (text)

static const char *const ADAPTER_KINDS[] = {"mtlora", "lora", "mtl_lora", "cgc_lora", "full_ft",
                                            "decoders_only", NULL};
/* "": the layer takes MODEL.ADAPTER.KIND */
static const char *const LAYER_KINDS[] = {"", "none", "mtlora", "lora", "mtl_lora", "cgc_lora", NULL};
static const char *const LAMBDAS[] = {"full", "diag", NULL};
static const char *const AMP_MATMUL[] = {"auto", "bf16", "f32", NULL};
static const char *const SCHEDULERS[] = {"cosine", NULL};
static const char *const BAD_RECORDS[] = {"stop", "skip", NULL};
#define LAYER_NOTE "empty: MODEL.ADAPTER.KIND"

const mt_key MT_KEYS[] = {
    IGNORE("BASE"),
    INT("DATA.BATCH_SIZE", batch_size, 128, RANGE(1, 65536)),
    INT("DATA.IMG_SIZE", img_size, 224, RANGE(1, 16384)),
    STR("DATA.DATA_PATH", data_path, "", ANY),
    STR("RUN.DIR", run.dir, "runs/mtlora", ANY),
    FLOAT("RUN.BUCKET_MB", run.bucket_mb, 4.0, ABOVE_UPTO(0, 1024)),
    INT("RUN.LOG_EVERY", run.log_every, 10, RANGE(1, 1000000000)),
    INT("RUN.CHECKPOINT_EVERY", run.checkpoint_every, 0, NOTED(RANGE(0, 1000000000), "0: only at the end")),
    INT("RUN.KEEP_CHECKPOINTS", run.keep_checkpoints, 3, RANGE(1, 100000)),
    INT("RUN.MAX_STEPS", run.max_steps, 0, NOTED(RANGE(0, 1000000000), "0: all epochs")),
    INT("RUN.EVAL_EVERY", run.eval_every, 0, NOTED(EPOCHS(0), "0: at the end")),
    INT("RUN.EVAL_PREVIEW", run.eval_preview, 0, NOTED(RANGE(0, 100000), "0: no previews")),
    BOOL("RUN.SYNC_BN", run.sync_bn, 0),
    BOOL("RUN.LR_SCALING", run.lr_scaling, 1),
    INT("RUN.STEP_TIMEOUT", run.step_timeout, 900, NOTED(RANGE(0, 1000000), "0: no watchdog")),
    INT("RUN.MAX_BAD_STEPS", run.max_bad_steps, 5, RANGE(1, 1000000)),
    /* a training record that fails its checks: stop (with a checkpoint) or skip it, counted */
    STR("RUN.BAD_RECORDS", run.bad_records, "stop", ONE_OF(BAD_RECORDS)),
    /* a timeline of every rank (Chrome trace-event JSON) of the last N updates */
    STR("RUN.TIMELINE", run.timeline, "", ANY), /* "": off */
    INT("RUN.TIMELINE_STEPS", run.timeline_steps, 50, RANGE(1, 10000)),
    /* no default: the published Swin-T baselines; its count must match TASKS */
    FLOATS("RUN.STL_BASELINES", run.stl, run.n_stl, NOLIST, ABOVE_UPTO(0, 1e6)),
    IGNORE("DATA.DATASET"),
    IGNORE("DATA.INTERPOLATION"),
    IGNORE("DATA.ZIP_MODE"),
    IGNORE("DATA.CACHE_MODE"),
    IGNORE("DATA.PIN_MEMORY"),
    IGNORE("DATA.NUM_WORKERS"),
    IGNORE("DATA.MASK_PATCH_SIZE"),
    IGNORE("DATA.MASK_RATIO"),
    IGNORE("DATA.DBNAME"),
    IGNORE("DATA.PASCAL"),
    IGNORE("DATA.NYUD"),
    FIXED_STR("MODEL.TYPE", "swin"),
    STR("MODEL.NAME", name, "swin_tiny_patch4_window7_224", ANY),
    STR("MODEL.PRETRAINED", pretrained, "", ANY),
    IGNORE("MODEL.RESUME"),
    IGNORE("MODEL.NUM_CLASSES"),
    FLOAT("MODEL.DROP_RATE", drop_rate, 0.0, RANGE(0, 0)),
    FLOAT("MODEL.DROP_PATH_RATE", drop_path_rate, 0.1, UNIT),
    IGNORE("MODEL.LABEL_SMOOTHING"),
    INT("MODEL.SWIN.PATCH_SIZE", patch_size, 4, RANGE(1, 1024)),
    INT("MODEL.SWIN.IN_CHANS", in_chans, 3, RANGE(1, 1024)),
    INT("MODEL.SWIN.EMBED_DIM", embed_dim, 96, RANGE(1, 65536)),
    INTS("MODEL.SWIN.DEPTHS", depths, raw.n_depths, LIST(2, 2, 6, 2), RANGE(1, 64)),
    INTS("MODEL.SWIN.NUM_HEADS", heads, raw.n_heads, LIST(3, 6, 12, 24), RANGE(1, 4096)),
    INT("MODEL.SWIN.WINDOW_SIZE", window_size, 7, RANGE(1, 1024)),
    FLOAT("MODEL.SWIN.MLP_RATIO", mlp_ratio, 4.0, ABOVE_UPTO(0, 64)),
    BOOL("MODEL.SWIN.QKV_BIAS", qkv_bias, 1),
    NULL_ONLY("MODEL.SWIN.QK_SCALE"), /* head_dim^-0.5 */
    FIXED_BOOL("MODEL.SWIN.APE", 0),
    FIXED_BOOL("MODEL.SWIN.PATCH_NORM", 1),
    IGNORE("MODEL.SWIN.DECODER_DIM"),
    IGNORE("MODEL.SWIN.DECODER_PATCH_RES"),
    IGNORE("MODEL.SWINV2.*"),
    IGNORE("MODEL.SWIN_MOE.*"),
    IGNORE("MODEL.SWIN_MLP.*"),
    IGNORE("MODEL.SIMMIM.*"),
    SPECIAL("MODEL.DECODER_HEAD", K_HEAD),
    INTS("MODEL.DECODER_CHANNELS", decoder_channels, raw.n_decoder_channels, LIST(18, 36, 72, 144),
         RANGE(1, 65536)),
    IGNORE("MODEL.SEGFORMER_CHANNELS"),
    FIXED_BOOL("MODEL.DECODER_DOWNSAMPLER", 1),
    FIXED_BOOL("MODEL.PER_TASK_DOWNSAMPLER", 1),
    IGNORE("MODEL.UPDATE_RELATIVE_POSITION"),
    BOOL("MODEL.MTLORA.ENABLED", mtlora.enabled, 0),
    FIXED_STR("MODEL.MTLORA.BIAS", "none"),
    /* R, SHARED_SCALE and DROPOUT: their counts and ranks >= 1 are checked by
     * finalize after expansion per stage and only with MTLoRA on
     * (R_PER_TASK.shared overrides R); the values' own bounds here */
    FLOATS("MODEL.MTLORA.R", raw.r, raw.n_r, LIST(8, 8, 8, 8), RANK),
    FLOATS("MODEL.MTLORA.SHARED_SCALE", raw.shared_scale, raw.n_shared_scale, LIST(2, 2, 2, 2), SCALE),
    /* Parsed by the official code but never used (the task scale is copied
     * from SHARED_SCALE unless SCALE_PER_TASK is given). */
    IGNORE("MODEL.MTLORA.TASK_SCALE"),
    FLOATS("MODEL.MTLORA.DROPOUT", raw.dropout, raw.n_dropout, LIST(0.05, 0.05, 0.05, 0.05), UNIT),
    FIXED_BOOL("MODEL.MTLORA.TRAINABLE_SCALE_SHARED", 0),
    FIXED_BOOL("MODEL.MTLORA.TRAINABLE_SCALE_PER_TASK", 0),
    FIXED_BOOL("MODEL.MTLORA.INTERMEDIATE_SPECIALIZATION", 0),
    BOOL("MODEL.MTLORA.FREEZE_PRETRAINED", mtlora.freeze_pretrained, 1),
    FIXED_BOOL("MODEL.MTLORA.SPLIT_QKV", 0),
    NAMED_LISTS("MODEL.MTLORA.R_PER_TASK", K_RPT, RANK),
    NAMED_LISTS("MODEL.MTLORA.SCALE_PER_TASK", K_SPT, SCALE),
    FIXED_STR("MODEL.MTLORA.SHARED_MODE", "matrix"),
    BOOL("MODEL.MTLORA.QKV_ENABLED", mtlora.qkv_enabled, 1),
    BOOL("MODEL.MTLORA.PROJ_ENABLED", mtlora.proj_enabled, 1),
    BOOL("MODEL.MTLORA.FC1_ENABLED", mtlora.fc1_enabled, 1),
    BOOL("MODEL.MTLORA.FC2_ENABLED", mtlora.fc2_enabled, 1),
    BOOL("MODEL.MTLORA.DOWNSAMPLER_ENABLED", mtlora.downsampler_enabled, 0),
    STR("MODEL.ADAPTER.KIND", adapter.kind, "mtlora", ONE_OF(ADAPTER_KINDS)),
    STR("MODEL.ADAPTER.QKV", adapter.layer[MT_LAYER_QKV], "", NOTED(ONE_OF(LAYER_KINDS), LAYER_NOTE)),
    STR("MODEL.ADAPTER.PROJ", adapter.layer[MT_LAYER_PROJ], "", NOTED(ONE_OF(LAYER_KINDS), LAYER_NOTE)),
    STR("MODEL.ADAPTER.FC1", adapter.layer[MT_LAYER_FC1], "", NOTED(ONE_OF(LAYER_KINDS), LAYER_NOTE)),
    STR("MODEL.ADAPTER.FC2", adapter.layer[MT_LAYER_FC2], "", NOTED(ONE_OF(LAYER_KINDS), LAYER_NOTE)),
    INT("MODEL.ADAPTER.MTL_LORA.NUM_B", adapter.mtl_num_b, 3, RANGE(1, 16)),
    FLOAT("MODEL.ADAPTER.MTL_LORA.TAU", adapter.mtl_tau, 0.1, ABOVE_UPTO(0, 1e6)),
    STR("MODEL.ADAPTER.MTL_LORA.LAMBDA", adapter.mtl_lambda, "full", ONE_OF(LAMBDAS)),
    FLOAT("MODEL.ADAPTER.MTL_LORA.SCALE", adapter.mtl_scale, 2.0, SCALE),
    FLOAT("MODEL.ADAPTER.MTL_LORA.DROPOUT", adapter.mtl_dropout, 0.05, UNIT),
    INT("MODEL.ADAPTER.CGC_LORA.SHARED_EXPERTS", adapter.cgc_shared, 0,
        NOTED(RANGE(0, 16), "0: one per task")),
    INT("MODEL.ADAPTER.CGC_LORA.TASK_EXPERTS", adapter.cgc_task, 1, RANGE(1, 4)),
    INT("MODEL.ADAPTER.CGC_LORA.GATE_DIM", adapter.cgc_gate_dim, 64, RANGE(1, 4096)),
    FLOAT("MODEL.ADAPTER.CGC_LORA.SCALE", adapter.cgc_scale, 2.0, SCALE),
    FLOAT("MODEL.ADAPTER.CGC_LORA.DROPOUT", adapter.cgc_dropout, 0.1, UNIT),
    INT("TRAIN.START_EPOCH", start_epoch, 0, EPOCHS(0)),
    INT("TRAIN.EPOCHS", epochs, 300, EPOCHS(1)),
    /* and below TRAIN.EPOCHS: finalize */
    INT("TRAIN.WARMUP_EPOCHS", warmup_epochs, 20, EPOCHS(0)),
    FLOAT("TRAIN.WEIGHT_DECAY", weight_decay, 0.05, RANGE(0, 1000)),
    FLOAT("TRAIN.BASE_LR", base_lr, 5e-4, LR),
    FLOAT("TRAIN.WARMUP_LR", warmup_lr, 5e-7, LR),
    FLOAT("TRAIN.MIN_LR", min_lr, 5e-6, LR),
    FLOAT("TRAIN.CLIP_GRAD", clip_grad, 5.0, NOTED(AT_LEAST(0), "0: no clipping")),
    IGNORE("TRAIN.AUTO_RESUME"),
    INT("TRAIN.ACCUMULATION_STEPS", accumulation_steps, 1, RANGE(1, 65536)),
    BOOL("TRAIN.USE_CHECKPOINT", use_checkpoint, 0),
    STR("TRAIN.LR_SCHEDULER.NAME", lr_scheduler, "cosine", ONE_OF(SCHEDULERS)),
    IGNORE("TRAIN.LR_SCHEDULER.DECAY_EPOCHS"),
    IGNORE("TRAIN.LR_SCHEDULER.DECAY_RATE"),
    FIXED_BOOL("TRAIN.LR_SCHEDULER.WARMUP_PREFIX", 1),
    IGNORE("TRAIN.LR_SCHEDULER.GAMMA"),
    IGNORE("TRAIN.LR_SCHEDULER.MULTISTEPS"),
    IGNORE("TRAIN.SKIP_DECODER_CKPT"),
    BOOL("TRAIN.FREEZE_PATCH_EMBED", freeze_patch_embed, 0),
    BOOL("TRAIN.FREEZE_LAYER_NORM", freeze_layer_norm, 0),
    BOOL("TRAIN.FREEZE_RELATIVE_POSITION_BIAS", freeze_rel_bias, 0),
    BOOL("TRAIN.FREEZE_DOWNSAMPLE_REDUCTION", freeze_downsample_reduction, 0),
    FIXED_STR("TRAIN.OPTIMIZER.NAME", "adamw"),
    FLOAT("TRAIN.OPTIMIZER.EPS", optimizer_eps, 1e-8, ABOVE_UPTO(0, 1)),
    FLOATS_FIXED("TRAIN.OPTIMIZER.BETAS", betas, LIST(0.9, 0.999), UNIT),
    IGNORE("TRAIN.OPTIMIZER.MOMENTUM"),
    IGNORE("TRAIN.LAYER_DECAY"),
    IGNORE("TRAIN.MOE.*"),
    IGNORE("AUG.*"),
    IGNORE("TEST.*"),
    IGNORE("ENABLE_AMP"),
    BOOL("AMP_ENABLE", amp_enable, 1),
    STR("AMP.MATMUL", amp_matmul, "auto", NOTED(ONE_OF(AMP_MATMUL), "auto: bf16 where it is faster than f32")),
    IGNORE("AMP_OPT_LEVEL"),
    IGNORE("OUTPUT"),
    IGNORE("TAG"),
    IGNORE("SAVE_FREQ"),
    IGNORE("PRINT_FREQ"),
    IGNORE("EVAL_FREQ"),
    /* any int: the parser already keeps it within int */
    INT("SEED", seed, 0, ANY),
    IGNORE("EVAL_MODE"),
    IGNORE("THROUGHPUT_MODE"),
    IGNORE("LOCAL_RANK"),
    IGNORE("FUSED_WINDOW_PROCESS"),
    IGNORE("FUSED_LAYERNORM"),
    IGNORE("SKIP_INITIAL_EVAL"),
    SPECIAL("TASKS", K_TASKS), /* no default: a run names its tasks */
};
const size_t MT_NKEYS = sizeof MT_KEYS / sizeof MT_KEYS[0];
_Static_assert(sizeof MT_KEYS / sizeof MT_KEYS[0] <= MT_KEYS_CAP, "raise MT_KEYS_CAP");

const mt_key *mt_key_find(const char *name) {
    for (size_t i = 0; i < MT_NKEYS; i++) {
        const char *k = MT_KEYS[i].name;
        const size_t len = strlen(k);
        if (len > 2 && k[len - 1] == '*') {
            if (!strncmp(name, k, len - 1)) return &MT_KEYS[i];
        } else if (!strcmp(name, k)) {
            return &MT_KEYS[i];
        }
    }
    return NULL;
}

const mt_task_info MT_TASKS[] = {
    {"semseg", MT_TASK_SEMSEG, 21, 1.0f},   {"human_parts", MT_TASK_HUMAN_PARTS, 7, 2.0f},
    {"sal", MT_TASK_SAL, 1, 5.0f},          {"normals", MT_TASK_NORMALS, 3, 10.0f},
    {"edge", MT_TASK_EDGE, 1, 50.0f},
};
const size_t MT_NTASKS = sizeof MT_TASKS / sizeof MT_TASKS[0];

const mt_task_info *mt_task_info_find(const char *name) {
    for (size_t k = 0; k < MT_NTASKS; k++)
        if (!strcmp(MT_TASKS[k].name, name)) return &MT_TASKS[k];
    return NULL;
}

/* ---- values: the one numeric parser, bounds, messages -------------------- */

int mt_key_is_int(const mt_key *k) { return k->type == K_INT || k->type == K_INTLIST; }

/* Skips [0-9]*, counting the digits. */
static const char *digits(const char *p, int *n) {
    for (*n = 0; isdigit((unsigned char)*p); p++) (*n)++;
    return p;
}

/* Whether s is a whole decimal number: [+-]digits, or with a fraction and
 * an exponent when !integer. Nothing else: no spaces, hex, inf, nan, '_'. */
static int decimal_syntax(const char *s, int integer) {
    int n, frac = 0, ex = 1;
    const char *p = s + (*s == '+' || *s == '-');
    p = digits(p, &n);
    if (!integer && *p == '.') p = digits(p + 1, &frac);
    if (!integer && (*p == 'e' || *p == 'E')) {
        p += 1 + (p[1] == '+' || p[1] == '-');
        p = digits(p, &ex);
    }
    return n + frac > 0 && ex > 0 && !*p;
}

const char *mt_key_parse(const mt_key *k, const char *s, double *out) {
    const int integer = mt_key_is_int(k);
    if (!decimal_syntax(s, integer))
        return integer && decimal_syntax(s, 0) ? "is not an integer" : "is not a number";
    const char *d = s + (*s == '+' || *s == '-');
    if (d[0] == '0' && isdigit((unsigned char)d[1]))
        return "has a leading zero (YAML 1.1 reads 010 as octal 8): write it without";
    errno = 0;
    if (integer) {
        const long long v = strtoll(s, NULL, 10);
        if (errno == ERANGE || v < INT_MIN || v > INT_MAX) return "is outside the int range";
        *out = (double)v;
        return NULL;
    }
    /* strtof rounds once, as the writer's shortest form assumes (a double
     * rounded again to float could differ in the last bit) */
    const float v = strtof(s, NULL);
    if (!isfinite(v)) return "is beyond the float range (3.4e38)";
    if (errno == ERANGE || (v != 0 && fabsf(v) < FLT_MIN))
        return "is too small for a float (below 1.2e-38): write 0";
    *out = v;
    return NULL;
}

void mt_key_format(const mt_key *k, double v, char *buf, size_t cap) {
    if (mt_key_is_int(k) && fabs(v) < 4e18) snprintf(buf, cap, "%lld", (long long)v);
    else mt_config_format_float(buf, cap, (float)v);
}

/* written so that NaN is out of every bound */
static int in_bounds(const mt_key *k, double v) {
    const unsigned b = k->bounds;
    if ((b & B_LO) && !((b & B_LO_OPEN) ? v > k->lo : v >= k->lo)) return 0;
    if ((b & B_HI) && !((b & B_HI_OPEN) ? v < k->hi : v <= k->hi)) return 0;
    return 1;
}

const char *mt_key_check(const mt_key *k, double v, char *buf, size_t cap) {
    const unsigned b = k->bounds;
    if ((b & B_WHOLE) && !(v == floor(v))) {
        snprintf(buf, cap, "must be a whole number");
        return buf;
    }
    if (in_bounds(k, v)) return NULL;
    char lo[32], hi[32], note[160] = "";
    mt_key_format(k, k->lo, lo, sizeof lo);
    mt_key_format(k, k->hi, hi, sizeof hi);
    if (k->note) snprintf(note, sizeof note, " (%s)", k->note);
    if ((b & B_LO) && (b & B_HI) && k->lo == k->hi)
        snprintf(buf, cap, "is not supported by mtlora: only %s is%s", lo, note);
    else if ((b & B_LO) && (b & B_HI) && !(b & (B_LO_OPEN | B_HI_OPEN)) &&
             (mt_key_is_int(k) || (b & B_WHOLE)))
        snprintf(buf, cap, "must be in %s..%s%s", lo, hi, note);
    else if ((b & B_LO) && (b & B_HI))
        snprintf(buf, cap, "must be in %c%s, %s%c%s", (b & B_LO_OPEN) ? '(' : '[', lo, hi,
                 (b & B_HI_OPEN) ? ')' : ']', note);
    else if ((b & B_LO) && (b & B_LO_OPEN) && k->lo == 0)
        snprintf(buf, cap, "must be positive%s", note);
    else if (b & B_LO)
        snprintf(buf, cap, "must be %s %s%s", (b & B_LO_OPEN) ? ">" : ">=", lo, note);
    else
        snprintf(buf, cap, "must be %s %s%s", (b & B_HI_OPEN) ? "<" : "<=", hi, note);
    return buf;
}

const char *mt_key_check_str(const mt_key *k, const char *v, char *buf, size_t cap) {
    if (!k->allowed) return NULL;
    for (const char *const *a = k->allowed; *a; a++)
        if (!strcmp(*a, v)) return NULL;
    if (k->allowed[0] && !k->allowed[1]) {
        snprintf(buf, cap, "only '%s' is supported by mtlora, got '%.64s'", k->allowed[0], v);
        return buf;
    }
    char known[256] = "";
    for (const char *const *a = k->allowed; *a; a++) {
        if (!**a) continue; /* "" (may be empty) is what the note explains */
        const size_t used = strlen(known);
        snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", *a);
    }
    snprintf(buf, cap, "unknown value '%.64s' (known: %s%s%s)", v, known, k->note ? "; " : "",
             k->note ? k->note : "");
    return buf;
}

/* A row's default into cfg. */
static void set_default(mt_config *c, const mt_key *k) {
    char *p = (char *)c + k->off;
    switch (k->type) {
    case K_INT: *(int *)p = (int)k->def; break;
    case K_FLOAT: *(float *)p = (float)k->def; break;
    case K_BOOL: *(int *)p = k->def != 0; break;
    case K_STR: snprintf(p, k->cap, "%s", k->def_str ? k->def_str : ""); break;
    case K_INTLIST:
    case K_FLOATLIST:
        for (int i = 0; i < k->def_n; i++) {
            if (k->type == K_INTLIST) ((int *)p)[i] = (int)k->def_list[i];
            else ((float *)p)[i] = (float)k->def_list[i];
        }
        if (k->n_off) *(int *)((char *)c + k->n_off) = k->def_n;
        break;
    default: break; /* nothing stored: ignored, fixed, maps, TASKS */
    }
}

void mt_config_default(mt_config *c) {
    memset(c, 0, sizeof *c); /* what no row sets: no tasks, derived values */
    for (size_t i = 0; i < MT_NKEYS; i++) set_default(c, &MT_KEYS[i]);
    c->nstages = c->raw.n_depths; /* derived by finalize; valid before it too */
}
