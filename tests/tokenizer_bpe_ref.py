#!/usr/bin/env python3
# tokenizer_bpe_ref.py — expected byte-level BPE token ids and pre-tokenizer
# splits from independent implementations: Hugging Face `tokenizers` (BPE model,
# ByteLevel and Split pre-tokenizers, Oniguruma regexes), the `regex` package
# running the published patterns, and (when installed) `tiktoken` as a second
# opinion. Reads ggml-vocab-gpt-2.gguf with the `gguf` package; never imports
# Ancora. Generated with tokenizers 0.23.3, regex 2026.11.19, tiktoken 0.14.0,
# gguf 0.19.0, Python 3.11.2.
#
# Usage: python3 tests/tokenizer_bpe_ref.py [VOCAB] [OUTDIR]
#   VOCAB  default $ANC_MODELS_DIR/ggml-vocab-gpt-2.gguf
#          (else ../shared/models/ggml-vocab-gpt-2.gguf beside the checkout)
#   OUTDIR default tests/golden next to this script
# Writes, in OUTDIR (JSON strings, UTF-8):
#   tokenizer_gpt2.tsv            JSON text TAB ids: GPT-2 vocabulary, gpt-2
#                                 pre-tokenizer (no BOS: the file adds none)
#   tokenizer_gpt2_FAMILY.tsv     the same texts and vocabulary with the other
#                                 families' pre-tokenizers (FAMILY = llama_bpe,
#                                 qwen2, starcoder, tekken, gpt4o, deepseek_llm,
#                                 deepseek3, falcon, bloom)
#   tokenizer_split_FAMILY.tsv    JSON text TAB JSON array of pre-tokens, for
#                                 gpt2 and each family but falcon
#   tokenizer_gpt2_decode.tsv     ids TAB JSON text: tokenizers' decode of
#                                 hand-made sequences (control token skipped)
#   tokenizer_gpt2_bytes.tsv      byte TAB id of that byte's token, all 256
import json
import os
import sys
import unicodedata

import gguf
import regex
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))

