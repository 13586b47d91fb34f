/* chat.c — the conversation controller (see chat.h): a conversation
 * engine (anc_conv: local, or a remote server) and the history store; an
 * engine thread that asks for each reply and streams it into the
 * conversation; slash commands; snapshots for the UI.
 * Front-end code: the engine through ancora.h, the store through
 * history.h; no curses.
 *
 * Threads: the UI thread calls chat_submit / chat_cancel / chat_view_get;
 * the engine thread runs one reply at a time. Everything shared is under
 * `mu`; the engine is called without the lock (its setters, stats and
 * cancel are thread-safe and apply between tokens). */
#include "chat.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"
#include "history.h"
#include "userconf.h"

/* How often a streaming reply is committed to the store (DESIGN.md:
 * "at least every second"). */
#define CHAT_SAVE_INTERVAL 0.5

struct msg {
    enum chat_role role;
    char *text;
    size_t len, cap;
    int64_t tok_first, tok_count;
    int64_t n_gen;           /* a finished reply's tokens as stored (without its end-of-turn token); -1 unknown */
    const char *finish;
    bool streaming;
    int64_t hist_id;
};

struct chat {
    struct chat_opts o;
    struct anc_conv *conv;     /* the engine: local or remote */
    struct anc_conv_info ci;   /* its description (pointers owned by conv) */
    struct anc_model_info mi;  /* ci.model */

    struct hist_db *db;
    bool db_writable;
    bool db_warned;
    int64_t session_id;

    pthread_t engine;
    bool engine_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* job posted / job done */
    bool job;               /* a reply is wanted */
    bool stop;              /* engine thread must exit */
    volatile bool cancel;   /* Ctrl-C */
    enum chat_state state;
    uint64_t version;

    struct msg *msgs;
    size_t n_msgs, cap_msgs;
    int64_t n_fed;          /* tokens the engine was given (local), or 1 once a
                               remote conversation has started */
    char *title;
    char theme[64];
    int32_t max_reply;
    char *lora_now;         /* the adapter /lora put on (NULL: off) */
    bool lora_changed;      /* /lora was used: lora_now, not o.lora_path */
    /* the reply being streamed (engine thread; msgs[r_mi] under mu) */
    long r_mi;
    int64_t r_hid;
    double r_saved;
};

/* ---- small helpers ----------------------------------------------------- */

static void bump(struct chat *c) { c->version++; }

/* Append a message (caller holds mu). Returns its index or -1. */
static long msg_add(struct chat *c, enum chat_role role, const char *text, size_t len)
{
    if (c->n_msgs == c->cap_msgs) {
        size_t cap = c->cap_msgs ? c->cap_msgs * 2 : 16;
        struct msg *nm = realloc(c->msgs, cap * sizeof *nm);
        if (!nm) return -1;
        c->msgs = nm;
        c->cap_msgs = cap;
    }
    struct msg *m = &c->msgs[c->n_msgs];
    memset(m, 0, sizeof *m);
    m->role = role;
    m->cap = len + 1;
    m->text = malloc(m->cap);
    if (!m->text) return -1;
    memcpy(m->text, text, len);
    m->text[len] = '\0';
    m->len = len;
    m->tok_first = -1;
    m->n_gen = -1;
    bump(c);
    return (long)c->n_msgs++;
}

static bool msg_append(struct msg *m, const char *p, size_t n)
{
    if (m->len + n + 1 > m->cap) {
        size_t cap = m->cap * 2 > m->len + n + 1 ? m->cap * 2 : m->len + n + 1;
        char *nt = realloc(m->text, cap);
        if (!nt) return false;
        m->text = nt;
        m->cap = cap;
    }
    memcpy(m->text + m->len, p, n);
    m->len += n;
    m->text[m->len] = '\0';
    return true;
}

static void notice(struct chat *c, enum chat_role role, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void notice(struct chat *c, enum chat_role role, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&c->mu);
    msg_add(c, role, buf, strlen(buf));
    pthread_mutex_unlock(&c->mu);
}

static void msgs_clear(struct chat *c)
{
    free(c->lora_now);
    for (size_t i = 0; i < c->n_msgs; i++) free(c->msgs[i].text);
    c->n_msgs = 0;
    c->n_fed = 0;
    bump(c);
}

/* ---- history ------------------------------------------------------------ */

/* A store failure is reported once; the conversation goes on in memory. */
static void store_failed(struct chat *c, int status)
{
    if (c->db_warned) return;
    c->db_warned = true;
    notice(c, CHAT_ERROR, "history: %s (%s); this conversation continues in memory only",
           hist_errmsg(c->db)[0] ? hist_errmsg(c->db) : "write failed", hist_strerror(status));
}

/* The engine parameters as JSON (for the session row). A remote
 * conversation records the server, its engine and the model. */
static void params_json(const struct chat *c, char *buf, size_t cap)
{
    struct anc_session_params p;
    anc_conv_get_params(c->conv, &p);
    if (c->ci.remote) {
        char url[300], model[300];
        snprintf(buf, cap,
                 "{\"remote\": \"%s\", \"engine\": \"%s\", \"model\": \"%s\", \"temp\": %g, "
                 "\"top_k\": %d, \"top_p\": %g, \"min_p\": %g, \"repeat_penalty\": %g, \"seed\": %"
                 PRIu64 "}",
                 cli_json_escape(c->ci.model_path, url, sizeof url), c->ci.engine,
                 cli_json_escape(c->ci.model_name, model, sizeof model), p.sampling.temp, p.sampling.top_k,
                 p.sampling.top_p, p.sampling.min_p, p.sampling.repeat_penalty, p.sampling.seed);
        return;
    }
    struct anc_stats st;
    anc_conv_stats(c->conv, &st, NULL, 0);
    p.rope.theta = st.rope_theta; /* the values in force, not "from the file" */
    p.rope.scaling = st.rope_scaling;
    p.rope.factor = st.rope_factor;
    snprintf(buf, cap,
             "{\"cache\": \"%s\", \"window\": %d, \"sinks\": %d, \"ctx\": %d, \"rope_theta\": %g, "
             "\"rope_scaling\": \"%s\", \"rope_factor\": %g, \"temp\": %g, \"top_k\": %d, "
             "\"top_p\": %g, \"min_p\": %g, \"repeat_penalty\": %g, \"seed\": %" PRIu64
             ", \"template\": \"%s\"}",
             anc_cache_policy_name(p.cache), p.window, p.n_sink, p.ctx, p.rope.theta,
             anc_rope_scaling_name(p.rope.scaling), p.rope.factor, p.sampling.temp,
             p.sampling.top_k, p.sampling.top_p, p.sampling.min_p, p.sampling.repeat_penalty,
             p.sampling.seed, c->ci.template_name);
}

/* Save the system messages not stored yet (the --system prompt, /system),
 * so the stored conversation is the one the model saw. Caller holds no lock. */
static void store_pending_system(struct chat *c)
{
    for (;;) {
        pthread_mutex_lock(&c->mu);
        size_t k = 0;
        while (k < c->n_msgs && !(c->msgs[k].role == CHAT_SYSTEM && c->msgs[k].hist_id == 0)) k++;
        char *text = k < c->n_msgs ? strdup(c->msgs[k].text) : NULL;
        pthread_mutex_unlock(&c->mu);
        if (!text) return;
        int64_t id = 0;
        int st = hist_msg_append(c->db, c->session_id, HIST_ROLE_SYSTEM, text, &id);
        free(text);
        pthread_mutex_lock(&c->mu);
        c->msgs[k].hist_id = st == HIST_OK ? id : -1; /* -1: not stored, not retried */
        pthread_mutex_unlock(&c->mu);
        if (st != HIST_OK) {
            store_failed(c, st);
            return;
        }
    }
}

