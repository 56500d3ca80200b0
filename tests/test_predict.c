/* test_predict.c - predictions as pictures: the VOC colour map and the
 * normals colouring (known values, and the official code's on
 * $MTLORA_PREDICT_CASES, tests/reference/predict_reference.py), OpenCV's
 * INTER_LINEAR, each task's maps from logits at the image's own size
 * against torch + cv2 (the official get_output, resize and astype), the
 * panel layout, any JPEG/PNG as RGB, the validation transform and its
 * inverse, one image's files, and mtlora-predict's input listing. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtlora/data/label_colors.h"
#include "mtlora/data/prediction_maps.h"
#include "mtlora/io/image_panel.h"
#include "mtlora/train/predict.h"
#include "tensor_bundle.h"

static char err[2048];
static tensor_bundle cases;
static int have_cases;

static void load_cases(void) {
    const char *dir = getenv("MTLORA_PREDICT_CASES");
    char path[1024];
    snprintf(path, sizeof path, "%s/predict_cases.bundle", dir ? dir : ".");
    have_cases = bundle_load(&cases, path, err, sizeof err) == 0;
    if (!have_cases) fprintf(stderr, "test_predict: %s\n", err);
}

static const bundle_tensor *need(const char *name) {
    ck_assert_msg(have_cases, "no reference cases: run tests/reference/predict_reference.py");
    const bundle_tensor *t = bundle_get(&cases, name);
    ck_assert_msg(t != NULL, "reference case %s missing", name);
    return t;
}

/* ---- colours ------------------------------------------------------------ */

START_TEST(voc_known_labels) {
    uint8_t c[3];
    const uint8_t want[][4] = {{0, 0, 0, 0},       {1, 128, 0, 0},     {2, 0, 128, 0},   {3, 128, 128, 0},
                               {5, 128, 0, 128},   {6, 0, 128, 128},   {7, 128, 128, 128}, {15, 192, 128, 128},
                               {20, 0, 64, 128},   {255, 224, 224, 192}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        label_voc_color(want[i][0], c);
        ck_assert_msg(c[0] == want[i][1] && c[1] == want[i][2] && c[2] == want[i][3],
                      "VOC colour of %d is (%d, %d, %d)", want[i][0], c[0], c[1], c[2]);
    }
    const bundle_tensor *voc = need("voc");
    for (int i = 0; i < 256; i++) {
        label_voc_color((uint8_t)i, c);
        for (int k = 0; k < 3; k++) ck_assert_int_eq(c[k], (int)voc->data[3 * i + k]);
    }
    uint8_t labels[3] = {15, 0, 1}, rgb[9];
    label_colorize(labels, 3, rgb);
    ck_assert(rgb[0] == 192 && rgb[1] == 128 && rgb[2] == 128 && rgb[3] == 0 && rgb[6] == 128 && rgb[8] == 0);
}
END_TEST

START_TEST(normals_known_vectors) {
    uint8_t c[3];
    label_normal_color(0, 0, 1, c); /* (0 + 1) * 255 / 2 = 127.5 -> 127; 255 */
    ck_assert(c[0] == 127 && c[1] == 127 && c[2] == 255);
    label_normal_color(0, 0, 7.5f, c); /* unit-normalised first */
    ck_assert(c[0] == 127 && c[1] == 127 && c[2] == 255);
    label_normal_color(-1, 0, 0, c);
    ck_assert(c[0] == 0 && c[1] == 127 && c[2] == 127);
    label_normal_color(0, 3, 4, c); /* (0, .6, .8): 127.5, 204, 229.5 */
    ck_assert(c[0] == 127 && c[1] == 204 && c[2] == 229);
    label_normal_color(0, 0, 0, c);
    ck_assert(c[0] == 127 && c[1] == 127 && c[2] == 127);
    const bundle_tensor *v = need("normal_vectors"), *want = need("normal_colors");
    for (int i = 0; i < (int)v->dims[0]; i++) {
        label_normal_color(v->data[3 * i], v->data[3 * i + 1], v->data[3 * i + 2], c);
        for (int k = 0; k < 3; k++)
            ck_assert_msg(c[k] == (int)want->data[3 * i + k], "vector %d channel %d: %d, official %d", i, k,
                          c[k], (int)want->data[3 * i + k]);
    }
}
END_TEST

