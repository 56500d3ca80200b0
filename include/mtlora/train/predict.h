/* predict.h - predictions as pictures: what mtlora-predict and the training
 * previews (RUN.EVAL_PREVIEW) share (src/train/predict.c).
 *
 * An image file goes into the model as the official validation transform
 * makes it (FixedResize to DATA.IMG_SIZE, bicubic, ToTensor, Normalize with
 * the ImageNet mean and std: aug_apply without draws); each task's logits
 * come back as 8-bit maps at the image's own size, resized the official
 * way (prediction_maps.h), coloured (label_colors.h) and written as PNG
 * files and one side-by-side panel (image_panel.h).
 *
 * The files of one image, NAME its output name:
 *   NAME.png                 the panel: the input, then each task's colour
 *                            picture in the config's task order, all at the
 *                            input's size, IMG_PANEL_GAP white columns apart
 *   NAME/semseg.png          palette PNG (VOC colour map), values = labels 0..20
 *   NAME/semseg_labels.png   8-bit gray, the label values
 *   NAME/human_parts.png, NAME/human_parts_labels.png   the same, labels 0..6
 *   NAME/sal.png             8-bit gray, 255 * probability
 *   NAME/sal_mask.png        0 / 255, probability > 0.5
 *   NAME/normals.png         RGB, (n / |n| + 1) / 2 * 255
 *   NAME/edge.png            8-bit gray, 255 * probability
 * (files under the config's task names). */
#ifndef MTLORA_PREDICT_H
#define MTLORA_PREDICT_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/base/status.h"
#include "mtlora/config/config.h"
#include "mtlora/io/atomic_file.h"
#include "mtlora/io/image_codec.h"
#include "mtlora/model/model.h"

#define PREDICT_MSG_LEN 1200
#define PREDICT_NAME_LEN 256

/* One task's pictures of one image, at h x w. */
typedef struct {
    mt_task_kind kind;
    char name[MT_TASK_NAME_LEN]; /* the config's task name: the file names */
    mt_image8 value;             /* labels (semseg, human_parts), 255 * p (sal, edge): c 1;
                                    normals: RGB, c 3 */
    mt_image8 color;             /* semseg, human_parts: VOC colours, c 3; else empty */
    mt_image8 mask;              /* sal: 0 / 255; else empty */
} predict_task_image;

void predict_task_image_free(predict_task_image *p);

/* The validation transform: rgb (h x w x 3) into image, [3, S, S]. */
mt_status predict_input(const mt_image8 *rgb, int S, float *image, char *err, size_t errlen);

/* The inverse of Normalize for a normalised [3, S, S] image (a loader
 * batch's): RGB S x S, rounded to the nearest value, clamped to 0..255. */
mt_status predict_unnormalize(const float *image, int S, mt_image8 *rgb, char *err, size_t errlen);

/* Task t of the config from its logits for one image ([K_t, S, S], S =
 * cfg->img_size) to pictures at h x w. */
mt_status predict_render(const mt_config *cfg, int t, const float *logits, int h, int w,
                         predict_task_image *out, char *err, size_t errlen);

/* Writes the panel of input and the n tasks at panel_path (NULL: none)
 * and each task's files into files_dir (created; NULL: none). A failed
 * write leaves no partial file. */
mt_status predict_write(const mt_image8 *input, const predict_task_image *tasks, int n,
                        const char *panel_path, const char *files_dir, char *err, size_t errlen);

/* ---- mtlora-predict's inputs and batches ----------------------------- */

typedef struct {
    char path[MT_PATH_MAX];
    char name[PREDICT_NAME_LEN]; /* output name: the file name without its
                                    extension, "-2", "-3", ... added when
                                    another input has it already */
    char why[PREDICT_MSG_LEN];   /* non-empty: cannot be used (a directory that
                                    cannot be listed); reported, not read */
} predict_file;

/* The inputs of the command line: a file is taken as it is (whatever its
 * name; it may turn out not to be an image), a directory gives its regular
 * files named *.jpg, *.jpeg or *.png (any case), sorted by name, not
 * recursing. *files is malloc'd (free it), *n its count. */
mt_status predict_list_inputs(const char *const *args, int nargs, predict_file **files, int *n,
                              char *err, size_t errlen);

typedef struct {
    const mt_config *cfg;
    unsigned tasks;      /* bit t: write task t of cfg */
    const char *out_dir; /* NAME.png and NAME/ go here */
} predict_opts;

/* One batch: reads files[0..n) (n <= the batch the caller chose), runs
 * the readable ones through one eval-mode forward and writes their files.
 * Per file: ok[i] 1 written, 0 skipped with the reason in msg[i] (naming
 * the file). Returns non-zero only when the model fails (err says why). */
mt_status predict_batch(mt_model *m, mt_ctx *ctx, const predict_opts *o, const predict_file *files, int n,
                        int *ok, char (*msg)[PREDICT_MSG_LEN], char *err, size_t errlen);

#endif
