/* image_codec.c - what the codecs share (image_codec_internal.h): pixel
 * buffers, whole-file reads and writes, size checks and errno messages.
 * The codecs themselves are image_jpeg.c (libjpeg) and image_png.c
 * (libpng); image_codec.h is the one contract of all three. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image_codec_internal.h"

void img_free(mt_image8 *im) {
    if (!im) return;
    free(im->data);
    memset(im, 0, sizeof *im);
}

int img_dims_too_large(uint64_t w, uint64_t h) {
    return w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || w * h > IMG_MAX_PIXELS;
}

mt_status img_errno_fail(char *err, size_t errlen, mt_status st, const char *what,
                         const char *action, int errnum) {
    char reason[128];
    if (strerror_r(errnum, reason, sizeof reason) != 0)
        snprintf(reason, sizeof reason, "errno %d", errnum);
    return mt_errf(err, errlen, st, "%s: %s (%s)", what, action, reason);
}

/* ---- whole files ------------------------------------------------------- */

static mt_status read_open_file(FILE *f, const char *path, uint8_t **buf, size_t *n, char *err,
                                size_t errlen) {
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0)
        return img_errno_fail(err, errlen, MT_ERR_IO, path, "cannot stat", errno);
    /* A directory opens fine on Linux and then fails with EISDIR on read. */
    if (!S_ISREG(sb.st_mode))
        return mt_errf(err, errlen, MT_ERR_IO, "%s: not a regular file", path);
    size_t size = (size_t)sb.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (!data)
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
    if (fread(data, 1, size, f) != size) {
        int errnum = errno;
        int failed = ferror(f);
        free(data);
        if (failed) return img_errno_fail(err, errlen, MT_ERR_IO, path, "read error", errnum);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: file shrank while being read", path);
    }
    *buf = data;
    *n = size;
    return MT_OK;
}

mt_status file_read_all(const char *path, uint8_t **buf, size_t *n, char *err, size_t errlen) {
    if (!path || !buf || !n)
        return mt_errf(err, errlen, MT_ERR_ARG, "file_read_all: null argument");
    *buf = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return img_errno_fail(err, errlen, MT_ERR_IO, path, "cannot open", errno);
    mt_status st = read_open_file(f, path, buf, n, err, errlen);
    fclose(f); /* read-only: a close error cannot lose data */
    return st;
}

static int is_regular(FILE *f) {
    struct stat sb;
    return fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Creates path holding exactly bytes. On failure the partial file is
 * removed, but never a device or FIFO that path happened to name (we may run
 * as root and be handed /dev/something). */
mt_status img_write_file_bytes(const char *path, const uint8_t *bytes, size_t n, char *err,
                               size_t errlen) {
    FILE *f = fopen(path, "wb");
    if (!f) return img_errno_fail(err, errlen, MT_ERR_IO, path, "cannot create", errno);
    int regular = is_regular(f);
    int ok = fwrite(bytes, 1, n, f) == n && fflush(f) == 0;
    int errnum = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        errnum = errno;
    }
    if (ok) return MT_OK;
    if (regular) remove(path);
    return img_errno_fail(err, errlen, MT_ERR_IO, path, "cannot write", errnum);
}

/* ---- writers' checks ---------------------------------------------------- */

mt_status img_check_writable(const char *what, const mt_image8 *im, unsigned max_side, char *err,
                             size_t errlen) {
    if (!im->data || im->h <= 0 || im->w <= 0 || (unsigned)im->h > max_side ||
        (unsigned)im->w > max_side)
        return mt_errf(err, errlen, MT_ERR_ARG,
                       "%s: cannot write a %dx%d image (no data or size outside 1..%u)", what,
                       im->w, im->h, max_side);
    return MT_OK;
}