/* ---- maps against torch + cv2 -------------------------------------------- */

START_TEST(resize_linear_as_opencv) {
    int exact = 0, total = 0;
    for (int k = 0;; k++) {
        char n[64];
        snprintf(n, sizeof n, "resize%d.src", k);
        if (!bundle_get(&cases, n)) break;
        const bundle_tensor *s = need(n);
        snprintf(n, sizeof n, "resize%d.dst", k);
        const bundle_tensor *d = need(n);
        float *out = malloc(sizeof(float) * d->count);
        ck_assert_int_eq(pred_resize_linear(s->data, (int)s->dims[0], (int)s->dims[1], (int)s->dims[2], out,
                                            (int)d->dims[0], (int)d->dims[1]),
                         MT_OK);
        for (size_t i = 0; i < d->count; i++) {
            ck_assert_msg(fabsf(out[i] - d->data[i]) <= 1e-3f, "case %d element %zu: %g, cv2 %g", k, i,
                          (double)out[i], (double)d->data[i]);
            exact += out[i] == d->data[i];
        }
        total += (int)d->count;
        free(out);
    }
    ck_assert_int_gt(total, 0);
    printf("resize_linear: %d of %d values bit-identical to cv2.resize\n", exact, total);
    ck_assert_int_eq(pred_resize_linear(NULL, 1, 1, 1, NULL, 1, 1), MT_ERR_ARG);
}
END_TEST

/* uint8 maps: equal, or (floats rounding differently on another CPU) off
 * by one at a few pixels. */
static void same_u8(const char *what, const uint8_t *got, const bundle_tensor *want, int exact) {
    size_t off = 0;
    for (size_t i = 0; i < want->count; i++) {
        const int d = abs((int)got[i] - (int)want->data[i]);
        ck_assert_msg(d <= (exact ? 0 : 1), "%s pixel %zu: %d, official %d", what, i, got[i], (int)want->data[i]);
        off += d != 0;
    }
    ck_assert_msg(off * 200 <= want->count, "%s: %zu of %zu pixels off by one", what, off, want->count);
}

START_TEST(maps_as_official) {
    char n[64];
    for (int k = 0;; k++) {
        snprintf(n, sizeof n, "labels%d.logits", k);
        if (!bundle_get(&cases, n)) break;
        const bundle_tensor *lg = need(n);
        snprintf(n, sizeof n, "labels%d.out", k);
        const bundle_tensor *want = need(n);
        uint8_t *got = malloc(want->count);
        ck_assert_int_eq(pred_labels(lg->data, (int)lg->dims[0], (int)lg->dims[1], (int)want->dims[0],
                                     (int)want->dims[1], got),
                         MT_OK);
        same_u8(n, got, want, 1);
        free(got);
    }
    for (int k = 0;; k++) {
        snprintf(n, sizeof n, "sal%d.logit", k);
        if (!bundle_get(&cases, n)) break;
        const bundle_tensor *lg = need(n);
        snprintf(n, sizeof n, "sal%d.gray", k);
        const bundle_tensor *gray = need(n);
        snprintf(n, sizeof n, "sal%d.mask", k);
        const bundle_tensor *mask = need(n);
        uint8_t *g = malloc(gray->count), *m = malloc(gray->count);
        ck_assert_int_eq(pred_probability(lg->data, (int)lg->dims[1], (int)gray->dims[0], (int)gray->dims[1], g, m),
                         MT_OK);
        same_u8("sal gray", g, gray, 0);
        same_u8("sal mask", m, mask, 0);
        free(g), free(m);
    }
    for (int k = 0;; k++) {
        snprintf(n, sizeof n, "normals%d.logits", k);
        if (!bundle_get(&cases, n)) break;
        const bundle_tensor *lg = need(n);
        snprintf(n, sizeof n, "normals%d.rgb", k);
        const bundle_tensor *want = need(n);
        uint8_t *got = malloc(want->count);
        ck_assert_int_eq(pred_normals(lg->data, (int)lg->dims[1], (int)want->dims[0], (int)want->dims[1], got), MT_OK);
        same_u8(n, got, want, 0);
        free(got);
    }
}
END_TEST

