/* seed_config OUTDIR - the seed corpus of fuzz_config: the project's own
 * configurations (launch/quickstart.yaml, tests/data/ YAML files), the config
 * writer's output for the default, the built-in and a few adapter and
 * string variants, and two --opts inputs (0x01 KEY \n VALUE). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/config/config.h"

#ifndef MTLORA_SOURCE_DIR
#define MTLORA_SOURCE_DIR "."
#endif

/* The seed is a configuration the loader accepts (as fuzz_config runs it:
 * TASKS [sal] when it names none, then finalize). */
static int accepted(const char *name, const char *data, size_t n) {
    static mt_config c;
    char err[1024];
    mt_config_default(&c);
    mt_status st = mt_config_load_buffer(&c, data, n, name, err, sizeof err);
    if (!st && c.ntasks == 0) st = mt_config_set_tasks(&c, "sal", err, sizeof err);
    if (!st) st = mt_config_finalize(&c, err, sizeof err);
    if (st) fprintf(stderr, "seed_config: the loader refuses its seed: %s\n", err);
    return st ? 1 : 0;
}

static int write_file(const char *dir, const char *name, const char *data, size_t n) {
    if (data[0] != 0x01 && accepted(name, data, n)) return 1;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "seed_config: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

static int copy_file(const char *dir, const char *name, const char *src) {
    FILE *f = fopen(src, "rb");
    if (!f) {
        fprintf(stderr, "seed_config: cannot open %s\n", src);
        return 1;
    }
    static char buf[65536];
    const size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return write_file(dir, name, buf, n);
}

/* The writer's text of a config: the built-in (or the defaults with one
 * task) with KEY VALUE pairs set. */
static int written(const char *dir, const char *name, int builtin, const char *const *kv) {
    static mt_config c;
    char err[1024], *text;
    size_t len;
    mt_status st = builtin ? mt_config_builtin(&c, err, sizeof err) : MT_OK;
    if (!builtin) {
        mt_config_default(&c);
        st = mt_config_set_tasks(&c, "sal", err, sizeof err);
    }
    for (; !st && kv && kv[0]; kv += 2) st = mt_config_set(&c, kv[0], kv[1], err, sizeof err);
    if (!st) st = mt_config_finalize(&c, err, sizeof err);
    if (!st) st = mt_config_yaml_text(&c, &text, &len, err, sizeof err);
    if (st) {
        fprintf(stderr, "seed_config: %s: %s\n", name, err);
        return 1;
    }
    const int rc = write_file(dir, name, text, len);
    free(text);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seed_config OUTDIR\n");
        return 2;
    }
    const char *out = argv[1];
    int rc = copy_file(out, "quickstart.yaml", MTLORA_SOURCE_DIR "/launch/quickstart.yaml");
    DIR *d = opendir(MTLORA_SOURCE_DIR "/tests/data");
    for (struct dirent *e; d && (e = readdir(d));) {
        const size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".yaml")) continue;
        char src[4096], name[512];
        snprintf(src, sizeof src, "%s/tests/data/%s", MTLORA_SOURCE_DIR, e->d_name);
        snprintf(name, sizeof name, "data_%s", e->d_name);
        rc |= copy_file(out, name, src);
    }
    if (d) closedir(d);
    else rc |= 1;
    static const char *const mtl[] = {"MODEL.ADAPTER.KIND", "mtl_lora", "MODEL.ADAPTER.FC1", "none",
                                      "MODEL.ADAPTER.MTL_LORA.LAMBDA", "diag", NULL};
    static const char *const cgc[] = {"MODEL.ADAPTER.KIND", "cgc_lora", "RUN.STL_BASELINES",
                                      "[0.7, 0.6, 0.65, 17.5]", "TRAIN.OPTIMIZER.BETAS", "[0.5, 0.75]",
                                      NULL};
    static const char *const str[] = {"MODEL.NAME", "\"tab\\tline\\n\\\"q\\\" \\\\ # & * \\u00e9\\x01\"",
                                      "RUN.DIR", "'- a: b'", NULL};
    rc |= written(out, "written_default.yaml", 0, NULL);
    rc |= written(out, "written_builtin.yaml", 1, NULL);
    rc |= written(out, "written_mtl_lora.yaml", 1, mtl);
    rc |= written(out, "written_cgc_lora.yaml", 1, cgc);
    rc |= written(out, "written_strings.yaml", 1, str);
    static const char opts1[] = "\x01MODEL.MTLORA.R_PER_TASK\n{shared: [16], semseg: [4], human_parts: [4], "
                                "sal: [4], normals: [4]}";
    static const char opts2[] = "\x01TRAIN.OPTIMIZER.BETAS\n(0.9, 0.999)";
    rc |= write_file(out, "opts_r_per_task", opts1, sizeof opts1 - 1);
    rc |= write_file(out, "opts_betas", opts2, sizeof opts2 - 1);
    /* a flat use of aliases, as a hand-written file may have */
    static const char alias[] = "MODEL:\n  MTLORA:\n    ENABLED: True\n    R_PER_TASK: {shared: &r [4], "
                                "sal: *r}\nTASKS: [sal]\n";
    rc |= write_file(out, "aliases.yaml", alias, sizeof alias - 1);
    return rc ? 1 : 0;
}
