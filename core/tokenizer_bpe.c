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
    enum uc_cat cat;
};

static enum uc_cat ascii_cat(unsigned c)
{
    if (c >= 'A' && c <= 'Z') return UC_CAT_LU;
    if (c >= 'a' && c <= 'z') return UC_CAT_LL;
    if (c >= '0' && c <= '9') return UC_CAT_NUMBER;
    if (c == ' ' || (c >= '\t' && c <= '\r')) return UC_CAT_SPACE;
    if (c < 0x20 || c == 0x7F) return UC_CAT_OTHER;
    if (c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '`' ||
        c == '|' || c == '~')
        return UC_CAT_SYMBOL;
    return UC_CAT_PUNCT;
}

static enum uc_class class_of_cat(enum uc_cat c)
{
    switch (c) {
    case UC_CAT_SPACE: return UC_SPACE;
    case UC_CAT_LU: case UC_CAT_LL: case UC_CAT_LT: case UC_CAT_LM: case UC_CAT_LO:
        return UC_LETTER;
    case UC_CAT_NUMBER: return UC_NUMBER;
    default: return UC_OTHER;
    }
}

/* The character at s[i] (i < n). */
static struct uch uch_at(const unsigned char *s, size_t n, size_t i)
{
    struct uch u = { .cp = s[i], .len = 1, .cls = UC_OTHER, .cat = UC_CAT_OTHER };
    if (s[i] < 0x80) {
        u.cat = ascii_cat(s[i]);
        u.cls = class_of_cat(u.cat);
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
    u.cat = tok_unicode_cat(cp);
    u.cls = class_of_cat(u.cat);
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

/* ---- more character sets ------------------------------------------------------ */

static bool cat_in(enum uc_cat c, unsigned mask) { return (mask >> c) & 1u; }
#define CATS(x) (1u << (x))
/* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}] of Tekken and GPT-4o */
#define UPPERISH (CATS(UC_CAT_LU) | CATS(UC_CAT_LT) | CATS(UC_CAT_LM) | CATS(UC_CAT_LO) | \
                  CATS(UC_CAT_MARK))
#define LOWERISH (CATS(UC_CAT_LL) | CATS(UC_CAT_LM) | CATS(UC_CAT_LO) | CATS(UC_CAT_MARK))
#define LETTERS (CATS(UC_CAT_LU) | CATS(UC_CAT_LL) | CATS(UC_CAT_LT) | CATS(UC_CAT_LM) | \
                 CATS(UC_CAT_LO))

struct cp_range {
    uint32_t lo, hi;
};

static bool in_ranges(uint32_t cp, const struct cp_range *r, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (cp >= r[k].lo && cp <= r[k].hi) return true;
    return false;
}
#define IN_RANGES(cp, r) in_ranges(cp, r, sizeof r / sizeof *r)

