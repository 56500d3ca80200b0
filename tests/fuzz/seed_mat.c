/* seed_mat OUTDIR - the seed corpus of fuzz_mat, written by the project's
 * own MAT writer (io/pascal/mat5_writer.c): the human_parts struct and the
 * LabelMap of three small synthetic scenes (zlib-compressed, as the
 * synthetic set has them), and every hostile form of mat5_write_hostile
 * (uncompressed raw structs and counts, sparse and wrong classes, huge and
 * NaN labels, a MAT v4 header), so the fuzzer starts inside each branch of
 * the accessor. Every good seed must parse, every hostile one be refused,
 * or this program fails. */
#include <stdio.h>
#include <stdlib.h>

#include "mtlora/data/synthetic_scene.h"
#include "mtlora/io/pascal/mat5_writer.h"
#include "mtlora/io/pascal/mat_reader.h"

static int check(const char *path, mat_kind kind, int want_ok) {
    void *data = NULL;
    int h, w;
    char err[1024] = "";
    mt_status st = mat_precheck(path, err, sizeof err);
    if (!st) st = mat_parse_file(kind, path, &data, &h, &w, err, sizeof err);
    free(data);
    if ((st == MT_OK) == want_ok) return 0;
    fprintf(stderr, "seed_mat: %s: %s\n", path, want_ok ? err : "accepted, but it is a hostile form");
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seed_mat OUTDIR\n");
        return 2;
    }
    char path[4200], err[1024];
    int bad = 0;
    synthetic_scene s;
    for (int k = 0; k < 3; k++) {
        if (synthetic_scene_build(&s, 1000 + (uint64_t)k, 32, 40)) {
            fprintf(stderr, "seed_mat: cannot build scene %d\n", k);
            return 1;
        }
        snprintf(path, sizeof path, "%s/parts-%d.mat", argv[1], k);
        if (mat5_write_parts(path, &s, "2008_000001", err, sizeof err) || check(path, MAT_KIND_PARTS, 1)) bad = 1;
        snprintf(path, sizeof path, "%s/labelmap-%d.mat", argv[1], k);
        if (mat5_write_labelmap(path, &s, err, sizeof err) || check(path, MAT_KIND_LABELMAP, 1)) bad = 1;
        if (k < 2) synthetic_scene_free(&s);
    }
    static const mat_kind kinds[MAT5_HOSTILE_COUNT] = {
        MAT_KIND_PARTS,    MAT_KIND_LABELMAP, MAT_KIND_LABELMAP, MAT_KIND_PARTS,
        MAT_KIND_LABELMAP, MAT_KIND_PARTS,    MAT_KIND_PARTS,    MAT_KIND_PARTS,
        MAT_KIND_LABELMAP, MAT_KIND_LABELMAP, MAT_KIND_LABELMAP, MAT_KIND_PARTS};
    for (int f = 0; f < MAT5_HOSTILE_COUNT; f++) {
        snprintf(path, sizeof path, "%s/hostile-%s.mat", argv[1], mat5_hostile_name((mat5_hostile)f));
        if (mat5_write_hostile(path, (mat5_hostile)f, &s, "2008_000001", err, sizeof err)) {
            fprintf(stderr, "seed_mat: %s\n", err);
            bad = 1;
        } else if (check(path, kinds[f], 0)) {
            bad = 1;
        }
    }
    synthetic_scene_free(&s);
    return bad;
}
