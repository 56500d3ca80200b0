/* weight_file.h - a file of named tensors in either format people hold:
 * safetensors (safetensors.h) or a PyTorch .pth (pth.h, zip or legacy),
 * presented as one st_file so that one loader serves both.
 *
 * The format is told by the content, not the name: a safetensors header
 * (a little-endian u64 length, then '{'), a zip archive ("PK\3\4"), a
 * pickle (protocol opcode 0x80: the legacy format) or a tar archive
 * (torch < 0.4, which pth_load refuses with a re-save hint). Anything
 * else is handed to the safetensors reader, whose message names it.
 *
 * A .pth is read with pth_load's auto key (the dict under "model", else
 * "state_dict", else the top level), its tensors converted as pth.h says
 * (every float kind to F32, every integer kind to I64) and laid out in one
 * buffer; the st_file is then read with st_read_f32 / st_read_i64 and
 * freed with st_free like any other. Names of ST_NAME_LEN bytes or more
 * are refused by name. */
#ifndef MTLORA_WEIGHT_FILE_H
#define MTLORA_WEIGHT_FILE_H

#include <stddef.h>
#include "mtlora/base/status.h"
#include "mtlora/io/safetensors.h"

typedef struct {
    char format[24];    /* "safetensors", "pth (zip)" or "pth (legacy)" */
    char key[256];      /* .pth: the top-level key whose dict was read ("model"), "" the top level */
    char others[1024];  /* .pth: the other top-level keys and their kinds, e.g. "optimizer (dict),
                           config (placeholder yacs.config.CfgNode)"; cut with ", ..." */
} weight_file_info;

/* Loads path (either format) into *f; info may be NULL. On a refusal *f
 * is zeroed and err names the file and the entry, key or tensor. */
mt_status weight_file_load(st_file *f, const char *path, weight_file_info *info, char *err, size_t errlen);

/* 1 if the content of path is a .pth (zip, legacy pickle or tar), 0 if
 * not or unreadable. */
int weight_file_is_pth(const char *path);

#endif
