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
#include "mtlora/io/pascal/mat_reader.h"
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
    int *ready; /* 0 empty, 1 ok, -1 error, -2 a MAT file failed (skip the record) */
    char (*slot_err)[ERRLEN];
    int64_t next_claim, consumed;
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int nstarted; /* workers started: each takes the MAT helper of its number */
} pack_job;

static void *pack_worker(void *arg) {
    pack_job *J = arg;
    pthread_mutex_lock(&J->mu);
    mat_helpers_bind(J->nstarted++);
    pthread_mutex_unlock(&J->mu);
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
        int mat_failed = 0;
        mt_status st = pascal_load_record(J->src, J->ids[J->todo[pos]], J->tasks, J->resize, &r,
                                          &mat_failed, err, sizeof err);
        pthread_mutex_lock(&J->mu);
        J->slot[s] = r;
        snprintf(J->slot_err[s], ERRLEN, "%s", err);
        J->ready[s] = !st ? 1 : mat_failed ? -2 : -1;
        pthread_cond_broadcast(&J->cv);
        pthread_mutex_unlock(&J->mu);
    }
}

/* Takes the record at position pos (waiting for it): 0 ok, -1 error, 1 to
 * be skipped (its MAT file failed); the message in err. */
static int take_record(pack_job *J, int64_t pos, shard_record *r, char *err) {
    const int s = (int)(pos % J->window);
    pthread_mutex_lock(&J->mu);
    while (J->ready[s] == 0) pthread_cond_wait(&J->cv, &J->mu);
    const int ready = J->ready[s];
    *r = J->slot[s];
    if (ready < 0) snprintf(err, ERRLEN, "%s", J->slot_err[s]);
    J->ready[s] = 0;
    J->consumed = pos + 1;
    pthread_cond_broadcast(&J->cv);
    pthread_mutex_unlock(&J->mu);
    return ready > 0 ? 0 : ready == -2 ? 1 : -1;
}

static void shard_name(char *out, size_t n, const char *dir, const char *split, int64_t k) {
    snprintf(out, n, "%s/%s-%05lld.h5", dir, split, (long long)k);
}

/* 1 if path is a finished shard holding exactly ids[a..b) with these tasks,
 * 0 if absent, 2 if it holds some of them in order (records skipped by an
 * earlier run: it is packed again, note in err); -1 (message in err) if
 * present but different or unreadable. */
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
    int same = in->nrecords <= b - a && in->tasks == tasks;
    int64_t j = a; /* the shard's ids, a subsequence of ids[a..b) */
    for (int64_t i = 0; same && i < in->nrecords; i++, j++) {
        const char *id = shard_record_id(f, i);
        while (j < b && strcmp(id, ids[j]) != 0) j++;
        same = j < b;
    }
    const int64_t held = in->nrecords;
    shard_close(f);
    if (!same) {
        snprintf(err, ERRLEN,
                 "%.800s: exists but holds other images or tasks than this run would write "
                 "(remove it, or pack with the same --shard-size and --tasks)",
                 path);
        return -1;
    }
    if (held == b - a) return 1;
    snprintf(err, ERRLEN, "%.800s: holds %lld of its %lld records (the others were skipped): packing it again",
             path, (long long)held, (long long)(b - a));
    return 2;
}

/* The records skipped for a failed MAT file, listed at the end. */
typedef struct {
    int64_t n, cap;
    char **lines;
} skip_list;

static int skip_add(skip_list *s, const char *id, const char *why) {
    if (s->n == s->cap) {
        const int64_t cap = s->cap ? 2 * s->cap : 16;
        char **t = realloc(s->lines, sizeof(char *) * (size_t)cap);
        if (!t) return -1;
        s->lines = t;
        s->cap = cap;
    }
    const size_t len = strlen(id) + strlen(why) + 8;
    if (!(s->lines[s->n] = malloc(len))) return -1;
    snprintf(s->lines[s->n++], len, "%s: %s", id, why);
    return 0;
}

static void skip_free(skip_list *s) {
    for (int64_t i = 0; i < s->n; i++) free(s->lines[i]);
    free(s->lines);
}

/* The split is not whole: no manifest (an earlier run's would claim it
 * is), and every skipped record with its reason. */
