/* pth_load.c - pth_load (pth.h): only a regular file is opened (stat
 * first, so a FIFO never blocks, then O_NONBLOCK and fstat), its first
 * bytes tell the format: "PK\3\4" (or an empty archive's "PK\5\6") the zip
 * format (pth_zip.c), "ustar" at byte 257 the tar format of torch < 0.4
 * (refused, saying how to re-save it), a pickle's PROTO opcode the legacy
 * format (pth_legacy.c). pth_free, pth_find. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pth_internal.h"
#include "mtlora/io/regular_file.h"

mt_status pth_load(const char *path, const char *key, pth_file *out, char *err, size_t errlen) {
    if (!out) return mt_errf(err, errlen, MT_ERR_ARG, "pth_load: no output");
    memset(out, 0, sizeof *out);
    if (!path) return mt_errf(err, errlen, MT_ERR_ARG, "pth_load: no path");
    int fd = -1;
    uint64_t size = 0;
    mt_status st = mt_open_regular(path, &fd, &size, err, errlen);
    if (st) return st;
    unsigned char head[264] = {0};
    size_t got = 0;
    while (got < sizeof head && got < size) {
        const ssize_t k = pread(fd, head + got, sizeof head - got, (off_t)got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    if (size > PTH_MAX_FILE || got < 8 || got < (size < sizeof head ? size : sizeof head)) {
        close(fd);
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %llu bytes: %s", path, (unsigned long long)size,
                       size > PTH_MAX_FILE ? "larger than the 64 GiB read here"
                                           : "too short for a PyTorch file, or unreadable");
    }
    if (!memcmp(head, "PK\3\4", 4) || !memcmp(head, "PK\5\6", 4))
        st = pth_zip_load(path, fd, size, key, out, err, errlen);
    else if (got >= 262 && !memcmp(head + 257, "ustar", 5)) {
        close(fd);
        st = mt_errf(err, errlen, MT_ERR_FORMAT,
                     "%s: a tar archive, the format of torch < 0.4, which is not read here; re-save it "
                     "with a current torch: python3 -c \"import torch; torch.save(torch.load('%s', "
                     "weights_only=True), '%s.new.pth')\"", path, path, path);
    } else if (head[0] == 0x80)
        st = pth_legacy_load(path, fd, size, key, out, err, errlen);
    else {
        close(fd);
        st = mt_errf(err, errlen, MT_ERR_FORMAT,
                     "%s: not a PyTorch file: neither a zip archive nor a legacy pickle (first byte 0x%02x)",
                     path, head[0]);
    }
    if (st) pth_free(out);
    return st;
}

void pth_free(pth_file *f) {
    if (!f) return;
    for (int i = 0; i < f->count; i++) free(f->tensors[i].data);
    free(f->tensors);
    free(f->others);
    memset(f, 0, sizeof *f);
}

const pth_tensor *pth_find(const pth_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (int i = 0; i < f->count; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}
