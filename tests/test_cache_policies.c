/* test_cache_policies.c — the cache policies of DESIGN.md / TECHNIQUES.md
 * §2 on stories260K.gguf: the worked example (which tokens stay, in which
 * order); random sequences of feeds and live changes against a naive
 * model of the cache; batched streaming prefill equal to token-by-token
 * feeding; sink == full while the window is not full; window == sink with
 * 0 sinks; recompute == a fresh run over the window; a live RoPE change
 * equal to a session run with the new settings from the start (on one
 * layer, where cached values do not depend on RoPE); memory bounded by
 * the window. */
#include <string.h>

#include "ancora.h"
#include "dtype.h"
#include "model.h"
#include "test_util.h"

static struct anc_model *model;
static int32_t n_vocab;

static struct anc_session *session(enum anc_cache_policy pol, int32_t window, int32_t sinks)
{
    struct anc_session_params sp;
    anc_session_params_default(&sp);
    sp.cache = pol;
    sp.window = window;
    sp.n_sink = sinks;
    sp.kv_type = ANC_DT_F32;
    sp.ctx = 2048;
    char err[ANC_ERR_LEN];
    struct anc_session *s = anc_session_new(model, &sp, err, sizeof err);
    if (!s) {
        fprintf(stderr, "session: %s\n", err);
        exit(1);
    }
    return s;
}

static void feed(struct anc_session *s, const int32_t *t, size_t n)
{
    char err[ANC_ERR_LEN];
    if (anc_session_feed(s, t, n, err, sizeof err) != 0) {
        fprintf(stderr, "feed: %s\n", err);
        exit(1);
    }
}

/* Logits after each of n tokens, fed one by one or in one call. */
static float *logits_seq(struct anc_session *s, const int32_t *t, size_t n, bool one_by_one)
{
    float *out = malloc(sizeof(float) * (size_t)n_vocab * n);
    char err[ANC_ERR_LEN];
    if (one_by_one) {
        for (size_t i = 0; i < n; i++) {
            feed(s, t + i, 1);
            memcpy(out + i * (size_t)n_vocab, anc_session_logits(s), sizeof(float) * (size_t)n_vocab);
        }
    } else if (anc_session_feed_all(s, t, n, out, err, sizeof err) != 0) {
        fprintf(stderr, "feed_all: %s\n", err);
        exit(1);
    }
    return out;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > w) w = d;
    }
    return w;
}

/* The cache's original indices, via the stats snapshot. */
static int32_t cached(struct anc_session *s, int64_t *orig, int32_t cap)
{
    struct anc_stats st;
    return anc_session_stats(s, &st, orig, cap);
}

static void test_worked_example(const int32_t *toks)
{
    /* window_length 8, 2 sinks, t0..t11 one at a time */
    struct anc_session *s = session(ANC_CACHE_SINK, 8, 2);
    for (int i = 0; i < 12; i++) feed(s, toks + i, 1);
    int64_t o[16];
    int32_t n = cached(s, o, 16);
    int64_t want[8] = {0, 1, 6, 7, 8, 9, 10, 11};
    CHECK_INT_EQ(n, 8);
    for (int i = 0; i < 8 && i < n; i++) CHECK_INT_EQ(o[i], want[i]);
    feed(s, toks + 12, 1); /* t12: t6 goes first */
    n = cached(s, o, 16);
    int64_t want2[8] = {0, 1, 7, 8, 9, 10, 11, 12};
    for (int i = 0; i < 8 && i < n; i++) CHECK_INT_EQ(o[i], want2[i]);
    struct anc_stats st;
    anc_session_stats(s, &st, NULL, 0);
    CHECK_INT_EQ(st.n_seen, 13);
    CHECK_INT_EQ(st.n_evicted, 5);
    CHECK_INT_EQ(st.n_sink_now, 2);
    CHECK_INT_EQ(st.sink_ids[0], toks[0]);
    CHECK_INT_EQ(st.sink_ids[1], toks[1]);
    CHECK(st.sink_mass[0] > 0.0f && st.sink_mass[0] <= 1.0f);
    anc_session_free(s);

    /* the same 12 tokens in one call end in the same cache */
    s = session(ANC_CACHE_SINK, 8, 2);
    feed(s, toks, 12);
    n = cached(s, o, 16);
    CHECK_INT_EQ(n, 8);
    for (int i = 0; i < 8 && i < n; i++) CHECK_INT_EQ(o[i], want[i]);
    anc_session_free(s);
}

