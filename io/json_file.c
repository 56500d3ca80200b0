/* json_file.c - JSON files through jansson (json_file.h). */
#include "mtlora/io/json_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/io/atomic_file.h"

mt_status json_file_read(const char *path, size_t max_bytes, json_t **out, char *err,
                         size_t errlen) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* One byte past the bound tells "too large" without trusting a size
     * from stat (a pipe or /proc file has none). */
    char *buf = malloc(max_bytes + 1);
    if (!buf) {
        fclose(f);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, max_bytes + 1);
    }
    const size_t n = fread(buf, 1, max_bytes + 1, f);
    const int bad = ferror(f);
    const int e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: read error: %s", path, strerror(e ? e : EIO));
    }
    if (n > max_bytes) {
        free(buf);
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: larger than %zu bytes, more than this JSON file may hold", path, max_bytes);
    }
    json_error_t je;
    json_t *doc = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (!doc)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", path,
                       je.text, je.line, je.column);
    *out = doc;
    return MT_OK;
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
