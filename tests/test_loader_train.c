/* test_loader_train.c - the loader's training options (loader_open_train)
 * on the shards pack_cli_test.py packed (MTLORA_SHARDS) and its copy with
 * one record's JPEG byte flipped (../bad/shards-corrupt, train-00001.h5
 * record 1):
 *   group: an epoch ends after the last whole group of batches, so the
 *     epoch uses the same positions of its permutation on any world size
 *     when batch x world x group is kept (resume on another world size);
 *   replace_bad: the corrupt record is replaced by the next record of the
 *     rank's order, the batch keeps its size and says which record (shard
 *     file and record number) and why; the same again gives the same batch;
 *     without it the pass still ends with the error. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/io/shards/shard.h"
#include "mtlora/io/shards/shard_loader.h"
#include "test_util.h"

static const char *dir;
enum { S = 16, TASKS = SHARD_SEMSEG | SHARD_HUMAN_PARTS | SHARD_SAL | SHARD_NORMALS | SHARD_EDGE };

static loader_opts opts(const char *d, int rank, int world, int batch) {
    loader_opts o = {d, "train", TASKS, rank, world, batch, S, 1, 42, 2, 0, 0};
    return o;
}

static shard_loader *open_train(loader_opts o, int group, int replace_bad) {
    shard_loader *L;
    char err[1024];
    const loader_train_opts t = {group, replace_bad};
    const mt_status st = loader_open_train(&L, &o, &t, err, sizeof err);
    ck_assert_msg(st == MT_OK, "loader_open_train: %s", err);
    return L;
}

static int cmp64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The records of epoch 0 over all ranks of `world` (batch 1, group g),
 * sorted; checks that epoch 1 starts right after the last whole group. */
static int64_t epoch_positions(int world, int g, int64_t *out) {
    int64_t m = 0;
    char err[1024];
    for (int r = 0; r < world; r++) {
        shard_loader *L = open_train(opts(dir, r, world, 1), g, 0);
        const int64_t per = loader_batches_per_epoch(L);
        ck_assert_int_eq(per % g, 0);
        ck_assert_int_eq(per, loader_records(L) / world / g * g);
        loader_batch *b;
        for (int64_t i = 0; i < per; i++) {
            ck_assert_int_eq(loader_next(L, &b, err, sizeof err), MT_OK);
            ck_assert_int_eq(b->epoch, 0);
            out[m++] = b->records[0];
        }
        ck_assert_int_eq(loader_next(L, &b, err, sizeof err), MT_OK); /* the leftover is dropped */
        ck_assert_int_eq(b->epoch, 1);
        ck_assert_int_eq(b->index, 0);
        loader_close(L);
    }
    qsort(out, (size_t)m, sizeof *out, cmp64);
    return m;
}

START_TEST(whole_groups_same_positions_on_any_world) {
    shard_loader *L = open_train(opts(dir, 0, 1, 1), 1, 0);
    const int64_t N = loader_records(L);
    loader_close(L);
    ck_assert_int_ge(N, 8);
    /* global batch 4 per update: 4 ranks x 1, 2 ranks x 1 x 2, 1 rank x 1 x 4 */
    int64_t *a = malloc(sizeof(int64_t) * (size_t)N), *b = malloc(sizeof(int64_t) * (size_t)N),
            *c = malloc(sizeof(int64_t) * (size_t)N);
    const int64_t na = epoch_positions(4, 1, a), nb = epoch_positions(2, 2, b), nc = epoch_positions(1, 4, c);
    ck_assert_int_eq(na, N / 4 * 4);
    ck_assert_int_eq(nb, na);
    ck_assert_int_eq(nc, na);
    ck_assert(memcmp(a, b, sizeof(int64_t) * (size_t)na) == 0);
    ck_assert(memcmp(a, c, sizeof(int64_t) * (size_t)na) == 0);
    for (int64_t i = 1; i < na; i++) ck_assert_int_lt(a[i - 1], a[i]); /* each record once */
    free(a);
    free(b);
    free(c);
    /* a group larger than an epoch is refused, naming the split */
    shard_loader *big;
    char err[1024];
    loader_opts o = opts(dir, 0, 1, 1);
    const loader_train_opts t = {(int)N + 1, 0};
    ck_assert_int_eq(loader_open_train(&big, &o, &t, err, sizeof err), MT_ERR_ARG);
    ck_assert_msg(strstr(err, "train") && strstr(err, "fewer than one update"), "%s", err);
}
END_TEST

/* One epoch with batch 2: the records and the bad-record notes. */
static int64_t one_epoch(shard_loader *L, int64_t *recs, int *nbad, char *msg, size_t msglen) {
    char err[1024];
    int64_t m = 0;
    *nbad = 0;
    msg[0] = 0;
    for (int64_t i = 0; i < loader_batches_per_epoch(L); i++) {
        loader_batch *b;
        const mt_status st = loader_next(L, &b, err, sizeof err);
        ck_assert_msg(st == MT_OK, "%s", err);
        ck_assert_int_eq(b->n, 2);
        for (int k = 0; k < b->n; k++) recs[m++] = b->records[k];
        if (b->nbad) {
            *nbad += b->nbad;
            snprintf(msg + strlen(msg), msglen - strlen(msg), "%s", b->bad_msg);
        }
    }
    return m;
}

START_TEST(corrupt_record_replaced) {
    char cdir[1024], msg[4096];
    snprintf(cdir, sizeof cdir, "%s/../bad/shards-corrupt", dir);
    shard_loader *L = open_train(opts(cdir, 0, 1, 2), 1, 1);
    const int64_t N = loader_records(L);
    int64_t *r1 = malloc(sizeof(int64_t) * (size_t)N), *r2 = malloc(sizeof(int64_t) * (size_t)N);
    int nbad;
    const int64_t m = one_epoch(L, r1, &nbad, msg, sizeof msg);
    loader_close(L);
    ck_assert_int_eq(nbad, 1);
    ck_assert_msg(strstr(msg, "train-00001.h5 record 1") && strstr(msg, "checksum mismatch"), "%s", msg);
    /* the shard's record 1 is a record number of the split: the bad one is gone */
    shard_loader *G = open_train(opts(dir, 0, 1, 2), 1, 0);
    int64_t *g = malloc(sizeof(int64_t) * (size_t)N);
    int gbad;
    char gmsg[16];
    ck_assert_int_eq(one_epoch(G, g, &gbad, gmsg, sizeof gmsg), m);
    loader_close(G);
    ck_assert_int_eq(gbad, 0);
    int differ = 0;
    for (int64_t i = 0; i < m; i++) differ += g[i] != r1[i];
    ck_assert_int_eq(differ, 1); /* one record replaced, nothing else moved */
    /* deterministic */
    L = open_train(opts(cdir, 0, 1, 2), 1, 1);
    ck_assert_int_eq(one_epoch(L, r2, &nbad, msg, sizeof msg), m);
    loader_close(L);
    ck_assert(memcmp(r1, r2, sizeof(int64_t) * (size_t)m) == 0);
    free(r1);
    free(r2);
    free(g);
}
END_TEST

int main(void) {
    dir = getenv("MTLORA_SHARDS");
    if (!dir) {
        fprintf(stderr, "MTLORA_SHARDS is not set\n");
        return 1;
    }
    Suite *s = suite_create("loader_train");
    TCase *tc = tcase_create("loader_train");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, whole_groups_same_positions_on_any_world);
    tcase_add_test(tc, corrupt_record_replaced);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