# The patterns, exactly as published (GPT-2's encoder.py; Llama 3's and
# Qwen2's tokenizer.json).
PATTERNS = {
    "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "llama_bpe": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    "qwen2": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}
# Llama 3's (and Tekken's) BPE model looks a whole pre-token up before merging.
IGNORE_MERGES = {"gpt2": False, "llama_bpe": True, "qwen2": False, "starcoder": False,
                 "tekken": True, "gpt4o": False, "deepseek_llm": False, "deepseek3": False,
                 "falcon": False, "bloom": False}

# The other families' patterns, as their tokenizer.json files (and llama.cpp's
# src/llama-vocab.cpp) publish them. Letter and punctuation ranges are spelled
# with escapes so that no editor or viewer normalises them (the Kelvin sign,
# the Ohm sign and a few Greek letters have canonical equivalents).
CASED = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+%s|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*%s"
CONTRACTIONS = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
TEKKEN = (CASED % ("", "")) + r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
GPT4O = (CASED % (CONTRACTIONS, CONTRACTIONS)) + r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
DS_LETTER_RANGES = [
    (0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA),
    (0x1BC, 0x1BF), (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x377),
    (0x37B, 0x37D), (0x37F, 0x37F), (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C),
    (0x38E, 0x3A1), (0x3A3, 0x3F5), (0x3F7, 0x481), (0x48A, 0x52F), (0x531, 0x556),
    (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1C90, 0x1CBA), (0x1CBD, 0x1CBF),
    (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15), (0x1F18, 0x1F1D),
    (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B),
    (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE),
    (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC),
    (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2102, 0x2102), (0x2107, 0x2107), (0x210A, 0x2113),
    (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126), (0x2128, 0x2128),
    (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F), (0x2145, 0x2149),
    (0x214E, 0x214E), (0x2183, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4), (0x2CEB, 0x2CEE),
    (0x2CF2, 0x2CF3), (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F), (0xA771, 0xA787),
    (0xA78B, 0xA78E), (0xAB70, 0xABBF), (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A),
    (0xFF41, 0xFF5A), (0x10400, 0x1044F), (0x104B0, 0x104D3), (0x104D8, 0x104FB),
    (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x118A0, 0x118DF), (0x1E900, 0x1E943)]


def char_set(ranges):
    esc = lambda c: "\\x{%x}" % c
    return "[" + "".join(esc(a) if a == b else esc(a) + "-" + esc(b) for a, b in ranges) + "]"


DS_LLM = [
    r"[\r\n]",
    r"\s?" + char_set(DS_LETTER_RANGES) + "+",
    r"\s?" + char_set([(0x21, 0x2F), (0x3A, 0x7E), (0xFF01, 0xFF0F), (0xFF1A, 0xFF5E),
                        (0x2018, 0x201F), (0x3000, 0x3002)]) + "+",
    r"\s+$",
    char_set([(0x4E00, 0x9FA5), (0x800, 0x4E00), (0xAC00, 0xD7FF)]) + "+",
    r"\p{N}+",
]
DS_V3 = [
    r"\p{N}{1,3}",
    char_set([(0x4E00, 0x9FA5), (0x3040, 0x309F), (0x30A0, 0x30FF)]) + "+",
    r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
]
BLOOM = r" ?[^(\s|.,!?\x{2026}\x{3002}\x{ff0c}\x{3001}\x{964}\x{6d4}\x{60c})]+"
# family -> the Split patterns (one after another) when its tokenizer.json is
# a Sequence of Splits and a ByteLevel without its own pattern
SPLITS = {"llama_bpe": [PATTERNS["llama_bpe"]], "qwen2": [PATTERNS["qwen2"]],
          "tekken": [TEKKEN], "gpt4o": [GPT4O], "deepseek_llm": DS_LLM, "deepseek3": DS_V3,
          "bloom": [BLOOM]}
# families whose pieces the regex package can produce with one findall
SINGLE = {"gpt2": PATTERNS["gpt2"], "llama_bpe": PATTERNS["llama_bpe"],
          "qwen2": PATTERNS["qwen2"], "tekken": TEKKEN, "gpt4o": GPT4O}
FAMILIES = ["gpt2", "llama_bpe", "qwen2", "starcoder", "tekken", "gpt4o", "deepseek_llm",
            "deepseek3", "falcon", "bloom"]

LONG_PARAGRAPH = (
    "It was the best of times, it was the worst of times, it was the age of "
    "wisdom, it was the age of foolishness, it was the epoch of belief, it was "
    "the epoch of incredulity, it was the season of Light, it was the season of "
    "Darkness, it was the spring of hope, it was the winter of despair."
)

C_CODE = (
    "int main(int argc, char **argv)\n{\n    if (argc > 1) {\n"
    "        printf(\"%s\\n\", argv[1]);\n    }\n\treturn 0;\n}\n"
)

PY_CODE = "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}  # comment\n\n\nclass A:\n\tpass\n"

CASES = [
    # spaces, tabs, newlines: the (?!\S) lookahead and the [\r\n] rules
    "", " ", "  ", "   ", "\t", "\n", "\n\n\n", "\r\n", "\r\n\r\n", " \n", "\n ",
    "Hello", " Hello", "  Hello", "    leading four spaces", "Hello world", "Hello, world!",
    "hello   world", "trailing space ", "trailing spaces   ", "a  b   c    d",
    "\ttab\tseparated\tvalues", "\t\tdouble tab", " \tx", "\t x", "x \t y",
    "a\nb", "a\n\nb", "a \n b", "a  \n\n  b", "x\n  y", "line one\r\nline two\r\n",
    " \r\n x", "\r\r\n\n", "\n\t\n", "  \n  \n  x", "!!!\n\nfoo", "...\r\n", "}\n\n",
    "word\n", "word \n", "a\u00a0b", "\u00a0\u00a0x", "a\u3000b\u3000\u3000c", "x\u2028y",
    "a\x85b", "\x0b\x0cv", "\x1c\x1d\x1e\x1f", "a\u200bb", "\ufeffBOM", "x \u00a0y",
    # contractions, case
    "I'm", "I'M", "don't", "DON'T", "Don'T", "you're", "YOU'RE", "You'Re", "we've",
    "WE'VE", "they'll", "THEY'LL", "he'd", "HE'D", "it's", "IT'S", "'s", "'S", "''s",
    "'x", "' s", "'sun", "'llama", "rock'n'roll", "O'Neil's", "l'\u00e9t\u00e9",
    "'\u017f", "x'\u017fy", "it\u2019s", "\"'s\"", "'", "''", "'re've'll'd'm't",
    "HELLO World hello", "CamelCaseIdentifier", "snake_case_name",
    # numbers
    "1", "12", "123", "1234", "1234567", "12345678901234567890", "3.14159",
    "1,000,000", "-42", "+7", "1e-9", "0xFF", "x1y22z333w4444", " 123 456", "a 1",
    "2024-01-01", "\u0663\u0664\u0665\u0666", "\u216b\u2167", "\u00bd\u00b2\u00b3",
    "\u2460\u2461\u2462", "\uff11\uff12\uff13\uff14", "v2.0.1-rc3",
    # punctuation
    "!!!???...", "@#$%^&*", "(){}[]<>", "--==++", "\"quoted\" 'single' `back`",
    " ... ", "a.b.c", "...!!!", "\u2026 \u2014 \u00ab\u00bb \u201cq\u201d", "!a", " !a",
    "$x", "#include <stdio.h>",
    # scripts, accents, combining marks
    "na\u00efve caf\u00e9 r\u00e9sum\u00e9", "\u00c0\u00c9\u00ce\u00d5\u00dc \u00e0\u00e9\u00ee\u00f5\u00fc \u00f1\u00d1 \u00e7\u00c7 \u00df",
    "e\u0301 a\u0308 n\u0303", "Ame\u0301lie", "\u0301x", " \u0301", "\u0915\u094d\u0937",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "\u041f\u0420\u0418\u0412\u0415\u0422", "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd", "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
    "\U0002070e\U00020731", "rare \U0002070e then", "\ufb01 \ufb02 \u3231 \uff76 \uff21",
    "English, \u4e2d\u6587, \u0440\u0443\u0441\u0441\u043a\u0438\u0439, \u0627\u0644\u0639\u0631\u0628\u064a\u0629, and \u65e5\u672c\u8a9e in one line",
    # emoji and other symbols
    "\U0001f44d\U0001f3fd\U0001f680", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family",
    "hi \U0001f600!", "\u2764\ufe0f", "\u2211 \u221e \u2192", "\ufffd", "\U0010ffff",
    # control characters and special-token text (plain text here)
    "\x00", "a\x00b", "\x01\x02\x7f", "\x1b[0m", "<|endoftext|>", "<|endoftext|> Hello",
    "<s>", "[INST] question [/INST]",
    # code, URLs, long runs
    C_CODE, PY_CODE, "if (x) {\n\treturn 0;\n}", "https://example.com/path?query=1&x=y#frag",
    "user@example.org", "a" * 100, " " * 20 + "x", "ab" * 50, "=" * 40, "\n" * 10 + "x",
    "The quick brown fox jumps over the lazy dog.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    LONG_PARAGRAPH,
    "".join(chr(c) for c in range(1, 0x80)),
    "".join(chr(c) for c in range(0x80, 0x100)),
]

# id sequences for decoding (tokenizers' ByteLevel decoder; the control token
# <|endoftext|> skipped as Ancora drops control tokens). Byte tokens only in
# sequences that form valid UTF-8: tokenizers writes U+FFFD for invalid runs.
DECODE_CASES = [
    [], [50256], [15496, 50256, 995], [50256, 50256], [220], [220, 220], [198], [197, 198],
    [2634], [127, 102], [8582, 237, 222], [15496, 11, 995, 0], [1212, 318, 257, 1332, 13],
    [0, 1, 2, 3, 4], [188, 189, 190], [221, 220, 188], [8582, 50256, 237, 222],
]


def default_vocab():
    d = os.environ.get("ANC_MODELS_DIR") or os.path.join(HERE, "..", "..", "shared", "models")
    return os.path.join(d, "ggml-vocab-gpt-2.gguf")


def js(s):
    return json.dumps(s, ensure_ascii=False)


def bytes_to_unicode():
    """GPT-2's published byte -> character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def read_vocab(path):
    r = gguf.GGUFReader(path)

    def strs(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    def scalar(key):
        f = r.fields.get(key)
        return None if f is None else f.parts[f.data[0]]

    assert bytes(scalar("tokenizer.ggml.model")).decode() == "gpt2"
    add_bos = scalar("tokenizer.ggml.add_bos_token")
    if add_bos is not None and bool(add_bos[0]):
        sys.exit("the vocabulary asks for BOS; these goldens assume it does not")
    return strs("tokenizer.ggml.tokens"), strs("tokenizer.ggml.merges")


def char_class(ch, use_regex):
    """space / Lu Ll Lt Lm Lo / M / N / P / S / other, from unicodedata (what
    Ancora's tables hold) or from the regex package (what the reference
    splits use)."""
    if use_regex:
        for name, pat in (("space", r"\s"), ("Lu", r"\p{Lu}"), ("Ll", r"\p{Ll}"),
                          ("Lt", r"\p{Lt}"), ("Lm", r"\p{Lm}"), ("Lo", r"\p{Lo}"),
                          ("M", r"\p{M}"), ("N", r"\p{N}"), ("P", r"\p{P}"), ("S", r"\p{S}")):
            if regex.fullmatch(pat, ch):
                return name
        return "other"
    cp = ord(ch)
    if ch.isspace() and not 0x1C <= cp <= 0x1F:
        return "space"
    cat = unicodedata.category(ch)
    if cat[0] == "L":
        return cat
    return cat[0] if cat[0] in "MNPS" else "other"


def build_hf(tokens, merges, pre, special=False):
    vocab = {t: i for i, t in enumerate(tokens)}
    bpe = models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges],
                     ignore_merges=IGNORE_MERGES[pre])
    tk = Tokenizer(bpe)
    tk.pre_tokenizer = build_pre(pre)
    tk.decoder = decoders.ByteLevel()
    if special:
        # only for decoding: special tokens typed in text stay plain text
        tk.add_special_tokens(["<|endoftext|>"])
    return tk


def build_pre(pre):
    """The family's pre_tokenizer section, as its tokenizer.json has it."""
    P = pre_tokenizers
    if pre == "gpt2":
        # GPT-2's own set-up: the ByteLevel pre-tokenizer carries the pattern
        return P.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre == "starcoder":
        # StarCoder, SmolLM: every digit alone, then GPT-2's
        return P.Sequence([P.Digits(individual_digits=True),
                           P.ByteLevel(add_prefix_space=False, use_regex=True)])
    if pre == "falcon":
        return P.Sequence([P.Punctuation(behavior="contiguous"),
                           P.ByteLevel(add_prefix_space=False, use_regex=True),
                           P.Digits(individual_digits=False),
                           P.Split(Regex("[0-9][0-9][0-9]"), behavior="isolated", invert=False)])
    # Llama 3, Qwen2, Tekken, ...: Splits on the patterns, then bytes
    return P.Sequence([P.Split(Regex(p), behavior="isolated", invert=False) for p in SPLITS[pre]]
                      + [P.ByteLevel(add_prefix_space=False, use_regex=False)])


def build_tiktoken(tokens, pre):
    try:
        import tiktoken
    except ImportError:
        return None
    u2b = {c: b for b, c in bytes_to_unicode().items()}
    ranks = {}
    for i, t in enumerate(tokens):
        if t == "<|endoftext|>":
            continue
        ranks[bytes(u2b[c] for c in t)] = i
    return tiktoken.Encoding("ancora-check-" + pre, pat_str=PATTERNS[pre],
                             mergeable_ranks=ranks, special_tokens={})


def main():
    vocab_path = sys.argv[1] if len(sys.argv) > 1 else default_vocab()
    outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "golden")
    tokens, merges = read_vocab(vocab_path)
    assert len(CASES) >= 150, len(CASES)
    assert len(set(CASES)) == len(CASES), "duplicate case"

    # The cases must not depend on the Unicode version: every character has
    # the same class in Python's unicodedata (Ancora's tables) as in regex.
    for text in CASES:
        for ch in set(text):
            a, b = char_class(ch, False), char_class(ch, True)
            if a != b:
                sys.exit("U+%04X is %s in unicodedata %s but %s in regex: drop it"
                         % (ord(ch), a, unicodedata.unidata_version, b))

    b2u = bytes_to_unicode()
    u2b = {c: b for b, c in b2u.items()}
    files = {}

    # splits: tokenizers' own pre-tokenizers, checked against the regex package
    # where one pattern does it all (Falcon's pieces may cut characters: its
    # ids are checked, not its splits)
    for pre in FAMILIES:
        if pre == "falcon":
            continue
        tk = build_hf(tokens, merges, pre)
        lines = []
        for text in CASES:
            hf = [bytes(u2b[c] for c in p).decode("utf-8")
                  for p, _ in tk.pre_tokenizer.pre_tokenize_str(text)]
            assert "".join(hf) == text
            if pre in SINGLE and regex.findall(SINGLE[pre], text) != hf:
                sys.exit("%s: regex and tokenizers split %s differently:\n  %r\n  %r"
                         % (pre, js(text), regex.findall(SINGLE[pre], text), hf))
            lines.append("%s\t%s\n" % (js(text), js(hf)))
        files["tokenizer_split_%s.tsv" % pre] = lines

    # ids: tokenizers, checked against tiktoken where it applies
    for pre in FAMILIES:
        tk = build_hf(tokens, merges, pre)
        tt = build_tiktoken(tokens, pre) if pre in PATTERNS else None
        lines = []
        for text in CASES:
            ids = tk.encode(text, add_special_tokens=False).ids
            if tk.decode(ids) != text:
                sys.exit("%s: tokenizers does not round-trip %s" % (pre, js(text)))
            # tiktoken always looks whole pre-tokens up first, as ignore_merges
            if tt is not None and tt.encode(text, disallowed_special=()) != ids:
                sys.exit("%s: tiktoken and tokenizers disagree on %s" % (pre, js(text)))
            lines.append("%s\t%s\n" % (js(text), " ".join(map(str, ids))))
        name = "tokenizer_gpt2.tsv" if pre == "gpt2" else "tokenizer_gpt2_%s.tsv" % pre
        files[name] = lines

    tk = build_hf(tokens, merges, "gpt2", special=True)
    files["tokenizer_gpt2_decode.tsv"] = [
        "%s\t%s\n" % (" ".join(map(str, ids)), js(tk.decode(ids, skip_special_tokens=True)))
        for ids in DECODE_CASES]
    files["tokenizer_gpt2_bytes.tsv"] = [
        "%d\t%d\n" % (b, tokens.index(b2u[b])) for b in range(256)]

    os.makedirs(outdir, exist_ok=True)
    for name, lines in files.items():
        with open(os.path.join(outdir, name), "w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)


if __name__ == "__main__":
    main()
