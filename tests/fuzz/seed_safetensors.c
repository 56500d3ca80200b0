/* seed_safetensors OUTDIR - the seed corpus of fuzz_safetensors, written
 * by the project's own writer (st_write): no tensors, metadata only, one
 * tensor, every dtype the reader converts, empty and scalar tensors, a
 * long name, several 2-D tensors with the checkpoint-style metadata. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/io/safetensors.h"

static int put(const char *dir, const char *name, const st_entry *e, int n, const char *const *meta,
               int n_meta) {
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    if (st_write(path, e, n, meta, n_meta, err, sizeof err)) {
        fprintf(stderr, "seed_safetensors: %s\n", err);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seed_safetensors OUTDIR\n");
        return 2;
    }
    const char *d = argv[1];
    static unsigned char bytes[256];
    for (int i = 0; i < 256; i++) bytes[i] = (unsigned char)(i * 37 + 11);
    const float v[12] = {1, -2, 0.5f, 3e-8f, 65504, -0.0f, 7, 8, 9, 10, 11, 12};
    const int64_t step = 1234, s1[1] = {1}, s3[1] = {3}, s0[2] = {0, 4}, s23[2] = {2, 3},
                  s34[2] = {3, 4}, s222[3] = {2, 2, 2};
    const char *meta[] = {"format", "pt", "step", "1234", "mtlora_checkpoint", "1"};
    int rc = 0;
    rc |= put(d, "empty", NULL, 0, NULL, 0);
    rc |= put(d, "metadata_only", NULL, 0, meta, 3);
    const st_entry one[1] = {{"w", ST_F32, 1, s3, v}};
    rc |= put(d, "one", one, 1, NULL, 0);
    const st_entry dtypes[8] = {{"f32", ST_F32, 1, s3, bytes}, {"f16", ST_F16, 1, s3, bytes},
                                {"bf16", ST_BF16, 1, s3, bytes}, {"f64", ST_F64, 1, s3, bytes},
                                {"i64", ST_I64, 1, s1, bytes},   {"i32", ST_I32, 1, s3, bytes},
                                {"u8", ST_U8, 2, s23, bytes},    {"bool", ST_BOOL, 1, s3, bytes}};
    rc |= put(d, "dtypes", dtypes, 8, meta, 1);
    const st_entry odd[3] = {{"empty", ST_F32, 2, s0, v}, {"step", ST_I64, 0, NULL, &step},
                             {"cube", ST_F32, 3, s222, v}};
    rc |= put(d, "empty_and_scalar", odd, 3, NULL, 0);
    char longname[ST_NAME_LEN];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const st_entry lng[1] = {{longname, ST_F32, 1, s1, v}};
    rc |= put(d, "long_name", lng, 1, NULL, 0);
    const st_entry model[4] = {{"backbone.patch_embed.proj.weight", ST_F32, 2, s34, v},
                               {"backbone.layers.0.blocks.0.attn.qkv.lora_shared_A", ST_F32, 2, s23, v},
                               {"decoders.decoders.semseg.last_layer.1.num_batches_tracked", ST_I64, 0,
                                NULL, &step},
                               {"backbone.norm.bias", ST_F32, 1, s3, v + 9}};
    rc |= put(d, "model", model, 4, meta, 3);
    return rc;
}
