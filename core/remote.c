/* remote.c — the remote conversation engine (ancora.h's
 * anc_conv_open_remote): an OpenAI-compatible server (llama-server, vLLM,
 * ollama) answers each turn through POST /v1/chat/completions with
 * "stream": true; the reply arrives as server-sent events. While a reply
 * streams, a poller thread reads what the server publishes about itself
 * (llama-server's /slots and /metrics, vLLM's Prometheus /metrics,
 * ollama's /api/ps) about once a second, for the stats snapshot.
 * HTTP, TLS and proxies are libcurl's; JSON is jansson's. The parsers
 * (remote.h) take bytes only, so tests run fixtures through them.
 *
 * The API key goes only into the Authorization header: it is never in an
 * error, the stats, the info or anything stored. Redirects are not
 * followed (the key would go with them). Every request is bounded in
 * time (connect and idle timeouts), and the poller runs only while a
 * reply streams (plus one poll when the engine opens and after a reply).
 * Engine-internal: no curses, readline or sqlite. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "conversation.h"
#include "remote.h"

#define REMOTE_CONNECT_TIMEOUT 10.0 /* seconds, when the caller gives none */
#define REMOTE_IDLE_TIMEOUT 120.0   /* seconds without a byte */
#define REMOTE_POLL_INTERVAL 1.0    /* seconds between polls while streaming */
#define REMOTE_POLL_TIMEOUT 2.0     /* one poll request, at most */
#define REMOTE_POLL_AFTER 2.0       /* seconds of polling after a reply ends (the
                                       server settles its slot a moment later) */
#define REMOTE_BODY_MAX (8u << 20)  /* a non-streamed answer's largest size */
#define REMOTE_ERR_BODY_MAX 8192    /* what is kept of an error's body */
#define REMOTE_MAX_MODELS 256

/* ======================================================================
 * Parsers (remote.h)
 * ====================================================================== */

static bool grow_buf(char **p, size_t *cap, size_t need)
{
    if (need <= *cap) return true;
    size_t n = *cap ? *cap : 256;
    while (n < need) n *= 2;
    char *q = realloc(*p, n);
    if (!q) return false;
    *p = q;
    *cap = n;
    return true;
}

/* One complete line of an event stream. */
static int sse_line(struct remote_sse *s, remote_sse_fn fn, void *ctx)
{
    const char *l = s->line ? s->line : "";
    size_t n = s->line_len;
    if (n == 0) { /* blank line: dispatch */
        int rc = 0;
        if (s->have_data) {
            if (!grow_buf(&s->data, &s->data_cap, s->data_len + 1)) return -1;
            s->data[s->data_len] = '\0';
            if (!fn(ctx, s->data, s->data_len)) rc = 1;
        }
        s->data_len = 0;
        s->have_data = false;
        return rc;
    }
    if (l[0] == ':') return 0; /* a comment (keep-alives) */
    const char *colon = memchr(l, ':', n);
    size_t name_len = colon ? (size_t)(colon - l) : n;
    if (name_len != 4 || memcmp(l, "data", 4) != 0) return 0; /* event, id, retry */
    const char *v = colon ? colon + 1 : l + n;
    size_t vn = (size_t)(l + n - v);
    if (vn > 0 && v[0] == ' ') v++, vn--;
    size_t need = s->data_len + (s->have_data ? 1 : 0) + vn + 1;
    if (need > REMOTE_SSE_MAX) return -1;
    if (!grow_buf(&s->data, &s->data_cap, need)) return -1;
    if (s->have_data) s->data[s->data_len++] = '\n';
    memcpy(s->data + s->data_len, v, vn);
    s->data_len += vn;
    s->have_data = true;
    return 0;
}

int remote_sse_feed(struct remote_sse *s, const char *p, size_t n, remote_sse_fn fn, void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\n' && s->skip_lf) {
            s->skip_lf = false;
            continue;
        }
        s->skip_lf = false;
        if (ch == '\n' || ch == '\r') {
            s->skip_lf = ch == '\r';
            int rc = sse_line(s, fn, ctx);
            s->line_len = 0;
            if (rc != 0) return rc;
            continue;
        }
        if (s->line_len + 2 > REMOTE_SSE_MAX) return -1;
        if (!grow_buf(&s->line, &s->line_cap, s->line_len + 2)) return -1;
        s->line[s->line_len++] = ch;
    }
    return 0;
}

void remote_sse_free(struct remote_sse *s)
{
    free(s->line);
    free(s->data);
    memset(s, 0, sizeof *s);
}

