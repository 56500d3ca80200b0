/* config_yaml.c - writing the effective configuration as YAML
 * (mt_config_write_yaml), from the key table (config_keys.h).
 *
 * Every row that holds a value is written under its official name, keys
 * sorted so that a section's keys sit together, such that loading the file
 * over the defaults and finalizing gives the same mt_config, byte for
 * byte: floats in their shortest exact form, strings double-quoted with
 * every character YAML would fold, strip or refuse escaped. The file goes
 * through the project's atomic writer: a reader sees the old file or the
 * whole new one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_keys.h"
#include "config_read.h"
#include "mtlora/io/atomic_file.h"

#define fail mt_errf

void mt_config_format_float(char *buf, size_t cap, float v) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtof(buf, NULL) == v) break;
    }
}

static int cmp_key(const void *a, const void *b) {
    return strcmp((*(const mt_key *const *)a)->name, (*(const mt_key *const *)b)->name);
}

/* The escape YAML's double-quoted style has for cp, or NULL. */
static const char *short_escape(unsigned cp) {
    switch (cp) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\a': return "\\a";
    case '\b': return "\\b";
    case '\t': return "\\t";
    case '\n': return "\\n";
    case '\v': return "\\v";
    case '\f': return "\\f";
    case '\r': return "\\r";
    case 0x1B: return "\\e";
    default: return NULL;
    }
}

/* Whether cp may stand as it is inside double quotes: printable for
 * libyaml's reader, and not one of the characters YAML folds or strips
 * (NEL, LINE and PARAGRAPH SEPARATOR are line breaks; a BOM may be
 * skipped). */
static int raw_ok(unsigned cp) {
    return cp >= 0x20 && cp != 0x7F && cp != 0x85 && cp != 0x2028 && cp != 0x2029 && cp != 0xFEFF &&
           mt_yaml_printable(cp);
}

/* A string as a YAML double-quoted scalar that reads back byte for byte:
 * quotes, backslashes and every character not kept raw are escapes (\n,
 * \xNN, \uNNNN, \UNNNNNNNN name code points, written back as UTF-8).
 * v is valid UTF-8 (check_strings). */
static void write_quoted(FILE *f, const char *v) {
    const unsigned char *u = (const unsigned char *)v;
    const size_t n = strlen(v);
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned cp = 0;
        const size_t w = mt_utf8_next(u + i, n - i, &cp);
        const char *esc = w ? short_escape(cp) : NULL;
        if (!w) fprintf(f, "\\x%02X", u[i]); /* not reached: check_strings */
        else if (esc) fputs(esc, f);
        else if (raw_ok(cp)) fwrite(u + i, 1, w, f);
        else if (cp <= 0xFF) fprintf(f, "\\x%02X", cp);
        else if (cp <= 0xFFFF) fprintf(f, "\\u%04X", cp);
        else fprintf(f, "\\U%08X", cp);
        i += w ? w : 1;
    }
    fputc('"', f);
}

static void write_float(FILE *f, float v) {
    char buf[32];
    mt_config_format_float(buf, sizeof buf, v);
    fputs(buf, f);
}

static void write_floats(FILE *f, const float *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        write_float(f, v[i]);
    }
    fputc(']', f);
}

static void write_named_lists(FILE *f, const mt_named_list *l, int n, int indent) {
    if (n == 0) {
        fprintf(f, " {}\n");
        return;
    }
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%*s", indent + 2, "");
        write_quoted(f, l[i].name);
        fputs(": ", f);
        write_floats(f, l[i].v, l[i].n);
        fputc('\n', f);
    }
}

