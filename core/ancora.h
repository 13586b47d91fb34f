/* ancora.h — the engine's public API: the only header front-ends (tui/)
 * include from core/. No curses, readline or sqlite here; no tensors leak
 * out (front-ends see token ids, text, logits and statistics).
 *
 * Errors: functions that can fail take `char *err, size_t errlen` and write
 * one sentence there (no "ancora:" prefix; the front-end adds it). */
#ifndef ANCORA_H
#define ANCORA_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

#define ANC_ERR_LEN 512

struct anc_model;
struct anc_session;

/* ---- models ---------------------------------------------------------- */

struct anc_model_params {
    bool vocab_only;     /* load only the tokenizer (vocab-only GGUF files) */
    int n_threads;       /* <= 0: number of cores */
};

void anc_model_params_default(struct anc_model_params *p);

struct anc_model *anc_model_load(const char *path, const struct anc_model_params *p,
                                 char *err, size_t errlen);
void anc_model_free(struct anc_model *m);

struct anc_model_info {
    const char *path;
    const char *arch;        /* "llama" */
    const char *name;        /* general.name, or the file's base name */
    int32_t n_vocab;
    int32_t n_ctx_train;     /* context length the file claims */
    int32_t dim, n_layer, n_head, n_kv_head, head_dim, n_ff, rope_dims;
    float rope_theta;
    float norm_eps;
    uint32_t weight_type;    /* most common matrix type (enum anc_dtype id) */
    const char *weight_type_name;
    uint64_t n_params;
    uint64_t weight_bytes;   /* bytes of tensor data */
    bool vocab_only;
};
void anc_model_get_info(const struct anc_model *m, struct anc_model_info *out);

/* ---- tokens ---------------------------------------------------------- */

/* Encode len bytes (taken byte-exact). *out is malloc'ed; 0 or -1. */
int anc_tokenize(const struct anc_model *m, const char *text, size_t len, bool add_bos,
                 int32_t **out, size_t *n_out);
/* Decode to a malloc'ed NUL-terminated string. */
char *anc_detokenize(const struct anc_model *m, const int32_t *ids, size_t n);
/* Bytes of token id after prev (-1 at the start), snprintf-style. */
size_t anc_token_piece(const struct anc_model *m, int32_t prev, int32_t id, char *buf,
                       size_t cap);
int32_t anc_token_bos(const struct anc_model *m);
int32_t anc_token_eos(const struct anc_model *m);
/* End of generation: EOS, EOT and the like. */
bool anc_token_is_eog(const struct anc_model *m, int32_t id);
int32_t anc_n_vocab(const struct anc_model *m);

/* ---- sampling -------------------------------------------------------- */

struct anc_sampling {
    float temp;           /* 0 = greedy (argmax) */
    int32_t top_k;        /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off */
    float repeat_penalty; /* 1: off */
    int32_t repeat_last_n;/* tokens the penalty looks back over */
    uint64_t seed;
};
void anc_sampling_default(struct anc_sampling *s);
/* Check ranges; false + message for absurd values. */
bool anc_sampling_validate(const struct anc_sampling *s, char *err, size_t errlen);

/* ---- sessions -------------------------------------------------------- */

enum anc_cache_policy {
    ANC_CACHE_SINK = 0,
    ANC_CACHE_WINDOW,
    ANC_CACHE_RECOMPUTE,
    ANC_CACHE_FULL
};
const char *anc_cache_policy_name(enum anc_cache_policy p);
int anc_cache_policy_from_name(const char *name); /* -1 if unknown */

struct anc_session_params {
    enum anc_cache_policy cache;
    int32_t ctx;           /* full policy: maximum tokens; <= 0: the model's */
    int32_t window;        /* window_length (sink/window/recompute); <= 0: ctx */
    int32_t n_sink;        /* num_sink_tokens */
    uint32_t kv_type;      /* ANC_DT_F16 (default) or ANC_DT_F32 */
    float rope_theta;      /* <= 0: from the file */
    struct anc_sampling sampling;
};
void anc_session_params_default(struct anc_session_params *p);

struct anc_session *anc_session_new(struct anc_model *m, const struct anc_session_params *p,
                                    char *err, size_t errlen);
void anc_session_free(struct anc_session *s);

/* Run the model over n tokens, appending them to the session. Afterwards
 * anc_session_logits() holds the next-token logits after the last one.
 * Returns 0, or -1 with a message (e.g. the full cache is exhausted). */
int anc_session_feed(struct anc_session *s, const int32_t *tokens, size_t n, char *err,
                     size_t errlen);
/* Logits [n_vocab] after the last fed token (NULL before any). */
const float *anc_session_logits(const struct anc_session *s);
/* Draw the next token from the current logits with the session's sampling
 * settings (repetition penalty looks at the tokens fed so far). */
int32_t anc_session_sample(struct anc_session *s);
/* Tokens fed since the session started. */
int64_t anc_session_n_seen(const struct anc_session *s);

/* Change sampling settings (between tokens). */
void anc_session_set_sampling(struct anc_session *s, const struct anc_sampling *smp);

/* ---- tools ----------------------------------------------------------- */

/* Print a GGUF file's header, metadata and tensor table, readable. */
int anc_gguf_print_info(FILE *out, const char *path, char *err, size_t errlen);

/* Read a whole file ("-" = stdin) into a malloc'ed NUL-terminated buffer. */
char *anc_read_file(const char *path, size_t *len, char *err, size_t errlen);
/* Monotonic clock, seconds. */
double anc_now(void);

/* Compiled-in backends, e.g. "cpu". */
const char *anc_backends_compiled(void);
const char *anc_version(void);

#endif
