/* shard_loader.c - one background thread reads, decodes and augments the
 * rank's next batches into a ring of slots while the trainer computes
 * (shard_loader.h). The consumer holds one slot at a time; the producer
 * fills the others in order. */
#include "mtlora/base/clock.h"
#include "mtlora/io/shards/shard_loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mtlora/data/augment.h"
#include "mtlora/io/image_codec.h"
#include "mtlora/base/rng.h"
#include "mtlora/io/shards/shard.h"

#define ERRLEN 1024
#define BAD_MSG_LEN 4096
/* Records tried in place of a bad one before the pass gives up: a shard
 * that is damaged as a whole should stop the run, not be read m^2 times. */
#define MAX_REPLACE_TRIES 64

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_HELD, SLOT_ERROR, SLOT_END };

typedef struct {
    enum slot_state state;
    loader_batch b;
    char err[ERRLEN];
    char bad_msg[BAD_MSG_LEN]; /* b.bad_msg */
    mt_status st;
} slot;

struct shard_loader {
    loader_opts o;
    loader_train_opts t;
    char dir[4096], split[16];
    int nshards;
    shard_file **shards;
    int64_t n;          /* records */
    int32_t *rec_shard; /* record -> shard */
    int64_t *rec_local; /* record -> index in shard */
    int64_t per_epoch;  /* batches per epoch for this rank (training: a multiple of group) */
    int nslots;
    slot *slots;
    int64_t produced, consumed; /* sequence numbers */
    int held;                   /* slot held by the consumer, -1 none */
    int stop;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* ---------------------------------------------------------- manifest */

/* The split's manifest through the project's one manifest parser
 * (shard_manifest_read: every field once, every shard once, plain names,
 * counts adding up), each shard checked against its entry and for the
 * tasks training needs, and no image id twice in the split. */
static mt_status read_manifest(shard_loader *L, char *err, size_t errlen) {
    shard_manifest man;
    mt_status st = shard_manifest_read(L->dir, L->split, &man, err, errlen);
    if (st) return st;
    L->shards = calloc((size_t)(man.nshards ? man.nshards : 1), sizeof(shard_file *));
    if (!L->shards) st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", man.path);
    for (int k = 0; !st && k < man.nshards; k++) {
        const shard_manifest_entry *e = &man.shards[k];
        char sp[8400];
        snprintf(sp, sizeof sp, "%s/%s", L->dir, e->name);
        shard_file *sf;
        st = shard_open(&sf, sp, err, errlen);
        if (st) break;
        L->shards[L->nshards++] = sf;
        st = shard_check_listed(sf, &man, e, err, errlen);
        const shard_info *in = shard_file_info(sf);
        if (!st && (in->tasks & L->o.tasks) != L->o.tasks) {
            char have[96], want[96];
            shard_tasks_format(in->tasks, have, sizeof have);
            shard_tasks_format(L->o.tasks, want, sizeof want);
            st = mt_errf(err, errlen, MT_ERR_FORMAT,
                         "%s: attribute tasks: %s, training needs %s (repack with --tasks)", sp, have, want);
        }
    }
    shard_manifest_free(&man);
    if (!st) st = shard_check_unique_ids(L->shards, L->nshards, err, errlen);
    if (st) return st;
    int64_t total = 0;
    for (int k = 0; k < L->nshards; k++) total += shard_file_info(L->shards[k])->nrecords;
    L->n = total;
    L->rec_shard = malloc(sizeof(int32_t) * (size_t)(total ? total : 1));
    L->rec_local = malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
    if (!L->rec_shard || !L->rec_local)
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s/%s: out of memory for the index of %lld records", L->dir,
                       L->split, (long long)total);
    int64_t g = 0;
    for (int k = 0; k < L->nshards; k++)
        for (int64_t i = 0; i < shard_file_info(L->shards[k])->nrecords; i++, g++) {
            L->rec_shard[g] = k;
            L->rec_local[g] = i;
        }
    return MT_OK;
}

/* ---------------------------------------------------------- partition */

