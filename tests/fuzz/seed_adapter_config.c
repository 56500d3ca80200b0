/* seed_adapter_config OUTDIR - the seed corpus of fuzz_adapter_config:
 * adapter_config.json as the PEFT export writes it (mt_peft_write_config)
 * for each configuration of fuzz_adapter_config.h, with the counts of the
 * fuzzer's weights files, so the seeds pass every check and mutations
 * reach each one. */
#include <stdio.h>

#include "fuzz_adapter_config.h"
#include "mtlora/model/adapter_peft.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seed_adapter_config OUTDIR\n");
        return 2;
    }
    const mt_peft_counts n = {2, 11, 1, 5};
    for (int i = 0; i < FUZZ_AC_CONFIGS; i++) {
        mt_config c;
        if (fuzz_ac_config(i, &c)) return 1;
        char path[512], err[1024];
        snprintf(path, sizeof path, "%s/adapter_config_%d.json", argv[1], i);
        if (mt_peft_write_config(path, &c, &n, err, sizeof err)) {
            fprintf(stderr, "seed_adapter_config: %s\n", err);
            return 1;
        }
    }
    return 0;
}
