/* fuzz_pth - the .pth reader (io/pth/, mtlora/io/pth.h) on any bytes:
 * written to a file under $MTLORA_FUZZ_TMP (the reader takes a path) and
 * loaded with the key chosen automatically and with "model". The contract
 * checked on every input, besides crashes, leaks and out-of-bounds reads
 * (ASan, UBSan): a refusal names the file and leaves the pth_file zeroed;
 * an accepted file has tensors whose count is the product of their shape,
 * whose data is readable to its last element (NULL exactly when empty),
 * of the dtype their stored kind converts to, with unique names pth_find
 * finds; and writing them with pth_write and loading that back gives the
 * same tensors. Inputs whose last byte is odd get the CRC of every stored
 * zip entry recomputed first (in the local header and the central
 * directory), so mutations inside data.pkl and the storages reach the
 * unpickler and the tensor code instead of stopping at libzip's CRC check;
 * the others exercise the CRC refusals as they are. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/io/pth.h"

/* Inputs above this are skipped: the checks are all reached by small files. */
#define MAX_INPUT ((size_t)1 << 20)

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_pth: contract broken: %s: %s\n", what, detail);
    abort();
}

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint32_t rd16(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8; }
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

/* Every central directory entry of a stored member whose data lies inside
 * the input: its CRC recomputed and written there and in its local header. */
static void fix_crcs(uint8_t *p, size_t n) {
    if (n < 22) return;
    size_t eocd = n - 22;
    while (eocd > 0 && rd32(p + eocd) != 0x06054b50u) eocd--;
    if (rd32(p + eocd) != 0x06054b50u) return;
    size_t cd = rd32(p + eocd + 16);
    const uint32_t entries = rd16(p + eocd + 10);
    for (uint32_t i = 0; i < entries && cd + 46 <= n && rd32(p + cd) == 0x02014b50u; i++) {
        const uint32_t method = rd16(p + cd + 10), csize = rd32(p + cd + 20);
        const size_t local = rd32(p + cd + 42);
        if (method == 0 && local + 30 <= n && rd32(p + local) == 0x04034b50u) {
            const size_t data = local + 30 + rd16(p + local + 26) + rd16(p + local + 28);
            if (data <= n && csize <= n - data) {
                const uint32_t crc = crc32_of(p + data, csize);
                wr32(p + cd + 16, crc);
                wr32(p + local + 14, crc);
            }
        }
        cd += 46 + rd16(p + cd + 28) + rd16(p + cd + 30) + rd16(p + cd + 32);
    }
}

static size_t elem_size(const pth_tensor *t) { return t->dtype == PTH_F32 ? 4 : 8; }

static void check_accepted(const pth_file *f, const char *path) {
    if (strcmp(f->format, "zip") && strcmp(f->format, "legacy")) die("unknown format", f->format);
    if (f->count < 0 || (f->count && !f->tensors) || f->n_others < 0 || (f->n_others && !f->others))
        die("inconsistent counts", path);
    for (int i = 0; i < f->count; i++) {
        const pth_tensor *t = &f->tensors[i];
        if (!memchr(t->name, 0, sizeof t->name)) die("name not terminated", path);
        if (t->ndim < 0 || t->ndim > PTH_MAX_DIMS) die("bad ndim", t->name);
        size_t c = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) die("negative size", t->name);
            c *= (size_t)t->shape[d];
        }
        if (c != t->count) die("count is not the product of the shape", t->name);
        if ((t->count == 0) != (t->data == NULL)) die("data NULL not exactly when empty", t->name);
        const int is_float = t->stored == PTH_S_F32 || t->stored == PTH_S_F16 || t->stored == PTH_S_BF16 ||
                             t->stored == PTH_S_F64;
        if ((t->dtype == PTH_F32) != is_float) die("dtype does not follow the stored kind", t->name);
        if (t->count) {
            volatile unsigned char last = ((const unsigned char *)t->data)[t->count * elem_size(t) - 1];
            (void)last;
        }
        if (pth_find(f, t->name) != t) die("pth_find does not find the tensor (a name twice?)", t->name);
    }
    for (int i = 0; i < f->n_others; i++)
        if (!memchr(f->others[i].name, 0, PTH_NAME_LEN) || !memchr(f->others[i].kind, 0, PTH_KIND_LEN) ||
            !f->others[i].kind[0])
            die("bad other key", path);
}

/* pth_write of the accepted tensors, loaded back: the same tensors. */
static void round_trip(const pth_file *f, const char *path) {
    size_t bytes = 0;
    for (int i = 0; i < f->count; i++) bytes += f->tensors[i].count * elem_size(&f->tensors[i]);
    if (f->count > 256 || bytes > ((size_t)16 << 20)) return;
    char out[600], err[2048];
    snprintf(out, sizeof out, "%s.rt.pth", path);
    pth_write_entry *e = calloc((size_t)f->count + 1, sizeof *e);
    if (!e) die("out of memory", path);
    for (int i = 0; i < f->count; i++) {
        const pth_tensor *t = &f->tensors[i];
        e[i] = (pth_write_entry){t->name, t->dtype, t->ndim, t->shape, t->data};
    }
    const mt_status st = pth_write(out, e, f->count, "model", err, sizeof err);
    free(e);
    if (st) {
        /* only names the writer may refuse: empty or not UTF-8 (the reader takes any bytes
         * Python decodes, the writer only what it can name) */
        if (st != MT_ERR_ARG || !strstr(err, "tensor name")) die("pth_write refused accepted tensors", err);
        return;
    }
    pth_file g;
    if (pth_load(out, "model", &g, err, sizeof err)) die("the round trip was refused", err);
    if (g.count != f->count) die("the round trip lost tensors", out);
    for (int i = 0; i < f->count; i++) {
        const pth_tensor *a = &f->tensors[i], *b = &g.tensors[i];
        if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->ndim != b->ndim || a->count != b->count ||
            memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof *a->shape) ||
            (a->count && memcmp(a->data, b->data, a->count * elem_size(a))))
            die("the round trip changed a tensor", a->name);
    }
    pth_free(&g);
    unlink(out);
}

static void load_and_check(const char *path, const char *key) {
    pth_file f;
    char err[4096];
    memset(&f, 0x5a, sizeof f);
    const mt_status st = pth_load(path, key, &f, err, sizeof err);
    if (st) {
        if (!strstr(err, path)) die("a refusal that does not name the file", err);
        if (f.count || f.tensors || f.others || f.n_others) die("a refusal left the pth_file set", err);
        return;
    }
    check_accepted(&f, path);
    if (!key) round_trip(&f, path);
    pth_free(&f);
    if (f.tensors || f.count) die("pth_free left tensors", path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > MAX_INPUT) return 0;
    const char *dir = getenv("MTLORA_FUZZ_TMP");
    char path[512];
    snprintf(path, sizeof path, "%s/pth_%d.pth", dir && *dir ? dir : "/tmp", (int)getpid());
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    if (size > 4 && (data[size - 1] & 1) && !memcmp(data, "PK", 2)) fix_crcs(copy, size);
    FILE *out = fopen(path, "wb");
    if (!out) die("cannot create", path);
    const int short_write = size && fwrite(copy, 1, size, out) != size;
    free(copy);
    if (fclose(out) != 0 || short_write) die("cannot write", path);
    load_and_check(path, NULL);
    load_and_check(path, "model");
    unlink(path);
    return 0;
}
