/* test_synthetic.c - the synthetic PASCAL-Context set: layout and split
 * files, byte-identical output for any thread count, a different set for
 * another seed, and labels read back (codec + libmatio) that agree with
 * each other: semseg vs LabelMap, instance masks vs semseg, person parts
 * inside their person, saliency = objects, unit normals.
 *
 * Links only mtlora_pascal (matio, serial HDF5) and Check: the test
 * utilities pull in mtlora_train and its parallel HDF5, which must not share
 * a process with matio's serial one. With MTLORA_SYNTHETIC_DIR set, the
 * set is left there for tests/reference/synthetic_check.py.
 *
 * Why long: the sets are generated once, in main, and every check reads
 * them (and shares the readers of its PNG/MAT files); split files would
 * each generate them again or need a fixture program of their own. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <matio.h>

#include "mtlora/io/image_codec.h"
#include "mtlora/data/pascal_classes.h"
#include "mtlora/data/synthetic_scene.h"
#include "mtlora/io/pascal/synthetic_pascal.h"

enum { PATH_LEN = 4096 };

/* For per-pixel checks: a passing ck_assert writes a mark to Check's pipe,
 * which per pixel costs seconds under the sanitizers. */
#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

static char err[1024];
static char set_dir[PATH_LEN];     /* the set under test (2 threads) */
static char serial_dir[PATH_LEN];  /* the same options on 1 thread */
static char reseeded_dir[PATH_LEN];/* another seed */
static char scratch_root[PATH_LEN];/* mkdtemp root when no directory is given */
static synthetic_opts opts;
static mt_status gen_status[3];
static char gen_err[3][1024];

static const char *const LAYOUT_DIRS[] = {
    "JPEGImages", "ImageSets/Context", "ImageSets/Parts", "semseg/pascal-context",
    "human_parts", "sal_distill", "normals_distill", "pascal-context/trainval",
};

/* snprintf for paths: a path that does not fit fails the test instead of
 * being silently cut. */
static void pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "test_synthetic: path too long: %s\n", out);
        exit(1);
    }
}

/* ---- files -------------------------------------------------------------- */

