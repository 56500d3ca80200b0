/* test_weights_io.c - safetensors reading/writing and model weights by
 * official name: round trip, ImageNet Swin initialisation with plain names,
 * and refusals of malformed, truncated, incomplete or mismatched files;
 * the format's rules (a header that is one object padded with spaces,
 * offsets that tile the data, one __metadata__ of strings, regular files
 * only); atomic_file, which every writer of the tools goes through. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtlora/config/config.h"
#include "mtlora/model/model.h"
#include "mtlora/io/atomic_file.h"
#include "mtlora/io/safetensors.h"
#include "test_util.h"

static char path[256], err[1024];

static mt_model *small_model(mt_ctx *ctx, uint64_t seed) {
    mt_config c;
    mt_config_default(&c);
    const char *kv[][2] = {{"DATA.IMG_SIZE", "32"}, {"MODEL.SWIN.EMBED_DIM", "8"},
                           {"MODEL.SWIN.DEPTHS", "[2, 2]"}, {"MODEL.SWIN.NUM_HEADS", "[1, 2]"},
                           {"MODEL.SWIN.WINDOW_SIZE", "4"}, {"MODEL.DECODER_CHANNELS", "[4, 4]"},
                           {"MODEL.MTLORA.ENABLED", "True"}, {"MODEL.MTLORA.R", "[4]"},
                           {"MODEL.MTLORA.SHARED_SCALE", "[4.0]"}, {"MODEL.MTLORA.DROPOUT", "[0.05]"},
                           {"TASKS", "[semseg, normals]"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        ck_assert_msg(mt_config_set(&c, kv[i][0], kv[i][1], err, sizeof err) == MT_OK, "%s", err);
    ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
    mt_model *m;
    ck_assert_int_eq(mt_model_create(&m, ctx, &c, seed), MT_OK);
    return m;
}

static void write_bytes(const char *p, const void *d, size_t n) {
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(d, 1, n, f);
    fclose(f);
}

START_TEST(round_trip_by_name) {
    mt_ctx *ctx = test_ctx();
    mt_model *a = small_model(ctx, 1), *b = small_model(ctx, 2);
    param_bank *ba = mt_model_bank(a), *bb = mt_model_bank(b);
    ck_assert(memcmp(ba->trainable, bb->trainable, ba->n_trainable * sizeof(float)) != 0);
    snprintf(path, sizeof path, "/tmp/mtlora_w_%d.safetensors", (int)getpid());
    ck_assert_int_eq(mt_model_save(a, ctx, path), MT_OK);
    ck_assert_msg(mt_model_load(b, ctx, path, MT_LOAD_CHECKPOINT) == MT_OK, "%s", mt_ctx_error(ctx));
    ck_assert(memcmp(ba->trainable, bb->trainable, ba->n_trainable * sizeof(float)) == 0);
    ck_assert(memcmp(ba->frozen, bb->frozen, ba->n_frozen * sizeof(float)) == 0);
    ck_assert(memcmp(ba->buffers, bb->buffers, ba->n_buffer * sizeof(float)) == 0);
    /* the file carries the official buffers too */
    st_file f;
    ck_assert_int_eq(st_load(&f, path, err, sizeof err), MT_OK);
    ck_assert_ptr_nonnull(st_find(&f, "backbone.layers.0.blocks.1.attn_mask"));
    const st_tensor *idx = st_find(&f, "backbone.layers.1.blocks.0.attn.relative_position_index");
    ck_assert_ptr_nonnull(idx);
    ck_assert_int_eq(idx->dtype, ST_I64);
    ck_assert_ptr_nonnull(st_find(&f, "decoders.decoders.normals.last_layer.1.num_batches_tracked"));
    ck_assert_ptr_nonnull(st_find(&f, "backbone.layers.0.blocks.1.attn.proj.lora_tasks_A.normals"));
    st_free(&f);
    remove(path);
    mt_model_destroy(a);
    mt_model_destroy(b);
    mt_ctx_destroy(ctx);
}
END_TEST

