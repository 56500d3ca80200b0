/* dist_report.c - see dist_report.h. */
#include "mtlora/mpi/dist_report.h"

#include <fcntl.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Appends to a record buffer; truncation only shortens a log line. */
void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...) {
    if (*len >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    const int k = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (k > 0) *len = *len + (size_t)k < cap ? *len + (size_t)k : cap;
}

/* Whether the user watches a terminal. Open MPI gives every rank a pseudo
 * terminal even when mpirun's own output goes to a file or a pipe, so under
 * mpirun the question is asked of mpirun's output (the parent's fd 1). */
int terminal_output(void) {
    if (!isatty(1)) return 0;
    if (!getenv("OMPI_COMM_WORLD_SIZE")) return 1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/1", (int)getppid());
    const int fd = open(path, O_WRONLY | O_NOCTTY);
    if (fd < 0) return 0;
    const int tty = isatty(fd);
    close(fd);
    return tty;
}

/* A line that must not be overwritten by the progress bar. */
void report_line_break(reporter *R) {
    if (R->bar_open) {
        putchar('\n');
        R->bar_open = 0;
    }
}

/* One JSON record to the JSON-lines file and the metrics endpoint. */
void report_json(reporter *R, const char *json) {
    if (R->jsonl) {
        fprintf(R->jsonl, "%s\n", json);
        fflush(R->jsonl);
    }
    metrics_post_send(R->post, json);
}

/* Step statistics reduced over ranks: loss sums, and min/max of times. */
static const char *const time_names[NT] = {"step_s", "compute_s", "comm_exposed_s", "data_wait_s"};

void log_step(reporter *R, dist_ctx *d, const mt_config *c, long u, long total, int epoch,
              double lr, const double *loss_sum, int nloss_samples, const double *times,
              double imgs, double elapsed, int skipped) {
    double tmin[NT], tmax[NT], lsum[MT_MAX_TASKS + 1];
    MPI_Reduce(times, tmin, NT, MPI_DOUBLE, MPI_MIN, 0, d->sync);
    MPI_Reduce(times, tmax, NT, MPI_DOUBLE, MPI_MAX, 0, d->sync);
    MPI_Reduce(loss_sum, lsum, c->ntasks + 1, MPI_DOUBLE, MPI_SUM, 0, d->sync);
    if (d->rank) return;
    const double denom = (double)nloss_samples * d->size;
    const double eta = u > 0 ? elapsed / (double)u * (double)(total - u) : 0.0;
    if (!R->quiet && R->tty) { /* one updating line with a bar on a terminal */
        char bar[41];
        const int fill = total > 0 ? (int)(40.0 * (double)u / (double)total) : 40;
        for (int i = 0; i < 40; i++) bar[i] = i < fill ? '#' : '.';
        bar[40] = '\0';
        printf("\r[%s] %ld/%ld %3.0f%% loss %.4f lr %.2e %.2f img/s comm %.1f%% data %.1f%% ETA "
               "%02ld:%02ld:%02ld  ",
               bar, u, total, total ? 100.0 * u / total : 100.0, lsum[0] / denom, lr, imgs,
               tmax[T_STEP] > 0 ? 100.0 * tmax[T_COMM] / tmax[T_STEP] : 0.0,
               tmax[T_STEP] > 0 ? 100.0 * tmax[T_DATA] / tmax[T_STEP] : 0.0, (long)eta / 3600,
               ((long)eta / 60) % 60, (long)eta % 60);
        R->bar_open = 1;
        fflush(stdout);
    } else if (!R->quiet) {
        printf("step %ld/%ld epoch %d lr %.3e loss %.4f (", u, total, epoch, lr, lsum[0] / denom);
        for (int t = 0; t < c->ntasks; t++) printf("%s%s %.4f", t ? " " : "", c->tasks[t], lsum[1 + t] / denom);
        printf(") step %.3f-%.3f s: compute %.3f-%.3f, comm exposed %.3f-%.3f, data wait %.3f-%.3f; "
               "%.2f img/s; ETA %.0f s%s\n",
               tmin[T_STEP], tmax[T_STEP], tmin[T_COMPUTE], tmax[T_COMPUTE], tmin[T_COMM],
               tmax[T_COMM], tmin[T_DATA], tmax[T_DATA], imgs, eta,
               skipped ? " (non-finite steps skipped so far: see log)" : "");
        fflush(stdout);
    }
    char rec[4096];
    size_t n = 0;
    appendf(rec, sizeof rec, &n, "{\"step\": %ld, \"epoch\": %d, \"lr\": %.6e, \"loss\": %.6f", u, epoch,
            lr, lsum[0] / denom);
    for (int t = 0; t < c->ntasks; t++)
        appendf(rec, sizeof rec, &n, ", \"loss_%s\": %.6f", c->tasks[t], lsum[1 + t] / denom);
    for (int k = 0; k < NT; k++)
        appendf(rec, sizeof rec, &n, ", \"%s_min\": %.6f, \"%s_max\": %.6f", time_names[k], tmin[k],
                time_names[k], tmax[k]);
    appendf(rec, sizeof rec, &n, ", \"images_per_s\": %.4f, \"skipped_steps\": %d, \"ranks\": %d}",
            imgs, skipped, d->size);
    report_json(R, rec);
    if (R->csv) {
        if (ftell(R->csv) == 0) { /* header once per file */
            fprintf(R->csv, "step,epoch,lr,loss");
            for (int t = 0; t < c->ntasks; t++) fprintf(R->csv, ",loss_%s", c->tasks[t]);
            for (int k = 0; k < NT; k++) fprintf(R->csv, ",%s_min,%s_max", time_names[k], time_names[k]);
            fprintf(R->csv, ",images_per_s,skipped_steps,ranks\n");
        }
        fprintf(R->csv, "%ld,%d,%.6e,%.6f", u, epoch, lr, lsum[0] / denom);
        for (int t = 0; t < c->ntasks; t++) fprintf(R->csv, ",%.6f", lsum[1 + t] / denom);
        for (int k = 0; k < NT; k++) fprintf(R->csv, ",%.6f,%.6f", tmin[k], tmax[k]);
        fprintf(R->csv, ",%.4f,%d,%d\n", imgs, skipped, d->size);
        fflush(R->csv);
    }
}
