/* dist.c - start-up agreement, node-shared frozen weights, SyncBN sums
 * (dist.h). */
#include "mtlora/mpi/dist.h"

#include <stdio.h>
#include <string.h>

#include "mtlora/base/hash.h"
#include "mtlora/model/param_bank.h"

mt_status dist_mpi_check(int rc, const char *call, char *err, size_t errlen) {
    if (rc == MPI_SUCCESS) return MT_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", rc);
    int rank = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return mt_errf(err, errlen, MT_ERR_IO, "%s failed on rank %d: %s", call, rank, msg);
}

static mt_status mpi_fail(char *err, size_t errlen, int rc, const char *what) {
    return dist_mpi_check(rc, what, err, errlen);
}

mt_status dist_init(dist_ctx *d, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    d->frozen_win = MPI_WIN_NULL;
    d->frozen_h_win = MPI_WIN_NULL;
    /* Errors come back as codes: a failed collective must be reported, not
     * abort inside the library without a word. */
    int rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, "MPI_Comm_set_errhandler");
    rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->world);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->sync);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &d->node);
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, "dist_init: MPI_Comm_dup / MPI_Comm_split_type");
    rc = MPI_Comm_rank(d->world, &d->rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(d->world, &d->size);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(d->node, &d->node_rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(d->node, &d->node_size);
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, "dist_init: MPI_Comm_rank / MPI_Comm_size");
    int leader = d->node_rank == 0;
    rc = MPI_Allreduce(&leader, &d->nodes, 1, MPI_INT, MPI_SUM, d->world);
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, "dist_init: counting nodes");
    return MT_OK;
}

void dist_free(dist_ctx *d) {
    /* Teardown: a failure here leaves nothing to save or report. */
    if (d->frozen_win != MPI_WIN_NULL) (void)MPI_Win_free(&d->frozen_win);
    if (d->frozen_h_win != MPI_WIN_NULL) (void)MPI_Win_free(&d->frozen_h_win);
    if (d->node != MPI_COMM_NULL && d->node) (void)MPI_Comm_free(&d->node);
    if (d->sync != MPI_COMM_NULL && d->sync) (void)MPI_Comm_free(&d->sync);
    if (d->world != MPI_COMM_NULL && d->world) (void)MPI_Comm_free(&d->world);
}

uint64_t dist_hash(const void *data, size_t bytes) {
    return mt_fnv1a64(MT_FNV1A64_INIT, data, bytes);
}

mt_status dist_check_same(dist_ctx *d, uint64_t hash, const char *what, char *err, size_t errlen) {
    unsigned long long mine = hash, all_min, all_max;
    int rc = MPI_Allreduce(&mine, &all_min, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, d->sync);
    if (rc == MPI_SUCCESS)
        rc = MPI_Allreduce(&mine, &all_max, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, d->sync);
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, what);
    if (all_min == all_max) return MT_OK;
    /* Name two ranks that differ: the lowest holding the minimum and the
     * lowest holding the maximum. */
    int r_min = mine == all_min ? d->rank : d->size, r_max = mine == all_max ? d->rank : d->size;
    int a = d->size, b = d->size;
    rc = MPI_Allreduce(&r_min, &a, 1, MPI_INT, MPI_MIN, d->sync);
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(&r_max, &b, 1, MPI_INT, MPI_MIN, d->sync);
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, what);
    return mt_errf(err, errlen, MT_ERR_ARG, "mismatched %s across ranks: rank %d and rank %d differ",
                   what, a, b);
}

/* One node-shared window of `bytes` (allocated by the node's first rank),
 * filled there by fill(user, base) while the others wait; *out is every
 * rank's mapping of it. */
