/* tensor_bundle.h - reader for the test-case files written by
 * tests/reference/bundle.py (format documented there). Test-only. */
#ifndef MTLORA_TENSOR_BUNDLE_H
#define MTLORA_TENSOR_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char name[64];
    int ndim;
    int64_t dims[8];
    size_t count;
    float *data;
} bundle_tensor;

typedef struct {
    int count;
    bundle_tensor *t;
} tensor_bundle;

/* Returns 0 on success; on failure a message in err (never reads past the
 * end of a truncated file). */
int bundle_load(tensor_bundle *b, const char *path, char *err, size_t errlen);
void bundle_free(tensor_bundle *b);
/* The named tensor, or NULL. */
const bundle_tensor *bundle_get(const tensor_bundle *b, const char *name);

#endif
