/* tokenizer_bpe.c — GPT-2-style byte-level BPE (tokenizer.ggml.model = gpt2):
 * the byte <-> character mapping, the pre-tokenizers chosen by
 * tokenizer.ggml.pre (hand-written scanners, no regex library), the merges
 * and the encoder and decoder. Part of core/: depends on tokenizer_impl.h,
 * gguf.h, util.h and the C library only.
 *
 * Encoding: user-defined tokens are cut out of the text whole first; the rest
 * is split into pre-tokens by the pattern; each pre-token's bytes start as one
 * symbol each (the token of the byte's mapped character), and the adjacent
 * pair with the lowest merge rank is merged until no pair has a rule (ties:
 * leftmost). Symbols are a linked list and candidate pairs a min-heap
 * (TOK_HEAP of tokenizer_impl.h, as in SentencePiece), so a
 * long pre-token costs n log n, not n^2. Special tokens typed in the text are
 * plain text. Invalid UTF-8 is never an error: each byte that is not part of
 * a well-formed character is a character of its own of class "other" (not a
 * letter, number or space) for the pre-tokenizer, and a byte token as always.
 *
 * Checked against Hugging Face tokenizers, the regex package and tiktoken by
 * tests/tokenizer_bpe_ref.py. Character classes come from the generated
 * tokenizer_unicode.c (Unicode 14.0.0); a letter or digit added to Unicode
 * later counts as "other" here. Not done: normalisers (Qwen2's tokenizer.json
 * asks for NFC, which llama.cpp skips too). */
#include "tokenizer_impl.h"

#include "gguf.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define KEY_MERGES "tokenizer.ggml.merges"
#define KEY_PRE "tokenizer.ggml.pre"
#define KEY_ADD_BOS "tokenizer.ggml.add_bos_token"

/* Merge lists are a little shorter than the vocabulary; refuse absurd ones
 * before allocating a table for them. */
#define BPE_MAX_MERGES (1u << 24)

/* ---- bytes <-> characters ----------------------------------------------------
 *
 * GPT-2's vocabulary is written in printable characters: byte b stands for
 * the character with code b when that is printable Latin-1 ('!'..'~',
 * U+00A1..U+00AC, U+00AE..U+00FF), and the other 68 bytes, in increasing
 * order, for U+0100..U+0143 (0x00..0x20 -> U+0100.., 0x7F..0xA0 -> U+0121..,
 * 0xAD -> U+0143). So a space is "Ġ" (U+0120) and a newline "Ċ" (U+010A). */

#define BYTE_CHARS_HIGH 0x143 /* the last character used */

static bool byte_is_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

static uint32_t byte_to_char(unsigned b)
{
    if (byte_is_printable(b)) return b;
    if (b <= 0x20) return 0x100 + b;
    if (b <= 0xA0) return 0x100 + 0x21 + (b - 0x7F);
    return 0x100 + 0x21 + 0x22; /* 0xAD, the last one */
}

/* The byte of character cp, -1 if cp stands for none. */
static int char_to_byte(uint32_t cp)
{
    if (cp < 0x100) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp > BYTE_CHARS_HIGH) return -1;
    unsigned k = cp - 0x100;
    if (k <= 0x20) return (int)k;
    if (k < 0x21 + 0x22) return (int)(0x7F + k - 0x21);
    return 0xAD;
}

