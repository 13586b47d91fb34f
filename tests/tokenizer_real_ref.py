#!/usr/bin/env python3
# tokenizer_real_ref.py — expected token ids for two real models' tokenizers,
# from independent implementations built from each GGUF's own vocabulary:
#   SmolLM2-135M-Instruct (byte-level BPE, pre-tokenizer "smollm"): Hugging
#     Face `tokenizers`, BPE from the file's tokens and merges, with SmolLM2's
#     tokenizer.json pre_tokenizer (Digits(individual) + ByteLevel(regex)).
#   Gemma 3 270M (SentencePiece BPE, 262 144 pieces): `sentencepiece`, from a
#     ModelProto rebuilt from the file's pieces, scores and types: model_type
#     BPE, byte_fallback, identity normaliser without dummy prefix or
#     whitespace folding, as Gemma's tokenizer.model has; the converter's
#     "  " user-defined pieces turned back into "▁▁".
# Never imports Ancora. Texts: the hard strings of tests/tokenizer_bpe_ref.py
# plus runs of spaces, newlines and tabs.
#
# Usage: python3 tests/tokenizer_real_ref.py SMOLLM2.gguf GEMMA3.gguf OUTDIR
# Writes OUTDIR/tokenizer_smollm2.tsv and OUTDIR/tokenizer_gemma3.tsv (JSON
# text TAB ids, no BOS) for each file given (pass "-" to skip one).
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gguf  # noqa: E402
from tokenizer_bpe_ref import CASES  # noqa: E402

EXTRA = ["a  b", "a   b", "  x", "x  ", " " * 31 + "y", "a\n\n\n\nb", "\n" * 33, "\t\t\tx",
         "a\t\tb", " \n \n", "x  \n\n  y", "\u2581", "x\u2581\u2581y", "\u00e9t\u00e9  \u00e0",
         "caf\u00e9\u3000\u3000latte", "\U0001f600\U0001f600  \U0001f389",
         "<end_of_turn>", "<start_of_turn>user\nhi<end_of_turn>", "<|im_end|>", "[multimodal]"]
TEXTS = CASES + [t for t in EXTRA if t not in CASES]


def js(s):
    return json.dumps(s, ensure_ascii=False)


def fields(path):
    r = gguf.GGUFReader(path)

    def arr(key, conv):
        f = r.fields[key]
        return [conv(f.parts[i]) for i in f.data]
    return r, arr


def smollm2(path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    r, arr = fields(path)
    tokens = arr("tokenizer.ggml.tokens", lambda p: bytes(p).decode("utf-8"))
    merges = arr("tokenizer.ggml.merges", lambda p: bytes(p).decode("utf-8"))
    pre = bytes(r.fields["tokenizer.ggml.pre"].parts[-1]).decode()
    assert pre == "smollm", pre
    bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)},
                     merges=[tuple(m.split(" ", 1)) for m in merges])
    tk = Tokenizer(bpe)
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    return [tk.encode(t, add_special_tokens=False).ids for t in TEXTS]


def gemma3(path):
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2 as pb
    r, arr = fields(path)
    tokens = arr("tokenizer.ggml.tokens", lambda p: bytes(p).decode("utf-8"))
    scores = arr("tokenizer.ggml.scores", lambda p: float(p[0]))
    types = arr("tokenizer.ggml.token_type", lambda p: int(p[0]))
    m = pb.ModelProto()
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.split_by_whitespace = False  # Gemma's: whole texts, no word split
    m.trainer_spec.vocab_size = len(tokens)
    m.trainer_spec.unk_id, m.trainer_spec.bos_id, m.trainer_spec.eos_id = 3, 2, 1
    m.trainer_spec.pad_id = 0
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = False
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    # GGUF token types are SentencePiece's piece types (1 normal ... 6 byte)
    unk = int(r.fields["tokenizer.ggml.unknown_token_id"].parts[-1][0])
    for i, (text, score, ty) in enumerate(zip(tokens, scores, types)):
        if i == unk:
            ty = 2  # the converter wrote <unk> as control; sentencepiece needs it UNKNOWN
        p = m.pieces.add()
        p.piece = text.replace(" ", "\u2581") if ty == 4 else text
        p.score = score
        p.type = ty
    sp = sentencepiece.SentencePieceProcessor(model_proto=m.SerializeToString())
    return [sp.encode(t) for t in TEXTS]


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: tokenizer_real_ref.py SMOLLM2.gguf|- GEMMA3.gguf|- OUTDIR")
    outdir = sys.argv[3]
    os.makedirs(outdir, exist_ok=True)
    for path, name, fn in ((sys.argv[1], "tokenizer_smollm2.tsv", smollm2),
                           (sys.argv[2], "tokenizer_gemma3.tsv", gemma3)):
        if path == "-":
            continue
        ids = fn(path)
        with open(os.path.join(outdir, name), "w", encoding="utf-8", newline="\n") as f:
            for t, i in zip(TEXTS, ids):
                f.write("%s\t%s\n" % (js(t), " ".join(map(str, i))))


if __name__ == "__main__":
    main()
