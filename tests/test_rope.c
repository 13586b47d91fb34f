/* test_rope.c — RoPE frequencies against the published test vectors of
 * TECHNIQUES.md §1 (dynamic NTK bases, YaRN correction range and m, the
 * Llama-3.1 divisors), and the precision of the tables at large positions. */
#include <math.h>

#include "rope.h"
#include "test_util.h"

int main(void)
{
    /* dynamic NTK: d=128, base 1e4, L0 4096, s=2 */
    CHECK_CLOSE(rope_dynamic_base(1e4, 128, 2.0, 4096, 8192), 30527.74, 0.01, 0);
    CHECK_CLOSE(rope_dynamic_base(1e4, 128, 2.0, 4096, 16384), 72195.86, 0.01, 0);
    CHECK_CLOSE(rope_dynamic_base(1e4, 128, 2.0, 4096, 1000), 1e4, 1e-6, 0); /* below L0 */

    /* YaRN correction range */
    int32_t lo, hi;
    rope_yarn_range(128, 1e4, 4096, 32, 1, &lo, &hi);
    CHECK_INT_EQ(lo, 20);
    CHECK_INT_EQ(hi, 46);
    rope_yarn_range(128, 1e6, 32768, 32, 1, &lo, &hi);
    CHECK_INT_EQ(lo, 23);
    CHECK_INT_EQ(hi, 40);

    /* YaRN attention factor m = 0.1 ln s + 1 */
    struct rope_params p;
    double omega[64], plain[64], m;
    rope_params_default(&p, 128, 1e4, 4096);
    rope_frequencies(&p, 0, plain, &m);
    CHECK_CLOSE(m, 1.0, 0, 0);
    p.scaling = ROPE_YARN;
    p.factor = 4;
    rope_frequencies(&p, 0, omega, &m);
    CHECK_CLOSE(m, 1.13863, 1e-5, 0);
    /* pairs below `low` keep their frequency, above `high` are divided by s */
    CHECK_CLOSE(omega[0], plain[0], 0, 1e-15);
    CHECK_CLOSE(omega[19], plain[19], 0, 1e-15);
    CHECK_CLOSE(omega[63], plain[63] / 4, 0, 1e-15);
    CHECK_CLOSE(omega[46], plain[46] / 4, 0, 1e-15);
    CHECK(omega[33] < plain[33] && omega[33] > plain[33] / 4);
    p.factor = 8;
    rope_frequencies(&p, 0, omega, &m);
    CHECK_CLOSE(m, 1.20794, 1e-5, 0);

    /* linear: every frequency divided by s */
    rope_params_default(&p, 128, 1e4, 4096);
    p.scaling = ROPE_LINEAR;
    p.factor = 4;
    rope_frequencies(&p, 0, omega, &m);
    for (int k = 0; k < 64; k++) CHECK_CLOSE(omega[k], plain[k] / 4, 0, 1e-15);

    /* LongRoPE (Phi-3 long-context files): per-pair divisors and, whatever
       the scaling, the file's attention factor on cos and sin. Phi-3-mini-
       128k: L0 = 4096, context 131072, s = 32, factor sqrt(1 + ln s / ln L0)
       = 1.190238 (the value its converter writes) */
    {
        float divs[64];
        for (int k = 0; k < 64; k++) divs[k] = 1.0f + 0.5f * (float)k;
        rope_params_default(&p, 128, 1e4, 4096);
        p.freq_divisors = divs;
        p.attn_factor = sqrt(1.0 + log(131072.0 / 4096.0) / log(4096.0));
        CHECK_CLOSE(p.attn_factor, 1.190238, 1e-6, 0);
        rope_frequencies(&p, 0, omega, &m);
        for (int k = 0; k < 64; k++) CHECK_CLOSE(omega[k], plain[k] / (1.0 + 0.5 * k), 0, 1e-12);
        CHECK_CLOSE(m, 1.190238, 1e-6, 0);
    }

    /* dynamic NTK through rope_frequencies: base replaced at length 8192 */
    rope_params_default(&p, 128, 1e4, 4096);
    p.scaling = ROPE_DYNAMIC;
    p.factor = 2;
    rope_frequencies(&p, 8192, omega, &m);
    CHECK_CLOSE(omega[1], pow(30527.74, -2.0 / 128), 0, 1e-6);

    /* llama3: base 5e5, d=128, s=8, lf=1, hf=4, L0=8192 */
    double base3[64], l3[64];
    rope_params_default(&p, 128, 5e5, 8192);
    rope_frequencies(&p, 0, base3, &m);
    p.scaling = ROPE_LLAMA3;
    p.factor = 8;
    rope_frequencies(&p, 0, l3, &m);
    const double mid[6] = {1.2075, 1.5534, 2.0263, 2.6945, 3.6843, 5.2573};
    for (int k = 0; k <= 28; k++) CHECK_CLOSE(base3[k] / l3[k], 1.0, 0, 1e-12);
    for (int k = 29; k <= 34; k++) CHECK_CLOSE(base3[k] / l3[k], mid[k - 29], 1e-4, 0);
    for (int k = 35; k < 64; k++) CHECK_CLOSE(base3[k] / l3[k], 8.0, 0, 1e-12);

    /* rope_freqs divisors applied as omega / freqs[k] */
    float div[64];
    for (int k = 0; k < 64; k++) div[k] = (float)(base3[k] / l3[k]);
    rope_params_default(&p, 128, 5e5, 8192);
    p.freq_divisors = div;
    rope_frequencies(&p, 0, omega, &m);
    for (int k = 0; k < 64; k++) CHECK_CLOSE(omega[k], l3[k], 0, 1e-6);

    /* tables: angles formed in double stay exact at large positions */
    struct rope_table tab = {0};
    rope_params_default(&p, 8, 1e4, 512);
    CHECK(rope_table_fill(&tab, &p, 100001, 0));
    double w0 = 1.0; /* pair 0: omega = 1 */
    CHECK_CLOSE(tab.cos[(size_t)100000 * 4], cos(100000 * w0), 1e-7, 0);
    CHECK_CLOSE(tab.sin[(size_t)100000 * 4], sin(100000 * w0), 1e-7, 0);
    CHECK_INT_EQ(tab.t.n_pos, 100001);
    CHECK_INT_EQ(tab.t.n_pairs, 4);
    rope_table_release(&tab);

    CHECK_INT_EQ(rope_scaling_from_name("yarn"), ROPE_YARN);
    CHECK_INT_EQ(rope_scaling_from_name("bogus"), -1);
    TEST_EXIT();
}
