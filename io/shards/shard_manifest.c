/* shard_manifest.c - a split's manifest, the file that says the split is
 * whole (shard.h; read by shard_loader.c, specified in docs/data-format.md). */
#include "mtlora/io/shards/shard.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mtlora/io/atomic_file.h"

mt_status shard_manifest_write(const char *dir, const char *split, int tasks, int64_t nshards,
                               int64_t nrec, int64_t shard_size, char *err, size_t errlen) {
    char path[MT_PATH_MAX], tl[96];
    if (snprintf(path, sizeof path, "%s/%s.manifest", dir, split) >= (int)sizeof path)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s/%s.manifest: path too long", dir, split);
    shard_tasks_format(tasks, tl, sizeof tl);
    atomic_file af;
    mt_status st = atomic_file_open(&af, path, err, errlen);
    if (st) return st;
    int bad = fprintf(af.f, "mtlora-shards %d\nsplit %s\ntasks %s\nrecords %lld\nshard_size %lld\n"
                            "shards %lld\n", SHARD_FORMAT_VERSION, split, tl, (long long)nrec,
                      (long long)shard_size, (long long)nshards) < 0;
    for (int64_t k = 0; k < nshards && !bad; k++) {
        const int64_t cnt = k == nshards - 1 ? nrec - k * shard_size : shard_size;
        bad = fprintf(af.f, "%s-%05lld.h5 %lld\n", split, (long long)k, (long long)cnt) < 0;
    }
    if (bad) {
        const int e = errno;
        atomic_file_abort(&af);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: write failed: %s", path, strerror(e ? e : EIO));
    }
    return atomic_file_commit(&af, err, errlen);
}
