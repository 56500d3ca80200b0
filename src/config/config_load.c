/* config_load.c - reading YAML (files, the built-in model, --opts) and
 * --tasks into mt_config through the key table (config_keys.h).
 *
 * The text goes through mt_yaml_read (config_read.h: bounded aliases,
 * one document, UTF-8, libyaml's own line for syntax errors); the
 * document's mappings are then walked into dotted keys, and each key's row
 * says how its value is read and where it goes. Every number goes through
 * the one parser and the row's bounds (config_keys.h) right here, so a
 * refusal names the file, the line and the key ("--opts" and the key for
 * command-line values); mt_config_finalize checks the same bounds again
 * for values a program set, and the rules across keys. A key given twice
 * in one file is refused, and the walk spends a budget of node visits
 * that alias bombs exceed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config_keys.h"
#include "config_read.h"
#include "mtlora/io/atomic_file.h"

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

static int is_null(const char *s) {
    return !strcmp(s, "null") || !strcmp(s, "None") || !strcmp(s, "~") || !*s;
}

/* ---- applying a YAML node to a key ---------------------------------------- */

#define MT_MAP_MAX_PAIRS 256 /* keys in one mapping; the whole table has fewer */

typedef struct {
    mt_config *cfg;
    yaml_document_t *doc;
    const char *src;            /* file name, or "--opts" */
    int lines;                  /* messages give the node's line (a file, not --opts) */
    size_t visits, budget, nodes; /* the alias-expansion budget (config_read.h) */
    unsigned char *checked;     /* mappings already checked for repeated keys */
    int set_line[MT_KEYS_CAP];  /* the line that set each row (0: not yet) */
    char *err;
    size_t errlen;
} apply_ctx;

