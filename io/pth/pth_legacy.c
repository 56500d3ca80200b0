/* pth_legacy.c - the legacy format (torch < 1.6, or
 * _use_new_zipfile_serialization=False) (pth_internal.h): five pickles
 * back to back, then the storages' data.
 *   1. the magic number 0x1950a86a20f9469cfc6c (a pickled long),
 *   2. the protocol version 1001,
 *   3. sys-info {'protocol_version': 1001, 'little_endian': True, 'type_sizes': {..}},
 *   4. the object, whose persistent ids are ('storage', <type>, key, location,
 *      numel, view_metadata),
 *   5. the list of storage keys in the order their data follows;
 * then per key an 8-byte little-endian element count (which must be the
 * pickle's numel) and the raw little-endian elements. The file is read
 * whole (at most PTH_MAX_FILE bytes); every storage the object names must
 * have one segment, every segment must belong to a storage of the object,
 * and each must fit in the file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pth_internal.h"
#include "mtlora/io/regular_file.h"

static const unsigned char MAGIC[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

typedef struct {
    const char *key;
    pth_stype stype;
    int64_t numel;
    const unsigned char *data; /* numel elements, in the file buffer */
} segment;

typedef struct {
    const char *path;
    segment *seg;
    size_t n;
    const char *stopped_at; /* the first listed storage of a type not read, or NULL */
} lctx;

/* pth_source.storage: the segment of the storage's key. */
static mt_status legacy_storage(void *ctx, const pv *sto, const char *tensor, const unsigned char **data,
                                char *err, size_t errlen) {
    const lctx *l = ctx;
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->seg[i].key, sto->u.sto->key)) {
            *data = l->seg[i].data;
            return MT_OK;
        }
    if (l->stopped_at)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: tensor %s: storage %s: its data is not found: it is "
                       "not before storage %s, of a type not read", l->path, tensor, sto->u.sto->key,
                       l->stopped_at);
    return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: tensor %s: storage %s has no data in the file", l->path,
                   tensor, sto->u.sto->key);
}

/* Pickles 1-3, each as soon as it is read: magic, protocol, sys-info. */
static mt_status check_header(const char *path, int i, const pv *v, char *err, size_t errlen) {
    if (i == 0 && (v->kind != PV_BIGINT || v->u.big.n != sizeof MAGIC || memcmp(v->u.big.b, MAGIC, sizeof MAGIC)))
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: pickle 1 of 5: not the legacy torch.save magic "
                       "number 0x1950a86a20f9469cfc6c: not a PyTorch file", path);
    if (i == 1 && (v->kind != PV_INT || v->u.i != 1001))
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: pickle 2 of 5: protocol version %lld, not 1001",
                       path, v->kind == PV_INT ? (long long)v->u.i : -1LL);
    if (i != 2) return MT_OK;
    const pv *info = v;
    if (info->kind != PV_DICT)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: pickle 3 of 5: sys-info is not a dict", path);
    int little = -1;
    for (size_t i = 0; i + 1 < info->u.seq.n; i += 2) {
        const pv *k = info->u.seq.v[i], *v = info->u.seq.v[i + 1];
        if (k->kind == PV_STR && !strcmp(k->u.str.s, "little_endian"))
            little = v->kind == PV_BOOL ? (int)v->u.i : -2;
    }
    if (little != 1)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: pickle 3 of 5: sys-info little_endian is %s; only "
                       "little-endian files are read", path, little == 0 ? "False (a big-endian file)"
                       : little == -1 ? "missing" : "not a bool");
    return MT_OK;
}

