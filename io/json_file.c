/* json_file.c - JSON files through jansson, strictly (json_file.h). */
#include "mtlora/io/json_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtlora/io/atomic_file.h"
#include "mtlora/io/json_value.h"
#include "mtlora/io/regular_file.h"

/* The message of a jansson error: where (line, column, key path) and what. */
static mt_status parse_error(const char *name, const char *text, size_t n, const json_error_t *je,
                             char *err, size_t errlen) {
    char where[256];
    const size_t at = je->position > 0 ? (size_t)je->position : 0;
    json_text_path(text, n, at, where, sizeof where);
    switch (json_error_code(je)) {
    case json_error_out_of_memory:
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory parsing JSON", name);
    case json_error_duplicate_key:
        /* the path ends with the key just read: the second of the two */
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: key \"%s\" appears twice (line %d, column %d): a document may give a key "
                       "once", name, where, je->line, je->column);
    default:
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d%s%s)",
                       name, je->text, je->line, je->column, where[0] ? ", in " : "", where);
    }
}

mt_status json_parse_strict(const char *name, const char *text, size_t n, int max_depth, json_t **out,
                            char *err, size_t errlen) {
    *out = NULL;
    size_t at;
    /* before jansson, which recurses once per level up to 2048 and then
     * says only "maximum parsing depth reached" */
    if (json_text_depth_exceeds(text, n, max_depth, &at)) {
        char where[256];
        int line, column;
        json_text_path(text, n, at, where, sizeof where);
        json_text_line_column(text, n, at, &line, &column);
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: nested deeper than %d arrays and objects (line %d, column %d%s%s)", name,
                       max_depth, line, column, where[0] ? ", in " : "", where);
    }
    /* A raw NUL byte is never valid JSON (outside strings it is no token,
     * inside one a control character), but jansson's reader swallows one
     * that follows a number ("{\"r\": 1<NUL>}" loads as {"r": 1}): its
     * one-character lookahead buffer takes NUL for "empty". */
    const char *nul = memchr(text, '\0', n);
    if (nul) {
        char where[256];
        int line, column;
        json_text_path(text, n, (size_t)(nul - text), where, sizeof where);
        json_text_line_column(text, n, (size_t)(nul - text), &line, &column);
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: not valid JSON: a NUL byte (line %d, column %d%s%s)", name, line, column,
                       where[0] ? ", in " : "", where);
    }
    json_error_t je;
    /* no JSON_DECODE_ANY (the top is an object or array), no JSON_ALLOW_NUL,
     * no JSON_DISABLE_EOF_CHECK (nothing but whitespace after the document) */
    json_t *doc = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (!doc) return parse_error(name, text, n, &je, err, errlen);
    *out = doc;
    return MT_OK;
}

/* Reads up to cap bytes; *got is what the file held (short of cap at its end). */
static mt_status read_up_to(int fd, const char *path, char *buf, size_t cap, size_t *got, char *err,
                            size_t errlen) {
    size_t n = 0;
    while (n < cap) {
        const ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return mt_errf(err, errlen, MT_ERR_IO, "%s: read error: %s", path, strerror(errno));
        if (k == 0) break;
        n += (size_t)k;
    }
    *got = n;
    return MT_OK;
}

mt_status json_file_read(const char *path, size_t max_bytes, int max_depth, json_t **out, char *err,
                         size_t errlen) {
    *out = NULL;
    int fd = -1;
    size_t size = 0;
    uint64_t size64 = 0;
    mt_status st = mt_open_regular(path, &fd, &size64, err, errlen);
    size = (size_t)size64;
    if (st) return st;
    if (size > max_bytes) {
        close(fd);
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: %zu bytes, larger than the %zu bytes this JSON file may hold", path, size,
                       max_bytes);
    }
    /* One byte past the size from stat tells a file that grew meanwhile. */
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, size + 1);
    }
    size_t n = 0;
    st = read_up_to(fd, path, buf, size + 1, &n, err, errlen);
    close(fd); /* read-only: a close error cannot lose data */
    if (!st && n != size)
        st = mt_errf(err, errlen, MT_ERR_IO, "%s: changed size while being read (%zu bytes, then %s%zu)",
                     path, size, n > size ? "more than " : "", n > size ? size : n);
    if (!st) st = json_parse_strict(path, buf, n, max_depth, out, err, errlen);
    free(buf);
    return st;
}

mt_status json_file_write(const char *path, const json_t *doc, size_t flags, char *err,
                          size_t errlen) {
    char *text = json_dumps(doc, flags);
    if (!text)
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: cannot encode the JSON document (out of memory)",
                       path);
    const size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    const mt_status st = atomic_write(path, line, n + 1, err, errlen);
    free(line);
    return st;
}
