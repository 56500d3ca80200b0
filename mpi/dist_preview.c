/* dist_preview.c - RUN.EVAL_PREVIEW (dist_preview.h). The images are the
 * loader's normalised S x S tensors, un-normalised for the panel's input
 * tile; the outputs are rendered at S x S (predict.h: the layout of one
 * image's files). */
#include "dist_preview.h"

#include <stdio.h>
#include <string.h>

#include "mtlora/train/predict.h"

/* Warned about a failed preview already: once per run, never stopping it. */
static int warned;

void dist_preview_start(dist_preview *p, const mt_config *c, int rank, long step) {
    /* RUN.DIR "" writes no run files, and no previews either */
    p->left = rank == 0 && c->run.eval_preview > 0 && c->run.dir[0] ? c->run.eval_preview : 0;
    if (p->left && snprintf(p->dir, sizeof p->dir, "%s/preview/step-%06ld", c->run.dir, step) >= (int)sizeof p->dir)
        p->left = 0;
}

/* An image id as a file name: '/' and a leading '.' become '_'. */
static void file_name(char *out, size_t cap, const char *id, long record) {
    if (!id || !*id) {
        snprintf(out, cap, "record-%ld", record);
        return;
    }
    snprintf(out, cap, "%s", id);
    for (char *q = out; *q; q++)
        if (*q == '/' || (q == out && *q == '.')) *q = '_';
}

static mt_status one(const mt_config *c, const mt_model *m, const loader_batch *b, int i, const char *dir,
                     const char *name, char *err, size_t errlen) {
    const int S = c->img_size;
    mt_image8 input;
    mt_status st = predict_unnormalize(b->images + (size_t)i * 3 * S * S, S, &input, err, errlen);
    if (st) return st;
    predict_task_image outs[MT_MAX_TASKS];
    memset(outs, 0, sizeof outs);
    for (int t = 0; !st && t < c->ntasks; t++) {
        const size_t per = (size_t)c->num_outputs[t] * S * S;
        st = predict_render(c, t, mt_model_logits(m, t) + per * (size_t)i, S, S, &outs[t], err, errlen);
    }
    char panel[1400], files[1400];
    snprintf(panel, sizeof panel, "%s/%s.png", dir, name);
    snprintf(files, sizeof files, "%s/%s", dir, name);
    if (!st) st = predict_write(&input, outs, c->ntasks, panel, files, err, errlen);
    for (int t = 0; t < c->ntasks; t++) predict_task_image_free(&outs[t]);
    img_free(&input);
    return st;
}

void dist_preview_batch(dist_preview *p, const mt_config *c, const mt_model *m, const shard_loader *L,
                        const loader_batch *b) {
    char err[PREDICT_MSG_LEN];
    mt_status st = mt_make_dirs(p->dir, err, sizeof err);
    for (int i = 0; !st && i < b->n && p->left > 0; i++, p->left--) {
        char name[PREDICT_NAME_LEN];
        file_name(name, sizeof name, loader_record_id(L, b->records[i]), (long)b->records[i]);
        st = one(c, m, b, i, p->dir, name, err, sizeof err);
    }
    if (st) {
        p->left = 0;
        if (!warned) {
            fprintf(stderr, "mtlora_dist: warning: RUN.EVAL_PREVIEW: %s; training goes on (further preview "
                            "errors are not reported)\n", err);
            fflush(stderr);
        }
        warned = 1;
    }
}
