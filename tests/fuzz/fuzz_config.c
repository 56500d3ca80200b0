/* fuzz_config - the YAML configuration loader (src/config) under fuzzing.
 *
 * Input: a YAML file's bytes, loaded over the defaults from memory
 * (mt_config_load_buffer), given TASKS [sal] when it names none, and
 * finalized; or, when the first byte is 0x01, "KEY\nVALUE" for --opts on
 * the built-in model (mt_config_set). Any refusal is fine. What is
 * accepted must survive the writer: its YAML text must load and finalize
 * back to the same bytes of mt_config, else the target aborts (a string
 * the writer cannot quote, a float it prints inexactly, a finalize that is
 * not idempotent). Inputs over 64 KB are skipped: configurations are a few
 * KB, and the loader's own limits are tested in test_config_hostile. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/config/config.h"

static mt_config a, b; /* large: not on the stack */

static void roundtrip(void) {
    char err[2048], *text = NULL;
    size_t len = 0;
    if (mt_config_yaml_text(&a, &text, &len, err, sizeof err)) {
        fprintf(stderr, "fuzz_config: an accepted config cannot be written: %s\n", err);
        abort();
    }
    mt_config_default(&b);
    mt_status st = mt_config_load_buffer(&b, text, len, "written config", err, sizeof err);
    if (!st) st = mt_config_finalize(&b, err, sizeof err);
    if (st) {
        fprintf(stderr, "fuzz_config: the written config is refused: %s\n%s\n", err, text);
        abort();
    }
    if (memcmp(&a, &b, sizeof a)) {
        fprintf(stderr, "fuzz_config: the written config loads back different:\n%s\n", text);
        abort();
    }
    free(text);
}

/* "KEY\nVALUE" after the 0x01: --opts KEY VALUE on the built-in model. */
static int run_opts(const uint8_t *data, size_t size) {
    char err[2048];
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *nl = memchr(buf, '\n', size);
    int ok = 0;
    if (nl && !memchr(buf, '\0', size)) {
        *nl = '\0';
        ok = !mt_config_builtin(&a, err, sizeof err) &&
             !mt_config_set(&a, buf, nl + 1, err, sizeof err) &&
             !mt_config_finalize(&a, err, sizeof err);
    }
    free(buf);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[2048];
    if (size > 65536) return 0;
    if (size && data[0] == 0x01) {
        if (run_opts(data + 1, size - 1)) roundtrip();
        return 0;
    }
    mt_config_default(&a);
    if (mt_config_load_buffer(&a, (const char *)data, size, "fuzz.yaml", err, sizeof err)) return 0;
    if (a.ntasks == 0 && mt_config_set_tasks(&a, "sal", err, sizeof err)) return 0;
    if (mt_config_finalize(&a, err, sizeof err)) return 0;
    roundtrip();
    return 0;
}
