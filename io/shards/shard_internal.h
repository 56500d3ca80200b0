/* shard_internal.h - what the shard writer and reader share (shard_format.c):
 * the task names in mask order and the lock around HDF5. Private to
 * io/shards (the packer's copy of these files includes it from here too). */
#ifndef MTLORA_SHARD_INTERNAL_H
#define MTLORA_SHARD_INTERNAL_H

/* "semseg", "human_parts", "sal", "normals", "edge": bit t of a task mask. */
extern const char *const shard_task_names[];
enum { SHARD_NTASK_NAMES = 5 };

/* Debian's HDF5 builds are not thread-safe, and several loaders (train and
 * validation) each read from their own thread: every public entry point of
 * the writer and the reader holds this lock while it calls HDF5. It guards
 * HDF5's own global state, so it is process-wide by necessity, and one lock
 * for both (they share the one HDF5 library). */
void shard_h5_lock(void);
void shard_h5_unlock(void);

/* HDF5 prints its error stack to stderr by default; we report errors
 * ourselves with the file and record. (A library-wide HDF5 setting.) */
void shard_quiet_hdf5(void);

#endif