/* rm -r without following links. */
static void remove_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            char child[PATH_LEN];
            while ((e = readdir(d)) != NULL) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                pathf(child, sizeof child, "%s/%s", path, e->d_name);
                remove_tree(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Removes only what the generator writes, so a given directory that holds
 * something else keeps it. */
static void remove_set(const char *dir) {
    static const char *const tops[] = {"JPEGImages", "ImageSets", "semseg", "human_parts",
                                       "sal_distill", "normals_distill", "pascal-context"};
    char p[PATH_LEN];
    for (size_t i = 0; i < sizeof tops / sizeof tops[0]; i++) {
        pathf(p, sizeof p, "%s/%s", dir, tops[i]);
        remove_tree(p);
    }
    rmdir(dir);
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int dir_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static uint8_t *slurp(const char *path, size_t *n) {
    uint8_t *buf = NULL;
    ck_assert_msg(file_read_all(path, &buf, n, err, sizeof err) == MT_OK, "%s", err);
    return buf;
}

static void image_id(int index, char id[32]) { snprintf(id, 32, "2008_%06d", index + 1); }

static void set_path(char *out, const char *dir, const char *sub, const char *id, const char *ext) {
    pathf(out, PATH_LEN, "%s/%s/%s%s", dir, sub, id, ext);
}

/* Calls visit(relative path) for every regular file under root/rel. */
static void walk_files(const char *root, const char *rel, void (*visit)(const char *rel, void *ctx), void *ctx) {
    char path[PATH_LEN], child[PATH_LEN];
    pathf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    ck_assert_msg(d != NULL, "cannot open %s", path);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        pathf(child, sizeof child, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        char full[PATH_LEN];
        pathf(full, sizeof full, "%s/%s", root, child);
        if (dir_exists(full)) walk_files(root, child, visit, ctx);
        else visit(child, ctx);
    }
    closedir(d);
}

/* ---- generation (once, in main) ---------------------------------------- */

static void small_opts(synthetic_opts *o, uint64_t seed, int threads) {
    synthetic_opts_default(o);
    o->n = 6;
    o->seed = seed;
    o->min_side = 64;
    o->max_side = 120;
    o->threads = threads;
}

static void generate_all(void) {
    const char *given = getenv("MTLORA_SYNTHETIC_DIR");
    if (given && *given) {
        pathf(set_dir, sizeof set_dir, "%s", given);
        pathf(serial_dir, sizeof serial_dir, "%s.1thread", given);
        pathf(reseeded_dir, sizeof reseeded_dir, "%s.seed2", given);
    } else {
        pathf(scratch_root, sizeof scratch_root, "/tmp/mtlora_synth_XXXXXX");
        if (!mkdtemp(scratch_root)) {
            perror("mkdtemp");
            exit(1);
        }
        pathf(set_dir, sizeof set_dir, "%s/set", scratch_root);
        pathf(serial_dir, sizeof serial_dir, "%s/1thread", scratch_root);
        pathf(reseeded_dir, sizeof reseeded_dir, "%s/seed2", scratch_root);
    }
    const char *dirs[3] = {set_dir, serial_dir, reseeded_dir};
    synthetic_opts o[3];
    small_opts(&o[0], 7, 2);
    small_opts(&o[1], 7, 1);
    small_opts(&o[2], 8, 2);
    opts = o[0];
    for (int i = 0; i < 3; i++) {
        remove_set(dirs[i]);
        gen_status[i] = synthetic_pascal_write(dirs[i], &o[i], 1, gen_err[i], sizeof gen_err[i]);
    }
}

static void remove_scratch(void) {
    remove_set(serial_dir);
    remove_set(reseeded_dir);
    if (scratch_root[0]) {
        remove_set(set_dir);
        rmdir(scratch_root);
    }
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(generation_succeeds) {
    for (int i = 0; i < 3; i++) ck_assert_msg(gen_status[i] == MT_OK, "run %d: %s", i, gen_err[i]);
}
END_TEST

START_TEST(defaults_are_pascal_like) {
    synthetic_opts o;
    synthetic_opts_default(&o);
    ck_assert_int_eq(o.min_side, 240);
    ck_assert_int_eq(o.max_side, 500);
    ck_assert_int_eq(o.val_every, 5);
    ck_assert_int_eq(o.threads, 2);
    ck_assert_int_gt(o.n, 0);
}
END_TEST

static void expect_no_tmp(const char *rel, void *ctx) {
    (void)ctx;
    /* the atomic writer's temporaries are "<name>.tmp.<pid>" */
    ck_assert_msg(strstr(rel, ".tmp") == NULL, "left over: %s", rel);
}

static void expect_split(const char *name, int val) {
    char path[PATH_LEN], expect[4096] = "", id[32];
    pathf(path, sizeof path, "%s/ImageSets/Context/%s.txt", set_dir, name);
    for (int i = 0; i < opts.n; i++)
        if (((i + 1) % opts.val_every == 0) == val) {
            image_id(i, id);
            strcat(expect, id);
            strcat(expect, "\n");
        }
    size_t n;
    uint8_t *text = slurp(path, &n);
    ck_assert_msg(n == strlen(expect) && memcmp(text, expect, n) == 0, "%s:\n%.*s\nexpected:\n%s", path,
                  (int)n, (const char *)text, expect);
    free(text);
}

START_TEST(layout_and_splits) {
    char path[PATH_LEN], id[32];
    for (size_t i = 0; i < sizeof LAYOUT_DIRS / sizeof LAYOUT_DIRS[0]; i++) {
        pathf(path, sizeof path, "%s/%s", set_dir, LAYOUT_DIRS[i]);
        ck_assert_msg(dir_exists(path), "missing %s", path);
    }
    static const char *const files[][2] = {
        {"JPEGImages", ".jpg"}, {"semseg/pascal-context", ".png"}, {"human_parts", ".mat"},
        {"sal_distill", ".png"}, {"normals_distill", ".png"}, {"pascal-context/trainval", ".mat"},
    };
    for (int i = 0; i < opts.n; i++) {
        image_id(i, id);
        for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
            set_path(path, set_dir, files[f][0], id, files[f][1]);
            ck_assert_msg(file_exists(path), "missing %s", path);
        }
    }
    expect_split("train", 0);
    expect_split("val", 1);
    walk_files(set_dir, "", expect_no_tmp, NULL);
}
END_TEST

typedef struct {
    const char *other;
    int files;
} compare_ctx;

static void expect_same_file(const char *rel, void *arg) {
    compare_ctx *c = arg;
    char a[PATH_LEN], b[PATH_LEN];
    pathf(a, sizeof a, "%s/%s", set_dir, rel);
    pathf(b, sizeof b, "%s/%s", c->other, rel);
    size_t na, nb;
    uint8_t *da = slurp(a, &na), *db = slurp(b, &nb);
    ck_assert_msg(na == nb && memcmp(da, db, na) == 0, "%s differs between 2 threads and 1", rel);
    free(da);
    free(db);
    c->files++;
}

static void count_file(const char *rel, void *arg) {
    (void)rel;
    ++*(int *)arg;
}

START_TEST(same_bytes_for_any_thread_count) {
    compare_ctx c = {serial_dir, 0};
    walk_files(set_dir, "", expect_same_file, &c);
    int serial_files = 0;
    walk_files(serial_dir, "", count_file, &serial_files);
    ck_assert_int_eq(c.files, 6 * opts.n + 2);
    ck_assert_int_eq(serial_files, c.files);
}
END_TEST

START_TEST(another_seed_another_set) {
    static const char *const files[][2] = {
        {"JPEGImages", ".jpg"}, {"semseg/pascal-context", ".png"}, {"pascal-context/trainval", ".mat"},
    };
    char a[PATH_LEN], b[PATH_LEN], id[32];
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        int differ = 0;
        for (int i = 0; i < opts.n; i++) {
            image_id(i, id);
            set_path(a, set_dir, files[f][0], id, files[f][1]);
            set_path(b, reseeded_dir, files[f][0], id, files[f][1]);
            size_t na, nb;
            uint8_t *da = slurp(a, &na), *db = slurp(b, &nb);
            differ += na != nb || memcmp(da, db, na) != 0;
            free(da);
            free(db);
        }
        ck_assert_msg(differ == opts.n, "%s: only %d of %d differ for another seed", files[f][0], differ, opts.n);
    }
}
END_TEST

/* ---- reading labels back ------------------------------------------------ */

/* A MATLAB char array as a C string (matio may hand back 8- or 16-bit chars). */
static void mat_text(const matvar_t *v, char *out, size_t cap) {
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->class_type, MAT_C_CHAR);
    ck_assert_int_eq(v->rank, 2);
    ck_assert_int_eq((int)v->dims[0], 1);
    size_t n = v->dims[1];
    ck_assert_uint_lt(n, cap);
    for (size_t i = 0; i < n; i++)
        out[i] = v->data_type == MAT_T_UINT16 ? (char)((const uint16_t *)v->data)[i]
                                              : ((const char *)v->data)[i];
    out[n] = '\0';
}

