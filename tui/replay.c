/* replay.c — a saved conversation rebuilt as the token sequence the chat
 * fed, and its replies scored teacher-forced (see replay.h); shared by
 * `ancora history replay` (cmd_replay.c) and the review screen. Engine
 * through ancora.h, messages through history.h; no curses, no printing. */
#include "replay.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"

static bool seq_add(struct replay_seq *s, const int32_t *t, size_t n)
{
    return ids_append(&s->ids, &s->n, &s->cap, t, n);
}

/* A reply saved without its tokens (before schema 3, or by ancora run):
 * the template's rendering of it, up to and including the first stop
 * token. conv[j] is the reply. */
static int rendered_reply(const struct anc_model *m, int tpl, const struct anc_chat_msg *conv,
                          size_t j, int32_t **out, size_t *n_out, char *err, size_t errlen)
{
    int32_t *with = NULL, *upto = NULL;
    size_t nw = 0, nu = 0;
    int rc = anc_chat_render(m, tpl, conv, j + 1, false, &with, &nw, err, errlen);
    if (rc == 0) rc = anc_chat_render(m, tpl, conv, j, true, &upto, &nu, err, errlen);
    size_t skip = 0;
    while (rc == 0 && skip < nu && skip < nw && with[skip] == upto[skip]) skip++;
    free(upto);
    if (rc != 0) {
        free(with);
        return -1;
    }
    size_t end = skip;
    while (end < nw && !anc_template_is_stop(m, tpl, with[end])) end++;
    if (end < nw) end++; /* the stop token, which the chat feeds too */
    memmove(with, with + skip, (end - skip) * sizeof *with);
    *out = with;
    *n_out = end - skip;
    return 0;
}

int replay_build(const struct anc_model *m, int tpl, const struct hist_message *ms, size_t nm,
                 struct replay_seq *sq, char *err, size_t errlen)
{
    struct anc_chat_msg *conv = calloc(nm + 1, sizeof *conv);
    struct replay_span **spans = &sq->spans;
    size_t *n_spans = &sq->n_spans;
    *spans = calloc(nm + 1, sizeof **spans);
    *n_spans = 0;
    if (!conv || !*spans) {
        free(conv);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nm; i++) {
        conv[i].role = hist_role_name(ms[i].role);
        conv[i].content = ms[i].content;
        conv[i].len = strlen(ms[i].content);
    }
    int rc = 0;
    for (size_t j = 0; j < nm && rc == 0; j++) {
        if (ms[j].role != HIST_ROLE_ASSISTANT) continue;
        size_t last_user = j;
        while (last_user > 0 && ms[last_user - 1].role != HIST_ROLE_USER) last_user--;
        size_t before = last_user > 0 ? last_user - 1 : 0; /* messages before that user's */
        int32_t *t = NULL;
        size_t nt = 0;
        rc = anc_chat_turn_tokens(m, tpl, conv, j, sq->n ? before : 0, &t, &nt, err, errlen);
        if (rc == 0 && !seq_add(sq, t, nt)) rc = -1, snprintf(err, errlen, "out of memory");
        free(t);
        if (rc != 0) break;
        struct replay_span *sp = &(*spans)[(*n_spans)++];
        sp->msg_id = ms[j].id;
        sp->n_turn = nt;
        sp->first = sq->n;
        const int32_t *ids = ms[j].info.token_ids;
        size_t n_ids = ms[j].info.n_token_ids;
        int32_t *rendered = NULL;
        if (!ids && !hist_reply_info_known(&ms[j].info)) { /* saved without its tokens */
            rc = rendered_reply(m, tpl, conv, j, &rendered, &n_ids, err, errlen);
            ids = rendered;
        }
        if (rc == 0) {
            for (size_t k = 0; k < n_ids; k++)
                if (ids[k] < 0 || ids[k] >= anc_n_vocab(m)) {
                    snprintf(err, errlen, "message %lld holds token %d, outside this vocabulary",
                             (long long)ms[j].id, ids[k]);
                    rc = -1;
                    break;
                }
        }
        if (rc == 0 && !seq_add(sq, ids, n_ids)) rc = -1, snprintf(err, errlen, "out of memory");
        sp->n = n_ids;
        free(rendered);
    }
    free(conv);
    return rc;
}

/* The chat template the replies were made with (else the model's own). */
int replay_template(const struct anc_model *m, const struct hist_message *ms, size_t nm)
{
    for (size_t i = 0; i < nm; i++)
        if (ms[i].role == HIST_ROLE_ASSISTANT && ms[i].info.template_name) {
            int t = anc_template_from_name(ms[i].info.template_name);
            if (t >= 0) return t;
        }
    return anc_template_detect(m);
}

int replay_vocab_check(const struct anc_model *m, const char *stored, char *fp, size_t fpcap)
{
    anc_vocab_fingerprint(m, fp, fpcap);
    if (!stored || !*stored) return 0;
    return strcmp(fp, stored) == 0 ? 1 : -1;
}

double replay_ppl(double nll_sum, int64_t n) { return n > 0 ? exp(nll_sum / (double)n) : NAN; }

int replay_score(struct anc_model *m, struct anc_session_params *p, struct replay_seq *sq,
                 anc_progress_fn progress, void *progress_ctx, double *sum, int64_t *total,
                 char *err, size_t errlen)
{
    double *nll = malloc((sq->n + 1) * sizeof *nll);
    if (!nll) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (p->cache == ANC_CACHE_FULL && p->ctx <= 0) p->ctx = (int32_t)sq->n;
    struct anc_ppl_result res;
    if (anc_perplexity_stream(m, p, sq->ids, sq->n, nll, &res, progress, progress_ctx, err,
                              errlen) != 0) {
        free(nll);
        return -1;
    }
    struct replay_span *sp = sq->spans;
    *sum = 0;
    *total = 0;
    for (size_t r = 0; r < sq->n_spans; r++) {
        sp[r].nll_sum = 0;
        sp[r].n_scored = 0;
        for (size_t k = 0; k < sp[r].n; k++) {
            size_t pos = sp[r].first + k;
            if (pos == 0) continue; /* the first token has no context to be scored in */
            sp[r].nll_sum += nll[pos - 1];
            sp[r].n_scored++;
        }
        *sum += sp[r].nll_sum;
        *total += sp[r].n_scored;
    }
    free(nll);
    return 0;
}

void replay_seq_free(struct replay_seq *sq)
{
    free(sq->ids);
    free(sq->spans);
    memset(sq, 0, sizeof *sq);
}
