/* replay.h — a saved conversation fed back through a model and each saved
 * reply scored teacher-forced: the part of `ancora history replay` that the
 * review screen's `p` shares. Front-end code: the engine through ancora.h,
 * stored messages as history.h gives them; no curses, no printing. */
#ifndef ANC_REPLAY_H
#define ANC_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "ancora.h"
#include "history.h"

/* One saved reply: where its tokens sit in the replayed sequence, and
 * (after replay_score) the sum of its tokens' negative log-likelihoods. */
struct replay_span {
    int64_t msg_id;
    size_t first, n;
    size_t n_turn;  /* tokens of the turn before it (the chat's prompt_tokens) */
    double nll_sum;
    int64_t n_scored;
};

/* The token sequence the chat fed, and each reply's span in it. */
struct replay_seq {
    int32_t *ids;
    size_t n, cap;
    struct replay_span *spans;
    size_t n_spans;
};

/* The chat template the replies were made with (else the model's own). */
int replay_template(const struct anc_model *m, const struct hist_message *ms, size_t nm);

/* Build the sequence: each turn from anc_chat_turn_tokens (as the chat
 * computes it), each reply its stored token ids (rendered by the template
 * for rows saved without them). 0, or -1 with a message. */
int replay_build(const struct anc_model *m, int tpl, const struct hist_message *ms, size_t nm,
                 struct replay_seq *sq, char *err, size_t errlen);
void replay_seq_free(struct replay_seq *sq);

/* Compare the model's vocabulary fingerprint (written to FP) with the one
 * a session stored: 1 equal, 0 none stored (not checked), -1 different. */
int replay_vocab_check(const struct anc_model *m, const char *stored, char *fp, size_t fpcap);

/* Score the sequence with anc_perplexity_stream under P (a full cache with
 * no --ctx is given the sequence's length, written back to P) and add each
 * token's NLL to its reply. SUM and TOTAL: over every reply. PROGRESS
 * returning false cancels ("cancelled" in err). 0, or -1 with a message. */
int replay_score(struct anc_model *m, struct anc_session_params *p, struct replay_seq *sq,
                 anc_progress_fn progress, void *progress_ctx, double *sum, int64_t *total,
                 char *err, size_t errlen);

/* exp(mean NLL); NAN when nothing was scored. */
double replay_ppl(double nll_sum, int64_t n);

#endif
