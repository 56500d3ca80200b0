/* shard_format.c - what the shard writer (shard_writer.c) and reader
 * (shard_reader.c) share: task names and masks, records and their checksum,
 * the HDF5 lock (shard.h, shard_internal.h, docs/data-format.md). */
#include "mtlora/io/shards/shard.h"

#include <hdf5.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/base/hash.h"
#include "shard_internal.h"

const char *const shard_task_names[] = {"semseg", "human_parts", "sal", "normals", "edge"};

int shard_tasks_parse(const char *list, char *bad, size_t badlen) {
    int mask = 0;
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        const size_t n = e ? (size_t)(e - p) : strlen(p);
        int found = -1;
        for (int t = 0; t < SHARD_NTASK_NAMES; t++)
            if (strlen(shard_task_names[t]) == n && strncmp(shard_task_names[t], p, n) == 0) found = t;
        if (found < 0) {
            if (bad) snprintf(bad, badlen, "%.*s", (int)n, p);
            return -1;
        }
        mask |= 1 << found;
        p = e ? e + 1 : NULL;
    }
    return mask;
}

void shard_tasks_format(int mask, char *out, size_t outlen) {
    size_t used = 0;
    if (outlen) out[0] = '\0';
    for (int t = 0; t < SHARD_NTASK_NAMES; t++)
        if (mask & (1 << t)) {
            int k = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", shard_task_names[t]);
            if (k < 0 || (size_t)k >= outlen - used) return;
            used += (size_t)k;
        }
}

void shard_record_free(shard_record *r) {
    if (!r) return;
    free(r->jpeg);
    free(r->semseg);
    free(r->human_parts);
    free(r->sal);
    free(r->edge);
    free(r->normals);
    free(r->normals_mask);
    memset(r, 0, sizeof *r);
}

uint64_t shard_record_checksum(const shard_record *r) {
    uint64_t h = MT_FNV1A64_INIT;
    const size_t px = (size_t)r->h * r->w;
    const int32_t size[2] = {r->h, r->w};
    h = mt_fnv1a64(h, r->id, strnlen(r->id, SHARD_ID_LEN));
    h = mt_fnv1a64(h, size, sizeof size);
    h = mt_fnv1a64(h, r->jpeg, r->jpeg_bytes);
    if (r->semseg) h = mt_fnv1a64(h, r->semseg, px);
    if (r->human_parts) h = mt_fnv1a64(h, r->human_parts, px);
    if (r->sal) h = mt_fnv1a64(h, r->sal, px);
    if (r->normals) h = mt_fnv1a64(h, r->normals, 3 * px);
    if (r->normals_mask) h = mt_fnv1a64(h, r->normals_mask, px);
    if (r->edge) h = mt_fnv1a64(h, r->edge, px);
    return h;
}

static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

void shard_h5_lock(void) { pthread_mutex_lock(&h5_lock); }
void shard_h5_unlock(void) { pthread_mutex_unlock(&h5_lock); }

void shard_quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
