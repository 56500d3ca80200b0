/* dist_timeline.c - RUN.TIMELINE across ranks (trainer_internal.h): the
 * ring of spans (src/train/trace.c) on every rank, one clock for all of
 * them, and the merged file written by rank 0 at the end.
 *
 * The clock: rank 0's. Each other rank measures its offset by ping-pong
 * with rank 0 (the exchange with the shortest round trip of 8, whose
 * midpoint is taken as the moment rank 0 read its clock), once after the
 * set-up and once at the end; spans are mapped by interpolating between
 * the two, so a drift between hosts' clocks over a long run is taken out
 * too. Between ranks of one host the offset is a few microseconds of
 * measurement error (one CLOCK_MONOTONIC).
 *
 * Nothing here runs during the steps: at the end every rank copies its
 * ring, rank 0 gathers them (MPI_Gatherv) and writes the file on a
 * background thread, waiting for it at most 30 s (a slow, full or hung
 * disk cannot hold the end of the run longer); a failed or unfinished
 * write is reported once and does not change the exit status. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtlora/base/clock.h"
#include "trainer_internal.h"

#define CLOCK_ROUNDS 8
#define CLOCK_TAG 7201
#define OUTSIDE_SPANS 64 /* set-up, and the final checkpoint and evaluation */
#define WAIT_S 30.0      /* the longest the end of a run waits for the file */

/* (local, reference) clock readings of one moment, reference = rank 0's
 * clock. Every rank calls it. */
static int clock_pair(trainer *s, double *local, double *ref) {
    const dist_ctx *d = s->d;
    int rc = MPI_SUCCESS;
    if (d->rank == 0) {
        for (int r = 1; r < d->size && rc == MPI_SUCCESS; r++)
            for (int k = 0; k < CLOCK_ROUNDS && rc == MPI_SUCCESS; k++) {
                double x;
                rc = MPI_Recv(&x, 1, MPI_DOUBLE, r, CLOCK_TAG, d->sync, MPI_STATUS_IGNORE);
                x = mt_now_s();
                if (rc == MPI_SUCCESS) rc = MPI_Send(&x, 1, MPI_DOUBLE, r, CLOCK_TAG, d->sync);
            }
        *local = *ref = mt_now_s();
    } else {
        double best = INFINITY;
        for (int k = 0; k < CLOCK_ROUNDS && rc == MPI_SUCCESS; k++) {
            double a = mt_now_s(), b = 0.0;
            rc = MPI_Send(&a, 1, MPI_DOUBLE, 0, CLOCK_TAG, d->sync);
            if (rc == MPI_SUCCESS) rc = MPI_Recv(&b, 1, MPI_DOUBLE, 0, CLOCK_TAG, d->sync, MPI_STATUS_IGNORE);
            const double c = mt_now_s();
            if (c - a < best) best = c - a, *local = 0.5 * (a + c), *ref = b;
        }
    }
    if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Send/MPI_Recv (timeline clock)");
    return 0;
}

/* Rank 0, before any span is kept: can `path` be written? A FIFO or a
 * character device is written as a stream; anything else needs a
 * directory we can create the temporary in. */
static int path_writable(const char *path, char *why, size_t n) {
    struct stat sb;
    if (!stat(path, &sb)) {
        if (S_ISDIR(sb.st_mode)) return snprintf(why, n, "it is a directory"), 0;
        if (S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode)) return 1;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    if (stat(dir, &sb)) return snprintf(why, n, "%.2000s: %s", dir, strerror(errno)), 0;
    if (!S_ISDIR(sb.st_mode)) return snprintf(why, n, "%.2000s: %s", dir, strerror(ENOTDIR)), 0;
    if (access(dir, W_OK | X_OK)) return snprintf(why, n, "%.2000s: %s", dir, strerror(errno)), 0;
    return 1;
}

int trainer_timeline_open(trainer *s, double t_setup) {
    const mt_config *c = &s->cfg;
    if (!c->run.timeline[0]) return 0;
    char err[TRAINER_ERRLEN], why[2100] = "";
    int ok = s->d->rank ? 1 : path_writable(c->run.timeline, why, sizeof why);
    int rc = MPI_Bcast(&ok, 1, MPI_INT, 0, s->d->sync);
    if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Bcast (timeline)");
    if (!ok) {
        if (s->d->rank == 0) {
            fprintf(stderr, "mtlora_dist: timeline: RUN.TIMELINE %s cannot be written (%s): training goes on "
                            "without a timeline\n", c->run.timeline, why);
            fflush(stderr);
        }
        return 0;
    }
    /* a step's spans: per micro-batch data, forward, loss, backward and its
     * parts (decoders, each stage, the embedding); each bucket; the wait,
     * clipping, AdamW, the step, a report, an evaluation, a checkpoint */
    const int acc = c->accumulation_steps > 0 ? c->accumulation_steps : 1;
    const long per_step = (long)acc * (4 + c->nstages + 2) + buckets_count(s->buckets) + 16;
    mt_trace *t = NULL;
    if (per_step > 1000000 || mt_trace_create(&t, c->run.timeline_steps, (int)per_step, OUTSIDE_SPANS, err, sizeof err))
        return trainer_fail(s, per_step > 1000000 ? "timeline: too many spans per step" : err);
    double local, ref;
    if (clock_pair(s, &local, &ref)) return 1;
    mt_trace_set_clock(t, 0, local, ref);
    if (train_state_set_trace(&s->ts, t, err, sizeof err)) {
        mt_trace_free(t);
        return trainer_fail(s, err);
    }
    buckets_set_trace(s->buckets, t);
    mt_trace_add(t, MT_SPAN_SETUP, MT_TRACE_TID_MAIN, t_setup, mt_now_s(), 0, 0);
    return 0;
}

