/* dist_report.c - see dist_report.h. */
#include "mtlora/mpi/dist_report.h"

#include "mtlora/io/atomic_file.h"

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static FILE *open_append(const char *dir, const char *name, char *err, size_t errlen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "a");
    if (!f) mt_errf(err, errlen, MT_ERR_IO, "cannot open %s for appending (RUN.DIR)", path);
    return f;
}

mt_status reporter_open(reporter *R, const mt_config *c, int rank, int quiet, char progress,
                        const char *metrics_url, char *err, size_t errlen) {
    memset(R, 0, sizeof *R);
    R->quiet = quiet;
    R->tty = progress == 'b' ? 1 : progress == 'l' ? 0 : terminal_output();
    if (rank) return MT_OK;
    if (c->run.dir[0]) {
        mt_status st = mt_make_dirs(c->run.dir, err, errlen);
        if (st) return st;
        if (!(R->jsonl = open_append(c->run.dir, "metrics.jsonl", err, errlen)) ||
            !(R->csv = open_append(c->run.dir, "metrics.csv", err, errlen)) ||
            !(R->eval_csv = open_append(c->run.dir, "eval.csv", err, errlen)))
            return MT_ERR_IO;
        /* The effective configuration: saved, and printed once. */
        char path[1200];
        snprintf(path, sizeof path, "%s/config.yaml", c->run.dir);
        st = mt_config_write_yaml(c, path, err, errlen);
        if (st) return st;
        if (!quiet) {
            printf("effective configuration (saved as %s):\n", path);
            FILE *f = fopen(path, "r");
            char line[512];
            while (f && fgets(line, sizeof line, f))
                if (line[0] != '#') printf("  %s", line);
            if (f) fclose(f);
        }
    }
    if (metrics_url)
        return metrics_post_start(&R->post, metrics_url, getenv("MTLORA_METRICS_TOKEN"), 5.0, 1000, err,
                                  errlen);
    return MT_OK;
}

