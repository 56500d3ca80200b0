/* pascal_cache.c - a PASCAL_MT directory packed into shards by the
 * mtlora-pack program, once, and reused while it is current
 * (pascal_cache.h). Runs on one process (mtlora_dist's rank 0); the packer
 * is a child process started with posix_spawn (no fork of the caller's
 * address space: the caller is an MPI process). */
#define _XOPEN_SOURCE 700 /* realpath: before any system header */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mtlora/base/clock.h"
#include "mtlora/base/hash.h"
#include "mtlora/io/atomic_file.h"
#include "mtlora/io/shards/pascal_cache.h"

#define fail mt_errf
#define STAMP ".stamp"     /* beside the cache directory: --verify lists stray files */
#define PENDING ".pending"
#define STAMP_MAX (1 << 20)
#define WALK_DEPTH 32

extern char **environ;

/* ---- the source's fingerprint --------------------------------------------- */

typedef struct {
    char *text;
    size_t len, cap;
} strbuf;

static int sb_add(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sb_add(strbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        const int n = vsnprintf(b->text ? b->text + b->len : NULL, b->text ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return -1;
        if (b->text && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return 0;
        }
        const size_t want = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        if (want > STAMP_MAX) return -1;
        char *t = realloc(b->text, want);
        if (!t) return -1;
        b->text = t;
        b->cap = want;
    }
}

typedef struct {
    uint64_t files, bytes, hash;
} tree_sum;

/* One file (or an entry that cannot be stat'ed: size all ones) into t, by
 * its path relative to the source, size and mtime; the sum of the per-file
 * hashes does not depend on the directory's order. */
static void add_file(tree_sum *t, const char *rel, const struct stat *st) {
    const uint64_t v[3] = {st ? (uint64_t)st->st_size : UINT64_MAX, st ? (uint64_t)st->st_mtim.tv_sec : 0,
                           st ? (uint64_t)st->st_mtim.tv_nsec : 0};
    uint64_t h = mt_fnv1a64(MT_FNV1A64_INIT, rel, strlen(rel) + 1);
    t->hash += mt_fnv1a64(h, v, sizeof v);
    t->files++;
    t->bytes += st ? (uint64_t)st->st_size : 0;
}

static void walk(const char *abs, const char *rel, int depth, tree_sum *t) {
    DIR *d = opendir(abs);
    if (!d) {
        add_file(t, rel, NULL);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char a[PATH_MAX], r[PATH_MAX];
        if (snprintf(a, sizeof a, "%s/%s", abs, e->d_name) >= (int)sizeof a ||
            snprintf(r, sizeof r, "%s/%s", rel, e->d_name) >= (int)sizeof r)
            continue;
        struct stat st;
        if (stat(a, &st)) add_file(t, r, NULL);
        else if (S_ISDIR(st.st_mode) && depth < WALK_DEPTH) walk(a, r, depth + 1, t);
        else if (S_ISREG(st.st_mode)) add_file(t, r, &st);
    }
    closedir(d);
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The stamp text: the source, the pack options, one line per top-level
 * entry of the source (files directly in it together as "."). skip: the
 * real path of a cache root inside the source, not walked. */
static mt_status fingerprint(const char *real, const char *tasks, const char *skip, strbuf *b, char *err,
                             size_t errlen) {
    DIR *d = opendir(real);
    if (!d) return fail(err, errlen, MT_ERR_IO, "--pascal %s: %s", real, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int oom = 0;
    while ((e = readdir(d)) && !oom) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".mtlora-cache")) continue;
        if (n == cap) {
            char **t = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
            if (!t) { oom = 1; break; }
            names = t;
        }
        if (!(names[n] = strdup(e->d_name))) oom = 1;
        else n++;
    }
    closedir(d);
    mt_status st = MT_OK;
    if (!oom) qsort(names, n, sizeof *names, by_name);
    if (oom || sb_add(b, "mtlora-pascal-cache 1\nsource %s\npack --tasks %s --shard-size 1000\n", real, tasks))
        st = fail(err, errlen, MT_ERR_NOMEM, "--pascal: out of memory");
    tree_sum top = {0, 0, 0};
    for (size_t i = 0; !st && i < n; i++) {
        char a[PATH_MAX], rp[PATH_MAX];
        snprintf(a, sizeof a, "%s/%s", real, names[i]);
        if (skip && realpath(a, rp) && !strcmp(rp, skip)) continue;
        struct stat s;
        tree_sum t = {0, 0, 0};
        const int bad = stat(a, &s);
        if (bad || !S_ISDIR(s.st_mode)) {
            add_file(&top, names[i], bad ? NULL : &s);
            continue;
        }
        walk(a, names[i], 1, &t);
        if (sb_add(b, "tree %s files %llu bytes %llu hash %016llx\n", names[i], (unsigned long long)t.files,
                   (unsigned long long)t.bytes, (unsigned long long)t.hash))
            st = fail(err, errlen, MT_ERR_NOMEM, "--pascal: the fingerprint of %s is too large", real);
    }
    if (!st && sb_add(b, "tree . files %llu bytes %llu hash %016llx\n", (unsigned long long)top.files,
                      (unsigned long long)top.bytes, (unsigned long long)top.hash))
        st = fail(err, errlen, MT_ERR_NOMEM, "--pascal: out of memory");
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return st;
}

