/* replay_job.h — the review screen's `p`: a saved conversation replayed on
 * a thread of its own (its own copy of the model, loaded from the file the
 * session names), once under the settings now in force in the chat and
 * once under each set of settings its replies were made with. The UI polls
 * the progress and reads the results; cancel stops it between batches.
 * Front-end code: the engine through ancora.h (via replay.h), no curses. */
#ifndef ANC_REPLAY_JOB_H
#define ANC_REPLAY_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ancora.h"
#include "history.h"

struct replay_job;

/* A reply's two perplexities (NAN: not scored, e.g. no figures stored). */
struct replay_result {
    int64_t msg_id;
    double ppl_now, ppl_made;
};

struct replay_progress {
    bool running, failed, cancelled;
    int pass, n_passes;          /* 1-based pass being scored, of n_passes */
    int64_t done, total;         /* tokens of this pass */
    double ppl_now, ppl_made;    /* over every reply, when finished */
    char msg[ANC_ERR_LEN];       /* what it is doing, or why it failed */
};

/* Start replaying MS (borrowed: must outlive the job) of a session whose
 * model file is MODEL_PATH and vocabulary fingerprint VOCAB (may be "").
 * NOW: the settings to compare with. Returns NULL (out of memory or no
 * thread) with a message. */
/* lora_path: the chat's adapter (NOW's lora belongs to the chat's model),
 * loaded again for the job's own model; NULL: none. Replies stored with an
 * adapter are replayed "as made" with this one, or not at all without. */
struct replay_job *replay_job_start(const char *model_path, const char *vocab, int threads,
                                    int backend, const struct hist_message *ms, size_t nm,
                                    const struct anc_session_params *now, const char *lora_path,
                                    char *err, size_t errlen);
void replay_job_cancel(struct replay_job *j);
/* A consistent copy of the progress; returns a counter that changes
 * whenever the progress does. */
uint64_t replay_job_progress(struct replay_job *j, struct replay_progress *out);
/* Once finished: the result for message ID (false if none). */
bool replay_job_result(struct replay_job *j, int64_t msg_id, struct replay_result *out);
/* Cancel, wait for the thread, free everything. */
void replay_job_free(struct replay_job *j);

/* The settings a reply was made with, as session parameters (false when
 * its figures were not stored). */
bool replay_params_of(const struct hist_reply_info *ri, struct anc_session_params *p);

#endif
