/* test_pth_hostile.c - the .pth reader on hand-built legacy files (five
 * pickles and the data, written byte by byte here, so every opcode and
 * bound can be reached): a valid file with the rare forms (legacy
 * view_metadata, _rebuild_tensor, _rebuild_parameter_with_state, memo,
 * protocol 4 opcodes); MARK nesting at and past the bound, dict nesting
 * and a dict that contains itself, memo ids never put or out of range,
 * lengths past the end, unknown opcodes and protocols, the stack bound,
 * the header pickles (magic, protocol, byte order), data segments that do
 * not match, element counts that overflow, outputs past the budget, calls
 * on values that are not callable; non-regular, empty and foreign files.
 * Every refusal must name the file. Part of the test_pth program. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtlora/io/pth.h"

static char hpath[256], herr[4096];

typedef struct {
    unsigned char *b;
    size_t n, cap;
} pb;

static void raw(pb *p, const void *s, size_t n) {
    if (p->n + n > p->cap) {
        p->cap = (p->n + n) * 2 + 256;
        p->b = realloc(p->b, p->cap);
        ck_assert_ptr_nonnull(p->b);
    }
    memcpy(p->b + p->n, s, n);
    p->n += n;
}
static void op(pb *p, unsigned char c) { raw(p, &c, 1); }
static void u32(pb *p, uint32_t v) {
    for (int i = 0; i < 4; i++) op(p, (unsigned char)(v >> (8 * i)));
}
static void u64(pb *p, uint64_t v) {
    for (int i = 0; i < 8; i++) op(p, (unsigned char)(v >> (8 * i)));
}
static void str(pb *p, const char *s) {
    op(p, 'X');
    u32(p, (uint32_t)strlen(s));
    raw(p, s, strlen(s));
}
static void num(pb *p, int64_t v) { /* BININT or LONG1 */
    if (v >= INT32_MIN && v <= INT32_MAX) {
        op(p, 'J');
        u32(p, (uint32_t)v);
    } else {
        op(p, 0x8a);
        op(p, 8);
        u64(p, (uint64_t)v);
    }
}
static void glob(pb *p, const char *m, const char *n) {
    op(p, 'c');
    raw(p, m, strlen(m));
    op(p, '\n');
    raw(p, n, strlen(n));
    op(p, '\n');
}
static void ints(pb *p, int n, const int64_t *v) {
    op(p, '(');
    for (int i = 0; i < n; i++) num(p, v[i]);
    op(p, 't');
}

/* _rebuild_tensor_v2 over a legacy persistent id; vkey non-NULL: view_metadata. */
static void tensor(pb *p, const char *key, const char *stype, int64_t numel, int64_t offset, int nd,
                   const int64_t *shape, const int64_t *stride, const char *vkey, int64_t voff, int64_t vsize) {
    glob(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '(');
    op(p, '(');
    str(p, "storage");
    glob(p, "torch", stype);
    str(p, key);
    str(p, "cpu");
    num(p, numel);
    if (vkey) {
        op(p, '(');
        str(p, vkey);
        num(p, voff);
        num(p, vsize);
        op(p, 't');
    } else {
        op(p, 'N');
    }
    op(p, 't');
    op(p, 'Q');
    num(p, offset);
    ints(p, nd, shape);
    ints(p, nd, stride);
    op(p, 0x89);
    glob(p, "collections", "OrderedDict");
    op(p, ')');
    op(p, 'R');
    op(p, 't');
    op(p, 'R');
}

typedef struct {
    const char *key;
    uint64_t count;
    const void *data;
    size_t bytes;
} seg;

