/* mat_worker.c - libmatio isolated in a forked worker process per MAT file
 * (mat_reader.h): an address-space cap, a time limit, the parsed map back
 * through a pipe, and the worker's death named by its cause.
 *
 * Why fork per file and not a pool: packing is I/O and inflate bound (a
 * fork of the packer costs well under a millisecond next to reading a
 * PASCAL record), and a fresh process per file means one poisoned file can
 * never leave libmatio's state broken for the next one. */
#define _GNU_SOURCE /* close_range, pipe2: before any system header */
#include "mtlora/io/pascal/mat_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mat_internal.h"

#define MSG_MAX 1024
#define FRAME_MAGIC 0x4d415431u /* "MAT1" */

static mat_limits limits = {1, 60.0, (size_t)1 << 30, MAT_FAULT_NONE, NULL};

void mat_limits_default(mat_limits *l) {
    l->isolate = 1;
    l->timeout_s = 60.0;
    l->mem_cap = (size_t)1 << 30;
    l->fault = MAT_FAULT_NONE;
    l->fault_match = NULL;
}

void mat_set_limits(const mat_limits *l) { limits = *l; }
void mat_get_limits(mat_limits *l) { *l = limits; }

/* ------------------------------------------------------------- HDF5 lock */

static pthread_mutex_t hdf5_mu = PTHREAD_MUTEX_INITIALIZER;
/* 1 in a worker: single-threaded, and its copy of hdf5_mu may be held by a
 * thread that does not exist there. */
static int in_worker = 0;

void mat_hdf5_lock(void) {
    if (!in_worker) pthread_mutex_lock(&hdf5_mu);
}

void mat_hdf5_unlock(void) {
    if (!in_worker) pthread_mutex_unlock(&hdf5_mu);
}

/* ------------------------------------------------------------- the frame */

/* What the worker writes: this header, msglen bytes of message, then (on
 * success) h * w * esize bytes of the row-major map. */
typedef struct {
    uint32_t magic;
    int32_t status;
    int32_t h, w;
    uint32_t esize;
    uint32_t msglen;
    uint32_t oom; /* the failure was an allocation refused under the cap */
    uint32_t pad;
} frame;

static size_t kind_esize(mat_kind kind) { return kind == MAT_KIND_LABELMAP ? 4 : 1; }

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        const ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* ------------------------------------------------------------- the worker */

/* RLIMIT_AS = what the process maps now (the packer's, inherited) + cap. */
static void cap_address_space(size_t cap) {
    char buf[64] = "";
    const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        const ssize_t n = read(fd, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    const unsigned long long pages = strtoull(buf, NULL, 10);
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0) return;
    const rlim_t want = (rlim_t)(pages * (unsigned long long)sysconf(_SC_PAGESIZE) + cap);
    if (rl.rlim_max == RLIM_INFINITY || want < rl.rlim_max) rl.rlim_max = want;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_AS, &rl);
}

/* The test faults: what a misbehaving libmatio would do. */
static mt_status do_fault(int fault, const char *path, size_t cap, int *oom, char *err, size_t errlen) {
    if (fault == MAT_FAULT_CRASH) {
        signal(SIGSEGV, SIG_DFL); /* not a sanitizer's report: the plain death */
        raise(SIGSEGV);
    }
    if (fault == MAT_FAULT_HANG)
        for (;;) pause();
    /* MAT_FAULT_ALLOC: untouched blocks cost address space, not memory */
    const size_t block = (size_t)64 << 20, tries = cap / block + 64;
    for (size_t i = 0; i < tries; i++)
        if (!malloc(block)) {
            *oom = 1;
            return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: allocation %zu of 64 MiB refused", path, i + 1);
        }
    return mt_errf(err, errlen, MT_ERR_ARG, "%s: %zu blocks of 64 MiB allocated: no memory cap in effect",
                   path, tries);
}

/* Closes every descriptor but 0, 1, 2 and keep: a worker must not hold the
 * write end of another worker's pipe (its reader would wait for it) nor
 * the packer's open shard. */
