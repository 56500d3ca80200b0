/* config.c - YAML configuration with the official MTLoRA keys (libyaml).
 *
 * Every key of the official config.py is in the table below, with what we
 * do with it: parse into mt_config, accept and ignore (data-loader,
 * augmentation and AMP knobs of the PyTorch code), or accept only at its
 * default value (features we do not implement), so an official file loads
 * unchanged and nothing is silently misread. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "mtlora/config/config.h"

typedef enum {
    K_INT, K_FLOAT, K_BOOL, K_STR, K_INTLIST, K_FLOATLIST, K_TASKS, K_IGNORE,
    K_RPT, K_SPT,      /* MODEL.MTLORA.R_PER_TASK / SCALE_PER_TASK maps */
    K_HEAD,            /* MODEL.DECODER_HEAD map: only 'hrnet' */
    K_FIXED_BOOL,      /* accepted only with the value in `fixed` */
    K_FIXED_STR,
    K_NULL_ONLY        /* accepted only as null/None */
} key_type;

typedef struct {
    const char *key;
    key_type type;
    size_t off;   /* into mt_config */
    size_t cap;   /* string size or list capacity */
    size_t n_off; /* list: where the count goes (into mt_config) */
    const char *fixed;
} key_spec;

#define OFF(f) offsetof(mt_config, f)
#define NOOFF 0
static const key_spec KEYS[] = {
    {"BASE", K_IGNORE, NOOFF, 0, 0, NULL},
    {"DATA.BATCH_SIZE", K_INT, OFF(batch_size), 0, 0, NULL},
    {"DATA.IMG_SIZE", K_INT, OFF(img_size), 0, 0, NULL},
    {"DATA.DATA_PATH", K_STR, OFF(data_path), sizeof(((mt_config *)0)->data_path), 0, NULL},
    {"RUN.DIR", K_STR, OFF(run.dir), sizeof(((mt_config *)0)->run.dir), 0, NULL},
    {"RUN.BUCKET_MB", K_FLOAT, OFF(run.bucket_mb), 0, 0, NULL},
    {"RUN.LOG_EVERY", K_INT, OFF(run.log_every), 0, 0, NULL},
    {"RUN.CHECKPOINT_EVERY", K_INT, OFF(run.checkpoint_every), 0, 0, NULL},
    {"RUN.KEEP_CHECKPOINTS", K_INT, OFF(run.keep_checkpoints), 0, 0, NULL},
    {"RUN.MAX_STEPS", K_INT, OFF(run.max_steps), 0, 0, NULL},
    {"RUN.EVAL_EVERY", K_INT, OFF(run.eval_every), 0, 0, NULL},
    {"RUN.SYNC_BN", K_BOOL, OFF(run.sync_bn), 0, 0, NULL},
    {"RUN.LR_SCALING", K_BOOL, OFF(run.lr_scaling), 0, 0, NULL},
    {"RUN.STEP_TIMEOUT", K_INT, OFF(run.step_timeout), 0, 0, NULL},
    {"RUN.MAX_BAD_STEPS", K_INT, OFF(run.max_bad_steps), 0, 0, NULL},
    {"RUN.STL_BASELINES", K_FLOATLIST, OFF(run.stl), MT_MAX_TASKS, OFF(run.n_stl), NULL},
    {"DATA.DATASET", K_IGNORE, NOOFF, 0, 0, NULL},
    {"DATA.INTERPOLATION", K_IGNORE, NOOFF, 0, 0, NULL},
    {"DATA.ZIP_MODE", K_IGNORE, NOOFF, 0, 0, NULL},
    {"DATA.CACHE_MODE", K_IGNORE, NOOFF, 0, 0, NULL},
    {"DATA.PIN_MEMORY", K_IGNORE, NOOFF, 0, 0, NULL},
    {"DATA.NUM_WORKERS", K_IGNORE, NOOFF, 0, 0, NULL},
    {"DATA.MASK_PATCH_SIZE", K_IGNORE, NOOFF, 0, 0, NULL},
    {"DATA.MASK_RATIO", K_IGNORE, NOOFF, 0, 0, NULL},
    {"DATA.DBNAME", K_IGNORE, NOOFF, 0, 0, NULL},
    {"DATA.PASCAL", K_IGNORE, NOOFF, 0, 0, NULL},
    {"DATA.NYUD", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.TYPE", K_FIXED_STR, NOOFF, 0, 0, "swin"},
    {"MODEL.NAME", K_STR, OFF(name), sizeof(((mt_config *)0)->name), 0, NULL},
    {"MODEL.PRETRAINED", K_STR, OFF(pretrained), sizeof(((mt_config *)0)->pretrained), 0, NULL},
    {"MODEL.RESUME", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.NUM_CLASSES", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.DROP_RATE", K_FLOAT, OFF(drop_rate), 0, 0, NULL},
    {"MODEL.DROP_PATH_RATE", K_FLOAT, OFF(drop_path_rate), 0, 0, NULL},
    {"MODEL.LABEL_SMOOTHING", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.SWIN.PATCH_SIZE", K_INT, OFF(patch_size), 0, 0, NULL},
    {"MODEL.SWIN.IN_CHANS", K_INT, OFF(in_chans), 0, 0, NULL},
    {"MODEL.SWIN.EMBED_DIM", K_INT, OFF(embed_dim), 0, 0, NULL},
    {"MODEL.SWIN.DEPTHS", K_INTLIST, OFF(depths), MT_MAX_STAGES, OFF(raw.n_depths), NULL},
    {"MODEL.SWIN.NUM_HEADS", K_INTLIST, OFF(heads), MT_MAX_STAGES, OFF(raw.n_heads), NULL},
    {"MODEL.SWIN.WINDOW_SIZE", K_INT, OFF(window_size), 0, 0, NULL},
    {"MODEL.SWIN.MLP_RATIO", K_FLOAT, OFF(mlp_ratio), 0, 0, NULL},
    {"MODEL.SWIN.QKV_BIAS", K_BOOL, OFF(qkv_bias), 0, 0, NULL},
    {"MODEL.SWIN.QK_SCALE", K_NULL_ONLY, NOOFF, 0, 0, NULL},
    {"MODEL.SWIN.APE", K_FIXED_BOOL, NOOFF, 0, 0, "false"},
    {"MODEL.SWIN.PATCH_NORM", K_FIXED_BOOL, NOOFF, 0, 0, "true"},
    {"MODEL.SWIN.DECODER_DIM", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.SWIN.DECODER_PATCH_RES", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.SWINV2.*", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.SWIN_MOE.*", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.SWIN_MLP.*", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.SIMMIM.*", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.DECODER_HEAD", K_HEAD, NOOFF, 0, 0, NULL},
    {"MODEL.DECODER_CHANNELS", K_INTLIST, OFF(decoder_channels), MT_MAX_STAGES,
     OFF(raw.n_decoder_channels), NULL},
    {"MODEL.SEGFORMER_CHANNELS", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.DECODER_DOWNSAMPLER", K_FIXED_BOOL, NOOFF, 0, 0, "true"},
    {"MODEL.PER_TASK_DOWNSAMPLER", K_FIXED_BOOL, NOOFF, 0, 0, "true"},
    {"MODEL.UPDATE_RELATIVE_POSITION", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.MTLORA.ENABLED", K_BOOL, OFF(mtlora.enabled), 0, 0, NULL},
    {"MODEL.MTLORA.BIAS", K_FIXED_STR, NOOFF, 0, 0, "none"},
    {"MODEL.MTLORA.R", K_FLOATLIST, OFF(raw.r), MT_MAX_STAGES, OFF(raw.n_r), NULL},
    {"MODEL.MTLORA.SHARED_SCALE", K_FLOATLIST, OFF(raw.shared_scale), MT_MAX_STAGES,
     OFF(raw.n_shared_scale), NULL},
    /* Parsed by the official code but never used (the task scale is copied
     * from SHARED_SCALE unless SCALE_PER_TASK is given). */
    {"MODEL.MTLORA.TASK_SCALE", K_IGNORE, NOOFF, 0, 0, NULL},
    {"MODEL.MTLORA.DROPOUT", K_FLOATLIST, OFF(raw.dropout), MT_MAX_STAGES, OFF(raw.n_dropout),
     NULL},
    {"MODEL.MTLORA.TRAINABLE_SCALE_SHARED", K_FIXED_BOOL, NOOFF, 0, 0, "false"},
    {"MODEL.MTLORA.TRAINABLE_SCALE_PER_TASK", K_FIXED_BOOL, NOOFF, 0, 0, "false"},
    {"MODEL.MTLORA.INTERMEDIATE_SPECIALIZATION", K_FIXED_BOOL, NOOFF, 0, 0, "false"},
    {"MODEL.MTLORA.FREEZE_PRETRAINED", K_BOOL, OFF(mtlora.freeze_pretrained), 0, 0, NULL},
    {"MODEL.MTLORA.SPLIT_QKV", K_FIXED_BOOL, NOOFF, 0, 0, "false"},
    {"MODEL.MTLORA.R_PER_TASK", K_RPT, NOOFF, 0, 0, NULL},
    {"MODEL.MTLORA.SCALE_PER_TASK", K_SPT, NOOFF, 0, 0, NULL},
    {"MODEL.MTLORA.SHARED_MODE", K_FIXED_STR, NOOFF, 0, 0, "matrix"},
    {"MODEL.MTLORA.QKV_ENABLED", K_BOOL, OFF(mtlora.qkv_enabled), 0, 0, NULL},
    {"MODEL.MTLORA.PROJ_ENABLED", K_BOOL, OFF(mtlora.proj_enabled), 0, 0, NULL},
    {"MODEL.MTLORA.FC1_ENABLED", K_BOOL, OFF(mtlora.fc1_enabled), 0, 0, NULL},
    {"MODEL.MTLORA.FC2_ENABLED", K_BOOL, OFF(mtlora.fc2_enabled), 0, 0, NULL},
    {"MODEL.MTLORA.DOWNSAMPLER_ENABLED", K_BOOL, OFF(mtlora.downsampler_enabled), 0, 0, NULL},
    {"MODEL.ADAPTER.KIND", K_STR, OFF(adapter.kind), sizeof(((mt_config *)0)->adapter.kind), 0, NULL},
    {"MODEL.ADAPTER.QKV", K_STR, OFF(adapter.layer[0]), sizeof(((mt_config *)0)->adapter.layer[0]), 0, NULL},
    {"MODEL.ADAPTER.PROJ", K_STR, OFF(adapter.layer[1]), sizeof(((mt_config *)0)->adapter.layer[1]), 0, NULL},
    {"MODEL.ADAPTER.FC1", K_STR, OFF(adapter.layer[2]), sizeof(((mt_config *)0)->adapter.layer[2]), 0, NULL},
    {"MODEL.ADAPTER.FC2", K_STR, OFF(adapter.layer[3]), sizeof(((mt_config *)0)->adapter.layer[3]), 0, NULL},
    {"MODEL.ADAPTER.MTL_LORA.NUM_B", K_INT, OFF(adapter.mtl_num_b), 0, 0, NULL},
    {"MODEL.ADAPTER.MTL_LORA.TAU", K_FLOAT, OFF(adapter.mtl_tau), 0, 0, NULL},
    {"MODEL.ADAPTER.MTL_LORA.LAMBDA", K_STR, OFF(adapter.mtl_lambda), sizeof(((mt_config *)0)->adapter.mtl_lambda), 0, NULL},
    {"MODEL.ADAPTER.MTL_LORA.SCALE", K_FLOAT, OFF(adapter.mtl_scale), 0, 0, NULL},
    {"MODEL.ADAPTER.MTL_LORA.DROPOUT", K_FLOAT, OFF(adapter.mtl_dropout), 0, 0, NULL},
    {"MODEL.ADAPTER.CGC_LORA.SHARED_EXPERTS", K_INT, OFF(adapter.cgc_shared), 0, 0, NULL},
    {"MODEL.ADAPTER.CGC_LORA.TASK_EXPERTS", K_INT, OFF(adapter.cgc_task), 0, 0, NULL},
    {"MODEL.ADAPTER.CGC_LORA.GATE_DIM", K_INT, OFF(adapter.cgc_gate_dim), 0, 0, NULL},
    {"MODEL.ADAPTER.CGC_LORA.SCALE", K_FLOAT, OFF(adapter.cgc_scale), 0, 0, NULL},
    {"MODEL.ADAPTER.CGC_LORA.DROPOUT", K_FLOAT, OFF(adapter.cgc_dropout), 0, 0, NULL},
    {"TRAIN.START_EPOCH", K_INT, OFF(start_epoch), 0, 0, NULL},
    {"TRAIN.EPOCHS", K_INT, OFF(epochs), 0, 0, NULL},
    {"TRAIN.WARMUP_EPOCHS", K_INT, OFF(warmup_epochs), 0, 0, NULL},
    {"TRAIN.WEIGHT_DECAY", K_FLOAT, OFF(weight_decay), 0, 0, NULL},
    {"TRAIN.BASE_LR", K_FLOAT, OFF(base_lr), 0, 0, NULL},
    {"TRAIN.WARMUP_LR", K_FLOAT, OFF(warmup_lr), 0, 0, NULL},
    {"TRAIN.MIN_LR", K_FLOAT, OFF(min_lr), 0, 0, NULL},
    {"TRAIN.CLIP_GRAD", K_FLOAT, OFF(clip_grad), 0, 0, NULL},
    {"TRAIN.AUTO_RESUME", K_IGNORE, NOOFF, 0, 0, NULL},
    {"TRAIN.ACCUMULATION_STEPS", K_INT, OFF(accumulation_steps), 0, 0, NULL},
    {"TRAIN.USE_CHECKPOINT", K_IGNORE, NOOFF, 0, 0, NULL},
    {"TRAIN.LR_SCHEDULER.NAME", K_STR, OFF(lr_scheduler), sizeof(((mt_config *)0)->lr_scheduler),
     0, NULL},
    {"TRAIN.LR_SCHEDULER.DECAY_EPOCHS", K_IGNORE, NOOFF, 0, 0, NULL},
    {"TRAIN.LR_SCHEDULER.DECAY_RATE", K_IGNORE, NOOFF, 0, 0, NULL},
    {"TRAIN.LR_SCHEDULER.WARMUP_PREFIX", K_FIXED_BOOL, NOOFF, 0, 0, "true"},
    {"TRAIN.LR_SCHEDULER.GAMMA", K_IGNORE, NOOFF, 0, 0, NULL},
    {"TRAIN.LR_SCHEDULER.MULTISTEPS", K_IGNORE, NOOFF, 0, 0, NULL},
    {"TRAIN.SKIP_DECODER_CKPT", K_IGNORE, NOOFF, 0, 0, NULL},
    {"TRAIN.FREEZE_PATCH_EMBED", K_BOOL, OFF(freeze_patch_embed), 0, 0, NULL},
    {"TRAIN.FREEZE_LAYER_NORM", K_BOOL, OFF(freeze_layer_norm), 0, 0, NULL},
    {"TRAIN.FREEZE_RELATIVE_POSITION_BIAS", K_BOOL, OFF(freeze_rel_bias), 0, 0, NULL},
    {"TRAIN.FREEZE_DOWNSAMPLE_REDUCTION", K_BOOL, OFF(freeze_downsample_reduction), 0, 0, NULL},
    {"TRAIN.OPTIMIZER.NAME", K_FIXED_STR, NOOFF, 0, 0, "adamw"},
    {"TRAIN.OPTIMIZER.EPS", K_FLOAT, OFF(optimizer_eps), 0, 0, NULL},
    {"TRAIN.OPTIMIZER.BETAS", K_FLOATLIST, OFF(betas), 2, 0, NULL},
    {"TRAIN.OPTIMIZER.MOMENTUM", K_IGNORE, NOOFF, 0, 0, NULL},
    {"TRAIN.LAYER_DECAY", K_IGNORE, NOOFF, 0, 0, NULL},
    {"TRAIN.MOE.*", K_IGNORE, NOOFF, 0, 0, NULL},
    {"AUG.*", K_IGNORE, NOOFF, 0, 0, NULL},
    {"TEST.*", K_IGNORE, NOOFF, 0, 0, NULL},
    {"ENABLE_AMP", K_IGNORE, NOOFF, 0, 0, NULL},
    {"AMP_ENABLE", K_IGNORE, NOOFF, 0, 0, NULL},
    {"AMP_OPT_LEVEL", K_IGNORE, NOOFF, 0, 0, NULL},
    {"OUTPUT", K_IGNORE, NOOFF, 0, 0, NULL},
    {"TAG", K_IGNORE, NOOFF, 0, 0, NULL},
    {"SAVE_FREQ", K_IGNORE, NOOFF, 0, 0, NULL},
    {"PRINT_FREQ", K_IGNORE, NOOFF, 0, 0, NULL},
    {"EVAL_FREQ", K_IGNORE, NOOFF, 0, 0, NULL},
    {"SEED", K_INT, OFF(seed), 0, 0, NULL},
    {"EVAL_MODE", K_IGNORE, NOOFF, 0, 0, NULL},
    {"THROUGHPUT_MODE", K_IGNORE, NOOFF, 0, 0, NULL},
    {"LOCAL_RANK", K_IGNORE, NOOFF, 0, 0, NULL},
    {"FUSED_WINDOW_PROCESS", K_IGNORE, NOOFF, 0, 0, NULL},
    {"FUSED_LAYERNORM", K_IGNORE, NOOFF, 0, 0, NULL},
    {"SKIP_INITIAL_EVAL", K_IGNORE, NOOFF, 0, 0, NULL},
    {"TASKS", K_TASKS, NOOFF, 0, 0, NULL},
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static const struct {
    const char *name;
    mt_task_kind kind;
    int outputs;
    float weight;
} TASK_INFO[] = {
    {"semseg", MT_TASK_SEMSEG, 21, 1.0f},   {"human_parts", MT_TASK_HUMAN_PARTS, 7, 2.0f},
    {"sal", MT_TASK_SAL, 1, 5.0f},          {"normals", MT_TASK_NORMALS, 3, 10.0f},
    {"edge", MT_TASK_EDGE, 1, 50.0f},
};
#define NTASKINFO (sizeof TASK_INFO / sizeof TASK_INFO[0])

#define fail mt_errf

/* config.py's defaults, exactly. */
void mt_config_default(mt_config *c) {
    memset(c, 0, sizeof *c);
    c->img_size = 224;
    c->batch_size = 128;
    c->patch_size = 4;
    c->in_chans = 3;
    c->embed_dim = 96;
    c->nstages = 4;
    int depths[4] = {2, 2, 6, 2}, heads[4] = {3, 6, 12, 24}, dec[4] = {18, 36, 72, 144};
    memcpy(c->depths, depths, sizeof depths);
    memcpy(c->heads, heads, sizeof heads);
    memcpy(c->decoder_channels, dec, sizeof dec);
    c->raw.n_depths = c->raw.n_heads = c->raw.n_decoder_channels = 4;
    c->window_size = 7;
    c->qkv_bias = 1;
    c->mlp_ratio = 4.0f;
    c->drop_path_rate = 0.1f;
    c->drop_rate = 0.0f;
    c->mtlora.enabled = 0;
    c->mtlora.freeze_pretrained = 1;
    c->mtlora.qkv_enabled = c->mtlora.proj_enabled = 1;
    c->mtlora.fc1_enabled = c->mtlora.fc2_enabled = 1;
    c->raw.n_r = c->raw.n_shared_scale = c->raw.n_dropout = 4;
    for (int i = 0; i < 4; i++) {
        c->raw.r[i] = 8;
        c->raw.shared_scale[i] = 2.0f;
        c->raw.dropout[i] = 0.05f;
    }
    c->ntasks = 0;
    c->epochs = 300;
    c->warmup_epochs = 20;
    c->accumulation_steps = 1;
    c->base_lr = 5e-4f;
    c->warmup_lr = 5e-7f;
    c->min_lr = 5e-6f;
    c->weight_decay = 0.05f;
    c->clip_grad = 5.0f;
    c->optimizer_eps = 1e-8f;
    c->betas[0] = 0.9f;
    c->betas[1] = 0.999f;
    snprintf(c->lr_scheduler, sizeof c->lr_scheduler, "cosine");
    c->seed = 0;
    snprintf(c->name, sizeof c->name, "swin_tiny_patch4_window7_224");
    snprintf(c->run.dir, sizeof c->run.dir, "runs/mtlora");
    c->run.bucket_mb = 4.0f;
    c->run.log_every = 10;
    c->run.checkpoint_every = 0;
    c->run.keep_checkpoints = 3;
    c->run.max_steps = 0;
    c->run.eval_every = 0;
    c->run.sync_bn = 0;
    c->run.lr_scaling = 1;
    c->run.step_timeout = 900;
    c->run.max_bad_steps = 5;
    /* adapter kinds: defaults of docs/adapters.md */
    snprintf(c->adapter.kind, sizeof c->adapter.kind, "mtlora");
    c->adapter.mtl_num_b = 3;
    c->adapter.mtl_tau = 0.1f;
    snprintf(c->adapter.mtl_lambda, sizeof c->adapter.mtl_lambda, "full");
    c->adapter.mtl_scale = 2.0f;
    c->adapter.mtl_dropout = 0.05f;
    c->adapter.cgc_shared = 0;
    c->adapter.cgc_task = 1;
    c->adapter.cgc_gate_dim = 64;
    c->adapter.cgc_scale = 2.0f;
    c->adapter.cgc_dropout = 0.1f;
}

/* The built-in model: the official mtlora_tiny_448_r64_scale4_pertask.yaml
 * with the four PASCAL-Context tasks. */
static const char BUILTIN_YAML[] =
    "DATA:\n  IMG_SIZE: 448\n"
    "MODEL:\n  TYPE: swin\n  NAME: mtlora_tiny_448_r64_scale4_pertask\n  DROP_PATH_RATE: 0.2\n"
    "  SWIN:\n    EMBED_DIM: 96\n    DEPTHS: [2, 2, 6, 2]\n    NUM_HEADS: [3, 6, 12, 24]\n"
    "    WINDOW_SIZE: 7\n"
    "  MTLORA:\n    ENABLED: True\n    R: [64, 64, 64, 64]\n    SHARED_SCALE: [4.0]\n"
    "    TASK_SCALE: [4.0]\n    DROPOUT: [0.05, 0.05, 0.05, 0.05]\n"
    "    FREEZE_PRETRAINED: True\n    QKV_ENABLED: True\n    PROJ_ENABLED: True\n"
    "    FC1_ENABLED: True\n    FC2_ENABLED: True\n    DOWNSAMPLER_ENABLED: False\n"
    "    R_PER_TASK:\n      semseg: [4]\n      normals: [4]\n      sal: [4]\n"
    "      human_parts: [4]\n      edge: [4]\n      depth: [4]\n      shared: [64]\n"
    "TASKS: [semseg, human_parts, sal, normals]\n";

/* ---- scalar conversion ---------------------------------------------------- */

static int parse_bool(const char *s, int *out) {
    static const char *t[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *f[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(s, t[i])) { *out = 1; return 0; }
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (!strcmp(s, f[i])) { *out = 0; return 0; }
    return -1;
}

static int parse_long(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int is_null(const char *s) {
    return !strcmp(s, "null") || !strcmp(s, "None") || !strcmp(s, "~") || !*s;
}

/* ---- applying a YAML node to a key ---------------------------------------- */

typedef struct {
    mt_config *cfg;
    yaml_document_t *doc;
    const char *src; /* file name or "--opts" for messages */
    char *err;
    size_t errlen;
} apply_ctx;

static const char *scalar(yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A true/false scalar, or a message naming the key. */
static mt_status read_bool(apply_ctx *a, const char *key, const char *s, int *v) {
    if (!s || parse_bool(s, v))
        return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: '%s' is not true/false", a->src, key,
                    s ? s : "(not a scalar)");
    return MT_OK;
}

static const key_spec *find_key(const char *key) {
    for (size_t i = 0; i < NKEYS; i++) {
        const char *k = KEYS[i].key;
        size_t len = strlen(k);
        if (len > 2 && k[len - 1] == '*') {
            if (!strncmp(key, k, len - 1)) return &KEYS[i];
        } else if (!strcmp(key, k)) {
            return &KEYS[i];
        }
    }
    return NULL;
}

/* Reads a scalar or a sequence of scalars as numbers into v (at most cap). */
static mt_status read_numbers(apply_ctx *a, const char *key, yaml_node_t *n, double *v,
                              int cap, int *count) {
    int k = 0;
    const char *sc = scalar(n);
    size_t sl = sc ? strlen(sc) : 0;
    if (sc && sl >= 2 && ((sc[0] == '(' && sc[sl - 1] == ')') || (sc[0] == '[' && sc[sl - 1] == ']'))) {
        /* "(0.9, 0.999)": yacs reads Python literals written as strings */
        char buf[512];
        if (sl >= sizeof buf)
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: value too long", a->src, key);
        memcpy(buf, sc + 1, sl - 2);
        buf[sl - 2] = '\0';
        for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) {
            if (k >= cap)
                return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: more than %d values", a->src,
                            key, cap);
            if (parse_double(tok, &v[k]))
                return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: '%s' is not a number", a->src,
                            key, tok);
            k++;
        }
        if (!k) return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: empty list", a->src, key);
        *count = k;
        return MT_OK;
    }
    if (n->type == YAML_SCALAR_NODE) {
        if (parse_double(scalar(n), &v[0]))
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: '%s' is not a number", a->src,
                        key, scalar(n));
        *count = 1;
        return MT_OK;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: expected a list of numbers",
                    a->src, key);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = yaml_document_get_node(a->doc, *it);
        const char *s = scalar(e);
        if (k >= cap)
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: more than %d values", a->src,
                        key, cap);
        if (!s || parse_double(s, &v[k]))
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: element %d is not a number",
                        a->src, key, k);
        k++;
    }
    if (k == 0)
        return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: empty list", a->src, key);
    *count = k;
    return MT_OK;
}

