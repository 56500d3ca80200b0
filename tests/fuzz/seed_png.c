/* seed_png OUTDIR - the seed corpus of fuzz_png: small PNGs from the
 * project's encoder (img_png_encode: 8-bit gray, RGB and VOC palette, the
 * kinds the packer writes) in several sizes; and, because that encoder
 * writes only those, the other kinds the decoder accepts from libpng
 * itself: Adam7 interlaced, 1/2/4-bit gray and palette, gray+alpha, RGBA,
 * with a tRNS chunk, so the fuzzer starts inside every decoding path.
 * Every seed must decode with img_png_decode, or this program fails. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "mtlora/io/image_codec.h"

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Samples in 0..levels-1: ramps plus noise. */
static uint8_t *make_samples(size_t n, int levels, uint32_t seed) {
    uint8_t *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "seed_png: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i / 3 + lcg(&seed) % 5) % (size_t)levels);
    return p;
}

static int write_seed(const char *dir, const char *name, const uint8_t *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "seed_png: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    int ok = fwrite(b, 1, n, f) == n;
    if (fclose(f) != 0) ok = 0;
    if (!ok) fprintf(stderr, "seed_png: cannot write %s: %s\n", path, strerror(errno));
    return ok ? 0 : -1;
}

static int keep_seed(const char *dir, const char *name, const uint8_t *b, size_t n) {
    mt_image8 back;
    char err[1024];
    if (img_png_decode(b, n, &back, name, err, sizeof err) != MT_OK) {
        fprintf(stderr, "seed_png: the decoder refuses its own seed: %s\n", err);
        return -1;
    }
    img_free(&back);
    return write_seed(dir, name, b, n);
}

static int encoder_seed(const char *dir, int h, int w, int c, int palette) {
    mt_image8 im = {h, w, c, make_samples((size_t)h * w * c, palette ? 21 : 256, (uint32_t)(h * w))};
    char name[64], err[1024];
    snprintf(name, sizeof name, "%s_%dx%d.png", palette ? "palette" : c == 3 ? "rgb" : "gray", w,
             h);
    uint8_t *b;
    size_t n;
    int rc = -1;
    if (img_png_encode(&im, palette, &b, &n, name, err, sizeof err) != MT_OK) {
        fprintf(stderr, "seed_png: %s\n", err);
    } else {
        rc = keep_seed(dir, name, b, n);
        free(b);
    }
    img_free(&im);
    return rc;
}

/* ---- libpng directly --------------------------------------------------- */

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    int failed;
} mem_out;

static void mem_write(png_structp png, png_bytep src, size_t len) {
    mem_out *m = png_get_io_ptr(png);
    if (m->cap - m->len < len) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap - m->len < len) cap *= 2;
        uint8_t *bigger = realloc(m->buf, cap);
        if (!bigger) png_error(png, "out of memory");
        m->buf = bigger;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, src, len);
    m->len += len;
}

static void mem_flush(png_structp png) { (void)png; }

typedef struct {
    const char *name;
    int w, h, depth, type, interlace, trns;
} raw_kind;

static int channels_of(int type) {
    return type == PNG_COLOR_TYPE_RGB          ? 3
           : type == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
           : type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                                               : 1;
}

/* libpng's errors longjmp here; only the mem_out (caller-owned) and the
 * pointers set before setjmp are used after the jump. */
static int encode_raw(const raw_kind *k, const uint8_t *samples, png_structp png, png_infop info,
                      mem_out *out) {
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_write_fn(png, out, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)k->w, (png_uint_32)k->h, k->depth, k->type, k->interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_color pal[256];
    png_byte alpha[256];
    for (int i = 0; i < 256; i++) {
        pal[i] = (png_color){(png_byte)i, (png_byte)(255 - i), (png_byte)(i * 7)};
        alpha[i] = (png_byte)(255 - i);
    }
    if (k->type == PNG_COLOR_TYPE_PALETTE) png_set_PLTE(png, info, pal, 1 << k->depth);
    if (k->trns && k->type == PNG_COLOR_TYPE_PALETTE) png_set_tRNS(png, info, alpha, 4, NULL);
    if (k->trns && k->type == PNG_COLOR_TYPE_GRAY) {
        png_color_16 key = {0, 0, 0, 0, 1};
        png_set_tRNS(png, info, NULL, 0, &key);
    }
    png_text text = {PNG_TEXT_COMPRESSION_zTXt, "Comment", "seed for fuzz_png", 0, 0, NULL, NULL};
    png_set_text(png, info, &text, 1);
    png_write_info(png, info);
    if (k->depth < 8) png_set_packing(png);
    size_t stride = (size_t)k->w * channels_of(k->type);
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < k->h; y++) png_write_row(png, samples + (size_t)y * stride);
    png_write_end(png, NULL);
    return 0;
}

static int libpng_seed(const char *dir, const raw_kind *k) {
    size_t n = (size_t)k->w * k->h * channels_of(k->type);
    uint8_t *samples = make_samples(n, 1 << k->depth, (uint32_t)(k->w * 31 + k->depth));
    mem_out out = {NULL, 0, 0, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = -1;
    if (!info)
        fprintf(stderr, "seed_png: out of memory for libpng\n");
    else if (encode_raw(k, samples, png, info, &out) != 0)
        fprintf(stderr, "seed_png: libpng could not write %s\n", k->name);
    else
        rc = keep_seed(dir, k->name, out.buf, out.len);
    png_destroy_write_struct(&png, &info);
    free(out.buf);
    free(samples);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seed_png OUTDIR\n");
        return 2;
    }
    const char *dir = argv[1];
    static const struct {
        int h, w, c, palette;
    } enc[] = {{1, 1, 1, 0}, {13, 7, 1, 0}, {16, 16, 3, 0}, {17, 33, 3, 0}, {40, 24, 1, 1},
               {9, 70, 1, 1}};
    static const raw_kind raw[] = {
        {"interlaced_rgb_19x23.png", 19, 23, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, 0},
        {"interlaced_gray2_9x11.png", 9, 11, 2, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_ADAM7, 0},
        {"gray1_17x5.png", 17, 5, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, 0},
        {"gray4_trns_12x6.png", 12, 6, 4, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, 1},
        {"palette4_trns_10x10.png", 10, 10, 4, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, 1},
        {"gray_alpha_8x8.png", 8, 8, 8, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE, 0},
        {"rgba_interlaced_13x9.png", 13, 9, 8, PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_ADAM7, 0},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof enc / sizeof *enc; i++)
        failed |= encoder_seed(dir, enc[i].h, enc[i].w, enc[i].c, enc[i].palette) != 0;
    for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) failed |= libpng_seed(dir, &raw[i]) != 0;
    return failed ? 1 : 0;
}
