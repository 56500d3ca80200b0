/* context.c - mt_ctx: oneDNN engine/stream, primitive cache, scratch arena.
 *
 * The cache exists because creating a oneDNN primitive JIT-compiles a kernel
 * (milliseconds), while executing one on a Swin-sized tensor takes
 * microseconds to milliseconds: building per call would dominate the step. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "ops_internal.h"

mt_status mt_fail(mt_ctx *ctx, mt_status st, const char *fmt, ...) {
    if (ctx) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
        va_end(ap);
    }
    return st;
}

const char *mt_ctx_error(const mt_ctx *ctx) { return ctx ? ctx->err : "no context"; }
void mt_ctx_clear_error(mt_ctx *ctx) { if (ctx) ctx->err[0] = '\0'; }

void mt_ctx_set_sync_sum(mt_ctx *ctx, mt_sum_fn fn, void *user) {
    if (!ctx) return;
    ctx->sync_sum = fn;
    ctx->sync_user = user;
}

mt_status mt_ctx_create(mt_ctx **out, char *errbuf, size_t errlen) {
    if (!out) return MT_ERR_ARG;
    *out = NULL;
    mt_ctx *ctx = calloc(1, sizeof *ctx);
    const char *msg = NULL;
    mt_status st = MT_OK;
    if (!ctx) { msg = "mt_ctx_create: out of memory"; st = MT_ERR_NOMEM; goto fail; }
    ctx->prim_cap = 256;
    ctx->prims = calloc((size_t)ctx->prim_cap, sizeof *ctx->prims);
    if (!ctx->prims) { msg = "mt_ctx_create: out of memory"; st = MT_ERR_NOMEM; goto fail; }
    if (dnnl_engine_create(&ctx->engine, dnnl_cpu, 0) != dnnl_success) {
        msg = "mt_ctx_create: oneDNN CPU engine could not be created"; st = MT_ERR_DNNL; goto fail;
    }
    if (dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags) != dnnl_success) {
        msg = "mt_ctx_create: oneDNN stream could not be created"; st = MT_ERR_DNNL; goto fail;
    }
    *out = ctx;
    return MT_OK;
fail:
    if (errbuf && errlen) snprintf(errbuf, errlen, "%s", msg);
    mt_ctx_destroy(ctx);
    return st;
}

static void prim_free(mt_prim *p) {
    if (!p) return;
    if (p->scratch_mem) dnnl_memory_destroy(p->scratch_mem);
    for (int i = 0; i < p->nargs; i++)
        if (p->mems[i]) dnnl_memory_destroy(p->mems[i]);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    free(p);
}

void mt_ctx_destroy(mt_ctx *ctx) {
    if (!ctx) return;
    if (ctx->prims) {
        for (long i = 0; i < ctx->prim_cap; i++) prim_free(ctx->prims[i]);
        free(ctx->prims);
    }
    for (int i = 0; i < MT_SCRATCH_SLOTS; i++) free(ctx->scratch[i]);
    free(ctx->dnnl_scratch);
    if (ctx->stream) dnnl_stream_destroy(ctx->stream);
    if (ctx->engine) dnnl_engine_destroy(ctx->engine);
    free(ctx);
}

mt_cache_stats mt_ctx_cache_stats(const mt_ctx *ctx) {
    mt_cache_stats s = {0, 0, 0};
    if (ctx) { s.created = ctx->created; s.hits = ctx->hits; s.entries = ctx->prim_count; }
    return s;
}

void *mt_scratch(mt_ctx *ctx, int slot, size_t bytes) {
    if (slot < 0 || slot >= MT_SCRATCH_SLOTS) {
        mt_fail(ctx, MT_ERR_ARG, "scratch slot %d out of range", slot);
        return NULL;
    }
    if (bytes == 0) bytes = 1;
    if (ctx->scratch_bytes[slot] < bytes) {
        /* 64-byte alignment suits AVX-512 loads in oneDNN kernels. */
        size_t rounded = (bytes + 63) & ~(size_t)63;
        void *p = aligned_alloc(64, rounded);
        if (!p) {
            mt_fail(ctx, MT_ERR_NOMEM, "scratch: cannot allocate %zu bytes", bytes);
            return NULL;
        }
        free(ctx->scratch[slot]);
        ctx->scratch[slot] = p;
        ctx->scratch_bytes[slot] = rounded;
    }
    return ctx->scratch[slot];
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ULL; }
    return h;
}