static mt_status set_tasks_from_names(mt_config *cfg, const char **names, int n, const char *src,
                                      char *err, size_t errlen) {
    if (n < 1 || n > MT_MAX_TASKS)
        return fail(err, errlen, MT_ERR_ARG, "%s: TASKS: between 1 and %d tasks, got %d", src,
                    MT_MAX_TASKS, n);
    for (int i = 0; i < n; i++) {
        size_t k = 0;
        while (k < NTASKINFO && strcmp(TASK_INFO[k].name, names[i])) k++;
        if (k == NTASKINFO)
            return fail(err, errlen, MT_ERR_ARG,
                        "%s: TASKS: unknown task '%s' (known: semseg, human_parts, sal, normals, "
                        "edge)", src, names[i]);
        for (int j = 0; j < i; j++)
            if (!strcmp(names[j], names[i]))
                return fail(err, errlen, MT_ERR_ARG, "%s: TASKS: '%s' listed twice", src,
                            names[i]);
    }
    cfg->ntasks = n;
    for (int i = 0; i < n; i++) snprintf(cfg->tasks[i], MT_TASK_NAME_LEN, "%s", names[i]);
    return MT_OK;
}

static mt_status apply_named_lists(apply_ctx *a, const char *key, yaml_node_t *n,
                                   mt_named_list *lists, int *nlists) {
    if (n->type != YAML_MAPPING_NODE)
        return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: expected task: [values] entries",
                    a->src, key);
    /* Entries merge by name into what earlier files set, as yacs merges. */
    int count = *nlists;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *name = scalar(yaml_document_get_node(a->doc, p->key));
        yaml_node_t *v = yaml_document_get_node(a->doc, p->value);
        if (!name || strlen(name) >= MT_TASK_NAME_LEN)
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: bad task name", a->src, key);
        int slot = 0;
        while (slot < count && strcmp(lists[slot].name, name)) slot++;
        if (slot == MT_MAX_TASKS + 4)
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: too many entries", a->src, key);
        char sub[160];
        snprintf(sub, sizeof sub, "%s.%s", key, name);
        double vals[MT_MAX_STAGES];
        int nv = 0;
        mt_status st = read_numbers(a, sub, v, vals, MT_MAX_STAGES, &nv);
        if (st) return st;
        mt_named_list *l = &lists[slot];
        if (slot == count) count++;
        snprintf(l->name, MT_TASK_NAME_LEN, "%s", name);
        l->n = nv;
        for (int i = 0; i < nv; i++) l->v[i] = (float)vals[i];
    }
    *nlists = count;
    return MT_OK;
}

