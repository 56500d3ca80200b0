/* config_flags.c - the official main.py command line: one row per flag of
 * scale-lab/MTLoRA's parse_option() saying what mtlora does with it (sets a
 * config key, is the program's to act on, changes nothing, or is refused
 * and why), and argparse's way of matching a word to a flag (exact name,
 * "--flag=value", a unique prefix of a long flag). docs/guide.md has the
 * same table for people; mtlora_dist applies it (launch/mtlora_dist.c) and
 * bench/train_step the key switches (mt_config_flag_key). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config_keys.h"

#define fail mt_errf

#define KEY(n, a, k, v, note) {n, a, MT_FLAG_KEY, k, v, NULL, NULL, NULL, 0, note}
#define PROGRAM(n, a, note) {n, a, MT_FLAG_PROGRAM, NULL, NULL, NULL, NULL, NULL, 0, note}
#define NO_EFFECT(n, a, note) {n, a, MT_FLAG_NO_EFFECT, NULL, NULL, NULL, NULL, NULL, 0, note}
#define REFUSED(n, a, note) {n, a, MT_FLAG_REFUSED, NULL, NULL, NULL, NULL, NULL, 0, note}

/* In main.py's order. Notes of refused flags are printed as the reason. */
const mt_official_flag MT_OFFICIAL_FLAGS[] = {
    PROGRAM("--cfg", 1, "the configuration file, as --config"),
    PROGRAM("--opts", -1, "KEY VALUE pairs up to the next --flag, applied after the file"),
    KEY("--batch-size", 1, "DATA.BATCH_SIZE", NULL,
        "per rank (per GPU in main.py); 0, which main.py silently ignores, is refused"),
    PROGRAM("--ckpt-freq", 1,
            "a checkpoint at the end of every N-th epoch and at the end of training (0: every epoch, "
            "as main.py's SAVE_FREQ 1)"),
    {"--eval-freq", 1, MT_FLAG_KEY, "RUN.EVAL_EVERY", NULL, NULL, NULL, "1", 0,
     "RUN.EVAL_EVERY: evaluate at the end of every N-th epoch and at the end (0: every epoch, as main.py)"},
    KEY("--epochs", 1, "TRAIN.EPOCHS", NULL, "TRAIN.EPOCHS; 0, which main.py ignores, is refused"),
    REFUSED("--data-path", 1,
            "main.py reads NYUD-v2 from it (and --pascal replaces it); mtlora trains on PASCAL-Context "
            "only: give --pascal DIR (PASCAL_MT) or --data SHARD_DIR"),
    REFUSED("--zip", 0,
            "zipped ImageNet folders (for PASCAL main.py only swaps its training sampler); mtlora reads "
            "HDF5 shards with its own sampler"),
    {"--cache-mode", 1, MT_FLAG_NO_EFFECT, NULL, NULL, "no,full,part", NULL, NULL, 0,
     "caches zipped ImageNet images in memory; nothing to cache with PASCAL shards"},
    KEY("--pretrained", 1, "MODEL.PRETRAINED", NULL,
        "MODEL.PRETRAINED: ImageNet Swin weights for the encoder (safetensors with plain Swin names; "
        "the file goes to the model loader as it is)"),
    PROGRAM("--resume", 1,
            "an mtlora checkpoint resumes training (also auto, never); any other file is loaded as the "
            "whole model's weights (MODEL.RESUME): evaluated with --eval, else trained from epoch 0"),
    KEY("--accumulation-steps", 1, "TRAIN.ACCUMULATION_STEPS", NULL,
        "TRAIN.ACCUMULATION_STEPS, as main.py: micro-batch gradients summed and the LR scaled by N too"),
    KEY("--use-checkpoint", 0, "TRAIN.USE_CHECKPOINT", "True",
        "TRAIN.USE_CHECKPOINT True: recompute each Swin block in the backward"),
    KEY("--disable_amp", 0, "AMP_ENABLE", "False", "AMP_ENABLE False: every matmul in f32"),
    {"--amp-opt-level", 1, MT_FLAG_KEY, "AMP_ENABLE", "False", "O0,O1,O2", "O0", NULL, 0,
     "O0: AMP_ENABLE False; O1, O2: nothing (apex levels, deprecated in main.py too)"},
    PROGRAM("--output", 1, "RUN.DIR becomes OUTPUT/MODEL.NAME/TAG (default OUTPUT output, TAG default)"),
    KEY("--name", 1, "MODEL.NAME", NULL, "MODEL.NAME (also the middle of the --output path)"),
    PROGRAM("--tag", 1, "RUN.DIR becomes OUTPUT/MODEL.NAME/TAG (default OUTPUT output)"),
    PROGRAM("--eval", 0,
            "evaluate only: no training (--steps 0), the validation split's official scores"),
    REFUSED("--throughput", 0,
            "the inference throughput test is not implemented: time training with --bench or "
            "bench/train_step"),
    NO_EFFECT("--local_rank", 1, "torch.distributed.launch's; mpirun gives each rank its place"),
    NO_EFFECT("--local-rank", 1, "torch.distributed.launch's; mpirun gives each rank its place"),
    NO_EFFECT("--fused_window_process", 0,
              "a fused CUDA kernel for the same window shift and partition; mtlora has its own"),
    NO_EFFECT("--fused_layernorm", 0, "apex's fused LayerNorm, the same result"),
    KEY("--optim", 1, "TRAIN.OPTIMIZER.NAME", NULL,
        "TRAIN.OPTIMIZER.NAME: adamw (main.py's default) works, the others are refused by the key"),
    PROGRAM("--tasks", 1, "the task list, comma separated, applied after --opts as in main.py"),
    REFUSED("--nyud", 1, "NYUD-v2 is not supported: mtlora trains on PASCAL-Context (--pascal DIR)"),
    PROGRAM("--pascal", 1,
            "a PASCAL_MT directory: rank 0 packs it into HDF5 shards once (a cache, reused while the "
            "source is unchanged) and the run trains from them as with --data"),
    REFUSED("--eval-training-freq", 1,
            "scores on training batches are not implemented; mtlora scores the validation split "
            "(--eval-freq)"),
    KEY("--resume-backbone", 1, "MODEL.PRETRAINED", NULL,
        "MODEL.PRETRAINED: the encoder's weights from an ImageNet Swin file, as --pretrained"),
    PROGRAM("--freeze-backbone", 0,
            "MODEL.ADAPTER.KIND decoders_only (only decoders train); refused with MODEL.MTLORA.ENABLED, "
            "as main.py asserts"),
    NO_EFFECT("--skip_initial_validation", 0, "mtlora runs no validation before training"),
    {"--decoder_map", 1, MT_FLAG_KEY, "MODEL.DECODER_HEAD", NULL, NULL, NULL, NULL, 1,
     "a JSON file {task: head} merged into MODEL.DECODER_HEAD; only hrnet heads are implemented"},
    PROGRAM("--skip_decoder", 0,
            "with --resume-backbone nothing to skip; with --resume refused: loading a model without "
            "its decoders is not implemented"),
    NO_EFFECT("--disable_wandb", 0, "mtlora never logs to wandb (metrics.jsonl, --metrics-url)"),
    NO_EFFECT("--run_name", 1, "the wandb run name; mtlora has no wandb"),
    REFUSED("--no_eval_50", 0,
            "in main.py this store_false flag adds a validation after epoch 50 (it reads inverted); "
            "mtlora has no one-off evaluation epoch: use --eval-freq N"),
};
const size_t MT_N_OFFICIAL_FLAGS = sizeof MT_OFFICIAL_FLAGS / sizeof MT_OFFICIAL_FLAGS[0];

