/* test_image_codec.c - JPEG/PNG codec: exact round trips, low bit depths,
 * refusals that name the file (truncated, corrupt, 16-bit, not an image,
 * absurd sizes, missing), writers that leave no partial file, in-memory
 * encoders that give the writers' bytes, exact parity with PIL on the
 * files tests/reference/codec_reference.py writes into $MTLORA_CODEC_CASES,
 * and hostile files (huge claims, scan and zlib bombs) decoded within an
 * address-space limit.
 *
 * Why long: one suite for the one contract image_codec.h, every case of
 * both codecs; the cases share the fixture helpers (noise and ramp images,
 * a raw libpng writer, chunk surgery with CRCs) and the scratch directory,
 * which split files would have to duplicate or export. */
#include <check.h>
#include <dirent.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h> /* after stdio.h: it uses FILE */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mtlora/io/image_codec.h"
#include "tensor_bundle.h"

static char err[1024];
static char tmpdir[512];

/* ---- scratch directory, one per test case group -------------------------
 * An unchecked fixture runs in the parent, so the directory is removed even
 * when a test fails (and its forked child never reaches a teardown). */

static void make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/mtlora_codec_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    char p[1024];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        remove(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

static const char *tmp_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
    return buf;
}

/* ---- images and files ------------------------------------------------------ */

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Uniform noise in 0..levels-1: the hardest content for exact round trips. */
static mt_image8 noise_image(int h, int w, int c, uint32_t seed, int levels) {
    mt_image8 im = {h, w, c, malloc((size_t)h * w * c)};
    ck_assert_ptr_nonnull(im.data);
    for (size_t i = 0; i < (size_t)h * w * c; i++) im.data[i] = (uint8_t)(lcg(&seed) % levels);
    return im;
}

/* Smooth colour ramps: what JPEG at quality 100 reproduces closely. */
static mt_image8 smooth_image(int h, int w, int c) {
    mt_image8 im = {h, w, c, malloc((size_t)h * w * c)};
    ck_assert_ptr_nonnull(im.data);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                im.data[((size_t)y * w + x) * c + k] = (uint8_t)(k == 0   ? 255 * x / (w - 1)
                                                                 : k == 1 ? 255 * y / (h - 1)
                                                                          : 128 + (x - y) / 4);
    return im;
}

static void assert_same_pixels(const mt_image8 *a, const mt_image8 *b) {
    ck_assert_int_eq(a->h, b->h);
    ck_assert_int_eq(a->w, b->w);
    ck_assert_int_eq(a->c, b->c);
    ck_assert_mem_eq(a->data, b->data, (size_t)a->h * a->w * a->c);
}

static size_t file_size(const char *path) {
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    return (size_t)sb.st_size;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static void cut_file_in_half(const char *path) {
    ck_assert_int_eq(truncate(path, (off_t)(file_size(path) / 2)), 0);
}

/* The status is `want`, the message names `path` and says `reason`, and the
 * output image was left empty. */
static void assert_refused(mt_status st, mt_status want, const mt_image8 *out, const char *path,
                           const char *reason) {
    ck_assert_msg(st == want, "%s: got %s, want %s (%s)", path, mt_status_name(st),
                  mt_status_name(want), err);
    ck_assert_msg(strstr(err, path), "message does not name the file: %s", err);
    ck_assert_msg(strstr(err, reason), "message lacks \"%s\": %s", reason, err);
    if (out) ck_assert_ptr_null(out->data);
}

/* PNGs of kinds our writer does not produce, straight from libpng: rows
 * hold one sample per byte (png_set_packing packs depths < 8) or, for depth
 * 16, big-endian sample pairs. */
typedef struct {
    int w, h, depth, type, interlace;
    const uint8_t *rows;
} raw_png;

static size_t raw_png_stride(const raw_png *r) {
    int ch = r->type == PNG_COLOR_TYPE_RGB          ? 3
             : r->type == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
             : r->type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                                                    : 1;
    return (size_t)r->w * ch * (r->depth == 16 ? 2 : 1);
}

static void write_raw_png(const char *path, const raw_png *r) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_ptr_nonnull(info);
    if (setjmp(png_jmpbuf(png))) ck_abort_msg("libpng could not write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, r->w, r->h, r->depth, r->type, r->interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_color pal[256];
    for (int i = 0; i < 256; i++) pal[i] = (png_color){(png_byte)i, (png_byte)(255 - i), 7};
    if (r->type == PNG_COLOR_TYPE_PALETTE) png_set_PLTE(png, info, pal, 1 << r->depth);
    png_write_info(png, info);
    if (r->depth < 8) png_set_packing(png);
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < r->h; y++) png_write_row(png, r->rows + (size_t)y * raw_png_stride(r));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    ck_assert_int_eq(fclose(f), 0);
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

/* memmem is a GNU extension; this is all we need of it. */
static uint8_t *find_bytes(uint8_t *hay, size_t n, const char *needle, size_t k) {
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(hay + i, needle, k)) return hay + i;
    return NULL;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* ---- round trips ------------------------------------------------------------ */

START_TEST(png_gray_roundtrip) {
    char path[1024];
    tmp_path(path, sizeof path, "gray.png");
    mt_image8 im = noise_image(37, 53, 1, 1, 256), back;
    ck_assert_int_eq(img_png_write(path, &im, 0, err, sizeof err), MT_OK);
    ck_assert_msg(img_png_read(path, &back, err, sizeof err) == MT_OK, "%s", err);
    assert_same_pixels(&back, &im);
    img_free(&im);
    img_free(&back);
    ck_assert_ptr_null(back.data);
}
END_TEST

START_TEST(png_rgb_roundtrip) {
    char path[1024];
    tmp_path(path, sizeof path, "rgb.png");
    mt_image8 im = noise_image(53, 37, 3, 2, 256), back;
    ck_assert_int_eq(img_png_write(path, &im, 0, err, sizeof err), MT_OK);
    ck_assert_msg(img_png_read(path, &back, err, sizeof err) == MT_OK, "%s", err);
    assert_same_pixels(&back, &im);
    img_free(&im);
    img_free(&back);
}
END_TEST

/* Reads the PLTE chunk back with libpng itself. */
static int read_palette(const char *path, png_color pal[256]) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_ptr_nonnull(info);
    if (setjmp(png_jmpbuf(png))) ck_abort_msg("libpng could not read %s", path);
    png_init_io(png, f);
    png_read_info(png, info);
    png_colorp p;
    int n = 0;
    ck_assert_int_eq(png_get_color_type(png, info), PNG_COLOR_TYPE_PALETTE);
    ck_assert_uint_ne(png_get_PLTE(png, info, &p, &n), 0);
    memcpy(pal, p, sizeof *p * (size_t)n);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return n;
}

