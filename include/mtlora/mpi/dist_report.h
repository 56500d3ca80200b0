/* dist_report.h - what rank 0 of mtlora_dist reports, and where: a progress
 * bar or plain lines on stdout, JSON lines and CSV in the run directory, and
 * the metrics endpoint (launch/). */
#ifndef MTLORA_DIST_REPORT_H
#define MTLORA_DIST_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "mtlora/config/config.h"
#include "mtlora/mpi/dist.h"
#include "mtlora/io/metrics_post.h"

typedef struct {
    FILE *jsonl, *csv, *eval_csv;
    metrics_post *post;
    int quiet, tty, bar_open;
} reporter;

/* Step times kept per rank and reduced (min / max) at each log record. */
enum { T_STEP, T_COMPUTE, T_COMM, T_DATA, NT };

/* Appends to a record buffer; truncation only shortens a log line. */
void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Whether the user watches a terminal (see dist_report.c). */
int terminal_output(void);
/* Ends an open progress bar line before a line that must stay. */
void report_line_break(reporter *R);
/* One JSON record to metrics.jsonl and the metrics endpoint. */
void report_json(reporter *R, const char *json);
/* A training record: every rank calls it (it reduces over d->sync); rank 0
 * writes it. */
void log_step(reporter *R, dist_ctx *d, const mt_config *c, long u, long total, int epoch,
              double lr, const double *loss_sum, int nloss_samples, const double *times,
              double imgs, double elapsed, int skipped);

#endif
