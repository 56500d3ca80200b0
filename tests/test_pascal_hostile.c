/* test_pascal_hostile.c - the PASCAL packer against hostile MAT files
 * (issue 14): every form mat5_writer's hostile writer makes is refused
 * naming the file and the variable/field, through the in-process accessor
 * and through the isolated worker; a worker that crashes, hangs or runs
 * past its memory cap costs its one file; and a pack with one bad MAT file
 * packs the rest, returns 1, lists the record, writes no manifest, and
 * completes once the file is repaired.
 *
 * Links only mtlora_pascal and Check (serial HDF5, as the packer). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtlora/data/synthetic_scene.h"
#include "mtlora/io/pascal/mat5_writer.h"
#include "mtlora/io/pascal/mat_reader.h"
#include "mtlora/io/pascal/pascal_pack.h"
#include "mtlora/io/pascal/pascal_source.h"
#include "mtlora/io/pascal/synthetic_pascal.h"
#include "mtlora/io/shards/shard.h"

/* Under AddressSanitizer, a refused allocation returns NULL as without it
 * (the memory-cap test needs that; see launch/mtlora_pack.c). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static char scratch[256];

static void scratch_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", scratch, name); }

static void build_scene(synthetic_scene *s) {
    ck_assert_int_eq(synthetic_scene_build(s, 12345, 40, 60), MT_OK);
}

/* Writes form f; returns its path in out. */
static void write_form(mat5_hostile f, char *out, size_t n) {
    synthetic_scene s;
    build_scene(&s);
    char name[96], err[512] = "";
    snprintf(name, sizeof name, "%s.mat", mat5_hostile_name(f));
    scratch_path(out, n, name);
    ck_assert_msg(mat5_write_hostile(out, f, &s, "2008_000001", err, sizeof err) == MT_OK, "%s", err);
    synthetic_scene_free(&s);
}

static void set_limits(int isolate, int fault, double timeout_s, size_t cap) {
    mat_limits l;
    mat_limits_default(&l);
    l.isolate = isolate;
    l.fault = fault;
    l.timeout_s = timeout_s;
    l.mem_cap = cap;
    mat_set_limits(&l);
}

/* The form must be refused, the message naming the path and `needle`. */
static void expect_refused(mat_kind kind, mat5_hostile f, int isolated, const char *needle) {
    char path[512], err[1024] = "";
    write_form(f, path, sizeof path);
    set_limits(1, MAT_FAULT_NONE, 30, (size_t)1 << 30);
    void *data = NULL;
    int h = -1, w = -1;
    mt_status st = isolated ? mat_parse_isolated(kind, path, &data, &h, &w, err, sizeof err)
                            : mat_parse_file(kind, path, &data, &h, &w, err, sizeof err);
    ck_assert_msg(st != MT_OK, "%s accepted (%dx%d)", mat5_hostile_name(f), h, w);
    ck_assert_ptr_null(data);
    ck_assert_msg(strstr(err, path) != NULL, "%s: the message does not name the file: %s", mat5_hostile_name(f),
                  err);
    ck_assert_msg(strstr(err, needle) != NULL, "%s: the message lacks '%s': %s", mat5_hostile_name(f), needle, err);
}

/* ---- each hostile form, in process (the accessor) and isolated ---- */

#define REFUSED(test, kind, form, needle_in, needle_iso)                                                     \
    START_TEST(test) {                                                                                     \
        expect_refused(kind, form, 0, needle_in);                                                          \
        expect_refused(kind, form, 1, needle_iso);                                                         \
    }                                                                                                      \
    END_TEST

REFUSED(struct_without_field_data, MAT_KIND_PARTS, MAT5_HOSTILE_STRUCT_NO_FIELD_DATA, "anno", "anno")
REFUSED(sparse_labelmap, MAT_KIND_LABELMAP, MAT5_HOSTILE_SPARSE_LABELMAP, "variable LabelMap: is sparse",
        "variable LabelMap: is sparse")
REFUSED(wrong_class_labelmap, MAT_KIND_LABELMAP, MAT5_HOSTILE_CHAR_LABELMAP,
        "variable LabelMap: is of class char", "variable LabelMap: is of class char")
REFUSED(wrong_class_objects, MAT_KIND_PARTS, MAT5_HOSTILE_CELL_OBJECTS,
        "variable anno field objects: is of class cell", "variable anno field objects: is of class cell")
/* in process the accessor sees the count; isolated, the precheck first */
REFUSED(count_larger_than_data, MAT_KIND_LABELMAP, MAT5_HOSTILE_COUNT_OVER_DATA,
        "variable LabelMap: declares 64x64 elements but holds data for 0",
        "variable LabelMap: declares 64x64 elements in 56 bytes")