/* Create the stored session on first use. */
static bool store_session(struct chat *c)
{
    if (!c->db || !c->db_writable) return false;
    if (c->session_id > 0) {
        store_pending_system(c);
        return true;
    }
    char pj[1024];
    params_json(c, pj, sizeof pj);
    int st = hist_session_create(c->db, c->title, c->ci.model_path, c->ci.model_name, pj,
                                 &c->session_id);
    if (st == HIST_OK && c->ci.vocab[0]) st = hist_session_set_vocab(c->db, c->session_id, c->ci.vocab);
    if (st != HIST_OK) {
        store_failed(c, st);
        c->session_id = 0;
        return false;
    }
    store_pending_system(c);
    return true;
}

static int64_t last_stored_msg(const struct chat *c)
{
    for (size_t i = c->n_msgs; i-- > 0;)
        if (c->msgs[i].hist_id > 0) return c->msgs[i].hist_id;
    return 0;
}

static void store_param_event(struct chat *c, const char *name, const char *old_v,
                              const char *new_v)
{
    if (!store_session(c)) return;
    pthread_mutex_lock(&c->mu);
    int64_t at = last_stored_msg(c);
    pthread_mutex_unlock(&c->mu);
    int st = hist_param_event_add(c->db, c->session_id, at, name, old_v, new_v, NULL);
    if (st != HIST_OK) store_failed(c, st);
    char pj[1024];
    params_json(c, pj, sizeof pj);
    hist_session_set_params(c->db, c->session_id, pj);
}

/* An untitled conversation takes its title from its first user message
 * (until /title names it). Caller holds mu; LINE is not yet added.
 * Returns whether the title changed. */
#define CHAT_TITLE_COLS 48
static bool auto_title(struct chat *c, const char *line)
{
    if (c->title && *c->title) return false;
    for (size_t i = 0; i < c->n_msgs; i++)
        if (c->msgs[i].role == CHAT_USER) return false;
    char *t = hist_title_from_text(line, CHAT_TITLE_COLS);
    if (!t || !*t) {
        free(t);
        return false;
    }
    free(c->title);
    c->title = t;
    bump(c);
    return true;
}

/* ---- the engine thread ------------------------------------------------- */

/* The conversation as template messages (notices left out); caller holds
 * mu and frees *out. upto = number of c->msgs to include; idx (optional)
 * gets each one's index in c->msgs. */
static size_t conv_msgs(const struct chat *c, size_t upto, struct anc_chat_msg **out, size_t **idx)
{
    *out = calloc(upto + 1, sizeof **out);
    if (idx) *idx = calloc(upto + 1, sizeof **idx);
    if (!*out || (idx && !*idx)) {
        free(*out);
        *out = NULL;
        if (idx) free(*idx), *idx = NULL;
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < upto; i++) {
        const struct msg *m = &c->msgs[i];
        if (m->role == CHAT_NOTICE || m->role == CHAT_ERROR) continue;
        (*out)[n].role = m->role == CHAT_SYSTEM ? "system" : m->role == CHAT_USER ? "user" : "assistant";
        (*out)[n].content = m->text;
        (*out)[n].len = m->len;
        if (idx) (*idx)[n] = i;
        n++;
    }
    return n;
}

/* The engine figures for a finished reply (hist_reply_info): the settings
 * in force at its end, and what the engine measured. */
static void reply_info(const struct chat *c, struct hist_reply_info *ri, const struct anc_reply *r)
{
    struct anc_stats st;
    anc_conv_stats(c->conv, &st, NULL, 0);
    hist_reply_info_init(ri);
    ri->template_name = c->ci.template_name;
    if (st.remote) {
        if (st.slot_ctx > 0) ri->cache_capacity = st.slot_ctx;
        if (st.have_slot) ri->cache_used = st.slot_tokens;
        return;
    }
    ri->cache_policy = anc_cache_policy_name(st.policy);
    ri->window = st.window;
    ri->sinks = st.n_sink;
    ri->rope_type = anc_rope_scaling_name(st.rope_scaling);
    ri->rope_base = st.rope_theta;
    ri->rope_factor = st.rope_factor;
    ri->adapter = c->ci.adapter;
    ri->cache_used = st.n_cached;
    ri->cache_capacity = st.capacity;
    ri->sink_share = r->sink_share;
    ri->token_ids = r->ids;
    ri->n_token_ids = r->ids ? r->n_ids : 0;
}

static void set_state(struct chat *c, enum chat_state st)
{
    pthread_mutex_lock(&c->mu);
    c->state = st;
    bump(c);
    pthread_mutex_unlock(&c->mu);
}

/* ---- the engine's events, on the engine thread ---- */

/* The turn's prompt: the user message's token range. */
static void ev_prompt(void *ctx, int64_t tok_first, int64_t n_tok)
{
    struct chat *c = ctx;
    pthread_mutex_lock(&c->mu);
    for (size_t i = c->n_msgs; i-- > 0;)
        if (c->msgs[i].role == CHAT_USER) {
            c->msgs[i].tok_first = tok_first;
            c->msgs[i].tok_count = n_tok > 0 ? n_tok : 0;
            break;
        }
    c->n_fed = tok_first >= 0 && n_tok >= 0 ? tok_first + n_tok : 1;
    bool cancel = c->cancel; /* Ctrl-C before the engine started */
    bump(c);
    pthread_mutex_unlock(&c->mu);
    if (cancel) anc_conv_cancel(c->conv);
}

/* The reply starts: its message, stored as it streams. */
static void ev_start(void *ctx, int64_t tok_first)
{
    struct chat *c = ctx;
    if (c->r_mi >= 0) return;
    pthread_mutex_lock(&c->mu);
    long mi = msg_add(c, CHAT_ASSISTANT, "", 0);
    if (mi >= 0) {
        c->msgs[mi].streaming = true;
        c->msgs[mi].tok_first = tok_first;
    }
    pthread_mutex_unlock(&c->mu);
    c->r_mi = mi;
    c->r_hid = 0;
    c->r_saved = anc_now();
    if (mi >= 0 && store_session(c)) {
        int st = hist_msg_begin(c->db, c->session_id, &c->r_hid);
        if (st != HIST_OK) store_failed(c, st), c->r_hid = 0;
    }
    set_state(c, CHAT_GENERATING);
}

static void ev_piece(void *ctx, const char *text, size_t len)
{
    struct chat *c = ctx;
    if (c->r_mi < 0) ev_start(c, -1);
    if (c->r_mi < 0) return;
    pthread_mutex_lock(&c->mu);
    msg_append(&c->msgs[c->r_mi], text, len);
    bump(c);
    pthread_mutex_unlock(&c->mu);
    if (c->o.on_piece) c->o.on_piece(c->o.on_piece_ctx, text, len);
    if (c->r_hid > 0 && anc_now() - c->r_saved >= CHAT_SAVE_INTERVAL) {
        pthread_mutex_lock(&c->mu);
        char *snap = strdup(c->msgs[c->r_mi].text);
        pthread_mutex_unlock(&c->mu);
        if (snap) {
            int st = hist_msg_update_text(c->db, c->r_hid, snap);
            if (st != HIST_OK) store_failed(c, st);
            free(snap);
        }
        c->r_saved = anc_now();
    }
}

static void ev_fed(void *ctx, int64_t n_tok)
{
    struct chat *c = ctx;
    if (c->r_mi < 0) return;
    pthread_mutex_lock(&c->mu);
    c->msgs[c->r_mi].tok_count = n_tok;
    if (c->msgs[c->r_mi].tok_first >= 0) c->n_fed = c->msgs[c->r_mi].tok_first + n_tok;
    pthread_mutex_unlock(&c->mu);
}

