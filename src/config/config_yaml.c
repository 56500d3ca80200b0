/* config_yaml.c - writing the effective configuration as YAML
 * (mt_config_write_yaml), from the key table (config_keys.h).
 *
 * Every row that holds a value is written under its official name, keys
 * sorted so that a section's keys sit together, such that loading the file
 * over the defaults and finalizing gives the same mt_config. The file goes
 * through the project's atomic writer: a reader sees the old file or the
 * whole new one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_keys.h"
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

static void write_quoted(FILE *f, const char *v) {
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '"' || *v == '\\') fputc('\\', f);
        fputc(*v, f);
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
        fprintf(f, "%*s%s: ", indent + 2, "", l[i].name);
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

mt_status mt_config_write_yaml(const mt_config *c, const char *path, char *err, size_t errlen) {
    const mt_key **order = malloc(MT_NKEYS * sizeof *order);
    if (!order) return fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    const size_t m = sorted_rows(c, order);
    atomic_file af;
    mt_status st = atomic_file_open(&af, path, err, errlen);
    if (st) {
        free(order);
        return st;
    }
    write_rows(af.f, c, order, m);
    free(order);
    if (ferror(af.f)) {
        const int e = errno;
        atomic_file_abort(&af);
        return fail(err, errlen, MT_ERR_IO, "%s: write failed: %s", path, strerror(e ? e : EIO));
    }
    return atomic_file_commit(&af, err, errlen);
}
