/* trainer_model.c - the model on every rank of a run (trainer_internal.h):
 * created from the config and the seed, weights read once per node, the
 * frozen ones shared through the node's window, the trainable ones
 * broadcast and checked by hash. */
#include <stdio.h>

#include "mtlora/model/model.h"
#include "trainer_internal.h"

/* The model on every rank: pretrained encoder weights (and --resume's whole
 * model, opts->weights) read by each node's first rank only; the frozen ones
 * reach the node's ranks through the shared window, the trainable ones
 * (norms, patch embedding, ...) through the broadcast, checked by hash. */
/* Weights read by each node's first rank; every rank learns whether all
 * succeeded; rank 0 says what was read. */
static int load_on_node(trainer *s, const char *path, mt_load_mode mode, const char *what, const char *flag) {
    int failed = 0, any = 0;
    char note[2048] = "";
    if (s->d->node_rank == 0 && mt_model_load_report(s->m, s->ctx, path, mode, note, sizeof note))
        failed = 1, fprintf(stderr, "mtlora_dist: rank %d: %s\n", s->d->rank, mt_ctx_error(s->ctx));
    const int rc = MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, s->d->sync);
    if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Allreduce (weights loaded?)");
    char msg[256];
    snprintf(msg, sizeof msg, "cannot load the %s (%s)", what, flag);
    if (any) return trainer_fail(s, msg);
    if (s->d->rank == 0 && !s->opts->quiet) printf("%s: %s (%s)\n", what, path, note);
    return 0;
}

int trainer_build_model(trainer *s) {
    const mt_config *c = &s->cfg;
    char err[TRAINER_ERRLEN];
    if (mt_ctx_create(&s->ctx, err, sizeof err)) return trainer_fail(s, err);
    if (mt_model_create(&s->m, s->ctx, c, (uint64_t)c->seed)) return trainer_fail(s, mt_ctx_error(s->ctx));
    param_bank *bank = mt_model_bank(s->m);
    const char *w = s->opts->weights;
    if (c->pretrained[0] && load_on_node(s, c->pretrained, MT_LOAD_PRETRAINED, "pretrained encoder weights",
                                         "MODEL.PRETRAINED / --pretrained"))
        return 1;
    if (w && load_on_node(s, w, s->opts->weights_skip_decoders ? MT_LOAD_NO_DECODERS : MT_LOAD_CHECKPOINT,
                          s->opts->weights_skip_decoders ? "model weights without decoders" : "model weights",
                          "--resume FILE"))
        return 1;
    if (dist_share_frozen(s->d, s->m, s->ctx, err, sizeof err)) return trainer_fail(s, err);
    if (dist_bcast_floats(s->d, bank->trainable, bank->n_trainable, err, sizeof err)) return trainer_fail(s, err);
    if (w && dist_bcast_floats(s->d, bank->buffers, bank->n_buffer, err, sizeof err)) return trainer_fail(s, err);
    if (dist_check_same(s->d, dist_hash(bank->trainable, sizeof(float) * bank->n_trainable),
                        "trainable values after broadcast", err, sizeof err))
        return trainer_fail(s, err);
    return 0;
}
