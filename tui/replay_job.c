/* replay_job.c — the review screen's replay on its own thread (see
 * replay_job.h). The sequence and the scoring are replay.c's, shared with
 * `ancora history replay`. No curses, no store access. */
#include "replay_job.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "replay.h"

struct replay_job {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    struct replay_progress pr;   /* under mu */
    uint64_t version;            /* under mu */
    bool cancel;                 /* under mu */
    /* inputs (read by the thread only) */
    char *model_path, *vocab, *lora_path;
    struct anc_lora *lora;       /* lora_path loaded for the job's model */
    int threads, backend;
    const struct hist_message *ms;
    size_t nm;
    struct anc_session_params now;
    /* results: written by the thread, read after it finished */
    struct replay_result *res;
    size_t n_res;
};

bool replay_params_of(const struct hist_reply_info *ri, struct anc_session_params *p)
{
    if (!ri->cache_policy || ri->window < 0) return false;
    int pol = anc_cache_policy_from_name(ri->cache_policy);
    if (pol < 0) return false;
    anc_session_params_default(p);
    p->cache = (enum anc_cache_policy)pol;
    p->window = (int32_t)ri->window;
    if (ri->sinks >= 0) p->n_sink = (int32_t)ri->sinks;
    if (pol == ANC_CACHE_FULL && ri->cache_capacity > 0) p->ctx = (int32_t)ri->cache_capacity;
    int sc = ri->rope_type ? anc_rope_scaling_from_name(ri->rope_type) : -1;
    if (sc >= 0) p->rope.scaling = sc;
    if (ri->rope_base > 0) p->rope.theta = ri->rope_base;
    if (ri->rope_factor > 0) p->rope.factor = ri->rope_factor;
    return true;
}

static bool same_settings(const struct anc_session_params *a, const struct anc_session_params *b)
{
    return a->cache == b->cache && a->window == b->window && a->n_sink == b->n_sink &&
           a->ctx == b->ctx && a->rope.scaling == b->rope.scaling &&
           a->rope.theta == b->rope.theta && a->rope.factor == b->rope.factor &&
           a->lora == b->lora && (!a->lora || a->lora_scale == b->lora_scale);
}

/* The settings a reply was made with, the adapter included: a reply
 * stored with one is taken to have used the chat's (false without it). */
static bool made_params(const struct replay_job *j, const struct hist_message *msg,
                        struct anc_session_params *p)
{
    if (!replay_params_of(&msg->info, p)) return false;
    if (!msg->info.adapter) return true;
    if (!j->lora) return false;
    p->lora = j->lora;
    p->lora_scale = j->now.lora_scale;
    return true;
}

static void set_msg(struct replay_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_msg(struct replay_job *j, const char *fmt, ...)
{
    pthread_mutex_lock(&j->mu);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->pr.msg, sizeof j->pr.msg, fmt, ap);
    va_end(ap);
    j->version++;
    pthread_mutex_unlock(&j->mu);
}

static bool on_progress(void *ctx, int64_t done, int64_t total)
{
    struct replay_job *j = ctx;
    pthread_mutex_lock(&j->mu);
    j->pr.done = done;
    j->pr.total = total;
    j->version++;
    bool go = !j->cancel;
    pthread_mutex_unlock(&j->mu);
    return go;
}

static const struct hist_message *message_by_id(const struct replay_job *j, int64_t id)
{
    for (size_t i = 0; i < j->nm; i++)
        if (j->ms[i].id == id) return &j->ms[i];
    return NULL;
}

/* One pass under P. Not MADE: every reply gets its ppl_now; MADE: the
 * replies made under P get their ppl_made. The scored NLLs are added to
 * SUM_OUT and TOTAL_OUT. Returns false on failure. */
static bool run_pass(struct replay_job *j, struct anc_model *m, struct replay_seq *sq,
                     const struct anc_session_params *p, bool made, double *sum_out,
                     int64_t *total_out, char *err, size_t errlen)
{
    struct anc_session_params q = *p;
    double sum;
    int64_t total;
    if (replay_score(m, &q, sq, on_progress, j, &sum, &total, err, errlen) != 0) return false;
    for (size_t r = 0; r < sq->n_spans; r++) {
        const struct replay_span *sp = &sq->spans[r];
        double ppl = replay_ppl(sp->nll_sum, sp->n_scored);
        if (!made) {
            j->res[r].ppl_now = ppl;
            *sum_out += sp->nll_sum, *total_out += sp->n_scored;
            continue;
        }
        const struct hist_message *msg = message_by_id(j, sp->msg_id);
        struct anc_session_params own;
        if (!msg || !made_params(j, msg, &own) || !same_settings(&own, p)) continue;
        j->res[r].ppl_made = ppl;
        *sum_out += sp->nll_sum, *total_out += sp->n_scored;
    }
    return true;
}

/* The distinct settings the replies were made with (at most CAP). */
static int made_groups(const struct replay_job *j, struct anc_session_params *g, int cap)
{
    int n = 0;
    for (size_t i = 0; i < j->nm; i++) {
        struct anc_session_params p;
        if (j->ms[i].role != HIST_ROLE_ASSISTANT || !made_params(j, &j->ms[i], &p)) continue;
        int k = 0;
        while (k < n && !same_settings(&g[k], &p)) k++;
        if (k == n && n < cap) g[n++] = p;
    }
    return n;
}

