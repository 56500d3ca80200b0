/* dist_report.h - what rank 0 of mtlora_dist reports, and where: a progress
 * bar or plain lines on stdout, JSON lines (metrics.jsonl) and CSV
 * (metrics.csv, eval.csv) in the run directory, the effective configuration
 * (config.yaml), and the metrics endpoint. Records are built with jansson. */
#ifndef MTLORA_DIST_REPORT_H
#define MTLORA_DIST_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "mtlora/config/config.h"
#include "mtlora/io/metrics_post.h"
#include "mtlora/mpi/dist.h"

typedef struct {
    FILE *jsonl, *csv, *eval_csv; /* RUN.DIR files (rank 0; NULL without RUN.DIR) */
    metrics_post *post;           /* the endpoint (NULL: none) */
    int quiet, tty, bar_open;
} reporter;

/* Step times kept per rank and reduced (min / max) at each log record. */
enum { TIME_STEP, TIME_COMPUTE, TIME_COMM_EXPOSED, TIME_DATA_WAIT, STEP_TIME_KINDS };

/* Rank 0: creates RUN.DIR, opens its record files for appending, writes
 * and (unless quiet) prints config.yaml, starts the endpoint (metrics_url
 * may be NULL; the bearer token is read from MTLORA_METRICS_TOKEN). Other
 * ranks: only the display settings. progress: 'b' bar, 'l' lines, 0 auto. */
mt_status reporter_open(reporter *R, const mt_config *c, int rank, int quiet, char progress,
                        const char *metrics_url, char *err, size_t errlen);
/* Ends the bar line, stops the endpoint (reporting what it dropped), closes
 * the files. */
void reporter_close(reporter *R);

/* Whether the user watches a terminal (see dist_report.c). */
int terminal_output(void);
/* Ends an open progress bar line before a line that must stay. */
void report_line_break(reporter *R);
/* One JSON record (a compact object text) to metrics.jsonl and the endpoint. */
void report_json(reporter *R, const char *json);

/* A training record: every rank calls it (it reduces over d->sync); rank 0
 * writes it. times: (STEP_TIME_KINDS,) mean seconds per step on this rank;
 * loss_sum: (1 + ntasks,) total and per-task sums over nloss_samples
 * micro-batches. */
mt_status log_step(reporter *R, dist_ctx *d, const mt_config *c, long u, long total, int epoch,
                   double lr, const double *loss_sum, int nloss_samples, const double *times,
                   double imgs, double elapsed, int skipped, char *err, size_t errlen);

/* One evaluation record: the scores (names "semseg mIoU", ...) and Delta_m
 * (NaN: not computable) to the JSON lines, eval.csv and stdout. */
typedef struct {
    long step;
    int epoch;
    long images;
    double seconds;
    int n;
    char name[64][48];
    double value[64];
    double delta_m;
} eval_record;
void report_eval(reporter *R, const eval_record *e);

#endif
