/* trace.c - the timeline's ring of spans and its trace-event JSON writer
 * (trace.h). */
#include "mtlora/train/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mtlora/io/atomic_file.h"

struct mt_trace {
    int steps, per_step, outside;
    mt_span *span;   /* steps * per_step, then outside */
    int *n;          /* spans held per slot (steps + 1: the last is outside) */
    long *slot_step; /* the update each step slot holds, -1 none */
    int cur;         /* the slot being recorded */
    int32_t cur_step;
    int outside_after; /* first index in the outside slot recorded after the steps */
    long dropped;
    double local[2], ref[2];
    int nclock;
};

mt_status mt_trace_create(mt_trace **out, int steps, int per_step, int outside, char *err, size_t errlen) {
    *out = NULL;
    if (steps < 1 || per_step < 1 || outside < 1 || (double)steps * per_step > 1e9)
        return mt_errf(err, errlen, MT_ERR_ARG, "timeline: bad ring size (%d steps of %d spans)", steps, per_step);
    mt_trace *t = calloc(1, sizeof *t);
    if (!t) return mt_errf(err, errlen, MT_ERR_NOMEM, "timeline: out of memory");
    t->steps = steps;
    t->per_step = per_step;
    t->outside = outside;
    t->span = calloc((size_t)steps * per_step + (size_t)outside, sizeof(mt_span));
    t->n = calloc((size_t)steps + 1, sizeof(int));
    t->slot_step = malloc(sizeof(long) * (size_t)steps);
    if (!t->span || !t->n || !t->slot_step) {
        mt_trace_free(t);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "timeline: out of memory for %d steps of %d spans", steps,
                       per_step);
    }
    for (int k = 0; k < steps; k++) t->slot_step[k] = -1;
    t->cur = steps;
    t->cur_step = -1;
    t->outside_after = -1;
    *out = t;
    return MT_OK;
}

void mt_trace_free(mt_trace *t) {
    if (!t) return;
    free(t->span);
    free(t->n);
    free(t->slot_step);
    free(t);
}

void mt_trace_step(mt_trace *t, long u) {
    if (!t || u < 0) return;
    t->cur = (int)(u % t->steps);
    t->n[t->cur] = 0;
    t->slot_step[t->cur] = u;
    t->cur_step = (int32_t)u;
}

void mt_trace_outside(mt_trace *t) {
    if (!t) return;
    t->cur = t->steps;
    t->cur_step = -1;
    if (t->outside_after < 0) t->outside_after = t->n[t->steps];
}

void mt_trace_add(mt_trace *t, mt_span_kind kind, int tid, double t0, double t1, int a, int b) {
    if (!t) return;
    const int cap = t->cur == t->steps ? t->outside : t->per_step;
    int *n = &t->n[t->cur];
    if (*n >= cap) {
        t->dropped++;
        return;
    }
    mt_span *s = &t->span[(size_t)t->cur * t->per_step + (size_t)(*n)++];
    s->t0 = t0;
    s->t1 = t1;
    s->kind = (int32_t)kind;
    s->tid = tid;
    s->a = a;
    s->b = b;
    s->step = t->cur_step;
}

long mt_trace_dropped(const mt_trace *t) { return t ? t->dropped : 0; }

size_t mt_trace_count(const mt_trace *t) {
    size_t n = 0;
    for (int k = 0; t && k <= t->steps; k++) n += (size_t)t->n[k];
    return n;
}

size_t mt_trace_capacity(const mt_trace *t) {
    return t ? (size_t)t->steps * t->per_step + (size_t)t->outside : 0;
}

void mt_trace_set_clock(mt_trace *t, int which, double local, double ref) {
    if (!t || which < 0 || which > 1) return;
    t->local[which] = local;
    t->ref[which] = ref;
    if (t->nclock < which + 1) t->nclock = which + 1;
}

/* This rank's time on the common clock: the offset measured at the start,
 * or interpolated between the start and the end (drift). */