REFUSED(class_index_huge, MAT_KIND_PARTS, MAT5_HOSTILE_CLASS_INDEX_HUGE,
        "variable anno field objects(1).classIndex: 1e+12 is not a VOC class index",
        "variable anno field objects(1).classIndex: 1e+12 is not a VOC class index")
REFUSED(class_index_nan, MAT_KIND_PARTS, MAT5_HOSTILE_CLASS_INDEX_NAN,
        "nan is not a VOC class index", "nan is not a VOC class index")
REFUSED(class_index_fraction, MAT_KIND_PARTS, MAT5_HOSTILE_CLASS_INDEX_FRACTION,
        "variable anno field objects(1).classIndex: 15.5 is not", "objects(1).classIndex: 15.5 is not")
REFUSED(labelmap_nan, MAT_KIND_LABELMAP, MAT5_HOSTILE_LABELMAP_NAN,
        "variable LabelMap: value nan at row 0 col 0 is not a class id", "value nan at row 0 col 0")
REFUSED(labelmap_out_of_range, MAT_KIND_LABELMAP, MAT5_HOSTILE_LABELMAP_RANGE,
        "variable LabelMap: value 1e+12 at row 0 col 0 is not a class id", "value 1e+12 at row 0 col 0")

/* libmatio would allocate 2 GiB for these 20 bytes: refused before it reads them. */
START_TEST(v4_header_claiming_2_gib) {
    expect_refused(MAT_KIND_LABELMAP, MAT5_HOSTILE_V4_HUGE, 1,
                   "MAT v4 variable 1 declares 16384x16384 elements (2147483677 bytes) but the file holds 20");
}
END_TEST

/* A compressed struct declaring 9e8 elements in ~100 bytes: libmatio would
 * build a matvar per field of each before reading any data (gigabytes of
 * small allocations no size cap catches); the precheck inflates and walks
 * it first. Not run in process: there nothing stands before libmatio. */
START_TEST(struct_count_bomb) {
    expect_refused(MAT_KIND_PARTS, MAT5_HOSTILE_STRUCT_COUNT_BOMB, 1,
                   "variable anno: a 30000x30000 struct of 2 fields in 0 bytes");
    char path[512], err[1024] = "";
    write_form(MAT5_HOSTILE_STRUCT_COUNT_BOMB, path, sizeof path);
    ck_assert_int_ne(mat_precheck(path, err, sizeof err), MT_OK);
    ck_assert_msg(strstr(err, "each field takes at least 8") != NULL, "%s", err);
}
END_TEST

/* Good files written by mat5_writer, truncated: refused by name. */
START_TEST(truncated_files) {
    synthetic_scene s;
    build_scene(&s);
    char parts[512], lm[512], err[1024] = "";
    scratch_path(parts, sizeof parts, "truncated-parts.mat");
    scratch_path(lm, sizeof lm, "truncated-labelmap.mat");
    ck_assert_int_eq(mat5_write_parts(parts, &s, "2008_000001", err, sizeof err), MT_OK);
    ck_assert_int_eq(mat5_write_labelmap(lm, &s, err, sizeof err), MT_OK);
    synthetic_scene_free(&s);
    const char *paths[2] = {parts, lm};
    const mat_kind kinds[2] = {MAT_KIND_PARTS, MAT_KIND_LABELMAP};
    for (int i = 0; i < 2; i++) {
        struct stat sb;
        ck_assert_int_eq(stat(paths[i], &sb), 0);
        for (off_t keep = 0; keep < sb.st_size; keep += sb.st_size / 7 + 1) {
            ck_assert_int_eq(truncate(paths[i], keep), 0);
            set_limits(1, MAT_FAULT_NONE, 30, (size_t)1 << 30);
            void *data = NULL;
            int h, w;
            mt_status st = mat_parse_isolated(kinds[i], paths[i], &data, &h, &w, err, sizeof err);
            ck_assert_msg(st != MT_OK, "%s cut to %lld bytes accepted", paths[i], (long long)keep);
            ck_assert_msg(strstr(err, paths[i]) != NULL, "message does not name the file: %s", err);
        }
    }
}
END_TEST

