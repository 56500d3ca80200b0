/* pth_select.c - from the unpickled top-level object to a pth_file
 * (pth_internal.h): the state dict is chosen (a named key, or auto:
 * "model", then "state_dict", if a dict of tensors, else the top level),
 * flattened with '.', checked (every leaf a tensor, no name twice, the
 * output within PTH_MAX_EXPANSION of the file), then each tensor is built
 * from its storage's bytes; the other top-level keys are listed by kind. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pth_internal.h"

typedef struct {
    char name[PTH_NAME_LEN];
    const pv *t;
} flat_entry;

typedef struct {
    flat_entry *v;
    size_t n, cap;
} flat_list;

/* A dict key as a name: a string without NUL, or an int in decimal.
 * 0, or -1 for another kind (or a name too long). */
static int key_name(const pv *k, char *out, size_t cap) {
    if (k->kind == PV_STR) {
        if (strlen(k->u.str.s) != k->u.str.len || k->u.str.len >= cap) return -1;
        memcpy(out, k->u.str.s, k->u.str.len + 1);
        return 0;
    }
    if (k->kind == PV_INT) {
        snprintf(out, cap, "%" PRId64, k->u.i);
        return 0;
    }
    return -1;
}

/* The value of the last pair whose key is the string s (Python's dict
 * keeps the last value given for a key), or NULL. */
static const pv *dict_get(const pv *d, const char *s) {
    const pv *found = NULL;
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
        const pv *k = d->u.seq.v[i];
        if (k->kind == PV_STR && k->u.str.len == strlen(s) && !memcmp(k->u.str.s, s, k->u.str.len))
            found = d->u.seq.v[i + 1];
    }
    return found;
}

/* 1 if d is a dict whose leaves are all tensors (nested dicts allowed). */
static int tensor_dict(const pv *d, int depth) {
    if (d->kind != PV_DICT || depth > PTH_MAX_DEPTH) return 0;
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
        const pv *v = d->u.seq.v[i + 1];
        if (v->kind != PV_TENSOR && !tensor_dict(v, depth + 1)) return 0;
    }
    return 1;
}

static mt_status flatten(const char *path, const char *where, const pv *d, const char *prefix, int depth,
                         flat_list *fl, char *err, size_t errlen) {
    if (depth > PTH_MAX_DEPTH)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %s: dicts nested more than %d deep below %s",
                       path, where, PTH_MAX_DEPTH, prefix);
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
        const pv *k = d->u.seq.v[i], *v = d->u.seq.v[i + 1];
        char key[PTH_NAME_LEN], name[PTH_NAME_LEN], kind[PTH_KIND_LEN];
        if (key_name(k, key, sizeof key)) {
            pv_kind_name(k, kind, sizeof kind);
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s: %s: below '%s' a key that is a %s, or a string with NUL or of %d bytes "
                           "or more: not a tensor name", path, where, prefix, kind, PTH_NAME_LEN);
        }
        const size_t lp = strlen(prefix), lk = strlen(key);
        if (lp + (lp ? 1 : 0) + lk >= sizeof name)
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %s: the name %.100s... (below '%s') is %d "
                           "bytes or longer", path, where, key, prefix, PTH_NAME_LEN);
        memcpy(name, prefix, lp);
        if (lp) name[lp] = '.';
        memcpy(name + lp + (lp ? 1 : 0), key, lk + 1);
        if (v->kind == PV_DICT) {
            mt_status st = flatten(path, where, v, name, depth + 1, fl, err, errlen);
            if (st) return st;
            continue;
        }
        if (v->kind != PV_TENSOR) {
            pv_kind_name(v, kind, sizeof kind);
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s: %s: entry %s is a %s, not a tensor (a state dict holds tensors and "
                           "dicts of tensors only)", path, where, name, kind);
        }
        if (fl->n == fl->cap) {
            const size_t nc = fl->cap ? fl->cap * 2 : 64;
            flat_entry *p = realloc(fl->v, nc * sizeof *p);
            if (!p) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
            fl->v = p;
            fl->cap = nc;
        }
        memcpy(fl->v[fl->n].name, name, strlen(name) + 1);
        fl->v[fl->n++].t = v;
    }
    return MT_OK;
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(const flat_entry *const *)a)->name, (*(const flat_entry *const *)b)->name);
}

/* No name twice (two keys flattening to one name, or a key given twice). */
static mt_status unique_names(const char *path, const char *where, const flat_list *fl, char *err,
                              size_t errlen) {
    if (fl->n < 2) return MT_OK;
    const flat_entry **o = malloc(fl->n * sizeof *o);
    if (!o) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < fl->n; i++) o[i] = &fl->v[i];
    qsort(o, fl->n, sizeof *o, by_name);
    mt_status st = MT_OK;
    for (size_t i = 1; i < fl->n && !st; i++)
        if (!strcmp(o[i - 1]->name, o[i]->name))
            st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %s: the tensor name %s occurs twice", path,
                         where, o[i]->name);
    free(o);
    return st;
}