static enum hist_finish finish_of(enum anc_finish f)
{
    switch (f) {
    case ANC_FINISH_STOP: return HIST_FINISH_STOP;
    case ANC_FINISH_LENGTH: return HIST_FINISH_LENGTH;
    case ANC_FINISH_CANCELLED: return HIST_FINISH_CANCELLED;
    default: return HIST_FINISH_ERROR;
    }
}

/* Ask the engine for the reply to the newest user turn and stream it into
 * a new assistant message. */
static void reply(struct chat *c)
{
    set_state(c, CHAT_PREFILL);
    pthread_mutex_lock(&c->mu);
    struct anc_chat_msg *conv = NULL;
    size_t n_conv = conv_msgs(c, c->n_msgs, &conv, NULL);
    /* the engine reads the texts while it runs: copies, as commands on
       the UI thread may change messages meanwhile */
    char **own = calloc(n_conv + 1, sizeof *own);
    for (size_t i = 0; i < n_conv; i++) {
        char *t = own ? malloc(conv[i].len + 1) : NULL;
        if (t) memcpy(t, conv[i].content, conv[i].len + 1);
        if (own) own[i] = t;
        conv[i].content = t ? t : "";
        if (!t) conv[i].len = 0;
    }
    int32_t max_reply = c->max_reply;
    pthread_mutex_unlock(&c->mu);
    c->r_mi = -1;
    c->r_hid = 0;
    struct anc_reply_events ev = {ev_prompt, ev_start, ev_piece, ev_fed, c};
    struct anc_reply r;
    int rc = anc_conv_reply(c->conv, conv, n_conv, max_reply, &ev, &r);
    for (size_t i = 0; own && i < n_conv; i++) free(own[i]);
    free(own);
    free(conv);
    if (rc != 0 && c->r_mi < 0) { /* nothing started */
        if (r.err[0]) notice(c, CHAT_ERROR, "%s", r.err);
        free(r.ids);
        set_state(c, CHAT_IDLE);
        return;
    }
    if (c->r_mi < 0) ev_start(c, -1); /* an empty reply still gets its message */
    long mi = c->r_mi;
    if (r.err[0]) notice(c, CHAT_ERROR, "%s", r.err);
    if (mi < 0) {
        free(r.ids);
        set_state(c, CHAT_IDLE);
        return;
    }
    enum hist_finish finish = finish_of(r.finish);
    pthread_mutex_lock(&c->mu);
    c->msgs[mi].streaming = false;
    c->msgs[mi].n_gen = r.n_gen;
    c->msgs[mi].finish = hist_finish_name(finish);
    c->msgs[mi].hist_id = c->r_hid;
    char *final = strdup(c->msgs[mi].text);
    bump(c);
    pthread_mutex_unlock(&c->mu);
    if (c->r_hid > 0) {
        struct hist_msg_stats hs = {r.n_prompt, r.n_gen, r.prompt_ms, r.gen_ms};
        struct hist_reply_info ri;
        reply_info(c, &ri, &r);
        int st = hist_msg_finish_info(c->db, c->r_hid, final, finish, &hs, &ri);
        if (st != HIST_OK) store_failed(c, st);
    }
    free(r.ids);
    free(final);
    set_state(c, CHAT_IDLE);
}

static void *engine_main(void *arg)
{
    struct chat *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->job && !c->stop) pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop) break;
        pthread_mutex_unlock(&c->mu);
        reply(c);
        pthread_mutex_lock(&c->mu);
        c->job = false;
        c->cancel = false;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- lifetime ------------------------------------------------------------ */

void chat_opts_default(struct chat_opts *o)
{
    memset(o, 0, sizeof *o);
    anc_session_params_default(&o->sess);
    o->template_id = -1;
    o->max_reply_tokens = -1; /* by the template: see default_max_reply() */
}

static void open_history(struct chat *c)
{
    if (c->o.no_history) return;
    char err[ANC_ERR_LEN];
    char *path = c->o.db_path ? strdup(c->o.db_path) : hist_default_path();
    if (!path) {
        notice(c, CHAT_NOTICE, "history: no home folder found; this conversation is not saved");
        return;
    }
    c->db = hist_open(path, err, sizeof err);
    free(path);
    if (!c->db) {
        notice(c, CHAT_ERROR, "history: %s; this conversation is kept in memory only", err);
        return;
    }
    c->db_writable = !hist_readonly(c->db);
    if (!c->db_writable)
        notice(c, CHAT_NOTICE, "history: %s is read-only; this conversation is kept in memory only",
               hist_path(c->db));
}

static int load_session(struct chat *c, int64_t id, char *reply, size_t cap);

/* Replies end at an end-of-turn token. A base model (no chat template)
 * seldom writes one, so its replies stop at a shorter default length; no
 * reply runs forever. /set max-tokens (0 = no limit) changes it. */
#define CHAT_MAX_REPLY_BASE 256
#define CHAT_MAX_REPLY_CHAT 4096
static int32_t default_max_reply(const struct anc_conv_info *ci)
{
    return !ci->remote && strcmp(ci->template_name, anc_template_name(ANC_TPL_PLAIN)) == 0
               ? CHAT_MAX_REPLY_BASE : CHAT_MAX_REPLY_CHAT;
}

static struct anc_conv *open_engine(const struct chat_opts *o, char *err, size_t errlen)
{
    if (o->remote_url) {
        struct anc_remote_params rp = {o->remote_url, o->api_key, o->remote_model,
                                       o->connect_timeout, o->timeout, o->sess.sampling};
        return anc_conv_open_remote(&rp, err, errlen);
    }
    struct anc_conv_local_params lp = {o->model_path, o->lora_path, o->threads,
                                       (enum anc_backend_kind)o->backend, o->sess, o->template_id};
    return anc_conv_open_local(&lp, err, errlen);
}

struct chat *chat_new(const struct chat_opts *o, char *err, size_t errlen)
{
    struct chat *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->o = *o;
    c->max_reply = o->max_reply_tokens;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->title = strdup("");
    c->conv = open_engine(o, err, errlen);
    if (!c->conv) goto fail;
    anc_conv_get_info(c->conv, &c->ci);
    c->mi = c->ci.model;
    if (c->max_reply < 0) c->max_reply = default_max_reply(&c->ci);
    open_history(c);
    if (o->system_prompt && *o->system_prompt)
        msg_add(c, CHAT_SYSTEM, o->system_prompt, strlen(o->system_prompt));
    if (o->resume_id > 0) {
        char msg[512];
        if (load_session(c, o->resume_id, msg, sizeof msg) != 0) {
            snprintf(err, errlen, "%s", msg);
            goto fail;
        }
    }
    if (pthread_create(&c->engine, NULL, engine_main, c) != 0) {
        snprintf(err, errlen, "cannot start the engine thread");
        goto fail;
    }
    c->engine_started = true;
    return c;
fail:
    chat_free(c);
    return NULL;
}

void chat_free(struct chat *c)
{
    if (!c) return;
    if (c->engine_started) {
        pthread_mutex_lock(&c->mu);
        c->cancel = true;
        c->stop = true;
        if (c->job) anc_conv_cancel(c->conv);
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->engine, NULL);
    }
    for (size_t i = 0; i < c->n_msgs; i++) free(c->msgs[i].text);
    free(c->msgs);
    free(c->title);
    hist_close(c->db);
    anc_conv_free(c->conv);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

/* ---- views ---------------------------------------------------------------- */

