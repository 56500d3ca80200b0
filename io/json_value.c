/* json_value.c - comparing and showing jansson values, locating bytes of
 * JSON text (json_value.h). */
#include "mtlora/io/json_value.h"

#include <stdio.h>
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

static int difference(const json_t *a, const json_t *b, char *path, size_t cap, const json_t **da,
                      const json_t **db) {
    if (json_same(a, b)) return 0;
    const size_t len = cap ? strnlen(path, cap) : 0;
    const char *key;
    json_t *v;
    /* json_object_foreach takes a non-const object; it only reads it */
    if (a && b && json_is_object(a) && json_is_object(b)) {
        json_object_foreach((json_t *)a, key, v) {
            if (cap) snprintf(path + len, cap - len, ".%s", key);
            if (difference(v, json_object_get(b, key), path, cap, da, db)) return 1;
        }
        json_object_foreach((json_t *)b, key, v) {
            if (json_object_get(a, key)) continue;
            if (cap) snprintf(path + len, cap - len, ".%s", key);
            *da = NULL;
            *db = v;
            return 1;
        }
    } else if (a && b && json_is_array(a) && json_is_array(b) && json_array_size(a) == json_array_size(b)) {
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (cap) snprintf(path + len, cap - len, "[%zu]", i);
            if (difference(json_array_get(a, i), json_array_get(b, i), path, cap, da, db)) return 1;
        }
    }
    if (cap) path[len] = '\0';
    *da = a;
    *db = b;
    return 1;
}

int json_first_difference(const json_t *a, const json_t *b, char *path, size_t cap,
                          const json_t **da, const json_t **db) {
    if (cap) path[0] = '\0';
    *da = a;
    *db = b;
    return difference(a, b, path, cap, da, db);
}

/* Copies text into out, cut with "..." when it does not fit. */
static void copy_cut(const char *text, char *out, size_t cap) {
    if (!cap) return;
    const size_t n = strlen(text);
    if (n < cap) {
        memcpy(out, text, n + 1);
    } else if (cap > 4) {
        memcpy(out, text, cap - 4);
        memcpy(out + cap - 4, "...", 4);
    } else {
        out[0] = '\0';
    }
}

void json_show(const json_t *v, size_t flags, char *out, size_t cap) {
    if (!cap) return;
    /* Without JSON_INDENT and JSON_COMPACT jansson writes one line with
     * ", " and ": " between items. */
    char *s = v ? json_dumps(v, (flags & ~(size_t)(JSON_MAX_INDENT | JSON_COMPACT)) | JSON_ENCODE_ANY)
                : NULL;
    copy_cut(s ? s : v ? "(cannot encode)" : "(absent)", out, cap);
    free(s);
}

/* ---- lexical scans of JSON text ------------------------------------------- */

/* The byte after the string that starts (with its quote) at byte i: past
 * the closing quote, or n when the text ends inside it. */
static size_t skip_string(const char *t, size_t n, size_t i) {
    size_t j = i + 1;
    while (j < n && t[j] != '"') j += t[j] == '\\' ? 2 : 1;
    return j < n ? j + 1 : n;
}

/* Containers recorded for a path; deeper ones are counted, shown as "...". */
#define PATH_FRAMES 64

typedef struct {
    char open;       /* '{' or '[' */
    int expect_key;  /* in an object, after '{' or ',' */
    int have_key;    /* key_off/key_len hold the key being read */
    size_t key_off, key_len;
    long index;      /* in an array, the element being read */
} path_frame;

static void append_key(char *buf, size_t cap, size_t *len, const char *key, size_t n) {
    for (size_t i = 0; i < n && *len + 1 < cap; i++) {
        const unsigned char c = (unsigned char)key[i];
        buf[(*len)++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    buf[*len] = '\0';
}

void json_text_path(const char *t, size_t n, size_t at, char *out, size_t cap) {
    path_frame fr[PATH_FRAMES];
    int depth = 0;
    if (at > n) at = n;
    for (size_t i = 0; i < at;) {
        const char c = t[i];
        path_frame *top = depth > 0 && depth <= PATH_FRAMES ? &fr[depth - 1] : NULL;
        if (c == '"') {
            const size_t end = skip_string(t, n, i);
            if (top && top->open == '{' && top->expect_key) {
                top->have_key = 1;
                top->expect_key = 0;
                top->key_off = i + 1;
                top->key_len = (end > i + 1 && end <= n && t[end - 1] == '"' ? end - 1 : end) - (i + 1);
            }
            i = end;
            continue;
        }
        if (c == '{' || c == '[') {
            if (depth < PATH_FRAMES) fr[depth] = (path_frame){c, c == '{', 0, 0, 0, 0};
            depth++;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        } else if (c == ',' && top) {
            if (top->open == '[') {
                top->index++;
            } else {
                top->expect_key = 1;
                top->have_key = 0;
            }
        }
        i++;
    }
    char buf[512];
    size_t len = 0;
    buf[0] = '\0';
    for (int d = 0; d < depth && d < PATH_FRAMES; d++) {
        if (fr[d].open == '[') {
            const int k = snprintf(buf + len, sizeof buf - len, "[%ld]", fr[d].index);
            if (k > 0) len = len + (size_t)k < sizeof buf ? len + (size_t)k : sizeof buf - 1;
        } else if (fr[d].have_key) {
            if (len && len + 1 < sizeof buf) buf[len++] = '.';
            append_key(buf, sizeof buf, &len, t + fr[d].key_off, fr[d].key_len);
        }
    }
    if (depth > PATH_FRAMES && len + 4 < sizeof buf) memcpy(buf + len, "...", 4);
    copy_cut(buf, out, cap);
}

int json_text_depth_exceeds(const char *t, size_t n, int max_depth, size_t *at) {
    int depth = 0;
    for (size_t i = 0; i < n;) {
        const char c = t[i];
        if (c == '"') {
            i = skip_string(t, n, i);
            continue;
        }
        if ((c == '{' || c == '[') && ++depth > max_depth) {
            *at = i;
            return 1;
        }
        if ((c == '}' || c == ']') && depth > 0) depth--;
        i++;
    }
    return 0;
}

void json_text_line_column(const char *t, size_t n, size_t at, int *line, int *column) {
    int l = 1, c = 1;
    for (size_t i = 0; i < at && i < n; i++) {
        if (t[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *column = c;
}
