/* config_read.c - untrusted YAML text into a libyaml document with bounded
 * work (config_read.h).
 *
 * Three passes over text that is at most MT_CONFIG_MAX_BYTES: the bytes
 * (UTF-8 and YAML's printable set, refused with the key they sit in), the
 * event stream (aliases, documents, depth, node count, refused with the
 * key being read), and libyaml's loader. The event pass keeps the path of
 * mapping keys, so its refusals name the key as the later walk would. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_read.h"

#define fail mt_errf

size_t mt_utf8_next(const unsigned char *s, size_t n, unsigned *cp) {
    if (!n) return 0;
    const unsigned c = s[0];
    size_t w;
    unsigned v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) w = 2, v = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) w = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) w = 4, v = c & 0x07, min = 0x10000;
    else return 0;
    if (n < w) return 0;
    for (size_t i = 1; i < w; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return w;
}

int mt_yaml_printable(unsigned c) {
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0x7E) || c == 0x85 ||
           (c >= 0xA0 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
           (c >= 0x10000 && c <= 0x10FFFF);
}

/* ---- the event pass --------------------------------------------------------- */

typedef struct {
    int map, want_key; /* a mapping, and whether its next node is a key */
    char key[64];      /* the mapping's current key */
} frame;

typedef struct {
    const char *name;
    frame st[MT_YAML_MAX_DEPTH];
    int depth;
    size_t aliases, nodes, docs;
    /* locate mode: the character index to find among the scalars, and the
     * key path of the one that holds it */
    size_t target;
    int located;
    char found[256];
} scan;

/* The dotted path of the keys being read ("MODEL.SWIN.DEPTHS"). */
static void key_path(const scan *s, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->depth && used < cap; i++) {
        const frame *f = &s->st[i];
        if (f->map && !f->want_key && f->key[0])
            used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? "." : "", f->key);
    }
}

static mt_status refuse_at(const scan *s, const yaml_mark_t *m, char *err, size_t errlen,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static mt_status refuse_at(const scan *s, const yaml_mark_t *m, char *err, size_t errlen,
                           const char *fmt, ...) {
    char path[256], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    key_path(s, path, sizeof path);
    return fail(err, errlen, MT_ERR_FORMAT, "%s line %zu: %s%s%s", s->name, m->line + 1, path,
                path[0] ? ": " : "", msg);
}

/* A node ended inside f: a mapping alternates between key and value. */
static void completed(frame *f) {
    if (f && f->map) f->want_key = !f->want_key;
}

static mt_status count_node(scan *s, const yaml_event_t *e, char *err, size_t errlen) {
    if (++s->nodes > MT_YAML_MAX_NODES)
        return refuse_at(s, &e->start_mark, err, errlen,
                         "more than %d YAML nodes (a configuration has a few hundred)",
                         MT_YAML_MAX_NODES);
    return MT_OK;
}

/* In locate mode, whether scalar e holds the target character. */
static void locate(scan *s, const yaml_event_t *e, frame *top, int is_key) {
    if (s->located || s->target < e->start_mark.index || s->target >= e->end_mark.index) return;
    key_path(s, s->found, sizeof s->found);
    if (is_key && top) {
        const size_t used = strlen(s->found);
        snprintf(s->found + used, sizeof s->found - used, "%s%.*s", used ? "." : "", 63,
                 (const char *)e->data.scalar.value);
    }
    s->located = 1;
}

static mt_status on_event(scan *s, const yaml_event_t *e, char *err, size_t errlen) {
    frame *top = s->depth ? &s->st[s->depth - 1] : NULL;
    const int is_key = top && top->map && top->want_key;
    mt_status st;
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++s->docs > 1)
            return fail(err, errlen, MT_ERR_FORMAT,
                        "%s line %zu: a second YAML document (a configuration is one document)",
                        s->name, e->start_mark.line + 1);
        return MT_OK;
    case YAML_ALIAS_EVENT:
        if (++s->aliases > MT_YAML_MAX_ALIASES)
            return refuse_at(s, &e->start_mark, err, errlen,
                             "alias *%.40s: more than %d aliases (a configuration needs few; "
                             "aliases of aliases expand exponentially)",
                             (const char *)e->data.alias.anchor, MT_YAML_MAX_ALIASES);
        if (is_key) snprintf(top->key, sizeof top->key, "*%.40s", (const char *)e->data.alias.anchor);
        completed(top);
        return MT_OK;
    case YAML_SCALAR_EVENT:
        if ((st = count_node(s, e, err, errlen))) return st;
        locate(s, e, top, is_key);
        if (is_key) snprintf(top->key, sizeof top->key, "%s", (const char *)e->data.scalar.value);
        completed(top);
        return MT_OK;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if ((st = count_node(s, e, err, errlen))) return st;
        if (s->depth == MT_YAML_MAX_DEPTH)
            return refuse_at(s, &e->start_mark, err, errlen, "nesting deeper than %d levels",
                             MT_YAML_MAX_DEPTH);
        if (is_key) snprintf(top->key, sizeof top->key, "?");
        s->st[s->depth++] = (frame){.map = e->type == YAML_MAPPING_START_EVENT, .want_key = 1};
        return MT_OK;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (s->depth > 0) s->depth--;
        completed(s->depth ? &s->st[s->depth - 1] : NULL);
        return MT_OK;
    default: return MT_OK;
    }
}