static mt_status share_window(dist_ctx *d, size_t bytes, MPI_Win *win, void **out,
                              void (*fill)(void *user, void *base), void *user, const char *what,
                              char *err, size_t errlen) {
    void *base = NULL;
    int rc = MPI_Win_allocate_shared(d->node_rank == 0 ? (MPI_Aint)bytes : 0, 1, MPI_INFO_NULL,
                                     d->node, &base, win);
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, what);
    MPI_Aint size;
    int disp;
    rc = MPI_Win_shared_query(*win, 0, &size, &disp, out);
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, what);
    if ((size_t)size != bytes)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: window of %ld bytes, need %zu", what,
                       (long)size, bytes);
    /* The node's first rank fills the window; the others wait, then map it. */
    rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, *win);
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, what);
    if (d->node_rank == 0) fill(user, *out);
    rc = MPI_Win_sync(*win);
    if (rc == MPI_SUCCESS) rc = MPI_Barrier(d->node);
    if (rc == MPI_SUCCESS) rc = MPI_Win_sync(*win);
    const int unlock_rc = MPI_Win_unlock_all(*win);
    if (rc == MPI_SUCCESS) rc = unlock_rc;
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, what);
    return MT_OK;
}

static void fill_f32(void *user, void *base) {
    const param_bank *bank = user;
    memcpy(base, bank->frozen, bank->n_frozen * sizeof(float));
}

static void fill_bf16(void *user, void *base) {
    const param_bank *bank = user;
    mt_f32_to_bf16(base, bank->frozen, bank->n_frozen);
}

mt_status dist_share_frozen(dist_ctx *d, mt_model *m, mt_ctx *ctx, char *err, size_t errlen) {
    param_bank *bank = mt_model_bank(m);
    const size_t nh = mt_model_frozen_bf16_count(m);
    const int need_f32 = mt_model_frozen_f32_needed(m); /* the same on every rank */
    d->shared_bytes = 0;
    if (nh) {
        void *h = NULL;
        MT_CHECK(share_window(d, nh * sizeof(mt_bf16), &d->frozen_h_win, &h, fill_bf16, bank,
                              "frozen bf16 weights: shared window", err, errlen));
        d->frozen_h = h;
        d->n_frozen_h = nh;
        d->shared_bytes += nh * sizeof(mt_bf16);
        /* Rank 0 keeps its own f32 copy: the model files it writes
         * (--save-trainable) then hold the exact weights, not bf16 ones. */
        mt_status st = mt_model_use_frozen_bf16(m, ctx, d->frozen_h, 0, d->rank != 0, NULL);
        if (st) return mt_errf(err, errlen, st, "frozen weights: %s", mt_ctx_error(ctx));
        if (!need_f32) return MT_OK;
    }
    const size_t n = bank->n_frozen;
    void *f = NULL;
    MT_CHECK(share_window(d, n * sizeof(float), &d->frozen_win, &f, fill_f32, bank,
                          "frozen weights: shared window", err, errlen));
    d->frozen = f;
    d->n_frozen = n;
    d->shared_bytes += n * sizeof(float);
    mt_status st = mt_model_use_frozen(m, ctx, d->frozen, 0);
    if (st) return mt_errf(err, errlen, st, "frozen weights: %s", mt_ctx_error(ctx));
    if (nh) { /* the bf16 copy stays the shared one, not the f32 values' */
        st = mt_model_use_frozen_bf16(m, ctx, d->frozen_h, 0, 0, NULL);
        if (st) return mt_errf(err, errlen, st, "frozen weights: %s", mt_ctx_error(ctx));
    }
    return MT_OK;
}

mt_status dist_bcast_floats(dist_ctx *d, float *x, size_t n, char *err, size_t errlen) {
    /* MPI counts are int: send in pieces. */
    const size_t piece = (size_t)1 << 28;
    for (size_t off = 0; off < n; off += piece) {
        const int cnt = (int)(n - off < piece ? n - off : piece);
        int rc = MPI_Bcast(x + off, cnt, MPI_FLOAT, 0, d->world);
        if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, "broadcasting the trainable values");
    }
    return MT_OK;
}

mt_status dist_sum_doubles(void *user, double *values, size_t n) {
    dist_ctx *d = user;
    return MPI_Allreduce(MPI_IN_PLACE, values, (int)n, MPI_DOUBLE, MPI_SUM, d->sync) == MPI_SUCCESS
               ? MT_OK
               : MT_ERR_IO;
}
