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

/* Where the forward pass runs. AUTO: a GPU when this build has CUDA and
 * one is usable (weights of a type it cannot compute with, or too little
 * device memory, fall back to the CPU); the CPU otherwise. */
enum anc_backend_kind { ANC_BACKEND_AUTO, ANC_BACKEND_CPU, ANC_BACKEND_CUDA };

struct anc_model_params {
    bool vocab_only;     /* load only the tokenizer (vocab-only GGUF files) */
    int n_threads;       /* <= 0: the physical cores; at most the CPUs available */
    enum anc_backend_kind backend;
};

/* "cpu", "cuda", "auto"; -1 for an unknown name. */
int anc_backend_kind_from_name(const char *name);
/* The backends this build has, e.g. "cpu (avx2), cuda". */
const char *anc_backends_compiled(void);
/* The backends that can run on this machine now, e.g. "cpu (avx2)" or
 * "cpu (avx2), cuda (1 device, /usr/lib/ancora/ancora-cuda.so)"; loads the
 * CUDA module to find out. A backend built but unusable here goes to
 * not_usable with why ("cuda: no NVIDIA driver ..."), else it gets "". */
const char *anc_backends_usable(char *not_usable, size_t n);

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
    uint64_t decode_bytes;   /* bytes read per decoded token (all but the
                                embedding table unless it is tied) */
    bool vocab_only;
    const char *backend;     /* "cpu" or "cuda" (NULL when vocab_only) */
    const char *device;      /* the GPU's name, or "" */
    const char *backend_note;/* why AUTO chose the CPU despite a GPU, or "" */
    double device_bandwidth_gbs; /* the GPU's memory bandwidth limit (0: CPU/unknown) */
    int n_threads;           /* CPU threads the backend runs (after its cap) */
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
/* The token's text as stored in the vocabulary ("<s>", "▁upon"), or NULL. */
const char *anc_token_text(const struct anc_model *m, int32_t id);
int32_t anc_token_bos(const struct anc_model *m);
int32_t anc_token_eos(const struct anc_model *m);
/* End of generation: EOS, EOT and the like. */
bool anc_token_is_eog(const struct anc_model *m, int32_t id);
int32_t anc_n_vocab(const struct anc_model *m);

/* ---- chat templates (core/chat_template.c) ---------------------------- */

/* ANC_TPL_FILE: the model file's own tokenizer.chat_template, run by the
 * Jinja interpreter (core/jinja.c) as transformers runs it; the others are
 * the built-in families. */
enum anc_template {
    ANC_TPL_AUTO = -1,
    ANC_TPL_PLAIN = 0, ANC_TPL_LLAMA2, ANC_TPL_LLAMA3, ANC_TPL_CHATML, ANC_TPL_ZEPHYR,
    ANC_TPL_MISTRAL, ANC_TPL_GEMMA, ANC_TPL_PHI3, ANC_TPL_FILE, ANC_TPL_COUNT_
};

struct anc_chat_msg {
    const char *role;     /* "system", "user", "assistant" */
    const char *content;  /* need not be NUL-terminated */
    size_t len;           /* bytes of content */
};

const char *anc_template_name(int tpl);
int anc_template_from_name(const char *name);        /* -1 if unknown */
/* ANC_TPL_FILE when the file's tokenizer.chat_template renders; else the
 * family its markers name (PLAIN if none, or no template). */
int anc_template_detect(const struct anc_model *m);
/* Render a conversation to token ids: the template's markers (control
 * tokens) as single vocabulary ids, contents as plain text (text that looks
 * like a marker stays text). add_assistant_prompt ends with the header of
 * the assistant's reply. *out is malloc'ed. With ANC_TPL_FILE, a template
 * that fails on this conversation (raise_exception, unsupported Jinja) is
 * replaced by the family its markers name: the call still succeeds, and err
 * then holds why (else err is ""). */