START_TEST(png_palette_roundtrip) {
    char path[1024];
    tmp_path(path, sizeof path, "labels.png");
    mt_image8 im = noise_image(41, 29, 1, 3, 21), back;
    im.data[0] = 255; /* VOC "void" */
    ck_assert_int_eq(img_png_write(path, &im, 1, err, sizeof err), MT_OK);
    ck_assert_msg(img_png_read(path, &back, err, sizeof err) == MT_OK, "%s", err);
    assert_same_pixels(&back, &im); /* indices, not colours */
    png_color pal[256];
    ck_assert_int_eq(read_palette(path, pal), 256);
    /* VOC: background, aeroplane, bicycle, bird, person (15), void (255). */
    const struct {
        int i, r, g, b;
    } voc[] = {{0, 0, 0, 0},     {1, 128, 0, 0},      {2, 0, 128, 0},
               {3, 128, 128, 0}, {15, 192, 128, 128}, {255, 224, 224, 192}};
    for (size_t k = 0; k < sizeof voc / sizeof *voc; k++) {
        png_color c = pal[voc[k].i];
        ck_assert_msg(c.red == voc[k].r && c.green == voc[k].g && c.blue == voc[k].b,
                      "palette[%d] = (%d,%d,%d)", voc[k].i, c.red, c.green, c.blue);
    }
    img_free(&im);
    img_free(&back);
}
END_TEST

static void check_jpeg_roundtrip(int c) {
    char path[1024];
    tmp_path(path, sizeof path, "q100.jpg");
    mt_image8 im = smooth_image(45, 67, c), back;
    ck_assert_int_eq(img_jpeg_write(path, &im, 100, err, sizeof err), MT_OK);
    ck_assert_msg(img_jpeg_read(path, &back, NULL, NULL, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(back.h, 45);
    ck_assert_int_eq(back.w, 67);
    ck_assert_int_eq(back.c, 3);
    int worst = 0;
    double sum = 0;
    for (size_t p = 0; p < (size_t)45 * 67; p++)
        for (int k = 0; k < 3; k++) {
            int d = abs(back.data[p * 3 + k] - im.data[p * c + (c == 3 ? k : 0)]);
            worst = d > worst ? d : worst;
            sum += d;
        }
    double mean = sum / (45.0 * 67 * 3);
    /* 4:2:0 chroma costs a few levels on colour ramps even at quality 100. */
    ck_assert_msg(worst <= 6 && mean < 1.0, "quality 100 differs by up to %d, %.2f on average",
                  worst, mean);
    img_free(&im);
    img_free(&back);
}

START_TEST(jpeg_rgb_roundtrip_q100) { check_jpeg_roundtrip(3); }
END_TEST

START_TEST(jpeg_gray_roundtrip_q100) {
    check_jpeg_roundtrip(1);
    char path[1024];
    mt_image8 back;
    ck_assert_int_eq(
        img_jpeg_read(tmp_path(path, sizeof path, "q100.jpg"), &back, NULL, NULL, err, sizeof err),
        MT_OK);
    for (size_t p = 0; p < (size_t)back.h * back.w; p++) {
        ck_assert_int_eq(back.data[3 * p], back.data[3 * p + 1]);
        ck_assert_int_eq(back.data[3 * p], back.data[3 * p + 2]);
    }
    img_free(&back);
}
END_TEST

START_TEST(jpeg_read_returns_file_bytes) {
    char path[1024];
    tmp_path(path, sizeof path, "b.jpg");
    mt_image8 im = smooth_image(16, 24, 3), back;
    ck_assert_int_eq(img_jpeg_write(path, &im, 90, err, sizeof err), MT_OK);
    uint8_t *bytes, *raw;
    size_t n, nraw;
    ck_assert_int_eq(img_jpeg_read(path, &back, &bytes, &n, err, sizeof err), MT_OK);
    ck_assert_int_eq(file_read_all(path, &raw, &nraw, err, sizeof err), MT_OK);
    ck_assert_uint_eq(n, nraw);
    ck_assert_mem_eq(bytes, raw, n);
    mt_image8 again;
    ck_assert_int_eq(img_jpeg_decode(bytes, n, &again, "memory", err, sizeof err), MT_OK);
    assert_same_pixels(&again, &back);
    free(bytes);
    free(raw);
    img_free(&im);
    img_free(&back);
    img_free(&again);
}
END_TEST

/* Stray bytes before a marker lose no pixel; PIL decodes such files and so
 * must we (the official loader would use them). */
START_TEST(jpeg_extraneous_bytes_accepted) {
    char path[1024];
    tmp_path(path, sizeof path, "x.jpg");
    mt_image8 im = smooth_image(16, 24, 3), ref, back;
    ck_assert_int_eq(img_jpeg_write(path, &im, 90, err, sizeof err), MT_OK);
    uint8_t *raw;
    size_t n;
    ck_assert_int_eq(img_jpeg_read(path, &ref, &raw, &n, err, sizeof err), MT_OK);
    /* Two bytes between the SOI marker and the next header marker. */
    ck_assert(raw[0] == 0xFF && raw[1] == 0xD8 && raw[2] == 0xFF);
    uint8_t *mod = malloc(n + 2);
    memcpy(mod, raw, 2);
    mod[2] = 0x12;
    mod[3] = 0x34;
    memcpy(mod + 4, raw + 2, n - 2);
    ck_assert_int_eq(img_jpeg_decode(mod, n + 2, &back, "stray bytes", err, sizeof err), MT_OK);
    assert_same_pixels(&back, &ref);
    free(raw);
    free(mod);
    img_free(&im);
    img_free(&ref);
    img_free(&back);
}
END_TEST

/* ---- PNG kinds ---------------------------------------------------------------- */

/* 1/2/4-bit gray and palette: gray follows PIL (1-bit is mode '1', i.e.
 * 0/1; 2/4-bit are mode 'L' stretched to 0..255), palette gives indices. */
START_TEST(png_low_bit_depths) {
    static const struct {
        int depth, type, scale;
    } kinds[] = {{1, PNG_COLOR_TYPE_GRAY, 1},    {2, PNG_COLOR_TYPE_GRAY, 85},
                 {4, PNG_COLOR_TYPE_GRAY, 17},   {1, PNG_COLOR_TYPE_PALETTE, 1},
                 {2, PNG_COLOR_TYPE_PALETTE, 1}, {4, PNG_COLOR_TYPE_PALETTE, 1}};
    char path[1024];
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        mt_image8 src = noise_image(13, 11, 1, 10 + (uint32_t)k, 1 << kinds[k].depth), back;
        raw_png r = {11, 13, kinds[k].depth, kinds[k].type, PNG_INTERLACE_NONE, src.data};
        snprintf(path, sizeof path, "%s/low%zu.png", tmpdir, k);
        write_raw_png(path, &r);
        ck_assert_msg(img_png_read(path, &back, err, sizeof err) == MT_OK, "%s", err);
        ck_assert_int_eq(back.c, 1);
        for (size_t i = 0; i < 13 * 11; i++)
            ck_assert_msg(back.data[i] == src.data[i] * kinds[k].scale,
                          "depth %d type %d pixel %zu: %d vs %d", kinds[k].depth, kinds[k].type, i,
                          back.data[i], src.data[i] * kinds[k].scale);
        img_free(&src);
        img_free(&back);
    }
}
END_TEST

START_TEST(png_alpha_and_interlaced) {
    static const struct {
        int type, c, interlace;
    } kinds[] = {{PNG_COLOR_TYPE_GRAY_ALPHA, 2, PNG_INTERLACE_NONE},
                 {PNG_COLOR_TYPE_RGB_ALPHA, 4, PNG_INTERLACE_NONE},
                 {PNG_COLOR_TYPE_RGB, 3, PNG_INTERLACE_ADAM7},
                 {PNG_COLOR_TYPE_PALETTE, 1, PNG_INTERLACE_ADAM7}};
    char path[1024];
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        mt_image8 src = noise_image(19, 23, kinds[k].c, 20 + (uint32_t)k, 256), back;
        raw_png r = {23, 19, 8, kinds[k].type, kinds[k].interlace, src.data};
        snprintf(path, sizeof path, "%s/kind%zu.png", tmpdir, k);
        write_raw_png(path, &r);
        ck_assert_msg(img_png_read(path, &back, err, sizeof err) == MT_OK, "%s", err);
        assert_same_pixels(&back, &src);
        img_free(&src);
        img_free(&back);
    }
}
END_TEST

