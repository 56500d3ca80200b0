/* config_keys.c - every configuration key, one row each (config_keys.h),
 * and the defaults they give.
 *
 * Every key of the official config.py is here, with what we do with it:
 * parse into mt_config, accept and ignore (data-loader, augmentation and
 * AMP knobs of the PyTorch code), or accept only at its default value
 * (features we do not implement), so an official file loads unchanged and
 * nothing is silently misread. Defaults are config.py's, exactly; ours
 * (RUN.*, MODEL.ADAPTER.*) are those of docs/adapters.md and docs. */
#include <stdio.h>
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
#define FLOATS_FIXED(k, f, d) \
    {.name = (k), .type = K_FLOATLIST, .off = OFF(f), .cap = SIZE(f) / sizeof(float), d}
#define FIXED_BOOL(k, v) {.name = (k), .type = K_FIXED_BOOL, .def = (v)}
#define FIXED_STR(k, v) {.name = (k), .type = K_FIXED_STR, .def_str = (v)}
#define NULL_ONLY(k) {.name = (k), .type = K_NULL_ONLY}
#define SPECIAL(k, t) {.name = (k), .type = (t)}

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
#define ONE_OF(list) .allowed = (list)
#define NOTED(b, text) b, .note = (text)

static const char *const ADAPTER_KINDS[] = {"mtlora", "lora", "mtl_lora", "cgc_lora", "full_ft",
                                            "decoders_only", NULL};
/* "": the layer takes MODEL.ADAPTER.KIND */
static const char *const LAYER_KINDS[] = {"", "none", "mtlora", "lora", "mtl_lora", "cgc_lora", NULL};
static const char *const LAMBDAS[] = {"full", "diag", NULL};
static const char *const AMP_MATMUL[] = {"auto", "bf16", "f32", NULL};
static const char *const SCHEDULERS[] = {"cosine", NULL};
#define LAYER_NOTE "empty: MODEL.ADAPTER.KIND"

