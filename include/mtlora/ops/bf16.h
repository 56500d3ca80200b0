/* bf16.h - bfloat16 storage and matmuls for mixed precision (AMP).
 *
 * bf16 keeps float32's exponent and 8 bits of mantissa, so a converted
 * tensor has float32's range and a relative rounding error of at most
 * 2^-9. mtlora uses it for what the gradient tolerates: the frozen encoder
 * weights, the inputs of their matmuls, and the matmuls themselves, which
 * oneDNN runs in bf16 with float32 accumulation (AMX or avx512_core_bf16).
 * Everything else (trainable parameters, gradients, losses, norms,
 * softmax, the optimizer) stays float32. */
#ifndef MTLORA_BF16_H
#define MTLORA_BF16_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/ops/context.h"
#include "mtlora/base/status.h"

typedef uint16_t mt_bf16; /* the upper half of a float32, rounded to nearest even */

/* dst[i] = bf16(src[i]) (round to nearest even; NaN stays NaN; denormals
 * become signed zero, as the CPU's instruction makes them), n values,
 * split over the OpenMP threads; uses the CPU's conversion instruction
 * when it has one (AVX512_BF16). */
void mt_f32_to_bf16(mt_bf16 *dst, const float *src, size_t n);
/* dst[i] = float(src[i]), exact. */
void mt_bf16_to_f32(float *dst, const mt_bf16 *src, size_t n);
float mt_bf16_value(mt_bf16 h);
mt_bf16 mt_bf16_of(float f);

/* C (+)= scale * A B as mt_matmul (layers.h), with A and B in bf16 and C in
 * float32; bias (bf16, [n], 2-D only) or NULL. */
mt_status mt_matmul_bf16(mt_ctx *ctx, const char *what, float *c, const int64_t cs[4],
                         const mt_bf16 *a, const int64_t as[4], const mt_bf16 *b,
                         const int64_t bs[4], const mt_bf16 *bias, int64_t b0, int64_t b1,
                         int64_t m, int64_t k, int64_t n, float scale, int accumulate);

/* ---- a frozen linear layer in bf16 --------------------------------------
 * out [rows, out_dim] (f32) = inp_h [rows, in_dim] W_h^T + b_h, W_h
 * [out_dim, in_dim] and b_h [out_dim] (or NULL) in bf16. When inp is not
 * NULL it is first converted into inp_h (so the caller can keep the bf16
 * copy for the backward); inp_h NULL then means a scratch buffer. */
mt_status linear_bf16_forward(mt_ctx *ctx, float *out, mt_bf16 *inp_h, const float *inp,
                              const mt_bf16 *weight_h, const mt_bf16 *bias_h, int rows,
                              int in_dim, int out_dim);
/* dinp [rows, in_dim] (+)= dout [rows, out_dim] W_h: the data gradient of a
 * frozen bf16 linear (its weights get none). dout is converted to bf16 in
 * scratch; accumulate 0 overwrites dinp. */
mt_status linear_bf16_backward_data(mt_ctx *ctx, float *dinp, const float *dout,
                                    const mt_bf16 *weight_h, int rows, int in_dim, int out_dim,
                                    int accumulate);

/* What oneDNN runs a matmul of each type with on this CPU. */
typedef struct {
    int bf16_available;   /* oneDNN has a bf16 matmul here at all */
    int bf16_amx;         /* ... and it is AMX (always faster than f32) */
    int cpu_amd;          /* the CPU's vendor is AMD (avx512_core_bf16 is fast there) */
    char bf16_isa[64];    /* oneDNN's implementation name, e.g. brg:avx512_core_amx_bf16 */
    char f32_isa[64];
} mt_matmul_isa;
mt_status mt_matmul_isa_probe(mt_ctx *ctx, mt_matmul_isa *out);

/* GFLOP/s of an m x k by k x n matmul of that type (bf16 != 0: bf16
 * inputs, f32 output), the median of `reps` timed runs after two warm-ups:
 * the machine's peak as the benchmarks measure it. 0 when it cannot run. */
double mt_matmul_gflops(mt_ctx *ctx, int bf16, int m, int k, int n, int reps);

#endif
