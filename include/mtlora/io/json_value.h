/* json_value.h - comparing and showing jansson values, and locating a
 * byte of JSON text for messages.
 *
 * jansson's json_equal tells the integer 4 from the real 4.0; a document a
 * person or another tool wrote may use either for the same number, so
 * json_same compares numbers by value. json_show is for messages that
 * quote a value ("field "r" is [5, 4], but ... implies [4, 4]").
 *
 * jansson's errors give a line, a column and a byte position but not where
 * in the document that is; json_text_path names it ("base_model.depths[2]")
 * from the text itself, and json_text_depth finds nesting deeper than a
 * bound before jansson recurses into it (jansson's own bound is 2048 and
 * its message does not say what was wrong). Both are lexical scans that
 * skip strings: they work on invalid JSON too, up to the byte asked for. */
#ifndef MTLORA_JSON_VALUE_H
#define MTLORA_JSON_VALUE_H

#include <stddef.h>
#include <jansson.h>

/* 1 when a and b are the same value: objects by key in any order, arrays
 * element by element, numbers by value (integer or real), the rest as
 * json_equal. NULL equals only NULL. */
int json_same(const json_t *a, const json_t *b);

/* When a and b differ (json_same is 0), the path below them of the first
 * difference (".key", "[i]", ".a[2].b"; "" when they differ at the top)
 * into path, and the two differing values into *da, *db (either may be
 * NULL: a key present on one side only). Returns 1 when they differ. */
int json_first_difference(const json_t *a, const json_t *b, char *path, size_t cap,
                          const json_t **da, const json_t **db);

/* v on one line (", " and ": " between items) encoded with the dump flags
 * (JSON_REAL_PRECISION(n), ...), cut to fit cap with "..." at the end;
 * "(absent)" for NULL. */
void json_show(const json_t *v, size_t flags, char *out, size_t cap);

/* The key path of the value being read at byte `at` of text (n bytes):
 * keys joined by '.', array indexes as [i]; "" at the top level. Bytes
 * outside printable ASCII in keys are shown as '?', and a long path is cut
 * with "...". */
void json_text_path(const char *text, size_t n, size_t at, char *out, size_t cap);

/* 1 when an array or object of text is nested deeper than max_depth (the
 * top-level value is depth 1); *at is the byte of the first bracket past
 * the bound. */
int json_text_depth_exceeds(const char *text, size_t n, int max_depth, size_t *at);

/* 1-based line and column (in bytes) of byte `at` of text. */
void json_text_line_column(const char *text, size_t n, size_t at, int *line, int *column);

#endif