int anc_chat_render(const struct anc_model *m, int tpl, const struct anc_chat_msg *msgs, size_t n,
                    bool add_assistant_prompt, int32_t **out, size_t *n_out, char *err,
                    size_t errlen);
/* The same as text (markers written out); malloc'ed. NULL for ANC_TPL_FILE
 * (it needs the model: see anc_chat_render). */
char *anc_chat_render_text(int tpl, const struct anc_chat_msg *msgs, size_t n,
                           bool add_assistant_prompt);
/* Does `id` end an assistant turn in this template? */
bool anc_template_is_stop(const struct anc_model *m, int tpl, int32_t id);
/* The tokens a chat feeds for a new user turn: the rendering of msgs[0..n)
 * with the assistant prompt, less the longest prefix it shares with the
 * rendering of msgs[0..n_before) without it (the conversation before the
 * turn's user message; n_before 0: nothing fed yet, all of it). The chat
 * and `ancora history replay` both call it, so a replay feeds what the
 * chat fed. *out is malloc'ed; 0 or -1 with err. */
int anc_chat_turn_tokens(const struct anc_model *m, int tpl, const struct anc_chat_msg *msgs,
                         size_t n, size_t n_before, int32_t **out, size_t *n_out, char *err,
                         size_t errlen);
/* A fingerprint of the vocabulary, "v1:N_VOCAB:16 hex digits" (64-bit
 * FNV-1a over every token's text in id order): equal fingerprints mean the
 * same token ids for the same text. Written snprintf-style; returns BUF. */
char *anc_vocab_fingerprint(const struct anc_model *m, char *buf, size_t cap);

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
    ANC_CACHE_SINK = 0,    /* first n_sink tokens + the most recent, window in all */
    ANC_CACHE_WINDOW,      /* the most recent window tokens */
    ANC_CACHE_RECOMPUTE,   /* re-run the last window tokens from scratch each token */
    ANC_CACHE_FULL         /* everything up to ctx, then stop */
};
const char *anc_cache_policy_name(enum anc_cache_policy p);
int anc_cache_policy_from_name(const char *name); /* -1 if unknown */

enum anc_rope_scaling {
    ANC_ROPE_FROM_FILE = -1,
    ANC_ROPE_NONE = 0, ANC_ROPE_LINEAR, ANC_ROPE_DYNAMIC, ANC_ROPE_YARN, ANC_ROPE_LLAMA3
};
const char *anc_rope_scaling_name(int scaling);
int anc_rope_scaling_from_name(const char *name); /* -1 if unknown */

/* RoPE settings; zero / FROM_FILE fields take the file's value. */
struct anc_rope_settings {
    double theta;            /* base frequency (ABF); 0 = file */
    int scaling;             /* enum anc_rope_scaling */
    double factor;           /* s; 0 = file (1 if none) */
    int32_t orig_ctx;        /* L0, training context; 0 = file */
    double yarn_beta_fast;   /* 0 = 32 */
    double yarn_beta_slow;   /* 0 = 1 */
    double yarn_attn_factor; /* 0 = file (1 if none) */
};

/* ---- LoRA adapters (llama.cpp's LoRA GGUF layout, TECHNIQUES.md §4) ---- */
struct anc_lora;
/* Load an adapter for model m: checked against m's architecture and every
 * adapted weight's shape (a mismatch names the tensor). The adapter must
 * outlive the sessions that use it and be freed before the model. */
struct anc_lora *anc_lora_load(struct anc_model *m, const char *path, char *err, size_t errlen);
void anc_lora_free(struct anc_lora *lo);
struct anc_lora_info {
    const char *path;
    float alpha;           /* adapter.lora.alpha (0: none given) */
    int32_t max_rank;
    int32_t n_matrices;    /* adapted weights (A/B pairs) */
    int32_t n_plus;        /* LoRA+ tensors: a trained embedding and norms */
    bool has_rope;         /* the RoPE it was trained for is in the file: */
    struct anc_rope_settings rope; /* scaling, factor, theta, orig_ctx */
    int32_t trained_ctx;   /* the window it was trained at (0: unknown) */
};
void anc_lora_get_info(const struct anc_lora *lo, struct anc_lora_info *out);
/* The RoPE an adapter was trained for, into *r — unless it recorded none
 * or (!force) r already holds settings of the user's (anything but the
 * file's defaults). true when r changed to a scaling other than none. */
