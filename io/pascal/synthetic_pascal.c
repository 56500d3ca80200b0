/* synthetic_pascal.c - a generated stand-in for PASCAL-Context multi-task,
 * written in the official layout (see the header): file names, the split
 * files, and the worker threads that write the images.
 *
 * The pixels and labels come from the scene generator (src/data,
 * synthetic_scene.h), a pure function of each image's seed, which is drawn
 * from (options seed, index): any number of threads writes the same bytes.
 * The MATLAB files are mat5_writer.h's, the images image_codec.h's, and
 * every file goes through the atomic writer (atomic_file.h), so a file
 * under its final name is always complete. */
#include "mtlora/io/pascal/synthetic_pascal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mtlora/base/rng.h"
#include "mtlora/data/synthetic_scene.h"
#include "mtlora/io/atomic_file.h"
#include "mtlora/io/image_codec.h"
#include "mtlora/io/pascal/mat5_writer.h"

enum { SYN_JPEG_QUALITY = 90, SYN_MAX_IMAGES = 999999, SYN_MAX_THREADS = 256, SYN_ID = 32 };

/* The output folders, relative to the set's root. ImageSets/Parts is not
 * written to: the official loader caches its per-image object list there
 * and fails if the folder is missing. */
static const char *const SYN_DIRS[] = {
    "JPEGImages", "ImageSets/Context", "ImageSets/Parts", "semseg/pascal-context",
    "human_parts", "sal_distill", "normals_distill", "pascal-context/trainval",
};

/* ---- files ---------------------------------------------------------------- */

static mt_status join_path(char *out, const char *dir, const char *a, const char *b, const char *c,
                           char *err, size_t errlen) {
    int len = snprintf(out, MT_PATH_MAX, "%s/%s%s%s", dir, a, b ? b : "", c ? c : "");
    if (len < 0 || len >= MT_PATH_MAX)
        return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: path too long under %s", dir);
    return MT_OK;
}

/* An image as JPEG (quality SYN_JPEG_QUALITY) or PNG, encoded in memory
 * and then written atomically. */
enum { AS_JPEG, AS_PNG, AS_PALETTE_PNG };

static mt_status write_image(const char *path, const mt_image8 *im, int as, char *err,
                             size_t errlen) {
    uint8_t *bytes;
    size_t n;
    mt_status st = as == AS_JPEG ? img_jpeg_encode(im, SYN_JPEG_QUALITY, &bytes, &n, path, err, errlen)
                                 : img_png_encode(im, as == AS_PALETTE_PNG, &bytes, &n, path, err,
                                                  errlen);
    if (st) return st;
    st = atomic_write(path, bytes, n, err, errlen);
    free(bytes);
    return st;
}

static mt_status scene_write(const synthetic_scene *s, const char *dir, const char *id, char *err,
                             size_t errlen) {
    char path[MT_PATH_MAX];
    const mt_image8 rgb = {s->h, s->w, 3, s->rgb}, voc = {s->h, s->w, 1, s->semseg};
    const mt_image8 sal = {s->h, s->w, 1, s->sal}, nrm = {s->h, s->w, 3, s->normals};
    const struct {
        const char *sub, *ext;
        const mt_image8 *im;
        int as;
    } images[] = {
        {"JPEGImages/", ".jpg", &rgb, AS_JPEG},
        {"semseg/pascal-context/", ".png", &voc, AS_PALETTE_PNG},
        {"sal_distill/", ".png", &sal, AS_PNG},
        {"normals_distill/", ".png", &nrm, AS_PNG},
    };
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++) {
        mt_status st = join_path(path, dir, images[i].sub, id, images[i].ext, err, errlen);
        if (!st) st = write_image(path, images[i].im, images[i].as, err, errlen);
        if (st) return st;
    }
    mt_status st = join_path(path, dir, "pascal-context/trainval/", id, ".mat", err, errlen);
    if (!st) st = mat5_write_labelmap(path, s, err, errlen);
    if (!st) st = join_path(path, dir, "human_parts/", id, ".mat", err, errlen);
    if (!st) st = mat5_write_parts(path, s, id, err, errlen);
    return st;
}

static void image_id(int index, char out[SYN_ID]) { snprintf(out, SYN_ID, "2008_%06d", index + 1); }

static int is_val(const synthetic_opts *o, int index) {
    return o->val_every > 0 && (index + 1) % o->val_every == 0;
}

/* train.txt or val.txt: the ids of that split, one per line. */
static mt_status write_split(const char *path, const synthetic_opts *o, int val, char *err,
                             size_t errlen) {
    atomic_file af;
    mt_status st = atomic_file_open(&af, path, err, errlen);
    if (st) return st;
    char id[SYN_ID];
    for (int i = 0; i < o->n; i++)
        if (is_val(o, i) == val) {
            image_id(i, id);
            fprintf(af.f, "%s\n", id);
        }
    return atomic_file_commit(&af, err, errlen); /* reports a failed fprintf too */
}

