/* tensor_bundle.c - see tensor_bundle.h. */
#include "tensor_bundle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rd(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n ? 0 : -1; }

int bundle_load(tensor_bundle *b, const char *path, char *err, size_t errlen) {
    memset(b, 0, sizeof *b);
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "%s: cannot open", path); return -1; }
    char magic[4];
    uint32_t ver, count;
    if (rd(f, magic, 4) || memcmp(magic, "MTTB", 4) || rd(f, &ver, 4) || ver != 1 ||
        rd(f, &count, 4) || count > 4096) {
        snprintf(err, errlen, "%s: not a version-1 tensor bundle", path);
        fclose(f);
        return -1;
    }
    b->t = calloc(count, sizeof *b->t);
    if (!b->t) { fclose(f); snprintf(err, errlen, "out of memory"); return -1; }
    for (uint32_t i = 0; i < count; i++) {
        bundle_tensor *t = &b->t[i];
        uint32_t nlen, ndim;
        if (rd(f, &nlen, 4) || nlen >= sizeof t->name || rd(f, t->name, nlen) ||
            rd(f, &ndim, 4) || ndim > 8 || rd(f, t->dims, 8 * (size_t)ndim)) {
            snprintf(err, errlen, "%s: tensor %u header truncated or malformed", path, i);
            goto fail;
        }
        t->ndim = (int)ndim;
        t->count = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            if (t->dims[d] < 0 || t->dims[d] > (1 << 28)) {
                snprintf(err, errlen, "%s: tensor %s has a bad dimension", path, t->name);
                goto fail;
            }
            t->count *= (size_t)t->dims[d];
        }
        t->data = malloc(t->count * sizeof(float) + 1);
        if (!t->data || rd(f, t->data, t->count * sizeof(float))) {
            snprintf(err, errlen, "%s: tensor %s data truncated", path, t->name);
            goto fail;
        }
        b->count = (int)i + 1;
    }
    fclose(f);
    return 0;
fail:
    b->count = (int)count;
    bundle_free(b);
    fclose(f);
    return -1;
}

void bundle_free(tensor_bundle *b) {
    if (!b->t) return;
    for (int i = 0; i < b->count; i++) free(b->t[i].data);
    free(b->t);
    b->t = NULL;
    b->count = 0;
}

const bundle_tensor *bundle_get(const tensor_bundle *b, const char *name) {
    for (int i = 0; i < b->count; i++)
        if (strcmp(b->t[i].name, name) == 0) return &b->t[i];
    return NULL;
}