void reporter_close(reporter *R) {
    if (R->bar_open) putchar('\n');
    R->bar_open = 0;
    if (R->post) {
        metrics_post_stats ps = metrics_post_stop(R->post, 10.0);
        if (!R->quiet || ps.failed || ps.dropped)
            fprintf(ps.failed || ps.dropped ? stderr : stdout,
                    "metrics endpoint: %ld records posted, %ld failed, %ld dropped\n", ps.posted, ps.failed,
                    ps.dropped);
        R->post = NULL;
    }
    if (R->jsonl) fclose(R->jsonl);
    if (R->csv) fclose(R->csv);
    if (R->eval_csv) fclose(R->eval_csv);
    R->jsonl = R->csv = R->eval_csv = NULL;
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

/* A number in a record; JSON has no NaN or infinity, so those are null. */
static void set_num(json_t *o, const char *key, double v) {
    json_object_set_new(o, key, isfinite(v) ? json_real(v) : json_null());
}

/* Sends a record and frees it; a record that cannot be built (out of
 * memory) is dropped with a word, never stops training. */
static void send_record(reporter *R, json_t *rec) {
    char *text = rec ? json_dumps(rec, JSON_REAL_PRECISION(10)) : NULL;
    if (text) report_json(R, text);
    else fprintf(stderr, "mtlora_dist: a metrics record could not be built (out of memory)\n");
    free(text);
    json_decref(rec);
}

/* Step statistics reduced over ranks: loss sums, and min/max of times. */
static const char *const time_names[STEP_TIME_KINDS] = {"step_s", "compute_s", "comm_exposed_s",
                                                        "data_wait_s"};

static void print_step(reporter *R, const mt_config *c, long u, long total, int epoch, double lr,
                       const double *lsum, double denom, const double *tmin, const double *tmax,
                       double imgs, double eta, int skipped) {
    if (R->quiet) return;
    if (R->tty) { /* one updating line with a bar on a terminal */
        char bar[41];
        const int fill = total > 0 ? (int)(40.0 * (double)u / (double)total) : 40;
        for (int i = 0; i < 40; i++) bar[i] = i < fill ? '#' : '.';
        bar[40] = '\0';
        printf("\r[%s] %ld/%ld %3.0f%% loss %.4f lr %.2e %.2f img/s comm %.1f%% data %.1f%% ETA "
               "%02ld:%02ld:%02ld  ",
               bar, u, total, total ? 100.0 * u / total : 100.0, lsum[0] / denom, lr, imgs,
               tmax[TIME_STEP] > 0 ? 100.0 * tmax[TIME_COMM_EXPOSED] / tmax[TIME_STEP] : 0.0,
               tmax[TIME_STEP] > 0 ? 100.0 * tmax[TIME_DATA_WAIT] / tmax[TIME_STEP] : 0.0, (long)eta / 3600,
               ((long)eta / 60) % 60, (long)eta % 60);
        R->bar_open = 1;
    } else {
        printf("step %ld/%ld epoch %d lr %.3e loss %.4f (", u, total, epoch, lr, lsum[0] / denom);
        for (int t = 0; t < c->ntasks; t++) printf("%s%s %.4f", t ? " " : "", c->tasks[t], lsum[1 + t] / denom);
        printf(") step %.3f-%.3f s: compute %.3f-%.3f, comm exposed %.3f-%.3f, data wait %.3f-%.3f; "
               "%.2f img/s; ETA %.0f s%s\n",
               tmin[TIME_STEP], tmax[TIME_STEP], tmin[TIME_COMPUTE], tmax[TIME_COMPUTE],
               tmin[TIME_COMM_EXPOSED], tmax[TIME_COMM_EXPOSED], tmin[TIME_DATA_WAIT], tmax[TIME_DATA_WAIT],
               imgs, eta, skipped ? " (non-finite steps skipped so far: see log)" : "");
    }
    fflush(stdout);
}

mt_status log_step(reporter *R, dist_ctx *d, const mt_config *c, long u, long total, int epoch,
                   double lr, const double *loss_sum, int nloss_samples, const double *times,
                   double imgs, double elapsed, int skipped, char *err, size_t errlen) {
    double tmin[STEP_TIME_KINDS], tmax[STEP_TIME_KINDS], lsum[MT_MAX_TASKS + 1];
    mt_status st;
    if ((st = dist_mpi_check(MPI_Reduce(times, tmin, STEP_TIME_KINDS, MPI_DOUBLE, MPI_MIN, 0, d->sync),
                             "MPI_Reduce (step times, min)", err, errlen)) ||
        (st = dist_mpi_check(MPI_Reduce(times, tmax, STEP_TIME_KINDS, MPI_DOUBLE, MPI_MAX, 0, d->sync),
                             "MPI_Reduce (step times, max)", err, errlen)) ||
        (st = dist_mpi_check(MPI_Reduce(loss_sum, lsum, c->ntasks + 1, MPI_DOUBLE, MPI_SUM, 0, d->sync),
                             "MPI_Reduce (losses)", err, errlen)))
        return st;
    if (d->rank) return MT_OK;
    const double denom = (double)nloss_samples * d->size;
    const double eta = u > 0 ? elapsed / (double)u * (double)(total - u) : 0.0;
    print_step(R, c, u, total, epoch, lr, lsum, denom, tmin, tmax, imgs, eta, skipped);
    json_t *rec = json_object();
    if (rec) {
        json_object_set_new(rec, "step", json_integer(u));
        json_object_set_new(rec, "epoch", json_integer(epoch));
        set_num(rec, "lr", lr);
        set_num(rec, "loss", lsum[0] / denom);
        for (int t = 0; t < c->ntasks; t++) {
            char key[64];
            snprintf(key, sizeof key, "loss_%s", c->tasks[t]);
            set_num(rec, key, lsum[1 + t] / denom);
        }
        for (int k = 0; k < STEP_TIME_KINDS; k++) {
            char key[64];
            snprintf(key, sizeof key, "%s_min", time_names[k]);
            set_num(rec, key, tmin[k]);
            snprintf(key, sizeof key, "%s_max", time_names[k]);
            set_num(rec, key, tmax[k]);
        }
        set_num(rec, "images_per_s", imgs);
        json_object_set_new(rec, "skipped_steps", json_integer(skipped));
        json_object_set_new(rec, "ranks", json_integer(d->size));
    }
    send_record(R, rec);
    if (R->csv) {
        if (ftell(R->csv) == 0) { /* header once per file */
            fprintf(R->csv, "step,epoch,lr,loss");
            for (int t = 0; t < c->ntasks; t++) fprintf(R->csv, ",loss_%s", c->tasks[t]);
            for (int k = 0; k < STEP_TIME_KINDS; k++) fprintf(R->csv, ",%s_min,%s_max", time_names[k], time_names[k]);
            fprintf(R->csv, ",images_per_s,skipped_steps,ranks\n");
        }
        fprintf(R->csv, "%ld,%d,%.6e,%.6f", u, epoch, lr, lsum[0] / denom);
        for (int t = 0; t < c->ntasks; t++) fprintf(R->csv, ",%.6f", lsum[1 + t] / denom);
        for (int k = 0; k < STEP_TIME_KINDS; k++) fprintf(R->csv, ",%.6f,%.6f", tmin[k], tmax[k]);
        fprintf(R->csv, ",%.4f,%d,%d\n", imgs, skipped, d->size);
        fflush(R->csv);
    }
    return MT_OK;
}

void report_eval(reporter *R, const eval_record *e) {
    json_t *rec = json_object();
    if (rec) {
        json_object_set_new(rec, "eval_step", json_integer(e->step));
        json_object_set_new(rec, "epoch", json_integer(e->epoch));
        json_object_set_new(rec, "images", json_integer(e->images));
        for (int k = 0; k < e->n; k++) set_num(rec, e->name[k], e->value[k]);
        if (isfinite(e->delta_m)) set_num(rec, "delta_m", e->delta_m);
    }
    send_record(R, rec);
    if (R->eval_csv) {
        if (ftell(R->eval_csv) == 0) {
            fprintf(R->eval_csv, "eval_step,epoch,images");
            for (int k = 0; k < e->n; k++) fprintf(R->eval_csv, ",%s", e->name[k]);
            fprintf(R->eval_csv, ",delta_m\n");
        }
        fprintf(R->eval_csv, "%ld,%d,%ld", e->step, e->epoch, e->images);
        for (int k = 0; k < e->n; k++) fprintf(R->eval_csv, ",%.6f", e->value[k]);
        fprintf(R->eval_csv, ",%.6f\n", e->delta_m);
        fflush(R->eval_csv);
    }
    if (!R->quiet) {
        report_line_break(R);
        printf("eval after step %ld (epoch %d), %ld images, %.1f s:", e->step, e->epoch, e->images, e->seconds);
        for (int k = 0; k < e->n; k++) printf(" %s %.4f", e->name[k], e->value[k]);
        if (isfinite(e->delta_m)) printf(" | Delta_m %+.2f%%", 100.0 * e->delta_m);
        printf("\n");
    }
    fflush(stdout);
}
