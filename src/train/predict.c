/* predict.c - predictions as pictures (predict.h): the validation
 * transform, each task's maps and colours, the files of one image, the
 * inputs of mtlora-predict and one batch of them. */
#include "mtlora/train/predict.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mtlora/data/augment.h"
#include "mtlora/data/label_colors.h"
#include "mtlora/data/prediction_maps.h"
#include "mtlora/io/image_panel.h"

void predict_task_image_free(predict_task_image *p) {
    if (!p) return;
    img_free(&p->value);
    img_free(&p->color);
    img_free(&p->mask);
}

mt_status predict_input(const mt_image8 *rgb, int S, float *image, char *err, size_t errlen) {
    if (!rgb || !rgb->data || rgb->c != 3 || !image)
        return mt_errf(err, errlen, MT_ERR_ARG, "predict_input: an RGB image is needed");
    aug_record rec;
    memset(&rec, 0, sizeof rec);
    rec.h = rgb->h;
    rec.w = rgb->w;
    rec.image = rgb->data;
    aug_output out;
    memset(&out, 0, sizeof out);
    out.image = image;
    mt_status st = aug_apply(&rec, NULL, S, &out);
    if (st)
        return mt_errf(err, errlen, st, "the validation transform of a %dx%d image to %dx%d failed (%s)",
                       rgb->w, rgb->h, S, S, st == MT_ERR_NOMEM ? "out of memory" : "bad size");
    return MT_OK;
}

static mt_status alloc_image(mt_image8 *im, int h, int w, int c, char *err, size_t errlen) {
    im->data = malloc((size_t)h * w * c);
    if (!im->data) return mt_errf(err, errlen, MT_ERR_NOMEM, "out of memory for a %dx%d image", w, h);
    im->h = h;
    im->w = w;
    im->c = c;
    return MT_OK;
}

mt_status predict_unnormalize(const float *image, int S, mt_image8 *rgb, char *err, size_t errlen) {
    memset(rgb, 0, sizeof *rgb);
    if (!image || S <= 0) return mt_errf(err, errlen, MT_ERR_ARG, "predict_unnormalize: no image");
    mt_status st = alloc_image(rgb, S, S, 3, err, errlen);
    if (st) return st;
    const size_t plane = (size_t)S * S;
    for (size_t p = 0; p < plane; p++)
        for (int c = 0; c < 3; c++) {
            const float v = (image[c * plane + p] * aug_imagenet_std[c] + aug_imagenet_mean[c]) * 255.0f;
            rgb->data[3 * p + c] = !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : (uint8_t)lrintf(v);
        }
    return MT_OK;
}

mt_status predict_render(const mt_config *cfg, int t, const float *logits, int h, int w,
                         predict_task_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!cfg || t < 0 || t >= cfg->ntasks || !logits || h <= 0 || w <= 0)
        return mt_errf(err, errlen, MT_ERR_ARG, "predict_render: bad task or size");
    const int S = cfg->img_size, K = cfg->num_outputs[t];
    out->kind = cfg->task_kind[t];
    snprintf(out->name, sizeof out->name, "%s", cfg->tasks[t]);
    const int rgb = out->kind == MT_TASK_NORMALS;
    mt_status st = alloc_image(&out->value, h, w, rgb ? 3 : 1, err, errlen);
    switch (out->kind) {
    case MT_TASK_SEMSEG:
    case MT_TASK_HUMAN_PARTS:
        if (!st) st = alloc_image(&out->color, h, w, 3, err, errlen);
        if (!st && (st = pred_labels(logits, K, S, h, w, out->value.data)))
            mt_errf(err, errlen, st, "%s: labels at %dx%d: out of memory", out->name, w, h);
        if (!st) label_colorize(out->value.data, (size_t)h * w, out->color.data);
        break;
    case MT_TASK_SAL:
    case MT_TASK_EDGE:
        if (!st && out->kind == MT_TASK_SAL) st = alloc_image(&out->mask, h, w, 1, err, errlen);
        if (!st && (st = pred_probability(logits, S, h, w, out->value.data, out->mask.data)))
            mt_errf(err, errlen, st, "%s: probabilities at %dx%d: out of memory", out->name, w, h);
        break;
    case MT_TASK_NORMALS:
        if (!st && (st = pred_normals(logits, S, h, w, out->value.data)))
            mt_errf(err, errlen, st, "%s: normals at %dx%d: out of memory", out->name, w, h);
        break;
    }
    if (st) predict_task_image_free(out);
    return st;
}

static mt_status write_png(const char *dir, const char *task, const char *suffix, const mt_image8 *im,
                           int palette, char *err, size_t errlen) {
    char path[MT_PATH_MAX + 64];
    if (snprintf(path, sizeof path, "%s/%s%s.png", dir, task, suffix) >= (int)sizeof path)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: path too long", dir);
    return img_png_write(path, im, palette, err, errlen);
}

