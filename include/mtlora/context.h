/* context.h - the execution context every layer call takes.
 *
 * An mt_ctx owns the oneDNN engine and stream, the cache of created
 * primitives (so a primitive is built once per shape and reused), a scratch
 * arena for temporaries, and the message of the last error. A context is used
 * by one thread at a time; oneDNN itself parallelises inside each call. */
#ifndef MTLORA_CONTEXT_H
#define MTLORA_CONTEXT_H

#include <stddef.h>
#include "mtlora/status.h"

typedef struct mt_ctx mt_ctx;

typedef struct {
    long created; /* primitives built (cache misses) */
    long hits;    /* calls that reused a cached primitive */
    long entries; /* primitives currently held */
} mt_cache_stats;

/* Creates a CPU context. On failure *out is NULL and the status says why;
 * `errbuf` (may be NULL) receives a message of at most `errlen` bytes. */
mt_status mt_ctx_create(mt_ctx **out, char *errbuf, size_t errlen);
void mt_ctx_destroy(mt_ctx *ctx);

/* Message of the most recent failure on this context ("" if none). */
const char *mt_ctx_error(const mt_ctx *ctx);

/* Synchronised batch norm (SyncBN): when fn is set, batch-norm training
 * statistics and the sums of its backward are summed over every rank by
 * fn(user, values, n) (an MPI_Allreduce in mtlora_dist; it must sum the n
 * doubles in place, identically on all ranks). Then N ranks with batch b
 * compute what one process computes with batch N * b. NULL (the default):
 * statistics per rank, as PyTorch's BatchNorm2d under DDP. */
typedef mt_status (*mt_sum_fn)(void *user, double *values, size_t n);
void mt_ctx_set_sync_sum(mt_ctx *ctx, mt_sum_fn fn, void *user);
void mt_ctx_clear_error(mt_ctx *ctx);

mt_cache_stats mt_ctx_cache_stats(const mt_ctx *ctx);

#endif