const mt_key MT_KEYS[] = {
    IGNORE("BASE"),
    INT("DATA.BATCH_SIZE", batch_size, 128, AT_LEAST(1)),
    INT("DATA.IMG_SIZE", img_size, 224, AT_LEAST(1)),
    STR("DATA.DATA_PATH", data_path, "", ANY),
    STR("RUN.DIR", run.dir, "runs/mtlora", ANY),
    FLOAT("RUN.BUCKET_MB", run.bucket_mb, 4.0, ABOVE_UPTO(0, 1024)),
    INT("RUN.LOG_EVERY", run.log_every, 10, AT_LEAST(1)),
    INT("RUN.CHECKPOINT_EVERY", run.checkpoint_every, 0, NOTED(AT_LEAST(0), "0: only at the end")),
    INT("RUN.KEEP_CHECKPOINTS", run.keep_checkpoints, 3, AT_LEAST(1)),
    INT("RUN.MAX_STEPS", run.max_steps, 0, NOTED(AT_LEAST(0), "0: all epochs")),
    INT("RUN.EVAL_EVERY", run.eval_every, 0, NOTED(AT_LEAST(0), "0: at the end")),
    BOOL("RUN.SYNC_BN", run.sync_bn, 0),
    BOOL("RUN.LR_SCALING", run.lr_scaling, 1),
    INT("RUN.STEP_TIMEOUT", run.step_timeout, 900, NOTED(AT_LEAST(0), "0: no watchdog")),
    INT("RUN.MAX_BAD_STEPS", run.max_bad_steps, 5, AT_LEAST(1)),
    /* no default: the published Swin-T baselines; its count must match TASKS */
    FLOATS("RUN.STL_BASELINES", run.stl, run.n_stl, NOLIST, ANY),
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
    INT("MODEL.SWIN.PATCH_SIZE", patch_size, 4, AT_LEAST(1)),
    INT("MODEL.SWIN.IN_CHANS", in_chans, 3, AT_LEAST(1)),
    INT("MODEL.SWIN.EMBED_DIM", embed_dim, 96, AT_LEAST(1)),
    INTS("MODEL.SWIN.DEPTHS", depths, raw.n_depths, LIST(2, 2, 6, 2), AT_LEAST(1)),
    INTS("MODEL.SWIN.NUM_HEADS", heads, raw.n_heads, LIST(3, 6, 12, 24), AT_LEAST(1)),
    INT("MODEL.SWIN.WINDOW_SIZE", window_size, 7, AT_LEAST(1)),
    FLOAT("MODEL.SWIN.MLP_RATIO", mlp_ratio, 4.0, POSITIVE),
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
         AT_LEAST(1)),
    IGNORE("MODEL.SEGFORMER_CHANNELS"),
    FIXED_BOOL("MODEL.DECODER_DOWNSAMPLER", 1),
    FIXED_BOOL("MODEL.PER_TASK_DOWNSAMPLER", 1),
    IGNORE("MODEL.UPDATE_RELATIVE_POSITION"),
    BOOL("MODEL.MTLORA.ENABLED", mtlora.enabled, 0),
    FIXED_STR("MODEL.MTLORA.BIAS", "none"),
    /* R, SHARED_SCALE and DROPOUT are checked by finalize after expansion
     * per stage and only with MTLoRA on (R_PER_TASK.shared overrides R) */
    FLOATS("MODEL.MTLORA.R", raw.r, raw.n_r, LIST(8, 8, 8, 8), ANY),
    FLOATS("MODEL.MTLORA.SHARED_SCALE", raw.shared_scale, raw.n_shared_scale, LIST(2, 2, 2, 2), ANY),
    /* Parsed by the official code but never used (the task scale is copied
     * from SHARED_SCALE unless SCALE_PER_TASK is given). */
    IGNORE("MODEL.MTLORA.TASK_SCALE"),
    FLOATS("MODEL.MTLORA.DROPOUT", raw.dropout, raw.n_dropout, LIST(0.05, 0.05, 0.05, 0.05), ANY),
    FIXED_BOOL("MODEL.MTLORA.TRAINABLE_SCALE_SHARED", 0),
    FIXED_BOOL("MODEL.MTLORA.TRAINABLE_SCALE_PER_TASK", 0),
    FIXED_BOOL("MODEL.MTLORA.INTERMEDIATE_SPECIALIZATION", 0),
    BOOL("MODEL.MTLORA.FREEZE_PRETRAINED", mtlora.freeze_pretrained, 1),
    FIXED_BOOL("MODEL.MTLORA.SPLIT_QKV", 0),
    SPECIAL("MODEL.MTLORA.R_PER_TASK", K_RPT),
    SPECIAL("MODEL.MTLORA.SCALE_PER_TASK", K_SPT),
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
    FLOAT("MODEL.ADAPTER.MTL_LORA.TAU", adapter.mtl_tau, 0.1, POSITIVE),
    STR("MODEL.ADAPTER.MTL_LORA.LAMBDA", adapter.mtl_lambda, "full", ONE_OF(LAMBDAS)),
    FLOAT("MODEL.ADAPTER.MTL_LORA.SCALE", adapter.mtl_scale, 2.0, ANY),
    FLOAT("MODEL.ADAPTER.MTL_LORA.DROPOUT", adapter.mtl_dropout, 0.05, UNIT),
    INT("MODEL.ADAPTER.CGC_LORA.SHARED_EXPERTS", adapter.cgc_shared, 0,
        NOTED(RANGE(0, 16), "0: one per task")),
    INT("MODEL.ADAPTER.CGC_LORA.TASK_EXPERTS", adapter.cgc_task, 1, RANGE(1, 4)),
    INT("MODEL.ADAPTER.CGC_LORA.GATE_DIM", adapter.cgc_gate_dim, 64, RANGE(1, 4096)),
    FLOAT("MODEL.ADAPTER.CGC_LORA.SCALE", adapter.cgc_scale, 2.0, ANY),
    FLOAT("MODEL.ADAPTER.CGC_LORA.DROPOUT", adapter.cgc_dropout, 0.1, UNIT),
    INT("TRAIN.START_EPOCH", start_epoch, 0, ANY),
    INT("TRAIN.EPOCHS", epochs, 300, AT_LEAST(1)),
    /* and below TRAIN.EPOCHS: finalize */
    INT("TRAIN.WARMUP_EPOCHS", warmup_epochs, 20, AT_LEAST(0)),
    FLOAT("TRAIN.WEIGHT_DECAY", weight_decay, 0.05, ANY),
    FLOAT("TRAIN.BASE_LR", base_lr, 5e-4, ANY),
    FLOAT("TRAIN.WARMUP_LR", warmup_lr, 5e-7, ANY),
    FLOAT("TRAIN.MIN_LR", min_lr, 5e-6, ANY),
    FLOAT("TRAIN.CLIP_GRAD", clip_grad, 5.0, ANY),
    IGNORE("TRAIN.AUTO_RESUME"),
    INT("TRAIN.ACCUMULATION_STEPS", accumulation_steps, 1, AT_LEAST(1)),
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
    FLOAT("TRAIN.OPTIMIZER.EPS", optimizer_eps, 1e-8, ANY),
    FLOATS_FIXED("TRAIN.OPTIMIZER.BETAS", betas, LIST(0.9, 0.999)),
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
