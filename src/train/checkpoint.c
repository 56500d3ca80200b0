/* checkpoint.c - see checkpoint.h. */
#include "mtlora/io/atomic_file.h"
#include "mtlora/train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtlora/base/hash.h"
#include "mtlora/io/safetensors.h"

static uint64_t checksum(const float *tr, const float *m, const float *v, size_t n,
                         const float *buf, size_t nb, const int64_t *state) {
    uint64_t h = MT_FNV1A64_INIT;
    h = mt_fnv1a64(h, tr, n * sizeof(float));
    h = mt_fnv1a64(h, m, n * sizeof(float));
    h = mt_fnv1a64(h, v, n * sizeof(float));
    h = mt_fnv1a64(h, buf, nb * sizeof(float));
    return mt_fnv1a64(h, state, 9 * sizeof(int64_t));
}

static void pack_state(int64_t st[9], const ckpt_state *s) {
    st[0] = s->step;
    st[1] = s->epoch;
    st[2] = s->batch;
    st[3] = s->adam_step;
    st[4] = s->skipped;
    st[5] = (int64_t)s->config_hash;
    st[6] = s->world;
    st[7] = CKPT_VERSION;
    st[8] = s->bn_tracked;
}

static int is_ckpt_name(const char *name, long long *step) {
    char tail[32];
    return sscanf(name, "ckpt-%lld.%31s", step, tail) == 2 && !strcmp(tail, "safetensors");
}

static int cmp_step_desc(const void *a, const void *b) {
    const long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Steps of the checkpoints in dir, newest first; returns the count. */
static int list_steps(const char *dir, long long *steps, int max) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    long long s;
    while ((e = readdir(d)) && n < max)
        if (is_ckpt_name(e->d_name, &s)) steps[n++] = s;
    closedir(d);
    qsort(steps, (size_t)n, sizeof steps[0], cmp_step_desc);
    return n;
}

mt_status ckpt_write(const char *dir, const ckpt_state *s, const param_bank *bank, const float *m,
                     const float *v, int keep, char *path_out, size_t path_len, char *err,
                     size_t errlen) {
    mt_status made = mt_make_dirs(dir, err, errlen);
    if (made) return made;
    char path[4200];
    snprintf(path, sizeof path, "%s/ckpt-%08lld.safetensors", dir, (long long)s->step);
    int64_t state[9];
    pack_state(state, s);
    const int64_t sum = (int64_t)checksum(bank->trainable, m, v, bank->n_trainable, bank->buffers,
                                          bank->n_buffer, state);
    const int64_t n = (int64_t)bank->n_trainable, nb = (int64_t)bank->n_buffer, k9 = 9, k1 = 1;
    const st_entry e[6] = {{"trainable", ST_F32, 1, &n, bank->trainable},
                           {"adam_m", ST_F32, 1, &n, m},
                           {"adam_v", ST_F32, 1, &n, v},
                           {"buffers", ST_F32, 1, &nb, bank->buffers},
                           {"state", ST_I64, 1, &k9, state},
                           {"checksum", ST_I64, 1, &k1, &sum}};
    const char *meta[4] = {"format", "mtlora-checkpoint", "layout",
                           "state = step, epoch, batch, adam_step, skipped, config_hash, world, version, bn_tracked"};
    mt_status st = st_write(path, e, 6, meta, 2, err, errlen);
    if (st) return st;
    if (path_out) snprintf(path_out, path_len, "%s", path);
    /* Keep the newest `keep`. */
    long long steps[4096];
    const int cnt = list_steps(dir, steps, 4096);
    for (int i = keep; i < cnt; i++) {
        char old[4200];
        snprintf(old, sizeof old, "%s/ckpt-%08lld.safetensors", dir, steps[i]);
        unlink(old);
    }
    return MT_OK;
}

static mt_status need(const st_file *f, const char *path, const char *name, st_dtype dt, size_t count,
                      const st_tensor **out, char *err, size_t errlen) {
    const st_tensor *t = st_find(f, name);
    if (!t || t->dtype != dt || t->count != count)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: tensor '%s' missing or not %zu values", path,
                       name, count);
    *out = t;
    return MT_OK;
}

