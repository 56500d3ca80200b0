/* fuzz_manifest - libFuzzer target: the manifest parser
 * (io/shards/shard_manifest.c, shard_manifest_parse) on arbitrary bytes,
 * for any split (the split line decides the shard names). The contract
 * checked: success gives shards whose names are plain files of the split,
 * whose counts add up to the records line, each named once; a failure names
 * the manifest. shard_manifest_read is only a bounded file read around it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/io/shards/shard.h"

#define FUZZ_MAX_INPUT ((size_t)1 << 20)
#define NAME "fuzz/train.manifest"

static void contract_broken(const char *what, const char *msg) {
    fprintf(stderr, "fuzz_manifest: contract broken: %s (%s)\n", what, msg);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    static const char empty[1];
    shard_manifest m;
    char err[2048] = "";
    /* the bytes as they are: no NUL terminator to lean on */
    if (shard_manifest_parse(NAME, NULL, size ? (const char *)data : empty, size, &m, err,
                             sizeof err) != MT_OK) {
        if (!strstr(err, NAME)) contract_broken("an error that does not name the manifest", err);
        if (m.shards || m.nshards) contract_broken("a failure that keeps its shard list", err);
        return 0;
    }
    int64_t total = 0;
    const size_t ls = strlen(m.split);
    for (int k = 0; k < m.nshards; k++) {
        const shard_manifest_entry *e = &m.shards[k];
        if (strchr(e->name, '/') || strncmp(e->name, m.split, ls) || e->records < 1 ||
            e->records > m.shard_size)
            contract_broken("a shard entry the format forbids", e->name);
        for (int j = 0; j < k; j++)
            if (!strcmp(e->name, m.shards[j].name)) contract_broken("a shard listed twice", e->name);
        total += e->records;
    }
    if (m.nshards < 1 || total != m.records) contract_broken("counts that do not add up", m.split);
    shard_manifest_free(&m);
    return 0;
}
