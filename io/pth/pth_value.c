/* pth_value.c - the unpickler's values and the arena that owns them
 * (pth_internal.h). Every value is one malloc registered in the arena, its
 * item array a second; pv_arena_free releases them all at once, so values
 * shared through the memo, or a list that contains itself, need no
 * reference counts. The arena refuses any allocation past its limit (a
 * fixed multiple of the pickle's size), so no pickle can make the reader
 * hold more memory than its length justifies. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pth_internal.h"

void pv_arena_init(pv_arena *a, size_t pickle_len) {
    memset(a, 0, sizeof *a);
    const size_t cap = (SIZE_MAX - ((size_t)1 << 20)) / PTH_ARENA_PER_BYTE;
    a->limit = (pickle_len < cap ? pickle_len : cap) * PTH_ARENA_PER_BYTE + ((size_t)1 << 20);
    a->none.kind = PV_NONE;
    a->yes.kind = a->no.kind = PV_BOOL;
    a->yes.u.i = 1;
    a->empty_tuple.kind = PV_TUPLE;
}

void pv_arena_free(pv_arena *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) {
        pv *v = a->all[i];
        if (v->kind == PV_TUPLE || v->kind == PV_LIST || v->kind == PV_SET || v->kind == PV_DICT)
            free(v->u.seq.v);
        free(v);
    }
    free(a->empty_tuple.u.seq.v); /* never grows; for symmetry */
    free(a->all);
    free(a->storages);
    memset(a, 0, sizeof *a);
}

/* Counts n bytes against the limit; 0, or -1 (and a->over) when refused. */
static int charge(pv_arena *a, size_t n) {
    if (n > a->limit - a->bytes) {
        a->over = 1;
        return -1;
    }
    a->bytes += n;
    return 0;
}

/* Grows *v (cap items) to hold one more; -1 when refused. */
static int grow(pv_arena *a, pv ***v, size_t *cap, size_t n) {
    if (n < *cap) return 0;
    const size_t nc = *cap ? *cap * 2 : 8;
    if (nc > SIZE_MAX / sizeof **v || charge(a, (nc - *cap) * sizeof **v)) {
        a->over = 1;
        return -1;
    }
    pv **p = realloc(*v, nc * sizeof **v);
    if (!p) {
        a->over = 1;
        return -1;
    }
    *v = p;
    *cap = nc;
    return 0;
}

pv *pv_new(pv_arena *a, pv_kind kind, size_t extra) {
    if (extra > a->limit || charge(a, sizeof(pv) + extra)) {
        a->over = 1;
        return NULL;
    }
    if (grow(a, &a->all, &a->cap, a->n)) return NULL;
    pv *v = calloc(1, sizeof(pv) + extra);
    if (!v) {
        a->over = 1;
        return NULL;
    }
    v->kind = kind;
    a->all[a->n++] = v;
    return v;
}

pv *pv_new_str(pv_arena *a, pv_kind kind, const unsigned char *s, size_t len) {
    if (len >= a->limit) {
        a->over = 1;
        return NULL;
    }
    pv *v = pv_new(a, kind, len + 1);
    if (!v) return NULL;
    char *p = (char *)(v + 1);
    if (len) memcpy(p, s, len);
    p[len] = 0;
    v->u.str.s = p;
    v->u.str.len = len;
    return v;
}

pv *pv_new_placeholder(pv_arena *a, const char *fmt, ...) {
    char buf[PTH_KIND_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pv *v = pv_new_str(a, PV_PLACEHOLDER, (const unsigned char *)buf, strlen(buf));
    if (!v) return NULL;
    v->u.what = v->u.str.s;
    return v;
}

int pv_push(pv_arena *a, pv *c, pv *item) {
    if (grow(a, &c->u.seq.v, &c->u.seq.cap, c->u.seq.n)) return -1;
    c->u.seq.v[c->u.seq.n++] = item;
    return 0;
}

int pv_note_storage(pv_arena *a, pv *s) {
    if (grow(a, &a->storages, &a->cap_storages, a->n_storages)) return -1;
    a->storages[a->n_storages++] = s;
    return 0;
}

void pv_kind_name(const pv *v, char *buf, size_t n) {
    const char *k = "?";
    switch (v->kind) {
    case PV_NONE: k = "none"; break;
    case PV_BOOL: k = "bool"; break;
    case PV_INT: case PV_BIGINT: k = "int"; break;
    case PV_FLOAT: k = "float"; break;
    case PV_STR: k = "str"; break;
    case PV_BYTES: k = "bytes"; break;
    case PV_TUPLE: k = "tuple"; break;
    case PV_LIST: k = "list"; break;
    case PV_SET: k = "set"; break;
    case PV_DICT: k = "dict"; break;
    case PV_STORAGE: k = "storage"; break;
    case PV_TENSOR: k = "tensor"; break;
    case PV_GLOBAL: snprintf(buf, n, "global %s", v->u.g.name); return;
    case PV_PLACEHOLDER: snprintf(buf, n, "placeholder %s", v->u.what); return;
    }
    snprintf(buf, n, "%s", k);
}

int pth_utf8_ok(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        const unsigned c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xc2 && c <= 0xdf) k = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef) k = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4) k = 3, cp = c & 0x07;
        else return 0;
        if (len - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        /* overlong forms and values past U+10FFFF; surrogates pass as in
         * Python's 'surrogatepass', which the unpickler uses */
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
        i += k + 1;
    }
    return 1;
}
