/* fuzz_png - libFuzzer target: img_png_decode (image_codec.h) on
 * arbitrary bytes, with the contract checked on every input: success gives
 * an image of 1 to 4 channels whose every byte is readable; failure names
 * the input, leaves *out all zero and nothing allocated (ASan's leak check
 * sees the rest). A broken contract aborts, which libFuzzer reports. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/io/image_codec.h"

/* Bigger inputs reach no new code, only take longer (launch/fuzz mutates
 * up to 64 KiB; the seeds are a few KiB). */
#define FUZZ_MAX_INPUT ((size_t)256 << 10)

static void contract_broken(const char *what, const char *msg) {
    fprintf(stderr, "fuzz_png: contract broken: %s (message: %s)\n", what, msg);
    abort();
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

/* Rewrites the CRC of every whole chunk after the signature. */
static void fix_crcs(uint8_t *p, size_t n) {
    for (size_t pos = 8; n - pos >= 12 && pos < n;) {
        uint32_t len = be32(p + pos);
        if (len > n - pos - 12) return;
        uint32_t crc = crc32_of(p + pos + 4, 4 + (size_t)len);
        uint8_t *at = p + pos + 8 + len;
        at[0] = (uint8_t)(crc >> 24), at[1] = (uint8_t)(crc >> 16), at[2] = (uint8_t)(crc >> 8),
        at[3] = (uint8_t)crc;
        pos += 12 + (size_t)len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    /* Inputs whose last byte is odd get every chunk's CRC recomputed first,
     * so that a mutation inside a chunk reaches libpng's inflate, filters
     * and transforms instead of always stopping at the CRC check; the
     * others exercise the chunk walk and CRC refusals as they are. A private
     * copy of exactly size bytes keeps ASan's view of the end. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    if (size > 8 && (data[size - 1] & 1)) fix_crcs(copy, size);
    mt_image8 im = {7, 7, 7, NULL}; /* the decoder must zero it on every path */
    char err[1024] = "";
    mt_status st = img_png_decode(copy, size, &im, "fuzz input", err, sizeof err);
    free(copy);
    if (st == MT_OK) {
        if (im.c < 1 || im.c > 4 || im.h <= 0 || im.w <= 0 || !im.data)
            contract_broken("success without a 1..4-channel image", err);
        /* Reading the last byte: ASan flags a buffer shorter than h*w*c. */
        volatile uint8_t last = im.data[(size_t)im.h * im.w * im.c - 1];
        (void)last;
    } else {
        if (im.data || im.h || im.w || im.c) contract_broken("failure left *out set", err);
        if (!strstr(err, "fuzz input")) contract_broken("message does not name the input", err);
    }
    img_free(&im);
    return 0;
}