/* The same map in process and through the worker's pipe. */
START_TEST(good_files_same_through_the_worker) {
    synthetic_scene s;
    build_scene(&s);
    char parts[512], lm[512], err[1024] = "";
    scratch_path(parts, sizeof parts, "good-parts.mat");
    scratch_path(lm, sizeof lm, "good-labelmap.mat");
    ck_assert_int_eq(mat5_write_parts(parts, &s, "2008_000001", err, sizeof err), MT_OK);
    ck_assert_int_eq(mat5_write_labelmap(lm, &s, err, sizeof err), MT_OK);
    const char *paths[2] = {parts, lm};
    const mat_kind kinds[2] = {MAT_KIND_PARTS, MAT_KIND_LABELMAP};
    for (int i = 0; i < 2; i++) {
        void *a = NULL, *b = NULL;
        int ha, wa, hb, wb;
        set_limits(1, MAT_FAULT_NONE, 30, (size_t)1 << 30);
        ck_assert_msg(mat_parse_file(kinds[i], paths[i], &a, &ha, &wa, err, sizeof err) == MT_OK, "%s", err);
        ck_assert_msg(mat_parse_isolated(kinds[i], paths[i], &b, &hb, &wb, err, sizeof err) == MT_OK, "%s", err);
        ck_assert_int_eq(ha, hb);
        ck_assert_int_eq(wa, wb);
        if (i == 1) { /* the LabelMap is the scene's context map */
            ck_assert_int_eq(ha, s.h);
            ck_assert_int_eq(wa, s.w);
            for (int k = 0; k < s.h * s.w; k++) ck_assert_int_eq(((int32_t *)a)[k], s.context[k]);
        }
        const size_t bytes = (size_t)ha * wa * (i ? 4 : 1);
        ck_assert(bytes == 0 || memcmp(a, b, bytes) == 0);
        free(a);
        free(b);
    }
    synthetic_scene_free(&s);
}
END_TEST

/* ---- the worker's deaths ---- */

static void expect_fault(int fault, double timeout_s, size_t cap, const char *needle) {
    char path[512], err[1024] = "";
    synthetic_scene s;
    build_scene(&s);
    scratch_path(path, sizeof path, "fault-labelmap.mat");
    ck_assert_int_eq(mat5_write_labelmap(path, &s, err, sizeof err), MT_OK);
    synthetic_scene_free(&s);
    set_limits(1, fault, timeout_s, cap);
    void *data = NULL;
    int h, w;
    mt_status st = mat_parse_isolated(MAT_KIND_LABELMAP, path, &data, &h, &w, err, sizeof err);
    ck_assert_int_ne(st, MT_OK);
    ck_assert_ptr_null(data);
    ck_assert_msg(strstr(err, path) && strstr(err, needle), "expected '%s' naming %s: %s", needle, path, err);
    /* this process is unharmed: the next file parses */
    set_limits(1, MAT_FAULT_NONE, 30, (size_t)1 << 30);
    ck_assert_msg(mat_parse_isolated(MAT_KIND_LABELMAP, path, &data, &h, &w, err, sizeof err) == MT_OK, "%s", err);
    free(data);
}

START_TEST(worker_crash_costs_one_file) { expect_fault(MAT_FAULT_CRASH, 30, (size_t)1 << 30, "libmatio crashed with signal 11"); }
END_TEST

START_TEST(worker_hang_times_out) { expect_fault(MAT_FAULT_HANG, 1, (size_t)1 << 30, "timed out after 1 s"); }
END_TEST

START_TEST(worker_memory_capped) {
    expect_fault(MAT_FAULT_ALLOC, 30, (size_t)256 << 20, "exceeded the 256 MiB memory cap");
}
END_TEST

/* ---- a pack with one bad MAT file ---- */

static int64_t count_records(const char *dir, const char *split) {
    int64_t total = 0;
    for (int k = 0; k < 100; k++) {
        char path[600], err[512];
        snprintf(path, sizeof path, "%s/%s-%05d.h5", dir, split, k);
        if (access(path, F_OK) != 0) continue;
        shard_file *f;
        ck_assert_msg(shard_open(&f, path, err, sizeof err) == MT_OK, "%s", err);
        total += shard_file_info(f)->nrecords;
        shard_close(f);
    }
    return total;
}