const char *chat_lora_path(const struct chat *c)
{
    if (!c->ci.adapter) return NULL;
    return c->lora_changed ? c->lora_now : c->o.lora_path;
}

uint64_t chat_version(const struct chat *c)
{
    struct chat *mc = (struct chat *)c;
    pthread_mutex_lock(&mc->mu);
    uint64_t v = c->version;
    pthread_mutex_unlock(&mc->mu);
    return v;
}

void chat_view_get(struct chat *c, struct chat_view *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&c->mu);
    out->version = c->version;
    out->state = c->state;
    out->msgs = calloc(c->n_msgs ? c->n_msgs : 1, sizeof *out->msgs);
    for (size_t i = 0; out->msgs && i < c->n_msgs; i++) {
        const struct msg *m = &c->msgs[i];
        struct chat_msg_view *v = &out->msgs[out->n_msgs];
        v->text = malloc(m->len + 1);
        if (!v->text) break;
        memcpy(v->text, m->text, m->len + 1);
        v->len = m->len;
        v->role = m->role;
        v->tok_first = m->tok_first;
        v->tok_count = m->tok_count;
        v->n_gen = m->n_gen;
        v->finish = m->finish;
        v->streaming = m->streaming;
        out->n_msgs++;
    }
    out->title = strdup(c->title);
    out->session_id = c->session_id;
    out->model_name = strdup(c->ci.model_name);
    out->template_name = strdup(c->ci.template_name);
    out->max_reply = c->max_reply;
    out->theme_name = strdup(c->theme);
    out->history_ok = c->db && c->db_writable && !c->db_warned;
    out->model = c->mi;
    out->remote = c->ci.remote;
    pthread_mutex_unlock(&c->mu);
    anc_conv_get_params(c->conv, &out->params);
}

const char *chat_backend_notice(const struct chat *c, char *buf, size_t cap)
{
    const struct anc_model_info *mi = &c->mi; /* fixed after loading */
    buf[0] = '\0';
    if (c->ci.remote)
        snprintf(buf, cap, "remote engine: %s at %s, model %s", c->ci.engine, c->ci.model_path,
                 c->ci.model_name);
    else if (mi->backend_note && *mi->backend_note)
        snprintf(buf, cap, "%s", mi->backend_note);
    else if (mi->backend && strcmp(mi->backend, "cpu") != 0)
        snprintf(buf, cap, "running on the GPU (%s, %s)", mi->device, mi->backend);
    return buf;
}

void chat_view_release(struct chat_view *v)
{
    for (size_t i = 0; i < v->n_msgs; i++) free(v->msgs[i].text);
    free(v->msgs);
    free(v->title);
    free(v->model_name);
    free(v->template_name);
    free(v->theme_name);
    memset(v, 0, sizeof *v);
}

int32_t chat_stats(struct chat *c, struct anc_stats *out, int64_t *orig, int32_t cap)
{
    return anc_conv_stats(c->conv, out, orig, cap);
}

/* A token as it reads in the middle of a text (its leading space kept);
 * control tokens such as BOS show their vocabulary name. */
size_t chat_token_text(struct chat *c, int32_t id, char *buf, size_t cap)
{
    return anc_conv_token_text(c->conv, id, buf, cap);
}

bool chat_busy(const struct chat *c)
{
    struct chat *mc = (struct chat *)c;
    pthread_mutex_lock(&mc->mu);
    bool b = c->job;
    pthread_mutex_unlock(&mc->mu);
    return b;
}

bool chat_cancel(struct chat *c)
{
    pthread_mutex_lock(&c->mu);
    bool running = c->job;
    if (running) c->cancel = true, anc_conv_cancel(c->conv);
    pthread_mutex_unlock(&c->mu);
    return running;
}

void chat_wait_idle(struct chat *c)
{
    pthread_mutex_lock(&c->mu);
    while (c->job) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

void chat_set_theme_name(struct chat *c, const char *name)
{
    pthread_mutex_lock(&c->mu);
    snprintf(c->theme, sizeof c->theme, "%s", name);
    bump(c);
    pthread_mutex_unlock(&c->mu);
    char err[256];
    if (userconf_set("theme", name, err, sizeof err) != 0)
        notice(c, CHAT_NOTICE, "could not remember the theme: %s", err);
}

/* ---- sessions ------------------------------------------------------------ */

int chat_list_sessions(struct chat *c, const char *search, struct chat_session_row **rows,
                       size_t *n)
{
    *rows = NULL;
    *n = 0;
    if (!c->db) return -1;
    struct hist_session *list = NULL;
    size_t nl = 0;
    if (hist_session_list(c->db, 0, &list, &nl) != HIST_OK) return -1;
    struct chat_session_row *r = calloc(nl ? nl : 1, sizeof *r);
    if (!r) {
        hist_session_list_free(list, nl);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < nl; i++) {
        const struct hist_session *s = &list[i];
        if (search && *search && !strcasestr(s->title, search) && !strcasestr(s->model_name, search))
            continue;
        char when[32];
        hist_format_time(s->updated_ms, false, when, sizeof when);
        r[k].id = s->id;
        r[k].title = hist_text_clean(s->title[0] ? s->title : "(untitled)", 0);
        r[k].model = hist_text_clean(s->model_name, 0);
        r[k].n_messages = s->n_messages;
        r[k].when = strdup(when);
        k++;
    }
    hist_session_list_free(list, nl);
    *rows = r;
    *n = k;
    return 0;
}

void chat_session_rows_free(struct chat_session_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].title);
        free(rows[i].model);
        free(rows[i].when);
    }
    free(rows);
}

/* Replace the conversation by a stored one and replay its text into the
 * cache under the current policy. */
static int load_session(struct chat *c, int64_t id, char *reply, size_t cap)
{
    if (!c->db) {
        snprintf(reply, cap, "no history is open, nothing to load");
        return -1;
    }
    struct hist_session hs;
    int st = hist_session_get(c->db, id, &hs);
    if (st != HIST_OK) {
        snprintf(reply, cap, "session %" PRId64 ": %s", id, hist_strerror(st));
        return -1;
    }
    struct hist_message *ms = NULL;
    size_t nm = 0;
    st = hist_msg_list(c->db, id, &ms, &nm);
    if (st != HIST_OK) {
        hist_session_clear(&hs);
        snprintf(reply, cap, "session %" PRId64 ": %s", id, hist_strerror(st));
        return -1;
    }
    anc_conv_reset(c->conv);
    pthread_mutex_lock(&c->mu);
    msgs_clear(c);
    for (size_t i = 0; i < nm; i++) {
        enum chat_role r = ms[i].role == HIST_ROLE_SYSTEM ? CHAT_SYSTEM
                           : ms[i].role == HIST_ROLE_USER ? CHAT_USER : CHAT_ASSISTANT;
        long k = msg_add(c, r, ms[i].content, strlen(ms[i].content));
        if (k >= 0) {
            c->msgs[k].hist_id = ms[i].id;
            c->msgs[k].finish = hist_finish_name(ms[i].finish);
            if (r == CHAT_ASSISTANT && ms[i].stats.completion_tokens > 0)
                c->msgs[k].n_gen = ms[i].stats.completion_tokens;
        }
    }
    free(c->title);
    c->title = strdup(hs.title);
    c->session_id = id;
    struct anc_chat_msg *conv = NULL;
    size_t *idx = NULL;
    size_t n_conv = conv_msgs(c, c->n_msgs, &conv, &idx);
    pthread_mutex_unlock(&c->mu);
    /* replay: the engine takes in the whole conversation (the local one
       feeds it under the current policy) and says where each message is */
    char err[ANC_ERR_LEN] = "";
    int64_t *first = calloc(n_conv + 1, sizeof *first), *count = calloc(n_conv + 1, sizeof *count);
    size_t nt = 0;
    int rc = 0;
    if (!first || !count || (n_conv && !conv)) {
        snprintf(reply, cap, "out of memory");
        rc = -1;
    } else if (anc_conv_replay(c->conv, conv, n_conv, first, count, &nt, err, sizeof err) != 0) {
        snprintf(reply, cap, "cannot replay session %" PRId64 ": %s", id, err);
        rc = -1;
    } else if (c->ci.remote) {
        snprintf(reply, cap, "loaded session %" PRId64 " (%s): %zu messages (sent to the server "
                 "with the next message)", id, hs.title[0] ? hs.title : "untitled", nm);
    } else {
        snprintf(reply, cap, "loaded session %" PRId64 " (%s): %zu messages, %zu tokens replayed",
                 id, hs.title[0] ? hs.title : "untitled", nm, nt);
    }
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; first && count && i < n_conv; i++) {
        if (idx[i] >= c->n_msgs) continue;
        c->msgs[idx[i]].tok_first = first[i];
        c->msgs[idx[i]].tok_count = count[i];
    }
    c->n_fed = c->ci.remote ? (n_conv > 0) : (int64_t)nt;
    bump(c);
    pthread_mutex_unlock(&c->mu);
    free(first);
    free(count);
    free(idx);
    free(conv);
    hist_msg_list_free(ms, nm);
    hist_session_clear(&hs);
    return rc;
}

