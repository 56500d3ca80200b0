/* pascal_pack.h - PASCAL-Context layout -> HDF5 shards (mtlora-pack).
 *
 * Packing is restartable: shard k of a split holds the ids k*N .. k*N+N-1
 * of ImageSets/Context/<split>.txt; a shard already present with exactly
 * those ids is kept, others are written through the atomic writer and
 * appear under their final name only when complete. The split's manifest
 * (<split>.manifest) is written last, so a reader knows the split is whole.
 * Both functions print their progress and errors (naming the file and the
 * record) on stderr and return 0 on success, 1 on bad data or I/O errors. */
#ifndef MTLORA_PASCAL_PACK_H
#define MTLORA_PASCAL_PACK_H

#include <stdint.h>

/* src: the PASCAL layout; out: the shard directory (created); tasks: a
 * SHARD_* mask; resize: resize labels of another size to the image's. */
int pascal_pack_split(const char *src, const char *out, const char *split, int64_t shard_size, int tasks,
                      int threads, int resize, int quiet);

/* Reads every record of every shard in dir: checksums, sizes, label
 * ranges, JPEG decoding; reports leftover temporaries as unfinished shards. */
int pascal_verify_shards(const char *dir);

#endif
