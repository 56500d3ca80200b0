/* image_codec.c - see image_codec.h.
 *
 * Both libraries report fatal errors by calling a handler that must not
 * return; we longjmp out of it. To keep that well defined, every object the
 * library (or our code) changes between setjmp and longjmp lives in a "job"
 * struct owned by the CALLER of the function that calls setjmp, so no local
 * of the setjmp frame is ever indeterminate after the jump. The caller then
 * frees whatever the job holds, on success and failure alike.
 *
 * Writers encode into memory first and only then create the file: encoder
 * failures never leave a file behind, and I/O failures get errno's reason. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "mtlora/io/image_codec.h"

/* A corrupt header must not be able to request a huge allocation: 2^28
 * pixels is 768 MiB as RGB, far beyond any real dataset image. */
#define MAX_SIDE 65535u
#define MAX_PIXELS ((uint64_t)1 << 28)

/* Room for a libjpeg/libpng message plus our explanation around it. */
#define REASON_LEN (JMSG_LENGTH_MAX + 96)

void img_free(mt_image8 *im) {
    if (!im) return;
    free(im->data);
    memset(im, 0, sizeof *im);
}

static int dims_too_large(uint64_t w, uint64_t h) {
    return w > MAX_SIDE || h > MAX_SIDE || w * h > MAX_PIXELS;
}

static mt_status errno_fail(char *err, size_t errlen, mt_status st, const char *path,
                            const char *action, int errnum) {
    char reason[128];
    if (strerror_r(errnum, reason, sizeof reason) != 0)
        snprintf(reason, sizeof reason, "errno %d", errnum);
    return mt_errf(err, errlen, st, "%s: %s (%s)", path, action, reason);
}

/* ---- whole files ------------------------------------------------------- */

static mt_status read_open_file(FILE *f, const char *path, uint8_t **buf, size_t *n, char *err,
                                size_t errlen) {
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0)
        return errno_fail(err, errlen, MT_ERR_IO, path, "cannot stat", errno);
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
        if (failed) return errno_fail(err, errlen, MT_ERR_IO, path, "read error", errnum);
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
    if (!f) return errno_fail(err, errlen, MT_ERR_IO, path, "cannot open", errno);
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
static mt_status write_file_bytes(const char *path, const uint8_t *bytes, size_t n, char *err,
                                  size_t errlen) {
    FILE *f = fopen(path, "wb");
    if (!f) return errno_fail(err, errlen, MT_ERR_IO, path, "cannot create", errno);
    int regular = is_regular(f);
    int ok = fwrite(bytes, 1, n, f) == n && fflush(f) == 0;
    int errnum = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        errnum = errno;
    }
    if (ok) return MT_OK;
    if (regular) remove(path);
    return errno_fail(err, errlen, MT_ERR_IO, path, "cannot write", errnum);
}

/* ---- libjpeg error handling ---------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us a pointer to it */
    jmp_buf jump;
    mt_status status;
    int encoding; /* picks the wording of library messages */
    char reason[REASON_LEN];
} jpeg_fail_mgr;

static const char *jpeg_problem(const jpeg_fail_mgr *m, int warning) {
    switch (m->pub.msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER: /* what a cut file looks like after libjpeg's fake EOI */
    case JERR_INPUT_EOF: return "truncated JPEG data";
    case JERR_INPUT_EMPTY:
    case JERR_NO_SOI: return "not a JPEG file";
    case JERR_OUT_OF_MEMORY: return "out of memory";
    default: break;
    }
    if (m->encoding) return "cannot encode JPEG";
    return warning ? "corrupt JPEG data" : "corrupt or unsupported JPEG data";
}

static _Noreturn void jpeg_fail(j_common_ptr cinfo, int warning) {
    jpeg_fail_mgr *m = (jpeg_fail_mgr *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, text);
    /* Our problem string already says it; keep only libjpeg's detail. */
    static const char redundant[] = "Corrupt JPEG data: ";
    const char *detail =
        strncmp(text, redundant, sizeof redundant - 1) ? text : text + sizeof redundant - 1;
    snprintf(m->reason, sizeof m->reason, "%s (%s)", jpeg_problem(m, warning), detail);
    if (m->pub.msg_code == JERR_OUT_OF_MEMORY) m->status = MT_ERR_NOMEM;
    longjmp(m->jump, 1);
}