static mt_status apply(apply_ctx *a, const char *key, yaml_node_t *n) {
    const key_spec *k = find_key(key);
    if (!k)
        return fail(a->err, a->errlen, MT_ERR_ARG, "%s: unknown key %s", a->src, key);
    char *base = (char *)a->cfg;
    const char *s = scalar(n);
    switch (k->type) {
    case K_IGNORE:
        return MT_OK;
    case K_INT: {
        long v;
        if (!s || parse_long(s, &v) || v < -1000000000L || v > 1000000000L)
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: '%s' is not an integer", a->src,
                        key, s ? s : "(not a scalar)");
        *(int *)(base + k->off) = (int)v;
        return MT_OK;
    }
    case K_FLOAT: {
        double v;
        if (!s || parse_double(s, &v))
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: '%s' is not a number", a->src,
                        key, s ? s : "(not a scalar)");
        *(float *)(base + k->off) = (float)v;
        return MT_OK;
    }
    case K_BOOL: {
        int v;
        mt_status st = read_bool(a, key, s, &v);
        if (!st) *(int *)(base + k->off) = v;
        return st;
    }
    case K_STR:
        if (!s || strlen(s) >= k->cap)
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: expected a string shorter than %zu",
                        a->src, key, k->cap);
        snprintf(base + k->off, k->cap, "%s", s);
        return MT_OK;
    case K_FIXED_BOOL: {
        int v, want = 0;
        parse_bool(k->fixed, &want);
        mt_status st = read_bool(a, key, s, &v);
        if (st) return st;
        if (v != want)
            return fail(a->err, a->errlen, MT_ERR_ARG, "%s: %s: only %s is supported by mtlora",
                        a->src, key, k->fixed);
        return MT_OK;
    }
    case K_FIXED_STR:
        if (!s || strcmp(s, k->fixed))
            return fail(a->err, a->errlen, MT_ERR_ARG, "%s: %s: only '%s' is supported by mtlora",
                        a->src, key, k->fixed);
        return MT_OK;
    case K_NULL_ONLY:
        if (!s || !is_null(s))
            return fail(a->err, a->errlen, MT_ERR_ARG,
                        "%s: %s: only null (head_dim^-0.5) is supported by mtlora", a->src, key);
        return MT_OK;
    case K_INTLIST:
    case K_FLOATLIST: {
        double v[16]; /* >= every key's cap (stages, tasks) */
        int cnt = 0;
        mt_status st = read_numbers(a, key, n, v, (int)k->cap, &cnt);
        if (st) return st;
        for (int i = 0; i < cnt; i++) {
            if (k->type == K_INTLIST) {
                if (v[i] != floor(v[i]))
                    return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: element %d is not an "
                                "integer", a->src, key, i);
                ((int *)(base + k->off))[i] = (int)v[i];
            } else {
                ((float *)(base + k->off))[i] = (float)v[i];
            }
        }
        if (k->n_off) *(int *)(base + k->n_off) = cnt;
        else if (cnt != (int)k->cap)
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: expected %zu values", a->src,
                        key, k->cap);
        return MT_OK;
    }
    case K_TASKS: {
        const char *names[MT_MAX_TASKS + 1];
        int cnt = 0;
        if (n->type != YAML_SEQUENCE_NODE)
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: TASKS: expected a list", a->src);
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             it < n->data.sequence.items.top; it++) {
            const char *t = scalar(yaml_document_get_node(a->doc, *it));
            if (!t) return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: TASKS: bad entry", a->src);
            if (cnt > MT_MAX_TASKS)
                return fail(a->err, a->errlen, MT_ERR_ARG, "%s: TASKS: too many tasks", a->src);
            names[cnt++] = t;
        }
        return set_tasks_from_names(a->cfg, names, cnt, a->src, a->err, a->errlen);
    }
    case K_RPT:
        return apply_named_lists(a, key, n, a->cfg->raw.r_per_task, &a->cfg->raw.n_r_per_task);
    case K_SPT:
        return apply_named_lists(a, key, n, a->cfg->raw.scale_per_task,
                                 &a->cfg->raw.n_scale_per_task);
    case K_HEAD:
        if (n->type != YAML_MAPPING_NODE)
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: expected task: head entries",
                        a->src, key);
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            const char *t = scalar(yaml_document_get_node(a->doc, p->key));
            const char *h = scalar(yaml_document_get_node(a->doc, p->value));
            if (!t || !h || strcmp(h, "hrnet"))
                return fail(a->err, a->errlen, MT_ERR_ARG,
                            "%s: MODEL.DECODER_HEAD.%s: only 'hrnet' is supported by mtlora", a->src,
                            t ? t : "?");
        }
        return MT_OK;
    }
    return fail(a->err, a->errlen, MT_ERR_ARG, "%s: %s: unhandled key type", a->src, key);
}

