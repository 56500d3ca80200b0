/* image_codec.h - JPEG and PNG files to and from 8-bit pixel arrays, with
 * libjpeg and libpng, decoding exactly as the official loader's PIL calls
 * do (PIL links the same libjpeg-turbo with the same defaults).
 * (io/image_codec.c: buffers and files; io/image_jpeg.c; io/image_png.c.)
 *
 * Failures return MT_ERR_IO (cannot open/read/write), MT_ERR_FORMAT (not a
 * JPEG/PNG, truncated, corrupt, unsupported kind, absurd size), MT_ERR_ARG
 * (null pointer, bad channel count or quality) or MT_ERR_NOMEM, with a
 * message naming `what` (the file path, or a caller's description for
 * in-memory data) and the reason in err. Nothing is left allocated on
 * failure, and *out is then all zero. Images over 65535 pixels a side or
 * 2^28 pixels are refused before any pixel buffer is allocated, and the
 * decoders' memory follows the data a file actually holds, not the size
 * its header claims (see each decoder), so hostile input is cheap. No function
 * prints or exits; all are thread-safe (no global state). */
#ifndef MTLORA_IMAGE_CODEC_H
#define MTLORA_IMAGE_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/base/status.h"

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
 * partially grey image: every libjpeg warning is an error except stray bytes
 * between markers ("extraneous bytes before marker"), which lose no pixel and
 * which PIL (the official loader's decoder) accepts too. */
mt_status img_jpeg_decode(const uint8_t *bytes, size_t n, mt_image8 *out, const char *what,
                          char *err, size_t errlen);
/* Its bounds on hostile input: libjpeg's working memory (the whole-image
 * coefficient buffer of a progressive file) is capped at 512 MiB, refused
 * with "decoder working memory"; a file with more than 100 scans is refused
 * ("scans"); the pixel buffer grows as rows decode, so a short file that
 * claims a huge size fails after allocating about what it holds. */
/* Reads and decodes a JPEG file; with bytes != NULL the raw file bytes are
 * returned too (caller frees), so they can be stored unchanged. */
mt_status img_jpeg_read(const char *path, mt_image8 *out, uint8_t **bytes, size_t *nbytes,
                        char *err, size_t errlen);
/* c = 3 (RGB) or 1 (gray), quality 1..100, 4:2:0 as libjpeg's default.
 * The encoders return the file's bytes in a malloc'd buffer (*bytes, *n;
 * the caller frees; NULL and 0 on failure), `what` naming the image in
 * messages: for a file that must appear whole or not at all, hand them to
 * atomic_write (atomic_file.h). The writers encode the same way and then
 * create the file at path in place (not atomically); a file that could not
 * be written completely is removed. */
mt_status img_jpeg_encode(const mt_image8 *im, int quality, uint8_t **bytes, size_t *n,
                          const char *what, char *err, size_t errlen);
mt_status img_jpeg_write(const char *path, const mt_image8 *im, int quality, char *err,
                         size_t errlen);

/* PNG file as np.array(Image.open(f)) gives it, 8-bit only:
 *   gray -> c = 1; palette -> c = 1 holding the palette INDICES (not
 *   colours; tRNS adds no alpha channel); RGB -> c = 3 (tRNS ignored);
 *   gray+alpha -> c = 2; RGBA -> c = 4.
 * Bit depths below 8 are unpacked to one byte per pixel, with PIL's values:
 * palette indices stay indices (0..2^d-1), 1-bit gray gives 0/1 (PIL mode
 * '1', whose np.array is boolean), 2- and 4-bit gray are stretched to
 * 0..255 (x85, x17; PIL mode 'L'). 16-bit PNGs are refused (MT_ERR_FORMAT).
 * A truncated file, a CRC or zlib check error is MT_ERR_FORMAT. */
mt_status img_png_read(const char *path, mt_image8 *out, char *err, size_t errlen);
/* The same from PNG bytes in memory, `what` naming them in messages.
 * Every chunk up to IEND must lie in the bytes with a correct CRC. Memory
 * and work stay near what the file holds: a header claiming more image
 * data than its IDAT can inflate to (deflate's limit, 1032:1) is refused
 * before any pixel buffer exists, rows of a non-interlaced image are
 * allocated as they decode, and image data going on more than a few KiB
 * past the last row (a zlib bomb) is refused rather than inflated. */
mt_status img_png_decode(const uint8_t *bytes, size_t n, mt_image8 *out, const char *what,
                         char *err, size_t errlen);
/* c = 1 written as 8-bit gray, or, with palette != 0, as an 8-bit palette
 * image (values are indices; the palette is PASCAL VOC's colour map) as VOC's
 * SegmentationClass PNGs are; c = 3 as RGB. Encoder and writer as for JPEG. */
mt_status img_png_encode(const mt_image8 *im, int palette, uint8_t **bytes, size_t *n,
                         const char *what, char *err, size_t errlen);
mt_status img_png_write(const char *path, const mt_image8 *im, int palette, char *err,
                        size_t errlen);

#endif
