/* dist.h - what ranks share in data-parallel training (mpi/):
 *
 *  - start-up agreement: a value (the config, the trainable values) hashed
 *    on every rank and compared, with an error naming the ranks that differ
 *    instead of a later hang or silent divergence;
 *  - node-local frozen weights: one copy per node in an MPI shared-memory
 *    window (MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) +
 *    MPI_Win_allocate_shared), filled by the node's first rank, read by all;
 *  - gradient buckets: the trainable-gradient buffer cut into fixed ranges;
 *    each range's MPI_Iallreduce starts as soon as the backward reports
 *    every gradient in it final (mt_model_set_grad_ready), in the same order
 *    on every rank, and is progressed with MPI_Testall between layers (Open
 *    MPI has no progress thread);
 *  - the sum used by synchronised batch norm (on its own communicator). */
#ifndef MTLORA_DIST_H
#define MTLORA_DIST_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include "mtlora/model/model.h"
#include "mtlora/base/status.h"
#include "mtlora/train/trace.h"

typedef struct {
    MPI_Comm world; /* a duplicate of MPI_COMM_WORLD: gradients */
    MPI_Comm sync;  /* another duplicate: batch-norm sums, control messages */
    MPI_Comm node;  /* ranks sharing memory with this one */
    int rank, size, node_rank, node_size, nodes;
    MPI_Win frozen_win;     /* the f32 frozen values (absent when bf16 alone suffices) */
    float *frozen;
    size_t n_frozen;
    MPI_Win frozen_h_win;   /* the bf16 frozen values, when the model runs in bf16 */
    mt_bf16 *frozen_h;
    size_t n_frozen_h;
    size_t shared_bytes;    /* bytes of frozen weights per node, both windows */
} dist_ctx;

mt_status dist_init(dist_ctx *d, char *err, size_t errlen);

/* The result of an MPI call (MPI_ERRORS_RETURN is set on every
 * communicator): MT_OK for MPI_SUCCESS, else MT_ERR_IO with "<call> failed
 * on rank R: <MPI's message>" in err. Every MPI call's code goes through
 * here or an equivalent check. */
mt_status dist_mpi_check(int rc, const char *call, char *err, size_t errlen);
void dist_free(dist_ctx *d);

/* 64-bit FNV-1a of bytes. */
uint64_t dist_hash(const void *data, size_t bytes);
/* Every rank passes its hash of `what`; MT_ERR_ARG on all ranks (message
 * naming the first two ranks that differ) unless they are all equal. */
mt_status dist_check_same(dist_ctx *d, uint64_t hash, const char *what, char *err, size_t errlen);

/* Moves the model's frozen tensors into the node's shared window: the
 * node's rank 0 copies its values in, every rank then reads them there.
 * With bf16 matmuls (AMP) the window holds the bf16 copy (half the bytes)
 * and every rank but rank 0 (which writes the model files, exact) frees
 * its f32 one, unless the model still needs f32 frozen values
 * (decoders_only); then a second window holds those.
 * d->shared_bytes says what a node holds. */
mt_status dist_share_frozen(dist_ctx *d, mt_model *m, mt_ctx *ctx, char *err, size_t errlen);

/* Broadcasts n floats from rank 0. */
mt_status dist_bcast_floats(dist_ctx *d, float *x, size_t n, char *err, size_t errlen);

/* The SyncBN sum (mt_sum_fn): user is the dist_ctx. */
mt_status dist_sum_doubles(void *user, double *values, size_t n);

/* ---- gradient buckets ---- */
typedef struct grad_buckets grad_buckets;
mt_status buckets_create(grad_buckets **b, dist_ctx *d, float *grads, size_t n,
                         size_t bucket_bytes, char *err, size_t errlen);
void buckets_free(grad_buckets *b);
int buckets_count(const grad_buckets *b);
/* Before a backward whose gradients are to be reduced. */
void buckets_begin(grad_buckets *b);
/* The mt_grad_ready_fn to hand to the model (user = the buckets). */
void buckets_on_ready(void *user, size_t offset, size_t count);
/* Starts what is left, waits for every bucket, divides by the world size.
 * *exposed_s: time spent waiting here (communication not hidden behind the
 * backward). */
mt_status buckets_finish(grad_buckets *b, double *exposed_s, char *err, size_t errlen);
/* RUN.TIMELINE: a span per bucket from its MPI_Iallreduce to the test or
 * wait that finds it done (trace.h; NULL: off, the plain Testall/Waitall). */
void buckets_set_trace(grad_buckets *b, mt_trace *t);

#endif
