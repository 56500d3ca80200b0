/* adapter_peft.c - the PEFT adapter directory's contents (adapter_peft.h):
 * which tensors go in which file, and adapter_config.json built from and
 * checked against the configuration.
 *
 * The JSON goes through jansson (mtlora/io/json_file.h): the document is a
 * json_t tree, written in insertion order, read with duplicate keys
 * refused. Config values are float32; they are stored as the doubles of
 * their shortest decimal form and written with 9 significant digits, which
 * prints exactly that form ("0.05", not 0.050000000000000003), so a file
 * read back compares equal to the config that wrote it. */
#include "mtlora/model/adapter_peft.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mtlora/io/json_file.h"
#include "mtlora/io/json_value.h"
#include "mtlora/io/safetensors.h"

#define DUMP_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(9))
/* adapter_config.json is a few kilobytes; anything near this is not one */
#define MAX_CONFIG_JSON ((size_t)1 << 20)
/* Its deepest value is mtlora.r_per_task.<task>[s]: four levels. */
#define MAX_CONFIG_DEPTH 8

static const char *const MODULE_NAMES[MT_LAYER_KINDS] = {"attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"};

int mt_peft_is_adapter_tensor(void *user, const char *name) {
    (void)user;
    return strstr(name, "lora_") != NULL;
}

int mt_peft_is_trained_module(void *model, const char *name) {
    if (strstr(name, "lora_")) return 0;
    const param_entry *e = param_bank_find(mt_model_bank(model), name);
    if (!e) return strstr(name, "num_batches_tracked") != NULL;
    return e->kind == MT_PARAM_TRAINABLE || e->kind == MT_PARAM_BUFFER;
}

mt_peft_counts mt_peft_count(mt_model *m) {
    mt_peft_counts n = {0, 0, 0, 0};
    const param_bank *bank = mt_model_bank(m);
    for (int i = 0; i < bank->count; i++) {
        const param_entry *e = &bank->entries[i];
        if (mt_peft_is_adapter_tensor(NULL, e->name)) {
            n.adapter_tensors++;
            n.adapter_values += e->count;
        } else if (mt_peft_is_trained_module(m, e->name)) {
            n.module_tensors++;
            n.module_values += e->count;
        }
    }
    /* num_batches_tracked of each task's head: saved, not in the bank */
    const int ntasks = mt_model_config(m)->ntasks;
    n.module_tensors += (size_t)ntasks;
    n.module_values += (size_t)ntasks;
    return n;
}

/* ---- building the document ------------------------------------------------ */

/* Sets o[key] = v (taking v); a NULL v (a failed allocation) or a failed
 * set marks *bad, so the builders check once at the end. */
static void put(json_t *o, const char *key, json_t *v, int *bad) {
    if (json_object_set_new(o, key, v)) *bad = 1;
}

static void push(json_t *a, json_t *v, int *bad) {
    if (json_array_append_new(a, v)) *bad = 1;
}

static json_t *cfg_real(float v) {
    char t[32];
    mt_config_format_float(t, sizeof t, v);
    return json_real(strtod(t, NULL));
}

static json_t *int_list(const int *v, int n, int *bad) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) push(a, json_integer(v[i]), bad);
    return a;
}

static json_t *real_list(const float *v, int n, int *bad) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) push(a, cfg_real(v[i]), bad);
    return a;
}

static int has_kind(const mt_config *c, mt_adapter_kind k) {
    for (int i = 0; i < MT_LAYER_KINDS; i++)
        if (c->adapter.layer_kind[i] == k) return 1;
    return 0;
}

/* The patch-merging reductions carry plain LoRA when MTLoRA's downsampler
 * adapters are on. */
static int has_reduction_lora(const mt_config *c) {
    return c->adapter.baseline == MT_BASELINE_NONE && c->mtlora.enabled && c->mtlora.downsampler_enabled;
}

/* Per kind, the stage list of scale (what = 0), alpha = scale * r (1) or
 * dropout (2): {"lora": [...], "mtl_lora": [...]}. */