static void jpeg_on_error(j_common_ptr cinfo) { jpeg_fail(cinfo, 0); }

/* level -1 is a "warning": libjpeg has hit corrupt or missing data and would
 * carry on, filling grey. We fail instead, except for stray bytes between
 * markers (JWRN_EXTRANEOUS_DATA): no pixel is lost and PIL, which the
 * official loader uses, decodes such files, as do we. Trace levels (>= 0)
 * are dropped because library code never prints. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code != JWRN_EXTRANEOUS_DATA) jpeg_fail(cinfo, 1);
}

static void jpeg_print_nothing(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_fail_init(jpeg_fail_mgr *m, int encoding, mt_status status) {
    jpeg_std_error(&m->pub);
    m->pub.error_exit = jpeg_on_error;
    m->pub.emit_message = jpeg_on_message;
    m->pub.output_message = jpeg_print_nothing;
    m->encoding = encoding;
    m->status = status;
    m->reason[0] = '\0';
}

/* Our own refusals take the same exit as the library's errors. */
__attribute__((format(printf, 3, 4), noreturn)) static void
jpeg_refuse(jpeg_fail_mgr *m, mt_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->reason, sizeof m->reason, fmt, ap);
    va_end(ap);
    m->status = st;
    longjmp(m->jump, 1);
}

/* ---- JPEG decode --------------------------------------------------------- */

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_fail_mgr fail;
    int created;
    uint8_t *pixels;
} jpeg_decode_job;

/* PIL decides by component count: 1 -> "L" (replicated by convert('RGB')),
 * 3 -> "RGB"; libjpeg's guess of the file's colour space is what PIL uses
 * too (it passes no jpegmode), so the pixels match. */
static J_COLOR_SPACE jpeg_output_space(jpeg_decode_job *job) {
    struct jpeg_decompress_struct *ci = &job->cinfo;
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE: return JCS_GRAYSCALE;
    case JCS_YCbCr:
    case JCS_RGB: return JCS_RGB;
    case JCS_CMYK:
    case JCS_YCCK: jpeg_refuse(&job->fail, MT_ERR_FORMAT, "CMYK/YCCK JPEG is not supported");
    default:
        jpeg_refuse(&job->fail, MT_ERR_FORMAT, "unsupported JPEG colour space (%d components)",
                    ci->num_components);
    }
}

/* Spreads w gray bytes at the start of row over 3*w RGB bytes, in place:
 * walking backwards never overwrites a gray value before it is read. */
static void replicate_gray_row(uint8_t *row, size_t w) {
    for (size_t x = w; x-- > 0;) row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = row[x];
}

static mt_status jpeg_decode_guarded(jpeg_decode_job *job, const uint8_t *bytes, size_t n) {
    struct jpeg_decompress_struct *ci = &job->cinfo;
    ci->err = &job->fail.pub;
    if (setjmp(job->fail.jump)) return job->fail.status;
    job->created = 1; /* jpeg_destroy is a no-op on the zeroed struct if create fails */
    jpeg_create_decompress(ci);
    jpeg_mem_src(ci, bytes, (unsigned long)n);
    jpeg_read_header(ci, TRUE);
    ci->out_color_space = jpeg_output_space(job);
    if (dims_too_large(ci->image_width, ci->image_height))
        jpeg_refuse(&job->fail, MT_ERR_FORMAT,
                    "image is %ux%u, beyond the %u-per-side / 2^28-pixel limit",
                    (unsigned)ci->image_width, (unsigned)ci->image_height, MAX_SIDE);
    jpeg_start_decompress(ci);
    size_t w = ci->output_width, h = ci->output_height;
    job->pixels = malloc(w * h * 3);
    if (!job->pixels)
        jpeg_refuse(&job->fail, MT_ERR_NOMEM, "out of memory for %zux%zu RGB pixels", w, h);
    while (ci->output_scanline < h) {
        uint8_t *row = job->pixels + (size_t)ci->output_scanline * w * 3;
        if (jpeg_read_scanlines(ci, &row, 1) != 1)
            jpeg_refuse(&job->fail, MT_ERR_FORMAT, "JPEG decoder stopped at row %u",
                        (unsigned)ci->output_scanline);
        if (ci->out_color_space == JCS_GRAYSCALE) replicate_gray_row(row, w);
    }
    jpeg_finish_decompress(ci); /* reads to EOI, so a missing tail is caught */
    return MT_OK;
}