static const char *scalar(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static const char *kind_of(const yaml_node_t *n) {
    if (!n) return "nothing";
    return n->type == YAML_SCALAR_NODE     ? "a scalar"
           : n->type == YAML_SEQUENCE_NODE ? "a list"
           : n->type == YAML_MAPPING_NODE  ? "a mapping"
                                           : "nothing";
}

static size_t line_of(const yaml_node_t *n) { return n->start_mark.line + 1; }

/* A refusal: "FILE line N: ..." (the node's line) or "--opts: ...". */
static mt_status refuse(const apply_ctx *a, const yaml_node_t *n, mt_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static mt_status refuse(const apply_ctx *a, const yaml_node_t *n, mt_status st, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (a->lines && n) return fail(a->err, a->errlen, st, "%s line %zu: %s", a->src, line_of(n), msg);
    return fail(a->err, a->errlen, st, "%s: %s", a->src, msg);
}

/* One node visited. Aliases make the walk revisit nodes; past the budget
 * the document is an alias bomb, refused before it costs minutes. */
static mt_status spend(apply_ctx *a, const yaml_node_t *n, const char *key) {
    if (++a->visits <= a->budget) return MT_OK;
    return refuse(a, n, MT_ERR_FORMAT,
                  "%s: aliases expand the document past %zu node visits (it has %zu nodes): "
                  "refused as an alias bomb", key, a->budget, a->nodes);
}

static yaml_node_t *node(const apply_ctx *a, int id) { return yaml_document_get_node(a->doc, id); }

/* A key given twice in mapping n (YAML forbids it; PyYAML would keep the
 * last silently): refused naming both lines. Each mapping is checked once,
 * however many aliases reach it. */
static mt_status check_repeats(apply_ctx *a, yaml_node_t *n, const char *key) {
    const size_t id = (size_t)(n - a->doc->nodes.start);
    if (a->checked[id]) return MT_OK;
    a->checked[id] = 1;
    yaml_node_pair_t *p0 = n->data.mapping.pairs.start, *top = n->data.mapping.pairs.top;
    if (top - p0 > MT_MAP_MAX_PAIRS)
        return refuse(a, n, MT_ERR_FORMAT, "%s: %td keys in one mapping (at most %d)", key, top - p0,
                      MT_MAP_MAX_PAIRS);
    for (yaml_node_pair_t *p = p0; p < top; p++) {
        const yaml_node_t *kn = node(a, p->key);
        const char *k = scalar(kn);
        if (!k) return refuse(a, kn ? kn : n, MT_ERR_FORMAT, "%s: a key that is %s, not a name",
                              *key ? key : "top level", kind_of(kn));
        if (strlen(k) != kn->data.scalar.length)
            return refuse(a, kn, MT_ERR_FORMAT, "%s: a key with a NUL character", key);
        for (yaml_node_pair_t *q = p0; q < p; q++) {
            const yaml_node_t *qn = node(a, q->key);
            if (!strcmp(scalar(qn), k))
                return refuse(a, kn, MT_ERR_FORMAT, "%s%s%.64s: given twice in one mapping (first at "
                              "line %zu)", key, *key ? "." : "", k, line_of(qn));
        }
    }
    return MT_OK;
}

/* A true/false scalar, or a message naming the key. */
static mt_status read_bool(apply_ctx *a, const char *key, const yaml_node_t *n, int *v) {
    const char *s = scalar(n);
    if (!s) return refuse(a, n, MT_ERR_FORMAT, "%s: expected true/false, got %s", key, kind_of(n));
    if (parse_bool(s, v))
        return refuse(a, n, MT_ERR_FORMAT, "%s: value '%.40s' is not true/false", key, s);
    return MT_OK;
}

/* One number of row k (named `name`, e.g. "MODEL.SWIN.DEPTHS[2]"): the one
 * parser, then the row's bounds, both refused with the value as written. */
static mt_status read_number(apply_ctx *a, const mt_key *k, const char *name, const yaml_node_t *n,
                             const char *s, double *v) {
    char why[256];
    if (!s) return refuse(a, n, MT_ERR_FORMAT, "%s: expected a number, got %s", name, kind_of(n));
    const char *bad = mt_key_parse(k, s, v);
    if (bad) return refuse(a, n, MT_ERR_FORMAT, "%s: value '%.40s' %s", name, s, bad);
    if ((bad = mt_key_check(k, *v, why, sizeof why)))
        return refuse(a, n, MT_ERR_ARG, "%s: value %.40s %s", name, s, bad);
    return MT_OK;
}

/* "(0.9, 0.999)" or "[64, 64]" as a string: yacs reads Python literals
 * written as strings. */
static int is_literal_list(const char *s) {
    const size_t l = s ? strlen(s) : 0;
    return l >= 2 && ((s[0] == '(' && s[l - 1] == ')') || (s[0] == '[' && s[l - 1] == ']'));
}

static mt_status read_literal(apply_ctx *a, const mt_key *k, const char *key, const yaml_node_t *n,
                              double *v, int cap, int *count) {
    const char *sc = scalar(n);
    char buf[512], name[200], *save = NULL;
    const size_t sl = strlen(sc);
    int c = 0;
    if (sl >= sizeof buf) return refuse(a, n, MT_ERR_FORMAT, "%s: value too long", key);
    memcpy(buf, sc + 1, sl - 2);
    buf[sl - 2] = '\0';
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save), c++) {
        if (c >= cap) return refuse(a, n, MT_ERR_FORMAT, "%s: more than %d values", key, cap);
        snprintf(name, sizeof name, "%s[%d]", key, c);
        mt_status st = read_number(a, k, name, n, tok, &v[c]);
        if (st) return st;
    }
    if (!c) return refuse(a, n, MT_ERR_FORMAT, "%s: empty list", key);
    *count = c;
    return MT_OK;
}

