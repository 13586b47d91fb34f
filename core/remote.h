/* remote.h — the parsers of the remote engine (remote.c), shared with its
 * unit test: server-sent events, OpenAI-style chat-completion chunks,
 * Prometheus text (vLLM's and llama-server's /metrics), llama-server's
 * /slots and an error body's message. Engine-internal (front-ends use
 * ancora.h); no network here, so the test feeds fixtures through the
 * same code the engine runs. */
#ifndef ANC_REMOTE_H
#define ANC_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- server-sent events (the WHATWG "text/event-stream" format) ---- */

/* Longest event the parser keeps; a longer one is an error. */
#define REMOTE_SSE_MAX (4u << 20)

struct remote_sse {
    char *line;              /* the line being read (without its end) */
    size_t line_len, line_cap;
    char *data;              /* the event's data lines, joined by '\n' */
    size_t data_len, data_cap;
    bool have_data;          /* a data field was seen in this event */
    bool skip_lf;            /* the last byte was a CR: a following LF ends nothing */
};

/* Called for each complete event with its data (NUL-terminated); return
 * false to stop parsing. */
typedef bool (*remote_sse_fn)(void *ctx, const char *data, size_t len);

/* Feed bytes as they arrive (any split). Lines end with LF, CR or CR LF; a
 * blank line dispatches the event; "data:" fields are joined (one space
 * after the colon dropped); comments (":...") and other fields are
 * ignored. Returns 0, 1 when fn asked to stop, -1 when an event exceeds
 * REMOTE_SSE_MAX or memory runs out. */
int remote_sse_feed(struct remote_sse *s, const char *p, size_t n, remote_sse_fn fn, void *ctx);
void remote_sse_free(struct remote_sse *s);

/* ---- one chunk of a streamed chat completion ---- */

struct remote_chunk {
    char *content;           /* choices[0].delta.content (malloc'ed) or NULL */
    size_t content_len;
    char finish[24];         /* choices[0].finish_reason, "" while streaming */
    bool done;               /* the "[DONE]" sentinel */
    char error[256];         /* an error the server streams instead ("" none) */
    bool have_usage;         /* usage: prompt_tokens, completion_tokens */
    int64_t prompt_tokens, completion_tokens;
    bool have_timings;       /* llama-server's timings */
    int64_t prompt_n, predicted_n;
    double prompt_ms, predicted_ms, prompt_per_second, predicted_per_second;
};
/* 0, or -1 when data is not a JSON object (out->error says so). */
int remote_parse_chunk(const char *data, size_t len, struct remote_chunk *out);
void remote_chunk_clear(struct remote_chunk *c);

/* ---- Prometheus text exposition (GET /metrics) ---- */

struct remote_metrics {
    bool vllm, llamacpp;     /* which names were seen */
    bool have_kv_usage;
    double kv_usage;         /* 0..1: vllm:kv_cache_usage_perc (gpu_cache_usage_perc
                                before vLLM V1), llamacpp:kv_cache_usage_ratio */
    bool have_requests;
    double running, waiting; /* vllm:num_requests_running/_waiting,
                                llamacpp:requests_processing/_deferred */
    double prompt_total, gen_total; /* tokens; -1 unknown */
    double prompt_tok_s, gen_tok_s; /* llamacpp's averages; -1 unknown */
    int64_t kv_tokens;       /* vllm:cache_config_info num_gpu_blocks x block_size; 0 unknown */
};
/* Samples with a model_name label count only when it equals model (when
 * model is NULL or no sample names it, all count; gauges of one name are
 * added up). Malformed lines are skipped. */
void remote_parse_metrics(const char *text, size_t len, const char *model,
                          struct remote_metrics *out);

/* ---- llama-server's GET /slots ---- */

struct remote_slot {
    int32_t id, n_ctx;
    bool processing;
    int64_t n_prompt, n_decoded;   /* tokens: the prompt (cached or not), generated */
    int32_t n_keep;                /* params.n_keep, -1 unknown */
};
/* Fills up to cap slots; returns how many the array held, or -1 when the
 * text is not a JSON array of objects. */
int remote_parse_slots(const char *text, size_t len, struct remote_slot *out, int cap);

/* The server's own words from an error body: error.message, error (a
 * string), message or detail; else the body's first line. Written as one
 * printable line, at most cap-1 bytes. */
void remote_error_message(const char *body, size_t len, char *buf, size_t cap);

#endif