mt_status img_jpeg_decode(const uint8_t *bytes, size_t n, mt_image8 *out, const char *what,
                          char *err, size_t errlen) {
    if (!what) what = "JPEG data";
    if (!bytes || !out) return mt_errf(err, errlen, MT_ERR_ARG, "%s: null argument", what);
    memset(out, 0, sizeof *out);
    if (n > (unsigned long)-1) return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: too large", what);
    jpeg_decode_job job;
    memset(&job, 0, sizeof job);
    jpeg_fail_init(&job.fail, 0, MT_ERR_FORMAT);
    mt_status st = jpeg_decode_guarded(&job, bytes, n);
    if (st == MT_OK) {
        out->h = (int)job.cinfo.output_height;
        out->w = (int)job.cinfo.output_width;
        out->c = 3;
        out->data = job.pixels;
    } else {
        free(job.pixels);
        mt_errf(err, errlen, st, "%s: %s", what, job.fail.reason);
    }
    if (job.created) jpeg_destroy_decompress(&job.cinfo);
    return st;
}

mt_status img_jpeg_read(const char *path, mt_image8 *out, uint8_t **bytes, size_t *nbytes,
                        char *err, size_t errlen) {
    if (!path || !out || (bytes && !nbytes))
        return mt_errf(err, errlen, MT_ERR_ARG, "img_jpeg_read: null argument");
    memset(out, 0, sizeof *out);
    if (bytes) {
        *bytes = NULL;
        *nbytes = 0;
    }
    uint8_t *buf;
    size_t n;
    mt_status st = file_read_all(path, &buf, &n, err, errlen);
    if (st) return st;
    st = img_jpeg_decode(buf, n, out, path, err, errlen);
    if (st == MT_OK && bytes) {
        *bytes = buf;
        *nbytes = n;
    } else {
        free(buf);
    }
    return st;
}

/* ---- JPEG encode --------------------------------------------------------- */

/* A destination that grows a malloc'd buffer we own. (libjpeg's
 * jpeg_mem_dest leaves its pointer stale if compression fails after it grew
 * the buffer, so its memory could not be freed correctly on error.) */
typedef struct {
    struct jpeg_destination_mgr pub;
    uint8_t *buf;
    size_t cap, len;
} jpeg_growing_dest;

static void jpeg_dest_init(j_compress_ptr cinfo) {
    jpeg_growing_dest *d = (jpeg_growing_dest *)cinfo->dest;
    d->cap = 1 << 16;
    d->buf = malloc(d->cap);
    if (!d->buf) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
    d->pub.next_output_byte = d->buf;
    d->pub.free_in_buffer = d->cap;
}

/* Called when the whole buffer is full: double it and carry on. */
static boolean jpeg_dest_grow(j_compress_ptr cinfo) {
    jpeg_growing_dest *d = (jpeg_growing_dest *)cinfo->dest;
    uint8_t *bigger = realloc(d->buf, 2 * d->cap);
    if (!bigger) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 1);
    d->buf = bigger;
    d->pub.next_output_byte = bigger + d->cap;
    d->pub.free_in_buffer = d->cap;
    d->cap *= 2;
    return TRUE;
}

static void jpeg_dest_term(j_compress_ptr cinfo) {
    jpeg_growing_dest *d = (jpeg_growing_dest *)cinfo->dest;
    d->len = d->cap - d->pub.free_in_buffer;
}

typedef struct {
    struct jpeg_compress_struct cinfo;
    jpeg_fail_mgr fail;
    jpeg_growing_dest dest;
    int created;
} jpeg_encode_job;

