/* atomic_file.h - the one way mtlora writes a file: a temporary beside the
 * target, fsync, rename over the target, fsync of the directory.
 *
 * A reader (or a crash, or a full disk) then sees either the old file or the
 * whole new one, never a torn one; after commit returns the new file
 * survives a power cut. Every file the tools write goes through here:
 * checkpoints, shards, safetensors, YAML, PEFT files, synthetic sets.
 *
 * The temporary is "<path>.tmp.<pid>", so two processes writing the same
 * target do not write into each other's temporary; the last rename wins. */
#ifndef MTLORA_ATOMIC_FILE_H
#define MTLORA_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>
#include "mtlora/base/status.h"

#define MT_PATH_MAX 4096

typedef struct {
    char path[MT_PATH_MAX];     /* the target */
    char tmp[MT_PATH_MAX + 32]; /* the temporary beside it */
    FILE *f;                    /* open on tmp (NULL after reserve, commit or abort) */
} atomic_file;

/* Creates the temporary and opens it for writing through af->f. */
mt_status atomic_file_open(atomic_file *af, const char *path, char *err, size_t errlen);

/* Only names the temporary (af->tmp), for a library that creates and writes
 * the file itself (HDF5); it must have closed it before commit. */
mt_status atomic_file_reserve(atomic_file *af, const char *path, char *err, size_t errlen);

/* Flushes and closes af->f (if open), fsyncs the temporary, renames it over
 * the target and fsyncs the target's directory. On any failure the
 * temporary is removed, the target is left as it was and err names the
 * file and the step that failed. */
mt_status atomic_file_commit(atomic_file *af, char *err, size_t errlen);

/* Closes and removes the temporary; the target is untouched. Safe to call
 * after a failed open or commit and more than once. */
void atomic_file_abort(atomic_file *af);

/* mkdir -p: creates path and every missing parent; an existing directory
 * is fine, anything else in the way is refused naming it. */
mt_status mt_make_dirs(const char *path, char *err, size_t errlen);

/* rename(from, to) made durable (fsync of to's directory), for a writer
 * that finishes a complete, fsynced file under a staging name first (the
 * checkpoints: their checksum covers the header the safetensors writer
 * produced). On failure err names both. */
mt_status atomic_rename(const char *from, const char *to, char *err, size_t errlen);

/* A whole buffer as one file: open, write, commit. */
mt_status atomic_write(const char *path, const void *data, size_t n, char *err, size_t errlen);

#endif
