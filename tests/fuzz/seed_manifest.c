/* seed_manifest OUTDIR - the seed corpus of fuzz_manifest: manifests from
 * the project's writer (shard_manifest_write) for several splits, shard
 * sizes and counts, each renamed into OUTDIR; each must parse back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mtlora/io/shards/shard.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seed_manifest OUTDIR\n");
        return 1;
    }
    static const struct { const char *split; int tasks; long long nshards, nrec, size; } cases[] = {
        {"train", SHARD_ALL_TASKS, 3, 5, 2},
        {"val", SHARD_SEMSEG | SHARD_HUMAN_PARTS | SHARD_SAL | SHARD_NORMALS, 1, 3, 1000},
        {"train", SHARD_SEMSEG, 4, 4, 1},
        {"val", SHARD_EDGE | SHARD_SAL, 2, 1999, 1000},
        {"train", SHARD_ALL_TASKS, 12, 34, 3},
    };
    char err[1024], from[4200], to[4200];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (shard_manifest_write(argv[1], cases[k].split, cases[k].tasks, cases[k].nshards,
                                 cases[k].nrec, cases[k].size, err, sizeof err)) {
            fprintf(stderr, "seed_manifest: %s\n", err);
            return 1;
        }
        shard_manifest m;
        if (shard_manifest_read(argv[1], cases[k].split, &m, err, sizeof err)) {
            fprintf(stderr, "seed_manifest: the parser refuses its own writer's manifest: %s\n", err);
            return 1;
        }
        shard_manifest_free(&m);
        snprintf(from, sizeof from, "%s/%s.manifest", argv[1], cases[k].split);
        snprintf(to, sizeof to, "%s/seed-%zu-%s.manifest", argv[1], k, cases[k].split);
        if (rename(from, to) != 0) {
            perror(to);
            return 1;
        }
    }
    return 0;
}
