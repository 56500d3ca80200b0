/* dist_watchdog.c - see dist_watchdog.h. */
#include "mtlora/base/clock.h"
#include "mtlora/mpi/dist_watchdog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void watchdog_mark(watchdog *w, const char *where) {
    pthread_mutex_lock(&w->mu);
    w->last = mt_now_s();
    w->where = where;
    pthread_mutex_unlock(&w->mu);
}

static void *watchdog_main(void *arg) {
    watchdog *w = arg;
    for (;;) {
        sleep(1);
        pthread_mutex_lock(&w->mu);
        const int stop = w->stop;
        const double idle = mt_now_s() - w->last;
        const char *where = w->where;
        pthread_mutex_unlock(&w->mu);
        if (stop) return NULL;
        if (idle > w->timeout) {
            fprintf(stderr, "mtlora_dist: rank %d: no progress for %.0f s (RUN.STEP_TIMEOUT %d) while "
                            "%s: a peer rank is lost or hung; stopping the job\n",
                    w->rank, idle, w->timeout, where);
            fflush(stderr);
            _exit(4);
        }
    }
}

/* Test hooks (fault injection for tests/dist_test.py): MTLORA_FAULT_HANG=
 * "rank:step" makes that rank stop responding at that step;
 * MTLORA_FAULT_NAN="rank:first:count" poisons that rank's gradients for
 * `count` steps from `first`. */
int fault_pair(const char *env, int rank, long step) {
    const char *v = getenv(env);
    int r;
    long first, count = 1;
    if (!v || sscanf(v, "%d:%ld:%ld", &r, &first, &count) < 2) return 0;
    return r == rank && step >= first && step < first + count;
}


void watchdog_start(watchdog *w, int rank, int timeout_s) {
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    w->rank = rank;
    w->timeout = timeout_s;
    watchdog_mark(w, "starting up");
    if (timeout_s > 0 && pthread_create(&w->thread, NULL, watchdog_main, w) == 0) w->started = 1;
}

void watchdog_stop(watchdog *w) {
    if (!w->started) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->started = 0;
}
