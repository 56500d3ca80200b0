/* pth.h - reading and writing PyTorch .pth files (torch.save) without
 * Python, and without ever running what a pickle asks for.
 *
 * Read: both formats torch.save writes (docs/pth.md has the details):
 *   - zip (torch >= 1.6, the default): "<prefix>/data.pkl" (a pickle),
 *     "<prefix>/data/<key>" (one raw little-endian storage each),
 *     "<prefix>/version", optionally "<prefix>/byteorder"; entries stored
 *     or deflated, ZIP64 included (libzip);
 *   - legacy (torch < 1.6, or _use_new_zipfile_serialization=False): five
 *     pickles back to back (magic number 0x1950a86a20f9469cfc6c, protocol
 *     1001, sys-info, the object, the storage keys), then per storage an
 *     8-byte element count and the raw elements.
 * The tar format of torch < 0.4 is refused with a message saying how to
 * re-save the file with a current torch.
 *
 * The safety rules (the reader's contract):
 *   - Nothing is imported or called. The pickle is interpreted by a
 *     restricted unpickler (protocols 2-5) that knows a short list of
 *     globals: collections.OrderedDict, torch._utils._rebuild_tensor(_v2),
 *     _rebuild_parameter, _rebuild_parameter_with_state and the ten typed
 *     storages (torch.FloatStorage, HalfStorage, BFloat16Storage,
 *     DoubleStorage, LongStorage, IntStorage, ShortStorage, CharStorage,
 *     ByteStorage, BoolStorage). Every other global (yacs CfgNode,
 *     argparse.Namespace, numpy scalars, os.system, builtins.eval,
 *     subprocess.Popen, torch.storage.UntypedStorage, ...) becomes an inert
 *     placeholder; calling or building one gives another placeholder.
 *   - Only the chosen state dict must be understood: each of its leaves
 *     must be a tensor built from a typed storage; a placeholder, a
 *     number, a string or a malformed tensor there is refused naming the
 *     key. Values outside it (optimizer, config, epoch) are only listed
 *     (pth_file.others: name and kind).
 *   - Bounds: pickle stack, memo (ids as Python's pickler assigns them),
 *     MARK and container nesting (PTH_MAX_DEPTH), string lengths (within
 *     the pickle), the unpickler's memory (a fixed multiple of the pickle's
 *     size), element counts (no overflow), dimensions (PTH_MAX_DIMS), the
 *     tensors' total output (PTH_MAX_EXPANSION times the file's size plus
 *     64 MiB); no allocation is larger than the entry or file justifies.
 *   - Every view is checked against its storage (offset, sizes, strides:
 *     the last element must lie inside it) and gathered into a contiguous
 *     row-major copy; a storage entry's byte count must be the pickle's
 *     element count times the element size.
 *   - The byte order is checked ("byteorder" entry; legacy sys-info
 *     "little_endian"); big-endian files are refused.
 *   - Zip: opened with libzip's consistency checks (ZIP_CHECKCONS), every
 *     entry used is read to its end so its CRC is checked; encrypted,
 *     truncated or inconsistent archives refused.
 *   - Only a regular file is opened (a FIFO, directory or device is refused
 *     by stat before any open), of at most 64 GiB.
 *   - Every refusal (mt_status != MT_OK, message in err) names the file and
 *     the entry or key concerned; on a refusal *out is zeroed and holds
 *     nothing to free.
 *
 * Write: a state dict of f32 and i64 tensors, in the zip format torch.load
 * (including weights_only=True) reads: stored entries with 64-byte aligned
 * data, a protocol 2 pickle of an OrderedDict of _rebuild_tensor_v2 over
 * FloatStorage / LongStorage, prefix "archive", plus "archive/version"
 * ("3\n") and "archive/byteorder" ("little"); atomically (atomic_file.h).
 */
#ifndef MTLORA_PTH_H
#define MTLORA_PTH_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/base/status.h"

#define PTH_NAME_LEN 256     /* tensor and key names: at most 255 bytes */
#define PTH_KIND_LEN 128     /* pth_other.kind */
#define PTH_MAX_DIMS 8       /* a tensor of more dimensions is refused */
#define PTH_MAX_DEPTH 100    /* MARK nesting and dict nesting below the chosen key */
#define PTH_MAX_EXPANSION 16 /* output bytes per file byte (+64 MiB): dtype widening, shared storages */

/* What a tensor holds after loading: every float kind converted to f32,
 * every integer kind (and bool) to i64. */
typedef enum { PTH_F32, PTH_I64 } pth_dtype;

