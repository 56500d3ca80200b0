/* seed_pth OUTDIR - the seed corpus of fuzz_pth: zip files written by the
 * project's writer (pth_write: a bare state dict, one under "model", every
 * shape kind: scalar, empty, 8-D, many tensors), and legacy files built
 * byte by byte here (five pickles and the data; pth_write writes only the
 * zip format) that reach the unpickler's other paths: views, the legacy
 * view_metadata, parameters, shared storages, nested dicts, int keys,
 * an optimizer-like list, a yacs-like CfgNode (NEWOBJ, SETITEMS, BUILD on
 * a placeholder), floats, big ints, bytes and the memo. Each file is
 * loaded back and must be accepted. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/io/pth.h"

typedef struct {
    unsigned char b[1 << 14];
    size_t n;
} pb;

static void raw(pb *p, const void *s, size_t n) {
    if (p->n + n > sizeof p->b) {
        fprintf(stderr, "seed_pth: builder full\n");
        exit(1);
    }
    memcpy(p->b + p->n, s, n);
    p->n += n;
}
static void op(pb *p, unsigned char c) { raw(p, &c, 1); }
static void u32(pb *p, uint32_t v) {
    for (int i = 0; i < 4; i++) op(p, (unsigned char)(v >> (8 * i)));
}
static void str(pb *p, const char *s) {
    op(p, 'X');
    u32(p, (uint32_t)strlen(s));
    raw(p, s, strlen(s));
}
static void num(pb *p, int32_t v) {
    op(p, 'J');
    u32(p, (uint32_t)v);
}
static void glob(pb *p, const char *m, const char *n) {
    op(p, 'c');
    raw(p, m, strlen(m));
    op(p, '\n');
    raw(p, n, strlen(n));
    op(p, '\n');
}

/* _rebuild_tensor_v2 of a legacy persistent id (view: view_metadata (key+"v", voff, vsize)). */
static void tensor(pb *p, const char *stype, const char *key, int numel, int offset, int nd, const int *shape,
                   const int *stride, int view, int voff, int vsize) {
    glob(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '('), op(p, '('), str(p, "storage"), glob(p, "torch", stype), str(p, key), str(p, "cpu");
    num(p, numel);
    if (view) op(p, '('), str(p, "v"), num(p, voff), num(p, vsize), op(p, 't');
    else op(p, 'N');
    op(p, 't'), op(p, 'Q'), num(p, offset);
    op(p, '(');
    for (int d = 0; d < nd; d++) num(p, shape[d]);
    op(p, 't'), op(p, '(');
    for (int d = 0; d < nd; d++) num(p, stride[d]);
    op(p, 't'), op(p, 0x89), glob(p, "collections", "OrderedDict"), op(p, ')'), op(p, 'R'), op(p, 't');
    op(p, 'R');
}

static int fail(const char *path, const char *err) {
    fprintf(stderr, "seed_pth: %s: %s\n", path, err);
    return 1;
}

static int check(const char *path) {
    pth_file f;
    char err[2048];
    if (pth_load(path, NULL, &f, err, sizeof err)) return fail(path, err);
    pth_free(&f);
    return 0;
}

typedef struct {
    const char *key, *bytes;
    uint64_t count;
    size_t n;
} seg;