void mt_prim_key(char *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, MT_PRIM_KEY_LEN, fmt, ap);
    va_end(ap);
}

mt_prim *mt_prim_find(mt_ctx *ctx, const char *key) {
    uint64_t h = fnv1a(key);
    long mask = ctx->prim_cap - 1;
    for (long i = (long)(h & (uint64_t)mask);; i = (i + 1) & mask) {
        mt_prim *p = ctx->prims[i];
        if (!p) return NULL;
        if (p->hash == h && strcmp(p->key, key) == 0) { ctx->hits++; return p; }
    }
}

static mt_status table_insert(mt_ctx *ctx, mt_prim *p) {
    if ((ctx->prim_count + 1) * 2 > ctx->prim_cap) {
        long ncap = ctx->prim_cap * 2;
        mt_prim **n = calloc((size_t)ncap, sizeof *n);
        if (!n) return mt_fail(ctx, MT_ERR_NOMEM, "primitive cache: out of memory");
        for (long i = 0; i < ctx->prim_cap; i++) {
            mt_prim *q = ctx->prims[i];
            if (!q) continue;
            long j = (long)(q->hash & (uint64_t)(ncap - 1));
            while (n[j]) j = (j + 1) & (ncap - 1);
            n[j] = q;
        }
        free(ctx->prims);
        ctx->prims = n;
        ctx->prim_cap = ncap;
    }
    long mask = ctx->prim_cap - 1;
    long i = (long)(p->hash & (uint64_t)mask);
    while (ctx->prims[i]) i = (i + 1) & mask;
    ctx->prims[i] = p;
    ctx->prim_count++;
    return MT_OK;
}

/* Takes ownership of `pd` (destroyed on every path). */
static mt_status prim_build_from_pd(mt_ctx *ctx, const char *what, const char *key,
                                    dnnl_primitive_desc_t pd, const int *arg_ids, int nargs,
                                    mt_prim **out) {
    if (nargs > MT_PRIM_MAX_ARGS) {
        dnnl_primitive_desc_destroy(pd);
        return mt_fail(ctx, MT_ERR_ARG, "%s: too many primitive arguments", what);
    }
    mt_prim *p = calloc(1, sizeof *p);
    if (!p) {
        dnnl_primitive_desc_destroy(pd);
        return mt_fail(ctx, MT_ERR_NOMEM, "%s: out of memory", what);
    }
    snprintf(p->key, sizeof p->key, "%s", key);
    p->hash = fnv1a(p->key);
    dnnl_status_t s = dnnl_primitive_create(&p->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) {
        free(p);
        return mt_fail(ctx, MT_ERR_DNNL, "%s: primitive creation failed for [%s] (status %d)",
                       what, key, (int)s);
    }
    dnnl_primitive_get_primitive_desc(p->prim, &p->pd);
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(p->pd, dnnl_query_scratchpad_md, 0);
    p->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (p->scratch_bytes &&
        dnnl_memory_create(&p->scratch_mem, smd, ctx->engine, DNNL_MEMORY_NONE) != dnnl_success) {
        prim_free(p);
        return mt_fail(ctx, MT_ERR_DNNL, "%s: no scratchpad memory for [%s]", what, key);
    }
    p->nargs = nargs;
    for (int i = 0; i < nargs; i++) {
        p->arg_ids[i] = arg_ids[i];
        const dnnl_memory_desc_t *md =
            dnnl_primitive_desc_query_md(p->pd, dnnl_query_exec_arg_md, arg_ids[i]);
        if (!md || md->ndims == 0 ||
            dnnl_memory_create(&p->mems[i], md, ctx->engine, DNNL_MEMORY_NONE) != dnnl_success) {
            prim_free(p);
            return mt_fail(ctx, MT_ERR_DNNL, "%s: no memory for argument %d of [%s]", what,
                           arg_ids[i], key);
        }
    }
    mt_status st = table_insert(ctx, p);
    if (st) { prim_free(p); return st; }
    ctx->created++;
    *out = p;
    return MT_OK;
}