/* A small file's text, or NULL (absent, unreadable, too large). */
static char *read_text(const char *path) {
    struct stat s;
    if (stat(path, &s) || !S_ISREG(s.st_mode) || s.st_size > STAMP_MAX) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *t = malloc((size_t)s.st_size + 1);
    const size_t n = t ? fread(t, 1, (size_t)s.st_size, f) : 0;
    fclose(f);
    if (t) t[n] = '\0';
    return t;
}

/* The first line of a that is not a line of b (NULL: none), into out. */
static int line_missing(const char *a, const char *b, char *out, size_t cap) {
    for (const char *p = a; *p;) {
        const char *end = strchr(p, '\n');
        const size_t l = end ? (size_t)(end - p) : strlen(p);
        int found = 0;
        for (const char *q = b; *q && !found;) {
            const char *qe = strchr(q, '\n');
            const size_t ql = qe ? (size_t)(qe - q) : strlen(q);
            found = ql == l && !strncmp(p, q, l);
            q += ql + (qe != NULL);
        }
        if (!found) {
            snprintf(out, cap, "%.*s", (int)(l < 400 ? l : 400), p);
            return 1;
        }
        p += l + (end != NULL);
    }
    return 0;
}

/* Why the stamp `old` does not describe the source `now`, in words. */
static void stale_reason(const char *old, const char *now, char *out, size_t cap) {
    char line[512] = "", what[300];
    int removed = 0;
    if (!line_missing(now, old, line, sizeof line)) removed = line_missing(old, now, line, sizeof line);
    if (!strncmp(line, "source ", 7)) snprintf(out, cap, "the cache was packed from another directory");
    else if (!strncmp(line, "pack ", 5)) snprintf(out, cap, "the pack options changed");
    else if (sscanf(line, "tree %299s", what) == 1)
        snprintf(out, cap, "the source changed: %s %s", !strcmp(what, ".") ? "its top-level files" : what,
                 removed ? "is gone" : "differs");
    else snprintf(out, cap, "the cache's stamp is of another format");
}

/* ---- the packer --------------------------------------------------------- */

/* mtlora-pack: beside this executable, else the bare name for PATH. */
static void find_packer(const pascal_cache_opts *o, char *path, size_t cap, int *use_path) {
    *use_path = 0;
    if (o->packer) {
        snprintf(path, cap, "%s", o->packer);
        return;
    }
    char self[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(path, cap, "%s/mtlora-pack", self) < (int)cap && !access(path, X_OK)) return;
        }
    }
    snprintf(path, cap, "mtlora-pack");
    *use_path = 1;
}

/* Runs argv to its end; *status its exit status (or 128 + signal). stdout
 * to /dev/null when mute. */
