/* test_pth.c - the .pth reader and writer (io/pth/, mtlora/io/pth.h).
 *
 * reference: every file tests/reference/pth_cases.py wrote with Debian's
 * torch.save (MTLORA_PTH_CASES, its cases.txt manifest) loaded and
 * compared bit for bit with what torch itself gives (every dtype, views,
 * shared storages, parameters, nested dicts, checkpoints with optimizer,
 * yacs config and Namespace, both formats, pickle protocols 2 and 4), and
 * each file to refuse (os.system / eval / Popen inside the state dict,
 * views past their storage, truncated, CRC-damaged and tar files) refused
 * with every expected word, the file named; the files calling os.system,
 * eval or Popen never ran them (no PWNED file afterwards).
 * writer: pth_write then pth_load equal, data 64-byte aligned, bad
 * entries refused before anything is written; the written files and a
 * manifest go to MTLORA_PTH_OUT for tests/reference/pth_check.py, which
 * reads them with torch.load(weights_only=True) (ctest pth_torch_check).
 * hostile (test_pth_hostile.c): hand-built pickles at every bound. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtlora/io/pth.h"

TCase *pth_hostile_tcase(void); /* test_pth_hostile.c */

static char err[4096];

/* ---- reference cases --------------------------------------------------------------- */

static char *read_file(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    ck_assert_msg(f != NULL, "%s: %s", p, strerror(errno));
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    const long len = ftell(f);
    ck_assert_int_ge(len, 0);
    rewind(f);
    char *b = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    b[len] = 0;
    *n = (size_t)len;
    return b;
}

/* Splits a manifest line at tabs (in place): up to cap fields. */
static int fields(char *line, char **f, int cap) {
    int n = 0;
    for (char *p = line; n < cap;) {
        f[n++] = p;
        char *t = strchr(p, '\t');
        if (!t) break;
        *t = 0;
        p = t + 1;
    }
    return n;
}

static const char *dtype_word(pth_dtype d) { return d == PTH_F32 ? "f32" : "i64"; }

