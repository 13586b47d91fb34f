/* conversation.c — the conversation engines' public calls (ancora.h's
 * anc_conv_*), dispatched through each kind's class table, and the local
 * kind: a model, its session and a chat template; each turn's tokens are
 * fed, the reply sampled token by token until the template's end of turn.
 * (The remote kind is remote.c.) No curses, readline or sqlite here.
 *
 * Threads: reply and replay run on the caller's thread; the cancel flag
 * is atomic, and the session's own setters and stats are thread-safe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conversation.h"

/* Tokens per feed call while reading a prompt, so cancel is prompt. */
#define CONV_PREFILL_CHUNK 64

struct conv_local {
    struct anc_conv base;
    struct anc_model *m;
    struct anc_model_info mi;
    struct anc_lora *lora;     /* p.lora_path's adapter, or NULL */
    char lora_desc[160];       /* "NAME" or "NAME xS", what the history records */
    struct anc_session *s;
    int tpl;
    char vocab[64];            /* anc_vocab_fingerprint */
    int32_t *fed;              /* every token fed to the session, in order */
    size_t n_fed, cap_fed;
};

static bool fed_push(struct conv_local *c, const int32_t *t, size_t n)
{
    if (c->n_fed + n > c->cap_fed) {
        size_t cap = c->cap_fed ? c->cap_fed : 1024;
        while (cap < c->n_fed + n) cap *= 2;
        int32_t *nf = realloc(c->fed, cap * sizeof *nf);
        if (!nf) return false;
        c->fed = nf;
        c->cap_fed = cap;
    }
    memcpy(c->fed + c->n_fed, t, n * sizeof *t);
    c->n_fed += n;
    return true;
}

/* Feed n tokens in chunks, checking cancel between them. */
static bool feed_tokens(struct conv_local *c, const int32_t *t, size_t n, char *err, size_t errlen)
{
    for (size_t done = 0; done < n;) {
        if (atomic_load(&c->base.cancel)) return false;
        size_t b = n - done < CONV_PREFILL_CHUNK ? n - done : CONV_PREFILL_CHUNK;
        if (anc_session_feed(c->s, t + done, b, err, errlen) != 0) return false;
        if (!fed_push(c, t + done, b)) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        done += b;
    }
    return true;
}

/* Mean share of attention on the sink tokens, over the global layers,
 * for the token just fed; -1 when the cache holds no sinks. */
static double sink_share_now(const struct anc_session *s)
{
    struct anc_stats st;
    anc_session_stats(s, &st, NULL, 0);
    if (st.n_sink_now <= 0) return -1;
    double sum = 0;
    int n = 0;
    for (int32_t l = 0; l < st.n_layer; l++)
        if (!st.layer_local[l]) sum += st.sink_mass[l], n++;
    return n ? sum / n : -1;
}

