/* review.c — the review screen (Enter in the session browser): a saved
 * conversation in full, each reply annotated with the engine figures it
 * was made with (hist_reply_info), parameter changes inline where they
 * happened, search with highlighted hits (/ n N), and `p`: the replay
 * under the chat's settings now, beside the settings each reply was made
 * with (replay_job.c). Reads the store through history.h and the chat
 * through chat.h; never the engine directly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay_job.h"
#include "screens.h"

enum item_kind { IT_HEADER, IT_BODY, IT_FIGURES, IT_REPLAY, IT_EVENT, IT_BLANK };

struct item {
    enum item_kind kind;
    enum theme_role role, gutter;  /* gutter: the bar's role; ROLE_NORMAL = none */
    char *text;                    /* owned, one line or many (IT_BODY) */
};

struct rline {
    size_t item, off, len;
    bool first;
};

struct hit {
    size_t item, off, len;
};

struct review {
    struct chat *chat;             /* borrowed */
    struct hist_db *db;            /* borrowed */
    int threads, backend;
    struct hist_session s;
    bool have_session;
    struct hist_message *ms;
    size_t nm;
    struct hist_param_event *ev;
    size_t n_ev;
    struct item *items;
    size_t n_items, cap_items;
    struct rline *lines;
    size_t n_lines, cap_lines;
    int wrap_w;                    /* width the lines were wrapped for; 0: stale */
    int top, height;
    char query[128];               /* the search in force */
    char typing[128];              /* the search being typed */
    bool searching;
    struct hit *hits;
    size_t n_hits, cur_hit;
    bool hit_shown;
    struct replay_job *job;
    uint64_t job_version;
    bool job_results_shown;
    bool restore;                  /* bring item restore_item back on top */
    size_t restore_item;
    size_t show_item;              /* ... and keep this one's last line in view */
    char now_desc[160];            /* the settings the replay compared with */
    char note[ANC_ERR_LEN + 32];   /* one-line answer in the bottom row */
};

struct review *review_new(struct chat *c, struct hist_db *db, int threads, int backend)
{
    struct review *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->chat = c;
    r->db = db;
    r->threads = threads;
    r->backend = backend;
    return r;
}

static void items_clear(struct review *r)
{
    for (size_t i = 0; i < r->n_items; i++) free(r->items[i].text);
    r->n_items = 0;
    r->n_lines = 0;
    r->wrap_w = 0;
}

static void review_close(struct review *r)
{
    replay_job_free(r->job); /* before the messages it reads */
    r->job = NULL;
    items_clear(r);
    hist_msg_list_free(r->ms, r->nm);
    hist_param_event_list_free(r->ev, r->n_ev);
    if (r->have_session) hist_session_clear(&r->s);
    r->ms = NULL;
    r->ev = NULL;
    r->nm = r->n_ev = 0;
    r->have_session = false;
    free(r->hits);
    r->hits = NULL;
    r->n_hits = 0;
}

void review_free(struct review *r)
{
    if (!r) return;
    review_close(r);
    free(r->items);
    free(r->lines);
    free(r);
}

/* ---- the conversation as items --------------------------------------------- */

static void add_item(struct review *r, enum item_kind k, enum theme_role role,
                     enum theme_role gutter, const char *text)
{
    if (r->n_items == r->cap_items) {
        size_t cap = r->cap_items ? r->cap_items * 2 : 64;
        struct item *n = realloc(r->items, cap * sizeof *n);
        if (!n) return;
        r->items = n;
        r->cap_items = cap;
    }
    char *t = k == IT_BODY ? hist_text_clean(text, HIST_CLEAN_MULTILINE) : hist_text_clean(text, 0);
    if (!t) return;
    r->items[r->n_items++] = (struct item){k, role, gutter, t};
}

static const char *model_label(const struct review *r)
{
    return r->s.model_name && *r->s.model_name ? r->s.model_name : "Model";
}