/* The element type of the storage in the file (the typed storage class). */
typedef enum {
    PTH_S_F32,  /* FloatStorage    -> PTH_F32 */
    PTH_S_F16,  /* HalfStorage     -> PTH_F32, exact */
    PTH_S_BF16, /* BFloat16Storage -> PTH_F32, exact */
    PTH_S_F64,  /* DoubleStorage   -> PTH_F32, rounded to nearest even as tensor.float() */
    PTH_S_I64,  /* LongStorage     -> PTH_I64 */
    PTH_S_I32,  /* IntStorage      -> PTH_I64 */
    PTH_S_I16,  /* ShortStorage    -> PTH_I64 */
    PTH_S_I8,   /* CharStorage     -> PTH_I64 */
    PTH_S_U8,   /* ByteStorage     -> PTH_I64 */
    PTH_S_BOOL  /* BoolStorage     -> PTH_I64 (0 or 1) */
} pth_stype;

typedef struct {
    char name[PTH_NAME_LEN]; /* flattened key below the chosen dict: {"a": {"b": t}} -> "a.b" */
    pth_dtype dtype;         /* of data */
    pth_stype stored;        /* the element type in the file */
    int is_parameter;        /* built through _rebuild_parameter (nn.Parameter) */
    int ndim;                /* 0 (a scalar) .. PTH_MAX_DIMS */
    int64_t shape[PTH_MAX_DIMS];
    size_t count;            /* elements: the product of shape (1 for a scalar) */
    void *data;              /* malloc'd, count elements of dtype, contiguous row-major; NULL if count is 0 */
} pth_tensor;

/* A top-level key beside the chosen state dict (what a caller ignored). */
typedef struct {
    char name[PTH_NAME_LEN]; /* the key: a string, an int in decimal, or "(a <kind> key)" */
    char kind[PTH_KIND_LEN]; /* one word: "dict", "list", "tuple", "set", "int", "float", "str",
                              * "bytes", "bool", "none", "tensor", "storage", or "global M.N" /
                              * "placeholder M.N" for a global that is not resolved */
} pth_other;

typedef struct {
    pth_tensor *tensors;  /* in the pickle's order */
    int count;
    pth_other *others;    /* the top-level keys not chosen, in the pickle's order */
    int n_others;
    char format[16];      /* "zip" | "legacy" */
    char key[PTH_NAME_LEN]; /* the top-level key chosen ("model", "state_dict"), "" for the top level */
} pth_file;

/* Loads the state dict of path into *out.
 * key: "model" (or any top-level key) picks the dict under that key and is
 * refused if there is none; NULL = auto: the value of "model", else of
 * "state_dict", if that is a dict of tensors (nested dicts allowed), else the
 * top level itself. Nested dicts below the chosen one are flattened with '.';
 * int keys are written in decimal. */
mt_status pth_load(const char *path, const char *key, pth_file *out, char *err, size_t errlen);

/* Frees everything pth_load allocated and zeroes *f; NULL and a zeroed
 * pth_file are fine. */
void pth_free(pth_file *f);

/* The tensor of that flattened name, or NULL. */
const pth_tensor *pth_find(const pth_file *f, const char *name);

/* "FloatStorage", ... (the class name in the file); "?" for a bad value. */
const char *pth_stype_name(pth_stype s);
/* Bytes per element in the file (4, 2, 2, 8, 8, 4, 2, 1, 1, 1); 0 for a bad value. */
size_t pth_stype_size(pth_stype s);

/* One tensor to write: data is count = prod(shape) elements of dtype,
 * contiguous row-major (NULL allowed only when count is 0). */
typedef struct {
    const char *name;     /* non-empty UTF-8, shorter than PTH_NAME_LEN, unique */
    pth_dtype dtype;      /* PTH_F32 (FloatStorage) or PTH_I64 (LongStorage) */
    int ndim;             /* 0 .. PTH_MAX_DIMS */
    const int64_t *shape; /* ndim sizes >= 0 (NULL when ndim is 0) */
    const void *data;
} pth_write_entry;

/* Writes the n entries as an OrderedDict state dict in the zip format to
 * path, atomically. top_key: "model" (any non-empty name) writes
 * {top_key: state_dict}, as Swin releases and training checkpoints are;
 * NULL writes the bare state dict. A bad name (empty, repeated, too long,
 * not UTF-8), a bad shape or dtype is refused (MT_ERR_ARG) before anything
 * is written; so is a file over 4 GiB or 65535 entries (ZIP64 is not
 * written). */
mt_status pth_write(const char *path, const pth_write_entry *e, int n, const char *top_key, char *err,
                    size_t errlen);

#endif
