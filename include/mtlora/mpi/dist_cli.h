/* dist_cli.h - the parts of mtlora_dist's official command line (main.py's
 * flags, docs/guide.md) that rank 0 decides for every rank: the --pascal
 * shards and what a --resume file is. Every rank gets the same answer; a
 * failure on rank 0 is every rank's failure, never a hang. */
#ifndef MTLORA_DIST_CLI_H
#define MTLORA_DIST_CLI_H

#include <stddef.h>
#include "mtlora/base/status.h"
#include "mtlora/io/shards/pascal_cache.h"
#include "mtlora/mpi/dist.h"

/* --pascal: rank 0 runs pascal_cache_prepare(o) while the other ranks wait
 * without spinning (a non-blocking broadcast polled every 20 ms: the packer
 * gets the cores); on every rank the shard directory lands in shards, or
 * MT_ERR_IO with rank 0's reason in err. */
mt_status dist_pascal_shards(dist_ctx *d, pascal_cache_opts *o, char *shards, size_t cap, char *err,
                             size_t errlen);

/* --resume FILE: *is_checkpoint 1 when FILE has the checkpoint writer's
 * name (ckpt-*.safetensors) or rank 0 reads it as an mtlora checkpoint (a
 * safetensors file with the I64 tensor "state" that ckpt_write writes), 0
 * for anything else (a model's weights: safetensors
 * with official names, a .pth, or a file that does not open: the model
 * loader then names the problem). */
mt_status dist_resume_kind(dist_ctx *d, const char *path, int *is_checkpoint, char *err, size_t errlen);

#endif