/* The records of this rank for an epoch, in batch order; returns the count. */
static int64_t rank_records(const shard_loader *L, int64_t epoch, int64_t *out, int64_t *perm) {
    const int64_t n = L->n;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    if (L->o.train) { /* Fisher-Yates from (seed, epoch) */
        const uint64_t s = mt_rng_mix64(L->o.seed ^ mt_rng_mix64((uint64_t)epoch + 0x5851f42dULL));
        for (int64_t i = n - 1; i > 0; i--) {
            const int64_t j = (int64_t)(mt_rng_bits(s, (uint64_t)i) % (uint64_t)(i + 1));
            const int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
    }
    const int64_t usable = L->o.train ? n / L->o.world * L->o.world : n;
    int64_t m = 0;
    for (int64_t p = L->o.rank; p < usable; p += L->o.world) out[m++] = perm[p];
    return m;
}

static double draw_uniform(uint64_t s, uint64_t counter) {
    return (double)(mt_rng_bits(s, counter) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------- producer */

static mt_status fill_sample(shard_loader *L, int64_t epoch, int64_t rec, loader_batch *b, int k,
                             char *err, size_t errlen) {
    shard_file *sf = L->shards[L->rec_shard[rec]];
    shard_record r;
    /* Read everything the shard holds so the record checksum is verified. */
    mt_status st = shard_read(sf, L->rec_local[rec], SHARD_ALL_TASKS, &r, err, errlen);
    if (st) return st;
    mt_image8 img = {0};
    char what[4400]; /* the shard file and its record number, as shard_read names them */
    snprintf(what, sizeof what, "%s record %lld (%s) image_jpeg", shard_file_path(sf),
             (long long)L->rec_local[rec], r.id);
    st = img_jpeg_decode(r.jpeg, r.jpeg_bytes, &img, what, err, errlen);
    if (!st && (img.h != r.h || img.w != r.w))
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s decodes to %dx%d, the shard index says %dx%d",
                     what, img.h, img.w, r.h, r.w);
    if (!st) {
        const int S = L->o.size;
        const size_t px = (size_t)S * S;
        aug_record ar = {r.h, r.w, img.data, r.semseg, r.human_parts, r.sal, r.edge, r.normals,
                         r.normals_mask};
        aug_output out = {b->images + (size_t)k * 3 * px,
                          b->semseg ? b->semseg + (size_t)k * px : NULL,
                          b->human_parts ? b->human_parts + (size_t)k * px : NULL,
                          b->sal ? b->sal + (size_t)k * px : NULL,
                          b->edge ? b->edge + (size_t)k * px : NULL,
                          b->normals ? b->normals + (size_t)k * 3 * px : NULL};
        aug_draw d;
        if (L->o.train) {
            const uint64_t s = mt_rng_mix64(L->o.seed + 0x632be59bd9b4e019ULL * (uint64_t)(epoch + 1));
            d = aug_draw_from_uniforms(draw_uniform(s, 3 * (uint64_t)rec),
                                       draw_uniform(s, 3 * (uint64_t)rec + 1),
                                       draw_uniform(s, 3 * (uint64_t)rec + 2));
        }
        st = aug_apply(&ar, L->o.train ? &d : NULL, S, &out);
        if (st) mt_errf(err, errlen, st, "%s: augmentation failed", what);
    }
    img_free(&img);
    shard_record_free(&r);
    return st;
}

/* Sample k of slot s from position j of this rank's order `mine` (m
 * records). A record failing its checks (MT_ERR_FORMAT) with replace_bad:
 * the next records of the order are tried until one passes, the batch
 * records it in nbad and bad_msg, and the pass goes on. Any other error, or
 * MAX_REPLACE_TRIES failures in a row, is the pass's error (in s->err). */
static mt_status fill_or_replace(shard_loader *L, int64_t epoch, const int64_t *mine, int64_t m,
                                 int64_t j, slot *s, int k) {
    loader_batch *b = &s->b;
    b->records[k] = mine[j];
    mt_status st = fill_sample(L, epoch, mine[j], b, k, s->err, ERRLEN);
    if (!st || st != MT_ERR_FORMAT || !L->t.replace_bad || !L->o.train) return st;
    char why[ERRLEN];
    for (int64_t t = 1; t < m && t <= MAX_REPLACE_TRIES; t++) {
        const int64_t rep = mine[(j + t) % m];
        st = fill_sample(L, epoch, rep, b, k, why, sizeof why);
        if (st == MT_OK) {
            b->records[k] = rep;
            b->nbad++;
            const size_t used = strlen(s->bad_msg);
            snprintf(s->bad_msg + used, sizeof s->bad_msg - used, "%s (record %lld of the split)\n",
                     s->err, (long long)mine[j]);
            s->err[0] = 0;
            return MT_OK;
        }
        if (st != MT_ERR_FORMAT) {
            snprintf(s->err, ERRLEN, "%s", why);
            return st;
        }
    }
    const size_t used = strlen(s->err);
    snprintf(s->err + used, ERRLEN - used, "; and the next %lld records of rank %d fail their checks too",
             (long long)(m - 1 < MAX_REPLACE_TRIES ? m - 1 : MAX_REPLACE_TRIES), L->o.rank);
    return MT_ERR_FORMAT;
}

/* Waits for slot q % nslots to be free; returns it, or NULL when stopping. */
static slot *claim_slot(shard_loader *L, int64_t q) {
    slot *s = &L->slots[q % L->nslots];
    pthread_mutex_lock(&L->mu);
    while (!L->stop && s->state != SLOT_FREE) pthread_cond_wait(&L->cv, &L->mu);
    if (L->stop) s = NULL;
    else s->state = SLOT_FILLING;
    pthread_mutex_unlock(&L->mu);
    return s;
}

static void publish(shard_loader *L, slot *s, enum slot_state state) {
    pthread_mutex_lock(&L->mu);
    s->state = state;
    L->produced++;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
}

static void *producer(void *arg) {
    shard_loader *L = arg;
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)(L->n ? L->n : 1));
    int64_t *mine = malloc(sizeof(int64_t) * (size_t)(L->n ? L->n : 1));
    int64_t q = 0;
    for (int64_t epoch = L->o.start_epoch;; epoch++) {
        const int64_t m = perm && mine ? rank_records(L, epoch, mine, perm) : 0;
        /* training: whole groups only (the leftover batches are dropped) */
        const int64_t nb = L->o.train ? L->per_epoch : (m + L->o.batch - 1) / L->o.batch;
        const int64_t b0 = epoch == L->o.start_epoch ? L->o.start_batch : 0;
        for (int64_t bi = b0; bi <= nb; bi++, q++) {
            slot *s = claim_slot(L, q);
            if (!s) goto done;
            if (!perm || !mine) {
                s->st = mt_errf(s->err, ERRLEN, MT_ERR_NOMEM, "loader: out of memory");
                publish(L, s, SLOT_ERROR);
                goto done;
            }
            if (bi == nb) { /* end of this epoch's batches (loader_open made sure a
                              * training epoch has at least one) */
                if (!L->o.train) {
                    publish(L, s, SLOT_END);
                    goto done;
                }
                pthread_mutex_lock(&L->mu);
                s->state = SLOT_FREE; /* nothing produced: slot q is used next epoch */
                pthread_mutex_unlock(&L->mu);
                break;
            }
            loader_batch *b = &s->b;
            b->epoch = epoch;
            b->index = bi;
            b->n = (int)(m - bi * L->o.batch < L->o.batch ? m - bi * L->o.batch : L->o.batch);
            b->nbad = 0;
            s->bad_msg[0] = 0;
            b->bad_msg = s->bad_msg;
            mt_status st = MT_OK;
            for (int k = 0; k < b->n; k++) b->records[k] = mine[bi * L->o.batch + k];
            for (int k = 0; k < b->n && !st; k++) st = fill_or_replace(L, epoch, mine, m, bi * L->o.batch + k, s, k);
            s->st = st;
            publish(L, s, st ? SLOT_ERROR : SLOT_READY);
            if (st) goto done;
        }
    }
done:
    free(perm);
    free(mine);
    return NULL;
}