bool anc_lora_apply_rope(const struct anc_lora *lo, struct anc_rope_settings *r, bool force);
/* Write the adapter's base model with the adapter folded in, at strength
 * scale: each adapted weight becomes W + scale·(alpha/r)·B·A, stored as
 * F16; every other key and tensor is copied as it is. A plain model file
 * any GGUF runtime loads. 0, or -1 with a message (nothing left at
 * out_path then: the writer renames a finished temporary file). */
int anc_lora_merge(const struct anc_lora *lo, float scale, const char *out_path, char *err,
                   size_t errlen);

/* ---- training (core/train.c): LoRA, LoRA+ and full fine-tuning -------- */
/* What `ancora train` trains, and how (TECHNIQUES.md §4). */
enum { ANC_TRAIN_Q = 1u << 0, ANC_TRAIN_K = 1u << 1, ANC_TRAIN_V = 1u << 2, ANC_TRAIN_O = 1u << 3,
       ANC_TRAIN_GATE = 1u << 4, ANC_TRAIN_UP = 1u << 5, ANC_TRAIN_DOWN = 1u << 6 };
struct anc_train_params {
    int32_t ctx;             /* tokens per window: positions 0..ctx-1 */
    struct anc_rope_settings rope; /* the RoPE trained for (stored in the adapter) */
    int32_t lora_rank;       /* r (LongLoRA: 8) */
    float lora_alpha;        /* alpha (LongLoRA: 16); the update is (alpha/r)·B·A */
    uint32_t lora_targets;   /* ANC_TRAIN_* bits (LongLoRA: q, k, v, o) */
    bool lora_plus;          /* also train the token embedding and every norm */
    bool full;               /* train every weight instead of an adapter */
    int32_t s2_group;        /* S²-Attn group size (0: full attention) */
    bool checkpoint_layers;  /* keep only each layer's input, recompute in the backward */
    int32_t batch;           /* windows per step */
    float lr, weight_decay, clip; /* AdamW; clip: gradient norm limit (0: none) */
    int32_t warmup;          /* steps of linear warm-up */
    uint64_t seed;           /* A's initial values and the windows drawn */
};
void anc_train_params_default(struct anc_train_params *p);

struct anc_trainer;
/* A trainer for model m (llama-family forward only for now; f32 copies of
 * what trains; frozen weights stay as the file has them). NULL + message
 * when the family, the backend or the memory cannot do it (the message
 * says how much it needs). */
struct anc_trainer *anc_trainer_new(struct anc_model *m, const struct anc_train_params *p,
                                    char *err, size_t errlen);
void anc_trainer_free(struct anc_trainer *t);

struct anc_train_info {
    int64_t step;            /* optimiser steps taken */
    uint64_t n_trainable;    /* parameters that train */
    uint64_t act_bytes;      /* activations the backward keeps (with checkpointing:
                                each layer's input + one layer's worth), bytes */
    uint64_t scratch_bytes;  /* one layer's gradients and a chunk of logits, bytes */
    uint64_t grad_bytes;     /* gradient and optimiser-state memory, bytes */
};
void anc_trainer_get_info(const struct anc_trainer *t, struct anc_train_info *out);

struct anc_train_step {
    double loss;             /* mean over the step's predicted tokens */
    double grad_norm;        /* before clipping */
    float lr;                /* the rate this step used */
    int64_t step;            /* steps done, this one included */
};
/* One optimiser step: `batch` windows of ctx+1 tokens drawn (seeded) from
 * tokens[0..n), forward and backward each, the gradient clipped, AdamW.
 * A non-finite loss or gradient changes nothing and returns -1. */
