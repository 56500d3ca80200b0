/* test_config_hostile.c - configurations a careful user's worst day brings
 * (issue 14): numbers that are undefined behaviour or pass as inf, alias
 * bombs, a second document, deep nesting, bytes that are not text, keys
 * given twice, and strings the writer must round-trip. Every refusal must
 * name the file (or --opts), the key and, for files, the line. */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/config/config.h"
#include "test_util.h"

static char err[4096];

static const char *tmp_path(void) {
    static char path[256];
    snprintf(path, sizeof path, "/tmp/mtlora_hostile_%d.yaml", (int)getpid());
    return path;
}

static const char *write_bytes(const char *text, size_t len) {
    const char *path = tmp_path();
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    return path;
}

/* Loads text (over the defaults) from a file; no finalize. */
static mt_status load_len(mt_config *c, const char *text, size_t len) {
    mt_config_default(c);
    return mt_config_load(c, write_bytes(text, len), err, sizeof err);
}

static mt_status load(mt_config *c, const char *text) { return load_len(c, text, strlen(text)); }

/* err holds every needle (NULL-terminated list). */
static void assert_mentions(const char *what, va_list ap) {
    for (const char *n; (n = va_arg(ap, const char *));)
        ck_assert_msg(strstr(err, n) != NULL, "%s: message '%s' lacks '%s'", what, err, n);
}

/* text (len bytes) is refused on loading, naming the file and each needle. */
static void refused_len(const char *text, size_t len, ...) {
    mt_config c;
    ck_assert_msg(load_len(&c, text, len) != MT_OK, "accepted: %.200s", text);
    ck_assert_msg(strstr(err, tmp_path()) == err, "message '%s' does not start with the file", err);
    va_list ap;
    va_start(ap, len);
    assert_mentions(text, ap);
    va_end(ap);
}
#define refused(text, ...) refused_len((text), strlen(text), __VA_ARGS__, (const char *)NULL)

/* --opts KEY VALUE on the built-in model is refused, naming --opts and each needle. */
static void opts_refused(const char *key, const char *value, ...) {
    mt_config c;
    ck_assert_int_eq(mt_config_builtin(&c, err, sizeof err), MT_OK);
    ck_assert_msg(mt_config_set(&c, key, value, err, sizeof err) != MT_OK, "--opts %s %s accepted",
                  key, value);
    ck_assert_msg(!strncmp(err, "--opts", 6), "message '%s' does not start with --opts", err);
    ck_assert_msg(strstr(err, key) != NULL, "message '%s' lacks the key %s", err, key);
    va_list ap;
    va_start(ap, value);
    assert_mentions(value, ap);
    va_end(ap);
}
#define OPTS_REFUSED(key, value, ...) opts_refused((key), (value), __VA_ARGS__, (const char *)NULL)