static void close_others(int keep) {
    if ((keep <= 3 || close_range(3, (unsigned)keep - 1, 0) == 0) &&
        close_range((unsigned)keep + 1, ~0u, 0) == 0)
        return;
    for (int fd = 3; fd < 4096; fd++)
        if (fd != keep) close(fd);
}

static void worker_main(int fd, mat_kind kind, const char *path, const mat_limits *L) {
    in_worker = 1;
    close_others(fd);
    sigset_t all;
    sigemptyset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    signal(SIGALRM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    /* a backstop should the packer die: it kills the worker at timeout_s */
    alarm((unsigned)L->timeout_s + 10);
    cap_address_space(L->mem_cap);
    char err[MSG_MAX] = "";
    void *data = NULL;
    int h = 0, w = 0, oom = 0;
    errno = 0;
    const int fault = L->fault && (!L->fault_match || strstr(path, L->fault_match)) ? L->fault : 0;
    mt_status st = fault ? do_fault(fault, path, L->mem_cap, &oom, err, sizeof err)
                            : mat_parse_file(kind, path, &data, &h, &w, err, sizeof err);
    if (st && !oom)
        oom = errno == ENOMEM || strstr(err, "allocate") || strstr(err, "out of memory");
    frame f = {FRAME_MAGIC, (int32_t)st, h, w, (uint32_t)kind_esize(kind), (uint32_t)strlen(err),
               (uint32_t)oom, 0};
    int bad = write_all(fd, &f, sizeof f) || write_all(fd, err, f.msglen);
    if (!bad && !st && data) bad = write_all(fd, data, (size_t)h * w * f.esize);
    _exit(bad ? 3 : 0); /* no atexit handlers: they belong to the packer */
}

/* ------------------------------------------------------------- the packer's side */

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Reads n bytes before the deadline: 0 ok, 1 end of stream first, 2 timed
 * out, -1 read error. */
static int read_exact(int fd, void *p, size_t n, double deadline) {
    char *c = p;
    while (n) {
        const double left = deadline - now_s();
        if (left <= 0) return 2;
        struct pollfd pfd = {fd, POLLIN, 0};
        const int r = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) return 2;
        const ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) return 1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static const char *signal_name(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV, a segmentation fault";
    case SIGBUS: return "SIGBUS, a bus error";
    case SIGABRT: return "SIGABRT, an abort";
    case SIGFPE: return "SIGFPE, an arithmetic error";
    case SIGILL: return "SIGILL, an illegal instruction";
    case SIGKILL: return "SIGKILL, perhaps the out-of-memory killer";
    case SIGXCPU: return "SIGXCPU, the CPU time limit";
    default: return "a signal";
    }
}

typedef struct {
    frame f;
    char msg[MSG_MAX];
    void *data;
    int got;       /* a complete frame (and map) arrived */
    int timed_out;
} reply;

/* Reads the worker's frame and map from fd before the deadline. */
static void read_reply(int fd, mat_kind kind, double deadline, const mat_limits *L, reply *r) {
    int rc = read_exact(fd, &r->f, sizeof r->f, deadline);
    if (rc == 0 && (r->f.magic != FRAME_MAGIC || r->f.msglen >= MSG_MAX || r->f.esize != kind_esize(kind) ||
                    r->f.h < 0 || r->f.w < 0 || r->f.h > MAT_MAX_SIDE || r->f.w > MAT_MAX_SIDE))
        rc = -1;
    if (rc == 0) rc = read_exact(fd, r->msg, r->f.msglen, deadline);
    r->msg[rc == 0 ? r->f.msglen : 0] = '\0';
    const size_t bytes = (size_t)r->f.h * (size_t)r->f.w * r->f.esize;
    if (rc == 0 && r->f.status == 0 && bytes) {
        /* the worker held the map under its cap; a bigger one is a lie */
        if (bytes > L->mem_cap || !(r->data = malloc(bytes))) rc = -1;
        else rc = read_exact(fd, r->data, bytes, deadline);
    }
    r->timed_out = rc == 2;
    r->got = rc == 0;
    if (!r->got) {
        free(r->data);
        r->data = NULL;
    }
}

