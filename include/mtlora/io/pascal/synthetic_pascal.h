/* synthetic_pascal.h - a generated stand-in for PASCAL-Context multi-task
 * (the real set cannot be downloaded here), written in the very layout and
 * file formats the official loader and `mtlora-pack` read:
 *
 *   DIR/JPEGImages/<id>.jpg                 RGB scene, JPEG quality 90
 *   DIR/ImageSets/Context/train.txt, val.txt  ids, one per line
 *   DIR/semseg/pascal-context/<id>.png      8-bit palette PNG, VOC class 0..20
 *   DIR/human_parts/<id>.mat                MATLAB v5, struct `anno` with
 *        fields imname (char) and objects (1xN struct: class (char),
 *        classIndex (double), mask (uint8 HxW), parts (1xM struct:
 *        part_name (char), mask (uint8 HxW)); 0x0 when the object has none)
 *   DIR/sal_distill/<id>.png                8-bit gray, 255 salient, 0 not
 *   DIR/normals_distill/<id>.png            8-bit RGB, v = round((n+1)/2*255)
 *   DIR/pascal-context/trainval/<id>.mat    MATLAB v5, LabelMap (uint16 HxW)
 *        holding PASCAL-Context class ids 1..459
 *
 * Ids look like PASCAL's ("2008_000001"). Each image is one scene of
 * mtlora/data/synthetic_scene.h (background, 1..4 VOC objects, people with
 * the official part names, saliency = the objects, normals from a height
 * field), its seed drawn from (seed, index). Deterministic for a seed: the
 * same (n, seed, sizes) writes byte-identical files, for any thread count.
 * Every file is written atomically (atomic_file.h): under its final name
 * it is complete; the split files come last, once every image is there. */
#ifndef MTLORA_SYNTHETIC_PASCAL_H
#define MTLORA_SYNTHETIC_PASCAL_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/base/status.h"

typedef struct {
    int n;             /* images */
    uint64_t seed;
    int min_side;      /* image sides drawn in [min_side, max_side]; */
    int max_side;      /* PASCAL-like default 240..500, within 32..4096 */
    int val_every;     /* every val_every-th image goes to val.txt (default 5) */
    int threads;       /* worker threads (default 2) */
} synthetic_opts;

void synthetic_opts_default(synthetic_opts *o);

/* Creates dir and the layout above. Progress lines on stderr unless quiet. */
mt_status synthetic_pascal_write(const char *dir, const synthetic_opts *o, int quiet, char *err,
                                 size_t errlen);

#endif