/* ---------------------------------------------------------- API */

static int alloc_batch(loader_batch *b, int B, int S, int tasks) {
    const size_t px = (size_t)S * S;
    b->images = malloc(sizeof(float) * B * 3 * px);
    b->records = malloc(sizeof(int64_t) * B);
    b->semseg = tasks & SHARD_SEMSEG ? malloc((size_t)B * px) : NULL;
    b->human_parts = tasks & SHARD_HUMAN_PARTS ? malloc((size_t)B * px) : NULL;
    b->sal = tasks & SHARD_SAL ? malloc(sizeof(float) * B * px) : NULL;
    b->edge = tasks & SHARD_EDGE ? malloc(sizeof(float) * B * px) : NULL;
    b->normals = tasks & SHARD_NORMALS ? malloc(sizeof(float) * B * 3 * px) : NULL;
    return !b->images || !b->records || (tasks & SHARD_SEMSEG && !b->semseg) ||
           (tasks & SHARD_HUMAN_PARTS && !b->human_parts) || (tasks & SHARD_SAL && !b->sal) ||
           (tasks & SHARD_EDGE && !b->edge) || (tasks & SHARD_NORMALS && !b->normals);
}

static void free_batch(loader_batch *b) {
    free(b->images);
    free(b->records);
    free(b->semseg);
    free(b->human_parts);
    free(b->sal);
    free(b->edge);
    free(b->normals);
}

mt_status loader_open(shard_loader **out, const loader_opts *o, char *err, size_t errlen) {
    return loader_open_train(out, o, NULL, err, errlen);
}