/* Naive model: a list of original indices and the policy rule. */
struct naive {
    int64_t e[4096];
    int32_t n;
    int64_t seen;
    enum anc_cache_policy pol;
    int32_t W, S;
};

static int32_t naive_sinks(const struct naive *m) { return m->pol == ANC_CACHE_WINDOW ? 0 : m->S; }

static void naive_evict_to(struct naive *m, int32_t keep)
{
    int32_t S = naive_sinks(m);
    if (S > m->n) S = m->n;
    while (m->n > keep) {
        memmove(m->e + S, m->e + S + 1, sizeof(int64_t) * (size_t)(m->n - S - 1));
        m->n--;
    }
}

static void naive_feed(struct naive *m)
{
    if (m->pol != ANC_CACHE_FULL && m->n == m->W) naive_evict_to(m, m->W - 1);
    m->e[m->n++] = m->seen++;
}

static void test_random_against_naive(const int32_t *toks, size_t n_toks)
{
    uint64_t r = 12345;
    for (int trial = 0; trial < 6; trial++) {
        struct naive nm = {.pol = ANC_CACHE_SINK, .W = 12, .S = 3};
        struct anc_session *s = session(ANC_CACHE_SINK, 12, 3);
        char err[ANC_ERR_LEN];
        for (int op = 0; op < 60; op++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            int kind = (int)((r >> 33) % 10);
            if (kind < 6) { /* feed a batch of 1..40 tokens */
                int b = 1 + (int)((r >> 40) % 40);
                if (nm.pol == ANC_CACHE_FULL && nm.n + b > 2048) continue;
                int32_t *t = malloc(sizeof(int32_t) * (size_t)b);
                for (int i = 0; i < b; i++) t[i] = toks[(nm.seen + i) % (int64_t)n_toks];
                feed(s, t, (size_t)b);
                for (int i = 0; i < b; i++) naive_feed(&nm);
                free(t);
            } else if (kind == 6) { /* window */
                int32_t W = 4 + (int32_t)((r >> 40) % 30);
                if (nm.S >= W) continue;
                CHECK(anc_session_set_window(s, W, err, sizeof err));
                nm.W = W;
                if (nm.pol != ANC_CACHE_FULL && nm.n > W) naive_evict_to(&nm, W);
            } else if (kind == 7) { /* sinks */
                int32_t S = (int32_t)((r >> 40) % 6);
                if (S >= nm.W) continue;
                CHECK(anc_session_set_sinks(s, S, err, sizeof err));
                nm.S = S;
            } else if (kind == 8) { /* policy (recompute is checked elsewhere) */
                enum anc_cache_policy pols[3] = {ANC_CACHE_SINK, ANC_CACHE_WINDOW, ANC_CACHE_FULL};
                enum anc_cache_policy p = pols[(r >> 40) % 3];
                CHECK(anc_session_set_policy(s, p, err, sizeof err));
                nm.pol = p;
                if (p != ANC_CACHE_FULL && nm.n > nm.W) naive_evict_to(&nm, nm.W);
            } else { /* an invalid change is refused and changes nothing */
                CHECK(!anc_session_set_sinks(s, nm.W, err, sizeof err));
                CHECK(!anc_session_set_window(s, 1, err, sizeof err));
            }
            /* changes apply at the next token: compare after feeding one */
            if (kind >= 6) {
                feed(s, &toks[nm.seen % (int64_t)n_toks], 1);
                naive_feed(&nm);
            }
            int64_t o[4096];
            int32_t n = cached(s, o, 4096);
            int bad = n != nm.n;
            for (int32_t i = 0; i < n && !bad; i++) bad = o[i] != nm.e[i];
            if (bad) {
                fprintf(stderr, "trial %d op %d (kind %d, policy %s W %d S %d): cache has %d "
                        "entries, model %d\n", trial, op, kind, anc_cache_policy_name(nm.pol), nm.W,
                        nm.S, n, nm.n);
                test_failures++;
                break;
            }
        }
        anc_session_free(s);
    }
}

