/* dist_checkpoint.c - checkpoints and resume across ranks: rank 0 writes
 * and reads the file, every rank receives what it read, so no shared file
 * system is needed (trainer_internal.h). */
#include <stdio.h>
#include <string.h>

#include "trainer_internal.h"

int trainer_share_buffers(trainer *s) {
    param_bank *bank = mt_model_bank(s->m);
    char err[TRAINER_ERRLEN];
    if (dist_bcast_floats(s->d, bank->buffers, bank->n_buffer, err, sizeof err)) return trainer_fail(s, err);
    return 0;
}

int trainer_checkpoint(trainer *s, const char *why) {
    if (!s->cfg.run.dir[0]) return 0;
    if (trainer_share_buffers(s)) return 1;
    int failed = 0;
    if (s->d->rank == 0) {
        char err[TRAINER_ERRLEN], path[4200];
        if (ckpt_write(s->cfg.run.dir, &s->ck, mt_model_bank(s->m), s->ts.mom, s->ts.vel,
                       s->cfg.run.keep_checkpoints, path, sizeof path, err, sizeof err))
            failed = 1, fprintf(stderr, "mtlora_dist: checkpoint: %s\n", err);
        else if (!s->R.quiet) {
            report_line_break(&s->R);
            printf("checkpoint (%s) after step %lld: %s\n", why, (long long)s->ck.step, path);
        }
        fflush(stdout);
    }
    const int rc = MPI_Bcast(&failed, 1, MPI_INT, 0, s->d->sync);
    if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Bcast (checkpoint written?)");
    if (failed) return trainer_fail(s, "writing the checkpoint failed");
    return 0;
}

/* Rank 0: reads the checkpoint `what` names. Returns 1 found, 0 none (auto
 * with an empty RUN.DIR), -1 refused. */
static int read_on_rank0(trainer *s, const char *what, char *path, size_t path_len) {
    param_bank *bank = mt_model_bank(s->m);
    char err[TRAINER_ERRLEN] = "", skipped[4096] = "";
    int found = 0;
    mt_status st;
    if (!strcmp(what, "auto")) {
        st = ckpt_load_latest(s->cfg.run.dir, s->config_hash, &s->ck, bank, s->ts.mom, s->ts.vel, &found,
                              path, path_len, skipped, sizeof skipped, err, sizeof err);
    } else {
        st = ckpt_load(what, s->config_hash, &s->ck, bank, s->ts.mom, s->ts.vel, err, sizeof err);
        found = st ? -1 : 1;
        snprintf(path, path_len, "%s", what);
    }
    if (st) found = -1;
    if (skipped[0]) fprintf(stderr, "mtlora_dist: skipped checkpoints:\n%s", skipped);
    if (found < 0) fprintf(stderr, "mtlora_dist: --resume %s: %s\n", what, err);
    else if (!found && !s->R.quiet) printf("no checkpoint in %s: starting fresh\n", s->cfg.run.dir);
    else if (!s->R.quiet) printf("resuming from %s at step %lld\n", path, (long long)s->ck.step);
    if (found > 0 && s->ck.world != s->d->size) {
        fprintf(stderr, "mtlora_dist: --resume: %s was written by %lld ranks, this job has %d: "
                        "resume with the same number of ranks\n", path, (long long)s->ck.world, s->d->size);
        found = -1;
    }
    return found;
}

int trainer_resume(trainer *s, const char *what) {
    param_bank *bank = mt_model_bank(s->m);
    char err[TRAINER_ERRLEN], path[4200] = "";
    int found = s->d->rank == 0 ? read_on_rank0(s, what, path, sizeof path) : 0;
    int rc = MPI_Bcast(&found, 1, MPI_INT, 0, s->d->sync);
    if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Bcast (checkpoint found?)");
    if (found < 0) return trainer_fail(s, "cannot resume");
    if (!found) return 0;
    int64_t pos[8] = {s->ck.step, s->ck.epoch, s->ck.batch, s->ck.adam_step, s->ck.skipped,
                      (int64_t)s->ck.config_hash, s->ck.world, s->ck.bn_tracked};
    rc = MPI_Bcast(pos, 8, MPI_INT64_T, 0, s->d->sync);
    if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Bcast (checkpoint position)");
    mt_model_set_bn_tracked(s->m, pos[7]);
    s->ck.step = pos[0];
    s->ck.epoch = pos[1];
    s->ck.batch = pos[2];
    s->ck.adam_step = pos[3];
    s->ck.skipped = pos[4];
    if (dist_bcast_floats(s->d, bank->trainable, bank->n_trainable, err, sizeof err) ||
        dist_bcast_floats(s->d, s->ts.mom, bank->n_trainable, err, sizeof err) ||
        dist_bcast_floats(s->d, s->ts.vel, bank->n_trainable, err, sizeof err) ||
        dist_bcast_floats(s->d, bank->buffers, bank->n_buffer, err, sizeof err))
        return trainer_fail(s, err);
    return 0;
}