static void expect_fields(matvar_t *st, const char *const *names, unsigned n) {
    ck_assert_int_eq(st->class_type, MAT_C_STRUCT);
    ck_assert_uint_eq(Mat_VarGetNumberOfFields(st), n);
    char *const *got = Mat_VarGetStructFieldnames(st);
    for (unsigned i = 0; i < n; i++) ck_assert_str_eq(got[i], names[i]);
}

/* An h x w uint8 MATLAB matrix into a row-major 0/1 mask. */
static void mat_mask(matvar_t *v, int h, int w, uint8_t *mask) {
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->class_type, MAT_C_UINT8);
    ck_assert_int_eq(v->rank, 2);
    ck_assert_int_eq((int)v->dims[0], h);
    ck_assert_int_eq((int)v->dims[1], w);
    const uint8_t *d = v->data;
    for (int c = 0; c < w; c++)
        for (int r = 0; r < h; r++) {
            EXPECT(d[(size_t)c * h + r] <= 1, "mask value %d", d[(size_t)c * h + r]);
            mask[(size_t)r * w + c] = d[(size_t)c * h + r];
        }
}

static uint16_t *read_labelmap(const char *path, int h, int w) {
    mat_t *m = Mat_Open(path, MAT_ACC_RDONLY);
    ck_assert_msg(m != NULL, "cannot open %s", path);
    matvar_t *v = Mat_VarRead(m, "LabelMap");
    ck_assert_msg(v != NULL, "no LabelMap in %s", path);
    ck_assert_int_eq(v->class_type, MAT_C_UINT16);
    ck_assert_int_eq(v->rank, 2);
    ck_assert_int_eq((int)v->dims[0], h);
    ck_assert_int_eq((int)v->dims[1], w);
    uint16_t *label = malloc((size_t)h * w * sizeof *label);
    const uint16_t *d = v->data;
    for (int c = 0; c < w; c++)
        for (int r = 0; r < h; r++) label[(size_t)r * w + c] = d[(size_t)c * h + r];
    Mat_VarFree(v);
    Mat_Close(m);
    return label;
}

