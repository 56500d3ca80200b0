/* config.h - run configuration with the official MTLoRA key names.
 *
 * A YAML file in the official format (the configs/mtlora/tiny_448 YAML files of
 * scale-lab/MTLoRA) loads unchanged: every key of the official config.py is
 * known; keys we do not use are accepted and ignored, keys nobody knows are
 * refused by name. Values a file leaves out keep the official defaults.
 * Lists given with one element are repeated per stage, as config.py does.
 * Settings of the official code that mtlora does not implement are refused
 * with the key's name when they are set to a non-default value. */
#ifndef MTLORA_CONFIG_H
#define MTLORA_CONFIG_H

#include <stddef.h>
#include "mtlora/base/status.h"

#define MT_MAX_STAGES 8
#define MT_MAX_TASKS 6
#define MT_TASK_NAME_LEN 16

typedef enum { MT_TASK_SEMSEG, MT_TASK_HUMAN_PARTS, MT_TASK_SAL, MT_TASK_NORMALS, MT_TASK_EDGE } mt_task_kind;

typedef struct {
    int enabled;
    int r[MT_MAX_STAGES];                        /* shared rank per stage */
    int r_task[MT_MAX_TASKS][MT_MAX_STAGES];     /* task rank per task and stage */
    float shared_scale[MT_MAX_STAGES];
    float task_scale[MT_MAX_TASKS][MT_MAX_STAGES];
    float dropout[MT_MAX_STAGES];
    int qkv_enabled, proj_enabled, fc1_enabled, fc2_enabled, downsampler_enabled;
    int freeze_pretrained;
} mt_mtlora_config;

/* Adapter kinds (docs/adapters.md). MT_ADAPTER_MTLORA is the official
 * MTLoRALinear (shared term, task terms in the last block of a stage). */
typedef enum {
    MT_ADAPTER_NONE, MT_ADAPTER_MTLORA, MT_ADAPTER_LORA, MT_ADAPTER_MTL_LORA, MT_ADAPTER_CGC_LORA
} mt_adapter_kind;

/* Baselines chosen by MODEL.ADAPTER.KIND. */
typedef enum { MT_BASELINE_NONE, MT_BASELINE_FULL_FT, MT_BASELINE_DECODERS_ONLY } mt_baseline;

enum { MT_LAYER_QKV, MT_LAYER_PROJ, MT_LAYER_FC1, MT_LAYER_FC2, MT_LAYER_KINDS };

typedef struct {
    /* as written (MODEL.ADAPTER.*) */
    char kind[24];                 /* KIND: mtlora lora mtl_lora cgc_lora full_ft decoders_only */
    char layer[MT_LAYER_KINDS][16];/* QKV PROJ FC1 FC2: "" = KIND, or none/lora/mtl_lora/... */
    int mtl_num_b;                 /* MTL_LORA.NUM_B: up-projections */
    float mtl_tau;                 /* MTL_LORA.TAU: softmax temperature of the mixing */
    char mtl_lambda[8];            /* MTL_LORA.LAMBDA: full | diag */
    float mtl_scale, mtl_dropout;  /* MTL_LORA.SCALE, DROPOUT */
    int cgc_shared;                /* CGC_LORA.SHARED_EXPERTS (0: one per task) */
    int cgc_task;                  /* CGC_LORA.TASK_EXPERTS per task */
    int cgc_gate_dim;              /* CGC_LORA.GATE_DIM: task embedding size */
    float cgc_scale, cgc_dropout;  /* CGC_LORA.SCALE, DROPOUT */
    /* derived by mt_config_finalize */
    mt_baseline baseline;
    mt_adapter_kind layer_kind[MT_LAYER_KINDS];
    int mtl_diag;
    int n_shared_experts;          /* cgc: S */
    int paths;                     /* encoder paths: ntasks when a layer is task-dependent
                                      (mtl_lora, cgc_lora), else 1 */
} mt_adapter_config;