const mt_official_flag *mt_official_flag_find(const char *name) {
    for (size_t i = 0; name && i < MT_N_OFFICIAL_FLAGS; i++)
        if (!strcmp(name, MT_OFFICIAL_FLAGS[i].name)) return &MT_OFFICIAL_FLAGS[i];
    return NULL;
}

const char *mt_config_flag_key(const char *arg, const char **value) {
    const mt_official_flag *f = mt_official_flag_find(arg);
    if (!f || f->use != MT_FLAG_KEY || f->arity != 0) return NULL;
    if (value) *value = f->value;
    return f->key;
}

/* ---- argparse's matching ------------------------------------------------- */

/* Candidate i of the official rows then own (own may be NULL). */
static int candidate(const mt_cli_flag *own, int nown, size_t i, const char **name, int *arity) {
    if (i < MT_N_OFFICIAL_FLAGS) {
        *name = MT_OFFICIAL_FLAGS[i].name;
        *arity = MT_OFFICIAL_FLAGS[i].arity;
        return 1;
    }
    i -= MT_N_OFFICIAL_FLAGS;
    if ((int)i >= nown) return 0;
    *name = own[i].name;
    *arity = own[i].arity;
    return 1;
}

static void set_match(mt_flag_match *m, size_t i, const char *value) {
    m->row = i < MT_N_OFFICIAL_FLAGS ? &MT_OFFICIAL_FLAGS[i] : NULL;
    m->own = i < MT_N_OFFICIAL_FLAGS ? -1 : (int)(i - MT_N_OFFICIAL_FLAGS);
    m->value = value;
}

/* Matches argv[*i] and takes its value (the "=" part or the next word,
 * which must not look like a flag, as argparse's "expected one argument"). */