typedef struct {
    int h, w;
    const uint8_t *semseg;
    uint8_t *covered; /* objects per pixel, to find overlaps and gaps */
    int persons;
} anno_check;

/* One person's parts: known names, inside the person, disjoint, covering it. */
static void check_parts(matvar_t *parts, const uint8_t *person, anno_check *a, const char *id) {
    size_t n = (size_t)a->h * a->w, m = parts->dims[0] * parts->dims[1];
    static const char *const names[] = {"part_name", "mask"};
    expect_fields(parts, names, 2);
    ck_assert_msg(m >= 1, "%s: a person without parts", id);
    uint8_t *part = malloc(n), *seen = calloc(n, 1);
    for (size_t i = 0; i < m; i++) {
        char name[32];
        mat_text(Mat_VarGetStructFieldByIndex(parts, 0, i), name, sizeof name);
        ck_assert_msg(pascal_human_part_id(name) > 0, "%s: unknown part %s", id, name);
        mat_mask(Mat_VarGetStructFieldByIndex(parts, 1, i), a->h, a->w, part);
        size_t area = 0;
        for (size_t p = 0; p < n; p++) {
            if (!part[p]) continue;
            EXPECT(person[p], "%s: part %s outside its person", id, name);
            EXPECT(!seen[p], "%s: parts overlap at %s", id, name);
            seen[p] = 1;
            area++;
        }
        ck_assert_msg(area > 0, "%s: empty part %s", id, name);
    }
    for (size_t p = 0; p < n; p++) EXPECT(seen[p] == person[p], "%s: person pixel without part", id);
    free(part);
    free(seen);
}

