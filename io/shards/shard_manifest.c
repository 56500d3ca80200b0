/* shard_manifest.c - a split's manifest, the file that says the split is
 * whole: written by the packer last, read by the loader and by
 * `mtlora-pack --verify` (shard.h, specified in docs/data-format.md).
 *
 * The reader accepts exactly what the writer writes (and what the format
 * page specifies) and names the line of anything else: a manifest decides
 * which files a run trains on, so a repeated line, a shard listed twice or
 * a path leaving the directory must be an error, never a guess. */
#include "mtlora/io/shards/shard.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mtlora/io/atomic_file.h"

#define MANIFEST_MAX_BYTES (16 << 20) /* SHARD_MAX_SHARDS lines of ~30 bytes fit 5x over */
#define MANIFEST_MAX_LINE 4096
#define MANIFEST_MAX_RECORDS 2147483647LL /* the loader numbers records with int64, shards with int */

mt_status shard_manifest_write(const char *dir, const char *split, int tasks, int64_t nshards,
                               int64_t nrec, int64_t shard_size, char *err, size_t errlen) {
    char path[MT_PATH_MAX], tl[96];
    if (snprintf(path, sizeof path, "%s/%s.manifest", dir, split) >= (int)sizeof path)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s/%s.manifest: path too long", dir, split);
    shard_tasks_format(tasks, tl, sizeof tl);
    atomic_file af;
    mt_status st = atomic_file_open(&af, path, err, errlen);
    if (st) return st;
    int bad = fprintf(af.f, "mtlora-shards %d\nsplit %s\ntasks %s\nrecords %lld\nshard_size %lld\n"
                            "shards %lld\n", SHARD_FORMAT_VERSION, split, tl, (long long)nrec,
                      (long long)shard_size, (long long)nshards) < 0;
    for (int64_t k = 0; k < nshards && !bad; k++) {
        const int64_t cnt = k == nshards - 1 ? nrec - k * shard_size : shard_size;
        bad = fprintf(af.f, "%s-%05lld.h5 %lld\n", split, (long long)k, (long long)cnt) < 0;
    }
    if (bad) {
        const int e = errno;
        atomic_file_abort(&af);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: write failed: %s", path, strerror(e ? e : EIO));
    }
    return atomic_file_commit(&af, err, errlen);
}

/* ---------------------------------------------------------------- reading */

enum { K_SPLIT, K_TASKS, K_RECORDS, K_SHARD_SIZE, K_SHARDS, NKEYS };
static const char *const key_names[NKEYS] = {"split", "tasks", "records", "shard_size", "shards"};

typedef struct {
    shard_manifest *m;
    const char *want_split; /* NULL: any */
    int line;               /* the current line, 1-based */
    int key_line[NKEYS];    /* where each header key was, 0 if not yet */
    int64_t nshards;        /* declared by the shards line, -1 before it */
    char *err;
    size_t errlen;
} parser;

static mt_status line_fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static mt_status line_fail(parser *p, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mt_errf(p->err, p->errlen, MT_ERR_FORMAT, "%s line %d: %s", p->m->path, p->line, what);
}

/* A non-negative decimal count without sign, spaces or leading zeros,
 * at most max. */
static int parse_count(const char *s, size_t n, int64_t max, int64_t *v) {
    if (n == 0 || n > 18 || (n > 1 && s[0] == '0')) return -1;
    int64_t x = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') return -1;
        x = 10 * x + (s[k] - '0');
    }
    if (x > max) return -1;
    *v = x;
    return 0;
}

/* Text to show in a message: at most 40 bytes, control bytes as '?'. */
static const char *shown(const char *s, size_t n, char *buf, size_t cap) {
    size_t k = 0;
    for (; k < n && k + 4 < cap && k < 40; k++)
        buf[k] = (unsigned char)s[k] < 0x20 || (unsigned char)s[k] >= 0x7f ? '?' : s[k];
    if (k < n && k + 4 < cap) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    return buf;
}

