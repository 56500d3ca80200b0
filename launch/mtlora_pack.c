/* mtlora-pack - PASCAL-Context multi-task layout -> HDF5 shards.
 *
 *   mtlora-pack SRC_DIR OUT_DIR --split train|val [--shard-size N] [--tasks LIST]
 *               [--threads N] [--resize-labels] [--quiet]
 *   mtlora-pack --verify OUT_DIR
 *   mtlora-pack --synthetic N OUT_SRC_DIR [--seed S] [--min-side A] [--max-side B]
 *
 * The command line; the packing and the check are pascal_pack_split and
 * pascal_verify_shards (io/pascal/pascal_pack.c), the synthetic set
 * synthetic_pascal_write (io/pascal/synthetic_pascal.c).
 * A record whose MAT file cannot be read is skipped and listed at the end
 * (pascal_pack.h); the exit status is then 1.
 * Exit status: 0 ok, 1 bad data or I/O error or skipped records, 2 usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/io/pascal/pascal_pack.h"
#include "mtlora/io/pascal/synthetic_pascal.h"
#include "mtlora/io/shards/shard.h"

#define ERRLEN 1024

/* Under AddressSanitizer (the test builds) a refused allocation must return
 * NULL as it does without it, so that a MAT worker reaching its memory cap
 * (mat_reader.h) reads as that, not as a sanitizer abort. Unused otherwise. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static void usage(void) {
    fprintf(stderr,
            "usage: mtlora-pack SRC_DIR OUT_DIR --split train|val [--shard-size N] [--tasks LIST]\n"
            "                   [--threads N] [--resize-labels] [--quiet]\n"
            "       mtlora-pack --verify OUT_DIR\n"
            "       mtlora-pack --synthetic N OUT_SRC_DIR [--seed S] [--min-side A] [--max-side B]\n"
            "  LIST: comma-separated of semseg,human_parts,sal,normals,edge\n"
            "        (default semseg,human_parts,sal,normals)\n");
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* ------------------------------------------------------------- main */

int main(int argc, char **argv) {
    const char *split = NULL, *pos[2] = {NULL, NULL}, *verify = NULL;
    long shard_size = 1000, threads = 2, synth_n = -1, seed = 1, min_side = -1, max_side = -1;
    int tasks = SHARD_SEMSEG | SHARD_HUMAN_PARTS | SHARD_SAL | SHARD_NORMALS, resize = 0, quiet = 0,
        npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has = i + 1 < argc;
        if (!strcmp(a, "--split") && has) split = argv[++i];
        else if (!strcmp(a, "--shard-size") && has) {
            if (parse_int(argv[++i], 1, 1000000, &shard_size)) {
                fprintf(stderr, "mtlora-pack: --shard-size: '%s' is not in 1..1000000\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--threads") && has) {
            if (parse_int(argv[++i], 1, 64, &threads)) {
                fprintf(stderr, "mtlora-pack: --threads: '%s' is not in 1..64\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--tasks") && has) {
            char bad[64] = "";
            tasks = shard_tasks_parse(argv[++i], bad, sizeof bad);
            if (tasks <= 0) {
                fprintf(stderr, "mtlora-pack: --tasks: unknown task '%s'\n", bad);
                return 2;
            }
        } else if (!strcmp(a, "--seed") && has) {
            if (parse_int(argv[++i], 0, 0x7fffffffL, &seed)) {
                fprintf(stderr, "mtlora-pack: --seed: '%s' is not a non-negative integer\n", argv[i]);
                return 2;
            }
        } else if ((!strcmp(a, "--min-side") || !strcmp(a, "--max-side")) && has) {
            long *dst = a[2] == 'm' && a[3] == 'i' ? &min_side : &max_side;
            if (parse_int(argv[++i], 8, 4096, dst)) {
                fprintf(stderr, "mtlora-pack: %s: '%s' is not in 8..4096\n", a, argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--verify") && has) verify = argv[++i];
        else if (!strcmp(a, "--synthetic") && has) {
            if (parse_int(argv[++i], 1, 10000000, &synth_n)) {
                fprintf(stderr, "mtlora-pack: --synthetic: '%s' is not a positive count\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--resize-labels")) resize = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "mtlora-pack: unknown or incomplete option '%s'\n", a);
            usage();
            return 2;
        } else if (npos < 2) pos[npos++] = a;
        else {
            fprintf(stderr, "mtlora-pack: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (verify) return npos ? (usage(), 2) : pascal_verify_shards(verify);
    if (synth_n > 0) {
        if (npos != 1) {
            usage();
            return 2;
        }
        synthetic_opts o;
        synthetic_opts_default(&o);
        o.n = (int)synth_n;
        o.seed = (uint64_t)seed;
        o.threads = (int)threads;
        if (min_side > 0) o.min_side = (int)min_side;
        if (max_side > 0) o.max_side = (int)max_side;
        if (o.min_side > o.max_side) {
            fprintf(stderr, "mtlora-pack: --min-side %d > --max-side %d\n", o.min_side, o.max_side);
            return 2;
        }
        char err[ERRLEN];
        if (synthetic_pascal_write(pos[0], &o, quiet, err, sizeof err)) {
            fprintf(stderr, "mtlora-pack: %s\n", err);
            return 1;
        }
        if (!quiet) printf("wrote %d synthetic PASCAL-Context images under %s\n", o.n, pos[0]);
        return 0;
    }
    if (npos != 2 || !split) {
        usage();
        return 2;
    }
    if (strcmp(split, "train") && strcmp(split, "val")) {
        fprintf(stderr, "mtlora-pack: --split: '%s' is not train or val\n", split);
        return 2;
    }
    return pascal_pack_split(pos[0], pos[1], split, shard_size, tasks, (int)threads, resize, quiet);
}