static mt_status run_child(const char *prog, int use_path, char *const argv[], int mute, int *status,
                           char *err, size_t errlen) {
    fflush(stdout);
    fflush(stderr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (mute) posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    const int rc = use_path ? posix_spawnp(&pid, prog, &fa, NULL, argv, environ)
                            : posix_spawn(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        return fail(err, errlen, MT_ERR_IO, "--pascal: cannot run %s%s: %s", prog,
                    use_path ? " (not beside this program's executable, nor on PATH)" : "", strerror(rc));
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) return fail(err, errlen, MT_ERR_IO, "--pascal: waitpid: %s", strerror(errno));
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
    return MT_OK;
}

/* Deletes the cache's shards, manifests and their temporaries; nothing else (the cache directory may be one a user named). */
static mt_status wipe(const char *dir, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) return fail(err, errlen, MT_ERR_IO, "--pascal: cache %s: %s", dir, strerror(errno));
    struct dirent *e;
    mt_status st = MT_OK;
    while (!st && (e = readdir(d))) {
        const char *n = e->d_name;
        const int ours = !strncmp(n, "train-", 6) || !strncmp(n, "val-", 4) || !strncmp(n, "train.manifest", 14) ||
                         !strncmp(n, "val.manifest", 12);
        char p[PATH_MAX];
        struct stat s;
        if (!ours || snprintf(p, sizeof p, "%s/%s", dir, n) >= (int)sizeof p || lstat(p, &s) || !S_ISREG(s.st_mode))
            continue;
        if (unlink(p)) st = fail(err, errlen, MT_ERR_IO, "--pascal: cannot delete %s: %s", p, strerror(errno));
    }
    closedir(d);
    return st;
}

/* ---- where ------------------------------------------------------------------ */

static mt_status cache_dir(const pascal_cache_opts *o, const char *real, char *dir, size_t cap, char *skip,
                           char *err, size_t errlen) {
    char tasks[128];
    snprintf(tasks, sizeof tasks, "%s", o->tasks);
    const char *base = strrchr(real, '/');
    base = base && base[1] ? base + 1 : "root";
    const uint64_t h = mt_fnv1a64(MT_FNV1A64_INIT, real, strlen(real));
    int n;
    if (o->cache_root && *o->cache_root)
        n = snprintf(dir, cap, "%s/%s-%08llx/%s", o->cache_root, base, (unsigned long long)(h & 0xffffffffu), tasks);
    else if (!access(real, W_OK))
        n = snprintf(dir, cap, "%s/.mtlora-cache/%s", real, tasks);
    else if (o->fallback && *o->fallback)
        n = snprintf(dir, cap, "%s/%s-%08llx/%s", o->fallback, base, (unsigned long long)(h & 0xffffffffu), tasks);
    else
        return fail(err, errlen, MT_ERR_IO, "--pascal %s: not writable, and no other place for the cache "
                    "(set MTLORA_CACHE)", real);
    if (n < 0 || (size_t)n >= cap) return fail(err, errlen, MT_ERR_ARG, "--pascal: the cache path is too long");
    mt_status st = mt_make_dirs(dir, err, errlen);
    if (st) return st;
    /* a cache root inside the source is not part of the source */
    skip[0] = '\0';
    if (o->cache_root && *o->cache_root && !realpath(o->cache_root, skip)) skip[0] = '\0';
    return MT_OK;
}

/* ---- the whole -------------------------------------------------------------- */