/* The result of a finished worker: its map, its refusal, or its death. */
static mt_status interpret(const char *path, int status, reply *r, const mat_limits *L, void **data, int *h,
                           int *w, char *err, size_t errlen) {
    const unsigned mib = (unsigned)(L->mem_cap >> 20);
    if (r->timed_out || (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM))
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: timed out after %g s in libmatio (worker killed)", path,
                       L->timeout_s);
    if (WIFSIGNALED(status))
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: libmatio crashed with signal %d (%s)", path,
                       WTERMSIG(status), signal_name(WTERMSIG(status)));
    if (!r->got || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: the MAT reader worker exited with status %d without a complete result", path,
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    if (r->f.status && r->f.oom)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: exceeded the %u MiB memory cap of the MAT reader (%s)",
                       path, mib, r->msg);
    if (r->f.status) {
        const mt_status st = r->f.status > 0 && r->f.status <= MT_ERR_FORMAT ? (mt_status)r->f.status
                                                                              : MT_ERR_FORMAT;
        return mt_errf(err, errlen, st, "%s", r->msg);
    }
    *data = r->data;
    *h = r->f.h;
    *w = r->f.w;
    r->data = NULL;
    return MT_OK;
}

/* One worker per file, forked from this (single-threaded) process. */
static mt_status parse_forked(mat_kind kind, const char *path, void **data, int *h, int *w, char *err,
                              size_t errlen) {
    mt_status st;
    const mat_limits L = limits;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot start the MAT reader worker: pipe: %s", path,
                       strerror(errno));
    mat_log_init(); /* HDF5 inside: here, not in the worker */
    /* A v7.3 worker calls HDF5, so it forks while no thread is inside it
     * (HDF5's global mutex copied held would block the worker). */
    const int hdf5 = mat_file_is_hdf5(path);
    if (hdf5) mat_hdf5_lock();
    const double deadline = now_s() + L.timeout_s;
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        worker_main(fds[1], kind, path, &L);
    }
    const int fork_errno = errno;
    if (hdf5) mat_hdf5_unlock();
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot start the MAT reader worker: fork: %s", path,
                       strerror(fork_errno));
    }
    reply r;
    memset(&r, 0, sizeof r);
    read_reply(fds[0], kind, deadline, &L, &r);
    if (r.timed_out) kill(pid, SIGKILL);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            status = 0;
            r.got = 0;
            break;
        }
    st = interpret(path, status, &r, &L, data, h, w, err, errlen);
    free(r.data);
    return st;
}

/* ------------------------------------------------------------- helpers */

/* A thread of a multi-threaded packer must not fork a worker itself: the
 * worker inherits every lock another thread held at that instant (HDF5's
 * global mutex, a sanitizer's allocator lock) and can block on it for
 * ever. So before its threads start, the packer forks one helper process
 * per thread; the helper, single-threaded, forks the per-file workers and
 * sends back what they returned, or how they died. */
#define REQ_MAGIC 0x4d415452u /* "MATR" */
#define MAX_HELPERS 64

typedef struct {
    int fd;
    pid_t pid;
} helper;

static helper helpers[MAX_HELPERS];
static int nhelpers = 0;
static _Thread_local int my_helper = -1;

