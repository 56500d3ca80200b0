/* decoder.c - a task's Downsampler and HighResolutionHead (seg_hrnet.py):
 * 1x1 convs (no bias) on the four feature levels, levels 1..3 resized
 * bilinearly to level 0's size and concatenated, conv 1x1 (4x channels,
 * bias), BatchNorm2d, ReLU, conv 1x1 to the task's outputs, then bilinear
 * resize to the input size. The 1x1 convs on token features are matmuls
 * on the [B*hw, dim] tokens; oneDNN reorders move between token and NCHW
 * layouts (and into the concatenation's channel slices) without copies of
 * our own. */
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "mtlora/ops/layers.h"

/* Copies [B, ch, hw] between a token layout ([B, hw, ch]), a dense NCHW
 * tensor, and a channel slice of a [B, csum, hw] tensor. */
typedef enum { LAY_TOKENS, LAY_NCHW, LAY_SLICE } layout;

static void strides_of(layout l, int ch, int hw, int csum, int64_t s[3]) {
    if (l == LAY_TOKENS) { s[0] = (int64_t)hw * ch; s[1] = 1; s[2] = ch; }
    else if (l == LAY_NCHW) { s[0] = (int64_t)ch * hw; s[1] = hw; s[2] = 1; }
    else { s[0] = (int64_t)csum * hw; s[1] = hw; s[2] = 1; }
}

static mt_status move(mt_ctx *ctx, float *dst, layout dl, const float *src, layout sl, int B,
                      int ch, int hw, int csum) {
    int64_t dims[3] = {B, ch, hw}, ds[3], ss[3];
    strides_of(dl, ch, hw, csum, ds);
    strides_of(sl, ch, hw, csum, ss);
    return mt_reorder(ctx, "decoder", dst, ds, src, ss, 3, dims, 0);
}

/* to_logits 0: stops after the ReLU, all the backward reads (with
 * recompute, where the logits are kept). */
static mt_status decoder_run(mt_ctx *ctx, mt_model *m, int t, int B, int training,
                             int to_logits) {
    const mt_config *c = &m->cfg;
    task_decoder *d = &m->dec[t];
    decoder_acts *a = &m->a.dec[t];
    const int h0 = m->feat_res[0], hw0 = h0 * h0, cs = d->csum;
    int off = 0;
    for (int s = 0; s < m->L; s++) {
        const int h = m->feat_res[s], hw = h * h, ch = c->decoder_channels[s];
        MT_CHECK(linear_forward(ctx, a->down_tok[s], m->a.feat[t][s], d->down[s].v, NULL, B * hw,
                                m->feat_dim[s], ch));
        float *slice = a->cat + (size_t)off * hw0; /* (B, ch, h0, h0) of (B, csum, h0, h0) */
        if (s == 0) {
            MT_CHECK(move(ctx, slice, LAY_SLICE, a->down_tok[s], LAY_TOKENS, B, ch, hw, cs));
        } else {
            MT_CHECK(move(ctx, a->down_nchw[s], LAY_NCHW, a->down_tok[s], LAY_TOKENS, B, ch, hw,
                          cs));
            MT_CHECK(resize_bilinear_forward(ctx, a->resized[s], a->down_nchw[s], B, ch, h, h, h0,
                                             h0));
            MT_CHECK(move(ctx, slice, LAY_SLICE, a->resized[s], LAY_NCHW, B, ch, hw0, cs));
        }
        off += ch;
    }
    const int C4 = 4 * cs;
    const size_t nh = (size_t)B * C4 * hw0;
    MT_CHECK(conv2d_forward(ctx, a->conv1, a->cat, d->c1_w.v, d->c1_b.v, B, cs, h0, h0, C4, 1, 1,
                            0));
    MT_CHECK(batchnorm_forward(ctx, a->bn, a->bn_mean, a->bn_var, d->bn_running_mean,
                               d->bn_running_var, a->conv1, d->bn_w.v, d->bn_b.v, B, C4, hw0,
                               training, 0.1f));
    if (training) d->bn_tracked++;
    MT_CHECK(relu_forward(ctx, a->relu, a->bn, nh)); /* in place: relu == bn (model_acts.c) */
    if (!to_logits) return MT_OK;
    MT_CHECK(conv2d_forward(ctx, a->conv2, a->relu, d->c2_w.v, d->c2_b.v, B, C4, h0, h0, d->K, 1,
                            1, 0));
    return resize_bilinear_forward(ctx, a->logits, a->conv2, B, d->K, h0, h0, m->S, m->S);
}

