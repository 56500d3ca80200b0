/* pascal_pack.c - the packer: a PASCAL-Context split into HDF5 shards, and
 * the check of packed shards (pascal_pack.h). Worker threads read and
 * decode the source files; the calling thread is the only one that calls
 * HDF5 (Debian's build is not thread-safe). Messages go to stderr prefixed
 * "mtlora-pack:", as the program's own. */
#include "mtlora/base/clock.h"
#include "mtlora/io/pascal/pascal_pack.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mtlora/io/atomic_file.h"
#include "mtlora/io/image_codec.h"
#include "mtlora/io/pascal/pascal_source.h"
#include "mtlora/io/shards/shard.h"

#define ERRLEN 1024

/* ------------------------------------------------------------- packing */

typedef struct {
    const char *src;
    char **ids;
    int64_t *todo; /* record indices to load, in order */
    int64_t ntodo;
    int tasks, resize;
    /* ring of loaded records, slot = position % window */
    int window;
    shard_record *slot;
    int *ready; /* 0 empty, 1 ok, -1 error */
    char (*slot_err)[ERRLEN];
    int64_t next_claim, consumed;
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pack_job;

static void *pack_worker(void *arg) {
    pack_job *J = arg;
    for (;;) {
        pthread_mutex_lock(&J->mu);
        while (!J->stop && J->next_claim < J->ntodo && J->next_claim >= J->consumed + J->window)
            pthread_cond_wait(&J->cv, &J->mu);
        if (J->stop || J->next_claim >= J->ntodo) {
            pthread_mutex_unlock(&J->mu);
            return NULL;
        }
        const int64_t pos = J->next_claim++;
        pthread_mutex_unlock(&J->mu);
        const int s = (int)(pos % J->window);
        shard_record r;
        char err[ERRLEN] = "";
        mt_status st = pascal_load_record(J->src, J->ids[J->todo[pos]], J->tasks, J->resize, &r,
                                          err, sizeof err);
        pthread_mutex_lock(&J->mu);
        J->slot[s] = r;
        snprintf(J->slot_err[s], ERRLEN, "%s", err);
        J->ready[s] = st ? -1 : 1;
        pthread_cond_broadcast(&J->cv);
        pthread_mutex_unlock(&J->mu);
    }
}

/* Takes the record at position pos (waiting for it); 0 ok, -1 error (msg in err). */
static int take_record(pack_job *J, int64_t pos, shard_record *r, char *err) {
    const int s = (int)(pos % J->window);
    pthread_mutex_lock(&J->mu);
    while (J->ready[s] == 0) pthread_cond_wait(&J->cv, &J->mu);
    const int ok = J->ready[s] > 0;
    *r = J->slot[s];
    if (!ok) snprintf(err, ERRLEN, "%s", J->slot_err[s]);
    J->ready[s] = 0;
    J->consumed = pos + 1;
    pthread_cond_broadcast(&J->cv);
    pthread_mutex_unlock(&J->mu);
    return ok ? 0 : -1;
}

static void shard_name(char *out, size_t n, const char *dir, const char *split, int64_t k) {
    snprintf(out, n, "%s/%s-%05lld.h5", dir, split, (long long)k);
}

/* 1 if path is a finished shard holding exactly ids[a..b) with these tasks,
 * 0 if absent; -1 (message in err) if present but different or unreadable. */
static int shard_is_done(const char *path, char **ids, int64_t a, int64_t b, int tasks,
                         char *err) {
    if (access(path, F_OK) != 0) return 0;
    shard_file *f;
    char e[ERRLEN];
    if (shard_open(&f, path, e, sizeof e)) {
        snprintf(err, ERRLEN, "%.900s (remove it to repack)", e);
        return -1;
    }
    const shard_info *in = shard_file_info(f);
    int same = in->nrecords == b - a && in->tasks == tasks;
    for (int64_t i = 0; same && i < b - a; i++) same = strcmp(shard_record_id(f, i), ids[a + i]) == 0;
    shard_close(f);
    if (!same) {
        snprintf(err, ERRLEN,
                 "%.800s: exists but holds other images or tasks than this run would write "
                 "(remove it, or pack with the same --shard-size and --tasks)",
                 path);
        return -1;
    }
    return 1;
}

int pascal_pack_split(const char *src, const char *out, const char *split, int64_t shard_size,
                    int tasks, int threads, int resize, int quiet) {
    char err[ERRLEN] = "";
    char **ids;
    int64_t n;
    if (pascal_read_split(src, split, &ids, &n, err, sizeof err)) {
        fprintf(stderr, "mtlora-pack: %s\n", err);
        return 1;
    }
    if (mt_make_dirs(out, err, sizeof err)) {
        fprintf(stderr, "mtlora-pack: %s\n", err);
        pascal_free_ids(ids, n);
        return 1;
    }
    const int64_t nshards = (n + shard_size - 1) / shard_size;
    /* Which shards are still to be written. */
    int64_t *todo = malloc(sizeof(int64_t) * (size_t)n);
    char *need = calloc((size_t)nshards, 1);
    int64_t ntodo = 0, kept = 0;
    int rc = 0;
    if (!todo || !need) {
        fprintf(stderr, "mtlora-pack: out of memory\n");
        rc = 1;
    }
    for (int64_t k = 0; k < nshards && !rc; k++) {
        char path[4200];
        shard_name(path, sizeof path, out, split, k);
        const int64_t a = k * shard_size, b = a + shard_size < n ? a + shard_size : n;
        int done = shard_is_done(path, ids, a, b, tasks, err);
        if (done < 0) {
            fprintf(stderr, "mtlora-pack: %s\n", err);
            rc = 1;
        } else if (done) {
            kept++;
        } else {
            need[k] = 1;
            for (int64_t i = a; i < b; i++) todo[ntodo++] = i;
        }
    }
    if (!rc && !quiet && kept)
        fprintf(stderr, "mtlora-pack: %s: %lld of %lld shards already packed, kept\n", split,
                (long long)kept, (long long)nshards);

    pack_job J = {src, ids, todo, ntodo, tasks, resize, 4 * threads, NULL, NULL, NULL, 0, 0, 0,
                  PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    J.slot = calloc((size_t)J.window, sizeof(shard_record));
    J.ready = calloc((size_t)J.window, sizeof(int));
    J.slot_err = calloc((size_t)J.window, ERRLEN);
    pthread_t th[64];
    int nth = 0;
    if (!rc && (!J.slot || !J.ready || !J.slot_err)) rc = 1;
    for (; !rc && nth < threads; nth++)
        if (pthread_create(&th[nth], NULL, pack_worker, &J) != 0) {
            fprintf(stderr, "mtlora-pack: cannot start worker thread\n");
            rc = 1;
            break;
        }

    const double t0 = mt_now_s();
    double last = t0;
    int64_t pos = 0, bytes = 0;
    const int tty = isatty(2);
    for (int64_t k = 0; k < nshards && !rc; k++) {
        if (!need[k]) continue;
        char path[4200];
        shard_name(path, sizeof path, out, split, k);
        shard_writer *w;
        if (shard_writer_open(&w, path, split, tasks, src, err, sizeof err)) {
            fprintf(stderr, "mtlora-pack: %s\n", err);
            rc = 1;
            break;
        }
        const int64_t a = k * shard_size, b = a + shard_size < n ? a + shard_size : n;
        for (int64_t i = a; i < b && !rc; i++, pos++) {
            shard_record r;
            if (take_record(&J, pos, &r, err)) {
                fprintf(stderr, "mtlora-pack: %s: record %lld (%s): %s\n", split, (long long)i,
                        ids[i], err);
                rc = 1;
            } else {
                if (shard_writer_add(w, &r, err, sizeof err)) {
                    fprintf(stderr, "mtlora-pack: %s\n", err);
                    rc = 1;
                }
                bytes += (int64_t)r.jpeg_bytes;
                shard_record_free(&r);
            }
            const double t = mt_now_s();
            if (!quiet && (t - last > 1.0 || pos + 1 == ntodo)) {
                fprintf(stderr, "%s%s: %lld/%lld records, %.1f records/s, shard %lld/%lld%s",
                        tty ? "\r" : "", split, (long long)(pos + 1), (long long)ntodo,
                        (double)(pos + 1) / (t - t0), (long long)k + 1, (long long)nshards,
                        tty ? "" : "\n");
                last = t;
            }
        }
        if (rc) {
            shard_writer_abort(w); /* nothing half-written keeps a final name */
            break;
        }
        if (shard_writer_finish(w, err, sizeof err)) {
            fprintf(stderr, "mtlora-pack: %s\n", err);
            rc = 1;
        }
    }
    if (!quiet && tty && ntodo) fprintf(stderr, "\n");
    pthread_mutex_lock(&J.mu);
    J.stop = 1;
    pthread_cond_broadcast(&J.cv);
    pthread_mutex_unlock(&J.mu);
    for (int t = 0; t < nth; t++) pthread_join(th[t], NULL);
    for (int s = 0; s < J.window && J.ready; s++)
        if (J.ready[s]) shard_record_free(&J.slot[s]);
    if (!rc && shard_manifest_write(out, split, tasks, nshards, n, shard_size, err, sizeof err)) {
        fprintf(stderr, "mtlora-pack: %s\n", err);
        rc = 1;
    }
    if (!rc && !quiet) {
        const double dt = mt_now_s() - t0;
        printf("packed %s: %lld records (%lld new) in %lld shards under %s, %.1f records/s, "
               "%.1f MB of JPEG\n",
               split, (long long)n, (long long)ntodo, (long long)nshards, out,
               ntodo ? (double)ntodo / dt : 0.0, (double)bytes / 1e6);
    }
    free(J.slot);
    free(J.ready);
    free(J.slot_err);
    free(todo);
    free(need);
    pascal_free_ids(ids, n);
    return rc;
}

/* ------------------------------------------------------------- verify */

static int verify_file(const char *path, int64_t *nrec) {
    char err[ERRLEN];
    shard_file *f;
    if (shard_open(&f, path, err, sizeof err)) {
        fprintf(stderr, "mtlora-pack: verify: %s\n", err);
        return 1;
    }
    const shard_info *in = shard_file_info(f);
    int rc = 0;
    for (int64_t i = 0; i < in->nrecords && !rc; i++) {
        shard_record r;
        if (shard_read(f, i, SHARD_ALL_TASKS, &r, err, sizeof err)) {
            fprintf(stderr, "mtlora-pack: verify: %s\n", err);
            rc = 1;
            break;
        }
        mt_image8 img = {0};
        char what[4300];
        snprintf(what, sizeof what, "%s record %lld (%s) image_jpeg", path, (long long)i, r.id);
        if (img_jpeg_decode(r.jpeg, r.jpeg_bytes, &img, what, err, sizeof err)) {
            fprintf(stderr, "mtlora-pack: verify: %s\n", err);
            rc = 1;
        } else if (img.h != r.h || img.w != r.w) {
            fprintf(stderr, "mtlora-pack: verify: %s: decodes to %dx%d, index says %dx%d\n", what,
                    img.h, img.w, r.h, r.w);
            rc = 1;
        }
        img_free(&img);
        shard_record_free(&r);
    }
    *nrec += in->nrecords;
    shard_close(f);
    return rc;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int pascal_verify_shards(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "mtlora-pack: verify: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char *names[4096];
    int n = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        const size_t L = strlen(e->d_name);
        /* atomic_file's temporaries ("<name>.h5.tmp.<pid>"; ".part" from older packers) */
        if (strstr(e->d_name, ".h5.tmp.") || (L > 5 && strcmp(e->d_name + L - 5, ".part") == 0))
            fprintf(stderr, "mtlora-pack: verify: %s/%s: an unfinished shard (ignored)\n", dir, e->d_name);
        if (L > 3 && strcmp(e->d_name + L - 3, ".h5") == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    if (n == 0) {
        fprintf(stderr, "mtlora-pack: verify: %s: no .h5 shards\n", dir);
        rc = 1;
    }
    int64_t nrec = 0;
    for (int i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!rc) rc = verify_file(path, &nrec);
        free(names[i]);
    }
    if (!rc) printf("verified %d shards, %lld records: all checksums, sizes and label ranges good\n", n,
                    (long long)nrec);
    return rc;
}