static void add_header(struct review *r, const struct hist_message *m, int num)
{
    char h[256], when[32];
    hist_format_time(m->created_ms, false, when, sizeof when);
    const char *who = m->role == HIST_ROLE_USER ? "You"
                      : m->role == HIST_ROLE_SYSTEM ? "System prompt"
                                                    : model_label(r);
    int k = snprintf(h, sizeof h, "%s  #%d \u00b7 %.16s", who, num, when);
    if (m->role == HIST_ROLE_ASSISTANT && m->stats.completion_tokens >= 0 && k < (int)sizeof h)
        k += snprintf(h + k, sizeof h - (size_t)k, " \u00b7 %lld tok",
                      (long long)m->stats.completion_tokens);
    const char *fin = hist_finish_label(m->finish); /* as the chat says it */
    if (m->role == HIST_ROLE_ASSISTANT && fin && k < (int)sizeof h)
        snprintf(h + k, sizeof h - (size_t)k, " \u00b7 %s", fin);
    enum theme_role role = m->role == HIST_ROLE_USER ? ROLE_CHAT_USER_LABEL
                           : m->role == HIST_ROLE_ASSISTANT ? ROLE_CHAT_ASSISTANT_LABEL
                                                            : ROLE_CHAT_SYSTEM;
    add_item(r, IT_HEADER, role, role, h);
}

static void add_replay_line(struct review *r, const struct hist_message *m)
{
    struct replay_result res;
    if (!r->job || !replay_job_result(r->job, m->id, &res)) return;
    char line[160], made[48] = "not stored";
    if (!isnan(res.ppl_made)) snprintf(made, sizeof made, "%.3f", res.ppl_made);
    if (isnan(res.ppl_now)) snprintf(line, sizeof line, "replay: no tokens to score");
    else snprintf(line, sizeof line, "replay PPL %.3f now \u00b7 %s as made", res.ppl_now, made);
    add_item(r, IT_REPLAY, ROLE_PANEL_VALUE, ROLE_CHAT_ASSISTANT_LABEL, line);
}

static void add_event(struct review *r, const char *name, const char *old_v, const char *new_v)
{
    char line[320];
    snprintf(line, sizeof line, "settings changed: %s %s \u2192 %s", name,
             old_v && *old_v ? old_v : "(none)", new_v ? new_v : "");
    add_item(r, IT_EVENT, ROLE_CHAT_NOTICE, ROLE_NORMAL, line);
}

static void add_events_after(struct review *r, int64_t msg_id)
{
    bool any = false;
    for (size_t i = 0; i < r->n_ev; i++)
        if (r->ev[i].message_id == msg_id) {
            add_event(r, r->ev[i].name, r->ev[i].old_value, r->ev[i].new_value);
            any = true;
        }
    if (any) add_item(r, IT_BLANK, ROLE_NORMAL, ROLE_NORMAL, "");
}

/* Sessions stored no events (saved by an older chat): what differs
 * between the figures of two consecutive replies. */
static void add_derived_changes(struct review *r, const struct hist_reply_info *a,
                                const struct hist_reply_info *b)
{
    char o[48], n[48];
    if (a->cache_policy && b->cache_policy && strcmp(a->cache_policy, b->cache_policy) != 0)
        add_event(r, "cache", a->cache_policy, b->cache_policy);
    if (a->window >= 0 && b->window >= 0 && a->window != b->window) {
        snprintf(o, sizeof o, "%lld", (long long)a->window);
        snprintf(n, sizeof n, "%lld", (long long)b->window);
        add_event(r, "window", o, n);
    }
    if (a->sinks >= 0 && b->sinks >= 0 && a->sinks != b->sinks) {
        snprintf(o, sizeof o, "%lld", (long long)a->sinks);
        snprintf(n, sizeof n, "%lld", (long long)b->sinks);
        add_event(r, "sinks", o, n);
    }
    bool rope_differs = (a->rope_type && b->rope_type && strcmp(a->rope_type, b->rope_type) != 0) ||
                        a->rope_base != b->rope_base || a->rope_factor != b->rope_factor;
    if (rope_differs && a->rope_base >= 0 && b->rope_base >= 0) {
        snprintf(o, sizeof o, "%s %g x%g", a->rope_type ? a->rope_type : "?", a->rope_base, a->rope_factor);
        snprintf(n, sizeof n, "%s %g x%g", b->rope_type ? b->rope_type : "?", b->rope_base, b->rope_factor);
        add_event(r, "rope", o, n);
    }
}