/* One "ok" case: lines[0] is its ok line, then its tensor and other lines. */
static void check_ok_case(const char *dir, char **lines, int *at) {
    char *f[8];
    ck_assert_int_eq(fields(lines[*at], f, 8), 7);
    char path[1024], expect_path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, f[1]);
    snprintf(expect_path, sizeof expect_path, "%s.expect", path);
    const char *key = strcmp(f[2], "-") ? f[2] : NULL;
    const char *format = f[3], *chosen = strcmp(f[4], "-") ? f[4] : "";
    const int nt = atoi(f[5]), no = atoi(f[6]);
    (*at)++;
    pth_file pf;
    const mt_status st = pth_load(path, key, &pf, err, sizeof err);
    ck_assert_msg(st == MT_OK, "%s (key %s): %s", path, key ? key : "auto", err);
    ck_assert_str_eq(pf.format, format);
    ck_assert_msg(!strcmp(pf.key, chosen), "%s: chose '%s', expected '%s'", path, pf.key, chosen);
    ck_assert_msg(pf.count == nt, "%s: %d tensors, expected %d", path, pf.count, nt);
    ck_assert_msg(pf.n_others == no, "%s: %d other keys, expected %d", path, pf.n_others, no);
    size_t elen = 0;
    char *expect = read_file(expect_path, &elen);
    for (int i = 0; i < nt; i++, (*at)++) {
        char *g[9];
        ck_assert_int_eq(fields(lines[*at], g, 9), 8);
        ck_assert_str_eq(g[0], "tensor");
        const pth_tensor *t = &pf.tensors[i];
        ck_assert_msg(!strcmp(t->name, g[1]), "%s: tensor %d is %s, expected %s", path, i, t->name, g[1]);
        ck_assert_msg(pth_find(&pf, g[1]) == t, "%s: pth_find(%s)", path, g[1]);
        ck_assert_msg(!strcmp(dtype_word(t->dtype), g[2]), "%s: %s is %s", path, t->name, dtype_word(t->dtype));
        ck_assert_msg(!strcmp(pth_stype_name(t->stored), g[3]), "%s: %s stored as %s, expected %s", path,
                      t->name, pth_stype_name(t->stored), g[3]);
        ck_assert_msg(t->is_parameter == atoi(g[4]), "%s: %s: is_parameter %d", path, t->name, t->is_parameter);
        ck_assert_msg(t->ndim == atoi(g[5]), "%s: %s: %d dimensions, expected %s", path, t->name, t->ndim, g[5]);
        size_t count = 1;
        char *dims = g[6];
        for (int d = 0; d < t->ndim; d++) {
            char *end;
            const long long v = strtoll(dims, &end, 10);
            ck_assert_msg(t->shape[d] == v, "%s: %s: size %d is %lld, expected %lld", path, t->name, d,
                          (long long)t->shape[d], v);
            count *= (size_t)v;
            dims = *end ? end + 1 : end;
        }
        ck_assert_uint_eq(t->count, count);
        const size_t off = (size_t)strtoull(g[7], NULL, 10), bytes = count * (t->dtype == PTH_F32 ? 4 : 8);
        ck_assert_msg(off + bytes <= elen, "%s: expected data too short", expect_path);
        ck_assert_msg(bytes == 0 || memcmp(t->data, expect + off, bytes) == 0,
                      "%s: tensor %s differs from what torch gives", path, t->name);
        if (!count) ck_assert_ptr_null(t->data);
    }
    for (int i = 0; i < no; i++, (*at)++) {
        char *g[3];
        ck_assert_int_eq(fields(lines[*at], g, 3), 3);
        ck_assert_str_eq(g[0], "other");
        ck_assert_msg(!strcmp(pf.others[i].name, g[1]) && !strcmp(pf.others[i].kind, g[2]),
                      "%s: other key %d is %s (%s), expected %s (%s)", path, i, pf.others[i].name,
                      pf.others[i].kind, g[1], g[2]);
    }
    free(expect);
    pth_free(&pf);
    ck_assert_int_eq(pf.count, 0);
    ck_assert_ptr_null(pf.tensors);
}

static void check_refuse_case(const char *dir, char *line) {
    char *f[4];
    ck_assert_int_eq(fields(line, f, 4), 4);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, f[1]);
    const char *key = strcmp(f[2], "-") ? f[2] : NULL;
    pth_file pf;
    memset(&pf, 0x5a, sizeof pf);
    const mt_status st = pth_load(path, key, &pf, err, sizeof err);
    ck_assert_msg(st != MT_OK, "%s (key %s): accepted, expected a refusal", path, key ? key : "auto");
    ck_assert_msg(pf.count == 0 && pf.tensors == NULL && pf.others == NULL, "%s: refused but not zeroed", path);
    ck_assert_msg(strstr(err, path) != NULL, "%s: the refusal '%s' does not name the file", path, err);
    for (char *needle = f[3]; needle;) {
        char *bar = strchr(needle, '|');
        if (bar) *bar = 0;
        ck_assert_msg(strstr(err, needle) != NULL, "%s: the refusal '%s' does not say '%s'", path, err, needle);
        needle = bar ? bar + 1 : NULL;
    }
}