/* Walks a mapping, building dotted keys; maps whose key is a leaf of the
 * table (R_PER_TASK...) are handed over whole. */
static mt_status walk(apply_ctx *a, const char *prefix, yaml_node_t *n) {
    if (n->type != YAML_MAPPING_NODE)
        return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: %s: expected a mapping", a->src,
                    *prefix ? prefix : "top level");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *k = scalar(yaml_document_get_node(a->doc, p->key));
        yaml_node_t *v = yaml_document_get_node(a->doc, p->value);
        if (!k || !v) return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: bad key", a->src);
        char key[256];
        int len = snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", k);
        if (len >= (int)sizeof key)
            return fail(a->err, a->errlen, MT_ERR_FORMAT, "%s: key too long", a->src);
        const key_spec *spec = find_key(key);
        mt_status st;
        if (v->type == YAML_MAPPING_NODE && (!spec || (spec->type != K_RPT && spec->type != K_SPT &&
                                                       spec->type != K_HEAD &&
                                                       spec->type != K_IGNORE)))
            st = walk(a, key, v);
        else
            st = apply(a, key, v);
        if (st) return st;
    }
    return MT_OK;
}

static mt_status load_document(yaml_parser_t *parser, yaml_document_t *doc, const char *src,
                               char *err, size_t errlen) {
    if (!yaml_parser_load(parser, doc))
        return fail(err, errlen, MT_ERR_FORMAT, "%s: YAML error at line %lu: %s", src,
                    (unsigned long)parser->problem_mark.line + 1,
                    parser->problem ? parser->problem : "malformed");
    return MT_OK;
}