static double to_ref(const mt_trace *t, double x) {
    if (t->nclock == 0) return x;
    const double o0 = t->ref[0] - t->local[0];
    if (t->nclock == 1 || t->local[1] - t->local[0] < 1e-3) return x + o0;
    const double o1 = t->ref[1] - t->local[1];
    return x + o0 + (o1 - o0) * (x - t->local[0]) / (t->local[1] - t->local[0]);
}

static size_t copy_slot(const mt_trace *t, const mt_span *from, int n, mt_span *out) {
    for (int i = 0; i < n; i++) {
        out[i] = from[i];
        out[i].t0 = to_ref(t, from[i].t0);
        out[i].t1 = to_ref(t, from[i].t1);
    }
    return (size_t)n;
}

size_t mt_trace_collect(const mt_trace *t, mt_span *out) {
    if (!t) return 0;
    const mt_span *outside = t->span + (size_t)t->steps * t->per_step;
    const int n_out = t->n[t->steps], before = t->outside_after < 0 ? n_out : t->outside_after;
    size_t n = copy_slot(t, outside, before, out);
    /* the kept steps, oldest first: slots in the order of their updates */
    long newest = -1;
    for (int k = 0; k < t->steps; k++)
        if (t->slot_step[k] > newest) newest = t->slot_step[k];
    for (long u = newest - t->steps + 1; newest >= 0 && u <= newest; u++) {
        if (u < 0) continue;
        const int k = (int)(u % t->steps);
        if (t->slot_step[k] == u) n += copy_slot(t, t->span + (size_t)k * t->per_step, t->n[k], out + n);
    }
    n += copy_slot(t, outside + before, n_out - before, out + n);
    return n;
}

/* ------------------------------------------------------------ writing */

static const struct {
    const char *name, *cat;
} KIND[MT_SPAN_KINDS] = {
    [MT_SPAN_SETUP] = {"set-up", "setup"},
    [MT_SPAN_STEP] = {"step", "step"},
    [MT_SPAN_DATA] = {"data wait", "data"},
    [MT_SPAN_FORWARD] = {"forward", "compute"},
    [MT_SPAN_LOSS] = {"loss", "compute"},
    [MT_SPAN_BACKWARD] = {"backward", "compute"},
    [MT_SPAN_BACKWARD_PART] = {"backward part", "compute"},
    [MT_SPAN_GRAD_WAIT] = {"allreduce wait", "comm"},
    [MT_SPAN_CLIP] = {"grad check and clip", "optimizer"},
    [MT_SPAN_OPTIMIZER] = {"optimizer", "optimizer"},
    [MT_SPAN_ALLREDUCE] = {"allreduce", "comm"},
    [MT_SPAN_REPORT] = {"report", "report"},
    [MT_SPAN_EVAL] = {"evaluation", "eval"},
    [MT_SPAN_CHECKPOINT] = {"checkpoint", "checkpoint"},
};

static long long ns_of(double s) { return llround(s * 1e9); }

/* Microseconds with three decimals from nanoseconds (exact: nesting that
 * holds in nanoseconds holds in the file). */
static void put_us(FILE *f, long long ns) {
    if (ns < 0) {
        fputc('-', f);
        ns = -ns;
    }
    fprintf(f, "%lld.%03lld", ns / 1000, ns % 1000);
}

