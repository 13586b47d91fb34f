/* test_session.c — the session API on stories260K.gguf: batched and
 * token-by-token feeding agree, thread counts agree, the full cache stops
 * with a clear error, bad token ids and bad parameters are refused, and a
 * vocabulary-only file cannot start a session. */
#include <string.h>

#include "ancora.h"
#include "dtype.h"
#include "test_util.h"

static float *logits_after(struct anc_model *m, const int32_t *toks, size_t n, bool one_by_one)
{
    struct anc_session_params sp;
    anc_session_params_default(&sp);
    sp.kv_type = ANC_DT_F32;
    char err[ANC_ERR_LEN];
    struct anc_session *s = anc_session_new(m, &sp, err, sizeof err);
    CHECK_MSG(s != NULL, "%s", err);
    if (!s) return NULL;
    if (one_by_one) {
        for (size_t i = 0; i < n; i++) CHECK(anc_session_feed(s, &toks[i], 1, err, sizeof err) == 0);
    } else {
        CHECK(anc_session_feed(s, toks, n, err, sizeof err) == 0);
    }
    CHECK_INT_EQ(anc_session_n_seen(s), n);
    int32_t nv = anc_n_vocab(m);
    float *out = malloc(sizeof(float) * (size_t)nv);
    memcpy(out, anc_session_logits(s), sizeof(float) * (size_t)nv);
    anc_session_free(s);
    return out;
}

int main(void)
{
    char path[1024], vpath[1024];
    test_model_path(path, sizeof path, "stories260K.gguf");
    test_model_path(vpath, sizeof vpath, "ggml-vocab-llama-spm.gguf");
    char err[ANC_ERR_LEN];
    struct anc_model_params mp;
    anc_model_params_default(&mp);
    mp.n_threads = 2;
    struct anc_model *m = anc_model_load(path, &mp, err, sizeof err);
    CHECK_MSG(m != NULL, "%s", err);
    if (!m) TEST_EXIT();

    struct anc_model_info mi;
    anc_model_get_info(m, &mi);
    CHECK_INT_EQ(mi.n_layer, 5);
    CHECK_INT_EQ(mi.dim, 64);
    CHECK_INT_EQ(mi.n_kv_head, 4);
    CHECK_INT_EQ(mi.n_vocab, 512);
    CHECK_INT_EQ(mi.weight_type, ANC_DT_F32);

    /* a 70-token text: crosses the internal batch size twice */
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play "
                       "outside in the park with her friends and her dog.";
    int32_t *toks;
    size_t n;
    CHECK(anc_tokenize(m, text, strlen(text), true, &toks, &n) == 0);
    CHECK(n > 32);
    float *a = logits_after(m, toks, n, false);
    float *b = logits_after(m, toks, n, true);
    double worst = 0;
    for (int32_t i = 0; i < anc_n_vocab(m); i++) {
        double d = fabs(a[i] - b[i]);
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst < 1e-4, "batched vs one by one differ by %g", worst);
    free(b);

    /* another thread count gives the same logits */
    struct anc_model_params mp1 = mp;
    mp1.n_threads = 1;
    struct anc_model *m1 = anc_model_load(path, &mp1, err, sizeof err);
    CHECK(m1 != NULL);
    float *c = logits_after(m1, toks, n, false);
    worst = 0;
    for (int32_t i = 0; i < anc_n_vocab(m); i++) {
        double d = fabs(a[i] - c[i]);
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst < 1e-5, "1 vs 2 threads differ by %g", worst);
    free(c);
    free(a);
    anc_model_free(m1);

    /* full cache: a clear error once --ctx is exhausted, nothing fed */
    struct anc_session_params sp;
    anc_session_params_default(&sp);
    sp.cache = ANC_CACHE_FULL;
    sp.ctx = 16;
    struct anc_session *s = anc_session_new(m, &sp, err, sizeof err);
    CHECK(s != NULL);
    CHECK(anc_session_feed(s, toks, 16, err, sizeof err) == 0);
    CHECK(anc_session_feed(s, toks, 1, err, sizeof err) != 0);
    CHECK_MSG(strstr(err, "context is full") != NULL, "message: %s", err);
    int32_t bad = 100000;
    CHECK(anc_session_feed(s, &bad, 1, err, sizeof err) != 0);
    CHECK_MSG(strstr(err, "outside the vocabulary") != NULL, "message: %s", err);
    anc_session_free(s);

    /* absurd parameters are refused with a message */
    anc_session_params_default(&sp);
    sp.sampling.top_p = 2;
    CHECK(anc_session_new(m, &sp, err, sizeof err) == NULL);
    anc_session_params_default(&sp);
    sp.kv_type = ANC_DT_Q4_0;
    CHECK(anc_session_new(m, &sp, err, sizeof err) == NULL);
    anc_session_params_default(&sp);
    sp.ctx = 1 << 30;
    CHECK(anc_session_new(m, &sp, err, sizeof err) == NULL);
    anc_session_params_default(&sp);
    sp.window = 8;
    sp.n_sink = 8; /* sinks must leave room for the token itself */
    CHECK(anc_session_new(m, &sp, err, sizeof err) == NULL);
    anc_session_params_default(&sp);
    sp.rope.factor = 0.5;
    CHECK(anc_session_new(m, &sp, err, sizeof err) == NULL);

    /* same seed, same text (temperature sampling) */
    anc_session_params_default(&sp);
    sp.sampling.temp = 1.0f;
    sp.sampling.seed = 7;
    int32_t out1[40], out2[40];
    for (int rep = 0; rep < 2; rep++) {
        s = anc_session_new(m, &sp, err, sizeof err);
        int32_t bos = anc_token_bos(m);
        anc_session_feed(s, &bos, 1, err, sizeof err);
        for (int i = 0; i < 40; i++) {
            int32_t t = anc_session_sample(s);
            (rep ? out2 : out1)[i] = t;
            anc_session_feed(s, &t, 1, err, sizeof err);
        }
        anc_session_free(s);
    }
    CHECK(memcmp(out1, out2, sizeof out1) == 0);
    free(toks);
    anc_model_free(m);

    /* vocabulary-only files tokenize but cannot generate */
    mp.vocab_only = true;
    struct anc_model *v = anc_model_load(vpath, &mp, err, sizeof err);
    CHECK_MSG(v != NULL, "%s", err);
    if (v) {
        CHECK_INT_EQ(anc_n_vocab(v), 32000);
        anc_session_params_default(&sp);
        CHECK(anc_session_new(v, &sp, err, sizeof err) == NULL);
        anc_model_free(v);
    }
    mp.vocab_only = false;
    v = anc_model_load(vpath, &mp, err, sizeof err);
    CHECK(v == NULL); /* no weights: a clear error, not a crash */
    fprintf(stderr, "loading a vocab-only file as a model: %s\n", err);
    TEST_EXIT();
}
