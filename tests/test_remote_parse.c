/* test_remote_parse.c — the remote engine's parsers (core/remote.h) on
 * fixtures written from the documented formats (tests/data/remote/):
 * OpenAI-style streamed chat completions as vLLM and llama-server send
 * them (server-sent events, LF and CR LF, split anywhere), vLLM's
 * Prometheus /metrics (V1 names, and V0's gpu_cache_usage_perc with two
 * models), llama-server's /metrics and /slots, error bodies; and bad
 * input, which must never crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ancora.h"
#include "remote.h"
#include "test_util.h"

static char *slurp(const char *name, size_t *len)
{
    const char *src = getenv("ANC_SRCDIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/remote/%s", src ? src : ".", name);
    char err[ANC_ERR_LEN];
    char *t = anc_read_file(path, len, err, sizeof err);
    if (!t) fprintf(stderr, "%s\n", err);
    return t;
}

/* What a stream gives: the text, the finish reason, usage and timings. */
struct collect {
    char text[4096];
    size_t len;
    int events, chunks;
    char finish[24], error[256];
    bool done, have_usage, have_timings;
    int64_t prompt_tokens, completion_tokens, predicted_n;
    double prompt_ms;
};

static bool on_data(void *ctx, const char *data, size_t len)
{
    struct collect *c = ctx;
    c->events++;
    CHECK(strlen(data) == len); /* NUL-terminated */
    struct remote_chunk ch;
    if (remote_parse_chunk(data, len, &ch) != 0) {
        snprintf(c->error, sizeof c->error, "%s", ch.error);
        remote_chunk_clear(&ch);
        return false;
    }
    if (ch.done) c->done = true;
    if (ch.error[0]) snprintf(c->error, sizeof c->error, "%s", ch.error);
    if (ch.content && c->len + ch.content_len < sizeof c->text) {
        memcpy(c->text + c->len, ch.content, ch.content_len);
        c->len += ch.content_len;
        c->text[c->len] = '\0';
        c->chunks++;
    }
    if (ch.finish[0]) snprintf(c->finish, sizeof c->finish, "%s", ch.finish);
    if (ch.have_usage) {
        c->have_usage = true;
        c->prompt_tokens = ch.prompt_tokens;
        c->completion_tokens = ch.completion_tokens;
    }
    if (ch.have_timings) {
        c->have_timings = true;
        c->predicted_n = ch.predicted_n;
        c->prompt_ms = ch.prompt_ms;
    }
    remote_chunk_clear(&ch);
    return !c->done && !c->error[0];
}

/* Feed a whole stream in pieces of `step` bytes (0: all at once). */
static int run_stream(const char *t, size_t n, size_t step, struct collect *c)
{
    memset(c, 0, sizeof *c);
    struct remote_sse s;
    memset(&s, 0, sizeof s);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t k = step ? (n - i < step ? n - i : step) : n;
        rc = remote_sse_feed(&s, t + i, k, on_data, c);
        i += k;
    }
    remote_sse_free(&s);
    return rc;
}

static void test_vllm_stream(void)
{
    size_t n;
    char *t = slurp("vllm_stream.sse", &n);
    CHECK(t != NULL);
    if (!t) return;
    static const size_t steps[] = {0, 1, 2, 3, 7, 64};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        struct collect c;
        int rc = run_stream(t, n, steps[k], &c);
        CHECK_INT_EQ(rc, 1); /* [DONE] stops it */
        CHECK(c.done);
        CHECK_MSG(strcmp(c.text, " The anchor holds \xc3\xa9\xe4\xb8\xad.\n") == 0, "step %zu: '%s'",
                  steps[k], c.text);
        CHECK(strcmp(c.finish, "stop") == 0);
        CHECK(c.have_usage);
        CHECK_INT_EQ(c.prompt_tokens, 23);
        CHECK_INT_EQ(c.completion_tokens, 5);
        CHECK(!c.have_timings);
        CHECK_INT_EQ(c.events, 7);
    }
    free(t);
}

static void test_llama_stream_crlf(void)
{
    size_t n;
    char *t = slurp("llama_stream_crlf.sse", &n);
    CHECK(t != NULL);
    if (!t) return;
    for (size_t step = 0; step < 9; step++) {
        struct collect c;
        int rc = run_stream(t, n, step, &c);
        CHECK_INT_EQ(rc, 1);
        CHECK_MSG(strcmp(c.text, "Hello") == 0, "step %zu: '%s'", step, c.text);
        CHECK(strcmp(c.finish, "length") == 0);
        CHECK(c.have_usage && c.prompt_tokens == 31 && c.completion_tokens == 2);
        CHECK(c.have_timings && c.predicted_n == 2);
        CHECK_CLOSE(c.prompt_ms, 12.5, 1e-9, 0);
        CHECK_INT_EQ(c.events, 4); /* the comment and the event/id fields are not events */
    }
    free(t);
}

