/* test_loader.c - the shard loader on shards that pack_cli_test.py packed
 * from a synthetic set (MTLORA_SHARDS): partition, order, determinism,
 * resume position, evaluation pass, and errors that name the file. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/data/augment.h"
#include "mtlora/io/shards/shard.h"
#include "mtlora/io/shards/shard_loader.h"
#include "test_util.h"

static const char *dir;
enum { S = 32, TASKS = SHARD_SEMSEG | SHARD_HUMAN_PARTS | SHARD_SAL | SHARD_NORMALS | SHARD_EDGE };

static loader_opts opts(const char *split, int rank, int world, int batch, int train) {
    loader_opts o = {dir, split, TASKS, rank, world, batch, S, train, 42, 2, 0, 0};
    return o;
}

static shard_loader *open_ok(loader_opts o) {
    shard_loader *L;
    char err[1024];
    mt_status st = loader_open(&L, &o, err, sizeof err);
    ck_assert_msg(st == MT_OK, "loader_open: %s", err);
    return L;
}

/* Record numbers of one epoch for (rank, world). */
static int64_t epoch_records(int rank, int world, int batch, int64_t *out) {
    shard_loader *L = open_ok(opts("train", rank, world, batch, 1));
    int64_t m = 0;
    char err[1024];
    for (int64_t b = 0; b < loader_batches_per_epoch(L); b++) {
        loader_batch *bt;
        ck_assert_int_eq(loader_next(L, &bt, err, sizeof err), MT_OK);
        ck_assert_ptr_nonnull(bt);
        ck_assert_int_eq(bt->epoch, 0);
        ck_assert_int_eq(bt->index, b);
        ck_assert_int_eq(bt->n, batch);
        for (int k = 0; k < bt->n; k++) out[m++] = bt->records[k];
    }
    loader_batch *bt;
    ck_assert_int_eq(loader_next(L, &bt, err, sizeof err), MT_OK); /* next epoch starts */
    ck_assert_int_eq(bt->epoch, 1);
    loader_close(L);
    return m;
}

START_TEST(partition_disjoint_and_complete) {
    int64_t one[256], r0[256], r1[256];
    shard_loader *L = open_ok(opts("train", 0, 1, 1, 1));
    const int64_t N = loader_records(L);
    loader_close(L);
    ck_assert_int_ge(N, 4);
    ck_assert_int_eq(epoch_records(0, 1, 1, one), N);
    int seen[256] = {0};
    for (int64_t i = 0; i < N; i++) seen[one[i]]++;
    for (int64_t i = 0; i < N; i++) ck_assert_int_eq(seen[i], 1);
    /* Two ranks: disjoint, equal size, together the first 2*floor(N/2) of
     * the same permutation (rank r takes every other position). */
    const int64_t m0 = epoch_records(0, 2, 1, r0), m1 = epoch_records(1, 2, 1, r1);
    ck_assert_int_eq(m0, N / 2);
    ck_assert_int_eq(m1, N / 2);
    for (int64_t i = 0; i < m0; i++) {
        ck_assert_int_eq(r0[i], one[2 * i]);
        ck_assert_int_eq(r1[i], one[2 * i + 1]);
    }
}
END_TEST

START_TEST(deterministic_and_epoch_seeded) {
    char err[1024];
    shard_loader *A = open_ok(opts("train", 0, 1, 2, 1)), *B = open_ok(opts("train", 0, 1, 2, 1));
    const int64_t per = loader_batches_per_epoch(A);
    int differs_from_epoch0 = 0;
    int64_t first[256];
    for (int64_t b = 0; b < 2 * per; b++) {
        loader_batch *a, *c;
        ck_assert_int_eq(loader_next(A, &a, err, sizeof err), MT_OK);
        ck_assert_int_eq(loader_next(B, &c, err, sizeof err), MT_OK);
        ck_assert_int_eq(a->n, c->n);
        ck_assert(memcmp(a->records, c->records, sizeof(int64_t) * a->n) == 0);
        ck_assert(memcmp(a->images, c->images, sizeof(float) * a->n * 3 * S * S) == 0);
        ck_assert(memcmp(a->normals, c->normals, sizeof(float) * a->n * 3 * S * S) == 0);
        ck_assert(memcmp(a->semseg, c->semseg, (size_t)a->n * S * S) == 0);
        for (int k = 0; k < a->n; k++) {
            if (b < per) first[b * 2 + k] = a->records[k];
            else differs_from_epoch0 |= first[(b - per) * 2 + k] != a->records[k];
        }
    }
    ck_assert_msg(differs_from_epoch0, "epoch 1 has the same order as epoch 0");
    loader_close(A);
    loader_close(B);
}
END_TEST

