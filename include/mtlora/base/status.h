/* status.h - error codes shared by every mtlora function.
 *
 * Every fallible function returns an mt_status. MT_OK is zero so that
 * `if (st) return st;` reads naturally. The human-readable message for the
 * last failure lives in the mt_ctx that was passed in (mt_ctx_error()), so
 * there is no hidden global error state. */
#ifndef MTLORA_STATUS_H
#define MTLORA_STATUS_H

#include <stddef.h>

typedef enum {
    MT_OK = 0,
    MT_ERR_ARG = 1,    /* null pointer or out-of-range scalar argument */
    MT_ERR_SHAPE = 2,  /* dimensions that do not fit together */
    MT_ERR_NOMEM = 3,  /* allocation failed */
    MT_ERR_DNNL = 4,   /* oneDNN refused or failed an operation */
    MT_ERR_IO = 5,     /* file could not be read or written */
    MT_ERR_FORMAT = 6  /* file content is malformed */
} mt_status;

/* Short constant name of a status code ("MT_ERR_SHAPE"). */
const char *mt_status_name(mt_status st);

/* For modules that report into a caller's buffer instead of an mt_ctx
 * (config, file readers): formats the message into err (if not NULL) and
 * returns st. */
mt_status mt_errf(char *err, size_t errlen, mt_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