mt_status mt_flag_next(int argc, char **argv, int *i, const mt_cli_flag *own, int nown,
                       mt_flag_match *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    m->own = -1;
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) || !arg[2])
        return fail(err, errlen, MT_ERR_ARG, "unrecognized argument '%.200s'", arg);
    const char *eq = strchr(arg, '=');
    const size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const char *name = NULL;
    int arity = 0;
    /* the exact name first (argparse: the whole word, then the part before '=') */
    size_t hit = (size_t)-1, n = 0;
    for (size_t k = 0; candidate(own, nown, k, &name, &arity); k++)
        if (strlen(name) == len && !strncmp(name, arg, len)) hit = k;
    char listed[512] = "";
    if (hit == (size_t)-1) {
        for (size_t k = 0; candidate(own, nown, k, &name, &arity); k++)
            if (strlen(name) > len && !strncmp(name, arg, len)) {
                hit = k, n++;
                const size_t used = strlen(listed);
                snprintf(listed + used, sizeof listed - used, "%s%s", used ? ", " : "", name);
            }
        if (n > 1)
            return fail(err, errlen, MT_ERR_ARG, "ambiguous option: %.*s could match %s", (int)len, arg,
                        listed);
        if (!n) return fail(err, errlen, MT_ERR_ARG, "unknown option '%.200s'", arg);
    }
    candidate(own, nown, hit, &name, &arity);
    m->name = name;
    m->arity = arity;
    set_match(m, hit, eq ? eq + 1 : NULL);
    if (arity == 0 && eq)
        return fail(err, errlen, MT_ERR_ARG, "%s takes no value (got '%.200s')", name, eq + 1);
    if (arity < 0 && eq)
        return fail(err, errlen, MT_ERR_ARG, "%s takes KEY VALUE pairs after it, not '='", name);
    if (arity == 1 && !eq) {
        if (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2))
            return fail(err, errlen, MT_ERR_ARG, "%s: expected one argument", name);
        m->value = argv[++*i];
    }
    if (m->row && m->row->choices && m->value) {
        /* argparse's choices= */
        const char *c = m->row->choices;
        const size_t vl = strlen(m->value);
        for (const char *p = c; *p;) {
            const char *end = strchr(p, ',');
            const size_t l = end ? (size_t)(end - p) : strlen(p);
            if (l == vl && !strncmp(p, m->value, l)) return MT_OK;
            p += l + (end != NULL);
        }
        return fail(err, errlen, MT_ERR_ARG, "%s: invalid choice '%.100s' (choose from %s)", name, m->value, c);
    }
    return MT_OK;
}

/* ---- applying a key row -------------------------------------------------- */

#define FLAG_FILE_MAX 65536

/* A small regular file's text (stat first: a FIFO must not block). */
static mt_status read_small(const char *flag, const char *path, char **out, char *err, size_t errlen) {
    struct stat sb;
    if (stat(path, &sb)) return fail(err, errlen, MT_ERR_IO, "%s %s: %s", flag, path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return fail(err, errlen, MT_ERR_IO, "%s %s: not a regular file", flag, path);
    if (sb.st_size > FLAG_FILE_MAX)
        return fail(err, errlen, MT_ERR_FORMAT, "%s %s: larger than %d bytes", flag, path, FLAG_FILE_MAX);
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, MT_ERR_IO, "%s %s: %s", flag, path, strerror(errno));
    char *buf = malloc(FLAG_FILE_MAX + 1);
    const size_t n = buf ? fread(buf, 1, FLAG_FILE_MAX + 1, f) : 0;
    const int bad = ferror(f);
    fclose(f);
    if (!buf) return fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", flag);
    if (bad || n > FLAG_FILE_MAX) {
        free(buf);
        return fail(err, errlen, MT_ERR_IO, "%s %s: cannot read it whole", flag, path);
    }
    buf[n] = '\0';
    *out = buf;
    return MT_OK;
}

mt_status mt_config_set_flag(mt_config *cfg, const mt_official_flag *f, const char *arg, char *err,
                             size_t errlen) {
    if (!f || f->use != MT_FLAG_KEY || (f->arity == 1 && !arg))
        return fail(err, errlen, MT_ERR_ARG, "%s: not a key flag, or no value", f ? f->name : "flag");
    if (f->when && strcmp(arg, f->when)) return MT_OK; /* --amp-opt-level O1 / O2 */
    const char *v = f->arity == 0 || f->when ? f->value : arg;
    if (f->zero && !strcmp(v, "0")) v = f->zero;
    const mt_key *k = mt_key_find(f->key);
    if (k && (k->type == K_STR || k->type == K_FIXED_STR) && !f->from_file) {
        /* a path or name as it is: double-quoted for the YAML reader */
        char *q = malloc(4 * strlen(v) + 3), *p = q;
        if (!q) return fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", f->name);
        *p++ = '"';
        for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
            if (*c == '"' || *c == '\\') *p++ = '\\', *p++ = (char)*c;
            else if (*c < 0x20 || *c == 0x7f) p += sprintf(p, "\\x%02x", *c);
            else *p++ = (char)*c;
        }
        *p++ = '"';
        *p = '\0';
        const mt_status st = mt_config_set_as(cfg, f->key, q, f->name, err, errlen);
        free(q);
        return st;
    }
    if (!f->from_file) return mt_config_set_as(cfg, f->key, v, f->name, err, errlen);
    /* --decoder_map: a JSON object, which is a YAML flow mapping */
    char *text = NULL, label[320];
    mt_status st = read_small(f->name, v, &text, err, errlen);
    if (st) return st;
    snprintf(label, sizeof label, "%s %.200s", f->name, v);
    st = mt_config_set_as(cfg, f->key, text, label, err, errlen);
    free(text);
    return st;
}
