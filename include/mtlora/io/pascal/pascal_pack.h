/* pascal_pack.h - PASCAL-Context layout -> HDF5 shards (mtlora-pack).
 *
 * Packing is restartable: shard k of a split holds the ids k*N .. k*N+N-1
 * of ImageSets/Context/<split>.txt; a shard already present with exactly
 * those ids is kept, others are written through the atomic writer and
 * appear under their final name only when complete. The split's manifest
 * (<split>.manifest) is written last, so a reader knows the split is whole.
 *
 * A record whose MAT file cannot be read (refused by the accessor, or its
 * libmatio worker crashed, hit the memory cap or timed out: mat_reader.h)
 * is skipped: the pack goes on, lists every skipped record at the end,
 * writes no manifest (and removes a stale one) and returns 1. A re-run
 * keeps the whole shards and packs again those missing records, so a
 * repaired file completes the split. Any other bad record stops the pack.
 * Both functions print their progress and errors (naming the file and the
 * record) on stderr and return 0 on success, 1 on bad data or I/O errors. */
#ifndef MTLORA_PASCAL_PACK_H
#define MTLORA_PASCAL_PACK_H

#include <stdint.h>

/* src: the PASCAL layout; out: the shard directory (created); tasks: a
 * SHARD_* mask; resize: resize labels of another size to the image's. */
int pascal_pack_split(const char *src, const char *out, const char *split, int64_t shard_size, int tasks,
                      int threads, int resize, int quiet);

/* Reads each <split>.manifest in dir and checks every listed shard and
 * every record in it (checksums, sizes, label domains, JPEG decoding);
 * reports shards no manifest lists (an error) and leftover temporaries.
 * Returns the exit status: 0 clean, 1 on any problem. */
int pascal_verify_shards(const char *dir);

#endif