/* The attribute every primitive is built with: the caller's (copied) or a
 * fresh one, with the scratchpad in user mode. Caller destroys it. */
static mt_status user_scratch_attr(mt_ctx *ctx, const char *what, const_dnnl_primitive_attr_t in,
                                   dnnl_primitive_attr_t *out) {
    *out = NULL;
    dnnl_status_t s = in ? dnnl_primitive_attr_clone(out, in) : dnnl_primitive_attr_create(out);
    if (s != dnnl_success) return mt_fail(ctx, MT_ERR_DNNL, "%s: cannot create attributes", what);
    if (dnnl_primitive_attr_set_scratchpad_mode(*out, dnnl_scratchpad_mode_user) != dnnl_success) {
        dnnl_primitive_attr_destroy(*out);
        *out = NULL;
        return mt_fail(ctx, MT_ERR_DNNL, "%s: cannot set the scratchpad mode", what);
    }
    return MT_OK;
}

mt_status mt_prim_build(mt_ctx *ctx, const char *what, const char *key,
                        const_dnnl_op_desc_t op_desc,
                        const_dnnl_primitive_attr_t attr_in,
                        const_dnnl_primitive_desc_t hint,
                        const int *arg_ids, int nargs, mt_prim **out) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr;
    MT_CHECK(user_scratch_attr(ctx, what, attr_in, &attr));
    dnnl_status_t s = dnnl_primitive_desc_create(&pd, op_desc, attr, ctx->engine, hint);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success)
        return mt_fail(ctx, MT_ERR_DNNL,
                       "%s: oneDNN has no implementation for [%s] (status %d)", what, key, (int)s);
    return prim_build_from_pd(ctx, what, key, pd, arg_ids, nargs, out);
}

mt_status mt_reorder(mt_ctx *ctx, const char *what, float *dst, const int64_t *dst_strides,
                     const float *src, const int64_t *src_strides, int ndims,
                     const int64_t *dims, int accumulate) {
    if (ndims < 1 || ndims > DNNL_MAX_NDIMS)
        return mt_fail(ctx, MT_ERR_ARG, "%s: reorder of %d dimensions", what, ndims);
    char key[MT_PRIM_KEY_LEN];
    int len = snprintf(key, sizeof key, "reorder:%d:%d", ndims, accumulate);
    for (int i = 0; i < ndims && len < (int)sizeof key; i++)
        len += snprintf(key + len, sizeof key - (size_t)len, ":%ld/%ld/%ld", (long)dims[i],
                        (long)src_strides[i], (long)dst_strides[i]);
    if (len >= (int)sizeof key)
        return mt_fail(ctx, MT_ERR_ARG, "%s: reorder key too long", what);
    mt_prim *p = mt_prim_find(ctx, key);
    if (!p) {
        dnnl_dims_t d = {0}, ss = {0}, ds = {0};
        for (int i = 0; i < ndims; i++) { d[i] = dims[i]; ss[i] = src_strides[i]; ds[i] = dst_strides[i]; }
        dnnl_memory_desc_t smd, dmd;
        MT_DNNL(ctx, what, dnnl_memory_desc_init_by_strides(&smd, ndims, d, dnnl_f32, ss));
        MT_DNNL(ctx, what, dnnl_memory_desc_init_by_strides(&dmd, ndims, d, dnnl_f32, ds));
        dnnl_primitive_attr_t acc = NULL, attr = NULL;
        if (accumulate) MT_CHECK(mt_attr_accumulate(ctx, what, 1.0f, &acc));
        mt_status ast = user_scratch_attr(ctx, what, acc, &attr);
        if (acc) dnnl_primitive_attr_destroy(acc);
        MT_CHECK(ast);
        dnnl_primitive_desc_t pd = NULL;
        dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, &smd, ctx->engine, &dmd,
                                                             ctx->engine, attr);
        dnnl_primitive_attr_destroy(attr);
        if (s != dnnl_success)
            return mt_fail(ctx, MT_ERR_DNNL, "%s: oneDNN has no reorder for [%s] (status %d)",
                           what, key, (int)s);
        int ids[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
        MT_CHECK(prim_build_from_pd(ctx, what, key, pd, ids, 2, &p));
    }
    void *ptrs[2] = {(void *)src, dst};
    return mt_prim_run(ctx, what, p, ptrs);
}