/* ---- driver ---------------------------------------------------------------- */

void synthetic_opts_default(synthetic_opts *o) {
    o->n = 100;
    o->seed = 1;
    o->min_side = 240;
    o->max_side = 500;
    o->val_every = 5;
    o->threads = 2;
}

static mt_status check_opts(const char *dir, const synthetic_opts *o, char *err, size_t errlen) {
    if (!dir || !*dir || !o) return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: no directory or options");
    if (o->n < 1 || o->n > SYN_MAX_IMAGES)
        return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: n = %d, must be 1..%d", o->n, SYN_MAX_IMAGES);
    if (o->min_side < SYNTHETIC_SCENE_MIN_SIDE || o->max_side > SYNTHETIC_SCENE_MAX_SIDE ||
        o->min_side > o->max_side)
        return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: sides %d..%d, must lie in %d..%d",
                       o->min_side, o->max_side, SYNTHETIC_SCENE_MIN_SIDE, SYNTHETIC_SCENE_MAX_SIDE);
    if (o->val_every < 0)
        return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: val_every = %d, must be >= 0", o->val_every);
    if (o->threads < 1 || o->threads > SYN_MAX_THREADS)
        return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: threads = %d, must be 1..%d", o->threads,
                       SYN_MAX_THREADS);
    return MT_OK;
}

/* Shared by the workers: the next image to make and the first failure. */
typedef struct {
    const char *dir;
    const synthetic_opts *o;
    int quiet;
    pthread_mutex_t lock;
    int next, done;
    mt_status st;
    char err[1024];
} work_queue;

static mt_status make_image(const work_queue *q, int index, char *err, size_t errlen) {
    char id[SYN_ID];
    image_id(index, id);
    synthetic_scene s;
    mt_status st = synthetic_scene_build(&s, mt_rng_bits(q->o->seed, (uint64_t)index), q->o->min_side,
                                         q->o->max_side);
    if (st)
        return mt_errf(err, errlen, st,
                       st == MT_ERR_NOMEM ? "synthetic: no memory for image %s"
                                          : "synthetic: cannot build image %s", id);
    st = scene_write(&s, q->dir, id, err, errlen);
    synthetic_scene_free(&s);
    return st;
}

static void *worker(void *arg) {
    work_queue *q = arg;
    char err[sizeof q->err];
    for (;;) {
        pthread_mutex_lock(&q->lock);
        int index = q->st ? q->o->n : q->next++;
        pthread_mutex_unlock(&q->lock);
        if (index >= q->o->n) return NULL;
        err[0] = '\0';
        mt_status st = make_image(q, index, err, sizeof err);
        pthread_mutex_lock(&q->lock);
        if (st && !q->st) {
            q->st = st;
            snprintf(q->err, sizeof q->err, "%s", err);
        } else if (!st) {
            q->done++;
            int step = q->o->n / 10 > 0 ? q->o->n / 10 : 1;
            if (!q->quiet && (q->done % step == 0 || q->done == q->o->n))
                fprintf(stderr, "synthetic: %d/%d images in %s\n", q->done, q->o->n, q->dir);
        }
        pthread_mutex_unlock(&q->lock);
    }
}

/* threads - 1 helpers plus the calling thread; if a helper cannot start,
 * the others take its share (the output does not depend on who makes what). */
static mt_status run_workers(work_queue *q) {
    pthread_t tid[SYN_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < q->o->threads && t < q->o->n; t++) {
        if (pthread_create(&tid[started], NULL, worker, q) != 0) break;
        started++;
    }
    worker(q);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    return q->st;
}

mt_status synthetic_pascal_write(const char *dir, const synthetic_opts *o, int quiet, char *err, size_t errlen) {
    mt_status st = check_opts(dir, o, err, errlen);
    if (st) return st;
    char path[MT_PATH_MAX];
    for (size_t i = 0; i < sizeof SYN_DIRS / sizeof SYN_DIRS[0]; i++) {
        st = join_path(path, dir, SYN_DIRS[i], NULL, NULL, err, errlen);
        if (!st) st = mt_make_dirs(path, err, errlen);
        if (st) return st;
    }
    work_queue q = {.dir = dir, .o = o, .quiet = quiet};
    if (pthread_mutex_init(&q.lock, NULL) != 0)
        return mt_errf(err, errlen, MT_ERR_NOMEM, "synthetic: cannot create a mutex");
    st = run_workers(&q);
    pthread_mutex_destroy(&q.lock);
    if (st) return mt_errf(err, errlen, st, "%s", q.err);
    /* Split files last: they never list an image that was not written. */
    for (int val = 0; val < 2; val++) {
        st = join_path(path, dir, "ImageSets/Context/", val ? "val" : "train", ".txt", err, errlen);
        if (!st) st = write_split(path, o, val, err, errlen);
        if (st) return st;
    }
    return MT_OK;
}
