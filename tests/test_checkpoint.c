/* test_checkpoint.c - checkpoints that cannot lose a run (issue 14): the run
 * identity and retention, validation of every state field and value, the
 * checksum over the header, non-regular files, and "starting fresh" beside
 * unusable checkpoints. Files with a wrong field are made from a valid one
 * by patching the field and recomputing the checksum as the format
 * documents it (checkpoint.h), so each reaches the range check itself. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtlora/base/hash.h"
#include "mtlora/io/safetensors.h"
#include "mtlora/train/adamw.h"
#include "mtlora/train/checkpoint.h"
#include "test_util.h"

#define H1 0x1111222233334444ULL
#define H2 0x5555666677778888ULL
#define RUN_A INT64_C(1700000000000000001)
#define RUN_B INT64_C(1700000000000000002)

typedef struct {
    mt_ctx *ctx;
    param_bank bank;
    float *m, *v;
    char dir[64];
} fixture;

static void fixture_make(fixture *f) {
    mt_ctx *ctx = f->ctx = test_ctx();
    param_bank_init(&f->bank);
    const int64_t w[2] = {4, 3}, b[1] = {4};
    ck_assert_int_eq(param_bank_add(ctx, &f->bank, "a.weight", 2, w, MT_PARAM_TRAINABLE, 1), MT_OK);
    ck_assert_int_eq(param_bank_add(ctx, &f->bank, "a.bias", 1, b, MT_PARAM_TRAINABLE, 0), MT_OK);
    ck_assert_int_eq(param_bank_add(ctx, &f->bank, "bn.running_mean", 1, b, MT_PARAM_BUFFER, 0), MT_OK);
    ck_assert_int_eq(param_bank_add(ctx, &f->bank, "bn.running_var", 1, b, MT_PARAM_BUFFER, 0), MT_OK);
    ck_assert_int_eq(param_bank_alloc(ctx, &f->bank), MT_OK);
    const size_t n = f->bank.n_trainable;
    f->m = alloc_uniform(n, 2, -1.0f, 1.0f);
    f->v = alloc_uniform(n, 3, 0.0f, 1.0f);
    fill_uniform(f->bank.trainable, n, 1, -1.0f, 1.0f);
    fill_uniform(f->bank.buffers, f->bank.n_buffer, 4, 0.5f, 1.5f);
    snprintf(f->dir, sizeof f->dir, "/tmp/mtlora_ckpt_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
}

/* Removes the directory and what the tests put in it (one level). */
static void fixture_free(fixture *f) {
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    if (d) closedir(d);
    rmdir(f->dir);
    param_bank_free(&f->bank);
    free(f->m);
    free(f->v);
    mt_ctx_destroy(f->ctx);
}

/* memmem, which POSIX lacks. */
static unsigned char *find_bytes(unsigned char *b, size_t len, const char *s) {
    const size_t k = strlen(s);
    for (size_t i = 0; i + k <= len; i++)
        if (!memcmp(b + i, s, k)) return b + i;
    return NULL;
}

static ckpt_state state_at(int64_t step, uint64_t hash, int64_t run) {
    ckpt_state s = {step, 0, step, step, 0, hash, 2, 3 * step, run, 0};
    return s;
}

static void write_ok(fixture *f, int64_t step, uint64_t hash, int64_t run, int keep) {
    const ckpt_state s = state_at(step, hash, run);
    char err[1024], path[4200];
    ck_assert_msg(ckpt_write(f->dir, &s, &f->bank, f->m, f->v, keep, path, sizeof path, err, sizeof err) == MT_OK,
                  "%s", err);
}

static void name_of(const fixture *f, int64_t step, char *out, size_t cap) {
    snprintf(out, cap, "%s/ckpt-%08lld.safetensors", f->dir, (long long)step);
}

static int exists(const fixture *f, int64_t step) {
    char p[4200];
    struct stat sb;
    name_of(f, step, p, sizeof p);
    return lstat(p, &sb) == 0;
}

