/* config_keys.h - the table of configuration keys (private to src/config).
 *
 * One row per key of the official config.py (and our RUN.*, MODEL.ADAPTER.*)
 * says everything about that key: its dotted name, how a value is read,
 * where it lives in mt_config, its default, the bounds or allowed values
 * the loader (with file and line) and mt_config_finalize check, and so what
 * the YAML writer writes. Loading (files and --opts), mt_config_default,
 * the per-key checks of finalize and mt_config_write_yaml all read these
 * rows, so a key is added, changed or
 * removed in one place. Rules that tie several keys together (window
 * divisibility, heads dividing dims, task lists, adapter combinations)
 * are code in config_finalize.c. */
#ifndef MTLORA_CONFIG_KEYS_H
#define MTLORA_CONFIG_KEYS_H

#include <stddef.h>

#include "mtlora/config/config.h"

typedef enum {
    K_INT, K_FLOAT, K_BOOL, K_STR, /* a scalar into mt_config */
    K_INTLIST, K_FLOATLIST,        /* a list (or one value) into mt_config */
    K_TASKS,                       /* TASKS: names of known tasks */
    K_IGNORE,                      /* accepted and not used (loader, AMP, augmentation knobs) */
    K_RPT, K_SPT,                  /* MODEL.MTLORA.R_PER_TASK / SCALE_PER_TASK maps */
    K_HEAD,                        /* MODEL.DECODER_HEAD map: only 'hrnet' */
    K_FIXED_BOOL,                  /* accepted only as the row's default (not implemented otherwise) */
    K_FIXED_STR,
    K_NULL_ONLY                    /* accepted only as null/None */
} mt_key_type;

/* Which of lo/hi a row's bounds use. Checked where a value is read (a file
 * or --opts, so the refusal names the file and line) and again by
 * mt_config_finalize (values a program set itself). Every numeric row has
 * bounds: the checks across keys and the model's shape arithmetic (dim <<
 * stage, grid / window, rank casts) rely on them. */
enum {
    B_LO = 1,       /* value >= lo */
    B_HI = 2,       /* value <= hi */
    B_LO_OPEN = 4,  /* with B_LO: value > lo */
    B_HI_OPEN = 8,  /* with B_HI: value < hi */
    B_WHOLE = 16    /* a whole number although stored as a float (ranks) */
};

/* More rows than the table will ever have: per-row arrays of the loader. */
#define MT_KEYS_CAP 256

typedef struct {
    const char *name;      /* dotted key; "X.*" stands for a whole section */
    mt_key_type type;
    /* storage in mt_config */
    size_t off;            /* the value (or a list's first element) */
    size_t cap;            /* string size; list capacity */
    size_t n_off;          /* list: where its count lives; 0: exactly cap values */
    /* default (mt_config_default); for K_FIXED_*, the one accepted value */
    double def;            /* K_INT, K_FLOAT, K_BOOL, K_FIXED_BOOL */
    const char *def_str;   /* K_STR, K_FIXED_STR */
    const double *def_list;/* lists: def_n values */
    int def_n;
    /* what finalize accepts: numbers and every element of a list */
    unsigned bounds;       /* B_* */
    double lo, hi;
    const char *const *allowed; /* K_STR: NULL-terminated; "" = may be empty */
    const char *note;      /* appended to a refusal, e.g. what 0 means */
} mt_key;

extern const mt_key MT_KEYS[];
extern const size_t MT_NKEYS;

/* The row of a dotted key (a "X.*" row matches everything under X), or
 * NULL for a key nobody knows. */
const mt_key *mt_key_find(const char *name);

/* Whether row k holds integers (K_INT, K_INTLIST). */
int mt_key_is_int(const mt_key *k);

/* The one numeric parser of config values (scalars and list elements,
 * files and --opts). s must be the whole token: a decimal integer for an
 * integer row (no fraction, no exponent, no leading zero that YAML 1.1
 * would read as octal) within int, else a decimal float that is finite
 * and within float range. *out is the value as stored (for floats, after
 * rounding to float). Returns NULL, or why s is refused ("is not an
 * integer"); the row's bounds are mt_key_check's. */
const char *mt_key_parse(const mt_key *k, const char *s, double *out);

/* NULL when v satisfies row k's bounds, else the reason ("must be in
 * 1..64 (note)") written into buf. */
const char *mt_key_check(const mt_key *k, double v, char *buf, size_t cap);

/* NULL when string v is one of row k's allowed values (or the row has no
 * list), else the reason, written into buf. */
const char *mt_key_check_str(const mt_key *k, const char *v, char *buf, size_t cap);

/* A value of row k as messages write it: integers plainly, floats shortest. */
void mt_key_format(const mt_key *k, double v, char *buf, size_t cap);

/* mt_config_set with the messages starting with `label` instead of
 * "--opts" (the official flags that stand for a key, config_flags.c). */
mt_status mt_config_set_as(mt_config *cfg, const char *key, const char *value, const char *label,
                          char *err, size_t errlen);

/* The known tasks: name, kind, number of outputs, official loss weight. */
typedef struct {
    const char *name;
    mt_task_kind kind;
    int outputs;
    float weight;
} mt_task_info;

extern const mt_task_info MT_TASKS[];
extern const size_t MT_NTASKS;

/* The task called name, or NULL. */
const mt_task_info *mt_task_info_find(const char *name);

#endif