/* A scalar or a list of scalars as numbers of row k into v (at most cap). */
static mt_status read_numbers(apply_ctx *a, const mt_key *k, const char *key, yaml_node_t *n,
                              double *v, int cap, int *count) {
    if (is_literal_list(scalar(n))) return read_literal(a, k, key, n, v, cap, count);
    if (n->type == YAML_SCALAR_NODE) {
        *count = 1;
        return read_number(a, k, key, n, scalar(n), &v[0]);
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return refuse(a, n, MT_ERR_FORMAT, "%s: expected a list of numbers, got %s", key, kind_of(n));
    int c = 0;
    char name[200];
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++, c++) {
        yaml_node_t *e = node(a, *it);
        mt_status st = spend(a, e ? e : n, key);
        if (st) return st;
        if (c >= cap) return refuse(a, e, MT_ERR_FORMAT, "%s: more than %d values", key, cap);
        snprintf(name, sizeof name, "%s[%d]", key, c);
        if ((st = read_number(a, k, name, e ? e : n, scalar(e), &v[c]))) return st;
    }
    if (c == 0) return refuse(a, n, MT_ERR_FORMAT, "%s: empty list", key);
    *count = c;
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
            return fail(err, errlen, MT_ERR_ARG, "%s: TASKS: unknown task '%.40s' (known: %s)", src,
                        names[i], known);
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(names[j], names[i]))
                return fail(err, errlen, MT_ERR_ARG, "%s: TASKS: '%s' listed twice", src,
                            names[i]);
    }
    cfg->ntasks = n;
    memset(cfg->tasks, 0, sizeof cfg->tasks);
    for (int i = 0; i < n; i++) snprintf(cfg->tasks[i], MT_TASK_NAME_LEN, "%s", names[i]);
    return MT_OK;
}

static mt_status apply_tasks(apply_ctx *a, yaml_node_t *n) {
    const char *names[MT_MAX_TASKS + 1];
    int cnt = 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return refuse(a, n, MT_ERR_FORMAT, "TASKS: expected a list, got %s", kind_of(n));
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *e = node(a, *it);
        mt_status st = spend(a, e ? e : n, "TASKS");
        if (st) return st;
        const char *t = scalar(e);
        if (!t) return refuse(a, e ? e : n, MT_ERR_FORMAT, "TASKS[%d]: expected a task name, got %s",
                              cnt, kind_of(e));
        if (cnt > MT_MAX_TASKS)
            return refuse(a, e, MT_ERR_ARG, "TASKS: more than %d tasks", MT_MAX_TASKS);
        names[cnt++] = t;
    }
    char at[MT_PATH_MAX + 64];
    if (a->lines) snprintf(at, sizeof at, "%s line %zu", a->src, line_of(n));
    else snprintf(at, sizeof at, "%s", a->src);
    return set_tasks_from_names(a->cfg, names, cnt, at, a->err, a->errlen);
}

/* R_PER_TASK / SCALE_PER_TASK: task: [values] entries, merged by name into
 * what earlier files set, as yacs merges. */
static mt_status apply_named_lists(apply_ctx *a, const mt_key *k, yaml_node_t *n,
                                   mt_named_list *lists, int *nlists) {
    if (n->type != YAML_MAPPING_NODE)
        return refuse(a, n, MT_ERR_FORMAT, "%s: expected task: [values] entries, got %s", k->name,
                      kind_of(n));
    mt_status st = check_repeats(a, n, k->name);
    if (st) return st;
    int count = *nlists;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(a, p->key), *v = node(a, p->value);
        const char *name = scalar(kn);
        if ((st = spend(a, kn, k->name))) return st;
        if (!v || !*name || strlen(name) >= MT_TASK_NAME_LEN)
            return refuse(a, kn, MT_ERR_FORMAT, "%s: entry '%.40s': a task name of 1 to %d bytes",
                          k->name, name, MT_TASK_NAME_LEN - 1);
        int slot = 0;
        while (slot < count && strcmp(lists[slot].name, name)) slot++;
        if (slot == MT_MAX_TASKS + 4)
            return refuse(a, kn, MT_ERR_FORMAT, "%s: more than %d entries", k->name, MT_MAX_TASKS + 4);
        char sub[160];
        snprintf(sub, sizeof sub, "%s.%s", k->name, name);
        double vals[MT_MAX_STAGES];
        int nv = 0;
        if ((st = read_numbers(a, k, sub, v, vals, MT_MAX_STAGES, &nv))) return st;
        mt_named_list *l = &lists[slot];
        if (slot == count) count++;
        memset(l, 0, sizeof *l); /* canonical bytes: a written config reloads identical */
        snprintf(l->name, MT_TASK_NAME_LEN, "%s", name);
        l->n = nv;
        for (int i = 0; i < nv; i++) l->v[i] = (float)vals[i];
    }
    *nlists = count;
    return MT_OK;
}

