/* test_shard_hostile.c - hostile and broken shards and manifests (issue 14):
 * shards written by the project's own writer, then tampered with through
 * the HDF5 C API or by editing bytes; manifests as text. Each refusal must
 * name the file and the attribute, dataset, line or record, and nothing may
 * crash, block or leak (the suite also runs under ASan). The last tests run
 * `mtlora-pack --verify` (MTLORA_PACK) on split directories built here.
 * Why long: one suite for every hostile form of the one shard format (its
 * attributes, index, records, manifest and --verify) shares the helpers
 * that build and tamper with a valid shard. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mtlora/io/image_codec.h"
#include "mtlora/io/shards/shard.h"

enum { H = 8, W = 8, TASKS = SHARD_ALL_TASKS };
static char root[2048];

/* ---------------------------------------------------------------- building */

static void make_record(shard_record *r, int k) {
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "2008_%06d", k);
    r->h = H;
    r->w = W;
    mt_image8 im = {H, W, 3, malloc(H * W * 3)};
    ck_assert_ptr_nonnull(im.data);
    for (int i = 0; i < H * W * 3; i++) im.data[i] = (uint8_t)(i * 7 + k * 31);
    char err[512];
    ck_assert_msg(img_jpeg_encode(&im, 90, &r->jpeg, &r->jpeg_bytes, "test", err, sizeof err) == MT_OK,
                  "%s", err);
    img_free(&im);
    const size_t px = H * W;
    r->semseg = malloc(px);
    r->human_parts = malloc(px);
    r->sal = malloc(px);
    r->edge = malloc(px);
    r->normals = malloc(3 * px);
    r->normals_mask = malloc(px);
    for (size_t i = 0; i < px; i++) {
        r->semseg[i] = i % 7 == 0 ? 255 : (uint8_t)((i + k) % 21);
        r->human_parts[i] = (uint8_t)(i % 7);
        r->sal[i] = (uint8_t)(i % 2);
        r->edge[i] = (uint8_t)(i % 3 == 0);
        r->normals_mask[i] = (uint8_t)(i % 5 != 0);
        for (int c = 0; c < 3; c++) r->normals[3 * i + c] = (uint8_t)(i * 3 + c);
    }
}

/* A shard of records first..first+n-1 through shard_writer. */
static void write_shard(const char *path, const char *split, int first, int n) {
    shard_writer *w;
    char err[1024];
    ck_assert_msg(shard_writer_open(&w, path, split, TASKS, "test", err, sizeof err) == MT_OK, "%s", err);
    for (int k = first; k < first + n; k++) {
        shard_record r;
        make_record(&r, k);
        ck_assert_msg(shard_writer_add(w, &r, err, sizeof err) == MT_OK, "%s", err);
        shard_record_free(&r);
    }
    ck_assert_msg(shard_writer_finish(w, err, sizeof err) == MT_OK, "%s", err);
}

/* dir (created fresh) with split's shards of shard_size records and its manifest. */
static void write_split(const char *dir, const char *split, int nrec, int shard_size) {
    char cmd[4200], path[4200], err[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    const int nshards = (nrec + shard_size - 1) / shard_size;
    for (int k = 0; k < nshards; k++) {
        snprintf(path, sizeof path, "%s/%s-%05d.h5", dir, split, k);
        const int n = k == nshards - 1 ? nrec - k * shard_size : shard_size;
        write_shard(path, split, k * shard_size, n);
    }
    ck_assert_msg(shard_manifest_write(dir, split, TASKS, nshards, nrec, shard_size, err, sizeof err) ==
                      MT_OK, "%s", err);
}

/* A fresh copy of a 3-record shard at root/<name>.h5. */
static const char *fresh_shard(const char *name, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s.h5", root, name);
    unlink(path);
    write_shard(path, "train", 0, 3);
    return path;
}

static void expect_has(const char *msg, const char *a, const char *b, const char *c) {
    ck_assert_msg(strstr(msg, a) != NULL, "message '%s' lacks '%s'", msg, a);
    if (b) ck_assert_msg(strstr(msg, b) != NULL, "message '%s' lacks '%s'", msg, b);
    if (c) ck_assert_msg(strstr(msg, c) != NULL, "message '%s' lacks '%s'", msg, c);
}

/* shard_open must refuse path with st, the message naming path and needles. */
static void expect_open_fails(const char *path, mt_status st, const char *a, const char *b) {
    shard_file *f = NULL;
    char err[2048] = "";
    ck_assert_int_eq(shard_open(&f, path, err, sizeof err), st);
    ck_assert_ptr_null(f);
    expect_has(err, path, a, b);
}

/* ---------------------------------------------------------------- tampering */

static hid_t open_rw(const char *path) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    return f;
}

/* Replaces root attribute name by one of type ty over dataspace sp. */
static void put_attr(const char *path, const char *name, hid_t ty, hid_t sp, const void *data) {
    hid_t f = open_rw(path);
    if (H5Aexists(f, name) > 0) ck_assert_int_ge(H5Adelete(f, name), 0);
    hid_t a = H5Acreate2(f, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(a, 0);
    if (H5Sget_simple_extent_type(sp) != H5S_NULL) ck_assert_int_ge(H5Awrite(a, ty, data), 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(ty);
    H5Fclose(f);
}

static hid_t str_type(size_t n) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n);
    return t;
}