static double num_of(const json_t *v, double dflt)
{
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* Printable, one line: control characters become spaces, blanks at the
 * ends go; cut at cap-1 bytes without splitting a UTF-8 sequence. */
static void one_line(const char *s, size_t n, char *buf, size_t cap)
{
    if (cap == 0) return;
    while (n > 0 && isspace((unsigned char)*s)) s++, n--;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[k++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    if (k < n) { /* cut: drop a last character whose bytes did not all fit */
        size_t start = k;
        while (start > 0 && ((unsigned char)buf[start - 1] & 0xC0) == 0x80) start--;
        if (start > 0) {
            unsigned char lead = (unsigned char)buf[start - 1];
            size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (k - (start - 1) < want) k = start - 1;
        }
    }
    while (k > 0 && buf[k - 1] == ' ') k--;
    buf[k] = '\0';
}

static void json_error_text(const json_t *root, char *buf, size_t cap)
{
    buf[0] = '\0';
    const json_t *e = json_object_get(root, "error");
    const json_t *msg = NULL;
    if (json_is_object(e)) msg = json_object_get(e, "message");
    else if (json_is_string(e)) msg = e;
    if (!json_is_string(msg)) msg = json_object_get(root, "message");
    if (!json_is_string(msg)) msg = json_object_get(root, "detail");
    if (json_is_string(msg)) {
        one_line(json_string_value(msg), json_string_length(msg), buf, cap);
    } else if (json_is_object(e) || json_is_array(json_object_get(root, "detail"))) {
        char *d = json_dumps(json_is_object(e) ? e : json_object_get(root, "detail"), JSON_COMPACT);
        if (d) one_line(d, strlen(d), buf, cap);
        free(d);
    }
}

void remote_error_message(const char *body, size_t len, char *buf, size_t cap)
{
    if (cap == 0) return;
    buf[0] = '\0';
    if (!body || len == 0) return;
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (json_is_object(root)) json_error_text(root, buf, cap);
    json_decref(root);
    if (buf[0]) return;
    /* not JSON (a proxy's page, plain text): its first non-blank line */
    while (len > 0 && isspace((unsigned char)*body)) body++, len--;
    const char *nl = memchr(body, '\n', len);
    one_line(body, nl ? (size_t)(nl - body) : len, buf, cap);
}

void remote_chunk_clear(struct remote_chunk *c)
{
    free(c->content);
    memset(c, 0, sizeof *c);
}

int remote_parse_chunk(const char *data, size_t len, struct remote_chunk *out)
{
    memset(out, 0, sizeof *out);
    while (len > 0 && isspace((unsigned char)*data)) data++, len--;
    while (len > 0 && isspace((unsigned char)data[len - 1])) len--;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        out->done = true;
        return 0;
    }
    json_error_t je;
    json_t *root = json_loadb(data, len, 0, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(out->error, sizeof out->error, "the server sent an event that is not a JSON "
                 "object (%s)", root ? "another JSON value" : je.text);
        return -1;
    }
    if (json_object_get(root, "error")) {
        json_error_text(root, out->error, sizeof out->error);
        if (!out->error[0]) snprintf(out->error, sizeof out->error, "the server reported an error");
    }
    const json_t *choices = json_object_get(root, "choices");
    const json_t *ch = json_is_array(choices) ? json_array_get(choices, 0) : NULL;
    if (json_is_object(ch)) {
        const json_t *delta = json_object_get(ch, "delta");
        const json_t *content = json_is_object(delta) ? json_object_get(delta, "content") : NULL;
        if (!content) content = json_object_get(ch, "text"); /* completions style */
        if (json_is_string(content) && json_string_length(content) > 0) {
            size_t n = json_string_length(content);
            out->content = malloc(n + 1);
            if (out->content) {
                memcpy(out->content, json_string_value(content), n);
                out->content[n] = '\0';
                out->content_len = n;
            }
        }
        const json_t *fr = json_object_get(ch, "finish_reason");
        if (json_is_string(fr))
            snprintf(out->finish, sizeof out->finish, "%s", json_string_value(fr));
    }
    const json_t *usage = json_object_get(root, "usage");
    if (json_is_object(usage)) {
        out->have_usage = true;
        out->prompt_tokens = (int64_t)num_of(json_object_get(usage, "prompt_tokens"), -1);
        out->completion_tokens = (int64_t)num_of(json_object_get(usage, "completion_tokens"), -1);
    }
    const json_t *t = json_object_get(root, "timings");
    if (json_is_object(t)) {
        out->have_timings = true;
        out->prompt_n = (int64_t)num_of(json_object_get(t, "prompt_n"), -1);
        out->predicted_n = (int64_t)num_of(json_object_get(t, "predicted_n"), -1);
        out->prompt_ms = num_of(json_object_get(t, "prompt_ms"), -1);
        out->predicted_ms = num_of(json_object_get(t, "predicted_ms"), -1);
        out->prompt_per_second = num_of(json_object_get(t, "prompt_per_second"), -1);
        out->predicted_per_second = num_of(json_object_get(t, "predicted_per_second"), -1);
    }
    json_decref(root);
    return 0;
}

/* The value of label `name` in a "{a="x",b="y"}" label set (escapes \\ \"
 * \n undone), into buf; false when absent. */
static bool prom_label(const char *labels, size_t n, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name), i = 0;
    while (i < n) {
        while (i < n && (labels[i] == ' ' || labels[i] == ',')) i++;
        size_t k0 = i;
        while (i < n && labels[i] != '=' && labels[i] != ' ') i++;
        size_t klen = i - k0;
        while (i < n && labels[i] == ' ') i++;
        if (i >= n || labels[i] != '=') return false;
        i++;
        while (i < n && labels[i] == ' ') i++;
        if (i >= n || labels[i] != '"') return false;
        i++;
        size_t o = 0;
        bool match = klen == nl && memcmp(labels + k0, name, nl) == 0;
        while (i < n && labels[i] != '"') {
            char ch = labels[i];
            if (ch == '\\' && i + 1 < n) ch = labels[++i] == 'n' ? '\n' : labels[i];
            if (match && o + 1 < cap) buf[o++] = ch;
            i++;
        }
        if (i >= n) return false;
        i++; /* closing quote */
        if (match) {
            if (cap) buf[o] = '\0';
            return true;
        }
    }
    return false;
}

void remote_parse_metrics(const char *text, size_t len, const char *model,
                          struct remote_metrics *out)
{
    memset(out, 0, sizeof *out);
    out->prompt_total = out->gen_total = -1;
    out->prompt_tok_s = out->gen_tok_s = -1;
    /* first pass: does any sample name our model? */
    bool model_named = false;
    for (int pass = 0; pass < 2; pass++) {
        double running = 0, waiting = 0, kv = 0, pt = 0, gt = 0;
        bool have_run = false, have_wait = false, have_kv = false, have_pt = false, have_gt = false;
        const char *p = text, *end = text + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *le = nl ? nl : end;
            const char *l = p;
            p = nl ? nl + 1 : end;
            while (l < le && (*l == ' ' || *l == '\t')) l++;
            if (l >= le || *l == '#') continue;
            const char *ne = l;
            while (ne < le && (isalnum((unsigned char)*ne) || *ne == '_' || *ne == ':')) ne++;
            size_t name_len = (size_t)(ne - l);
            if (name_len == 0 || name_len > 80) continue;
            char name[96];
            memcpy(name, l, name_len);
            name[name_len] = '\0';
            const char *labels = NULL;
            size_t labels_len = 0;
            const char *v = ne;
            if (v < le && *v == '{') {
                const char *close = memchr(v, '}', (size_t)(le - v));
                if (!close) continue;
                labels = v + 1;
                labels_len = (size_t)(close - labels);
                v = close + 1;
            }
            while (v < le && (*v == ' ' || *v == '\t')) v++;
            char num[64];
            size_t vl = 0;
            while (v + vl < le && v[vl] != ' ' && v[vl] != '\t' && v[vl] != '\r') vl++;
            if (vl == 0 || vl >= sizeof num) continue;
            memcpy(num, v, vl);
            num[vl] = '\0';
            char *e;
            errno = 0;
            double x = strtod(num, &e);
            if (*e || errno || !isfinite(x)) continue;
            char mn[256];
            bool has_mn = labels && prom_label(labels, labels_len, "model_name", mn, sizeof mn);
            if (pass == 0) {
                if (has_mn && model && strcmp(mn, model) == 0) model_named = true;
                if (strncmp(name, "vllm:", 5) == 0) out->vllm = true;
                if (strncmp(name, "llamacpp:", 9) == 0) out->llamacpp = true;
                continue;
            }
            if (model && model_named && has_mn && strcmp(mn, model) != 0) continue;
            if (!strcmp(name, "vllm:num_requests_running") || !strcmp(name, "llamacpp:requests_processing"))
                running += x, have_run = true;
            else if (!strcmp(name, "vllm:num_requests_waiting") || !strcmp(name, "llamacpp:requests_deferred"))
                waiting += x, have_wait = true;
            else if (!strcmp(name, "vllm:kv_cache_usage_perc") || !strcmp(name, "vllm:gpu_cache_usage_perc") ||
                     !strcmp(name, "llamacpp:kv_cache_usage_ratio")) {
                if (!have_kv || x > kv) kv = x; /* one per engine: the fullest */
                have_kv = true;
            } else if (!strcmp(name, "vllm:prompt_tokens_total") || !strcmp(name, "llamacpp:prompt_tokens_total"))
                pt += x, have_pt = true;
            else if (!strcmp(name, "vllm:generation_tokens_total") || !strcmp(name, "llamacpp:tokens_predicted_total"))
                gt += x, have_gt = true;
            else if (!strcmp(name, "llamacpp:prompt_tokens_seconds"))
                out->prompt_tok_s = x;
            else if (!strcmp(name, "llamacpp:predicted_tokens_seconds"))
                out->gen_tok_s = x;
            else if (!strcmp(name, "vllm:cache_config_info") && labels) {
                char b[64], s[64];
                if (prom_label(labels, labels_len, "num_gpu_blocks", b, sizeof b) &&
                    prom_label(labels, labels_len, "block_size", s, sizeof s)) {
                    long long nb = strtoll(b, NULL, 10), bs = strtoll(s, NULL, 10);
                    if (nb > 0 && bs > 0 && nb < (1LL << 40) && bs < (1 << 20)) out->kv_tokens = nb * bs;
                }
            }
        }
        if (pass == 1) {
            out->have_requests = have_run || have_wait;
            out->running = running;
            out->waiting = waiting;
            out->have_kv_usage = have_kv;
            out->kv_usage = kv < 0 ? 0 : kv > 1 ? 1 : kv;
            if (have_pt) out->prompt_total = pt;
            if (have_gt) out->gen_total = gt;
        }
    }
}