/* ---- refusals ------------------------------------------------------------------ */

START_TEST(truncated_jpeg_refused) {
    char path[1024];
    tmp_path(path, sizeof path, "cut.jpg");
    mt_image8 im = noise_image(64, 80, 3, 4, 256), back = {1, 1, 1, NULL};
    ck_assert_int_eq(img_jpeg_write(path, &im, 90, err, sizeof err), MT_OK);
    cut_file_in_half(path);
    uint8_t *bytes = (uint8_t *)1;
    size_t n = 1;
    assert_refused(img_jpeg_read(path, &back, &bytes, &n, err, sizeof err), MT_ERR_FORMAT, &back,
                   path, "truncated JPEG data");
    ck_assert_ptr_null(bytes);
    /* Only the final EOI marker missing: PIL calls that truncated too. */
    ck_assert_int_eq(img_jpeg_write(path, &im, 90, err, sizeof err), MT_OK);
    ck_assert_int_eq(truncate(path, (off_t)file_size(path) - 2), 0);
    assert_refused(img_jpeg_read(path, &back, NULL, NULL, err, sizeof err), MT_ERR_FORMAT, &back,
                   path, "truncated JPEG data");
    img_free(&im);
}
END_TEST

START_TEST(truncated_png_refused) {
    char path[1024];
    tmp_path(path, sizeof path, "cut.png");
    mt_image8 im = noise_image(64, 80, 3, 5, 256), back;
    ck_assert_int_eq(img_png_write(path, &im, 0, err, sizeof err), MT_OK);
    cut_file_in_half(path);
    assert_refused(img_png_read(path, &back, err, sizeof err), MT_ERR_FORMAT, &back, path,
                   "truncated PNG data");
    img_free(&im);
}
END_TEST

/* A flipped bit in the image data or in the stored CRC itself: the chunk
 * walk before libpng (io/image_png.c) catches both by the CRC. */
START_TEST(png_corruption_refused) {
    char path[1024];
    tmp_path(path, sizeof path, "crc.png");
    mt_image8 im = noise_image(32, 32, 1, 6, 256), back;
    ck_assert_int_eq(img_png_write(path, &im, 0, err, sizeof err), MT_OK);
    uint8_t *bytes;
    size_t n;
    ck_assert_int_eq(file_read_all(path, &bytes, &n, err, sizeof err), MT_OK);
    uint8_t *idat = find_bytes(bytes, n, "IDAT", 4);
    ck_assert_ptr_nonnull(idat);
    size_t len = (size_t)idat[-4] << 24 | (size_t)idat[-3] << 16 | (size_t)idat[-2] << 8 | idat[-1];
    ck_assert_uint_lt(len, n);
    idat[4 + 20] ^= 0x10;
    write_bytes(path, bytes, n);
    assert_refused(img_png_read(path, &back, err, sizeof err), MT_ERR_FORMAT, &back, path,
                   "corrupt PNG data");
    idat[4 + 20] ^= 0x10;
    idat[4 + len + 3] ^= 0x01; /* last byte of the IDAT CRC */
    write_bytes(path, bytes, n);
    assert_refused(img_png_read(path, &back, err, sizeof err), MT_ERR_FORMAT, &back, path,
                   "CRC error");
    free(bytes);
    img_free(&im);
}
END_TEST

