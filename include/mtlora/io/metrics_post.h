/* metrics_post.h - sends metric records (JSON) to an HTTP endpoint from a
 * background thread with libcurl, so that a slow or dead endpoint never
 * stalls training: metrics_post_send only queues (a bounded queue; when it
 * is full the oldest record is dropped and counted). Each record is POSTed
 * as application/json with a per-request timeout; with a token, an
 * "Authorization: Bearer <token>" header is sent (the token is never
 * printed or logged). Failures are counted; the first and every 100th is
 * reported on stderr. */
#ifndef MTLORA_METRICS_POST_H
#define MTLORA_METRICS_POST_H

#include <stddef.h>
#include "mtlora/base/status.h"

typedef struct metrics_post metrics_post;

typedef struct {
    long posted, failed, dropped;
} metrics_post_stats;

/* token may be NULL. timeout_s per request (e.g. 5). */
mt_status metrics_post_start(metrics_post **p, const char *url, const char *token,
                             double timeout_s, size_t queue_max, char *err, size_t errlen);
/* Queues a copy of json; never blocks on the network. */
void metrics_post_send(metrics_post *p, const char *json);
/* Waits up to wait_s for the queue to drain, then stops the thread. */
metrics_post_stats metrics_post_stop(metrics_post *p, double wait_s);

#endif