/* UTF-8 of a character below U+0800 (all of the mapped ones): 1 or 2 bytes. */
static size_t put_char2(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* ---- characters as the patterns see them ------------------------------------ */

#define CP_INVALID UINT32_MAX /* a byte that is not part of a valid character */

struct uch {
    uint32_t cp;
    uint32_t len; /* bytes */
    enum uc_class cls;
};

static enum uc_class ascii_class(unsigned c)
{
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return UC_LETTER;
    if (c >= '0' && c <= '9') return UC_NUMBER;
    if (c == ' ' || (c >= '\t' && c <= '\r')) return UC_SPACE;
    return UC_OTHER;
}

/* The character at s[i] (i < n). */
static struct uch uch_at(const unsigned char *s, size_t n, size_t i)
{
    struct uch u = { .cp = s[i], .len = 1, .cls = UC_OTHER };
    if (s[i] < 0x80) {
        u.cls = ascii_class(s[i]);
        return u;
    }
    u.len = (uint32_t)tok_utf8_len(s + i, n - i);
    if (u.len == 1) {
        u.cp = CP_INVALID; /* class "other" */
        return u;
    }
    /* well-formed (tok_utf8_len checked it): just collect the bits */
    static const unsigned lead_mask[5] = {0, 0, 0x1F, 0x0F, 0x07};
    uint32_t cp = s[i] & lead_mask[u.len];
    for (uint32_t k = 1; k < u.len; k++) cp = cp << 6 | (s[i + k] & 0x3F);
    u.cp = cp;
    u.cls = tok_unicode_class(cp);
    return u;
}

/* End of the run of at most max characters of class cls that starts at i
 * (the character at i is one). */
static size_t run_end(const unsigned char *s, size_t n, size_t i, enum uc_class cls, size_t max)
{
    size_t count = 0;
    while (i < n && count < max) {
        struct uch u = uch_at(s, n, i);
        if (u.cls != cls) break;
        i += u.len;
        count++;
    }
    return i;
}

/* `'s|'t|'re|'ve|'m|'ll|'d` at s[i] == '\'': its length, 0 if none. With
 * fold, case-insensitive as (?i:...) is in Unicode: S, T, RE ... and also
 * U+017F LATIN SMALL LETTER LONG S, whose case folding is "s" (the only
 * character outside ASCII that folds to one of these letters). */
static size_t contraction(const unsigned char *s, size_t n, size_t i, bool fold)
{
    if (i + 1 >= n) return 0;
    unsigned a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
    if (fold) {
        if (a == 0xC5 && b == 0xBF) return 3; /* 'ſ */
        if (a >= 'A' && a <= 'Z') a |= 0x20;
        if (b >= 'A' && b <= 'Z') b |= 0x20;
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' || a == 'v') && b == 'e') return 3;
    if (a == 'l' && b == 'l') return 3;
    return 0;
}

/* The white-space alternatives at i (a white-space character):
 *   \s*[\r\n]+   (newlines only) up to the last \r or \n of the run;
 *   \s+(?!\S)    the run, less its last character when something other than
 *                white space follows (that one goes with the next word);
 *   \s+          a single white-space character before a non-space. */
static size_t space_end(const unsigned char *s, size_t n, size_t i, bool newlines)
{
    size_t end = i, last = i, nl_end = 0;
    while (end < n) {
        struct uch u = uch_at(s, n, end);
        if (u.cls != UC_SPACE) break;
        last = end;
        end += u.len;
        if (u.cp == '\r' || u.cp == '\n') nl_end = end;
    }
    if (newlines && nl_end) return nl_end;
    if (end == n || last == i) return end;
    return last;
}

/* GPT-2 (and the default):
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Returns where the piece that starts at i (< n) ends. */
static size_t gpt2_next(const unsigned char *s, size_t n, size_t i)
{
    struct uch c = uch_at(s, n, i);
    if (c.cp == '\'') {
        size_t k = contraction(s, n, i, false);
        if (k) return i + k;
    }
    /* ` ?X+` for X = letters, numbers, others: an optional U+0020 first */
    size_t j = i;
    struct uch d = c;
    if (c.cp == ' ' && i + 1 < n) {
        j = i + 1;
        d = uch_at(s, n, j);
    }
    if (d.cls != UC_SPACE) return run_end(s, n, j, d.cls, SIZE_MAX);
    return space_end(s, n, i, false);
}

/* Llama 3 (max_digits 3) and Qwen2 (max_digits 1):
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *    ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * (Qwen2 has \p{N} for \p{N}{1,3}.) */
static size_t llama3_next(const unsigned char *s, size_t n, size_t i, size_t max_digits)
{
    struct uch c = uch_at(s, n, i);
    if (c.cp == '\'') {
        size_t k = contraction(s, n, i, true);
        if (k) return i + k;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+: any one character but those before letters */
    if (c.cls == UC_LETTER) return run_end(s, n, i, UC_LETTER, SIZE_MAX);
    if (c.cls != UC_NUMBER && c.cp != '\r' && c.cp != '\n' && i + c.len < n &&
        uch_at(s, n, i + c.len).cls == UC_LETTER)
        return run_end(s, n, i + c.len, UC_LETTER, SIZE_MAX);
    if (c.cls == UC_NUMBER) return run_end(s, n, i, UC_NUMBER, max_digits);
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t j = i;
    struct uch d = c;
    if (c.cp == ' ' && i + 1 < n) {
        j = i + 1;
        d = uch_at(s, n, j);
    }
    if (d.cls == UC_OTHER) {
        size_t e = run_end(s, n, j, UC_OTHER, SIZE_MAX);
        while (e < n && (s[e] == '\r' || s[e] == '\n')) e++;
        return e;
    }
    /* c is white space (a letter, number or other would have matched above) */
    return space_end(s, n, i, true);
}

static size_t pre_next(enum bpe_pre pre, const unsigned char *s, size_t n, size_t i)
{
    switch (pre) {
    case BPE_PRE_GPT2: return gpt2_next(s, n, i);
    case BPE_PRE_LLAMA3: return llama3_next(s, n, i, 3);
    case BPE_PRE_QWEN2: return llama3_next(s, n, i, 1);
    }
    return n;
}

bool bpe_pretokenize(enum bpe_pre pre, const char *text, size_t len, size_t **ends, size_t *n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t count = 0, cap = 0, *e = NULL;
    *ends = NULL;
    *n = 0;
    for (size_t i = 0; i < len;) {
        size_t next = pre_next(pre, s, len, i);
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 64, bytes;
            size_t *ne;
            if (!anc_mul_ok(ncap, sizeof *ne, &bytes) || !(ne = realloc(e, bytes))) {
                free(e);
                return false;
            }
            e = ne;
            cap = ncap;
        }
        e[count++] = next;
        i = next;
    }
    *ends = e;
    *n = count;
    return true;
}

/* ---- names of tokenizer.ggml.pre ---------------------------------------------- */

/* Values written by llama.cpp's converter for models whose pre-tokenizer is
 * one of ours. "default" means the GPT-2 pattern here. */
static const struct {
    const char *name;
    enum bpe_pre pre;
} pre_names[] = {
    {"default", BPE_PRE_GPT2},    {"gpt-2", BPE_PRE_GPT2},
    {"llama-bpe", BPE_PRE_LLAMA3}, {"llama3", BPE_PRE_LLAMA3},
    {"llama-v3", BPE_PRE_LLAMA3}, {"qwen2", BPE_PRE_QWEN2},
    {"deepseek-r1-qwen", BPE_PRE_QWEN2},
};
#define N_PRE_NAMES (sizeof pre_names / sizeof *pre_names)

bool bpe_pre_from_name(const char *name, size_t n, enum bpe_pre *out)
{
    for (size_t k = 0; k < N_PRE_NAMES; k++) {
        if (strlen(pre_names[k].name) == n && memcmp(pre_names[k].name, name, n) == 0) {
            *out = pre_names[k].pre;
            return true;
        }
    }
    return false;
}

const char *bpe_pre_names(void)
{
    return "default, gpt-2, llama-bpe, llama3, llama-v3, qwen2, deepseek-r1-qwen";
}

/* ---- loading: the merges ------------------------------------------------------ */

static size_t merge_slot(int32_t left, int32_t right, size_t mask)
{
    uint64_t h = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    h *= 0x9E3779B97F4A7C15ull; /* Fibonacci hashing: the high bits are mixed */
    return (size_t)(h >> 32) & mask;
}

static const struct bpe_merge *merge_find(const struct tokenizer *t, int32_t left, int32_t right)
{
    if (!t->merges || left < 0 || right < 0) return NULL;
    for (size_t i = merge_slot(left, right, t->merges_mask);; i = (i + 1) & t->merges_mask) {
        const struct bpe_merge *m = &t->merges[i];
        if (m->left < 0) return NULL;
        if (m->left == left && m->right == right) return m;
    }
}

/* The first rule for a pair wins (it has the lowest rank). */
static void merge_put(struct tokenizer *t, struct bpe_merge m)
{
    for (size_t i = merge_slot(m.left, m.right, t->merges_mask);;
         i = (i + 1) & t->merges_mask) {
        struct bpe_merge *slot = &t->merges[i];
        if (slot->left < 0) {
            *slot = m;
            return;
        }
        if (slot->left == m.left && slot->right == m.right) return;
    }
}

bool bpe_load(struct tokenizer *t, const struct gguf_file *f, char *err, size_t errlen)
{
    char show[48];
    char *cat = NULL;

    /* the pre-tokenizer (absent: the default, GPT-2's) */
    t->pre = BPE_PRE_GPT2;
    if (gguf_find_kv(f, KEY_PRE)) {
        struct gguf_str name;
        if (!gguf_get_str(f, KEY_PRE, &name)) {
            anc_set_err(err, errlen, "%s is not a string", KEY_PRE);
            return false;
        }
        if (!bpe_pre_from_name(name.ptr, (size_t)name.len, &t->pre)) {
            tok_printable(name, show, sizeof show);
            anc_set_err(err, errlen, "unsupported pre-tokenizer \"%s\" (%s; supported: %s)",
                        show, KEY_PRE, bpe_pre_names());
            return false;
        }
    }
    /* as llama.cpp does for Llama 3: whole-word lookup first, BOS by default */
    t->ignore_merges = t->pre == BPE_PRE_LLAMA3;
    if (t->pre == BPE_PRE_LLAMA3 && !gguf_find_kv(f, KEY_ADD_BOS)) t->add_bos = true;

    /* the token of each byte. Here and in the merges only tokens that merges
       may produce count (t->pieces: never control or unknown tokens, so
       special tokens never come out of plain text) */
    for (unsigned b = 0; b < 256; b++) {
        char u[2];
        size_t k = put_char2(u, byte_to_char(b));
        t->bpe_byte[b] = tok_map_get(t, &t->pieces, u, k);
    }

    /* the merges: "left right", rank = index */
    const struct gguf_kv *kv = gguf_find_kv(f, KEY_MERGES);
    if (!kv) {
        anc_set_err(err, errlen, "the file has no BPE merges (%s is missing)", KEY_MERGES);
        return false;
    }
    if (kv->type != GGUF_VT_ARRAY || kv->arr_type != GGUF_VT_STRING) {
        anc_set_err(err, errlen, "%s is not an array of strings", KEY_MERGES);
        return false;
    }
    if (kv->arr_n > BPE_MAX_MERGES) {
        anc_set_err(err, errlen, "%s has %llu entries, more than the %u this program accepts",
                    KEY_MERGES, (unsigned long long)kv->arr_n, BPE_MAX_MERGES);
        return false;
    }
    if (kv->arr_n == 0) return true;
    size_t cap = 16;
    while (cap < 2 * (size_t)kv->arr_n) cap *= 2;
    t->merges = malloc(cap * sizeof *t->merges);
    /* a merge of two tokens is at most twice the longest token */
    uint32_t longest = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->tok[id].len > longest) longest = t->tok[id].len;
    cat = malloc(2 * (size_t)longest + 1);
    if (!t->merges || !cat) {
        anc_set_err(err, errlen, "out of memory loading the BPE merges");
        free(cat);
        return false;
    }
    t->merges_mask = cap - 1;
    for (size_t i = 0; i < cap; i++) t->merges[i] = (struct bpe_merge){ .left = -1 };
    for (uint64_t r = 0; r < kv->arr_n; r++) {
        struct gguf_str m = gguf_arr_str(kv, r);
        const char *sp = m.len ? memchr(m.ptr, ' ', (size_t)m.len) : NULL;
        if (!sp) {
            tok_printable(m, show, sizeof show);
            anc_set_err(err, errlen, "merge %llu \"%s\" is not two tokens and a space (%s)",
                        (unsigned long long)r, show, KEY_MERGES);
            free(cat);
            return false;
        }
        size_t nl = (size_t)(sp - m.ptr), nr = (size_t)m.len - nl - 1;
        int32_t left = tok_map_get(t, &t->pieces, m.ptr, nl);
        int32_t right = tok_map_get(t, &t->pieces, sp + 1, nr);
        /* a rule for tokens the vocabulary lacks can never apply: skip it */
        if (left < 0 || right < 0) continue;
        memcpy(cat, m.ptr, nl);
        memcpy(cat + nl, sp + 1, nr);
        int32_t result = tok_map_get(t, &t->pieces, cat, nl + nr);
        if (result < 0) continue;
        merge_put(t, (struct bpe_merge){ .left = left, .right = right, .result = result,
                                         .rank = (uint32_t)r });
    }
    free(cat);
    return true;
}

void bpe_free(struct tokenizer *t)
{
    free(t->merges);
    t->merges = NULL;
}

/* ---- encoding ----------------------------------------------------------------- */

#define SYM_GONE (-2) /* merged into its left neighbour */

struct bpe_sym {
    int32_t id;          /* token; -1: a byte without a token; SYM_GONE */
    uint32_t prev, next; /* UINT32_MAX at the ends */
};

struct bpe_cand {
    uint32_t rank;
    uint32_t left;       /* symbol index */
    int32_t lid, rid;    /* the two tokens when pushed (to spot stale pairs) */
};

/* a before b: lower rank, then leftmost */
static bool bpe_cand_before(const struct bpe_cand *a, const struct bpe_cand *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

TOK_HEAP(bpe_heap, struct bpe_cand, bpe_cand_before)

struct bpe_state {
    const struct tokenizer *t;
    struct bpe_sym *sym;  /* [cap_sym] */
    size_t cap_sym;
    struct bpe_heap heap; /* candidate pairs */
    char *mapped;         /* [2 * cap_sym]: a pre-token in vocabulary characters */
    int32_t *out;         /* [len + 1] */
    size_t n_out;
    bool oom;
};

#define NO_SYM UINT32_MAX

static void try_pair(struct bpe_state *st, uint32_t l, uint32_t r)
{
    if (l == NO_SYM || r == NO_SYM) return;
    const struct bpe_merge *m = merge_find(st->t, st->sym[l].id, st->sym[r].id);
    if (m && !bpe_heap_push(&st->heap, (struct bpe_cand){ .rank = m->rank, .left = l,
                                                          .lid = st->sym[l].id,
                                                          .rid = st->sym[r].id }))
        st->oom = true;
}

static bool grow_syms(struct bpe_state *st, size_t n)
{
    if (n <= st->cap_sym) return true;
    size_t cap = st->cap_sym ? st->cap_sym : 64, b1, b2;
    while (cap < n) cap *= 2;
    struct bpe_sym *s;
    char *m;
    if (!anc_mul_ok(cap, sizeof *s, &b1) || !anc_mul_ok(cap, 2, &b2)) return false;
    if (!(s = realloc(st->sym, b1))) return false;
    st->sym = s;
    if (!(m = realloc(st->mapped, b2))) return false;
    st->mapped = m;
    st->cap_sym = cap;
    return true;
}

static void emit(struct bpe_state *st, int32_t id)
{
    if (id >= 0)
        st->out[st->n_out++] = id;
    else if (st->t->unk >= 0)
        st->out[st->n_out++] = st->t->unk; /* a byte the vocabulary lacks */
}

/* One pre-token: n bytes at s. */
static void encode_word(struct bpe_state *st, const unsigned char *s, size_t n)
{
    const struct tokenizer *t = st->t;
    if (n == 1) {
        emit(st, t->bpe_byte[s[0]]);
        return;
    }
    if (n > UINT32_MAX - 1 || !grow_syms(st, n)) {
        st->oom = true;
        return;
    }
    if (t->ignore_merges) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += put_char2(st->mapped + k, byte_to_char(s[i]));
        int32_t id = k <= t->max_piece_len ? tok_map_get(t, &t->pieces, st->mapped, k) : -1;
        if (id >= 0) {
            emit(st, id);
            return;
        }
    }
    for (size_t i = 0; i < n; i++)
        st->sym[i] = (struct bpe_sym){ .id = t->bpe_byte[s[i]],
                                       .prev = i ? (uint32_t)i - 1 : NO_SYM,
                                       .next = i + 1 < n ? (uint32_t)i + 1 : NO_SYM };
    st->heap.n = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(st, (uint32_t)i, (uint32_t)i + 1);
    while (st->heap.n > 0 && !st->oom) {
        struct bpe_cand c = bpe_heap_pop(&st->heap);
        struct bpe_sym *a = &st->sym[c.left];
        if (a->id != c.lid || a->next == NO_SYM) continue; /* stale */
        uint32_t r = a->next;
        struct bpe_sym *b = &st->sym[r];
        if (b->id != c.rid) continue; /* stale */
        /* the rule is still there: merge_find cannot fail for a pushed pair */
        a->id = merge_find(t, c.lid, c.rid)->result;
        a->next = b->next;
        if (b->next != NO_SYM) st->sym[b->next].prev = c.left;
        b->id = SYM_GONE;
        try_pair(st, a->prev, c.left);
        try_pair(st, c.left, a->next);
    }
    if (st->oom) return;
    for (uint32_t i = 0; i != NO_SYM; i = st->sym[i].next) emit(st, st->sym[i].id);
}

/* Text without user-defined tokens: pre-tokens, each encoded. */
static void encode_segment(struct bpe_state *st, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n && !st->oom;) {
        size_t e = pre_next(st->t->pre, s, n, i);
        encode_word(st, s + i, e - i);
        i = e;
    }
}