static int name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static mt_status header_value(parser *p, int key, const char *v, size_t n) {
    shard_manifest *m = p->m;
    char b[64];
    int64_t x;
    switch (key) {
    case K_SPLIT:
        if (n == 0 || n >= sizeof m->split) return line_fail(p, "split '%s': 1..15 characters",
                                                             shown(v, n, b, sizeof b));
        for (size_t k = 0; k < n; k++)
            if (!name_char(v[k]))
                return line_fail(p, "split '%s': only letters, digits, '_' and '-'",
                                 shown(v, n, b, sizeof b));
        memcpy(m->split, v, n);
        m->split[n] = '\0';
        if (p->want_split && strcmp(m->split, p->want_split) != 0)
            return line_fail(p, "split '%s', but this is the manifest of split '%s'", m->split,
                             p->want_split);
        return MT_OK;
    case K_TASKS: {
        char list[96], bad[32] = "";
        if (n >= sizeof list) return line_fail(p, "tasks '%s': too long", shown(v, n, b, sizeof b));
        memcpy(list, v, n);
        list[n] = '\0';
        if ((m->tasks = shard_tasks_parse(list, bad, sizeof bad)) < 0)
            return line_fail(p, "tasks: unknown task '%s'", shown(bad, strlen(bad), b, sizeof b));
        return MT_OK;
    }
    case K_RECORDS:
        if (parse_count(v, n, MANIFEST_MAX_RECORDS, &x) || x < 1)
            return line_fail(p, "records '%s': expected a count 1..%lld", shown(v, n, b, sizeof b),
                             MANIFEST_MAX_RECORDS);
        m->records = x;
        return MT_OK;
    case K_SHARD_SIZE:
        /* any size the packer accepts; a shard itself holds at most SHARD_MAX_RECORDS */
        if (parse_count(v, n, MANIFEST_MAX_RECORDS, &x) || x < 1)
            return line_fail(p, "shard_size '%s': expected a count 1..%lld", shown(v, n, b, sizeof b),
                             MANIFEST_MAX_RECORDS);
        m->shard_size = x;
        return MT_OK;
    default: /* K_SHARDS: the list follows; it needs every other header line */
        if (parse_count(v, n, SHARD_MAX_SHARDS, &x) || x < 1)
            return line_fail(p, "shards '%s': expected a count 1..%d", shown(v, n, b, sizeof b),
                             SHARD_MAX_SHARDS);
        for (int k = 0; k < K_SHARDS; k++)
            if (!p->key_line[k]) return line_fail(p, "'shards' before the '%s' line", key_names[k]);
        if (x != (m->records + m->shard_size - 1) / m->shard_size)
            return line_fail(p, "shards %lld, but %lld records (line %d) in shards of %lld (line %d) "
                             "make %lld", (long long)x, (long long)m->records, p->key_line[K_RECORDS],
                             (long long)m->shard_size, p->key_line[K_SHARD_SIZE],
                             (long long)((m->records + m->shard_size - 1) / m->shard_size));
        m->shards = calloc((size_t)x, sizeof *m->shards);
        if (!m->shards)
            return mt_errf(p->err, p->errlen, MT_ERR_NOMEM, "%s line %d: out of memory for %lld shards",
                           m->path, p->line, (long long)x);
        p->nshards = x;
        return MT_OK;
    }
}

/* "<split>-<digits>.h5": a plain name in the manifest's directory (never a
 * path: no '/', so neither ".." nor an absolute path), of this split. */
static mt_status check_name(parser *p, const char *s, size_t n) {
    char b[64];
    if (memchr(s, '/', n))
        return line_fail(p, "shard '%s': a path, expected a file name in the manifest's directory",
                         shown(s, n, b, sizeof b));
    const size_t ls = strlen(p->m->split);
    size_t d = 0;
    while (ls + 1 + d < n && s[ls + 1 + d] >= '0' && s[ls + 1 + d] <= '9') d++;
    if (n >= SHARD_NAME_MAX || n < ls + 5 || memcmp(s, p->m->split, ls) != 0 || s[ls] != '-' ||
        d == 0 || ls + 1 + d + 3 != n || memcmp(s + ls + 1 + d, ".h5", 3) != 0)
        return line_fail(p, "shard '%s': expected a name %s-NNNNN.h5", shown(s, n, b, sizeof b),
                         p->m->split);
    return MT_OK;
}