const char *mt_adapter_kind_name(mt_adapter_kind k);

/* A per-task list as written under R_PER_TASK / SCALE_PER_TASK (names may
 * include tasks not trained, and 'shared'); resolved by mt_config_finalize. */
typedef struct {
    char name[MT_TASK_NAME_LEN];
    int n;
    float v[MT_MAX_STAGES];
} mt_named_list;

typedef struct {
    /* DATA */
    int img_size, batch_size;
    /* MODEL.SWIN */
    int patch_size, in_chans, embed_dim, nstages, depths[MT_MAX_STAGES], heads[MT_MAX_STAGES];
    int window_size, qkv_bias;
    float mlp_ratio;
    /* MODEL */
    float drop_path_rate, drop_rate;
    int decoder_channels[MT_MAX_STAGES];
    mt_mtlora_config mtlora;
    mt_adapter_config adapter;
    /* tasks (TASKS: [...] or --tasks) */
    int ntasks;
    char tasks[MT_MAX_TASKS][MT_TASK_NAME_LEN];
    mt_task_kind task_kind[MT_MAX_TASKS];
    int num_outputs[MT_MAX_TASKS];
    float loss_weight[MT_MAX_TASKS];
    /* TRAIN */
    int epochs, warmup_epochs, accumulation_steps, start_epoch;
    float base_lr, warmup_lr, min_lr, weight_decay, clip_grad, optimizer_eps;
    float betas[2];
    char lr_scheduler[16];
    int freeze_patch_embed, freeze_layer_norm, freeze_rel_bias, freeze_downsample_reduction;
    int seed;
    /* Mixed precision (docs/performance.md). AMP_ENABLE (the official key,
     * True by default; --disable_amp) asks for bf16 matmuls in the frozen
     * encoder; AMP.MATMUL auto|bf16|f32 says when: auto where this CPU's
     * bf16 matmul is known to beat float32 (mt_model_precision says which
     * ran and why). TRAIN.USE_CHECKPOINT (--use-checkpoint): recompute each
     * Swin block's activations in the backward instead of keeping them. */
    int amp_enable;
    char amp_matmul[8];
    int use_checkpoint;
    char name[128];
    /* MODEL.PRETRAINED: ImageNet Swin weights (safetensors, plain names) for
     * mtlora_dist; empty: the official random initialisation */
    char pretrained[1024];
    /* DATA.DATA_PATH: for mtlora_dist, the mtlora-pack output directory */
    char data_path[1024];
    /* RUN.*: mtlora_dist's own keys (not in the official config) */
    struct {
        char dir[1024];      /* RUN.DIR: run directory (logs, checkpoints) */
        float bucket_mb;     /* RUN.BUCKET_MB: gradient bucket size */
        int log_every;       /* RUN.LOG_EVERY: steps between log records */
        int checkpoint_every;/* RUN.CHECKPOINT_EVERY: steps (0: only at the end) */
        int keep_checkpoints;/* RUN.KEEP_CHECKPOINTS */
        int max_steps;       /* RUN.MAX_STEPS: stop after this many steps (0: all epochs) */
        int eval_every;      /* RUN.EVAL_EVERY: epochs between evaluations (0: at the end) */
        int eval_preview;    /* RUN.EVAL_PREVIEW: panels of the first N validation images per evaluation */
        int sync_bn;         /* RUN.SYNC_BN: batch-norm statistics over all ranks */
        int lr_scaling;      /* RUN.LR_SCALING: scale LRs by batch * world / 512 as main.py */
        int step_timeout;    /* RUN.STEP_TIMEOUT: seconds without progress before a rank gives up */
        int max_bad_steps;   /* RUN.MAX_BAD_STEPS: non-finite steps in a row before stopping */
        char bad_records[8]; /* RUN.BAD_RECORDS: skip | stop (a corrupt training record) */
        char timeline[1024]; /* RUN.TIMELINE: trace-event JSON of every rank's spans ("": off) */
        int timeline_steps;  /* RUN.TIMELINE_STEPS: the last N updates kept in it */
        float stl[MT_MAX_TASKS]; /* RUN.STL_BASELINES: single-task scores per task, for Delta_m */
        int n_stl;               /* 0: the published Swin-T baselines */
    } run;
    /* As written, before per-stage expansion (lengths 1 or nstages). */
    struct {
        int n_depths, n_heads, n_decoder_channels, n_r, n_shared_scale, n_dropout;
        float r[MT_MAX_STAGES], shared_scale[MT_MAX_STAGES], dropout[MT_MAX_STAGES];
        mt_named_list r_per_task[MT_MAX_TASKS + 4], scale_per_task[MT_MAX_TASKS + 4];
        int n_r_per_task, n_scale_per_task;
    } raw;
} mt_config;