static int count_files(const fixture *f) {
    DIR *d = opendir(f->dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc(*len);
    ck_assert_uint_eq(fread(b, 1, *len, fp), *len);
    fclose(fp);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t len) {
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(b, 1, len, fp), len);
    fclose(fp);
}

/* Copies src to dst with `size` bytes of tensor `name` at element `index`
 * replaced by val (val NULL: unchanged), and the checksum recomputed: FNV-1a
 * 64 of the header and of the data except the checksum's 8 bytes. */
static void patch_copy(const char *src, const char *dst, const char *name, size_t index, const void *val,
                       size_t size) {
    st_file f;
    char err[1024];
    ck_assert_msg(st_load(&f, src, err, sizeof err) == MT_OK, "%s", err);
    const st_tensor *t = st_find(&f, name), *c = st_find(&f, "checksum");
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(c);
    size_t len;
    unsigned char *b = slurp(src, &len);
    const size_t data = (size_t)(f.data - f.file);
    if (val) memcpy(b + data + t->begin + index * size, val, size);
    uint64_t h = mt_fnv1a64(MT_FNV1A64_INIT, b + 8, data - 8);
    h = mt_fnv1a64(h, b + data, c->begin);
    h = mt_fnv1a64(h, b + data + c->end, len - data - c->end);
    memcpy(b + data + c->begin, &h, 8);
    spit(dst, b, len);
    free(b);
    st_free(&f);
}