START_TEST(reference_cases) {
    const char *dir = getenv("MTLORA_PTH_CASES");
    char manifest[1024];
    snprintf(manifest, sizeof manifest, "%s/cases.txt", dir ? dir : ".");
    if (!dir || access(manifest, R_OK) != 0) {
        fprintf(stderr, "pth: no reference cases (%s): torch missing? skipped\n", manifest);
        return;
    }
    size_t n = 0;
    char *text = read_file(manifest, &n);
    char **lines = NULL;
    int nl = 0;
    for (char *p = text; *p;) {
        char *nlp = strchr(p, '\n');
        if (nlp) *nlp = 0;
        lines = realloc(lines, (size_t)(nl + 1) * sizeof *lines);
        ck_assert_ptr_nonnull(lines);
        lines[nl++] = p;
        if (!nlp) break;
        p = nlp + 1;
    }
    int oks = 0, refusals = 0;
    for (int i = 0; i < nl;) {
        if (!strncmp(lines[i], "ok\t", 3)) {
            check_ok_case(dir, lines, &i);
            oks++;
        } else {
            ck_assert_msg(!strncmp(lines[i], "refuse\t", 7), "%s: line %d: %s", manifest, i + 1, lines[i]);
            check_refuse_case(dir, lines[i++]);
            refusals++;
        }
    }
    ck_assert_int_ge(oks, 20);
    ck_assert_int_ge(refusals, 20);
    char pwned[1100];
    snprintf(pwned, sizeof pwned, "%s/PWNED", dir);
    ck_assert_msg(access(pwned, F_OK) != 0, "%s exists: a pickle's call was run", pwned);
    free(lines);
    free(text);
}
END_TEST

/* ---- writer --------------------------------------------------------------------------- */

#define NBIG 1500 /* more than one SETITEMS batch, memo ids past 255 */

typedef struct {
    pth_write_entry e[NBIG + 16];
    int n;
    char names[NBIG + 16][64];
    int64_t shapes[NBIG + 16][8];
    void *data[NBIG + 16];
} wset;

static void add(wset *w, const char *name, pth_dtype dt, int ndim, const int64_t *shape, uint64_t seed) {
    const int i = w->n++;
    snprintf(w->names[i], sizeof w->names[i], "%s", name);
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        w->shapes[i][d] = shape[d];
        count *= (size_t)shape[d];
    }
    w->data[i] = count ? malloc(count * 8) : NULL;
    for (size_t k = 0; k < count; k++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        if (dt == PTH_F32) ((float *)w->data[i])[k] = (float)((int64_t)(seed >> 40) - (1 << 23)) / 4096.0f;
        else ((int64_t *)w->data[i])[k] = (int64_t)seed;
    }
    w->e[i] = (pth_write_entry){w->names[i], dt, ndim, ndim ? w->shapes[i] : NULL, w->data[i]};
}

static void wset_free(wset *w) {
    for (int i = 0; i < w->n; i++) free(w->data[i]);
}

static void fill_set(wset *w, int many) {
    w->n = 0;
    const int64_t s34[2] = {3, 4}, s5[1] = {5}, s03[2] = {0, 3}, s8d[8] = {1, 2, 1, 2, 1, 2, 1, 3},
                  s1[1] = {1}, s201[3] = {2, 0, 1};
    add(w, "backbone.patch_embed.proj.weight", PTH_F32, 2, s34, 1);
    add(w, "backbone.layers.0.blocks.0.attn.relative_position_index", PTH_I64, 1, s5, 2);
    add(w, "scalar", PTH_F32, 0, NULL, 3);
    add(w, "num_batches_tracked", PTH_I64, 0, NULL, 4);
    add(w, "empty", PTH_F32, 2, s03, 5);
    add(w, "empty_i", PTH_I64, 3, s201, 6);
    add(w, "eight_dims", PTH_F32, 8, s8d, 7);
    add(w, "d\xc3\xa9" "codeur.\xe2\x82\xac", PTH_F32, 1, s1, 8);
    for (int i = 0; many && i < NBIG; i++) {
        char name[64];
        snprintf(name, sizeof name, "many.%d.w", i);
        add(w, name, i % 3 ? PTH_F32 : PTH_I64, 1, s5, 100 + (uint64_t)i);
    }
}

