/* seed_jpeg OUTDIR - the seed corpus of fuzz_jpeg: small JPEGs of several
 * sizes, grey and colour, at several qualities, from the project's encoder
 * (img_jpeg_encode, baseline 4:2:0); and, because that encoder writes only
 * baseline files, progressive and restart-marker files from libjpeg itself
 * with the same settings, so the fuzzer starts inside the multi-scan and
 * RSTn paths too. Every seed must decode with img_jpeg_decode, or this
 * program fails (a seed the decoder refuses starts the fuzzer nowhere). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "mtlora/io/image_codec.h"

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Ramps plus a little noise: both smooth and busy blocks. */
static mt_image8 make_image(int h, int w, int c, uint32_t seed) {
    mt_image8 im = {h, w, c, malloc((size_t)h * w * c)};
    if (!im.data) {
        fprintf(stderr, "seed_jpeg: out of memory\n");
        exit(1);
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                im.data[((size_t)y * w + x) * c + k] =
                    (uint8_t)((x * 255 / w + y * 97 / h + k * 60 + (int)(lcg(&seed) % 24)) & 255);
    return im;
}

static int write_seed(const char *dir, const char *name, const uint8_t *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "seed_jpeg: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    int ok = fwrite(b, 1, n, f) == n;
    if (fclose(f) != 0) ok = 0;
    if (!ok) fprintf(stderr, "seed_jpeg: cannot write %s: %s\n", path, strerror(errno));
    return ok ? 0 : -1;
}

/* Writes the seed after checking that our decoder accepts it. */
static int keep_seed(const char *dir, const char *name, const uint8_t *b, size_t n) {
    mt_image8 back;
    char err[1024];
    if (img_jpeg_decode(b, n, &back, name, err, sizeof err) != MT_OK) {
        fprintf(stderr, "seed_jpeg: the decoder refuses its own seed: %s\n", err);
        return -1;
    }
    img_free(&back);
    return write_seed(dir, name, b, n);
}

static int encoder_seed(const char *dir, int h, int w, int c, int quality) {
    mt_image8 im = make_image(h, w, c, (uint32_t)(h * 131 + w * 7 + c));
    char name[64], err[1024];
    snprintf(name, sizeof name, "%s_%dx%d_q%d.jpg", c == 3 ? "rgb" : "gray", w, h, quality);
    uint8_t *b;
    size_t n;
    int rc = -1;
    if (img_jpeg_encode(&im, quality, &b, &n, name, err, sizeof err) != MT_OK) {
        fprintf(stderr, "seed_jpeg: %s\n", err);
    } else {
        rc = keep_seed(dir, name, b, n);
        free(b);
    }
    img_free(&im);
    return rc;
}

/* libjpeg directly: progressive (libjpeg's standard script) or baseline
 * with a restart marker after every MCU row. Its default error handler
 * exits the program, which fails the seeding. */
static int libjpeg_seed(const char *dir, int h, int w, int c, int progressive) {
    mt_image8 im = make_image(h, w, c, (uint32_t)(h + w * 3 + c * 5));
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    unsigned char *buf = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&ci, &buf, &len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = c;
    ci.in_color_space = c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 85, TRUE);
    if (progressive)
        jpeg_simple_progression(&ci);
    else
        ci.restart_in_rows = 1;
    jpeg_start_compress(&ci, TRUE);
    for (int y = 0; y < h; y++) {
        JSAMPROW row = im.data + (size_t)y * w * c;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    char name[64];
    snprintf(name, sizeof name, "%s_%s_%dx%d.jpg", progressive ? "progressive" : "restart",
             c == 3 ? "rgb" : "gray", w, h);
    int rc = keep_seed(dir, name, buf, len);
    free(buf);
    img_free(&im);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seed_jpeg OUTDIR\n");
        return 2;
    }
    const char *dir = argv[1];
    static const struct {
        int h, w, c, quality;
    } enc[] = {{1, 1, 1, 90},    {13, 7, 1, 75},  {16, 16, 3, 90}, {17, 33, 3, 50},
               {48, 64, 3, 95},  {64, 48, 1, 100}, {9, 70, 3, 20}, {40, 24, 3, 100}};
    int failed = 0;
    for (size_t i = 0; i < sizeof enc / sizeof *enc; i++)
        failed |= encoder_seed(dir, enc[i].h, enc[i].w, enc[i].c, enc[i].quality) != 0;
    failed |= libjpeg_seed(dir, 24, 32, 3, 1) != 0;
    failed |= libjpeg_seed(dir, 16, 24, 1, 1) != 0;
    failed |= libjpeg_seed(dir, 40, 40, 3, 0) != 0;
    return failed ? 1 : 0;
}