START_TEST(missing_file_is_io_error) {
    char path[1024];
    tmp_path(path, sizeof path, "absent.png");
    mt_image8 out;
    uint8_t *buf = (uint8_t *)1;
    size_t n = 1;
    assert_refused(file_read_all(path, &buf, &n, err, sizeof err), MT_ERR_IO, NULL, path,
                   "No such file");
    ck_assert_ptr_null(buf);
    assert_refused(img_png_read(path, &out, err, sizeof err), MT_ERR_IO, &out, path,
                   "No such file");
    tmp_path(path, sizeof path, "absent.jpg");
    assert_refused(img_jpeg_read(path, &out, NULL, NULL, err, sizeof err), MT_ERR_IO, &out, path,
                   "No such file");
    assert_refused(file_read_all(tmpdir, &buf, &n, err, sizeof err), MT_ERR_IO, NULL, tmpdir,
                   "not a regular file");
}
END_TEST

START_TEST(png_16bit_refused) {
    char path[1024];
    tmp_path(path, sizeof path, "deep.png");
    uint8_t rows[2 * 7 * 5 * 3];
    for (size_t i = 0; i < sizeof rows; i++) rows[i] = (uint8_t)(i * 37);
    raw_png gray = {7, 5, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, rows};
    raw_png rgb = {7, 5, 16, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, rows};
    mt_image8 out;
    write_raw_png(path, &gray);
    assert_refused(img_png_read(path, &out, err, sizeof err), MT_ERR_FORMAT, &out, path, "16-bit");
    write_raw_png(path, &rgb);
    assert_refused(img_png_read(path, &out, err, sizeof err), MT_ERR_FORMAT, &out, path, "16-bit");
}
END_TEST

START_TEST(text_files_refused) {
    static const char text[] = "not an image at all\n";
    char png_path[1024], jpg_path[1024];
    write_bytes(tmp_path(png_path, sizeof png_path, "note.png"), text, sizeof text - 1);
    write_bytes(tmp_path(jpg_path, sizeof jpg_path, "note.jpg"), text, sizeof text - 1);
    mt_image8 out;
    assert_refused(img_png_read(png_path, &out, err, sizeof err), MT_ERR_FORMAT, &out, png_path,
                   "not a PNG file");
    assert_refused(img_jpeg_read(jpg_path, &out, NULL, NULL, err, sizeof err), MT_ERR_FORMAT, &out,
                   jpg_path, "not a JPEG file");
    write_bytes(png_path, "", 0); /* empty files too */
    write_bytes(jpg_path, "", 0);
    assert_refused(img_png_read(png_path, &out, err, sizeof err), MT_ERR_FORMAT, &out, png_path,
                   "PNG");
    assert_refused(img_jpeg_read(jpg_path, &out, NULL, NULL, err, sizeof err), MT_ERR_FORMAT, &out,
                   jpg_path, "JPEG");
    assert_refused(img_jpeg_decode((const uint8_t *)text, sizeof text, &out, "in-memory blob", err,
                                   sizeof err),
                   MT_ERR_FORMAT, &out, "in-memory blob", "not a JPEG");
}
END_TEST

/* A valid small PNG whose IHDR claims w x h (CRC fixed so only the size is
 * wrong): refused before any pixel buffer is allocated. */
static void png_with_claimed_size(const char *path, uint32_t w, uint32_t h) {
    mt_image8 im = noise_image(4, 4, 1, 7, 256);
    ck_assert_int_eq(img_png_write(path, &im, 0, err, sizeof err), MT_OK);
    img_free(&im);
    uint8_t *b;
    size_t n;
    ck_assert_int_eq(file_read_all(path, &b, &n, err, sizeof err), MT_OK);
    ck_assert_mem_eq(b + 12, "IHDR", 4);
    put_be32(b + 16, w);
    put_be32(b + 20, h);
    put_be32(b + 29, crc32_of(b + 12, 17));
    write_bytes(path, b, n);
    free(b);
}

/* Same for a JPEG's SOF0 marker (FF C0 len(2) precision(1) h(2) w(2)). */
static void jpeg_with_claimed_size(const char *path, unsigned w, unsigned h) {
    mt_image8 im = smooth_image(8, 8, 3);
    ck_assert_int_eq(img_jpeg_write(path, &im, 90, err, sizeof err), MT_OK);
    img_free(&im);
    uint8_t *b;
    size_t n;
    ck_assert_int_eq(file_read_all(path, &b, &n, err, sizeof err), MT_OK);
    uint8_t *sof = find_bytes(b, n, "\xff\xc0", 2);
    ck_assert_ptr_nonnull(sof);
    sof[5] = (uint8_t)(h >> 8), sof[6] = (uint8_t)h, sof[7] = (uint8_t)(w >> 8),
    sof[8] = (uint8_t)w;
    write_bytes(path, b, n);
    free(b);
}

START_TEST(absurd_dimensions_refused) {
    char path[1024];
    mt_image8 out;
    tmp_path(path, sizeof path, "huge.png");
    png_with_claimed_size(path, 60000, 60000); /* each side fine, 3.6e9 pixels */
    assert_refused(img_png_read(path, &out, err, sizeof err), MT_ERR_FORMAT, &out, path, "limit");
    png_with_claimed_size(path, 70000, 4); /* one side too long */
    assert_refused(img_png_read(path, &out, err, sizeof err), MT_ERR_FORMAT, &out, path, "limit");
    tmp_path(path, sizeof path, "huge.jpg");
    jpeg_with_claimed_size(path, 60000, 60000);
    assert_refused(img_jpeg_read(path, &out, NULL, NULL, err, sizeof err), MT_ERR_FORMAT, &out,
                   path, "limit");
}
END_TEST

/* ---- writers --------------------------------------------------------------------- */