static void test_stream_error_and_cut(void)
{
    size_t n;
    char *t = slurp("stream_error.sse", &n);
    CHECK(t != NULL);
    struct collect c;
    if (t) {
        run_stream(t, n, 5, &c);
        CHECK(strcmp(c.text, "Partial") == 0);
        CHECK_MSG(strstr(c.error, "context is full") != NULL, "'%s'", c.error);
        free(t);
    }
    t = slurp("stream_cut.sse", &n);
    CHECK(t != NULL);
    if (t) {
        int rc = run_stream(t, n, 0, &c);
        CHECK_INT_EQ(rc, 0);     /* no error: the stream just stops */
        CHECK(strcmp(c.text, "Cut") == 0); /* the unfinished event is not delivered */
        CHECK(!c.done && !c.finish[0]);
        free(t);
    }
}

static void test_sse_edges(void)
{
    struct collect c;
    /* multi-line data, "data" without a colon (an empty line of data), no
       space after the colon, an event with no data (not dispatched) */
    const char *s = "data:{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
                    "event: ping\n\n"
                    "data\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n"
                    "data: [DONE]\n\n";
    CHECK_INT_EQ(run_stream(s, strlen(s), 1, &c), 1);
    CHECK(strcmp(c.text, "ab") == 0);
    CHECK_INT_EQ(c.events, 3);
    /* not JSON: a clear error, parsing stops */
    s = "data: <html>502 Bad Gateway</html>\n\n";
    CHECK_INT_EQ(run_stream(s, strlen(s), 0, &c), 1);
    CHECK(strstr(c.error, "not a JSON object") != NULL);
    /* an event larger than the limit: -1, not unbounded memory */
    size_t big = REMOTE_SSE_MAX + 16;
    char *b = malloc(big + 8);
    CHECK(b != NULL);
    if (b) {
        memcpy(b, "data: ", 6);
        memset(b + 6, 'x', big);
        struct remote_sse st;
        memset(&st, 0, sizeof st);
        CHECK_INT_EQ(remote_sse_feed(&st, b, big + 6, on_data, &c), -1);
        remote_sse_free(&st);
        free(b);
    }
    /* a chunk with odd types: fields of the wrong type are ignored */
    struct remote_chunk ch;
    const char *odd = "{\"choices\":\"x\",\"usage\":[],\"timings\":{\"prompt_n\":\"7\"}}";
    CHECK_INT_EQ(remote_parse_chunk(odd, strlen(odd), &ch), 0);
    CHECK(ch.content == NULL && !ch.have_usage && ch.have_timings && ch.prompt_n == -1);
    remote_chunk_clear(&ch);
    odd = "{\"choices\":[{\"delta\":{\"content\":\"\\u0000z\"},\"finish_reason\":null}]}";
    CHECK_INT_EQ(remote_parse_chunk(odd, strlen(odd), &ch), -1); /* NUL in a string: refused */
    remote_chunk_clear(&ch);
    CHECK_INT_EQ(remote_parse_chunk("", 0, &ch), -1);
    remote_chunk_clear(&ch);
}

static void test_vllm_metrics(void)
{
    size_t n;
    char *t = slurp("vllm_metrics_v1.prom", &n);
    CHECK(t != NULL);
    struct remote_metrics m;
    if (t) {
        remote_parse_metrics(t, n, "meta-llama/Llama-3.1-70B-Instruct", &m);
        CHECK(m.vllm && !m.llamacpp);
        CHECK(m.have_kv_usage);
        CHECK_CLOSE(m.kv_usage, 0.4275, 1e-12, 0);
        CHECK(m.have_requests);
        CHECK_CLOSE(m.running, 3, 0, 0);
        CHECK_CLOSE(m.waiting, 2, 0, 0);
        CHECK_CLOSE(m.prompt_total, 18342, 0, 0);
        CHECK_CLOSE(m.gen_total, 5120, 0, 0);
        CHECK_INT_EQ(m.kv_tokens, 5691 * 16);
        CHECK(m.prompt_tok_s < 0 && m.gen_tok_s < 0);
        /* the same without a model name: every sample counts */
        remote_parse_metrics(t, n, NULL, &m);
        CHECK_CLOSE(m.running, 3, 0, 0);
        free(t);
    }
    t = slurp("vllm_metrics_v0.prom", &n);
    CHECK(t != NULL);
    if (t) {
        /* two models: only ours counts */
        remote_parse_metrics(t, n, "mistralai/Mistral-7B-Instruct-v0.3", &m);
        CHECK(m.have_kv_usage);
        CHECK_CLOSE(m.kv_usage, 0.0625, 1e-12, 0);
        CHECK_CLOSE(m.running, 1, 0, 0);
        CHECK_CLOSE(m.waiting, 0, 0, 0);
        CHECK_CLOSE(m.prompt_total, 1000, 0, 0);
        CHECK_CLOSE(m.gen_total, 250, 0, 0); /* the malformed line skipped, the timestamp ignored */
        CHECK_INT_EQ(m.kv_tokens, 2000 * 16);
        /* a model the server does not name: all samples, the fullest cache */
        remote_parse_metrics(t, n, "not/served", &m);
        CHECK_CLOSE(m.running, 8, 0, 0);
        CHECK_CLOSE(m.waiting, 5, 0, 0);
        CHECK_CLOSE(m.kv_usage, 0.9, 1e-12, 0);
        free(t);
    }
    t = slurp("llama_metrics.prom", &n);
    CHECK(t != NULL);
    if (t) {
        remote_parse_metrics(t, n, "x", &m);
        CHECK(m.llamacpp && !m.vllm);
        CHECK(!m.have_kv_usage);
        CHECK(m.have_requests && m.running == 1 && m.waiting == 0);
        CHECK_CLOSE(m.prompt_total, 154, 0, 0);
        CHECK_CLOSE(m.gen_total, 96, 0, 0);
        CHECK_CLOSE(m.prompt_tok_s, 1250.5, 1e-9, 0);
        CHECK_CLOSE(m.gen_tok_s, 88.25, 1e-9, 0);
        free(t);
    }
    /* junk: nothing found, no crash */
    const char *junk = "{\n}}}}\nvllm:num_requests_running{model_name=\"a\\\"b\"} 4\n"
                       "vllm:kv_cache_usage_perc{model_name=\"unterminated} 0.5\n"
                       "vllm:kv_cache_usage_perc 7\n\n#\n";
    remote_parse_metrics(junk, strlen(junk), "a\"b", &m);
    CHECK(m.have_requests && m.running == 4);
    CHECK(m.have_kv_usage && m.kv_usage == 1); /* clamped to 0..1 */
    remote_parse_metrics("", 0, NULL, &m);
    CHECK(!m.have_kv_usage && !m.have_requests && m.prompt_total == -1);
}

