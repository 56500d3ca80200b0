/* json_file.h - JSON documents as files, through jansson.
 *
 * Reading is strict where a hand-edited file can go wrong: the file is
 * refused unread when it is larger than the caller's bound, duplicate
 * object keys are an error (JSON_REJECT_DUPLICATES: with them "which value
 * counts" would be up to the parser), NUL inside strings is refused, and
 * every error names the file and the line and column. Writing goes through
 * atomic_file, so a reader sees the old document or the whole new one.
 *
 * The API hands out jansson's json_t: the layers that build or check JSON
 * documents (io, model; tests/check_layers.py lists them) use jansson's own
 * accessors rather than a wrapper that would copy its API. */
#ifndef MTLORA_JSON_FILE_H
#define MTLORA_JSON_FILE_H

#include <stddef.h>
#include <jansson.h>
#include "mtlora/base/status.h"

/* Reads path (at most max_bytes) as one JSON object or array into *out (a
 * new reference: json_decref it). MT_ERR_IO when the file cannot be opened
 * or read, MT_ERR_FORMAT when it is too large or not valid JSON. */
mt_status json_file_read(const char *path, size_t max_bytes, json_t **out, char *err,
                         size_t errlen);

/* Writes doc, encoded with jansson's dump flags (JSON_INDENT(n),
 * JSON_REAL_PRECISION(n), ...) and a final newline, to path atomically. */
mt_status json_file_write(const char *path, const json_t *doc, size_t flags, char *err,
                          size_t errlen);

#endif
