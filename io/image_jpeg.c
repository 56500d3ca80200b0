/* image_jpeg.c - JPEG decode and encode with libjpeg (image_codec.h).
 *
 * libjpeg reports fatal errors by calling a handler that must not return;
 * we longjmp out of it. To keep that well defined, every object the
 * library (or our code) changes between setjmp and longjmp lives in a "job"
 * struct owned by the CALLER of the function that calls setjmp, so no local
 * of the setjmp frame is ever indeterminate after the jump. The caller then
 * frees whatever the job holds, on success and failure alike.
 *
 * The encoder writes into memory, and only then does img_jpeg_write create
 * the file: encoder failures never leave a file behind, and I/O failures
 * get errno's reason.
 *
 * A hostile file must not cost more than a real one: the decoder bounds
 * libjpeg's working memory (JPEG_MAX_WORK_BYTES), the number of scans
 * (JPEG_MAX_SCANS) and grows the pixel buffer as rows arrive, so a short
 * file that claims a huge size fails having allocated about what it holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image_codec_internal.h"

/* Room for a libjpeg message plus our explanation around it. */
#define REASON_LEN (JMSG_LENGTH_MAX + 96)

/* libjpeg's own working memory. A progressive or multi-scan file needs a
 * whole-image coefficient buffer, which libjpeg allocates zeroed before it
 * has read any scan: without a cap, a 200-byte file claiming 65535x4096
 * would cost GBs. 512 MiB holds a 4:2:0 colour image of about 180
 * megapixels, far beyond any dataset photograph. */
#define JPEG_MAX_WORK_BYTES (512L << 20)
/* Every scan of a multi-scan file is a pass over the whole image; real
 * encoders write at most a few dozen (libjpeg's progressive default is 10),
 * while a small file can hold thousands of empty ones: a time bomb. */
#define JPEG_MAX_SCANS 100
/* The pixel buffer starts with at most this many bytes of rows and doubles
 * as decoded rows need it, so memory follows the data actually present. */
#define JPEG_FIRST_PIXEL_BYTES ((size_t)64 << 20)

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
    case JERR_NO_BACKING_STORE: /* the JPEG_MAX_WORK_BYTES cap was hit */
        return "image needs more than 512 MiB of decoder working memory";
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
    struct jpeg_decompress_struct cinfo; /* first: the progress hook casts back */
    jpeg_fail_mgr fail;
    struct jpeg_progress_mgr progress;
    int created;
    uint8_t *pixels;
    size_t rows_allocated;
} jpeg_decode_job;

/* libjpeg calls this while it absorbs a multi-scan file (once per iMCU row
 * of each scan), which is where a file with endless scans would spend its
 * time. */
static void jpeg_watch_scans(j_common_ptr common) {
    jpeg_decode_job *job = (jpeg_decode_job *)common;
    if (job->cinfo.input_scan_number > JPEG_MAX_SCANS)
        jpeg_refuse(&job->fail, MT_ERR_FORMAT,
                    "JPEG has more than %d scans (real encoders write a few dozen at most)",
                    JPEG_MAX_SCANS);
}

/* Makes room for row y (0-based) of w RGB pixels: doubling, so a file that
 * claims more rows than its data holds never gets the full buffer. */
static void jpeg_reserve_row(jpeg_decode_job *job, size_t y, size_t w, size_t h) {
    if (y < job->rows_allocated) return;
    size_t stride = w * 3;
    size_t rows = job->rows_allocated ? job->rows_allocated * 2 : JPEG_FIRST_PIXEL_BYTES / stride;
    if (rows < 16) rows = 16;
    if (rows > h) rows = h;
    uint8_t *bigger = realloc(job->pixels, rows * stride);
    if (!bigger)
        jpeg_refuse(&job->fail, MT_ERR_NOMEM, "out of memory for %zux%zu RGB pixels", w, rows);
    job->pixels = bigger;
    job->rows_allocated = rows;
}

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
    ci->mem->max_memory_to_use = JPEG_MAX_WORK_BYTES;
    job->progress.progress_monitor = jpeg_watch_scans;
    ci->progress = &job->progress;
    jpeg_mem_src(ci, bytes, (unsigned long)n);
    jpeg_read_header(ci, TRUE);
    ci->out_color_space = jpeg_output_space(job);
    if (img_dims_too_large(ci->image_width, ci->image_height))
        jpeg_refuse(&job->fail, MT_ERR_FORMAT,
                    "image is %ux%u, beyond the %u-per-side / 2^28-pixel limit",
                    (unsigned)ci->image_width, (unsigned)ci->image_height, IMG_MAX_SIDE);
    jpeg_start_decompress(ci);
    size_t w = ci->output_width, h = ci->output_height;
    while (ci->output_scanline < h) {
        jpeg_reserve_row(job, ci->output_scanline, w, h);
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

mt_status img_jpeg_encode(const mt_image8 *im, int quality, uint8_t **bytes, size_t *n,
                          const char *what, char *err, size_t errlen) {
    if (!what) what = "JPEG image";
    if (!im || !bytes || !n)
        return mt_errf(err, errlen, MT_ERR_ARG, "img_jpeg_encode: null argument");
    *bytes = NULL;
    *n = 0;
    mt_status st = img_check_writable(what, im, JPEG_MAX_DIMENSION, err, errlen);
    if (st) return st;
    if (im->c != 1 && im->c != 3)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: JPEG needs 1 or 3 channels, not %d", what,
                       im->c);
    if (quality < 1 || quality > 100)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: JPEG quality %d outside 1..100", what,
                       quality);
    jpeg_encode_job job;
    memset(&job, 0, sizeof job);
    jpeg_fail_init(&job.fail, 1, MT_ERR_IO);
    st = jpeg_encode_guarded(&job, im, quality);
    if (st) mt_errf(err, errlen, st, "%s: %s", what, job.fail.reason);
    if (job.created) jpeg_destroy_compress(&job.cinfo);
    if (st) {
        free(job.dest.buf);
        return st;
    }
    *bytes = job.dest.buf;
    *n = job.dest.len;
    return MT_OK;
}

mt_status img_jpeg_write(const char *path, const mt_image8 *im, int quality, char *err,
                         size_t errlen) {
    if (!path || !im) return mt_errf(err, errlen, MT_ERR_ARG, "img_jpeg_write: null argument");
    uint8_t *bytes;
    size_t n;
    mt_status st = img_jpeg_encode(im, quality, &bytes, &n, path, err, errlen);
    if (st) return st;
    st = img_write_file_bytes(path, bytes, n, err, errlen);
    free(bytes);
    return st;
}