/* pascal_pack_split with stderr captured into log. */
static int pack_logged(const char *src, const char *out, char *log, size_t loglen) {
    char logpath[512];
    scratch_path(logpath, sizeof logpath, "pack.log");
    fflush(stderr);
    const int saved = dup(2), fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    const int rc = pascal_pack_split(src, out, "train", 2, SHARD_ALL_TASKS, 2, 0, 1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(logpath, "r");
    ck_assert_ptr_nonnull(f);
    const size_t n = fread(log, 1, loglen - 1, f);
    log[n] = '\0';
    fclose(f);
    fputs(log, stderr);
    return rc;
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    ck_assert(a && b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) ck_assert_uint_eq(fwrite(buf, 1, n, b), n);
    fclose(a);
    ck_assert_int_eq(fclose(b), 0);
}

static void pack_with_one_bad_file(int fault, const char *needle) {
    char src[512], out[512], err[1024] = "", bad[700], saved[700], manifest[700];
    scratch_path(src, sizeof src, fault ? "set-fault" : "set-hostile");
    scratch_path(out, sizeof out, fault ? "shards-fault" : "shards-hostile");
    synthetic_opts o;
    synthetic_opts_default(&o);
    o.n = 10;
    o.min_side = 40;
    o.max_side = 60;
    o.threads = 1;
    ck_assert_msg(synthetic_pascal_write(src, &o, 1, err, sizeof err) == MT_OK, "%s", err);
    char **ids;
    int64_t n;
    ck_assert_int_eq(pascal_read_split(src, "train", &ids, &n, err, sizeof err), MT_OK);
    ck_assert_int_ge(n, 4);
    const char *victim = ids[2]; /* shard 1, first record */
    snprintf(bad, sizeof bad, "%s/human_parts/%s.mat", src, victim);
    snprintf(saved, sizeof saved, "%s/saved.mat", scratch);
    copy_file(bad, saved);
    mat_limits l;
    mat_limits_default(&l);
    if (fault) {
        l.fault = fault;
        l.fault_match = bad;
    } else {
        synthetic_scene s;
        build_scene(&s);
        ck_assert_int_eq(mat5_write_hostile(bad, MAT5_HOSTILE_CLASS_INDEX_HUGE, &s, victim, err, sizeof err), MT_OK);
        synthetic_scene_free(&s);
    }
    mat_set_limits(&l);

    char log[16384];
    ck_assert_int_eq(pack_logged(src, out, log, sizeof log), 1);
    ck_assert_msg(strstr(log, bad) && strstr(log, needle), "the log does not name %s with '%s':\n%s", bad, needle, log);
    ck_assert_msg(strstr(log, "skipped 1 of"), "no list of skipped records:\n%s", log);
    char listed[600];
    snprintf(listed, sizeof listed, "  %s: ", victim);
    ck_assert_msg(strstr(log, listed), "%s not listed:\n%s", victim, log);
    ck_assert_int_eq(count_records(out, "train"), n - 1);
    snprintf(manifest, sizeof manifest, "%s/train.manifest", out);
    ck_assert_msg(access(manifest, F_OK) != 0, "a manifest written for an incomplete split");

    /* repaired: the re-run packs the shard missing the record again */
    copy_file(saved, bad);
    mat_limits_default(&l);
    mat_set_limits(&l);
    ck_assert_int_eq(pack_logged(src, out, log, sizeof log), 0);
    ck_assert_int_eq(count_records(out, "train"), n);
    ck_assert_msg(access(manifest, F_OK) == 0, "no manifest after the complete re-run");
    shard_file *f;
    char path[700];
    snprintf(path, sizeof path, "%s/train-00001.h5", out);
    ck_assert_int_eq(shard_open(&f, path, err, sizeof err), MT_OK);
    ck_assert_str_eq(shard_record_id(f, 0), victim);
    shard_close(f);
    pascal_free_ids(ids, n);
}

START_TEST(pack_skips_a_hostile_file_and_resumes) {
    pack_with_one_bad_file(0, "objects(1).classIndex: 1e+12 is not a VOC class index");
}
END_TEST

START_TEST(pack_skips_a_crashing_file_and_resumes) { pack_with_one_bad_file(MAT_FAULT_CRASH, "libmatio crashed with signal 11"); }
END_TEST

int main(void) {
    snprintf(scratch, sizeof scratch, "/tmp/mtlora-pascal-hostile-XXXXXX");
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    Suite *s = suite_create("pascal_hostile");
    TCase *tc = tcase_create("mat");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, struct_without_field_data);
    tcase_add_test(tc, struct_count_bomb);
    tcase_add_test(tc, sparse_labelmap);
    tcase_add_test(tc, wrong_class_labelmap);
    tcase_add_test(tc, wrong_class_objects);
    tcase_add_test(tc, count_larger_than_data);
    tcase_add_test(tc, class_index_huge);
    tcase_add_test(tc, class_index_nan);
    tcase_add_test(tc, class_index_fraction);
    tcase_add_test(tc, labelmap_nan);
    tcase_add_test(tc, labelmap_out_of_range);
    tcase_add_test(tc, v4_header_claiming_2_gib);
    tcase_add_test(tc, truncated_files);
    tcase_add_test(tc, good_files_same_through_the_worker);
    tcase_add_test(tc, worker_crash_costs_one_file);
    tcase_add_test(tc, worker_hang_times_out);
    tcase_add_test(tc, worker_memory_capped);
    tcase_add_test(tc, pack_skips_a_hostile_file_and_resumes);
    tcase_add_test(tc, pack_skips_a_crashing_file_and_resumes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (failed == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", scratch);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