/* Parses one YAML document from f (or, with f NULL, from text) and merges
 * it into cfg. `src` names the source in messages. */
static mt_status merge_yaml(mt_config *cfg, FILE *f, const char *text, const char *path,
                            char *err, size_t errlen) {
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return fail(err, errlen, MT_ERR_NOMEM, "%s: cannot initialise the YAML parser", path);
    if (f) yaml_parser_set_input_file(&parser, f);
    else yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    mt_status st = load_document(&parser, &doc, path, err, errlen);
    if (!st) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root) {
            apply_ctx a = {cfg, &doc, path, err, errlen};
            st = walk(&a, "", root);
        } /* an empty file changes nothing */
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    return st;
}

mt_status mt_config_load(mt_config *cfg, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    mt_status st = merge_yaml(cfg, f, NULL, path, err, errlen);
    fclose(f);
    return st;
}

mt_status mt_config_builtin(mt_config *cfg, char *err, size_t errlen) {
    mt_config_default(cfg);
    return merge_yaml(cfg, NULL, BUILTIN_YAML, "built-in config", err, errlen);
}

mt_status mt_config_set(mt_config *cfg, const char *key, const char *value, char *err,
                        size_t errlen) {
    if (!key || !value) return fail(err, errlen, MT_ERR_ARG, "--opts: missing KEY or VALUE");
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return fail(err, errlen, MT_ERR_NOMEM, "--opts: cannot initialise the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)value, strlen(value));
    char src[300];
    snprintf(src, sizeof src, "--opts %s", key);
    mt_status st = load_document(&parser, &doc, src, err, errlen);
    if (!st) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            st = fail(err, errlen, MT_ERR_FORMAT, "--opts %s: empty value", key);
        } else {
            apply_ctx a = {cfg, &doc, "--opts", err, errlen};
            st = apply(&a, key, root);
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    return st;
}

mt_status mt_config_set_tasks(mt_config *cfg, const char *list, char *err, size_t errlen) {
    char buf[256];
    if (!list || strlen(list) >= sizeof buf)
        return fail(err, errlen, MT_ERR_ARG, "--tasks: missing or too long");
    snprintf(buf, sizeof buf, "%s", list);
    const char *names[MT_MAX_TASKS + 1];
    int n = 0;
    for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) {
        if (n > MT_MAX_TASKS) return fail(err, errlen, MT_ERR_ARG, "--tasks: too many tasks");
        names[n++] = tok;
    }
    return set_tasks_from_names(cfg, names, n, "--tasks", err, errlen);
}

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