/* DeepSeek LLM's letter class (its pattern lists the cased letters by hand) */
static const struct cp_range ds_letters[] = {
    {0x0041, 0x005A}, {0x0061, 0x007A}, {0x00B5, 0x00B5}, {0x00C0, 0x00D6}, {0x00D8, 0x00F6},
    {0x00F8, 0x01BA}, {0x01BC, 0x01BF}, {0x01C4, 0x0293}, {0x0295, 0x02AF}, {0x0370, 0x0373},
    {0x0376, 0x0377}, {0x037B, 0x037D}, {0x037F, 0x037F}, {0x0386, 0x0386}, {0x0388, 0x038A},
    {0x038C, 0x038C}, {0x038E, 0x03A1}, {0x03A3, 0x03F5}, {0x03F7, 0x0481}, {0x048A, 0x052F},
    {0x0531, 0x0556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102}, {0x2107, 0x2107},
    {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
    {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F},
    {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4},
    {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F},
    {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3},
    {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF},
    {0x1E900, 0x1E943},
};
/* DeepSeek LLM's punctuation: [!-/:-~！-／：-～‘-‟　-。] */
static const struct cp_range ds_punct[] = {
    {0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}, {0x2018, 0x201F},
    {0x3000, 0x3002},
};
/* DeepSeek LLM's CJK runs: [一-龥ࠀ-一가-퟿] */
static const struct cp_range ds_cjk[] = {{0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};
/* DeepSeek V3's: [一-龥぀-ゟ゠-ヿ] (ideographs, hiragana, katakana) */
static const struct cp_range ds3_cjk[] = {{0x4E00, 0x9FA5}, {0x3040, 0x309F}, {0x30A0, 0x30FF}};
/* BLOOM's [^(\s|.,!?…。，、।۔،)]: what a word may not hold besides white space */
static const struct cp_range bloom_stops[] = {
    {'(', ')'}, {'|', '|'}, {'.', '.'}, {',', ','}, {'!', '!'}, {'?', '?'},
    {0x2026, 0x2026}, {0x3002, 0x3002}, {0xFF0C, 0xFF0C}, {0x3001, 0x3001},
    {0x0964, 0x0964}, {0x06D4, 0x06D4}, {0x060C, 0x060C},
};

static bool is_ascii_punct(uint32_t cp)
{
    return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) ||
           (cp >= 0x5B && cp <= 0x60) || (cp >= 0x7B && cp <= 0x7E);
}

/* ---- building blocks of the patterns ---------------------------------------- */

typedef bool (*char_pred)(struct uch u);

/* Where the run of characters satisfying pred that starts at i ends (i if
 * the character at i does not). */
static size_t run_of(const unsigned char *s, size_t n, size_t i, char_pred pred)
{
    while (i < n) {
        struct uch u = uch_at(s, n, i);
        if (!pred(u)) break;
        i += u.len;
    }
    return i;
}

static bool is_number(struct uch u) { return u.cls == UC_NUMBER; }
static bool is_space(struct uch u) { return u.cls == UC_SPACE; }
static bool is_cr_lf(struct uch u) { return u.cp == '\r' || u.cp == '\n'; }
static bool is_upperish(struct uch u) { return cat_in(u.cat, UPPERISH); }
static bool is_lowerish(struct uch u) { return cat_in(u.cat, LOWERISH); }
static bool is_ascii_letter(struct uch u) { return u.cp < 0x80 && u.cls == UC_LETTER; }
static bool is_letter_or_mark(struct uch u) { return cat_in(u.cat, LETTERS | CATS(UC_CAT_MARK)); }
static bool is_punct_or_symbol(struct uch u)
{
    return u.cat == UC_CAT_PUNCT || u.cat == UC_CAT_SYMBOL;
}
/* [^\s\p{L}\p{N}] */
static bool is_other(struct uch u) { return u.cls == UC_OTHER; }
/* [^\r\n\p{L}\p{N}]: the one character allowed before a word */
static bool is_word_lead(struct uch u)
{
    return u.cls != UC_LETTER && u.cls != UC_NUMBER && !is_cr_lf(u);
}
static bool is_ds_letter(struct uch u) { return IN_RANGES(u.cp, ds_letters); }
static bool is_ds_punct(struct uch u) { return IN_RANGES(u.cp, ds_punct); }
static bool is_ds_cjk(struct uch u) { return IN_RANGES(u.cp, ds_cjk); }
static bool is_ds3_cjk(struct uch u) { return IN_RANGES(u.cp, ds3_cjk); }
static bool is_bloom_word(struct uch u)
{
    return u.cls != UC_SPACE && !IN_RANGES(u.cp, bloom_stops);
}
/* HF tokenizers' Punctuation pre-tokenizer: ASCII punctuation or \p{P} */
static bool is_hf_punct(struct uch u) { return is_ascii_punct(u.cp) || u.cat == UC_CAT_PUNCT; }
static bool is_not_hf_punct(struct uch u) { return !is_hf_punct(u); }

/* A pattern tried at one position: the end of its match at i, or 0 when it
 * does not match there (no pattern here matches the empty string). */
typedef size_t (*matcher)(const unsigned char *s, size_t n, size_t i);

/* Hugging Face's Split with behaviour "isolated": a match is a piece, and
 * so is each stretch of text between matches. The piece that starts at i. */
static size_t isolated(const unsigned char *s, size_t n, size_t i, matcher m)
{
    size_t e = m(s, n, i);
    if (e) return e;
    for (e = i + uch_at(s, n, i).len; e < n && !m(s, n, e); e += uch_at(s, n, e).len) {}
    return e;
}

/* `\s?X+` (any_space) or ` ?X+` (X = pred): the match at i, 0 if none */
static size_t opt_space_run(const unsigned char *s, size_t n, size_t i, char_pred pred,
                            bool any_space)
{
    struct uch c = uch_at(s, n, i);
    if (pred(c)) return run_of(s, n, i, pred);
    bool space = any_space ? c.cls == UC_SPACE : c.cp == ' ';
    if (space && i + c.len < n && pred(uch_at(s, n, i + c.len)))
        return run_of(s, n, i + c.len, pred);
    return 0;
}

/* `A*B+` at i as a backtracking engine matches it (A and B may overlap):
 * the longest A run, then B+ after it; failing that, the run is cut back to
 * its last B character. 0 if no match. */
static size_t star_plus(const unsigned char *s, size_t n, size_t i, char_pred a, char_pred b)
{
    size_t e = i, last_b = 0;
    while (e < n) {
        struct uch u = uch_at(s, n, e);
        if (!a(u)) break;
        e += u.len;
        if (b(u)) last_b = e;
    }
    if (e < n && b(uch_at(s, n, e))) return run_of(s, n, e, b);
    return last_b;
}

/* `A+B*` at i: 0 if the character at i is not A. */
static size_t plus_star(const unsigned char *s, size_t n, size_t i, char_pred a, char_pred b)
{
    size_t e = run_of(s, n, i, a);
    return e == i ? 0 : run_of(s, n, e, b);
}

/* `P?X` where X is a matcher-like function of (a, b): with the lead
 * character first, then without. */
static size_t with_lead(const unsigned char *s, size_t n, size_t i, char_pred a, char_pred b,
                        size_t (*x)(const unsigned char *, size_t, size_t, char_pred, char_pred))
{
    struct uch c = uch_at(s, n, i);
    size_t e;
    if (is_word_lead(c) && i + c.len < n && (e = x(s, n, i + c.len, a, b))) return e;
    return x(s, n, i, a, b);
}

/* ` ?[^\s\p{L}\p{N}]+` followed by any of the bytes in `tail`: 0 if none */
static size_t other_run(const unsigned char *s, size_t n, size_t i, const char *tail)
{
    size_t j = i;
    if (s[i] == ' ' && i + 1 < n) j = i + 1;
    size_t e = run_of(s, n, j, is_other);
    if (e == j) return 0;
    while (e < n && s[e] && strchr(tail, s[e])) e++;
    return e;
}

/* ---- the patterns ------------------------------------------------------------- */

static size_t llama3_pat(const unsigned char *s, size_t n, size_t i)
{
    return llama3_next(s, n, i, 3);
}
static size_t qwen2_pat(const unsigned char *s, size_t n, size_t i)
{
    return llama3_next(s, n, i, 1);
}

/* \p{N} (one character) */
static size_t one_number(const unsigned char *s, size_t n, size_t i)
{
    struct uch u = uch_at(s, n, i);
    return u.cls == UC_NUMBER ? i + u.len : 0;
}
static size_t digits_isolated(const unsigned char *s, size_t n, size_t i)
{
    return isolated(s, n, i, one_number);
}

/* \p{N}{1,3} */
static size_t numbers_1_3(const unsigned char *s, size_t n, size_t i)
{
    size_t e = run_end(s, n, i, UC_NUMBER, 3);
    return e == i ? 0 : e;
}

/* Tekken and GPT-4o:
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+C|
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*C|
 *   \p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * with C = (?i:'s|'t|'re|'ve|'m|'ll|'d)? and D = 3 for GPT-4o; no C and D = 1
 * for Tekken. */
static size_t cased_next(const unsigned char *s, size_t n, size_t i, bool contractions,
                         size_t max_digits)
{
    size_t e = with_lead(s, n, i, is_upperish, is_lowerish, star_plus);
    if (!e) e = with_lead(s, n, i, is_upperish, is_lowerish, plus_star);
    if (e) {
        if (contractions && e < n && s[e] == '\'') e += contraction(s, n, e, true);
        return e;
    }
    struct uch c = uch_at(s, n, i);
    if (c.cls == UC_NUMBER) return run_end(s, n, i, UC_NUMBER, max_digits);
    if ((e = other_run(s, n, i, "\r\n/"))) return e;
    return space_end(s, n, i, true);
}
static size_t tekken_pat(const unsigned char *s, size_t n, size_t i)
{
    return cased_next(s, n, i, false, 1);
}
static size_t gpt4o_pat(const unsigned char *s, size_t n, size_t i)
{
    return cased_next(s, n, i, true, 3);
}

/* DeepSeek LLM: [\r\n] | \s?LETTERS+ | \s?PUNCT+ | \s+$ | CJK+ | \p{N}+, one
 * split after the other. */
static size_t cr_lf(const unsigned char *s, size_t n, size_t i)
{
    return s[i] == '\r' || s[i] == '\n' ? i + 1 : 0;
}
static size_t ds_word(const unsigned char *s, size_t n, size_t i)
{
    return opt_space_run(s, n, i, is_ds_letter, true);
}
static size_t ds_punct_run(const unsigned char *s, size_t n, size_t i)
{
    return opt_space_run(s, n, i, is_ds_punct, true);
}
static size_t trailing_space(const unsigned char *s, size_t n, size_t i)
{
    return run_of(s, n, i, is_space) == n && i < n ? n : 0;
}
static size_t ds_cjk_run(const unsigned char *s, size_t n, size_t i)
{
    size_t e = run_of(s, n, i, is_ds_cjk);
    return e == i ? 0 : e;
}
static size_t numbers(const unsigned char *s, size_t n, size_t i)
{
    size_t e = run_of(s, n, i, is_number);
    return e == i ? 0 : e;
}

/* DeepSeek V3: \p{N}{1,3} | [一-龥぀-ゟ゠-ヿ]+ | then
 *   [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|
 *   [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|
 *   \s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t ds3_cjk_run(const unsigned char *s, size_t n, size_t i)
{
    size_t e = run_of(s, n, i, is_ds3_cjk);
    return e == i ? 0 : e;
}
static size_t ds3_main(const unsigned char *s, size_t n, size_t i)
{
    struct uch c = uch_at(s, n, i);
    size_t e;
    if (c.cp < 0x80 && is_ascii_punct(c.cp) && (e = run_of(s, n, i + 1, is_ascii_letter)) > i + 1)
        return e;
    bool lead = !is_cr_lf(c) && c.cls != UC_LETTER && !is_punct_or_symbol(c);
    if (lead && i + c.len < n && (e = run_of(s, n, i + c.len, is_letter_or_mark)) > i + c.len)
        return e;
    if ((e = run_of(s, n, i, is_letter_or_mark)) > i) return e;
    size_t j = s[i] == ' ' && i + 1 < n ? i + 1 : i;
    if ((e = run_of(s, n, j, is_punct_or_symbol)) > j) {
        while (e < n && (s[e] == '\r' || s[e] == '\n')) e++;
        return e;
    }
    if (c.cls == UC_SPACE) return space_end(s, n, i, true);
    return 0;
}

/* Falcon: Punctuation (runs), GPT-2's pattern, then on the byte-level
 * characters: runs of numeric characters and 3-digit groups. The byte-level
 * character of a byte is numeric for the ASCII digits and for ² ³ ¹ ¼ ½ ¾
 * (bytes B2 B3 B9 BC BD BE, which also occur inside UTF-8 sequences). */
static size_t punct_runs(const unsigned char *s, size_t n, size_t i)
{
    return run_of(s, n, i, is_hf_punct(uch_at(s, n, i)) ? is_hf_punct : is_not_hf_punct);
}
static bool byte_numeric(unsigned char b)
{
    return (b >= '0' && b <= '9') || b == 0xB2 || b == 0xB3 || b == 0xB9 ||
           (b >= 0xBC && b <= 0xBE);
}
static size_t byte_digit_runs(const unsigned char *s, size_t n, size_t i)
{
    bool num = byte_numeric(s[i]);
    size_t e = i + 1;
    while (e < n && byte_numeric(s[e]) == num) e++;
    return e;
}
static size_t three_digits(const unsigned char *s, size_t n, size_t i)
{
    for (size_t k = 0; k < 3; k++)
        if (i + k >= n || s[i + k] < '0' || s[i + k] > '9') return 0;
    return i + 3;
}
static size_t byte_three_digits(const unsigned char *s, size_t n, size_t i)
{
    if (three_digits(s, n, i)) return i + 3;
    size_t e = i + 1;
    while (e < n && !three_digits(s, n, e)) e++;
    return e;
}

/* BLOOM, Poro, GPT-3 Finnish:  ?[^(\s|.,!?…。，、।۔،)]+ */
static size_t bloom_word(const unsigned char *s, size_t n, size_t i)
{
    return opt_space_run(s, n, i, is_bloom_word, false);
}

/* ---- the families: one split after another -------------------------------------- */

/* A stage cuts a piece (s, n) further: the end of the sub-piece at i. */
typedef size_t (*stage)(const unsigned char *s, size_t n, size_t i);

#define ISOLATED_STAGE(name, m) \
    static size_t name(const unsigned char *s, size_t n, size_t i) { return isolated(s, n, i, m); }
ISOLATED_STAGE(cr_lf_stage, cr_lf)
ISOLATED_STAGE(ds_word_stage, ds_word)
ISOLATED_STAGE(ds_punct_stage, ds_punct_run)
ISOLATED_STAGE(trailing_space_stage, trailing_space)
ISOLATED_STAGE(ds_cjk_stage, ds_cjk_run)
ISOLATED_STAGE(numbers_stage, numbers)
ISOLATED_STAGE(numbers_1_3_stage, numbers_1_3)
ISOLATED_STAGE(ds3_cjk_stage, ds3_cjk_run)
ISOLATED_STAGE(ds3_main_stage, ds3_main)
ISOLATED_STAGE(bloom_stage, bloom_word)

struct family {
    enum bpe_pre pre;
    const stage *stages;
    size_t n_stages;
    bool byte_cuts; /* may cut inside a UTF-8 character (Falcon) */
};
#define FAMILY(p, ...)                                                             \
    {                                                                              \
        .pre = p, .stages = (const stage[]){__VA_ARGS__},                          \
        .n_stages = sizeof((const stage[]){__VA_ARGS__}) / sizeof(stage)           \
    }

static const struct family families[] = {
    FAMILY(BPE_PRE_GPT2, gpt2_next),
    FAMILY(BPE_PRE_LLAMA3, llama3_pat),
    FAMILY(BPE_PRE_QWEN2, qwen2_pat),
    FAMILY(BPE_PRE_STARCODER, digits_isolated, gpt2_next),
    FAMILY(BPE_PRE_TEKKEN, tekken_pat),
    FAMILY(BPE_PRE_GPT4O, gpt4o_pat),
    FAMILY(BPE_PRE_DEEPSEEK_LLM, cr_lf_stage, ds_word_stage, ds_punct_stage,
           trailing_space_stage, ds_cjk_stage, numbers_stage),
    FAMILY(BPE_PRE_DEEPSEEK3, numbers_1_3_stage, ds3_cjk_stage, ds3_main_stage),
    FAMILY(BPE_PRE_BLOOM, bloom_stage),
    {.pre = BPE_PRE_FALCON,
     .stages = (const stage[]){punct_runs, gpt2_next, byte_digit_runs, byte_three_digits},
     .n_stages = 4,
     .byte_cuts = true},
};
_Static_assert(sizeof families / sizeof *families == BPE_PRE_COUNT, "a family is missing");

static const struct family *family_of(enum bpe_pre pre)
{
    for (size_t k = 0; k < sizeof families / sizeof *families; k++)
        if (families[k].pre == pre) return &families[k];
    return &families[0];
}

bool bpe_pre_cuts_bytes(enum bpe_pre pre) { return family_of(pre)->byte_cuts; }

struct ends {
    size_t *v, n, cap;
    bool oom;
};

static void ends_push(struct ends *e, size_t at)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64, bytes;
        size_t *v;
        if (!anc_mul_ok(cap, sizeof *v, &bytes) || !(v = realloc(e->v, bytes))) {
            e->oom = true;
            return;
        }
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = at;
}

