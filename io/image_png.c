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
 * get errno's reason.
 *
 * A hostile file must not cost more than a real one. The chunk structure
 * is checked first, by us, on the bytes in memory (png_walk_chunks: every
 * chunk inside the file with a correct CRC, up to IEND), so png_read_end
 * is never needed. Once the last row is read, libpng inflates whatever
 * IDAT data is left, only to warn about it: a zlib bomb's surplus, 1032
 * bytes per byte. So libpng gets IDAT in small pieces (PNG_IDAT_PIECE) and,
 * from the last row on, at most PNG_TAIL_SLACK bytes beyond two rows' worth
 * (png_read_from_memory): more is refused, so the work stays bounded by the
 * declared size. The image data cannot
 * inflate beyond deflate's 1032:1, so a header claiming more pixels than
 * the IDAT chunks could hold is refused before any pixel buffer exists
 * (png_check_claim); non-interlaced rows go into a buffer that grows as
 * they arrive; libpng's per-chunk allocations are capped
 * (PNG_MAX_CHUNK_BYTES); the text, ICC and sPLT chunks, which we never use,
 * are skipped unread, so their compressed payloads cost nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image_codec_internal.h"

/* Room for a libpng message plus our explanation around it. */
#define REASON_LEN 296

/* deflate's best case: a 258-byte match coded in two 1-bit codes. */
#define PNG_MAX_INFLATE_RATIO 1032u
/* Zlib header, block headers and chunk framing of a tiny image. */
#define PNG_INFLATE_SLACK 4096u
/* One ancillary chunk (or its decompressed text) may take this much:
 * libpng's own default, set here so no build of it can differ. */
#define PNG_MAX_CHUNK_BYTES 8000000u
/* libpng reads IDAT through us in pieces of this size (its read-side
 * compression buffer), so what it holds unread is small. */
#define PNG_IDAT_PIECE 512u
/* Bytes the reader may take, beyond 2 rows' worth, from the start of the
 * last png_read_row on (that row's tail, the zlib trailer, CRCs): a real
 * file needs a few dozen. */
#define PNG_TAIL_SLACK 2048u
/* At most this many stored ancillary chunks (sPLT, unknown ones). */
#define PNG_MAX_CACHED_CHUNKS 128u
/* The pixel buffer of a non-interlaced image starts with at most this many
 * bytes of rows and doubles as rows arrive, as in image_jpeg.c. */
#define PNG_FIRST_PIXEL_BYTES ((size_t)64 << 20)

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

/* ---- chunk structure ----------------------------------------------------- */

static uint32_t png_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The PNG (zlib) CRC-32. The table lives on the caller's stack: 2048 steps
 * per decode, and no global state. */
static void png_crc_table(uint32_t t[256]) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
        t[i] = c;
    }
}

