/* fuzz_shard - libFuzzer target: the shard reader (io/shards/shard_reader.c,
 * the attribute reader in shard_format.c) on shards that are well-formed
 * HDF5 but hostile in content. The input is a program of edits applied
 * through the HDF5 C API to a valid 3-record shard from the project's writer:
 * replace a root attribute, an index dataset or a record dataset by one of
 * any class (integers and floats of several sizes, fixed and variable
 * strings), dataspace (scalar, null, 1-3 dimensions) and content, or delete
 * one. The file is then opened with shard_open and every record read whole.
 * Random bytes as a file mostly exercise libhdf5's own decoder, which is not
 * fuzz-clean (fuzz_shard_raw); this way every input reaches our checks.
 * The contract: success gives records of the indexed size with readable
 * buffers and values in their domains; failures name the file. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/io/image_codec.h"
#include "mtlora/io/shards/shard.h"

#define FUZZ_MAX_INPUT 4096
#define MAX_OPS 8
#define MAX_POINTS 1024

static void contract_broken(const char *what, const char *msg) {
    fprintf(stderr, "fuzz_shard: contract broken: %s (message: %s)\n", what, msg);
    abort();
}

/* ---------------------------------------------------------------- the base shard */

static uint8_t *base;
static size_t base_len;
static char path[4096];

static void make_record(shard_record *r, int k) {
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "2008_%06d", k);
    r->h = r->w = 8;
    const size_t px = 64;
    mt_image8 im = {8, 8, 3, malloc(3 * px)};
    if (!im.data) abort();
    for (size_t i = 0; i < 3 * px; i++) im.data[i] = (uint8_t)(i * 5 + (size_t)k * 40);
    char err[512];
    if (img_jpeg_encode(&im, 75, &r->jpeg, &r->jpeg_bytes, "seed", err, sizeof err)) abort();
    img_free(&im);
    r->semseg = calloc(px, 1);
    r->human_parts = calloc(px, 1);
    r->sal = calloc(px, 1);
    r->edge = calloc(px, 1);
    r->normals = calloc(3 * px, 1);
    r->normals_mask = calloc(px, 1);
    if (!r->semseg || !r->human_parts || !r->sal || !r->edge || !r->normals || !r->normals_mask)
        abort();
    for (size_t i = 0; i < px; i++) {
        r->semseg[i] = i % 9 == 0 ? 255 : (uint8_t)(i % 21);
        r->human_parts[i] = (uint8_t)(i % 7);
        r->sal[i] = (uint8_t)(i % 2);
        r->edge[i] = (uint8_t)(i % 4 == 0);
        r->normals_mask[i] = (uint8_t)(i % 3 != 0);
        for (int c = 0; c < 3; c++) r->normals[3 * i + c] = (uint8_t)(i * 11 + (size_t)c * 80);
    }
}