/* ---- panels ----------------------------------------------------------------- */

static mt_image8 filled(int h, int w, int c, uint8_t base) {
    mt_image8 im = {h, w, c, malloc((size_t)h * w * c)};
    for (int i = 0; i < h * w * c; i++) im.data[i] = (uint8_t)(base + i);
    return im;
}

START_TEST(panel_layout) {
    mt_image8 t[3] = {filled(4, 5, 3, 10), filled(4, 7, 1, 100), filled(4, 3, 3, 200)};
    mt_image8 p;
    ck_assert_int_eq(img_panel_compose(t, 3, 4, 255, &p, err, sizeof err), MT_OK);
    ck_assert_int_eq(p.w, 5 + 7 + 3 + 2 * 4);
    ck_assert_int_eq(p.h, 4);
    ck_assert_int_eq(p.c, 3);
    for (int y = 0; y < 4; y++) {
        const uint8_t *row = p.data + (size_t)y * p.w * 3;
        for (int x = 0; x < 5; x++)
            for (int k = 0; k < 3; k++) ck_assert_int_eq(row[3 * x + k], t[0].data[(y * 5 + x) * 3 + k]);
        for (int x = 5; x < 9; x++)
            for (int k = 0; k < 3; k++) ck_assert_int_eq(row[3 * x + k], 255); /* the gap */
        for (int x = 0; x < 7; x++) /* a gray tile, replicated */
            for (int k = 0; k < 3; k++) ck_assert_int_eq(row[3 * (9 + x) + k], t[1].data[y * 7 + x]);
        for (int x = 0; x < 3; x++)
            for (int k = 0; k < 3; k++) ck_assert_int_eq(row[3 * (20 + x) + k], t[2].data[(y * 3 + x) * 3 + k]);
    }
    img_free(&p);
    mt_image8 other = filled(5, 2, 3, 0);
    mt_image8 bad[2] = {t[0], other};
    ck_assert_int_eq(img_panel_compose(bad, 2, 4, 255, &p, err, sizeof err), MT_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err, "tile 1 is 5 high"));
    ck_assert_ptr_null(p.data);
    ck_assert_int_eq(img_panel_compose(t, 0, 4, 255, &p, err, sizeof err), MT_ERR_ARG);
    img_free(&other);
    for (int i = 0; i < 3; i++) img_free(&t[i]);
}
END_TEST

/* ---- files ------------------------------------------------------------------ */

static char tmpdir[512];

static void make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/mtlora_predict_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char p[1024];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (!lstat(p, &sb) && S_ISDIR(sb.st_mode)) remove_tree(p);
        else remove(p);
    }
    closedir(d);
    rmdir(dir);
}

static const char *in_tmp(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
    return buf;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(read_any_image_as_rgb) {
    make_tmpdir();
    char p[1024];
    mt_image8 gray = filled(6, 5, 1, 3), rgb, got;
    ck_assert_int_eq(img_png_write(in_tmp(p, sizeof p, "g.png"), &gray, 0, err, sizeof err), MT_OK);
    ck_assert_int_eq(img_read_rgb(p, &got, err, sizeof err), MT_OK);
    ck_assert(got.c == 3 && got.h == 6 && got.w == 5);
    for (int i = 0; i < 30; i++)
        ck_assert(got.data[3 * i] == gray.data[i] && got.data[3 * i + 1] == gray.data[i] && got.data[3 * i + 2] == gray.data[i]);
    img_free(&got);
    /* a palette PNG holds indices, not colours: refused by name */
    ck_assert_int_eq(img_png_write(in_tmp(p, sizeof p, "pal.png"), &gray, 1, err, sizeof err), MT_OK);
    ck_assert_int_eq(img_read_rgb(p, &got, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err, "pal.png"));
    ck_assert_ptr_nonnull(strstr(err, "palette"));
    ck_assert_ptr_null(got.data);
    /* JPEG by content, whatever the name */
    rgb = filled(9, 11, 3, 0);
    ck_assert_int_eq(img_jpeg_write(in_tmp(p, sizeof p, "photo.png"), &rgb, 95, err, sizeof err), MT_OK);
    ck_assert_int_eq(img_read_rgb(p, &got, err, sizeof err), MT_OK);
    ck_assert(got.c == 3 && got.h == 9 && got.w == 11);
    img_free(&got);
    write_text(in_tmp(p, sizeof p, "notes.jpg"), "not an image\n");
    ck_assert_int_eq(img_read_rgb(p, &got, err, sizeof err), MT_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err, "notes.jpg: not a JPEG or PNG file"));
    ck_assert_int_eq(img_read_rgb(in_tmp(p, sizeof p, "missing.png"), &got, err, sizeof err), MT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "missing.png"));
    img_free(&gray);
    img_free(&rgb);
    remove_tree(tmpdir);
}
END_TEST

