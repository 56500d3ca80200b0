/* model_precision.c - which precision the model's matmuls run in, and the
 * bf16 copy of the frozen encoder weights (model.h, docs/performance.md).
 *
 * Why "auto" decides by ISA and not by a timing at start-up: every rank of
 * a job must make the same choice, and a timing on a busy node could
 * differ between ranks. What oneDNN reports is the same on identical
 * nodes: AMX bf16 is several times float32; avx512_core_bf16 is about 2x
 * float32 on AMD Zen (measured on Zen 5) and 0.5-0.7x on Intel CPUs
 * without AMX (measured on every Swin-T shape), so it counts as fast on
 * AMD only. AMP.MATMUL bf16 / f32 overrides the guess. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

/* Every base linear of the encoder, with its frozen-ness. */
#define FOR_BASE_LINEARS(m, l, ...)                                                   \
    for (int s_ = 0; s_ < (m)->L; s_++) {                                             \
        swin_stage *st_ = &(m)->stages[s_];                                           \
        for (int b_ = -1; b_ < st_->depth; b_++) {                                    \
            lora_linear *ls_[4] = {&st_->reduction, NULL, NULL, NULL};                 \
            if (b_ >= 0) {                                                            \
                swin_block *k_ = &st_->blocks[b_];                                     \
                ls_[0] = &k_->qkv, ls_[1] = &k_->proj, ls_[2] = &k_->fc1, ls_[3] = &k_->fc2; \
            } else if (!st_->has_merge) continue;                                     \
            for (int i_ = 0; i_ < 4 && ls_[i_]; i_++) {                               \
                lora_linear *l = ls_[i_];                                             \
                __VA_ARGS__                                                           \
            }                                                                         \
        }                                                                             \
    }

/* A base weight (and its bias, if any) that does not train. */
static int frozen_base(const lora_linear *l) {
    return l->w.v && !l->w.g && (!l->b.v || !l->b.g);
}

mt_status model_precision_init(mt_model *m, mt_ctx *ctx) {
    mt_precision *p = &m->prec;
    memset(p, 0, sizeof *p);
    mt_matmul_isa isa;
    MT_CHECK(mt_matmul_isa_probe(ctx, &isa));
    snprintf(p->isa, sizeof p->isa, "%s", isa.f32_isa);
    const char *mode = m->cfg.amp_matmul[0] ? m->cfg.amp_matmul : "auto";
    size_t frozen = 0;
    FOR_BASE_LINEARS(m, l, { if (frozen_base(l)) frozen += (size_t)l->out * l->in; });
    if (!m->cfg.amp_enable) {
        snprintf(p->note, sizeof p->note, "AMP off (AMP_ENABLE False): matmuls in f32 (%s)",
                 isa.f32_isa);
        return MT_OK;
    }
    if (!strcmp(mode, "f32")) {
        snprintf(p->note, sizeof p->note, "AMP on, AMP.MATMUL f32: matmuls in f32 (%s)",
                 isa.f32_isa);
        return MT_OK;
    }
    if (!frozen) {
        snprintf(p->note, sizeof p->note,
                 "AMP on, but no encoder weight is frozen (%s): matmuls in f32 (%s)",
                 m->cfg.adapter.kind, isa.f32_isa);
        return MT_OK;
    }
    if (!isa.bf16_available) {
        snprintf(p->note, sizeof p->note,
                 "AMP on, but this CPU has no bf16 matmul in oneDNN (%s): matmuls stay f32 (%s)",
                 isa.bf16_isa, isa.f32_isa);
        return MT_OK;
    }
    if (!strcmp(mode, "auto") && !isa.bf16_amx && !isa.cpu_amd) {
        snprintf(p->note, sizeof p->note,
                 "AMP on, but bf16 matmul here is %s without AMX, slower than f32 on such CPUs "
                 "(0.5-0.7x measured): matmuls stay f32 (%s); AMP.MATMUL bf16 forces bf16",
                 isa.bf16_isa, isa.f32_isa);
        return MT_OK;
    }
    p->bf16 = 1;
    snprintf(p->isa, sizeof p->isa, "%s", isa.bf16_isa);
    snprintf(p->note, sizeof p->note,
             "AMP on (AMP.MATMUL %s): frozen encoder matmuls in bf16 with f32 accumulation (%s), "
             "%.2f M frozen weights stored in bf16; trainable parameters, gradients, optimizer, "
             "norms, softmax and losses in f32",
             mode, isa.bf16_isa, (double)frozen / 1e6);
    m->frozen_h = malloc(m->bank.n_frozen * sizeof(mt_bf16));
    if (!m->frozen_h)
        return mt_fail(ctx, MT_ERR_NOMEM, "model: cannot allocate %.1f MB for bf16 weights",
                       2e-6 * (double)m->bank.n_frozen);
    return MT_OK;
}