static void build_items(struct review *r)
{
    items_clear(r);
    add_events_after(r, 0);
    const struct hist_reply_info *prev = NULL;
    for (size_t i = 0; i < r->nm; i++) {
        const struct hist_message *m = &r->ms[i];
        bool reply = m->role == HIST_ROLE_ASSISTANT;
        if (reply && r->n_ev == 0 && prev && hist_reply_info_known(&m->info))
            add_derived_changes(r, prev, &m->info);
        add_header(r, m, (int)i + 1);
        enum theme_role body = m->role == HIST_ROLE_USER ? ROLE_CHAT_USER
                               : reply ? ROLE_CHAT_ASSISTANT
                                       : ROLE_CHAT_SYSTEM;
        add_item(r, IT_BODY, body, r->items[r->n_items - 1].gutter, m->content);
        char fig[1024];
        if (reply && hist_reply_info_line(m, fig, sizeof fig))
            add_item(r, IT_FIGURES, ROLE_CHAT_META, ROLE_CHAT_ASSISTANT_LABEL, fig);
        if (reply) add_replay_line(r, m);
        if (reply && hist_reply_info_known(&m->info)) prev = &m->info;
        add_item(r, IT_BLANK, ROLE_NORMAL, ROLE_NORMAL, "");
        add_events_after(r, m->id);
    }
}

/* ---- wrapping -------------------------------------------------------------- */

struct wrap_ctx {
    struct review *r;
    size_t item;
};

static void add_rline(void *ctx, size_t off, size_t len, bool first)
{
    struct wrap_ctx *w = ctx;
    struct review *r = w->r;
    if (r->n_lines == r->cap_lines) {
        size_t cap = r->cap_lines ? r->cap_lines * 2 : 256;
        struct rline *n = realloc(r->lines, cap * sizeof *n);
        if (!n) return;
        r->lines = n;
        r->cap_lines = cap;
    }
    r->lines[r->n_lines++] = (struct rline){w->item, off, len, first};
}

static void wrap_all(struct review *r, int w)
{
    r->n_lines = 0;
    for (size_t i = 0; i < r->n_items; i++) {
        struct wrap_ctx c = {r, i};
        const char *t = r->items[i].text;
        ui_wrap(t, strlen(t), w, add_rline, &c);
    }
    r->wrap_w = w;
}

/* ---- search ------------------------------------------------------------------ */