START_TEST(writer_arguments_checked) {
    char path[1024];
    tmp_path(path, sizeof path, "arg.jpg");
    mt_image8 rgb = smooth_image(8, 8, 3), two = noise_image(8, 8, 2, 8, 256);
    ck_assert_int_eq(img_jpeg_write(path, &rgb, 0, err, sizeof err), MT_ERR_ARG);
    ck_assert_int_eq(img_jpeg_write(path, &rgb, 101, err, sizeof err), MT_ERR_ARG);
    ck_assert_int_eq(img_jpeg_write(path, &two, 90, err, sizeof err), MT_ERR_ARG);
    ck_assert_int_eq(img_png_write(path, &two, 0, err, sizeof err), MT_ERR_ARG);
    ck_assert_int_eq(img_png_write(path, &rgb, 1, err, sizeof err), MT_ERR_ARG);
    ck_assert_msg(strstr(err, path), "%s", err);
    ck_assert_int_ne(access(path, F_OK), 0);
    img_free(&rgb);
    img_free(&two);
}
END_TEST

START_TEST(writer_reports_unwritable_path) {
    char path[1024];
    mt_image8 im = smooth_image(8, 8, 3);
    snprintf(path, sizeof path, "%s/no/such/dir/x.png", tmpdir);
    assert_refused(img_png_write(path, &im, 0, err, sizeof err), MT_ERR_IO, NULL, path,
                   "cannot create");
    snprintf(path, sizeof path, "%s/no/such/dir/x.jpg", tmpdir);
    assert_refused(img_jpeg_write(path, &im, 90, err, sizeof err), MT_ERR_IO, NULL, path,
                   "cannot create");
    img_free(&im);
}
END_TEST

/* A file-size limit makes the write fail half way: the error names the
 * path and the partial file is gone. (Runs in Check's forked child.) */