mt_status predict_write(const mt_image8 *input, const predict_task_image *tasks, int n,
                        const char *panel_path, const char *files_dir, char *err, size_t errlen) {
    if (!input || (n && !tasks) || n < 0 || n > MT_MAX_TASKS)
        return mt_errf(err, errlen, MT_ERR_ARG, "predict_write: bad arguments");
    mt_status st = MT_OK;
    if (files_dir) st = mt_make_dirs(files_dir, err, errlen);
    for (int i = 0; files_dir && !st && i < n; i++) {
        const predict_task_image *p = &tasks[i];
        if (p->color.data) { /* a label map: palette PNG and raw labels */
            st = write_png(files_dir, p->name, "", &p->value, 1, err, errlen);
            if (!st) st = write_png(files_dir, p->name, "_labels", &p->value, 0, err, errlen);
        } else {
            st = write_png(files_dir, p->name, "", &p->value, 0, err, errlen);
        }
        if (!st && p->mask.data) st = write_png(files_dir, p->name, "_mask", &p->mask, 0, err, errlen);
    }
    if (!st && panel_path) {
        mt_image8 tiles[1 + MT_MAX_TASKS];
        tiles[0] = *input;
        for (int i = 0; i < n; i++) tiles[1 + i] = tasks[i].color.data ? tasks[i].color : tasks[i].value;
        st = img_panel_write(panel_path, tiles, 1 + n, err, errlen);
    }
    return st;
}

/* ---- inputs ------------------------------------------------------------ */

static int image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    char ext[8];
    size_t k = 0;
    for (const char *p = dot + 1; *p && k + 1 < sizeof ext; p++) ext[k++] = (char)tolower((unsigned char)*p);
    ext[k] = '\0';
    return !strcmp(ext, "jpg") || !strcmp(ext, "jpeg") || !strcmp(ext, "png");
}

static int by_path(const void *a, const void *b) {
    return strcmp(((const predict_file *)a)->path, ((const predict_file *)b)->path);
}

typedef struct {
    predict_file *v;
    int n, cap;
} file_list;

static predict_file *push(file_list *l) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        predict_file *bigger = realloc(l->v, sizeof *bigger * (size_t)cap);
        if (!bigger) return NULL;
        l->v = bigger;
        l->cap = cap;
    }
    predict_file *f = &l->v[l->n++];
    memset(f, 0, sizeof *f);
    return f;
}

static mt_status list_dir(file_list *l, const char *dir, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) {
        predict_file *f = push(l);
        if (!f) return mt_errf(err, errlen, MT_ERR_NOMEM, "out of memory listing %s", dir);
        snprintf(f->path, sizeof f->path, "%s", dir);
        snprintf(f->why, sizeof f->why, "%s: cannot list the directory (%s)", dir, strerror(errno));
        return MT_OK;
    }
    const int first = l->n;
    mt_status st = MT_OK;
    for (struct dirent *e; !st && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !image_name(e->d_name)) continue;
        char path[MT_PATH_MAX];
        struct stat sb;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        predict_file *f = push(l);
        if (!f) st = mt_errf(err, errlen, MT_ERR_NOMEM, "out of memory listing %s", dir);
        else snprintf(f->path, sizeof f->path, "%s", path);
    }
    closedir(d);
    if (!st) qsort(l->v + first, (size_t)(l->n - first), sizeof *l->v, by_path);
    return st;
}

/* The file name without directory and extension, unique among files[0..i). */
static void output_name(predict_file *files, int i) {
    const char *base = strrchr(files[i].path, '/');
    base = base ? base + 1 : files[i].path;
    char stem[PREDICT_NAME_LEN - 16];
    size_t len = strlen(base); /* a long name is cut */
    if (len >= sizeof stem) len = sizeof stem - 1;
    memcpy(stem, base, len);
    stem[len] = '\0';
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem) *dot = '\0';
    if (!stem[0]) snprintf(stem, sizeof stem, "image");
    snprintf(files[i].name, sizeof files[i].name, "%s", stem);
    for (int k = 2;; k++) {
        int taken = 0;
        for (int j = 0; j < i && !taken; j++) taken = !strcmp(files[j].name, files[i].name);
        if (!taken) return;
        snprintf(files[i].name, sizeof files[i].name, "%s-%d", stem, k);
    }
}

