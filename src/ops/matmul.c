/* matmul.c - the one place that builds oneDNN matmul primitives.
 *
 * Every matrix product of the model (linear layers and their backward,
 * attention scores and context) is a matmul on strided views of existing
 * buffers, so transposes and head splits never copy. The operands are
 * float32, or bf16 for mixed precision (mt_matmul_bf16); the result and
 * the accumulation are always float32. */
#include "ops_internal.h"
#include "mtlora/ops/bf16.h"

static mt_status matmul_typed(mt_ctx *ctx, const char *what, float *c, const int64_t cs[4],
                              const void *a, const int64_t as[4], const void *b,
                              const int64_t bs[4], const void *bias, dnnl_data_type_t in_dt,
                              int64_t b0, int64_t b1, int64_t m, int64_t k, int64_t n,
                              float scale, int accumulate) {
    int batched = b0 != 1 || b1 != 1;
    if (batched && bias)
        return mt_fail(ctx, MT_ERR_ARG, "%s: bias only allowed on 2-D matmul", what);
    char key[MT_PRIM_KEY_LEN];
    mt_prim_key(key, "mm%s:%ld,%ld,%ld,%ld,%ld:a%ld,%ld,%ld,%ld:b%ld,%ld,%ld,%ld:c%ld,%ld,%ld,%ld:"
                "%d:%g:%d", in_dt == dnnl_bf16 ? "h" : "", (long)b0, (long)b1, (long)m, (long)k,
                (long)n, (long)as[0], (long)as[1], (long)as[2], (long)as[3], (long)bs[0],
                (long)bs[1], (long)bs[2], (long)bs[3], (long)cs[0], (long)cs[1], (long)cs[2],
                (long)cs[3], bias != NULL, (double)scale, accumulate);
    mt_prim *p = mt_prim_find(ctx, key);
    if (!p) {
        dnnl_memory_desc_t amd, bmd, cmd, biasmd;
        if (batched) {
            dnnl_dims_t ad = {b0, b1, m, k}, bd = {b0, b1, k, n}, cd = {b0, b1, m, n};
            dnnl_dims_t a4 = {as[0], as[1], as[2], as[3]}, b4 = {bs[0], bs[1], bs[2], bs[3]};
            dnnl_dims_t c4 = {cs[0], cs[1], cs[2], cs[3]};
            dnnl_memory_desc_init_by_strides(&amd, 4, ad, in_dt, a4);
            dnnl_memory_desc_init_by_strides(&bmd, 4, bd, in_dt, b4);
            dnnl_memory_desc_init_by_strides(&cmd, 4, cd, dnnl_f32, c4);
        } else {
            dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n}, biasd = {1, n};
            dnnl_dims_t a2 = {as[2], as[3]}, b2 = {bs[2], bs[3]}, c2 = {cs[2], cs[3]};
            dnnl_dims_t bias2 = {n, 1};
            dnnl_memory_desc_init_by_strides(&amd, 2, ad, in_dt, a2);
            dnnl_memory_desc_init_by_strides(&bmd, 2, bd, in_dt, b2);
            dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_f32, c2);
            dnnl_memory_desc_init_by_strides(&biasmd, 2, biasd, in_dt, bias2);
        }
        dnnl_matmul_desc_t d;
        MT_DNNL(ctx, what, dnnl_matmul_desc_init(&d, &amd, &bmd, bias ? &biasmd : NULL, &cmd));
        dnnl_primitive_attr_t attr = NULL;
        if (accumulate) {
            MT_CHECK(mt_attr_accumulate(ctx, what, scale, &attr));
        } else if (scale != 1.0f) {
            MT_DNNL(ctx, what, dnnl_primitive_attr_create(&attr));
            if (dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale) != dnnl_success) {
                dnnl_primitive_attr_destroy(attr);
                return mt_fail(ctx, MT_ERR_DNNL, "%s: output scale rejected", what);
            }
        }
        int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
        mt_status st = mt_prim_build(ctx, what, key, &d, attr, NULL, ids, bias ? 4 : 3, &p);
        if (attr) dnnl_primitive_attr_destroy(attr);
        MT_CHECK(st);
    }
    void *ptrs[4] = {(void *)a, (void *)b, c, (void *)bias};
    return mt_prim_run(ctx, what, p, ptrs);
}

mt_status mt_matmul(mt_ctx *ctx, const char *what, float *c, const int64_t cs[4],
                    const float *a, const int64_t as[4], const float *b, const int64_t bs[4],
                    const float *bias, int64_t b0, int64_t b1, int64_t m, int64_t k, int64_t n,
                    float scale, int accumulate) {
    return matmul_typed(ctx, what, c, cs, a, as, b, bs, bias, dnnl_f32, b0, b1, m, k, n, scale,
                        accumulate);
}

mt_status mt_matmul_bf16(mt_ctx *ctx, const char *what, float *c, const int64_t cs[4],
                         const mt_bf16 *a, const int64_t as[4], const mt_bf16 *b,
                         const int64_t bs[4], const mt_bf16 *bias, int64_t b0, int64_t b1,
                         int64_t m, int64_t k, int64_t n, float scale, int accumulate) {
    return matmul_typed(ctx, what, c, cs, a, as, b, bs, bias, dnnl_bf16, b0, b1, m, k, n, scale,
                        accumulate);
}

mt_status mt_matmul_add(mt_ctx *ctx, const char *what, float *c, const float *d,
                        const float *a, const int64_t as[2], const float *b, const int64_t bs[2],
                        int64_t m, int64_t k, int64_t n, float scale) {
    char key[MT_PRIM_KEY_LEN];
    mt_prim_key(key, "mmadd:%ld,%ld,%ld:a%ld,%ld:b%ld,%ld:%g", (long)m, (long)k, (long)n,
                (long)as[0], (long)as[1], (long)bs[0], (long)bs[1], (double)scale);
    mt_prim *p = mt_prim_find(ctx, key);
    if (!p) {
        dnnl_memory_desc_t amd, bmd, cmd;
        dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n};
        dnnl_dims_t a2 = {as[0], as[1]}, b2 = {bs[0], bs[1]}, c2 = {n, 1};
        dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_f32, a2);
        dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_f32, b2);
        dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_f32, c2);
        dnnl_matmul_desc_t md;
        MT_DNNL(ctx, what, dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &cmd));
        dnnl_primitive_attr_t attr = NULL;
        dnnl_post_ops_t po = NULL;
        MT_DNNL(ctx, what, dnnl_primitive_attr_create(&attr));
        int bad = (scale != 1.0f && dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale) != dnnl_success) ||
                  dnnl_post_ops_create(&po) != dnnl_success ||
                  dnnl_post_ops_append_binary(po, dnnl_binary_add, &cmd) != dnnl_success ||
                  dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success;
        if (po) dnnl_post_ops_destroy(po);
        if (bad) {
            dnnl_primitive_attr_destroy(attr);
            return mt_fail(ctx, MT_ERR_DNNL, "%s: binary post-op rejected", what);
        }
        int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST,
                      DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1};
        mt_status st = mt_prim_build(ctx, what, key, &md, attr, NULL, ids, 4, &p);
        dnnl_primitive_attr_destroy(attr);
        MT_CHECK(st);
    }
    void *ptrs[4] = {(void *)a, (void *)b, c, (void *)d};
    return mt_prim_run(ctx, what, p, ptrs);
}