void model_precision_free(mt_model *m) {
    if (!m->frozen_h_external) free(m->frozen_h);
    m->frozen_h = NULL;
}

/* Points w.h / b.h of every frozen base linear into frozen_h. */
static void bind_views(mt_model *m) {
    FOR_BASE_LINEARS(m, l, {
        if (!frozen_base(l)) continue;
        l->w.h = m->frozen_h + (l->w.v - m->bank.frozen);
        l->b.h = l->b.v ? m->frozen_h + (l->b.v - m->bank.frozen) : NULL;
    });
}

mt_status model_precision_prepare(mt_model *m, mt_ctx *ctx) {
    (void)ctx;
    if (!m->prec.bf16 || m->frozen_h_fresh) return MT_OK;
    mt_f32_to_bf16(m->frozen_h, m->bank.frozen, m->bank.n_frozen);
    bind_views(m);
    m->frozen_h_fresh = 1;
    return MT_OK;
}

mt_precision mt_model_precision(const mt_model *m) {
    mt_precision none;
    memset(&none, 0, sizeof none);
    return m ? m->prec : none;
}

size_t mt_model_frozen_bf16_count(const mt_model *m) {
    return m && m->prec.bf16 ? m->bank.n_frozen : 0;
}

/* Only when every frozen value belongs to a base linear that runs in bf16
 * (not decoders_only, where norms and tables are frozen too) can the f32
 * copy go. */
int mt_model_frozen_f32_needed(const mt_model *cm) {
    if (!cm || !cm->prec.bf16) return 1;
    mt_model *m = (mt_model *)cm; /* the walk below only reads */
    size_t covered = 0;
    FOR_BASE_LINEARS(m, l, {
        if (!frozen_base(l)) continue;
        covered += (size_t)l->out * l->in + (l->b.v ? (size_t)l->out : 0);
    });
    return covered != m->bank.n_frozen;
}

mt_status mt_model_use_frozen_bf16(mt_model *m, mt_ctx *ctx, mt_bf16 *buf, int fill,
                                   int release_f32, int *released) {
    if (!ctx) return MT_ERR_ARG;
    if (released) *released = 0;
    if (!m || !buf) return mt_fail(ctx, MT_ERR_ARG, "mt_model_use_frozen_bf16: NULL argument");
    if (!m->prec.bf16)
        return mt_fail(ctx, MT_ERR_ARG, "mt_model_use_frozen_bf16: the model runs in f32");
    if (m->frozen_f32_released && fill)
        return mt_fail(ctx, MT_ERR_ARG, "mt_model_use_frozen_bf16: no f32 values left to convert");
    if (fill) mt_f32_to_bf16(buf, m->bank.frozen, m->bank.n_frozen);
    if (!m->frozen_h_external) free(m->frozen_h);
    m->frozen_h = buf;
    m->frozen_h_external = 1;
    if (!m->frozen_f32_released) bind_views(m);
    m->frozen_h_fresh = 1;
    if (!release_f32 || m->frozen_f32_released) {
        if (released) *released = m->frozen_f32_released;
        return MT_OK;
    }
    if (mt_model_frozen_f32_needed(m)) return MT_OK;
    if (!m->bank.frozen_external) free(m->bank.frozen);
    m->bank.frozen = NULL;
    m->bank.frozen_external = 0;
    MT_CHECK(model_register_params(m, ctx, 1)); /* frozen views become NULL; h views stay */
    m->frozen_f32_released = 1;
    if (released) *released = 1;
    return MT_OK;
}
