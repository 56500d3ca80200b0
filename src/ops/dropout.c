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
    const size_t quads = (n + 3) / 4;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t q = 0; q < quads; q++) {
        uint64_t bits = mt_rng_bits(seed, offset + q);
        size_t i0 = 4 * q, i1 = i0 + 4 < n ? i0 + 4 : n;
        for (size_t i = i0; i < i1; i++, bits >>= 16) {
            float keep = (uint32_t)(bits & 0xffffu) >= thresh16 ? keep_scale : 0.0f;
            out[i] = accumulate ? out[i] + inp[i] * keep : inp[i] * keep;
        }
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
