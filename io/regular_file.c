/* regular_file.c - regular files only (regular_file.h). */
#include "mtlora/io/regular_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

const char *mt_file_kind(mode_t m) {
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

mt_status mt_open_regular(const char *path, int *fd, uint64_t *size, char *err, size_t errlen) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return mt_errf(err, errlen, MT_ERR_IO, "%s: %s, not a regular file: refused unread", path,
                       mt_file_kind(sb.st_mode));
    const int d = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (d < 0) return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(d, &sb) != 0) {
        const int e = errno;
        close(d);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(d);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: replaced by %s while being opened: refused", path,
                       mt_file_kind(sb.st_mode));
    }
    *fd = d;
    *size = (uint64_t)sb.st_size;
    return MT_OK;
}

mt_status mt_read_exact(int fd, const char *path, unsigned char *buf, size_t n, char *err, size_t errlen) {
    size_t got = 0;
    while (got < n) {
        const ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return mt_errf(err, errlen, MT_ERR_IO, "%s: read error: %s", path, strerror(errno));
        if (k == 0) return mt_errf(err, errlen, MT_ERR_IO, "%s: shrank while being read", path);
        got += (size_t)k;
    }
    return MT_OK;
}