static void test_batched_equals_stepwise(const int32_t *toks)
{
    struct { enum anc_cache_policy pol; int32_t W, S; } cases[] = {
        {ANC_CACHE_SINK, 16, 4}, {ANC_CACHE_SINK, 40, 1}, {ANC_CACHE_WINDOW, 16, 0},
        {ANC_CACHE_SINK, 6, 5}, {ANC_CACHE_FULL, 0, 4},
    };
    size_t n = 150;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct anc_session *a = session(cases[c].pol, cases[c].W, cases[c].S);
        struct anc_session *b = session(cases[c].pol, cases[c].W, cases[c].S);
        float *la = logits_seq(a, toks, n, false), *lb = logits_seq(b, toks, n, true);
        double d = max_diff(la, lb, n * (size_t)n_vocab);
        CHECK_MSG(d < 1e-4, "%s W=%d S=%d: batched vs one-by-one differ by %g",
                  anc_cache_policy_name(cases[c].pol), cases[c].W, cases[c].S, d);
        free(la), free(lb);
        anc_session_free(a), anc_session_free(b);
    }
}

static void test_equivalences(const int32_t *toks)
{
    size_t n = 100;
    /* window larger than the text: sink == full */
    struct anc_session *a = session(ANC_CACHE_SINK, 512, 4), *b = session(ANC_CACHE_FULL, 0, 4);
    float *la = logits_seq(a, toks, n, false), *lb = logits_seq(b, toks, n, false);
    CHECK_MSG(max_diff(la, lb, n * (size_t)n_vocab) < 1e-5, "sink (big window) != full");
    free(la), free(lb), anc_session_free(a), anc_session_free(b);

    /* window == sink with no sinks */
    a = session(ANC_CACHE_WINDOW, 20, 4);
    b = session(ANC_CACHE_SINK, 20, 0);
    la = logits_seq(a, toks, n, false);
    lb = logits_seq(b, toks, n, false);
    CHECK_MSG(max_diff(la, lb, n * (size_t)n_vocab) < 1e-6, "window != sink with 0 sinks");
    free(la), free(lb), anc_session_free(a), anc_session_free(b);

    /* and the sinks matter: once the window slides, sink != window */
    a = session(ANC_CACHE_SINK, 20, 4);
    b = session(ANC_CACHE_WINDOW, 20, 0);
    la = logits_seq(a, toks, n, false);
    lb = logits_seq(b, toks, n, false);
    CHECK_MSG(max_diff(la, lb, 20 * (size_t)n_vocab) < 1e-6, "identical before the window fills");
    CHECK_MSG(max_diff(la + 60 * (size_t)n_vocab, lb + 60 * (size_t)n_vocab, 40 * (size_t)n_vocab) > 1e-2,
              "sinks make no difference after the window slides");
    free(la), free(lb), anc_session_free(a), anc_session_free(b);

    /* recompute: logits == a fresh full session over the last W tokens */
    int32_t W = 24;
    a = session(ANC_CACHE_RECOMPUTE, W, 4);
    la = logits_seq(a, toks, n, true);
    struct anc_session *a2 = session(ANC_CACHE_RECOMPUTE, W, 4);
    float *stream_all = logits_seq(a2, toks, n, false);
    CHECK_MSG(max_diff(la, stream_all, n * (size_t)n_vocab) < 1e-4, "recompute: batched != one by one");
    free(stream_all);
    anc_session_free(a2);
    for (size_t t = (size_t)W; t < n; t += 17) {
        b = session(ANC_CACHE_FULL, 0, 4);
        feed(b, toks + t + 1 - (size_t)W, (size_t)W);
        double d = max_diff(la + t * (size_t)n_vocab, anc_session_logits(b), (size_t)n_vocab);
        CHECK_MSG(d < 1e-4, "recompute at token %zu differs from a fresh run by %g", t, d);
        anc_session_free(b);
    }
    /* recompute's one-shot prefill equals its token-by-token end state */
    b = session(ANC_CACHE_RECOMPUTE, W, 4);
    feed(b, toks, n);
    CHECK_MSG(max_diff(la + (n - 1) * (size_t)n_vocab, anc_session_logits(b), (size_t)n_vocab) < 1e-4,
              "recompute prefill shortcut");
    anc_session_free(b);
    free(la), anc_session_free(a);
}

