/* bf16.c - bfloat16 conversion, the frozen bf16 linear, and what oneDNN
 * runs bf16 matmuls with on this CPU (include/mtlora/ops/bf16.h).
 *
 * The conversion has two bodies: AVX512_BF16's vcvtne2ps2bf16 (16 values
 * per instruction), chosen at run time, and a portable one that rounds the
 * same way (nearest even), so results do not depend on which ran. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>
#include <omp.h>

#include "ops_internal.h"
#include "mtlora/ops/bf16.h"
#include "mtlora/base/clock.h"

mt_bf16 mt_bf16_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (mt_bf16)((u >> 16) | 0x40u); /* quiet NaN */
    /* denormals become signed zero, as vcvtneps2bf16 makes them */
    if ((u & 0x7f800000u) == 0) return (mt_bf16)((u >> 16) & 0x8000u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (mt_bf16)(u >> 16);
}

float mt_bf16_value(mt_bf16 h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void to_bf16_portable(mt_bf16 *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = mt_bf16_of(src[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,avx512bf16,avx512vl")))
static void to_bf16_avx512(mt_bf16 *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)h);
    }
    to_bf16_portable(dst + i, src + i, n - i);
}
static int have_avx512bf16(void) { return __builtin_cpu_supports("avx512bf16"); }
#else
static void to_bf16_avx512(mt_bf16 *dst, const float *src, size_t n) { to_bf16_portable(dst, src, n); }
static int have_avx512bf16(void) { return 0; }
#endif

enum { CONVERT_SPLIT = 1 << 15 };

void mt_f32_to_bf16(mt_bf16 *dst, const float *src, size_t n) {
    const int fast = have_avx512bf16();
    if (n < CONVERT_SPLIT) {
        if (fast) to_bf16_avx512(dst, src, n); else to_bf16_portable(dst, src, n);
        return;
    }
    #pragma omp parallel
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        size_t chunk = ((n + (size_t)nt - 1) / (size_t)nt + 15) & ~(size_t)15;
        size_t a = chunk * (size_t)id;
        if (a < n) {
            size_t len = a + chunk > n ? n - a : chunk;
            if (fast) to_bf16_avx512(dst + a, src + a, len);
            else to_bf16_portable(dst + a, src + a, len);
        }
    }
}

void mt_bf16_to_f32(float *dst, const mt_bf16 *src, size_t n) {
    #pragma omp parallel for schedule(static) if (n > CONVERT_SPLIT)
    for (size_t i = 0; i < n; i++) dst[i] = mt_bf16_value(src[i]);
}

mt_status linear_bf16_forward(mt_ctx *ctx, float *out, mt_bf16 *inp_h, const float *inp,
                              const mt_bf16 *weight_h, const mt_bf16 *bias_h, int rows,
                              int in_dim, int out_dim) {
    const char *what = "linear_bf16_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, weight_h);
    MT_NEED_DIMS(ctx, what, rows > 0 && in_dim > 0 && out_dim > 0, "rows=%d in=%d out=%d", rows,
                 in_dim, out_dim);
    const size_t n = (size_t)rows * in_dim;
    if (inp) {
        if (!inp_h) inp_h = mt_scratch(ctx, MT_SCRATCH_BF16A, n * sizeof(mt_bf16));
        if (!inp_h) return MT_ERR_NOMEM;
        mt_f32_to_bf16(inp_h, inp, n);
    }
    MT_NEED_PTR(ctx, what, inp_h);
    const int64_t as[4] = {0, 0, in_dim, 1}, ws[4] = {0, 0, 1, in_dim}, cs[4] = {0, 0, out_dim, 1};
    return mt_matmul_bf16(ctx, what, out, cs, inp_h, as, weight_h, ws, bias_h, 1, 1, rows, in_dim,
                          out_dim, 1.0f, 0);
}

mt_status linear_bf16_backward_data(mt_ctx *ctx, float *dinp, const float *dout,
                                    const mt_bf16 *weight_h, int rows, int in_dim, int out_dim,
                                    int accumulate) {
    const char *what = "linear_bf16_backward_data";
    MT_NEED_PTR(ctx, what, dinp);
    MT_NEED_PTR(ctx, what, dout);
    MT_NEED_PTR(ctx, what, weight_h);
    MT_NEED_DIMS(ctx, what, rows > 0 && in_dim > 0 && out_dim > 0, "rows=%d in=%d out=%d", rows,
                 in_dim, out_dim);
    const size_t n = (size_t)rows * out_dim;
    mt_bf16 *dh = mt_scratch(ctx, MT_SCRATCH_BF16B, n * sizeof(mt_bf16)); /* (rows, out_dim) */
    if (!dh) return MT_ERR_NOMEM;
    mt_f32_to_bf16(dh, dout, n);
    /* dinp[rows, in] (+)= dout[rows, out] W[out, in] */
    const int64_t ds[4] = {0, 0, out_dim, 1}, ws[4] = {0, 0, in_dim, 1}, cs[4] = {0, 0, in_dim, 1};
    return mt_matmul_bf16(ctx, what, dinp, cs, dh, ds, weight_h, ws, NULL, 1, 1, rows, out_dim,
                          in_dim, 1.0f, accumulate);
}