static mt_status apply_head(apply_ctx *a, const char *key, yaml_node_t *n) {
    if (n->type != YAML_MAPPING_NODE)
        return refuse(a, n, MT_ERR_FORMAT, "%s: expected task: head entries, got %s", key, kind_of(n));
    mt_status st = check_repeats(a, n, key);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; !st && p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *v = node(a, p->value);
        const char *t = scalar(node(a, p->key)), *h = scalar(v);
        if ((st = spend(a, v ? v : n, key))) break;
        if (!h || strcmp(h, "hrnet"))
            st = refuse(a, v ? v : n, MT_ERR_ARG, "%s.%.40s: only 'hrnet' is supported by mtlora",
                        key, t);
    }
    return st;
}

/* A list row: its values replace the whole list (storage zeroed first, so
 * the bytes do not depend on what was there). */
static mt_status apply_list(apply_ctx *a, const mt_key *k, const char *key, yaml_node_t *n) {
    double v[16]; /* >= every key's cap (stages, tasks) */
    int cnt = 0;
    char *base = (char *)a->cfg;
    if (k->cap > sizeof v / sizeof v[0])
        return refuse(a, n, MT_ERR_ARG, "%s: list capacity %zu over the reader's", key, k->cap);
    mt_status st = read_numbers(a, k, key, n, v, (int)k->cap, &cnt);
    if (st) return st;
    if (!k->n_off && cnt != (int)k->cap)
        return refuse(a, n, MT_ERR_FORMAT, "%s: expected %zu values, got %d", key, k->cap, cnt);
    memset(base + k->off, 0, k->cap * sizeof(int));
    for (int i = 0; i < cnt; i++) {
        if (k->type == K_INTLIST) ((int *)(base + k->off))[i] = (int)v[i];
        else ((float *)(base + k->off))[i] = (float)v[i];
    }
    if (k->n_off) *(int *)(base + k->n_off) = cnt;
    return MT_OK;
}

static mt_status apply_str(apply_ctx *a, const mt_key *k, const char *key, const yaml_node_t *n) {
    const char *s = scalar(n);
    char why[512];
    if (!s) return refuse(a, n, MT_ERR_FORMAT, "%s: expected a string, got %s", key, kind_of(n));
    const size_t len = strlen(s);
    if (len != n->data.scalar.length)
        return refuse(a, n, MT_ERR_FORMAT, "%s: the string holds a NUL character", key);
    if (len >= k->cap)
        return refuse(a, n, MT_ERR_FORMAT, "%s: a string of %zu bytes (at most %zu)", key, len,
                      k->cap - 1);
    if (mt_key_check_str(k, s, why, sizeof why))
        return refuse(a, n, MT_ERR_ARG, "%s: %s", key, why);
    char *dst = (char *)a->cfg + k->off;
    memset(dst, 0, k->cap);
    memcpy(dst, s, len);
    return MT_OK;
}

