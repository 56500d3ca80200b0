/* image_codec_internal.h - what the JPEG (image_jpeg.c) and PNG
 * (image_png.c) halves of image_codec.h share: the size limits, errno
 * messages, the writable-image check and the plain file write
 * (image_codec.c). Private to io/. */
#ifndef MTLORA_IMAGE_CODEC_INTERNAL_H
#define MTLORA_IMAGE_CODEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mtlora/io/image_codec.h"

/* A corrupt header must not be able to request a huge allocation: 2^28
 * pixels is 768 MiB as RGB, far beyond any real dataset image. */
#define IMG_MAX_SIDE 65535u
#define IMG_MAX_PIXELS ((uint64_t)1 << 28)

int img_dims_too_large(uint64_t w, uint64_t h);

/* "<what>: <action> (<strerror>)" into err; returns st. */
mt_status img_errno_fail(char *err, size_t errlen, mt_status st, const char *what,
                         const char *action, int errnum);

/* MT_ERR_ARG unless im has data and sides in 1..max_side. */
mt_status img_check_writable(const char *what, const mt_image8 *im, unsigned max_side, char *err,
                             size_t errlen);

/* Creates path holding exactly bytes (not atomically: see image_codec.h). */
mt_status img_write_file_bytes(const char *path, const uint8_t *bytes, size_t n, char *err,
                               size_t errlen);

#endif
