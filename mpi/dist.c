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

mt_status dist_share_frozen(dist_ctx *d, mt_model *m, mt_ctx *ctx, char *err, size_t errlen) {
    param_bank *bank = mt_model_bank(m);
    const size_t n = bank->n_frozen;
    const MPI_Aint bytes = d->node_rank == 0 ? (MPI_Aint)(n * sizeof(float)) : 0;
    float *base = NULL;
    int rc = MPI_Win_allocate_shared(bytes, sizeof(float), MPI_INFO_NULL, d->node, &base,
                                     &d->frozen_win);
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, "frozen weights: MPI_Win_allocate_shared");
    MPI_Aint size;
    int disp;
    rc = MPI_Win_shared_query(d->frozen_win, 0, &size, &disp, &d->frozen);
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, "frozen weights: MPI_Win_shared_query");
    if ((size_t)size != n * sizeof(float))
        return mt_errf(err, errlen, MT_ERR_ARG, "frozen weights: window of %ld bytes, need %zu",
                       (long)size, n * sizeof(float));
    d->n_frozen = n;
    /* The node's first rank fills the window; the others wait, then map it. */
    rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, d->frozen_win);
    if (rc != MPI_SUCCESS) return mpi_fail(err, errlen, rc, "frozen weights: MPI_Win_lock_all");
    if (d->node_rank == 0) memcpy(d->frozen, bank->frozen, n * sizeof(float));
    rc = MPI_Win_sync(d->frozen_win);
    if (rc == MPI_SUCCESS) rc = MPI_Barrier(d->node);
    if (rc == MPI_SUCCESS) rc = MPI_Win_sync(d->frozen_win);
    const int unlock_rc = MPI_Win_unlock_all(d->frozen_win);
    if (rc == MPI_SUCCESS) rc = unlock_rc;
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, errlen, rc, "frozen weights: MPI_Win_sync / MPI_Barrier on the node");
    mt_status st = mt_model_use_frozen(m, ctx, d->frozen, 0);
    if (st) return mt_errf(err, errlen, st, "frozen weights: %s", mt_ctx_error(ctx));
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
