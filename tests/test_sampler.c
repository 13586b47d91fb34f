/* test_sampler.c — sampling: greedy ties, determinism per seed, the
 * distribution of draws against exact softmax probabilities, and what
 * top-k, top-p, min-p and the repetition penalty keep or change. */
#include <math.h>
#include <string.h>

#include "sampler.h"
#include "test_util.h"

static struct anc_sampling plain(void)
{
    struct anc_sampling s;
    anc_sampling_default(&s);
    s.temp = 1.0f;
    s.top_k = 0;
    s.top_p = 1.0f;
    s.min_p = 0.0f;
    s.repeat_penalty = 1.0f;
    s.seed = 42;
    return s;
}

int main(void)
{
    float logits[6] = {1.0f, 3.0f, 3.0f, 0.5f, -2.0f, 2.0f};
    struct anc_sampling s = plain();

    /* greedy: argmax, ties to the lowest id */
    s.temp = 0;
    struct sampler *sm = sampler_new(&s, 6);
    CHECK_INT_EQ(sampler_sample(sm, logits, NULL, 0), 1);
    /* penalty on token 1 makes 2 the best */
    s.repeat_penalty = 1.5f;
    sampler_set(sm, &s);
    int32_t recent[] = {1, 1, 1};
    CHECK_INT_EQ(sampler_sample(sm, logits, recent, 3), 2);
    sampler_free(sm);

    /* distribution at temperature 1 with nothing filtered */
    s = plain();
    sm = sampler_new(&s, 6);
    double p[6], z = 0;
    for (int i = 0; i < 6; i++) z += exp(logits[i]);
    for (int i = 0; i < 6; i++) p[i] = exp(logits[i]) / z;
    int counts[6] = {0};
    const int draws = 200000;
    for (int d = 0; d < draws; d++) counts[sampler_sample(sm, logits, NULL, 0)]++;
    for (int i = 0; i < 6; i++) {
        double f = (double)counts[i] / draws;
        double sd = sqrt(p[i] * (1 - p[i]) / draws);
        CHECK_MSG(fabs(f - p[i]) < 5 * sd + 1e-4, "token %d: %.4f vs %.4f", i, f, p[i]);
    }
    sampler_free(sm);

    /* temperature 0.5 sharpens: p ~ exp(2 * logit) */
    s = plain();
    s.temp = 0.5f;
    sm = sampler_new(&s, 6);
    memset(counts, 0, sizeof counts);
    z = 0;
    for (int i = 0; i < 6; i++) z += exp(2 * logits[i]);
    for (int d = 0; d < draws; d++) counts[sampler_sample(sm, logits, NULL, 0)]++;
    for (int i = 0; i < 6; i++) {
        double pi = exp(2 * logits[i]) / z, f = (double)counts[i] / draws;
        CHECK_MSG(fabs(f - pi) < 5 * sqrt(pi * (1 - pi) / draws) + 1e-4, "t=0.5 token %d", i);
    }
    sampler_free(sm);

    /* same seed, same sequence; another seed, another sequence */
    s = plain();
    struct sampler *a = sampler_new(&s, 6), *b = sampler_new(&s, 6);
    s.seed = 43;
    struct sampler *c = sampler_new(&s, 6);
    int same = 1, differ = 0;
    for (int d = 0; d < 200; d++) {
        int32_t ta = sampler_sample(a, logits, NULL, 0), tb = sampler_sample(b, logits, NULL, 0);
        int32_t tc = sampler_sample(c, logits, NULL, 0);
        same &= ta == tb;
        differ |= ta != tc;
    }
    CHECK(same);
    CHECK(differ);
    sampler_free(a), sampler_free(b), sampler_free(c);

    /* top-k 2 keeps ids 1 and 2 only */
    s = plain();
    s.top_k = 2;
    sm = sampler_new(&s, 6);
    memset(counts, 0, sizeof counts);
    for (int d = 0; d < 5000; d++) counts[sampler_sample(sm, logits, NULL, 0)]++;
    CHECK(counts[1] > 0 && counts[2] > 0);
    CHECK_INT_EQ(counts[0] + counts[3] + counts[4] + counts[5], 0);
    sampler_free(sm);

    /* top-p: with p = 0.5 only the two best (each ~0.35) survive */
    s = plain();
    s.top_p = 0.5f;
    sm = sampler_new(&s, 6);
    memset(counts, 0, sizeof counts);
    for (int d = 0; d < 5000; d++) counts[sampler_sample(sm, logits, NULL, 0)]++;
    CHECK_INT_EQ(counts[0] + counts[3] + counts[4] + counts[5], 0);
    sampler_free(sm);

    /* min-p 0.3: keeps tokens with p >= 0.3 * p_max: ids 1, 2, 5 (e^-1 = 0.37) */
    s = plain();
    s.min_p = 0.3f;
    sm = sampler_new(&s, 6);
    memset(counts, 0, sizeof counts);
    for (int d = 0; d < 20000; d++) counts[sampler_sample(sm, logits, NULL, 0)]++;
    CHECK(counts[5] > 0);
    CHECK_INT_EQ(counts[0] + counts[3] + counts[4], 0);
    sampler_free(sm);

    /* validation of absurd settings */
    char err[256];
    s = plain();
    s.temp = -1;
    CHECK(!anc_sampling_validate(&s, err, sizeof err));
    s = plain();
    s.top_p = 0;
    CHECK(!anc_sampling_validate(&s, err, sizeof err));
    s = plain();
    s.repeat_penalty = NAN;
    CHECK(!anc_sampling_validate(&s, err, sizeof err));
    s = plain();
    CHECK(anc_sampling_validate(&s, err, sizeof err));
    TEST_EXIT();
}