START_TEST(resume_position) {
    char err[1024];
    shard_loader *A = open_ok(opts("train", 0, 1, 2, 1));
    loader_batch *a;
    for (int i = 0; i < 3; i++) ck_assert_int_eq(loader_next(A, &a, err, sizeof err), MT_OK);
    loader_opts o = opts("train", 0, 1, 2, 1);
    o.start_batch = 2;
    shard_loader *B = open_ok(o);
    loader_batch *b;
    ck_assert_int_eq(loader_next(B, &b, err, sizeof err), MT_OK);
    ck_assert_int_eq(b->index, a->index);
    ck_assert(memcmp(a->records, b->records, sizeof(int64_t) * a->n) == 0);
    ck_assert(memcmp(a->images, b->images, sizeof(float) * a->n * 3 * S * S) == 0);
    loader_close(A);
    loader_close(B);
}
END_TEST

START_TEST(evaluation_pass) {
    char err[1024];
    shard_loader *L = open_ok(opts("val", 0, 1, 3, 0));
    const int64_t N = loader_records(L);
    int64_t seen = 0;
    loader_batch *b;
    for (;;) {
        ck_assert_int_eq(loader_next(L, &b, err, sizeof err), MT_OK);
        if (!b) break;
        for (int k = 0; k < b->n; k++) ck_assert_int_eq(b->records[k], seen + k); /* in order */
        /* labels within their ranges; ignore values only where allowed */
        for (size_t i = 0; i < (size_t)b->n * S * S; i++) {
            ck_assert(b->semseg[i] <= 20 || b->semseg[i] == 255);
            ck_assert(b->human_parts[i] <= 6 || b->human_parts[i] == 255);
            ck_assert(b->sal[i] == 0.f || b->sal[i] == 1.f);
        }
        seen += b->n;
    }
    ck_assert_int_eq(seen, N);
    ck_assert_int_eq(loader_next(L, &b, err, sizeof err), MT_OK); /* stays at the end */
    ck_assert_ptr_null(b);
    loader_close(L);
}
END_TEST

START_TEST(errors_name_the_file) {
    shard_loader *L;
    char err[1024];
    loader_opts o = opts("test", 0, 1, 1, 1);
    ck_assert_int_eq(loader_open(&L, &o, err, sizeof err), MT_ERR_IO);
    ck_assert_msg(strstr(err, "test.manifest") != NULL, "%s", err);
    o = opts("train", 2, 2, 1, 1);
    ck_assert_int_eq(loader_open(&L, &o, err, sizeof err), MT_ERR_ARG);
    o = opts("train", 0, 1, 1000, 1);
    ck_assert_int_eq(loader_open(&L, &o, err, sizeof err), MT_ERR_ARG);
    ck_assert_msg(strstr(err, "fewer than one batch") != NULL, "%s", err);
}
END_TEST

/* pack_cli_test.py leaves a copy with one record's JPEG byte flipped
 * (shards-corrupt) and one with a truncated val shard (shards-truncated). */
START_TEST(corrupt_record_reported_by_next) {
    char cdir[1024], err[1024];
    snprintf(cdir, sizeof cdir, "%s/../bad/shards-corrupt", dir);
    loader_opts o = opts("train", 0, 1, 1, 1);
    o.dir = cdir;
    shard_loader *L = open_ok(o);
    mt_status st = MT_OK;
    loader_batch *b;
    for (int64_t i = 0; i < loader_batches_per_epoch(L) && !st; i++) st = loader_next(L, &b, err, sizeof err);
    ck_assert_int_eq(st, MT_ERR_FORMAT);
    ck_assert_msg(strstr(err, "train-00001.h5 record 1") && strstr(err, "checksum mismatch"), "%s", err);
    loader_close(L);
    snprintf(cdir, sizeof cdir, "%s/../bad/shards-truncated", dir);
    o = opts("val", 0, 1, 1, 0);
    o.dir = cdir;
    ck_assert_int_ne(loader_open(&L, &o, err, sizeof err), MT_OK);
    ck_assert_msg(strstr(err, "val-00000.h5") != NULL, "%s", err);
}
END_TEST

int main(void) {
    dir = getenv("MTLORA_SHARDS");
    if (!dir) {
        fprintf(stderr, "MTLORA_SHARDS is not set\n");
        return 1;
    }
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, partition_disjoint_and_complete);
    tcase_add_test(tc, deterministic_and_epoch_seeded);
    tcase_add_test(tc, resume_position);
    tcase_add_test(tc, evaluation_pass);
    tcase_add_test(tc, errors_name_the_file);
    tcase_add_test(tc, corrupt_record_reported_by_next);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
