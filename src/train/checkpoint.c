/* checkpoint.c - see checkpoint.h. Writing (stage, seal, rename, read back,
 * retention) first, then the checks every load runs, then the directory
 * scan of --resume auto. */
#include "mtlora/io/atomic_file.h"
#include "mtlora/train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mtlora/base/hash.h"
#include "mtlora/io/safetensors.h"
#include "mtlora/io/regular_file.h"

/* The state tensor: 9 values in version 1, 10 (run start added) in 2. */
enum { S_STEP, S_EPOCH, S_BATCH, S_ADAM, S_SKIPPED, S_HASH, S_WORLD, S_VERSION, S_BN, S_RUN_START };
#define STATE_V1 9
#define STATE_V2 10
/* A header larger than this is not one this writer made. */
#define MAX_HEADER (1u << 20)

int64_t ckpt_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pack_state(int64_t st[STATE_V2], const ckpt_state *s) {
    st[S_STEP] = s->step;
    st[S_EPOCH] = s->epoch;
    st[S_BATCH] = s->batch;
    st[S_ADAM] = s->adam_step;
    st[S_SKIPPED] = s->skipped;
    st[S_HASH] = (int64_t)s->config_hash;
    st[S_WORLD] = s->world;
    st[S_VERSION] = CKPT_VERSION;
    st[S_BN] = s->bn_tracked;
    st[S_RUN_START] = s->run_start;
}

/* ------------------------------------------------------------ checks */

typedef struct {
    int index;
    const char *name;
    int64_t lo, hi; /* inclusive */
} field_range;

/* Every field of the state in its range; `what` prefixes the message ("" on
 * load, "not written: " before a write). */
static mt_status check_state(const char *path, const char *what, const int64_t *st, int nstate,
                             char *err, size_t errlen) {
    const int64_t want_version = nstate == STATE_V1 ? 1 : 2;
    if (st[S_VERSION] != want_version)
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: %sstate.version = %lld with %d state values (this build reads version 1 "
                       "with 9, version 2 with 10)", path, what, (long long)st[S_VERSION], nstate);
    const int64_t step = st[S_STEP];
    const field_range r[] = {
        {S_STEP, "step", 0, CKPT_MAX_STEP - 1},     {S_EPOCH, "epoch", 0, INT32_MAX},
        {S_BATCH, "batch", 0, CKPT_MAX_STEP - 1},   {S_SKIPPED, "skipped", 0, step},
        {S_ADAM, "adam_step", 0, step},             {S_WORLD, "world", 1, CKPT_MAX_WORLD},
        {S_BN, "bn_tracked", 0, INT64_C(1) << 50},  {S_RUN_START, "run_start", 1, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        if (r[i].index >= nstate) continue; /* run_start: version 2 only */
        const int64_t x = st[r[i].index];
        if (x < r[i].lo || x > r[i].hi)
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %sstate.%s = %lld is outside [%lld, %lld]%s",
                           path, what, r[i].name, (long long)x, (long long)r[i].lo, (long long)r[i].hi,
                           r[i].index == S_SKIPPED || r[i].index == S_ADAM ? " (0 to state.step)" : "");
    }
    /* every update either stepped AdamW or was skipped as non-finite */
    if (st[S_ADAM] + st[S_SKIPPED] != step)
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: %sstate.adam_step = %lld plus state.skipped = %lld is not state.step = %lld",
                       path, what, (long long)st[S_ADAM], (long long)st[S_SKIPPED], (long long)step);
    return MT_OK;
}

/* The bank tensor of `kind` holding element i (for messages). */
static const char *param_at(const param_bank *bank, mt_param_kind kind, size_t i, size_t *elem) {
    for (int k = 0; k < bank->count; k++) {
        const param_entry *e = &bank->entries[k];
        if (e->kind == kind && i >= e->offset && i - e->offset < e->count) {
            *elem = i - e->offset;
            return e->name;
        }
    }
    *elem = i;
    return "?";
}

/* Every float finite; adam_v (squared gradients) also >= 0. */
static mt_status check_values(const char *path, const char *what, const param_bank *bank,
                              const float *const arr[4], char *err, size_t errlen) {
    static const char *const names[4] = {"trainable", "adam_m", "adam_v", "buffers"};
    const size_t len[4] = {bank->n_trainable, bank->n_trainable, bank->n_trainable, bank->n_buffer};
    for (int a = 0; a < 4; a++) {
        const float *x = arr[a];
        size_t i = 0;
        if (a == 2) while (i < len[a] && x[i] >= 0.0f && !isinf(x[i])) i++;
        else while (i < len[a] && isfinite(x[i])) i++;
        if (i == len[a]) continue;
        size_t elem;
        const char *p = param_at(bank, a == 3 ? MT_PARAM_BUFFER : MT_PARAM_TRAINABLE, i, &elem);
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %stensor '%s' value %zu (%s[%zu]) is %g: %s", path,
                       what, names[a], i, p, elem, (double)x[i],
                       a == 2 ? "AdamW second moments are finite and >= 0" : "values must be finite");
    }
    return MT_OK;
}