static mt_status shard_line(parser *p, const char *s, size_t n) {
    shard_manifest *m = p->m;
    char b[64];
    const char *sp = memchr(s, ' ', n);
    if (!sp) return line_fail(p, "'%s': expected 'NAME COUNT'", shown(s, n, b, sizeof b));
    const size_t ln = (size_t)(sp - s), lv = n - ln - 1;
    for (int k = 0; k < NKEYS; k++)
        if (strlen(key_names[k]) == ln && !memcmp(s, key_names[k], ln))
            return p->key_line[k] ? line_fail(p, "a second '%s' line (the first is line %d)",
                                              key_names[k], p->key_line[k])
                                  : line_fail(p, "'%s' after the shard list began", key_names[k]);
    if (m->nshards >= p->nshards)
        return line_fail(p, "more shard lines than 'shards %lld' (line %d) says",
                         (long long)p->nshards, p->key_line[K_SHARDS]);
    mt_status st = check_name(p, s, ln);
    if (st) return st;
    int64_t cnt;
    const int64_t k = m->nshards;
    const int64_t want = k == p->nshards - 1 ? m->records - k * m->shard_size : m->shard_size;
    if (parse_count(sp + 1, lv, SHARD_MAX_RECORDS, &cnt))
        return line_fail(p, "shard %.*s: count '%s' is not a number of records", (int)ln, s,
                         shown(sp + 1, lv, b, sizeof b));
    if (cnt != want)
        return line_fail(p, "shard %.*s: %lld records, expected %lld (shard %lld of %lld; %lld "
                         "records in shards of %lld)", (int)ln, s, (long long)cnt, (long long)want,
                         (long long)k + 1, (long long)p->nshards, (long long)m->records,
                         (long long)m->shard_size);
    shard_manifest_entry *e = &m->shards[m->nshards++];
    memcpy(e->name, s, ln);
    e->name[ln] = '\0';
    e->records = cnt;
    e->line = p->line;
    return MT_OK;
}

static mt_status header_line(parser *p, const char *s, size_t n) {
    char b[64];
    const char *sp = memchr(s, ' ', n);
    const size_t ln = sp ? (size_t)(sp - s) : n;
    for (int k = 0; k < NKEYS; k++) {
        if (strlen(key_names[k]) != ln || memcmp(s, key_names[k], ln)) continue;
        if (p->key_line[k])
            return line_fail(p, "a second '%s' line (the first is line %d)", key_names[k],
                             p->key_line[k]);
        if (!sp) return line_fail(p, "'%s' without a value", key_names[k]);
        mt_status st = header_value(p, k, sp + 1, n - ln - 1);
        if (!st) p->key_line[k] = p->line;
        return st;
    }
    if (ln > 3 && !memcmp(s + ln - 3, ".h5", 3))
        return line_fail(p, "shard '%s' listed before the 'shards' line", shown(s, ln, b, sizeof b));
    return line_fail(p, "unknown line '%s' (expected split, tasks, records, shard_size or shards)",
                     shown(s, n, b, sizeof b));
}

static mt_status first_line(parser *p, const char *s, size_t n) {
    char b[64];
    static const char magic[] = "mtlora-shards ";
    const size_t lm = sizeof magic - 1;
    int64_t v;
    if (n < lm || memcmp(s, magic, lm) != 0)
        return line_fail(p, "'%s': not an mtlora shard manifest (expected 'mtlora-shards %d')",
                         shown(s, n, b, sizeof b), SHARD_FORMAT_VERSION);
    if (parse_count(s + lm, n - lm, 1000000, &v) || v != SHARD_FORMAT_VERSION)
        return line_fail(p, "format version '%s', this reader knows %d",
                         shown(s + lm, n - lm, b, sizeof b), SHARD_FORMAT_VERSION);
    return MT_OK;
}

static int cmp_entry_name(const void *a, const void *b) {
    const shard_manifest_entry *x = *(const shard_manifest_entry *const *)a,
                               *y = *(const shard_manifest_entry *const *)b;
    const int c = strcmp(x->name, y->name);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Every shard once: a shard listed twice would be trained on twice. */
static mt_status check_unique(shard_manifest *m, char *err, size_t errlen) {
    shard_manifest_entry **v = malloc(sizeof *v * (size_t)m->nshards);
    if (!v) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", m->path);
    for (int k = 0; k < m->nshards; k++) v[k] = &m->shards[k];
    qsort(v, (size_t)m->nshards, sizeof *v, cmp_entry_name);
    mt_status st = MT_OK;
    for (int k = 1; k < m->nshards && !st; k++)
        if (!strcmp(v[k - 1]->name, v[k]->name))
            st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s line %d: shard %s listed twice (also line %d)",
                         m->path, v[k]->line, v[k]->name, v[k - 1]->line);
    free(v);
    return st;
}

/* After the last line: every header line seen, and as many shard lines as
 * the shards line promised. */
