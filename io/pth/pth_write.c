/* pth_write.c - pth_write (pth.h): a state dict of f32 / i64 tensors as
 * torch.save writes it, readable by torch.load(weights_only=True).
 *
 * The pickle (protocol 2, only opcodes torch's weights-only unpickler
 * knows): [EMPTY_DICT 'top_key'] OrderedDict() then, in batches of 1000,
 * MARK name _rebuild_tensor_v2((BINPERSID ('storage', FloatStorage |
 * LongStorage, '<i>', 'cpu', numel), 0, size, stride, False, OrderedDict()))
 * ... SETITEMS [SETITEM] STOP; repeated globals and strings through the
 * memo (BINPUT / BINGET), as Python's pickler writes them.
 *
 * The archive: entries archive/data.pkl, archive/byteorder ("little"),
 * archive/data/<i> (tensor i's elements, little-endian), archive/version
 * ("3\n"), all stored (method 0) with a local extra field (id "FB", 'Z'
 * padding, as torch's writer) that puts each entry's data at a multiple of
 * 64 bytes; then the central directory and its end record. No ZIP64: a
 * file over 4 GiB, or of more than 65535 entries, is refused up front. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/io/atomic_file.h"
#include "pth_internal.h"

#define PREFIX "archive"
#define BATCH 1000 /* SETITEMS batch, as Python's pickler */

/* ---- pickle bytes ------------------------------------------------------------ */

typedef struct {
    unsigned char *b;
    size_t n, cap;
    int bad;        /* out of memory */
    uint32_t memo;  /* next memo id */
} pbuf;

static void put(pbuf *p, const void *s, size_t n) {
    if (p->bad) return;
    if (n > p->cap - p->n) {
        size_t nc = p->cap ? p->cap : 4096;
        while (nc - p->n < n) nc *= 2;
        unsigned char *q = realloc(p->b, nc);
        if (!q) {
            p->bad = 1;
            return;
        }
        p->b = q;
        p->cap = nc;
    }
    memcpy(p->b + p->n, s, n);
    p->n += n;
}

static void op(pbuf *p, unsigned char c) { put(p, &c, 1); }

static void u32(pbuf *p, uint32_t v) {
    const unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                                (unsigned char)(v >> 24)};
    put(p, b, 4);
}

/* BINPUT / LONG_BINPUT of the top value; its id. */
static uint32_t memoize(pbuf *p) {
    const uint32_t id = p->memo++;
    if (id < 256) {
        op(p, 'q');
        op(p, (unsigned char)id);
    } else {
        op(p, 'r');
        u32(p, id);
    }
    return id;
}

static void get(pbuf *p, uint32_t id) {
    if (id < 256) {
        op(p, 'h');
        op(p, (unsigned char)id);
    } else {
        op(p, 'j');
        u32(p, id);
    }
}

static void int_op(pbuf *p, int64_t v) {
    if (v >= 0 && v < 256) {
        op(p, 'K');
        op(p, (unsigned char)v);
    } else if (v >= 0 && v < 65536) {
        op(p, 'M');
        op(p, (unsigned char)v);
        op(p, (unsigned char)(v >> 8));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        op(p, 'J');
        u32(p, (uint32_t)v);
    } else { /* LONG1 of 8 bytes: two's complement, fits any int64 */
        op(p, 0x8a);
        op(p, 8);
        for (int i = 0; i < 8; i++) op(p, (unsigned char)((uint64_t)v >> (8 * i)));
    }
}

static void str_op(pbuf *p, const char *s) {
    op(p, 'X');
    u32(p, (uint32_t)strlen(s));
    put(p, s, strlen(s));
}

static void global_op(pbuf *p, const char *module, const char *name) {
    op(p, 'c');
    put(p, module, strlen(module));
    op(p, '\n');
    put(p, name, strlen(name));
    op(p, '\n');
}

/* A string or global written once, fetched from the memo after. */
typedef struct {
    int set;
    uint32_t id;
} memo_slot;

static void once_str(pbuf *p, memo_slot *m, const char *s) {
    if (m->set) {
        get(p, m->id);
        return;
    }
    str_op(p, s);
    m->id = memoize(p);
    m->set = 1;
}

static void once_global(pbuf *p, memo_slot *m, const char *module, const char *name) {
    if (m->set) {
        get(p, m->id);
        return;
    }
    global_op(p, module, name);
    m->id = memoize(p);
    m->set = 1;
}

static void tuple_op(pbuf *p, const int64_t *v, int n) {
    if (n == 0) {
        op(p, ')');
        return;
    }
    if (n > 3) op(p, '(');
    for (int i = 0; i < n; i++) int_op(p, v[i]);
    op(p, n == 1 ? 0x85 : n == 2 ? 0x86 : n == 3 ? 0x87 : 't');
}

static size_t entry_count(const pth_write_entry *e) {
    size_t c = 1;
    for (int d = 0; d < e->ndim; d++) c *= (size_t)e->shape[d];
    return c;
}

