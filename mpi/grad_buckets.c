/* grad_buckets.c - the trainable-gradient buffer reduced in fixed-size
 * buckets whose MPI_Iallreduce starts as soon as the backward has finished
 * every gradient in the bucket (dist.h). Every rank runs the same backward,
 * so buckets complete, and their collectives start, in the same order on
 * every rank, as MPI requires. */
#include <stdlib.h>
#include <string.h>

#include "mtlora/base/clock.h"
#include "mtlora/mpi/dist.h"
#include "mtlora/train/trace.h"

struct grad_buckets {
    dist_ctx *d;
    float *grads;
    size_t n, per; /* elements in all, per bucket */
    int nb;
    size_t *left;  /* (nb,) elements of each bucket not yet final */
    MPI_Request *req; /* (nb,) */
    int *started;  /* (nb,) */
    int nstarted;
    int failed;              /* the first MPI error code of this reduction */
    const char *failed_call; /* and the call that returned it */
    mt_trace *trace;         /* RUN.TIMELINE: each bucket's span (NULL: off) */
    double *t_start;         /* (nb,) when its MPI_Iallreduce was issued */
    int *done;               /* (nb,) indices MPI_Testsome / MPI_Waitsome return */
};

mt_status buckets_create(grad_buckets **out, dist_ctx *d, float *grads, size_t n,
                         size_t bucket_bytes, char *err, size_t errlen) {
    *out = NULL;
    if (!grads || n == 0 || bucket_bytes < sizeof(float))
        return mt_errf(err, errlen, MT_ERR_ARG, "gradient buckets: bad buffer or bucket size");
    grad_buckets *b = calloc(1, sizeof *b);
    if (!b) return mt_errf(err, errlen, MT_ERR_NOMEM, "gradient buckets: out of memory");
    b->d = d;
    b->grads = grads;
    b->n = n;
    b->per = bucket_bytes / sizeof(float);
    if (b->per > (size_t)1 << 30) b->per = (size_t)1 << 30; /* MPI counts are int */
    b->nb = (int)((n + b->per - 1) / b->per);
    b->left = calloc((size_t)b->nb, sizeof(size_t));
    b->req = calloc((size_t)b->nb, sizeof(MPI_Request));
    b->started = calloc((size_t)b->nb, sizeof(int));
    b->t_start = calloc((size_t)b->nb, sizeof(double));
    b->done = calloc((size_t)b->nb, sizeof(int));
    if (!b->left || !b->req || !b->started || !b->t_start || !b->done) {
        buckets_free(b);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "gradient buckets: out of memory");
    }
    *out = b;
    return MT_OK;
}

void buckets_free(grad_buckets *b) {
    if (!b) return;
    free(b->left);
    free(b->req);
    free(b->started);
    free(b->t_start);
    free(b->done);
    free(b);
}

int buckets_count(const grad_buckets *b) { return b->nb; }

void buckets_set_trace(grad_buckets *b, mt_trace *t) { b->trace = t; }

static size_t bucket_len(const grad_buckets *b, int k) {
    const size_t lo = (size_t)k * b->per;
    return lo + b->per <= b->n ? b->per : b->n - lo;
}

void buckets_begin(grad_buckets *b) {
    for (int k = 0; k < b->nb; k++) {
        b->left[k] = bucket_len(b, k);
        b->req[k] = MPI_REQUEST_NULL;
        b->started[k] = 0;
    }
    b->nstarted = 0;
    b->failed = 0;
    b->failed_call = NULL;
}

static void start_bucket(grad_buckets *b, int k) {
    b->started[k] = 1;
    b->nstarted++;
    if (b->trace) b->t_start[k] = mt_now_s();
    int rc = MPI_Iallreduce(MPI_IN_PLACE, b->grads + (size_t)k * b->per, (int)bucket_len(b, k),
                            MPI_FLOAT, MPI_SUM, b->d->world, &b->req[k]);
    if (rc != MPI_SUCCESS && !b->failed) b->failed = rc, b->failed_call = "MPI_Iallreduce";
}

/* RUN.TIMELINE: the same progress and wait, one bucket at a time, so each
 * bucket's span ends when MPI reports it done (Testsome and Waitsome set
 * the finished requests to MPI_REQUEST_NULL, as Testall and Waitall do). */
static void bucket_done(grad_buckets *b, int outcount) {
    const double now = mt_now_s();
    for (int i = 0; i < outcount; i++) {
        const int k = b->done[i];
        mt_trace_add(b->trace, MT_SPAN_ALLREDUCE, MT_TRACE_TID_BUCKET0 + k, b->t_start[k], now, k,
                     (int)bucket_len(b, k));
    }
}

static void traced_test(grad_buckets *b) {
    int outcount;
    const int rc = MPI_Testsome(b->nb, b->req, &outcount, b->done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS && !b->failed) b->failed = rc, b->failed_call = "MPI_Testsome";
    if (rc == MPI_SUCCESS && outcount != MPI_UNDEFINED) bucket_done(b, outcount);
}

static int traced_wait(grad_buckets *b) {
    for (;;) {
        int outcount;
        const int rc = MPI_Waitsome(b->nb, b->req, &outcount, b->done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS || outcount == MPI_UNDEFINED) return rc;
        bucket_done(b, outcount);
    }
}

void buckets_on_ready(void *user, size_t offset, size_t count) {
    grad_buckets *b = user;
    size_t end = offset + count;
    if (end > b->n) end = b->n;
    for (size_t p = offset; p < end;) {
        const int k = (int)(p / b->per);
        const size_t bucket_end = (size_t)(k + 1) * b->per;
        const size_t take = (end < bucket_end ? end : bucket_end) - p;
        b->left[k] -= take;
        if (b->left[k] == 0 && !b->started[k]) start_bucket(b, k);
        p += take;
    }
    /* Let MPI progress what is in flight (no asynchronous progress). */
    if (b->nstarted && b->trace) {
        traced_test(b);
    } else if (b->nstarted) {
        int flag;
        const int rc = MPI_Testall(b->nb, b->req, &flag, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS && !b->failed) b->failed = rc, b->failed_call = "MPI_Testall";
    }
}

mt_status buckets_finish(grad_buckets *b, double *exposed_s, char *err, size_t errlen) {
    const double t0 = mt_now_s();
    /* Buckets never reported (none, when the model reports every tensor)
     * start here, in index order on every rank. */
    for (int k = 0; k < b->nb; k++)
        if (!b->started[k]) start_bucket(b, k);
    int rc = b->trace ? traced_wait(b) : MPI_Waitall(b->nb, b->req, MPI_STATUSES_IGNORE);
    if (exposed_s) *exposed_s = mt_now_s() - t0;
    if (b->failed) return dist_mpi_check(b->failed, b->failed_call, err, errlen);
    if (rc != MPI_SUCCESS) return dist_mpi_check(rc, "MPI_Waitall (gradient allreduce)", err, errlen);
    const float inv = 1.0f / (float)b->d->size;
    for (size_t i = 0; i < b->n; i++) b->grads[i] *= inv;
    return MT_OK;
}