static mt_status apply(apply_ctx *a, const char *key, yaml_node_t *n) {
    const mt_key *k = mt_key_find(key);
    if (!k) return refuse(a, n, MT_ERR_ARG, "unknown key %s", key);
    if (a->lines && k->type != K_IGNORE) {
        /* "MODEL.NAME: x" and "MODEL: {NAME: y}" in one file */
        int *first = &a->set_line[k - MT_KEYS];
        if (*first)
            return refuse(a, n, MT_ERR_FORMAT, "%s: set twice in one file (first at line %d)", key,
                          *first);
        *first = (int)line_of(n);
    }
    char *base = (char *)a->cfg;
    const char *s = scalar(n);
    double v;
    int b;
    mt_status st;
    switch (k->type) {
    case K_IGNORE: return MT_OK;
    case K_INT:
        if (!(st = read_number(a, k, key, n, s, &v))) *(int *)(base + k->off) = (int)v;
        return st;
    case K_FLOAT:
        if (!(st = read_number(a, k, key, n, s, &v))) *(float *)(base + k->off) = (float)v;
        return st;
    case K_BOOL:
        if (!(st = read_bool(a, key, n, &b))) *(int *)(base + k->off) = b;
        return st;
    case K_STR: return apply_str(a, k, key, n);
    case K_FIXED_BOOL:
        if ((st = read_bool(a, key, n, &b))) return st;
        if (b != (k->def != 0))
            return refuse(a, n, MT_ERR_ARG, "%s: only %s is supported by mtlora", key,
                          k->def ? "true" : "false");
        return MT_OK;
    case K_FIXED_STR:
        if (!s || strcmp(s, k->def_str))
            return refuse(a, n, MT_ERR_ARG, "%s: only '%s' is supported by mtlora", key, k->def_str);
        return MT_OK;
    case K_NULL_ONLY:
        if (!s || !is_null(s))
            return refuse(a, n, MT_ERR_ARG, "%s: only null (head_dim^-0.5) is supported by mtlora",
                          key);
        return MT_OK;
    case K_INTLIST:
    case K_FLOATLIST: return apply_list(a, k, key, n);
    case K_TASKS: return apply_tasks(a, n);
    case K_RPT:
        return apply_named_lists(a, k, n, a->cfg->raw.r_per_task, &a->cfg->raw.n_r_per_task);
    case K_SPT:
        return apply_named_lists(a, k, n, a->cfg->raw.scale_per_task, &a->cfg->raw.n_scale_per_task);
    case K_HEAD: return apply_head(a, key, n);
    }
    return refuse(a, n, MT_ERR_ARG, "%s: unhandled key type", key);
}

/* Walks a mapping, building dotted keys; maps whose key is a leaf of the
 * table (R_PER_TASK...) are handed over whole. Recursion is bounded by
 * the key length (cyclic aliases) and every pair is spent from the budget. */
static mt_status walk(apply_ctx *a, const char *prefix, yaml_node_t *n) {
    const char *here = *prefix ? prefix : "top level";
    if (n->type != YAML_MAPPING_NODE)
        return refuse(a, n, MT_ERR_FORMAT, "%s: expected a mapping, got %s", here, kind_of(n));
    mt_status st = check_repeats(a, n, prefix);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; !st && p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = node(a, p->key), *v = node(a, p->value);
        if ((st = spend(a, kn, here))) break;
        if (!v) {
            st = refuse(a, kn, MT_ERR_FORMAT, "%s: a key without a value", here);
            break;
        }
        char key[256];
        const int len = snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", scalar(kn));
        if (len >= (int)sizeof key) {
            st = refuse(a, kn, MT_ERR_FORMAT, "%.64s...: key longer than %zu bytes", key,
                        sizeof key - 1);
            break;
        }
        const mt_key *spec = mt_key_find(key);
        if (v->type == YAML_MAPPING_NODE && (!spec || (spec->type != K_RPT && spec->type != K_SPT &&
                                                       spec->type != K_HEAD &&
                                                       spec->type != K_IGNORE)))
            st = walk(a, key, v);
        else
            st = apply(a, key, v);
    }
    return st;
}

