/* sampler.h — choosing the next token from logits: repetition penalty,
 * top-k, temperature, top-p, min-p, seeded draw; temperature 0 = argmax.
 * Internal to core/; pure functions over arrays. */
#ifndef ANC_SAMPLER_H
#define ANC_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "ancora.h"

struct sampler {
    struct anc_sampling s;
    uint64_t rng;           /* splitmix64 state, from the seed */
    int32_t n_vocab;
    float *work;            /* [n_vocab] penalised logits */
    int32_t *idx;           /* [n_vocab] candidate ids */
    float *prob;            /* [n_vocab] candidate probabilities */
};

struct sampler *sampler_new(const struct anc_sampling *s, int32_t n_vocab);
void sampler_free(struct sampler *sm);
/* New settings; the random stream restarts only if the seed changed. */
void sampler_set(struct sampler *sm, const struct anc_sampling *s);

/* Pick a token. `recent` = the last n_recent tokens (for the penalty). */
int32_t sampler_sample(struct sampler *sm, const float *logits, const int32_t *recent,
                       size_t n_recent);

/* True when a pick is the plain argmax of the logits (temperature 0, no
 * repetition penalty), so a backend may take it where the logits are. */
bool sampler_is_greedy(const struct sampler *sm);

/* Index of the largest value (lowest index on ties). */
int32_t sampler_argmax(const float *x, int32_t n);

/* Uniform double in [0, 1) from the state (splitmix64). */
double sampler_uniform(uint64_t *state);

#endif
