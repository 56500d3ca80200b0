/* run_corpus - a main() for a fuzz target in the ordinary (gcc) builds.
 *
 * The libFuzzer build links each tests/fuzz/fuzz_<name>.c with libFuzzer;
 * the release and ASan builds link it with this file instead, so that gcc
 * keeps compiling every target and ctest runs it over its seed corpus.
 * Besides each file as it is, it feeds deterministic variants: prefixes
 * (truncated files) and copies with one byte changed, which reach most
 * "length field points past the end" and "bad magic" refusals without a
 * fuzzing engine. Each input sits in a buffer of exactly its size, so ASan
 * sees any read past its end.
 *
 *   fuzz_<name> [-n VARIANTS] FILE_OR_DIR...
 *
 * Exit status 0 when every input returned (a crash aborts the process), 2
 * on a usage or read error.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, as in libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

typedef struct {
  long variants;   /* byte-change variants per file */
  long inputs;     /* inputs run so far */
  long files;
} run_state;

/* Runs one input from a private exact-size copy (the target may not keep
 * the pointer; a copy also catches a target that writes to its input). */
static void run_one(run_state *st, const uint8_t *data, size_t size) {
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) {
    fprintf(stderr, "run_corpus: out of memory for a %zu-byte input\n", size);
    exit(2);
  }
  if (size) memcpy(copy, data, size);
  (void)LLVMFuzzerTestOneInput(copy, size);
  free(copy);
  st->inputs++;
}

/* xorshift64: deterministic positions and values for the byte changes. */
static uint64_t next_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *s = x;
  return x;
}

static void run_variants(run_state *st, const uint8_t *data, size_t size) {
  run_one(st, data, size);
  /* Prefixes: 0, 1/8, ..., 7/8 of the file and the file less its last byte. */
  size_t last = (size_t)-1;
  for (int k = 0; k <= 8; k++) {
    size_t cut = k < 8 ? size / 8 * (size_t)k : (size ? size - 1 : 0);
    if (cut == last || cut >= size) continue;
    run_one(st, data, cut);
    last = cut;
  }
  if (size == 0) return;
  uint8_t *m = malloc(size);
  if (!m) {
    fprintf(stderr, "run_corpus: out of memory for a %zu-byte input\n", size);
    exit(2);
  }
  uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)size;
  /* The interesting values for a length or count field: 0, all ones, a
   * high bit, and a random byte; positions favour the header (first 64). */
  static const uint8_t vals[] = {0x00, 0xff, 0x80, 0x7f};
  for (long v = 0; v < st->variants; v++) {
    memcpy(m, data, size);
    uint64_t r = next_rand(&s);
    size_t span = (v % 2 == 0 && size > 64) ? 64 : size;
    size_t pos = (size_t)(r % span);
    uint8_t val = (v % 5 == 4) ? (uint8_t)(r >> 32) : vals[(r >> 24) % 4];
    if (val == m[pos]) val = (uint8_t)(val ^ 0x01);
    m[pos] = val;
    run_one(st, m, size);
  }
  free(m);
}

static int run_file(run_state *st, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "run_corpus: cannot open %s: %s\n", path, strerror(errno));
    return -1;
  }
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      size_t ncap = cap ? cap * 2 : 4096;
      uint8_t *nb = realloc(buf, ncap);
      if (!nb) {
        fprintf(stderr, "run_corpus: out of memory reading %s\n", path);
        free(buf);
        fclose(f);
        return -1;
      }
      buf = nb;
      cap = ncap;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    fprintf(stderr, "run_corpus: read error on %s\n", path);
    free(buf);
    return -1;
  }
  run_variants(st, buf, len);
  free(buf);
  st->files++;
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file directly in dir, in name order (a stable run). */
static int run_dir(run_state *st, const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "run_corpus: cannot open directory %s: %s\n", dir, strerror(errno));
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    size_t need = strlen(dir) + strlen(e->d_name) + 2;
    char *p = malloc(need);
    if (!p) { rc = -1; break; }
    snprintf(p, need, "%s/%s", dir, e->d_name);
    struct stat sb;
    if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) { free(p); continue; }
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      char **nn = realloc(names, ncap * sizeof *nn);
      if (!nn) { free(p); rc = -1; break; }
      names = nn;
      cap = ncap;
    }
    names[n++] = p;
  }
  closedir(d);
  if (rc == 0) {
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && rc == 0; i++) rc = run_file(st, names[i]);
  } else {
    fprintf(stderr, "run_corpus: out of memory listing %s\n", dir);
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  run_state st = {.variants = 16, .inputs = 0, .files = 0};
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "-n") == 0) {
    char *end;
    st.variants = strtol(argv[2], &end, 10);
    if (*end || st.variants < 0) {
      fprintf(stderr, "run_corpus: -n wants a count, got '%s'\n", argv[2]);
      return 2;
    }
    first = 3;
  }
  if (first >= argc) {
    fprintf(stderr, "usage: %s [-n VARIANTS] FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  for (int i = first; i < argc; i++) {
    struct stat sb;
    if (stat(argv[i], &sb) != 0) {
      fprintf(stderr, "run_corpus: %s: %s\n", argv[i], strerror(errno));
      return 2;
    }
    int rc = S_ISDIR(sb.st_mode) ? run_dir(&st, argv[i]) : run_file(&st, argv[i]);
    if (rc != 0) return 2;
  }
  if (st.files == 0) {
    fprintf(stderr, "run_corpus: no input files under the given paths (an empty seed corpus?)\n");
    return 2;
  }
  printf("run_corpus: %ld inputs from %ld files, all returned\n", st.inputs, st.files);
  return 0;
}