static int local_reply(struct anc_conv *cv, const struct anc_chat_msg *msgs, size_t n,
                       int32_t max_tokens, const struct anc_reply_events *ev,
                       struct anc_reply *out)
{
    struct conv_local *c = (struct conv_local *)cv;
    char err[ANC_ERR_LEN] = "";
    /* Tokens to feed for the newest user turn: the rendering of the whole
       conversation with the assistant prompt, less the rendering of what
       came before its user message (both rendered the same way, so earlier
       replies' tokenisation does not matter). Nothing fed yet: all of it. */
    size_t last_user = n;
    while (last_user > 0 && strcmp(msgs[last_user - 1].role, "user") != 0) last_user--;
    size_t n_before = last_user ? last_user - 1 : 0;
    int32_t *turn = NULL;
    size_t n_turn = 0;
    double t0 = anc_now();
    if (anc_chat_turn_tokens(c->m, c->tpl, msgs, n, c->n_fed == 0 ? 0 : n_before, &turn, &n_turn,
                             err, sizeof err) != 0) {
        out->finish = ANC_FINISH_ERROR;
        snprintf(out->err, sizeof out->err, "cannot format the conversation: %.400s", err);
        return -1;
    }
    if (ev && ev->on_prompt) ev->on_prompt(ev->ctx, (int64_t)c->n_fed, (int64_t)n_turn);
    bool ok = feed_tokens(c, turn, n_turn, err, sizeof err);
    double t_prompt = anc_now() - t0;
    free(turn);
    size_t first = c->n_fed; /* the reply's first token */
    if (ev && ev->on_start) ev->on_start(ev->ctx, (int64_t)first);
    enum anc_finish finish = ANC_FINISH_STOP;
    if (!ok) {
        finish = atomic_load(&c->base.cancel) ? ANC_FINISH_CANCELLED : ANC_FINISH_ERROR;
        if (finish == ANC_FINISH_ERROR) snprintf(out->err, sizeof out->err, "%s", err);
    }
    int32_t prev = c->n_fed ? c->fed[c->n_fed - 1] : -1;
    int64_t n_gen = 0, n_share = 0;
    size_t text_len = 0;
    double share_sum = 0;
    double t_gen0 = anc_now();
    while (ok) {
        if (atomic_load(&c->base.cancel)) {
            finish = ANC_FINISH_CANCELLED;
            break;
        }
        if (max_tokens > 0 && n_gen >= max_tokens) {
            finish = ANC_FINISH_LENGTH;
            break;
        }
        int32_t tok = anc_session_sample(c->s);
        bool stop = anc_template_is_stop(c->m, c->tpl, tok);
        if (!stop) {
            char small[256];
            size_t k = anc_token_piece(c->m, prev, tok, small, sizeof small);
            if (k >= sizeof small) k = sizeof small - 1;
            const char *p = small;
            if (text_len == 0) /* a reply starts at its first visible character */
                while (k > 0 && (*p == ' ' || *p == '\n')) p++, k--;
            text_len += k;
            if (ev && ev->on_piece) ev->on_piece(ev->ctx, p, k);
        }
        /* the stop token is fed too, so the cache holds the end of the turn */
        if (anc_session_feed(c->s, &tok, 1, err, sizeof err) != 0) {
            snprintf(out->err, sizeof out->err, "%s", err);
            finish = ANC_FINISH_LENGTH;
            break;
        }
        fed_push(c, &tok, 1);
        if (ev && ev->on_fed) ev->on_fed(ev->ctx, (int64_t)(c->n_fed - first));
        double share = sink_share_now(c->s);
        if (share >= 0) share_sum += share, n_share++;
        prev = tok;
        if (stop) break;
        n_gen++;
    }
    out->finish = finish;
    out->n_prompt = (int64_t)n_turn;
    out->n_gen = n_gen;
    out->prompt_ms = t_prompt * 1e3;
    out->gen_ms = (anc_now() - t_gen0) * 1e3;
    out->sink_share = n_share ? share_sum / (double)n_share : -1;
    out->n_ids = c->n_fed - first;
    out->ids = out->n_ids ? malloc(out->n_ids * sizeof *out->ids) : NULL;
    if (out->ids) memcpy(out->ids, c->fed + first, out->n_ids * sizeof *out->ids);
    else out->n_ids = 0;
    return 0;
}

static void local_reset(struct anc_conv *cv)
{
    struct conv_local *c = (struct conv_local *)cv;
    anc_session_reset(c->s);
    c->n_fed = 0;
}

/* Token ranges of replayed messages: the rendering of each prefix of the
 * conversation gives where each message ends (the renderings are
 * append-only, so this matches the tokens fed). */
static void mark_boundaries(struct conv_local *c, const struct anc_chat_msg *conv, size_t n_conv,
                            size_t n_total, int64_t *first, int64_t *count)
{
    size_t prev_end = 0;
    for (size_t i = 0; i < n_conv; i++) {
        int32_t *t = NULL;
        size_t nt = 0;
        char err[ANC_ERR_LEN];
        bool last = i + 1 == n_conv;
        size_t end = n_total;
        if (!last && anc_chat_render(c->m, c->tpl, conv, i + 1, false, &t, &nt, err, sizeof err) == 0)
            end = nt < n_total ? nt : n_total;
        free(t);
        first[i] = (int64_t)prev_end;
        count[i] = end > prev_end ? (int64_t)(end - prev_end) : 0;
        if (end > prev_end) prev_end = end;
    }
}