START_TEST(transform_and_inverse) {
    /* S x S in: the validation resize is a copy, so Normalize's inverse gives the pixels back */
    const int S = 16;
    mt_image8 rgb = filled(S, S, 3, 7);
    float *x = malloc(sizeof(float) * 3 * S * S);
    ck_assert_int_eq(predict_input(&rgb, S, x, err, sizeof err), MT_OK);
    ck_assert(fabsf(x[0] - ((7.0f / 255.0f - 0.485f) / 0.229f)) < 1e-6f);
    mt_image8 back;
    ck_assert_int_eq(predict_unnormalize(x, S, &back, err, sizeof err), MT_OK);
    ck_assert(back.h == S && back.w == S && back.c == 3);
    ck_assert_mem_eq(back.data, rgb.data, (size_t)3 * S * S);
    /* another size: resized to S x S */
    mt_image8 odd = filled(37, 53, 3, 0);
    ck_assert_int_eq(predict_input(&odd, S, x, err, sizeof err), MT_OK);
    img_free(&odd);
    img_free(&back);
    img_free(&rgb);
    free(x);
}
END_TEST

/* What predict_render reads of a config: the size and the tasks. */
static mt_config tiny_config(void) {
    mt_config c;
    memset(&c, 0, sizeof c);
    c.img_size = 24;
    const char *names[] = {"semseg", "human_parts", "sal", "normals", "edge"};
    const mt_task_kind kinds[] = {MT_TASK_SEMSEG, MT_TASK_HUMAN_PARTS, MT_TASK_SAL, MT_TASK_NORMALS, MT_TASK_EDGE};
    const int outputs[] = {21, 7, 1, 3, 1};
    c.ntasks = 5;
    for (int t = 0; t < 5; t++) {
        snprintf(c.tasks[t], sizeof c.tasks[t], "%s", names[t]);
        c.task_kind[t] = kinds[t];
        c.num_outputs[t] = outputs[t];
    }
    return c;
}

