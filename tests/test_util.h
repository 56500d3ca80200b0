/* test_util.h - helpers shared by the Check suites: random data, relative
 * errors and the central-difference gradient check. */
#ifndef MTLORA_TEST_UTIL_H
#define MTLORA_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/ops/context.h"

/* Uniform values in [lo, hi), reproducible from seed. */
void fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);
float *alloc_uniform(size_t n, uint64_t seed, float lo, float hi);
float *alloc_zero(size_t n);

/* max|a - ref| / max|ref| (0 when both are zero). */
double max_rel_err(const float *a, const float *ref, size_t n);

/* sum_i out[i] * r[i] in double: the scalar loss whose gradient wrt out is r. */
double dot_loss(const float *out, const float *r, size_t n);

/* Central-difference check of one tensor's analytic gradient.
 * loss(state) must recompute the forward with the current values of x.
 * Checks up to `samples` elements spread over x. An element fails when
 * |num - ana| > tol * (max|ana over x| + |ana|). Returns the number of
 * failures and prints the worst error, tagged with `op` and `name`. */
typedef double (*loss_fn)(void *state);
int gradcheck(const char *op, const char *name, loss_fn loss, void *state, float *x,
              const float *analytic, size_t n, float eps, double tol, int samples);

/* Runs a Check suite and returns the process exit status. */
struct Suite;
int run_suite(struct Suite *s);

/* A context or abort the test program with the reason. */
mt_ctx *test_ctx(void);

#endif
