/* fuzz_safetensors - the safetensors reader (io/safetensors.c) on any
 * bytes: written to a file under $MTLORA_FUZZ_TMP (the reader takes a
 * path), opened with st_load and st_load_header, and every tensor of an
 * accepted file read. Besides crashes, leaks and out-of-bounds reads
 * (ASan), it aborts when the two loaders disagree, when a refusal does
 * not name the file, or when an accepted tensor lies outside the data. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/io/safetensors.h"

/* Inputs above this are skipped: the format's checks are all reached by
 * small files, and short runs stay fast. */
#define MAX_INPUT ((size_t)1 << 20)

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_safetensors: %s: %s\n", what, detail);
    abort();
}

static void read_all(const st_file *f, const char *path) {
    char err[1024];
    for (int i = 0; i < f->count; i++) {
        const st_tensor *t = &f->tensors[i];
        if (t->begin > t->end || t->end > f->data_len ||
            t->end - t->begin != t->count * st_dtype_size(t->dtype))
            die("accepted a tensor outside the data", t->name);
        float *v = malloc(t->count ? t->count * sizeof *v : 1);
        if (!v) die("out of memory", path);
        if (st_read_f32(f, t, v, err, sizeof err)) die("st_read_f32 refused an accepted tensor", err);
        free(v);
        int64_t x;
        if (t->count == 1 && (t->dtype == ST_I64 || t->dtype == ST_I32) &&
            st_read_i64(f, t, &x, err, sizeof err))
            die("st_read_i64 refused an accepted scalar", err);
        if (st_find(f, t->name) == NULL) die("st_find lost a tensor", t->name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > MAX_INPUT) return 0;
    const char *dir = getenv("MTLORA_FUZZ_TMP");
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/st_%d.safetensors", dir && *dir ? dir : "/tmp", (int)getpid());
    FILE *out = fopen(path, "wb");
    if (!out) die("cannot create", path);
    const int short_write = size && fwrite(data, 1, size, out) != size;
    if (fclose(out) != 0 || short_write) die("cannot write", path);
    st_file f, h;
    const mt_status st = st_load(&f, path, err, sizeof err);
    if (st && !strstr(err, path)) die("a refusal that does not name the file", err);
    if (!st) {
        read_all(&f, path);
        st_free(&f);
    }
    const mt_status sh = st_load_header(&h, path, err, sizeof err);
    if (!sh) st_free(&h);
    if ((st == MT_OK) != (sh == MT_OK)) die("st_load and st_load_header disagree", path);
    unlink(path);
    return 0;
}