/* A row's value in YAML (after "NAME:"). */
static void write_value(FILE *f, const mt_config *c, const mt_key *k, int indent) {
    const char *p = (const char *)c + k->off;
    switch (k->type) {
    case K_INT: fprintf(f, " %d\n", *(const int *)p); return;
    case K_FLOAT:
        fputc(' ', f);
        write_float(f, *(const float *)p);
        fputc('\n', f);
        return;
    case K_BOOL: fprintf(f, " %s\n", *(const int *)p ? "True" : "False"); return;
    case K_STR:
        fputc(' ', f);
        write_quoted(f, p);
        fputc('\n', f);
        return;
    case K_INTLIST:
    case K_FLOATLIST: {
        const int n = k->n_off ? *(const int *)((const char *)c + k->n_off) : (int)k->cap;
        fputs(" [", f);
        for (int i = 0; i < n; i++) {
            if (i) fputs(", ", f);
            if (k->type == K_INTLIST) fprintf(f, "%d", ((const int *)p)[i]);
            else write_float(f, ((const float *)p)[i]);
        }
        fputs("]\n", f);
        return;
    }
    case K_TASKS:
        fputs(" [", f);
        for (int t = 0; t < c->ntasks; t++) fprintf(f, "%s%s", t ? ", " : "", c->tasks[t]);
        fputs("]\n", f);
        return;
    case K_RPT: write_named_lists(f, c->raw.r_per_task, c->raw.n_r_per_task, indent); return;
    case K_SPT: write_named_lists(f, c->raw.scale_per_task, c->raw.n_scale_per_task, indent); return;
    /* the one accepted value, so the file says what the run assumed */
    case K_FIXED_BOOL: fprintf(f, " %s\n", k->def ? "True" : "False"); return;
    case K_FIXED_STR: fprintf(f, " %s\n", k->def_str); return;
    default: fputs(" null\n", f); return; /* not reached: has_value */
    }
}

/* Whether a row is written: ignored keys, QK_SCALE (null only) and
 * MODEL.DECODER_HEAD (hrnet only) hold nothing; optional lists left unset
 * (RUN.STL_BASELINES) are left out, since an empty YAML list is refused on
 * reading. */
static int has_value(const mt_config *c, const mt_key *k) {
    if (k->type == K_IGNORE || k->type == K_NULL_ONLY || k->type == K_HEAD) return 0;
    if ((k->type == K_FLOATLIST || k->type == K_INTLIST) && k->n_off)
        return *(const int *)((const char *)c + k->n_off) > 0;
    return 1;
}

/* The rows to write, sorted by name (sections stay together). */
static size_t sorted_rows(const mt_config *c, const mt_key **order) {
    size_t m = 0;
    for (size_t i = 0; i < MT_NKEYS; i++)
        if (has_value(c, &MT_KEYS[i])) order[m++] = &MT_KEYS[i];
    qsort(order, m, sizeof order[0], cmp_key);
    return m;
}

/* Writes the sorted rows, opening for each key the sections the previous
 * key did not share ("MODEL:\n  SWIN:\n    DEPTHS: ..."). */
static void write_rows(FILE *f, const mt_config *c, const mt_key *const *order, size_t m) {
    fprintf(f, "# The effective configuration of this run (official key names, plus RUN.*).\n");
    const char *prev = "";
    for (size_t i = 0; i < m; i++) {
        const char *key = order[i]->name, *p = key, *q = prev;
        int depth = 0;
        for (;;) { /* shared leading sections */
            const char *dp = strchr(p, '.'), *dq = strchr(q, '.');
            if (!dp || !dq || dp - p != dq - q || strncmp(p, q, (size_t)(dp - p))) break;
            depth++;
            p = dp + 1;
            q = dq + 1;
        }
        for (const char *dot; (dot = strchr(p, '.')); p = dot + 1, depth++)
            fprintf(f, "%*s%.*s:\n", 2 * depth, "", (int)(dot - p), p);
        fprintf(f, "%*s%s:", 2 * depth, "", p);
        write_value(f, c, order[i], 2 * depth);
        prev = key;
    }
}

/* The first byte of s[0..cap) that is not valid UTF-8, (size_t)-1 when
 * there is none, or cap when s has no NUL within cap. */