bool bpe_encode(const struct tokenizer *t, const char *text, size_t len, bool add_bos,
                int32_t **out, size_t *n_out)
{
    struct bpe_state st = { .t = t };
    const unsigned char *s = (const unsigned char *)text;
    size_t cap_out, bytes;
    /* at most one token per byte, plus BOS */
    if (!anc_add_ok(len, 1, &cap_out) || !anc_mul_ok(cap_out, sizeof *st.out, &bytes) ||
        !(st.out = malloc(bytes)))
        return false;
    if (add_bos && t->bos >= 0) st.out[st.n_out++] = t->bos;

    size_t seg = 0;
    for (size_t i = 0; t->ud && i < len && !st.oom;) {
        size_t k = tok_ud_match(t, s + i, len - i);
        if (!k) {
            i += tok_utf8_len(s + i, len - i);
            continue;
        }
        encode_segment(&st, s + seg, i - seg);
        emit(&st, tok_map_get(t, &t->pieces, text + i, k));
        i += k;
        seg = i;
    }
    if (!st.oom) encode_segment(&st, s + seg, len - seg);

    free(st.sym);
    free(st.heap.v);
    free(st.mapped);
    if (st.oom) {
        free(st.out);
        return false;
    }
    *out = st.out;
    *n_out = st.n_out;
    return true;
}

/* ---- decoding ------------------------------------------------------------------- */

size_t bpe_piece(const struct tokenizer *t, int32_t id, char *dst, size_t cap)
{
    const unsigned char *s = (const unsigned char *)tok_text(t, id);
    size_t n = t->tok[id].len;
    /* user-defined tokens hold their text as it is, not in mapped characters */
    if (t->tok[id].type != TOK_TYPE_USER_DEFINED) {
        size_t w = 0;
        bool mapped = true;
        for (size_t i = 0; i < n && mapped;) {
            struct uch u = uch_at(s, n, i);
            int b = u.cp == CP_INVALID ? -1 : char_to_byte(u.cp);
            if (b < 0) {
                mapped = false;
            } else {
                char c = (char)b;
                tok_put(dst, cap, w++, &c, 1);
            }
            i += u.len;
        }
        if (mapped) return w;
        /* a character that stands for no byte: the text as it is (what a
           vocabulary with added plain-text tokens means) */
    }
    tok_put(dst, cap, 0, (const char *)s, n);
    return n;
}
