/* weight_file.c - safetensors or .pth as one st_file (weight_file.h). */
#include "mtlora/io/weight_file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/io/pth.h"
#include "mtlora/io/regular_file.h"

typedef enum { KIND_SAFETENSORS, KIND_PTH, KIND_UNKNOWN } file_kind;

/* The first bytes of path: safetensors, zip, pickle or tar. Anything that
 * is not a regular file (a FIFO would block a plain open) is UNKNOWN: the
 * safetensors reader then names what it is. */
static file_kind sniff(const char *path) {
    unsigned char h[264];
    int fd;
    uint64_t size;
    char err[16];
    if (mt_open_regular(path, &fd, &size, err, sizeof err)) return KIND_UNKNOWN;
    size_t n = 0;
    while (n < sizeof h) {
        const ssize_t k = read(fd, h + n, sizeof h - n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        n += (size_t)k;
    }
    close(fd);
    if (n >= 9) {
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--) len = len << 8 | h[i];
        if (h[8] == '{' && len >= 2 && len < ((uint64_t)1 << 40)) return KIND_SAFETENSORS;
    }
    if (n >= 4 && h[0] == 'P' && h[1] == 'K' && h[2] == 3 && h[3] == 4) return KIND_PTH;
    if (n >= 2 && h[0] == 0x80 && h[1] >= 2 && h[1] <= 5) return KIND_PTH;
    if (n >= 262 && !memcmp(h + 257, "ustar", 5)) return KIND_PTH;
    return KIND_UNKNOWN;
}

int weight_file_is_pth(const char *path) { return path && sniff(path) == KIND_PTH; }

static void note_others(const pth_file *p, weight_file_info *info) {
    size_t used = 0;
    for (int i = 0; i < p->n_others; i++) {
        const size_t room = sizeof info->others - used;
        const int k = snprintf(info->others + used, room, "%s%s (%s)", i ? ", " : "", p->others[i].name,
                               p->others[i].kind);
        if (k < 0 || (size_t)k >= room) {
            /* cut at the last whole entry */
            info->others[used] = '\0';
            if (used + 6 < sizeof info->others) strcat(info->others, ", ...");
            return;
        }
        used += (size_t)k;
    }
}

/* The pth tensors laid out as one safetensors data section. */
static mt_status from_pth(st_file *f, const char *path, const pth_file *p, char *err, size_t errlen) {
    size_t total = 0;
    for (int i = 0; i < p->count; i++) {
        const pth_tensor *t = &p->tensors[i];
        if (strlen(t->name) >= ST_NAME_LEN)
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: tensor name '%.60s...' is %zu bytes (at most %d)", path,
                           t->name, strlen(t->name), ST_NAME_LEN - 1);
        total += t->count * 8; /* f32 tensors use half of it */
    }
    f->tensors = calloc(p->count ? (size_t)p->count : 1, sizeof *f->tensors);
    f->file = malloc(total ? total : 1);
    if (!f->tensors || !f->file) {
        st_free(f);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory for %zu bytes of tensors", path, total);
    }
    size_t off = 0;
    for (int i = 0; i < p->count; i++) {
        const pth_tensor *t = &p->tensors[i];
        st_tensor *o = &f->tensors[i];
        memcpy(o->name, t->name, strlen(t->name) + 1); /* shorter than ST_NAME_LEN: checked above */
        o->dtype = t->dtype == PTH_F32 ? ST_F32 : ST_I64;
        o->ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) o->shape[d] = t->shape[d];
        o->count = t->count;
        const size_t bytes = t->count * (t->dtype == PTH_F32 ? 4 : 8);
        o->begin = off;
        o->end = off + bytes;
        if (bytes) memcpy(f->file + off, t->data, bytes);
        off += bytes;
    }
    f->count = p->count;
    f->file_len = off;
    f->data = f->file;
    f->data_len = off;
    return MT_OK;
}

mt_status weight_file_load(st_file *f, const char *path, weight_file_info *info, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    weight_file_info scratch;
    if (!info) info = &scratch;
    memset(info, 0, sizeof *info);
    if (!path) return mt_errf(err, errlen, MT_ERR_ARG, "weight_file_load: NULL path");
    if (sniff(path) != KIND_PTH) {
        snprintf(info->format, sizeof info->format, "safetensors");
        return st_load(f, path, err, errlen);
    }
    pth_file p;
    mt_status st = pth_load(path, NULL, &p, err, errlen);
    if (st) return st;
    snprintf(info->format, sizeof info->format, "pth (%s)", p.format);
    snprintf(info->key, sizeof info->key, "%s", p.key);
    note_others(&p, info);
    st = from_pth(f, path, &p, err, errlen);
    pth_free(&p);
    return st;
}
