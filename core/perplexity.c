/* perplexity.c — perplexity in two conventions (TECHNIQUES.md §3):
 * chunked (llama.cpp's llama-perplexity: BOS written over each chunk's
 * first token, second half scored) and streaming (token by token through
 * the session's cache policy, every token after the first scored).
 * NLLs are computed in double with the maximum subtracted.
 * Depends on the public session API only; no UI libraries. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ancora.h"
#include "util.h"

/* Tokens per feed call while scoring (the logits of each are kept). */
#define PPL_BATCH 32

/* -log softmax(logits)[target], in double. */
static double nll_of(const float *logits, int32_t n_vocab, int32_t target)
{
    double mx = logits[0];
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - mx);
    return -((double)logits[target] - mx - log(sum));
}

struct nll_acc {
    double sum, sum2;
    int64_t count;
};

static void acc_add(struct nll_acc *a, double nll)
{
    a->sum += nll;
    a->sum2 += nll * nll;
    a->count++;
}

static void acc_result(const struct nll_acc *a, struct anc_ppl_result *out)
{
    double mean = a->count ? a->sum / a->count : 0.0;
    out->mean_nll = mean;
    out->ppl = exp(mean);
    out->n_scored = a->count;
    out->ppl_stderr = 0.0;
    if (a->count > 1) {
        double var = a->sum2 / a->count - mean * mean;
        out->ppl_stderr = out->ppl * sqrt(var > 0 ? var / (a->count - 1) : 0.0);
    }
}

int anc_perplexity_chunked(struct anc_model *m, const struct anc_session_params *p,
                           const int32_t *tokens, size_t n, int32_t n_ctx,
                           struct anc_ppl_result *out, anc_progress_fn progress,
                           void *progress_ctx, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (n_ctx < 4) {
        anc_set_err(err, errlen, "chunk size %d is too small (at least 4)", n_ctx);
        return -1;
    }
    if (n < 2 * (size_t)n_ctx) {
        anc_set_err(err, errlen, "the text has %zu tokens; chunked perplexity needs at least "
                    "2 x %d (use a longer file or a smaller --ctx)", n, n_ctx);
        return -1;
    }
    struct anc_session_params sp = *p;
    if (sp.cache == ANC_CACHE_FULL || sp.ctx < n_ctx) sp.ctx = n_ctx;
    struct anc_session *s = anc_session_new(m, &sp, err, errlen);
    if (!s) return -1;
    int32_t n_vocab = anc_n_vocab(m);
    float *logits = malloc(sizeof(float) * (size_t)n_vocab * PPL_BATCH);
    int32_t *chunk = malloc(sizeof(int32_t) * (size_t)n_ctx);
    if (!logits || !chunk) {
        anc_set_err(err, errlen, "out of memory");
        free(logits), free(chunk);
        anc_session_free(s);
        return -1;
    }
    int32_t n_chunk = (int32_t)(n / (size_t)n_ctx);
    int32_t first = n_ctx / 2;
    struct nll_acc acc = {0};
    int rc = 0;
    for (int32_t c = 0; c < n_chunk && rc == 0; c++) {
        memcpy(chunk, tokens + (size_t)c * n_ctx, sizeof(int32_t) * (size_t)n_ctx);
        chunk[0] = anc_token_bos(m); /* overwrite, do not insert */
        anc_session_reset(s);
        for (int32_t pos = 0; pos < n_ctx - 1 && rc == 0; pos += PPL_BATCH) {
            int32_t b = n_ctx - 1 - pos < PPL_BATCH ? n_ctx - 1 - pos : PPL_BATCH;
            if (pos + b <= first) { /* nothing to score: no logits needed */
                rc = anc_session_feed(s, chunk + pos, (size_t)b, err, errlen);
                continue;
            }
            rc = anc_session_feed_all(s, chunk + pos, (size_t)b, logits, err, errlen);
            for (int32_t i = 0; i < b && rc == 0; i++)
                if (pos + i >= first)
                    acc_add(&acc, nll_of(logits + (size_t)i * n_vocab, n_vocab, chunk[pos + i + 1]));
        }
        out->n_chunks = c + 1;
        if (progress && !progress(progress_ctx, c + 1, n_chunk)) {
            anc_set_err(err, errlen, "cancelled");
            rc = -1;
        }
    }
    acc_result(&acc, out);
    free(logits);
    free(chunk);
    anc_session_free(s);
    return rc;
}

int anc_perplexity_stream(struct anc_model *m, const struct anc_session_params *p,
                          const int32_t *tokens, size_t n, double *nll_out,
                          struct anc_ppl_result *out, anc_progress_fn progress,
                          void *progress_ctx, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (n < 2) {
        anc_set_err(err, errlen, "the text is too short to score (%zu tokens)", n);
        return -1;
    }
    struct anc_session_params sp = *p;
    if (sp.cache == ANC_CACHE_FULL && (size_t)sp.ctx < n) {
        anc_set_err(err, errlen, "the full cache holds %d tokens but the text has %zu; raise --ctx "
                    "or use a streaming policy", sp.ctx, n);
        return -1;
    }
    struct anc_session *s = anc_session_new(m, &sp, err, errlen);
    if (!s) return -1;
    int32_t n_vocab = anc_n_vocab(m);
    float *logits = malloc(sizeof(float) * (size_t)n_vocab * PPL_BATCH);
    if (!logits) {
        anc_set_err(err, errlen, "out of memory");
        anc_session_free(s);
        return -1;
    }
    struct nll_acc acc = {0};
    int rc = 0;
    /* token i predicts token i + 1; the last token needs no logits */
    for (size_t pos = 0; pos < n - 1 && rc == 0; pos += PPL_BATCH) {
        size_t b = n - 1 - pos < PPL_BATCH ? n - 1 - pos : PPL_BATCH;
        rc = anc_session_feed_all(s, tokens + pos, b, logits, err, errlen);
        for (size_t i = 0; i < b && rc == 0; i++) {
            double nll = nll_of(logits + i * (size_t)n_vocab, n_vocab, tokens[pos + i + 1]);
            acc_add(&acc, nll);
            if (nll_out) nll_out[pos + i] = nll;
        }
        if (rc == 0 && progress && !progress(progress_ctx, (int64_t)(pos + b), (int64_t)(n - 1))) {
            anc_set_err(err, errlen, "cancelled");
            rc = -1;
        }
    }
    acc_result(&acc, out);
    free(logits);
    anc_session_free(s);
    return rc;
}