int anc_trainer_step(struct anc_trainer *t, const int32_t *tokens, size_t n,
                     struct anc_train_step *out, char *err, size_t errlen);
/* Loss and gradients of one window of ctx+1 tokens, nothing updated; then
 * anc_trainer_save(..., ANC_TRAIN_SAVE_GRADS) writes them (tests). */
int anc_trainer_gradients(struct anc_trainer *t, const int32_t *window, double *loss, char *err,
                          size_t errlen);
enum anc_train_save {
    ANC_TRAIN_SAVE_ADAPTER,  /* llama.cpp's LoRA GGUF layout, + LoRA+ extras; --full: a model file */
    ANC_TRAIN_SAVE_CHECKPOINT, /* the adapter, AdamW moments, RNG state, step */
    ANC_TRAIN_SAVE_GRADS     /* the last gradients, named as the parameters */
};
/* Written through a temporary file renamed into place: a crash leaves the
 * previous file. 0, or -1 with a message. */
int anc_trainer_save(struct anc_trainer *t, enum anc_train_save what, const char *path, char *err,
                     size_t errlen);
/* Start from an adapter's matrices instead of fresh ones (same rank,
 * targets and alpha; f32 or f16); LoRA+ tensors it lacks start from the
 * base's values. */
int anc_trainer_init_from(struct anc_trainer *t, const char *path, char *err, size_t errlen);
/* Continue from a checkpoint written with the same settings (checked). */
int anc_trainer_resume(struct anc_trainer *t, const char *path, char *err, size_t errlen);

struct anc_session_params {
    enum anc_cache_policy cache;
    int32_t ctx;           /* full policy: maximum tokens; <= 0: the model's */
    int32_t window;        /* window_length: entries a token attends to, sinks
                              and itself included; <= 0: 512 (or ctx if smaller) */
    int32_t n_sink;        /* num_sink_tokens (sink policy) */
    uint32_t kv_type;      /* ANC_DT_F16 (default) or ANC_DT_F32 */
    struct anc_rope_settings rope;
    struct anc_sampling sampling;
    const struct anc_lora *lora; /* borrowed adapter, or NULL */
    float lora_scale;      /* the adapter's strength (default 1) */
};
void anc_session_params_default(struct anc_session_params *p);

struct anc_session *anc_session_new(struct anc_model *m, const struct anc_session_params *p,
                                    char *err, size_t errlen);
void anc_session_free(struct anc_session *s);

/* Run the model over n tokens, appending them to the session under its
 * cache policy. Afterwards anc_session_logits() holds the next-token logits
 * after the last one. Returns 0, or -1 with a message (e.g. the full cache
 * is exhausted; nothing of the call was fed then). */
int anc_session_feed(struct anc_session *s, const int32_t *tokens, size_t n, char *err,
                     size_t errlen);
/* Like feed, and also writes the logits after every token:
 * logits_all is [n][n_vocab]. */
int anc_session_feed_all(struct anc_session *s, const int32_t *tokens, size_t n,
                         float *logits_all, char *err, size_t errlen);
/* Logits [n_vocab] after the last fed token (NULL before any). */
const float *anc_session_logits(const struct anc_session *s);
/* Draw the next token from the current logits with the session's sampling
 * settings (repetition penalty looks at the tokens fed so far). */
int32_t anc_session_sample(struct anc_session *s);
/* Tokens fed since the session started (or was reset). */
int64_t anc_session_n_seen(const struct anc_session *s);
/* Forget everything (cache and counters); settings stay. */
void anc_session_reset(struct anc_session *s);

/* Live changes. Safe to call from another thread while the engine runs:
 * they are checked at once (false + message if invalid) and take effect
 * before the next token. Shrinking the window evicts at once; growing
 * only raises the capacity; RoPE changes apply to the whole cache (keys
 * are stored un-rotated), nothing is re-prefilled. */