START_TEST(failed_write_removes_partial_file) {
    struct rlimit old, small;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    small = old;
    small.rlim_cur = 4096;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    char png_path[1024], jpg_path[1024];
    tmp_path(png_path, sizeof png_path, "big.png");
    tmp_path(jpg_path, sizeof jpg_path, "big.jpg");
    mt_image8 im = noise_image(256, 256, 3, 9, 256);
    mt_status png_st = img_png_write(png_path, &im, 0, err, sizeof err);
    char png_err[1024];
    memcpy(png_err, err, sizeof err);
    mt_status jpg_st = img_jpeg_write(jpg_path, &im, 100, err, sizeof err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    ck_assert_msg(png_st == MT_ERR_IO && strstr(png_err, png_path), "%s", png_err);
    ck_assert_msg(jpg_st == MT_ERR_IO && strstr(err, jpg_path), "%s", err);
    ck_assert_int_ne(access(png_path, F_OK), 0);
    ck_assert_int_ne(access(jpg_path, F_OK), 0);
    img_free(&im);
}
END_TEST

/* The in-memory encoders give exactly the bytes the writers put in the
 * file, and refuse what the writers refuse, naming `what`, with no buffer. */
START_TEST(encoders_match_writers) {
    mt_image8 rgb = smooth_image(24, 40, 3), gray = noise_image(17, 9, 1, 5, 21);
    const struct {
        const char *name;
        const mt_image8 *im;
        int jpeg, palette;
    } cases[] = {
        {"enc.jpg", &rgb, 1, 0}, {"enc_gray.jpg", &gray, 1, 0}, {"enc_rgb.png", &rgb, 0, 0},
        {"enc_gray.png", &gray, 0, 0}, {"enc_palette.png", &gray, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[1024];
        tmp_path(path, sizeof path, cases[i].name);
        uint8_t *mem, *file;
        size_t nmem, nfile;
        mt_status st = cases[i].jpeg
                           ? img_jpeg_encode(cases[i].im, 90, &mem, &nmem, "x", err, sizeof err)
                           : img_png_encode(cases[i].im, cases[i].palette, &mem, &nmem, "x", err,
                                            sizeof err);
        ck_assert_msg(st == MT_OK, "%s: %s", cases[i].name, err);
        st = cases[i].jpeg ? img_jpeg_write(path, cases[i].im, 90, err, sizeof err)
                           : img_png_write(path, cases[i].im, cases[i].palette, err, sizeof err);
        ck_assert_msg(st == MT_OK, "%s: %s", cases[i].name, err);
        ck_assert_int_eq(file_read_all(path, &file, &nfile, err, sizeof err), MT_OK);
        ck_assert_uint_eq(nmem, nfile);
        ck_assert_mem_eq(mem, file, nfile);
        free(mem);
        free(file);
    }
    mt_image8 two = noise_image(8, 8, 2, 8, 256);
    uint8_t *bytes = (uint8_t *)1;
    size_t n = 1;
    ck_assert_int_eq(img_jpeg_encode(&two, 90, &bytes, &n, "two-channel image", err, sizeof err),
                     MT_ERR_ARG);
    ck_assert_ptr_null(bytes);
    ck_assert_uint_eq(n, 0);
    ck_assert_msg(strstr(err, "two-channel image"), "%s", err);
    ck_assert_int_eq(img_png_encode(&rgb, 1, &bytes, &n, "rgb image", err, sizeof err), MT_ERR_ARG);
    ck_assert_ptr_null(bytes);
    ck_assert_msg(strstr(err, "rgb image"), "%s", err);
    ck_assert_int_eq(img_jpeg_encode(&rgb, 101, &bytes, &n, NULL, err, sizeof err), MT_ERR_ARG);
    ck_assert_int_eq(img_png_encode(NULL, 0, &bytes, &n, NULL, err, sizeof err), MT_ERR_ARG);
    ck_assert_int_eq(img_jpeg_encode(&rgb, 90, NULL, &n, NULL, err, sizeof err), MT_ERR_ARG);
    img_free(&rgb);
    img_free(&gray);
    img_free(&two);
}
END_TEST

/* ---- parity with PIL ------------------------------------------------------------- */

static const char *cases_dir(void) {
    const char *dir = getenv("MTLORA_CODEC_CASES");
    ck_assert_msg(dir && *dir, "MTLORA_CODEC_CASES is not set (run through ctest)");
    return dir;
}

static void load_cases(tensor_bundle *b) {
    char path[1024], msg[512];
    snprintf(path, sizeof path, "%s/cases.bundle", cases_dir());
    ck_assert_msg(bundle_load(b, path, msg, sizeof msg) == 0, "%s", msg);
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static void check_against_pil(const bundle_tensor *t, const char *path) {
    mt_image8 im;
    mt_status st = has_suffix(t->name, ".jpg")
                       ? img_jpeg_read(path, &im, NULL, NULL, err, sizeof err)
                       : img_png_read(path, &im, err, sizeof err);
    ck_assert_msg(st == MT_OK, "%s", err);
    int c = t->ndim == 3 ? (int)t->dims[2] : 1;
    ck_assert_msg(im.h == t->dims[0] && im.w == t->dims[1] && im.c == c,
                  "%s: %dx%dx%d, PIL %ldx%ldx%d", t->name, im.h, im.w, im.c, (long)t->dims[0],
                  (long)t->dims[1], c);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < t->count; i++)
        if (im.data[i] != t->data[i] && bad++ == 0) first = i;
    ck_assert_msg(bad == 0, "%s: %zu of %zu values differ from PIL, first at %zu: %d vs %g",
                  t->name, bad, t->count, first, im.data[first], t->data[first]);
    img_free(&im);
}

START_TEST(pil_parity) {
    static const char *required[] = {
        "gray.jpg",         "rgb420.jpg",       "rgb422.jpg",   "rgb444.jpg",
        "progressive.jpg",  "rgb420_large.jpg", "palette.png",  "palette_trns.png",
        "palette_4bit.png", "palette_1bit.png", "gray1.png",    "gray2.png",
        "gray4.png",        "gray_trns.png",    "rgb_trns.png", "interlaced.png"};
    tensor_bundle b;
    load_cases(&b);
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        ck_assert_msg(bundle_get(&b, required[i]), "case %s missing from the bundle", required[i]);
    int checked = 0;
    char path[1024];
    for (int i = 0; i < b.count; i++) {
        if (!strncmp(b.t[i].name, "refuse:", 7)) continue;
        snprintf(path, sizeof path, "%s/%s", cases_dir(), b.t[i].name);
        check_against_pil(&b.t[i], path);
        checked++;
    }
    ck_assert_int_ge(checked, 20);
    bundle_free(&b);
}
END_TEST

/* Each refused file with the reason its message must give. */
START_TEST(pil_files_refused) {
    static const struct {
        const char *name, *reason;
    } cases[] = {{"gray16.png", "16-bit"},       {"rgb16.png", "16-bit"},
                 {"cmyk.jpg", "CMYK"},           {"truncated.jpg", "truncated JPEG data"},
                 {"text.png", "not a PNG file"}, {"text.jpg", "not a JPEG file"}};
    tensor_bundle b;
    load_cases(&b);
    int listed = 0;
    for (int i = 0; i < b.count; i++) listed += !strncmp(b.t[i].name, "refuse:", 7);
    ck_assert_int_eq(listed, (int)(sizeof cases / sizeof *cases));
    char key[64], path[1024];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(key, sizeof key, "refuse:%s", cases[i].name);
        ck_assert_msg(bundle_get(&b, key), "case %s missing from the bundle", key);
        snprintf(path, sizeof path, "%s/%s", cases_dir(), cases[i].name);
        mt_image8 out;
        mt_status st = has_suffix(path, ".jpg")
                           ? img_jpeg_read(path, &out, NULL, NULL, err, sizeof err)
                           : img_png_read(path, &out, err, sizeof err);
        assert_refused(st, MT_ERR_FORMAT, &out, path, cases[i].reason);
    }
    bundle_free(&b);
}
END_TEST

/* ---- hostile input: memory and time bounds -------------------------------
 * Files whose headers claim far more than their data holds, and files built
 * to make the decoder work or allocate: each must fail (or succeed) having
 * allocated about what it holds. The proof is an address-space limit in a
 * forked child: a decoder that allocated what the header claims would fail
 * there with "out of memory" instead of the message each test expects. */

/* ASan reserves terabytes of shadow memory up front, so RLIMIT_AS cannot
 * be used under it; the cap is then left off (the messages, which differ
 * from an out-of-memory one, are still checked). */
#if defined(__SANITIZE_ADDRESS__)
#define CODEC_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CODEC_UNDER_ASAN 1
#endif
#endif

typedef mt_status (*decode_fn)(const uint8_t *, size_t, mt_image8 *, const char *, char *,
                               size_t);

static size_t address_space_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    unsigned long pages = 0;
    ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

typedef struct {
    int status, h, w, c;
    char msg[1024];
} capped_result;

/* Runs fn(bytes) in a child whose address space may grow by at most
 * headroom bytes; its status, image size and message come back in *r (and
 * the message in err, for assert_refused). */
static mt_status decode_capped(decode_fn fn, const uint8_t *bytes, size_t n, const char *what,
                               size_t headroom, capped_result *r) {
    rlim_t limit = (rlim_t)(address_space_now() + headroom);
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) { /* no ck_assert here: this is not Check's process */
        close(fd[0]);
        capped_result res;
        memset(&res, 0, sizeof res);
#ifndef CODEC_UNDER_ASAN
        struct rlimit rl = {limit, limit};
        if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(3);
#else
        (void)limit;
#endif
        mt_image8 out = {0, 0, 0, NULL};
        res.status = (int)fn(bytes, n, &out, what, res.msg, sizeof res.msg);
        res.h = out.h, res.w = out.w, res.c = out.c;
        img_free(&out);
        _exit(write(fd[1], &res, sizeof res) == (ssize_t)sizeof res ? 0 : 4);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], r, sizeof *r);
    close(fd[0]);
    int wst;
    ck_assert_int_eq(waitpid(pid, &wst, 0), pid);
    ck_assert_msg(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "decoder child died (status %d)", wst);
    ck_assert_int_eq(got, (ssize_t)sizeof *r);
    snprintf(err, sizeof err, "%s", r->msg);
    return (mt_status)r->status;
}

