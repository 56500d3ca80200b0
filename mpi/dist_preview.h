/* dist_preview.h - RUN.EVAL_PREVIEW: at each evaluation rank 0 writes the
 * panels of its first N validation images (dist_preview.c; called from
 * dist_eval.c). mpi/ only. */
#ifndef MTLORA_DIST_PREVIEW_H
#define MTLORA_DIST_PREVIEW_H

#include "mtlora/config/config.h"
#include "mtlora/io/shards/shard_loader.h"
#include "mtlora/model/model.h"

typedef struct {
    int left;       /* images still to write in this evaluation (0: off) */
    char dir[1100]; /* RUN.DIR/preview/step-<step, 6 digits> */
} dist_preview;

/* Before the evaluation's first batch: off unless rank 0, RUN.EVAL_PREVIEW
 * > 0 and RUN.DIR is set. */
void dist_preview_start(dist_preview *p, const mt_config *c, int rank, long step);

/* After the forward of batch b: the panel (dir/<id>.png) and each task's
 * files (dir/<id>/) of its first images while some are left. A write error
 * is printed once per run and never stops it. */
void dist_preview_batch(dist_preview *p, const mt_config *c, const mt_model *m, const shard_loader *L,
                        const loader_batch *b);

#endif