/* ------------------------------------------------------------ writing */

/* The identity in words for __metadata__ (the state holds it exactly). */
static void identity_text(const ckpt_state *s, char *out, size_t cap) {
    const time_t sec = (time_t)(s->run_start / 1000000000);
    struct tm tm;
    char when[40] = "?";
    if (gmtime_r(&sec, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "config %016llx, started %s.%09lldZ", (unsigned long long)s->config_hash, when,
             (long long)(s->run_start % 1000000000));
}

/* The checksum over the header st_write produced and the data of the first
 * n entries (the checksum entry follows them), written into its place. */
static mt_status seal(const char *staging, const st_entry *e, int n, char *err, size_t errlen) {
    const int fd = open(staging, O_RDWR);
    if (fd < 0) return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot reopen: %s", staging, strerror(errno));
    unsigned char lenb[8];
    uint64_t hlen = 0;
    mt_status st = MT_OK;
    unsigned char *hdr = NULL;
    if (pread(fd, lenb, 8, 0) != 8) st = MT_ERR_IO;
    for (int i = 0; !st && i < 8; i++) hlen |= (uint64_t)lenb[i] << (8 * i);
    if (!st && (hlen > MAX_HEADER || !(hdr = malloc(hlen ? hlen : 1)))) st = MT_ERR_FORMAT;
    if (!st && pread(fd, hdr, hlen, 8) != (ssize_t)hlen) st = MT_ERR_IO;
    if (!st) {
        uint64_t h = mt_fnv1a64(MT_FNV1A64_INIT, hdr, hlen);
        size_t off = 0;
        for (int i = 0; i < n; i++) {
            const size_t bytes = (size_t)e[i].shape[0] * st_dtype_size(e[i].dtype);
            h = mt_fnv1a64(h, e[i].data, bytes);
            off += bytes;
        }
        const int64_t sum = (int64_t)h;
        if (pwrite(fd, &sum, 8, (off_t)(8 + hlen + off)) != 8 || fsync(fd) != 0) st = MT_ERR_IO;
    }
    const int e2 = errno;
    free(hdr);
    if (close(fd) != 0 && !st) st = MT_ERR_IO;
    if (st == MT_ERR_FORMAT)
        return mt_errf(err, errlen, st, "%s: header of %llu bytes as written", staging, (unsigned long long)hlen);
    if (st) return mt_errf(err, errlen, st, "%s: sealing the checksum failed: %s", staging, strerror(e2 ? e2 : EIO));
    return MT_OK;
}

/* "ckpt-<digits>.safetensors" exactly; *canonical when it is the name
 * ckpt_write gives that step (8 digits at least, no extra zeros). */
static int parse_name(const char *name, long long *step, int *canonical) {
    if (strncmp(name, "ckpt-", 5)) return 0;
    const char *p = name + 5;
    int nd = 0;
    long long v = 0;
    while (p[nd] >= '0' && p[nd] <= '9' && nd < 19) v = v * 10 + (p[nd] - '0'), nd++;
    if (nd == 0 || nd > 18 || strcmp(p + nd, ".safetensors")) return 0;
    char canon[64];
    snprintf(canon, sizeof canon, "ckpt-%08lld.safetensors", v);
    *step = v;
    *canonical = !strcmp(canon, name);
    return 1;
}

typedef struct {
    long long step;
    int canonical;
    char name[256];
} dir_entry;

static int cmp_step_desc(const void *a, const void *b) {
    const dir_entry *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* Files of dir named like checkpoints, newest step first (*out malloc'd).
 * A missing dir is an empty list; one that cannot be read is an error. */
static mt_status list_dir(const char *dir, dir_entry **out, int *count, char *err, size_t errlen) {
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return MT_OK;
        return mt_errf(err, errlen, MT_ERR_IO, "%s (RUN.DIR): cannot list: %s", dir, strerror(errno));
    }
    int n = 0, cap = 0;
    dir_entry *v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        dir_entry x;
        if (strlen(e->d_name) >= sizeof x.name || !parse_name(e->d_name, &x.step, &x.canonical)) continue;
        if (n == cap) {
            dir_entry *g = realloc(v, sizeof *v * (size_t)(cap = cap ? 2 * cap : 16));
            if (!g) {
                free(v);
                closedir(d);
                return mt_errf(err, errlen, MT_ERR_NOMEM, "%s (RUN.DIR): out of memory listing it", dir);
            }
            v = g;
        }
        snprintf(x.name, sizeof x.name, "%s", e->d_name);
        v[n++] = x;
    }
    closedir(d);
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_step_desc);
    *out = v;
    *count = n;
    return MT_OK;
}

