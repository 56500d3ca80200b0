/* json_file.h - JSON documents as files, through jansson.
 *
 * Reading is strict to RFC 8259 where a hand-edited file can go wrong:
 * jansson's lexer refuses malformed numbers (01, 1., 1-1, 16-, -), bad
 * escapes, invalid UTF-8, control characters in strings and text after the
 * document; NUL is refused as \u0000 (JSON_ALLOW_NUL is off) and as a raw
 * byte anywhere (checked here: jansson skips one after a number);
 * duplicate object keys are an error naming the key (JSON_REJECT_DUPLICATES:
 * with them "which value counts" would be up to the parser); nesting
 * deeper than the caller's bound is refused before parsing, naming the
 * bound. Every error names the file, the line and column and, where there
 * is one, the key path ("base_model.depths[2]"). A file is refused unread
 * when it is not a regular file (a FIFO would block, a directory reads as
 * garbage) or is larger than the caller's bound. Writing goes through
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

/* Parses n bytes of text as one JSON object or array, strictly (above), at
 * most max_depth arrays and objects deep (the top-level value is depth 1),
 * into *out (a new reference: json_decref it). `name` starts every message
 * (the file, or "FILE: safetensors header"). MT_ERR_FORMAT on any refusal,
 * MT_ERR_NOMEM when jansson runs out of memory. */
mt_status json_parse_strict(const char *name, const char *text, size_t n, int max_depth, json_t **out,
                            char *err, size_t errlen);

/* Reads path (a regular file of at most max_bytes) with json_parse_strict.
 * MT_ERR_IO when the file cannot be opened or read or is not a regular
 * file, MT_ERR_FORMAT when it is too large or not valid JSON. */
mt_status json_file_read(const char *path, size_t max_bytes, int max_depth, json_t **out, char *err,
                         size_t errlen);

/* Writes doc, encoded with jansson's dump flags (JSON_INDENT(n),
 * JSON_REAL_PRECISION(n), ...) and a final newline, to path atomically. */
mt_status json_file_write(const char *path, const json_t *doc, size_t flags, char *err,
                          size_t errlen);

#endif