static json_t *kinds_object(const mt_config *c, int what, int *bad) {
    static const mt_adapter_kind order[] = {MT_ADAPTER_MTLORA, MT_ADAPTER_LORA, MT_ADAPTER_MTL_LORA,
                                            MT_ADAPTER_CGC_LORA};
    json_t *o = json_object();
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const mt_adapter_kind k = order[i];
        if (!has_kind(c, k) && !(k == MT_ADAPTER_LORA && has_reduction_lora(c))) continue;
        float v[MT_MAX_STAGES];
        for (int s = 0; s < c->nstages; s++) {
            float scale, drop;
            if (k == MT_ADAPTER_MTL_LORA) {
                scale = c->adapter.mtl_scale;
                drop = c->adapter.mtl_dropout;
            } else if (k == MT_ADAPTER_CGC_LORA) {
                scale = c->adapter.cgc_scale;
                drop = c->adapter.cgc_dropout;
            } else {
                scale = c->mtlora.shared_scale[s];
                drop = c->mtlora.dropout[s];
            }
            v[s] = what == 0 ? scale : what == 1 ? scale * (float)c->mtlora.r[s] : drop;
        }
        put(o, mt_adapter_kind_name(k), real_list(v, c->nstages, bad), bad);
    }
    return o;
}

/* PEFT's peft_type: the kind of the adapted block linears in capitals,
 * MIXED if they differ. */