static void report_skipped(const char *out, const char *split, const skip_list *sk, int64_t n) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.manifest", out, split);
    if (unlink(path) != 0 && errno != ENOENT)
        fprintf(stderr, "mtlora-pack: %s: cannot remove the stale manifest: %s\n", path, strerror(errno));
    fprintf(stderr,
            "mtlora-pack: %s: skipped %lld of %lld records whose MAT files could not be read; the "
            "split's manifest is not written. Repair (or replace) these files and run again: the "
            "shards missing records are packed again, the others kept:\n",
            split, (long long)sk->n, (long long)n);
    for (int64_t i = 0; i < sk->n; i++) fprintf(stderr, "  %s\n", sk->lines[i]);
}

/* The calls into HDF5 of the writing thread, under the lock that MAT
 * workers fork under (mat_reader.h). */
static mt_status writer_open(shard_writer **w, const char *path, const char *split, int tasks,
                             const char *src, char *err) {
    mat_hdf5_lock();
    mt_status st = shard_writer_open(w, path, split, tasks, src, err, ERRLEN);
    mat_hdf5_unlock();
    return st;
}

static mt_status writer_add(shard_writer *w, const shard_record *r, char *err) {
    mat_hdf5_lock();
    mt_status st = shard_writer_add(w, r, err, ERRLEN);
    mat_hdf5_unlock();
    return st;
}

static mt_status writer_finish(shard_writer *w, char *err) {
    mat_hdf5_lock();
    mt_status st = shard_writer_finish(w, err, ERRLEN);
    mat_hdf5_unlock();
    return st;
}