static int read_full(int fd, void *p, size_t n) {
    char *c = p;
    while (n) {
        const ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static void helper_main(int fd) {
    close_others(fd);
    for (;;) {
        uint32_t req[3];
        char path[4096];
        if (read_full(fd, req, sizeof req) || req[0] != REQ_MAGIC || req[2] >= sizeof path ||
            read_full(fd, path, req[2]))
            _exit(0); /* the packer closed its end, or is gone */
        path[req[2]] = '\0';
        const mat_kind kind = req[1] == MAT_KIND_LABELMAP ? MAT_KIND_LABELMAP : MAT_KIND_PARTS;
        void *data = NULL;
        int h = 0, w = 0;
        char err[MSG_MAX] = "";
        const mt_status st = parse_forked(kind, path, &data, &h, &w, err, sizeof err);
        frame f = {FRAME_MAGIC, (int32_t)st, st ? 0 : h, st ? 0 : w, (uint32_t)kind_esize(kind),
                   (uint32_t)strlen(err), 0, 0};
        int bad = write_all(fd, &f, sizeof f) || write_all(fd, err, f.msglen);
        if (!bad && !st && data) bad = write_all(fd, data, (size_t)h * w * f.esize);
        free(data);
        if (bad) _exit(3);
    }
}

mt_status mat_helpers_start(int n, char *err, size_t errlen) {
    mat_log_init(); /* HDF5 inside: before any fork */
    if (!limits.isolate) return MT_OK;
    if (n > MAX_HELPERS) n = MAX_HELPERS;
    fflush(NULL); /* a helper must not write the packer's buffered output again */
    while (nhelpers < n) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            return mt_errf(err, errlen, MT_ERR_IO, "cannot start the MAT reader helpers: socketpair: %s",
                           strerror(errno));
        const pid_t pid = fork();
        if (pid == 0) {
            close(sv[0]);
            helper_main(sv[1]);
        }
        const int e = errno;
        close(sv[1]);
        if (pid < 0) {
            close(sv[0]);
            return mt_errf(err, errlen, MT_ERR_IO, "cannot start the MAT reader helpers: fork: %s", strerror(e));
        }
        helpers[nhelpers].fd = sv[0];
        helpers[nhelpers].pid = pid;
        nhelpers++;
    }
    return MT_OK;
}

void mat_helpers_bind(int i) { my_helper = i >= 0 && i < nhelpers ? i : -1; }

void mat_helpers_stop(void) {
    for (int i = 0; i < nhelpers; i++) {
        close(helpers[i].fd); /* end of requests: the helper exits */
        while (waitpid(helpers[i].pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    nhelpers = 0;
}

/* The request to this thread's helper and its reply. */
static mt_status parse_via_helper(const helper *hp, mat_kind kind, const char *path, void **data, int *h, int *w,
                                  char *err, size_t errlen) {
    const size_t len = strlen(path);
    const uint32_t req[3] = {REQ_MAGIC, (uint32_t)kind, (uint32_t)len};
    if (len >= 4096 || write_all(hp->fd, req, sizeof req) || write_all(hp->fd, path, len))
        return mt_errf(err, errlen, MT_ERR_IO, "%s: the MAT reader helper process is gone", path);
    /* the helper enforces the worker's time limit; this bounds the helper */
    reply r;
    memset(&r, 0, sizeof r);
    read_reply(hp->fd, kind, now_s() + limits.timeout_s + 30, &limits, &r);
    if (!r.got) {
        free(r.data);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: no complete answer from the MAT reader helper process", path);
    }
    if (r.f.status) {
        const mt_status st = r.f.status > 0 && r.f.status <= MT_ERR_FORMAT ? (mt_status)r.f.status : MT_ERR_FORMAT;
        return mt_errf(err, errlen, st, "%s", r.msg);
    }
    *data = r.data;
    *h = r.f.h;
    *w = r.f.w;
    return MT_OK;
}

mt_status mat_parse_isolated(mat_kind kind, const char *path, void **data, int *h, int *w, char *err,
                             size_t errlen) {
    *data = NULL;
    *h = *w = 0;
    mt_status st = mat_precheck(path, err, errlen);
    if (st) return st;
    if (!limits.isolate) return mat_parse_file(kind, path, data, h, w, err, errlen);
    if (my_helper >= 0) return parse_via_helper(&helpers[my_helper], kind, path, data, h, w, err, errlen);
    return parse_forked(kind, path, data, h, w, err, errlen);
}