static void test_live_rope(const int32_t *toks)
{
    /* one layer: cached keys/values do not depend on RoPE, so a live
       change must give exactly what a session with the new settings from
       the start gives (the cached keys are rotated with the new settings) */
    char err[ANC_ERR_LEN];
    struct anc_model_params mp;
    anc_model_params_default(&mp);
    mp.n_threads = 2;
    char path[1024];
    test_model_path(path, sizeof path, "stories260K.gguf");
    struct anc_model *m1 = anc_model_load(path, &mp, err, sizeof err);
    model_limit_layers(m1, 1);
    struct anc_model *saved = model;
    model = m1;
    struct anc_rope_settings r = {.theta = 50000, .scaling = ANC_ROPE_YARN, .factor = 4,
                                  .orig_ctx = 64};
    for (int pol = 0; pol < 2; pol++) {
        enum anc_cache_policy p = pol ? ANC_CACHE_SINK : ANC_CACHE_FULL;
        struct anc_session *a = session(p, 30, 4), *b = session(p, 30, 4);
        CHECK(anc_session_set_rope(b, &r, err, sizeof err));
        feed(a, toks, 50);
        feed(b, toks, 50);
        CHECK(anc_session_set_rope(a, &r, err, sizeof err));
        feed(a, toks + 50, 1);
        feed(b, toks + 50, 1);
        double d = max_diff(anc_session_logits(a), anc_session_logits(b), (size_t)n_vocab);
        CHECK_MSG(d < 1e-5, "%s: live RoPE change differs from a fresh run by %g",
                  anc_cache_policy_name(p), d);
        /* and the change did something */
        struct anc_session *c = session(p, 30, 4);
        feed(c, toks, 51);
        CHECK(max_diff(anc_session_logits(a), anc_session_logits(c), (size_t)n_vocab) > 1e-3);
        struct anc_stats st;
        anc_session_stats(a, &st, NULL, 0);
        CHECK_CLOSE(st.rope_theta, 50000, 0, 0);
        CHECK_INT_EQ(st.rope_scaling, ANC_ROPE_YARN);
        CHECK_CLOSE(st.rope_mscale, 1.13863, 1e-5, 0);
        anc_session_free(a), anc_session_free(b), anc_session_free(c);
    }
    model = saved;
    anc_model_free(m1);
}

/* On one layer a token's cached key and value depend only on the token, so
 * the sink policy's logits after token t must equal a fresh dense run over
 * exactly what the policy keeps: the first S tokens, then the last W - S
 * (positions 0..W-1). This checks eviction, masks and positions
 * independently of the streaming code path. */
static void test_one_layer_reference(const int32_t *toks)
{
    char err[ANC_ERR_LEN];
    struct anc_model_params mp;
    anc_model_params_default(&mp);
    char path[1024];
    test_model_path(path, sizeof path, "stories260K.gguf");
    struct anc_model *m1 = anc_model_load(path, &mp, err, sizeof err);
    model_limit_layers(m1, 1);
    struct anc_model *saved = model;
    model = m1;
    struct { enum anc_cache_policy pol; int32_t W, S; } cases[] = {
        {ANC_CACHE_SINK, 16, 4}, {ANC_CACHE_SINK, 9, 1}, {ANC_CACHE_WINDOW, 12, 0},
        {ANC_CACHE_SINK, 40, 3},
    };
    size_t n = 150;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int32_t W = cases[c].W, S = cases[c].S;
        for (int batched = 0; batched < 2; batched++) {
            struct anc_session *a = session(cases[c].pol, W, S);
            float *la = logits_seq(a, toks, n, !batched);
            double worst = 0;
            for (size_t t = 0; t < n; t++) {
                int32_t seq[64];
                size_t k = 0;
                if (t + 1 <= (size_t)W) {
                    for (size_t i = 0; i <= t; i++) seq[k++] = toks[i];
                } else {
                    for (int32_t i = 0; i < S; i++) seq[k++] = toks[i];
                    for (size_t i = t + 1 - (size_t)(W - S); i <= t; i++) seq[k++] = toks[i];
                }
                struct anc_session *b = session(ANC_CACHE_FULL, 0, S);
                feed(b, seq, k);
                double d = max_diff(la + t * (size_t)n_vocab, anc_session_logits(b), (size_t)n_vocab);
                if (d > worst) worst = d;
                anc_session_free(b);
            }
            CHECK_MSG(worst < 1e-4, "%s W=%d S=%d %s: differs from the dense reference by %g",
                      anc_cache_policy_name(cases[c].pol), W, S, batched ? "batched" : "one by one",
                      worst);
            free(la);
            anc_session_free(a);
        }
    }
    model = saved;
    anc_model_free(m1);
}

