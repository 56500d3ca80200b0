/* dist_cli.c - rank 0's decisions for mtlora_dist's official flags, shared
 * with every rank (dist_cli.h). */
#include "mtlora/mpi/dist_cli.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mtlora/io/safetensors.h"

#define MSG_LEN 4096

/* A broadcast from rank 0 that the other ranks wait for by polling, so that
 * a long wait (packing) leaves the cores to the work. */
static mt_status bcast_polled(dist_ctx *d, void *buf, int n, char *err, size_t errlen) {
    MPI_Request req;
    int rc = MPI_Ibcast(buf, n, MPI_BYTE, 0, d->sync, &req);
    if (rc != MPI_SUCCESS) return dist_mpi_check(rc, "MPI_Ibcast", err, errlen);
    for (int done = 0;;) {
        rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return dist_mpi_check(rc, "MPI_Test (MPI_Ibcast)", err, errlen);
        if (done) return MT_OK;
        const struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

typedef struct {
    int failed;
    char text[MSG_LEN]; /* the shard directory, or the reason */
} verdict;

mt_status dist_pascal_shards(dist_ctx *d, pascal_cache_opts *o, char *shards, size_t cap, char *err,
                             size_t errlen) {
    verdict v;
    memset(&v, 0, sizeof v);
    if (d->rank == 0) {
        char why[MSG_LEN] = "";
        v.failed = pascal_cache_prepare(o, v.text, sizeof v.text, why, sizeof why) != MT_OK;
        if (v.failed) snprintf(v.text, sizeof v.text, "%s", why);
    }
    mt_status st = bcast_polled(d, &v, (int)sizeof v, err, errlen);
    if (st) return st;
    v.text[MSG_LEN - 1] = '\0';
    if (v.failed) return mt_errf(err, errlen, MT_ERR_IO, "%s", v.text);
    if (strlen(v.text) >= cap) return mt_errf(err, errlen, MT_ERR_ARG, "--pascal: the shard path is too long");
    snprintf(shards, cap, "%s", v.text);
    return MT_OK;
}

mt_status dist_resume_kind(dist_ctx *d, const char *path, int *is_checkpoint, char *err, size_t errlen) {
    int kind = 0;
    /* the checkpoint writer's own name: a checkpoint, also when it no
     * longer reads (the checkpoint loader then says what is wrong) */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const size_t len = strlen(base), ext = strlen(".safetensors");
    if (!strncmp(base, "ckpt-", 5) && len > ext && !strcmp(base + len - ext, ".safetensors")) kind = 1;
    if (d->rank == 0 && !kind) {
        st_file f;
        char why[512];
        memset(&f, 0, sizeof f);
        if (st_load_header(&f, path, why, sizeof why) == MT_OK) {
            const st_tensor *t = st_find(&f, "state");
            kind = t && t->dtype == ST_I64;
        }
        st_free(&f);
    }
    const int rc = MPI_Bcast(&kind, 1, MPI_INT, 0, d->sync);
    if (rc != MPI_SUCCESS) return dist_mpi_check(rc, "MPI_Bcast (--resume: a checkpoint?)", err, errlen);
    *is_checkpoint = kind;
    return MT_OK;
}