static void peft_type(const mt_adapter_config *a, char *out, size_t cap) {
    mt_adapter_kind first = MT_ADAPTER_NONE;
    int mixed = 0;
    for (int k = 0; k < MT_LAYER_KINDS; k++) {
        if (a->layer_kind[k] == MT_ADAPTER_NONE) continue;
        if (first == MT_ADAPTER_NONE) first = a->layer_kind[k];
        else if (a->layer_kind[k] != first) mixed = 1;
    }
    snprintf(out, cap, "%s", mixed ? "MIXED" : mt_adapter_kind_name(first));
    for (char *p = out; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
}

static json_t *base_model(const mt_config *c, int *bad) {
    json_t *b = json_object();
    put(b, "type", json_string("swin"), bad);
    put(b, "embed_dim", json_integer(c->embed_dim), bad);
    put(b, "depths", int_list(c->depths, c->nstages, bad), bad);
    put(b, "num_heads", int_list(c->heads, c->nstages, bad), bad);
    put(b, "window_size", json_integer(c->window_size), bad);
    put(b, "img_size", json_integer(c->img_size), bad);
    put(b, "patch_size", json_integer(c->patch_size), bad);
    put(b, "in_chans", json_integer(c->in_chans), bad);
    put(b, "mlp_ratio", cfg_real(c->mlp_ratio), bad);
    put(b, "qkv_bias", json_boolean(c->qkv_bias), bad);
    return b;
}

/* The kind-specific sections (only for kinds the model uses). */
static void kind_sections(json_t *o, const mt_config *c, int *bad) {
    const mt_adapter_config *a = &c->adapter;
    const int L = c->nstages;
    if (has_kind(c, MT_ADAPTER_MTLORA)) {
        /* the task-specific terms of the last block of each stage */
        json_t *m = json_object(), *r = json_object(), *s = json_object();
        for (int t = 0; t < c->ntasks; t++) {
            put(r, c->tasks[t], int_list(c->mtlora.r_task[t], L, bad), bad);
            put(s, c->tasks[t], real_list(c->mtlora.task_scale[t], L, bad), bad);
        }
        put(m, "r_per_task", r, bad);
        put(m, "task_scale", s, bad);
        put(o, "mtlora", m, bad);
    }
    if (has_kind(c, MT_ADAPTER_MTL_LORA)) {
        json_t *m = json_object();
        put(m, "num_b", json_integer(a->mtl_num_b), bad);
        put(m, "tau", cfg_real(a->mtl_tau), bad);
        put(m, "lambda", json_string(a->mtl_lambda), bad);
        put(o, "mtl_lora", m, bad);
    }
    if (has_kind(c, MT_ADAPTER_CGC_LORA)) {
        int re[MT_MAX_STAGES];
        for (int s = 0; s < L; s++) re[s] = mt_model_cgc_expert_rank(c, s);
        json_t *m = json_object();
        put(m, "shared_experts", json_integer(a->n_shared_experts), bad);
        put(m, "task_experts", json_integer(a->cgc_task), bad);
        put(m, "gate_dim", json_integer(a->cgc_gate_dim), bad);
        put(m, "expert_r", int_list(re, L, bad), bad);
        put(o, "cgc_lora", m, bad);
    }
}

/* The fields of adapter_config.json that follow from the config alone
 * (mt_peft_check_config regenerates them); NULL when out of memory. */
static json_t *config_fields(const mt_config *c) {
    const mt_adapter_config *a = &c->adapter;
    int bad = 0;
    json_t *o = json_object();
    char type[24];
    peft_type(a, type, sizeof type);
    put(o, "peft_type", json_string(type), &bad);
    put(o, "format", json_string(MT_PEFT_FORMAT), &bad);
    put(o, "format_version", json_integer(MT_PEFT_FORMAT_VERSION), &bad);
    put(o, "base_model", base_model(c, &bad), &bad);
    json_t *tasks = json_array();
    for (int t = 0; t < c->ntasks; t++) push(tasks, json_string(c->tasks[t]), &bad);
    put(o, "tasks", tasks, &bad);
    json_t *targets = json_array(), *kinds = json_object();
    for (int k = 0; k < MT_LAYER_KINDS; k++) {
        if (a->layer_kind[k] != MT_ADAPTER_NONE) push(targets, json_string(MODULE_NAMES[k]), &bad);
        put(kinds, MODULE_NAMES[k], json_string(mt_adapter_kind_name(a->layer_kind[k])), &bad);
    }
    if (has_reduction_lora(c)) {
        push(targets, json_string("downsample.reduction"), &bad);
        put(kinds, "downsample.reduction", json_string("lora"), &bad);
    }
    put(o, "target_modules", targets, &bad);
    put(o, "layer_kinds", kinds, &bad);
    put(o, "r", int_list(c->mtlora.r, c->nstages, &bad), &bad);
    put(o, "lora_alpha", kinds_object(c, 1, &bad), &bad);
    put(o, "scaling", kinds_object(c, 0, &bad), &bad);
    put(o, "lora_dropout", kinds_object(c, 2, &bad), &bad);
    put(o, "bias", json_string("none"), &bad);
    kind_sections(o, c, &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

mt_status mt_peft_write_config(const char *path, const mt_config *cfg, const mt_peft_counts *n,
                               char *err, size_t errlen) {
    json_t *o = config_fields(cfg);
    int bad = !o;
    put(o, "modules_to_save_file", json_string(MT_PEFT_MODULES_FILE), &bad);
    put(o, "adapter_tensors", json_integer((json_int_t)n->adapter_tensors), &bad);
    put(o, "adapter_values", json_integer((json_int_t)n->adapter_values), &bad);
    put(o, "trained_module_tensors", json_integer((json_int_t)n->module_tensors), &bad);
    put(o, "trained_module_values", json_integer((json_int_t)n->module_values), &bad);
    mt_status st = bad ? mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path)
                       : json_file_write(path, o, DUMP_FLAGS, err, errlen);
    json_decref(o);
    return st;
}

/* ---- checking it on load-back ---------------------------------------------- */

/* Every top-level field the writer puts in (and the docs describe); any
 * other is refused, so a misspelt field ("lora_aplha") is not silently
 * ignored. */
static const char *const KNOWN_FIELDS[] = {
    "peft_type", "format", "format_version", "base_model", "tasks", "target_modules", "layer_kinds",
    "r", "lora_alpha", "scaling", "lora_dropout", "bias", "mtlora", "mtl_lora", "cgc_lora",
    "modules_to_save_file", "adapter_tensors", "adapter_values", "trained_module_tensors",
    "trained_module_values"};

static mt_status unknown_fields(const char *path, json_t *doc, char *err, size_t errlen) {
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        size_t i = 0;
        while (i < sizeof KNOWN_FIELDS / sizeof *KNOWN_FIELDS && strcmp(key, KNOWN_FIELDS[i])) i++;
        if (i == sizeof KNOWN_FIELDS / sizeof *KNOWN_FIELDS)
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s: unknown field \"%.80s\" (not one adapter_config.json holds: "
                           "docs/adapters.md lists them)", path, key);
    }
    return MT_OK;
}

/* The one bias PEFT value this code implements: PEFT's "all" and
 * "lora_only" would train the adapted layers' biases, which stay frozen. */
static mt_status check_bias(const char *path, const json_t *doc, char *err, size_t errlen) {
    const json_t *b = json_object_get(doc, "bias");
    if (json_is_string(b) && !strcmp(json_string_value(b), "none")) return MT_OK;
    char sb[120];
    json_show(b, 0, sb, sizeof sb);
    return mt_errf(err, errlen, MT_ERR_FORMAT,
                   "%s: field \"bias\" is %s: only \"none\" is implemented (PEFT's \"all\" and "
                   "\"lora_only\" would train the adapted layers' biases)", path, sb);
}

