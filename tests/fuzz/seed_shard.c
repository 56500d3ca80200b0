/* seed_shard OUTDIR - the seed corpus of fuzz_shard: edit programs (see
 * fuzz_shard.c) that start it at each kind of edit: none (the writer's
 * shard read whole), a root attribute as an array or a float, an index
 * dataset of another type, a record label as float32, a poked label value,
 * a deleted attribute and group.
 * seed_shard --h5 OUTDIR - the seed corpus of fuzz_shard_raw: tiny shards
 * from the project's writer (shard_writer), 8x8 and 5x7 images, 0 to 3
 * records, all tasks or a few. Every shard seed must read back whole with
 * the reader, or this program fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/io/image_codec.h"
#include "mtlora/io/shards/shard.h"

static int fail(const char *msg) {
    fprintf(stderr, "seed_shard: %s\n", msg);
    return 1;
}

static int make_record(shard_record *r, int k, int h, int w) {
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "2008_%06d", k);
    r->h = h;
    r->w = w;
    const size_t px = (size_t)h * w;
    mt_image8 im = {h, w, 3, malloc(3 * px)};
    if (!im.data) return -1;
    for (size_t i = 0; i < 3 * px; i++) im.data[i] = (uint8_t)(i * 5 + (size_t)k * 40);
    char err[512];
    mt_status st = img_jpeg_encode(&im, 75, &r->jpeg, &r->jpeg_bytes, "seed", err, sizeof err);
    img_free(&im);
    if (st) return -1;
    r->semseg = malloc(px);
    r->human_parts = malloc(px);
    r->sal = malloc(px);
    r->edge = malloc(px);
    r->normals = malloc(3 * px);
    r->normals_mask = malloc(px);
    if (!r->semseg || !r->human_parts || !r->sal || !r->edge || !r->normals || !r->normals_mask)
        return -1;
    for (size_t i = 0; i < px; i++) {
        r->semseg[i] = i % 9 == 0 ? 255 : (uint8_t)((i + (size_t)k) % 21);
        r->human_parts[i] = (uint8_t)(i % 7);
        r->sal[i] = (uint8_t)(i % 2);
        r->edge[i] = (uint8_t)(i % 4 == 0);
        r->normals_mask[i] = (uint8_t)(i % 3 != 0);
        for (int c = 0; c < 3; c++) r->normals[3 * i + c] = (uint8_t)(i * 11 + (size_t)c * 80);
    }
    return 0;
}

static int write_shard(const char *dir, const char *name, const char *split, int tasks, int n,
                       int h, int w) {
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    shard_writer *wr;
    if (shard_writer_open(&wr, path, split, tasks, "seed_shard", err, sizeof err)) return fail(err);
    for (int k = 0; k < n; k++) {
        shard_record r;
        if (make_record(&r, k, h, w)) {
            shard_record_free(&r);
            shard_writer_abort(wr);
            return fail("cannot make a record");
        }
        mt_status st = shard_writer_add(wr, &r, err, sizeof err);
        shard_record_free(&r);
        if (st) {
            shard_writer_abort(wr);
            return fail(err);
        }
    }
    if (shard_writer_finish(wr, err, sizeof err)) return fail(err);
    /* the seed must read back whole */
    shard_file *f;
    if (shard_open(&f, path, err, sizeof err)) return fail(err);
    for (int k = 0; k < n; k++) {
        shard_record r;
        if (shard_read(f, k, SHARD_ALL_TASKS, &r, err, sizeof err)) {
            shard_close(f);
            return fail(err);
        }
        shard_record_free(&r);
    }
    shard_close(f);
    return 0;
}

static int write_program(const char *dir, const char *name, const uint8_t *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(b, 1, n, f) != n) || fclose(f) != 0) return fail(path);
    return 0;
}

/* Opcodes and operands as fuzz_shard.c's apply() reads them. */
static int write_programs(const char *d) {
    static const uint8_t noop[] = {0};
    /* attr split (2), fixed string 6 bytes (9, 5), 1-D of 4 (2, 4), text "train" (0, 0) */
    static const uint8_t split_array[] = {0, 2, 9, 5, 2, 4, 0, 0};
    /* attr format_version (1) as f64 (8), scalar (0), raw bytes (3) of 1.7 */
    static const uint8_t version_float[] = {0, 1, 8, 0, 3, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0xfb, 0x3f};
    /* attr tasks (3) as a variable-length string (10), scalar, "semseg,depth" */
    static const uint8_t tasks_vlen[] = {0, 3, 10, 0, 12, 's', 'e', 'm', 's', 'e', 'g', ',', 'd', 'e',
                                         'p', 't', 'h'};
    /* index/size (1) as i64 (5), 2-D 3x2 (4, 3, 2), small values (2) */
    static const uint8_t index_size[] = {1, 1, 5, 4, 3, 2, 2, 1, 2, 3, 1, 2, 3};
    /* records/000001/sal (2: r 1, name 3) as f32 (7), 2-D 8x8 (4, 255, 255), raw bytes */
    static const uint8_t sal_float[] = {2, 1, 3, 7, 4, 255, 255, 3, 0, 0, 0, 0x3f, 0, 0, 0x80, 0x3f};
    /* poke (3) records/000002/semseg (2, 1): 2 values (1) at 5 and 9: 21, 254 */
    static const uint8_t poke[] = {3, 2, 1, 1, 0, 5, 21, 0, 9, 254};
    /* delete attr num_records (4, 4), delete link records/000001 (5, 2) */
    static const uint8_t deletes[] = {4, 4, 5, 2};
    int rc = write_program(d, "noop", noop, 0);
    rc |= write_program(d, "split-array", split_array, sizeof split_array);
    rc |= write_program(d, "version-float", version_float, sizeof version_float);
    rc |= write_program(d, "tasks-vlen", tasks_vlen, sizeof tasks_vlen);
    rc |= write_program(d, "index-size-i64", index_size, sizeof index_size);
    rc |= write_program(d, "sal-float", sal_float, sizeof sal_float);
    rc |= write_program(d, "poke-semseg", poke, sizeof poke);
    rc |= write_program(d, "deletes", deletes, sizeof deletes);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 2) return write_programs(argv[1]);
    if (argc != 3 || strcmp(argv[1], "--h5")) return fail("usage: seed_shard [--h5] OUTDIR");
    const char *d = argv[2];
    int rc = write_shard(d, "all-2x8x8.h5", "train", SHARD_ALL_TASKS, 2, 8, 8);
    rc |= write_shard(d, "all-3x5x7.h5", "train", SHARD_ALL_TASKS, 3, 5, 7);
    rc |= write_shard(d, "semseg-parts-2.h5", "val", SHARD_SEMSEG | SHARD_HUMAN_PARTS, 2, 8, 8);
    rc |= write_shard(d, "sal-normals-1.h5", "train", SHARD_SAL | SHARD_NORMALS, 1, 8, 8);
    rc |= write_shard(d, "edge-1.h5", "val", SHARD_EDGE, 1, 6, 6);
    rc |= write_shard(d, "empty.h5", "train", SHARD_ALL_TASKS, 0, 8, 8);
    return rc;
}