static uint32_t png_crc_of(const uint32_t t[256], const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = t[(c ^ p[i]) & 0xffu] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* A chunk type for messages: its letters, '?' for any other byte. */
static void png_chunk_name(const uint8_t *p, char out[5]) {
    for (int i = 0; i < 4; i++) {
        int letter = (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z');
        out[i] = letter ? (char)p[i] : '?';
    }
    out[4] = '\0';
}

/* Every chunk from the signature to IEND lies inside the n bytes and has
 * the right CRC; *idat_bytes is the sum of the IDAT lengths. Bytes after
 * IEND are ignored, as libpng and PIL ignore them. */
static mt_status png_walk_chunks(const uint8_t *b, size_t n, uint64_t *idat_bytes, char *reason,
                                 size_t len) {
    uint32_t table[256];
    png_crc_table(table);
    *idat_bytes = 0;
    for (size_t pos = 8;;) {
        if (n - pos < 12) {
            snprintf(reason, len, "truncated PNG data (no IEND chunk: the file ends after %zu bytes)",
                     n);
            return MT_ERR_FORMAT;
        }
        uint32_t length = png_be32(b + pos);
        char name[5];
        png_chunk_name(b + pos + 4, name);
        if (length > PNG_UINT_31_MAX) {
            snprintf(reason, len, "corrupt PNG data (chunk %s at byte %zu has length %lu > 2^31-1)",
                     name, pos, (unsigned long)length);
            return MT_ERR_FORMAT;
        }
        if (n - pos - 12 < length) {
            snprintf(reason, len,
                     "truncated PNG data (chunk %s at byte %zu needs %lu bytes; the file ends "
                     "after %zu bytes)",
                     name, pos, (unsigned long)length + 12, n);
            return MT_ERR_FORMAT;
        }
        if (png_crc_of(table, b + pos + 4, 4 + (size_t)length) != png_be32(b + pos + 8 + length)) {
            snprintf(reason, len, "corrupt PNG data (CRC error in chunk %s at byte %zu)", name, pos);
            return MT_ERR_FORMAT;
        }
        if (!memcmp(name, "IDAT", 4)) *idat_bytes += length;
        if (!memcmp(name, "IEND", 4)) return MT_OK;
        pos += 12 + (size_t)length;
    }
}

/* ---- PNG read ------------------------------------------------------------ */

typedef struct {
    png_fail_state fail; /* first: the error pointer is the job */
    const uint8_t *bytes;
    size_t n, pos;
    uint64_t idat_bytes; /* what png_walk_chunks counted */
    uint8_t *pixels;
    size_t rows_allocated; /* rows the pixel buffer holds so far */
    int in_last_row;           /* the final png_read_row call has begun */
    size_t tail_budget;        /* bytes the reader may take from then on */
    int passes;                /* 1, or 7 for Adam7 */
    int h, w, c;
    int gray_scale; /* PIL's 'L' for 2/4-bit gray stretches values to 0..255 */
} png_read_job;

static void png_read_from_memory(png_structp png, png_bytep dst, size_t len) {
    png_read_job *job = png_get_io_ptr(png);
    if (job->n - job->pos < len)
        png_refuse(&job->fail, MT_ERR_FORMAT, "truncated PNG data (file ends after %zu bytes)",
                   job->n);
    if (job->in_last_row) {
        if (len > job->tail_budget)
            png_refuse(&job->fail, MT_ERR_FORMAT,
                       "corrupt PNG data (the image data goes on past the last of its %d rows, "
                       "at byte %zu: a zlib bomb or a wrong size in IHDR)",
                       job->h, job->pos);
        job->tail_budget -= len;
    }
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
    job->passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

/* The image data of h rows is at least h * (1 + rowbytes) bytes once
 * inflated (one filter byte per row; interlaced files have more), and the
 * IDAT chunks cannot inflate to more than 1032 times their size. A header
 * claiming more is a truncated file or a memory bomb: refused before any
 * pixel buffer is allocated. Called before png_choose_layout, while the
 * row size is still the file's (packed) one. */
static void png_check_claim(png_read_job *job) {
    uint64_t rowbytes = png_get_rowbytes(job->fail.png, job->fail.info);
    uint64_t raw = (uint64_t)job->h * (rowbytes + 1);
    uint64_t most = job->idat_bytes * PNG_MAX_INFLATE_RATIO + PNG_INFLATE_SLACK;
    if (raw > most)
        png_refuse(&job->fail, MT_ERR_FORMAT,
                   "PNG header claims %dx%d pixels (%llu bytes of image data), more than its "
                   "%llu bytes of IDAT can hold (deflate inflates at most %u:1): truncated or "
                   "forged",
                   job->w, job->h, (unsigned long long)raw, (unsigned long long)job->idat_bytes,
                   PNG_MAX_INFLATE_RATIO);
}

static size_t png_checked_stride(png_read_job *job) {
    size_t stride = (size_t)job->w * (size_t)job->c;
    if (png_get_rowbytes(job->fail.png, job->fail.info) != stride)
        png_refuse(&job->fail, MT_ERR_FORMAT, "unexpected PNG row size %zu (wanted %zu)",
                   (size_t)png_get_rowbytes(job->fail.png, job->fail.info), stride);
    return stride;
}

static void png_refuse_nomem(png_read_job *job, size_t rows) {
    png_refuse(&job->fail, MT_ERR_NOMEM, "out of memory for %zux%dx%d pixels", rows, job->w,
               job->c);
}

/* Makes room for row y: doubling, so a file that claims more rows than its
 * data holds never gets the whole buffer. */
static void png_reserve_row(png_read_job *job, size_t y, size_t stride) {
    if (y < job->rows_allocated) return;
    size_t h = (size_t)job->h;
    size_t rows = job->rows_allocated ? job->rows_allocated * 2 : PNG_FIRST_PIXEL_BYTES / stride;
    if (rows < 16) rows = 16;
    if (rows > h) rows = h;
    uint8_t *bigger = realloc(job->pixels, rows * stride);
    if (!bigger) png_refuse_nomem(job, rows);
    job->pixels = bigger;
    job->rows_allocated = rows;
}

/* One png_read_row call; the final one of the image (in which libpng
 * inflates whatever data is left) gets the tail budget. */
static void png_read_one_row(png_read_job *job, uint8_t *row, size_t stride, int last) {
    if (last) {
        job->in_last_row = 1;
        job->tail_budget = 2 * (stride + 1) + PNG_TAIL_SLACK;
    }
    png_read_row(job->fail.png, row, NULL);
}

/* Non-interlaced: row by row, memory following the data present. */
static void png_read_progressive_rows(png_read_job *job, size_t stride) {
    size_t h = (size_t)job->h;
    for (size_t y = 0; y < h; y++) {
        png_reserve_row(job, y, stride);
        png_read_one_row(job, job->pixels + y * stride, stride, y + 1 == h);
    }
}

/* Interlaced: the first Adam7 pass already touches every eighth row, so
 * the whole buffer is needed up front (png_check_claim has bounded it).
 * Each pass visits every row, as png_read_image does; libpng combines the
 * pass's pixels into it. */
static void png_read_interlaced_rows(png_read_job *job, size_t stride) {
    size_t h = (size_t)job->h;
    job->pixels = malloc(stride * h);
    if (!job->pixels) png_refuse_nomem(job, h);
    for (int pass = 0; pass < job->passes; pass++)
        for (size_t y = 0; y < h; y++)
            png_read_one_row(job, job->pixels + y * stride, stride,
                             pass + 1 == job->passes && y + 1 == h);
}

/* Bounds on what libpng itself may allocate or decompress for chunks. */
static void png_set_reader_limits(png_structp png) {
    /* Our own size check (png_read_guarded) gives the clearer message. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_chunk_malloc_max(png, PNG_MAX_CHUNK_BYTES);
    png_set_compression_buffer_size(png, PNG_IDAT_PIECE); /* read side: the IDAT piece */
    png_set_chunk_cache_max(png, PNG_MAX_CACHED_CHUNKS);
#ifdef PNG_HANDLE_AS_UNKNOWN_SUPPORTED
    /* Neither PIL's pixels nor ours depend on these: skipped unread. */
    static const png_byte unused[] = "iCCP\0iTXt\0tEXt\0zTXt\0sPLT";
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, unused, 5);
#endif
}

static mt_status png_read_guarded(png_read_job *job) {
    png_structp png = job->fail.png;
    png_infop info = job->fail.info;
    if (setjmp(png_jmpbuf(png))) return job->fail.status;
    png_set_read_fn(png, job, png_read_from_memory);
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_set_reader_limits(png);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (img_dims_too_large(w, h))
        png_refuse(&job->fail, MT_ERR_FORMAT,
                   "image is %lux%lu, beyond the %u-per-side / 2^28-pixel limit", (unsigned long)w,
                   (unsigned long)h, IMG_MAX_SIDE);
    job->w = (int)w;
    job->h = (int)h;
    png_check_claim(job);
    int interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
    png_choose_layout(job);
    size_t stride = png_checked_stride(job);
    if (interlaced)
        png_read_interlaced_rows(job, stride);
    else
        png_read_progressive_rows(job, stride);
    /* No png_read_end: png_walk_chunks has checked the rest of the file up
     * to IEND. */
    return MT_OK;
}

static void stretch_gray(uint8_t *p, size_t n, int scale) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(p[i] * scale);
}

static mt_status png_decode(const uint8_t *bytes, size_t n, mt_image8 *out, const char *path,
                            char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (n < 8 || png_sig_cmp(bytes, 0, 8) != 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: not a PNG file (bad signature)", path);
    png_read_job job;
    memset(&job, 0, sizeof job);
    mt_status st = png_walk_chunks(bytes, n, &job.idat_bytes, job.fail.reason,
                                   sizeof job.fail.reason);
    if (st) return mt_errf(err, errlen, st, "%s: %s", path, job.fail.reason);
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
    st = png_read_guarded(&job);
    png_destroy_read_struct(&job.fail.png, &job.fail.info, NULL);
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

mt_status img_png_decode(const uint8_t *bytes, size_t n, mt_image8 *out, const char *what,
                         char *err, size_t errlen) {
    if (!what) what = "PNG data";
    if (!bytes || !out) return mt_errf(err, errlen, MT_ERR_ARG, "%s: null argument", what);
    return png_decode(bytes, n, out, what, err, errlen);
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