bool anc_session_set_window(struct anc_session *s, int32_t window, char *err, size_t errlen);
bool anc_session_set_sinks(struct anc_session *s, int32_t n_sink, char *err, size_t errlen);
bool anc_session_set_policy(struct anc_session *s, enum anc_cache_policy p, char *err,
                            size_t errlen);
bool anc_session_set_rope(struct anc_session *s, const struct anc_rope_settings *r, char *err,
                          size_t errlen);
bool anc_session_set_sampling(struct anc_session *s, const struct anc_sampling *smp, char *err,
                              size_t errlen);
/* The parameters in force (pending changes included). */
void anc_session_get_params(const struct anc_session *s, struct anc_session_params *out);

/* ---- statistics snapshot ---------------------------------------------- */

#define ANC_STATS_MAX_SINKS 64
#define ANC_STATS_MAX_LAYERS 256
#define ANC_STATS_LATENCY 128

struct anc_stats {
    enum anc_cache_policy policy;
    int64_t n_seen;          /* tokens fed */
    int64_t n_evicted;       /* entries evicted so far */
    int32_t n_cached;        /* entries in the cache now */
    int32_t capacity;        /* entries a token may attend to (window or ctx) */
    int32_t window, n_sink;
    int32_t n_sink_now;      /* sinks actually held (< n_sink early on) */
    int32_t sink_ids[ANC_STATS_MAX_SINKS];
    int32_t n_layer;
    float sink_mass[ANC_STATS_MAX_LAYERS]; /* per layer, mean over heads: share of
                                              the last token's attention on sinks */
    /* the model's own sliding-window layers (Gemma 2/3), which keep their
       last local_window entries whatever the policy; the fields above
       (policy, window, sinks, cached) are the global layers' */
    bool layer_local[ANC_STATS_MAX_LAYERS];
    int32_t n_layer_local;   /* 0 for models without them */
    int32_t local_window;
    int32_t n_cached_local;  /* entries each local layer holds now */
    double local_rope_theta;
    /* RoPE in force */
    int rope_scaling;
    double rope_theta, rope_factor, rope_base_effective, rope_mscale;
    int32_t rope_orig_ctx, rope_dims;
    double yarn_beta_fast, yarn_beta_slow;
    int rope_long;           /* LongRoPE divisors in use: 0 none, 1 short, 2 long */
    int32_t lora_rank;       /* the adapter's largest rank; 0: no adapter */
    int32_t lora_matrices;   /* weights it adapts */
    float lora_scale;
    int32_t lora_trained_ctx; /* the window it was trained at (0: not recorded) */
    int lora_rope_scaling;   /* the RoPE it was trained for (enum anc_rope_scaling) */
    float lora_rope_factor;
    /* memory, bytes */
    uint64_t bytes_weights, bytes_kv, bytes_scratch, bytes_rss;
    uint64_t bytes_kv_local;  /* the part of bytes_kv the local layers hold */
    uint64_t bytes_kv_used;   /* of bytes_kv, the rows the cached entries use (all layers) */
    uint64_t bytes_kv_local_used; /* of bytes_kv_local, the rows in use */
    /* the backend ("cpu" / "cuda") and, on a GPU, its memory */
    char backend[8];
    char device[64];
    uint64_t bytes_device_total, bytes_device_free, bytes_device_used_by_us;
    /* speed */
    double prefill_tok_s, decode_tok_s; /* latest measurements */
    float latency_ms[ANC_STATS_LATENCY]; /* per-token decode latency, oldest first */
    int32_t n_latency;
    /* a remote engine (anc_conv_open_remote): what its server publishes,
       as last polled. Local sessions leave remote false; for a remote one
       the fields above are zero except n_cached/capacity (the slot's tokens
       and context when the server says), prefill/decode speeds and the
       sampling-independent counts it reports. */
    bool remote;
    char engine[24];         /* "llama-server", "vllm", "ollama", "server" */
    char server[128];        /* the base URL (never the API key) */
    char model[128];         /* the server's model id in use */
    char poll_note[160];     /* why figures are missing ("" when polled fine) */
    double poll_age;         /* whole seconds since the last poll answered; -1: none */
    bool have_slot;          /* llama-server /slots answered */
    int32_t n_slots, slot_id, slot_ctx, n_keep;
    int64_t slot_tokens;     /* tokens the slot holds: prompt + generated */
    bool slot_busy;
    bool have_kv_usage;      /* vLLM kv_cache_usage_perc (or gpu_cache_usage_perc) */
    double kv_usage;         /* 0..1 of the server's whole KV cache */
    bool have_requests;      /* running / waiting (deferred) request gauges */
    double req_running, req_waiting;
    int64_t server_ctx;      /* context the server serves the model with (0: unknown) */
    int64_t server_prompt_total, server_gen_total; /* tokens, all clients, -1 unknown */
    int64_t server_kv_tokens;   /* vLLM: the KV cache's size in tokens (0: unknown) */
    uint64_t server_model_bytes;/* the model's size as the server reports it (0: unknown) */
    uint64_t server_vram_bytes; /* ollama: of it, in GPU memory (0: unknown) */
};