mt_status ckpt_load(const char *path, uint64_t expected_hash, ckpt_state *s, param_bank *bank,
                    float *m, float *v, char *err, size_t errlen) {
    st_file f;
    mt_status st = st_load(&f, path, err, errlen);
    if (st) return st;
    const size_t n = bank->n_trainable, nb = bank->n_buffer;
    const st_tensor *tt = NULL, *tm = NULL, *tv = NULL, *tb = NULL, *ts = NULL, *tc = NULL;
    if ((st = need(&f, path, "trainable", ST_F32, n, &tt, err, errlen)) ||
        (st = need(&f, path, "adam_m", ST_F32, n, &tm, err, errlen)) ||
        (st = need(&f, path, "adam_v", ST_F32, n, &tv, err, errlen)) ||
        (st = need(&f, path, "buffers", ST_F32, nb, &tb, err, errlen)) ||
        (st = need(&f, path, "state", ST_I64, 9, &ts, err, errlen)) ||
        (st = need(&f, path, "checksum", ST_I64, 1, &tc, err, errlen))) {
        st_free(&f);
        return st;
    }
    int64_t state[9], sum;
    memcpy(state, f.data + ts->begin, sizeof state);
    memcpy(&sum, f.data + tc->begin, sizeof sum);
    const float *ptr[4] = {(const float *)(f.data + tt->begin), (const float *)(f.data + tm->begin),
                           (const float *)(f.data + tv->begin), (const float *)(f.data + tb->begin)};
    /* Copy to aligned buffers before hashing: the data section need not be
     * float-aligned. */
    float *tmp = malloc(sizeof(float) * (3 * n + nb + 1));
    if (!tmp) {
        st_free(&f);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, ptr[0], n * sizeof(float));
    memcpy(tmp + n, ptr[1], n * sizeof(float));
    memcpy(tmp + 2 * n, ptr[2], n * sizeof(float));
    memcpy(tmp + 3 * n, ptr[3], nb * sizeof(float));
    st_free(&f);
    if ((uint64_t)sum != checksum(tmp, tmp + n, tmp + 2 * n, n, tmp + 3 * n, nb, state))
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: checksum mismatch (corrupt checkpoint)", path);
    else if (state[7] != CKPT_VERSION)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: checkpoint version %lld, expected %d", path,
                     (long long)state[7], CKPT_VERSION);
    else if ((uint64_t)state[5] != expected_hash)
        st = mt_errf(err, errlen, MT_ERR_ARG,
                     "%s: written with another configuration (config hash differs)", path);
    if (!st) {
        memcpy(bank->trainable, tmp, n * sizeof(float));
        memcpy(m, tmp + n, n * sizeof(float));
        memcpy(v, tmp + 2 * n, n * sizeof(float));
        memcpy(bank->buffers, tmp + 3 * n, nb * sizeof(float));
        s->step = state[0];
        s->epoch = state[1];
        s->batch = state[2];
        s->adam_step = state[3];
        s->skipped = state[4];
        s->config_hash = (uint64_t)state[5];
        s->world = state[6];
        s->bn_tracked = state[8];
    }
    free(tmp);
    return st;
}

mt_status ckpt_load_latest(const char *dir, uint64_t expected_hash, ckpt_state *s,
                           param_bank *bank, float *m, float *v, int *found, char *path_out,
                           size_t path_len, char *skipped, size_t skipped_len, char *err,
                           size_t errlen) {
    *found = 0;
    if (skipped_len) skipped[0] = '\0';
    long long steps[4096];
    const int cnt = list_steps(dir, steps, 4096);
    size_t used = 0;
    for (int i = 0; i < cnt; i++) {
        char path[4200], e[1024];
        snprintf(path, sizeof path, "%s/ckpt-%08lld.safetensors", dir, steps[i]);
        if (!ckpt_load(path, expected_hash, s, bank, m, v, e, sizeof e)) {
            *found = 1;
            if (path_out) snprintf(path_out, path_len, "%s", path);
            return MT_OK;
        }
        if (used < skipped_len) {
            int k = snprintf(skipped + used, skipped_len - used, "%s\n", e);
            if (k > 0) used += (size_t)k;
        }
    }
    (void)err;
    (void)errlen;
    return MT_OK;
}
