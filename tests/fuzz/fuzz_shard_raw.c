/* fuzz_shard_raw - libFuzzer target: the shard reader (io/shards/shard_reader.c)
 * on arbitrary bytes as a file. HDF5 reads files, not buffers, through our
 * API, so the input is written to $MTLORA_FUZZ_TMP/fuzz_shard_raw.<pid>.h5,
 * opened with shard_open and every record read whole (labels, domains,
 * checksum), as the loader and `mtlora-pack --verify` do. The contract
 * checked: success gives a record of the indexed size with every buffer
 * readable; a failure names the file.
 *
 * libhdf5 1.10 itself is not fuzz-clean: within seconds libFuzzer finds
 * crashes inside its object-header decoding (a heap-buffer-overflow in the
 * attribute message decoder under H5Aexists), so this target is not part of
 * launch/fuzz's runs (tests/fuzz/shard.cmake: run it by hand); fuzz_shard
 * fuzzes our reader through well-formed HDF5 files instead. In the gcc
 * builds ctest replays the writer's shards with truncations and byte flips,
 * which our code and HDF5 survive. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/io/shards/shard.h"

/* A shard of a few 8x8 records is 10-30 KiB; larger inputs only cost time. */
#define FUZZ_MAX_INPUT ((size_t)1 << 20)
#define FUZZ_MAX_RECORDS 16

/* libhdf5 1.10 leaks its metadata-cache entry when an object header fails
 * to decode (H5Dopen2 -> H5O_protect on a corrupt file: its own error path,
 * not ours). Those leaks are suppressed by module; a leak of ours has no
 * libhdf5 frame in its allocation stack and is still reported. (A hook
 * LeakSanitizer calls; unused without it.) */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libhdf5\n"; }

/* libhdf5 sizes some metadata-cache buffers from fields of the file
 * (H5C_protect: a corrupt length asks malloc for ~2^48 bytes). glibc's
 * malloc returns NULL and HDF5 fails the call cleanly, which is what a user
 * gets; ASan aborts instead unless it may return NULL too. (A hook ASan
 * calls; unused without it.) */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static void contract_broken(const char *what, const char *msg) {
    fprintf(stderr, "fuzz_shard_raw: contract broken: %s (message: %s)\n", what, msg);
    abort();
}

static void touch_record(const shard_record *r) {
    const size_t px = (size_t)r->h * r->w;
    volatile uint8_t x = r->jpeg[r->jpeg_bytes - 1];
    if (r->semseg) x ^= r->semseg[px - 1];
    if (r->human_parts) x ^= r->human_parts[px - 1];
    if (r->sal) x ^= r->sal[px - 1];
    if (r->edge) x ^= r->edge[px - 1];
    if (r->normals) x ^= r->normals[3 * px - 1];
    if (r->normals_mask) x ^= r->normals_mask[px - 1];
    (void)x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    const char *tmp = getenv("MTLORA_FUZZ_TMP");
    char path[4096];
    snprintf(path, sizeof path, "%s/fuzz_shard_raw.%d.h5", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        abort();
    }
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    shard_file *sf = NULL;
    char err[2048] = "";
    if (shard_open(&sf, path, err, sizeof err) == MT_OK) {
        const shard_info *in = shard_file_info(sf);
        for (int64_t i = 0; i < in->nrecords && i < FUZZ_MAX_RECORDS; i++) {
            shard_record r;
            err[0] = '\0';
            if (shard_read(sf, i, SHARD_ALL_TASKS, &r, err, sizeof err) == MT_OK) {
                int h, w;
                shard_record_size(sf, i, &h, &w);
                if (r.h != h || r.w != w || !r.jpeg || !r.jpeg_bytes)
                    contract_broken("a record unlike its index entry", shard_record_id(sf, i));
                touch_record(&r);
                shard_record_free(&r);
            } else {
                if (getenv("FUZZ_SHARD_RAW_VERBOSE")) fprintf(stderr, "fuzz_shard_raw: %s\n", err);
                if (!strstr(err, path)) contract_broken("a record error that does not name the file", err);
            }
        }
        shard_close(sf);
    } else {
        if (getenv("FUZZ_SHARD_RAW_VERBOSE")) fprintf(stderr, "fuzz_shard_raw: %s\n", err);
        if (!strstr(err, path)) contract_broken("an open error that does not name the file", err);
    }
    /* every HDF5 file, group, dataset, attribute, type and space closed on every path */
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) {
        char n[64];
        snprintf(n, sizeof n, "%lld open", (long long)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL));
        contract_broken("HDF5 objects left open", n);
    }
    unlink(path);
    return 0;
}