static void test_memory_bounded(const int32_t *toks, size_t n_toks)
{
    struct anc_session *s = session(ANC_CACHE_SINK, 64, 4);
    struct anc_stats st;
    int32_t *t = malloc(sizeof(int32_t) * 4000);
    for (int i = 0; i < 4000; i++) t[i] = toks[i % n_toks];
    /* the bytes the cached entries use grow with them, within the reserved room */
    feed(s, t, 10);
    anc_session_stats(s, &st, NULL, 0);
    uint64_t used10 = st.bytes_kv_used;
    feed(s, t, 10);
    anc_session_stats(s, &st, NULL, 0);
    CHECK_MSG(used10 > 0 && st.bytes_kv_used == 2 * used10 && st.bytes_kv_used <= st.bytes_kv,
              "KV bytes in use: %llu after 10 tokens, %llu after 20, %llu reserved",
              (unsigned long long)used10, (unsigned long long)st.bytes_kv_used, (unsigned long long)st.bytes_kv);
    feed(s, t, 480);
    anc_session_stats(s, &st, NULL, 0);
    uint64_t kv0 = st.bytes_kv, scratch0 = st.bytes_scratch, rss0 = st.bytes_rss;
    for (int rep = 0; rep < 10; rep++) feed(s, t, 1000);
    anc_session_stats(s, &st, NULL, 0);
    CHECK_INT_EQ(st.bytes_kv, kv0);
    CHECK_INT_EQ(st.bytes_scratch, scratch0);
    CHECK_INT_EQ(st.n_cached, 64);
    CHECK_INT_EQ(st.bytes_kv_used, used10 / 10 * 64);
    CHECK_INT_EQ(st.n_seen, 10500);
    /* RSS: allow 1 MiB of noise, not growth with the 10 000 tokens */
    CHECK_MSG(st.bytes_rss <= rss0 + (1u << 20), "RSS grew from %llu to %llu",
              (unsigned long long)rss0, (unsigned long long)st.bytes_rss);
    free(t);
    anc_session_free(s);
}

int main(void)
{
    char path[1024];
    test_model_path(path, sizeof path, "stories260K.gguf");
    char err[ANC_ERR_LEN];
    struct anc_model_params mp;
    anc_model_params_default(&mp);
    mp.n_threads = 2;
    model = anc_model_load(path, &mp, err, sizeof err);
    CHECK_MSG(model != NULL, "%s", err);
    if (!model) TEST_EXIT();
    n_vocab = anc_n_vocab(model);
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play "
                       "outside in the park. One day, she saw a big red ball in the tree. She "
                       "wanted to play with it, but it was too high. She asked her mom for help. "
                       "Her mom said, \"Let's find a stick.\" They looked and looked, and at last "
                       "they found one. Lily was very happy and they played all day long. The next "
                       "morning, Lily and her friend Tom went to the big park by the lake. They "
                       "saw ducks, a boat and a man with a red hat. Tom said, \"Look, a kite!\" "
                       "The kite was blue and yellow and it flew up high in the sky.";
    int32_t *toks;
    size_t n;
    CHECK(anc_tokenize(model, text, strlen(text), true, &toks, &n) == 0);
    CHECK(n >= 151);
    test_worked_example(toks);
    test_random_against_naive(toks, n);
    test_batched_equals_stepwise(toks);
    test_equivalences(toks);
    test_live_rope(toks);
    test_one_layer_reference(toks);
    test_memory_bounded(toks, n);
    free(toks);
    anc_model_free(model);
    TEST_EXIT();
}
