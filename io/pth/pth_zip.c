/* pth_zip.c - the zip format (torch >= 1.6) through libzip
 * (pth_internal.h). The archive is opened with ZIP_CHECKCONS (local and
 * central headers must agree); the prefix is the folder of the first
 * entry, as torch's reader takes it; "<prefix>/data.pkl" is unpickled;
 * "<prefix>/byteorder", if there, must say "little" and
 * "<prefix>/version", if there, must be a number. Each storage a chosen
 * tensor needs is "<prefix>/data/<key>", read whole (so libzip checks its
 * CRC at the end) once, and must hold exactly numel * element size bytes;
 * an entry's size is checked against the file (stored: equal to its
 * compressed size; deflated: at most 1032 times it) before any allocation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zip.h>

#include "pth_internal.h"

#define ENTRY_LEN (PTH_NAME_LEN + 256)

typedef struct {
    char key[208];
    pth_stype stype;
    int64_t numel;
    unsigned char *data;
} cached;

typedef struct {
    const char *path;
    zip_t *za;
    char prefix[PTH_NAME_LEN];
    cached *cache;
    size_t n, cap;
} zctx;

/* The whole entry `name` (max bytes at most) into a malloc'd buffer. */
static mt_status read_entry(zctx *z, const char *name, uint64_t max, unsigned char **out, size_t *len,
                            char *err, size_t errlen) {
    *out = NULL;
    *len = 0;
    const zip_int64_t idx = zip_name_locate(z->za, name, ZIP_FL_ENC_RAW);
    if (idx < 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: entry %s is missing from the archive", z->path, name);
    zip_stat_t sb;
    zip_stat_init(&sb);
    if (zip_stat_index(z->za, (zip_uint64_t)idx, 0, &sb) != 0 ||
        (sb.valid & (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD)) !=
            (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD))
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: entry %s: cannot stat it: %s", z->path, name,
                       zip_strerror(z->za));
    if ((sb.valid & ZIP_STAT_ENCRYPTION_METHOD) && sb.encryption_method != ZIP_EM_NONE)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: entry %s is encrypted", z->path, name);
    if (sb.size > max)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: entry %s: %llu bytes, more than the %llu expected",
                       z->path, name, (unsigned long long)sb.size, (unsigned long long)max);
    if (sb.comp_method == ZIP_CM_STORE ? sb.size != sb.comp_size
                                       : sb.size / 1032 > sb.comp_size)
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: entry %s: %llu bytes from %llu compressed: sizes that do not fit (corrupt?)",
                       z->path, name, (unsigned long long)sb.size, (unsigned long long)sb.comp_size);
    unsigned char *buf = malloc(sb.size ? (size_t)sb.size : 1);
    if (!buf)
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: entry %s: cannot allocate %llu bytes", z->path,
                       name, (unsigned long long)sb.size);
    zip_file_t *zf = zip_fopen_index(z->za, (zip_uint64_t)idx, 0);
    if (!zf) {
        free(buf);
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: entry %s: cannot open it: %s", z->path, name,
                       zip_strerror(z->za));
    }
    uint64_t got = 0;
    mt_status st = MT_OK;
    for (;;) { /* to the end: libzip checks the CRC when the data runs out */
        unsigned char extra;
        unsigned char *dst = got < sb.size ? buf + got : &extra;
        const zip_uint64_t want = got < sb.size ? sb.size - got : 1;
        const zip_int64_t k = zip_fread(zf, dst, want);
        if (k < 0) {
            st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: entry %s: read failed after %llu bytes: %s "
                         "(truncated or corrupt archive)", z->path, name, (unsigned long long)got,
                         zip_error_strerror(zip_file_get_error(zf)));
            break;
        }
        if (k == 0) break;
        if (got >= sb.size) {
            st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: entry %s: longer than the %llu bytes its header "
                         "says", z->path, name, (unsigned long long)sb.size);
            break;
        }
        got += (uint64_t)k;
    }
    zip_fclose(zf);
    if (!st && got != sb.size)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: entry %s: %llu bytes read, %llu expected (truncated?)",
                     z->path, name, (unsigned long long)got, (unsigned long long)sb.size);
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    *len = (size_t)sb.size;
    return MT_OK;
}

static int has_entry(zctx *z, const char *name) { return zip_name_locate(z->za, name, ZIP_FL_ENC_RAW) >= 0; }