static char fold(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static bool match_at(const char *s, const char *q)
{
    for (; *q; s++, q++)
        if (!*s || fold(*s) != fold(*q)) return false;
    return true;
}

static void add_hit(struct review *r, size_t item, size_t off, size_t len, size_t *cap)
{
    if (r->n_hits == *cap) {
        size_t c = *cap ? *cap * 2 : 32;
        struct hit *n = realloc(r->hits, c * sizeof *n);
        if (!n) return;
        r->hits = n;
        *cap = c;
    }
    r->hits[r->n_hits++] = (struct hit){item, off, len};
}

/* Every occurrence of the query (ASCII case-insensitive) in every item. */
static void find_hits(struct review *r)
{
    free(r->hits);
    r->hits = NULL;
    r->n_hits = 0;
    r->cur_hit = 0;
    size_t cap = 0, qn = strlen(r->query);
    if (!qn) return;
    for (size_t i = 0; i < r->n_items; i++) {
        const char *t = r->items[i].text;
        for (size_t k = 0; t[k];) {
            if (match_at(t + k, r->query)) {
                add_hit(r, i, k, qn, &cap);
                k += qn;
            } else {
                k++;
            }
        }
    }
}

static size_t line_of_hit(const struct review *r, const struct hit *h)
{
    size_t best = 0;
    for (size_t l = 0; l < r->n_lines; l++) {
        if (r->lines[l].item > h->item) break;
        if (r->lines[l].item == h->item && r->lines[l].off <= h->off) best = l;
        else if (r->lines[l].item < h->item) best = l;
    }
    return best;
}

static void show_hit(struct review *r)
{
    if (!r->n_hits) {
        snprintf(r->note, sizeof r->note, "no match for \"%s\"", r->query);
        return;
    }
    int l = (int)line_of_hit(r, &r->hits[r->cur_hit]);
    if (l < r->top || l >= r->top + r->height) r->top = l - r->height / 3;
    r->hit_shown = true;
    snprintf(r->note, sizeof r->note, "match %zu of %zu for \"%s\" \u00b7 n next, N previous",
             r->cur_hit + 1, r->n_hits, r->query);
}

/* First hit at or below the top line (after a new search). */
static void first_hit_from_top(struct review *r)
{
    r->cur_hit = 0;
    for (size_t i = 0; i < r->n_hits; i++)
        if ((int)line_of_hit(r, &r->hits[i]) >= r->top) {
            r->cur_hit = i;
            break;
        }
    show_hit(r);
}

static void next_hit(struct review *r, int d)
{
    if (!r->n_hits) {
        snprintf(r->note, sizeof r->note, "%s", r->query[0] ? "no match" : "/ searches");
        return;
    }
    r->cur_hit = (r->cur_hit + r->n_hits + (size_t)(d > 0 ? 1 : r->n_hits - 1)) % r->n_hits;
    show_hit(r);
}

/* ---- opening -------------------------------------------------------------------- */

int review_open(struct review *r, int64_t id, char *err, size_t errlen)
{
    review_close(r);
    r->top = 0;
    r->note[0] = r->query[0] = '\0';
    r->searching = false;
    int st = hist_session_get(r->db, id, &r->s);
    r->have_session = st == HIST_OK;
    if (st == HIST_OK) st = hist_msg_list(r->db, id, &r->ms, &r->nm);
    if (st == HIST_OK) st = hist_param_event_list(r->db, id, &r->ev, &r->n_ev);
    if (st != HIST_OK) {
        snprintf(err, errlen, "%s", *hist_errmsg(r->db) ? hist_errmsg(r->db) : hist_strerror(st));
        review_close(r);
        return -1;
    }
    build_items(r);
    return 0;
}

int64_t review_session(const struct review *r) { return r->have_session ? r->s.id : 0; }

/* ---- replay ------------------------------------------------------------------------ */

static void describe_params(const struct anc_session_params *p, char *buf, size_t cap)
{
    int k = snprintf(buf, cap, "%s window %d", anc_cache_policy_name(p->cache), p->window);
    if (p->cache == ANC_CACHE_SINK && k < (int)cap) k += snprintf(buf + k, cap - (size_t)k, " sinks %d", p->n_sink);
    if (p->rope.scaling > 0 && k < (int)cap)
        k += snprintf(buf + k, cap - (size_t)k, ", RoPE %s x%g", anc_rope_scaling_name(p->rope.scaling),
                      p->rope.factor);
    if (p->rope.theta > 0 && k < (int)cap) snprintf(buf + k, cap - (size_t)k, " base %g", p->rope.theta);
}

static void start_replay(struct review *r)
{
    if (r->job) {
        struct replay_progress pr;
        replay_job_progress(r->job, &pr);
        if (pr.running) return;
        replay_job_free(r->job);
        r->job = NULL;
    }
    struct chat_view v;
    chat_view_get(r->chat, &v);
    struct anc_session_params now = v.params;
    chat_view_release(&v);
    describe_params(&now, r->now_desc, sizeof r->now_desc);
    if (strncmp(r->s.model_path, "http://", 7) == 0 || strncmp(r->s.model_path, "https://", 8) == 0) {
        snprintf(r->note, sizeof r->note, "replay: a remote server answered this session; replaying "
                 "needs the model as a file (ancora history replay %lld -m FILE)", (long long)r->s.id);
        return;
    }
    char err[256];
    r->job = replay_job_start(r->s.model_path, r->s.vocab_hash, r->threads, r->backend, r->ms, r->nm,
                              &now, chat_lora_path(r->chat), err, sizeof err);
    r->job_version = 0;
    r->job_results_shown = false;
    if (!r->job) snprintf(r->note, sizeof r->note, "replay: %s", err);
    else r->note[0] = '\0';
}

/* Results arrived: show them beside the replies (keeping the place). */
static void take_results(struct review *r, const struct replay_progress *pr)
{
    r->job_results_shown = true;
    if (pr->failed) {
        snprintf(r->note, sizeof r->note, "replay failed: %s", pr->msg);
        return;
    }
    if (pr->cancelled) {
        snprintf(r->note, sizeof r->note, "replay cancelled");
        return;
    }
    /* the items on top and at the bottom of the view, counted without the
       replay lines (which are all made again) */
    size_t top_item = r->n_lines && r->top < (int)r->n_lines ? r->lines[r->top].item : 0;
    int last = r->top + r->height - 1;
    if (last >= (int)r->n_lines) last = (int)r->n_lines - 1;
    size_t bottom_item = last >= 0 ? r->lines[last].item : 0;
    size_t before = 0, before_bottom = 0;
    for (size_t i = 0; i < top_item && i < r->n_items; i++) before += r->items[i].kind != IT_REPLAY;
    for (size_t i = 0; i < bottom_item && i < r->n_items; i++) before_bottom += r->items[i].kind != IT_REPLAY;
    build_items(r);
    find_hits(r);
    r->wrap_w = 0;
    r->restore = false;
    for (size_t i = 0, seen = 0; i < r->n_items; i++) { /* the same item on top again */
        if (seen == before && !r->restore) {
            r->restore = true; /* resolved to a line after wrapping */
            r->restore_item = i;
            r->show_item = i;
        }
        if (seen == before_bottom && r->items[i].kind != IT_REPLAY) { /* the bottom one in view, */
            size_t k = i;
            /* with the new replay line of the reply it belongs to (the
               reply's lines run up to the blank after it) */
            while (k + 1 < r->n_items && r->items[k].kind != IT_BLANK && r->items[k].kind != IT_REPLAY &&
                   (r->items[k + 1].kind == IT_BODY || r->items[k + 1].kind == IT_FIGURES ||
                    r->items[k + 1].kind == IT_REPLAY))
                k++;
            r->show_item = r->items[k].kind == IT_REPLAY ? k : i;
            break;
        }
        seen += r->items[i].kind != IT_REPLAY;
    }
    char made[32] = "-";
    if (!isnan(pr->ppl_made)) snprintf(made, sizeof made, "%.3f", pr->ppl_made);
    snprintf(r->note, sizeof r->note, "replay PPL %.3f under %s \u00b7 %s as made", pr->ppl_now,
             r->now_desc, made);
}

bool review_tick(struct review *r)
{
    if (!r->job) return false;
    struct replay_progress pr;
    uint64_t v = replay_job_progress(r->job, &pr);
    if (v == r->job_version) return false;
    r->job_version = v;
    if (!pr.running && !r->job_results_shown) take_results(r, &pr);
    return true;
}

static bool replay_running(struct review *r)
{
    struct replay_progress pr;
    if (!r->job) return false;
    replay_job_progress(r->job, &pr);
    return pr.running;
}

enum hints_mode review_hints(struct review *r)
{
    return r->searching ? HINTS_REVIEW_SEARCH : replay_running(r) ? HINTS_REVIEW_REPLAY : HINTS_REVIEW;
}

/* ---- keys ------------------------------------------------------------------------ */

static void scroll_by(struct review *r, int d) { r->top += d; }

static int search_key(struct review *r, bool is_key, wint_t ch)
{
    size_t n = strlen(r->typing);
    if ((!is_key && (ch == 27 || ch == 3))) {
        r->searching = false;
    } else if ((is_key && ch == KEY_ENTER) || (!is_key && (ch == L'\r' || ch == L'\n'))) {
        r->searching = false;
        snprintf(r->query, sizeof r->query, "%s", r->typing);
        find_hits(r);
        first_hit_from_top(r);
    } else if ((is_key && ch == KEY_BACKSPACE) || (!is_key && (ch == 127 || ch == 8))) {
        while (n > 0 && ((unsigned char)r->typing[n - 1] & 0xC0) == 0x80) n--;
        if (n > 0) n--;
        r->typing[n] = '\0';
    } else if (!is_key && ch == 21) {
        r->typing[0] = '\0';
    } else if (!is_key && ch >= 32) {
        char mb[8];
        mbstate_t st;
        memset(&st, 0, sizeof st);
        size_t k = wcrtomb(mb, (wchar_t)ch, &st);
        if (k != (size_t)-1 && n + k + 1 < sizeof r->typing) {
            memcpy(r->typing + n, mb, k);
            r->typing[n + k] = '\0';
        }
    }
    return REVIEW_STAY;
}

int review_key(struct review *r, bool is_key, wint_t ch)
{
    if (r->searching) return search_key(r, is_key, ch);
    int page = r->height > 2 ? r->height - 2 : 1;
    r->hit_shown = false;
    if (is_key) {
        switch (ch) {
        case KEY_UP: scroll_by(r, -1); break;
        case KEY_DOWN: scroll_by(r, 1); break;
        case KEY_PPAGE: scroll_by(r, -page); break;
        case KEY_NPAGE: scroll_by(r, page); break;
        case KEY_HOME: r->top = 0; break;
        case KEY_END: r->top = (int)r->n_lines; break;
        default: break;
        }
        return REVIEW_STAY;
    }
    if (ch == 27 || ch == 3) {
        if (replay_running(r)) {
            replay_job_cancel(r->job);
            snprintf(r->note, sizeof r->note, "cancelling the replay");
            return REVIEW_STAY;
        }
        return ch == 27 ? REVIEW_BACK : REVIEW_STAY;
    }
    switch (ch) {
    case L'q': return REVIEW_BACK;
    case L'r': return REVIEW_RESUME;
    case L'j': scroll_by(r, 1); break;
    case L'k': scroll_by(r, -1); break;
    case L' ': scroll_by(r, page); break;
    case L'b': scroll_by(r, -page); break;
    case L'g': r->top = 0; break;
    case L'G': r->top = (int)r->n_lines; break;
    case L'/':
        r->searching = true;
        r->typing[0] = '\0';
        break;
    case L'n': next_hit(r, 1); break;
    case L'N': next_hit(r, -1); break;
    case L'p': start_replay(r); break;
    default: break;
    }
    return REVIEW_STAY;
}

/* ---- drawing ---------------------------------------------------------------------- */

/* One wrapped line, search hits highlighted (the current one as selected). */
static void draw_line(const struct review *r, int y, int x, int w, const struct rline *l)
{
    const struct item *it = &r->items[l->item];
    if (it->gutter != ROLE_NORMAL) ui_text(y, x, 1, it->gutter, ui_unicode() ? "\u258e" : "|");
    else if (it->kind == IT_EVENT && l->first) ui_text(y, x, 1, it->role, ui_unicode() ? "\u00b7" : "-");
    int col = 2;
    size_t pos = l->off, end = l->off + l->len;
    for (size_t h = 0; h < r->n_hits && pos < end; h++) {
        const struct hit *hp = &r->hits[h];
        if (hp->item != l->item || hp->off + hp->len <= pos || hp->off >= end) continue;
        size_t hs = hp->off > pos ? hp->off : pos, he = hp->off + hp->len < end ? hp->off + hp->len : end;
        col += ui_textn(y, x + col, w - col, it->role, it->text + pos, hs - pos);
        enum theme_role hr = h == r->cur_hit && r->hit_shown ? ROLE_SELECTION : ROLE_SEARCH_HIT;
        col += ui_textn(y, x + col, w - col, hr, it->text + hs, he - hs);
        pos = he;
    }
    if (pos < end) ui_textn(y, x + col, w - col, it->role, it->text + pos, end - pos);
}

static void clamp_top(struct review *r)
{
    if (r->restore) { /* an item to bring back on top (after a replay) */
        r->restore = false;
        for (size_t l = 0; l < r->n_lines; l++)
            if (r->lines[l].item >= r->restore_item) {
                r->top = (int)l;
                break;
            }
        int last = -1; /* the last line of show_item: in view too */
        for (size_t l = 0; l < r->n_lines && r->lines[l].item <= r->show_item; l++) last = (int)l;
        if (last >= r->top + r->height) r->top = last - r->height + 1;
    }
    int max = (int)r->n_lines - r->height;
    if (r->top > max) r->top = max;
    if (r->top < 0) r->top = 0;
}

static void draw_bottom(struct review *r, int y, int x, int w, int *cy, int *cx)
{
    struct replay_progress pr;
    if (r->searching) {
        int n = ui_text(y, x, w, ROLE_INPUT_PROMPT, "/");
        n += ui_text(y, x + n, w - n, ROLE_INPUT, r->typing);
        *cy = y;
        *cx = x + n;
        return;
    }
    if (r->job && (replay_job_progress(r->job, &pr), pr.running)) {
        char buf[ANC_ERR_LEN + 96];
        snprintf(buf, sizeof buf, "replay %d/%d: %s \u00b7 %lld/%lld tokens \u00b7 Esc cancels",
                 pr.pass ? pr.pass : 1, pr.n_passes ? pr.n_passes : 1, pr.msg,
                 (long long)pr.done, (long long)pr.total);
        int n = ui_text(y, x, w, ROLE_WARNING, buf);
        (void)n;
        return;
    }
    if (r->note[0]) {
        ui_text(y, x, w, ROLE_MESSAGE, r->note);
        return;
    }
    ui_text(y, x, w, ROLE_PANEL_DIM,
            w >= 90 ? "\u2191\u2193 PgUp PgDn Home End scroll \u00b7 / search \u00b7 n N matches \u00b7 "
                      "p replay under the settings now \u00b7 r resume \u00b7 q back"
                    : "/ search \u00b7 n N \u00b7 p replay \u00b7 r resume \u00b7 q back");
}

void review_draw(struct review *r, struct rect box, int *cy, int *cx)
{
    ui_fill_rect(box, ROLE_NORMAL);
    char title[256];
    snprintf(title, sizeof title, "Session %lld \u00b7 %s", (long long)r->s.id,
             r->s.title && *r->s.title ? r->s.title : "(untitled)");
    struct rect in = ui_box(box, title, ROLE_PANEL_BORDER, ROLE_PANEL_TITLE);
    *cy = -1;
    if (in.h < 3 || in.w < 10) return;
    struct rect t = {in.y, in.x + 1, in.h - 1, in.w - 2};
    if (r->wrap_w != t.w - 2) {
        wrap_all(r, t.w - 2);
        if (r->hit_shown && r->n_hits) show_hit(r);
    }
    r->height = t.h;
    clamp_top(r);
    for (int i = 0; i < t.h && r->top + i < (int)r->n_lines; i++)
        draw_line(r, t.y + i, t.x, t.w, &r->lines[r->top + i]);
    char pos[64];
    snprintf(pos, sizeof pos, "%d-%d of %zu", r->n_lines ? r->top + 1 : 0,
             r->top + t.h < (int)r->n_lines ? r->top + t.h : (int)r->n_lines, r->n_lines);
    ui_box_footer(box, pos, ROLE_PANEL_DIM);
    draw_bottom(r, in.y + in.h - 1, t.x, t.w, cy, cx);
}
