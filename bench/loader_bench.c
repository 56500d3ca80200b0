/* loader_bench - how fast the shard loader delivers augmented batches on its
 * one background thread, with nothing else running:
 *
 *   loader_bench --data SHARD_DIR [--size S] [--batch N] [--batches N]
 *                [--train-images-per-s X]
 *
 * Prints batches/s and images/s (train transform: flip, scale/rotate,
 * resize to S, normalise), and with --train-images-per-s (the trainer's
 * speed, from train_step) the ratio: above 1 the loader keeps ahead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mtlora/base/clock.h"
#include "mtlora/io/shards/shard.h"
#include "mtlora/io/shards/shard_loader.h"

int main(int argc, char **argv) {
    const char *data = NULL;
    int size = 448, batch = 2, nb = 20;
    double train_ips = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batches") && i + 1 < argc) nb = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--train-images-per-s") && i + 1 < argc) train_ips = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s --data SHARD_DIR [--size S] [--batch N] [--batches N] "
                            "[--train-images-per-s X]\n", argv[0]);
            return 2;
        }
    }
    if (!data || size < 8 || batch < 1 || nb < 1) {
        fprintf(stderr, "loader_bench: --data is required; --size >= 8, --batch/--batches >= 1\n");
        return 2;
    }
    loader_opts o = {data, "train", SHARD_SEMSEG | SHARD_HUMAN_PARTS | SHARD_SAL | SHARD_NORMALS,
                     0, 1, batch, size, 1, 11, 1, 0, 0};
    shard_loader *L;
    char err[1024];
    if (loader_open(&L, &o, err, sizeof err)) {
        fprintf(stderr, "loader_bench: %s\n", err);
        return 1;
    }
    loader_batch *b;
    if (loader_next(L, &b, err, sizeof err)) { /* first batch: file opening, page cache */
        fprintf(stderr, "loader_bench: %s\n", err);
        return 1;
    }
    const double t0 = mt_now_s();
    for (int i = 0; i < nb; i++)
        if (loader_next(L, &b, err, sizeof err)) {
            fprintf(stderr, "loader_bench: %s\n", err);
            return 1;
        }
    const double dt = mt_now_s() - t0;
    printf("loader: %d batches of %d at %dx%d (4 tasks, train augmentation, 1 thread): "
           "%.2f batches/s, %.2f images/s\n", nb, batch, size, size, nb / dt, nb * batch / dt);
    if (train_ips > 0)
        printf("trainer consumes %.2f images/s: loader/trainer = %.1fx\n", train_ips,
               nb * batch / dt / train_ips);
    loader_close(L);
    return 0;
}