START_TEST(numbers_refused_by_file_line_and_key) {
    /* the issue's cases: float-to-int and shift overflow, inf, AdamW's own */
    refused("MODEL:\n  SWIN:\n    DEPTHS: [2, 2, 1e10, 2]\nTASKS: [sal]\n", "line 3",
            "MODEL.SWIN.DEPTHS[2]: value '1e10' is not an integer");
    refused("MODEL:\n  MTLORA:\n    R: [1e10]\n", "line 3", "MODEL.MTLORA.R[0]: value 1e10",
            "must be in 0..4096");
    refused("MODEL:\n  SWIN:\n    EMBED_DIM: 1000000000\n", "line 3",
            "MODEL.SWIN.EMBED_DIM: value 1000000000 must be in 1..65536");
    refused("TRAIN:\n  BASE_LR: 1e39\n", "line 2", "TRAIN.BASE_LR: value '1e39'",
            "beyond the float range");
    refused("TRAIN:\n  OPTIMIZER:\n    BETAS: [7.5, -3]\n", "line 3",
            "TRAIN.OPTIMIZER.BETAS[0]: value 7.5 must be in [0, 1)");
    refused("TRAIN:\n  OPTIMIZER:\n    BETAS: [0.9,\n            -3]\n", "line 4",
            "TRAIN.OPTIMIZER.BETAS[1]: value -3");
    refused("TRAIN:\n  OPTIMIZER:\n    BETAS: '(0.9, 7)'\n", "line 3", "TRAIN.OPTIMIZER.BETAS[1]");
    refused("TRAIN:\n  OPTIMIZER:\n    EPS: -1e-8\n", "line 3", "TRAIN.OPTIMIZER.EPS: value -1e-8",
            "(0, 1]");
    refused("TRAIN:\n  WEIGHT_DECAY: -0.05\n", "line 2", "TRAIN.WEIGHT_DECAY: value -0.05");
    refused("TRAIN:\n  CLIP_GRAD: -1\n", "line 2", "TRAIN.CLIP_GRAD: value -1 must be >= 0");
    refused("TRAIN:\n  MIN_LR: -1e-6\n", "TRAIN.MIN_LR");
    /* strict syntax: the whole token, decimal, finite, in range */
    refused("MODEL:\n  SWIN:\n    EMBED_DIM: 96abc\n", "line 3", "EMBED_DIM: value '96abc' is not a number");
    refused("MODEL:\n  SWIN:\n    EMBED_DIM: 0x60\n", "EMBED_DIM: value '0x60' is not a number");
    refused("MODEL:\n  SWIN:\n    EMBED_DIM: 9.5\n", "EMBED_DIM: value '9.5' is not an integer");
    refused("MODEL:\n  SWIN:\n    EMBED_DIM: 010\n", "EMBED_DIM: value '010'", "leading zero");
    refused("MODEL:\n  SWIN:\n    DEPTHS: [2, 2, 6.0, 2]\n", "DEPTHS[2]: value '6.0' is not an integer");
    refused("TRAIN:\n  BASE_LR: .inf\n", "TRAIN.BASE_LR: value '.inf' is not a number");
    refused("TRAIN:\n  BASE_LR: nan\n", "TRAIN.BASE_LR: value 'nan' is not a number");
    refused("TRAIN:\n  BASE_LR: 1_000\n", "TRAIN.BASE_LR: value '1_000' is not a number");
    refused("TRAIN:\n  OPTIMIZER:\n    EPS: 1e-50\n", "TRAIN.OPTIMIZER.EPS", "too small for a float");
    refused("SEED: 2147483648\n", "line 1", "SEED: value '2147483648' is outside the int range");
    refused("SEED: 99999999999999999999999\n", "SEED", "outside the int range");
    refused("MODEL:\n  MTLORA:\n    R: [4.5]\n", "MODEL.MTLORA.R[0]: value 4.5 must be a whole number");
    refused("MODEL:\n  MTLORA:\n    R_PER_TASK:\n      shared: [1e10]\n", "line 4",
            "MODEL.MTLORA.R_PER_TASK.shared[0]: value 1e10");
    refused("MODEL:\n  MTLORA:\n    SCALE_PER_TASK: {sal: [-4]}\n", "MODEL.MTLORA.SCALE_PER_TASK.sal[0]");
    refused("DATA:\n  BATCH_SIZE: [4]\n", "line 2", "DATA.BATCH_SIZE: expected a number, got a list");
    refused("RUN:\n  STL_BASELINES: [0.7, 0]\n", "RUN.STL_BASELINES[1]: value 0 must be in (0, 1e+06]");
    refused("TRAIN:\n  EPOCHS: 10000000\n", "TRAIN.EPOCHS: value 10000000 must be in 1..1000000");
    refused("MODEL:\n  ADAPTER:\n    KIND: dora\n", "line 3", "MODEL.ADAPTER.KIND: unknown value 'dora'");
}
END_TEST

START_TEST(numbers_accepted_at_the_edges) {
    mt_config c;
    ck_assert_msg(load(&c, "MODEL:\n  SWIN:\n    DEPTHS: [64, 1, +1, 1]\n    EMBED_DIM: 65536 # max\n"
                           "  MTLORA: {R: [0], DROPOUT: [.5], SHARED_SCALE: [5.]}\n"
                           "TRAIN:\n  OPTIMIZER: {BETAS: [0, 0.999999], EPS: 1}\n  BASE_LR: 1e-30\n"
                           "SEED: -2147483648\n") == MT_OK, "%s", err);
    ck_assert_int_eq(c.depths[0], 64);
    ck_assert_int_eq(c.depths[2], 1);
    ck_assert_int_eq(c.embed_dim, 65536);
    ck_assert(c.raw.dropout[0] == 0.5f && c.raw.shared_scale[0] == 5.0f && c.betas[1] == 0.999999f);
    ck_assert(c.base_lr == 1e-30f && c.optimizer_eps == 1.0f);
    ck_assert_int_eq(c.seed, -2147483647 - 1);
    ck_assert_int_eq(c.raw.n_depths, 4);
}
END_TEST

