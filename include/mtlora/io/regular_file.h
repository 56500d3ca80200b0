/* regular_file.h - opening a file for reading only when it is a regular
 * file: stat first, so a FIFO is never opened (opening one for reading
 * blocks until a writer comes) and a directory never read (its size from
 * lseek is LLONG_MAX), then O_NONBLOCK and fstat for a file swapped in
 * between. The one helper every reader of untrusted files uses. */
#ifndef MTLORA_REGULAR_FILE_H
#define MTLORA_REGULAR_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include "mtlora/base/status.h"

/* "a directory", "a FIFO", "a character device", ... for a stat mode. */
const char *mt_file_kind(mode_t m);

/* On success *fd is open read-only (close it) and *size is the file's size;
 * otherwise nothing is open and err names the path and what it is. */
mt_status mt_open_regular(const char *path, int *fd, uint64_t *size, char *err, size_t errlen);

/* Reads exactly n bytes from fd at its offset (retrying EINTR); a file
 * that ends first "shrank while being read". Messages name path. */
mt_status mt_read_exact(int fd, const char *path, unsigned char *buf, size_t n, char *err, size_t errlen);

#endif