/* Copy a consistent snapshot (cheap; safe from another thread). When
 * orig != NULL, also the text index of every cached entry, in cache order,
 * up to cap entries; returns the number written. */
int32_t anc_session_stats(const struct anc_session *s, struct anc_stats *out, int64_t *orig,
                          int32_t cap);

/* ---- conversations (core/conversation.c, core/remote.c) --------------- */
/* A conversation engine: messages in, reply text out. The local one owns a
 * model, a session and a chat template and feeds each turn's tokens; the
 * remote one sends the conversation to an OpenAI-compatible server
 * (llama-server, vLLM, ollama) and streams its reply. Front-ends drive
 * either through these calls alone and tell them apart only through
 * anc_conv_get_info and the stats snapshot (stats.remote).
 * Threads: anc_conv_reply runs on the caller's (engine) thread; cancel,
 * stats, get_params and the setters are safe from another thread. */
struct anc_conv;

struct anc_conv_local_params {
    const char *model_path;
    const char *lora_path;   /* an adapter for the whole conversation, or NULL
                                (its strength: sess.lora_scale) */
    int n_threads;
    enum anc_backend_kind backend;
    struct anc_session_params sess;
    int template_id;         /* ANC_TPL_AUTO: from the model */
};

struct anc_remote_params {
    const char *url;         /* http(s)://host[:port][/prefix]; a trailing /v1 is taken off */
    const char *api_key;     /* sent as "Authorization: Bearer"; NULL: none.
                                Never written anywhere: not in errors, stats or info */
    const char *model;       /* the server's model id; NULL: its first */
    double connect_timeout;  /* seconds; <= 0: 10 */
    double timeout;          /* seconds without a byte from the server; <= 0: 120 */
    struct anc_sampling sampling;
};

struct anc_conv *anc_conv_open_local(const struct anc_conv_local_params *p, char *err,
                                     size_t errlen);
/* Checks the server at once (GET /v1/models): a refused connection, an
 * unknown host, TLS, a rejected key (401/403) or a missing model fail here
 * with one line. */
struct anc_conv *anc_conv_open_remote(const struct anc_remote_params *p, char *err,
                                      size_t errlen);
void anc_conv_free(struct anc_conv *c);

struct anc_conv_info {
    bool remote;
    const char *model_name;  /* general.name, or the server's model id */
    const char *model_path;  /* the file; remote: the server's base URL */
    const char *engine;      /* "local", "llama-server", "vllm", "ollama", "server" */
    const char *template_name; /* the chat template; remote: "server" (the server's own) */
    const char *adapter;     /* "NAME" or "NAME xS" of the LoRA adapter, or NULL */
    const char *vocab;       /* anc_vocab_fingerprint ("" remote) */
    struct anc_model_info model; /* local; remote: zeros but name and path */
};
/* Pointers stay valid while the conversation lives. */
void anc_conv_get_info(const struct anc_conv *c, struct anc_conv_info *out);