static void check_same(const char *p, const wset *w, const pth_file *f) {
    ck_assert_msg(f->count == w->n, "%s: %d tensors of %d", p, f->count, w->n);
    for (int i = 0; i < w->n; i++) {
        const pth_tensor *t = &f->tensors[i];
        ck_assert_str_eq(t->name, w->e[i].name);
        ck_assert_int_eq(t->dtype, w->e[i].dtype);
        ck_assert_int_eq(t->stored, w->e[i].dtype == PTH_F32 ? PTH_S_F32 : PTH_S_I64);
        ck_assert_int_eq(t->ndim, w->e[i].ndim);
        ck_assert_int_eq(t->is_parameter, 0);
        size_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            ck_assert_int_eq(t->shape[d], w->e[i].shape[d]);
            count *= (size_t)t->shape[d];
        }
        ck_assert_uint_eq(t->count, count);
        ck_assert(count == 0 || !memcmp(t->data, w->e[i].data, count * (t->dtype == PTH_F32 ? 4 : 8)));
    }
}

/* Every local header's data starts at a multiple of 64. */
static void check_aligned(const char *p, int entries) {
    size_t n = 0;
    unsigned char *b = (unsigned char *)read_file(p, &n);
    size_t at = 0;
    int seen = 0;
    while (at + 30 <= n && !memcmp(b + at, "PK\3\4", 4)) {
        const size_t size = b[at + 22] | b[at + 23] << 8 | (size_t)b[at + 24] << 16 | (size_t)b[at + 25] << 24;
        const size_t ln = b[at + 26] | b[at + 27] << 8, le = b[at + 28] | b[at + 29] << 8;
        const size_t data = at + 30 + ln + le;
        ck_assert_msg(data % 64 == 0, "%s: entry %d's data at %zu", p, seen, data);
        ck_assert_uint_eq(b[at + 8], 0); /* stored */
        at = data + size;
        seen++;
    }
    ck_assert_int_eq(seen, entries);
    free(b);
}

/* The file and a manifest line per tensor, for pth_check.py. */
static void export_for_torch(const char *file, const char *top_key, const wset *w) {
    const char *out = getenv("MTLORA_PTH_OUT");
    if (!out) return;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s.manifest", out, file);
    FILE *m = fopen(p, "w");
    ck_assert_ptr_nonnull(m);
    snprintf(p, sizeof p, "%s/%s.expect", out, file);
    FILE *x = fopen(p, "wb");
    ck_assert_ptr_nonnull(x);
    fprintf(m, "file\t%s\t%s\n", file, top_key ? top_key : "-");
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        size_t count = 1;
        fprintf(m, "tensor\t%s\t%s\t%d\t", w->e[i].name, dtype_word(w->e[i].dtype), w->e[i].ndim);
        for (int d = 0; d < w->e[i].ndim; d++) {
            fprintf(m, "%s%lld", d ? "," : "", (long long)w->e[i].shape[d]);
            count *= (size_t)w->e[i].shape[d];
        }
        fprintf(m, "%s\t%zu\n", w->e[i].ndim ? "" : "-", off);
        const size_t bytes = count * (w->e[i].dtype == PTH_F32 ? 4 : 8);
        ck_assert_uint_eq(fwrite(w->e[i].data ? w->e[i].data : "", 1, bytes, x), bytes);
        off += bytes;
    }
    ck_assert_int_eq(fclose(m), 0);
    ck_assert_int_eq(fclose(x), 0);
}

