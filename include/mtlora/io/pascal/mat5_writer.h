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

/* ---- hostile forms, for the tests and the fuzz seeds ----
 * Each is a file the packer must refuse naming the file and the field;
 * libmatio reads most of them into a matvar_t that would crash or overread
 * a reader trusting it. Written uncompressed where the form needs exact
 * bytes (RAW), else with libmatio like the files above. */
typedef enum {
    MAT5_HOSTILE_STRUCT_NO_FIELD_DATA, /* RAW anno: 2 fields declared, the names cut off */
    MAT5_HOSTILE_SPARSE_LABELMAP,      /* LabelMap a sparse double matrix */
    MAT5_HOSTILE_CHAR_LABELMAP,        /* LabelMap a char array (wrong class) */
    MAT5_HOSTILE_CELL_OBJECTS,         /* anno.objects a cell array (wrong class) */
    MAT5_HOSTILE_COUNT_OVER_DATA,      /* RAW LabelMap 64x64 uint16, an empty data element */
    MAT5_HOSTILE_CLASS_INDEX_HUGE,     /* classIndex 1e12 in the first object */
    MAT5_HOSTILE_CLASS_INDEX_NAN,      /* classIndex NaN */
    MAT5_HOSTILE_CLASS_INDEX_FRACTION, /* classIndex 15.5 */
    MAT5_HOSTILE_LABELMAP_NAN,         /* LabelMap double with a NaN */
    MAT5_HOSTILE_LABELMAP_RANGE,       /* LabelMap double with 1e12 */
    MAT5_HOSTILE_V4_HUGE,              /* RAW 20-byte MAT v4 header: 16384x16384 doubles */
    MAT5_HOSTILE_STRUCT_COUNT_BOMB,    /* compressed anno: a 30000x30000 struct of 2 fields in ~100 bytes */
    MAT5_HOSTILE_COUNT
} mat5_hostile;

/* Writes form f for scene s (RAW forms ignore s and id) at path. */
mt_status mat5_write_hostile(const char *path, mat5_hostile f, const synthetic_scene *s, const char *id,
                             char *err, size_t errlen);
/* A short name of the form ("struct-no-field-data"), NULL past the last. */
const char *mat5_hostile_name(mat5_hostile f);

#endif
