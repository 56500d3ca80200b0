/* fuzz_adapter_config - adapter_config.json's reader and checks
 * (src/model/adapter_peft.c, through io/json_file.c) on any bytes: written
 * to a file under $MTLORA_FUZZ_TMP, checked against each of the seed
 * configurations (mt_peft_check_config) and against two small weights
 * files (mt_peft_check_counts). Besides crashes and leaks (ASan), it
 * aborts when a refusal does not name the file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_adapter_config.h"
#include "mtlora/io/safetensors.h"
#include "mtlora/model/adapter_peft.h"

/* adapter_config.json's own bound is 1 MiB; short runs want small inputs */
#define MAX_INPUT ((size_t)64 << 10)

static mt_config configs[FUZZ_AC_CONFIGS];
static char adapter_st[512], modules_st[512];
static int ready;

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_adapter_config: %s: %s\n", what, detail);
    abort();
}

static void remove_weights(void) {
    unlink(adapter_st);
    unlink(modules_st);
}

/* The configurations and the two weights files mt_peft_check_counts
 * compares with (what seed_adapter_config's counts describe). */
static void setup(const char *dir) {
    for (int i = 0; i < FUZZ_AC_CONFIGS; i++)
        if (fuzz_ac_config(i, &configs[i])) abort();
    static const float v[16];
    const int64_t s3 = 3, s8 = 8, s5 = 5;
    const st_entry a[2] = {{"x.lora_A", ST_F32, 1, &s3, v}, {"x.lora_B", ST_F32, 1, &s8, v}};
    const st_entry m[1] = {{"x.norm.weight", ST_F32, 1, &s5, v}};
    char err[1024];
    snprintf(adapter_st, sizeof adapter_st, "%s/ac_%d_adapter.safetensors", dir, (int)getpid());
    snprintf(modules_st, sizeof modules_st, "%s/ac_%d_modules.safetensors", dir, (int)getpid());
    if (st_write(adapter_st, a, 2, NULL, 0, err, sizeof err) ||
        st_write(modules_st, m, 1, NULL, 0, err, sizeof err))
        die("cannot write the weights files", err);
    atexit(remove_weights);
    ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > MAX_INPUT) return 0;
    const char *env = getenv("MTLORA_FUZZ_TMP");
    const char *dir = env && *env ? env : "/tmp";
    if (!ready) setup(dir);
    char path[512], err[2048];
    snprintf(path, sizeof path, "%s/ac_%d_adapter_config.json", dir, (int)getpid());
    FILE *out = fopen(path, "wb");
    if (!out) die("cannot create", path);
    const int short_write = size && fwrite(data, 1, size, out) != size;
    if (fclose(out) != 0 || short_write) die("cannot write", path);
    for (int i = 0; i < FUZZ_AC_CONFIGS; i++)
        if (mt_peft_check_config(path, &configs[i], err, sizeof err) && !strstr(err, path))
            die("a refusal that does not name the file", err);
    if (mt_peft_check_counts(path, adapter_st, modules_st, err, sizeof err) && !strstr(err, path))
        die("a refusal that does not name the file", err);
    unlink(path);
    return 0;
}