/* Deletes this run's older checkpoints beyond `keep`, the one just written
 * (`mine`) counted first. Only regular files with the writer's own name,
 * this identity, a state matching the name and a valid content qualify. */
static void retain(const char *dir, const char *mine, const ckpt_state *s, const param_bank *bank, int keep) {
    dir_entry *v;
    int n;
    char e[1024];
    if (list_dir(dir, &v, &n, e, sizeof e)) return; /* the new file is written: nothing is lost */
    int kept = 1;
    for (int i = 0; i < n; i++) {
        char path[CKPT_PATH_LEN];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, v[i].name);
        if (!v[i].canonical || !strcmp(path, mine) || lstat(path, &sb) || !S_ISREG(sb.st_mode)) continue;
        ckpt_state o;
        if (ckpt_check(path, s->config_hash, bank, &o, e, sizeof e) || o.run_start == 0 ||
            o.run_start != s->run_start || o.step != v[i].step)
            continue;
        if (kept < keep) kept++;
        else unlink(path);
    }
    free(v);
}

mt_status ckpt_write(const char *dir, const ckpt_state *s, const param_bank *bank, const float *m,
                     const float *v, int keep, char *path_out, size_t path_len, char *err,
                     size_t errlen) {
    char path[CKPT_PATH_LEN], staging[CKPT_PATH_LEN + 32];
    if ((size_t)snprintf(path, sizeof path, "%s/ckpt-%08lld.safetensors", dir, (long long)s->step) >= sizeof path)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s (RUN.DIR): path too long for a checkpoint", dir);
    int64_t state[STATE_V2];
    pack_state(state, s);
    /* what could not be loaded back is refused before anything is written */
    const float *arr[4] = {bank->trainable, m, v, bank->buffers};
    mt_status st = check_state(path, "not written: ", state, STATE_V2, err, errlen);
    if (!st) st = check_values(path, "not written: ", bank, arr, err, errlen);
    if (!st) st = mt_make_dirs(dir, err, errlen);
    if (st) return st;
    snprintf(staging, sizeof staging, "%s.partial.%ld", path, (long)getpid());
    const int64_t n = (int64_t)bank->n_trainable, nb = (int64_t)bank->n_buffer, k10 = STATE_V2, k1 = 1;
    const int64_t zero = 0;
    const st_entry e[6] = {{"trainable", ST_F32, 1, &n, bank->trainable},
                           {"adam_m", ST_F32, 1, &n, m},
                           {"adam_v", ST_F32, 1, &n, v},
                           {"buffers", ST_F32, 1, &nb, bank->buffers},
                           {"state", ST_I64, 1, &k10, state},
                           {"checksum", ST_I64, 1, &k1, &zero}};
    char ident[160];
    identity_text(s, ident, sizeof ident);
    const char *meta[8] = {"format", "mtlora-checkpoint", "version", "2", "layout",
                           "state = step, epoch, batch, adam_step, skipped, config_hash, world, version, "
                           "bn_tracked, run_start (ns); checksum = FNV-1a 64 of the header and of the data "
                           "except its own 8 bytes",
                           "run", ident};
    char e2[1024] = "the state read back differs";
    if ((st = st_write(staging, e, 6, meta, 4, e2, sizeof e2)) || (st = seal(staging, e, 5, e2, sizeof e2)) ||
        (st = atomic_rename(staging, path, e2, sizeof e2))) {
        unlink(staging);
        return mt_errf(err, errlen, st, "%s: not written, the previous checkpoints are kept: %s", path, e2);
    }
    /* read back: retention must never count a file that does not load */
    ckpt_state back;
    if (ckpt_check(path, s->config_hash, bank, &back, e2, sizeof e2) || back.step != s->step ||
        back.run_start != s->run_start)
        return mt_errf(err, errlen, MT_ERR_IO, "%s: written, but it does not read back (%s): no older "
                       "checkpoint deleted", path, e2);
    if (path_out) snprintf(path_out, path_len, "%s", path);
    retain(dir, path, s, bank, keep < 1 ? 1 : keep);
    return MT_OK;
}