/* The implementation oneDNN picks for an m x k x n matmul of type dt. */
static int matmul_impl(mt_ctx *ctx, dnnl_data_type_t dt, char *name, size_t len) {
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t ad = {1568, 384}, bd = {384, 1536}, cd = {1568, 1536};
    dnnl_dims_t as = {384, 1}, bs = {1, 384}, cs = {1536, 1};
    dnnl_matmul_desc_t d;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_memory_desc_init_by_strides(&a, 2, ad, dt, as) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&b, 2, bd, dt, bs) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&c, 2, cd, dnnl_f32, cs) != dnnl_success ||
        dnnl_matmul_desc_init(&d, &a, &b, NULL, &c) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &d, NULL, ctx->engine, NULL) != dnnl_success) {
        snprintf(name, len, "none");
        return 0;
    }
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        impl = "unknown";
    snprintf(name, len, "%s", impl);
    dnnl_primitive_desc_destroy(pd);
    /* oneDNN's reference kernels are orders of magnitude slower: not "available" */
    return strstr(name, "ref") == NULL;
}

mt_status mt_matmul_isa_probe(mt_ctx *ctx, mt_matmul_isa *out) {
    if (!ctx) return MT_ERR_ARG;
    if (!out) return mt_fail(ctx, MT_ERR_ARG, "mt_matmul_isa_probe: NULL argument");
    memset(out, 0, sizeof *out);
    matmul_impl(ctx, dnnl_f32, out->f32_isa, sizeof out->f32_isa);
    out->bf16_available = matmul_impl(ctx, dnnl_bf16, out->bf16_isa, sizeof out->bf16_isa);
    out->bf16_amx = out->bf16_available && strstr(out->bf16_isa, "amx") != NULL;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    out->cpu_amd = __builtin_cpu_is("amd");
#endif
    return MT_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double mt_matmul_gflops(mt_ctx *ctx, int bf16, int m, int k, int n, int reps) {
    if (!ctx || m < 1 || k < 1 || n < 1 || reps < 1 || reps > 99) return 0.0;
    const size_t es = bf16 ? sizeof(mt_bf16) : sizeof(float);
    void *a = aligned_alloc(64, ((size_t)m * k * es + 63) & ~(size_t)63);
    void *w = aligned_alloc(64, ((size_t)n * k * es + 63) & ~(size_t)63);
    float *c = aligned_alloc(64, ((size_t)m * n * sizeof(float) + 63) & ~(size_t)63);
    double t[99], g = 0.0;
    if (!a || !w || !c) goto done;
    /* small values in [-0.5, 0.5): no denormals, no overflow */
    for (size_t i = 0; i < (size_t)m * k; i++) {
        float v = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
        if (bf16) ((mt_bf16 *)a)[i] = mt_bf16_of(v); else ((float *)a)[i] = v;
    }
    for (size_t i = 0; i < (size_t)n * k; i++) {
        float v = (float)((i * 40503u) % 997) / 997.0f - 0.5f;
        if (bf16) ((mt_bf16 *)w)[i] = mt_bf16_of(v); else ((float *)w)[i] = v;
    }
    const int64_t as[4] = {0, 0, k, 1}, ws[4] = {0, 0, 1, k}, cs[4] = {0, 0, n, 1};
    for (int r = -2; r < reps; r++) {
        double t0 = mt_now_s();
        mt_status st = bf16 ? mt_matmul_bf16(ctx, "matmul_gflops", c, cs, a, as, w, ws, NULL, 1, 1,
                                             m, k, n, 1.0f, 0)
                            : mt_matmul(ctx, "matmul_gflops", c, cs, a, as, w, ws, NULL, 1, 1, m,
                                        k, n, 1.0f, 0);
        if (st) goto done;
        if (r >= 0) t[r] = mt_now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    g = 2.0 * m * k * n / t[reps / 2] / 1e9;
done:
    free(a); free(w); free(c);
    return g;
}
