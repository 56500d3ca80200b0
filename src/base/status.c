/* status.c - names of status codes. */
#include <stdarg.h>
#include <stdio.h>

#include "mtlora/base/status.h"

const char *mt_status_name(mt_status st) {
    switch (st) {
    case MT_OK: return "MT_OK";
    case MT_ERR_ARG: return "MT_ERR_ARG";
    case MT_ERR_SHAPE: return "MT_ERR_SHAPE";
    case MT_ERR_NOMEM: return "MT_ERR_NOMEM";
    case MT_ERR_DNNL: return "MT_ERR_DNNL";
    case MT_ERR_IO: return "MT_ERR_IO";
    case MT_ERR_FORMAT: return "MT_ERR_FORMAT";
    }
    return "MT_ERR_UNKNOWN";
}

mt_status mt_errf(char *err, size_t errlen, mt_status st, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}