/* The line of byte offset off: 1 + the newlines before it. */
static size_t line_of(const char *text, size_t len, size_t off) {
    size_t line = 1;
    for (size_t i = 0; i < off && i < len; i++) line += text[i] == '\n';
    return line;
}

/* libyaml's own error: the line and column it names (problem_mark), or
 * for a reader error the line of its byte offset. */
static mt_status yaml_error(const yaml_parser_t *p, const char *name, const char *text, size_t len,
                            char *err, size_t errlen) {
    const char *prob = p->problem ? p->problem : "malformed";
    if (p->error == YAML_MEMORY_ERROR)
        return fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory reading YAML", name);
    if (p->error == YAML_READER_ERROR)
        return fail(err, errlen, MT_ERR_FORMAT, "%s line %zu: YAML error: %s (byte %zu)", name,
                    line_of(text, len, p->problem_offset), prob, p->problem_offset);
    if (p->context)
        return fail(err, errlen, MT_ERR_FORMAT, "%s line %zu column %zu: YAML error: %s (%s at line %zu)",
                    name, p->problem_mark.line + 1, p->problem_mark.column + 1, prob, p->context,
                    p->context_mark.line + 1);
    return fail(err, errlen, MT_ERR_FORMAT, "%s line %zu column %zu: YAML error: %s", name,
                p->problem_mark.line + 1, p->problem_mark.column + 1, prob);
}

/* Runs the event pass over text. In locate mode it stops at the first
 * problem without a message (the caller only wants s->found). */
static mt_status scan_events(scan *s, const char *text, size_t len, char *err, size_t errlen) {
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return fail(err, errlen, MT_ERR_NOMEM, "%s: cannot initialise the YAML parser", s->name);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    mt_status st = MT_OK;
    for (int done = 0; !done && !st && !s->located;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) {
            st = yaml_error(&p, s->name, text, len, err, errlen);
            break;
        }
        st = on_event(s, &e, err, errlen);
        done = e.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&p);
    return st;
}

/* ---- the bytes -------------------------------------------------------------- */

/* The key whose scalar holds byte `bad` of text: the event pass over an
 * ASCII copy (every other character one 'x'), so that libyaml's character
 * index and the copy's byte index agree. "" when it is in no scalar. */
static void key_at(const char *text, size_t len, size_t bad, char *key, size_t cap) {
    const unsigned char *u = (const unsigned char *)text;
    char *copy = malloc(len + 1);
    key[0] = '\0';
    if (!copy) return;
    size_t n = 0, target = 0;
    for (size_t i = 0; i < len;) {
        unsigned cp = 0;
        size_t w = mt_utf8_next(u + i, len - i, &cp);
        if (i == bad) target = n;
        copy[n++] = w == 1 && mt_yaml_printable(cp) ? text[i] : 'x';
        i += w ? w : 1;
    }
    scan s = {.name = "", .target = target};
    char ignored[8];
    (void)scan_events(&s, copy, n, ignored, sizeof ignored);
    if (s.located) snprintf(key, cap, "%s", s.found);
    free(copy);
}

/* Every character valid UTF-8 and in YAML's printable set: libyaml would
 * refuse the rest with a byte offset; here with the line and the key. */
static mt_status check_chars(const char *text, size_t len, const char *name, char *err,
                             size_t errlen) {
    const unsigned char *u = (const unsigned char *)text;
    size_t i = 0, w = 0;
    unsigned cp = 0;
    for (; i < len; i += w) {
        w = mt_utf8_next(u + i, len - i, &cp);
        if (!w || !mt_yaml_printable(cp)) break;
    }
    if (i == len) return MT_OK;
    size_t line = line_of(text, len, i), col = 1;
    for (size_t j = i; j > 0 && text[j - 1] != '\n'; j--) col += ((u[j - 1] & 0xC0) != 0x80);
    char key[256], what[96];
    key_at(text, len, i, key, sizeof key);
    if (!w) snprintf(what, sizeof what, "invalid UTF-8 (byte 0x%02x): a configuration is UTF-8 text", u[i]);
    else snprintf(what, sizeof what, "character U+%04X is not allowed in YAML (write it escaped, "
                  "inside double quotes)", cp);
    return fail(err, errlen, MT_ERR_FORMAT, "%s line %zu column %zu: %s%s%s", name, line, col, key,
                key[0] ? ": " : "", what);
}

mt_status mt_yaml_read(const char *text, size_t len, const char *name, yaml_document_t *doc,
                       size_t *nodes, char *err, size_t errlen) {
    if (len > MT_CONFIG_MAX_BYTES)
        return fail(err, errlen, MT_ERR_FORMAT, "%s: %zu bytes: a configuration is at most %u",
                    name, len, MT_CONFIG_MAX_BYTES);
    mt_status st = check_chars(text, len, name, err, errlen);
    if (st) return st;
    scan s = {.name = name, .target = SIZE_MAX};
    if ((st = scan_events(&s, text, len, err, errlen))) return st;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return fail(err, errlen, MT_ERR_NOMEM, "%s: cannot initialise the YAML parser", name);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, doc)) st = yaml_error(&p, name, text, len, err, errlen);
    yaml_parser_delete(&p);
    *nodes = s.nodes;
    return st;
}