mt_status predict_list_inputs(const char *const *args, int nargs, predict_file **files, int *n,
                              char *err, size_t errlen) {
    file_list l = {0};
    mt_status st = MT_OK;
    for (int a = 0; !st && a < nargs; a++) {
        struct stat sb;
        if (stat(args[a], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            st = list_dir(&l, args[a], err, errlen);
        } else {
            predict_file *f = push(&l);
            if (!f) st = mt_errf(err, errlen, MT_ERR_NOMEM, "out of memory for the inputs");
            else snprintf(f->path, sizeof f->path, "%s", args[a]);
        }
    }
    if (st) {
        free(l.v);
        return st;
    }
    for (int i = 0; i < l.n; i++) output_name(l.v, i);
    *files = l.v;
    *n = l.n;
    return MT_OK;
}

/* ---- one batch ----------------------------------------------------------- */

static mt_status write_one(const predict_opts *o, const predict_file *f, const mt_image8 *rgb,
                           const predict_task_image *outs, int n, char *err, size_t errlen) {
    char panel[MT_PATH_MAX + PREDICT_NAME_LEN + 8], dir[MT_PATH_MAX + PREDICT_NAME_LEN + 8];
    snprintf(panel, sizeof panel, "%s/%s.png", o->out_dir, f->name);
    snprintf(dir, sizeof dir, "%s/%s", o->out_dir, f->name);
    return predict_write(rgb, outs, n, panel, dir, err, errlen);
}

mt_status predict_batch(mt_model *m, mt_ctx *ctx, const predict_opts *o, const predict_file *files, int n,
                        int *ok, char (*msg)[PREDICT_MSG_LEN], char *err, size_t errlen) {
    const mt_config *c = o->cfg;
    const int S = c->img_size;
    const size_t per = (size_t)3 * S * S;
    int sel[MT_MAX_TASKS], nsel = 0;
    for (int t = 0; t < c->ntasks; t++)
        if (o->tasks & (1u << t)) sel[nsel++] = t;
    mt_image8 *rgb = calloc((size_t)n, sizeof *rgb);
    float *images = malloc(sizeof(float) * per * (size_t)n);
    int *slot = malloc(sizeof(int) * (size_t)n);
    predict_task_image *outs = calloc((size_t)n * (nsel ? nsel : 1), sizeof *outs);
    if (!rgb || !images || !slot || !outs) {
        free(rgb), free(images), free(slot), free(outs);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "out of memory for a batch of %d images", n);
    }
    /* read and transform, in parallel over the files */
    #pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < n; i++) {
        ok[i] = 0;
        msg[i][0] = '\0';
        if (files[i].why[0]) {
            snprintf(msg[i], PREDICT_MSG_LEN, "%s", files[i].why);
            continue;
        }
        if (img_read_rgb(files[i].path, &rgb[i], msg[i], PREDICT_MSG_LEN)) continue;
        char e[PREDICT_MSG_LEN];
        if (predict_input(&rgb[i], S, images + per * (size_t)i, e, sizeof e)) {
            mt_errf(msg[i], PREDICT_MSG_LEN, MT_ERR_IO, "%s: %s", files[i].path, e);
            img_free(&rgb[i]);
            continue;
        }
        ok[i] = 1;
    }
    int B = 0; /* the readable ones, packed to the front */
    for (int i = 0; i < n; i++) {
        slot[i] = ok[i] ? B : -1;
        if (ok[i]) {
            if (B != i) memmove(images + per * (size_t)B, images + per * (size_t)i, per * sizeof(float));
            B++;
        }
    }
    mt_status st = MT_OK;
    if (B > 0 && mt_model_forward(m, ctx, images, B, 0, 0))
        st = mt_errf(err, errlen, MT_ERR_ARG, "%s", mt_ctx_error(ctx));
    if (!st && B > 0) {
        /* each task of each image, then each image's files, in parallel */
        #pragma omp parallel for schedule(dynamic)
        for (int k = 0; k < n * nsel; k++) {
            const int i = k / nsel, j = k % nsel, t = sel[j];
            if (slot[i] < 0) continue;
            const size_t each = (size_t)c->num_outputs[t] * S * S;
            char e[PREDICT_MSG_LEN];
            if (predict_render(c, t, mt_model_logits(m, t) + each * (size_t)slot[i], rgb[i].h, rgb[i].w,
                               &outs[k], e, sizeof e)) {
                #pragma omp critical(predict_msg)
                {
                    if (ok[i]) mt_errf(msg[i], PREDICT_MSG_LEN, MT_ERR_IO, "%s: %s", files[i].path, e);
                    ok[i] = 0;
                }
            }
        }
        #pragma omp parallel for schedule(dynamic)
        for (int i = 0; i < n; i++) {
            char e[PREDICT_MSG_LEN];
            if (ok[i] && write_one(o, &files[i], &rgb[i], outs + (size_t)i * nsel, nsel, e, sizeof e)) {
                mt_errf(msg[i], PREDICT_MSG_LEN, MT_ERR_IO, "%s: %s", files[i].path, e);
                ok[i] = 0;
            }
        }
    }
    if (st)
        for (int i = 0; i < n; i++) ok[i] = 0;
    for (int i = 0; i < n * nsel; i++) predict_task_image_free(&outs[i]);
    for (int i = 0; i < n; i++) img_free(&rgb[i]);
    free(rgb), free(images), free(slot), free(outs);
    return st;
}
