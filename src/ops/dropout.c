/* dropout.c - dropout and drop path with masks regenerated from the
 * counter-based RNG instead of stored. */
#include "ops_internal.h"
#include "mtlora/ops/layers.h"
#include "mtlora/base/rng.h"

static mt_status p_check(mt_ctx *ctx, const char *what, float p) {
    if (!(p >= 0.0f && p < 1.0f))
        return mt_fail(ctx, MT_ERR_ARG, "%s: drop probability %g not in [0, 1)", what, (double)p);
    return MT_OK;
}

/* Element i of a dropout is kept when lane i % 4 (16 bits) of the draw
 * (seed, offset + i / 4) is at least p * 65536: one 64-bit draw serves four
 * elements. Drop path (`per` > 1) draws once per sample, with its full 24-bit
 * uniform. Either way the mask is a pure function of (seed, offset, i), so
 * the backward regenerates it and any thread split gives the same mask. */

/* Elementwise dropout of [i0, i1) (i0 a multiple of 4), in blocks: first
 * the draws of a block (one 64-bit draw per four elements), then the
 * elements, where lane i % 4 of draw i / 4 is the i-th 16-bit word of the
 * draws in memory (little-endian x86). Two simple loops instead of one
 * with a shift chain, so the compiler vectorises both (the 64-bit
 * multiplies of the draws need AVX-512DQ: see the dispatch below). */
#define DROPOUT_BLOCK 1024 /* elements per block, a multiple of 4 */
static inline __attribute__((always_inline)) void
dropout_body(float *out, const float *inp, size_t i0, size_t i1, uint32_t thresh16,
             float keep_scale, uint64_t seed, uint64_t offset, int accumulate) {
    union { uint64_t q[DROPOUT_BLOCK / 4]; uint16_t h[DROPOUT_BLOCK]; } draws;
    const uint64_t mixed_seed = mt_rng_mix64(seed + 0x9e3779b97f4a7c15ULL);
    for (size_t b0 = i0; b0 < i1; b0 += DROPOUT_BLOCK) {
        const size_t b1 = b0 + DROPOUT_BLOCK < i1 ? b0 + DROPOUT_BLOCK : i1;
        const size_t q0 = b0 / 4, nq = (b1 - b0 + 3) / 4, len = b1 - b0;
        for (size_t k = 0; k < nq; k++)
            draws.q[k] = mt_rng_mix64(mixed_seed ^ ((offset + q0 + k) * 0x9e3779b97f4a7c15ULL));
        float *o = out + b0;
        const float *x = inp + b0;
        if (accumulate)
            for (size_t k = 0; k < len; k++)
                o[k] += x[k] * (draws.h[k] >= thresh16 ? keep_scale : 0.0f);
        else
            for (size_t k = 0; k < len; k++)
                o[k] = x[k] * (draws.h[k] >= thresh16 ? keep_scale : 0.0f);
    }
}

/* The same body compiled three times: for any x86-64, with AVX2 (its
 * 64-bit multiplies built from 32-bit ones, four lanes) and with AVX-512,
 * chosen at run time; integer arithmetic, so the masks are the same bits
 * on every path. */
