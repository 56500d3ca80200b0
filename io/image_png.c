/* image_png.c - PNG read and write with libpng (image_codec.h).
 *
 * libpng reports fatal errors by calling a handler that must not return;
 * we longjmp out of it (png_longjmp). To keep that well defined, every
 * object the library (or our code) changes between setjmp and longjmp
 * lives in a "job" struct owned by the CALLER of the function that calls
 * setjmp, so no local of the setjmp frame is ever indeterminate after the
 * jump. The caller then frees whatever the job holds, on success and
 * failure alike.
 *
 * The encoder writes into memory, and only then does img_png_write create
 * the file: encoder failures never leave a file behind, and I/O failures
 * get errno's reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image_codec_internal.h"

/* Room for a libpng message plus our explanation around it. */
#define REASON_LEN 296

/* ---- libpng error handling ----------------------------------------------- */

/* Shared by reader and writer: the fields the handlers touch come first. */
typedef struct {
    png_structp png;
    png_infop info;
    mt_status status;
    const char *problem; /* what a libpng error means: corrupt input, failed encoder */
    char reason[REASON_LEN];
} png_fail_state;

/* libpng's handler must not return. A reason already set (by png_refuse)
 * wins over libpng's shorter text. */
static void png_on_error(png_structp png, png_const_charp msg) {
    png_fail_state *s = png_get_error_ptr(png);
    if (!s->reason[0]) snprintf(s->reason, sizeof s->reason, "%s (%s)", s->problem, msg);
    png_longjmp(png, 1);
}

/* Warnings (bad sRGB profiles, extra zlib bytes...) are what PIL ignores too;
 * library code never prints them. */
static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

__attribute__((format(printf, 3, 4), noreturn)) static void
png_refuse(png_fail_state *s, mt_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof s->reason, fmt, ap);
    va_end(ap);
    s->status = st;
    png_error(s->png, s->reason);
}

/* ---- PNG read ------------------------------------------------------------ */

typedef struct {
    png_fail_state fail; /* first: the error pointer is the job */
    const uint8_t *bytes;
    size_t n, pos;
    uint8_t *pixels;
    png_bytep *rows;
    int h, w, c;
    int gray_scale; /* PIL's 'L' for 2/4-bit gray stretches values to 0..255 */
} png_read_job;

static void png_read_from_memory(png_structp png, png_bytep dst, size_t len) {
    png_read_job *job = png_get_io_ptr(png);
    if (job->n - job->pos < len)
        png_refuse(&job->fail, MT_ERR_FORMAT, "truncated PNG data (file ends after %zu bytes)",
                   job->n);
    memcpy(dst, job->bytes + job->pos, len);
    job->pos += len;
}

/* Transforms that make libpng deliver np.array(Image.open(f))'s layout:
 * one byte per sample, palette indices kept, tRNS NOT turned into alpha. */
