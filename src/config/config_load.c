/* config_load.c - reading YAML (files, the built-in model, --opts) and
 * --tasks into mt_config through the key table (config_keys.h).
 *
 * A file's mappings are walked into dotted keys; each key's row says how
 * its value is read and where it goes. Values are only parsed here; the
 * per-key bounds and the cross-key rules are checked by
 * mt_config_finalize, after the last file and --opts. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config_keys.h"

#define fail mt_errf

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
        if (!mt_task_info_find(names[i])) {
            char known[128] = "";
            for (size_t k = 0; k < MT_NTASKS; k++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k ? ", " : "",
                         MT_TASKS[k].name);
            return fail(err, errlen, MT_ERR_ARG, "%s: TASKS: unknown task '%s' (known: %s)", src,
                        names[i], known);
        }
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
    const mt_key *k = mt_key_find(key);
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
        int v;
        const int want = k->def != 0;
        mt_status st = read_bool(a, key, s, &v);
        if (st) return st;
        if (v != want)
            return fail(a->err, a->errlen, MT_ERR_ARG, "%s: %s: only %s is supported by mtlora",
                        a->src, key, want ? "true" : "false");
        return MT_OK;
    }
    case K_FIXED_STR:
        if (!s || strcmp(s, k->def_str))
            return fail(a->err, a->errlen, MT_ERR_ARG, "%s: %s: only '%s' is supported by mtlora",
                        a->src, key, k->def_str);
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
        if (k->cap > sizeof v / sizeof v[0])
            return fail(a->err, a->errlen, MT_ERR_ARG, "%s: %s: list capacity %zu over the reader's",
                        a->src, key, k->cap);
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
        const mt_key *spec = mt_key_find(key);
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

mt_status mt_opts_collect(int argc, char **argv, int *i, const char *opts[][2], int *n, int cap,
                          char *err, size_t errlen) {
    while (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2)) {
        if (*i + 2 >= argc || !strncmp(argv[*i + 2], "--", 2))
            return fail(err, errlen, MT_ERR_ARG, "--opts: key '%s' has no value", argv[*i + 1]);
        if (*n >= cap) return fail(err, errlen, MT_ERR_ARG, "--opts: more than %d keys", cap);
        opts[*n][0] = argv[*i + 1];
        opts[*n][1] = argv[*i + 2];
        (*n)++;
        *i += 2;
    }
    return MT_OK;
}

mt_status mt_config_start(mt_config *cfg, const char *path, char *err, size_t errlen) {
    if (!path) return mt_config_builtin(cfg, err, errlen);
    mt_config_default(cfg);
    return mt_config_load(cfg, path, err, errlen);
}

const char *mt_config_flag_key(const char *arg, const char **value) {
    static const char *const flags[][3] = {{"--disable_amp", "AMP_ENABLE", "False"},
                                           {"--use-checkpoint", "TRAIN.USE_CHECKPOINT", "True"}};
    for (size_t i = 0; arg && i < sizeof flags / sizeof flags[0]; i++)
        if (!strcmp(arg, flags[i][0])) {
            if (value) *value = flags[i][2];
            return flags[i][1];
        }
    return NULL;
}
