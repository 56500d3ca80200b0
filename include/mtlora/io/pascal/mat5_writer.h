/* mat5_writer.h - the two MATLAB v5 files of the PASCAL-Context layout,
 * written for a synthetic scene with libmatio (zlib-compressed variables),
 * each through the atomic writer (atomic_file.h): a reader sees the whole
 * file or none.
 *
 *   human_parts/<id>.mat       struct `anno` with fields, in this order (the
 *       official loader indexes them by position): imname (char), objects
 *       (1xN struct: class (char), classIndex (double), mask (uint8 HxW),
 *       parts (1xM struct: part_name (char), mask (uint8 HxW); 0x0 when the
 *       object shows no part)). Objects fully hidden by nearer ones are
 *       left out, as an annotator would.
 *   pascal-context/trainval/<id>.mat   LabelMap (uint16 HxW)
 *
 * The files are byte-identical for the same scene: the MAT header is fixed
 * text (matio's default holds the creation time). Errors: MT_ERR_NOMEM,
 * MT_ERR_IO, MT_ERR_ARG (NULL argument), with the path in err. */
#ifndef MTLORA_MAT5_WRITER_H
#define MTLORA_MAT5_WRITER_H

#include <stddef.h>

#include "mtlora/base/status.h"
#include "mtlora/data/synthetic_scene.h"

/* anno of scene s, its imname id. */
mt_status mat5_write_parts(const char *path, const synthetic_scene *s, const char *id, char *err,
                           size_t errlen);

/* LabelMap = s->context. */
mt_status mat5_write_labelmap(const char *path, const synthetic_scene *s, char *err,
                              size_t errlen);

#endif