static void build_pickle(pbuf *p, const pth_write_entry *e, int n, const char *top_key) {
    memo_slot od = {0}, rebuild = {0}, storage = {0}, cpu = {0}, ftype = {0}, ltype = {0};
    op(p, 0x80);
    op(p, 2);
    if (top_key) {
        op(p, '}');
        memoize(p);
        str_op(p, top_key);
        memoize(p);
    }
    once_global(p, &od, "collections", "OrderedDict");
    op(p, ')');
    op(p, 'R');
    memoize(p);
    for (int i = 0; i < n; i++) {
        if (i % BATCH == 0) op(p, '(');
        str_op(p, e[i].name);
        memoize(p);
        once_global(p, &rebuild, "torch._utils", "_rebuild_tensor_v2");
        op(p, '(');
        op(p, '('); /* the persistent id */
        once_str(p, &storage, "storage");
        if (e[i].dtype == PTH_F32) once_global(p, &ftype, "torch", "FloatStorage");
        else once_global(p, &ltype, "torch", "LongStorage");
        char key[32];
        snprintf(key, sizeof key, "%d", i);
        str_op(p, key);
        memoize(p);
        once_str(p, &cpu, "cpu");
        int_op(p, (int64_t)entry_count(&e[i]));
        op(p, 't');
        memoize(p);
        op(p, 'Q');
        int_op(p, 0); /* storage offset */
        int64_t stride[PTH_MAX_DIMS];
        int64_t s = 1;
        for (int d = e[i].ndim - 1; d >= 0; d--) { /* contiguous, as torch: a 0 size counts as 1 */
            stride[d] = s;
            s *= e[i].shape[d] > 1 ? e[i].shape[d] : 1;
        }
        tuple_op(p, e[i].shape, e[i].ndim);
        tuple_op(p, stride, e[i].ndim);
        op(p, 0x89); /* requires_grad False */
        get(p, od.id);
        op(p, ')');
        op(p, 'R'); /* backward_hooks: OrderedDict() */
        memoize(p);
        op(p, 't');
        memoize(p);
        op(p, 'R');
        memoize(p);
        if (i % BATCH == BATCH - 1 || i == n - 1) op(p, 'u');
    }
    if (top_key) op(p, 's');
    op(p, '.');
}

/* ---- checks before anything is written -------------------------------------------- */

static int by_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static mt_status check_name(const char *path, const char *what, const char *s, char *err, size_t errlen) {
    const size_t n = s ? strlen(s) : 0;
    if (!n || n >= PTH_NAME_LEN || !pth_utf8_ok((const unsigned char *)s, n))
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: %s %.60s: empty, of %d bytes or more, or not UTF-8",
                       path, what, s ? s : "(null)", PTH_NAME_LEN);
    return MT_OK;
}

static mt_status check_entries(const char *path, const pth_write_entry *e, int n, const char *top_key,
                               uint64_t *file_bytes, char *err, size_t errlen) {
    if (n < 0 || (n && !e) || n > 65535 - 4)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: %d entries: at most 65531 are written (no ZIP64)", path, n);
    mt_status st = top_key ? check_name(path, "top-level key", top_key, err, errlen) : MT_OK;
    uint64_t total = 4 * 256 + 22; /* the small entries' headers and the end record, bounded */
    for (int i = 0; i < n && !st; i++) {
        if ((st = check_name(path, "tensor name", e[i].name, err, errlen))) break;
        if ((e[i].dtype != PTH_F32 && e[i].dtype != PTH_I64) || e[i].ndim < 0 || e[i].ndim > PTH_MAX_DIMS ||
            (e[i].ndim && !e[i].shape))
            return mt_errf(err, errlen, MT_ERR_ARG, "%s: tensor %s: bad dtype or %d dimensions", path,
                           e[i].name, e[i].ndim);
        uint64_t c = 1;
        for (int d = 0; d < e[i].ndim; d++) {
            if (e[i].shape[d] < 0 || e[i].shape[d] > ((int64_t)1 << 40) ||
                (e[i].shape[d] && c > ((uint64_t)1 << 40) / (uint64_t)e[i].shape[d]))
                return mt_errf(err, errlen, MT_ERR_ARG, "%s: tensor %s: bad shape", path, e[i].name);
            c *= (uint64_t)e[i].shape[d];
        }
        if (c && !e[i].data) return mt_errf(err, errlen, MT_ERR_ARG, "%s: tensor %s: no data", path, e[i].name);
        total += c * (e[i].dtype == PTH_F32 ? 4 : 8) + 2 * (46 + 256 + 32 + 64);
        if (total > UINT32_MAX)
            return mt_errf(err, errlen, MT_ERR_ARG, "%s: more than 4 GiB to write (ZIP64 is not written)", path);
    }
    if (st) return st;
    const char **names = n ? malloc((size_t)n * sizeof *names) : NULL;
    if (n && !names) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < n; i++) names[i] = e[i].name;
    if (n) qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 1; i < n && !st; i++)
        if (!strcmp(names[i - 1], names[i]))
            st = mt_errf(err, errlen, MT_ERR_ARG, "%s: tensor name %s given twice", path, names[i]);
    free(names);
    *file_bytes = total;
    return st;
}

/* ---- the archive ---------------------------------------------------------------- */

