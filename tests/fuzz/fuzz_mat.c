/* fuzz_mat - the packer's MAT reading over arbitrary bytes: the input is
 * written to a file under $MTLORA_FUZZ_TMP (libmatio reads files), checked
 * by mat_precheck, and parsed in this process (no worker, so libFuzzer sees
 * the coverage) through the bounds-checked accessor as both files of a
 * record: human_parts (struct anno) and the LabelMap. Whatever the bytes,
 * each returns a status; a map it accepts holds only valid labels. A crash
 * inside libmatio that the accessor cannot prevent is what the packer's
 * worker process contains (mat_reader.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mtlora/data/pascal_classes.h"
#include "mtlora/io/pascal/mat_reader.h"

/* libmatio allocates what a header declares before reading the data: the
 * packer's worker caps that at 1 GiB of address space (RLIMIT_AS), where
 * malloc returns NULL; here ASan's allocator does the same at 1 GiB, so a
 * declared size is a refusal to check, not an out-of-memory "finding".
 * (ASAN_OPTIONS set in the environment still win, flag by flag.) */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1:max_allocation_size_mb=1024"; }

static void parse_as(mat_kind kind, const char *path) {
    void *data = NULL;
    int h = -1, w = -1;
    char err[1024];
    if (mat_parse_file(kind, path, &data, &h, &w, err, sizeof err) != MT_OK) {
        if (data) abort(); /* a refusal returns nothing */
        return;
    }
    if (h < 0 || w < 0 || h > MAT_MAX_SIDE || w > MAT_MAX_SIDE || (!data) != (h == 0 || w == 0)) abort();
    for (size_t i = 0; i < (size_t)h * w; i++) {
        const int v = kind == MAT_KIND_LABELMAP ? ((const int32_t *)data)[i] : ((const uint8_t *)data)[i];
        if (v < 0 || v > (kind == MAT_KIND_LABELMAP ? PASCAL_CONTEXT_CLASSES : PASCAL_HUMAN_PARTS - 1)) abort();
    }
    free(data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0; /* far beyond any seed: keep runs fast */
    const char *tmp = getenv("MTLORA_FUZZ_TMP");
    char path[4200], err[1024];
    snprintf(path, sizeof path, "%s/mat_%ld.mat", tmp && tmp[0] ? tmp : "/tmp", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    const int ok = fwrite(data, 1, size, f) == size;
    if (fclose(f) != 0 || !ok) {
        unlink(path);
        return 0;
    }
    if (mat_precheck(path, err, sizeof err) == MT_OK) {
        parse_as(MAT_KIND_PARTS, path);
        parse_as(MAT_KIND_LABELMAP, path);
    }
    unlink(path);
    return 0;
}
