/* shard_loader.h - batches for one rank from a packed split, prepared by a
 * background thread while the caller's step runs.
 *
 * Partition (as PyTorch's DistributedSampler + DataLoader(drop_last) for
 * training): each epoch the N records are permuted by (seed, epoch); the
 * first floor(N / world) * world of the permutation are dealt round-robin,
 * rank r taking positions r, r + world, ...; each rank forms
 * floor(per_rank / batch) full batches. So ranks are disjoint, of equal
 * size, and the order does not depend on threads. Evaluation: no shuffle,
 * every record once (rank r takes records r, r + world, ...), the last batch
 * may be short.
 * Augmentation draws are a pure function of (seed, epoch, record), so a
 * record is augmented the same way whichever rank or thread reads it.
 *
 * Several loaders may be open at once (train and validation); their threads
 * take turns inside HDF5 (shard.h). Other HDF5 code in the process must not
 * run while a loader is open (Debian's HDF5 is not thread-safe). */
#ifndef MTLORA_SHARD_LOADER_H
#define MTLORA_SHARD_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/base/status.h"

typedef struct shard_loader shard_loader;

typedef struct {
    const char *dir;   /* mtlora-pack output directory */
    const char *split; /* "train" or "val": reads <dir>/<split>.manifest */
    int tasks;         /* SHARD_* mask of the labels wanted */
    int rank, world;
    int batch;         /* per-rank batch size */
    int size;          /* S: output images are S x S */
    int train;         /* 1: shuffle + augmentation + drop_last; 0: evaluation */
    uint64_t seed;
    int prefetch;      /* batches prepared ahead (>= 1, default 2) */
    int64_t start_epoch, start_batch; /* resume position */
} loader_opts;

/* One batch; valid until the next loader_next / loader_close. */
typedef struct {
    int n;                     /* samples (== batch except the last eval batch) */
    int64_t epoch, index;      /* position: batch `index` of `epoch` */
    int64_t *records;          /* [n] record numbers in the split (manifest order) */
    float *images;             /* [n, 3, S, S] normalised */
    uint8_t *semseg;           /* [n, S, S], 255 ignore (NULL if not asked) */
    uint8_t *human_parts;      /* [n, S, S], 255 ignore */
    float *sal, *edge;         /* [n, S, S] 0/1 */
    float *normals;            /* [n, 3, S, S], 255 ignore */
    double wait_s;             /* how long loader_next waited for it */
} loader_batch;

mt_status loader_open(shard_loader **L, const loader_opts *o, char *err, size_t errlen);
/* The next batch; *b = NULL at the end of an evaluation pass. Errors in the
 * background thread (a corrupt record, ...) are returned here with the shard
 * and record named. */
mt_status loader_next(shard_loader *L, loader_batch **b, char *err, size_t errlen);
int64_t loader_records(const shard_loader *L);         /* N in the split */
int64_t loader_batches_per_epoch(const shard_loader *L); /* for this rank */
void loader_close(shard_loader *L);

#endif
