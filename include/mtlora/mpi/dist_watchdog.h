/* dist_watchdog.h - mtlora_dist's watchdog and test hooks (launch/).
 *
 * A rank whose peer died or hung waits forever inside a collective. A
 * thread per rank watches the time since the last progress mark and, past
 * RUN.STEP_TIMEOUT, says which rank gave up and where, and exits; mpirun
 * then ends the job. (It exits rather than calling MPI from a second thread:
 * MPI runs at MPI_THREAD_FUNNELED.) */
#ifndef MTLORA_DIST_WATCHDOG_H
#define MTLORA_DIST_WATCHDOG_H

#include <pthread.h>

typedef struct {
    pthread_mutex_t mu;
    double last;
    const char *where;
    int rank, timeout, stop;
    pthread_t thread;
    int started;
} watchdog;

/* Starts the thread (timeout_s 0: no thread, marks are free). */
void watchdog_start(watchdog *w, int rank, int timeout_s);
/* Progress: the time and what the rank is doing now (a string literal). */
void watchdog_mark(watchdog *w, const char *where);
void watchdog_stop(watchdog *w);

/* Test hooks (fault injection for tests/dist_test.py): 1 when env names
 * this rank and `step` is in its range. MTLORA_FAULT_HANG="rank:step",
 * MTLORA_FAULT_NAN="rank:first:count". */
int fault_pair(const char *env, int rank, long step);

#endif
