/* context.h - the execution context every layer call takes.
 *
 * An mt_ctx owns the oneDNN engine and stream, the cache of created
 * primitives (so a primitive is built once per shape and reused), a scratch
 * arena for temporaries, and the message of the last error. A context is used
 * by one thread at a time; oneDNN itself parallelises inside each call. */
#ifndef MTLORA_CONTEXT_H
#define MTLORA_CONTEXT_H

#include <stddef.h>
#include <stdio.h>
#include "mtlora/base/status.h"

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


/* ---- for layer implementations and the layers above (model, train) ----
 * The error setter, the argument guards and the scratch arena. */

/* Records a formatted message and returns `st`, so callers can write
 * `return mt_fail(ctx, MT_ERR_SHAPE, "linear: ...", ...);`. */
mt_status mt_fail(mt_ctx *ctx, mt_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define MT_CHECK(expr)                                                        \
    do {                                                                      \
        mt_status mt_st_ = (expr);                                            \
        if (mt_st_ != MT_OK) return mt_st_;                                   \
    } while (0)

/* Argument guards used at the top of every layer. */
#define MT_NEED_PTR(ctx, what, p)                                             \
    do {                                                                      \
        if (!(ctx)) return MT_ERR_ARG;                                        \
        if (!(p)) return mt_fail((ctx), MT_ERR_ARG, "%s: %s is NULL", (what), #p); \
    } while (0)
#define MT_NEED_DIMS(ctx, what, cond, ...)                                    \
    do {                                                                      \
        if (!(cond)) {                                                        \
            char mt_dims_[256];                                               \
            snprintf(mt_dims_, sizeof mt_dims_, __VA_ARGS__);                 \
            return mt_fail((ctx), MT_ERR_SHAPE, "%s: bad shape (%s): %s", (what), \
                           mt_dims_, #cond);                                  \
        }                                                                     \
    } while (0)

/* Scratch slots. A layer that needs temporaries takes them from its own
 * slots so that a composite layer (patch merging calls layer norm and linear)
 * never has its temporaries overwritten by the layers it calls. */
enum {
    MT_SCRATCH_PRIM0 = 0, /* single primitives: results to be accumulated */
    MT_SCRATCH_PRIM1,
    MT_SCRATCH_PRIM2,
    MT_SCRATCH_ATTN0,     /* window attention */
    MT_SCRATCH_ATTN1,
    MT_SCRATCH_ATTN2,
    MT_SCRATCH_LORA,      /* low-rank update backward */
    MT_SCRATCH_PATCH0,    /* non-overlapping convolution: patches, their grads */
    MT_SCRATCH_PATCH1,
    MT_SCRATCH_COMP0,     /* composite layers (patch embed / merging) */
    MT_SCRATCH_COMP1,
    MT_SCRATCH_SYNC,      /* synchronised batch-norm sums */
    MT_SCRATCH_BF16A,     /* bf16 copies of a matmul's float32 operands */
    MT_SCRATCH_BF16B,
    MT_SCRATCH_SLOTS
};

/* Returns a buffer of at least `bytes` for slot `slot`, valid until the
 * next call for the same slot; NULL (with the error set) when out of memory. */
void *mt_scratch(mt_ctx *ctx, int slot, size_t bytes);

#endif
