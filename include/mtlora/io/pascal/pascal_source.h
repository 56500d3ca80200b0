/* pascal_source.h - reads one image of the PASCAL-Context multi-task layout
 * (as scale-lab/MTLoRA data/mtl_ds.py PASCALContext reads it) into a shard
 * record: the JPEG's bytes, and the labels before augmentation.
 *
 *   JPEGImages/<id>.jpg
 *   semseg/VOC12/<id>.png, else semseg/pascal-context/<id>.png  (0..20, 255)
 *   human_parts/<id>.mat   anno.objects[].{classIndex, mask, parts[].{part_name, mask}}:
 *       if some object is a person (classIndex 15) with a non-empty mask, the
 *       parts of every person object are painted in file order with the
 *       official 6-part map; otherwise the map is all 0
 *   sal_distill/<id>.png   v/255 > 0.5
 *   normals_distill/<id>.png + pascal-context/trainval/<id>.mat LabelMap:
 *       kept where LabelMap is a normals-valid class (stored as PNG values
 *       plus a mask; the loader computes 2v/255 - 1)
 *   edge: thin(|Laplacian(LabelMap)| > 0)
 *
 * Every label must have the image's size. The official loader resizes a
 * mismatched label (nearest) instead; with resize_labels we do the same for
 * class maps, while normals of another size are always an error (they
 * could not be stored exactly). */
#ifndef MTLORA_PASCAL_SOURCE_H
#define MTLORA_PASCAL_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/io/shards/shard.h"
#include "mtlora/base/status.h"

/* Ids listed in ROOT/ImageSets/Context/<split>.txt (blank lines skipped). */
mt_status pascal_read_split(const char *root, const char *split, char ***ids, int64_t *n,
                            char *err, size_t errlen);
void pascal_free_ids(char **ids, int64_t n);

/* Loads image `id` and the labels of `tasks` (SHARD_* mask). Errors name the
 * file and what is wrong with it. The MAT files are read through
 * mat_reader.h (a bounds-checked accessor in a worker process);
 * *mat_failed is 1 when the failure lies in one of them (refused, or the
 * worker crashed, hit its memory cap or timed out): the packer skips such
 * a record and goes on, while any other failure stops it. */
mt_status pascal_load_record(const char *root, const char *id, int tasks, int resize_labels,
                             shard_record *r, int *mat_failed, char *err, size_t errlen);

#endif