mt_status decoder_forward(mt_ctx *ctx, mt_model *m, int t, int B, int training) {
    return decoder_run(ctx, m, t, B, training, 1);
}

mt_status decoder_recompute(mt_ctx *ctx, mt_model *m, int t, int B) {
    task_decoder *d = &m->dec[t];
    const size_t c4 = (size_t)4 * d->csum;
    /* (2, 4 csum) the running statistics, which a second training forward
     * would move again: put back afterwards */
    float *keep = malloc(2 * c4 * sizeof(float));
    if (!keep) return mt_fail(ctx, MT_ERR_NOMEM, "decoder_recompute: out of memory");
    memcpy(keep, d->bn_running_mean, c4 * sizeof(float));
    memcpy(keep + c4, d->bn_running_var, c4 * sizeof(float));
    const int64_t tracked = d->bn_tracked;
    mt_status st = decoder_run(ctx, m, t, B, 1, 0); /* conv2 and the logits are kept */
    memcpy(d->bn_running_mean, keep, c4 * sizeof(float));
    memcpy(d->bn_running_var, keep + c4, c4 * sizeof(float));
    d->bn_tracked = tracked;
    free(keep);
    return st;
}

mt_status decoder_backward(mt_ctx *ctx, mt_model *m, int t, int B) {
    const mt_config *c = &m->cfg;
    task_decoder *d = &m->dec[t];
    decoder_acts *a = &m->a.dec[t];
    grad_work *w = &m->w;
    const int h0 = m->feat_res[0], hw0 = h0 * h0, cs = d->csum, C4 = 4 * cs;
    const size_t nh = (size_t)B * C4 * hw0;
    mt_zero(w->d_conv2, (size_t)B * d->K * hw0);
    MT_CHECK(resize_bilinear_backward(ctx, w->d_conv2, a->dlogits, B, d->K, h0, h0, m->S, m->S));
    /* the data gradients below are overwritten, not added to (no zeroing,
     * no temporaries of their size) */
    MT_CHECK(conv2d_backward_ex(ctx, w->d_relu, d->c2_w.g, d->c2_b.g, w->d_conv2, a->relu,
                                d->c2_w.v, B, C4, h0, h0, d->K, 1, 1, 0, 0));
    /* in place (w->d_bn is w->d_relu); a->bn holds the ReLU's output (in
     * place too): positive where its input was */
    MT_CHECK(relu_backward_ex(ctx, w->d_bn, w->d_relu, a->relu, nh, 0));
    MT_CHECK(batchnorm_backward_ex(ctx, w->d_conv1, d->bn_w.g, d->bn_b.g, w->d_bn, a->conv1,
                                   a->bn_mean, a->bn_var, d->bn_w.v, d->bn_b.v, B, C4, hw0, 0));
    MT_CHECK(conv2d_backward_ex(ctx, w->d_cat, d->c1_w.g, d->c1_b.g, w->d_conv1, a->cat,
                                d->c1_w.v, B, cs, h0, h0, C4, 1, 1, 0, 0));
    int off = 0;
    for (int s = 0; s < m->L; s++) {
        const int h = m->feat_res[s], hw = h * h, ch = c->decoder_channels[s];
        const float *slice = w->d_cat + (size_t)off * hw0; /* (B, ch, h0, h0) of d_cat */
        if (s == 0) {
            MT_CHECK(move(ctx, w->d_down_tok, LAY_TOKENS, slice, LAY_SLICE, B, ch, hw, cs));
        } else {
            MT_CHECK(move(ctx, w->d_resized, LAY_NCHW, slice, LAY_SLICE, B, ch, hw0, cs));
            mt_zero(w->d_down_nchw, (size_t)B * ch * hw);
            MT_CHECK(resize_bilinear_backward(ctx, w->d_down_nchw, w->d_resized, B, ch, h, h, h0,
                                              h0));
            MT_CHECK(move(ctx, w->d_down_tok, LAY_TOKENS, w->d_down_nchw, LAY_NCHW, B, ch, hw, cs));
        }
        MT_CHECK(linear_backward(ctx, w->d_feat[t][s], d->down[s].g, NULL, w->d_down_tok,
                                 m->a.feat[t][s], d->down[s].v, B * hw, m->feat_dim[s], ch));
        off += ch;
    }
    return MT_OK;
}
