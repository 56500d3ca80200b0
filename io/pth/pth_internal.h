/* pth_internal.h - what the io/pth/ files share (private to io/pth/).
 *
 * The pieces, one file each:
 *   pth_value.c   the unpickler's values and their arena (one bound on all
 *                 its memory, freed at once: memo sharing and cycles need
 *                 no reference counts);
 *   pth_pickle.c  the restricted unpickler: opcodes, stack, memo, marks;
 *   pth_call.c    what REDUCE / NEWOBJ / BUILD / BINPERSID do: the few
 *                 known globals, placeholders for every other;
 *   pth_select.c  choosing the state dict, flattening it, listing the other
 *                 top-level keys, the output budget;
 *   pth_tensor.c  one tensor: view checked against its storage, gathered
 *                 and converted into a contiguous copy;
 *   pth_zip.c     the zip format through libzip;
 *   pth_legacy.c  the legacy five-pickle format;
 *   pth_load.c    pth_load: the file opened, its format sniffed; pth_free;
 *   pth_write.c   pth_write: the pickle and the zip archive. */
#ifndef MTLORA_PTH_INTERNAL_H
#define MTLORA_PTH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mtlora/io/pth.h"

/* A file larger than this is refused unread. */
#define PTH_MAX_FILE ((uint64_t)64 << 30)
/* data.pkl (and a legacy file's pickles) larger than this are refused:
 * a state dict's pickle is ~100 bytes per tensor. */
#define PTH_MAX_PICKLE ((size_t)1 << 30)
/* The unpickler's memory: at most this many bytes per pickle byte, plus 1 MiB
 * (a value is 32 bytes and its slot in the arena 8; an opcode of 1 byte
 * makes at most one, a tensor's 100-odd bytes of pickle one of 200). */
#define PTH_ARENA_PER_BYTE 64
/* Items on the pickle stack. */
#define PTH_MAX_STACK ((size_t)1 << 22)

/* ---- values (pth_value.c) -------------------------------------------------- */

typedef enum {
    PV_NONE, PV_BOOL, PV_INT, PV_BIGINT, PV_FLOAT, PV_STR, PV_BYTES,
    PV_TUPLE, PV_LIST, PV_SET, PV_DICT,
    PV_GLOBAL,      /* a class or function named by GLOBAL / STACK_GLOBAL, never called */
    PV_PLACEHOLDER, /* the inert result of calling or building an unknown global */
    PV_STORAGE,     /* a persistent id ('storage', <typed storage>, key, location, numel) */
    PV_TENSOR
} pv_kind;

/* The globals the unpickler knows; every other is G_UNKNOWN. */
typedef enum {
    G_UNKNOWN, G_ORDERED_DICT, G_REBUILD_TENSOR, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER,
    G_REBUILD_PARAMETER_STATE, G_STORAGE
} pv_global;

typedef struct pv pv;

typedef struct {
    pth_stype stype;
    const char *key;    /* data/<key> (zip) or the key in the legacy list */
    int64_t base;       /* legacy view_metadata: first element in the root storage */
    int64_t numel;      /* elements of this storage (of the view, legacy) */
    int64_t root_numel; /* elements of the root storage */
} pv_storage;

typedef struct {
    const pv *storage; /* PV_STORAGE */
    int64_t offset;    /* elements into the storage */
    int ndim;
    int is_parameter;
    int64_t shape[PTH_MAX_DIMS], stride[PTH_MAX_DIMS];
} pv_tensor;

/* One value: 32 bytes, the payload of a tensor or storage after it. */
struct pv {
    pv_kind kind;
    union {
        int64_t i; /* PV_INT, PV_BOOL (0 or 1) */
        double f;  /* PV_FLOAT */
        struct {
            size_t n;            /* bytes of the two's complement little-endian value */
            unsigned char b[16]; /* its first 16 bytes */
        } big;                   /* PV_BIGINT: an int that does not fit int64 */
        struct {
            const char *s; /* NUL-terminated copy (a PV_BYTES may hold NULs) */
            size_t len;
        } str;             /* PV_STR (UTF-8), PV_BYTES */
        struct {
            pv **v;
            size_t n, cap;
        } seq; /* PV_TUPLE, PV_LIST, PV_SET; PV_DICT: v[2k] key, v[2k+1] value */
        struct {
            pv_global id;
            pth_stype stype;  /* G_STORAGE */
            const char *name; /* "module.name" */
        } g;
        const char *what; /* PV_PLACEHOLDER: the global ("yacs.config.CfgNode") or why */
        pv_storage *sto;  /* PV_STORAGE */
        pv_tensor *t;     /* PV_TENSOR */
    } u;
};

