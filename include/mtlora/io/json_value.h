/* json_value.h - comparing and showing jansson values.
 *
 * jansson's json_equal tells the integer 4 from the real 4.0; a document a
 * person or another tool wrote may use either for the same number, so
 * json_same compares numbers by value. json_show is for messages that
 * quote a value ("field "r" is [5, 4], but ... implies [4, 4]"). */
#ifndef MTLORA_JSON_VALUE_H
#define MTLORA_JSON_VALUE_H

#include <stddef.h>
#include <jansson.h>

/* 1 when a and b are the same value: objects by key in any order, arrays
 * element by element, numbers by value (integer or real), the rest as
 * json_equal. NULL equals only NULL. */
int json_same(const json_t *a, const json_t *b);

/* v on one line (", " and ": " between items) encoded with the dump flags
 * (JSON_REAL_PRECISION(n), ...), cut to fit cap with "..." at the end;
 * "(absent)" for NULL. */
void json_show(const json_t *v, size_t flags, char *out, size_t cap);

#endif