/* ------------------------------------------------------------ reading */

/* A regular file (through symlinks), checked without a read that could
 * block: stat first, then open O_NONBLOCK and fstat the very file opened. */
static mt_status check_regular(const char *path, char *err, size_t errlen) {
    struct stat sb;
    if (stat(path, &sb) != 0) return mt_errf(err, errlen, MT_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %s, not a checkpoint file: not read", path,
                       mt_file_kind(sb.st_mode));
    const int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    const int ok = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    close(fd);
    if (!ok) return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: not a regular file once opened: not read", path);
    return MT_OK;
}

static mt_status need(const st_file *f, const char *path, const char *name, st_dtype dt, size_t count,
                      const st_tensor **out, char *err, size_t errlen) {
    const st_tensor *t = st_find(f, name);
    if (!t || t->dtype != dt || t->count != count)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: tensor '%s' missing or not %zu %s values", path,
                       name, count, st_dtype_name(dt));
    *out = t;
    return MT_OK;
}

/* Version 1: the tensor bytes and the state only. */
static uint64_t checksum_v1(const float *vals, size_t n, size_t nb, const int64_t *state) {
    uint64_t h = MT_FNV1A64_INIT;
    h = mt_fnv1a64(h, vals, (3 * n + nb) * sizeof(float));
    return mt_fnv1a64(h, state, STATE_V1 * sizeof(int64_t));
}

/* Version 2: the header bytes and the data except the checksum's own. */
static uint64_t checksum_v2(const st_file *f, const st_tensor *tc) {
    const size_t hlen = (size_t)(f->data - f->file) - 8;
    uint64_t h = mt_fnv1a64(MT_FNV1A64_INIT, f->file + 8, hlen);
    h = mt_fnv1a64(h, f->data, tc->begin);
    return mt_fnv1a64(h, f->data + tc->end, f->data_len - tc->end);
}

/* Reads and checks path; on success *vals (malloc'd) holds trainable,
 * adam_m, adam_v and buffers back to back and *s the state. want_step >= 0:
 * the step the file name says. */
static mt_status read_checkpoint(const char *path, uint64_t expected_hash, const param_bank *bank,
                                 long long want_step, ckpt_state *s, float **vals, char *err, size_t errlen) {
    *vals = NULL;
    mt_status st = check_regular(path, err, errlen);
    st_file f;
    if (st || (st = st_load(&f, path, err, errlen))) return st;
    const size_t n = bank->n_trainable, nb = bank->n_buffer;
    const st_tensor *tt = NULL, *tm = NULL, *tv = NULL, *tb = NULL, *tc = NULL;
    const st_tensor *ts = st_find(&f, "state");
    if ((st = need(&f, path, "trainable", ST_F32, n, &tt, err, errlen)) ||
        (st = need(&f, path, "adam_m", ST_F32, n, &tm, err, errlen)) ||
        (st = need(&f, path, "adam_v", ST_F32, n, &tv, err, errlen)) ||
        (st = need(&f, path, "buffers", ST_F32, nb, &tb, err, errlen)) ||
        (st = need(&f, path, "checksum", ST_I64, 1, &tc, err, errlen))) {
        st_free(&f);
        return st;
    }
    if (!ts || ts->dtype != ST_I64 || (ts->count != STATE_V1 && ts->count != STATE_V2)) {
        st_free(&f);
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: tensor 'state' missing or not 9 (version 1) or 10 "
                       "(version 2) I64 values", path);
    }
    const int nstate = (int)ts->count;
    int64_t state[STATE_V2] = {0}, sum;
    memcpy(state, f.data + ts->begin, sizeof(int64_t) * (size_t)nstate);
    memcpy(&sum, f.data + tc->begin, sizeof sum);
    /* aligned copies: the data section need not be float-aligned */
    float *tmp = malloc(sizeof(float) * (3 * n + nb + 1));
    if (!tmp) {
        st_free(&f);
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, f.data + tt->begin, n * sizeof(float));
    memcpy(tmp + n, f.data + tm->begin, n * sizeof(float));
    memcpy(tmp + 2 * n, f.data + tv->begin, n * sizeof(float));
    memcpy(tmp + 3 * n, f.data + tb->begin, nb * sizeof(float));
    const uint64_t want_sum = nstate == STATE_V1 ? checksum_v1(tmp, n, nb, state) : checksum_v2(&f, tc);
    st_free(&f);
    const float *arr[4] = {tmp, tmp + n, tmp + 2 * n, tmp + 3 * n};
    if ((uint64_t)sum != want_sum)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: checksum mismatch (corrupt checkpoint)", path);
    else if (!(st = check_state(path, "", state, nstate, err, errlen))) {
        if ((uint64_t)state[S_HASH] != expected_hash)
            st = mt_errf(err, errlen, MT_ERR_ARG, "%s: state.config_hash %016llx: written with another "
                         "configuration (this one hashes to %016llx)", path,
                         (unsigned long long)state[S_HASH], (unsigned long long)expected_hash);
        else if (want_step >= 0 && state[S_STEP] != want_step)
            st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: state.step = %lld, but the file name says step %lld",
                         path, (long long)state[S_STEP], want_step);
        else
            st = check_values(path, "", bank, arr, err, errlen);
    }
    if (st) {
        free(tmp);
        return st;
    }
    s->step = state[S_STEP];
    s->epoch = state[S_EPOCH];
    s->batch = state[S_BATCH];
    s->adam_step = state[S_ADAM];
    s->skipped = state[S_SKIPPED];
    s->config_hash = (uint64_t)state[S_HASH];
    s->world = state[S_WORLD];
    s->bn_tracked = state[S_BN];
    s->run_start = nstate == STATE_V2 ? state[S_RUN_START] : 0;
    s->version = state[S_VERSION];
    *vals = tmp;
    return MT_OK;
}