/* lora_dropout.<kind>[s] in [0, 1), as the config's dropout rates. */
static mt_status check_dropout(const char *path, const json_t *doc, char *err, size_t errlen) {
    const json_t *d = json_object_get(doc, "lora_dropout");
    const char *kind;
    json_t *list;
    if (!json_is_object(d)) return MT_OK; /* the comparison with config.yaml names it */
    json_object_foreach((json_t *)d, kind, list) {
        for (size_t s = 0; json_is_array(list) && s < json_array_size(list); s++) {
            const json_t *x = json_array_get(list, s);
            const double v = json_number_value(x);
            if (json_is_number(x) && !(v >= 0 && v < 1))
                return mt_errf(err, errlen, MT_ERR_FORMAT,
                               "%s: field \"lora_dropout.%.40s[%zu]\" is %.9g: a dropout rate is in "
                               "[0, 1)", path, kind, s, v);
        }
    }
    return MT_OK;
}

/* lora_alpha.<kind>[s] = scaling.<kind>[s] x r[s] (PEFT's scaling is
 * alpha / r), to float32 rounding: a file that changes one of the two
 * without the other contradicts itself. */
static mt_status check_alpha(const char *path, const json_t *doc, char *err, size_t errlen) {
    const json_t *alpha = json_object_get(doc, "lora_alpha"), *scale = json_object_get(doc, "scaling"),
                 *r = json_object_get(doc, "r");
    if (!json_is_object(alpha) || !json_is_object(scale) || !json_is_array(r)) return MT_OK;
    const char *kind;
    json_t *al;
    json_object_foreach((json_t *)alpha, kind, al) {
        const json_t *sl = json_object_get(scale, kind);
        if (!json_is_array(al) || !json_is_array(sl)) continue;
        for (size_t s = 0; s < json_array_size(al) && s < json_array_size(sl) && s < json_array_size(r);
             s++) {
            const json_t *a = json_array_get(al, s), *c = json_array_get(sl, s), *k = json_array_get(r, s);
            if (!json_is_number(a) || !json_is_number(c) || !json_is_number(k)) continue;
            const double va = json_number_value(a), want = json_number_value(c) * json_number_value(k);
            if (fabs(va - want) <= 1e-6 * fabs(want) + 1e-30) continue;
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s: field \"lora_alpha.%.40s[%zu]\" is %.9g, but scaling.%.40s[%zu] %.9g x "
                           "r[%zu] %.9g = %.9g (PEFT's scaling is lora_alpha / r)", path, kind, s, va,
                           kind, s, json_number_value(c), s, json_number_value(k), want);
        }
    }
    return MT_OK;
}

/* The fields config.yaml decides, compared value by value with what it
 * implies; the first that differs is named with both values and, inside a
 * list or object, where. */
static mt_status compare_with_config(const char *path, const json_t *doc, const json_t *want, char *err,
                                     size_t errlen) {
    static const char *const fields[] = {"format", "format_version", "peft_type", "base_model", "tasks",
                                         "r", "target_modules", "layer_kinds", "lora_alpha", "scaling",
                                         "lora_dropout", "bias", "mtlora", "mtl_lora", "cgc_lora"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const json_t *a = json_object_get(doc, fields[i]), *e = json_object_get(want, fields[i]), *da,
                     *de;
        char at[200];
        if (!json_first_difference(a, e, at, sizeof at, &da, &de)) continue;
        char sa[240], se[240], where[560] = "";
        json_show(a, JSON_REAL_PRECISION(9), sa, sizeof sa);
        json_show(e, JSON_REAL_PRECISION(9), se, sizeof se);
        if (at[0]) {
            char xa[120], xe[120];
            json_show(da, JSON_REAL_PRECISION(9), xa, sizeof xa);
            json_show(de, JSON_REAL_PRECISION(9), xe, sizeof xe);
            snprintf(where, sizeof where, " (at %s%s: %s here, %s from config.yaml)", fields[i], at, xa, xe);
        }
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: field \"%s\" is %s, but the adapter's config.yaml implies %s%s", path,
                       fields[i], sa, se, where);
    }
    const json_t *m = json_object_get(doc, "modules_to_save_file");
    if (!json_is_string(m) || strcmp(json_string_value(m), MT_PEFT_MODULES_FILE)) {
        char sm[120];
        json_show(m, 0, sm, sizeof sm);
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: field \"modules_to_save_file\" is %s, but the directory's file is \"%s\"",
                       path, sm, MT_PEFT_MODULES_FILE);
    }
    return MT_OK;
}