static int local_replay(struct anc_conv *cv, const struct anc_chat_msg *msgs, size_t n,
                        int64_t *first, int64_t *count, size_t *n_tokens, char *err, size_t errlen)
{
    struct conv_local *c = (struct conv_local *)cv;
    local_reset(cv);
    *n_tokens = 0;
    for (size_t i = 0; i < n; i++) first[i] = -1, count[i] = 0;
    if (n == 0) return 0;
    /* the whole conversation as the template renders it */
    int32_t *toks = NULL;
    size_t nt = 0;
    char e[ANC_ERR_LEN] = "";
    if (anc_chat_render(c->m, c->tpl, msgs, n, false, &toks, &nt, e, sizeof e) != 0) {
        snprintf(err, errlen, "cannot format it: %.400s", e);
        return -1;
    }
    int rc = 0;
    if (nt > 0) {
        mark_boundaries(c, msgs, n, nt, first, count);
        if (!feed_tokens(c, toks, nt, e, sizeof e)) {
            snprintf(err, errlen, "%s", e[0] ? e : "cancelled");
            rc = -1;
        }
    }
    *n_tokens = nt;
    free(toks);
    return rc;
}

static int32_t local_stats(const struct anc_conv *cv, struct anc_stats *out, int64_t *orig,
                           int32_t cap)
{
    const struct conv_local *c = (const struct conv_local *)cv;
    return anc_session_stats(c->s, out, orig, cap);
}

static void local_get_params(const struct anc_conv *cv, struct anc_session_params *out)
{
    anc_session_get_params(((const struct conv_local *)cv)->s, out);
}

static bool local_set_window(struct anc_conv *cv, int32_t w, char *msg, size_t msglen)
{
    msg[0] = '\0';
    return anc_session_set_window(((struct conv_local *)cv)->s, w, msg, msglen);
}

static bool local_set_sinks(struct anc_conv *cv, int32_t k, char *msg, size_t msglen)
{
    msg[0] = '\0';
    return anc_session_set_sinks(((struct conv_local *)cv)->s, k, msg, msglen);
}

static bool local_set_policy(struct anc_conv *cv, enum anc_cache_policy p, char *msg, size_t msglen)
{
    msg[0] = '\0';
    return anc_session_set_policy(((struct conv_local *)cv)->s, p, msg, msglen);
}

static bool local_set_rope(struct anc_conv *cv, const struct anc_rope_settings *r, char *msg,
                           size_t msglen)
{
    msg[0] = '\0';
    return anc_session_set_rope(((struct conv_local *)cv)->s, r, msg, msglen);
}

static bool local_set_sampling(struct anc_conv *cv, const struct anc_sampling *smp, char *msg,
                               size_t msglen)
{
    msg[0] = '\0';
    return anc_session_set_sampling(((struct conv_local *)cv)->s, smp, msg, msglen);
}

/* A token as it reads in the middle of a text (its leading space kept);
 * control tokens such as BOS show their vocabulary name. */
static size_t local_token_text(const struct anc_conv *cv, int32_t id, char *buf, size_t cap)
{
    const struct conv_local *c = (const struct conv_local *)cv;
    /* any previous token but BOS keeps the leading space: the token itself will do */
    int32_t prev = id == anc_token_bos(c->m) ? -1 : id;
    size_t n = anc_token_piece(c->m, prev, id, buf, cap);
    if (n == 0) {
        const char *raw = anc_token_text(c->m, id);
        n = (size_t)snprintf(buf, cap, "%s", raw ? raw : "");
    }
    return n;
}

static int local_models(struct anc_conv *cv, char ***names, size_t *n, char *err, size_t errlen)
{
    const struct conv_local *c = (const struct conv_local *)cv;
    *names = calloc(1, sizeof **names);
    if (*names) (*names)[0] = strdup(c->mi.name ? c->mi.name : "");
    if (!*names || !(*names)[0]) {
        free(*names);
        *names = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *n = 1;
    return 0;
}

static void local_info(const struct anc_conv *cv, struct anc_conv_info *out)
{
    const struct conv_local *c = (const struct conv_local *)cv;
    memset(out, 0, sizeof *out);
    out->remote = false;
    out->model_name = c->mi.name ? c->mi.name : "";
    out->model_path = c->mi.path ? c->mi.path : "";
    out->engine = "local";
    out->template_name = anc_template_name(c->tpl);
    out->adapter = c->lora ? c->lora_desc : NULL;
    out->vocab = c->vocab;
    out->model = c->mi;
}

static void local_destroy(struct anc_conv *cv)
{
    struct conv_local *c = (struct conv_local *)cv;
    anc_session_free(c->s);
    anc_lora_free(c->lora);
    anc_model_free(c->m);
    free(c->fed);
    free(c);
}

/* "NAME" or "NAME xS", what the history records */
static void lora_describe(char *out, size_t cap, const char *path, float scale)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (scale == 1.0f) snprintf(out, cap, "%s", base);
    else snprintf(out, cap, "%s x%g", base, scale);
}