/* ---- commands ------------------------------------------------------------ */

struct cmd_ctx {
    struct chat *c;
    char *reply;
    size_t cap;
    int argc;
    char **argv;
};

typedef int (*cmd_fn)(struct cmd_ctx *x);

static int say(struct cmd_ctx *x, int flags, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int say(struct cmd_ctx *x, int flags, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->reply, x->cap, fmt, ap);
    va_end(ap);
    return flags;
}

/* Strict number parsing for command arguments. */
static bool num_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool num_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

#define ERRF (CHAT_HANDLED | 0x1000) /* internal: reply is an error */

/* "; on the 3 global layers (the 15 local layers keep the model's own
 * window of 512)" for models with sliding-window layers, else "". */
static void local_layers_note(struct chat *c, char *buf, size_t cap)
{
    struct anc_stats st;
    anc_conv_stats(c->conv, &st, NULL, 0);
    buf[0] = '\0';
    if (st.n_layer_local > 0)
        snprintf(buf, cap, "; on the %d global layers (the %d local layers keep the model's own "
                 "window of %d)", c->mi.n_layer - st.n_layer_local, st.n_layer_local,
                 st.local_window);
}

static int cmd_set(struct cmd_ctx *x)
{
    struct chat *c = x->c;
    if (x->argc != 3)
        return say(x, ERRF, "usage: /set window N | sinks N | temp X | top-k N | top-p X | min-p X | "
                   "repeat-penalty X | seed N | max-tokens N");
    const char *what = x->argv[1], *val = x->argv[2];
    char err[ANC_ERR_LEN] = "", old_v[64], new_v[64];
    struct anc_session_params p;
    anc_conv_get_params(c->conv, &p);
    struct anc_sampling smp = p.sampling;
    long l;
    double d;
    bool ok;
    if (strcmp(what, "window") == 0) {
        if (!num_long(val, 2, 1 << 22, &l)) return say(x, ERRF, "window must be a whole number from 2 to %d", 1 << 22);
        snprintf(old_v, sizeof old_v, "%d", p.window);
        ok = anc_conv_set_window(c->conv, (int32_t)l, err, sizeof err);
    } else if (strcmp(what, "sinks") == 0) {
        if (!num_long(val, 0, 1 << 22, &l)) return say(x, ERRF, "sinks must be a whole number (0 or more)");
        snprintf(old_v, sizeof old_v, "%d", p.n_sink);
        ok = anc_conv_set_sinks(c->conv, (int32_t)l, err, sizeof err);
    } else if (strcmp(what, "max-tokens") == 0) {
        if (!num_long(val, 0, 1 << 24, &l)) return say(x, ERRF, "max-tokens must be a whole number (0 = no limit)");
        snprintf(old_v, sizeof old_v, "%d", c->max_reply);
        c->max_reply = (int32_t)l;
        ok = true;
    } else {
        snprintf(old_v, sizeof old_v, "?");
        if (strcmp(what, "temp") == 0 && num_double(val, 0, 100, &d)) snprintf(old_v, sizeof old_v, "%g", smp.temp), smp.temp = (float)d;
        else if (strcmp(what, "top-k") == 0 && num_long(val, 0, 1 << 24, &l)) snprintf(old_v, sizeof old_v, "%d", smp.top_k), smp.top_k = (int32_t)l;
        else if (strcmp(what, "top-p") == 0 && num_double(val, 1e-6, 1, &d)) snprintf(old_v, sizeof old_v, "%g", smp.top_p), smp.top_p = (float)d;
        else if (strcmp(what, "min-p") == 0 && num_double(val, 0, 0.999999, &d)) snprintf(old_v, sizeof old_v, "%g", smp.min_p), smp.min_p = (float)d;
        else if (strcmp(what, "repeat-penalty") == 0 && num_double(val, 1e-3, 10, &d)) snprintf(old_v, sizeof old_v, "%g", smp.repeat_penalty), smp.repeat_penalty = (float)d;
        else if (strcmp(what, "seed") == 0 && num_long(val, 0, LONG_MAX, &l)) snprintf(old_v, sizeof old_v, "%" PRIu64, smp.seed), smp.seed = (uint64_t)l;
        else if (strstr("temp top-k top-p min-p repeat-penalty seed", what))
            return say(x, ERRF, "bad value '%s' for %s (temp 0-100, top-k >= 0, top-p (0,1], min-p [0,1), "
                       "repeat-penalty (0,10], seed >= 0)", val, what);
        else
            return say(x, ERRF, "unknown setting '%s' (window, sinks, temp, top-k, top-p, min-p, "
                       "repeat-penalty, seed, max-tokens)", what);
        ok = anc_conv_set_sampling(c->conv, &smp, err, sizeof err);
    }
    if (!ok) return say(x, ERRF, "%s", err);
    snprintf(new_v, sizeof new_v, "%s", val);
    store_param_event(c, what, old_v, new_v);
    if (err[0]) /* how the engine takes it (a remote server) */
        return say(x, CHAT_HANDLED | CHAT_REDRAW, "%s %s -> %s: %s", what, old_v, new_v, err);
    char scope[160] = "";
    if (strcmp(what, "window") == 0 || strcmp(what, "sinks") == 0) local_layers_note(c, scope, sizeof scope);
    return say(x, CHAT_HANDLED | CHAT_REDRAW, "%s %s -> %s (from the next token)%s", what, old_v,
               new_v, scope);
}