/* The same values through --opts: the same parser, named by --opts and key. */
START_TEST(opts_use_the_same_parser) {
    OPTS_REFUSED("MODEL.SWIN.DEPTHS", "[2, 2, 1e10, 2]", "--opts: MODEL.SWIN.DEPTHS[2]: value '1e10'");
    OPTS_REFUSED("MODEL.MTLORA.R", "[1e10]", "MODEL.MTLORA.R[0]", "0..4096");
    OPTS_REFUSED("MODEL.SWIN.EMBED_DIM", "1000000000", "1..65536");
    OPTS_REFUSED("TRAIN.BASE_LR", "1e39", "beyond the float range");
    OPTS_REFUSED("TRAIN.OPTIMIZER.BETAS", "[7.5, -3]", "BETAS[0]: value 7.5");
    OPTS_REFUSED("TRAIN.OPTIMIZER.BETAS", "(0.9, -3)", "BETAS[1]: value -3");
    OPTS_REFUSED("TRAIN.OPTIMIZER.EPS", "-1", "value -1");
    OPTS_REFUSED("TRAIN.WEIGHT_DECAY", "-1", "value -1");
    OPTS_REFUSED("TRAIN.CLIP_GRAD", "-1", "must be >= 0");
    OPTS_REFUSED("TRAIN.EPOCHS", "1e3", "is not an integer");
    OPTS_REFUSED("DATA.BATCH_SIZE", "'8x'", "value '8x' is not a number");
    OPTS_REFUSED("MODEL.MTLORA.R_PER_TASK", "{shared: [64.5]}", "R_PER_TASK.shared[0]", "whole");
    OPTS_REFUSED("DATA.BATCH_SIZE", "1\n---\n2", "second YAML document");
    OPTS_REFUSED("MODEL.NAME", "\"a\\0b\"", "NUL");
    mt_config c;
    ck_assert_int_eq(mt_config_builtin(&c, err, sizeof err), MT_OK);
    ck_assert_msg(mt_config_set(&c, "TRAIN.OPTIMIZER.BETAS", "[0.5, 0.75]", err, sizeof err) == MT_OK,
                  "%s", err);
    ck_assert(c.betas[0] == 0.5f && c.betas[1] == 0.75f);
}
END_TEST

/* Values a program set itself, past the loader: finalize checks the same
 * bounds and names the key, before any of them reaches a cast or a shift. */
START_TEST(finalize_checks_programmatic_values) {
    mt_config c;
    static const char *const keys[] = {"MODEL.SWIN.EMBED_DIM", "MODEL.MTLORA.R[0]",
                                       "TRAIN.OPTIMIZER.BETAS[0]", "TRAIN.OPTIMIZER.EPS",
                                       "MODEL.SWIN.DEPTHS[1]", "MODEL.MTLORA.R_PER_TASK.semseg[0]"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        ck_assert_int_eq(mt_config_builtin(&c, err, sizeof err), MT_OK);
        ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
        ck_assert_int_eq(mt_config_builtin(&c, err, sizeof err), MT_OK);
        switch (i) {
        case 0: c.embed_dim = 1 << 30; break;
        case 1: c.raw.r[0] = 1e10f; break;
        case 2: c.betas[0] = 7.5f; break;
        case 3: c.optimizer_eps = NAN; break;
        case 4: c.depths[1] = -2147483647 - 1; break;
        case 5:
            ck_assert_str_eq(c.raw.r_per_task[0].name, "semseg");
            c.raw.r_per_task[0].v[0] = 4.5f;
            break;
        }
        ck_assert_msg(mt_config_finalize(&c, err, sizeof err) != MT_OK, "%s accepted", keys[i]);
        ck_assert_msg(strstr(err, keys[i]) != NULL, "message '%s' lacks '%s'", err, keys[i]);
    }
}
END_TEST

START_TEST(alias_count_is_bounded) {
    /* the classic billion laughs: nine levels of nine aliases */
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i < 10; i++) {
        n += (size_t)snprintf(text + n, sizeof text - n, "l%d: &l%d [", i, i);
        for (int j = 0; j < 9; j++) n += (size_t)snprintf(text + n, sizeof text - n, "%s*l%d", j ? ", " : "", i - 1);
        n += (size_t)snprintf(text + n, sizeof text - n, "]\n");
    }
    /* the 65th alias is the second of line 9 (l8) */
    refused(text, "line 9", "l8: alias *l7: more than 64 aliases");
    /* 70 aliases of one mapping, one per line: the 65th is on line 67 */
    n = (size_t)snprintf(text, sizeof text, "DATA: &d {IMG_SIZE: 224}\nAUG:\n");
    for (int i = 0; i < 70; i++) n += (size_t)snprintf(text + n, sizeof text - n, "  K%d: *d\n", i);
    refused(text, "line 67", "AUG.K64: alias *d: more than 64 aliases");
}
END_TEST

