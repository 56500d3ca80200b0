/* image_panel.c - any JPEG/PNG as RGB, side-by-side panels (image_panel.h). */
#include "mtlora/io/image_panel.h"

#include <stdlib.h>
#include <string.h>

/* PNG's IHDR is the first chunk: signature (8), length (4), "IHDR" (4),
 * width, height (4 each), bit depth (byte 24), colour type (byte 25). */
static int png_header(const uint8_t *b, size_t n, int *depth, int *type) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 8 || memcmp(b, sig, 8)) return 0;
    *depth = *type = -1;
    if (n >= 26 && !memcmp(b + 12, "IHDR", 4)) *depth = b[24], *type = b[25];
    return 1;
}

static mt_status to_rgb(mt_image8 *im, int gray_scale, const char *path, char *err, size_t errlen) {
    if (im->c == 3) return MT_OK;
    const size_t n = (size_t)im->h * im->w;
    uint8_t *rgb = malloc(3 * n);
    if (!rgb) {
        img_free(im);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory for %dx%d RGB", path, im->w, im->h);
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = im->data + i * (size_t)im->c;
        if (im->c >= 3) memcpy(rgb + 3 * i, p, 3); /* RGBA: alpha dropped */
        else rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (uint8_t)(p[0] * gray_scale); /* gray(+alpha) */
    }
    free(im->data);
    im->data = rgb;
    im->c = 3;
    return MT_OK;
}

mt_status img_read_rgb(const char *path, mt_image8 *out, char *err, size_t errlen) {
    if (!path || !out) return mt_errf(err, errlen, MT_ERR_ARG, "img_read_rgb: null argument");
    memset(out, 0, sizeof *out);
    uint8_t *bytes;
    size_t n;
    mt_status st = file_read_all(path, &bytes, &n, err, errlen);
    if (st) return st;
    int depth, type;
    if (n >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) {
        st = img_jpeg_decode(bytes, n, out, path, err, errlen);
    } else if (png_header(bytes, n, &depth, &type)) {
        if (type == 3)
            st = mt_errf(err, errlen, MT_ERR_FORMAT,
                         "%s: a palette (indexed-colour) PNG is not supported as input: save it as RGB", path);
        else if (!(st = img_png_decode(bytes, n, out, path, err, errlen)))
            st = to_rgb(out, type == 0 && depth == 1 ? 255 : 1, path, err, errlen);
    } else {
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: not a JPEG or PNG file (%zu bytes%s)", path, n,
                     n ? ", unknown first bytes" : ", empty");
    }
    free(bytes);
    if (st) img_free(out);
    return st;
}

mt_status img_panel_compose(const mt_image8 *tiles, int n, int gap, uint8_t background, mt_image8 *out,
                            char *err, size_t errlen) {
    if (!out) return mt_errf(err, errlen, MT_ERR_ARG, "panel: null output");
    memset(out, 0, sizeof *out);
    if (!tiles || n < 1 || gap < 0) return mt_errf(err, errlen, MT_ERR_ARG, "panel: no tiles");
    const int h = tiles[0].h;
    size_t width = (size_t)gap * (size_t)(n - 1);
    for (int i = 0; i < n; i++) {
        const mt_image8 *t = &tiles[i];
        if (!t->data || t->w <= 0 || t->h <= 0 || (t->c != 1 && t->c != 3))
            return mt_errf(err, errlen, MT_ERR_ARG, "panel: tile %d has no data or %d channels (1 or 3)", i, t->c);
        if (t->h != h)
            return mt_errf(err, errlen, MT_ERR_ARG, "panel: tile %d is %d high, tile 0 %d", i, t->h, h);
        width += (size_t)t->w;
    }
    if (width > 65535)
        return mt_errf(err, errlen, MT_ERR_ARG, "panel: %zu pixels wide, over PNG's 65535 here", width);
    out->data = malloc((size_t)h * width * 3);
    if (!out->data) return mt_errf(err, errlen, MT_ERR_NOMEM, "panel: out of memory for %zux%d", width, h);
    out->h = h;
    out->w = (int)width;
    out->c = 3;
    memset(out->data, background, (size_t)h * width * 3);
    size_t x0 = 0;
    for (int i = 0; i < n; i++) {
        const mt_image8 *t = &tiles[i];
        for (int y = 0; y < h; y++) {
            uint8_t *d = out->data + ((size_t)y * width + x0) * 3;
            const uint8_t *s = t->data + (size_t)y * t->w * t->c;
            if (t->c == 3) memcpy(d, s, (size_t)t->w * 3);
            else
                for (int x = 0; x < t->w; x++) d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = s[x];
        }
        x0 += (size_t)t->w + (size_t)gap;
    }
    return MT_OK;
}

mt_status img_panel_write(const char *path, const mt_image8 *tiles, int n, char *err, size_t errlen) {
    mt_image8 panel;
    char why[512];
    mt_status st = img_panel_compose(tiles, n, IMG_PANEL_GAP, IMG_PANEL_BACKGROUND, &panel, why, sizeof why);
    if (st) return mt_errf(err, errlen, st, "%s: %s", path ? path : "panel", why);
    st = img_png_write(path, &panel, 0, err, errlen);
    img_free(&panel);
    return st;
}