/* pth_source.storage: <prefix>/data/<key>, read once. */
static mt_status zip_storage(void *ctx, const pv *sto, const char *tensor, const unsigned char **data,
                             char *err, size_t errlen) {
    zctx *z = ctx;
    const char *key = sto->u.sto->key;
    const size_t es = pth_stype_size(sto->u.sto->stype);
    for (size_t i = 0; i < z->n; i++) {
        if (strcmp(z->cache[i].key, key)) continue;
        if (z->cache[i].stype != sto->u.sto->stype || z->cache[i].numel != sto->u.sto->root_numel)
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s: tensor %s: storage %s is used as %lld elements of %s and as %lld of %s",
                           z->path, tensor, key, (long long)z->cache[i].numel,
                           pth_stype_name(z->cache[i].stype), (long long)sto->u.sto->root_numel,
                           pth_stype_name(sto->u.sto->stype));
        *data = z->cache[i].data;
        return MT_OK;
    }
    char name[ENTRY_LEN];
    snprintf(name, sizeof name, "%s/data/%s", z->prefix, key);
    if ((uint64_t)sto->u.sto->root_numel > PTH_MAX_FILE / es)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: tensor %s: storage %s of %lld elements: larger "
                       "than any file read here", z->path, tensor, key, (long long)sto->u.sto->root_numel);
    const uint64_t want = (uint64_t)sto->u.sto->root_numel * es;
    if (!has_entry(z, name))
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: tensor %s: entry %s (its storage) is missing",
                       z->path, tensor, name);
    if (z->n == z->cap) {
        const size_t nc = z->cap ? z->cap * 2 : 32;
        cached *p = realloc(z->cache, nc * sizeof *p);
        if (!p) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", z->path);
        z->cache = p;
        z->cap = nc;
    }
    unsigned char *buf = NULL;
    size_t len = 0;
    mt_status st = read_entry(z, name, want, &buf, &len, err, errlen);
    if (st) return st;
    if (len != want) {
        free(buf);
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: tensor %s: entry %s holds %zu bytes, its storage %lld elements of %s (%llu bytes)",
                       z->path, tensor, name, len, (long long)sto->u.sto->root_numel,
                       pth_stype_name(sto->u.sto->stype), (unsigned long long)want);
    }
    cached *c = &z->cache[z->n++];
    snprintf(c->key, sizeof c->key, "%s", key);
    c->stype = sto->u.sto->stype;
    c->numel = sto->u.sto->root_numel;
    c->data = buf;
    *data = buf;
    return MT_OK;
}

/* "<prefix>/byteorder" (torch 2.x) must be "little"; "<prefix>/version" a number. */
static mt_status check_small_entries(zctx *z, char *err, size_t errlen) {
    char name[ENTRY_LEN];
    unsigned char *buf = NULL;
    size_t len = 0;
    snprintf(name, sizeof name, "%s/byteorder", z->prefix);
    if (has_entry(z, name)) {
        mt_status st = read_entry(z, name, 16, &buf, &len, err, errlen);
        if (st) return st;
        const int little = len == 6 && !memcmp(buf, "little", 6);
        const int big = len == 3 && !memcmp(buf, "big", 3);
        free(buf);
        if (!little)
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: entry %s: %s; only little-endian files are read",
                           z->path, name, big ? "a big-endian file" : "not 'little' or 'big'");
    }
    snprintf(name, sizeof name, "%s/version", z->prefix);
    if (has_entry(z, name)) {
        mt_status st = read_entry(z, name, 32, &buf, &len, err, errlen);
        if (st) return st;
        size_t i = 0;
        while (i < len && buf[i] >= '0' && buf[i] <= '9') i++;
        const int ok = i > 0 && (i == len || (i + 1 == len && buf[i] == '\n'));
        free(buf);
        if (!ok) return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: entry %s: not a version number", z->path, name);
    }
    return MT_OK;
}

static mt_status open_archive(zctx *z, int fd, char *err, size_t errlen) {
    int code = 0;
    z->za = zip_fdopen(fd, ZIP_CHECKCONS, &code);
    if (!z->za) {
        close(fd);
        zip_error_t ze;
        zip_error_init_with_code(&ze, code);
        mt_status st = mt_errf(err, errlen, MT_ERR_FORMAT,
                               "%s: not a readable zip archive (truncated or corrupt?): %s", z->path,
                               zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    const zip_int64_t n = zip_get_num_entries(z->za, 0);
    const char *first = n > 0 ? zip_get_name(z->za, 0, ZIP_FL_ENC_RAW) : NULL;
    const char *slash = first ? strchr(first, '/') : NULL;
    if (!slash || slash == first || (size_t)(slash - first) >= sizeof z->prefix)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: a zip archive whose first entry (%.100s) is not in "
                       "a folder: not a torch.save file", z->path, first ? first : "none");
    memcpy(z->prefix, first, (size_t)(slash - first));
    z->prefix[slash - first] = 0;
    return MT_OK;
}

mt_status pth_zip_load(const char *path, int fd, uint64_t size, const char *key, pth_file *out,
                       char *err, size_t errlen) {
    zctx z = {.path = path};
    mt_status st = open_archive(&z, fd, err, errlen);
    unsigned char *pkl = NULL;
    size_t plen = 0;
    char name[ENTRY_LEN];
    if (!st) st = check_small_entries(&z, err, errlen);
    if (!st) {
        snprintf(name, sizeof name, "%s/data.pkl", z.prefix);
        st = read_entry(&z, name, PTH_MAX_PICKLE, &pkl, &plen, err, errlen);
    }
    pv_arena arena;
    pv_arena_init(&arena, plen);
    if (!st) {
        const pk_ctx c = {.arena = &arena, .path = path, .entry = name, .legacy = 0};
        pv *top = NULL;
        size_t used = 0;
        st = pk_load(&c, pkl, plen, &used, &top, err, errlen);
        if (!st && used != plen)
            st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %s: %zu bytes after the pickle's STOP", path,
                         name, plen - used);
        const pth_source src = {.path = path, .file_size = size, .ctx = &z, .storage = zip_storage};
        if (!st) st = pth_select(&src, top, key, out, err, errlen);
    }
    pv_arena_free(&arena);
    free(pkl);
    for (size_t i = 0; i < z.n; i++) free(z.cache[i].data);
    free(z.cache);
    if (z.za) zip_discard(z.za);
    if (!st) snprintf(out->format, sizeof out->format, "zip");
    return st;
}