typedef struct {
    pv **all;                 /* every value, freed by pv_arena_free */
    size_t n, cap;
    pv **storages;            /* every PV_STORAGE made, in order (legacy data layout) */
    size_t n_storages, cap_storages;
    size_t bytes, limit;      /* bytes held, and the bound on them */
    int over;                 /* set when an allocation was refused (limit or out of memory) */
    pv none, yes, no, empty_tuple; /* immutable, shared: None, True, False, () cost no allocation */
} pv_arena;

void pv_arena_init(pv_arena *a, size_t pickle_len);
void pv_arena_free(pv_arena *a);
/* A new value; extra bytes follow it (string payloads). NULL when refused. */
pv *pv_new(pv_arena *a, pv_kind kind, size_t extra);
pv *pv_new_str(pv_arena *a, pv_kind kind, const unsigned char *s, size_t len);
pv *pv_new_placeholder(pv_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends to a PV_TUPLE/LIST/SET/DICT's items. 0, or -1 when refused. */
int pv_push(pv_arena *a, pv *c, pv *item);
int pv_note_storage(pv_arena *a, pv *s);
/* One word for a value's kind (pth_other.kind). */
void pv_kind_name(const pv *v, char *buf, size_t n);
/* 1 if s[0..len) is UTF-8 as Python's decoder accepts it (surrogates allowed). */
int pth_utf8_ok(const unsigned char *s, size_t len);

/* ---- the unpickler (pth_pickle.c, pth_call.c) ---------------------------------- */

typedef struct {
    pv_arena *arena;
    const char *path;  /* the file, for messages */
    const char *entry; /* "data.pkl" entry name or "pickle 4 of 5", for messages */
    int legacy;        /* persistent ids carry a sixth item, view_metadata */
} pk_ctx;

/* Interprets one pickle from p[0..len) up to its STOP; *used is the bytes it
 * took, *out the object (owned by the arena). */
mt_status pk_load(const pk_ctx *c, const unsigned char *p, size_t len, size_t *used, pv **out,
                  char *err, size_t errlen);

/* Known global by module and name (G_UNKNOWN otherwise). */
pv *pk_global(pv_arena *a, const char *module, const char *name);
/* callable(*args) for REDUCE; cls(*args) for NEWOBJ(_EX). NULL with *why
 * set when the pickle is malformed (NULL with a->over when out of memory). */
pv *pk_reduce(const pk_ctx *c, pv *callable, pv *args, const char **why);
pv *pk_newobj(const pk_ctx *c, pv *cls, pv *args, const char **why);
/* BUILD: obj updated by state; returns what replaces obj on the stack. */
pv *pk_build(const pk_ctx *c, pv *obj, pv *state, const char **why);
/* BINPERSID: the storage (or a placeholder) for a persistent id. */
pv *pk_persistent(const pk_ctx *c, pv *pid, const char **why);

/* ---- the chosen state dict (pth_select.c, pth_tensor.c) ------------------------- */

/* Where tensor data comes from: the bytes of one storage, exactly
 * root_numel * pth_stype_size(stype) of them, valid until the source is
 * closed by its format's code. */
typedef struct {
    const char *path;
    uint64_t file_size;
    void *ctx;
    mt_status (*storage)(void *ctx, const pv *sto, const char *tensor, const unsigned char **data,
                         char *err, size_t errlen);
} pth_source;

/* Fills out's tensors and others from the unpickled top-level object. */
mt_status pth_select(const pth_source *src, const pv *top, const char *key, pth_file *out, char *err,
                     size_t errlen);

/* out (name already set) from the tensor value t over the storage bytes. */
mt_status pth_tensor_build(const char *path, const pv *t, const unsigned char *data, pth_tensor *out,
                           char *err, size_t errlen);
/* Output bytes of t (for the budget); 0 with *bad set for a bad shape. */
size_t pth_tensor_out_bytes(const pv *t, const char **bad);

/* ---- the formats (pth_zip.c, pth_legacy.c) --------------------------------------- */

/* fd is open on the regular file path of size bytes; both take ownership of fd. */
mt_status pth_zip_load(const char *path, int fd, uint64_t size, const char *key, pth_file *out,
                       char *err, size_t errlen);
mt_status pth_legacy_load(const char *path, int fd, uint64_t size, const char *key, pth_file *out,
                          char *err, size_t errlen);

/* Little-endian loads. */
static inline uint64_t pth_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline uint32_t pth_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint16_t pth_le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

#endif