static mt_status check_complete(parser *p) {
    shard_manifest *m = p->m;
    for (int k = 0; k < NKEYS; k++)
        if (!p->key_line[k])
            return mt_errf(p->err, p->errlen, MT_ERR_FORMAT, "%s: no '%s' line (a manifest needs split, "
                           "tasks, records, shard_size and shards)", m->path, key_names[k]);
    if (m->nshards != p->nshards)
        return mt_errf(p->err, p->errlen, MT_ERR_FORMAT,
                       "%s: lists %d shards, but line %d says 'shards %lld' (the manifest is "
                       "truncated)", m->path, m->nshards, p->key_line[K_SHARDS], (long long)p->nshards);
    return check_unique(m, p->err, p->errlen);
}

static mt_status parse_lines(parser *p, const char *text, size_t len) {
    const char *s = text, *end = text + len;
    if (len == 0) return mt_errf(p->err, p->errlen, MT_ERR_FORMAT, "%s: empty", p->m->path);
    mt_status st = MT_OK;
    while (s < end && !st) {
        p->line++;
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        const char *next = nl ? nl + 1 : end;
        if (n > 0 && s[n - 1] == '\r') n--; /* a manifest edited on Windows */
        if (n > MANIFEST_MAX_LINE) st = line_fail(p, "longer than %d bytes", MANIFEST_MAX_LINE);
        else if (memchr(s, '\0', n)) st = line_fail(p, "a NUL byte");
        else if (n == 0) st = line_fail(p, "an empty line");
        else if (p->line == 1) st = first_line(p, s, n);
        else if (p->nshards >= 0) st = shard_line(p, s, n);
        else st = header_line(p, s, n);
        s = next;
    }
    return st ? st : check_complete(p);
}

mt_status shard_manifest_parse(const char *path, const char *split, const char *text, size_t len,
                               shard_manifest *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    parser p = {m, split, 0, {0}, -1, err, errlen};
    mt_status st = parse_lines(&p, text, len);
    if (st) shard_manifest_free(m);
    return st;
}

void shard_manifest_free(shard_manifest *m) {
    if (!m) return;
    free(m->shards);
    m->shards = NULL;
    m->nshards = 0;
}

/* The whole file, at most MANIFEST_MAX_BYTES; a FIFO or directory is
 * refused before it is opened (reading a FIFO would block). */
static mt_status slurp(const char *path, const char *split, char **buf, size_t *len, char *err,
                       size_t errlen) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return errno == ENOENT
                   ? mt_errf(err, errlen, MT_ERR_IO,
                             "%s: missing (pack the %s split with mtlora-pack to completion first)",
                             path, split)
                   : mt_errf(err, errlen, MT_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return mt_errf(err, errlen, MT_ERR_IO, "%s: not a regular file", path);
    if (sb.st_size > MANIFEST_MAX_BYTES)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %lld bytes, a manifest has at most %d", path,
                       (long long)sb.st_size, MANIFEST_MAX_BYTES);
    FILE *f = fopen(path, "rb");
    if (!f) return mt_errf(err, errlen, MT_ERR_IO, "%s: %s", path, strerror(errno));
    const size_t cap = (size_t)sb.st_size + 1; /* one more byte shows a file that grew */
    *buf = malloc(cap);
    mt_status st = MT_OK;
    if (!*buf) st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    if (!st) {
        *len = fread(*buf, 1, cap, f);
        if (ferror(f)) st = mt_errf(err, errlen, MT_ERR_IO, "%s: read error: %s", path, strerror(errno));
        else if (*len == cap)
            st = mt_errf(err, errlen, MT_ERR_IO, "%s: changed while it was read", path);
    }
    fclose(f);
    if (st) {
        free(*buf);
        *buf = NULL;
    }
    return st;
}

mt_status shard_manifest_read(const char *dir, const char *split, shard_manifest *m, char *err,
                              size_t errlen) {
    memset(m, 0, sizeof *m);
    char path[MT_PATH_MAX];
    if (!split[0] || strlen(split) >= sizeof m->split || strchr(split, '/'))
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: bad split name '%.40s'", dir, split);
    if (snprintf(path, sizeof path, "%s/%s.manifest", dir, split) >= (int)sizeof path)
        return mt_errf(err, errlen, MT_ERR_ARG, "%.200s/%s.manifest: path too long", dir, split);
    char *text = NULL;
    size_t len = 0;
    mt_status st = slurp(path, split, &text, &len, err, errlen);
    if (st) return st;
    st = shard_manifest_parse(path, split, text, len, m, err, errlen);
    free(text);
    return st;
}