static int cmd_rope(struct cmd_ctx *x)
{
    struct chat *c = x->c;
    struct anc_session_params p;
    anc_conv_get_params(c->conv, &p);
    struct anc_rope_settings r = p.rope;
    char err[ANC_ERR_LEN], old_v[128], new_v[128];
    struct anc_stats st;
    anc_conv_stats(c->conv, &st, NULL, 0);
    snprintf(old_v, sizeof old_v, "theta %g, %s x%g, orig %d", st.rope_theta,
             anc_rope_scaling_name(st.rope_scaling), st.rope_factor, st.rope_orig_ctx);
    double d;
    long l;
    if (x->argc == 3 && strcmp(x->argv[1], "theta") == 0) {
        if (!num_double(x->argv[2], 1.0001, 1e12, &d)) return say(x, ERRF, "theta must be a number above 1 (e.g. 10000, 500000)");
        r.theta = d;
    } else if (x->argc >= 3 && x->argc <= 5 && strcmp(x->argv[1], "scale") == 0) {
        int sc = anc_rope_scaling_from_name(x->argv[2]);
        if (sc < 0) return say(x, ERRF, "scaling type must be none, linear, dynamic, yarn or llama3");
        r.scaling = sc;
        if (sc != ANC_ROPE_NONE && x->argc < 4) return say(x, ERRF, "usage: /rope scale %s FACTOR [ORIG_CTX]", x->argv[2]);
        if (x->argc >= 4) {
            if (!num_double(x->argv[3], 1, 1024, &d)) return say(x, ERRF, "factor must be a number from 1 to 1024");
            r.factor = d;
        }
        if (x->argc == 5) {
            if (!num_long(x->argv[4], 1, 1 << 22, &l)) return say(x, ERRF, "ORIG_CTX must be a whole number of tokens");
            r.orig_ctx = (int32_t)l;
        }
    } else if (x->argc == 2 && strcmp(x->argv[1], "reset") == 0) {
        memset(&r, 0, sizeof r);
        r.scaling = ANC_ROPE_FROM_FILE;
    } else {
        return say(x, ERRF, "usage: /rope theta X | /rope scale TYPE FACTOR [ORIG_CTX] | /rope reset");
    }
    if (!anc_conv_set_rope(c->conv, &r, err, sizeof err)) return say(x, ERRF, "%s", err);
    snprintf(new_v, sizeof new_v, "theta %g, %s x%g, orig %d", r.theta > 0 ? r.theta : st.rope_theta,
             anc_rope_scaling_name(r.scaling), r.factor > 0 ? r.factor : 1.0,
             r.orig_ctx > 0 ? r.orig_ctx : st.rope_orig_ctx);
    store_param_event(c, "rope", old_v, new_v);
    return say(x, CHAT_HANDLED | CHAT_REDRAW, "RoPE: %s (the whole cache, from the next token)", new_v);
}

/* /lora FILE [SCALE] | /lora off: the engine reads the conversation again
 * under the new weights (its cached keys and values were the old ones'). */
static int cmd_lora_chat(struct cmd_ctx *x)
{
    struct chat *c = x->c;
    double scale = 1.0;
    bool off = x->argc == 2 && strcmp(x->argv[1], "off") == 0;
    if (x->argc < 2 || x->argc > 3 || (off && x->argc != 2))
        return say(x, ERRF, "usage: /lora ADAPTER.gguf [SCALE] | /lora off");
    if (x->argc == 3 && !num_double(x->argv[2], 0, 100, &scale))
        return say(x, ERRF, "SCALE must be a number from 0 to 100");
    if (chat_busy(c)) return say(x, ERRF, "a reply is in progress: press Ctrl-C first");
    char old_v[200], msg[ANC_ERR_LEN + 256];
    snprintf(old_v, sizeof old_v, "%s", c->ci.adapter ? c->ci.adapter : "none");
    if (off && !c->ci.adapter) return say(x, ERRF, "no adapter is on");
    char *path = off ? NULL : strdup(x->argv[1]);
    if (!off && !path) return say(x, ERRF, "out of memory");
    if (!anc_conv_set_lora(c->conv, path, (float)scale, msg, sizeof msg)) {
        free(path);
        return say(x, ERRF, "%s", msg);
    }
    anc_conv_get_info(c->conv, &c->ci);
    free(c->lora_now);
    c->lora_now = path;
    c->lora_changed = true;
    store_param_event(c, "adapter", old_v, c->ci.adapter ? c->ci.adapter : "none");
    return say(x, CHAT_HANDLED | CHAT_REDRAW, "%s", msg);
}

static int cmd_cache(struct cmd_ctx *x)
{
    if (x->argc != 2) return say(x, ERRF, "usage: /cache sink|window|recompute|full");
    int pol = anc_cache_policy_from_name(x->argv[1]);
    if (pol < 0) return say(x, ERRF, "policy must be sink, window, recompute or full");
    struct anc_session_params p;
    anc_conv_get_params(x->c->conv, &p);
    char err[ANC_ERR_LEN];
    if (!anc_conv_set_policy(x->c->conv, (enum anc_cache_policy)pol, err, sizeof err))
        return say(x, ERRF, "%s", err);
    store_param_event(x->c, "cache", anc_cache_policy_name(p.cache), x->argv[1]);
    char scope[160];
    local_layers_note(x->c, scope, sizeof scope);
    return say(x, CHAT_HANDLED | CHAT_REDRAW, "cache policy %s -> %s (from the next token)%s",
               anc_cache_policy_name(p.cache), x->argv[1], scope);
}

static int cmd_title(struct cmd_ctx *x, const char *rest)
{
    struct chat *c = x->c;
    if (!rest || !*rest) return say(x, ERRF, "usage: /title TEXT");
    pthread_mutex_lock(&c->mu);
    char *old = c->title;
    c->title = strdup(rest);
    bump(c);
    pthread_mutex_unlock(&c->mu);
    if (store_session(c)) {
        int st = hist_session_set_title(c->db, c->session_id, rest);
        if (st != HIST_OK) store_failed(c, st);
    }
    free(old);
    return say(x, CHAT_HANDLED | CHAT_REDRAW, "title: %s", rest);
}

static int cmd_system(struct cmd_ctx *x, const char *rest)
{
    struct chat *c = x->c;
    if (!rest || !*rest) return say(x, ERRF, "usage: /system TEXT");
    pthread_mutex_lock(&c->mu);
    bool fresh = c->n_fed == 0;
    if (fresh && c->n_msgs > 0 && c->msgs[0].role == CHAT_SYSTEM) {
        struct msg *m = &c->msgs[0];
        m->len = 0;
        msg_append(m, rest, strlen(rest));
        m->hist_id = 0; /* stored again, with the new text */
        bump(c);
    } else if (fresh) {
        /* the system prompt goes first */
        long k = msg_add(c, CHAT_SYSTEM, rest, strlen(rest));
        if (k > 0) {
            struct msg tmp = c->msgs[k];
            memmove(c->msgs + 1, c->msgs, (size_t)k * sizeof *c->msgs);
            c->msgs[0] = tmp;
        }
    } else {
        msg_add(c, CHAT_SYSTEM, rest, strlen(rest));
    }
    pthread_mutex_unlock(&c->mu);
    store_session(c); /* stores the new system message */
    store_param_event(c, "system", NULL, rest);
    return say(x, CHAT_HANDLED | CHAT_REDRAW, fresh ? "system prompt set" :
               "system message added (it applies from the next turn)");
}

/* What the server publishes, in one line. */
static int remote_stats_line(struct cmd_ctx *x, const struct anc_stats *st)
{
    char slot[160] = "", kv[96] = "", req[96] = "", poll[200] = "";
    if (st->have_slot)
        snprintf(slot, sizeof slot, "; slot %d of %d: %" PRId64 "/%d tokens%s", st->slot_id,
                 st->n_slots, st->slot_tokens, st->slot_ctx, st->slot_busy ? ", busy" : "");
    else if (st->server_ctx > 0)
        snprintf(slot, sizeof slot, "; context %" PRId64 " tokens", st->server_ctx);
    if (st->have_kv_usage) {
        if (st->server_kv_tokens > 0)
            snprintf(kv, sizeof kv, "; KV cache %.1f%% of %" PRId64 " tokens", 100 * st->kv_usage,
                     st->server_kv_tokens);
        else
            snprintf(kv, sizeof kv, "; KV cache %.1f%%", 100 * st->kv_usage);
    }
    if (st->have_requests)
        snprintf(req, sizeof req, "; requests: %g running, %g waiting", st->req_running, st->req_waiting);
    if (st->poll_note[0]) snprintf(poll, sizeof poll, "; %s", st->poll_note);
    else if (st->poll_age < 0) snprintf(poll, sizeof poll, "; nothing polled yet");
    return say(x, CHAT_HANDLED, "%s at %s, model %s%s%s%s; prompt %.1f tok/s, decode %.1f tok/s%s",
               st->engine, st->server, st->model, slot, kv, req, st->prefill_tok_s,
               st->decode_tok_s, poll);
}

