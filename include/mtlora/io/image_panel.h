/* image_panel.h - images for people to look at (io/image_panel.c): any JPEG
 * or PNG file as RGB, and side-by-side panels written as PNG, on top of the
 * codecs of image_codec.h. Errors as there (MT_ERR_IO, MT_ERR_FORMAT,
 * MT_ERR_ARG, MT_ERR_NOMEM, the message naming the file); nothing is left
 * allocated on failure. No function prints; all are thread-safe. */
#ifndef MTLORA_IMAGE_PANEL_H
#define MTLORA_IMAGE_PANEL_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/base/status.h"
#include "mtlora/io/image_codec.h"

/* The gap between tiles of a panel, in pixels, and its colour (white). */
#define IMG_PANEL_GAP 4
#define IMG_PANEL_BACKGROUND 255

/* A JPEG or PNG file, told apart by its first bytes (not its name), as RGB
 * (c = 3), as PIL's Image.open(f).convert('RGB') gives it: JPEG as
 * img_jpeg_decode; PNG gray replicated (1-bit gray as 0/255), gray+alpha and
 * RGBA with the alpha dropped (convert('RGB') drops it, no compositing).
 * Refused with MT_ERR_FORMAT: anything else ("not a JPEG or PNG file"),
 * palette (indexed-colour) PNGs (the decoder keeps indices, not colours),
 * 16-bit PNGs, truncated or corrupt files. */
mt_status img_read_rgb(const char *path, mt_image8 *out, char *err, size_t errlen);

/* n tiles (c = 1, replicated, or c = 3), all of one height h, left to right
 * with `gap` columns of `background` between them: out is RGB, h high,
 * sum of the widths + (n - 1) * gap wide. MT_ERR_ARG on n < 1, a tile
 * without data, another channel count or another height (named by index). */
mt_status img_panel_compose(const mt_image8 *tiles, int n, int gap, uint8_t background, mt_image8 *out,
                            char *err, size_t errlen);

/* img_panel_compose with IMG_PANEL_GAP and IMG_PANEL_BACKGROUND, written
 * as an RGB PNG at path (img_png_write: a failed write leaves no file). */
mt_status img_panel_write(const char *path, const mt_image8 *tiles, int n, char *err, size_t errlen);

#endif