static mt_status jpeg_encode_guarded(jpeg_encode_job *job, const mt_image8 *im, int quality) {
    struct jpeg_compress_struct *ci = &job->cinfo;
    ci->err = &job->fail.pub;
    if (setjmp(job->fail.jump)) return job->fail.status;
    job->created = 1;
    jpeg_create_compress(ci);
    job->dest.pub.init_destination = jpeg_dest_init;
    job->dest.pub.empty_output_buffer = jpeg_dest_grow;
    job->dest.pub.term_destination = jpeg_dest_term;
    ci->dest = &job->dest.pub;
    ci->image_width = (JDIMENSION)im->w;
    ci->image_height = (JDIMENSION)im->h;
    ci->input_components = im->c;
    ci->in_color_space = im->c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(ci); /* JDCT_ISLOW, 2x2 luma sampling = 4:2:0 */
    jpeg_set_quality(ci, quality, TRUE);
    jpeg_start_compress(ci, TRUE);
    size_t stride = (size_t)im->w * (size_t)im->c;
    while (ci->next_scanline < ci->image_height) {
        JSAMPROW row = im->data + (size_t)ci->next_scanline * stride;
        jpeg_write_scanlines(ci, &row, 1);
    }
    jpeg_finish_compress(ci);
    return MT_OK;
}

static mt_status check_writable(const char *path, const mt_image8 *im, unsigned max_side, char *err,
                                size_t errlen) {
    if (!im->data || im->h <= 0 || im->w <= 0 || (unsigned)im->h > max_side ||
        (unsigned)im->w > max_side)
        return mt_errf(err, errlen, MT_ERR_ARG,
                       "%s: cannot write a %dx%d image (no data or size outside 1..%u)", path,
                       im->w, im->h, max_side);
    return MT_OK;
}

mt_status img_jpeg_write(const char *path, const mt_image8 *im, int quality, char *err,
                         size_t errlen) {
    if (!path || !im) return mt_errf(err, errlen, MT_ERR_ARG, "img_jpeg_write: null argument");
    mt_status st = check_writable(path, im, JPEG_MAX_DIMENSION, err, errlen);
    if (st) return st;
    if (im->c != 1 && im->c != 3)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: JPEG needs 1 or 3 channels, not %d", path,
                       im->c);
    if (quality < 1 || quality > 100)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: JPEG quality %d outside 1..100", path,
                       quality);
    jpeg_encode_job job;
    memset(&job, 0, sizeof job);
    jpeg_fail_init(&job.fail, 1, MT_ERR_IO);
    st = jpeg_encode_guarded(&job, im, quality);
    if (st) mt_errf(err, errlen, st, "%s: %s", path, job.fail.reason);
    if (job.created) jpeg_destroy_compress(&job.cinfo);
    if (st == MT_OK) st = write_file_bytes(path, job.dest.buf, job.dest.len, err, errlen);
    free(job.dest.buf);
    return st;
}

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
    if (dims_too_large(w, h))
        png_refuse(&job->fail, MT_ERR_FORMAT,
                   "image is %lux%lu, beyond the %u-per-side / 2^28-pixel limit", (unsigned long)w,
                   (unsigned long)h, MAX_SIDE);
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

mt_status img_png_write(const char *path, const mt_image8 *im, int palette, char *err,
                        size_t errlen) {
    if (!path || !im) return mt_errf(err, errlen, MT_ERR_ARG, "img_png_write: null argument");
    mt_status st = check_writable(path, im, MAX_SIDE, err, errlen);
    if (st) return st;
    if (im->c != 1 && im->c != 3)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: PNG writer takes 1 or 3 channels, not %d",
                       path, im->c);
    if (palette && im->c != 1)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: a palette PNG needs 1 channel of indices",
                       path);
    png_write_job job;
    memset(&job, 0, sizeof job);
    job.fail.status = MT_ERR_IO;
    job.fail.problem = "cannot encode PNG";
    job.fail.png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, &job.fail, png_on_error, png_on_warning);
    if (job.fail.png) job.fail.info = png_create_info_struct(job.fail.png);
    if (!job.fail.info) {
        png_destroy_write_struct(&job.fail.png, NULL);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory for the PNG writer", path);
    }
    st = png_encode_guarded(&job, im, palette);
    png_destroy_write_struct(&job.fail.png, &job.fail.info);
    if (st)
        mt_errf(err, errlen, st, "%s: %s", path, job.fail.reason);
    else
        st = write_file_bytes(path, job.buf, job.len, err, errlen);
    free(job.buf);
    return st;
}