static const unsigned char MAGIC[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

/* The five pickles (obj is the fourth, whole: PROTO .. STOP) and the data. */
static void write_legacy(const pb *obj, const seg *s, int ns, int little, int64_t proto, const unsigned char *magic) {
    pb f = {0};
    op(&f, 0x80), op(&f, 2), op(&f, 0x8a), op(&f, 10), raw(&f, magic ? magic : MAGIC, 10), op(&f, '.');
    op(&f, 0x80), op(&f, 2), num(&f, proto), op(&f, '.');
    op(&f, 0x80), op(&f, 2), op(&f, '}'), op(&f, '(');
    str(&f, "protocol_version"), num(&f, 1001), str(&f, "little_endian"), op(&f, little ? 0x88 : 0x89);
    str(&f, "type_sizes"), op(&f, '}'), op(&f, '('), str(&f, "short"), num(&f, 2), str(&f, "int"), num(&f, 4);
    str(&f, "long"), num(&f, 4), op(&f, 'u'), op(&f, 'u'), op(&f, '.');
    raw(&f, obj->b, obj->n);
    op(&f, 0x80), op(&f, 2), op(&f, ']');
    if (ns) {
        op(&f, '(');
        for (int i = 0; i < ns; i++) str(&f, s[i].key);
        op(&f, 'e');
    }
    op(&f, '.');
    for (int i = 0; i < ns; i++) {
        u64(&f, s[i].count);
        raw(&f, s[i].data, s[i].bytes);
    }
    FILE *out = fopen(hpath, "wb");
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(fwrite(f.b, 1, f.n, out), f.n);
    ck_assert_int_eq(fclose(out), 0);
    free(f.b);
}

static void begin(pb *p) {
    p->n = 0;
    op(p, 0x80);
    op(p, 2);
}

static const float F8[8] = {0, 1, 2, 3, 4, 5, 6, 7};

/* obj must be refused with needle (and the file named). */
static void refused(const pb *obj, const char *key, const char *needle) {
    const seg s[1] = {{"0", 8, F8, sizeof F8}};
    write_legacy(obj, s, 1, 1, 1001, NULL);
    pth_file f;
    const mt_status st = pth_load(hpath, key, &f, herr, sizeof herr);
    ck_assert_msg(st != MT_OK, "accepted; expected a refusal saying '%s'", needle);
    ck_assert_msg(strstr(herr, hpath) && strstr(herr, needle), "'%s' does not name the file or say '%s'",
                  herr, needle);
    ck_assert_int_eq(f.count, 0);
}

static void setup(void) { snprintf(hpath, sizeof hpath, "/tmp/mtlora_pth_hostile_%d.pth", (int)getpid()); }
static void teardown(void) { remove(hpath); }

START_TEST(valid_rare_forms) {
    pb p = {0};
    const int64_t s22[2] = {2, 2}, t12[2] = {1, 2}, s3[1] = {3}, one[1] = {1};
    const seg s[1] = {{"0", 8, F8, sizeof F8}};
    begin(&p);
    op(&p, '}');
    op(&p, 0x94); /* MEMOIZE (protocol 4) */
    op(&p, '(');
    op(&p, 0x8c), op(&p, 1), op(&p, 't'); /* SHORT_BINUNICODE (protocol 4) */
    tensor(&p, "0", "FloatStorage", 8, 1, 2, s22, t12, NULL, 0, 0); /* [[1, 3], [2, 4]] */
    op(&p, 'U'), op(&p, 4), raw(&p, "view", 4); /* SHORT_BINSTRING (Python 2): a str */
    tensor(&p, "0", "FloatStorage", 8, 1, 1, s3, one, "0v", 2, 5); /* the view from 2, then 1: root[3..6) */
    str(&p, "v1"); /* _rebuild_tensor(storage, offset, size, stride): a scalar */
    glob(&p, "torch._utils", "_rebuild_tensor");
    op(&p, '(');
    op(&p, '('), str(&p, "storage"), glob(&p, "torch", "FloatStorage"), str(&p, "0"), str(&p, "cpu");
    num(&p, 8), op(&p, 'N'), op(&p, 't'), op(&p, 'Q');
    num(&p, 7), op(&p, ')'), op(&p, ')'), op(&p, 't'), op(&p, 'R');
    str(&p, "param"); /* _rebuild_parameter_with_state(tensor, requires_grad, hooks, state) */
    glob(&p, "torch._utils", "_rebuild_parameter_with_state");
    op(&p, '(');
    tensor(&p, "0", "FloatStorage", 8, 0, 1, s3, one, NULL, 0, 0);
    op(&p, 0x88), op(&p, '}'), op(&p, '}'), op(&p, 't'), op(&p, 'R');
    op(&p, 'u');
    op(&p, 'h'), op(&p, 0), op(&p, '0'); /* BINGET of the dict, POP */
    op(&p, '.');
    write_legacy(&p, s, 1, 1, 1001, NULL);
    pth_file f;
    ck_assert_msg(pth_load(hpath, NULL, &f, herr, sizeof herr) == MT_OK, "%s", herr);
    ck_assert_str_eq(f.key, "");
    ck_assert_int_eq(f.count, 4);
    const float *t = f.tensors[0].data, *v = f.tensors[1].data, *v1 = f.tensors[2].data, *pa = f.tensors[3].data;
    ck_assert(t[0] == 1 && t[1] == 3 && t[2] == 2 && t[3] == 4);
    ck_assert(v[0] == 3 && v[1] == 4 && v[2] == 5);
    ck_assert_int_eq(f.tensors[2].ndim, 0);
    ck_assert(v1[0] == 7);
    ck_assert(pa[0] == 0 && pa[2] == 2 && f.tensors[3].is_parameter == 1 && f.tensors[0].is_parameter == 0);
    pth_free(&f);
    /* under a key, beside other values; a number inside the chosen dict is refused by name */
    for (int with_big = 0; with_big < 2; with_big++) {
        begin(&p);
        op(&p, '}'), op(&p, '('), str(&p, "epoch"), num(&p, 3), str(&p, "model"), op(&p, '}'), op(&p, '(');
        str(&p, "t"), tensor(&p, "0", "FloatStorage", 8, 1, 2, s22, t12, NULL, 0, 0);
        if (with_big) str(&p, "big"), num(&p, (int64_t)1 << 40);
        op(&p, 'u'), op(&p, 'u'), op(&p, '.');
        if (with_big) {
            refused(&p, "model", "key 'model': entry big is a int, not a tensor");
            refused(&p, NULL, "the top-level state dict: entry epoch is a int");
            continue;
        }
        write_legacy(&p, s, 1, 1, 1001, NULL);
        ck_assert_msg(pth_load(hpath, NULL, &f, herr, sizeof herr) == MT_OK, "%s", herr);
        ck_assert_str_eq(f.key, "model");
        ck_assert_int_eq(f.count, 1);
        ck_assert_int_eq(f.n_others, 1);
        ck_assert_str_eq(f.others[0].name, "epoch");
        ck_assert_str_eq(f.others[0].kind, "int");
        pth_free(&f);
    }
    /* a view past the view_metadata's window (though inside the root storage) is refused */
    begin(&p);
    op(&p, '}'), op(&p, '('), str(&p, "w"), tensor(&p, "0", "FloatStorage", 8, 3, 1, s3, one, "0v", 2, 5);
    op(&p, 'u'), op(&p, '.');
    refused(&p, NULL, "reaches past the end of storage 0");
    free(p.b);
}
END_TEST

START_TEST(nesting_bounds) {
    pb p = {0};
    for (int depth = 99; depth <= 100; depth++) { /* MARKs, with the dict's: 100 allowed, 101 refused */
        begin(&p);
        op(&p, '}'), op(&p, '('), str(&p, "model"), op(&p, '}'), str(&p, "deep");
        for (int i = 0; i < depth; i++) op(&p, '(');
        for (int i = 0; i < depth; i++) op(&p, 't');
        op(&p, 'u'), op(&p, '.');
        if (depth == 100) {
            refused(&p, NULL, "MARKs nested more than 100 deep");
            continue;
        }
        const seg s[1] = {{"0", 8, F8, sizeof F8}};
        write_legacy(&p, s, 0, 1, 1001, NULL);
        pth_file f;
        ck_assert_msg(pth_load(hpath, NULL, &f, herr, sizeof herr) == MT_OK, "%s", herr);
        ck_assert_int_eq(f.n_others, 1);
        ck_assert_str_eq(f.others[0].kind, "tuple");
        pth_free(&f);
    }
    /* dicts nested 120 deep in the chosen state dict (no MARK involved) */
    begin(&p);
    for (int i = 0; i < 120; i++) op(&p, '}'), str(&p, "a");
    op(&p, '}');
    for (int i = 0; i < 120; i++) op(&p, 's');
    op(&p, '.');
    refused(&p, NULL, "nested more than 100 deep");
    /* a dict that contains itself */
    begin(&p);
    op(&p, '}'), op(&p, 'q'), op(&p, 0), str(&p, "a"), op(&p, 'h'), op(&p, 0), op(&p, 's'), op(&p, '.');
    refused(&p, NULL, "nested more than 100 deep");
    /* the stack bound: 2^22 + 1 Nones */
    begin(&p);
    for (int i = 0; i < (1 << 22) + 1; i++) op(&p, 'N');
    op(&p, '.');
    refused(&p, NULL, "stack deeper than");
    free(p.b);
}
END_TEST

START_TEST(malformed_pickles) {
    pb p = {0};
    begin(&p), op(&p, 'h'), op(&p, 3), op(&p, '.');
    refused(&p, NULL, "memo id");
    begin(&p), op(&p, '}'), op(&p, 'r'), u32(&p, 0x00ffffff), op(&p, '.');
    refused(&p, NULL, "memo id");
    begin(&p), op(&p, 'X'), u32(&p, 0xfffffff0), op(&p, '.');
    refused(&p, NULL, "longer than the bytes left");
    begin(&p), op(&p, 0x8d), u64(&p, UINT64_MAX), op(&p, '.');
    refused(&p, NULL, "longer than the bytes left");
    begin(&p), op(&p, 'X'), u32(&p, 2), op(&p, 0xc3), op(&p, 0x28), op(&p, '.');
    refused(&p, NULL, "not UTF-8");
    begin(&p), raw(&p, "ios\nsystem\n", 11), op(&p, '.');
    refused(&p, NULL, "unsupported opcode 0x69");
    begin(&p), raw(&p, "S'x'\n", 5), op(&p, '.');
    refused(&p, NULL, "unsupported opcode 0x53");
    p.n = 0, op(&p, 0x80), op(&p, 1), op(&p, '}'), op(&p, '.');
    refused(&p, NULL, "pickle protocol");
    p.n = 0, op(&p, 0x80), op(&p, 6), op(&p, '}'), op(&p, '.');
    refused(&p, NULL, "pickle protocol");
    begin(&p), op(&p, '}'), op(&p, '}'), op(&p, '.');
    refused(&p, NULL, "not exactly one object");
    begin(&p), op(&p, '}'); /* no STOP: the next pickle is read as part of it */
    refused(&p, NULL, "pickle 4 of 5 (the object): malformed pickle");
    begin(&p), op(&p, '}'), op(&p, 'u'), op(&p, '.');
    refused(&p, NULL, "without a MARK");
    begin(&p), op(&p, ']'), op(&p, '('), num(&p, 1), op(&p, 'u'), op(&p, '.');
    refused(&p, NULL, "odd number");
    begin(&p), num(&p, 1), op(&p, ')'), op(&p, 'R'), op(&p, '.');
    refused(&p, NULL, "not a callable");
    begin(&p), num(&p, 1), op(&p, ')'), op(&p, 0x81), op(&p, '.');
    refused(&p, NULL, "not a class");
    begin(&p), op(&p, ']'), op(&p, '}'), op(&p, 'b'), op(&p, '.');
    refused(&p, NULL, "no state");
    begin(&p), num(&p, 1), num(&p, 2), op(&p, 's'), op(&p, '.');
    refused(&p, NULL, "SETITEM needs");
    begin(&p), op(&p, '}'), op(&p, 0x95), u64(&p, 1000), op(&p, '.');
    refused(&p, NULL, "FRAME longer");
    begin(&p), op(&p, 0x8b), u32(&p, 0x80000000u), op(&p, '.');
    refused(&p, NULL, "negative length");
    /* an unknown global called, built and given items stays inert: in the state dict it is refused */
    begin(&p), op(&p, '}'), op(&p, '('), str(&p, "w"), glob(&p, "os", "system"), str(&p, "touch /tmp/x");
    op(&p, 0x85), op(&p, 'R'), op(&p, '}'), op(&p, 'b'), op(&p, '('), str(&p, "k"), num(&p, 1), op(&p, 'u');
    op(&p, 'u'), op(&p, '.');
    refused(&p, NULL, "entry w is a placeholder os.system");
    free(p.b);
}
END_TEST

START_TEST(legacy_header_and_data) {
    pb p = {0};
    const int64_t s8[1] = {8}, one[1] = {1};
    begin(&p), op(&p, '}'), op(&p, '('), str(&p, "w");
    tensor(&p, "0", "FloatStorage", 8, 0, 1, s8, one, NULL, 0, 0);
    op(&p, 'u'), op(&p, '.');
    pth_file f;
    const seg good[1] = {{"0", 8, F8, sizeof F8}};
    write_legacy(&p, good, 1, 1, 1001, NULL);
    ck_assert_msg(pth_load(hpath, NULL, &f, herr, sizeof herr) == MT_OK, "%s", herr);
    ck_assert_str_eq(f.format, "legacy");
    ck_assert(!memcmp(f.tensors[0].data, F8, sizeof F8));
    pth_free(&f);
    const struct {
        seg s[2];
        int ns, little;
        int64_t proto;
        const unsigned char *magic;
        const char *needle;
    } bad[] = {
        {{{"0", 8, F8, sizeof F8}}, 1, 0, 1001, NULL, "big-endian"},
        {{{"0", 8, F8, sizeof F8}}, 1, 1, 1000, NULL, "protocol version 1000"},
        {{{"0", 8, F8, sizeof F8}}, 1, 1, 1001, (const unsigned char *)"0123456789", "magic number"},
        {{{"0", 7, F8, 28}}, 1, 1, 1001, NULL, "7 elements in the file, 8 in the pickle"},
        {{{"0", 8, F8, 20}}, 1, 1, 1001, NULL, "past the end of the file"},
        {{{"0", 8, F8, sizeof F8}, {"0", 8, F8, sizeof F8}}, 2, 1, 1001, NULL, "listed twice"},
        {{{"1", 8, F8, sizeof F8}}, 1, 1, 1001, NULL, "storage 0: its data is not found"},
        {{{"0", 8, F8, 0}}, 0, 1, 1001, NULL, "storage 0 has no data"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_legacy(&p, bad[i].s, bad[i].ns, bad[i].little, bad[i].proto, bad[i].magic);
        ck_assert_msg(pth_load(hpath, NULL, &f, herr, sizeof herr) != MT_OK, "case %zu accepted", i);
        ck_assert_msg(strstr(herr, hpath) && strstr(herr, bad[i].needle), "case %zu: '%s' lacks '%s'", i,
                      herr, bad[i].needle);
    }
    /* sizes whose product overflows; a broadcast past the output budget */
    const int64_t huge[3] = {(int64_t)1 << 31, (int64_t)1 << 31, (int64_t)1 << 31}, z3[3] = {0, 0, 0};
    begin(&p), op(&p, '}'), op(&p, '('), str(&p, "w");
    tensor(&p, "0", "FloatStorage", 8, 0, 3, huge, z3, NULL, 0, 0);
    op(&p, 'u'), op(&p, '.');
    refused(&p, NULL, "more than 2^40 elements");
    const int64_t wide[1] = {(int64_t)1 << 30}, zero[1] = {0};
    begin(&p), op(&p, '}'), op(&p, '('), str(&p, "w");
    tensor(&p, "0", "FloatStorage", 8, 0, 1, wide, zero, NULL, 0, 0);
    op(&p, 'u'), op(&p, '.');
    refused(&p, NULL, "more than a");
    /* a storage type that is not read: a placeholder, refused by key */
    begin(&p), op(&p, '}'), op(&p, '('), str(&p, "w");
    tensor(&p, "0", "UntypedStorage", 8, 0, 1, s8, one, NULL, 0, 0);
    op(&p, 'u'), op(&p, '.');
    refused(&p, NULL, "entry w is a placeholder tensor over a placeholder storage of type global torch.UntypedStorage");
    free(p.b);
}
END_TEST

START_TEST(foreign_and_special_files) {
    pth_file f;
    ck_assert_int_eq(pth_load("/nonexistent/x.pth", NULL, &f, herr, sizeof herr), MT_ERR_IO);
    ck_assert(strstr(herr, "/nonexistent/x.pth"));
    ck_assert_int_eq(pth_load("/tmp", NULL, &f, herr, sizeof herr), MT_ERR_IO);
    ck_assert_msg(strstr(herr, "a directory"), "%s", herr);
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s.fifo", hpath);
    remove(fifo);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(pth_load(fifo, NULL, &f, herr, sizeof herr), MT_ERR_IO); /* must not block */
    ck_assert_msg(strstr(herr, "a FIFO"), "%s", herr);
    remove(fifo);
    const struct {
        const char *bytes;
        size_t n;
        const char *needle;
    } files[] = {
        {"", 0, "too short"},
        {"\x80\x02", 2, "too short"},
        {"{\"json\": 1}      ", 16, "not a PyTorch file"},
        {"PK\3\4garbage garbage garbage", 27, "zip archive"},
        {"PK\5\6\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 22, "not in a folder"},
        {"\x80\x02}q\0.\0\0\0\0", 10, "magic number"},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        FILE *o = fopen(hpath, "wb");
        ck_assert_ptr_nonnull(o);
        ck_assert_uint_eq(fwrite(files[i].bytes, 1, files[i].n, o), files[i].n);
        ck_assert_int_eq(fclose(o), 0);
        ck_assert_msg(pth_load(hpath, NULL, &f, herr, sizeof herr) != MT_OK, "file %zu accepted", i);
        ck_assert_msg(strstr(herr, hpath) && strstr(herr, files[i].needle), "file %zu: '%s' lacks '%s'", i,
                      herr, files[i].needle);
    }
    pth_free(NULL);
    pth_free(&f); /* zeroed after a refusal: fine to free again */
    ck_assert_ptr_null(pth_find(&f, "x"));
    ck_assert_str_eq(pth_stype_name(PTH_S_BF16), "BFloat16Storage");
    ck_assert_uint_eq(pth_stype_size(PTH_S_F64), 8);
}
END_TEST

TCase *pth_hostile_tcase(void) {
    TCase *t = tcase_create("hostile");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, valid_rare_forms);
    tcase_add_test(t, nesting_bounds);
    tcase_add_test(t, malformed_pickles);
    tcase_add_test(t, legacy_header_and_data);
    tcase_add_test(t, foreign_and_special_files);
    return t;
}