int remote_parse_slots(const char *text, size_t len, struct remote_slot *out, int cap)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!json_is_array(root)) {
        json_decref(root);
        return -1;
    }
    int n = 0;
    size_t total = json_array_size(root);
    for (size_t i = 0; i < total; i++) {
        const json_t *s = json_array_get(root, i);
        if (!json_is_object(s)) {
            json_decref(root);
            return -1;
        }
        if (n >= cap) continue;
        struct remote_slot *o = &out[n++];
        memset(o, 0, sizeof *o);
        o->id = (int32_t)num_of(json_object_get(s, "id"), (double)i);
        o->n_ctx = (int32_t)num_of(json_object_get(s, "n_ctx"), 0);
        o->processing = json_is_true(json_object_get(s, "is_processing"));
        o->n_prompt = (int64_t)num_of(json_object_get(s, "n_prompt_tokens"), 0);
        const json_t *nt = json_object_get(s, "next_token");
        if (json_is_array(nt)) nt = json_array_get(nt, 0);
        o->n_decoded = json_is_object(nt) ? (int64_t)num_of(json_object_get(nt, "n_decoded"), 0) : 0;
        const json_t *params = json_object_get(s, "params");
        o->n_keep = json_is_object(params) ? (int32_t)num_of(json_object_get(params, "n_keep"), -1) : -1;
        if (o->n_prompt < 0) o->n_prompt = 0;
        if (o->n_decoded < 0) o->n_decoded = 0;
    }
    json_decref(root);
    return (int)(total > (size_t)cap ? (size_t)cap : total);
}

/* ======================================================================
 * HTTP (libcurl)
 * ====================================================================== */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

enum remote_engine { ENG_SERVER, ENG_LLAMA, ENG_VLLM, ENG_OLLAMA };
static const char *const engine_names[] = {"server", "llama-server", "vllm", "ollama"};

struct conv_remote {
    struct anc_conv base;
    char *url;               /* base URL, no trailing '/' or '/v1' */
    char *shown;             /* the same without user:password@ (errors, stats) */
    char *auth;              /* "Authorization: Bearer ..." or NULL */
    char *model;             /* the model id in use */
    enum remote_engine engine;
    double connect_timeout, timeout;
    int64_t model_ctx, model_ctx_train; /* from /v1/models (0: not given) */
    int64_t model_bytes, model_params;

    pthread_mutex_t mu;      /* everything below */
    struct anc_sampling sampling;
    int32_t n_keep;          /* llama-server n_keep (/set sinks); -1: the server's */
    struct anc_stats st;     /* the remote part, as last polled and measured */
    double polled_at;        /* anc_now() of the last answered poll (0: none) */
    int64_t conv_tokens;     /* prompt + reply tokens of the last reply */
    bool no_slots, no_metrics; /* the server said these are off (no retry) */

    /* the poller */
    pthread_t poller;
    bool poller_started;
    pthread_cond_t cv;
    bool streaming;          /* a reply streams: poll every REMOTE_POLL_INTERVAL */
    double poll_until;       /* ... and until then after it ended */
    bool poll_once;          /* poll now, once */
    bool stop;
};

struct http_buf {
    char *p;
    size_t len, cap, limit;
    bool over;
};

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct http_buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->limit) {
        b->over = true;
        return 0;
    }
    if (!grow_buf(&b->p, &b->cap, b->len + n + 1)) return 0;
    memcpy(b->p + b->len, ptr, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

/* A handle with what every request shares: no redirects, http(s) only,
 * no signals (threads), the connect timeout, the key's header. */
static CURL *easy_new(const struct conv_remote *r, struct curl_slist **hdrs, bool json_body)
{
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(r->connect_timeout * 1000));
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ancora");
    *hdrs = NULL;
    if (r->auth) *hdrs = curl_slist_append(*hdrs, r->auth);
    if (json_body) *hdrs = curl_slist_append(*hdrs, "Content-Type: application/json");
    *hdrs = curl_slist_append(*hdrs, "Accept: application/json, text/event-stream");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
    return h;
}

/* One line for a transfer that failed below HTTP. */
static void curl_failure(const struct conv_remote *r, CURLcode rc, const char *errbuf,
                         double timeout, char *err, size_t errlen)
{
    const char *detail = errbuf && errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        snprintf(err, errlen, "cannot connect to %s: %s (is the server running?)", r->shown, detail);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(err, errlen, "cannot find the server %s: %s", r->shown, detail);
        break;
    case CURLE_COULDNT_RESOLVE_PROXY:
        snprintf(err, errlen, "cannot find the proxy for %s: %s", r->shown, detail);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(err, errlen, "%s did not answer within %g s (--timeout): %s", r->shown, timeout, detail);
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        snprintf(err, errlen, "TLS failed with %s: %s", r->shown, detail);
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
        snprintf(err, errlen, "%s: %s (http:// and https:// only)", r->shown, detail);
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        snprintf(err, errlen, "the connection to %s was lost: %s", r->shown, detail);
        break;
    default:
        snprintf(err, errlen, "%s: %s", r->shown, detail);
        break;
    }
}

static const char *status_hint(long status)
{
    switch (status) {
    case 401:
    case 403: return " (check --api-key or $ANCORA_API_KEY)";
    case 404: return " (check the URL and --model)";
    case 429: return " (too many requests: wait, then try again)";
    case 503: return " (the server is not ready: still loading, or overloaded)";
    default: return status >= 500 ? " (the server failed)" : "";
    }
}

/* "the server answered 401: <its message> (hint)" */
static void http_failure(const struct conv_remote *r, const char *what, long status,
                         const char *body, size_t len, char *err, size_t errlen)
{
    char msg[300];
    remote_error_message(body, len, msg, sizeof msg);
    snprintf(err, errlen, "%s%s%s answered %ld%s%s%s", what, what[0] ? ": " : "", r->shown, status,
             msg[0] ? ": " : "", msg, status_hint(status));
}

/* GET base+path into *out (limit bytes); total time bounded by timeout.
 * Returns the HTTP status, or -1 with err for a transfer failure. */
