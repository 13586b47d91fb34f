/* test_tokenizer_real.c — the tokenizers of two real models, when their files
 * are present (scripts/fetch-models; $ANC_REAL_MODELS, else
 * $XDG_DATA_HOME/ancora/models or ~/.local/share/ancora/models): SmolLM2's
 * byte-level BPE (pre-tokenizer "smollm") and Gemma 3's SentencePiece (262 144
 * pieces, no dummy prefix, multi-space and newline pieces, byte fallback),
 * compared with tests/golden/tokenizer_{smollm2,gemma3}.tsv from
 * tests/tokenizer_real_ref.py (Hugging Face tokenizers and sentencepiece built
 * from each file's own vocabulary); their end-of-generation tokens; and how
 * long loading Gemma's vocabulary takes. Skips (77) when neither file is
 * there. Needs core/ (gguf, tokenizer*, util) only. */
#include "gguf.h"
#include "golden_tsv.h"
#include "test_util.h"
#include "tokenizer.h"
#include "tokenizer_check.h"
#include "util.h"

#include <stdint.h>

#define SMOLLM2_FILE "SmolLM2-135M-Instruct.Q4_1.gguf"
#define GEMMA3_FILE "gemma-3-270m-q4_k_m.gguf"
#define ERR_LEN 512

/* Loading 262 144 pieces must stay well under the half second a user would
 * notice at `ancora tokenize` (it takes a few tens of ms at -O2). */
#define GEMMA_LOAD_LIMIT_S 0.5

static const char *real_path(char *buf, size_t cap, const char *file)
{
    const char *dir = getenv("ANC_REAL_MODELS");
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (dir && *dir)
        snprintf(buf, cap, "%s/%s", dir, file);
    else if (xdg && xdg[0] == '/')
        snprintf(buf, cap, "%s/ancora/models/%s", xdg, file);
    else
        snprintf(buf, cap, "%s/.local/share/ancora/models/%s", home ? home : "", file);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

static struct tokenizer *open_real(const char *path, double *seconds)
{
    char err[ERR_LEN] = "";
    double t0 = anc_now();
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    struct tokenizer *t = f ? tokenizer_new(f, err, sizeof err) : NULL;
    if (seconds) *seconds = anc_now() - t0;
    gguf_close(f);
    if (!t) {
        fprintf(stderr, "no tokenizer from %s: %s\n", path, err);
        exit(1);
    }
    return t;
}

static void check_golden(const struct tokenizer *t, const char *file, const char *what)
{
    size_t n, match = 0;
    struct golden *g = golden_read(file, GOLDEN_TEXT_IDS, &n);
    for (size_t i = 0; i < n; i++)
        match += encode_is(t, g[i].text, g[i].len, false, g[i].ids, g[i].n_ids, __FILE__,
                           __LINE__);
    fprintf(stderr, "%s: %zu of %zu cases match\n", what, match, n);
    CHECK(n >= 150);
    golden_free(g, n);
}

static void test_smollm2(const char *path)
{
    struct tokenizer *t = open_real(path, NULL);
    check_golden(t, "tokenizer_smollm2.tsv", "SmolLM2 (smollm pre-tokenizer)");
    int32_t im_end = tokenizer_find(t, "<|im_end|>");
    int32_t eot = tokenizer_find(t, "<|endoftext|>");
    int32_t im_start = tokenizer_find(t, "<|im_start|>");
    CHECK(im_end >= 0 && eot >= 0 && im_start >= 0);
    CHECK(tokenizer_is_eog(t, im_end));
    CHECK(tokenizer_is_eog(t, eot));
    CHECK(!tokenizer_is_eog(t, im_start));
    CHECK(!tokenizer_is_eog(t, tokenizer_find(t, "Hello")));
    CHECK(!tokenizer_is_eog(t, -1));
    CHECK(!tokenizer_is_eog(t, tokenizer_n_vocab(t)));
    tokenizer_free(t);
}

static void test_gemma3(const char *path)
{
    double load;
    struct tokenizer *t = open_real(path, &load);
    fprintf(stderr, "Gemma 3: %d pieces loaded in %.1f ms\n", tokenizer_n_vocab(t), load * 1e3);
    CHECK_MSG(load < GEMMA_LOAD_LIMIT_S, "loading took %.2f s", load);
    check_golden(t, "tokenizer_gemma3.tsv", "Gemma 3 (SentencePiece)");
    /* the multi-space piece, not two single spaces; BOS first by default */
    int32_t two = tokenizer_find(t, "  ");
    CHECK(two >= 0 && tokenizer_token_type(t, two) == TOK_TYPE_USER_DEFINED);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(tokenizer_encode(t, "  ", 2, tokenizer_add_bos(t), &ids, &n));
    CHECK(n == 2 && ids[0] == tokenizer_bos(t) && ids[1] == two);
    free(ids);
    int32_t eot = tokenizer_find(t, "<end_of_turn>");
    CHECK(eot >= 0 && tokenizer_is_eog(t, eot));
    CHECK(tokenizer_is_eog(t, tokenizer_find(t, "<eos>")));
    CHECK(!tokenizer_is_eog(t, tokenizer_find(t, "<start_of_turn>")));
    CHECK(!tokenizer_is_eog(t, tokenizer_bos(t)));
    tokenizer_free(t);
}

int main(void)
{
    char a[1024], b[1024];
    const char *smol = real_path(a, sizeof a, SMOLLM2_FILE);
    const char *gemma = real_path(b, sizeof b, GEMMA3_FILE);
    if (!smol && !gemma)
        TEST_SKIP("neither %s nor %s is present (scripts/fetch-models smollm2 gemma3)",
                  SMOLLM2_FILE, GEMMA3_FILE);
    if (smol)
        test_smollm2(smol);
    else
        fprintf(stderr, "SmolLM2 absent: its checks skipped\n");
    if (gemma)
        test_gemma3(gemma);
    else
        fprintf(stderr, "Gemma 3 absent: its checks skipped\n");
    TEST_EXIT();
}
