/* fuzz_jpeg - libFuzzer target: img_jpeg_decode (image_codec.h) on
 * arbitrary bytes, with the contract checked on every input: success gives
 * an RGB image of a sane size whose every byte is readable; failure names
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
    fprintf(stderr, "fuzz_jpeg: contract broken: %s (message: %s)\n", what, msg);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    static const uint8_t empty[1];
    mt_image8 im = {7, 7, 7, NULL}; /* the decoder must zero it on every path */
    char err[1024] = "";
    mt_status st = img_jpeg_decode(data ? data : empty, size, &im, "fuzz input", err, sizeof err);
    if (st == MT_OK) {
        if (im.c != 3 || im.h <= 0 || im.w <= 0 || !im.data)
            contract_broken("success without an RGB image", err);
        /* Reading the last byte: ASan flags a buffer shorter than h*w*3. */
        volatile uint8_t last = im.data[(size_t)im.h * im.w * 3 - 1];
        (void)last;
    } else {
        if (im.data || im.h || im.w || im.c) contract_broken("failure left *out set", err);
        if (!strstr(err, "fuzz input")) contract_broken("message does not name the input", err);
    }
    img_free(&im);
    return 0;
}