static struct anc_model *load_model(struct replay_job *j, char *err, size_t errlen)
{
    struct stat st;
    if (!j->model_path[0]) {
        snprintf(err, errlen, "the session names no model file");
        return NULL;
    }
    if (stat(j->model_path, &st) != 0) {
        snprintf(err, errlen, "model file %s of the session is gone", j->model_path);
        return NULL;
    }
    set_msg(j, "loading %s", j->model_path);
    struct anc_model_params mp;
    anc_model_params_default(&mp);
    mp.n_threads = j->threads;
    mp.backend = (enum anc_backend_kind)j->backend;
    struct anc_model *m = anc_model_load(j->model_path, &mp, err, errlen);
    if (!m) return NULL;
    char fp[64];
    if (replay_vocab_check(m, j->vocab, fp, sizeof fp) < 0) {
        snprintf(err, errlen, "the vocabulary of %s differs from the session's", j->model_path);
        anc_model_free(m);
        return NULL;
    }
    return m;
}

#define MAX_GROUPS 16

static bool replay_all(struct replay_job *j, char *err, size_t errlen)
{
    struct anc_model *m = load_model(j, err, errlen);
    if (!m) return false;
    j->now.lora = NULL; /* the chat's adapter is its model's: load it for ours */
    if (j->lora_path && !(j->now.lora = j->lora = anc_lora_load(m, j->lora_path, err, errlen))) {
        anc_model_free(m);
        return false;
    }
    struct replay_seq sq = {0};
    struct anc_session_params g[MAX_GROUPS];
    int ng = made_groups(j, g, MAX_GROUPS);
    bool ok = replay_build(m, replay_template(m, j->ms, j->nm), j->ms, j->nm, &sq, err, errlen) == 0;
    if (ok && !(j->res = calloc(sq.n_spans ? sq.n_spans : 1, sizeof *j->res))) {
        snprintf(err, errlen, "out of memory");
        ok = false;
    }
    for (size_t r = 0; ok && r < sq.n_spans; r++)
        j->res[r] = (struct replay_result){sq.spans[r].msg_id, NAN, NAN};
    j->n_res = ok ? sq.n_spans : 0;
    pthread_mutex_lock(&j->mu);
    j->pr.n_passes = 1 + ng;
    pthread_mutex_unlock(&j->mu);
    double sum_now = 0, sum_made = 0;
    int64_t n_now = 0, n_made = 0;
    for (int pass = 0; ok && pass <= ng; pass++) {
        pthread_mutex_lock(&j->mu);
        j->pr.pass = pass + 1;
        pthread_mutex_unlock(&j->mu);
        set_msg(j, pass == 0 ? "replaying under the settings in force" : "replaying as made");
        ok = pass == 0 ? run_pass(j, m, &sq, &j->now, false, &sum_now, &n_now, err, errlen)
                       : run_pass(j, m, &sq, &g[pass - 1], true, &sum_made, &n_made, err, errlen);
    }
    pthread_mutex_lock(&j->mu);
    j->pr.ppl_now = replay_ppl(sum_now, n_now);
    j->pr.ppl_made = replay_ppl(sum_made, n_made);
    pthread_mutex_unlock(&j->mu);
    replay_seq_free(&sq);
    anc_lora_free(j->lora);
    j->lora = NULL;
    anc_model_free(m);
    return ok;
}

static void *job_main(void *arg)
{
    struct replay_job *j = arg;
    char err[ANC_ERR_LEN] = "";
    bool ok = replay_all(j, err, sizeof err);
    pthread_mutex_lock(&j->mu);
    j->pr.running = false;
    j->pr.cancelled = !ok && j->cancel;
    j->pr.failed = !ok && !j->cancel;
    snprintf(j->pr.msg, sizeof j->pr.msg, "%s", ok ? "done" : j->cancel ? "cancelled" : err);
    j->version++;
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

struct replay_job *replay_job_start(const char *model_path, const char *vocab, int threads,
                                    int backend, const struct hist_message *ms, size_t nm,
                                    const struct anc_session_params *now, const char *lora_path,
                                    char *err, size_t errlen)
{
    struct replay_job *j = calloc(1, sizeof *j);
    if (!j || !(j->model_path = strdup(model_path ? model_path : "")) ||
        !(j->vocab = strdup(vocab ? vocab : "")) ||
        (lora_path && !(j->lora_path = strdup(lora_path)))) {
        if (j) {
            free(j->model_path);
            free(j->vocab);
        }
        free(j);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    j->threads = threads;
    j->backend = backend;
    j->ms = ms;
    j->nm = nm;
    j->now = *now;
    j->pr.running = true;
    snprintf(j->pr.msg, sizeof j->pr.msg, "starting");
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        snprintf(err, errlen, "cannot start a thread for the replay");
        replay_job_free(j);
        return NULL;
    }
    j->started = true;
    return j;
}

void replay_job_cancel(struct replay_job *j)
{
    pthread_mutex_lock(&j->mu);
    j->cancel = true;
    pthread_mutex_unlock(&j->mu);
}

uint64_t replay_job_progress(struct replay_job *j, struct replay_progress *out)
{
    pthread_mutex_lock(&j->mu);
    *out = j->pr;
    uint64_t v = j->version;
    pthread_mutex_unlock(&j->mu);
    return v;
}

bool replay_job_result(struct replay_job *j, int64_t msg_id, struct replay_result *out)
{
    pthread_mutex_lock(&j->mu);
    bool running = j->pr.running;
    pthread_mutex_unlock(&j->mu);
    if (running) return false;
    for (size_t i = 0; i < j->n_res; i++)
        if (j->res[i].msg_id == msg_id) {
            *out = j->res[i];
            return true;
        }
    return false;
}

void replay_job_free(struct replay_job *j)
{
    if (!j) return;
    if (j->started) {
        replay_job_cancel(j);
        pthread_join(j->thread, NULL);
    }
    pthread_mutex_destroy(&j->mu);
    free(j->res);
    free(j->model_path);
    free(j->vocab);
    free(j->lora_path);
    free(j);
}