mt_status ckpt_check(const char *path, uint64_t expected_hash, const param_bank *bank, ckpt_state *s,
                     char *err, size_t errlen) {
    float *vals;
    ckpt_state tmp;
    mt_status st = read_checkpoint(path, expected_hash, bank, -1, &tmp, &vals, err, errlen);
    if (st) return st;
    free(vals);
    *s = tmp;
    return MT_OK;
}

static void install(const ckpt_state *got, float *vals, ckpt_state *s, param_bank *bank, float *m, float *v) {
    const size_t n = bank->n_trainable;
    memcpy(bank->trainable, vals, n * sizeof(float));
    memcpy(m, vals + n, n * sizeof(float));
    memcpy(v, vals + 2 * n, n * sizeof(float));
    memcpy(bank->buffers, vals + 3 * n, bank->n_buffer * sizeof(float));
    *s = *got;
    free(vals);
}

mt_status ckpt_load(const char *path, uint64_t expected_hash, ckpt_state *s, param_bank *bank,
                    float *m, float *v, char *err, size_t errlen) {
    float *vals;
    ckpt_state got;
    mt_status st = read_checkpoint(path, expected_hash, bank, -1, &got, &vals, err, errlen);
    if (!st) install(&got, vals, s, bank, m, v);
    return st;
}

static void note_skipped(ckpt_scan *scan, size_t *used, const char *line) {
    if (*used >= sizeof scan->skipped) return;
    const int k = snprintf(scan->skipped + *used, sizeof scan->skipped - *used, "%s\n", line);
    if (k > 0) *used += (size_t)k;
}

mt_status ckpt_load_latest(const char *dir, uint64_t expected_hash, int start_over, ckpt_state *s,
                           param_bank *bank, float *m, float *v, ckpt_scan *scan, char *err,
                           size_t errlen) {
    memset(scan, 0, sizeof *scan);
    dir_entry *list;
    int cnt;
    mt_status st = list_dir(dir, &list, &cnt, err, errlen);
    if (st) return st;
    size_t used = 0;
    for (int i = 0; i < cnt && !scan->found; i++) {
        char path[CKPT_PATH_LEN], e[1024];
        snprintf(path, sizeof path, "%s/%s", dir, list[i].name);
        float *vals;
        ckpt_state got;
        if (!read_checkpoint(path, expected_hash, bank, list[i].step, &got, &vals, e, sizeof e)) {
            install(&got, vals, s, bank, m, v);
            scan->found = 1;
            snprintf(scan->path, sizeof scan->path, "%s", path);
        } else {
            scan->refused++;
            note_skipped(scan, &used, e);
        }
    }
    free(list);
    if (!scan->found && scan->refused && !start_over)
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s (RUN.DIR): none of its %d checkpoint file(s) can be resumed from (each named "
                       "above): starting fresh would begin a new run beside them; repair or move them, or "
                       "start a new run anyway with --start-over (or --resume never)", dir, scan->refused);
    return MT_OK;
}