/* The official defaults of config.py (MTLoRA off, 224x224, no tasks). */
void mt_config_default(mt_config *cfg);

/* The built-in model: defaults plus the official
 * configs/mtlora/tiny_448/mtlora_tiny_448_r64_scale4_pertask.yaml and
 * TASKS [semseg, human_parts, sal, normals]. Not finalized. */
mt_status mt_config_builtin(mt_config *cfg, char *err, size_t errlen);

/* The programs' starting point: the defaults merged with the YAML file
 * `path`, or the built-in model when path is NULL. Not finalized. */
mt_status mt_config_start(mt_config *cfg, const char *path, char *err, size_t errlen);

/* Merges a YAML file into cfg. Errors name the file, the line and the key.
 * Refused: a file over 1 MiB, bytes that are not UTF-8 text, a second YAML
 * document, more than 64 aliases or aliases that expand the document past
 * a small multiple of its size, nesting deeper than 32, a key given twice,
 * and every value outside its key's syntax or bounds (an integer key takes
 * no fraction or exponent; floats are finite floats). */
mt_status mt_config_load(mt_config *cfg, const char *path, char *err, size_t errlen);

/* The same from len bytes of text in memory (need not end in NUL); name
 * stands for the file in messages. */
mt_status mt_config_load_buffer(mt_config *cfg, const char *text, size_t len, const char *name,
                                char *err, size_t errlen);

/* Sets KEY to VALUE (a YAML scalar or flow list, e.g. "[64, 64]"), as the
 * official --opts does, through the same parser and bounds as a file;
 * errors start with "--opts" and name the key. */
mt_status mt_config_set(mt_config *cfg, const char *key, const char *value, char *err,
                        size_t errlen);

/* The official command line's `--opts KEY VALUE ...`: argv[*i] is "--opts";
 * the pairs up to the next "--flag" are appended to opts (*n of cap used),
 * and *i moves to the last argument taken. MT_ERR_ARG, the reason in err,
 * for a key without a value or more than cap pairs. */
mt_status mt_opts_collect(int argc, char **argv, int *i, const char *opts[][2], int *n, int cap,
                          char *err, size_t errlen);

/* ---- the official main.py command line (src/config/config_flags.c) ----
 *
 * One table row per flag of the official parse_option(), saying what mtlora
 * does with it. Programs apply key rows after --opts, as update_config
 * does; docs/guide.md lists the table. */
typedef enum {
    MT_FLAG_KEY,       /* sets `key`: to `value` (a switch) or to the flag's argument */
    MT_FLAG_PROGRAM,   /* the program acts on it (note says how) */
    MT_FLAG_NO_EFFECT, /* accepted; changes nothing (note says why) */
    MT_FLAG_REFUSED    /* refused; note is the reason */
} mt_flag_use;

typedef struct {
    const char *name;    /* "--batch-size" */
    int arity;           /* 0 a switch, 1 one argument, -1 KEY VALUE pairs (--opts) */
    mt_flag_use use;
    const char *key;     /* MT_FLAG_KEY: the key set */
    const char *value;   /* the value a switch (or `when`) sets; NULL: the argument */
    const char *choices; /* argparse's choices=, comma separated, or NULL */
    const char *when;    /* the key is set only for this argument (--amp-opt-level O0) */
    const char *zero;    /* the value "0" stands for (main.py's treatment of 0) */
    int from_file;       /* the argument names a JSON file whose object is the value */
    const char *note;    /* what is done, or (MT_FLAG_REFUSED) why not: one line */
} mt_official_flag;