/* A new session under the new adapter, fed every token the old one was:
 * the cache is rebuilt under the new weights; then the two are swapped. */
static bool local_set_lora(struct anc_conv *cv, const char *path, float scale, char *msg, size_t msglen)
{
    struct conv_local *c = (struct conv_local *)cv;
    struct anc_lora *lo = NULL;
    if (path && !(lo = anc_lora_load(c->m, path, msg, msglen))) return false;
    struct anc_session_params sp;
    anc_session_get_params(c->s, &sp);
    sp.lora = lo;
    sp.lora_scale = scale;
    char rope_note[200] = "";
    struct anc_lora_info li = {0};
    if (lo) {
        anc_lora_get_info(lo, &li);
        if (anc_lora_apply_rope(lo, &sp.rope, true)) {
            snprintf(rope_note, sizeof rope_note, "; RoPE %s x%g as it was trained for (%d tokens)",
                     anc_rope_scaling_name(li.rope.scaling), li.rope.factor, li.trained_ctx);
        }
    }
    struct anc_session *ns = anc_session_new(c->m, &sp, msg, msglen);
    if (!ns) {
        anc_lora_free(lo);
        return false;
    }
    for (size_t done = 0; done < c->n_fed;) {
        size_t b = c->n_fed - done < CONV_PREFILL_CHUNK ? c->n_fed - done : CONV_PREFILL_CHUNK;
        if (anc_session_feed(ns, c->fed + done, b, msg, msglen) != 0) {
            anc_session_free(ns);
            anc_lora_free(lo);
            return false;
        }
        done += b;
    }
    anc_session_free(c->s);
    c->s = ns;
    anc_lora_free(c->lora);
    c->lora = lo;
    if (lo) lora_describe(c->lora_desc, sizeof c->lora_desc, path, scale);
    else c->lora_desc[0] = '\0';
    if (lo)
        snprintf(msg, msglen, "adapter %s on (rank %d, %d weights%s); the conversation's %zu tokens read again under it%s",
                 c->lora_desc, li.max_rank, li.n_matrices, li.n_plus ? " + trained embedding/norms" : "", c->n_fed,
                 rope_note);
    else if (sp.rope.scaling != ANC_ROPE_FROM_FILE && sp.rope.scaling != ANC_ROPE_NONE)
        snprintf(msg, msglen, "adapter off; the conversation's %zu tokens read again under the base weights; RoPE stays %s x%g (/rope reset for the file's)",
                 c->n_fed, anc_rope_scaling_name(sp.rope.scaling), sp.rope.factor);
    else
        snprintf(msg, msglen, "adapter off; the conversation's %zu tokens read again under the base weights", c->n_fed);
    return true;
}

static const struct anc_conv_class local_class = {
    .name = "local",
    .destroy = local_destroy,
    .info = local_info,
    .reply = local_reply,
    .reset = local_reset,
    .replay = local_replay,
    .stats = local_stats,
    .get_params = local_get_params,
    .set_window = local_set_window,
    .set_sinks = local_set_sinks,
    .set_policy = local_set_policy,
    .set_rope = local_set_rope,
    .set_sampling = local_set_sampling,
    .token_text = local_token_text,
    .models = local_models,
    .set_lora = local_set_lora,
};