START_TEST(alias_expansion_is_bounded) {
    /* 64 aliases (within the count) in a chain of 32 levels of two: 2^32
     * nodes to whoever walks it; refused by the visit budget */
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "a0: &a0 {}\n");
    for (int i = 1; i <= 32; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "a%d: &a%d {x: *a%d, y: *a%d}\n", i, i, i - 1, i - 1);
    refused(text, "aliases expand the document past", "refused as an alias bomb");
    /* a flat use of aliases is fine */
    mt_config c;
    ck_assert_msg(load(&c, "MODEL:\n  MTLORA:\n    ENABLED: True\n"
                           "    R_PER_TASK: {shared: &r [4], sal: *r, semseg: *r}\n"
                           "TASKS: [sal, semseg]\n") == MT_OK, "%s", err);
    ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(c.mtlora.r_task[1][3], 4);
    ck_assert_int_eq(c.mtlora.r[0], 4);
    /* a cycle (an alias inside its own anchor) ends at the key length */
    ck_assert_int_ne(load(&c, "MODEL: &m {SWIN: *m}\n"), MT_OK);
    ck_assert_ptr_nonnull(strstr(err, tmp_path()));
    refused("TASKS: &t [*t]\n", "TASKS[0]: expected a task name, got a list");
}
END_TEST

START_TEST(one_document_only) {
    refused("TASKS: [sal]\n---\nTASKS: [semseg]\n", "line 2", "a second YAML document");
    refused("---\nTASKS: [sal]\n...\n--- {}\n", "line 4", "a second YAML document");
    mt_config c;
    ck_assert_msg(load(&c, "---\nTASKS: [sal]\n...\n") == MT_OK, "%s", err);
    ck_assert_int_eq(c.ntasks, 1);
    ck_assert_msg(load(&c, "# only a comment\n") == MT_OK, "%s", err);
    ck_assert_msg(load(&c, "") == MT_OK, "%s", err);
}
END_TEST

/* The line of a syntax error is the one libyaml names (problem_mark, with
 * its problem and context), not line 1. */
START_TEST(syntax_errors_name_libyamls_line) {
    refused("DATA:\n  IMG_SIZE: 224\n  BATCH_SIZE: 4\n bad: 1\n",
            "line 4 column 2: YAML error: did not find expected key (while parsing a block mapping");
    refused("MODEL:\n  SWIN:\n    EMBED_DIM: 96\n    DEPTHS: [2, 2\nTASKS: [sal]\n",
            "line 5 column 6: YAML error: did not find expected ',' or ']' (while parsing a flow "
            "sequence at line 4)");
    refused("A: 1\nB: 2\nC: \"open\n", "line 4 column 1: YAML error: found unexpected end of stream "
            "(while scanning a quoted scalar at line 3)");
    refused("A: 1\n\tB: 2\n", "line 2 column 1: YAML error: found a tab character");
    /* an alias to no anchor: the loader's (composer's) error, its line */
    refused("A: 1\nB: *nowhere\n", "line 2 column 4: YAML error: found undefined alias");
}
END_TEST

START_TEST(nesting_and_size_are_bounded) {
    char text[256];
    size_t n = (size_t)snprintf(text, sizeof text, "A:\n  B: ");
    for (int i = 0; i < 40; i++) text[n++] = '[';
    for (int i = 0; i < 40; i++) text[n++] = ']';
    text[n++] = '\n';
    text[n] = '\0';
    refused(text, "line 2", "A.B: nesting deeper than 32 levels");
    /* 30000 nodes in a 60 KB list */
    const size_t big = 60012;
    char *list = malloc(big + 16);
    n = (size_t)snprintf(list, big, "A: [");
    for (int i = 0; i < 30000; i++) n += (size_t)snprintf(list + n, big - n, "1,");
    n += (size_t)snprintf(list + n, big + 16 - n, "1]\n");
    refused_len(list, n, "A: more than 20000 YAML nodes", (const char *)NULL);
    free(list);
    /* over 1 MiB */
    const size_t huge = (1u << 20) + 100;
    char *pad = malloc(huge);
    memset(pad, '#', huge);
    for (size_t i = 79; i < huge; i += 80) pad[i] = '\n';
    refused_len(pad, huge, "larger than 1048576 bytes", (const char *)NULL);
    free(pad);
    /* a directory */
    mt_config c;
    mt_config_default(&c);
    ck_assert_int_eq(mt_config_load(&c, "/tmp", err, sizeof err), MT_ERR_IO);
    ck_assert_msg(strstr(err, "/tmp: cannot read") == err, "%s", err);
}
END_TEST

