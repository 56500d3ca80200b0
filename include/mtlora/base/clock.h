/* clock.h - the one monotonic clock every timing in mtlora reads. */
#ifndef MTLORA_CLOCK_H
#define MTLORA_CLOCK_H

#include <time.h>

/* Seconds on CLOCK_MONOTONIC (not wall time: immune to clock changes). */
static inline double mt_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#endif