extern const mt_official_flag MT_OFFICIAL_FLAGS[];
extern const size_t MT_N_OFFICIAL_FLAGS;

/* The row of an exact flag name, or NULL. */
const mt_official_flag *mt_official_flag_find(const char *name);

/* The official main.py switches that stand for a config key: returns the
 * key and sets *value for "--disable_amp" (AMP_ENABLE False) and
 * "--use-checkpoint" (TRAIN.USE_CHECKPOINT True), NULL for any other
 * argument. Programs apply them after --opts, as update_config does. */
const char *mt_config_flag_key(const char *arg, const char **value);

/* A program's own long flag, matched beside the official ones. */
typedef struct {
    const char *name; /* "--data" */
    int arity;        /* 0 a switch, 1 one argument */
} mt_cli_flag;

typedef struct {
    const char *name;            /* the full name matched (a row's or an own flag's) */
    const mt_official_flag *row; /* the official row, or NULL for an own flag */
    int own;                     /* index into own, or -1 */
    int arity;
    const char *value;           /* the argument (arity 1), else NULL */
} mt_flag_match;

/* argv[*i] matched as argparse does among the official flags and own[0..nown):
 * the exact name, "--name=value", or a prefix of exactly one long flag
 * ("--epoch=300" is --epochs); an arity-1 flag takes the "=" part or the next
 * word (*i moves on), which must not start with "--"; a switch takes no "=";
 * choices are checked. MT_ERR_ARG, the reason in err ("unknown option
 * '--x'", "ambiguous option: --re could match --resume, --resume-backbone",
 * "--tag: expected one argument"), otherwise. */
mt_status mt_flag_next(int argc, char **argv, int *i, const mt_cli_flag *own, int nown,
                       mt_flag_match *m, char *err, size_t errlen);

/* Applies a MT_FLAG_KEY row with its argument (NULL for a switch) through
 * the key's parser and bounds; errors start with the flag's name. */
mt_status mt_config_set_flag(mt_config *cfg, const mt_official_flag *f, const char *arg, char *err,
                             size_t errlen);

/* Sets the task list from "semseg,human_parts" (as --tasks). */
mt_status mt_config_set_tasks(mt_config *cfg, const char *list, char *err, size_t errlen);

/* Checks the combination (stage grids divisible by the window, heads divide
 * dims, ranks positive, supported options) and fills derived values. Must
 * be called after the last load/set and before the config is used. */
mt_status mt_config_finalize(mt_config *cfg, char *err, size_t errlen);

int mt_config_task_index(const mt_config *cfg, const char *name);

/* The shortest decimal that reads back as the same float ("0.1", not
 * "0.100000001"), as the written configuration uses. */
void mt_config_format_float(char *buf, size_t cap, float v);

/* Writes cfg as YAML with the official key names (and RUN.*), such that
 * loading it into mt_config_default and finalizing gives the same
 * configuration. Written atomically (mtlora/io/atomic_file.h): a reader
 * sees the old file or the whole new one. */
mt_status mt_config_write_yaml(const mt_config *cfg, const char *path, char *err, size_t errlen);

/* The text mt_config_write_yaml writes, in a malloc'ed NUL-terminated
 * buffer (*len bytes) the caller frees. Strings are written double-quoted
 * with every character YAML would not keep as it is escaped, so any valid
 * UTF-8 string loads back byte for byte; a string that is not valid UTF-8
 * (set by a program, never by loading) is refused naming its key. */
mt_status mt_config_yaml_text(const mt_config *cfg, char **text, size_t *len, char *err,
                              size_t errlen);

#endif