static int cmd_models(struct cmd_ctx *x)
{
    char **names = NULL;
    size_t n = 0;
    char err[ANC_ERR_LEN];
    if (anc_conv_models(x->c->conv, &names, &n, err, sizeof err) != 0) return say(x, ERRF, "%s", err);
    size_t used = 0;
    x->reply[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (used < x->cap) {
            bool cur = strcmp(names[i], x->c->ci.model_name) == 0;
            int k = snprintf(x->reply + used, x->cap - used, "%s%s %s", i ? "\n" : "", cur ? "*" : " ",
                             names[i]);
            if (k > 0) used += (size_t)k;
        }
        free(names[i]);
    }
    free(names);
    if (n == 0) snprintf(x->reply, x->cap, "the engine lists no models");
    return CHAT_HANDLED;
}

static int cmd_stats(struct cmd_ctx *x)
{
    struct anc_stats st;
    anc_conv_stats(x->c->conv, &st, NULL, 0);
    if (st.remote) return remote_stats_line(x, &st);
    double mass = 0;
    for (int32_t l = 0; l < st.n_layer; l++) mass += st.sink_mass[l];
    if (st.n_layer) mass /= st.n_layer;
    return say(x, CHAT_HANDLED,
               "cache %s: %d/%d entries, %d sinks, %" PRId64 " tokens seen, %" PRId64 " evicted; "
               "sink attention %.1f%%; RoPE theta %g (%s x%g, orig %d, effective base %g); "
               "memory: weights %.1f MiB, KV %.2f MiB, scratch %.2f MiB, RSS %.1f MiB; "
               "prefill %.1f tok/s, decode %.1f tok/s",
               anc_cache_policy_name(st.policy), st.n_cached, st.capacity, st.n_sink_now, st.n_seen,
               st.n_evicted, 100 * mass, st.rope_theta, anc_rope_scaling_name(st.rope_scaling),
               st.rope_factor, st.rope_orig_ctx, st.rope_base_effective,
               st.bytes_weights / 1048576.0, st.bytes_kv / 1048576.0, st.bytes_scratch / 1048576.0,
               st.bytes_rss / 1048576.0, st.prefill_tok_s, st.decode_tok_s);
}

static const struct chat_command_help help_rows[] = {
    {"/set window N", "entries a token attends to (sinks and itself included)"},
    {"/set sinks N", "attention-sink tokens kept at the start of the cache"},
    {"/set temp X", "sampling temperature (0 = greedy); also top-k, top-p, min-p, repeat-penalty, seed, max-tokens"},
    {"/rope theta X", "RoPE base frequency (ABF)"},
    {"/rope scale TYPE FACTOR [ORIG_CTX]", "none, linear, dynamic, yarn or llama3 scaling"},
    {"/rope reset", "RoPE settings from the model file"},
    {"/cache POLICY", "sink, window, recompute or full"},
    {"/lora FILE [SCALE] | /lora off", "put a LoRA adapter on or take it off (re-reads the conversation)"},
    {"/sessions", "browse saved sessions (resume one)"},
    {"/load ID", "resume a saved session (its text is replayed into the cache)"},
    {"/new", "start a new conversation"},
    {"/title TEXT", "name this conversation"},
    {"/export md|json PATH", "write this conversation to a file"},
    {"/theme NAME", "switch colours (default, light, high-contrast, colorblind, mono)"},
    {"/system TEXT", "set the system prompt (or add a system message)"},
    {"/stats", "cache, RoPE, memory and speed in one line"},
    {"/models", "the models the engine offers (a remote server's list; * in use)"},
    {"/help", "this list"},
    {"/quit", "leave (Ctrl-D too)"},
};

const struct chat_command_help *chat_command_help(size_t *n)
{
    *n = sizeof help_rows / sizeof help_rows[0];
    return help_rows;
}

static int cmd_help(struct cmd_ctx *x)
{
    size_t used = 0;
    x->reply[0] = '\0';
    for (size_t i = 0; i < sizeof help_rows / sizeof help_rows[0] && used < x->cap; i++) {
        int k = snprintf(x->reply + used, x->cap - used, "%s%-36s %s", i ? "\n" : "",
                         help_rows[i].usage, help_rows[i].what);
        if (k < 0) break;
        used += (size_t)k;
    }
    return CHAT_HANDLED;
}

static int cmd_new(struct cmd_ctx *x)
{
    struct chat *c = x->c;
    if (chat_busy(c)) return say(x, ERRF, "a reply is in progress: press Ctrl-C first");
    anc_conv_reset(c->conv);
    pthread_mutex_lock(&c->mu);
    char *sys = NULL;
    if (c->n_msgs > 0 && c->msgs[0].role == CHAT_SYSTEM) sys = strdup(c->msgs[0].text);
    msgs_clear(c);
    if (sys) msg_add(c, CHAT_SYSTEM, sys, strlen(sys));
    free(sys);
    free(c->title);
    c->title = strdup("");
    c->session_id = 0;
    pthread_mutex_unlock(&c->mu);
    return say(x, CHAT_HANDLED | CHAT_REDRAW | CHAT_CLEAR, "new conversation");
}

static int cmd_load(struct cmd_ctx *x)
{
    long id;
    if (x->argc != 2 || !num_long(x->argv[1], 1, LONG_MAX, &id)) return say(x, ERRF, "usage: /load ID (see /sessions)");
    if (chat_busy(x->c)) return say(x, ERRF, "a reply is in progress: press Ctrl-C first");
    if (load_session(x->c, id, x->reply, x->cap) != 0) return ERRF;
    return CHAT_HANDLED | CHAT_REDRAW | CHAT_CLEAR;
}

static int cmd_sessions(struct cmd_ctx *x)
{
    struct chat_session_row *rows;
    size_t n;
    if (chat_list_sessions(x->c, NULL, &rows, &n) != 0) return say(x, ERRF, "no history is open");
    size_t used = 0;
    x->reply[0] = '\0';
    if (n == 0) snprintf(x->reply, x->cap, "no saved sessions yet");
    for (size_t i = 0; i < n && i < 50 && used < x->cap; i++) {
        int k = snprintf(x->reply + used, x->cap - used, "%s%6" PRId64 "  %s  %4" PRId64 " msgs  %s  (%s)",
                         i ? "\n" : "", rows[i].id, rows[i].when, rows[i].n_messages, rows[i].title,
                         rows[i].model);
        if (k < 0) break;
        used += (size_t)k;
    }
    chat_session_rows_free(rows, n);
    return CHAT_HANDLED | CHAT_SESSIONS;
}