static void dropout_range(float *out, const float *inp, size_t i0, size_t i1, uint32_t thresh16,
                          float keep_scale, uint64_t seed, uint64_t offset, int accumulate) {
    dropout_body(out, inp, i0, i1, thresh16, keep_scale, seed, offset, accumulate);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
static void dropout_range_avx512(float *out, const float *inp, size_t i0, size_t i1,
                                 uint32_t thresh16, float keep_scale, uint64_t seed,
                                 uint64_t offset, int accumulate) {
    dropout_body(out, inp, i0, i1, thresh16, keep_scale, seed, offset, accumulate);
}
__attribute__((target("avx2,fma")))
static void dropout_range_avx2(float *out, const float *inp, size_t i0, size_t i1,
                               uint32_t thresh16, float keep_scale, uint64_t seed,
                               uint64_t offset, int accumulate) {
    dropout_body(out, inp, i0, i1, thresh16, keep_scale, seed, offset, accumulate);
}
/* 2: AVX-512DQ/BW, 1: AVX2, 0: neither */
static int simd_level(void) {
    if (__builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw")) return 2;
    return __builtin_cpu_supports("avx2") ? 1 : 0;
}
#else
#define dropout_range_avx512 dropout_range
#define dropout_range_avx2 dropout_range
static int simd_level(void) { return 0; }
#endif

/* out (+)= inp * keep / (1 - p). */
static void masked_scale(float *out, const float *inp, size_t n, size_t per, float p,
                         uint64_t seed, uint64_t offset, int accumulate) {
    const float keep_scale = 1.0f / (1.0f - p);
    if (per > 1) {
        const size_t groups = n / per;
        for (size_t gi = 0; gi < groups; gi++) {
            float keep = mt_rng_uniform(seed, offset + gi) >= p ? keep_scale : 0.0f;
            float *o = out + gi * per;
            const float *x = inp + gi * per;
            #pragma omp parallel for schedule(static) if (per > 65536)
            for (size_t i = 0; i < per; i++) o[i] = accumulate ? o[i] + x[i] * keep : x[i] * keep;
        }
        return;
    }
    const uint32_t thresh16 = (uint32_t)(p * 65536.0f + 0.5f);
    const int level = simd_level();
    const size_t blocks = (n + DROPOUT_BLOCK - 1) / DROPOUT_BLOCK;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < blocks; b++) {
        const size_t i0 = b * DROPOUT_BLOCK, i1 = i0 + DROPOUT_BLOCK < n ? i0 + DROPOUT_BLOCK : n;
        if (level == 2)
            dropout_range_avx512(out, inp, i0, i1, thresh16, keep_scale, seed, offset, accumulate);
        else if (level == 1)
            dropout_range_avx2(out, inp, i0, i1, thresh16, keep_scale, seed, offset, accumulate);
        else
            dropout_range(out, inp, i0, i1, thresh16, keep_scale, seed, offset, accumulate);
    }
}

mt_status dropout_forward(mt_ctx *ctx, float *out, const float *inp, size_t n, float p,
                          uint64_t seed, uint64_t offset) {
    const char *what = "dropout_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, inp);
    MT_CHECK(p_check(ctx, what, p));
    masked_scale(out, inp, n, 1, p, seed, offset, 0);
    return MT_OK;
}

mt_status dropout_backward(mt_ctx *ctx, float *dinp, const float *dout, size_t n, float p,
                           uint64_t seed, uint64_t offset) {
    const char *what = "dropout_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_CHECK(p_check(ctx, what, p));
    if (dinp) masked_scale(dinp, dout, n, 1, p, seed, offset, 1);
    return MT_OK;
}

mt_status drop_path_forward(mt_ctx *ctx, float *out, const float *inp, int B,
                            size_t per_sample, float p, uint64_t seed, uint64_t offset) {
    const char *what = "drop_path_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, inp);
    MT_CHECK(p_check(ctx, what, p));
    MT_NEED_DIMS(ctx, what, B > 0 && per_sample > 0, "B=%d per_sample=%zu", B, per_sample);
    masked_scale(out, inp, (size_t)B * per_sample, per_sample, p, seed, offset, 0);
    return MT_OK;
}

mt_status drop_path_backward(mt_ctx *ctx, float *dinp, const float *dout, int B,
                             size_t per_sample, float p, uint64_t seed, uint64_t offset) {
    const char *what = "drop_path_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_CHECK(p_check(ctx, what, p));
    MT_NEED_DIMS(ctx, what, B > 0 && per_sample > 0, "B=%d per_sample=%zu", B, per_sample);
    if (dinp) masked_scale(dinp, dout, (size_t)B * per_sample, per_sample, p, seed, offset, 1);
    return MT_OK;
}