mt_status loader_open_train(shard_loader **out, const loader_opts *o, const loader_train_opts *t, char *err,
                            size_t errlen) {
    *out = NULL;
    const loader_train_opts none = {0, 0};
    if (!t) t = &none;
    if (!o || !o->dir || !o->split || o->world < 1 || o->rank < 0 || o->rank >= o->world ||
        o->batch < 1 || o->size < 8 || o->tasks < 0 || o->tasks > SHARD_ALL_TASKS || t->group < 0 ||
        o->start_epoch < 0 || o->start_batch < 0 || strlen(o->split) >= 16 || strlen(o->dir) >= 4096)
        return mt_errf(err, errlen, MT_ERR_ARG, "loader: bad options (rank/world/batch/size/split)");
    shard_loader *L = calloc(1, sizeof *L);
    if (!L) return mt_errf(err, errlen, MT_ERR_NOMEM, "loader: out of memory");
    L->o = *o;
    L->t = *t;
    if (L->o.prefetch < 1) L->o.prefetch = 2;
    snprintf(L->dir, sizeof L->dir, "%s", o->dir);
    snprintf(L->split, sizeof L->split, "%s", o->split);
    L->held = -1;
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv, NULL);
    mt_status st = read_manifest(L, err, errlen);
    if (!st) {
        const int64_t per_rank = o->train ? L->n / o->world : (L->n - o->rank + o->world - 1) / o->world;
        L->per_epoch = o->train ? per_rank / o->batch : (per_rank + o->batch - 1) / o->batch;
        if (o->train && L->per_epoch == 0)
            st = mt_errf(err, errlen, MT_ERR_ARG,
                         "%s/%s: %lld records give rank %d fewer than one batch of %d (world %d)",
                         L->dir, L->split, (long long)L->n, o->rank, o->batch, o->world);
        else if (o->train && t->group > 1 && L->per_epoch < t->group)
            st = mt_errf(err, errlen, MT_ERR_ARG,
                         "%s/%s: %lld records give rank %d %lld batches of %d (world %d), fewer than one "
                         "update of %d accumulated batches",
                         L->dir, L->split, (long long)L->n, o->rank, (long long)L->per_epoch, o->batch,
                         o->world, t->group);
        if (!st && o->train && t->group > 1) L->per_epoch -= L->per_epoch % t->group;
    }
    if (!st) {
        L->nslots = L->o.prefetch + 1;
        L->slots = calloc((size_t)L->nslots, sizeof(slot));
        if (!L->slots) st = mt_errf(err, errlen, MT_ERR_NOMEM, "loader: out of memory");
        for (int i = 0; !st && i < L->nslots; i++)
            if (alloc_batch(&L->slots[i].b, o->batch, o->size, o->tasks))
                st = mt_errf(err, errlen, MT_ERR_NOMEM, "loader: out of memory for batches");
    }
    if (!st) {
        if (pthread_create(&L->thread, NULL, producer, L) != 0)
            st = mt_errf(err, errlen, MT_ERR_NOMEM, "loader: cannot start its thread");
        else
            L->thread_started = 1;
    }
    if (st) {
        loader_close(L);
        return st;
    }
    *out = L;
    return MT_OK;
}

mt_status loader_next(shard_loader *L, loader_batch **out, char *err, size_t errlen) {
    *out = NULL;
    const double t0 = mt_now_s();
    pthread_mutex_lock(&L->mu);
    if (L->held >= 0) { /* the caller is done with the previous batch */
        L->slots[L->held].state = SLOT_FREE;
        L->held = -1;
        pthread_cond_broadcast(&L->cv);
    }
    slot *s = &L->slots[L->consumed % L->nslots];
    while (s->state != SLOT_READY && s->state != SLOT_ERROR && s->state != SLOT_END)
        pthread_cond_wait(&L->cv, &L->mu);
    mt_status st = MT_OK;
    if (s->state == SLOT_ERROR) {
        st = mt_errf(err, errlen, s->st, "%s/%s: %s", L->dir, L->split, s->err);
    } else if (s->state == SLOT_READY) {
        s->state = SLOT_HELD;
        L->held = (int)(s - L->slots);
        L->consumed++;
        s->b.wait_s = mt_now_s() - t0;
        *out = &s->b;
    }
    pthread_mutex_unlock(&L->mu);
    return st;
}

int64_t loader_records(const shard_loader *L) { return L->n; }
int64_t loader_batches_per_epoch(const shard_loader *L) { return L->per_epoch; }

const char *loader_record_id(const shard_loader *L, int64_t record) {
    if (!L || record < 0 || record >= L->n) return NULL;
    return shard_record_id(L->shards[L->rec_shard[record]], L->rec_local[record]);
}

void loader_close(shard_loader *L) {
    if (!L) return;
    if (L->thread_started) {
        pthread_mutex_lock(&L->mu);
        L->stop = 1;
        pthread_cond_broadcast(&L->cv);
        pthread_mutex_unlock(&L->mu);
        pthread_join(L->thread, NULL);
    }
    for (int i = 0; L->slots && i < L->nslots; i++) free_batch(&L->slots[i].b);
    free(L->slots);
    for (int k = 0; k < L->nshards; k++) shard_close(L->shards[k]);
    free(L->shards);
    free(L->rec_shard);
    free(L->rec_local);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv);
    free(L);
}