static void write_file(const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(b, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* The writer's shard, once per process, kept as bytes. */
static void make_base(void) {
    const char *tmp = getenv("MTLORA_FUZZ_TMP");
    snprintf(path, sizeof path, "%s/fuzz_shard.%d.h5", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    char err[1024];
    shard_writer *w;
    if (shard_writer_open(&w, path, "train", SHARD_ALL_TASKS, "fuzz", err, sizeof err))
        contract_broken("cannot write the base shard", err);
    for (int k = 0; k < 3; k++) {
        shard_record r;
        make_record(&r, k);
        if (shard_writer_add(w, &r, err, sizeof err)) contract_broken("cannot add a record", err);
        shard_record_free(&r);
    }
    if (shard_writer_finish(w, err, sizeof err)) contract_broken("cannot finish the base", err);
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) || (base_len = (size_t)ftell(f)) == 0 || fseek(f, 0, SEEK_SET) ||
        !(base = malloc(base_len)) || fread(base, 1, base_len, f) != base_len)
        abort();
    fclose(f);
}

/* ---------------------------------------------------------------- the edit program */

typedef struct {
    const uint8_t *p;
    size_t n;
} input;

static unsigned take(input *in) {
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

static const char *const attr_names[] = {"format", "format_version", "split", "tasks",
                                         "num_records", "num_classes_semseg",
                                         "num_classes_human_parts", "source", "image_mean"};
static const char *const index_names[] = {"index/ids", "index/size", "index/checksum",
                                          "index/jpeg_bytes"};
static const char *const record_names[] = {"image_jpeg", "semseg", "human_parts", "sal",
                                           "normals", "normals_mask", "edge"};
#define COUNT(a) (sizeof a / sizeof a[0])

/* A datatype from the input; *vlen set for variable-length strings. */
static hid_t take_type(input *in, int *vlen) {
    static const hid_t *const ints[] = {&H5T_STD_U8LE_g, &H5T_STD_I8LE_g, &H5T_STD_I16LE_g,
                                        &H5T_STD_U16LE_g, &H5T_STD_I32LE_g, &H5T_STD_I64LE_g,
                                        &H5T_STD_U64LE_g, &H5T_IEEE_F32LE_g, &H5T_IEEE_F64LE_g};
    *vlen = 0;
    H5open();
    const unsigned t = take(in) % 11;
    if (t < COUNT(ints)) return H5Tcopy(*ints[t]);
    hid_t s = H5Tcopy(H5T_C_S1);
    const unsigned n = take(in);
    if (t == 10 || n >= 250) {
        H5Tset_size(s, H5T_VARIABLE);
        *vlen = 1;
    } else {
        H5Tset_size(s, n % 64 + 1);
        H5Tset_strpad(s, n & 64 ? H5T_STR_SPACEPAD : H5T_STR_NULLTERM);
    }
    return s;
}

/* A dataspace from the input; *points its element count. */
static hid_t take_space(input *in, size_t *points) {
    const unsigned k = take(in) % 6;
    if (k == 0) {
        *points = 1;
        return H5Screate(H5S_SCALAR);
    }
    if (k == 1) {
        *points = 0;
        return H5Screate(H5S_NULL);
    }
    const int nd = k == 5 ? 3 : k == 4 ? 2 : 1;
    hsize_t d[3];
    *points = 1;
    for (int i = 0; i < nd; i++) {
        const unsigned v = take(in);
        d[i] = v == 255 ? 8 : v % 17; /* 8: the records' side, often right */
        *points *= d[i];
    }
    if (*points > MAX_POINTS) {
        d[0] = 1;
        *points = 1;
        for (int i = 1; i < nd; i++) *points *= d[i];
    }
    return H5Screate_simple(nd, d, NULL);
}

/* Values for `points` elements of type ty: bytes from the input, or for
 * variable strings pointers into a buffer of input text. Caller frees. */
static void *take_values(input *in, hid_t ty, int vlen, size_t points, char **text) {
    *text = NULL;
    if (vlen) {
        char **v = calloc(points ? points : 1, sizeof *v);
        *text = calloc(points ? points : 1, 41);
        if (!v || !*text) abort();
        for (size_t i = 0; i < points; i++) {
            char *s = *text + 41 * i;
            const unsigned n = take(in) % 41;
            for (unsigned j = 0; j < n; j++) s[j] = (char)take(in);
            v[i] = s;
        }
        return v;
    }
    const size_t sz = H5Tget_size(ty), n = sz * (points ? points : 1);
    uint8_t *b = calloc(n, 1);
    if (!b) abort();
    /* a copy of the current text for strings ("train", "1"), else raw bytes */
    const unsigned mode = take(in) % 4;
    static const char *const words[] = {"train", "1", SHARD_FORMAT_NAME,
                                        "semseg,human_parts,sal,normals,edge"};
    if (H5Tget_class(ty) == H5T_STRING && mode < 2) {
        const char *w = words[take(in) % 4];
        for (size_t i = 0; i < points; i++) memcpy(b + i * sz, w, strlen(w) < sz ? strlen(w) : sz);
    } else if (mode == 2) { /* small integers: 0..3 in every element */
        for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(i % sz == 0 ? take(in) % 4 : 0);
    } else {
        for (size_t i = 0; i < n && in->n; i++) b[i] = (uint8_t)take(in);
    }
    return b;
}

static void replace_attr(hid_t f, input *in) {
    const char *name = attr_names[take(in) % COUNT(attr_names)];
    int vlen;
    size_t points;
    hid_t ty = take_type(in, &vlen), sp = take_space(in, &points);
    char *text;
    void *v = take_values(in, ty, vlen, points, &text);
    if (H5Aexists(f, name) > 0) H5Adelete(f, name);
    hid_t a = H5Acreate2(f, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        if (points) H5Awrite(a, ty, v);
        H5Aclose(a);
    }
    free(v);
    free(text);
    H5Sclose(sp);
    H5Tclose(ty);
}

static void replace_dataset(hid_t f, const char *name, input *in) {
    int vlen;
    size_t points;
    hid_t ty = take_type(in, &vlen), sp = take_space(in, &points);
    char *text;
    void *v = take_values(in, ty, vlen, points, &text);
    if (H5Lexists(f, name, H5P_DEFAULT) > 0) H5Ldelete(f, name, H5P_DEFAULT);
    hid_t d = H5Dcreate2(f, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
        if (points) H5Dwrite(d, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        H5Dclose(d);
    }
    free(v);
    free(text);
    H5Sclose(sp);
    H5Tclose(ty);
}

/* Overwrites the bytes of a record's uint8 dataset, keeping its type and
 * shape, so the label domain checks see values the writer never writes. */
static void poke_record(hid_t f, const char *name, input *in) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return;
    hid_t sp = H5Dget_space(d);
    const hssize_t n = H5Sget_simple_extent_npoints(sp);
    if (n > 0 && n <= 4 * MAX_POINTS) {
        uint8_t *b = malloc((size_t)n);
        if (b && H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) >= 0) {
            const unsigned k = take(in) % 4 + 1;
            for (unsigned j = 0; j < k; j++) {
                const unsigned at = (take(in) << 8 | take(in)) % (unsigned)n;
                b[at] = (uint8_t)take(in);
            }
            H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, b);
        }
        free(b);
    }
    H5Sclose(sp);
    H5Dclose(d);
}

