/* metrics_post.c - see metrics_post.h. */
#include "mtlora/io/metrics_post.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct metrics_post {
    char *url;
    char *auth; /* "Authorization: Bearer ..." or NULL */
    long timeout_ms;
    char **queue;
    size_t cap, head, count;
    int stop;
    metrics_post_stats st;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
};

static size_t discard(char *ptr, size_t size, size_t n, void *user) {
    (void)ptr;
    (void)user;
    return size * n;
}

static int post_one(metrics_post *p, CURL *c, const char *json, char *why, size_t whylen) {
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (p->auth) h = curl_slist_append(h, p->auth);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, p->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM in a threaded program */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) snprintf(why, whylen, "%s", curl_easy_strerror(rc));
    else if (code < 200 || code >= 300) snprintf(why, whylen, "HTTP status %ld", code);
    else return 0;
    return -1;
}

static void *sender(void *arg) {
    metrics_post *p = arg;
    CURL *c = curl_easy_init();
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->count == 0) pthread_cond_wait(&p->cv, &p->mu);
        if (p->count == 0) { /* stopping and drained */
            pthread_mutex_unlock(&p->mu);
            break;
        }
        char *json = p->queue[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        pthread_mutex_unlock(&p->mu);
        char why[256];
        const int bad = !c || post_one(p, c, json, why, sizeof why);
        free(json);
        pthread_mutex_lock(&p->mu);
        if (bad) {
            p->st.failed++;
            if (p->st.failed == 1 || p->st.failed % 100 == 0)
                fprintf(stderr, "mtlora_dist: metrics endpoint: %ld failed posts (last: %s)\n",
                        p->st.failed, c ? why : "curl_easy_init failed");
        } else {
            p->st.posted++;
        }
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    if (c) curl_easy_cleanup(c);
    return NULL;
}

mt_status metrics_post_start(metrics_post **out, const char *url, const char *token,
                             double timeout_s, size_t queue_max, char *err, size_t errlen) {
    *out = NULL;
    if (!url || strncmp(url, "http", 4) || queue_max < 1)
        return mt_errf(err, errlen, MT_ERR_ARG, "--metrics-url: '%s' is not an http(s) URL",
                       url ? url : "");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return mt_errf(err, errlen, MT_ERR_IO, "--metrics-url: libcurl failed to initialise");
    metrics_post *p = calloc(1, sizeof *p);
    if (!p) return mt_errf(err, errlen, MT_ERR_NOMEM, "out of memory");
    p->url = strdup(url);
    p->cap = queue_max;
    p->queue = calloc(queue_max, sizeof(char *));
    p->timeout_ms = (long)(timeout_s * 1000);
    if (token && token[0]) {
        const size_t n = strlen(token) + 32;
        p->auth = malloc(n);
        if (p->auth) snprintf(p->auth, n, "Authorization: Bearer %s", token);
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (!p->url || !p->queue || (token && token[0] && !p->auth) ||
        pthread_create(&p->thread, NULL, sender, p) != 0) {
        free(p->url);
        free(p->queue);
        free(p->auth);
        free(p);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "--metrics-url: cannot start the sender");
    }
    *out = p;
    return MT_OK;
}

void metrics_post_send(metrics_post *p, const char *json) {
    if (!p) return;
    char *copy = strdup(json);
    if (!copy) return;
    pthread_mutex_lock(&p->mu);
    if (p->count == p->cap) { /* full: drop the oldest, never wait */
        free(p->queue[p->head]);
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->st.dropped++;
    }
    p->queue[(p->head + p->count) % p->cap] = copy;
    p->count++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

metrics_post_stats metrics_post_stop(metrics_post *p, double wait_s) {
    metrics_post_stats st = {0, 0, 0};
    if (!p) return st;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)wait_s;
    pthread_mutex_lock(&p->mu);
    while (p->count > 0)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &until) != 0) break;
    /* Whatever is still queued is dropped: the job must end. */
    while (p->count > 0) {
        free(p->queue[p->head]);
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->st.dropped++;
    }
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL); /* at most one request's timeout */
    st = p->st;
    free(p->url);
    free(p->queue);
    if (p->auth) {
        memset(p->auth, 0, strlen(p->auth)); /* the token does not linger */
        free(p->auth);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
    curl_global_cleanup();
    return st;
}