mt_status pascal_cache_prepare(pascal_cache_opts *o, char *shards, size_t cap, char *err, size_t errlen) {
    o->reused = 0;
    char real[PATH_MAX], probe[PATH_MAX + 64];
    struct stat s;
    if (stat(o->src, &s)) return fail(err, errlen, MT_ERR_IO, "--pascal %s: %s", o->src, strerror(errno));
    if (!S_ISDIR(s.st_mode)) return fail(err, errlen, MT_ERR_IO, "--pascal %s: not a directory", o->src);
    if (!realpath(o->src, real)) return fail(err, errlen, MT_ERR_IO, "--pascal %s: %s", o->src, strerror(errno));
    for (int k = 0; k < 2; k++) {
        snprintf(probe, sizeof probe, "%s/ImageSets/Context/%s.txt", real, k ? "val" : "train");
        if (stat(probe, &s) || !S_ISREG(s.st_mode))
            return fail(err, errlen, MT_ERR_FORMAT, "--pascal %s: not a PASCAL_MT directory (no %s)", o->src, probe);
    }
    char dir[PATH_MAX], skip[PATH_MAX];
    mt_status st = cache_dir(o, real, dir, sizeof dir, skip, err, errlen);
    if (st) return st;
    if (strlen(dir) >= cap) return fail(err, errlen, MT_ERR_ARG, "--pascal: the cache path is too long");
    strbuf now = {0};
    const double t0 = mt_now_s();
    if ((st = fingerprint(real, o->tasks, skip[0] ? skip : NULL, &now, err, errlen))) {
        free(now.text);
        return st;
    }
    char stamp[PATH_MAX + 32], pending[PATH_MAX + 32], packer[PATH_MAX], reason[600];
    snprintf(stamp, sizeof stamp, "%s%s", dir, STAMP);
    snprintf(pending, sizeof pending, "%s%s", dir, PENDING);
    int use_path, status = 0;
    find_packer(o, packer, sizeof packer, &use_path);
    char *old = read_text(stamp), *was_pending = read_text(pending);
    if (old && !strcmp(old, now.text)) {
        char *verify[] = {packer, "--verify", dir, NULL};
        st = run_child(packer, use_path, verify, 1, &status, err, errlen);
        if (!st && !status) {
            if (!o->quiet)
                printf("pascal: reusing the shards in %s (source %s and pack options unchanged, shards verified, "
                       "%.1f s): not repacking\n", dir, real, mt_now_s() - t0);
            snprintf(shards, cap, "%s", dir);
            o->reused = 1;
        }
        snprintf(reason, sizeof reason, "the cache failed mtlora-pack --verify (above)");
    } else if (old) {
        stale_reason(old, now.text, reason, sizeof reason);
    } else {
        snprintf(reason, sizeof reason, was_pending && !strcmp(was_pending, now.text)
                                            ? "continuing an interrupted pack" : "no cache yet");
    }
    const int resume_pack = !old && was_pending && !strcmp(was_pending, now.text);
    free(old);
    free(was_pending);
    if (st || o->reused) {
        free(now.text);
        return st;
    }
    /* pack: the stamp goes first (a half-done cache is never current), the
     * pending fingerprint says what is being packed */
    if (unlink(stamp) && errno != ENOENT)
        st = fail(err, errlen, MT_ERR_IO, "--pascal: cannot delete %s: %s", stamp, strerror(errno));
    if (!st && !resume_pack) st = wipe(dir, err, errlen);
    if (!st) st = atomic_write(pending, now.text, now.len, err, errlen);
    if (!o->quiet && !st)
        printf("pascal: packing %s into %s (%s): train and val, tasks %s, with %s\n", real, dir, reason,
               o->tasks, packer);
    const char *splits[2] = {"train", "val"};
    for (int k = 0; !st && k < 2; k++) {
        char tasks[128];
        snprintf(tasks, sizeof tasks, "%s", o->tasks);
        char *argv[] = {packer, real, dir, "--split", (char *)splits[k], "--tasks", tasks,
                        o->quiet ? "--quiet" : NULL, NULL};
        st = run_child(packer, use_path, argv, 0, &status, err, errlen);
        if (!st && status)
            st = fail(err, errlen, MT_ERR_IO, "--pascal %s: mtlora-pack exited with status %d packing the %s split "
                      "into %s (its messages are above)", o->src, status, splits[k], dir);
    }
    if (!st) st = atomic_write(stamp, now.text, now.len, err, errlen);
    if (!st) unlink(pending);
    if (!st && !o->quiet) printf("pascal: packed %s in %.1f s\n", dir, mt_now_s() - t0);
    if (!st) snprintf(shards, cap, "%s", dir);
    free(now.text);
    fflush(stdout);
    return st;
}