enum anc_finish { ANC_FINISH_STOP, ANC_FINISH_LENGTH, ANC_FINISH_CANCELLED, ANC_FINISH_ERROR };

/* What a reply reports as it goes (either callback may be NULL). */
struct anc_reply_events {
    /* the turn's prompt is being read: its tokens are [tok_first,
       tok_first + n_tok) of the conversation's token stream (local;
       remote: -1 and the server's prompt count once known, or -1) */
    void (*on_prompt)(void *ctx, int64_t tok_first, int64_t n_tok);
    /* the reply starts at tok_first (-1 remote) */
    void (*on_start)(void *ctx, int64_t tok_first);
    /* a piece of reply text (a reply's leading blanks dropped), as soon
       as it is known */
    void (*on_piece)(void *ctx, const char *text, size_t len);
    /* the reply's tokens now in the conversation (local: after each token
       is fed, the end-of-turn token included) */
    void (*on_fed)(void *ctx, int64_t n_tok);
    void *ctx;
};

struct anc_reply {
    enum anc_finish finish;
    int64_t n_prompt;        /* prompt tokens processed (-1 unknown) */
    int64_t n_gen;           /* tokens generated, the end-of-turn token not counted */
    double prompt_ms, gen_ms;/* < 0 unknown */
    double sink_share;       /* mean share of attention on sinks; -1 none */
    int32_t *ids;            /* the reply's tokens as fed, end of turn included
                                (malloc'ed, the caller frees; NULL remote) */
    size_t n_ids;
    char err[ANC_ERR_LEN];   /* ERROR: why (one line); LENGTH: a full cache's
                                message, if that was the cause; else "" */
};

/* Answer the conversation msgs[0..n) (its last user message is the new
 * turn; what precedes it is what earlier calls saw, plus system messages
 * added since). Blocks until the reply ends: end of turn, max_tokens
 * (<= 0: no limit), cancel, or an error; out says which. Returns 0, or -1
 * when nothing could be started (out->err says why). */
int anc_conv_reply(struct anc_conv *c, const struct anc_chat_msg *msgs, size_t n,
                   int32_t max_tokens, const struct anc_reply_events *ev, struct anc_reply *out);
/* Stop the reply in progress at the next token (remote: closes the stream). */
void anc_conv_cancel(struct anc_conv *c);
/* Forget the conversation (a new one starts); settings stay. */
void anc_conv_reset(struct anc_conv *c);
/* Start over with a stored conversation: the local engine feeds its text
 * under the current policy and gives each message's token range (first[i],
 * count[i]); the remote one has nothing to do (every request carries the
 * conversation) and gives -1 / 0. */
int anc_conv_replay(struct anc_conv *c, const struct anc_chat_msg *msgs, size_t n,
                    int64_t *first, int64_t *count, size_t *n_tokens, char *err, size_t errlen);

/* Statistics (see anc_session_stats; remote: stats.remote and its fields). */
int32_t anc_conv_stats(const struct anc_conv *c, struct anc_stats *out, int64_t *orig,
                       int32_t cap);
/* The settings in force (remote: sampling, the slot's context as ctx and
 * window, n_keep as sinks). */
void anc_conv_get_params(const struct anc_conv *c, struct anc_session_params *out);
/* Live changes, as anc_session_set_*: false + a one-line reason when the
 * engine cannot take the setting (remote: the cache policy, the window and
 * RoPE; sinks except on llama-server). On success msg is "" or a note on
 * how the engine applies it. */