static int cmd_export(struct cmd_ctx *x)
{
    struct chat *c = x->c;
    if (x->argc != 3) return say(x, ERRF, "usage: /export md|json PATH");
    if (strcmp(x->argv[1], "md") != 0 && strcmp(x->argv[1], "json") != 0)
        return say(x, ERRF, "unknown export format '%s' (md or json)", x->argv[1]);
    if (c->session_id <= 0) return say(x, ERRF, "nothing is saved yet to export (history off or empty)");
    FILE *fp = fopen(x->argv[2], "w");
    if (!fp) return say(x, ERRF, "cannot write %s: %s", x->argv[2], strerror(errno));
    int st = hist_export(c->db, c->session_id,
                         strcmp(x->argv[1], "md") == 0 ? HIST_FORMAT_MARKDOWN : HIST_FORMAT_JSON, fp);
    if (fclose(fp) != 0 && st == HIST_OK) st = HIST_ERR_IO;
    if (st != HIST_OK) return say(x, ERRF, "export failed: %s", hist_strerror(st));
    return say(x, CHAT_HANDLED, "exported session %" PRId64 " to %s", c->session_id, x->argv[2]);
}

/* Split a command line into words (no quoting: the last argument of
 * /title and /system takes the rest of the line separately). */
static int split_words(char *s, char **argv, int max)
{
    int n = 0;
    for (char *tok = strtok(s, " \t"); tok && n < max; tok = strtok(NULL, " \t")) argv[n++] = tok;
    return n;
}

static const char *rest_after_word(const char *line)
{
    const char *p = line;
    while (*p && *p != ' ' && *p != '\t') p++;
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

static int run_command(struct chat *c, const char *line, char *reply, size_t cap)
{
    char *copy = strdup(line);
    if (!copy) return say(&(struct cmd_ctx){.reply = reply, .cap = cap}, ERRF, "out of memory");
    char *argv[8];
    struct cmd_ctx x = {c, reply, cap, 0, argv};
    x.argc = split_words(copy, argv, 8);
    const char *name = x.argc ? argv[0] + 1 : "";
    const char *rest = rest_after_word(line);
    int r;
    if (strcmp(name, "set") == 0) r = cmd_set(&x);
    else if (strcmp(name, "rope") == 0) r = cmd_rope(&x);
    else if (strcmp(name, "cache") == 0) r = cmd_cache(&x);
    else if (strcmp(name, "lora") == 0) r = cmd_lora_chat(&x);
    else if (strcmp(name, "title") == 0) r = cmd_title(&x, rest);
    else if (strcmp(name, "system") == 0) r = cmd_system(&x, rest);
    else if (strcmp(name, "stats") == 0) r = cmd_stats(&x);
    else if (strcmp(name, "models") == 0) r = cmd_models(&x);
    else if (strcmp(name, "help") == 0 || strcmp(name, "?") == 0) r = cmd_help(&x);
    else if (strcmp(name, "new") == 0) r = cmd_new(&x);
    else if (strcmp(name, "load") == 0) r = cmd_load(&x);
    else if (strcmp(name, "sessions") == 0) r = cmd_sessions(&x);
    else if (strcmp(name, "export") == 0) r = cmd_export(&x);
    else if (strcmp(name, "quit") == 0 || strcmp(name, "exit") == 0) r = say(&x, CHAT_HANDLED | CHAT_QUIT, "bye");
    else if (strcmp(name, "theme") == 0) {
        r = x.argc == 2 ? say(&x, CHAT_HANDLED | CHAT_THEME | CHAT_REDRAW, "%s", argv[1]) /* the UI wants the bare name */
                        : say(&x, ERRF, "usage: /theme NAME (default, light, high-contrast, colorblind, mono)");
    } else r = say(&x, ERRF, "unknown command /%s (try /help)", name);
    free(copy);
    return r;
}

int chat_submit(struct chat *c, const char *line, char *reply, size_t reply_len)
{
    char dummy[2048];
    if (!reply || reply_len == 0) {
        reply = dummy;
        reply_len = sizeof dummy;
    }
    reply[0] = '\0';
    if (line[0] == '/') {
        int r = run_command(c, line, reply, reply_len);
        bool error = (r & 0x1000) != 0;
        r &= ~0x1000;
        /* the answer also goes into the conversation view (not for /quit,
           and /sessions is shown by the UI's browser) */
        if (reply[0] && (r & CHAT_THEME))
            notice(c, CHAT_NOTICE, "theme %s", reply);
        else if (reply[0] && !(r & (CHAT_QUIT | CHAT_SESSIONS)))
            notice(c, error ? CHAT_ERROR : CHAT_NOTICE, "%s", reply);
        return r;
    }
    if (chat_busy(c)) {
        snprintf(reply, reply_len, "a reply is in progress: wait, or press Ctrl-C to stop it");
        return CHAT_BUSY;
    }
    size_t len = strlen(line);
    if (len == 0) return 0;
    pthread_mutex_lock(&c->mu);
    bool titled = auto_title(c, line);
    char *title = titled && c->session_id > 0 ? strdup(c->title) : NULL;
    long k = msg_add(c, CHAT_USER, line, len);
    pthread_mutex_unlock(&c->mu);
    if (title && c->db && c->db_writable) { /* stored already (after /system, /set ...) */
        int st = hist_session_set_title(c->db, c->session_id, title);
        if (st != HIST_OK) store_failed(c, st);
    }
    free(title);
    if (k < 0) {
        snprintf(reply, reply_len, "out of memory");
        return CHAT_HANDLED;
    }
    /* the user's message is committed before generation starts */
    if (store_session(c)) {
        int64_t id = 0;
        int st = hist_msg_append(c->db, c->session_id, HIST_ROLE_USER, line, &id);
        if (st != HIST_OK) store_failed(c, st);
        pthread_mutex_lock(&c->mu);
        c->msgs[k].hist_id = id;
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&c->mu);
    c->job = true;
    c->cancel = false;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return CHAT_HANDLED | CHAT_REDRAW;
}

/* ---- completion ------------------------------------------------------------ */

static const char *const top_words[] = {"/set", "/rope", "/cache", "/lora", "/sessions", "/load", "/new",
                                        "/title", "/export", "/theme", "/system", "/stats",
                                        "/models", "/help", "/quit", NULL};
static const char *const set_words[] = {"window", "sinks", "temp", "top-k", "top-p", "min-p",
                                        "repeat-penalty", "seed", "max-tokens", NULL};
static const char *const rope_words[] = {"theta", "scale", "reset", NULL};
static const char *const scale_words[] = {"none", "linear", "dynamic", "yarn", "llama3", NULL};
static const char *const cache_words[] = {"sink", "window", "recompute", "full", NULL};
static const char *const export_words[] = {"md", "json", NULL};
static const char *const theme_words[] = {"default", "light", "high-contrast", "colorblind", "mono", NULL};

char **chat_complete(struct chat *c, const char *line_before, const char *prefix)
{
    (void)c;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", line_before);
    char *argv[8];
    int argc = split_words(buf, argv, 8);
    const char *const *words = NULL;
    if (argc == 0) words = top_words;
    else if (argc == 1 && strcmp(argv[0], "/set") == 0) words = set_words;
    else if (argc == 1 && strcmp(argv[0], "/rope") == 0) words = rope_words;
    else if (argc == 2 && strcmp(argv[0], "/rope") == 0 && strcmp(argv[1], "scale") == 0) words = scale_words;
    else if (argc == 1 && strcmp(argv[0], "/cache") == 0) words = cache_words;
    else if (argc == 1 && strcmp(argv[0], "/export") == 0) words = export_words;
    else if (argc == 1 && strcmp(argv[0], "/theme") == 0) words = theme_words;
    if (!words) return NULL;
    size_t n = 0, plen = strlen(prefix);
    char **out = calloc(16, sizeof *out);
    for (size_t i = 0; out && words[i] && n < 15; i++)
        if (strncmp(words[i], prefix, plen) == 0) out[n++] = strdup(words[i]);
    if (out && n == 0) {
        free(out);
        return NULL;
    }
    return out;
}
