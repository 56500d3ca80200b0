/* fuzz_checkpoint - ckpt_load over arbitrary bytes: the input is written to
 * a file under $MTLORA_FUZZ_TMP (ckpt_load reads files) and loaded into a
 * small bank, then the same file is scanned as RUN.DIR's only checkpoint
 * (ckpt_load_latest: names, the regular-file check, start-over).
 *
 * The checksum would stop almost every mutation before the field checks,
 * so for inputs whose last byte is odd it is recomputed (as checkpoint.h
 * defines it) when the bytes parse as safetensors with a checksum tensor;
 * the other half exercise the checksum refusal. The contract checked: a
 * refusal names the file; a success gives a state in range and finite
 * values. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_bank.h"
#include "mtlora/base/hash.h"
#include "mtlora/io/safetensors.h"
#include "mtlora/train/checkpoint.h"

static mt_ctx *ctx;
static param_bank bank;
static float *m, *v;
static int ready;

static int set_up(void) {
    if (ready) return ready > 0;
    ready = -1;
    if (fuzz_checkpoint_bank(&ctx, &bank)) return 0;
    m = calloc(bank.n_trainable, sizeof *m);
    v = calloc(bank.n_trainable, sizeof *v);
    if (!m || !v) return 0;
    ready = 1;
    return 1;
}

static int put(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    const int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

/* The checksum recomputed over the header and the data but its own bytes. */
static void reseal(const char *path, const uint8_t *data, size_t size) {
    st_file f;
    char err[1024];
    if (st_load(&f, path, err, sizeof err)) return;
    const st_tensor *c = st_find(&f, "checksum");
    if (c && c->dtype == ST_I64 && c->end - c->begin == 8) {
        uint8_t *copy = malloc(size);
        if (copy) {
            memcpy(copy, data, size);
            const size_t off = (size_t)(f.data - f.file);
            uint64_t h = mt_fnv1a64(MT_FNV1A64_INIT, copy + 8, off - 8);
            h = mt_fnv1a64(h, copy + off, c->begin);
            h = mt_fnv1a64(h, copy + off + c->end, f.data_len - c->end);
            memcpy(copy + off + c->begin, &h, 8);
            (void)put(path, copy, size);
            free(copy);
        }
    }
    st_free(&f);
}

static void check_loaded(const ckpt_state *s) {
    if (s->step < 0 || s->step >= CKPT_MAX_STEP || s->epoch < 0 || s->batch < 0 || s->world < 1 ||
        s->adam_step + s->skipped != s->step || s->bn_tracked < 0 || s->config_hash != FUZZ_CKPT_HASH)
        abort();
    for (size_t i = 0; i < bank.n_trainable; i++)
        if (!isfinite(bank.trainable[i]) || !isfinite(m[i]) || !(v[i] >= 0.0f) || isinf(v[i])) abort();
    for (size_t i = 0; i < bank.n_buffer; i++)
        if (!isfinite(bank.buffers[i])) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20) || !set_up()) return 0; /* far beyond any seed: keep runs fast */
    const char *tmp = getenv("MTLORA_FUZZ_TMP");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/checkpoint-%ld", tmp && tmp[0] ? tmp : "/tmp", (long)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/ckpt-00000010.safetensors", dir);
    if (put(path, data, size)) {
        if (size && (data[size - 1] & 1)) reseal(path, data, size);
        char err[1024];
        ckpt_state s;
        if (ckpt_load(path, FUZZ_CKPT_HASH, &s, &bank, m, v, err, sizeof err)) {
            if (!strstr(err, path)) abort();
        } else {
            check_loaded(&s);
        }
        ckpt_scan *scan = malloc(sizeof *scan);
        if (scan && !ckpt_load_latest(dir, FUZZ_CKPT_HASH, 1, &s, &bank, m, v, scan, err, sizeof err) &&
            scan->found) {
            if (s.step != 10) abort(); /* the name's step */
            check_loaded(&s);
        }
        free(scan);
    }
    unlink(path);
    rmdir(dir);
    return 0;
}