static void writer_abort(shard_writer *w) {
    mat_hdf5_lock();
    shard_writer_abort(w);
    mat_hdf5_unlock();
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
    skip_list skipped = {0, 0, NULL};
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
        } else if (done == 1) {
            kept++;
        } else {
            if (done == 2 && !quiet) fprintf(stderr, "mtlora-pack: %s\n", err);
            need[k] = 1;
            for (int64_t i = a; i < b; i++) todo[ntodo++] = i;
        }
    }
    if (!rc && !quiet && kept)
        fprintf(stderr, "mtlora-pack: %s: %lld of %lld shards already packed, kept\n", split,
                (long long)kept, (long long)nshards);

    pack_job J = {src, ids, todo, ntodo, tasks, resize, 4 * threads, NULL, NULL, NULL, 0, 0, 0,
                  PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    J.slot = calloc((size_t)J.window, sizeof(shard_record));
    J.ready = calloc((size_t)J.window, sizeof(int));
    J.slot_err = calloc((size_t)J.window, ERRLEN);
    pthread_t th[64];
    int nth = 0;
    if (!rc && (!J.slot || !J.ready || !J.slot_err)) rc = 1;
    /* before any thread: the helpers fork MAT workers from a single thread */
    if (!rc && mat_helpers_start(threads, err, sizeof err)) {
        fprintf(stderr, "mtlora-pack: %s\n", err);
        rc = 1;
    }
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
        if (writer_open(&w, path, split, tasks, src, err)) {
            fprintf(stderr, "mtlora-pack: %s\n", err);
            rc = 1;
            break;
        }
        const int64_t a = k * shard_size, b = a + shard_size < n ? a + shard_size : n;
        int64_t added = 0;
        for (int64_t i = a; i < b && !rc; i++, pos++) {
            shard_record r;
            const int got = take_record(&J, pos, &r, err);
            if (got < 0) {
                fprintf(stderr, "mtlora-pack: %s: record %lld (%s): %s\n", split, (long long)i,
                        ids[i], err);
                rc = 1;
            } else if (got > 0) {
                /* a MAT file libmatio could not read costs this record only */
                fprintf(stderr, "%smtlora-pack: %s: record %lld (%s) skipped: %s\n", tty && !quiet ? "\n" : "",
                        split, (long long)i, ids[i], err);
                if (skip_add(&skipped, ids[i], err)) {
                    fprintf(stderr, "mtlora-pack: out of memory\n");
                    rc = 1;
                }
            } else {
                if (writer_add(w, &r, err)) {
                    fprintf(stderr, "mtlora-pack: %s\n", err);
                    rc = 1;
                }
                added++;
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
        if (rc || added == 0) {
            writer_abort(w); /* nothing half-written keeps a final name */
            /* every record skipped: an earlier run's partial shard goes too */
            if (!rc && unlink(path) != 0 && errno != ENOENT) {
                fprintf(stderr, "mtlora-pack: %s: cannot remove: %s\n", path, strerror(errno));
                rc = 1;
            }
            if (rc) break;
            continue;
        }
        if (writer_finish(w, err)) {
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
    mat_helpers_stop();
    for (int s = 0; s < J.window && J.ready; s++)
        if (J.ready[s]) shard_record_free(&J.slot[s]);
    if (!rc && skipped.n == 0 &&
        shard_manifest_write(out, split, tasks, nshards, n, shard_size, err, sizeof err)) {
        fprintf(stderr, "mtlora-pack: %s\n", err);
        rc = 1;
    }
    if (!rc && !quiet) {
        const double dt = mt_now_s() - t0;
        char sk[48] = "";
        if (skipped.n) snprintf(sk, sizeof sk, ", %lld skipped", (long long)skipped.n);
        printf("packed %s: %lld records (%lld new%s) in %lld shards under %s, %.1f records/s, "
               "%.1f MB of JPEG\n",
               split, (long long)(n - skipped.n), (long long)(ntodo - skipped.n), sk,
               (long long)nshards, out, ntodo ? (double)ntodo / dt : 0.0, (double)bytes / 1e6);
        fflush(stdout);
    }
    if (!rc && skipped.n) {
        report_skipped(out, split, &skipped, n);
        rc = 1;
    }
    skip_free(&skipped);
    free(J.slot);
    free(J.ready);
    free(J.slot_err);
    free(todo);
    free(need);
    pascal_free_ids(ids, n);
    return rc;
}

/* ------------------------------------------------------------- verify */

/* Bad records named per shard before the rest are only counted. */
#define VERIFY_MAX_NAMED 10

static void verify_say(const char *msg) { fprintf(stderr, "mtlora-pack: verify: %s\n", msg); }

/* Every record of an open shard: its structure, label domains and checksum
 * (shard_read), and that the JPEG decodes to the indexed size. Returns the
 * number of bad records, naming the first VERIFY_MAX_NAMED. */
static int64_t verify_records(shard_file *f) {
    const char *path = shard_file_path(f);
    const int64_t n = shard_file_info(f)->nrecords;
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        char err[ERRLEN];
        shard_record r;
        if (shard_read(f, i, SHARD_ALL_TASKS, &r, err, sizeof err)) {
            if (++bad <= VERIFY_MAX_NAMED) verify_say(err);
            continue;
        }
        mt_image8 img = {0};
        char what[4300];
        snprintf(what, sizeof what, "%s record %lld (%s) image_jpeg", path, (long long)i, r.id);
        int ok = 0;
        if (img_jpeg_decode(r.jpeg, r.jpeg_bytes, &img, what, err, sizeof err)) {
            if (bad + 1 <= VERIFY_MAX_NAMED) verify_say(err);
        } else if (img.h != r.h || img.w != r.w) {
            if (bad + 1 <= VERIFY_MAX_NAMED)
                fprintf(stderr, "mtlora-pack: verify: %s: decodes to %dx%d, dataset index/size says %dx%d\n",
                        what, img.h, img.w, r.h, r.w);
        } else {
            ok = 1;
        }
        bad += !ok;
        img_free(&img);
        shard_record_free(&r);
    }
    if (bad > VERIFY_MAX_NAMED)
        fprintf(stderr, "mtlora-pack: verify: %s: %lld bad records in all (the first %d named above)\n",
                path, (long long)bad, VERIFY_MAX_NAMED);
    return bad;
}

typedef struct {
    char **names; /* every shard some manifest lists, and the splits that failed */
    size_t n, cap;
} verify_names;

static int names_add(verify_names *v, const char *name) {
    if (v->n == v->cap) {
        const size_t cap = v->cap ? 2 * v->cap : 64;
        char **p = realloc(v->names, cap * sizeof *p);
        if (!p) return -1;
        v->names = p;
        v->cap = cap;
    }
    if (!(v->names[v->n] = strdup(name))) return -1;
    v->n++;
    return 0;
}

static void names_free(verify_names *v) {
    for (size_t k = 0; k < v->n; k++) free(v->names[k]);
    free(v->names);
    memset(v, 0, sizeof *v);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The shards of one open manifest: each listed shard exists, is a shard of
 * this split with the count and tasks the manifest says, and every record
 * reads whole; no image id twice in the split. Returns 1 on any problem. */
static int verify_listed(const char *dir, const shard_manifest *m, verify_names *listed,
                         int64_t *nrec) {
    char err[ERRLEN];
    int rc = 0, nopen = 0;
    shard_file **files = calloc((size_t)m->nshards, sizeof *files);
    if (!files) {
        fprintf(stderr, "mtlora-pack: verify: %s: out of memory\n", m->path);
        return 1;
    }
    for (int k = 0; k < m->nshards; k++) {
        const shard_manifest_entry *e = &m->shards[k];
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, e->name);
        if (names_add(listed, e->name)) {
            fprintf(stderr, "mtlora-pack: verify: %s: out of memory\n", m->path);
            rc = 1;
            break;
        }
        if (shard_open(&files[nopen], path, err, sizeof err)) {
            fprintf(stderr, "mtlora-pack: verify: %s (listed in %s line %d)\n", err, m->path, e->line);
            rc = 1;
            continue;
        }
        if (shard_check_listed(files[nopen], m, e, err, sizeof err)) {
            verify_say(err);
            rc = 1;
        }
        const int64_t bad = verify_records(files[nopen]);
        if (bad) rc = 1;
        *nrec += shard_file_info(files[nopen])->nrecords - bad;
        nopen++;
    }
    if (nopen > 0 && shard_check_unique_ids(files, nopen, err, sizeof err)) {
        verify_say(err);
        rc = 1;
    }
    for (int k = 0; k < nopen; k++) shard_close(files[k]);
    free(files);
    return rc;
}

/* One split: its manifest, then its shards. A split whose manifest cannot
 * be read is remembered (failed) so its shards are not also reported as
 * unlisted. */
static int verify_split(const char *dir, const char *split, verify_names *listed,
                        verify_names *failed, int64_t *nrec, int *nshards) {
    char err[ERRLEN];
    shard_manifest m;
    if (shard_manifest_read(dir, split, &m, err, sizeof err)) {
        verify_say(err);
        names_add(failed, split);
        return 1;
    }
    const int rc = verify_listed(dir, &m, listed, nrec);
    *nshards += m.nshards;
    shard_manifest_free(&m);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    const size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A file no manifest lists: a shard (a problem: an interrupted pack, a
 * stray copy), an unfinished temporary, or something else (both ignored). */
static int verify_unlisted(const char *dir, const char *name, const verify_names *failed) {
    for (size_t k = 0; k < failed->n; k++) {
        const size_t L = strlen(failed->names[k]);
        if (!strncmp(name, failed->names[k], L) && name[L] == '-') return 0; /* already reported */
    }
    if (strstr(name, ".tmp.") || ends_with(name, ".part")) {
        fprintf(stderr, "mtlora-pack: verify: %s/%s: an unfinished file of a pack (ignored)\n", dir,
                name);
        return 0;
    }
    if (ends_with(name, ".h5")) {
        fprintf(stderr, "mtlora-pack: verify: %s/%s: a shard no manifest lists (an interrupted pack, "
                        "or a stray file)\n", dir, name);
        return 1;
    }
    fprintf(stderr, "mtlora-pack: verify: %s/%s: not part of a packed split (ignored)\n", dir, name);
    return 0;
}

static int list_dir(const char *dir, verify_names *all) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "mtlora-pack: verify: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && names_add(all, e->d_name)) {
            fprintf(stderr, "mtlora-pack: verify: %s: out of memory\n", dir);
            rc = 1;
        }
    closedir(d);
    if (!rc && all->n) qsort(all->names, all->n, sizeof all->names[0], cmp_str);
    return rc;
}

int pascal_verify_shards(const char *dir) {
    verify_names all = {0}, listed = {0}, failed = {0};
    int rc = list_dir(dir, &all), splits = 0, nshards = 0;
    int64_t nrec = 0;
    for (size_t k = 0; k < all.n; k++) {
        const char *name = all.names[k];
        const size_t L = strlen(name);
        if (!ends_with(name, ".manifest")) continue;
        char split[256]; /* shard_manifest_read refuses a split name too long */
        snprintf(split, sizeof split, "%.*s", (int)(L - 9), name);
        rc |= verify_split(dir, split, &listed, &failed, &nrec, &nshards);
        splits++;
    }
    if (!splits && !rc) {
        fprintf(stderr, "mtlora-pack: verify: %s: no <split>.manifest (no split was packed to "
                        "completion here)\n", dir);
        rc = 1;
    }
    if (listed.n) qsort(listed.names, listed.n, sizeof listed.names[0], cmp_str);
    for (size_t k = 0; k < all.n; k++) {
        const char *name = all.names[k];
        if (ends_with(name, ".manifest") ||
            (listed.n && bsearch(&name, listed.names, listed.n, sizeof listed.names[0], cmp_str)))
            continue;
        rc |= verify_unlisted(dir, name, &failed);
    }
    if (!rc)
        printf("verified %d splits, %d shards, %lld records: manifests, all checksums, sizes and label "
               "ranges good\n", splits, nshards, (long long)nrec);
    names_free(&all);
    names_free(&listed);
    names_free(&failed);
    return rc;
}