static void put_attr_str(const char *path, const char *name, const char *v) {
    put_attr(path, name, str_type(strlen(v) + 1), H5Screate(H5S_SCALAR), v);
}

static void del_attr(const char *path, const char *name) {
    hid_t f = open_rw(path);
    ck_assert_int_ge(H5Adelete(f, name), 0);
    H5Fclose(f);
}

/* Replaces dataset name (under group grp) by one of file type ty. */
static void put_dataset(const char *path, const char *grp, const char *name, hid_t ty, hid_t mem,
                        int nd, const hsize_t *dims, const void *data) {
    hid_t f = open_rw(path);
    hid_t g = H5Gopen2(f, grp, H5P_DEFAULT);
    ck_assert_int_ge(g, 0);
    if (H5Lexists(g, name, H5P_DEFAULT) > 0) ck_assert_int_ge(H5Ldelete(g, name, H5P_DEFAULT), 0);
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t d = H5Dcreate2(g, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    ck_assert_int_ge(H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Gclose(g);
    H5Fclose(f);
}

/* What the reader before issue 14 did: every dataset of the record read as
 * uint8 with HDF5's conversion; returns the checksum of those bytes, which
 * is then written into index/checksum so that only a type or domain check
 * can catch the record. */
static void recompute_checksum(const char *path, int rec) {
    hid_t f = open_rw(path);
    char gname[64];
    snprintf(gname, sizeof gname, "records/%06d", rec);
    hid_t g = H5Gopen2(f, gname, H5P_DEFAULT);
    ck_assert_int_ge(g, 0);
    shard_record r;
    make_record(&r, rec); /* id, size, and buffers of the right sizes */
    struct { const char *name; uint8_t *dst; } it[] = {
        {"semseg", r.semseg}, {"human_parts", r.human_parts}, {"sal", r.sal},
        {"normals", r.normals}, {"normals_mask", r.normals_mask}, {"edge", r.edge}};
    for (size_t k = 0; k < sizeof it / sizeof it[0]; k++) {
        hid_t d = H5Dopen2(g, it[k].name, H5P_DEFAULT);
        ck_assert_int_ge(d, 0);
        ck_assert_int_ge(H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, it[k].dst), 0);
        H5Dclose(d);
    }
    const uint64_t sum = shard_record_checksum(&r);
    shard_record_free(&r);
    H5Gclose(g);
    hid_t d = H5Dopen2(f, "index/checksum", H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    const hsize_t off = (hsize_t)rec, cnt = 1;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL);
    hid_t ms = H5Screate_simple(1, &cnt, NULL);
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_UINT64, ms, fs, H5P_DEFAULT, &sum), 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
}

/* shard_read of record rec must fail naming the file, the record and a and b. */
static void expect_read_fails(const char *path, int rec, const char *a, const char *b) {
    shard_file *f;
    char err[2048];
    ck_assert_msg(shard_open(&f, path, err, sizeof err) == MT_OK, "%s", err);
    shard_record r;
    ck_assert_int_eq(shard_read(f, rec, SHARD_ALL_TASKS, &r, err, sizeof err), MT_ERR_FORMAT);
    char want[64];
    snprintf(want, sizeof want, "record %d (2008_%06d)", rec, rec);
    expect_has(err, path, want, a);
    if (b) expect_has(err, b, NULL, NULL);
    /* the other records are still fine */
    ck_assert_msg(shard_read(f, rec == 0 ? 1 : 0, SHARD_ALL_TASKS, &r, err, sizeof err) == MT_OK, "%s",
                  err);
    shard_record_free(&r);
    shard_close(f);
}

/* ---------------------------------------------------------------- attributes */

