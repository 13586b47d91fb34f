#!/usr/bin/python3
# tokenizer_ref.py — expected Llama-2 token ids and decoded texts from the
# independent SentencePiece implementation (Debian's python3-sentencepiece).
# Needs only sentencepiece and llama2-tokenizer.model; never imports Ancora.
#
# Usage: /usr/bin/python3 tests/tokenizer_ref.py [MODEL] [OUTDIR]
#   MODEL  default $ANC_MODELS_DIR/llama2-tokenizer.model
#          (else ../shared/models/llama2-tokenizer.model beside the checkout)
#   OUTDIR default tests/golden next to this script
# Writes, in OUTDIR:
#   tokenizer_llama_spm.tsv        JSON text TAB ids (BOS 1 first): encode cases
#   tokenizer_llama_spm_decode.tsv ids TAB JSON text: sentencepiece's decode of
#                                  each encode case's ids, then hand-made id
#                                  sequences (BOS/EOS in odd places, <unk>,
#                                  byte tokens, bare U+2581 pieces)
import json
import os
import sys

import sentencepiece

HERE = os.path.dirname(os.path.abspath(__file__))

LONG_PARAGRAPH = (
    "It was the best of times, it was the worst of times, it was the age of "
    "wisdom, it was the age of foolishness, it was the epoch of belief, it was "
    "the epoch of incredulity, it was the season of Light, it was the season of "
    "Darkness, it was the spring of hope, it was the winter of despair, we had "
    "everything before us, we had nothing before us, we were all going direct "
    "to Heaven, we were all going direct the other way \u2013 in short, the period "
    "was so far like the present period, that some of its noisiest authorities "
    "insisted on its being received, for good or for evil, in the superlative "
    "degree of comparison only."
)

CODE = (
    "int main(int argc, char **argv)\n{\n    if (argc > 1) {\n"
    "        printf(\"%s\\n\", argv[1]);\n    }\n\treturn 0;\n}\n"
)

PY_CODE = "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}  # comment\n"

ENCODE_CASES = [
    "",
    " ",
    "  ",
    "   ",
    " Hello",
    "  Hello",
    "    leading four spaces",
    "Hello world",
    "Hello, world!",
    "trailing space ",
    "trailing spaces   ",
    "a  b   c    d",
    "\t",
    "\ttab\tseparated\tvalues",
    "\n",
    "\n\n\n",
    "line one\nline two\r\nline three",
    " \n \t \n",
    "Hello\n\n\n\nworld",
    "!!!???...,,,;;;:::",
    "\"quoted\" 'single' `back` (paren) [bracket] {brace} <angle>",
    "@#$%^&*_+-=~|\\/",
    "3.14159 1234567890",
    "0 00 000 0000 1,000,000 -42 +7 1e-9 0xFF",
    "naïve café résumé",
    "ÀÉÎÕÜ àéîõü ñÑ çÇ ß",
    "\U0001f44d\U0001f3fd\U0001f680",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family",
    "a\u200db\u200bc\ufeffd",
    "e\u0301 a\u0308 n\u0303 \u0915\u094d\u0937",
    "你好，世界！这是一个测试。",
    "日本語のテキスト、カタカナとひらがな。",
    "한국어 텍스트입니다.",
    "Привет, мир",
    "مرحبا بالعالم",
    "שלום עולם",
    "Γειά σου Κόσμε",
    "ภาษาไทย",
    "नमस्ते दुनिया",
    "\U0002070e\U00020731",
    "rare \U0002070e then \U00020731 mixed",
    "English, 中文, русский, العربية, and 日本語 in one line",
    CODE,
    PY_CODE,
    LONG_PARAGRAPH,
    "<s>",
    "</s>",
    "<s> Hello </s>",
    "<unk>",
    "<0x41>",
    "[INST] question [/INST]",
    "\x01",
    "a\x00b",
    "\x07\x08\x0b\x0c\x1b[0m\x7f",
    "\u2581",
    "x\u2581y",
    "\ufffd",
    "\U0010ffff",
    "ﬁ ﬂ ① ㈱ ｶ Ａ",
    "The quick brown fox jumps over the lazy dog.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "https://example.com/path?query=1&x=y#frag",
    "user@example.org",
    "==================",
]

BOS = 1

# (ids without any rule about what is valid) -> sentencepiece's decode.
# Byte tokens only in sequences that form valid UTF-8: sentencepiece turns
# invalid byte runs into U+FFFD, where Ancora gives the raw bytes.
DECODE_CASES = [
    [],
    [1],
    [1, 2],
    [2],
    [0],
    [1, 0],
    [0, 29871],
    [1, 0, 22172],
    [29871],
    [1, 29871],
    [1, 29871, 29871],
    [29871, 29871],
    [1, 259, 22172],
    [22172],
    [1, 22172],
    [1, 1, 29871, 22172],
    [2, 29871, 22172],
    [1, 2, 22172],
    [22172, 1, 22172],
    [22172, 2, 22172],
    [22172, 1, 29871, 22172],
    [13, 29871],
    [13, 2, 22172],
    [35, 22172],
    [1, 35, 22172],
    [35, 35, 22172],
    [1, 243, 163, 159, 145],
    [1, 29871, 243, 163, 159, 145, 29871, 22172],
    [1, 3, 22172],
    [1, 15043, 3186],
    [15043, 3186, 2, 1, 15043],
]


def default_model():
    d = os.environ.get("ANC_MODELS_DIR") or os.path.join(HERE, "..", "..", "shared", "models")
    return os.path.join(d, "llama2-tokenizer.model")


def js(s):
    return json.dumps(s, ensure_ascii=False)


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else default_model()
    outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "golden")
    sp = sentencepiece.SentencePieceProcessor(model_file=model)
    if sp.bos_id() != BOS:
        sys.exit("unexpected BOS id %d in %s" % (sp.bos_id(), model))
    assert len(ENCODE_CASES) >= 40
    assert len(set(ENCODE_CASES)) == len(ENCODE_CASES), "duplicate case"

    enc_lines, dec_lines = [], []
    decode_cases = []
    for text in ENCODE_CASES:
        ids = [BOS] + sp.encode(text)
        enc_lines.append("%s\t%s\n" % (js(text), " ".join(map(str, ids))))
        decode_cases.append(ids)
    decode_cases += DECODE_CASES
    for ids in decode_cases:
        dec_lines.append("%s\t%s\n" % (" ".join(map(str, ids)), js(sp.decode(ids))))

    os.makedirs(outdir, exist_ok=True)
    for name, lines in (("tokenizer_llama_spm.tsv", enc_lines),
                        ("tokenizer_llama_spm_decode.tsv", dec_lines)):
        with open(os.path.join(outdir, name), "w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)


if __name__ == "__main__":
    main()