int mt_config_cgc_expert_rank(const mt_config *c, int s) {
    const int re = c->mtlora.r[s] / (c->adapter.n_shared_experts + c->ntasks * c->adapter.cgc_task);
    return re < 1 ? 1 : re;
}

void mt_config_use_full_ft(mt_config *c) {
    snprintf(c->adapter.kind, sizeof c->adapter.kind, "full_ft");
    for (int k = 0; k < MT_LAYER_KINDS; k++) c->adapter.layer[k][0] = '\0';
    c->mtlora.enabled = 0;
    c->mtlora.downsampler_enabled = 0;
}

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
 * MODEL.MTLORA.R). */
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
        return fail(err, errlen, MT_ERR_ARG,
                    "MODEL.ADAPTER.KIND: unknown kind '%s' (known: mtlora, lora, mtl_lora, "
                    "cgc_lora, full_ft, decoders_only)", a->kind);
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
            return fail(err, errlen, MT_ERR_ARG,
                        "MODEL.ADAPTER.%s: unknown kind '%s' (known: none, mtlora, lora, mtl_lora, "
                        "cgc_lora; empty: MODEL.ADAPTER.KIND)", LAYER_KEYS[k], a->layer[k]);
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
    if (strcmp(a->mtl_lambda, "full") && strcmp(a->mtl_lambda, "diag"))
        return fail(err, errlen, MT_ERR_ARG, "MODEL.ADAPTER.MTL_LORA.LAMBDA: '%s' is not full or diag",
                    a->mtl_lambda);
    a->mtl_diag = !strcmp(a->mtl_lambda, "diag");
    if (a->mtl_num_b < 1 || a->mtl_num_b > 16)
        return fail(err, errlen, MT_ERR_ARG, "MODEL.ADAPTER.MTL_LORA.NUM_B %d not in 1..16",
                    a->mtl_num_b);
    if (!(a->mtl_tau > 0.0f))
        return fail(err, errlen, MT_ERR_ARG, "MODEL.ADAPTER.MTL_LORA.TAU must be positive");
    if (!(a->mtl_dropout >= 0.0f && a->mtl_dropout < 1.0f) ||
        !(a->cgc_dropout >= 0.0f && a->cgc_dropout < 1.0f))
        return fail(err, errlen, MT_ERR_ARG,
                    "MODEL.ADAPTER.MTL_LORA.DROPOUT and CGC_LORA.DROPOUT must be in [0, 1)");
    if (a->cgc_shared < 0 || a->cgc_shared > 16 || a->cgc_task < 1 || a->cgc_task > 4)
        return fail(err, errlen, MT_ERR_ARG,
                    "MODEL.ADAPTER.CGC_LORA: SHARED_EXPERTS must be in 0..16 (0: one per task), "
                    "TASK_EXPERTS in 1..4");
    if (a->cgc_gate_dim < 1 || a->cgc_gate_dim > 4096)
        return fail(err, errlen, MT_ERR_ARG, "MODEL.ADAPTER.CGC_LORA.GATE_DIM %d not in 1..4096",
                    a->cgc_gate_dim);
    a->n_shared_experts = a->cgc_shared ? a->cgc_shared : c->ntasks;
    return MT_OK;
}