typedef struct {
    char name[PTH_NAME_LEN + 32];
    uint32_t crc, size, offset;
} zentry;

typedef struct {
    FILE *f;
    uint64_t pos;
    int bad;
    uint32_t crc_table[256];
} zout;

static void w(zout *z, const void *s, size_t n) {
    if (!z->bad && n && fwrite(s, 1, n, z->f) != n) z->bad = 1;
    z->pos += n;
}

static void w16(zout *z, uint32_t v) {
    const unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    w(z, b, 2);
}

static void w32(zout *z, uint32_t v) {
    const unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                                (unsigned char)(v >> 24)};
    w(z, b, 4);
}

static uint32_t crc32_of(const zout *z, const unsigned char *s, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = z->crc_table[(c ^ s[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* Local header (stored, fixed 1980-01-01 time) with the padding extra
 * field, then the data; data starts at a multiple of 64. */
static void put_entry(zout *z, zentry *ze, const char *name, const void *data, size_t n) {
    snprintf(ze->name, sizeof ze->name, "%s", name);
    ze->crc = crc32_of(z, data, n);
    ze->size = (uint32_t)n;
    ze->offset = (uint32_t)z->pos;
    const size_t ln = strlen(name);
    const size_t pad = (size_t)((64 - (z->pos + 30 + ln + 4) % 64) % 64);
    w32(z, 0x04034b50);
    w16(z, 20); /* version needed */
    w16(z, 0);  /* flags */
    w16(z, 0);  /* stored */
    w16(z, 0);  /* time */
    w16(z, 0x21); /* date: 1980-01-01 */
    w32(z, ze->crc);
    w32(z, ze->size);
    w32(z, ze->size);
    w16(z, (uint32_t)ln);
    w16(z, (uint32_t)(4 + pad));
    w(z, name, ln);
    w(z, "FB", 2);
    w16(z, (uint32_t)pad);
    char fill[64];
    memset(fill, 'Z', sizeof fill);
    w(z, fill, pad);
    w(z, data, n);
}

static void put_directory(zout *z, const zentry *ze, int n) {
    const uint64_t start = z->pos;
    for (int i = 0; i < n; i++) {
        const size_t ln = strlen(ze[i].name);
        w32(z, 0x02014b50);
        w16(z, 20); /* version made by */
        w16(z, 20); /* version needed */
        w16(z, 0);
        w16(z, 0);
        w16(z, 0);
        w16(z, 0x21);
        w32(z, ze[i].crc);
        w32(z, ze[i].size);
        w32(z, ze[i].size);
        w16(z, (uint32_t)ln);
        w16(z, 0); /* extra */
        w16(z, 0); /* comment */
        w16(z, 0); /* disk */
        w16(z, 0); /* internal attributes */
        w32(z, 0); /* external attributes */
        w32(z, ze[i].offset);
        w(z, ze[i].name, ln);
    }
    const uint64_t size = z->pos - start;
    w32(z, 0x06054b50);
    w16(z, 0);
    w16(z, 0);
    w16(z, (uint32_t)n);
    w16(z, (uint32_t)n);
    w32(z, (uint32_t)size);
    w32(z, (uint32_t)start);
    w16(z, 0);
}

mt_status pth_write(const char *path, const pth_write_entry *e, int n, const char *top_key, char *err,
                    size_t errlen) {
    if (!path) return mt_errf(err, errlen, MT_ERR_ARG, "pth_write: no path");
    const uint16_t one = 1;
    if (*(const unsigned char *)&one != 1)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: pth_write runs on little-endian hosts only", path);
    uint64_t bytes = 0;
    mt_status st = check_entries(path, e, n, top_key, &bytes, err, errlen);
    if (st) return st;
    pbuf p = {0};
    build_pickle(&p, e, n, top_key);
    zentry *ze = calloc((size_t)n + 3, sizeof *ze);
    if (p.bad || !ze || bytes + p.n > UINT32_MAX) {
        free(p.b);
        free(ze);
        return p.bad || !ze ? mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path)
                            : mt_errf(err, errlen, MT_ERR_ARG, "%s: more than 4 GiB to write", path);
    }
    atomic_file af;
    if ((st = atomic_file_open(&af, path, err, errlen))) {
        free(p.b);
        free(ze);
        return st;
    }
    zout z = {.f = af.f};
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        z.crc_table[i] = c;
    }
    int k = 0;
    put_entry(&z, &ze[k++], PREFIX "/data.pkl", p.b, p.n);
    put_entry(&z, &ze[k++], PREFIX "/byteorder", "little", 6);
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, PREFIX "/data/%d", i);
        put_entry(&z, &ze[k++], name, e[i].data, entry_count(&e[i]) * (e[i].dtype == PTH_F32 ? 4 : 8));
    }
    put_entry(&z, &ze[k++], PREFIX "/version", "3\n", 2);
    put_directory(&z, ze, k);
    free(p.b);
    free(ze);
    if (z.bad) {
        const int e2 = errno;
        atomic_file_abort(&af);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: write failed: %s", path, strerror(e2 ? e2 : EIO));
    }
    return atomic_file_commit(&af, err, errlen);
}