static void check_object(matvar_t *objs, size_t i, anno_check *a, const char *id) {
    char cls[64];
    size_t n = (size_t)a->h * a->w;
    mat_text(Mat_VarGetStructFieldByIndex(objs, 0, i), cls, sizeof cls);
    matvar_t *ci = Mat_VarGetStructFieldByIndex(objs, 1, i);
    ck_assert(ci && ci->class_type == MAT_C_DOUBLE && ci->dims[0] == 1 && ci->dims[1] == 1);
    double voc = *(const double *)ci->data;
    ck_assert_msg(voc >= 1 && voc <= 20 && voc == floor(voc), "%s: classIndex %g", id, voc);
    ck_assert_str_eq(cls, pascal_voc_names[(int)voc]);
    uint8_t *mask = malloc(n);
    mat_mask(Mat_VarGetStructFieldByIndex(objs, 2, i), a->h, a->w, mask);
    size_t area = 0;
    for (size_t p = 0; p < n; p++) {
        if (!mask[p]) continue;
        EXPECT(a->semseg[p] == (int)voc, "%s: %s mask over semseg %d", id, cls, a->semseg[p]);
        a->covered[p]++;
        area++;
    }
    ck_assert_msg(area > 0, "%s: invisible %s annotated", id, cls);
    matvar_t *parts = Mat_VarGetStructFieldByIndex(objs, 3, i);
    ck_assert_ptr_nonnull(parts);
    if ((int)voc == PASCAL_PERSON_CLASS) {
        a->persons++;
        check_parts(parts, mask, a, id);
    } else {
        ck_assert_msg(parts->dims[0] * parts->dims[1] == 0, "%s: %s has parts", id, cls);
    }
    free(mask);
}

/* human_parts/<id>.mat: anno{imname, objects{class, classIndex, mask, parts}}. */
static int check_anno(const char *path, const char *id, int h, int w, const uint8_t *semseg) {
    mat_t *m = Mat_Open(path, MAT_ACC_RDONLY);
    ck_assert_msg(m != NULL, "cannot open %s", path);
    matvar_t *anno = Mat_VarRead(m, "anno");
    ck_assert_msg(anno != NULL, "no anno in %s", path);
    static const char *const anno_fields[] = {"imname", "objects"};
    static const char *const obj_fields[] = {"class", "classIndex", "mask", "parts"};
    expect_fields(anno, anno_fields, 2);
    ck_assert(anno->dims[0] == 1 && anno->dims[1] == 1);
    char name[64];
    mat_text(Mat_VarGetStructFieldByIndex(anno, 0, 0), name, sizeof name);
    ck_assert_str_eq(name, id);
    matvar_t *objs = Mat_VarGetStructFieldByIndex(anno, 1, 0);
    ck_assert_ptr_nonnull(objs);
    expect_fields(objs, obj_fields, 4);
    ck_assert_int_eq((int)objs->dims[0], 1);
    size_t nobj = objs->dims[1], n = (size_t)h * w;
    ck_assert_msg(nobj >= 1 && nobj <= 4, "%s: %zu objects", id, nobj);
    anno_check a = {h, w, semseg, calloc(n, 1), 0};
    for (size_t i = 0; i < nobj; i++) check_object(objs, i, &a, id);
    for (size_t p = 0; p < n; p++)
        EXPECT(a.covered[p] == (semseg[p] != 0), "%s: pixel %zu in %d masks, semseg %d", id, p,
                      a.covered[p], semseg[p]);
    free(a.covered);
    Mat_VarFree(anno);
    Mat_Close(m);
    return a.persons;
}

static int is_voc_context(int ctx) {
    for (int v = 1; v < PASCAL_VOC_CLASSES; v++)
        if (pascal_voc_to_context[v] == ctx) return 1;
    return 0;
}