static void put_span(FILE *f, int pid, const mt_span *s, long long origin, int *first) {
    const int kind = s->kind >= 0 && s->kind < MT_SPAN_KINDS ? s->kind : MT_SPAN_STEP;
    char name[48];
    if (kind == MT_SPAN_BACKWARD_PART) {
        if (s->b == -1) snprintf(name, sizeof name, "backward decoders");
        else if (s->b == -2) snprintf(name, sizeof name, "backward embedding");
        else snprintf(name, sizeof name, "backward stage %d", s->b);
    } else {
        snprintf(name, sizeof name, "%s", KIND[kind].name);
    }
    const long long t0 = ns_of(s->t0) - origin, t1 = ns_of(s->t1) - origin;
    fprintf(f, "%s\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":", *first ? "" : ",", name, KIND[kind].cat);
    *first = 0;
    put_us(f, t0);
    fputs(",\"dur\":", f);
    put_us(f, t1 > t0 ? t1 - t0 : 0);
    fprintf(f, ",\"pid\":%d,\"tid\":%d,\"args\":{", pid, s->tid);
    int args = 0;
    if (s->step >= 0) fprintf(f, "\"step\":%d", s->step), args++;
    switch (kind) {
    case MT_SPAN_DATA:
    case MT_SPAN_FORWARD:
    case MT_SPAN_LOSS:
    case MT_SPAN_BACKWARD:
    case MT_SPAN_BACKWARD_PART:
        fprintf(f, "%s\"micro\":%d", args++ ? "," : "", s->a);
        break;
    case MT_SPAN_ALLREDUCE:
        fprintf(f, "%s\"bucket\":%d,\"floats\":%d", args++ ? "," : "", s->a, s->b);
        break;
    case MT_SPAN_STEP:
        if (!s->b) fprintf(f, "%s\"skipped\":true", args++ ? "," : "");
        break;
    case MT_SPAN_EVAL:
    case MT_SPAN_CHECKPOINT:
        fprintf(f, "%s\"after_update\":%d", args++ ? "," : "", s->a);
        break;
    default:
        break;
    }
    fputs("}}", f);
}

static void put_meta(FILE *f, int pid, int tid, const char *what, const char *key, const char *text, long num,
                     int *first) {
    fprintf(f, "%s\n{\"name\":\"%s\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"%s\":", *first ? "" : ",", what,
            pid, tid, key);
    *first = 0;
    if (text) fprintf(f, "\"%s\"}}", text);
    else fprintf(f, "%ld}}", num);
}

static void put_rank(FILE *f, const mt_trace_rank *r, long long origin, int *first) {
    char label[64];
    snprintf(label, sizeof label, "rank %d", r->rank);
    put_meta(f, r->rank, 0, "process_name", "name", label, 0, first);
    put_meta(f, r->rank, 0, "process_sort_index", "sort_index", NULL, r->rank, first);
    put_meta(f, r->rank, MT_TRACE_TID_MAIN, "thread_name", "name", "main", 0, first);
    put_meta(f, r->rank, MT_TRACE_TID_MAIN, "thread_sort_index", "sort_index", NULL, 0, first);
    /* one thread track per bucket that has a span (ids are dense from 0) */
    int top = -1;
    for (size_t i = 0; i < r->n; i++)
        if (r->span[i].tid > top) top = r->span[i].tid;
    for (int tid = MT_TRACE_TID_BUCKET0; tid <= top; tid++) {
        snprintf(label, sizeof label, "allreduce bucket %d", tid - MT_TRACE_TID_BUCKET0);
        put_meta(f, r->rank, tid, "thread_name", "name", label, 0, first);
        put_meta(f, r->rank, tid, "thread_sort_index", "sort_index", NULL, tid, first);
    }
    for (size_t i = 0; i < r->n; i++) put_span(f, r->rank, &r->span[i], origin, first);
}

static void put_document(FILE *f, const mt_trace_rank *ranks, int nranks) {
    long long origin = 0;
    int any = 0;
    for (int k = 0; k < nranks; k++)
        for (size_t i = 0; i < ranks[k].n; i++) {
            const long long t = ns_of(ranks[k].span[i].t0);
            if (!any || t < origin) origin = t, any = 1;
        }
    fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[", f);
    int first = 1;
    for (int k = 0; k < nranks; k++) put_rank(f, &ranks[k], origin, &first);
    fputs("\n]}\n", f);
}

mt_status mt_trace_write(const char *path, const mt_trace_rank *ranks, int nranks, char *err, size_t errlen) {
    struct stat sb;
    if (!stat(path, &sb) && (S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode))) {
        /* a stream (a FIFO, /dev/stdout): written in place, not renamed
         * over; the document is made in memory and written with write(2),
         * so no stdio stream of a blocked writer is left for exit() to
         * flush into a pipe nobody drains */
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        if (!m) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
        put_document(m, ranks, nranks);
        if (fclose(m) || !text) {
            free(text);
            return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
        }
        const int fd = open(path, O_WRONLY);
        if (fd < 0) {
            const int e = errno;
            free(text);
            return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot open: %s", path, strerror(e));
        }
        size_t done = 0;
        while (done < len) {
            const ssize_t w = write(fd, text + done, len - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            done += (size_t)w;
        }
        const int e = errno;
        close(fd);
        free(text);
        if (done < len) return mt_errf(err, errlen, MT_ERR_IO, "%s: write failed: %s", path, strerror(e ? e : EIO));
        return MT_OK;
    }
    atomic_file af;
    mt_status st = atomic_file_open(&af, path, err, errlen);
    if (st) return st;
    put_document(af.f, ranks, nranks);
    if (ferror(af.f)) {
        const int e = errno;
        atomic_file_abort(&af);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: write failed: %s", path, strerror(e ? e : EIO));
    }
    return atomic_file_commit(&af, err, errlen);
}

/* ------------------------------------------------------------ bounded writing */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, abandoned;
    mt_status st;
    char err[1024];
    char *path;
    mt_span *spans;
    mt_trace_rank *ranks;
    int nranks;
} write_job;

/* The job of a writer still running when the run gave up waiting: kept
 * reachable here (a leak checker would otherwise call it lost). */
static write_job *abandoned_job;

static void job_free(write_job *j) {
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->path);
    free(j->spans);
    free(j->ranks);
    free(j);
}