mt_status mt_config_finalize(mt_config *c, char *err, size_t errlen) {
    mt_status st;
    if (c->raw.n_depths < 1 || c->raw.n_depths > MT_MAX_STAGES)
        return fail(err, errlen, MT_ERR_ARG, "MODEL.SWIN.DEPTHS: 1 to %d stages", MT_MAX_STAGES);
    c->nstages = c->raw.n_depths;
    int L = c->nstages;
    if (c->raw.n_heads != L)
        return fail(err, errlen, MT_ERR_ARG, "MODEL.SWIN.NUM_HEADS: %d values for %d stages",
                    c->raw.n_heads, L);
    if (c->raw.n_decoder_channels != L)
        return fail(err, errlen, MT_ERR_ARG, "MODEL.DECODER_CHANNELS: %d values for %d stages",
                    c->raw.n_decoder_channels, L);
    if (c->patch_size < 1 || c->in_chans < 1 || c->embed_dim < 1 || c->window_size < 1)
        return fail(err, errlen, MT_ERR_ARG,
                    "MODEL.SWIN: PATCH_SIZE, IN_CHANS, EMBED_DIM and WINDOW_SIZE must be positive");
    if (c->img_size < 1 || c->img_size % c->patch_size)
        return fail(err, errlen, MT_ERR_ARG, "DATA.IMG_SIZE %d is not a multiple of the patch size %d",
                    c->img_size, c->patch_size);
    if (!(c->mlp_ratio > 0.0f))
        return fail(err, errlen, MT_ERR_ARG, "MODEL.SWIN.MLP_RATIO must be positive");
    if (c->drop_rate != 0.0f)
        return fail(err, errlen, MT_ERR_ARG, "MODEL.DROP_RATE: only 0.0 is supported by mtlora");
    if (!(c->drop_path_rate >= 0.0f && c->drop_path_rate < 1.0f))
        return fail(err, errlen, MT_ERR_ARG, "MODEL.DROP_PATH_RATE %g not in [0, 1)",
                    (double)c->drop_path_rate);
    int grid = c->img_size / c->patch_size;
    for (int s = 0; s < L; s++) {
        int dim = c->embed_dim << s;
        if (c->depths[s] < 1 || c->heads[s] < 1 || dim % c->heads[s])
            return fail(err, errlen, MT_ERR_ARG,
                        "stage %d: depth %d, heads %d: heads must divide the dimension %d", s,
                        c->depths[s], c->heads[s], dim);
        int ws = grid <= c->window_size ? grid : c->window_size;
        if (grid % ws)
            return fail(err, errlen, MT_ERR_ARG,
                        "DATA.IMG_SIZE %d: stage %d grid %dx%d does not divide into %dx%d windows "
                        "(MODEL.SWIN.WINDOW_SIZE)", c->img_size, s, grid, grid, ws, ws);
        if (s < L - 1 && grid % 2)
            return fail(err, errlen, MT_ERR_ARG,
                        "DATA.IMG_SIZE %d: stage %d grid %d is odd and cannot be merged", c->img_size,
                        s, grid);
        if (c->decoder_channels[s] < 1)
            return fail(err, errlen, MT_ERR_ARG, "MODEL.DECODER_CHANNELS[%d] must be positive", s);
        if (s < L - 1) grid /= 2;
    }
    if (c->ntasks < 1) return fail(err, errlen, MT_ERR_ARG, "TASKS: no task given");
    for (int t = 0; t < c->ntasks; t++) {
        size_t k = 0;
        while (k < NTASKINFO && strcmp(TASK_INFO[k].name, c->tasks[t])) k++;
        c->task_kind[t] = TASK_INFO[k].kind;
        c->num_outputs[t] = TASK_INFO[k].outputs;
        c->loss_weight[t] = TASK_INFO[k].weight;
    }
    if ((st = finalize_adapter(c, err, errlen))) return st;
    mt_mtlora_config *m = &c->mtlora;
    if (m->enabled) {
        float tmp[MT_MAX_STAGES];
        if ((st = expand("MODEL.MTLORA.R", c->raw.r, c->raw.n_r, L, tmp, err, errlen))) return st;
        for (int s = 0; s < L; s++) m->r[s] = (int)tmp[s];
        if ((st = expand("MODEL.MTLORA.SHARED_SCALE", c->raw.shared_scale, c->raw.n_shared_scale,
                         L, m->shared_scale, err, errlen)))
            return st;
        if ((st = expand("MODEL.MTLORA.DROPOUT", c->raw.dropout, c->raw.n_dropout, L, m->dropout,
                         err, errlen)))
            return st;
        /* config.py: with R_PER_TASK empty every task and 'shared' take R;
         * otherwise 'shared' and every trained task must be listed. */
        int have_rpt = c->raw.n_r_per_task > 0;
        if (have_rpt) {
            const mt_named_list *shared =
                find_list(c->raw.r_per_task, c->raw.n_r_per_task, "shared");
            if (!shared)
                return fail(err, errlen, MT_ERR_ARG, "MODEL.MTLORA.R_PER_TASK.shared: missing");
            if ((st = expand("MODEL.MTLORA.R_PER_TASK.shared", shared->v, shared->n, L, tmp, err,
                             errlen)))
                return st;
            for (int s = 0; s < L; s++) m->r[s] = (int)tmp[s];
        }
        for (int t = 0; t < c->ntasks; t++) {
            char key[96];
            snprintf(key, sizeof key, "MODEL.MTLORA.R_PER_TASK.%s", c->tasks[t]);
            if (have_rpt) {
                const mt_named_list *l =
                    find_list(c->raw.r_per_task, c->raw.n_r_per_task, c->tasks[t]);
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
                return fail(err, errlen, MT_ERR_ARG, "MODEL.MTLORA.R: stage %d rank %d must be >= 1",
                            s, m->r[s]);
            if (!(m->dropout[s] >= 0.0f && m->dropout[s] < 1.0f))
                return fail(err, errlen, MT_ERR_ARG, "MODEL.MTLORA.DROPOUT: stage %d value %g not in "
                            "[0, 1)", s, (double)m->dropout[s]);
            for (int t = 0; t < c->ntasks; t++)
                if (m->r_task[t][s] < 1)
                    return fail(err, errlen, MT_ERR_ARG,
                                "MODEL.MTLORA.R_PER_TASK.%s: stage %d rank %d must be >= 1",
                                c->tasks[t], s, m->r_task[t][s]);
        }
    }
    if (c->batch_size < 1) return fail(err, errlen, MT_ERR_ARG, "DATA.BATCH_SIZE must be >= 1");
    if (c->accumulation_steps < 1)
        return fail(err, errlen, MT_ERR_ARG, "TRAIN.ACCUMULATION_STEPS must be >= 1");
    if (strcmp(c->lr_scheduler, "cosine"))
        return fail(err, errlen, MT_ERR_ARG,
                    "TRAIN.LR_SCHEDULER.NAME: only 'cosine' is supported by mtlora, got '%s'",
                    c->lr_scheduler);
    if (c->epochs < 1) return fail(err, errlen, MT_ERR_ARG, "TRAIN.EPOCHS must be >= 1");
    if (c->warmup_epochs < 0 || c->warmup_epochs >= c->epochs)
        return fail(err, errlen, MT_ERR_ARG, "TRAIN.WARMUP_EPOCHS must be in 0..TRAIN.EPOCHS-1");
    if (!(c->run.bucket_mb > 0.0f && c->run.bucket_mb <= 1024.0f))
        return fail(err, errlen, MT_ERR_ARG, "RUN.BUCKET_MB must be in (0, 1024]");
    if (c->run.log_every < 1) return fail(err, errlen, MT_ERR_ARG, "RUN.LOG_EVERY must be >= 1");
    if (c->run.checkpoint_every < 0 || c->run.keep_checkpoints < 1 || c->run.max_steps < 0 ||
        c->run.eval_every < 0)
        return fail(err, errlen, MT_ERR_ARG,
                    "RUN.CHECKPOINT_EVERY, RUN.MAX_STEPS, RUN.EVAL_EVERY must be >= 0 and "
                    "RUN.KEEP_CHECKPOINTS >= 1");
    if (c->run.step_timeout < 0 || c->run.max_bad_steps < 1)
        return fail(err, errlen, MT_ERR_ARG,
                    "RUN.STEP_TIMEOUT must be >= 0 (0: no watchdog), RUN.MAX_BAD_STEPS >= 1");
    if (c->run.n_stl && c->run.n_stl != c->ntasks)
        return fail(err, errlen, MT_ERR_ARG, "RUN.STL_BASELINES: %d values for %d tasks",
                    c->run.n_stl, c->ntasks);
    return MT_OK;
}

/* ---- writing the effective configuration ---------------------------------- */

static int cmp_key(const void *a, const void *b) {
    return strcmp((*(const key_spec *const *)a)->key, (*(const key_spec *const *)b)->key);
}

static void write_quoted(FILE *f, const char *v) {
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '"' || *v == '\\') fputc('\\', f);
        fputc(*v, f);
    }
    fputc('"', f);
}