static void png_choose_layout(png_read_job *job) {
    png_structp png = job->fail.png;
    png_infop info = job->fail.info;
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    if (depth == 16)
        png_refuse(&job->fail, MT_ERR_FORMAT, "16-bit PNG is not supported (8-bit only)");
    if (depth < 8) png_set_packing(png);
    switch (type) {
    case PNG_COLOR_TYPE_GRAY: job->c = 1; break;
    case PNG_COLOR_TYPE_PALETTE: job->c = 1; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: job->c = 2; break;
    case PNG_COLOR_TYPE_RGB: job->c = 3; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: job->c = 4; break;
    default: png_refuse(&job->fail, MT_ERR_FORMAT, "unknown PNG colour type %d", type);
    }
    /* 1-bit gray is PIL mode '1': np.array gives booleans, i.e. 0/1, which
     * packing already yields; 2/4-bit gray is mode 'L' scaled to 0..255. */
    job->gray_scale = 1;
    if (type == PNG_COLOR_TYPE_GRAY && depth == 2) job->gray_scale = 85;
    if (type == PNG_COLOR_TYPE_GRAY && depth == 4) job->gray_scale = 17;
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

static void png_alloc_rows(png_read_job *job) {
    png_structp png = job->fail.png;
    size_t stride = (size_t)job->w * (size_t)job->c;
    if (png_get_rowbytes(png, job->fail.info) != stride)
        png_refuse(&job->fail, MT_ERR_FORMAT, "unexpected PNG row size %zu (wanted %zu)",
                   (size_t)png_get_rowbytes(png, job->fail.info), stride);
    job->pixels = malloc(stride * (size_t)job->h);
    job->rows = malloc(sizeof *job->rows * (size_t)job->h);
    if (!job->pixels || !job->rows)
        png_refuse(&job->fail, MT_ERR_NOMEM, "out of memory for %dx%dx%d pixels", job->h, job->w,
                   job->c);
    for (int y = 0; y < job->h; y++) job->rows[y] = job->pixels + (size_t)y * stride;
}

static mt_status png_read_guarded(png_read_job *job) {
    png_structp png = job->fail.png;
    png_infop info = job->fail.info;
    if (setjmp(png_jmpbuf(png))) return job->fail.status;
    png_set_read_fn(png, job, png_read_from_memory);
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    /* Our own size check below gives the clearer message. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (img_dims_too_large(w, h))
        png_refuse(&job->fail, MT_ERR_FORMAT,
                   "image is %lux%lu, beyond the %u-per-side / 2^28-pixel limit", (unsigned long)w,
                   (unsigned long)h, IMG_MAX_SIDE);
    job->w = (int)w;
    job->h = (int)h;
    png_choose_layout(job);
    png_alloc_rows(job);
    png_read_image(png, job->rows);
    png_read_end(png, NULL); /* checks the chunks after the image up to IEND */
    return MT_OK;
}

static void stretch_gray(uint8_t *p, size_t n, int scale) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(p[i] * scale);
}

static mt_status png_decode(const uint8_t *bytes, size_t n, mt_image8 *out, const char *path,
                            char *err, size_t errlen) {
    if (n < 8 || png_sig_cmp(bytes, 0, 8) != 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: not a PNG file (bad signature)", path);
    png_read_job job;
    memset(&job, 0, sizeof job);
    job.bytes = bytes;
    job.n = n;
    job.fail.status = MT_ERR_FORMAT;
    job.fail.problem = "corrupt PNG data";
    job.fail.png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &job.fail, png_on_error, png_on_warning);
    if (job.fail.png) job.fail.info = png_create_info_struct(job.fail.png);
    if (!job.fail.info) {
        png_destroy_read_struct(&job.fail.png, NULL, NULL);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory for the PNG reader", path);
    }
    mt_status st = png_read_guarded(&job);
    png_destroy_read_struct(&job.fail.png, &job.fail.info, NULL);
    free(job.rows);
    if (st) {
        free(job.pixels);
        return mt_errf(err, errlen, st, "%s: %s", path, job.fail.reason);
    }
    if (job.gray_scale != 1)
        stretch_gray(job.pixels, (size_t)job.h * (size_t)job.w, job.gray_scale);
    out->h = job.h;
    out->w = job.w;
    out->c = job.c;
    out->data = job.pixels;
    return MT_OK;
}

mt_status img_png_read(const char *path, mt_image8 *out, char *err, size_t errlen) {
    if (!path || !out) return mt_errf(err, errlen, MT_ERR_ARG, "img_png_read: null argument");
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t n;
    mt_status st = file_read_all(path, &buf, &n, err, errlen);
    if (st) return st;
    st = png_decode(buf, n, out, path, err, errlen);
    free(buf);
    return st;
}

/* ---- PNG write ----------------------------------------------------------- */

typedef struct {
    png_fail_state fail;
    uint8_t *buf;
    size_t cap, len;
} png_write_job;

static void png_append_to_memory(png_structp png, png_bytep src, size_t len) {
    png_write_job *job = png_get_io_ptr(png);
    if (job->cap - job->len < len) {
        size_t cap = job->cap ? job->cap : 1 << 16;
        while (cap - job->len < len) cap *= 2;
        uint8_t *bigger = realloc(job->buf, cap);
        if (!bigger) png_refuse(&job->fail, MT_ERR_NOMEM, "out of memory for %zu PNG bytes", cap);
        job->buf = bigger;
        job->cap = cap;
    }
    memcpy(job->buf + job->len, src, len);
    job->len += len;
}