/* Cut s[lo, hi) with the stages from k on; the ends are offsets in s. */
static void cut(const struct family *f, size_t k, const unsigned char *s, size_t lo, size_t hi,
                struct ends *out)
{
    if (k == f->n_stages) {
        ends_push(out, hi);
        return;
    }
    for (size_t i = lo; i < hi && !out->oom;) {
        size_t e = lo + f->stages[k](s + lo, hi - lo, i - lo);
        cut(f, k + 1, s, i, e, out);
        i = e;
    }
}

bool bpe_pretokenize(enum bpe_pre pre, const char *text, size_t len, size_t **ends, size_t *n)
{
    struct ends e = {0};
    cut(family_of(pre), 0, (const unsigned char *)text, 0, len, &e);
    if (e.oom) {
        free(e.v);
        return false;
    }
    *ends = e.v;
    *n = e.n;
    return true;
}

/* ---- names of tokenizer.ggml.pre ---------------------------------------------- */

/* Values written by llama.cpp's converter for models whose pre-tokenizer is
 * one of ours. "default" means the GPT-2 pattern here. */
static const struct {
    const char *name;
    enum bpe_pre pre;
} pre_names[] = {
    {"default", BPE_PRE_GPT2},         {"gpt-2", BPE_PRE_GPT2},
    {"phi-2", BPE_PRE_GPT2},           {"mpt", BPE_PRE_GPT2},
    {"olmo", BPE_PRE_GPT2},            {"jais", BPE_PRE_GPT2},
    {"trillion", BPE_PRE_GPT2},        {"exaone4", BPE_PRE_GPT2},
    {"llama-bpe", BPE_PRE_LLAMA3},     {"llama3", BPE_PRE_LLAMA3},
    {"llama-v3", BPE_PRE_LLAMA3},      {"falcon3", BPE_PRE_LLAMA3},
    {"dbrx", BPE_PRE_LLAMA3},          {"smaug-bpe", BPE_PRE_LLAMA3},
    {"chatglm-bpe", BPE_PRE_LLAMA3},   {"glm4", BPE_PRE_LLAMA3},
    {"qwen2", BPE_PRE_QWEN2},          {"deepseek-r1-qwen", BPE_PRE_QWEN2},
    {"stablelm2", BPE_PRE_QWEN2},      {"megrez", BPE_PRE_QWEN2},
    {"hunyuan", BPE_PRE_QWEN2},
    {"starcoder", BPE_PRE_STARCODER},  {"smollm", BPE_PRE_STARCODER},
    {"refact", BPE_PRE_STARCODER},     {"command-r", BPE_PRE_STARCODER},
    {"codeshell", BPE_PRE_STARCODER},  {"exaone", BPE_PRE_STARCODER},
    {"minerva-7b", BPE_PRE_STARCODER},
    {"tekken", BPE_PRE_TEKKEN},
    {"gpt-4o", BPE_PRE_GPT4O},         {"llama4", BPE_PRE_GPT4O},
    {"deepseek-llm", BPE_PRE_DEEPSEEK_LLM},
    {"deepseek-v3", BPE_PRE_DEEPSEEK3},
    {"falcon", BPE_PRE_FALCON},
    {"bloom", BPE_PRE_BLOOM},          {"poro-chat", BPE_PRE_BLOOM},
    {"gpt3-finnish", BPE_PRE_BLOOM},
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
    return "default, gpt-2, phi-2, mpt, olmo, jais, trillion, exaone4, llama-bpe, llama3, "
           "llama-v3, falcon3, dbrx, smaug-bpe, chatglm-bpe, glm4, qwen2, deepseek-r1-qwen, "
           "stablelm2, megrez, hunyuan, starcoder, smollm, refact, command-r, codeshell, "
           "exaone, minerva-7b, tekken, gpt-4o, llama4, deepseek-llm, deepseek-v3, falcon, "
           "bloom, poro-chat, gpt3-finnish";
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
    /* as llama.cpp does for Llama 3 and Tekken: whole-word lookup first, BOS
       by default */
    bool llama_like = t->pre == BPE_PRE_LLAMA3 || t->pre == BPE_PRE_TEKKEN;
    t->ignore_merges = llama_like;
    if (llama_like && !gguf_find_kv(f, KEY_ADD_BOS)) t->add_bos = true;

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

/* A byte the vocabulary lacks becomes the unknown token when there is a
 * real one; files that name a control token as unknown (SmolLM2 names
 * <|endoftext|>) get nothing, as Hugging Face's BPE and llama.cpp give. */
static void emit(struct bpe_state *st, int32_t id)
{
    const struct tokenizer *t = st->t;
    if (id >= 0)
        st->out[st->n_out++] = id;
    else if (t->unk >= 0 && t->tok[t->unk].type == TOK_TYPE_UNKNOWN)
        st->out[st->n_out++] = t->unk;
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
    size_t *ends = NULL, k = 0;
    if (!bpe_pretokenize(st->t->pre, (const char *)s, n, &ends, &k)) {
        st->oom = true;
        return;
    }
    for (size_t j = 0, at = 0; j < k && !st->oom; j++) {
        encode_word(st, s + at, ends[j] - at);
        at = ends[j];
    }
    free(ends);
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
        size_t k = tok_ud_match(t, s + i, len - i, NULL);
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
