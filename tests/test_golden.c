/* test_golden.c — end-to-end check of the engine against an independent
 * implementation: greedy decoding of stories260K.gguf must produce exactly
 * the tokens of tests/reference/llama_ref.py (NumPy, float64), and the
 * logits of the first steps must agree within a stated tolerance.
 * Needs ../shared/models/stories260K.gguf and tests/golden/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ancora.h"
#include "dtype.h"
#include "test_util.h"

#define MAX_TOK 1024
#define LOGIT_STEPS 8

/* Read whitespace-separated integers from a file. */
static size_t read_ints(const char *path, int32_t *out, size_t cap)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    size_t n = 0;
    long v;
    while (n < cap && fscanf(fp, "%ld", &v) == 1) out[n++] = (int32_t)v;
    fclose(fp);
    return n;
}

/* Read LOGIT_STEPS lines of n_vocab floats. */
static float *read_logits(const char *path, int32_t n_vocab)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    float *l = malloc(sizeof(float) * (size_t)n_vocab * LOGIT_STEPS);
    for (size_t i = 0; i < (size_t)n_vocab * LOGIT_STEPS; i++)
        if (fscanf(fp, "%f", &l[i]) != 1) {
            fprintf(stderr, "%s: short logits file\n", path);
            exit(1);
        }
    fclose(fp);
    return l;
}

/* Greedy-decode from the case's prompt and compare. Returns the number of
 * leading tokens that matched. `tol` bounds |logit - golden|. */
static size_t run_case(struct anc_model *m, const char *golden_dir, const char *name,
                       uint32_t kv_type, double tol, bool token_by_token)
{
    char path[1024];
    int32_t prompt[MAX_TOK], expect[MAX_TOK];
    size_t n_prompt = 1;
    prompt[0] = anc_token_bos(m);
    snprintf(path, sizeof path, "%s/%s.prompt", golden_dir, name);
    if (access(path, R_OK) == 0) n_prompt = read_ints(path, prompt, MAX_TOK);
    snprintf(path, sizeof path, "%s/%s.tokens", golden_dir, name);
    size_t n_expect = read_ints(path, expect, MAX_TOK);
    snprintf(path, sizeof path, "%s/%s.logits", golden_dir, name);
    int32_t n_vocab = anc_n_vocab(m);
    float *golden = read_logits(path, n_vocab);

    struct anc_session_params sp;
    anc_session_params_default(&sp);
    sp.sampling.temp = 0;
    sp.kv_type = kv_type;
    char err[ANC_ERR_LEN];
    struct anc_session *s = anc_session_new(m, &sp, err, sizeof err);
    CHECK_MSG(s != NULL, "%s", err);
    if (!s) return 0;
    if (token_by_token) {
        for (size_t i = 0; i < n_prompt; i++) CHECK(anc_session_feed(s, &prompt[i], 1, err, sizeof err) == 0);
    } else {
        CHECK(anc_session_feed(s, prompt, n_prompt, err, sizeof err) == 0);
    }
    size_t matched = 0;
    double worst = 0;
    for (size_t step = 0; step < n_expect; step++) {
        const float *logits = anc_session_logits(s);
        if (step < LOGIT_STEPS) {
            for (int32_t v = 0; v < n_vocab; v++) {
                double d = fabs((double)logits[v] - golden[step * (size_t)n_vocab + (size_t)v]);
                if (d > worst) worst = d;
            }
        }
        int32_t tok = anc_session_sample(s);
        if (tok != expect[step]) {
            fprintf(stderr, "%s (kv %s): token %zu is %d, expected %d\n", name,
                    kv_type == ANC_DT_F16 ? "f16" : "f32", step, tok, expect[step]);
            break;
        }
        matched++;
        if (anc_session_feed(s, &tok, 1, err, sizeof err) != 0) break;
    }
    fprintf(stderr, "%s (kv %s, %s): %zu/%zu tokens match, max |logit diff| over %d steps %.3g\n",
            name, kv_type == ANC_DT_F16 ? "f16" : "f32", token_by_token ? "token by token" : "batched",
            matched, n_expect, LOGIT_STEPS, worst);
    CHECK_MSG(worst <= tol, "%s: logits differ by %.3g > %.3g", name, worst, tol);
    CHECK_INT_EQ(matched, n_expect);
    anc_session_free(s);
    free(golden);
    return matched;
}

int main(void)
{
    char model_path[1024];
    test_model_path(model_path, sizeof model_path, "stories260K.gguf");
    const char *src = getenv("ANC_SRCDIR");
    char golden_dir[1024];
    snprintf(golden_dir, sizeof golden_dir, "%s/tests/golden", src && *src ? src : ".");

    char err[ANC_ERR_LEN];
    int threads[] = {1, 2, 3, 8}; /* 8: more threads than CI's cores */
    for (size_t ti = 0; ti < sizeof threads / sizeof threads[0]; ti++) {
        struct anc_model_params mp;
        anc_model_params_default(&mp);
        mp.n_threads = threads[ti];
        struct anc_model *m = anc_model_load(model_path, &mp, err, sizeof err);
        CHECK_MSG(m != NULL, "%s", err);
        if (!m) TEST_EXIT();
        fprintf(stderr, "-- %d thread(s)\n", threads[ti]);
        /* f32 cache: float32 arithmetic vs the float64 reference */
        run_case(m, golden_dir, "stories260K_greedy_bos", ANC_DT_F32, 1e-3, false);
        run_case(m, golden_dir, "stories260K_greedy_prompt", ANC_DT_F32, 1e-3, false);
        run_case(m, golden_dir, "stories260K_greedy_prompt2", ANC_DT_F32, 1e-3, true);
        run_case(m, golden_dir, "stories260K_greedy_prompt2", ANC_DT_F32, 1e-3, false);
        /* f16 cache (the default): cached keys/values are rounded to half
           precision (relative error 2^-11), so the logits move a little more */
        run_case(m, golden_dir, "stories260K_greedy_prompt", ANC_DT_F16, 2e-2, false);
        run_case(m, golden_dir, "stories260K_greedy_prompt2", ANC_DT_F16, 2e-2, false);
        anc_model_free(m);
    }
    TEST_EXIT();
}