static mt_status read_config_json(const char *path, json_t **doc, char *err, size_t errlen) {
    mt_status st = json_file_read(path, MAX_CONFIG_JSON, MAX_CONFIG_DEPTH, doc, err, errlen);
    if (!st && !json_is_object(*doc)) {
        json_decref(*doc);
        *doc = NULL;
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: not a JSON object (it is an array)", path);
    }
    return st;
}

mt_status mt_peft_check_config(const char *path, const mt_config *cfg, char *err, size_t errlen) {
    json_t *doc = NULL;
    mt_status st = read_config_json(path, &doc, err, errlen);
    if (st) return st;
    json_t *want = config_fields(cfg);
    if (!want) st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    if (!st) st = unknown_fields(path, doc, err, errlen);
    if (!st) st = check_bias(path, doc, err, errlen);
    if (!st) st = check_dropout(path, doc, err, errlen);
    /* alpha against scaling x r only with the r config.yaml implies: a
     * wrong r is the field to name */
    if (!st && json_same(json_object_get(doc, "r"), json_object_get(want, "r")))
        st = check_alpha(path, doc, err, errlen);
    if (!st) st = compare_with_config(path, doc, want, err, errlen);
    json_decref(want);
    json_decref(doc);
    return st;
}

/* doc[field] must be the count the file holds. */
static mt_status check_count(const char *path, const json_t *doc, const char *field, size_t have,
                             const char *file, const char *what, char *err, size_t errlen) {
    const json_t *v = json_object_get(doc, field);
    if (json_is_integer(v) && json_integer_value(v) >= 0 && (size_t)json_integer_value(v) == have)
        return MT_OK;
    char sv[80];
    json_show(v, 0, sv, sizeof sv);
    return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: field \"%s\" is %s, but %s holds %zu %s", path, field,
                   sv, file, have, what);
}

static mt_status check_file_counts(const char *path, const json_t *doc, const char *file,
                                   const char *tensors_field, const char *values_field, char *err,
                                   size_t errlen) {
    st_file f;
    mt_status st = st_load_header(&f, file, err, errlen);
    if (st) return st;
    size_t values = 0;
    for (int i = 0; i < f.count; i++) values += f.tensors[i].count;
    st = check_count(path, doc, tensors_field, (size_t)f.count, file, "tensors", err, errlen);
    if (!st) st = check_count(path, doc, values_field, values, file, "values", err, errlen);
    st_free(&f);
    return st;
}

mt_status mt_peft_check_counts(const char *path, const char *adapter_file, const char *modules_file,
                               char *err, size_t errlen) {
    json_t *doc = NULL;
    mt_status st = read_config_json(path, &doc, err, errlen);
    if (st) return st;
    st = check_file_counts(path, doc, adapter_file, "adapter_tensors", "adapter_values", err, errlen);
    if (!st)
        st = check_file_counts(path, doc, modules_file, "trained_module_tensors", "trained_module_values",
                               err, errlen);
    json_decref(doc);
    return st;
}

mt_status mt_peft_check_covers(const char *path, mt_model *m, int (*keep)(void *, const char *),
                               void *user, const char *what, char *err, size_t errlen) {
    st_file f;
    mt_status st = st_load(&f, path, err, errlen);
    if (st) return st;
    const param_bank *bank = mt_model_bank(m);
    const mt_config *c = mt_model_config(m);
    int missing = 0;
    char first[3][MT_PARAM_NAME_LEN];
    for (int i = 0; i < bank->count + c->ntasks; i++) {
        char nbt[MT_PARAM_NAME_LEN];
        const char *name;
        if (i < bank->count) {
            name = bank->entries[i].name;
        } else {
            snprintf(nbt, sizeof nbt, "decoders.decoders.%s.last_layer.1.num_batches_tracked",
                     c->tasks[i - bank->count]);
            name = nbt;
        }
        if (!keep(user, name) || st_find(&f, name)) continue;
        if (missing < 3) snprintf(first[missing], sizeof first[0], "%s", name);
        missing++;
    }
    st_free(&f);
    if (missing)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: lacks %d %s tensor%s of the model (%s%s%s%s%s%s)",
                       path, missing, what, missing == 1 ? "" : "s", first[0], missing > 1 ? ", " : "",
                       missing > 1 ? first[1] : "", missing > 2 ? ", " : "", missing > 2 ? first[2] : "",
                       missing > 3 ? ", ..." : "");
    return MT_OK;
}