void mt_config_format_float(char *buf, size_t cap, float v) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtof(buf, NULL) == v) break;
    }
}

static void write_float(FILE *f, float v) {
    char buf[32];
    mt_config_format_float(buf, sizeof buf, v);
    fputs(buf, f);
}

static void write_floats(FILE *f, const float *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        write_float(f, v[i]);
    }
    fputc(']', f);
}

static void write_named_lists(FILE *f, const mt_named_list *l, int n, int indent) {
    if (n == 0) {
        fprintf(f, " {}\n");
        return;
    }
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%*s%s: ", indent + 2, "", l[i].name);
        write_floats(f, l[i].v, l[i].n);
        fputc('\n', f);
    }
}

/* One key's value in YAML (after "NAME:"); returns 0 when the key is not
 * written (ignored keys; MODEL.DECODER_HEAD, fixed to hrnet). */
static int write_value(FILE *f, const mt_config *c, const key_spec *k, int indent) {
    const char *base = (const char *)c;
    switch (k->type) {
    case K_INT: fprintf(f, " %d\n", *(const int *)(base + k->off)); return 1;
    case K_FLOAT:
        fputc(' ', f);
        write_float(f, *(const float *)(base + k->off));
        fputc('\n', f);
        return 1;
    case K_BOOL: fprintf(f, " %s\n", *(const int *)(base + k->off) ? "True" : "False"); return 1;
    case K_STR:
        fputc(' ', f);
        write_quoted(f, base + k->off);
        fputc('\n', f);
        return 1;
    case K_INTLIST:
    case K_FLOATLIST: {
        const int n = k->n_off ? *(const int *)(base + k->n_off) : (int)k->cap;
        fputs(" [", f);
        for (int i = 0; i < n; i++) {
            if (k->type == K_INTLIST) fprintf(f, "%s%d", i ? ", " : "", ((const int *)(base + k->off))[i]);
            else {
                if (i) fputs(", ", f);
                write_float(f, ((const float *)(base + k->off))[i]);
            }
        }
        fputs("]\n", f);
        return 1;
    }
    case K_TASKS:
        fputs(" [", f);
        for (int t = 0; t < c->ntasks; t++) fprintf(f, "%s%s", t ? ", " : "", c->tasks[t]);
        fputs("]\n", f);
        return 1;
    case K_RPT: write_named_lists(f, c->raw.r_per_task, c->raw.n_r_per_task, indent); return 1;
    case K_SPT: write_named_lists(f, c->raw.scale_per_task, c->raw.n_scale_per_task, indent); return 1;
    case K_FIXED_BOOL: fprintf(f, " %s\n", !strcmp(k->fixed, "true") ? "True" : "False"); return 1;
    case K_FIXED_STR: fprintf(f, " %s\n", k->fixed); return 1;
    default: return 0;
    }
}

/* Optional lists left unset (RUN.STL_BASELINES) are not written: an empty
 * YAML list is refused on reading. */
static int has_value(const mt_config *c, const key_spec *k) {
    if (k->type == K_IGNORE || k->type == K_NULL_ONLY || k->type == K_HEAD) return 0;
    if ((k->type == K_FLOATLIST || k->type == K_INTLIST) && k->n_off)
        return *(const int *)((const char *)c + k->n_off) > 0;
    return 1;
}

mt_status mt_config_write_yaml(const mt_config *c, const char *path, char *err, size_t errlen) {
    const size_t nk = sizeof KEYS / sizeof KEYS[0];
    const key_spec *order[sizeof KEYS / sizeof KEYS[0]];
    size_t m = 0;
    for (size_t i = 0; i < nk; i++)
        if (has_value(c, &KEYS[i])) order[m++] = &KEYS[i];
    qsort(order, m, sizeof order[0], cmp_key); /* sorted keys: sections stay together */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return fail(err, errlen, MT_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    fprintf(f, "# The effective configuration of this run (official key names, plus RUN.*).\n");
    char prev[128] = "";
    for (size_t i = 0; i < m; i++) {
        const char *key = order[i]->key;
        /* open the sections this key needs that the previous key did not */
        int depth = 0;
        const char *p = key, *q = prev;
        size_t common = 0;
        for (;;) { /* shared leading sections */
            const char *dp = strchr(p, '.'), *dq = strchr(q, '.');
            if (!dp || !dq || dp - p != dq - q || strncmp(p, q, (size_t)(dp - p))) break;
            common++;
            p = dp + 1;
            q = dq + 1;
        }
        p = key;
        for (size_t d = 0; d < common; d++) p = strchr(p, '.') + 1;
        depth = (int)common;
        for (const char *dot; (dot = strchr(p, '.')); p = dot + 1, depth++)
            fprintf(f, "%*s%.*s:\n", 2 * depth, "", (int)(dot - p), p);
        fprintf(f, "%*s%s:", 2 * depth, "", p);
        if (!write_value(f, c, order[i], 2 * depth)) fputs(" null\n", f);
        snprintf(prev, sizeof prev, "%s", key);
    }
    int bad = fflush(f) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return fail(err, errlen, MT_ERR_IO, "%s: cannot write", path);
    }
    return MT_OK;
}