struct anc_conv *anc_conv_open_local(const struct anc_conv_local_params *p, char *err,
                                     size_t errlen)
{
    struct conv_local *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base.cls = &local_class;
    atomic_init(&c->base.cancel, false);
    struct anc_model_params mp;
    anc_model_params_default(&mp);
    mp.n_threads = p->n_threads;
    mp.backend = p->backend;
    c->m = anc_model_load(p->model_path, &mp, err, errlen);
    if (!c->m) goto fail;
    anc_model_get_info(c->m, &c->mi);
    anc_vocab_fingerprint(c->m, c->vocab, sizeof c->vocab);
    struct anc_session_params sp = p->sess;
    if (p->lora_path) {
        c->lora = anc_lora_load(c->m, p->lora_path, err, errlen);
        if (!c->lora) goto fail;
        sp.lora = c->lora;
        anc_lora_apply_rope(c->lora, &sp.rope, false); /* what it was trained for, unless chosen */
        lora_describe(c->lora_desc, sizeof c->lora_desc, p->lora_path, sp.lora_scale);
    }
    c->s = anc_session_new(c->m, &sp, err, errlen);
    if (!c->s) goto fail;
    c->tpl = p->template_id >= 0 ? p->template_id : anc_template_detect(c->m);
    return &c->base;
fail:
    local_destroy(&c->base);
    return NULL;
}

/* ---- the public calls ---------------------------------------------------- */

void anc_conv_free(struct anc_conv *c)
{
    if (c) c->cls->destroy(c);
}

void anc_conv_get_info(const struct anc_conv *c, struct anc_conv_info *out)
{
    c->cls->info(c, out);
}

int anc_conv_reply(struct anc_conv *c, const struct anc_chat_msg *msgs, size_t n,
                   int32_t max_tokens, const struct anc_reply_events *ev, struct anc_reply *out)
{
    memset(out, 0, sizeof *out);
    out->n_prompt = -1;
    out->prompt_ms = out->gen_ms = -1;
    out->sink_share = -1;
    atomic_store(&c->cancel, false);
    return c->cls->reply(c, msgs, n, max_tokens, ev, out);
}

void anc_conv_cancel(struct anc_conv *c) { atomic_store(&c->cancel, true); }

void anc_conv_reset(struct anc_conv *c) { c->cls->reset(c); }

int anc_conv_replay(struct anc_conv *c, const struct anc_chat_msg *msgs, size_t n,
                    int64_t *first, int64_t *count, size_t *n_tokens, char *err, size_t errlen)
{
    atomic_store(&c->cancel, false);
    return c->cls->replay(c, msgs, n, first, count, n_tokens, err, errlen);
}

int32_t anc_conv_stats(const struct anc_conv *c, struct anc_stats *out, int64_t *orig, int32_t cap)
{
    return c->cls->stats(c, out, orig, cap);
}

void anc_conv_get_params(const struct anc_conv *c, struct anc_session_params *out)
{
    c->cls->get_params(c, out);
}

bool anc_conv_set_window(struct anc_conv *c, int32_t window, char *msg, size_t msglen)
{
    return c->cls->set_window(c, window, msg, msglen);
}

bool anc_conv_set_sinks(struct anc_conv *c, int32_t n_sink, char *msg, size_t msglen)
{
    return c->cls->set_sinks(c, n_sink, msg, msglen);
}

bool anc_conv_set_policy(struct anc_conv *c, enum anc_cache_policy p, char *msg, size_t msglen)
{
    return c->cls->set_policy(c, p, msg, msglen);
}

bool anc_conv_set_rope(struct anc_conv *c, const struct anc_rope_settings *r, char *msg,
                       size_t msglen)
{
    return c->cls->set_rope(c, r, msg, msglen);
}

bool anc_conv_set_sampling(struct anc_conv *c, const struct anc_sampling *s, char *msg,
                           size_t msglen)
{
    return c->cls->set_sampling(c, s, msg, msglen);
}

size_t anc_conv_token_text(const struct anc_conv *c, int32_t id, char *buf, size_t cap)
{
    if (cap) buf[0] = '\0';
    return c->cls->token_text ? c->cls->token_text(c, id, buf, cap) : 0;
}

bool anc_conv_set_lora(struct anc_conv *c, const char *path, float scale, char *msg, size_t msglen)
{
    if (!c->cls->set_lora) {
        snprintf(msg, msglen, "a %s engine takes no adapter here; serve the model with it instead", c->cls->name);
        return false;
    }
    return c->cls->set_lora(c, path, scale, msg, msglen);
}

int anc_conv_models(struct anc_conv *c, char ***names, size_t *n, char *err, size_t errlen)
{
    *names = NULL;
    *n = 0;
    return c->cls->models(c, names, n, err, errlen);
}