/* Pickle 5 and the data after it: one segment per key, in the list's order. */
static mt_status walk_data(const char *path, const pv_arena *a, const pv *keys, const unsigned char *buf,
                           size_t size, size_t at, lctx *l, char *err, size_t errlen) {
    if (keys->kind != PV_LIST)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: pickle 5 of 5: the storage keys are not a list", path);
    const size_t n = keys->u.seq.n;
    if (n && !(l->seg = calloc(n, sizeof *l->seg)))
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        const pv *k = keys->u.seq.v[i];
        if (k->kind != PV_STR || strlen(k->u.str.s) != k->u.str.len)
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: pickle 5 of 5: storage key %zu is not a string",
                           path, i);
        for (size_t j = 0; j < l->n; j++)
            if (!strcmp(l->seg[j].key, k->u.str.s))
                return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: storage %s is listed twice", path, k->u.str.s);
        const pv *s = NULL;
        for (size_t j = 0; j < a->n_storages; j++) {
            const pv *c = a->storages[j];
            if (strcmp(c->u.sto->key, k->u.str.s)) continue;
            if (s && (s->u.sto->stype != c->u.sto->stype || s->u.sto->root_numel != c->u.sto->root_numel))
                return mt_errf(err, errlen, MT_ERR_FORMAT,
                               "%s: storage %s is named as %lld elements of %s and as %lld of %s", path,
                               k->u.str.s, (long long)s->u.sto->root_numel, pth_stype_name(s->u.sto->stype),
                               (long long)c->u.sto->root_numel, pth_stype_name(c->u.sto->stype));
            s = c;
        }
        if (!s) { /* a storage of a type not read (its placeholder made no storage): its element
                   * size is unknown, so the data after it cannot be found */
            l->stopped_at = k->u.str.s;
            return MT_OK;
        }
        const size_t es = pth_stype_size(s->u.sto->stype);
        if (size - at < 8)
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: storage %s: its element count is past the end "
                           "of the file (truncated?)", path, k->u.str.s);
        const uint64_t count = pth_le64(buf + at);
        at += 8;
        if (count != (uint64_t)s->u.sto->root_numel)
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: storage %s: %llu elements in the file, %lld in "
                           "the pickle", path, k->u.str.s, (unsigned long long)count,
                           (long long)s->u.sto->root_numel);
        if (count > (size - at) / es)
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: storage %s: %llu elements of %zu bytes run past "
                           "the end of the file (truncated?)", path, k->u.str.s, (unsigned long long)count, es);
        l->seg[l->n++] = (segment){k->u.str.s, s->u.sto->stype, s->u.sto->root_numel, buf + at};
        at += (size_t)count * es;
    }
    return MT_OK;
}

mt_status pth_legacy_load(const char *path, int fd, uint64_t size, const char *key, pth_file *out,
                          char *err, size_t errlen) {
    unsigned char *buf = malloc((size_t)size);
    if (!buf) {
        close(fd);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: cannot allocate %llu bytes", path,
                       (unsigned long long)size);
    }
    mt_status st = mt_read_exact(fd, path, buf, (size_t)size, err, errlen);
    close(fd); /* read-only: a close error cannot lose data */
    pv_arena arena;
    pv_arena_init(&arena, size < PTH_MAX_PICKLE ? (size_t)size : PTH_MAX_PICKLE);
    pv *obj[5] = {0};
    static const char *const WHAT[5] = {"pickle 1 of 5 (magic number)", "pickle 2 of 5 (protocol)",
                                        "pickle 3 of 5 (sys-info)", "pickle 4 of 5 (the object)",
                                        "pickle 5 of 5 (storage keys)"};
    size_t at = 0;
    for (int i = 0; i < 5 && !st; i++) {
        const pk_ctx c = {.arena = &arena, .path = path, .entry = WHAT[i], .legacy = i == 3};
        size_t used = 0;
        st = pk_load(&c, buf + at, (size_t)size - at, &used, &obj[i], err, errlen);
        at += used;
        if (!st && i < 3) st = check_header(path, i, obj[i], err, errlen);
    }
    lctx l = {.path = path};
    if (!st) st = walk_data(path, &arena, obj[4], buf, (size_t)size, at, &l, err, errlen);
    const pth_source src = {.path = path, .file_size = size, .ctx = &l, .storage = legacy_storage};
    if (!st) st = pth_select(&src, obj[3], key, out, err, errlen);
    free(l.seg);
    pv_arena_free(&arena);
    free(buf);
    if (!st) snprintf(out->format, sizeof out->format, "legacy");
    return st;
}