static long http_get(const struct conv_remote *r, const char *path, double timeout,
                     struct http_buf *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->limit = REMOTE_BODY_MAX;
    struct curl_slist *hdrs = NULL;
    CURL *h = easy_new(r, &hdrs, false);
    if (!h) {
        snprintf(err, errlen, "cannot start an HTTP request (libcurl)");
        return -1;
    }
    size_t ul = strlen(r->url) + strlen(path) + 1;
    char *url = malloc(ul);
    if (!url) {
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(url, ul, "%s%s", r->url, path);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    CURLcode rc = curl_easy_perform(h);
    long status = -1;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    } else if (out->over) {
        snprintf(err, errlen, "%s%s: the answer is larger than %u MiB", r->shown, path,
                 REMOTE_BODY_MAX >> 20);
    } else {
        curl_failure(r, rc, errbuf, timeout < r->timeout ? timeout : r->timeout, err, errlen);
    }
    free(url);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return status;
}

/* ======================================================================
 * Polling what the server publishes
 * ====================================================================== */

/* The slot serving this conversation: the one processing (if one is), else
 * the one seen last, else the one holding the most tokens. */
static void apply_slots(struct conv_remote *r, const struct remote_slot *sl, int n)
{
    int pick = -1, n_busy = 0;
    for (int i = 0; i < n; i++)
        if (sl[i].processing) n_busy++, pick = pick < 0 ? i : pick;
    if (n_busy > 1 || pick < 0) {
        int by_id = -1, most = -1;
        for (int i = 0; i < n; i++) {
            if (r->st.have_slot && sl[i].id == r->st.slot_id && (n_busy == 0 || sl[i].processing)) by_id = i;
            if (most < 0 || sl[i].n_prompt + sl[i].n_decoded > sl[most].n_prompt + sl[most].n_decoded) most = i;
        }
        pick = by_id >= 0 ? by_id : pick >= 0 ? pick : most;
    }
    r->st.n_slots = n;
    if (pick < 0) return;
    const struct remote_slot *s = &sl[pick];
    r->st.have_slot = true;
    r->st.slot_id = s->id;
    r->st.slot_ctx = s->n_ctx;
    r->st.slot_busy = s->processing;
    r->st.slot_tokens = s->n_prompt + s->n_decoded;
    if (r->st.slot_tokens > s->n_ctx && s->n_ctx > 0) r->st.slot_tokens = s->n_ctx;
    if (s->n_keep >= 0) r->st.n_keep = s->n_keep;
}

/* llama.cpp and vLLM answer 501 / 404 for an endpoint turned off. */
static void poll_server(struct conv_remote *r)
{
    char err[ANC_ERR_LEN] = "";
    struct http_buf b;
    long status;
    double t = REMOTE_POLL_TIMEOUT < r->timeout ? REMOTE_POLL_TIMEOUT : r->timeout;
    bool answered = false;
    char note[160] = "";
    if (r->engine == ENG_LLAMA && !r->no_slots) {
        status = http_get(r, "/slots", t, &b, err, sizeof err);
        if (status == 200) {
            struct remote_slot sl[64];
            int n = remote_parse_slots(b.p ? b.p : "", b.len, sl, 64);
            pthread_mutex_lock(&r->mu);
            if (n > 0) apply_slots(r, sl, n);
            pthread_mutex_unlock(&r->mu);
            answered = true;
        } else if (status == 501 || status == 404) {
            r->no_slots = true;
            snprintf(note, sizeof note, "/slots is off (llama-server --slots)");
        } else if (status < 0) {
            snprintf(note, sizeof note, "%.150s", err);
        }
        free(b.p);
    }
    if ((r->engine == ENG_LLAMA || r->engine == ENG_VLLM) && !r->no_metrics) {
        status = http_get(r, "/metrics", t, &b, err, sizeof err);
        if (status == 200) {
            struct remote_metrics m;
            remote_parse_metrics(b.p ? b.p : "", b.len, r->model, &m);
            pthread_mutex_lock(&r->mu);
            r->st.have_kv_usage = m.have_kv_usage;
            r->st.kv_usage = m.kv_usage;
            r->st.have_requests = m.have_requests;
            r->st.req_running = m.running;
            r->st.req_waiting = m.waiting;
            r->st.server_prompt_total = (int64_t)m.prompt_total;
            r->st.server_gen_total = (int64_t)m.gen_total;
            if (m.kv_tokens > 0) r->st.server_kv_tokens = m.kv_tokens;
            pthread_mutex_unlock(&r->mu);
            answered = true;
        } else if (status == 501 || status == 404) {
            r->no_metrics = true;
            if (!note[0])
                snprintf(note, sizeof note, r->engine == ENG_LLAMA ? "/metrics is off (llama-server --metrics)"
                                                                   : "/metrics is not published");
        } else if (status < 0 && !note[0]) {
            snprintf(note, sizeof note, "%.150s", err);
        }
        free(b.p);
    }
    if (r->engine == ENG_OLLAMA) {
        status = http_get(r, "/api/ps", t, &b, err, sizeof err);
        if (status == 200) {
            json_error_t je;
            json_t *root = json_loadb(b.p ? b.p : "", b.len, 0, &je);
            const json_t *models = json_object_get(root, "models");
            pthread_mutex_lock(&r->mu);
            for (size_t i = 0; json_is_array(models) && i < json_array_size(models); i++) {
                const json_t *m = json_array_get(models, i);
                const json_t *nm = json_object_get(m, "name");
                const json_t *md = json_object_get(m, "model");
                bool ours = (json_is_string(nm) && strcmp(json_string_value(nm), r->model) == 0) ||
                            (json_is_string(md) && strcmp(json_string_value(md), r->model) == 0);
                if (!ours) continue;
                r->st.server_model_bytes = (uint64_t)num_of(json_object_get(m, "size"), 0);
                r->st.server_vram_bytes = (uint64_t)num_of(json_object_get(m, "size_vram"), 0);
                int64_t cl = (int64_t)num_of(json_object_get(m, "context_length"), 0);
                if (cl > 0) r->st.server_ctx = cl;
            }
            pthread_mutex_unlock(&r->mu);
            json_decref(root);
            answered = true;
        } else if (status < 0) {
            snprintf(note, sizeof note, "%.150s", err);
        }
        free(b.p);
    }
    pthread_mutex_lock(&r->mu);
    if (answered) r->polled_at = anc_now();
    snprintf(r->st.poll_note, sizeof r->st.poll_note, "%s", note);
    pthread_mutex_unlock(&r->mu);
}

