/* edge_map.c - the PASCAL-Context edge target: thin(|Laplacian(LabelMap)| > 0).
 *
 * Reproduces the official loader bit for bit:
 *   cv2.Laplacian(LabelMap, cv2.CV_64F)        (ksize=1, BORDER_REFLECT_101)
 *   skimage.morphology.thin(np.abs(edge) > 0)  (Guo-Hall, skimage's LUTs)
 * The thinning follows scikit-image's skimage/morphology/_skeletonize.py
 * (functions thin and _generate_thin_luts; unchanged from v0.22 through
 * commit cd0a3d22b9f3, 0.26.1.dev; BSD-3-Clause), re-expressed in C. */
#include "mtlora/data/edge_map.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- Laplacian */

/* OpenCV's borderInterpolate for BORDER_REFLECT_101 (... c b | a b c | b a ...),
 * needed only one step outside [0, len). A length-1 axis maps everything to 0,
 * as OpenCV special-cases it. */
static int reflect101(int p, int len) {
    if (len == 1) return 0;
    if (p < 0) return -p;
    if (p >= len) return 2 * len - 2 - p;
    return p;
}

/* The ksize=1 kernel [[0,1,0],[1,-4,1],[0,1,0]] at (y, x). Only "zero or not"
 * matters downstream, so it is computed exactly in 64-bit integers: no
 * int32 label values can overflow it or round it to zero. */
static int64_t laplacian_at(const int32_t *labels, int h, int w, int y, int x) {
    int up = reflect101(y - 1, h), down = reflect101(y + 1, h);
    int left = reflect101(x - 1, w), right = reflect101(x + 1, w);
    const int32_t *row = labels + (size_t)y * (size_t)w;
    int64_t sum = (int64_t)labels[(size_t)up * (size_t)w + (size_t)x] +
                  (int64_t)labels[(size_t)down * (size_t)w + (size_t)x] +
                  (int64_t)row[left] + (int64_t)row[right];
    return sum - 4 * (int64_t)row[x];
}

mt_status edge_laplacian_mask(uint8_t *mask, const int32_t *labels, int h, int w) {
    if (!mask || !labels || h <= 0 || w <= 0) return MT_ERR_ARG;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            mask[(size_t)y * (size_t)w + (size_t)x] = laplacian_at(labels, h, w, y, x) != 0;
    return MT_OK;
}

/* ------------------------------------------------------ Guo-Hall lookup tables */

/* skimage encodes a pixel's 8-neighbourhood as ndi.correlate(img, WEIGHTS),
 * so neighbour (dy, dx) contributes WEIGHTS[dy + 1][dx + 1]. The weights give
 * bit k to Guo and Hall's neighbour x_(k+1): counter-clockwise from east
 * (bit 0 = E, 1 = NE, 2 = N, 3 = NW, 4 = W, 5 = SW, 6 = S, 7 = SE). */
static const uint8_t NEIGHBOUR_WEIGHTS[3][3] = {{8, 4, 2}, {16, 0, 1}, {32, 64, 128}};

static int nb(unsigned code, int k) { return (int)((code >> (k & 7)) & 1u); }

/* G1: exactly one 8-connected run of foreground around the pixel (X_H = 1):
 * count odd-numbered neighbours x_(2i-1) that are background with x_(2i) or
 * x_(2i+1) foreground. */
static int guo_hall_g1(unsigned code) {
    int crossings = 0;
    for (int k = 0; k < 8; k += 2)
        crossings += !nb(code, k) && (nb(code, k + 1) || nb(code, k + 2));
    return crossings == 1;
}

/* G2: 2 <= min(n1, n2) <= 3, n1/n2 counting foreground in the four pairs of
 * neighbours starting at the odd / even positions: not an end point, and not
 * an interior point. */
static int guo_hall_g2(unsigned code) {
    int n1 = 0, n2 = 0;
    for (int k = 1; k < 8; k += 2) {
        n1 += nb(code, k) || nb(code, k - 1);
        n2 += nb(code, k) || nb(code, k + 1);
    }
    int m = n1 < n2 ? n1 : n2;
    return m == 2 || m == 3;
}

/* G3 (first sub-iteration): not (x2 or x3 or not x8) and x1 - peels the
 * south-east boundary. G3' (second): the same rotated by 180 degrees. */
