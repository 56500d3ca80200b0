/* ctx_internal.h - what layer implementations see of an mt_ctx.
 *
 * Not installed: the public contract is include/mtlora/context.h. This header
 * gives the layer files the error setter, the scratch arena and the
 * primitive cache. */
#ifndef MTLORA_CTX_INTERNAL_H
#define MTLORA_CTX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <oneapi/dnnl/dnnl.h>
#include "mtlora/context.h"

#define MT_ERRMSG_LEN 4096
#define MT_PRIM_MAX_ARGS 10
#define MT_PRIM_KEY_LEN 192

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
    MT_SCRATCH_SLOTS
};

typedef struct mt_prim {
    uint64_t hash;
    char key[MT_PRIM_KEY_LEN];
    dnnl_primitive_t prim;
    const_dnnl_primitive_desc_t pd; /* owned by prim */
    int nargs;
    int arg_ids[MT_PRIM_MAX_ARGS];
    dnnl_memory_t mems[MT_PRIM_MAX_ARGS]; /* handles set per call */
    size_t scratch_bytes;                 /* oneDNN's own temporaries */
    dnnl_memory_t scratch_mem;
} mt_prim;

struct mt_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    mt_prim **prims; /* open-addressing table keyed by hash of key */
    long prim_cap, prim_count;
    long hits, created;
    void *scratch[MT_SCRATCH_SLOTS];
    size_t scratch_bytes[MT_SCRATCH_SLOTS];
    /* One scratchpad for every primitive (user mode): oneDNN's
     * library-managed scratchpad is allocated per execution, and for Swin's
     * large matmuls that meant mmap, page faults and munmap on every call. */
    void *dnnl_scratch;
    size_t dnnl_scratch_bytes;
    char err[MT_ERRMSG_LEN];
    /* Cross-rank sum for synchronised batch norm; NULL = per rank. */
    mt_sum_fn sync_sum;
    void *sync_user;
};

/* Records a formatted message and returns `st`, so callers can write
 * `return mt_fail(ctx, MT_ERR_SHAPE, "linear: ...", ...);`. */
mt_status mt_fail(mt_ctx *ctx, mt_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns a buffer of at least `bytes` for slot `slot`, valid until the
 * next call for the same slot; NULL (with the error set) when out of memory. */
void *mt_scratch(mt_ctx *ctx, int slot, size_t bytes);

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

/* dst (+)= src, element by element, where both are `ndims`-dimensional
 * views of shape `dims` with their own strides: a permuting copy on the
 * oneDNN reorder primitive (window partition, patch-merge gather). */
mt_status mt_reorder(mt_ctx *ctx, const char *what, float *dst, const int64_t *dst_strides,
                     const float *src, const int64_t *src_strides, int ndims,
                     const int64_t *dims, int accumulate);

/* Executes `p` with `ptrs[i]` as the buffer for `p->arg_ids[i]`, then waits. */
mt_status mt_prim_run(mt_ctx *ctx, const char *what, mt_prim *p,
                      void *const *ptrs);

/* Builds a printf-style key into `buf` (MT_PRIM_KEY_LEN bytes). */
void mt_prim_key(char *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* dst[i] += src[i] for n floats (used where oneDNN overwrites a result that
 * our backward convention accumulates). */
void mt_add_inplace(float *dst, const float *src, size_t n);

/* memset(0) and memcpy for large float buffers, split over the OpenMP
 * threads (glibc's are single-threaded, and on two cores the other one
 * would wait). */
void mt_zero(float *dst, size_t n);
void mt_copy(float *dst, const float *src, size_t n);

/* An attribute with one sum post-op (dst = op(...) + dst), for results that
 * accumulate into existing gradients. Caller destroys it. */
mt_status mt_attr_accumulate(mt_ctx *ctx, const char *what, float out_scale,
                             dnnl_primitive_attr_t *attr);

#define MT_DNNL(ctx, what, call)                                              \
    do {                                                                      \
        dnnl_status_t mt_dnnl_st_ = (call);                                   \
        if (mt_dnnl_st_ != dnnl_success)                                      \
            return mt_fail((ctx), MT_ERR_DNNL, "%s: oneDNN %s failed (status %d)", \
                           (what), #call, (int)mt_dnnl_st_);                  \
    } while (0)

#define MT_CHECK(expr)                                                        \
    do {                                                                      \
        mt_status mt_st_ = (expr);                                            \
        if (mt_st_ != MT_OK) return mt_st_;                                   \
    } while (0)

#endif

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

/* C (+)= scale * A B on strided views, batched over two leading dims.
 * A is [b0, b1, m, k], B [b0, b1, k, n], C [b0, b1, m, n]; each given by its
 * base pointer and four strides (elements). With b0 == b1 == 1 a 2-D matmul
 * is built (the bias [n], if any, is only allowed there). accumulate adds to
 * C through a sum post-op. Shared by linear and window attention. */
mt_status mt_matmul(mt_ctx *ctx, const char *what, float *c, const int64_t cs[4],
                    const float *a, const int64_t as[4], const float *b, const int64_t bs[4],
                    const float *bias, int64_t b0, int64_t b1, int64_t m, int64_t k, int64_t n,
                    float scale, int accumulate);

/* C = scale * A B + D for 2-D operands, D dense like C: one pass instead of
 * a copy of D into C followed by an accumulating matmul. */
mt_status mt_matmul_add(mt_ctx *ctx, const char *what, float *c, const float *d,
                        const float *a, const int64_t as[2], const float *b, const int64_t bs[2],
                        int64_t m, int64_t k, int64_t n, float scale);

/* Backward variants with the accumulation made explicit: accumulate = 0
 * overwrites the data gradient instead of adding to it, so a caller whose
 * buffer would otherwise be zeroed first saves two passes over it. The
 * public *_backward functions are these with accumulate = 1. */
mt_status linear_backward_ex(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight, int rows,
                             int in_dim, int out_dim, int accumulate);
mt_status lora_delta_backward_ex(mt_ctx *ctx, float *dx, float *dA, float *dB, const float *dy,
                                 const float *x, const float *mid, const float *A, const float *B,
                                 float scale, int rows, int in_dim, int out_dim, int rank,
                                 int accumulate);
mt_status gelu_backward_ex(mt_ctx *ctx, float *dinp, const float *dout, const float *inp,
                           size_t n, int accumulate);
mt_status window_attention_backward_ex(mt_ctx *ctx, float *dqkv, float *dtable, const float *dout,
                                       const float *qkv, const float *probs, int nwb, int ws,
                                       int C, int heads, int accumulate);
mt_status window_partition_backward_ex(mt_ctx *ctx, float *dx, const float *dwindows, int B,
                                       int H, int W, int C, int ws, int accumulate);
mt_status window_reverse_backward_ex(mt_ctx *ctx, float *dwindows, const float *dx, int B, int H,
                                     int W, int C, int ws, int accumulate);
mt_status roll_backward_ex(mt_ctx *ctx, float *dx, const float *dout, int B, int H, int W, int C,
                           int sh, int sw, int accumulate);

/* dsrc = softmax backward of (out, dout) over rows of `cols`, overwritten. */
mt_status softmax_backward_into(mt_ctx *ctx, float *dsrc, const float *dout, const float *out,
                                int rows, int cols);
