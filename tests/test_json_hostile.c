/* test_json_hostile.c - the strict JSON reader (io/json_file.c) and the
 * adapter_config.json checks (src/model/adapter_peft.c) on hostile input
 * (issue 14): malformed numbers, NUL, bad escapes, invalid UTF-8, control
 * characters, duplicate keys, deep nesting, text after the document,
 * non-regular files; then every field of adapter_config.json against what
 * the configuration and the weights files say. Each refusal must name the
 * file and the field, key or position; each group starts with documents
 * that must be accepted, so a reader refusing everything fails too. */
#define _GNU_SOURCE /* memmem */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtlora/config/config.h"
#include "mtlora/io/json_file.h"
#include "mtlora/io/json_value.h"
#include "mtlora/io/safetensors.h"
#include "mtlora/model/adapter_peft.h"
#include "test_util.h"

static char dir[64], path[256], err[2048];

static void make_dir(void) {
    snprintf(dir, sizeof dir, "/tmp/mtlora_json_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/doc.json", dir);
}

static void remove_dir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_bytes(const char *p, const void *d, size_t n) {
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(d, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Reads n bytes of text from a file (so the file path is in the message). */
static mt_status read_text(const char *text, size_t n, int depth) {
    write_bytes(path, text, n);
    json_t *doc = NULL;
    err[0] = '\0';
    const mt_status st = json_file_read(path, 1 << 20, depth, &doc, err, sizeof err);
    ck_assert_msg((st == MT_OK) == (doc != NULL), "status %d but document %p", st, (void *)doc);
    json_decref(doc);
    return st;
}

static void expect_refused(const char *what, const char *text, size_t n, const char *needle) {
    const mt_status st = read_text(text, n, 16);
    ck_assert_msg(st == MT_ERR_FORMAT, "%s: accepted (status %d)", what, st);
    ck_assert_msg(strstr(err, path) != NULL, "%s: '%s' does not name the file", what, err);
    ck_assert_msg(strstr(err, "line ") && strstr(err, "column "), "%s: '%s' gives no line/column", what,
                  err);
    if (needle) ck_assert_msg(strstr(err, needle) != NULL, "%s: '%s' lacks '%s'", what, err, needle);
}

#define REFUSED(text, needle) expect_refused(text, text, sizeof(text) - 1, needle)

START_TEST(valid_documents_accepted) {
    make_dir();
    static const char *const ok[] = {
        "{}", "[]", "{\"r\": [4, 8]}", "{\"a\": -0, \"b\": 0.5, \"c\": -1.25e-3, \"d\": 1E+3, \"e\": 0}",
        "{\"s\": \"caf\\u00e9 \\ud83d\\ude00 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}",
        "{\"utf8\": \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", " \n\t{\"a\": [true, false, null]}\r\n ",
        "{\"a\": {\"b\": {\"c\": [[1]]}}}"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        ck_assert_msg(read_text(ok[i], strlen(ok[i]), 16) == MT_OK, "'%s' refused: %s", ok[i], err);
    remove_dir();
}
END_TEST

/* jansson's own lexer holds RFC 8259's number grammar; each case the
 * issue found is verified here, with the key it was read under. */
START_TEST(malformed_numbers_refused) {
    make_dir();
    REFUSED("{\"r\": 1-1}", "in r");
    REFUSED("{\"r\": 01}", "in r");
    REFUSED("{\"r\": 1.}", "in r");
    REFUSED("{\"r\": 16-}", "in r");
    REFUSED("{\"r\": -}", "in r");
    REFUSED("{\"r\": .5}", "in r");
    REFUSED("{\"r\": 1e}", "in r");
    REFUSED("{\"r\": 1e+}", "in r");
    REFUSED("{\"r\": +1}", "in r");
    REFUSED("{\"r\": 0x10}", "in r");
    REFUSED("{\"r\": -01}", "in r");
    REFUSED("{\"r\": NaN}", "in r");
    REFUSED("{\"r\": Infinity}", "in r");
    REFUSED("{\"r\": [1, 2,]}", "in r");
    REFUSED("{\"base\": {\"depths\": [2, 2, 1e999]}}", "in base.depths[2]");
    REFUSED("{\"n\": 99999999999999999999}", "in n");
    remove_dir();
}
END_TEST

START_TEST(nul_refused) {
    make_dir();
    REFUSED("{\"r\": 1\0}", NULL);        /* a NUL byte after a number */
    REFUSED("{\"r\": 1}\0", NULL);        /* ... after the document */
    REFUSED("{\"a\": \"x\0y\"}", "in a"); /* ... inside a string */
    REFUSED("{\"a\": \"x\\u0000y\"}", "in a");
    REFUSED("{\"a\\u0000b\": 1}", NULL);
    remove_dir();
}
END_TEST

START_TEST(bad_escapes_and_control_characters_refused) {
    make_dir();
    REFUSED("{\"a\": \"\\x41\"}", "in a");
    REFUSED("{\"a\": \"\\q\"}", "in a");
    REFUSED("{\"a\": \"\\u12\"}", "in a");
    REFUSED("{\"a\": \"\\u12g4\"}", "in a");
    REFUSED("{\"a\": \"\\ud800\"}", "in a");       /* lone high surrogate */
    REFUSED("{\"a\": \"\\udc00\"}", "in a");       /* lone low surrogate */
    REFUSED("{\"a\": \"\\ud800\\u0041\"}", "in a"); /* high surrogate, no low */
    REFUSED("{\"a\": \"tab\there\"}", "in a");
    REFUSED("{\"a\": \"line\nbreak\"}", "in a");
    REFUSED("{\"a\": 'single'}", "in a");
    remove_dir();
}
END_TEST

START_TEST(invalid_utf8_refused) {
    make_dir();
    REFUSED("{\"a\": \"\xff\"}", NULL);
    REFUSED("{\"a\": \"\xc0\xaf\"}", NULL);         /* overlong '/' */
    REFUSED("{\"a\": \"\xed\xa0\x80\"}", NULL);     /* a surrogate in UTF-8 */
    REFUSED("{\"a\": \"\xe2\x82\"}", NULL);         /* cut sequence */
    REFUSED("{\"a\": \"\xf4\x90\x80\x80\"}", NULL); /* above U+10FFFF */
    REFUSED("{\"\x80\": 1}", NULL);                 /* in a key */
    REFUSED("{\"a\": 1, \xfe}", NULL);              /* outside strings */
    remove_dir();
}
END_TEST

START_TEST(duplicate_keys_refused_by_name) {
    make_dir();
    REFUSED("{\"r\": 1, \"r\": 2}", "key \"r\" appears twice");
    REFUSED("{\"base_model\": {\"depths\": [1], \"type\": \"swin\", \"depths\": [2]}}",
            "key \"base_model.depths\" appears twice");
    REFUSED("{\"a\": [{\"x\": 1}, {\"y\": 1, \"y\": 1}]}", "key \"a[1].y\" appears twice");
    /* the same key in two objects is no duplicate */
    const char *two = "{\"a\": {\"x\": 1}, \"b\": {\"x\": 1}}";
    ck_assert_msg(read_text(two, strlen(two), 16) == MT_OK, "%s", err);
    remove_dir();
}
END_TEST

static char *nested(int levels, const char *open, const char *close) {
    const size_t lo = strlen(open), lc = strlen(close);
    char *s = malloc((size_t)levels * (lo + lc) + 16);
    ck_assert_ptr_nonnull(s);
    size_t n = 0;
    n += (size_t)sprintf(s, "{\"x\": ");
    for (int i = 0; i < levels; i++, n += lo) memcpy(s + n, open, lo);
    s[n++] = '1';
    for (int i = 0; i < levels; i++, n += lc) memcpy(s + n, close, lc);
    s[n++] = '}';
    s[n] = '\0';
    return s;
}

/* Valid JSON only nested deeply is refused with the bound, not "malformed
 * near byte 73"; the bound holds for 3000 levels, past jansson's 2048. */
START_TEST(deep_nesting_refused_with_the_bound) {
    make_dir();
    char *s = nested(7, "[", "]"); /* depth 8: the object and 7 arrays */
    ck_assert_msg(read_text(s, strlen(s), 8) == MT_OK, "depth 8 refused: %s", err);
    free(s);
    s = nested(8, "[", "]");
    ck_assert_int_eq(read_text(s, strlen(s), 8), MT_ERR_FORMAT);
    ck_assert_msg(strstr(err, "nested deeper than 8") && strstr(err, path) && strstr(err, "line 1") &&
                      strstr(err, "in x[0][0][0][0][0][0]"),
                  "%s", err);
    free(s);
    s = nested(3000, "{\"k\": ", "}");
    ck_assert_int_eq(read_text(s, strlen(s), 8), MT_ERR_FORMAT);
    ck_assert_msg(strstr(err, "nested deeper than 8") && strstr(err, "in x.k.k.k.k.k.k"), "%s", err);
    free(s);
    /* brackets inside strings are not nesting */
    const char *str = "{\"x\": \"[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{\\\"[[[[[[\"}";
    ck_assert_msg(read_text(str, strlen(str), 2) == MT_OK, "%s", err);
    remove_dir();
}
END_TEST

START_TEST(text_around_the_document_refused) {
    make_dir();
    REFUSED("{\"a\": 1} x", NULL);
    REFUSED("{\"a\": 1}{\"b\": 2}", NULL);
    REFUSED("{\"a\": 1}}", NULL);
    REFUSED("1", NULL); /* the top is an object or array */
    REFUSED("\"text\"", NULL);
    REFUSED("", NULL);
    REFUSED("{\"format\": \"mtlora-adapter\", \"r\": [4,", "in r");
    remove_dir();
}
END_TEST

START_TEST(non_regular_and_large_files_refused_unread) {
    make_dir();
    json_t *doc = NULL;
    ck_assert_int_eq(json_file_read(dir, 1 << 20, 16, &doc, err, sizeof err), MT_ERR_IO);
    ck_assert_msg(strstr(err, dir) && strstr(err, "directory"), "%s", err);
    char fifo[128];
    snprintf(fifo, sizeof fifo, "%s/fifo.json", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    /* returns at once: opening a FIFO for reading would wait for a writer */
    ck_assert_int_eq(json_file_read(fifo, 1 << 20, 16, &doc, err, sizeof err), MT_ERR_IO);
    ck_assert_msg(strstr(err, fifo) && strstr(err, "FIFO"), "%s", err);
    ck_assert_int_eq(json_file_read("/dev/null", 1 << 20, 16, &doc, err, sizeof err), MT_ERR_IO);
    ck_assert_msg(strstr(err, "/dev/null") && strstr(err, "character device"), "%s", err);
    char big[300];
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[sizeof big - 1] = '}';
    write_bytes(path, big, sizeof big);
    ck_assert_int_eq(json_file_read(path, 200, 16, &doc, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_msg(strstr(err, path) && strstr(err, "larger than the 200 bytes"), "%s", err);
    ck_assert_int_eq(json_file_read(path, 300, 16, &doc, err, sizeof err), MT_OK);
    json_decref(doc);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/none.json", dir);
    ck_assert_int_eq(json_file_read(missing, 1 << 20, 16, &doc, err, sizeof err), MT_ERR_IO);
    ck_assert_msg(strstr(err, missing) != NULL, "%s", err);
    remove_dir();
}
END_TEST

START_TEST(text_path_and_difference) {
    const char *t = "{\"a\": [1, {\"b\": \"x,]\\\"\", \"c\": [5, 6]}], \"d\": 2}";
    char out[128];
    json_text_path(t, strlen(t), (size_t)(strstr(t, "6") - t), out, sizeof out);
    ck_assert_str_eq(out, "a[1].c[1]");
    json_text_path(t, strlen(t), (size_t)(strstr(t, "2}") - t), out, sizeof out);
    ck_assert_str_eq(out, "d");
    json_text_path(t, strlen(t), 0, out, sizeof out);
    ck_assert_str_eq(out, "");
    json_t *a = json_loads("{\"x\": [1, 2, {\"y\": 3}], \"z\": 1}", 0, NULL);
    json_t *b = json_loads("{\"z\": 1.0, \"x\": [1, 2, {\"y\": 4}]}", 0, NULL);
    const json_t *da, *db;
    ck_assert_int_eq(json_first_difference(a, a, out, sizeof out, &da, &db), 0);
    ck_assert_int_eq(json_first_difference(a, b, out, sizeof out, &da, &db), 1);
    ck_assert_str_eq(out, ".x[2].y");
    ck_assert_int_eq(json_integer_value(da), 3);
    ck_assert_int_eq(json_integer_value(db), 4);
    json_decref(a);
    json_decref(b);
}
END_TEST

/* ---- adapter_config.json -------------------------------------------------------- */

static mt_config cfg;

static void small_config(void) {
    mt_config_default(&cfg);
    const char *kv[][2] = {{"DATA.IMG_SIZE", "32"}, {"MODEL.SWIN.EMBED_DIM", "8"},
                           {"MODEL.SWIN.DEPTHS", "[2, 2]"}, {"MODEL.SWIN.NUM_HEADS", "[1, 2]"},
                           {"MODEL.SWIN.WINDOW_SIZE", "4"}, {"MODEL.DECODER_CHANNELS", "[4, 4]"},
                           {"MODEL.MTLORA.ENABLED", "True"}, {"MODEL.MTLORA.R", "[4]"},
                           {"MODEL.MTLORA.SHARED_SCALE", "[4.0]"}, {"MODEL.MTLORA.DROPOUT", "[0.05]"},
                           {"TASKS", "[semseg, normals]"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        ck_assert_msg(mt_config_set(&cfg, kv[i][0], kv[i][1], err, sizeof err) == MT_OK, "%s", err);
    ck_assert_msg(mt_config_finalize(&cfg, err, sizeof err) == MT_OK, "%s", err);
}

static const mt_peft_counts COUNTS = {2, 3 + 8, 1, 5};
static char adapter_st[128], modules_st[128];

/* An adapter directory: adapter_config.json from the writer and two
 * safetensors files holding what COUNTS says. */
static void write_adapter_dir(void) {
    make_dir();
    small_config();
    ck_assert_msg(mt_peft_write_config(path, &cfg, &COUNTS, err, sizeof err) == MT_OK, "%s", err);
    static const float v[16];
    const int64_t s3 = 3, s8 = 8, s5 = 5;
    const st_entry a[2] = {{"x.lora_A", ST_F32, 1, &s3, v}, {"x.lora_B", ST_F32, 1, &s8, v}};
    const st_entry m[1] = {{"x.norm.weight", ST_F32, 1, &s5, v}};
    snprintf(adapter_st, sizeof adapter_st, "%s/" MT_PEFT_ADAPTER_FILE, dir);
    snprintf(modules_st, sizeof modules_st, "%s/" MT_PEFT_MODULES_FILE, dir);
    ck_assert_msg(st_write(adapter_st, a, 2, NULL, 0, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_msg(st_write(modules_st, m, 1, NULL, 0, err, sizeof err) == MT_OK, "%s", err);
}

static json_t *load_doc(void) {
    json_error_t je;
    json_t *d = json_load_file(path, 0, &je);
    ck_assert_msg(d != NULL, "%s", je.text);
    return d;
}

static void save_doc(json_t *d) {
    ck_assert_int_eq(json_dump_file(d, path, JSON_INDENT(2) | JSON_REAL_PRECISION(9)), 0);
    json_decref(d);
}

/* The first kind listed in an object field ("lora_alpha": {"mtlora": ...}),
 * copied: the document is freed before the name is used again. */
static char kind_buf[64];
static const char *first_kind(json_t *d, const char *field) {
    void *it = json_object_iter(json_object_get(d, field));
    ck_assert_ptr_nonnull(it);
    snprintf(kind_buf, sizeof kind_buf, "%s", json_object_iter_key(it));
    return kind_buf;
}

static void expect_config_refused(const char *what, const char *needle1, const char *needle2) {
    err[0] = '\0';
    const mt_status st = mt_peft_check_config(path, &cfg, err, sizeof err);
    ck_assert_msg(st == MT_ERR_FORMAT, "%s: accepted (status %d)", what, st);
    ck_assert_msg(strstr(err, path) != NULL, "%s: '%s' does not name the file", what, err);
    ck_assert_msg(strstr(err, needle1) != NULL, "%s: '%s' lacks '%s'", what, err, needle1);
    if (needle2) ck_assert_msg(strstr(err, needle2) != NULL, "%s: '%s' lacks '%s'", what, err, needle2);
}

START_TEST(written_config_accepted) {
    write_adapter_dir();
    ck_assert_msg(mt_peft_check_config(path, &cfg, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_msg(mt_peft_check_counts(path, adapter_st, modules_st, err, sizeof err) == MT_OK, "%s", err);
    /* reals written as integers (16.0 as 16) compare by value */
    json_t *d = load_doc();
    json_t *al = json_object_get(json_object_get(d, "lora_alpha"), first_kind(d, "lora_alpha"));
    const double v0 = json_number_value(json_array_get(al, 0));
    ck_assert(v0 == 16.0);
    json_array_set_new(al, 0, json_integer(16));
    save_doc(d);
    ck_assert_msg(mt_peft_check_config(path, &cfg, err, sizeof err) == MT_OK, "%s", err);
    remove_dir();
}
END_TEST

START_TEST(lora_alpha_and_scaling_checked) {
    write_adapter_dir();
    json_t *d = load_doc();
    const char *k = first_kind(d, "lora_alpha");
    json_array_set_new(json_object_get(json_object_get(d, "lora_alpha"), k), 1, json_real(32));
    save_doc(d);
    expect_config_refused("lora_alpha changed", "lora_alpha.", "is 32");
    d = load_doc(); /* restored, then scaling alone changed */
    json_array_set_new(json_object_get(json_object_get(d, "lora_alpha"), k), 1, json_real(16));
    json_array_set_new(json_object_get(json_object_get(d, "scaling"), k), 0, json_real(2));
    save_doc(d);
    expect_config_refused("scaling changed", "scaling.", "lora_alpha / r");
    d = load_doc(); /* both changed consistently: config.yaml says otherwise */
    json_array_set_new(json_object_get(json_object_get(d, "lora_alpha"), k), 0, json_real(8));
    save_doc(d);
    expect_config_refused("alpha and scaling changed together", "field \"lora_alpha\"", "config.yaml implies");
    remove_dir();
}
END_TEST

START_TEST(dropout_bias_and_unknown_fields_checked) {
    write_adapter_dir();
    json_t *d = load_doc();
    const char *k = first_kind(d, "lora_dropout");
    json_array_set_new(json_object_get(json_object_get(d, "lora_dropout"), k), 0, json_real(1.5));
    save_doc(d);
    expect_config_refused("dropout 1.5", "lora_dropout.", "[0, 1)");
    d = load_doc();
    json_array_set_new(json_object_get(json_object_get(d, "lora_dropout"), k), 0, json_real(1));
    save_doc(d);
    expect_config_refused("dropout 1", "lora_dropout.", "[0, 1)");
    d = load_doc();
    json_array_set_new(json_object_get(json_object_get(d, "lora_dropout"), k), 0, json_real(0.5));
    save_doc(d);
    expect_config_refused("dropout 0.5", "field \"lora_dropout\"", "0.05 from config.yaml");
    d = load_doc();
    json_array_set_new(json_object_get(json_object_get(d, "lora_dropout"), k), 0, json_real(0.05));
    json_object_set_new(d, "bias", json_string("all"));
    save_doc(d);
    expect_config_refused("bias all", "field \"bias\" is \"all\"", "only \"none\"");
    d = load_doc();
    json_object_set_new(d, "bias", json_string("none"));
    json_object_set_new(d, "lora_aplha", json_integer(16));
    save_doc(d);
    expect_config_refused("misspelt field", "unknown field \"lora_aplha\"", NULL);
    d = load_doc();
    json_object_del(d, "lora_aplha");
    json_object_set_new(d, "modules_to_save_file", json_string("other.safetensors"));
    save_doc(d);
    expect_config_refused("modules_to_save_file", "modules_to_save_file", "other.safetensors");
    d = load_doc();
    json_object_set_new(d, "modules_to_save_file", json_string(MT_PEFT_MODULES_FILE));
    json_object_del(d, "target_modules");
    save_doc(d);
    expect_config_refused("target_modules missing", "field \"target_modules\" is (absent)", NULL);
    d = load_doc();
    json_t *tm = json_array();
    json_array_append_new(tm, json_string("attn.qkv"));
    json_object_set_new(d, "target_modules", tm);
    save_doc(d);
    expect_config_refused("target_modules changed", "field \"target_modules\"", "config.yaml implies");
    remove_dir();
}
END_TEST

/* Replaces the first `from` in the file's text by `to`. */
static void edit_text(const char *from, const char *to) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static char text[1 << 16], out[1 << 16];
    const size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *p = strstr(text, from);
    ck_assert_msg(p != NULL, "'%s' not in %s", from, text);
    const size_t head = (size_t)(p - text);
    memcpy(out, text, head);
    const int m = snprintf(out + head, sizeof out - head, "%s%s", to, p + strlen(from));
    write_bytes(path, out, head + (size_t)m);
}

START_TEST(hostile_text_in_adapter_config_refused) {
    write_adapter_dir();
    static const char *const cases[][3] = {
        {"\"format_version\": 1", "\"format_version\": 01", "format_version"},
        {"\"format_version\": 1", "\"format_version\": 1-1", "format_version"},
        {"\"format_version\": 1", "\"format_version\": 1.", "format_version"},
        {"\"format_version\": 1", "\"format_version\": 16-", "format_version"},
        {"\"bias\": \"none\"", "\"bias\": \"n\\one\"", "bias"},
        {"\"bias\": \"none\"", "\"bias\": \"none\", \"bias\": \"none\"", "key \"bias\" appears twice"},
        {"\"bias\": \"none\"", "\"bias\": \"\xc3(\"", "bias"},
    };
    char saved[1 << 16];
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    const size_t n = fread(saved, 1, sizeof saved, f);
    fclose(f);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_bytes(path, saved, n);
        edit_text(cases[i][0], cases[i][1]);
        expect_config_refused(cases[i][1], cases[i][2], "line ");
    }
    /* a NUL right after a number, in place of the ',' that followed it */
    char *p = memmem(saved, n, "\"format_version\": 1,", 20);
    ck_assert_ptr_nonnull(p);
    p[19] = '\0';
    write_bytes(path, saved, n);
    expect_config_refused("NUL after a number", "format_version", "line ");
    remove_dir();
}
END_TEST

START_TEST(tensor_counts_checked_against_the_files) {
    write_adapter_dir();
    static const char *const fields[] = {"adapter_tensors", "adapter_values", "trained_module_tensors",
                                         "trained_module_values"};
    for (size_t i = 0; i < 4; i++) {
        json_t *d = load_doc();
        const json_int_t was = json_integer_value(json_object_get(d, fields[i]));
        json_object_set_new(d, fields[i], json_integer(was + 1));
        save_doc(d);
        err[0] = '\0';
        ck_assert_int_eq(mt_peft_check_counts(path, adapter_st, modules_st, err, sizeof err), MT_ERR_FORMAT);
        char want[128];
        snprintf(want, sizeof want, "field \"%s\" is %lld", fields[i], (long long)was + 1);
        ck_assert_msg(strstr(err, path) && strstr(err, want) && strstr(err, i < 2 ? adapter_st : modules_st),
                      "%s", err);
        d = load_doc();
        json_object_set_new(d, fields[i], json_integer(was));
        save_doc(d);
    }
    ck_assert_msg(mt_peft_check_counts(path, adapter_st, modules_st, err, sizeof err) == MT_OK, "%s", err);
    json_t *d = load_doc();
    json_object_set_new(d, "adapter_values", json_string("11"));
    save_doc(d);
    ck_assert_int_eq(mt_peft_check_counts(path, adapter_st, modules_st, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_msg(strstr(err, "field \"adapter_values\" is \"11\""), "%s", err);
    remove_dir();
}
END_TEST

int main(void) {
    Suite *s = suite_create("json_hostile");
    TCase *tj = tcase_create("json");
    tcase_add_test(tj, valid_documents_accepted);
    tcase_add_test(tj, malformed_numbers_refused);
    tcase_add_test(tj, nul_refused);
    tcase_add_test(tj, bad_escapes_and_control_characters_refused);
    tcase_add_test(tj, invalid_utf8_refused);
    tcase_add_test(tj, duplicate_keys_refused_by_name);
    tcase_add_test(tj, deep_nesting_refused_with_the_bound);
    tcase_add_test(tj, text_around_the_document_refused);
    tcase_add_test(tj, non_regular_and_large_files_refused_unread);
    tcase_add_test(tj, text_path_and_difference);
    suite_add_tcase(s, tj);
    TCase *ta = tcase_create("adapter_config");
    tcase_set_timeout(ta, 30);
    tcase_add_test(ta, written_config_accepted);
    tcase_add_test(ta, lora_alpha_and_scaling_checked);
    tcase_add_test(ta, dropout_bias_and_unknown_fields_checked);
    tcase_add_test(ta, hostile_text_in_adapter_config_refused);
    tcase_add_test(ta, tensor_counts_checked_against_the_files);
    suite_add_tcase(s, ta);
    return run_suite(s);
}