/* A JPEG written by libjpeg itself (our encoder writes baseline only):
 * nscans < 0 gives libjpeg's standard progression, scans its own script. */
static void encode_jpeg_scans(const mt_image8 *im, const jpeg_scan_info *scans, int nscans,
                              uint8_t **bytes, size_t *n) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr); /* its error_exit ends the (forked) test */
    jpeg_create_compress(&ci);
    unsigned char *buf = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&ci, &buf, &len);
    ci.image_width = (JDIMENSION)im->w;
    ci.image_height = (JDIMENSION)im->h;
    ci.input_components = im->c;
    ci.in_color_space = im->c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    if (nscans < 0) {
        jpeg_simple_progression(&ci);
    } else {
        ci.scan_info = scans;
        ci.num_scans = nscans;
    }
    jpeg_start_compress(&ci, TRUE);
    for (int y = 0; y < im->h; y++) {
        JSAMPROW row = im->data + (size_t)y * im->w * im->c;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    *bytes = buf;
    *n = len;
}

/* Rewrites the height and width of the SOFn marker at code (0xc0..0xc2). */
static void jpeg_patch_size(uint8_t *b, size_t n, int code, unsigned w, unsigned h) {
    char marker[3] = {(char)0xff, (char)code, 0};
    uint8_t *sof = find_bytes(b, n, marker, 2);
    ck_assert_ptr_nonnull(sof);
    sof[5] = (uint8_t)(h >> 8), sof[6] = (uint8_t)h, sof[7] = (uint8_t)(w >> 8),
    sof[8] = (uint8_t)w;
}

/* A progressive file needs libjpeg's whole-image coefficient buffer, which
 * is allocated before any scan is read: a few hundred bytes claiming
 * 65500x4096 (libjpeg's widest) would cost 768 MiB without the cap. */
START_TEST(jpeg_progressive_huge_claim_refused) {
    mt_image8 im = smooth_image(16, 16, 3);
    uint8_t *b;
    size_t n;
    encode_jpeg_scans(&im, NULL, -1, &b, &n);
    ck_assert_uint_lt(n, 2048);
    jpeg_patch_size(b, n, 0xc2, 65500, 4096);
    capped_result r;
    assert_refused(decode_capped(img_jpeg_decode, b, n, "huge progressive", 256 << 20, &r),
                   MT_ERR_FORMAT, NULL, "huge progressive", "decoder working memory");
    free(b);
    img_free(&im);
}
END_TEST

/* 2 DC scans and 63 single-coefficient AC scans, with refine: each of
 * those again as a successive-approximation refinement (128 scans in all,
 * a valid progression), without: 64 scans. */
static int many_scans_script(jpeg_scan_info *s, int refine) {
    int k = 0;
    s[k++] = (jpeg_scan_info){1, {0}, 0, 0, 0, refine};
    if (refine) s[k++] = (jpeg_scan_info){1, {0}, 0, 0, 1, 0};
    for (int c = 1; c < 64; c++) s[k++] = (jpeg_scan_info){1, {0}, c, c, 0, refine};
    if (refine)
        for (int c = 1; c < 64; c++) s[k++] = (jpeg_scan_info){1, {0}, c, c, 1, 0};
    return k;
}

/* Each scan is a pass over the whole image: a small file with many of them
 * is a time bomb, so more than 100 are refused; 64 decode exactly as the
 * baseline file of the same image does. */
START_TEST(jpeg_too_many_scans_refused) {
    mt_image8 im = noise_image(24, 40, 1, 11, 256), base, prog;
    jpeg_scan_info script[128];
    uint8_t *b;
    size_t n;
    encode_jpeg_scans(&im, script, many_scans_script(script, 1), &b, &n);
    assert_refused(img_jpeg_decode(b, n, &prog, "scan bomb", err, sizeof err), MT_ERR_FORMAT,
                   &prog, "scan bomb", "more than 100 scans");
    free(b);
    encode_jpeg_scans(&im, script, many_scans_script(script, 0), &b, &n);
    ck_assert_msg(img_jpeg_decode(b, n, &prog, "64 scans", err, sizeof err) == MT_OK, "%s", err);
    free(b);
    encode_jpeg_scans(&im, NULL, 0, &b, &n);
    ck_assert_msg(img_jpeg_decode(b, n, &base, "baseline", err, sizeof err) == MT_OK, "%s", err);
    assert_same_pixels(&prog, &base);
    free(b);
    img_free(&base);
    img_free(&prog);
    img_free(&im);
}
END_TEST

/* A baseline file cut after its first MCU but claiming 65500x4096 fails as
 * a truncated file does, with a pixel buffer grown only as rows decoded
 * (the whole one would be 768 MiB). */
START_TEST(jpeg_truncated_huge_claim_bounded) {
    mt_image8 im = smooth_image(8, 8, 3);
    uint8_t *b;
    size_t n;
    ck_assert_int_eq(img_jpeg_encode(&im, 90, &b, &n, "small", err, sizeof err), MT_OK);
    jpeg_patch_size(b, n, 0xc0, 65500, 4096);
    capped_result r;
    assert_refused(decode_capped(img_jpeg_decode, b, n, "huge baseline", 256 << 20, &r),
                   MT_ERR_FORMAT, NULL, "huge baseline", "truncated JPEG data");
    free(b);
    img_free(&im);
}
END_TEST

/* Our encoder's bytes of im, with IHDR's size replaced (CRC fixed). */
static void png_bytes_claiming(const mt_image8 *im, uint32_t w, uint32_t h, uint8_t **b,
                               size_t *n) {
    ck_assert_int_eq(img_png_encode(im, 0, b, n, "png", err, sizeof err), MT_OK);
    ck_assert_mem_eq(*b + 12, "IHDR", 4);
    put_be32(*b + 16, w);
    put_be32(*b + 20, h);
    put_be32(*b + 29, crc32_of(*b + 12, 17));
}

/* 4x4 pixels of data claiming 65535x4096 (256 MiB of image data): more
 * than 100-odd bytes can inflate to, refused before any pixel buffer. */