START_TEST(round_trip_and_identity) {
    fixture f;
    fixture_make(&f);
    write_ok(&f, 10, H1, RUN_A, 3);
    fixture g;
    fixture_make(&g); /* same layout, other values */
    fill_uniform(g.bank.trainable, g.bank.n_trainable, 9, -1.0f, 1.0f);
    char p[4200], err[1024];
    name_of(&f, 10, p, sizeof p);
    ckpt_state s;
    ck_assert_msg(ckpt_load(p, H1, &s, &g.bank, g.m, g.v, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(memcmp(g.bank.trainable, f.bank.trainable, sizeof(float) * f.bank.n_trainable), 0);
    ck_assert_int_eq(memcmp(g.v, f.v, sizeof(float) * f.bank.n_trainable), 0);
    ck_assert_int_eq(memcmp(g.bank.buffers, f.bank.buffers, sizeof(float) * f.bank.n_buffer), 0);
    ck_assert_int_eq(s.step, 10);
    ck_assert_int_eq(s.bn_tracked, 30);
    ck_assert_int_eq(s.run_start, RUN_A);
    ck_assert_int_eq(s.version, CKPT_VERSION);
    ck_assert_uint_eq(s.config_hash, H1);
    /* the identity in words in __metadata__ */
    size_t len;
    unsigned char *b = slurp(p, &len);
    ck_assert_ptr_nonnull(find_bytes(b, len, "config 1111222233334444, started 2023-11-14T22:13:20.000000001Z"));
    /* another configuration's hash: refused naming the field */
    ck_assert_int_eq(ckpt_check(p, H2, &f.bank, &s, err, sizeof err), MT_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "state.config_hash"));
    /* the checksum covers the metadata: one letter of __metadata__ changed */
    unsigned char *at = find_bytes(b, len, "mtlora-checkpoint");
    ck_assert_ptr_nonnull(at);
    at[0] = 'M';
    char q[4200];
    snprintf(q, sizeof q, "%s/meta_edited.safetensors", f.dir);
    spit(q, b, len);
    ck_assert_int_eq(ckpt_check(q, H1, &f.bank, &s, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_msg(strstr(err, "checksum mismatch") && strstr(err, "meta_edited"), "%s", err);
    free(b);
    /* the patcher recomputes the checksum as documented: unchanged copy loads */
    patch_copy(p, q, "state", 0, NULL, 8);
    ck_assert_msg(ckpt_check(q, H1, &f.bank, &s, err, sizeof err) == MT_OK, "%s", err);
    fixture_free(&g);
    fixture_free(&f);
}
END_TEST

/* One recomputed-checksum file per bad field; the message names the file
 * and the field or tensor. */
START_TEST(every_field_range_checked) {
    fixture f;
    fixture_make(&f);
    write_ok(&f, 10, H1, RUN_A, 3);
    char p[4200], q[4200], err[1024];
    name_of(&f, 10, p, sizeof p);
    snprintf(q, sizeof q, "%s/patched.safetensors", f.dir);
    const struct {
        int index;
        int64_t value;
        const char *field;
    } cases[] = {
        {0, -5, "state.step"},         {0, INT64_C(1) << 62, "state.step"}, {1, -1, "state.epoch"},
        {2, -1, "state.batch"},        {3, 9, "state.adam_step"},           {3, -99, "state.adam_step"},
        {4, 11, "state.skipped"},      {6, 0, "state.world"},               {7, 7, "state.version"},
        {8, -3, "state.bn_tracked"},   {9, 0, "state.run_start"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        patch_copy(p, q, "state", (size_t)cases[i].index, &cases[i].value, 8);
        ckpt_state s;
        ck_assert_int_ne(ckpt_check(q, H1, &f.bank, &s, err, sizeof err), MT_OK);
        ck_assert_msg(strstr(err, cases[i].field) && strstr(err, "patched.safetensors"),
                      "%s = %lld: '%s'", cases[i].field, (long long)cases[i].value, err);
    }
    const float nan = NAN, inf = INFINITY, neg = -1.0f;
    const struct {
        const char *tensor;
        size_t index;
        const float *value;
        const char *names;
    } vals[] = {
        {"trainable", 5, &nan, "a.weight[5]"}, {"trainable", 13, &inf, "a.bias[1]"},
        {"adam_m", 0, &nan, "adam_m"},         {"adam_v", 2, &neg, "adam_v"},
        {"buffers", 6, &nan, "bn.running_var[2]"},
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        patch_copy(p, q, vals[i].tensor, vals[i].index, vals[i].value, 4);
        ckpt_state s;
        ck_assert_int_eq(ckpt_check(q, H1, &f.bank, &s, err, sizeof err), MT_ERR_FORMAT);
        ck_assert_msg(strstr(err, vals[i].tensor) && strstr(err, vals[i].names) && strstr(err, "patched"),
                      "%s: '%s'", vals[i].tensor, err);
    }
    /* ckpt_load leaves everything as it was on a refusal */
    float before = f.bank.trainable[0];
    ckpt_state s = {0};
    s.step = 77;
    ck_assert_int_ne(ckpt_load(q, H1, &s, &f.bank, f.m, f.v, err, sizeof err), MT_OK);
    ck_assert_int_eq(s.step, 77);
    ck_assert(f.bank.trainable[0] == before);
    fixture_free(&f);
}
END_TEST

/* The writer refuses what it could not load back, and writes nothing. */
START_TEST(write_refuses_unloadable_state) {
    fixture f;
    fixture_make(&f);
    char err[1024];
    ckpt_state s = state_at(4, H1, 0);
    ck_assert_int_eq(ckpt_write(f.dir, &s, &f.bank, f.m, f.v, 3, NULL, 0, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_msg(strstr(err, "state.run_start") && strstr(err, "not written"), "%s", err);
    s = state_at(4, H1, RUN_A);
    f.bank.trainable[1] = NAN;
    ck_assert_int_eq(ckpt_write(f.dir, &s, &f.bank, f.m, f.v, 3, NULL, 0, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_msg(strstr(err, "a.weight[1]") && strstr(err, "ckpt-00000004"), "%s", err);
    ck_assert_int_eq(count_files(&f), 0);
    fixture_free(&f);
}
END_TEST

/* The case: a corrupt file with a higher step and KEEP 1 must not
 * leave only the corrupt file. */
START_TEST(retention_corrupt_higher_step_keep1) {
    fixture f;
    fixture_make(&f);
    write_ok(&f, 10, H1, RUN_A, 1);
    char p10[4200], p99[4200], err[1024];
    name_of(&f, 10, p10, sizeof p10);
    name_of(&f, 99, p99, sizeof p99);
    size_t len;
    unsigned char *b = slurp(p10, &len);
    b[len - 20] ^= 0x40; /* inside the data: checksum mismatch */
    spit(p99, b, len);
    free(b);
    write_ok(&f, 11, H1, RUN_A, 1);
    ck_assert(!exists(&f, 10) && exists(&f, 11) && exists(&f, 99));
    fixture g;
    fixture_make(&g);
    ckpt_state s;
    ckpt_scan scan;
    ck_assert_msg(ckpt_load_latest(f.dir, H1, 0, &s, &g.bank, g.m, g.v, &scan, err, sizeof err) == MT_OK, "%s", err);
    ck_assert(scan.found);
    ck_assert_int_eq(s.step, 11);
    ck_assert_int_eq(scan.refused, 1);
    ck_assert_msg(strstr(scan.skipped, "ckpt-00000099") && strstr(scan.skipped, "checksum"), "%s", scan.skipped);
    /* resumed (identity restored), the next write keeps the newest valid one */
    write_ok(&f, 12, H1, s.run_start, 1);
    ck_assert(!exists(&f, 11) && exists(&f, 12) && exists(&f, 99));
    fixture_free(&g);
    fixture_free(&f);
}
END_TEST

START_TEST(retention_leaves_other_runs_alone) {
    fixture f;
    fixture_make(&f);
    for (int k = 1; k <= 3; k++) write_ok(&f, k, H1, RUN_A, 2);
    ck_assert(!exists(&f, 1) && exists(&f, 2) && exists(&f, 3));
    write_ok(&f, 5, H2, RUN_A, 1); /* another configuration, keep 1 */
    write_ok(&f, 6, H2, RUN_A, 1);
    ck_assert(exists(&f, 2) && exists(&f, 3) && !exists(&f, 5) && exists(&f, 6));
    write_ok(&f, 7, H1, RUN_B, 1); /* the same configuration, another run */
    ck_assert(exists(&f, 2) && exists(&f, 3) && exists(&f, 6) && exists(&f, 7));
    write_ok(&f, 4, H1, RUN_A, 2);
    ck_assert(!exists(&f, 2) && exists(&f, 3) && exists(&f, 4) && exists(&f, 6) && exists(&f, 7));
    /* a copy under another step's name is not a file this writer made */
    char p3[4200], p20[4200];
    name_of(&f, 3, p3, sizeof p3);
    name_of(&f, 20, p20, sizeof p20);
    size_t len;
    unsigned char *b = slurp(p3, &len);
    spit(p20, b, len);
    free(b);
    /* nor one with a name that is not this writer's */
    char odd[4200];
    snprintf(odd, sizeof odd, "%s/ckpt-3.safetensors", f.dir);
    b = slurp(p3, &len);
    spit(odd, b, len);
    free(b);
    write_ok(&f, 8, H1, RUN_A, 1);
    ck_assert(!exists(&f, 3) && !exists(&f, 4) && exists(&f, 8) && exists(&f, 20));
    ck_assert_int_eq(access(odd, F_OK), 0);
    /* --resume auto: the step-20 copy is refused by its name */
    fixture g;
    fixture_make(&g);
    ckpt_state s;
    ckpt_scan scan;
    char err[1024];
    ck_assert_int_eq(ckpt_load_latest(f.dir, H1, 0, &s, &g.bank, g.m, g.v, &scan, err, sizeof err), MT_OK);
    ck_assert_msg(strstr(scan.skipped, "file name says step 20"), "%s", scan.skipped);
    ck_assert_int_eq(s.step, 8);
    fixture_free(&g);
    fixture_free(&f);
}
END_TEST

/* A version-1 file (the format before the run identity) as the previous
 * writer made it: it loads with identity unknown and retention keeps it. */
START_TEST(version1_loads_and_is_kept) {
    fixture f;
    fixture_make(&f);
    const size_t n = f.bank.n_trainable, nb = f.bank.n_buffer;
    int64_t state[9] = {6, 0, 6, 6, 0, (int64_t)H1, 2, 1, 18};
    uint64_t h = MT_FNV1A64_INIT;
    h = mt_fnv1a64(h, f.bank.trainable, n * 4);
    h = mt_fnv1a64(h, f.m, n * 4);
    h = mt_fnv1a64(h, f.v, n * 4);
    h = mt_fnv1a64(h, f.bank.buffers, nb * 4);
    const int64_t sum = (int64_t)mt_fnv1a64(h, state, sizeof state);
    const int64_t ni = (int64_t)n, nbi = (int64_t)nb, k9 = 9, k1 = 1;
    const st_entry e[6] = {{"trainable", ST_F32, 1, &ni, f.bank.trainable}, {"adam_m", ST_F32, 1, &ni, f.m},
                           {"adam_v", ST_F32, 1, &ni, f.v}, {"buffers", ST_F32, 1, &nbi, f.bank.buffers},
                           {"state", ST_I64, 1, &k9, state}, {"checksum", ST_I64, 1, &k1, &sum}};
    const char *meta[2] = {"format", "mtlora-checkpoint"};
    char p[4200], err[1024];
    name_of(&f, 6, p, sizeof p);
    ck_assert_msg(st_write(p, e, 6, meta, 1, err, sizeof err) == MT_OK, "%s", err);
    ckpt_state s;
    ck_assert_msg(ckpt_check(p, H1, &f.bank, &s, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(s.version, 1);
    ck_assert_int_eq(s.run_start, 0);
    ck_assert_int_eq(s.bn_tracked, 18);
    for (int k = 7; k <= 9; k++) write_ok(&f, k, H1, RUN_A, 1);
    ck_assert(exists(&f, 6) && !exists(&f, 8) && exists(&f, 9));
    /* its old checksum still guards it */
    size_t len;
    unsigned char *b = slurp(p, &len);
    b[len - 40] ^= 1;
    spit(p, b, len);
    free(b);
    ck_assert_int_eq(ckpt_check(p, H1, &f.bank, &s, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err, "checksum mismatch"));
    fixture_free(&f);
}
END_TEST

/* A FIFO named like a checkpoint used to block --resume auto forever; a
 * directory, or a symlink to the FIFO, are no checkpoints either. The test
 * case has a timeout: a blocking open fails it. */
START_TEST(non_regular_files_skipped_without_blocking) {
    fixture f;
    fixture_make(&f);
    write_ok(&f, 5, H1, RUN_A, 1);
    char fifo[4200], dir[4200], link[4200], err[1024];
    name_of(&f, 9, fifo, sizeof fifo);
    name_of(&f, 8, dir, sizeof dir);
    name_of(&f, 7, link, sizeof link);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(symlink(fifo, link), 0);
    fixture g;
    fixture_make(&g);
    ckpt_state s;
    ckpt_scan scan;
    ck_assert_msg(ckpt_load_latest(f.dir, H1, 0, &s, &g.bank, g.m, g.v, &scan, err, sizeof err) == MT_OK, "%s", err);
    ck_assert(scan.found);
    ck_assert_int_eq(s.step, 5);
    ck_assert_int_eq(scan.refused, 3);
    ck_assert_msg(strstr(scan.skipped, "ckpt-00000009.safetensors: a FIFO") &&
                  strstr(scan.skipped, "ckpt-00000008.safetensors: a directory") &&
                  strstr(scan.skipped, "ckpt-00000007.safetensors: a FIFO"), "%s", scan.skipped);
    ck_assert_int_eq(ckpt_load(fifo, H1, &s, &g.bank, g.m, g.v, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_msg(strstr(err, "a FIFO") && strstr(err, "not read"), "%s", err);
    write_ok(&f, 6, H1, RUN_A, 1); /* retention passes them by */
    ck_assert(!exists(&f, 5) && exists(&f, 6) && exists(&f, 7) && exists(&f, 8) && exists(&f, 9));
    fixture_free(&g);
    fixture_free(&f);
}
END_TEST

/* Every checkpoint unusable: an error naming them, unless start-over; an
 * empty or missing RUN.DIR starts fresh. */
START_TEST(all_invalid_is_an_error_unless_start_over) {
    fixture f;
    fixture_make(&f);
    fixture g;
    fixture_make(&g);
    ckpt_state s;
    ckpt_scan scan;
    char err[1024], missing[200];
    ck_assert_int_eq(ckpt_load_latest(f.dir, H1, 0, &s, &g.bank, g.m, g.v, &scan, err, sizeof err), MT_OK);
    ck_assert(!scan.found && !scan.refused);
    snprintf(missing, sizeof missing, "%s/not/there", f.dir);
    ck_assert_int_eq(ckpt_load_latest(missing, H1, 0, &s, &g.bank, g.m, g.v, &scan, err, sizeof err), MT_OK);
    ck_assert(!scan.found);
    write_ok(&f, 3, H2, RUN_A, 3); /* another configuration's */
    write_ok(&f, 4, H1, RUN_A, 3);
    char p4[4200];
    name_of(&f, 4, p4, sizeof p4);
    ck_assert_int_eq(truncate(p4, 100), 0);
    ck_assert_int_eq(ckpt_load_latest(f.dir, H1, 0, &s, &g.bank, g.m, g.v, &scan, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_msg(strstr(err, f.dir) && strstr(err, "2 checkpoint file") && strstr(err, "--start-over"), "%s", err);
    ck_assert_msg(strstr(scan.skipped, "ckpt-00000004") && strstr(scan.skipped, "ckpt-00000003") &&
                  strstr(scan.skipped, "another configuration"), "%s", scan.skipped);
    ck_assert(!scan.found);
    ck_assert_int_eq(ckpt_load_latest(f.dir, H1, 1, &s, &g.bank, g.m, g.v, &scan, err, sizeof err), MT_OK);
    ck_assert(!scan.found);
    ck_assert_int_eq(scan.refused, 2);
    fixture_free(&g);
    fixture_free(&f);
}
END_TEST

START_TEST(adamw_names_the_field) {
    mt_ctx *ctx = test_ctx();
    float p[4] = {0}, g[4] = {1, 1, 1, 1}, m[4] = {0}, v[4] = {0};
    const adamw_group grp = {0, 4, 0.0f};
    ck_assert_int_eq(adamw_step(ctx, p, g, m, v, 4, &grp, 1, adamw_defaults(1e-3f), -99), MT_ERR_ARG);
    ck_assert_msg(strstr(mt_ctx_error(ctx), "step -99") && strstr(mt_ctx_error(ctx), "state.adam_step"), "%s",
                  mt_ctx_error(ctx));
    adamw_config c = adamw_defaults(1e-3f);
    c.beta1 = 7.5f;
    ck_assert_int_eq(adamw_step(ctx, p, g, m, v, 4, &grp, 1, c, 1), MT_ERR_ARG);
    ck_assert_msg(strstr(mt_ctx_error(ctx), "TRAIN.OPTIMIZER.BETAS"), "%s", mt_ctx_error(ctx));
    c = adamw_defaults(1e-3f);
    c.eps = -1.0f;
    ck_assert_int_eq(adamw_step(ctx, p, g, m, v, 4, &grp, 1, c, 1), MT_ERR_ARG);
    ck_assert_msg(strstr(mt_ctx_error(ctx), "TRAIN.OPTIMIZER.EPS"), "%s", mt_ctx_error(ctx));
    mt_ctx_destroy(ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, round_trip_and_identity);
    tcase_add_test(tc, every_field_range_checked);
    tcase_add_test(tc, write_refuses_unloadable_state);
    tcase_add_test(tc, retention_corrupt_higher_step_keep1);
    tcase_add_test(tc, retention_leaves_other_runs_alone);
    tcase_add_test(tc, version1_loads_and_is_kept);
    tcase_add_test(tc, non_regular_files_skipped_without_blocking);
    tcase_add_test(tc, all_invalid_is_an_error_unless_start_over);
    tcase_add_test(tc, adamw_names_the_field);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
