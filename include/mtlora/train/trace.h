/* trace.h - the timeline of a run (RUN.TIMELINE): spans kept in a
 * preallocated ring, written at the end as Chrome trace-event JSON (the
 * format of Horovod's timeline and PyTorch's profiler, opened by Perfetto
 * and chrome://tracing; docs/training.md).
 *
 * Recording is the hot path: mt_trace_add is a bounds check and a few
 * stores into memory allocated at mt_trace_create; it never allocates,
 * locks or does I/O, and a NULL ring makes every call a no-op (the
 * timeline off). The caller reads the clock (mt_now_s, clock.h). One
 * thread records (the training thread: the gradient buckets are progressed
 * from the backward's hooks on that thread too).
 *
 * The ring keeps the last `steps` optimizer updates: mt_trace_step(u)
 * starts slot u % steps, dropping what that slot held (update u - steps),
 * so a long run's timeline is bounded by steps x per_step events. Spans
 * recorded before the first mt_trace_step and after mt_trace_outside (the
 * set-up, the final checkpoint and evaluation) go into one slot of their
 * own. A slot that fills drops further spans and counts them.
 *
 * Writing (mt_trace_write) needs no MPI: the trainer (mpi/dist_timeline.c)
 * aligns every rank's clock to rank 0's, gathers the spans and hands them
 * to rank 0's writer. The JSON is printed directly, not built with jansson:
 * a run's timeline is ranks x steps x spans objects (millions on a large
 * job, hundreds of bytes each as a jansson tree), every string in it is one
 * of the fixed ASCII names below, and a stream needs no memory beyond the
 * spans themselves; jansson is also not a dependency of this layer. */
#ifndef MTLORA_TRACE_H
#define MTLORA_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/base/status.h"

/* What a span is (its name and category in the file). */
typedef enum {
    MT_SPAN_SETUP,      /* "set-up": model, weights, resume, loader (outside the ring of steps) */
    MT_SPAN_STEP,       /* "step": one optimizer update, train_step and the stop agreement; a = update */
    MT_SPAN_DATA,       /* "data wait": the next batch from the loader; a = micro-batch */
    MT_SPAN_FORWARD,    /* "forward"; a = micro-batch */
    MT_SPAN_LOSS,       /* "loss": the weighted multi-task loss and its gradient; a = micro-batch */
    MT_SPAN_BACKWARD,   /* "backward"; a = micro-batch */
    MT_SPAN_BACKWARD_PART, /* inside "backward": a = micro-batch, b = part: -1 "backward decoders",
                              s >= 0 "backward stage s", -2 "backward embedding" (the patch
                              embedding and the encoder tensors left) */
    MT_SPAN_GRAD_WAIT,  /* "allreduce wait": the buckets' wait after the backward (exposed) */
    MT_SPAN_CLIP,       /* "grad check and clip": non-finite check, global-norm clipping */
    MT_SPAN_OPTIMIZER,  /* "optimizer": AdamW */
    MT_SPAN_ALLREDUCE,  /* "allreduce": one bucket, from MPI_Iallreduce to the test or wait that
                           found it done; a = bucket, b = floats; its own thread track */
    MT_SPAN_REPORT,     /* "report": a log record (losses and times reduced over ranks) */
    MT_SPAN_EVAL,       /* "evaluation": a distributed pass over the validation split */
    MT_SPAN_CHECKPOINT, /* "checkpoint": shared, written by rank 0, agreed */
    MT_SPAN_KINDS
} mt_span_kind;

/* Thread tracks of a rank: the training thread, then one per bucket
 * (allreduces in flight overlap each other and the backward). */
#define MT_TRACE_TID_MAIN 0
#define MT_TRACE_TID_BUCKET0 1

typedef struct {
    double t0, t1;   /* start and end: seconds on this rank's clock (mt_now_s); after
                        mt_trace_collect, seconds on the common (rank 0's) clock */
    int32_t kind;    /* mt_span_kind */
    int32_t tid;
    int32_t a, b;    /* by kind (above) */
    int32_t step;    /* the update of the slot it was recorded in; -1 outside */
    int32_t pad;
} mt_span;

typedef struct mt_trace mt_trace;

/* A ring for the last `steps` updates of at most `per_step` spans each,
 * and `outside` spans before and after the steps. */
mt_status mt_trace_create(mt_trace **out, int steps, int per_step, int outside, char *err, size_t errlen);
void mt_trace_free(mt_trace *t);

/* Update u begins: its spans replace those of update u - steps. */
void mt_trace_step(mt_trace *t, long u);
/* The steps are over: further spans go into the outside slot. */
void mt_trace_outside(mt_trace *t);
/* One finished span (no-op when t is NULL). */
void mt_trace_add(mt_trace *t, mt_span_kind kind, int tid, double t0, double t1, int a, int b);

/* Spans dropped because a slot was full. */
long mt_trace_dropped(const mt_trace *t);
/* Spans held now (at most steps x per_step + outside). */
size_t mt_trace_count(const mt_trace *t);
/* Capacity in spans (what mt_trace_collect may return). */
size_t mt_trace_capacity(const mt_trace *t);

/* The clock of this rank against the common one: at local time `local`
 * the reference clock read `ref`. With one pair the offset is constant,
 * with two (which 0: the start, 1: the end of the run) it is interpolated,
 * which takes the clocks' drift out. */
void mt_trace_set_clock(mt_trace *t, int which, double local, double ref);

/* Copies the held spans into out (capacity mt_trace_capacity): the
 * outside spans recorded before the steps, the kept steps oldest first,
 * then the outside spans after them, with times converted to the common
 * clock. Returns the number copied. */
size_t mt_trace_collect(const mt_trace *t, mt_span *out);

/* One rank's collected spans. */
typedef struct {
    int rank;
    const mt_span *span;
    size_t n;
} mt_trace_rank;

/* Writes the ranks' spans as one trace-event JSON document to path: a
 * process per rank ("rank N"), thread names, "X" events with ts and dur in
 * microseconds from the earliest span of any rank. A regular file (or a new one) is written through
 * atomic_file (a reader sees no torn file); an existing FIFO or character
 * device is opened and written as a stream. 0 ok, else err says why. */
mt_status mt_trace_write(const char *path, const mt_trace_rank *ranks, int nranks, char *err, size_t errlen);

/* mt_trace_write on a background thread, waited for at most wait_s
 * seconds, so a slow or hung disk (or a FIFO nobody reads) cannot hold up
 * the end of a run. Takes ownership of `spans` (malloc'd; every rank's
 * spans are ranks[k].span pointers into it) and of `ranks`. Returns 0
 * written; MT_ERR_IO with err saying why (a failed write, or still writing
 * after wait_s: the thread is left to finish on its own). */
mt_status mt_trace_write_bounded(const char *path, mt_span *spans, mt_trace_rank *ranks, int nranks,
                                 double wait_s, char *err, size_t errlen);

#endif