void trainer_timeline_steps_done(trainer *s) {
    /* --bench's back-to-back reductions after the loop are not the steps' */
    buckets_set_trace(s->buckets, NULL);
    mt_trace_outside(s->ts.trace);
}

int trainer_evaluate_traced(trainer *s, long step, int epoch) {
    const double t0 = mt_now_s();
    const int rc = trainer_evaluate(s, step, epoch);
    mt_trace_add(s->ts.trace, MT_SPAN_EVAL, MT_TRACE_TID_MAIN, t0, mt_now_s(), (int)step, 0);
    return rc;
}

/* The wait for the file (MTLORA_TIMELINE_WAIT: a test hook, seconds). */
static double wait_limit(void) {
    const char *v = getenv("MTLORA_TIMELINE_WAIT");
    const double w = v ? atof(v) : WAIT_S;
    return w > 0 && w < 3600 ? w : WAIT_S;
}

int trainer_timeline_close(trainer *s) {
    mt_trace *t = s->ts.trace;
    if (!t) return 0;
    const dist_ctx *d = s->d;
    const char *path = s->cfg.run.timeline;
    watchdog_mark(&s->wd, "gathering the timeline");
    buckets_set_trace(s->buckets, NULL);
    char err[TRAINER_ERRLEN];
    train_state_set_trace(&s->ts, NULL, err, sizeof err);
    double local, ref;
    if (clock_pair(s, &local, &ref)) return 1;
    mt_trace_set_clock(t, 1, local, ref);
    /* this rank's spans, on rank 0's clock (an allocation failure sends none) */
    mt_span *mine = malloc(sizeof(mt_span) * (mt_trace_capacity(t) + 1));
    int n = mine ? (int)mt_trace_collect(t, mine) : 0;
    long dropped = mt_trace_dropped(t), all_dropped = 0;
    mt_trace_free(t);
    int *counts = NULL, *displs = NULL, ok = 1;
    mt_span *all = NULL;
    mt_trace_rank *ranks = NULL;
    int rc = MPI_Reduce(&dropped, &all_dropped, 1, MPI_LONG, MPI_SUM, 0, d->sync);
    if (rc == MPI_SUCCESS && d->rank == 0) {
        counts = malloc(sizeof(int) * (size_t)d->size);
        displs = malloc(sizeof(int) * (size_t)d->size);
        if (!counts || !displs) return trainer_fail(s, "out of memory (timeline)");
    }
    if (rc == MPI_SUCCESS) rc = MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, d->sync);
    long long total = 0;
    if (rc == MPI_SUCCESS && d->rank == 0) {
        for (int r = 0; r < d->size; r++) displs[r] = (int)total, total += counts[r];
        ok = total < (1LL << 31) - 1;
        if (ok) all = malloc(sizeof(mt_span) * (size_t)(total + 1));
        if (ok) ranks = malloc(sizeof(mt_trace_rank) * (size_t)d->size);
        ok = ok && all && ranks;
    }
    if (rc == MPI_SUCCESS) rc = MPI_Bcast(&ok, 1, MPI_INT, 0, d->sync);
    MPI_Datatype span_type = MPI_DATATYPE_NULL;
    if (rc == MPI_SUCCESS && ok) rc = MPI_Type_contiguous((int)sizeof(mt_span), MPI_BYTE, &span_type);
    if (rc == MPI_SUCCESS && ok) rc = MPI_Type_commit(&span_type);
    if (rc == MPI_SUCCESS && ok)
        rc = MPI_Gatherv(mine, n, span_type, all, counts, displs, span_type, 0, d->sync);
    if (span_type != MPI_DATATYPE_NULL) MPI_Type_free(&span_type);
    free(mine);
    if (rc != MPI_SUCCESS) {
        free(counts), free(displs), free(all), free(ranks);
        return trainer_fail_mpi(s, rc, "MPI_Gatherv (timeline)");
    }
    /* the steps are over on every rank: nothing to watch while the file is written */
    watchdog_stop(&s->wd);
    if (d->rank == 0) {
        mt_status st = MT_ERR_NOMEM;
        snprintf(err, sizeof err, "%.900s: out of memory for %lld spans", path, total);
        if (ok) {
            for (int r = 0; r < d->size; r++) ranks[r] = (mt_trace_rank){r, all + displs[r], (size_t)counts[r]};
            st = mt_trace_write_bounded(path, all, ranks, d->size, wait_limit(), err, sizeof err);
            all = NULL, ranks = NULL; /* the writer's now */
        }
        if (st) {
            fprintf(stderr, "mtlora_dist: timeline not written: %s (training is not affected)\n", err);
        } else if (!s->R.quiet) {
            report_line_break(&s->R);
            printf("timeline: %s (%d ranks, %lld spans of the last %d updates at most%s); open it in "
                   "https://ui.perfetto.dev or chrome://tracing\n", path, d->size, total,
                   s->cfg.run.timeline_steps, all_dropped ? ", some dropped: a step's slot was full" : "");
        }
        fflush(stdout);
        fflush(stderr);
    }
    free(counts), free(displs), free(all), free(ranks);
    return 0;
}