START_TEST(bytes_that_are_not_text) {
    refused("MODEL:\n  NAME: caf\xe9\nTASKS: [sal]\n", "line 2 column 12", "MODEL.NAME: invalid UTF-8 (byte 0xe9)");
    refused("MODEL:\n  NAME: \"d\xc3\xa9j\xc3\xa0 \xff\"\n", "line 2 column 15", "MODEL.NAME: invalid UTF-8 (byte 0xff)");
    refused("RUN:\n  DIR: [a, \"b\xed\xa0\x80\"]\n", "line 2", "RUN.DIR: invalid UTF-8 (byte 0xed)");
    refused("MODEL:\n  NAME: \"ab\x01" "cd\"\n", "line 2", "MODEL.NAME: character U+0001 is not allowed");
    static const char nul[] = "MODEL:\n  NAME: a\0b\n";
    refused_len(nul, sizeof nul - 1, "line 2", "MODEL.NAME: character U+0000", (const char *)NULL);
    refused("MODEL:\n  NA\xffME: x\n", "line 2 column 5", "invalid UTF-8 (byte 0xff)");
    refused("\xff\xfeM\0", "line 1 column 1", "invalid UTF-8");
    /* escapes inside double quotes are text: a NUL is refused for strings */
    refused("MODEL:\n  NAME: \"a\\0b\"\n", "line 2", "MODEL.NAME: the string holds a NUL character");
    char longname[300];
    memset(longname, 'x', 200);
    longname[200] = '\0';
    char text[400];
    snprintf(text, sizeof text, "MODEL:\n  NAME: %s\n", longname);
    refused(text, "line 2", "MODEL.NAME: a string of 200 bytes (at most 127)");
}
END_TEST

START_TEST(keys_given_twice) {
    refused("TASKS: [sal]\nTASKS: [semseg]\n", "line 2", "TASKS: given twice in one mapping (first at line 1)");
    refused("MODEL:\n  SWIN: {EMBED_DIM: 96}\nMODEL:\n  NAME: x\n", "line 3", "MODEL: given twice");
    refused("MODEL.NAME: a\nMODEL:\n  NAME: b\n", "line 3", "MODEL.NAME: set twice in one file (first at line 1)");
    refused("MODEL:\n  MTLORA:\n    R_PER_TASK: {sal: [4], sal: [8]}\n", "line 3",
            "MODEL.MTLORA.R_PER_TASK.sal: given twice");
    refused("MODEL:\n  SWIN:\n    ? [a]\n    : 1\n", "line 3", "MODEL.SWIN: a key that is a list");
}
END_TEST

/* The writer: any valid UTF-8 string in any string key loads back byte for
 * byte, and the file holds no raw control character. */
static const char *const NASTY[] = {
    "line\nbreak", "tab\there", "cr\r\nlf", "\x01\x02\x1f\x7f ctrl", "quote\"s", "back\\slash\\",
    "colon: value", "- dash", "#hash", "&anchor", "*alias", "!tag", "%directive", "{flow: 1}",
    "[list]", "'single'", "  leading and trailing  ", "", "null", "~", "True", "123", "1e5",
    "\xc3\xa9 \xc3\xbc \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "\xc2\x85 NEL", "\xe2\x80\xa8 LS \xe2\x80\xa9 PS",
    "\xc2\x80\xc2\x9f C1", "\xef\xbb\xbf BOM", "\xef\xbf\xbe\xef\xbf\xbf nonchar", "---", "...", "? key", "|",
    ">", "@", "`", "\x1b[31mred", "a\\nb", "\\x41", "trailing space ", "\xf4\x8f\xbf\xbf max",
};

static char *field_of(mt_config *c, int k, size_t *cap) {
    switch (k) {
    case 0: *cap = sizeof c->name; return c->name;
    case 1: *cap = sizeof c->data_path; return c->data_path;
    case 2: *cap = sizeof c->run.dir; return c->run.dir;
    default: *cap = sizeof c->pretrained; return c->pretrained;
    }
}