static size_t bad_utf8(const char *s, size_t cap) {
    const char *end = memchr(s, 0, cap);
    if (!end) return cap;
    const size_t n = (size_t)(end - s);
    unsigned cp;
    for (size_t i = 0, w; i < n; i += w)
        if (!(w = mt_utf8_next((const unsigned char *)s + i, n - i, &cp))) return i;
    return (size_t)-1;
}

static mt_status check_string(const char *key, const char *s, size_t cap, char *err, size_t errlen) {
    const size_t bad = bad_utf8(s, cap);
    if (bad == (size_t)-1) return MT_OK;
    if (bad == cap) return fail(err, errlen, MT_ERR_ARG, "%s: not terminated within %zu bytes", key, cap);
    return fail(err, errlen, MT_ERR_ARG, "%s: not valid UTF-8 (byte 0x%02x at %zu): YAML cannot hold it",
                key, (unsigned char)s[bad], bad);
}

/* Every string the writer writes is valid UTF-8 text, so that it loads
 * back as it is: string rows, the names of the per-task lists, tasks. */
static mt_status check_strings(const mt_config *c, char *err, size_t errlen) {
    mt_status st = MT_OK;
    for (size_t i = 0; i < MT_NKEYS && !st; i++)
        if (MT_KEYS[i].type == K_STR)
            st = check_string(MT_KEYS[i].name, (const char *)c + MT_KEYS[i].off, MT_KEYS[i].cap, err,
                              errlen);
    const mt_named_list *lists[2] = {c->raw.r_per_task, c->raw.scale_per_task};
    const int counts[2] = {c->raw.n_r_per_task, c->raw.n_scale_per_task};
    const char *names[2] = {"MODEL.MTLORA.R_PER_TASK", "MODEL.MTLORA.SCALE_PER_TASK"};
    for (int l = 0; l < 2 && !st; l++) {
        if (counts[l] < 0 || counts[l] > MT_MAX_TASKS + 4)
            return fail(err, errlen, MT_ERR_ARG, "%s: %d entries", names[l], counts[l]);
        for (int i = 0; i < counts[l] && !st; i++)
            st = check_string(names[l], lists[l][i].name, MT_TASK_NAME_LEN, err, errlen);
    }
    if (!st && (c->ntasks < 0 || c->ntasks > MT_MAX_TASKS))
        return fail(err, errlen, MT_ERR_ARG, "TASKS: %d tasks", c->ntasks);
    for (int t = 0; t < c->ntasks && !st; t++)
        st = check_string("TASKS", c->tasks[t], MT_TASK_NAME_LEN, err, errlen);
    return st;
}

mt_status mt_config_yaml_text(const mt_config *c, char **text, size_t *len, char *err, size_t errlen) {
    *text = NULL;
    *len = 0;
    mt_status st = check_strings(c, err, errlen);
    if (st) return st;
    const mt_key **order = malloc(MT_NKEYS * sizeof *order);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = order ? open_memstream(&buf, &n) : NULL;
    if (!f) {
        free(order);
        return fail(err, errlen, MT_ERR_NOMEM, "out of memory writing the configuration");
    }
    write_rows(f, c, order, sorted_rows(c, order));
    free(order);
    const int bad = ferror(f);
    if (fclose(f) || bad) {
        free(buf);
        return fail(err, errlen, MT_ERR_NOMEM, "out of memory writing the configuration");
    }
    *text = buf;
    *len = n;
    return MT_OK;
}

mt_status mt_config_write_yaml(const mt_config *c, const char *path, char *err, size_t errlen) {
    char why[512], *text = NULL;
    size_t len = 0;
    if (mt_config_yaml_text(c, &text, &len, why, sizeof why))
        return fail(err, errlen, MT_ERR_ARG, "%s: %s", path, why);
    mt_status st = atomic_write(path, text, len, err, errlen);
    free(text);
    return st;
}