START_TEST(png_huge_claim_refused) {
    mt_image8 im = noise_image(4, 4, 1, 7, 256);
    uint8_t *b;
    size_t n;
    png_bytes_claiming(&im, 65535, 4096, &b, &n);
    capped_result r;
    assert_refused(decode_capped(img_png_decode, b, n, "huge png", 64 << 20, &r), MT_ERR_FORMAT,
                   NULL, "huge png", "1032:1");
    free(b);
    img_free(&im);
}
END_TEST

/* 64 real rows of 16384 noise pixels (1 MiB, so the deflate bound lets the
 * claim pass) claiming 16384 rows: the decoder fails at the end of the data
 * with at most its first 64 MiB of rows, not the claimed 256 MiB. */
START_TEST(png_rows_grow_with_data) {
    mt_image8 im = noise_image(64, 16384, 1, 8, 256);
    uint8_t *b;
    size_t n;
    png_bytes_claiming(&im, 16384, 16384, &b, &n);
    capped_result r;
    assert_refused(decode_capped(img_png_decode, b, n, "tall png", 160 << 20, &r), MT_ERR_FORMAT,
                   NULL, "tall png", "Not enough image data");
    free(b);
    img_free(&im);
}
END_TEST

static double thread_cpu_seconds(void) {
    struct timespec t;
    ck_assert_int_eq(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t), 0);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A zlib bomb: 64 MiB of zeros compressed into 64 KiB of IDAT under a
 * header claiming 16x16. libpng would inflate all of the surplus after the
 * last row (only to warn about it); the decoder stops it a few KiB past
 * the last row and refuses the file, within a few MiB and in a small
 * fraction of the CPU time of decoding the same IDAT as the 8192x8192
 * image it holds. */
START_TEST(png_zlib_bomb_bounded) {
    mt_image8 zeros = {8192, 8192, 1, calloc(8192, 8192)}, out;
    ck_assert_ptr_nonnull(zeros.data);
    uint8_t *b, *whole;
    size_t n, nwhole;
    png_bytes_claiming(&zeros, 16, 16, &b, &n);
    png_bytes_claiming(&zeros, 8192, 8192, &whole, &nwhole);
    img_free(&zeros);
    ck_assert_uint_lt(n, 1 << 17);
    capped_result r;
    assert_refused(decode_capped(img_png_decode, b, n, "bomb", 8 << 20, &r), MT_ERR_FORMAT, NULL,
                   "bomb", "goes on past the last of its 16 rows");
    double t0 = thread_cpu_seconds();
    mt_status st = img_png_decode(b, n, &out, "bomb", err, sizeof err);
    double bomb = thread_cpu_seconds() - t0;
    ck_assert_int_eq(st, MT_ERR_FORMAT);
    t0 = thread_cpu_seconds();
    st = img_png_decode(whole, nwhole, &out, "whole", err, sizeof err);
    double real = thread_cpu_seconds() - t0;
    ck_assert_msg(st == MT_OK, "%s", err);
    ck_assert_int_eq(out.h, 8192);
    img_free(&out);
    ck_assert_msg(bomb < real / 10, "the 16x16 bomb took %.4f s of CPU, the real image %.4f s",
                  bomb, real);
    free(whole);
    free(b);
}
END_TEST

/* The in-memory PNG decoder gives what the file reader gives, names `what`
 * and leaves *out empty on refusal. */
START_TEST(png_decode_in_memory) {
    char path[1024];
    tmp_path(path, sizeof path, "mem.png");
    mt_image8 im = noise_image(13, 21, 3, 12, 256), a, m;
    ck_assert_int_eq(img_png_write(path, &im, 0, err, sizeof err), MT_OK);
    uint8_t *b;
    size_t n;
    ck_assert_int_eq(file_read_all(path, &b, &n, err, sizeof err), MT_OK);
    ck_assert_int_eq(img_png_read(path, &a, err, sizeof err), MT_OK);
    ck_assert_int_eq(img_png_decode(b, n, &m, "blob", err, sizeof err), MT_OK);
    assert_same_pixels(&a, &m);
    assert_same_pixels(&im, &m);
    img_free(&m);
    assert_refused(img_png_decode(b, n / 2, &m, "half blob", err, sizeof err), MT_ERR_FORMAT, &m,
                   "half blob", "truncated PNG data");
    assert_refused(img_png_decode(b, 4, &m, "stub", err, sizeof err), MT_ERR_FORMAT, &m, "stub",
                   "not a PNG file");
    assert_refused(img_png_decode(NULL, 4, &m, "nothing", err, sizeof err), MT_ERR_ARG, NULL,
                   "nothing", "null argument");
    free(b);
    img_free(&a);
    img_free(&im);
}
END_TEST

static Suite *codec_suite(void) {
    Suite *s = suite_create("image_codec");
    struct {
        const char *name;
        const TTest *tests[8];
    } groups[] = {
        {"roundtrip",
         {png_gray_roundtrip, png_rgb_roundtrip, png_palette_roundtrip, jpeg_rgb_roundtrip_q100,
          jpeg_gray_roundtrip_q100, jpeg_read_returns_file_bytes, jpeg_extraneous_bytes_accepted}},
        {"png_kinds", {png_low_bit_depths, png_alpha_and_interlaced}},
        {"refusals",
         {truncated_jpeg_refused, truncated_png_refused, png_corruption_refused,
          missing_file_is_io_error, png_16bit_refused, text_files_refused,
          absurd_dimensions_refused}},
        {"writers",
         {writer_arguments_checked, writer_reports_unwritable_path,
          failed_write_removes_partial_file, encoders_match_writers}},
        {"pil_parity", {pil_parity, pil_files_refused}},
        {"hostile",
         {jpeg_progressive_huge_claim_refused, jpeg_too_many_scans_refused,
          jpeg_truncated_huge_claim_bounded, png_huge_claim_refused, png_rows_grow_with_data,
          png_zlib_bomb_bounded, png_decode_in_memory}},
    };
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
        tcase_set_timeout(tc, 60);
        for (int t = 0; t < 8 && groups[g].tests[t]; t++) tcase_add_test(tc, groups[g].tests[t]);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