/* The tensors' output bytes, within PTH_MAX_EXPANSION times the file plus 64 MiB. */
static mt_status check_budget(const pth_source *src, const char *where, const flat_list *fl, char *err,
                              size_t errlen) {
    const uint64_t cap = (src->file_size > PTH_MAX_FILE ? PTH_MAX_FILE : src->file_size) * PTH_MAX_EXPANSION +
                         ((uint64_t)64 << 20);
    uint64_t total = 0;
    for (size_t i = 0; i < fl->n; i++) {
        const char *bad = NULL;
        const size_t b = pth_tensor_out_bytes(fl->v[i].t, &bad);
        if (bad) return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %s: tensor %s: %s", src->path, where,
                                fl->v[i].name, bad);
        total += b;
        if (total > cap)
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s: %s: the tensors up to %s need more than %llu bytes, more than a %llu-byte "
                           "file justifies (views of shared storages, broadcast strides?)", src->path,
                           where, fl->v[i].name, (unsigned long long)cap,
                           (unsigned long long)src->file_size);
    }
    return MT_OK;
}

static mt_status list_others(const pv *top, const pv *chosen, pth_file *out, const char *path, char *err,
                             size_t errlen) {
    const size_t pairs = top->u.seq.n / 2;
    if (!pairs || chosen == top) return MT_OK;
    if (!(out->others = calloc(pairs, sizeof *out->others)))
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < pairs; i++) {
        const pv *k = top->u.seq.v[2 * i], *v = top->u.seq.v[2 * i + 1];
        if (k->kind == PV_STR && !strcmp(k->u.str.s, out->key)) continue;
        pth_other *o = &out->others[out->n_others++];
        char kind[PTH_KIND_LEN];
        if (key_name(k, o->name, sizeof o->name)) {
            pv_kind_name(k, kind, sizeof kind);
            snprintf(o->name, sizeof o->name, "(a %.100s key)", kind);
        }
        pv_kind_name(v, o->kind, sizeof o->kind);
    }
    return MT_OK;
}

static mt_status choose(const char *path, const pv *top, const char *key, const pv **chosen,
                        pth_file *out, char *err, size_t errlen) {
    if (top->kind != PV_DICT) {
        char kind[PTH_KIND_LEN];
        pv_kind_name(top, kind, sizeof kind);
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: the saved object is a %s, not a dict (a state dict or checkpoint)", path, kind);
    }
    if (key) {
        if (strlen(key) >= sizeof out->key)
            return mt_errf(err, errlen, MT_ERR_ARG, "%s: key %.60s...: too long", path, key);
        const pv *v = dict_get(top, key);
        if (!v) return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: no top-level key '%s'", path, key);
        if (v->kind != PV_DICT) {
            char kind[PTH_KIND_LEN];
            pv_kind_name(v, kind, sizeof kind);
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: key '%s' is a %s, not a dict of tensors",
                           path, key, kind);
        }
        snprintf(out->key, sizeof out->key, "%s", key);
        *chosen = v;
        return MT_OK;
    }
    static const char *const AUTO[] = {"model", "state_dict"};
    for (size_t i = 0; i < sizeof AUTO / sizeof *AUTO; i++) {
        const pv *v = dict_get(top, AUTO[i]);
        if (v && tensor_dict(v, 0)) {
            snprintf(out->key, sizeof out->key, "%s", AUTO[i]);
            *chosen = v;
            return MT_OK;
        }
    }
    *chosen = top;
    return MT_OK;
}

mt_status pth_select(const pth_source *src, const pv *top, const char *key, pth_file *out, char *err,
                     size_t errlen) {
    const pv *d = NULL;
    mt_status st = choose(src->path, top, key, &d, out, err, errlen);
    if (st) return st;
    char where[PTH_NAME_LEN + 32];
    if (out->key[0]) snprintf(where, sizeof where, "key '%s'", out->key);
    else snprintf(where, sizeof where, "the top-level state dict");
    flat_list fl = {0};
    st = flatten(src->path, where, d, "", 0, &fl, err, errlen);
    if (!st) st = unique_names(src->path, where, &fl, err, errlen);
    if (!st && fl.n > (size_t)INT32_MAX)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %s: %zu tensors, too many", src->path, where, fl.n);
    if (!st) st = check_budget(src, where, &fl, err, errlen);
    if (!st) st = list_others(top, d, out, src->path, err, errlen);
    if (!st && fl.n && !(out->tensors = calloc(fl.n, sizeof *out->tensors)))
        st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory for %zu tensors", src->path, fl.n);
    for (size_t i = 0; i < fl.n && !st; i++) {
        pth_tensor *t = &out->tensors[i];
        memcpy(t->name, fl.v[i].name, strlen(fl.v[i].name) + 1);
        const unsigned char *data = NULL;
        st = src->storage(src->ctx, fl.v[i].t->u.t->storage, t->name, &data, err, errlen);
        if (!st) st = pth_tensor_build(src->path, fl.v[i].t, data, t, err, errlen);
        out->count = (int)(i + 1);
    }
    free(fl.v);
    return st;
}