/* Parses one YAML document (config_read.h) and merges it into cfg. */
static mt_status merge_yaml(mt_config *cfg, const char *text, size_t len, const char *name,
                            char *err, size_t errlen) {
    yaml_document_t doc;
    size_t nodes = 0;
    mt_status st = mt_yaml_read(text, len, name, &doc, &nodes, err, errlen);
    if (st) return st;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) { /* an empty file changes nothing */
        apply_ctx *a = calloc(1, sizeof *a);
        const size_t n = (size_t)(doc.nodes.top - doc.nodes.start);
        unsigned char *checked = calloc(n ? n : 1, 1);
        if (!a || !checked) {
            st = fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", name);
        } else {
            *a = (apply_ctx){.cfg = cfg, .doc = &doc, .src = name, .lines = 1,
                             .budget = MT_YAML_VISIT_BUDGET(nodes), .nodes = nodes,
                             .checked = checked, .err = err, .errlen = errlen};
            st = walk(a, "", root);
        }
        free(checked);
        free(a);
    }
    yaml_document_delete(&doc);
    return st;
}

/* The whole file, at most MT_CONFIG_MAX_BYTES (a directory or an
 * unreadable file refused by name). */
static mt_status read_file(const char *path, char **text, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(MT_CONFIG_MAX_BYTES + 2);
    if (!buf) {
        fclose(f);
        return fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    }
    errno = 0;
    const size_t n = fread(buf, 1, MT_CONFIG_MAX_BYTES + 1, f);
    const int bad = ferror(f), e = errno;
    fclose(f);
    if (bad || n > MT_CONFIG_MAX_BYTES) {
        free(buf);
        if (bad) return fail(err, errlen, MT_ERR_IO, "%s: cannot read: %s", path, strerror(e ? e : EIO));
        return fail(err, errlen, MT_ERR_FORMAT, "%s: larger than %u bytes (a configuration is a few KB)",
                    path, MT_CONFIG_MAX_BYTES);
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return MT_OK;
}

mt_status mt_config_load(mt_config *cfg, const char *path, char *err, size_t errlen) {
    char *text = NULL;
    size_t len = 0;
    mt_status st = read_file(path, &text, &len, err, errlen);
    if (st) return st;
    st = merge_yaml(cfg, text, len, path, err, errlen);
    free(text);
    return st;
}

mt_status mt_config_load_buffer(mt_config *cfg, const char *text, size_t len, const char *name,
                                char *err, size_t errlen) {
    if (!text && len) return fail(err, errlen, MT_ERR_ARG, "%s: no text", name ? name : "config");
    return merge_yaml(cfg, text ? text : "", len, name ? name : "config", err, errlen);
}

mt_status mt_config_builtin(mt_config *cfg, char *err, size_t errlen) {
    mt_config_default(cfg);
    return merge_yaml(cfg, BUILTIN_YAML, strlen(BUILTIN_YAML), "built-in config", err, errlen);
}

mt_status mt_config_set_as(mt_config *cfg, const char *key, const char *value, const char *label,
                          char *err, size_t errlen) {
    if (!key || !value) return fail(err, errlen, MT_ERR_ARG, "%s: missing KEY or VALUE", label);
    char src[300];
    snprintf(src, sizeof src, "%s %.200s", label, key);
    yaml_document_t doc;
    size_t nodes = 0;
    mt_status st = mt_yaml_read(value, strlen(value), src, &doc, &nodes, err, errlen);
    if (st) return st;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    apply_ctx *a = calloc(1, sizeof *a);
    unsigned char *checked = calloc((size_t)(doc.nodes.top - doc.nodes.start) + 1, 1);
    if (!root) {
        st = fail(err, errlen, MT_ERR_FORMAT, "%s: empty value", src);
    } else if (!a || !checked) {
        st = fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", src);
    } else {
        *a = (apply_ctx){.cfg = cfg, .doc = &doc, .src = label, .lines = 0,
                         .budget = MT_YAML_VISIT_BUDGET(nodes), .nodes = nodes, .checked = checked,
                         .err = err, .errlen = errlen};
        st = apply(a, key, root);
    }
    free(checked);
    free(a);
    yaml_document_delete(&doc);
    return st;
}

mt_status mt_config_set(mt_config *cfg, const char *key, const char *value, char *err,
                        size_t errlen) {
    return mt_config_set_as(cfg, key, value, "--opts", err, errlen);
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