START_TEST(writer_round_trip) {
    const char *out = getenv("MTLORA_PTH_OUT");
    char dir[256];
    snprintf(dir, sizeof dir, "%s", out ? out : "/tmp");
    if (out) mkdir(out, 0755);
    static wset w;
    const char *keys[] = {NULL, "model"};
    for (int many = 0; many < 2; many++)
        for (int k = 0; k < 2; k++) {
            fill_set(&w, many);
            char file[128], p[512];
            snprintf(file, sizeof file, "written_%s_%s%s.pth", many ? "many" : "small", keys[k] ? keys[k] : "bare",
                     out ? "" : "_tmp");
            snprintf(p, sizeof p, "%s/%s", dir, file);
            ck_assert_msg(pth_write(p, w.e, w.n, keys[k], err, sizeof err) == MT_OK, "%s", err);
            check_aligned(p, w.n + 3);
            pth_file f;
            ck_assert_msg(pth_load(p, NULL, &f, err, sizeof err) == MT_OK, "%s", err);
            ck_assert_str_eq(f.format, "zip");
            ck_assert_str_eq(f.key, keys[k] ? keys[k] : "");
            ck_assert_int_eq(f.n_others, 0);
            check_same(p, &w, &f);
            pth_free(&f);
            if (keys[k]) { /* the key named */
                ck_assert_msg(pth_load(p, keys[k], &f, err, sizeof err) == MT_OK, "%s", err);
                check_same(p, &w, &f);
                pth_free(&f);
            }
            if (out) export_for_torch(file, keys[k], &w);
            else remove(p);
            wset_free(&w);
        }
}
END_TEST

START_TEST(writer_refusals) {
    char p[256];
    snprintf(p, sizeof p, "/tmp/mtlora_pth_refused_%d.pth", (int)getpid());
    remove(p);
    const float v[4] = {1, 2, 3, 4};
    const int64_t s4[1] = {4}, neg[1] = {-1}, s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    char longname[PTH_NAME_LEN + 1];
    memset(longname, 'a', PTH_NAME_LEN);
    longname[PTH_NAME_LEN] = 0;
    const struct {
        pth_write_entry e[2];
        int n;
        const char *top, *needle;
    } bad[] = {
        {{{"", PTH_F32, 1, s4, v}}, 1, NULL, "tensor name"},
        {{{"a", PTH_F32, 1, s4, v}, {"a", PTH_F32, 1, s4, v}}, 2, NULL, "given twice"},
        {{{longname, PTH_F32, 1, s4, v}}, 1, NULL, "tensor name"},
        {{{"bad\xff", PTH_F32, 1, s4, v}}, 1, NULL, "not UTF-8"},
        {{{"a", (pth_dtype)7, 1, s4, v}}, 1, NULL, "bad dtype"},
        {{{"a", PTH_F32, 9, s9, v}}, 1, NULL, "9 dimensions"},
        {{{"a", PTH_F32, 1, neg, v}}, 1, NULL, "bad shape"},
        {{{"a", PTH_F32, 1, s4, NULL}}, 1, NULL, "no data"},
        {{{"a", PTH_F32, 1, s4, v}}, 1, "", "top-level key"},
        {{{"a", PTH_F32, 1, s4, v}}, -1, NULL, "entries"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        ck_assert_msg(pth_write(p, bad[i].e, bad[i].n, bad[i].top, err, sizeof err) == MT_ERR_ARG,
                      "case %zu accepted", i);
        ck_assert_msg(strstr(err, p) && strstr(err, bad[i].needle), "case %zu: '%s' lacks '%s'", i, err,
                      bad[i].needle);
        ck_assert_msg(access(p, F_OK) != 0, "case %zu: a file was written", i);
    }
    /* zero tensors is a valid (empty) state dict */
    ck_assert_msg(pth_write(p, NULL, 0, NULL, err, sizeof err) == MT_OK, "%s", err);
    pth_file f;
    ck_assert_msg(pth_load(p, NULL, &f, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(f.count, 0);
    pth_free(&f);
    ck_assert_msg(pth_load(p, "model", &f, err, sizeof err) == MT_ERR_FORMAT, "no 'model' key accepted");
    ck_assert_msg(strstr(err, "no top-level key 'model'") && strstr(err, p), "%s", err);
    remove(p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("pth");
    TCase *tr = tcase_create("reference");
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, reference_cases);
    suite_add_tcase(s, tr);
    TCase *tw = tcase_create("writer");
    tcase_set_timeout(tw, 120);
    tcase_add_test(tw, writer_round_trip);
    tcase_add_test(tw, writer_refusals);
    suite_add_tcase(s, tw);
    suite_add_tcase(s, pth_hostile_tcase());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