START_TEST(labels_agree_across_tasks) {
    char path[PATH_LEN], id[32];
    int with_people = 0, without_people = 0;
    size_t bg_valid = 0, bg_invalid = 0, objects_px = 0;
    for (int i = 0; i < opts.n; i++) {
        image_id(i, id);
        mt_image8 rgb, seg, sal, nrm;
        set_path(path, set_dir, "JPEGImages", id, ".jpg");
        ck_assert_msg(img_jpeg_read(path, &rgb, NULL, NULL, err, sizeof err) == MT_OK, "%s", err);
        int h = rgb.h, w = rgb.w;
        size_t n = (size_t)h * w;
        ck_assert(rgb.c == 3 && h >= opts.min_side && h <= opts.max_side && w >= opts.min_side && w <= opts.max_side);
        set_path(path, set_dir, "semseg/pascal-context", id, ".png");
        ck_assert_msg(img_png_read(path, &seg, err, sizeof err) == MT_OK, "%s", err);
        set_path(path, set_dir, "sal_distill", id, ".png");
        ck_assert_msg(img_png_read(path, &sal, err, sizeof err) == MT_OK, "%s", err);
        set_path(path, set_dir, "normals_distill", id, ".png");
        ck_assert_msg(img_png_read(path, &nrm, err, sizeof err) == MT_OK, "%s", err);
        ck_assert(seg.c == 1 && seg.h == h && seg.w == w);
        ck_assert(sal.c == 1 && sal.h == h && sal.w == w);
        ck_assert(nrm.c == 3 && nrm.h == h && nrm.w == w);
        set_path(path, set_dir, "pascal-context/trainval", id, ".mat");
        uint16_t *label = read_labelmap(path, h, w);
        for (size_t p = 0; p < n; p++) {
            int v = seg.data[p], ctx = label[p];
            EXPECT(v <= 20, "%s: semseg %d", id, v);
            EXPECT(ctx >= 1 && ctx <= PASCAL_CONTEXT_CLASSES, "%s: LabelMap %d", id, ctx);
            if (v) EXPECT(ctx == pascal_voc_to_context[v], "%s: semseg %d over context %d", id, v, ctx);
            else EXPECT(!is_voc_context(ctx), "%s: background pixel of object class %d", id, ctx);
            EXPECT(sal.data[p] == (v ? 255 : 0), "%s: saliency %d over semseg %d", id, sal.data[p], v);
            double len2 = 0;
            for (int c = 0; c < 3; c++) {
                double x = 2.0 * nrm.data[3 * p + c] / 255.0 - 1.0;
                len2 += x * x;
            }
            EXPECT(fabs(sqrt(len2) - 1.0) < 0.02, "%s: normal of length %g", id, sqrt(len2));
            if (v) objects_px++;
            else if (pascal_normals_valid(ctx)) bg_valid++;
            else bg_invalid++;
        }
        set_path(path, set_dir, "human_parts", id, ".mat");
        int persons = check_anno(path, id, h, w, seg.data);
        with_people += persons > 0;
        without_people += persons == 0;
        free(label);
        img_free(&rgb), img_free(&seg), img_free(&sal), img_free(&nrm);
    }
    ck_assert_msg(with_people > 0 && without_people > 0, "%d images with people, %d without", with_people,
                  without_people);
    ck_assert_msg(bg_valid > 0 && bg_invalid > 0 && objects_px > 0,
                  "background pixels with valid normals %zu, invalid %zu, object pixels %zu", bg_valid,
                  bg_invalid, objects_px);
}
END_TEST

START_TEST(bad_options_refused) {
    synthetic_opts o;
    small_opts(&o, 1, 1);
    ck_assert_int_eq(synthetic_pascal_write(NULL, &o, 1, err, sizeof err), MT_ERR_ARG);
    ck_assert_int_eq(synthetic_pascal_write(set_dir, NULL, 1, err, sizeof err), MT_ERR_ARG);
    o.n = 0;
    ck_assert_int_eq(synthetic_pascal_write(set_dir, &o, 1, err, sizeof err), MT_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "n = 0"));
    small_opts(&o, 1, 1);
    o.min_side = 200, o.max_side = 100;
    ck_assert_int_eq(synthetic_pascal_write(set_dir, &o, 1, err, sizeof err), MT_ERR_ARG);
    small_opts(&o, 1, 1);
    o.min_side = 8;
    ck_assert_int_eq(synthetic_pascal_write(set_dir, &o, 1, err, sizeof err), MT_ERR_ARG);
    small_opts(&o, 1, 0);
    ck_assert_int_eq(synthetic_pascal_write(set_dir, &o, 1, err, sizeof err), MT_ERR_ARG);
    small_opts(&o, 1, 1);
    o.val_every = -1;
    ck_assert_int_eq(synthetic_pascal_write(set_dir, &o, 1, err, sizeof err), MT_ERR_ARG);
}
END_TEST

