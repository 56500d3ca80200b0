/* test_config.c - the official-format configuration: defaults, files in
 * the official layout, --opts and --tasks, and refusals that name the key. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/config/config.h"
#include "mtlora/model/model.h"
#include "test_util.h"

static char err[1024];

static const char *data_path(const char *file) {
    static char p[1024];
    const char *dir = getenv("MTLORA_TEST_DATA");
    snprintf(p, sizeof p, "%s/%s", dir ? dir : "tests/data", file);
    return p;
}

static const char *write_tmp(const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "/tmp/mtlora_cfg_%d.yaml", (int)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads text over the official defaults and finalizes; returns the status. */
static mt_status load_text(mt_config *c, const char *text) {
    mt_config_default(c);
    mt_status st = mt_config_load(c, write_tmp(text), err, sizeof err);
    if (!st) st = mt_config_finalize(c, err, sizeof err);
    return st;
}

START_TEST(builtin_is_swin_t_448_r64) {
    mt_config c;
    ck_assert_int_eq(mt_config_builtin(&c, err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_finalize(&c, err, sizeof err), MT_OK);
    ck_assert_int_eq(c.img_size, 448);
    ck_assert_int_eq(c.embed_dim, 96);
    ck_assert_int_eq(c.nstages, 4);
    ck_assert_int_eq(c.depths[2], 6);
    ck_assert_int_eq(c.heads[3], 24);
    ck_assert_int_eq(c.mtlora.r[0], 64);
    ck_assert_int_eq(c.mtlora.r_task[0][3], 4);
    ck_assert(c.mtlora.shared_scale[2] == 4.0f && c.mtlora.task_scale[1][2] == 4.0f);
    ck_assert(c.mtlora.dropout[1] == 0.05f && c.drop_path_rate == 0.2f);
    ck_assert_int_eq(c.ntasks, 4);
    ck_assert_str_eq(c.tasks[1], "human_parts");
    ck_assert_int_eq(c.num_outputs[0], 21);
    ck_assert(c.loss_weight[3] == 10.0f && c.loss_weight[2] == 5.0f);
}
END_TEST

START_TEST(official_file_loads) {
    mt_config c;
    mt_config_default(&c);
    ck_assert_msg(mt_config_load(&c, data_path("tiny448_r32_pertask.yaml"), err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(mt_config_set_tasks(&c, "semseg,human_parts,sal,normals", err, sizeof err), MT_OK);
    ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(c.mtlora.r[3], 32);
    ck_assert_int_eq(c.mtlora.r_task[2][1], 4);
    ck_assert(c.betas[1] == 0.999f); /* "(0.9, 0.999)" as yacs reads it */
    /* a config that leaves keys out keeps config.py's defaults */
    ck_assert(c.base_lr == 5e-4f && c.weight_decay == 0.05f && c.clip_grad == 5.0f);
    /* the trainable count of the paper's r=32 model */
    mt_ctx *ctx = test_ctx();
    mt_model *m;
    ck_assert_int_eq(mt_model_create(&m, ctx, &c, 0), MT_OK);
    ck_assert_uint_eq(mt_model_param_counts(m).trainable, 6083642);
    mt_model_destroy(m);
    /* MTLoRA+ r=16: task rank = shared rank, reductions frozen with LoRA */
    mt_config_default(&c);
    ck_assert_msg(mt_config_load(&c, data_path("plus448_r16.yaml"), err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(mt_config_set_tasks(&c, "semseg,human_parts,sal,normals", err, sizeof err), MT_OK);
    ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(c.mtlora.r_task[0][0], 16);
    ck_assert_int_eq(mt_model_create(&m, ctx, &c, 0), MT_OK);
    ck_assert_uint_eq(mt_model_param_counts(m).trainable, 4298810);
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
}
END_TEST

START_TEST(counts_match_the_paper_setups) {
    /* shared rank 16 and the full fine-tuning baseline (facts file counts) */
    mt_config c;
    mt_ctx *ctx = test_ctx();
    mt_model *m;
    ck_assert_int_eq(mt_config_builtin(&c, err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&c, "MODEL.MTLORA.R_PER_TASK", "{shared: [16], semseg: [4], "
                                   "human_parts: [4], sal: [4], normals: [4]}", err, sizeof err), MT_OK);
    ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(mt_model_create(&m, ctx, &c, 0), MT_OK);
    ck_assert_uint_eq(mt_model_param_counts(m).trainable, 4953146);
    mt_model_destroy(m);
    ck_assert_int_eq(mt_config_builtin(&c, err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&c, "MODEL.MTLORA.ENABLED", "False", err, sizeof err), MT_OK);
    ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(mt_model_create(&m, ctx, &c, 0), MT_OK);
    mt_param_counts pc = mt_model_param_counts(m);
    ck_assert_uint_eq(pc.trainable, 29464442);
    ck_assert_uint_eq(pc.total, 29464442);
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
}
END_TEST

/* Trainable values of every adapter kind on the built-in Swin-T 448 (r 64,
 * four tasks), against the per-layer formulas of docs/adapters.md. */
static size_t kind_trainable(const char *kind, const char *key, const char *value) {
    mt_config c;
    mt_ctx *ctx = test_ctx();
    mt_model *m;
    ck_assert_int_eq(mt_config_builtin(&c, err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&c, "MODEL.ADAPTER.KIND", kind, err, sizeof err), MT_OK);
    if (key) ck_assert_int_eq(mt_config_set(&c, key, value, err, sizeof err), MT_OK);
    ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(mt_model_create(&m, ctx, &c, 0), MT_OK);
    mt_param_counts pc = mt_model_param_counts(m);
    if (!strcmp(kind, "decoders_only")) {
        ck_assert_uint_eq(pc.lora, 0);
        ck_assert_uint_eq(pc.trainable, pc.decoder); /* the encoder is frozen whole */
    }
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
    return pc.trainable;
}

START_TEST(adapter_kind_counts) {
    const int depths[4] = {2, 2, 6, 2}, r = 64, T = 4, nb = 3;
    size_t task_terms = 0, mtl_extra = 0, diag_extra = 0;
    for (int s = 0; s < 4; s++) {
        const size_t C = (size_t)96 << s;
        task_terms += (size_t)T * 4 * (2 * C + 5 * C + 5 * C); /* proj, fc1, fc2 at rank 4 */
        const size_t outs[4] = {3 * C, C, 4 * C, C};
        for (int b = 0; b < depths[s]; b++)
            for (int k = 0; k < 4; k++) {
                /* A + nb B + T Lambda + T nb logits, against one B of lora */
                mtl_extra += (size_t)(nb - 1) * outs[k] * r + (size_t)T * r * r + (size_t)T * nb;
                diag_extra += (size_t)(nb - 1) * outs[k] * r + (size_t)T * r + (size_t)T * nb;
            }
    }
    const size_t mtlora = kind_trainable("mtlora", NULL, NULL);
    ck_assert_uint_eq(mtlora, 8344634);
    const size_t lora = kind_trainable("lora", NULL, NULL);
    ck_assert_uint_eq(lora, mtlora - task_terms);
    ck_assert_uint_eq(kind_trainable("mtl_lora", NULL, NULL), lora + mtl_extra);
    ck_assert_uint_eq(kind_trainable("mtl_lora", "MODEL.ADAPTER.MTL_LORA.LAMBDA", "diag"),
                      lora + diag_extra);
    /* cgc: S = T shared + one expert per task of rank 64 / 8 = one rank-64
     * LoRA per layer, plus the gate (T x 64 embedding, 5 x 64 weight) */
    ck_assert_uint_eq(kind_trainable("cgc_lora", NULL, NULL), lora + (size_t)T * 64 + 5 * 64);
    ck_assert_uint_eq(kind_trainable("full_ft", NULL, NULL), 29464442);
    const size_t dec = kind_trainable("decoders_only", NULL, NULL);
    ck_assert_uint_lt(dec, lora);
    printf("trainable values: mtlora %zu, lora %zu, mtl_lora %zu, cgc_lora %zu, decoders_only %zu\n",
           mtlora, lora, lora + mtl_extra, lora + (size_t)T * 64 + 5 * 64, dec);
}
END_TEST

START_TEST(swin_s_and_b) {
    mt_config c;
    ck_assert_msg(load_text(&c, "DATA: {IMG_SIZE: 448}\nMODEL:\n  SWIN: {EMBED_DIM: 96, DEPTHS: [2, 2, 18, 2],"
                                " NUM_HEADS: [3, 6, 12, 24]}\n  MTLORA: {ENABLED: True}\nTASKS: [semseg]\n") == MT_OK, "%s", err);
    ck_assert_int_eq(c.depths[2], 18);
    ck_assert_int_eq(c.mtlora.r[1], 8); /* config.py default R */
    /* Swin-S runs: one evaluation forward at 224 */
    ck_assert_int_eq(mt_config_set(&c, "DATA.IMG_SIZE", "224", err, sizeof err), MT_OK);
    ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
    mt_ctx *ctx = test_ctx();
    mt_model *m;
    ck_assert_int_eq(mt_model_create(&m, ctx, &c, 0), MT_OK);
    float *img = alloc_uniform((size_t)3 * 224 * 224, 1, -1, 1);
    ck_assert_msg(mt_model_forward(m, ctx, img, 1, 0, 0) == MT_OK, "%s", mt_ctx_error(ctx));
    const float *lg = mt_model_logits(m, 0);
    ck_assert(lg != NULL && isfinite(lg[0]) && isfinite(lg[21 * 224 * 224 - 1]));
    free(img);
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
    ck_assert_msg(load_text(&c, "DATA: {IMG_SIZE: 448}\nMODEL:\n  SWIN: {EMBED_DIM: 128, DEPTHS: [2, 2, 18, 2],"
                                " NUM_HEADS: [4, 8, 16, 32]}\nTASKS: [normals, sal]\n") == MT_OK, "%s", err);
    ck_assert_int_eq(c.embed_dim, 128);
    ck_assert_int_eq(c.ntasks, 2);
}
END_TEST

START_TEST(opts_and_tasks) {
    mt_config c;
    ck_assert_int_eq(mt_config_builtin(&c, err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&c, "MODEL.MTLORA.R", "[16, 16, 16, 16]", err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&c, "DATA.BATCH_SIZE", "8", err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&c, "TRAIN.BASE_LR", "1e-3", err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set_tasks(&c, "sal, normals", err, sizeof err), MT_OK);
    /* R_PER_TASK of the built-in still names shared = 64 and wins over R */
    ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(c.mtlora.r[0], 64);
    ck_assert_int_eq(c.batch_size, 8);
    ck_assert(c.base_lr == 1e-3f);
    ck_assert_int_eq(c.ntasks, 2);
    ck_assert_str_eq(c.tasks[0], "sal");
}
END_TEST

static void expect_refused(const char *text, const char *needle) {
    mt_config c;
    mt_status st = load_text(&c, text);
    ck_assert_msg(st != MT_OK, "accepted: %s", text);
    ck_assert_msg(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
}

START_TEST(refusals_name_the_key) {
    expect_refused("MODEL:\n  SWIN:\n    PATCH_SIZ: 4\nTASKS: [sal]\n", "MODEL.SWIN.PATCH_SIZ");
    expect_refused("NOT_A_KEY: 1\n", "unknown key NOT_A_KEY");
    expect_refused("MODEL:\n  SWIN:\n    EMBED_DIM: 9.5\nTASKS: [sal]\n", "MODEL.SWIN.EMBED_DIM");
    expect_refused("MODEL:\n  MTLORA:\n    SHARED_MODE: addition\nTASKS: [sal]\n", "SHARED_MODE");
    expect_refused("MODEL:\n  MTLORA:\n    ENABLED: maybe\nTASKS: [sal]\n", "MODEL.MTLORA.ENABLED");
    expect_refused("TASKS: [semseg, depth]\n", "unknown task 'depth'");
    expect_refused("TASKS: [sal, sal]\n", "twice");
    expect_refused("DATA: {IMG_SIZE: 416}\nTASKS: [sal]\n", "does not divide");
    expect_refused("DATA: {IMG_SIZE: 450}\nTASKS: [sal]\n", "patch size");
    expect_refused("MODEL:\n  SWIN:\n    NUM_HEADS: [3, 6, 12]\nTASKS: [sal]\n", "NUM_HEADS");
    expect_refused("MODEL:\n  SWIN:\n    NUM_HEADS: [5, 6, 12, 24]\nTASKS: [sal]\n", "heads must divide");
    expect_refused("MODEL:\n  MTLORA:\n    ENABLED: True\n    R: [4, 4]\nTASKS: [sal]\n", "MODEL.MTLORA.R");
    expect_refused("MODEL:\n  MTLORA:\n    ENABLED: True\n    R_PER_TASK:\n      sal: [4]\nTASKS: [sal]\n",
                   "R_PER_TASK.shared");
    expect_refused("MODEL:\n  MTLORA:\n    ENABLED: True\n    R_PER_TASK:\n      shared: [4]\nTASKS: [sal]\n",
                   "R_PER_TASK.sal");
    expect_refused("MODEL:\n  MTLORA:\n    ENABLED: True\n    FC1_ENABLED: no way\nTASKS: [sal]\n",
                   "MODEL.MTLORA.FC1_ENABLED");
    expect_refused("MODEL: {DROP_RATE: 0.1}\nTASKS: [sal]\n", "DROP_RATE");
    expect_refused("MODEL:\n  SWIN: [1, 2]\n", "MODEL.SWIN");
    expect_refused("MODEL:\n  SWIN:\n    EMBED_DIM: [96\n", "YAML error");
    expect_refused("DATA: {IMG_SIZE: 448}\n", "TASKS");
    expect_refused("MODEL:\n  ADAPTER:\n    KIND: dora\nTASKS: [sal]\n", "MODEL.ADAPTER.KIND");
    expect_refused("MODEL:\n  ADAPTER:\n    KIND: lora\n    FC1: loha\nTASKS: [sal]\n",
                   "MODEL.ADAPTER.FC1");
    expect_refused("MODEL:\n  ADAPTER:\n    KIND: mtl_lora\n    PROJ: mtlora\nTASKS: [sal]\n",
                   "MODEL.ADAPTER.PROJ");
    expect_refused("MODEL:\n  MTLORA: {ENABLED: True}\n  ADAPTER:\n    QKV: cgc_lora\nTASKS: [sal]\n",
                   "MODEL.ADAPTER.QKV");
    expect_refused("MODEL:\n  ADAPTER:\n    KIND: full_ft\n    FC2: lora\nTASKS: [sal]\n",
                   "MODEL.ADAPTER.FC2");
    expect_refused("MODEL:\n  ADAPTER:\n    KIND: mtl_lora\n    MTL_LORA: {LAMBDA: tri}\nTASKS: [sal]\n",
                   "MODEL.ADAPTER.MTL_LORA.LAMBDA");
    expect_refused("MODEL:\n  ADAPTER:\n    KIND: mtl_lora\n    MTL_LORA: {NUM_B: 0}\nTASKS: [sal]\n",
                   "MODEL.ADAPTER.MTL_LORA.NUM_B");
    expect_refused("MODEL:\n  ADAPTER:\n    KIND: mtl_lora\n    MTL_LORA: {TAU: 0}\nTASKS: [sal]\n",
                   "MODEL.ADAPTER.MTL_LORA.TAU");
    expect_refused("MODEL:\n  ADAPTER:\n    KIND: cgc_lora\n    CGC_LORA: {TASK_EXPERTS: 9}\nTASKS: [sal]\n",
                   "MODEL.ADAPTER.CGC_LORA");
    expect_refused("MODEL:\n  ADAPTER:\n    KIND: cgc_lora\n    CGC_LORA: {DROPOUT: 1.5}\nTASKS: [sal]\n",
                   "DROPOUT");
    mt_config c;
    mt_config_default(&c);
    ck_assert_int_eq(mt_config_load(&c, "/nonexistent/x.yaml", err, sizeof err), MT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.yaml"));
    ck_assert_int_ne(mt_config_set(&c, "MODEL.SWIN.WINDOW_SIZE", "seven", err, sizeof err), MT_OK);
    ck_assert_ptr_nonnull(strstr(err, "MODEL.SWIN.WINDOW_SIZE"));
}
END_TEST

/* Every key with bounds or allowed values (the key table) is refused by
 * name where the value is read, here --opts on the built-in model (files:
 * test_config_hostile.c); its edge values pass through finalize. */
START_TEST(bounds_refuse_by_key) {
    static const char *const bad[][2] = {
        {"DATA.BATCH_SIZE", "0"}, {"DATA.IMG_SIZE", "0"}, {"RUN.BUCKET_MB", "0"},
        {"RUN.BUCKET_MB", "1025"}, {"RUN.LOG_EVERY", "0"}, {"RUN.CHECKPOINT_EVERY", "-1"},
        {"RUN.KEEP_CHECKPOINTS", "0"}, {"RUN.MAX_STEPS", "-1"}, {"RUN.EVAL_EVERY", "-1"},
        {"RUN.STEP_TIMEOUT", "-1"}, {"RUN.MAX_BAD_STEPS", "0"}, {"MODEL.DROP_RATE", "0.5"},
        {"MODEL.DROP_PATH_RATE", "1"}, {"MODEL.SWIN.PATCH_SIZE", "0"}, {"MODEL.SWIN.IN_CHANS", "0"},
        {"MODEL.SWIN.EMBED_DIM", "0"}, {"MODEL.SWIN.DEPTHS", "[2, 0, 6, 2]"},
        {"MODEL.SWIN.NUM_HEADS", "[3, 6, 0, 24]"}, {"MODEL.SWIN.WINDOW_SIZE", "0"},
        {"MODEL.SWIN.MLP_RATIO", "0"}, {"MODEL.DECODER_CHANNELS", "[18, 36, 72, 0]"},
        {"MODEL.ADAPTER.KIND", "none"}, {"MODEL.ADAPTER.QKV", "dora"},
        {"MODEL.ADAPTER.MTL_LORA.NUM_B", "17"}, {"MODEL.ADAPTER.MTL_LORA.TAU", "-1"},
        {"MODEL.ADAPTER.MTL_LORA.LAMBDA", "tri"}, {"MODEL.ADAPTER.MTL_LORA.DROPOUT", "1"},
        {"MODEL.ADAPTER.CGC_LORA.SHARED_EXPERTS", "17"}, {"MODEL.ADAPTER.CGC_LORA.TASK_EXPERTS", "0"},
        {"MODEL.ADAPTER.CGC_LORA.GATE_DIM", "4097"}, {"MODEL.ADAPTER.CGC_LORA.DROPOUT", "-0.1"},
        {"TRAIN.EPOCHS", "0"}, {"TRAIN.WARMUP_EPOCHS", "-1"}, {"TRAIN.ACCUMULATION_STEPS", "0"},
        {"TRAIN.LR_SCHEDULER.NAME", "step"}, {"TRAIN.OPTIMIZER.BETAS", "[0.9, 1]"},
        {"TRAIN.OPTIMIZER.EPS", "0"}, {"TRAIN.WEIGHT_DECAY", "-0.01"}, {"TRAIN.CLIP_GRAD", "-5"},
        {"TRAIN.BASE_LR", "-1e-3"}, {"TRAIN.WARMUP_LR", "1001"}, {"MODEL.MTLORA.R", "[4097]"},
        {"MODEL.SWIN.DEPTHS", "[2, 65]"}, {"MODEL.SWIN.EMBED_DIM", "65537"},
        {"MODEL.MTLORA.DROPOUT", "[1]"}, {"MODEL.MTLORA.SHARED_SCALE", "[-1]"},
        {"RUN.STL_BASELINES", "[0, 1, 1, 1]"}, {"TRAIN.START_EPOCH", "-1"},
    };
    static const char *const edge[][2] = {
        {"RUN.BUCKET_MB", "1024"}, {"RUN.STEP_TIMEOUT", "0"}, {"MODEL.DROP_PATH_RATE", "0"},
        {"MODEL.ADAPTER.MTL_LORA.NUM_B", "16"}, {"MODEL.ADAPTER.CGC_LORA.SHARED_EXPERTS", "16"},
        {"MODEL.ADAPTER.CGC_LORA.TASK_EXPERTS", "4"}, {"MODEL.ADAPTER.CGC_LORA.GATE_DIM", "4096"},
        {"MODEL.ADAPTER.QKV", "none"}, {"MODEL.ADAPTER.PROJ", "''"}, {"TRAIN.WARMUP_EPOCHS", "0"},
        {"TRAIN.OPTIMIZER.BETAS", "[0, 0.9999]"}, {"TRAIN.OPTIMIZER.EPS", "1"},
        {"TRAIN.WEIGHT_DECAY", "0"}, {"TRAIN.CLIP_GRAD", "0"}, {"TRAIN.BASE_LR", "1000"},
        {"MODEL.MTLORA.R", "[4096]"},
    };
    mt_config c;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(mt_config_builtin(&c, err, sizeof err), MT_OK);
        ck_assert_msg(mt_config_set(&c, bad[i][0], bad[i][1], err, sizeof err) != MT_OK,
                      "%s %s accepted", bad[i][0], bad[i][1]);
        ck_assert_msg(!strncmp(err, "--opts: ", 8) && strstr(err, bad[i][0]) != NULL,
                      "message '%s' lacks '--opts: %s'", err, bad[i][0]);
    }
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        ck_assert_int_eq(mt_config_builtin(&c, err, sizeof err), MT_OK);
        ck_assert_msg(mt_config_set(&c, edge[i][0], edge[i][1], err, sizeof err) == MT_OK, "%s", err);
        ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s %s: %s", edge[i][0],
                      edge[i][1], err);
    }
    /* the defaults satisfy their own bounds */
    mt_config_default(&c);
    ck_assert_int_eq(mt_config_set_tasks(&c, "sal", err, sizeof err), MT_OK);
    ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
}
END_TEST

/* The effective configuration written to RUN.DIR loads back to the same
 * configuration, for the built-in one, an official file with per-task
 * ranks and scales, and our own RUN.* keys. */
static void roundtrip(mt_config *a) {
    char path[] = "/tmp/mtlora_cfg_XXXXXX", err[512];
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_msg(mt_config_finalize(a, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_msg(mt_config_write_yaml(a, path, err, sizeof err) == MT_OK, "%s", err);
    mt_config b;
    mt_config_default(&b);
    mt_status st = mt_config_load(&b, path, err, sizeof err);
    if (!st) st = mt_config_finalize(&b, err, sizeof err);
    ck_assert_msg(st == MT_OK, "reloading the written config: %s", err);
    ck_assert_msg(memcmp(a, &b, sizeof b) == 0, "the written config does not load back the same");
    unlink(path);
}

START_TEST(effective_config_roundtrips) {
    char err[512];
    mt_config a;
    ck_assert_int_eq(mt_config_builtin(&a, err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&a, "RUN.SYNC_BN", "True", err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&a, "TRAIN.BASE_LR", "0.000123456789", err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&a, "RUN.STL_BASELINES", "[0.7, 0.6, 0.65, 17.5]", err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&a, "DATA.DATA_PATH", "/data/\"quoted\" shards", err, sizeof err), MT_OK);
    roundtrip(&a);
    const char *dir = getenv("MTLORA_TEST_DATA");
    char file[1024];
    snprintf(file, sizeof file, "%s/tiny448_r32_pertask.yaml", dir ? dir : "tests/data");
    mt_config_default(&a);
    ck_assert_msg(mt_config_load(&a, file, err, sizeof err) == MT_OK, "%s", err);
    if (a.ntasks == 0)
        ck_assert_int_eq(mt_config_set_tasks(&a, "semseg,human_parts,sal,normals", err, sizeof err), MT_OK);
    ck_assert_int_gt(a.raw.n_r_per_task, 0); /* the per-task map is exercised */
    roundtrip(&a);
    /* the adapter keys */
    ck_assert_int_eq(mt_config_builtin(&a, err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&a, "MODEL.ADAPTER.KIND", "mtl_lora", err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&a, "MODEL.ADAPTER.FC2", "lora", err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&a, "MODEL.ADAPTER.FC1", "none", err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&a, "MODEL.ADAPTER.MTL_LORA.LAMBDA", "diag", err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&a, "MODEL.ADAPTER.MTL_LORA.TAU", "0.25", err, sizeof err), MT_OK);
    roundtrip(&a);
    ck_assert_int_eq(a.adapter.paths, 4);
    ck_assert_int_eq(a.adapter.layer_kind[MT_LAYER_FC1], MT_ADAPTER_NONE);
    ck_assert_int_eq(a.adapter.layer_kind[MT_LAYER_FC2], MT_ADAPTER_LORA);
    ck_assert_int_eq(a.adapter.layer_kind[MT_LAYER_QKV], MT_ADAPTER_MTL_LORA);
    ck_assert_int_eq(mt_config_builtin(&a, err, sizeof err), MT_OK);
    ck_assert_int_eq(mt_config_set(&a, "MODEL.ADAPTER.KIND", "decoders_only", err, sizeof err), MT_OK);
    roundtrip(&a);
    ck_assert_int_eq(a.adapter.baseline, MT_BASELINE_DECODERS_ONLY);
    ck_assert_int_eq(a.adapter.paths, 1);
}
END_TEST

/* The YAML goes through the atomic writer: nothing is left beside the
 * target, and a target that cannot be written is refused by name. */
START_TEST(yaml_written_atomically) {
    char dir[] = "/tmp/mtlora_cfgdir_XXXXXX", path[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    mt_config c;
    ck_assert_int_eq(mt_config_builtin(&c, err, sizeof err), MT_OK);
    ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_msg(mt_config_write_yaml(&c, path, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_msg(mt_config_write_yaml(&c, path, err, sizeof err) == MT_OK, "%s", err); /* over it */
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));)
        ck_assert_msg(!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
                      !strcmp(e->d_name, "config.yaml"), "%s left in %s", e->d_name, dir);
    closedir(d);
    unlink(path);
    rmdir(dir);
    ck_assert_int_eq(mt_config_write_yaml(&c, "/nonexistent_dir/config.yaml", err, sizeof err), MT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent_dir/config.yaml"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("yaml");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, builtin_is_swin_t_448_r64);
    tcase_add_test(tc, effective_config_roundtrips);
    tcase_add_test(tc, official_file_loads);
    tcase_add_test(tc, counts_match_the_paper_setups);
    tcase_add_test(tc, swin_s_and_b);
    tcase_add_test(tc, adapter_kind_counts);
    tcase_add_test(tc, opts_and_tasks);
    tcase_add_test(tc, refusals_name_the_key);
    tcase_add_test(tc, bounds_refuse_by_key);
    tcase_add_test(tc, yaml_written_atomically);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
