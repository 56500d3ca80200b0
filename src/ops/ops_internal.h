/* ops_internal.h - the oneDNN side of an mt_ctx, for src/ops/ only.
 *
 * Contract: only the files of src/ops/ include this header (the layering
 * check in tests/check_layers.py refuses a private header included from
 * another folder, and <oneapi/dnnl/dnnl.h> outside src/ops/). It holds
 * what would tie a caller to oneDNN:
 *  - the primitive cache: a primitive is built once per shape and key, its
 *    memory objects created with it, only their data handles change per
 *    call (mt_prim, mt_prim_find / _build / _run / _key);
 *  - the definition of struct mt_ctx (engine, stream, cache, scratch);
 *  - MT_DNNL, which turns a failed oneDNN call into an mt_status;
 *  - the helpers the layer files share: mt_attr_accumulate (sum post-op),
 *    mt_matmul_add (matmul plus a dense addend) and softmax_backward_into
 *    (the overwriting softmax backward that attention.c uses).
 * Everything the layers above need (the error setter, argument guards,
 * scratch arena, strided matmul, reorder, accumulate-or-overwrite backward
 * variants) is public in include/mtlora/ops/context.h and layers.h. */
#ifndef MTLORA_OPS_INTERNAL_H
#define MTLORA_OPS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <oneapi/dnnl/dnnl.h>
#include "mtlora/ops/context.h"
#include "mtlora/ops/layers.h"

#define MT_ERRMSG_LEN 4096   /* mt_ctx.err, the last error message */
#define MT_PRIM_MAX_ARGS 10  /* execution arguments of one primitive */
#define MT_PRIM_KEY_LEN 192  /* a cache key, with its terminating NUL */

/* One cached primitive: built for the exact shapes, strides and attributes
 * its key spells, run many times on different buffers. */
typedef struct mt_prim {
    uint64_t hash;                  /* FNV-1a of key */
    char key[MT_PRIM_KEY_LEN];
    dnnl_primitive_t prim;
    const_dnnl_primitive_desc_t pd; /* owned by prim; a backward's hint */
    int nargs;
    int arg_ids[MT_PRIM_MAX_ARGS];  /* DNNL_ARG_* of each argument, in call order */
    dnnl_memory_t mems[MT_PRIM_MAX_ARGS]; /* handles set per call */
    size_t scratch_bytes;                 /* oneDNN's own temporaries */
    dnnl_memory_t scratch_mem;
} mt_prim;

struct mt_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    mt_prim **prims; /* (prim_cap) open-addressing table keyed by hash of key */
    long prim_cap, prim_count; /* capacity (a power of two), entries */
    long hits, created;        /* mt_ctx_cache_stats */
    void *scratch[MT_SCRATCH_SLOTS];        /* mt_scratch's buffers, grown on demand */
    size_t scratch_bytes[MT_SCRATCH_SLOTS]; /* their sizes */
    /* One scratchpad for every primitive (user mode): oneDNN's
     * library-managed scratchpad is allocated per execution, and for Swin's
     * large matmuls that meant mmap, page faults and munmap on every call. */
    void *dnnl_scratch;
    size_t dnnl_scratch_bytes;
    char err[MT_ERRMSG_LEN]; /* mt_fail's message, read by mt_ctx_error */
    /* Cross-rank sum for synchronised batch norm; NULL = per rank. */
    mt_sum_fn sync_sum;
    void *sync_user;
};

/* Looks a primitive up by key; NULL when it has not been built yet. */
mt_prim *mt_prim_find(mt_ctx *ctx, const char *key);

/* Builds the primitive for `op_desc` and stores it under `key`. The memory
 * objects for each argument id are created from the primitive descriptor's
 * own descriptors, so callers must describe their buffers exactly (plain
 * layouts with explicit strides, never format_tag_any). `what` names the
 * layer for the error message. */
mt_status mt_prim_build(mt_ctx *ctx, const char *what, const char *key,
                        const_dnnl_op_desc_t op_desc,
                        const_dnnl_primitive_attr_t attr,
                        const_dnnl_primitive_desc_t hint,
                        const int *arg_ids, int nargs, mt_prim **out);

/* Executes `p` with `ptrs[i]` as the buffer for `p->arg_ids[i]` (nargs of
 * them), with the context's shared scratchpad, then waits. */
mt_status mt_prim_run(mt_ctx *ctx, const char *what, mt_prim *p,
                      void *const *ptrs);

/* Builds a printf-style key into `buf` (MT_PRIM_KEY_LEN bytes). */
void mt_prim_key(char *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An attribute with one sum post-op (dst = out_scale * op(...) + dst), for
 * results that accumulate into existing gradients. Caller destroys it. */
mt_status mt_attr_accumulate(mt_ctx *ctx, const char *what, float out_scale,
                             dnnl_primitive_attr_t *attr);

/* Runs a oneDNN call; on failure returns MT_ERR_DNNL from the enclosing
 * function with the call and its status in the context's message. */
#define MT_DNNL(ctx, what, call)                                              \
    do {                                                                      \
        dnnl_status_t mt_dnnl_st_ = (call);                                   \
        if (mt_dnnl_st_ != dnnl_success)                                      \
            return mt_fail((ctx), MT_ERR_DNNL, "%s: oneDNN %s failed (status %d)", \
                           (what), #call, (int)mt_dnnl_st_);                  \
    } while (0)

/* C [m, n] = scale * A [m, k] B [k, n] + D [m, n]: as, bs are the (row,
 * column) strides of A and B; C and D are dense row-major. One pass
 * instead of a copy of D into C followed by an accumulating matmul. */
mt_status mt_matmul_add(mt_ctx *ctx, const char *what, float *c, const float *d,
                        const float *a, const int64_t as[2], const float *b, const int64_t bs[2],
                        int64_t m, int64_t k, int64_t n, float scale);

/* dsrc [rows, cols] = softmax backward of (out, dout) ([rows, cols] each,
 * out the forward's output), overwritten instead of accumulated; dsrc may
 * be dout. */
mt_status softmax_backward_into(mt_ctx *ctx, float *dsrc, const float *dout, const float *out,
                                int rows, int cols);

#endif