START_TEST(one_image_files) {
    make_tmpdir();
    mt_config c = tiny_config();
    const int S = c.img_size, h = 53, w = 37;
    predict_task_image outs[MT_MAX_TASKS];
    float *lg = malloc(sizeof(float) * 21 * S * S);
    for (int i = 0; i < 21 * S * S; i++) lg[i] = (float)((i * 7919) % 101) / 10.0f - 5.0f;
    for (int t = 0; t < c.ntasks; t++)
        ck_assert_int_eq(predict_render(&c, t, lg, h, w, &outs[t], err, sizeof err), MT_OK);
    mt_image8 input = filled(h, w, 3, 1);
    char panel[1024], dir[1024], p[1200];
    ck_assert_int_eq(predict_write(&input, outs, c.ntasks, in_tmp(panel, sizeof panel, "x.png"),
                                   in_tmp(dir, sizeof dir, "x"), err, sizeof err),
                     MT_OK);
    mt_image8 got;
    ck_assert_int_eq(img_png_read(panel, &got, err, sizeof err), MT_OK);
    ck_assert_int_eq(got.w, (1 + c.ntasks) * w + c.ntasks * IMG_PANEL_GAP);
    ck_assert(got.h == h && got.c == 3);
    img_free(&got);
    const char *files[] = {"semseg", "semseg_labels", "human_parts", "human_parts_labels", "sal",
                           "sal_mask", "normals", "edge"};
    const int chans[] = {1, 1, 1, 1, 1, 1, 3, 1};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s.png", dir, files[i]);
        ck_assert_msg(img_png_read(p, &got, err, sizeof err) == MT_OK, "%s", err);
        ck_assert_msg(got.h == h && got.w == w && got.c == chans[i], "%s is %dx%dx%d", p, got.w, got.h, got.c);
        if (!strcmp(files[i], "semseg") || !strcmp(files[i], "semseg_labels")) /* palette indices = labels */
            ck_assert_mem_eq(got.data, outs[0].value.data, (size_t)h * w);
        img_free(&got);
    }
    /* a folder that cannot be made: an error naming it, no panel */
    write_text(in_tmp(p, sizeof p, "file"), "x");
    char bad[1300];
    snprintf(bad, sizeof bad, "%s/sub", p);
    ck_assert_int_ne(predict_write(&input, outs, c.ntasks, panel, bad, err, sizeof err), MT_OK);
    ck_assert_ptr_nonnull(strstr(err, "file"));
    for (int t = 0; t < c.ntasks; t++) predict_task_image_free(&outs[t]);
    img_free(&input);
    free(lg);
    remove_tree(tmpdir);
}
END_TEST

START_TEST(input_listing) {
    make_tmpdir();
    char p[1024];
    mt_image8 g = filled(4, 4, 1, 0);
    const char *names[] = {"b.jpg", "A.PNG", "c.jpeg", "b.png"};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(img_png_write(in_tmp(p, sizeof p, names[i]), &g, 0, err, sizeof err), MT_OK);
    write_text(in_tmp(p, sizeof p, "notes.txt"), "x");
    write_text(in_tmp(p, sizeof p, ".hidden.jpg"), "x");
    mkdir(in_tmp(p, sizeof p, "sub.jpg"), 0755);
    char extra[1024];
    in_tmp(extra, sizeof extra, "notes.txt");
    const char *args[] = {tmpdir, extra, "/nonexistent/x.jpg"};
    predict_file *f;
    int n;
    ck_assert_int_eq(predict_list_inputs(args, 3, &f, &n, err, sizeof err), MT_OK);
    ck_assert_int_eq(n, 6); /* 4 images of the folder, sorted, then the two files as given */
    const char *want_name[] = {"A", "b", "b-2", "c", "notes", "x"};
    for (int i = 0; i < n; i++) ck_assert_str_eq(f[i].name, want_name[i]);
    ck_assert_ptr_nonnull(strstr(f[0].path, "A.PNG"));
    ck_assert_ptr_nonnull(strstr(f[1].path, "b.jpg"));
    ck_assert_ptr_nonnull(strstr(f[2].path, "b.png"));
    ck_assert_str_eq(f[5].path, "/nonexistent/x.jpg");
    free(f);
    img_free(&g);
    remove_tree(tmpdir);
}
END_TEST

static Suite *predict_suite(void) {
    Suite *s = suite_create("predict");
    TCase *tc = tcase_create("colours_and_maps");
    tcase_add_unchecked_fixture(tc, load_cases, NULL);
    tcase_add_test(tc, voc_known_labels);
    tcase_add_test(tc, normals_known_vectors);
    tcase_add_test(tc, resize_linear_as_opencv);
    tcase_add_test(tc, maps_as_official);
    tcase_add_test(tc, panel_layout);
    suite_add_tcase(s, tc);
    TCase *files = tcase_create("files");
    tcase_add_test(files, read_any_image_as_rgb);
    tcase_add_test(files, transform_and_inverse);
    tcase_add_test(files, one_image_files);
    tcase_add_test(files, input_listing);
    suite_add_tcase(s, files);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(predict_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (have_cases) bundle_free(&cases);
    return failed ? 1 : 0;
}
