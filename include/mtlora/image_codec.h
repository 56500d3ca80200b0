/* image_codec.h - JPEG and PNG files to and from 8-bit pixel arrays, with
 * libjpeg and libpng, decoding exactly as the official loader's PIL calls
 * do (PIL links the same libjpeg-turbo with the same defaults).
 *
 * Every failure returns MT_ERR_IO (cannot open/read/write) or
 * MT_ERR_FORMAT (not a JPEG/PNG, truncated, unsupported kind) with a message
 * naming `what` (the file path, or a caller's description for in-memory
 * data) in err. Nothing is left allocated on failure. */
#ifndef MTLORA_IMAGE_CODEC_H
#define MTLORA_IMAGE_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/status.h"

/* h rows of w pixels of c interleaved 8-bit channels (HWC), malloc'd. */
typedef struct {
    int h, w, c;
    uint8_t *data;
} mt_image8;

void img_free(mt_image8 *im);

/* Whole file into a malloc'd buffer. */
mt_status file_read_all(const char *path, uint8_t **buf, size_t *n, char *err, size_t errlen);

/* JPEG bytes to RGB (c = 3), as PIL's Image.open(f).convert('RGB'):
 * grayscale JPEGs are replicated to 3 channels; CMYK/YCCK are refused
 * (MT_ERR_FORMAT). A truncated or corrupt stream is an error, never a
 * partially grey image (libjpeg's warnings are treated as errors). */
mt_status img_jpeg_decode(const uint8_t *bytes, size_t n, mt_image8 *out, const char *what,
                          char *err, size_t errlen);
/* Reads and decodes a JPEG file; with bytes != NULL the raw file bytes are
 * returned too (caller frees), so they can be stored unchanged. */
mt_status img_jpeg_read(const char *path, mt_image8 *out, uint8_t **bytes, size_t *nbytes,
                        char *err, size_t errlen);
/* c = 3 (RGB) or 1 (gray), quality 1..100, 4:2:0 as libjpeg's default. */
mt_status img_jpeg_write(const char *path, const mt_image8 *im, int quality, char *err,
                         size_t errlen);

/* PNG file as np.array(Image.open(f)) gives it, 8-bit only:
 *   gray -> c = 1; palette -> c = 1 holding the palette INDICES (not
 *   colours); RGB -> c = 3; gray+alpha -> c = 2; RGBA -> c = 4.
 * Bit depths 1/2/4 are expanded to 0..(2^d-1) values (indices stay indices);
 * 16-bit PNGs are refused (MT_ERR_FORMAT). A truncated file or CRC error is
 * MT_ERR_FORMAT. */
mt_status img_png_read(const char *path, mt_image8 *out, char *err, size_t errlen);
/* c = 1 written as 8-bit gray, or, with palette != 0, as an 8-bit palette
 * image (values are indices; the palette is PASCAL VOC's colour map) as VOC's
 * SegmentationClass PNGs are; c = 3 as RGB. */
mt_status img_png_write(const char *path, const mt_image8 *im, int palette, char *err,
                        size_t errlen);

#endif