static int legacy(const char *dir, const char *name, const pb *obj, const seg *s, int ns) {
    static const unsigned char magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    static pb f;
    f.n = 0;
    op(&f, 0x80), op(&f, 2), op(&f, 0x8a), op(&f, 10), raw(&f, magic, 10), op(&f, '.');
    op(&f, 0x80), op(&f, 2), op(&f, 'M'), op(&f, 0xe9), op(&f, 0x03), op(&f, '.');
    op(&f, 0x80), op(&f, 2), op(&f, '}'), op(&f, '('), str(&f, "protocol_version"), num(&f, 1001);
    str(&f, "little_endian"), op(&f, 0x88), str(&f, "type_sizes"), op(&f, '}'), op(&f, '(');
    str(&f, "short"), op(&f, 'K'), op(&f, 2), str(&f, "int"), op(&f, 'K'), op(&f, 4), str(&f, "long");
    op(&f, 'K'), op(&f, 4), op(&f, 'u'), op(&f, 'u'), op(&f, '.');
    raw(&f, obj->b, obj->n);
    op(&f, 0x80), op(&f, 2), op(&f, ']'), op(&f, '(');
    for (int i = 0; i < ns; i++) str(&f, s[i].key);
    op(&f, 'e'), op(&f, '.');
    for (int i = 0; i < ns; i++) {
        for (int k = 0; k < 8; k++) op(&f, (unsigned char)(s[i].count >> (8 * k)));
        raw(&f, s[i].bytes, s[i].n);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    if (!out || fwrite(f.b, 1, f.n, out) != f.n || fclose(out) != 0) return fail(path, "cannot write");
    return check(path);
}

static int zip(const char *dir, const char *name, const pth_write_entry *e, int n, const char *top) {
    char path[512], err[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (pth_write(path, e, n, top, err, sizeof err)) return fail(path, err);
    return check(path);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seed_pth OUTDIR\n");
        return 2;
    }
    const char *d = argv[1];
    static float v[64];
    static int64_t iv[16];
    for (int i = 0; i < 64; i++) v[i] = (float)i * 0.25f - 3.0f;
    for (int i = 0; i < 16; i++) iv[i] = (int64_t)i * 1000003 - 5;
    const int64_t s34[2] = {3, 4}, s5[1] = {5}, s03[2] = {0, 3}, s8d[8] = {1, 2, 1, 2, 1, 2, 1, 2},
                  s222[3] = {2, 2, 2};
    int rc = 0;
    const pth_write_entry one[1] = {{"w", PTH_F32, 2, s34, v}};
    rc |= zip(d, "zip_one.pth", one, 1, NULL);
    const pth_write_entry model[6] = {{"backbone.patch_embed.proj.weight", PTH_F32, 2, s34, v},
                                      {"backbone.layers.0.blocks.0.attn.relative_position_index", PTH_I64, 1, s5, iv},
                                      {"num_batches_tracked", PTH_I64, 0, NULL, iv},
                                      {"scalar", PTH_F32, 0, NULL, v},
                                      {"empty", PTH_F32, 2, s03, NULL},
                                      {"cube", PTH_F32, 3, s222, v + 8}};
    rc |= zip(d, "zip_model.pth", model, 6, "model");
    rc |= zip(d, "zip_bare.pth", model, 6, NULL);
    const pth_write_entry eight[1] = {{"eight", PTH_F32, 8, s8d, v}};
    rc |= zip(d, "zip_8d.pth", eight, 1, "model");
    rc |= zip(d, "zip_empty.pth", NULL, 0, NULL);
    static pth_write_entry many[40];
    static char names[40][32];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "layers.%d.w", i);
        many[i] = (pth_write_entry){names[i], i % 4 ? PTH_F32 : PTH_I64, 1, s5, i % 4 ? (const void *)v : iv};
    }
    rc |= zip(d, "zip_many.pth", many, 40, "model");

    /* legacy: f32, f16, i32, u8, bool storages; a view, a transposed view, a parameter */
    static char f32[32], f16[8], i32[12], u8[4], b1[3];
    memcpy(f32, v, 32);
    for (int i = 0; i < 8; i++) f16[i] = (char)(i * 29 + 1);
    memcpy(i32, iv, 12);
    memcpy(u8, "\x01\x80\xff\x00", 4);
    memcpy(b1, "\x01\x00\x01", 3);
    const int s2[1] = {2}, s22[2] = {2, 2}, t12[2] = {1, 2}, st1[1] = {1}, s3[1] = {3}, s4[1] = {4};
    static pb o;
    o.n = 0;
    op(&o, 0x80), op(&o, 2), glob(&o, "collections", "OrderedDict"), op(&o, 'q'), op(&o, 0), op(&o, ')');
    op(&o, 'R'), op(&o, '(');
    str(&o, "w"), tensor(&o, "FloatStorage", "0", 8, 1, 2, s22, t12, 0, 0, 0);
    str(&o, "v"), tensor(&o, "FloatStorage", "0", 8, 1, 1, s2, st1, 1, 2, 4);
    str(&o, "h"), tensor(&o, "HalfStorage", "1", 4, 0, 1, s4, st1, 0, 0, 0);
    str(&o, "i"), tensor(&o, "IntStorage", "2", 3, 0, 1, s3, st1, 0, 0, 0);
    str(&o, "u"), tensor(&o, "ByteStorage", "3", 4, 0, 1, s4, st1, 0, 0, 0);
    str(&o, "b"), tensor(&o, "BoolStorage", "4", 3, 0, 1, s3, st1, 0, 0, 0);
    str(&o, "p"), glob(&o, "torch._utils", "_rebuild_parameter");
    tensor(&o, "FloatStorage", "0", 8, 4, 1, s4, st1, 0, 0, 0);
    op(&o, 0x88), op(&o, 'h'), op(&o, 0), op(&o, ')'), op(&o, 'R'), op(&o, 0x87), op(&o, 'R');
    op(&o, 'u'), op(&o, '.');
    const seg segs[5] = {{"0", f32, 8, 32}, {"1", f16, 4, 8}, {"2", i32, 3, 12}, {"3", u8, 4, 4}, {"4", b1, 3, 3}};
    rc |= legacy(d, "legacy_dtypes.pth", &o, segs, 5);

    /* legacy checkpoint: model nested, optimizer with int keys and a list, a CfgNode-like
     * placeholder, floats, a big int, bytes */
    o.n = 0;
    op(&o, 0x80), op(&o, 2), op(&o, '}'), op(&o, 'q'), op(&o, 0), op(&o, '(');
    str(&o, "model"), op(&o, '}'), op(&o, '('), str(&o, "enc"), op(&o, '}'), op(&o, '('), str(&o, "w");
    tensor(&o, "FloatStorage", "0", 8, 0, 1, s4, st1, 0, 0, 0);
    op(&o, 'u'), str(&o, "head"), tensor(&o, "FloatStorage", "0", 8, 4, 1, s4, st1, 0, 0, 0), op(&o, 'u');
    str(&o, "optimizer"), op(&o, '}'), op(&o, '('), str(&o, "state"), op(&o, '}'), op(&o, '('), num(&o, 0);
    op(&o, '}'), op(&o, '('), str(&o, "step"), num(&o, 3), str(&o, "exp_avg");
    tensor(&o, "FloatStorage", "0", 8, 0, 1, s4, st1, 0, 0, 0);
    op(&o, 'u'), op(&o, 'u'), str(&o, "param_groups"), op(&o, ']'), op(&o, '('), op(&o, '}'), op(&o, '(');
    str(&o, "lr"), op(&o, 'G'), raw(&o, "\x3f\x50\x62\x4d\xd2\xf1\xa9\xfc", 8), str(&o, "betas");
    op(&o, 'G'), raw(&o, "\x3f\xec\xcc\xcc\xcc\xcc\xcc\xcd", 8), op(&o, 'G');
    raw(&o, "\x3f\xef\xf7\xce\xd9\x16\x87\x2b", 8), op(&o, 0x86), op(&o, 'u'), op(&o, 'e'), op(&o, 'u');
    str(&o, "config"), glob(&o, "yacs.config", "CfgNode"), op(&o, ')'), op(&o, 0x81), op(&o, '(');
    str(&o, "TAG"), op(&o, 'N'), op(&o, 'u'), op(&o, '}'), op(&o, '('), str(&o, "_immutable"), op(&o, 0x89);
    op(&o, 'u'), op(&o, 'b');
    str(&o, "epoch"), op(&o, 'K'), op(&o, 17), str(&o, "big"), op(&o, 0x8a), op(&o, 9);
    raw(&o, "\x01\x02\x03\x04\x05\x06\x07\x08\x09", 9), str(&o, "bytes"), op(&o, 'C'), op(&o, 2);
    raw(&o, "\x00\x01", 2), str(&o, "self"), op(&o, 'h'), op(&o, 0);
    op(&o, 'u'), op(&o, '.');
    rc |= legacy(d, "legacy_checkpoint.pth", &o, segs, 1);
    return rc;
}
