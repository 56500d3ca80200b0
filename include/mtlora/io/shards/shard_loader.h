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
 * With `group` > 1 (the trainer's accumulation steps) a training epoch ends
 * after the last whole group of batches: the leftover batches that cannot
 * fill an optimizer update are dropped, as the official loop zeroes their
 * gradients at the next epoch's start. Then an epoch uses the first
 * floor(N / (world * batch * group)) * world * batch * group positions of
 * the permutation whatever the world size, which is what lets a run resume
 * on another number of ranks with the same global batch.
 * With `replace_bad`, a training record that fails its checks (checksum,
 * sizes, label values, JPEG: MT_ERR_FORMAT) does not end the pass: the next
 * record of this rank's order that passes takes its place (so every batch
 * keeps its size and the choice is deterministic) and the batch says so
 * (nbad, bad_msg naming the shard file and the record).
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

/* The trainer's options beyond loader_opts (loader_open_train; a separate
 * struct so that loader_opts' positional initialisers stay complete). */
typedef struct {
    int group;         /* batches per epoch a multiple of this (0, 1: no rounding) */
    int replace_bad;   /* replace a record failing its checks (see above) */
} loader_train_opts;

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
    int nbad;                  /* records that failed their checks and were replaced */
    const char *bad_msg;       /* one line each: "<shard file> record <i> (<id>): why" */
} loader_batch;

mt_status loader_open(shard_loader **L, const loader_opts *o, char *err, size_t errlen);
/* As loader_open, with t (may be NULL: all 0) for a training pass. */
mt_status loader_open_train(shard_loader **L, const loader_opts *o, const loader_train_opts *t, char *err,
                            size_t errlen);
/* The next batch; *b = NULL at the end of an evaluation pass. Errors in the
 * background thread (a corrupt record, ...) are returned here with the shard
 * and record named. */
mt_status loader_next(shard_loader *L, loader_batch **b, char *err, size_t errlen);
int64_t loader_records(const shard_loader *L);         /* N in the split */
int64_t loader_batches_per_epoch(const shard_loader *L); /* for this rank (a multiple of group) */
/* The image id of record `record` of the split (a batch's records[i]); NULL out of range. */
const char *loader_record_id(const shard_loader *L, int64_t record);
void loader_close(shard_loader *L);

#endif
