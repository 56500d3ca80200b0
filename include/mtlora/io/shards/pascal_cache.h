/* pascal_cache.h - a PASCAL_MT directory packed into shards once and
 * reused: mtlora_dist's --pascal DIR (the official main.py flag).
 *
 * The trainer cannot link the packer (libmatio's serial HDF5 beside the
 * trainer's parallel HDF5 in one process), so the shards are written by
 * the mtlora-pack program run as a child process, train then val split.
 *
 * Where: $MTLORA_CACHE/<name>-<hash>/<tasks>/ when that variable is set,
 * else DIR/.mtlora-cache/<tasks>/ when DIR is writable, else
 * <fallback>/<name>-<hash>/<tasks>/ (mtlora_dist: RUN.DIR/.mtlora-cache);
 * <tasks> is the run's task list in the table's order, e.g.
 * "semseg,human_parts,sal,normals" (shards do not depend on the image
 * size: the loader resizes), <name>-<hash> DIR's last component and a hash
 * of its real path.
 *
 * Reused when the stamp file beside the cache (<tasks>.stamp: the source's
 * real path, the pack options, and per top-level entry of DIR the count,
 * bytes and a hash of every file's relative path, size and mtime) equals
 * the source now and `mtlora-pack --verify` passes. Otherwise the cache's
 * shards are deleted and packed again; an interrupted pack of the same
 * source (<tasks>.pending) continues where it stopped, as the packer
 * does. Progress lines start with "pascal:". */
#ifndef MTLORA_PASCAL_CACHE_H
#define MTLORA_PASCAL_CACHE_H

#include <stddef.h>
#include "mtlora/base/status.h"

typedef struct {
    const char *src;        /* the PASCAL_MT directory */
    const char *cache_root; /* the cache root ($MTLORA_CACHE), or NULL */
    const char *fallback;   /* the root when src is not writable */
    const char *packer;     /* the mtlora-pack program, or NULL: beside this program's
                               executable (/proc/self/exe), else found on PATH */
    const char *tasks;      /* comma-separated task list, in the table's order */
    int quiet;              /* no progress lines (the packer gets --quiet) */
    int reused;             /* out: 1 when the cache was reused as it was */
} pascal_cache_opts;

/* Leaves current train and val shards of o->src in a cache directory and
 * writes its path into shards (cap bytes). Errors name the directory and
 * the cause: no such directory, not a PASCAL_MT layout, the packer missing
 * or failing (its own messages are on stderr above). */
mt_status pascal_cache_prepare(pascal_cache_opts *o, char *shards, size_t cap, char *err, size_t errlen);

#endif
