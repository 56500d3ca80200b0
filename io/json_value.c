/* json_value.c - comparing and showing jansson values (json_value.h). */
#include "mtlora/io/json_value.h"

#include <stdlib.h>
#include <string.h>

int json_same(const json_t *a, const json_t *b) {
    if (!a || !b) return a == b;
    if (json_is_number(a) || json_is_number(b))
        return json_is_number(a) && json_is_number(b) && json_number_value(a) == json_number_value(b);
    if (json_typeof(a) != json_typeof(b)) return 0;
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b)) return 0;
        const char *key;
        json_t *va;
        /* json_object_foreach takes a non-const object; it only reads it */
        json_object_foreach((json_t *)a, key, va)
            if (!json_same(va, json_object_get(b, key))) return 0;
        return 1;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_same(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    }
    return json_equal(a, b);
}

void json_show(const json_t *v, size_t flags, char *out, size_t cap) {
    if (!cap) return;
    /* Without JSON_INDENT and JSON_COMPACT jansson writes one line with
     * ", " and ": " between items. */
    char *s = v ? json_dumps(v, (flags & ~(size_t)(JSON_MAX_INDENT | JSON_COMPACT)) | JSON_ENCODE_ANY)
                : NULL;
    const char *text = s ? s : v ? "(cannot encode)" : "(absent)";
    const size_t n = strlen(text);
    if (n < cap) {
        memcpy(out, text, n + 1);
    } else if (cap > 4) {
        memcpy(out, text, cap - 4);
        memcpy(out + cap - 4, "...", 4);
    } else {
        out[0] = '\0';
    }
    free(s);
}
