/* test_util.c - see test_util.h. */
#include "test_util.h"

#include <check.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mtlora/base/rng.h"

void fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * mt_rng_uniform(seed, i);
}

float *alloc_uniform(size_t n, uint64_t seed, float lo, float hi) {
    float *x = malloc(n * sizeof(float) + 1);
    if (!x) { fprintf(stderr, "out of memory\n"); exit(2); }
    fill_uniform(x, n, seed, lo, hi);
    return x;
}

float *alloc_zero(size_t n) {
    float *x = calloc(n + 1, sizeof(float));
    if (!x) { fprintf(stderr, "out of memory\n"); exit(2); }
    return x;
}

double max_rel_err(const float *a, const float *ref, size_t n) {
    double maxdiff = 0.0, maxref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (!(d <= maxdiff)) maxdiff = d; /* NaN propagates as failure */
        if (fabs((double)ref[i]) > maxref) maxref = fabs((double)ref[i]);
    }
    if (maxref == 0.0) return maxdiff;
    return maxdiff / maxref;
}

double dot_loss(const float *out, const float *r, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * r[i];
    return s;
}

int gradcheck(const char *op, const char *name, loss_fn loss, void *state, float *x,
              const float *analytic, size_t n, float eps, double tol, int samples) {
    double amax = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(analytic[i]) > amax) amax = fabs(analytic[i]);
    size_t step = n > (size_t)samples ? n / (size_t)samples : 1;
    int fails = 0;
    double worst = 0.0;
    for (size_t i = (step > 1 ? step / 2 : 0); i < n; i += step) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = loss(state);
        x[i] = keep - eps;
        double lm = loss(state);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * (double)eps);
        double ana = analytic[i];
        double err = fabs(num - ana) / (amax + fabs(ana) + 1e-30);
        if (err > worst) worst = err;
        if (!(fabs(num - ana) <= tol * (amax + fabs(ana)))) {
            if (fails < 5)
                fprintf(stderr, "gradcheck %s/%s: element %zu numeric %.6g analytic %.6g\n", op,
                        name, i, num, ana);
            fails++;
        }
    }
    loss(state); /* leave the forward state consistent with x */
    printf("gradcheck %-22s %-8s worst relative error %.2e\n", op, name, worst);
    return fails;
}

mt_ctx *test_ctx(void) {
    mt_ctx *ctx = NULL;
    char err[256];
    if (mt_ctx_create(&ctx, err, sizeof err) != MT_OK) {
        fprintf(stderr, "cannot create context: %s\n", err);
        exit(2);
    }
    return ctx;
}

int run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
