/* fuzz_adapter_config.h - the configurations shared by fuzz_adapter_config
 * and seed_adapter_config: the seeds are written for them, so the fuzzer's
 * inputs reach the checks that compare with a configuration. */
#ifndef MTLORA_FUZZ_ADAPTER_CONFIG_H
#define MTLORA_FUZZ_ADAPTER_CONFIG_H

#include <stdio.h>

#include "mtlora/config/config.h"

#define FUZZ_AC_CONFIGS 4

/* Configuration `which` (0 MTLoRA, 1 LoRA, 2 MTL-LoRA, 3 CGC-LoRA mixed
 * with MTL-LoRA and LoRA): a small Swin, finalized. 0 or a message. */
static inline int fuzz_ac_config(int which, mt_config *c) {
    static const char *const common[][2] = {
        {"DATA.IMG_SIZE", "32"},        {"MODEL.SWIN.EMBED_DIM", "8"},
        {"MODEL.SWIN.DEPTHS", "[2, 2]"}, {"MODEL.SWIN.NUM_HEADS", "[1, 2]"},
        {"MODEL.SWIN.WINDOW_SIZE", "4"}, {"MODEL.DECODER_CHANNELS", "[4, 4]"},
        {"MODEL.MTLORA.ENABLED", "True"}, {"MODEL.MTLORA.R", "[4]"},
        {"MODEL.MTLORA.SHARED_SCALE", "[4.0]"}, {"MODEL.MTLORA.DROPOUT", "[0.05]"},
        {"TASKS", "[semseg, normals]"}};
    static const char *const kinds[FUZZ_AC_CONFIGS][4][2] = {
        {{NULL, NULL}},
        {{"MODEL.ADAPTER.KIND", "lora"}},
        {{"MODEL.ADAPTER.KIND", "mtl_lora"}},
        {{"MODEL.ADAPTER.KIND", "cgc_lora"}, {"MODEL.ADAPTER.QKV", "mtl_lora"},
         {"MODEL.ADAPTER.PROJ", "lora"}}};
    char err[1024];
    mt_config_default(c);
    for (size_t i = 0; i < sizeof common / sizeof *common; i++)
        if (mt_config_set(c, common[i][0], common[i][1], err, sizeof err)) goto fail;
    for (int i = 0; i < 4 && kinds[which][i][0]; i++)
        if (mt_config_set(c, kinds[which][i][0], kinds[which][i][1], err, sizeof err)) goto fail;
    if (mt_config_finalize(c, err, sizeof err)) goto fail;
    return 0;
fail:
    fprintf(stderr, "fuzz_adapter_config: configuration %d: %s\n", which, err);
    return 1;
}

#endif
