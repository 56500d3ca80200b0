/* seed_checkpoint OUTDIR - the seed corpus of fuzz_checkpoint, written by
 * the project's own writers: ckpt_write at four steps (one with skipped
 * updates, one from another run) and a version-1 file through st_write as
 * the version-1 writer laid it out. */
#include <stdio.h>
#include <stdlib.h>

#include "checkpoint_bank.h"
#include "mtlora/base/hash.h"
#include "mtlora/io/safetensors.h"
#include "mtlora/train/checkpoint.h"

static int version1(const char *dir, const param_bank *bank, const float *m, const float *v) {
    const size_t n = bank->n_trainable, nb = bank->n_buffer;
    int64_t state[9] = {3, 0, 3, 3, 0, (int64_t)FUZZ_CKPT_HASH, 1, 1, 3};
    uint64_t h = MT_FNV1A64_INIT;
    h = mt_fnv1a64(h, bank->trainable, n * sizeof(float));
    h = mt_fnv1a64(h, m, n * sizeof(float));
    h = mt_fnv1a64(h, v, n * sizeof(float));
    h = mt_fnv1a64(h, bank->buffers, nb * sizeof(float));
    const int64_t sum = (int64_t)mt_fnv1a64(h, state, sizeof state);
    const int64_t ni = (int64_t)n, nbi = (int64_t)nb, k9 = 9, k1 = 1;
    const st_entry e[6] = {{"trainable", ST_F32, 1, &ni, bank->trainable}, {"adam_m", ST_F32, 1, &ni, m},
                           {"adam_v", ST_F32, 1, &ni, v}, {"buffers", ST_F32, 1, &nbi, bank->buffers},
                           {"state", ST_I64, 1, &k9, state}, {"checksum", ST_I64, 1, &k1, &sum}};
    const char *meta[2] = {"format", "mtlora-checkpoint"};
    char path[4200], err[1024];
    snprintf(path, sizeof path, "%s/version1.safetensors", dir);
    ckpt_state back;
    if (st_write(path, e, 6, meta, 1, err, sizeof err) || ckpt_check(path, FUZZ_CKPT_HASH, bank, &back, err, sizeof err)) {
        fprintf(stderr, "seed_checkpoint: %s\n", err);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seed_checkpoint OUTDIR\n");
        return 2;
    }
    mt_ctx *ctx;
    param_bank bank;
    if (fuzz_checkpoint_bank(&ctx, &bank)) return 1;
    float *m = calloc(bank.n_trainable, sizeof *m), *v = calloc(bank.n_trainable, sizeof *v);
    if (!m || !v) return 1;
    int rc = 0;
    for (int k = 1; k <= 4 && !rc; k++) {
        for (size_t i = 0; i < bank.n_trainable; i++) {
            bank.trainable[i] = 0.01f * (float)(i * k) - 0.1f;
            m[i] = 0.001f * (float)i;
            v[i] = 0.0001f * (float)(i + k);
        }
        for (size_t i = 0; i < bank.n_buffer; i++) bank.buffers[i] = 1.0f + 0.1f * (float)i;
        const ckpt_state s = {10 * k, k / 2, 7 * k, 10 * k - (k == 3), k == 3, FUZZ_CKPT_HASH, k, 10 * k,
                              1700000000000000000 + (k == 4), 0};
        char err[1024], path[CKPT_PATH_LEN];
        ckpt_state back;
        if (ckpt_write(argv[1], &s, &bank, m, v, 100, path, sizeof path, err, sizeof err) ||
            ckpt_check(path, FUZZ_CKPT_HASH, &bank, &back, err, sizeof err))
            fprintf(stderr, "seed_checkpoint: %s\n", err), rc = 1;
    }
    if (!rc) rc = version1(argv[1], &bank, m, v);
    free(m);
    free(v);
    param_bank_free(&bank);
    mt_ctx_destroy(ctx);
    return rc;
}