START_TEST(malformed_files_refused) {
    snprintf(path, sizeof path, "/tmp/mtlora_bad_%d.safetensors", (int)getpid());
    st_file f;
    write_bytes(path, "abc", 3);
    ck_assert_int_eq(st_load(&f, path, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err, "too short"));
    unsigned char big[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
    write_bytes(path, big, sizeof big);
    ck_assert_int_eq(st_load(&f, path, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err, "header length"));
    const char *cases[][2] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", "expected"},
        {"{\"a\":{\"dtype\":\"Q8\",\"shape\":[2],\"data_offsets\":[0,8]}}", "unsupported dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "do not match"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "truncated"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "lacks"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "integer"},
        {"[1,2]", "expected '{'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *h = cases[i][0];
        size_t hl = strlen(h);
        unsigned char *buf = calloc(1, 8 + hl + 8);
        for (int k = 0; k < 8; k++) buf[k] = (unsigned char)((uint64_t)hl >> (8 * k));
        memcpy(buf + 8, h, hl);
        write_bytes(path, buf, 8 + hl + 8); /* 8 data bytes */
        free(buf);
        mt_status st = st_load(&f, path, err, sizeof err);
        ck_assert_msg(st == MT_ERR_FORMAT, "case %zu accepted", i);
        ck_assert_msg(strstr(err, cases[i][1]) != NULL, "case %zu: '%s' lacks '%s'", i, err, cases[i][1]);
    }
    ck_assert_int_eq(st_load(&f, "/nonexistent/w.safetensors", err, sizeof err), MT_ERR_IO);
    remove(path);
}
END_TEST

START_TEST(incomplete_or_foreign_weights_listed_by_name) {
    mt_ctx *ctx = test_ctx();
    mt_model *m = small_model(ctx, 1);
    param_bank *bank = mt_model_bank(m);
    snprintf(path, sizeof path, "/tmp/mtlora_part_%d.safetensors", (int)getpid());
    /* every tensor but one, one renamed, one wrongly shaped */
    st_entry *e = calloc((size_t)bank->count, sizeof *e);
    int64_t bad_shape[1] = {3};
    int n = 0;
    for (int i = 0; i < bank->count; i++) {
        const param_entry *p = &bank->entries[i];
        if (!strcmp(p->name, "backbone.patch_embed.norm.bias")) continue;
        e[n].name = p->name;
        e[n].dtype = ST_F32;
        e[n].ndim = p->ndim;
        e[n].shape = p->shape;
        e[n].data = param_bank_value(bank, p);
        if (!strcmp(p->name, "backbone.layers.0.blocks.0.norm1.weight")) e[n].name = "backbone.layers.0.blocks.0.norm9.weight";
        if (!strcmp(p->name, "backbone.layers.1.blocks.0.norm1.bias")) { e[n].ndim = 1; e[n].shape = bad_shape; }
        n++;
    }
    ck_assert_int_eq(st_write(path, e, n, NULL, 0, err, sizeof err), MT_OK);
    float before = bank->trainable[0];
    bank->trainable[0] = 123.0f;
    mt_status st = mt_model_load(m, ctx, path, MT_LOAD_CHECKPOINT);
    ck_assert_int_eq(st, MT_ERR_FORMAT);
    const char *msg = mt_ctx_error(ctx);
    ck_assert_ptr_nonnull(strstr(msg, "backbone.patch_embed.norm.bias"));
    ck_assert_ptr_nonnull(strstr(msg, "backbone.layers.0.blocks.0.norm9.weight"));
    ck_assert_ptr_nonnull(strstr(msg, "backbone.layers.1.blocks.0.norm1.bias (file [3]"));
    ck_assert_ptr_nonnull(strstr(msg, "wrongly shaped"));
    ck_assert(bank->trainable[0] == 123.0f); /* nothing half-applied */
    (void)before;
    free(e);
    remove(path);
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
}
END_TEST

/* An ImageNet Swin checkpoint with plain names ("layers.0.blocks.0.attn.qkv.weight",
 * head.*, norm.*, attn_mask, relative_position_index) initialises the encoder. */
static void pretrained_case(const char *prefix) {
    mt_ctx *ctx = test_ctx();
    mt_model *src = small_model(ctx, 5), *dst = small_model(ctx, 6);
    param_bank *bs = mt_model_bank(src), *bd = mt_model_bank(dst);
    snprintf(path, sizeof path, "/tmp/mtlora_pre_%d.safetensors", (int)getpid());
    st_entry *e = calloc((size_t)bs->count + 4, sizeof *e);
    char (*names)[160] = calloc((size_t)bs->count + 4, 160);
    int n = 0;
    for (int i = 0; i < bs->count; i++) {
        const param_entry *p = &bs->entries[i];
        if (strncmp(p->name, "backbone.", 9) || strstr(p->name, "lora_")) continue;
        char plain[160];
        snprintf(plain, sizeof plain, "%s", p->name + 9);
        char *lin = strstr(plain, ".linear.");
        if (lin) memmove(lin, lin + 7, strlen(lin + 7) + 1); /* "qkv.linear.weight" -> "qkv.weight" */
        snprintf(names[n], 160, "%s%s", prefix, plain);
        e[n] = (st_entry){names[n], ST_F32, p->ndim, p->shape, param_bank_value(bs, p)};
        n++;
    }
    static float head_w[10 * 16], norm_w[16];
    static int64_t hs[2] = {10, 16}, ns[1] = {16};
    snprintf(names[n], 160, "%shead.weight", prefix);
    e[n++] = (st_entry){names[n - 1], ST_F32, 2, hs, head_w};
    snprintf(names[n], 160, "%snorm.weight", prefix);
    e[n++] = (st_entry){names[n - 1], ST_F32, 1, ns, norm_w};
    ck_assert_int_eq(st_write(path, e, n, NULL, 0, err, sizeof err), MT_OK);
    float lora_before = bd->trainable[param_bank_find(bd, "backbone.layers.0.blocks.0.attn.qkv.lora_shared_A")->offset];
    ck_assert_msg(mt_model_load(dst, ctx, path, MT_LOAD_PRETRAINED) == MT_OK, "%s", mt_ctx_error(ctx));
    for (int i = 0; i < bd->count; i++) {
        const param_entry *p = &bd->entries[i];
        if (strncmp(p->name, "backbone.", 9) || strstr(p->name, "lora_")) continue;
        ck_assert_msg(memcmp(param_bank_value(bd, p), param_bank_value(bs, param_bank_find(bs, p->name)),
                             p->count * sizeof(float)) == 0, "%s not loaded", p->name);
    }
    ck_assert(bd->trainable[param_bank_find(bd, "backbone.layers.0.blocks.0.attn.qkv.lora_shared_A")->offset] ==
              lora_before);
    free(e);
    free(names);
    remove(path);
    mt_model_destroy(src);
    mt_model_destroy(dst);
    mt_ctx_destroy(ctx);
}

START_TEST(pretrained_plain_names) { pretrained_case(""); }
END_TEST
START_TEST(pretrained_backbone_prefix) { pretrained_case("backbone."); }
END_TEST

/* ---- atomic_file ---- */

static void read_all(const char *p, char *buf, size_t cap) {
    FILE *f = fopen(p, "rb");
    ck_assert_msg(f != NULL, "%s: %s", p, strerror(errno));
    const size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Entries of dir other than "." and ".."; the first one's name in first. */
static int dir_entries(const char *dir, char *first, size_t cap) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !n++) snprintf(first, cap, "%s", e->d_name);
    closedir(d);
    return n;
}

START_TEST(atomic_file_commit_abort) {
    char dir[] = "/tmp/mtlora_atomic_XXXXXX", target[256], got[64], name[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(target, sizeof target, "%s/out.bin", dir);
    /* commit: the file appears under its name with the content, alone */
    ck_assert_msg(atomic_write(target, "first", 5, err, sizeof err) == MT_OK, "%s", err);
    read_all(target, got, sizeof got);
    ck_assert_str_eq(got, "first");
    ck_assert_int_eq(dir_entries(dir, name, sizeof name), 1);
    /* abort after writing: the old content stays, no temporary is left */
    atomic_file af;
    ck_assert_msg(atomic_file_open(&af, target, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(fputs("second, never committed", af.f) >= 0, 1);
    ck_assert_int_eq(fflush(af.f), 0);
    char tmp[sizeof af.tmp];
    snprintf(tmp, sizeof tmp, "%s", af.tmp);
    ck_assert_int_eq(access(tmp, F_OK), 0); /* written beside the target... */
    atomic_file_abort(&af);
    ck_assert_int_ne(access(tmp, F_OK), 0); /* ...and gone */
    atomic_file_abort(&af);                 /* twice is harmless */
    read_all(target, got, sizeof got);
    ck_assert_str_eq(got, "first");
    ck_assert_int_eq(dir_entries(dir, name, sizeof name), 1);
    ck_assert_str_eq(name, "out.bin");
    /* a second commit replaces the content whole */
    ck_assert_msg(atomic_write(target, "third", 5, err, sizeof err) == MT_OK, "%s", err);
    read_all(target, got, sizeof got);
    ck_assert_str_eq(got, "third");
    /* into a directory that does not exist: an error naming the path */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no_such_dir/out.bin", dir);
    err[0] = '\0';
    ck_assert_int_eq(atomic_write(missing, "x", 1, err, sizeof err), MT_ERR_IO);
    ck_assert_msg(strstr(err, missing) != NULL, "'%s' does not name %s", err, missing);
    ck_assert_int_eq(atomic_file_reserve(&af, missing, err, sizeof err), MT_OK);
    err[0] = '\0';
    ck_assert_int_eq(atomic_file_commit(&af, err, sizeof err), MT_ERR_IO);
    ck_assert_msg(strstr(err, missing) != NULL, "'%s' does not name %s", err, missing);
    ck_assert_int_eq(dir_entries(dir, name, sizeof name), 1);
    remove(target);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* jansson parses the header with JSON_REJECT_DUPLICATES: a name twice is
 * refused rather than one of the two silently winning. */
START_TEST(duplicate_names_refused) {
    snprintf(path, sizeof path, "/tmp/mtlora_dup_%d.safetensors", (int)getpid());
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    const size_t hl = strlen(h);
    unsigned char *buf = calloc(1, 8 + hl + 8);
    for (int k = 0; k < 8; k++) buf[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    memcpy(buf + 8, h, hl);
    write_bytes(path, buf, 8 + hl + 8);
    free(buf);
    st_file f;
    ck_assert_int_eq(st_load(&f, path, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_msg(strstr(err, "appears twice") != NULL, "%s", err);
    /* and the writer will not produce such a file */
    const float v[2] = {1, 2};
    const int64_t one = 1;
    const st_entry e[2] = {{"a", ST_F32, 1, &one, v}, {"a", ST_F32, 1, &one, v + 1}};
    remove(path);
    ck_assert_int_eq(st_write(path, e, 2, NULL, 0, err, sizeof err), MT_ERR_ARG);
    ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

/* ---- the format's rules (issue 14) ---- */

/* path <- u64 length of h, h itself (hl bytes, any bytes), data_bytes
 * bytes of data (0, 1, 2, ...). */
static void write_st(const char *h, size_t hl, size_t data_bytes) {
    unsigned char *buf = calloc(1, 8 + hl + data_bytes + 1);
    ck_assert_ptr_nonnull(buf);
    for (int k = 0; k < 8; k++) buf[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    memcpy(buf + 8, h, hl);
    for (size_t i = 0; i < data_bytes; i++) buf[8 + hl + i] = (unsigned char)i;
    write_bytes(path, buf, 8 + hl + data_bytes);
    free(buf);
}

/* st_load on path must refuse with MT_ERR_FORMAT naming the file and each
 * of the non-NULL needles. */
static void expect_st_refused(const char *what, const char *n1, const char *n2) {
    st_file f;
    err[0] = '\0';
    const mt_status st = st_load(&f, path, err, sizeof err);
    ck_assert_msg(st == MT_ERR_FORMAT, "%s: accepted (status %d)", what, st);
    ck_assert_msg(strstr(err, path) != NULL, "%s: '%s' does not name the file", what, err);
    ck_assert_msg(!n1 || strstr(err, n1), "%s: '%s' lacks '%s'", what, err, n1);
    ck_assert_msg(!n2 || strstr(err, n2), "%s: '%s' lacks '%s'", what, err, n2);
    /* the header-only reader applies the same rules */
    ck_assert_msg(st_load_header(&f, path, err, sizeof err) == MT_ERR_FORMAT, "%s: header-only accepted",
                  what);
}

#define TA "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"
#define TB(b, e) "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" #b "," #e "]}"

START_TEST(header_is_one_object_padded_with_spaces) {
    snprintf(path, sizeof path, "/tmp/mtlora_pad_%d.safetensors", (int)getpid());
    st_file f;
    /* accepted: no padding, and padding spaces */
    const char *ok[] = {"{" TA "}", "{" TA "}       ", "{" TA ",\"__metadata__\":{\"k\":\"v\"}}   "};
    for (size_t i = 0; i < 3; i++) {
        write_st(ok[i], strlen(ok[i]), 4);
        ck_assert_msg(st_load(&f, path, err, sizeof err) == MT_OK, "'%s': %s", ok[i], err);
        ck_assert_int_eq(f.count, 1);
        st_free(&f);
    }
    static const struct {
        const char *h;
        size_t nuls; /* NUL bytes after h's text */
        const char *needle;
    } bad[] = {
        {"{" TA "}\n   ", 0, "0x0a"}, /* newline padding */
        {"{" TA "}\t", 0, "0x09"},    /* tab padding */
        {"{" TA "}\r", 0, "0x0d"},
        {"{" TA "} x", 0, "0x78"}, /* text after the object */
        {"{" TA "}", 3, "0x00"},   /* NUL padding */
        {"{" TA "}{}", 0, "end of file expected"},
        {"{" TA "} }", 0, "end of file expected"},
        {" {" TA "}", 0, "expected '{'"}, /* leading whitespace */
        {"\n{" TA "}", 0, "expected '{'"},
        {"", 0, "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char h[256] = {0};
        const size_t n = strlen(bad[i].h) + bad[i].nuls;
        memcpy(h, bad[i].h, strlen(bad[i].h));
        write_st(h, n, 4);
        expect_st_refused(bad[i].h, "malformed safetensors header", bad[i].needle);
    }
    remove(path);
}
END_TEST

START_TEST(offsets_tile_the_data) {
    snprintf(path, sizeof path, "/tmp/mtlora_tile_%d.safetensors", (int)getpid());
    st_file f;
    /* accepted: header order differs from data order; an empty tensor */
    const char *ok = "{" TB(0, 4) "," "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                     "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[8,8]}}";
    write_st(ok, strlen(ok), 8);
    ck_assert_msg(st_load(&f, path, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(f.count, 3);
    float v;
    ck_assert_int_eq(st_read_f32(&f, st_find(&f, "a"), &v, err, sizeof err), MT_OK);
    const unsigned char want[4] = {4, 5, 6, 7};
    ck_assert(memcmp(&v, want, 4) == 0);
    st_free(&f);
    const char *h = "{" TA "," TB(2, 6) "}"; /* b overlaps a */
    write_st(h, strlen(h), 6);
    expect_st_refused("overlap", "tensors a [0, 4) and b [2, 6) overlap", NULL);
    h = "{" TA "," TB(0, 4) "}"; /* the same bytes twice */
    write_st(h, strlen(h), 4);
    expect_st_refused("same range", "overlap", NULL);
    h = "{" TA "," TB(8, 12) "}"; /* a hole [4, 8) */
    write_st(h, strlen(h), 12);
    expect_st_refused("hole", "data bytes [4, 8) before tensor b belong to no tensor", NULL);
    h = "{" TB(4, 8) "}"; /* not starting at 0 */
    write_st(h, strlen(h), 8);
    expect_st_refused("first not at 0", "data bytes [0, 4) before tensor b", NULL);
    h = "{" TA "}"; /* bytes after the last tensor */
    write_st(h, strlen(h), 8);
    expect_st_refused("trailing data", "data bytes [4, 8) after tensor a belong to no tensor", NULL);
    h = "{}";
    write_st(h, strlen(h), 3);
    expect_st_refused("data without tensors", "3 data bytes but no tensors", NULL);
    h = "{\"__metadata__\":{\"k\":\"v\"}}";
    write_st(h, strlen(h), 0);
    ck_assert_msg(st_load(&f, path, err, sizeof err) == MT_OK, "metadata only: %s", err);
    ck_assert_int_eq(f.count, 0);
    st_free(&f);
    remove(path);
}
END_TEST

START_TEST(metadata_once_and_strings) {
    snprintf(path, sizeof path, "/tmp/mtlora_meta_%d.safetensors", (int)getpid());
    const char *h = "{\"__metadata__\":{\"k\":\"v\"}," TA ",\"__metadata__\":{\"k\":\"w\"}}";
    write_st(h, strlen(h), 4);
    expect_st_refused("two __metadata__", "key \"__metadata__\" appears twice", NULL);
    h = "{\"__metadata__\":{\"step\":5}," TA "}";
    write_st(h, strlen(h), 4);
    expect_st_refused("number in metadata", "__metadata__ value of step is not a string", NULL);
    h = "{\"__metadata__\":{\"k\":\"v\",\"k\":\"v\"}," TA "}";
    write_st(h, strlen(h), 4);
    expect_st_refused("key twice in metadata", "key \"__metadata__.k\" appears twice", NULL);
    h = "{\"__metadata__\":[\"k\"]," TA "}";
    write_st(h, strlen(h), 4);
    expect_st_refused("metadata array", "__metadata__", NULL);
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":[[1]]}}";
    write_st(h, strlen(h), 4);
    expect_st_refused("nesting", "nested deeper than 3", "in a.x[0]");
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}";
    write_st(h, strlen(h), 4);
    expect_st_refused("malformed number", "in a.shape", "line 1");
    /* a NUL after a number, which jansson alone would skip */
    static const char nul[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1\0],\"data_offsets\":[0,4]}}";
    write_st(nul, sizeof nul - 1, 4);
    expect_st_refused("NUL after a number", "a NUL byte", "in a.shape[0]");
    remove(path);
}
END_TEST

/* A directory, a FIFO or a device is refused by stat before any open for
 * reading: no "cannot allocate 9223372036854775807 bytes", no blocking. */
START_TEST(non_regular_files_refused_unread) {
    char dir[] = "/tmp/mtlora_nonreg_XXXXXX", fifo[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    st_file f;
    ck_assert_int_eq(st_load(&f, dir, err, sizeof err), MT_ERR_IO);
    ck_assert_msg(strstr(err, dir) && strstr(err, "a directory, not a regular file"), "%s", err);
    snprintf(fifo, sizeof fifo, "%s/ckpt-00000009.safetensors", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(st_load(&f, fifo, err, sizeof err), MT_ERR_IO);
    ck_assert_msg(strstr(err, fifo) && strstr(err, "a FIFO"), "%s", err);
    ck_assert_int_eq(st_load_header(&f, fifo, err, sizeof err), MT_ERR_IO);
    ck_assert_int_eq(st_load(&f, "/dev/zero", err, sizeof err), MT_ERR_IO);
    ck_assert_msg(strstr(err, "/dev/zero") && strstr(err, "character device"), "%s", err);
    remove(fifo);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* Every writer's output is read back under the strict rules: st_write with
 * and without metadata, empty and scalar tensors (checkpoints, exports and
 * bundles all write through st_write; round_trip_by_name covers the model
 * writer); the header-only reader lists the same tensors without data. */
START_TEST(writer_output_passes_the_strict_reader) {
    snprintf(path, sizeof path, "/tmp/mtlora_wr_%d.safetensors", (int)getpid());
    const float v[6] = {1, 2, 3, 4, 5, 6};
    const int64_t iv = 42, s23[2] = {2, 3}, s0[1] = {0}, s1[1] = {1};
    const st_entry e[4] = {{"w", ST_F32, 2, s23, v}, {"empty", ST_F32, 1, s0, v},
                           {"step", ST_I64, 0, NULL, &iv}, {"one", ST_F32, 1, s1, v + 5}};
    const char *meta[4] = {"format", "pt", "note", "caf\xc3\xa9"};
    for (int with_meta = 0; with_meta < 2; with_meta++) {
        ck_assert_msg(st_write(path, e, 4, meta, with_meta ? 2 : 0, err, sizeof err) == MT_OK, "%s", err);
        st_file f, h;
        ck_assert_msg(st_load(&f, path, err, sizeof err) == MT_OK, "%s", err);
        ck_assert_msg(st_load_header(&h, path, err, sizeof err) == MT_OK, "%s", err);
        ck_assert_int_eq(f.count, 4);
        ck_assert_int_eq(h.count, 4);
        ck_assert_ptr_null(h.data);
        ck_assert_uint_eq(h.data_len, f.data_len);
        int64_t got;
        ck_assert_int_eq(st_read_i64(&f, st_find(&f, "step"), &got, err, sizeof err), MT_OK);
        ck_assert_int_eq(got, 42);
        float w[6];
        ck_assert_int_eq(st_read_f32(&f, st_find(&f, "w"), w, err, sizeof err), MT_OK);
        ck_assert(memcmp(w, v, sizeof w) == 0);
        ck_assert_int_eq(st_read_f32(&h, st_find(&h, "w"), w, err, sizeof err), MT_ERR_ARG);
        ck_assert_msg(strstr(err, "header only"), "%s", err);
        st_free(&f);
        st_free(&h);
    }
    remove(path);
}
END_TEST

int main(void) {
    Suite *s = suite_create("weights_io");
    TCase *tc = tcase_create("safetensors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, round_trip_by_name);
    tcase_add_test(tc, malformed_files_refused);
    tcase_add_test(tc, incomplete_or_foreign_weights_listed_by_name);
    tcase_add_test(tc, pretrained_plain_names);
    tcase_add_test(tc, pretrained_backbone_prefix);
    tcase_add_test(tc, duplicate_names_refused);
    tcase_add_test(tc, header_is_one_object_padded_with_spaces);
    tcase_add_test(tc, offsets_tile_the_data);
    tcase_add_test(tc, metadata_once_and_strings);
    tcase_add_test(tc, non_regular_files_refused_unread);
    tcase_add_test(tc, writer_output_passes_the_strict_reader);
    suite_add_tcase(s, tc);
    TCase *ta = tcase_create("atomic_file");
    tcase_add_test(ta, atomic_file_commit_abort);
    suite_add_tcase(s, ta);
    return run_suite(s);
}