static void *poller_main(void *arg)
{
    struct conv_remote *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        bool active = r->streaming || anc_now() < r->poll_until;
        if (!active && !r->poll_once) {
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        r->poll_once = false;
        pthread_mutex_unlock(&r->mu);
        double t0 = anc_now();
        poll_server(r);
        pthread_mutex_lock(&r->mu);
        /* while streaming (and a moment after): the next poll
           REMOTE_POLL_INTERVAL after this one began */
        while ((r->streaming || anc_now() < r->poll_until) && !r->stop && !r->poll_once) {
            double left = t0 + REMOTE_POLL_INTERVAL - anc_now();
            if (left <= 0) break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double s = (double)ts.tv_sec + ts.tv_nsec * 1e-9 + left;
            ts.tv_sec = (time_t)s;
            ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void poll_request(struct conv_remote *r, int streaming)
{
    pthread_mutex_lock(&r->mu);
    if (streaming >= 0) r->streaming = streaming != 0;
    if (streaming == 0) r->poll_until = anc_now() + REMOTE_POLL_AFTER;
    r->poll_once = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* ======================================================================
 * A reply
 * ====================================================================== */

/* Valid UTF-8 for JSON (jansson refuses anything else): each bad byte
 * becomes U+FFFD. malloc'ed. */
static char *utf8_clean(const char *s, size_t n, size_t *out_len)
{
    char *o = malloc(n * 3 + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        bool ok = len > 0 && i + len <= n && c != 0;
        for (size_t j = 1; ok && j < len; j++) ok = ((unsigned char)s[i + j] & 0xC0) == 0x80;
        if (ok && len == 2 && c < 0xC2) ok = false;
        if (ok && len == 3) {
            unsigned cp = ((c & 0x0Fu) << 12) | (((unsigned char)s[i + 1] & 0x3Fu) << 6) | ((unsigned char)s[i + 2] & 0x3Fu);
            ok = cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (ok && len == 4) {
            unsigned cp = ((c & 0x07u) << 18) | (((unsigned char)s[i + 1] & 0x3Fu) << 12);
            ok = cp >= 0x10000 && cp <= 0x10FFFF;
        }
        if (ok) {
            memcpy(o + k, s + i, len);
            k += len;
            i += len;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    o[k] = '\0';
    *out_len = k;
    return o;
}

/* The request body: the conversation and the settings this engine takes. */
static char *request_body(struct conv_remote *r, const struct anc_chat_msg *msgs, size_t n,
                          int32_t max_tokens)
{
    pthread_mutex_lock(&r->mu);
    struct anc_sampling smp = r->sampling;
    int32_t n_keep = r->n_keep;
    pthread_mutex_unlock(&r->mu);
    json_t *root = json_object(), *arr = json_array();
    if (!root || !arr) {
        json_decref(root);
        json_decref(arr);
        return NULL;
    }
    json_object_set_new(root, "model", json_string(r->model));
    for (size_t i = 0; i < n; i++) {
        size_t cl;
        char *clean = utf8_clean(msgs[i].content ? msgs[i].content : "", msgs[i].content ? msgs[i].len : 0, &cl);
        json_t *m = json_object();
        if (!clean || !m) {
            free(clean);
            json_decref(m);
            json_decref(arr);
            json_decref(root);
            return NULL;
        }
        json_object_set_new(m, "role", json_string(msgs[i].role));
        json_object_set_new(m, "content", json_stringn(clean, cl));
        json_array_append_new(arr, m);
        free(clean);
    }
    json_object_set_new(root, "messages", arr);
    json_object_set_new(root, "stream", json_true());
    json_t *so = json_object();
    json_object_set_new(so, "include_usage", json_true());
    json_object_set_new(root, "stream_options", so);
    json_object_set_new(root, "temperature", json_real(smp.temp));
    if (smp.top_p < 1) json_object_set_new(root, "top_p", json_real(smp.top_p));
    json_object_set_new(root, "seed", json_integer((json_int_t)(smp.seed & 0x7fffffffffffffffULL)));
    if (max_tokens > 0) json_object_set_new(root, "max_tokens", json_integer(max_tokens));
    if (r->engine == ENG_LLAMA || r->engine == ENG_VLLM) {
        /* extensions both take (0 turns top-k off in llama.cpp; vLLM wants -1) */
        json_object_set_new(root, "top_k", json_integer(smp.top_k > 0 ? smp.top_k : r->engine == ENG_VLLM ? -1 : 0));
        json_object_set_new(root, "min_p", json_real(smp.min_p));
        json_object_set_new(root, r->engine == ENG_VLLM ? "repetition_penalty" : "repeat_penalty",
                            json_real(smp.repeat_penalty));
        if (r->engine == ENG_LLAMA) {
            json_object_set_new(root, "repeat_last_n", json_integer(smp.repeat_last_n));
            if (n_keep >= 0) json_object_set_new(root, "n_keep", json_integer(n_keep));
        }
    }
    char *body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return body;
}

struct stream {
    struct conv_remote *r;
    CURL *h;
    const struct anc_reply_events *ev;
    struct remote_sse sse;
    long status;             /* 0 until the headers are read */
    struct http_buf errbody; /* the body of an HTTP error */
    bool started, done, failed;
    char finish[24];
    char err[ANC_ERR_LEN];   /* an error the server streamed, or a parse failure */
    size_t text_len;
    int64_t n_chunks;
    bool have_usage, have_timings;
    int64_t prompt_tokens, completion_tokens;
    struct remote_chunk timings; /* the last chunk with timings */
    double t0, t_first, t_last;
};

static bool on_event(void *ctx, const char *data, size_t len)
{
    struct stream *s = ctx;
    struct remote_chunk ch;
    if (remote_parse_chunk(data, len, &ch) != 0) {
        snprintf(s->err, sizeof s->err, "%s", ch.error);
        s->failed = true;
        remote_chunk_clear(&ch);
        return false;
    }
    if (ch.done) {
        s->done = true;
        return false;
    }
    if (ch.error[0]) {
        snprintf(s->err, sizeof s->err, "the server stopped the reply: %s", ch.error);
        s->failed = true;
        remote_chunk_clear(&ch);
        return false;
    }
    double now = anc_now();
    if (ch.content && ch.content_len) {
        const char *p = ch.content;
        size_t k = ch.content_len;
        if (s->text_len == 0) /* a reply starts at its first visible character */
            while (k > 0 && (*p == ' ' || *p == '\n')) p++, k--;
        if (k > 0) {
            if (!s->started) {
                s->started = true;
                s->t_first = now;
                if (s->ev && s->ev->on_start) s->ev->on_start(s->ev->ctx, -1);
            }
            s->n_chunks++;
            pthread_mutex_lock(&s->r->mu);
            struct anc_stats *st = &s->r->st;
            if (s->t_last > 0) { /* the gaps between pieces: the latency history */
                if (st->n_latency == ANC_STATS_LATENCY) {
                    memmove(st->latency_ms, st->latency_ms + 1, (ANC_STATS_LATENCY - 1) * sizeof st->latency_ms[0]);
                    st->n_latency--;
                }
                st->latency_ms[st->n_latency++] = (float)((now - s->t_last) * 1e3);
            }
            pthread_mutex_unlock(&s->r->mu);
            s->t_last = now;
            s->text_len += k;
            if (s->ev && s->ev->on_piece) s->ev->on_piece(s->ev->ctx, p, k);
        }
    }
    if (ch.finish[0]) snprintf(s->finish, sizeof s->finish, "%s", ch.finish);
    if (ch.have_usage) {
        s->have_usage = true;
        s->prompt_tokens = ch.prompt_tokens;
        s->completion_tokens = ch.completion_tokens;
    }
    if (ch.have_timings) {
        s->have_timings = true;
        free(s->timings.content);
        s->timings = ch;
        s->timings.content = NULL;
        ch.content = NULL;
    }
    remote_chunk_clear(&ch);
    return true;
}

static size_t stream_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct stream *s = ud;
    size_t n = size * nmemb;
    if (atomic_load(&s->r->base.cancel)) return 0;
    if (s->status == 0) curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status >= 300) { /* keep the start of an error's body */
        size_t room = REMOTE_ERR_BODY_MAX > s->errbody.len ? REMOTE_ERR_BODY_MAX - s->errbody.len : 0;
        size_t k = n < room ? n : room;
        if (k && grow_buf(&s->errbody.p, &s->errbody.cap, s->errbody.len + k + 1)) {
            memcpy(s->errbody.p + s->errbody.len, ptr, k);
            s->errbody.len += k;
            s->errbody.p[s->errbody.len] = '\0';
        }
        return n;
    }
    if (s->done || s->failed) return n; /* after [DONE]: drain */
    int rc = remote_sse_feed(&s->sse, ptr, n, on_event, s);
    if (rc < 0) {
        snprintf(s->err, sizeof s->err, "the server sent an event longer than %u MiB",
                 REMOTE_SSE_MAX >> 20);
        s->failed = true;
        return 0;
    }
    return n;
}

static int stream_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const struct stream *s = ud;
    return atomic_load(&s->r->base.cancel) ? 1 : 0;
}

static int remote_reply(struct anc_conv *cv, const struct anc_chat_msg *msgs, size_t n,
                        int32_t max_tokens, const struct anc_reply_events *ev,
                        struct anc_reply *out)
{
    struct conv_remote *r = (struct conv_remote *)cv;
    if (ev && ev->on_prompt) ev->on_prompt(ev->ctx, -1, -1);
    char *body = request_body(r, msgs, n, max_tokens);
    if (!body) {
        out->finish = ANC_FINISH_ERROR;
        snprintf(out->err, sizeof out->err, "out of memory building the request");
        return -1;
    }
    struct stream s;
    memset(&s, 0, sizeof s);
    s.r = r;
    s.ev = ev;
    struct curl_slist *hdrs = NULL;
    s.h = easy_new(r, &hdrs, true);
    size_t ul = strlen(r->url) + 32;
    char *url = malloc(ul);
    if (!s.h || !url) {
        free(url);
        free(body);
        curl_slist_free_all(hdrs);
        if (s.h) curl_easy_cleanup(s.h);
        out->finish = ANC_FINISH_ERROR;
        snprintf(out->err, sizeof out->err, "cannot start an HTTP request (libcurl)");
        return -1;
    }
    snprintf(url, ul, "%s/v1/chat/completions", r->url);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(s.h, CURLOPT_URL, url);
    curl_easy_setopt(s.h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(s.h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(s.h, CURLOPT_WRITEFUNCTION, stream_write);
    curl_easy_setopt(s.h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(s.h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(s.h, CURLOPT_XFERINFOFUNCTION, stream_progress);
    curl_easy_setopt(s.h, CURLOPT_XFERINFODATA, &s);
    /* a server that stops sending: under 1 byte/s for `timeout` seconds */
    curl_easy_setopt(s.h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(s.h, CURLOPT_LOW_SPEED_TIME, (long)(r->timeout < 1 ? 1 : r->timeout));
    s.t0 = anc_now();
    poll_request(r, 1);
    CURLcode rc = curl_easy_perform(s.h);
    double t_end = anc_now();
    poll_request(r, 0);
    if (s.status == 0) curl_easy_getinfo(s.h, CURLINFO_RESPONSE_CODE, &s.status);
    bool cancelled = atomic_load(&r->base.cancel);
    int ret = 0;
    out->finish = ANC_FINISH_STOP;
    if (cancelled) {
        out->finish = ANC_FINISH_CANCELLED;
    } else if (s.status >= 300 && (rc == CURLE_OK || rc == CURLE_WRITE_ERROR)) {
        http_failure(r, "", s.status, s.errbody.p, s.errbody.len, out->err, sizeof out->err);
        out->finish = ANC_FINISH_ERROR;
    } else if (s.failed) {
        snprintf(out->err, sizeof out->err, "%s", s.err);
        out->finish = ANC_FINISH_ERROR;
    } else if (rc != CURLE_OK) {
        static const char cut[] = "the reply was cut off (the text so far is kept): ";
        size_t k = 0;
        if (s.started) k = (size_t)snprintf(out->err, sizeof out->err, "%s", cut);
        curl_failure(r, rc, errbuf, r->timeout, out->err + k, sizeof out->err - k);
        out->finish = ANC_FINISH_ERROR;
    } else if (!s.done && !s.finish[0]) {
        snprintf(out->err, sizeof out->err, "%s closed the stream before the reply ended%s", r->shown,
                 s.started ? " (the text so far is kept)" : "");
        out->finish = ANC_FINISH_ERROR;
    } else if (strcmp(s.finish, "length") == 0) {
        out->finish = ANC_FINISH_LENGTH;
    }
    if (out->finish == ANC_FINISH_ERROR && !s.started) ret = -1;
    /* the figures: the server's usage and timings, else what was seen here */
    out->n_prompt = s.have_usage ? s.prompt_tokens : s.have_timings ? s.timings.prompt_n : -1;
    out->n_gen = s.have_usage ? s.completion_tokens : s.have_timings ? s.timings.predicted_n : s.n_chunks;
    if (s.have_timings && s.timings.prompt_ms >= 0) {
        out->prompt_ms = s.timings.prompt_ms;
        out->gen_ms = s.timings.predicted_ms;
    } else if (s.started) {
        out->prompt_ms = (s.t_first - s.t0) * 1e3; /* time to the first piece */
        out->gen_ms = (t_end - s.t_first) * 1e3;
    }
    pthread_mutex_lock(&r->mu);
    if (out->prompt_ms > 0 && out->n_prompt >= 0) r->st.prefill_tok_s = out->n_prompt / (out->prompt_ms / 1e3);
    if (out->gen_ms > 0 && out->n_gen > 0) r->st.decode_tok_s = out->n_gen / (out->gen_ms / 1e3);
    if (s.have_timings && s.timings.predicted_per_second > 0) r->st.decode_tok_s = s.timings.predicted_per_second;
    if (s.have_timings && s.timings.prompt_per_second > 0) r->st.prefill_tok_s = s.timings.prompt_per_second;
    if (out->n_prompt >= 0) r->conv_tokens = out->n_prompt + (out->n_gen > 0 ? out->n_gen : 0);
    pthread_mutex_unlock(&r->mu);
    remote_sse_free(&s.sse);
    free(s.errbody.p);
    free(s.timings.content);
    free(url);
    free(body);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(s.h);
    return ret;
}

/* ======================================================================
 * The rest of the class
 * ====================================================================== */

static void remote_reset(struct anc_conv *cv)
{
    struct conv_remote *r = (struct conv_remote *)cv;
    pthread_mutex_lock(&r->mu);
    r->conv_tokens = 0;
    pthread_mutex_unlock(&r->mu);
}

static int remote_replay(struct anc_conv *cv, const struct anc_chat_msg *msgs, size_t n,
                         int64_t *first, int64_t *count, size_t *n_tokens, char *err, size_t errlen)
{
    (void)msgs, (void)err, (void)errlen;
    remote_reset(cv);
    for (size_t i = 0; i < n; i++) first[i] = -1, count[i] = 0;
    *n_tokens = 0;
    return 0;
}

static int32_t remote_stats(const struct anc_conv *cv, struct anc_stats *out, int64_t *orig,
                            int32_t cap)
{
    (void)orig, (void)cap;
    struct conv_remote *r = (struct conv_remote *)cv;
    pthread_mutex_lock(&r->mu);
    *out = r->st;
    /* whole seconds: a snapshot that changes only when something does
       (the UI redraws on change) */
    out->poll_age = r->polled_at > 0 ? floor(anc_now() - r->polled_at) : -1;
    out->n_seen = r->conv_tokens;
    if (out->have_slot) {
        out->n_cached = (int32_t)(out->slot_tokens < INT32_MAX ? out->slot_tokens : INT32_MAX);
        out->capacity = out->slot_ctx;
    } else {
        out->capacity = (int32_t)(out->server_ctx < INT32_MAX ? out->server_ctx : INT32_MAX);
    }
    out->window = out->capacity;
    out->n_sink = r->n_keep >= 0 ? r->n_keep : out->n_keep;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static void remote_get_params(const struct anc_conv *cv, struct anc_session_params *out)
{
    struct conv_remote *r = (struct conv_remote *)cv;
    anc_session_params_default(out);
    pthread_mutex_lock(&r->mu);
    out->sampling = r->sampling;
    out->cache = ANC_CACHE_FULL;
    int64_t ctx = r->st.slot_ctx > 0 ? r->st.slot_ctx : r->st.server_ctx;
    out->ctx = out->window = (int32_t)(ctx < INT32_MAX ? ctx : INT32_MAX);
    out->n_sink = r->n_keep >= 0 ? r->n_keep : r->st.n_keep;
    pthread_mutex_unlock(&r->mu);
}

static bool refuse(const struct conv_remote *r, const char *what, char *msg, size_t msglen)
{
    snprintf(msg, msglen, "%s (%s) manages its own cache: %s cannot be changed from here; nothing changed",
             engine_names[r->engine], r->shown, what);
    return false;
}

static bool remote_set_window(struct anc_conv *cv, int32_t w, char *msg, size_t msglen)
{
    (void)w;
    return refuse((struct conv_remote *)cv, "the window", msg, msglen);
}

static bool remote_set_policy(struct anc_conv *cv, enum anc_cache_policy p, char *msg, size_t msglen)
{
    (void)p;
    return refuse((struct conv_remote *)cv, "the cache policy", msg, msglen);
}

static bool remote_set_rope(struct anc_conv *cv, const struct anc_rope_settings *rs, char *msg,
                            size_t msglen)
{
    (void)rs;
    struct conv_remote *r = (struct conv_remote *)cv;
    snprintf(msg, msglen, "%s sets RoPE when it loads the model (its own --rope-* options): "
             "/rope cannot change it from here; nothing changed", engine_names[r->engine]);
    return false;
}

/* llama-server's n_keep is the nearest thing to attention sinks. */
static bool remote_set_sinks(struct anc_conv *cv, int32_t k, char *msg, size_t msglen)
{
    struct conv_remote *r = (struct conv_remote *)cv;
    if (r->engine != ENG_LLAMA) {
        snprintf(msg, msglen, "%s has no attention sinks to set; nothing changed",
                 engine_names[r->engine]);
        return false;
    }
    pthread_mutex_lock(&r->mu);
    r->n_keep = k;
    pthread_mutex_unlock(&r->mu);
    snprintf(msg, msglen, "sent as llama-server's n_keep with each request: when the slot's context "
             "is full and the server shifts it (--context-shift), the first %d tokens stay and half "
             "of the rest is dropped at once; unlike sinks, nothing moves before the context is "
             "full, and without --context-shift a full context ends the reply", k);
    return true;
}

static bool remote_set_sampling(struct anc_conv *cv, const struct anc_sampling *smp, char *msg,
                                size_t msglen)
{
    struct conv_remote *r = (struct conv_remote *)cv;
    msg[0] = '\0';
    if (!anc_sampling_validate(smp, msg, msglen)) return false;
    pthread_mutex_lock(&r->mu);
    struct anc_sampling old = r->sampling;
    pthread_mutex_unlock(&r->mu);
    if (r->engine != ENG_LLAMA && r->engine != ENG_VLLM) {
        const char *what = smp->top_k != old.top_k ? "top-k" : smp->min_p != old.min_p ? "min-p"
                           : smp->repeat_penalty != old.repeat_penalty ? "repeat-penalty" : NULL;
        if (what) {
            snprintf(msg, msglen, "%s takes only temp, top-p, seed and max-tokens through its OpenAI "
                     "API: %s cannot be set; nothing changed", engine_names[r->engine], what);
            return false;
        }
    }
    pthread_mutex_lock(&r->mu);
    r->sampling = *smp;
    pthread_mutex_unlock(&r->mu);
    snprintf(msg, msglen, "sent with the next message");
    return true;
}

/* GET /v1/models: the ids (and what this server says of the one in use). */
static int list_models(struct conv_remote *r, char ***names, size_t *n_out, char *owner,
                       size_t owner_cap, char *err, size_t errlen)
{
    struct http_buf b;
    double t = r->connect_timeout + (r->timeout < 30 ? r->timeout : 30);
    long status = http_get(r, "/v1/models", t, &b, err, errlen);
    if (status < 0) return -1;
    if (status != 200) {
        http_failure(r, "", status, b.p, b.len, err, errlen);
        free(b.p);
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadb(b.p ? b.p : "", b.len, 0, &je);
    free(b.p);
    const json_t *data = json_object_get(root, "data");
    if (!json_is_array(data)) {
        snprintf(err, errlen, "%s/v1/models did not answer with a model list (is it an "
                 "OpenAI-compatible server?)", r->shown);
        json_decref(root);
        return -1;
    }
    size_t n = json_array_size(data);
    if (n > REMOTE_MAX_MODELS) n = REMOTE_MAX_MODELS;
    char **v = calloc(n + 1, sizeof *v);
    size_t k = 0;
    for (size_t i = 0; v && i < n; i++) {
        const json_t *m = json_array_get(data, i);
        const json_t *id = json_object_get(m, "id");
        if (!json_is_string(id)) continue;
        v[k] = strdup(json_string_value(id));
        if (!v[k]) break;
        if (k == 0 && owner) {
            const json_t *ob = json_object_get(m, "owned_by");
            snprintf(owner, owner_cap, "%s", json_is_string(ob) ? json_string_value(ob) : "");
        }
        /* what llama-server (meta) and vLLM (max_model_len) say of the model */
        bool ours = r->model ? strcmp(v[k], r->model) == 0 : k == 0;
        if (ours) {
            const json_t *meta = json_object_get(m, "meta");
            if (json_is_object(meta)) {
                r->model_ctx = (int64_t)num_of(json_object_get(meta, "n_ctx"), 0);
                r->model_ctx_train = (int64_t)num_of(json_object_get(meta, "n_ctx_train"), 0);
                r->model_bytes = (int64_t)num_of(json_object_get(meta, "size"), 0);
                r->model_params = (int64_t)num_of(json_object_get(meta, "n_params"), 0);
            }
            int64_t mml = (int64_t)num_of(json_object_get(m, "max_model_len"), 0);
            if (mml > 0) r->model_ctx = mml;
        }
        k++;
    }
    json_decref(root);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *names = v;
    *n_out = k;
    return 0;
}

static int remote_models(struct anc_conv *cv, char ***names, size_t *n, char *err, size_t errlen)
{
    return list_models((struct conv_remote *)cv, names, n, NULL, 0, err, errlen);
}

static void remote_info(const struct anc_conv *cv, struct anc_conv_info *out)
{
    const struct conv_remote *r = (const struct conv_remote *)cv;
    memset(out, 0, sizeof *out);
    out->remote = true;
    out->model_name = r->model;
    out->model_path = r->shown;
    out->engine = engine_names[r->engine];
    out->template_name = "server";
    out->adapter = NULL;
    out->vocab = "";
    out->model.name = r->model;
    out->model.path = r->shown;
    out->model.arch = "";
    out->model.n_ctx_train = (int32_t)r->model_ctx_train;
    out->model.n_params = (uint64_t)(r->model_params > 0 ? r->model_params : 0);
    out->model.weight_bytes = (uint64_t)(r->model_bytes > 0 ? r->model_bytes : 0);
}

static void remote_destroy(struct anc_conv *cv)
{
    struct conv_remote *r = (struct conv_remote *)cv;
    if (r->poller_started) {
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->poller, NULL);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    if (r->auth) { /* the key leaves no copy behind in freed memory */
        memset(r->auth, 0, strlen(r->auth));
        free(r->auth);
    }
    free(r->url);
    free(r->shown);
    free(r->model);
    free(r);
}

static const struct anc_conv_class remote_class = {
    .name = "remote",
    .destroy = remote_destroy,
    .info = remote_info,
    .reply = remote_reply,
    .reset = remote_reset,
    .replay = remote_replay,
    .stats = remote_stats,
    .get_params = remote_get_params,
    .set_window = remote_set_window,
    .set_sinks = remote_set_sinks,
    .set_policy = remote_set_policy,
    .set_rope = remote_set_rope,
    .set_sampling = remote_set_sampling,
    .token_text = NULL,
    .models = remote_models,
};

/* The base URL: scheme checked, no spaces or controls, trailing '/' and
 * '/v1' taken off; and the same with any user:password@ hidden. */
static bool parse_url(const char *in, char **url, char **shown, char *err, size_t errlen)
{
    if (!in || !*in) {
        snprintf(err, errlen, "--remote needs a URL, e.g. http://127.0.0.1:8080");
        return false;
    }
    size_t n = strlen(in);
    bool http = strncmp(in, "http://", 7) == 0, https = strncmp(in, "https://", 8) == 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)in[i] <= ' ' || in[i] == 0x7f) {
            snprintf(err, errlen, "--remote: the URL has a space or control character");
            return false;
        }
    size_t hs = http ? 7 : https ? 8 : 0;
    if (!hs || n == hs || in[hs] == '/') {
        snprintf(err, errlen, "--remote must be an http:// or https:// URL with a host, e.g. "
                 "http://127.0.0.1:8080 (got '%.200s')", in);
        return false;
    }
    *url = strdup(in);
    if (!*url) goto oom;
    size_t k = strlen(*url);
    for (;;) {
        while (k > hs && (*url)[k - 1] == '/') (*url)[--k] = '\0';
        if (k > hs + 3 && strcmp(*url + k - 3, "/v1") == 0) {
            k -= 3;
            (*url)[k] = '\0';
            continue;
        }
        break;
    }
    const char *host = *url + hs;
    const char *slash = strchr(host, '/');
    const char *at = memchr(host, '@', slash ? (size_t)(slash - host) : strlen(host));
    size_t sl = k + 8;
    *shown = malloc(sl);
    if (!*shown) goto oom;
    if (at)
        snprintf(*shown, sl, "%.*s***%s", (int)hs, *url, at);
    else
        snprintf(*shown, sl, "%s", *url);
    return true;
oom:
    free(*url);
    *url = NULL;
    snprintf(err, errlen, "out of memory");
    return false;
}

struct anc_conv *anc_conv_open_remote(const struct anc_remote_params *p, char *err, size_t errlen)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        snprintf(err, errlen, "libcurl failed to start: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    if (!anc_sampling_validate(&p->sampling, err, errlen)) return NULL;
    struct conv_remote *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->base.cls = &remote_class;
    atomic_init(&r->base.cancel, false);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->n_keep = -1;
    r->sampling = p->sampling;
    r->connect_timeout = p->connect_timeout > 0 ? p->connect_timeout : REMOTE_CONNECT_TIMEOUT;
    r->timeout = p->timeout > 0 ? p->timeout : REMOTE_IDLE_TIMEOUT;
    r->st.remote = true;
    r->st.slot_id = -1;
    r->st.n_keep = -1;
    r->st.server_prompt_total = r->st.server_gen_total = -1;
    if (!parse_url(p->url, &r->url, &r->shown, err, errlen)) goto fail;
    if (p->api_key && *p->api_key) {
        size_t kl = strlen(p->api_key);
        for (size_t i = 0; i < kl; i++)
            if ((unsigned char)p->api_key[i] < ' ' || p->api_key[i] == 0x7f) {
                snprintf(err, errlen, "the API key has a control character (a stray newline?)");
                goto fail;
            }
        r->auth = malloc(kl + 32);
        if (!r->auth) goto oom;
        snprintf(r->auth, kl + 32, "Authorization: Bearer %s", p->api_key);
    }
    if (p->model && *p->model) {
        r->model = strdup(p->model);
        if (!r->model) goto oom;
    }
    /* the server, its models and its kind */
    char **names = NULL, owner[64] = "";
    size_t n = 0;
    if (list_models(r, &names, &n, owner, sizeof owner, err, errlen) != 0) goto fail;
    bool found = !r->model;
    for (size_t i = 0; i < n && !found; i++) found = strcmp(names[i], r->model) == 0;
    if (!found || n == 0) {
        char list[256] = "";
        size_t used = 0;
        for (size_t i = 0; i < n && used + 1 < sizeof list; i++) {
            int k = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
            if (k < 0) break;
            used += (size_t)k;
        }
        if (n == 0)
            snprintf(err, errlen, "%s serves no model (GET /v1/models is empty)", r->shown);
        else
            snprintf(err, errlen, "%s has no model '%s' (it has: %s)", r->shown, r->model, list);
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        goto fail;
    }
    if (!r->model) r->model = strdup(names[0]);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (!r->model) goto oom;
    if (strcmp(owner, "llamacpp") == 0) r->engine = ENG_LLAMA;
    else if (strcmp(owner, "vllm") == 0) r->engine = ENG_VLLM;
    else {
        struct http_buf b;
        char e[ANC_ERR_LEN];
        if (http_get(r, "/api/version", REMOTE_POLL_TIMEOUT, &b, e, sizeof e) == 200 && b.p &&
            strstr(b.p, "\"version\""))
            r->engine = ENG_OLLAMA;
        free(b.p);
    }
    snprintf(r->st.engine, sizeof r->st.engine, "%s", engine_names[r->engine]);
    snprintf(r->st.server, sizeof r->st.server, "%s", r->shown);
    snprintf(r->st.model, sizeof r->st.model, "%s", r->model);
    r->st.server_ctx = r->model_ctx;
    r->st.rope_orig_ctx = (int32_t)r->model_ctx_train;
    r->st.server_model_bytes = (uint64_t)(r->model_bytes > 0 ? r->model_bytes : 0);
    if (pthread_create(&r->poller, NULL, poller_main, r) == 0) r->poller_started = true;
    poll_request(r, -1);
    return &r->base;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    remote_destroy(&r->base);
    return NULL;
}