bool anc_conv_set_window(struct anc_conv *c, int32_t window, char *msg, size_t msglen);
bool anc_conv_set_sinks(struct anc_conv *c, int32_t n_sink, char *msg, size_t msglen);
bool anc_conv_set_policy(struct anc_conv *c, enum anc_cache_policy p, char *msg, size_t msglen);
bool anc_conv_set_rope(struct anc_conv *c, const struct anc_rope_settings *r, char *msg,
                       size_t msglen);
bool anc_conv_set_sampling(struct anc_conv *c, const struct anc_sampling *s, char *msg,
                           size_t msglen);
/* Put a LoRA adapter on (path, at strength scale) or take it off (path
 * NULL) mid-conversation. Every cached key and value was computed under
 * the old weights, so the conversation so far is read again under the new
 * ones (a cost like a prompt of its length); an adapter trained for other
 * RoPE settings brings them. On failure nothing changes. msg: what was
 * done, or why not. Remote engines refuse. */
bool anc_conv_set_lora(struct anc_conv *c, const char *path, float scale, char *msg, size_t msglen);
/* A token's text as it reads mid-text (control tokens by their name);
 * 0 remote. */
size_t anc_conv_token_text(const struct anc_conv *c, int32_t id, char *buf, size_t cap);
/* The models the engine can answer with: the local file's name, or the
 * server's GET /v1/models. *names is malloc'ed (free each, then it). */
int anc_conv_models(struct anc_conv *c, char ***names, size_t *n, char *err, size_t errlen);

/* ---- perplexity ------------------------------------------------------- */

struct anc_ppl_result {
    double ppl;
    double ppl_stderr;       /* chunked only */
    double mean_nll;
    int64_t n_scored;
    int32_t n_chunks;        /* chunked only */
};

/* Progress callback: done / total units; return false to cancel. */
typedef bool (*anc_progress_fn)(void *ctx, int64_t done, int64_t total);

/* llama.cpp's llama-perplexity convention (TECHNIQUES.md §3): chunks of
 * n_ctx tokens with BOS written over the first, second half scored. */
int anc_perplexity_chunked(struct anc_model *m, const struct anc_session_params *p,
                           const int32_t *tokens, size_t n, int32_t n_ctx,
                           struct anc_ppl_result *out, anc_progress_fn progress,
                           void *progress_ctx, char *err, size_t errlen);
/* The streaming convention: token by token through the session's policy,
 * every token after the first scored; nll_out[i] (optional, n-1 entries)
 * is the NLL of token i+1. */
int anc_perplexity_stream(struct anc_model *m, const struct anc_session_params *p,
                          const int32_t *tokens, size_t n, double *nll_out,
                          struct anc_ppl_result *out, anc_progress_fn progress,
                          void *progress_ctx, char *err, size_t errlen);

/* ---- tools ----------------------------------------------------------- */

/* Print a GGUF file's header, metadata and tensor table, readable. */
int anc_gguf_print_info(FILE *out, const char *path, char *err, size_t errlen);

/* Write a GGUF file of a named model shape with seeded random weights of
 * a file type (f16, q4_0, q4_k_m, ...) and the vocabulary of vocab_path. */
int anc_gguf_random(const char *shape, const char *type, const char *vocab_path, uint64_t seed,
                    const char *out_path, anc_progress_fn progress, void *progress_ctx,
                    char *err, size_t errlen);
const char *anc_gguf_random_shapes(void);
const char *anc_gguf_random_types(void);

/* Memory read bandwidth in GB/s (best of reps) of n threads streaming
 * through `bytes` (make it much larger than the last-level cache). */
double anc_measure_read_bandwidth(int n_threads, size_t bytes, int reps);
/* The SIMD level the CPU kernels use ("avx2", "generic"). */
const char *anc_cpu_isa(void);
/* Online processors. */
int anc_cpu_count_public(void);

/* Read a whole file ("-" = stdin) into a malloc'ed NUL-terminated buffer. */
char *anc_read_file(const char *path, size_t *len, char *err, size_t errlen);
/* Monotonic clock, seconds. */
double anc_now(void);

const char *anc_version(void);

#endif