static void test_slots(void)
{
    size_t n;
    char *t = slurp("llama_slots.json", &n);
    CHECK(t != NULL);
    if (!t) return;
    struct remote_slot sl[4];
    int k = remote_parse_slots(t, n, sl, 4);
    CHECK_INT_EQ(k, 3);
    CHECK(sl[0].id == 0 && sl[0].n_ctx == 2048 && !sl[0].processing);
    CHECK(sl[0].n_prompt == 40 && sl[0].n_decoded == 14 && sl[0].n_keep == 0);
    CHECK(sl[1].processing && sl[1].n_prompt == 120 && sl[1].n_decoded == 56 && sl[1].n_keep == 4);
    CHECK(sl[2].n_prompt == 0 && sl[2].n_decoded == 0 && sl[2].n_keep == -1);
    CHECK_INT_EQ(remote_parse_slots(t, n, sl, 1), 1); /* capped */
    free(t);
    CHECK_INT_EQ(remote_parse_slots("{}", 2, sl, 4), -1);
    CHECK_INT_EQ(remote_parse_slots("[1]", 3, sl, 4), -1);
    CHECK_INT_EQ(remote_parse_slots("not json", 8, sl, 4), -1);
}

static void test_error_messages(void)
{
    char buf[128];
    const char *openai = "{\"error\":{\"message\":\"Invalid API Key\",\"type\":\"authentication_error\",\"code\":401}}";
    remote_error_message(openai, strlen(openai), buf, sizeof buf);
    CHECK(strcmp(buf, "Invalid API Key") == 0);
    const char *vllm = "{\"object\":\"error\",\"message\":\"The model `x` does not exist.\",\"type\":\"NotFoundError\",\"param\":null,\"code\":404}";
    remote_error_message(vllm, strlen(vllm), buf, sizeof buf);
    CHECK(strcmp(buf, "The model `x` does not exist.") == 0);
    const char *ollama = "{\"error\":\"model \\\"x\\\" not found, try pulling it first\"}";
    remote_error_message(ollama, strlen(ollama), buf, sizeof buf);
    CHECK(strcmp(buf, "model \"x\" not found, try pulling it first") == 0);
    const char *html = "\n  <html><head><title>502 Bad Gateway</title></head>\n<body>...</body></html>";
    remote_error_message(html, strlen(html), buf, sizeof buf);
    CHECK(strcmp(buf, "<html><head><title>502 Bad Gateway</title></head>") == 0);
    const char *ctl = "{\"error\":{\"message\":\"line one\\nline\\ttwo\"}}";
    remote_error_message(ctl, strlen(ctl), buf, sizeof buf);
    CHECK(strcmp(buf, "line one line two") == 0);
    /* cut at the buffer without splitting a character */
    const char *cjk = "{\"message\":\"\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad\"}";
    char small[8];
    remote_error_message(cjk, strlen(cjk), small, sizeof small);
    CHECK(strcmp(small, "\xe4\xb8\xad\xe4\xb8\xad") == 0);
    remote_error_message(NULL, 0, buf, sizeof buf);
    CHECK(buf[0] == '\0');
}

int main(void)
{
    test_vllm_stream();
    test_llama_stream_crlf();
    test_stream_error_and_cut();
    test_sse_edges();
    test_vllm_metrics();
    test_slots();
    test_error_messages();
    if (!test_failures) printf("remote parsers: all checks passed\n");
    TEST_EXIT();
}