START_TEST(good_shard_reads) {
    char p[4096], err[1024];
    fresh_shard("good", p, sizeof p);
    shard_file *f;
    ck_assert_msg(shard_open(&f, p, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(shard_file_info(f)->nrecords, 3);
    ck_assert_str_eq(shard_file_info(f)->split, "train");
    ck_assert_int_eq(shard_file_info(f)->format_version, 1);
    for (int i = 0; i < 3; i++) {
        shard_record r;
        ck_assert_msg(shard_read(f, i, SHARD_ALL_TASKS, &r, err, sizeof err) == MT_OK, "%s", err);
        shard_record e;
        make_record(&e, i);
        ck_assert_int_eq(r.jpeg_bytes, e.jpeg_bytes);
        ck_assert_int_eq(memcmp(r.sal, e.sal, H * W), 0);
        ck_assert_int_eq(memcmp(r.normals, e.normals, 3 * H * W), 0);
        shard_record_free(&e);
        shard_record_free(&r);
    }
    shard_close(f);
}
END_TEST

START_TEST(string_attribute_as_array) {
    char p[4096];
    fresh_shard("split-array", p, sizeof p);
    /* four fixed strings of 6 bytes where one is expected: the old reader
     * sized its buffer for one and HDF5 wrote four */
    const char v[24] = "train\0train\0train\0train";
    const hsize_t n = 4;
    put_attr(p, "split", str_type(6), H5Screate_simple(1, &n, NULL), v);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute split", "array of 4 values");
    /* the same for format and tasks, 1000 elements */
    fresh_shard("format-array", p, sizeof p);
    char *big = calloc(1000, 32);
    const hsize_t m = 1000;
    put_attr(p, "format", str_type(32), H5Screate_simple(1, &m, NULL), big);
    free(big);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute format", "array of 1000 values");
    /* a 1-element array is one value (h5py writes some so) */
    fresh_shard("split-one", p, sizeof p);
    const hsize_t one = 1;
    put_attr(p, "split", str_type(6), H5Screate_simple(1, &one, NULL), "train");
    shard_file *f;
    char err[1024];
    ck_assert_msg(shard_open(&f, p, err, sizeof err) == MT_OK, "%s", err);
    shard_close(f);
    /* an integer stored as an array */
    fresh_shard("records-array", p, sizeof p);
    const int64_t nr[2] = {3, 3};
    const hsize_t two = 2;
    put_attr(p, "num_records", H5Tcopy(H5T_NATIVE_INT64), H5Screate_simple(1, &two, NULL), nr);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute num_records", "array of 2 values");
    /* a null dataspace */
    fresh_shard("split-null", p, sizeof p);
    put_attr(p, "split", str_type(6), H5Screate(H5S_NULL), "train");
    expect_open_fails(p, MT_ERR_FORMAT, "attribute split", "no value");
}
END_TEST

START_TEST(long_and_odd_strings) {
    char p[4096];
    fresh_shard("split-long", p, sizeof p);
    put_attr_str(p, "split", "train-with-a-very-long-name");
    expect_open_fails(p, MT_ERR_FORMAT, "attribute split", "longer than 15 bytes");
    fresh_shard("tasks-long", p, sizeof p);
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    put_attr_str(p, "tasks", big);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute tasks", "longer than");
    /* a 60000-byte fixed string without a NUL (HDF5's attribute limit is 64 KiB) */
    fresh_shard("format-huge", p, sizeof p);
    char *huge = malloc(60000);
    memset(huge, 'x', 60000);
    put_attr(p, "format", str_type(60000), H5Screate(H5S_SCALAR), huge);
    free(huge);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute format", "a string longer than 63 bytes");
    fresh_shard("split-ctl", p, sizeof p);
    put_attr_str(p, "split", "tr\nain");
    expect_open_fails(p, MT_ERR_FORMAT, "attribute split", "control character");
    fresh_shard("tasks-unknown", p, sizeof p);
    put_attr_str(p, "tasks", "semseg,depth");
    expect_open_fails(p, MT_ERR_FORMAT, "attribute tasks", "'depth'");
    fresh_shard("split-int", p, sizeof p);
    const int32_t one = 1;
    put_attr(p, "split", H5Tcopy(H5T_STD_I32LE), H5Screate(H5S_SCALAR), &one);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute split", "an integer, expected a string");
    fresh_shard("format-missing", p, sizeof p);
    del_attr(p, "format");
    expect_open_fails(p, MT_ERR_FORMAT, "attribute format", "missing");
    fresh_shard("unfinished", p, sizeof p);
    del_attr(p, "num_records");
    expect_open_fails(p, MT_ERR_FORMAT, "attribute num_records", "not finished");
}
END_TEST

START_TEST(variable_length_strings_read) {
    /* h5py writes text attributes as variable-length strings */
    char p[4096], err[1024];
    fresh_shard("vlen", p, sizeof p);
    const char *v = "train";
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    put_attr(p, "split", t, H5Screate(H5S_SCALAR), &v);
    shard_file *f;
    ck_assert_msg(shard_open(&f, p, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_str_eq(shard_file_info(f)->split, "train");
    shard_close(f);
    fresh_shard("vlen-long", p, sizeof p);
    const char *lv = "a-split-name-of-forty-characters-or-more-";
    t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    put_attr(p, "split", t, H5Screate(H5S_SCALAR), &lv);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute split", "longer than 15 bytes");
}
END_TEST

START_TEST(format_version_exact) {
    char p[4096], err[1024];
    fresh_shard("ver-float", p, sizeof p);
    const double v17 = 1.7;
    put_attr(p, "format_version", H5Tcopy(H5T_IEEE_F64LE), H5Screate(H5S_SCALAR), &v17);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute format_version", "a float, expected an integer");
    fresh_shard("ver-2", p, sizeof p);
    const int32_t two = 2, neg = -1;
    put_attr(p, "format_version", H5Tcopy(H5T_STD_I32LE), H5Screate(H5S_SCALAR), &two);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute format_version", ": 2,");
    fresh_shard("ver-neg", p, sizeof p);
    put_attr(p, "format_version", H5Tcopy(H5T_STD_I32LE), H5Screate(H5S_SCALAR), &neg);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute format_version", ": -1,");
    fresh_shard("ver-u64", p, sizeof p);
    const uint64_t huge = UINT64_MAX;
    put_attr(p, "format_version", H5Tcopy(H5T_STD_U64LE), H5Screate(H5S_SCALAR), &huge);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute format_version", "out of range");
    fresh_shard("ver-str17", p, sizeof p);
    put_attr_str(p, "format_version", "1.7");
    expect_open_fails(p, MT_ERR_FORMAT, "attribute format_version", "'1.7'");
    /* what other writers may store and still mean version 1 */
    fresh_shard("ver-str1", p, sizeof p);
    put_attr_str(p, "format_version", "1");
    shard_file *f;
    ck_assert_msg(shard_open(&f, p, err, sizeof err) == MT_OK, "%s", err);
    shard_close(f);
    fresh_shard("ver-u8", p, sizeof p);
    const uint8_t one = 1;
    put_attr(p, "format_version", H5Tcopy(H5T_STD_U8LE), H5Screate(H5S_SCALAR), &one);
    ck_assert_msg(shard_open(&f, p, err, sizeof err) == MT_OK, "%s", err);
    shard_close(f);
    fresh_shard("classes", p, sizeof p);
    const int32_t k22 = 22;
    put_attr(p, "num_classes_semseg", H5Tcopy(H5T_STD_I32LE), H5Screate(H5S_SCALAR), &k22);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute num_classes_semseg", "22");
}
END_TEST

/* ---------------------------------------------------------------- index and records */

START_TEST(index_types_and_bounds) {
    char p[4096];
    fresh_shard("sum-float", p, sizeof p);
    const double sums[3] = {1, 2, 3};
    const hsize_t n3 = 3, d2[2] = {3, 2};
    put_dataset(p, "index", "checksum", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &n3, sums);
    expect_open_fails(p, MT_ERR_FORMAT, "dataset index/checksum", "a float");
    fresh_shard("size-huge", p, sizeof p);
    const int32_t hw[6] = {8, 8, 100000, 8, 8, 8};
    put_dataset(p, "index", "size", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, d2, hw);
    expect_open_fails(p, MT_ERR_FORMAT, "dataset index/size", "record 1 (2008_000001)");
    fresh_shard("size-shape", p, sizeof p);
    const hsize_t d6 = 6;
    put_dataset(p, "index", "size", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &d6, hw);
    expect_open_fails(p, MT_ERR_FORMAT, "dataset index/size", "1 dimensions, expected [3, 2]");
    fresh_shard("ids-short", p, sizeof p);
    const hsize_t n2 = 2;
    const char ids[2 * SHARD_ID_LEN] = "2008_000000";
    put_dataset(p, "index", "ids", H5T_C_S1, H5T_C_S1, 1, &n2, ids); /* 1-byte strings, 2 of them */
    expect_open_fails(p, MT_ERR_FORMAT, "dataset index/ids", "expected [3]");
    fresh_shard("ids-vlen", p, sizeof p);
    const char *vids[3] = {"a", "b", "c"};
    hid_t vt = H5Tcopy(H5T_C_S1);
    H5Tset_size(vt, H5T_VARIABLE);
    put_dataset(p, "index", "ids", vt, vt, 1, &n3, vids);
    H5Tclose(vt);
    expect_open_fails(p, MT_ERR_FORMAT, "dataset index/ids", "a variable-length string");
}
END_TEST

START_TEST(records_huge_count) {
    /* num_records claims 2^40: refused before any index buffer is sized */
    char p[4096];
    fresh_shard("count-huge", p, sizeof p);
    const int64_t big = (int64_t)1 << 40;
    put_attr(p, "num_records", H5Tcopy(H5T_STD_I64LE), H5Screate(H5S_SCALAR), &big);
    expect_open_fails(p, MT_ERR_FORMAT, "attribute num_records", "1099511627776");
    fresh_shard("count-more", p, sizeof p);
    const int64_t four = 4;
    put_attr(p, "num_records", H5Tcopy(H5T_STD_I64LE), H5Screate(H5S_SCALAR), &four);
    expect_open_fails(p, MT_ERR_FORMAT, "dataset index/ids", "expected [4]");
}
END_TEST

START_TEST(fractional_float_label) {
    /* sal stored as float32 with a 0.5 and the checksum recomputed over
     * what HDF5's conversion to uint8 makes of it: only the type check can
     * tell, and it names the shard, the record and the dataset */
    char p[4096];
    fresh_shard("sal-float", p, sizeof p);
    float v[H * W];
    for (int i = 0; i < H * W; i++) v[i] = (float)(i % 2);
    v[5] = 0.5f;
    const hsize_t d2[2] = {H, W};
    put_dataset(p, "records/000001", "sal", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d2, v);
    recompute_checksum(p, 1);
    expect_read_fails(p, 1, "dataset sal", "stored as a float of 4 bytes");
    /* normals as float in [-1, 1] */
    fresh_shard("normals-float", p, sizeof p);
    float nv[H * W * 3];
    for (int i = 0; i < H * W * 3; i++) nv[i] = (float)(i % 3) - 1.0f;
    const hsize_t d3[3] = {H, W, 3};
    put_dataset(p, "records/000000", "normals", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, d3, nv);
    recompute_checksum(p, 0);
    expect_read_fails(p, 0, "dataset normals", "a float");
    /* edge stored as int16 with a 300 (clamped to 255 by conversion) */
    fresh_shard("edge-int16", p, sizeof p);
    int16_t ev[H * W] = {0};
    ev[9] = 300;
    put_dataset(p, "records/000002", "edge", H5T_STD_I16LE, H5T_NATIVE_INT16, 2, d2, ev);
    recompute_checksum(p, 2);
    expect_read_fails(p, 2, "dataset edge", "a signed integer of 2 bytes");
}
END_TEST

START_TEST(label_out_of_domain) {
    /* uint8 as the format says, checksum recomputed, values outside the domain */
    char p[4096];
    uint8_t v[H * W] = {0};
    const hsize_t d2[2] = {H, W}, t2[2] = {W / 2, H * 2};
    fresh_shard("sal-2", p, sizeof p);
    v[10] = 2;
    put_dataset(p, "records/000000", "sal", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, d2, v);
    recompute_checksum(p, 0);
    expect_read_fails(p, 0, "dataset sal", "value 2 at pixel 10, expected 0..1");
    fresh_shard("semseg-21", p, sizeof p);
    v[10] = 21;
    put_dataset(p, "records/000001", "semseg", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, d2, v);
    recompute_checksum(p, 1);
    expect_read_fails(p, 1, "dataset semseg", "value 21 at pixel 10, expected 0..20 or 255");
    fresh_shard("parts-255", p, sizeof p);
    v[10] = 255;
    put_dataset(p, "records/000002", "human_parts", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, d2, v);
    recompute_checksum(p, 2);
    expect_read_fails(p, 2, "dataset human_parts", "value 255 at pixel 10, expected 0..6");
    fresh_shard("mask-shape", p, sizeof p);
    v[10] = 1;
    put_dataset(p, "records/000000", "normals_mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, t2, v);
    expect_read_fails(p, 0, "dataset normals_mask", "expected [8, 8]");
}
END_TEST

/* A label dataset as chunks other than the format's one: refused before
 * HDF5 decodes it (libhdf5 1.10 trusts chunk sizes, see read_one_chunk). */
static void put_chunked(const char *path, const char *grp, const char *name, const hsize_t *chunk,
                        int deflate) {
    hid_t f = open_rw(path);
    hid_t g = H5Gopen2(f, grp, H5P_DEFAULT);
    ck_assert_int_ge(g, 0);
    ck_assert_int_ge(H5Ldelete(g, name, H5P_DEFAULT), 0);
    const hsize_t d2[2] = {H, W};
    hid_t sp = H5Screate_simple(2, d2, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    ck_assert_int_ge(H5Pset_chunk(pl, 2, chunk), 0);
    if (deflate) ck_assert_int_ge(H5Pset_deflate(pl, 1), 0);
    hid_t d = H5Dcreate2(g, name, H5T_STD_U8LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    uint8_t v[H * W] = {0};
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    H5Pclose(pl);
    H5Sclose(sp);
    H5Gclose(g);
    H5Fclose(f);
}

START_TEST(label_chunk_layout) {
    char p[4096], err[1024];
    const hsize_t quarter[2] = {4, 4}, whole[2] = {H, W};
    fresh_shard("chunks-4x4", p, sizeof p);
    put_chunked(p, "records/000001", "sal", quarter, 1);
    expect_read_fails(p, 1, "dataset sal", "not stored as one chunk");
    fresh_shard("chunks-plain", p, sizeof p);
    put_chunked(p, "records/000001", "edge", quarter, 0);
    expect_read_fails(p, 1, "dataset edge", "not stored as one chunk");
    /* one chunk, plain or deflated, is the format: read (all zero here, so
     * only the checksum differs from what the writer wrote) */
    fresh_shard("chunk-one", p, sizeof p);
    put_chunked(p, "records/000001", "sal", whole, 0);
    recompute_checksum(p, 1);
    shard_file *f;
    ck_assert_msg(shard_open(&f, p, err, sizeof err) == MT_OK, "%s", err);
    shard_record r;
    ck_assert_msg(shard_read(f, 1, SHARD_ALL_TASKS, &r, err, sizeof err) == MT_OK, "%s", err);
    for (int i = 0; i < H * W; i++) ck_assert_int_eq(r.sal[i], 0);
    shard_record_free(&r);
    shard_close(f);
}
END_TEST

START_TEST(truncated_and_not_regular) {
    char p[4096];
    fresh_shard("truncated", p, sizeof p);
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    /* every length from nothing to all but the last byte: an error naming
     * the file at open or at a record read, never a crash */
    for (off_t cut = 0; cut < sb.st_size; cut += sb.st_size / 23 + 1) {
        char q[4200], cmd[8600];
        snprintf(q, sizeof q, "%s/truncated-cut.h5", root);
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", p, q);
        ck_assert_int_eq(system(cmd), 0);
        ck_assert_int_eq(truncate(q, cut), 0);
        shard_file *f;
        char err[2048];
        mt_status st = shard_open(&f, q, err, sizeof err);
        for (int i = 0; !st && i < 3; i++) {
            shard_record r;
            st = shard_read(f, i, SHARD_ALL_TASKS, &r, err, sizeof err);
            if (!st) shard_record_free(&r);
            else shard_close(f);
        }
        if (!st) shard_close(f);
        ck_assert_msg(st != MT_OK, "a shard cut to %lld of %lld bytes read whole", (long long)cut,
                      (long long)sb.st_size);
        expect_has(err, q, NULL, NULL);
    }
    /* a FIFO named like a shard: refused without opening (it would block) */
    char fifo[4200];
    snprintf(fifo, sizeof fifo, "%s/fifo-00000.h5", root);
    unlink(fifo);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    expect_open_fails(fifo, MT_ERR_IO, "not a regular file", NULL);
    expect_open_fails(root, MT_ERR_IO, "not a regular file", NULL);
}
END_TEST

/* ---------------------------------------------------------------- manifests */

static const char *good_manifest =
    "mtlora-shards 1\nsplit train\ntasks semseg,sal\nrecords 5\nshard_size 3\nshards 2\n"
    "train-00000.h5 3\ntrain-00001.h5 2\n";

/* Parses text as root/train.manifest; returns the status, message in err. */
static mt_status parse(const char *text, char *err, size_t errlen, shard_manifest *out) {
    shard_manifest m;
    mt_status st = shard_manifest_parse("/d/train.manifest", "train", text, strlen(text), &m, err, errlen);
    if (out) *out = m;
    else shard_manifest_free(&m);
    return st;
}

/* good_manifest with line `line` (1-based) replaced by repl (NULL: dropped,
 * or inserted before it when insert). */
static void edited(char *out, size_t cap, int line, const char *repl, int insert) {
    const char *s = good_manifest;
    size_t used = 0;
    for (int k = 1; *s; k++) {
        const char *e = strchr(s, '\n') + 1;
        if (k == line && repl) used += (size_t)snprintf(out + used, cap - used, "%s\n", repl);
        if (k != line || insert) used += (size_t)snprintf(out + used, cap - used, "%.*s", (int)(e - s), s);
        s = e;
    }
}

static void expect_manifest_fails(const char *text, const char *a, const char *b) {
    char err[2048] = "";
    ck_assert_int_eq(parse(text, err, sizeof err, NULL), MT_ERR_FORMAT);
    expect_has(err, "/d/train.manifest", a, b);
}

START_TEST(manifest_good_and_written) {
    shard_manifest m;
    char err[1024];
    ck_assert_msg(parse(good_manifest, err, sizeof err, &m) == MT_OK, "%s", err);
    ck_assert_int_eq(m.nshards, 2);
    ck_assert_int_eq(m.records, 5);
    ck_assert_int_eq(m.tasks, SHARD_SEMSEG | SHARD_SAL);
    ck_assert_str_eq(m.shards[1].name, "train-00001.h5");
    ck_assert_int_eq(m.shards[1].records, 2);
    ck_assert_int_eq(m.shards[1].line, 8);
    shard_manifest_free(&m);
    /* what the writer writes reads back */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/mwrite", root);
    mkdir(dir, 0700);
    ck_assert_int_eq(shard_manifest_write(dir, "val", TASKS, 4, 10, 3, err, sizeof err), MT_OK);
    ck_assert_msg(shard_manifest_read(dir, "val", &m, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(m.nshards, 4);
    ck_assert_int_eq(m.shards[3].records, 1);
    ck_assert_int_eq(m.tasks, TASKS);
    shard_manifest_free(&m);
    /* a missing manifest: MT_ERR_IO naming it */
    ck_assert_int_eq(shard_manifest_read(dir, "train", &m, err, sizeof err), MT_ERR_IO);
    expect_has(err, "train.manifest", "missing", NULL);
    /* a FIFO as the manifest: refused, not blocked on */
    char fifo[4300];
    snprintf(fifo, sizeof fifo, "%s/fifo.manifest", dir);
    unlink(fifo);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(shard_manifest_read(dir, "fifo", &m, err, sizeof err), MT_ERR_IO);
    expect_has(err, "fifo.manifest", "not a regular file", NULL);
}
END_TEST

START_TEST(manifest_repeats_and_duplicates) {
    char t[4096];
    edited(t, sizeof t, 7, "shards 2", 1); /* the shards line twice */
    expect_manifest_fails(t, "line 7", "a second 'shards' line (the first is line 6)");
    edited(t, sizeof t, 4, "records 5", 1);
    expect_manifest_fails(t, "line 5", "a second 'records' line (the first is line 4)");
    edited(t, sizeof t, 8, "train-00000.h5 2", 0); /* a shard listed twice */
    expect_manifest_fails(t, "line 8", "shard train-00000.h5 listed twice (also line 7)");
    edited(t, sizeof t, 8, "train-00001.h5 2\ntrain-00002.h5 1", 0);
    expect_manifest_fails(t, "line 9", "more shard lines than 'shards 2' (line 6) says");
    edited(t, sizeof t, 2, "split train\nsplit train", 0);
    expect_manifest_fails(t, "line 3", "a second 'split' line");
}
END_TEST

START_TEST(manifest_missing_and_inconsistent) {
    char t[4096];
    edited(t, sizeof t, 4, NULL, 0); /* no records line: was "incomplete (lists 1 of 1 shards)" */
    expect_manifest_fails(t, "line 5", "'shards' before the 'records' line");
    expect_manifest_fails("mtlora-shards 1\nsplit train\ntasks semseg\nrecords 3\nshard_size 3\n",
                          "no 'shards' line", NULL);
    edited(t, sizeof t, 8, NULL, 0); /* a shard line missing */
    expect_manifest_fails(t, "lists 1 shards, but line 6 says 'shards 2'", "truncated");
    edited(t, sizeof t, 8, "train-00001.h5 3", 0);
    expect_manifest_fails(t, "line 8", "train-00001.h5: 3 records, expected 2");
    edited(t, sizeof t, 6, "shards 3", 0);
    expect_manifest_fails(t, "line 6", "shards 3, but 5 records (line 4) in shards of 3 (line 5) make 2");
    edited(t, sizeof t, 4, "records 99999999999999999999", 0);
    expect_manifest_fails(t, "line 4", "records '99999999999999999999'");
    edited(t, sizeof t, 4, "records -5", 0);
    expect_manifest_fails(t, "line 4", "records '-5'");
    edited(t, sizeof t, 6, "shards 1000000", 0);
    expect_manifest_fails(t, "line 6", "shards '1000000'");
    edited(t, sizeof t, 1, "mtlora-shards 1.7", 0);
    expect_manifest_fails(t, "line 1", "format version '1.7'");
    edited(t, sizeof t, 2, "split val", 0);
    expect_manifest_fails(t, "line 2", "split 'val', but this is the manifest of split 'train'");
    edited(t, sizeof t, 3, "tasks semseg,depth", 0);
    expect_manifest_fails(t, "line 3", "unknown task 'depth'");
    edited(t, sizeof t, 7, "colour blue", 1);
    expect_manifest_fails(t, "line 7", "shard 'colour': expected a name train-NNNNN.h5");
    edited(t, sizeof t, 8, "tasks semseg", 1);
    expect_manifest_fails(t, "line 8", "a second 'tasks' line (the first is line 3)");
    expect_manifest_fails("", "empty", NULL);
    expect_manifest_fails("mtlora-shards 1\n\nsplit train\n", "line 2", "an empty line");
    const char nul[] = "mtlora-shards 1\nsplit tr\0ain\n";
    char err[1024];
    shard_manifest m;
    ck_assert_int_eq(shard_manifest_parse("/d/train.manifest", "train", nul, sizeof nul - 1, &m, err,
                                          sizeof err), MT_ERR_FORMAT);
    expect_has(err, "/d/train.manifest line 2", "a NUL byte", NULL);
}
END_TEST

START_TEST(manifest_paths_stay_inside) {
    char t[4096];
    edited(t, sizeof t, 7, "../train-00000.h5 3", 0);
    expect_manifest_fails(t, "line 7", "shard '../train-00000.h5': a path");
    edited(t, sizeof t, 7, "/etc/train-00000.h5 3", 0);
    expect_manifest_fails(t, "line 7", "a path");
    edited(t, sizeof t, 7, "..", 0);
    expect_manifest_fails(t, "line 7", "expected 'NAME COUNT'");
    edited(t, sizeof t, 7, ".. 3", 0);
    expect_manifest_fails(t, "line 7", "expected a name train-NNNNN.h5");
    edited(t, sizeof t, 7, "val-00000.h5 3", 0); /* another split's shard */
    expect_manifest_fails(t, "line 7", "'val-00000.h5'");
    edited(t, sizeof t, 7, "train-00000.h5.tmp.77 3", 0);
    expect_manifest_fails(t, "line 7", "expected a name train-NNNNN.h5");
}
END_TEST

/* ---------------------------------------------------------------- mtlora-pack --verify */

/* Runs mtlora-pack --verify dir; returns the exit status, output in out. */
static int verify(const char *dir, char *out, size_t cap) {
    const char *pack = getenv("MTLORA_PACK");
    ck_assert_msg(pack != NULL, "MTLORA_PACK is not set");
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "'%s' --verify '%s' 2>&1", pack, dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    const int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void split_dir(const char *name, char *dir, size_t cap) {
    snprintf(dir, cap, "%s/%s", root, name);
    write_split(dir, "train", 5, 2);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(verify_reads_the_manifest) {
    char dir[4096], out[16384], p[4300], q[4300];
    split_dir("v-good", dir, sizeof dir);
    ck_assert_msg(verify(dir, out, sizeof out) == 0, "%s", out);
    expect_has(out, "verified 1 splits, 3 shards, 5 records", NULL, NULL);
    /* a listed shard missing */
    split_dir("v-missing", dir, sizeof dir);
    snprintf(p, sizeof p, "%s/train-00001.h5", dir);
    unlink(p);
    ck_assert_int_eq(verify(dir, out, sizeof out), 1);
    expect_has(out, p, "train.manifest line 8", NULL);
    /* a shard nobody lists */
    split_dir("v-stray", dir, sizeof dir);
    snprintf(p, sizeof p, "%s/train-00000.h5", dir);
    snprintf(q, sizeof q, "%s/train-00009.h5", dir);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", p, q);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(verify(dir, out, sizeof out), 1);
    expect_has(out, "train-00009.h5: a shard no manifest lists", NULL, NULL);
    /* no manifest at all (an interrupted pack) */
    split_dir("v-nomanifest", dir, sizeof dir);
    snprintf(p, sizeof p, "%s/train.manifest", dir);
    unlink(p);
    ck_assert_int_eq(verify(dir, out, sizeof out), 1);
    expect_has(out, "no <split>.manifest", "train-00000.h5: a shard no manifest lists", NULL);
    /* a manifest whose shard holds fewer records than it says */
    split_dir("v-count", dir, sizeof dir);
    snprintf(p, sizeof p, "%s/train-00002.h5", dir);
    unlink(p);
    write_shard(p, "train", 4, 1);
    snprintf(p, sizeof p, "%s/train.manifest", dir);
    write_text(p, "mtlora-shards 1\nsplit train\ntasks semseg,human_parts,sal,normals,edge\nrecords 6\n"
                  "shard_size 2\nshards 3\ntrain-00000.h5 2\ntrain-00001.h5 2\ntrain-00002.h5 2\n");
    ck_assert_int_eq(verify(dir, out, sizeof out), 1);
    expect_has(out, "train-00002.h5: attribute num_records: 1, but", "train.manifest line 9 says 2", NULL);
    /* the manifest repeats its shards line */
    split_dir("v-repeat", dir, sizeof dir);
    snprintf(p, sizeof p, "%s/train.manifest", dir);
    write_text(p, "mtlora-shards 1\nsplit train\ntasks semseg,human_parts,sal,normals,edge\nrecords 5\n"
                  "shard_size 2\nshards 3\nshards 3\ntrain-00000.h5 2\n");
    ck_assert_int_eq(verify(dir, out, sizeof out), 1);
    expect_has(out, "train.manifest line 7", "a second 'shards' line", NULL);
}
END_TEST

START_TEST(verify_names_bad_records) {
    char dir[4096], out[16384], p[4300], q[4300], cmd[9000];
    /* a record's checksum broken by a label value changed in place */
    split_dir("v-record", dir, sizeof dir);
    snprintf(p, sizeof p, "%s/train-00001.h5", dir);
    uint8_t v[H * W] = {0};
    const hsize_t d2[2] = {H, W};
    put_dataset(p, "records/000001", "sal", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, d2, v);
    ck_assert_int_eq(verify(dir, out, sizeof out), 1);
    expect_has(out, "train-00001.h5 record 1 (2008_000003): checksum mismatch", NULL, NULL);
    /* one shard copied over another: every id twice in the split */
    split_dir("v-dupids", dir, sizeof dir);
    snprintf(p, sizeof p, "%s/train-00000.h5", dir);
    snprintf(q, sizeof q, "%s/train-00001.h5", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", p, q);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(verify(dir, out, sizeof out), 1);
    expect_has(out, "the same image id '2008_000000'", "train-00001.h5 record 0", NULL);
}
END_TEST

int main(void) {
    const char *base = getenv("MTLORA_SHARD_TMP");
    snprintf(root, sizeof root, "%s/shard_hostile.%d", base ? base : "/tmp", (int)getpid());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", root, root);
    if (system(cmd) != 0) return 1;
    Suite *s = suite_create("shard_hostile");
    TCase *tc = tcase_create("shards");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, good_shard_reads);
    tcase_add_test(tc, string_attribute_as_array);
    tcase_add_test(tc, long_and_odd_strings);
    tcase_add_test(tc, variable_length_strings_read);
    tcase_add_test(tc, format_version_exact);
    tcase_add_test(tc, index_types_and_bounds);
    tcase_add_test(tc, records_huge_count);
    tcase_add_test(tc, fractional_float_label);
    tcase_add_test(tc, label_out_of_domain);
    tcase_add_test(tc, label_chunk_layout);
    tcase_add_test(tc, truncated_and_not_regular);
    tcase_add_test(tc, manifest_good_and_written);
    tcase_add_test(tc, manifest_repeats_and_duplicates);
    tcase_add_test(tc, manifest_missing_and_inconsistent);
    tcase_add_test(tc, manifest_paths_stay_inside);
    tcase_add_test(tc, verify_reads_the_manifest);
    tcase_add_test(tc, verify_names_bad_records);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (!failed) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0) return 1;
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
