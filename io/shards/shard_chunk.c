/* shard_chunk.c - reading a record's label dataset into exactly its size
 * (shard_internal.h): the one place the shard reader does not trust libhdf5
 * with a chunk, and the only user of zlib. */
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "shard_internal.h"

/* libhdf5 1.10 trusts what a chunk's index and filters say about its
 * size: a chunk whose stored bytes or deflate output are shorter than the
 * chunk makes H5Dread copy past the end of HDF5's own buffer (a read
 * overflow or a segfault, found by fuzz_shard_raw), which would be the
 * trainer's loader thread. The format stores each label as one chunk,
 * deflated; such a dataset is read here by its stored bytes
 * (H5Dread_chunk), copied if unfiltered or inflated with zlib, into exactly
 * n bytes. Returns 1 when read, 0 when H5Dread should read it, -2 when
 * the chunk does not hold n bytes, -3 when the layout is not one chunk with
 * at most a deflate filter. */
static int read_one_chunk(hid_t d, hid_t pl, int nd, const hsize_t *dims, size_t n, uint8_t *out) {
    hsize_t cd[H5S_MAX_RANK], off[H5S_MAX_RANK] = {0}, stored = 0;
    const int nf = H5Pget_nfilters(pl);
    int one = nf >= 0 && H5Pget_chunk(pl, H5S_MAX_RANK, cd) == nd;
    for (int k = 0; one && k < nd; k++) one = cd[k] == dims[k];
    unsigned flags, cdv[8];
    size_t ncd = 8;
    if (!one || nf > 1 ||
        (nf == 1 && H5Pget_filter2(pl, 0, &flags, &ncd, cdv, 0, NULL, NULL) != H5Z_FILTER_DEFLATE))
        return -3;
    if (H5Dget_chunk_storage_size(d, off, &stored) < 0 || stored == 0) return 0; /* no chunk: fill */
    if (stored > (hsize_t)n + n / 8 + 1024) return -2; /* more than deflate ever adds */
    uint8_t *z = malloc((size_t)stored);
    if (!z) return -1;
    uint32_t mask = 0;
    int rc = -1;
    if (H5Dread_chunk(d, H5P_DEFAULT, off, &mask, z) >= 0) {
        rc = -2;
        if (nf == 0 || (mask & 1)) { /* unfiltered, or the filter skipped for this chunk */
            if (stored == n) {
                memcpy(out, z, n);
                rc = 1;
            }
        } else {
            uLongf got = (uLongf)n;
            if (uncompress(out, &got, z, (uLong)stored) == Z_OK && got == n) rc = 1;
        }
    }
    free(z);
    return rc;
}

/* The values of dataset d into out (n bytes of uint8): 0, or -1 when HDF5
 * cannot read them, -2 when the chunk does not hold n bytes, -3 when the
 * layout is not the format's one (deflated) chunk. */
int shard_read_label_values(hid_t d, int nd, const hsize_t *dims, size_t n, uint8_t *out) {
    hid_t pl = H5Dget_create_plist(d);
    if (pl < 0) return -1;
    const int rc = H5Pget_layout(pl) == H5D_CHUNKED ? read_one_chunk(d, pl, nd, dims, n, out) : 0;
    H5Pclose(pl);
    if (rc) return rc > 0 ? 0 : rc;
    return H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0 ? -1 : 0;
}