static int guo_hall_g3(unsigned code) {
    return !((nb(code, 1) || nb(code, 2) || !nb(code, 7)) && nb(code, 0));
}
static int guo_hall_g3p(unsigned code) {
    return !((nb(code, 5) || nb(code, 6) || !nb(code, 3)) && nb(code, 4));
}

/* "Delete the centre pixel" for each neighbourhood code, per sub-iteration:
 * skimage's G123_LUT and G123P_LUT (37 codes each). Built once; written only
 * inside pthread_once, so concurrent callers see them complete. */
static uint8_t delete_first[256], delete_second[256];
static pthread_once_t luts_once = PTHREAD_ONCE_INIT;

static void build_luts(void) {
    for (unsigned code = 0; code < 256; code++) {
        int g12 = guo_hall_g1(code) && guo_hall_g2(code);
        delete_first[code] = (uint8_t)(g12 && guo_hall_g3(code));
        delete_second[code] = (uint8_t)(g12 && guo_hall_g3p(code));
    }
}

/* ------------------------------------------------------------------ thinning */

/* The image lives in a buffer with a one-pixel background frame, which is
 * what ndi.correlate(..., mode='constant') sees outside the image. */
typedef struct {
    size_t h, w, stride; /* interior size; stride = w + 2 */
} padded_shape;

static unsigned neighbour_code(const uint8_t *centre, size_t stride) {
    unsigned code = 0;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
            code += NEIGHBOUR_WEIGHTS[dy + 1][dx + 1] *
                    (unsigned)centre[(ptrdiff_t)dy * (ptrdiff_t)stride + dx];
    return code;
}

/* One parallel sub-iteration: every decision reads `cur` as it was before the
 * sub-iteration (as skimage correlates the whole image, then deletes), the
 * result goes to `next`. Returns how many pixels were deleted. */
static size_t thin_subiteration(uint8_t *next, const uint8_t *cur, padded_shape s,
                                const uint8_t *delete_lut) {
    size_t deleted = 0;
    for (size_t y = 1; y <= s.h; y++)
        for (size_t x = 1; x <= s.w; x++) {
            size_t p = y * s.stride + x;
            uint8_t keep = cur[p];
            /* Background stays background, whatever the table says. */
            if (keep && delete_lut[neighbour_code(cur + p, s.stride)]) {
                keep = 0;
                deleted++;
            }
            next[p] = keep;
        }
    return deleted;
}

mt_status edge_thin(uint8_t *img, int h, int w) {
    if (!img || h <= 0 || w <= 0) return MT_ERR_ARG;
    /* Can fail only for an uninitialised once-control, which this is not. */
    (void)pthread_once(&luts_once, build_luts);

    padded_shape s = {(size_t)h, (size_t)w, (size_t)w + 2};
    size_t rows = s.h + 2;
    if (s.stride > SIZE_MAX / rows) return MT_ERR_NOMEM;
    /* calloc: both frames start (and, never written, stay) background. */
    uint8_t *cur = calloc(rows * s.stride, 1), *next = calloc(rows * s.stride, 1);
    if (!cur || !next) {
        free(cur);
        free(next);
        return MT_ERR_NOMEM;
    }

    size_t points = 0;
    for (size_t y = 0; y < s.h; y++)
        for (size_t x = 0; x < s.w; x++) {
            uint8_t on = img[y * s.w + x] != 0;
            cur[(y + 1) * s.stride + x + 1] = on;
            points += on;
        }

    /* skimage stops when a full pass (both sub-iterations) leaves the number
     * of foreground points unchanged; since pixels are only ever deleted,
     * that is the same as a pass deleting nothing. */
    size_t before;
    do {
        before = points;
        points -= thin_subiteration(next, cur, s, delete_first);
        points -= thin_subiteration(cur, next, s, delete_second);
    } while (points != before);

    for (size_t y = 0; y < s.h; y++)
        memcpy(img + y * s.w, cur + (y + 1) * s.stride + 1, s.w);
    free(cur);
    free(next);
    return MT_OK;
}

/* ------------------------------------------------------------------ together */

mt_status edge_from_labelmap(uint8_t *out, const int32_t *labels, int h, int w) {
    mt_status st = edge_laplacian_mask(out, labels, h, w);
    if (st) return st;
    st = edge_thin(out, h, w);
    /* Never hand back a half-made target (the bare mask) on failure. */
    if (st) memset(out, 0, (size_t)h * (size_t)w);
    return st;
}