static void png_flush_nothing(png_structp png) { (void)png; }

/* PASCAL VOC's colour map (VOCdevkit's labelcolormap.m): bit k of the index
 * goes, three bits at a time, into bit 7-k/3 of red, green, blue. */
static void voc_palette(png_color pal[256]) {
    for (int i = 0; i < 256; i++) {
        int r = 0, g = 0, b = 0, c = i;
        for (int j = 0; j < 8; j++, c >>= 3) {
            r |= ((c >> 0) & 1) << (7 - j);
            g |= ((c >> 1) & 1) << (7 - j);
            b |= ((c >> 2) & 1) << (7 - j);
        }
        pal[i].red = (png_byte)r;
        pal[i].green = (png_byte)g;
        pal[i].blue = (png_byte)b;
    }
}

static mt_status png_encode_guarded(png_write_job *job, const mt_image8 *im, int palette) {
    png_structp png = job->fail.png;
    png_infop info = job->fail.info;
    if (setjmp(png_jmpbuf(png))) return job->fail.status;
    png_set_write_fn(png, job, png_append_to_memory, png_flush_nothing);
    int type = im->c == 3 ? PNG_COLOR_TYPE_RGB
               : palette  ? PNG_COLOR_TYPE_PALETTE
                          : PNG_COLOR_TYPE_GRAY;
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8, type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_color pal[256];
    if (type == PNG_COLOR_TYPE_PALETTE) {
        voc_palette(pal);
        png_set_PLTE(png, info, pal, 256);
    }
    png_write_info(png, info);
    size_t stride = (size_t)im->w * (size_t)im->c;
    for (int y = 0; y < im->h; y++) png_write_row(png, im->data + (size_t)y * stride);
    png_write_end(png, NULL);
    return MT_OK;
}

mt_status img_png_encode(const mt_image8 *im, int palette, uint8_t **bytes, size_t *n,
                         const char *what, char *err, size_t errlen) {
    if (!what) what = "PNG image";
    if (!im || !bytes || !n)
        return mt_errf(err, errlen, MT_ERR_ARG, "img_png_encode: null argument");
    *bytes = NULL;
    *n = 0;
    mt_status st = img_check_writable(what, im, IMG_MAX_SIDE, err, errlen);
    if (st) return st;
    if (im->c != 1 && im->c != 3)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: PNG writer takes 1 or 3 channels, not %d",
                       what, im->c);
    if (palette && im->c != 1)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: a palette PNG needs 1 channel of indices",
                       what);
    png_write_job job;
    memset(&job, 0, sizeof job);
    job.fail.status = MT_ERR_IO;
    job.fail.problem = "cannot encode PNG";
    job.fail.png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, &job.fail, png_on_error, png_on_warning);
    if (job.fail.png) job.fail.info = png_create_info_struct(job.fail.png);
    if (!job.fail.info) {
        png_destroy_write_struct(&job.fail.png, NULL);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory for the PNG writer", what);
    }
    st = png_encode_guarded(&job, im, palette);
    png_destroy_write_struct(&job.fail.png, &job.fail.info);
    if (st) {
        free(job.buf);
        return mt_errf(err, errlen, st, "%s: %s", what, job.fail.reason);
    }
    *bytes = job.buf;
    *n = job.len;
    return MT_OK;
}

mt_status img_png_write(const char *path, const mt_image8 *im, int palette, char *err,
                        size_t errlen) {
    if (!path || !im) return mt_errf(err, errlen, MT_ERR_ARG, "img_png_write: null argument");
    uint8_t *bytes;
    size_t n;
    mt_status st = img_png_encode(im, palette, &bytes, &n, path, err, errlen);
    if (st) return st;
    st = img_write_file_bytes(path, bytes, n, err, errlen);
    free(bytes);
    return st;
}