static void *writer_main(void *arg) {
    write_job *j = arg;
    char err[sizeof j->err];
    const mt_status st = mt_trace_write(j->path, j->ranks, j->nranks, err, sizeof err);
    pthread_mutex_lock(&j->mu);
    j->st = st;
    memcpy(j->err, err, sizeof err);
    j->done = 1;
    const int abandoned = j->abandoned;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (abandoned) job_free(j); /* nobody waits: the thread is detached */
    return NULL;
}

mt_status mt_trace_write_bounded(const char *path, mt_span *spans, mt_trace_rank *ranks, int nranks,
                                 double wait_s, char *err, size_t errlen) {
    write_job *j = calloc(1, sizeof *j);
    char *p = strdup(path);
    if (!j || !p) {
        free(j), free(p), free(spans), free(ranks);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    }
    j->path = p;
    j->spans = spans;
    j->ranks = ranks;
    j->nranks = nranks;
    j->err[0] = 0;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* the writer takes no signals: SIGTERM and SIGUSR1 stay the training
     * thread's, and a FIFO's reader that goes away gives EPIPE, not a
     * SIGPIPE that would end the process */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    const int rc = pthread_create(&th, NULL, writer_main, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        job_free(j);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot start the writer thread: %s", path, strerror(rc));
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    const double w = wait_s > 0 ? wait_s : 0;
    until.tv_sec += (time_t)w;
    until.tv_nsec += (long)((w - floor(w)) * 1e9);
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&j->mu);
    while (!j->done)
        if (pthread_cond_timedwait(&j->cv, &j->mu, &until) == ETIMEDOUT) break;
    if (!j->done) {
        j->abandoned = 1;
        abandoned_job = j;
        pthread_mutex_unlock(&j->mu);
        pthread_detach(th);
        return mt_errf(err, errlen, MT_ERR_IO,
                       "%s: still writing after %g s (a slow or hung disk, or a FIFO nobody reads): not "
                       "waiting any longer", path, w);
    }
    pthread_mutex_unlock(&j->mu);
    pthread_join(th, NULL);
    const mt_status st = j->st;
    if (st) snprintf(err, errlen, "%s", j->err);
    job_free(j);
    return st;
}
