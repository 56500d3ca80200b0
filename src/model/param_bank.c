/* param_bank.c - see param_bank.h. */
#include <stdlib.h>
#include <string.h>
#include "mtlora/ops/context.h"
#include "mtlora/model/param_bank.h"

void param_bank_init(param_bank *bank) { memset(bank, 0, sizeof *bank); }

void param_bank_free(param_bank *bank) {
    if (!bank) return;
    free(bank->entries);
    free(bank->trainable);
    free(bank->grads);
    if (!bank->frozen_external) free(bank->frozen);
    free(bank->buffers);
    param_bank_init(bank);
}

const param_entry *param_bank_find(const param_bank *bank, const char *name) {
    for (int i = 0; i < bank->count; i++)
        if (strcmp(bank->entries[i].name, name) == 0) return &bank->entries[i];
    return NULL;
}

mt_status param_bank_add(mt_ctx *ctx, param_bank *bank, const char *name, int ndim,
                         const int64_t *shape, mt_param_kind kind, int decay) {
    const char *what = "param_bank_add";
    MT_NEED_PTR(ctx, what, bank);
    MT_NEED_PTR(ctx, what, name);
    MT_NEED_PTR(ctx, what, shape);
    if (bank->trainable || bank->frozen)
        return mt_fail(ctx, MT_ERR_ARG, "%s: %s: bank already allocated", what, name);
    if (kind != MT_PARAM_TRAINABLE && kind != MT_PARAM_FROZEN && kind != MT_PARAM_BUFFER)
        return mt_fail(ctx, MT_ERR_ARG, "%s: %s: unknown kind %d", what, name, (int)kind);
    size_t len = strlen(name);
    if (len == 0 || len >= MT_PARAM_NAME_LEN)
        return mt_fail(ctx, MT_ERR_ARG, "%s: name '%s' empty or longer than %d", what, name,
                       MT_PARAM_NAME_LEN - 1);
    if (param_bank_find(bank, name))
        return mt_fail(ctx, MT_ERR_ARG, "%s: %s registered twice", what, name);
    if (ndim < 1 || ndim > MT_PARAM_MAX_DIMS)
        return mt_fail(ctx, MT_ERR_SHAPE, "%s: %s has %d dimensions", what, name, ndim);
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] <= 0)
            return mt_fail(ctx, MT_ERR_SHAPE, "%s: %s dimension %d is %lld", what, name, d,
                           (long long)shape[d]);
        count *= (size_t)shape[d];
    }
    if (bank->count == bank->cap) {
        int ncap = bank->cap ? 2 * bank->cap : 64;
        param_entry *n = realloc(bank->entries, (size_t)ncap * sizeof *n);
        if (!n) return mt_fail(ctx, MT_ERR_NOMEM, "%s: out of memory", what);
        bank->entries = n;
        bank->cap = ncap;
    }
    param_entry *e = &bank->entries[bank->count++];
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, len + 1);
    e->ndim = ndim;
    memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
    e->count = count;
    e->kind = kind;
    e->decay = decay != 0;
    size_t *total = kind == MT_PARAM_TRAINABLE ? &bank->n_trainable
                    : kind == MT_PARAM_FROZEN  ? &bank->n_frozen
                                               : &bank->n_buffer;
    e->offset = *total;
    *total += count;
    return MT_OK;
}

static float *zeroed(size_t n) {
    size_t bytes = ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

mt_status param_bank_alloc(mt_ctx *ctx, param_bank *bank) {
    const char *what = "param_bank_alloc";
    MT_NEED_PTR(ctx, what, bank);
    if (bank->trainable || bank->frozen)
        return mt_fail(ctx, MT_ERR_ARG, "%s: already allocated", what);
    bank->trainable = zeroed(bank->n_trainable);
    bank->grads = zeroed(bank->n_trainable);
    bank->frozen = zeroed(bank->n_frozen);
    bank->buffers = zeroed(bank->n_buffer);
    if (!bank->trainable || !bank->grads || !bank->frozen || !bank->buffers) {
        free(bank->trainable); free(bank->grads); free(bank->frozen); free(bank->buffers);
        bank->trainable = bank->grads = bank->frozen = bank->buffers = NULL;
        return mt_fail(ctx, MT_ERR_NOMEM, "%s: cannot allocate %zu trainable + %zu frozen values",
                       what, bank->n_trainable, bank->n_frozen);
    }
    return MT_OK;
}

float *param_bank_value(const param_bank *bank, const param_entry *e) {
    float *base = e->kind == MT_PARAM_TRAINABLE ? bank->trainable
                  : e->kind == MT_PARAM_FROZEN  ? bank->frozen
                                                : bank->buffers;
    return base ? base + e->offset : NULL;
}

float *param_bank_grad(const param_bank *bank, const param_entry *e) {
    return e->kind == MT_PARAM_TRAINABLE && bank->grads ? bank->grads + e->offset : NULL;
}

mt_status param_bank_set_no_grad(mt_ctx *ctx, param_bank *bank, const char *name) {
    for (int i = 0; i < bank->count; i++)
        if (!strcmp(bank->entries[i].name, name)) {
            if (bank->entries[i].kind != MT_PARAM_TRAINABLE)
                return mt_fail(ctx, MT_ERR_ARG, "param_bank_set_no_grad: %s does not train", name);
            bank->entries[i].no_grad = 1;
            return MT_OK;
        }
    return mt_fail(ctx, MT_ERR_ARG, "param_bank_set_no_grad: no tensor %s", name);
}
