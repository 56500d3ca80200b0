/* dist_checkpoint.c - checkpoints and resume across ranks: rank 0 writes
 * and reads the file, every rank receives what it read, so no shared file
 * system is needed (trainer_internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/base/clock.h"
#include "trainer_internal.h"

int trainer_share_buffers(trainer *s) {
    param_bank *bank = mt_model_bank(s->m);
    char err[TRAINER_ERRLEN];
    if (dist_bcast_floats(s->d, bank->buffers, bank->n_buffer, err, sizeof err)) return trainer_fail(s, err);
    return 0;
}

int trainer_checkpoint(trainer *s, const char *why) {
    if (!s->cfg.run.dir[0]) return 0;
    const double t0 = mt_now_s(); /* RUN.TIMELINE's span */
    if (trainer_share_buffers(s)) return 1;
    int failed = 0;
    if (s->d->rank == 0) {
        char err[TRAINER_ERRLEN], path[4200];
        /* the run identity: a run that did not resume starts its own now */
        if (s->ck.run_start <= 0) s->ck.run_start = ckpt_now_ns();
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
    mt_trace_add(s->ts.trace, MT_SPAN_CHECKPOINT, MT_TRACE_TID_MAIN, t0, mt_now_s(), (int)s->ck.step, 0);
    return 0;
}

/* Rank 0: reads the checkpoint `what` names: "auto", "auto-start-over"
 * (mtlora_dist's --resume auto --start-over: a RUN.DIR whose checkpoints are
 * all unusable starts a new run beside them instead of stopping), "never"
 * or a file. Returns 1 found, 0 none (auto with no checkpoint file in
 * RUN.DIR, never), -1 refused. */
static int read_on_rank0(trainer *s, const char *what, char *path, size_t path_len) {
    param_bank *bank = mt_model_bank(s->m);
    char err[TRAINER_ERRLEN] = "";
    const char *skipped = "";
    int found = 0;
    mt_status st = MT_OK;
    ckpt_scan *scan = NULL;
    const int start_over = !strcmp(what, "auto-start-over");
    if (!strcmp(what, "never")) {
        if (!s->R.quiet) printf("--resume never: starting fresh (checkpoints in %s are not read)\n", s->cfg.run.dir);
        return 0;
    } else if (start_over || !strcmp(what, "auto")) {
        if (!(scan = malloc(sizeof *scan))) {
            fprintf(stderr, "mtlora_dist: --resume %s: out of memory\n", what);
            return -1;
        }
        st = ckpt_load_latest(s->cfg.run.dir, s->config_hash, start_over, &s->ck, bank, s->ts.mom, s->ts.vel,
                              scan, err, sizeof err);
        found = scan->found;
        skipped = scan->skipped;
        snprintf(path, path_len, "%s", scan->path);
        if (!st && !found && scan->refused && !s->R.quiet)
            printf("--start-over: none of the %d checkpoint file(s) in %s can be resumed from (listed on "
                   "stderr): a new run starts beside them\n", scan->refused, s->cfg.run.dir);
    } else {
        st = ckpt_load(what, s->config_hash, &s->ck, bank, s->ts.mom, s->ts.vel, err, sizeof err);
        found = st ? -1 : 1;
        snprintf(path, path_len, "%s", what);
    }
    if (st) found = -1;
    if (skipped[0]) fprintf(stderr, "mtlora_dist: skipped checkpoints:\n%s", skipped);
    free(scan);
    if (found < 0) fprintf(stderr, "mtlora_dist: --resume %s: %s\n", what, err);
    else if (!found && !s->R.quiet) printf("no checkpoint in %s: starting fresh\n", s->cfg.run.dir);
    else if (!s->R.quiet) printf("resuming from %s at step %lld\n", path, (long long)s->ck.step);
    /* another world size is converted (or refused, naming the numbers) by
     * adapt_world in trainer.c once every rank has the position */
    return found;
}

int trainer_resume(trainer *s, const char *what) {
    param_bank *bank = mt_model_bank(s->m);
    char err[TRAINER_ERRLEN], path[4200] = "";
    /* the run identity: this run's start unless a checkpoint restores it */
    if (s->d->rank == 0 && s->ck.run_start <= 0) s->ck.run_start = ckpt_now_ns();
    int found = s->d->rank == 0 ? read_on_rank0(s, what, path, sizeof path) : 0;
    int rc = MPI_Bcast(&found, 1, MPI_INT, 0, s->d->sync);
    if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Bcast (checkpoint found?)");
    if (found < 0) return trainer_fail(s, "cannot resume");
    if (!found) return 0;
    /* a version-1 checkpoint has no run start: its continuation gets one */
    if (s->d->rank == 0 && s->ck.run_start <= 0) s->ck.run_start = ckpt_now_ns();
    int64_t pos[9] = {s->ck.step, s->ck.epoch, s->ck.batch, s->ck.adam_step, s->ck.skipped,
                      (int64_t)s->ck.config_hash, s->ck.world, s->ck.bn_tracked, s->ck.run_start};
    rc = MPI_Bcast(pos, 9, MPI_INT64_T, 0, s->d->sync);
    if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Bcast (checkpoint position)");
    mt_model_set_bn_tracked(s->m, pos[7]);
    s->ck.step = pos[0];
    s->ck.epoch = pos[1];
    s->ck.batch = pos[2];
    s->ck.adam_step = pos[3];
    s->ck.skipped = pos[4];
    s->ck.world = pos[6]; /* the world of the run's global batch (trainer_internal.h) */
    s->ck.run_start = pos[8];
    if (dist_bcast_floats(s->d, bank->trainable, bank->n_trainable, err, sizeof err) ||
        dist_bcast_floats(s->d, s->ts.mom, bank->n_trainable, err, sizeof err) ||
        dist_bcast_floats(s->d, s->ts.vel, bank->n_trainable, err, sizeof err) ||
        dist_bcast_floats(s->d, bank->buffers, bank->n_buffer, err, sizeof err))
        return trainer_fail(s, err);
    return 0;
}