static void record_name(char *out, size_t cap, input *in) {
    const unsigned r = take(in) % 3;
    snprintf(out, cap, "records/%06u/%s", r, record_names[take(in) % COUNT(record_names)]);
}

static void apply(hid_t f, input *in) {
    char name[64];
    for (int op = 0; op < MAX_OPS && in->n; op++) {
        switch (take(in) % 6) {
        case 0: replace_attr(f, in); break;
        case 1: replace_dataset(f, index_names[take(in) % COUNT(index_names)], in); break;
        case 2:
            record_name(name, sizeof name, in);
            replace_dataset(f, name, in);
            break;
        case 3:
            record_name(name, sizeof name, in);
            poke_record(f, name, in);
            break;
        case 4: {
            const char *a = attr_names[take(in) % COUNT(attr_names)];
            if (H5Aexists(f, a) > 0) H5Adelete(f, a);
            break;
        }
        default: {
            static const char *const links[] = {"index", "records", "records/000001",
                                                "index/checksum", "records/000002/sal"};
            const char *l = links[take(in) % COUNT(links)];
            if (H5Lexists(f, "records", H5P_DEFAULT) > 0 && H5Lexists(f, "index", H5P_DEFAULT) > 0 &&
                H5Lexists(f, l, H5P_DEFAULT) > 0)
                H5Ldelete(f, l, H5P_DEFAULT);
            break;
        }
        }
    }
}

/* ---------------------------------------------------------------- the target */

static void check_record(const shard_file *sf, int64_t i, const shard_record *r) {
    int h, w;
    shard_record_size(sf, i, &h, &w);
    if (r->h != h || r->w != w || !r->jpeg || !r->jpeg_bytes || !r->semseg || !r->normals)
        contract_broken("a record unlike its index entry", shard_record_id(sf, i));
    const size_t px = (size_t)h * w;
    for (size_t k = 0; k < px; k++)
        if ((r->semseg[k] > 20 && r->semseg[k] != 255) || r->human_parts[k] > 6 || r->sal[k] > 1 ||
            r->edge[k] > 1 || r->normals_mask[k] > 1)
            contract_broken("a label outside its domain accepted", shard_record_id(sf, i));
    volatile uint8_t x = r->jpeg[r->jpeg_bytes - 1] ^ r->normals[3 * px - 1];
    (void)x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    if (!base) make_base();
    write_file(base, base_len);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) contract_broken("cannot reopen the base shard", path);
    input in = {data, size};
    apply(f, &in);
    if (H5Fclose(f) < 0) contract_broken("cannot close the edited shard", path);
    shard_file *sf = NULL;
    char err[2048] = "";
    if (shard_open(&sf, path, err, sizeof err) == MT_OK) {
        const shard_info *info = shard_file_info(sf);
        for (int64_t i = 0; i < info->nrecords; i++) {
            shard_record r;
            err[0] = '\0';
            if (shard_read(sf, i, SHARD_ALL_TASKS, &r, err, sizeof err) == MT_OK) {
                if (info->tasks == SHARD_ALL_TASKS) check_record(sf, i, &r);
                shard_record_free(&r);
            } else if (!strstr(err, path)) {
                contract_broken("a record error that does not name the file", err);
            }
        }
        shard_close(sf);
    } else if (!strstr(err, path)) {
        contract_broken("an open error that does not name the file", err);
    }
    /* every HDF5 file, group, dataset, attribute, type and space closed on every path */
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) {
        char n[64];
        snprintf(n, sizeof n, "%lld open", (long long)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL));
        contract_broken("HDF5 objects left open", n);
    }
    unlink(path);
    return 0;
}
