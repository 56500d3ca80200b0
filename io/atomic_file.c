/* atomic_file.c - temporary, fsync, rename, directory fsync (atomic_file.h). */
#include "mtlora/io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static mt_status name_tmp(atomic_file *af, const char *path, char *err, size_t errlen) {
    memset(af, 0, sizeof *af);
    if (!path || !path[0]) return mt_errf(err, errlen, MT_ERR_ARG, "atomic write: empty path");
    const size_t n = strlen(path);
    if (n >= sizeof af->path) return mt_errf(err, errlen, MT_ERR_ARG, "%s: path too long", path);
    memcpy(af->path, path, n + 1);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp.%ld", path, (long)getpid());
    return MT_OK;
}

mt_status atomic_file_reserve(atomic_file *af, const char *path, char *err, size_t errlen) {
    mt_status st = name_tmp(af, path, err, errlen);
    if (st) return st;
    unlink(af->tmp); /* a stale one from a dead process with our pid */
    return MT_OK;
}

mt_status atomic_file_open(atomic_file *af, const char *path, char *err, size_t errlen) {
    mt_status st = atomic_file_reserve(af, path, err, errlen);
    if (st) return st;
    af->f = fopen(af->tmp, "wb");
    if (!af->f)
        return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot create %s: %s", path, af->tmp, strerror(errno));
    return MT_OK;
}

/* fsync of the directory holding `path`, so the rename itself is durable. */
static int sync_dir(const char *path) {
    char dir[MT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    const int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    /* Some file systems refuse fsync on a directory (EINVAL): nothing to do. */
    const int rc = fsync(fd) != 0 && errno != EINVAL ? -1 : 0;
    close(fd);
    return rc;
}

mt_status atomic_file_commit(atomic_file *af, char *err, size_t errlen) {
    const char *step = NULL;
    int e = 0;
    if (af->f) {
        if (fflush(af->f) != 0 || ferror(af->f)) step = "write", e = errno;
        else if (fsync(fileno(af->f)) != 0) step = "fsync", e = errno;
        if (fclose(af->f) != 0 && !step) step = "close", e = errno;
        af->f = NULL;
    } else {
        const int fd = open(af->tmp, O_RDONLY);
        if (fd < 0) step = "open", e = errno;
        else {
            if (fsync(fd) != 0) step = "fsync", e = errno;
            close(fd);
        }
    }
    if (!step && rename(af->tmp, af->path) != 0) step = "rename", e = errno;
    if (step) {
        unlink(af->tmp);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: %s of %s failed: %s", af->path, step, af->tmp,
                       strerror(e ? e : EIO));
    }
    if (sync_dir(af->path) != 0)
        return mt_errf(err, errlen, MT_ERR_IO, "%s: fsync of its directory failed: %s", af->path,
                       strerror(errno));
    return MT_OK;
}

void atomic_file_abort(atomic_file *af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    if (af->tmp[0]) unlink(af->tmp);
    af->tmp[0] = 0;
}

mt_status atomic_rename(const char *from, const char *to, char *err, size_t errlen) {
    if (rename(from, to) != 0)
        return mt_errf(err, errlen, MT_ERR_IO, "%s: rename of %s failed: %s", to, from, strerror(errno));
    if (sync_dir(to) != 0)
        return mt_errf(err, errlen, MT_ERR_IO, "%s: fsync of its directory failed: %s", to, strerror(errno));
    return MT_OK;
}

mt_status atomic_write(const char *path, const void *data, size_t n, char *err, size_t errlen) {
    atomic_file af;
    mt_status st = atomic_file_open(&af, path, err, errlen);
    if (st) return st;
    if (n && fwrite(data, 1, n, af.f) != n) {
        const int e = errno;
        atomic_file_abort(&af);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: write failed: %s", path, strerror(e ? e : EIO));
    }
    return atomic_file_commit(&af, err, errlen);
}

mt_status mt_make_dirs(const char *path, char *err, size_t errlen) {
    char buf[MT_PATH_MAX];
    const size_t n = strlen(path);
    if (n >= sizeof buf) return mt_errf(err, errlen, MT_ERR_ARG, "path too long: %s", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        const char keep = buf[i];
        buf[i] = '\0';
        struct stat sb;
        if (mkdir(buf, 0777) != 0 && (errno != EEXIST || stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)))
            return mt_errf(err, errlen, MT_ERR_IO, "cannot create directory %s: %s", buf,
                           strerror(errno == EEXIST ? ENOTDIR : errno));
        buf[i] = keep;
    }
    return MT_OK;
}
