/* sampler.c — see sampler.h. Order of the filters (as in common local
 * inference tools): repetition penalty, top-k, temperature, softmax,
 * top-p, min-p, then a draw from what is left. Depends on libc only. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void anc_sampling_default(struct anc_sampling *s)
{
    s->temp = 0.8f;
    s->top_k = 40;
    s->top_p = 0.95f;
    s->min_p = 0.05f;
    s->repeat_penalty = 1.0f;
    s->repeat_last_n = 64;
    s->seed = 0x5eed;
}

bool anc_sampling_validate(const struct anc_sampling *s, char *err, size_t errlen)
{
    if (!(s->temp >= 0.0f && s->temp <= 100.0f)) {
        anc_set_err(err, errlen, "temperature %g is out of range (0 to 100; 0 = greedy)", s->temp);
        return false;
    }
    if (s->top_k < 0) {
        anc_set_err(err, errlen, "top-k %d is negative (0 turns it off)", s->top_k);
        return false;
    }
    if (!(s->top_p > 0.0f && s->top_p <= 1.0f)) {
        anc_set_err(err, errlen, "top-p %g is out of range (0 < p <= 1; 1 turns it off)", s->top_p);
        return false;
    }
    if (!(s->min_p >= 0.0f && s->min_p < 1.0f)) {
        anc_set_err(err, errlen, "min-p %g is out of range (0 <= p < 1; 0 turns it off)", s->min_p);
        return false;
    }
    if (!(s->repeat_penalty > 0.0f && s->repeat_penalty <= 10.0f)) {
        anc_set_err(err, errlen, "repeat penalty %g is out of range (0 < r <= 10; 1 turns it off)",
                    s->repeat_penalty);
        return false;
    }
    if (s->repeat_last_n < 0 || s->repeat_last_n > 1 << 20) {
        anc_set_err(err, errlen, "repeat-last-n %d is out of range", s->repeat_last_n);
        return false;
    }
    return true;
}

double sampler_uniform(uint64_t *state)
{
    return (double)(anc_splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

struct sampler *sampler_new(const struct anc_sampling *s, int32_t n_vocab)
{
    struct sampler *sm = calloc(1, sizeof *sm);
    if (!sm) return NULL;
    sm->n_vocab = n_vocab;
    sm->work = malloc((size_t)n_vocab * sizeof *sm->work);
    sm->idx = malloc((size_t)n_vocab * sizeof *sm->idx);
    sm->prob = malloc((size_t)n_vocab * sizeof *sm->prob);
    if (!sm->work || !sm->idx || !sm->prob) {
        sampler_free(sm);
        return NULL;
    }
    sm->s = *s;
    sm->rng = s->seed;
    return sm;
}

void sampler_free(struct sampler *sm)
{
    if (!sm) return;
    free(sm->work);
    free(sm->idx);
    free(sm->prob);
    free(sm);
}

void sampler_set(struct sampler *sm, const struct anc_sampling *s)
{
    if (s->seed != sm->s.seed) sm->rng = s->seed;
    sm->s = *s;
}

int32_t sampler_argmax(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Order candidates by logit, descending (ties: lower id first). */
static int cmp_desc(const void *a, const void *b, void *ctx)
{
    const float *logits = ctx;
    int32_t ia = *(const int32_t *)a, ib = *(const int32_t *)b;
    float la = logits[ia], lb = logits[ib];
    if (la > lb) return -1;
    if (la < lb) return 1;
    return (ia > ib) - (ia < ib);
}

/* Move the k largest to the front, sorted (partial selection + sort). */
static void top_k_sort(int32_t *idx, int32_t n, int32_t k, const float *logits)
{
    /* for small k an insertion buffer of k keeps this O(n * k) at worst and
       close to O(n) in practice; k = n falls back to a full sort */
    if (k >= n) {
        qsort_r(idx, (size_t)n, sizeof *idx, cmp_desc, (void *)logits);
        return;
    }
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t id = idx[i];
        if (m < k) {
            int32_t j = m++;
            while (j > 0 && cmp_desc(&id, &idx[j - 1], (void *)logits) < 0) { idx[j] = idx[j - 1]; j--; }
            idx[j] = id;
        } else if (cmp_desc(&id, &idx[k - 1], (void *)logits) < 0) {
            int32_t j = k - 1;
            while (j > 0 && cmp_desc(&id, &idx[j - 1], (void *)logits) < 0) { idx[j] = idx[j - 1]; j--; }
            idx[j] = id;
        }
    }
}

bool sampler_is_greedy(const struct sampler *sm)
{
    const struct anc_sampling *s = &sm->s;
    return s->temp <= 0.0f && (s->repeat_penalty == 1.0f || s->repeat_last_n <= 0);
}

int32_t sampler_sample(struct sampler *sm, const float *logits, const int32_t *recent,
                       size_t n_recent)
{
    const struct anc_sampling *s = &sm->s;
    int32_t n = sm->n_vocab;
    float *w = sm->work;
    memcpy(w, logits, (size_t)n * sizeof *w);

    /* Repetition penalty over the last repeat_last_n tokens (each distinct
       token once): positive logits are divided, negative multiplied. */
    if (s->repeat_penalty != 1.0f && s->repeat_last_n > 0) {
        size_t from = n_recent > (size_t)s->repeat_last_n ? n_recent - (size_t)s->repeat_last_n : 0;
        for (size_t i = from; i < n_recent; i++) {
            int32_t t = recent[i];
            if (t < 0 || t >= n) continue;
            bool seen = false;
            for (size_t j = from; j < i && !seen; j++) seen = recent[j] == t;
            if (seen) continue;
            w[t] = w[t] > 0 ? w[t] / s->repeat_penalty : w[t] * s->repeat_penalty;
        }
    }
    if (s->temp <= 0.0f) return sampler_argmax(w, n);

    int32_t k = s->top_k > 0 && s->top_k < n ? s->top_k : n;
    for (int32_t i = 0; i < n; i++) sm->idx[i] = i;
    top_k_sort(sm->idx, n, k, w);

    /* softmax over the k candidates at temperature temp */
    double maxl = w[sm->idx[0]], sum = 0.0;
    for (int32_t i = 0; i < k; i++) {
        double e = exp(((double)w[sm->idx[i]] - maxl) / s->temp);
        sm->prob[i] = (float)e;
        sum += e;
    }
    for (int32_t i = 0; i < k; i++) sm->prob[i] = (float)(sm->prob[i] / sum);

    /* top-p: the smallest prefix whose mass reaches p */
    int32_t keep = k;
    if (s->top_p < 1.0f) {
        double cum = 0.0;
        for (int32_t i = 0; i < k; i++) {
            cum += sm->prob[i];
            if (cum >= s->top_p) { keep = i + 1; break; }
        }
    }
    /* min-p: drop candidates below min_p times the best probability */
    if (s->min_p > 0.0f) {
        float floor_p = s->min_p * sm->prob[0];
        int32_t i = 1;
        while (i < keep && sm->prob[i] >= floor_p) i++;
        keep = i;
    }
    double mass = 0.0;
    for (int32_t i = 0; i < keep; i++) mass += sm->prob[i];
    double r = sampler_uniform(&sm->rng) * mass;
    double cum = 0.0;
    for (int32_t i = 0; i < keep; i++) {
        cum += sm->prob[i];
        if (r < cum) return sm->idx[i];
    }
    return sm->idx[keep - 1];
}