static void roundtrip(const mt_config *a, const char *what) {
    char path[] = "/tmp/mtlora_hostile_rt_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_msg(mt_config_write_yaml(a, path, err, sizeof err) == MT_OK, "%s: %s", what, err);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    for (int ch; (ch = fgetc(f)) != EOF;)
        ck_assert_msg(ch >= 0x20 || ch == '\n', "%s: raw byte 0x%02x in the written file", what, ch);
    fclose(f);
    mt_config b;
    mt_config_default(&b);
    mt_status st = mt_config_load(&b, path, err, sizeof err);
    if (!st) st = mt_config_finalize(&b, err, sizeof err);
    ck_assert_msg(st == MT_OK, "%s: reloading: %s", what, err);
    ck_assert_str_eq(a->name, b.name);
    ck_assert_str_eq(a->data_path, b.data_path);
    ck_assert_str_eq(a->run.dir, b.run.dir);
    ck_assert_msg(memcmp(a, &b, sizeof b) == 0, "%s: the written config does not load back the same", what);
    unlink(path);
}

START_TEST(writer_roundtrips_any_string) {
    mt_config a;
    char what[128];
    for (size_t i = 0; i < sizeof NASTY / sizeof NASTY[0]; i++)
        for (int k = 0; k < 4; k++) {
            ck_assert_int_eq(mt_config_builtin(&a, err, sizeof err), MT_OK);
            size_t cap;
            char *f = field_of(&a, k, &cap);
            memset(f, 0, cap);
            snprintf(f, cap, "%s", NASTY[i]);
            ck_assert_msg(mt_config_finalize(&a, err, sizeof err) == MT_OK, "%s", err);
            snprintf(what, sizeof what, "string %zu in field %d", i, k);
            roundtrip(&a, what);
        }
    /* the names of the per-task lists (any name is kept, used or not) */
    for (size_t i = 0; i < sizeof NASTY / sizeof NASTY[0]; i++) {
        if (!NASTY[i][0] || strlen(NASTY[i]) >= MT_TASK_NAME_LEN) continue;
        ck_assert_int_eq(mt_config_builtin(&a, err, sizeof err), MT_OK);
        mt_named_list *l = &a.raw.r_per_task[a.raw.n_r_per_task++];
        memset(l, 0, sizeof *l);
        snprintf(l->name, sizeof l->name, "%s", NASTY[i]);
        l->n = 1;
        l->v[0] = 4;
        ck_assert_msg(mt_config_finalize(&a, err, sizeof err) == MT_OK, "%s", err);
        snprintf(what, sizeof what, "R_PER_TASK name %zu", i);
        roundtrip(&a, what);
    }
    /* a string that is not UTF-8 cannot be written as YAML: refused by key */
    ck_assert_int_eq(mt_config_builtin(&a, err, sizeof err), MT_OK);
    snprintf(a.name, sizeof a.name, "caf\xe9");
    ck_assert_msg(mt_config_finalize(&a, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_ne(mt_config_write_yaml(&a, "/tmp/mtlora_hostile_never.yaml", err, sizeof err), MT_OK);
    ck_assert_msg(strstr(err, "/tmp/mtlora_hostile_never.yaml: MODEL.NAME: not valid UTF-8") == err, "%s", err);
    ck_assert_int_ne(access("/tmp/mtlora_hostile_never.yaml", F_OK), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("config_hostile");
    TCase *tc = tcase_create("hostile");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, numbers_refused_by_file_line_and_key);
    tcase_add_test(tc, numbers_accepted_at_the_edges);
    tcase_add_test(tc, opts_use_the_same_parser);
    tcase_add_test(tc, finalize_checks_programmatic_values);
    tcase_add_test(tc, alias_count_is_bounded);
    tcase_add_test(tc, alias_expansion_is_bounded);
    tcase_add_test(tc, one_document_only);
    tcase_add_test(tc, syntax_errors_name_libyamls_line);
    tcase_add_test(tc, nesting_and_size_are_bounded);
    tcase_add_test(tc, bytes_that_are_not_text);
    tcase_add_test(tc, keys_given_twice);
    tcase_add_test(tc, writer_roundtrips_any_string);
    suite_add_tcase(s, tc);
    int rc = run_suite(s);
    unlink(tmp_path());
    return rc;
}