/* The scene generator on its own (src/data): the same seed gives the same
 * planes, sides outside the limits are refused, part names are PASCAL's. */
START_TEST(scene_generator_contract) {
    synthetic_scene a, b;
    ck_assert_int_eq(synthetic_scene_build(&a, 42, 64, 96), MT_OK);
    ck_assert_int_eq(synthetic_scene_build(&b, 42, 64, 96), MT_OK);
    ck_assert(a.w >= 64 && a.w <= 96 && a.h >= 64 && a.h <= 96);
    ck_assert(a.w == b.w && a.h == b.h && a.nobj == b.nobj);
    ck_assert(a.nobj >= 1 && a.nobj <= SYNTHETIC_SCENE_MAX_OBJECTS);
    const size_t n = (size_t)a.w * a.h;
    ck_assert_mem_eq(a.rgb, b.rgb, 3 * n);
    ck_assert_mem_eq(a.normals, b.normals, 3 * n);
    ck_assert_mem_eq(a.context, b.context, n * sizeof *a.context);
    ck_assert_mem_eq(a.inst, b.inst, n);
    synthetic_scene_free(&a);
    synthetic_scene_free(&b);
    synthetic_scene_free(&b); /* freeing twice is harmless */
    ck_assert_int_eq(synthetic_scene_build(&a, 1, SYNTHETIC_SCENE_MIN_SIDE - 1, 64), MT_ERR_ARG);
    ck_assert_ptr_null(a.rgb);
    ck_assert_int_eq(synthetic_scene_build(&a, 1, 64, SYNTHETIC_SCENE_MAX_SIDE + 1), MT_ERR_ARG);
    ck_assert_int_eq(synthetic_scene_build(&a, 1, 96, 64), MT_ERR_ARG);
    ck_assert_int_eq(synthetic_scene_build(NULL, 1, 64, 96), MT_ERR_ARG);
    ck_assert_ptr_null(synthetic_scene_part_name(0));
    ck_assert_ptr_null(synthetic_scene_part_name(SYNTHETIC_SCENE_PART_CODES));
    for (int c = 1; c < SYNTHETIC_SCENE_PART_CODES; c++)
        ck_assert_msg(pascal_human_part_id(synthetic_scene_part_name(c)) >= 1, "part %d: %s", c,
                      synthetic_scene_part_name(c));
}
END_TEST

/* A directory that cannot be made (under a regular file) is an I/O error
 * naming the path. */
START_TEST(unwritable_directory_named) {
    char file[PATH_LEN], dir[PATH_LEN + 16];
    pathf(file, sizeof file, "/tmp/mtlora_synth_file_%d", (int)getpid());
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    pathf(dir, sizeof dir, "%s/set", file);
    synthetic_opts o;
    small_opts(&o, 1, 1);
    mt_status st = synthetic_pascal_write(dir, &o, 1, err, sizeof err);
    unlink(file);
    ck_assert_int_eq(st, MT_ERR_IO);
    ck_assert_msg(strstr(err, file) != NULL, "error does not name the path: %s", err);
}
END_TEST

int main(void) {
    generate_all();
    Suite *s = suite_create("synthetic");
    TCase *tc = tcase_create("synthetic");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, generation_succeeds);
    tcase_add_test(tc, defaults_are_pascal_like);
    tcase_add_test(tc, layout_and_splits);
    tcase_add_test(tc, same_bytes_for_any_thread_count);
    tcase_add_test(tc, another_seed_another_set);
    tcase_add_test(tc, labels_agree_across_tasks);
    tcase_add_test(tc, bad_options_refused);
    tcase_add_test(tc, unwritable_directory_named);
    tcase_add_test(tc, scene_generator_contract);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_scratch();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