mt_status mt_prim_run(mt_ctx *ctx, const char *what, mt_prim *p, void *const *ptrs) {
    dnnl_exec_arg_t args[MT_PRIM_MAX_ARGS + 1];
    for (int i = 0; i < p->nargs; i++) {
        if (dnnl_memory_set_data_handle(p->mems[i], ptrs[i]) != dnnl_success)
            return mt_fail(ctx, MT_ERR_DNNL, "%s: cannot bind argument %d", what, p->arg_ids[i]);
        args[i].arg = p->arg_ids[i];
        args[i].memory = p->mems[i];
    }
    int nargs = p->nargs;
    if (p->scratch_bytes) {
        if (ctx->dnnl_scratch_bytes < p->scratch_bytes) {
            size_t bytes = (p->scratch_bytes + 4095) & ~(size_t)4095;
            void *buf = aligned_alloc(4096, bytes);
            if (!buf) return mt_fail(ctx, MT_ERR_NOMEM, "%s: scratchpad of %zu bytes", what, bytes);
            free(ctx->dnnl_scratch);
            ctx->dnnl_scratch = buf;
            ctx->dnnl_scratch_bytes = bytes;
        }
        if (dnnl_memory_set_data_handle(p->scratch_mem, ctx->dnnl_scratch) != dnnl_success)
            return mt_fail(ctx, MT_ERR_DNNL, "%s: cannot bind the scratchpad", what);
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = p->scratch_mem;
        nargs++;
    }
    MT_DNNL(ctx, what, dnnl_primitive_execute(p->prim, ctx->stream, nargs, args));
    MT_DNNL(ctx, what, dnnl_stream_wait(ctx->stream));
    return MT_OK;
}

void mt_add_inplace(float *dst, const float *src, size_t n) {
    #pragma omp parallel for if (n > 65536) schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

enum { SPLIT_MIN = 1 << 16 };

void mt_zero(float *dst, size_t n) {
    if (n < SPLIT_MIN) { memset(dst, 0, n * sizeof(float)); return; }
    #pragma omp parallel
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        size_t chunk = (n + (size_t)nt - 1) / (size_t)nt, a = chunk * (size_t)id;
        if (a < n) memset(dst + a, 0, (a + chunk > n ? n - a : chunk) * sizeof(float));
    }
}

void mt_copy(float *dst, const float *src, size_t n) {
    if (n < SPLIT_MIN) { memcpy(dst, src, n * sizeof(float)); return; }
    #pragma omp parallel
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        size_t chunk = (n + (size_t)nt - 1) / (size_t)nt, a = chunk * (size_t)id;
        if (a < n) memcpy(dst + a, src + a, (a + chunk > n ? n - a : chunk) * sizeof(float));
    }
}

mt_status mt_attr_accumulate(mt_ctx *ctx, const char *what, float out_scale,
                             dnnl_primitive_attr_t *attr) {
    dnnl_post_ops_t po = NULL;
    *attr = NULL;
    MT_DNNL(ctx, what, dnnl_primitive_attr_create(attr));
    if (out_scale != 1.0f &&
        dnnl_primitive_attr_set_output_scales(*attr, 1, 0, &out_scale) != dnnl_success) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
        return mt_fail(ctx, MT_ERR_DNNL, "%s: output scale rejected", what);
    }
    if (dnnl_post_ops_create(&po) != dnnl_success ||
        dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success ||
        dnnl_primitive_attr_set_post_ops(*attr, po) != dnnl_success) {
        if (po) dnnl_post_ops_destroy(po);
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
        return mt_fail(ctx, MT_ERR_DNNL, "%s: sum post-op rejected", what);
    }
    dnnl_post_ops_destroy(po);
    return MT_OK;
}
