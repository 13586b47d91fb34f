#!/usr/bin/env python3
"""Write tiny random-weight GGUF models of every family model_ref.py covers,
with the PyPI gguf package's GGUFWriter (a writer that is not Ancora's), and
bad variants of them for the loader's refusal tests.

usage: write_family.py OUTDIR [VARIANT ...] [--type T] [--seed N]
                       [--set KEY=VALUE ...] [--break KIND:ARG ...]
                       [--bad] [--check] [--prompt-len N]

VARIANT (default: all)
    llama          llama, separate output.weight, adjacent-pair RoPE
    llama-tied     llama without output.weight (tied to token_embd) and with
                   rope_freqs.weight (Llama-3.1-style per-pair divisors)
    qwen2          q/k/v biases (+ output.bias absent, as the converter)
    qwen3          attn_q_norm / attn_k_norm per head, no biases
    phi3           fused attn_qkv, fused ffn_up [gate; up], no LongRoPE
    phi3-longrope  phi3 + rope_factors_long/short.weight, rope.scaling.
                   original_context_length 32 (context_length 128) and
                   rope.scaling.attn_factor sqrt(1 + ln 4 / ln 32)
    gemma2         head_dim 32 != 64/4, post norms, GELU, soft-caps
                   (attn 5, final 3: small, so that tanh matters), SWA
                   window 8 on even layers, tied output
    gemma3         head_dim 32, q/k norms, 6 layers (layer 5 global), SWA
                   window 8, rope.freq_base 1e6 and no freq_base_swa (local
                   layers: 10000)

Writes OUTDIR/<variant>.gguf and once OUTDIR/prompt_ids.txt: BOS and
N-1 (--prompt-len, default 40) ordinary token ids drawn from the vocabulary
(each file's BOS: spm vocabulary for llama/phi3/gemma, gpt-2 for qwen).

Tensor names and metadata keys are those llama.cpp's converter writes for
the family (conversion/*.py, gguf-py/gguf/constants.py of llama.cpp as
vendored in llama-cpp-python 0.3.36): token_embd, output_norm, output,
blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_qkv, attn_output, attn_q_norm,
attn_k_norm, post_attention_norm, ffn_norm, ffn_gate, ffn_up, ffn_down,
post_ffw_norm}, rope_freqs, rope_factors_long, rope_factors_short;
{arch}.context_length, .embedding_length, .block_count,
.feed_forward_length, .attention.head_count(_kv), .attention.
layer_norm_rms_epsilon, .attention.key_length/.value_length (gemma),
.rope.dimension_count, .rope.freq_base, .attention.sliding_window,
.attn_logit_softcapping, .final_logit_softcapping, .rope.scaling.
original_context_length, .rope.scaling.attn_factor; the tokenizer.* keys are
copied from ../shared/models/ggml-vocab-{llama-spm,gpt-2}.gguf.

Weights: seeded normals; projections std 1/sqrt(fan_in), token_embd 0.5
(gemma: 0.5/sqrt(64), since gemma multiplies by sqrt(n_embd)), norms
1 + 0.1 N, biases 0.1 N: activations stay O(1), logits O(1..5).
--type f32 (default) | f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1: every
matrix (token_embd and output included) in that type through
gguf.quants.quantize; 1-D tensors stay F32 as every converter writes them.

--set KEY=VALUE   override/add a metadata key ({arch} is replaced; the type
                  of an existing key is kept, new keys: int -> UINT32, float
                  -> FLOAT32, else string), e.g. --set {arch}.rope.freq_base=20000
--break KIND:ARG  make the written files bad (several allowed):
    missing:NAME        omit tensor NAME
    shape:NAME          write NAME with one row too many (1-D: one element)
    type:NAME[=TYPE]    store NAME as TYPE (default q8_0), e.g. a norm
    swa:VALUE           {arch}.attention.sliding_window = VALUE (uint32;
                        0 and 2147483648 are the absurd ones)
    heads:VALUE         {arch}.attention.head_count = VALUE
    key:KEY=VALUE       same as --set
--bad             also write, for every variant V, OUTDIR/bad/V-KIND.gguf with
                  one standard break each: missing (a tensor characteristic
                  of the family), shape, type (blk.0.attn_norm.weight as
                  q8_0), heads (head_count 5: does not divide), heads0
                  (head_count 0), heads-huge (2^32-1), and for gemma2/gemma3
                  swa0 and swa2^31; matrices in --bad-type (default q8_0,
                  ~2.5 MB a file, 42 files).
--check           run model_ref.py on every file: the good ones must load,
                  generate, and pass its incremental-vs-full self-check;
                  every bad one must be refused (ModelError).

Shares no code with Ancora.
"""

import argparse
import math
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader, GGUFValueType as VT, GGUFWriter, quants

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model_ref  # noqa: E402

SEED = 20250611
VOCAB_DIR = os.path.join(HERE, "..", "..", "..", "shared", "models")

# name: (arch, options)
VARIANTS = {
    "llama":         ("llama", dict(vocab="spm")),
    "llama-tied":    ("llama", dict(vocab="spm", tied=True, rope_freqs=True)),
    "qwen2":         ("qwen2", dict(vocab="gpt2", qkv_bias=True)),
    "qwen3":         ("qwen3", dict(vocab="gpt2", qk_norm=True)),
    "phi3":          ("phi3", dict(vocab="spm", fused=True)),
    "phi3-longrope": ("phi3", dict(vocab="spm", fused=True, longrope=True)),
    "gemma2":        ("gemma2", dict(vocab="spm", gemma=True, tied=True)),
    "gemma3":        ("gemma3", dict(vocab="spm", gemma=True, qk_norm=True, tied=True)),
}

N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_CTX = 64, 4, 2, 128, 128
GEMMA_HEAD = 32            # != N_EMBD / N_HEAD = 16
SWA = 8
LONGROPE_ORIG = 32

# the tensor each variant's "missing" break removes: one only that family has
MISSING = {
    "llama": "blk.1.ffn_gate.weight",
    "llama-tied": "output_norm.weight",
    "qwen2": "blk.1.attn_v.weight",
    "qwen3": "blk.1.attn_k_norm.weight",
    "phi3": "blk.1.attn_qkv.weight",
    "phi3-longrope": "blk.0.ffn_up.weight",
    "gemma2": "blk.1.post_ffw_norm.weight",
    "gemma3": "blk.1.attn_q_norm.weight",
}
SHAPE = {
    "llama": "blk.0.attn_k.weight", "llama-tied": "rope_freqs.weight",
    "qwen2": "blk.0.attn_q.bias", "qwen3": "blk.0.attn_q_norm.weight",
    "phi3": "blk.0.attn_qkv.weight", "phi3-longrope": "rope_factors_long.weight",
    "gemma2": "blk.0.post_attention_norm.weight", "gemma3": "blk.0.attn_k_norm.weight",
}

TYPES = {"f32": QT.F32, "f16": QT.F16, "bf16": QT.BF16, "q8_0": QT.Q8_0,
         "q4_0": QT.Q4_0, "q4_1": QT.Q4_1, "q5_0": QT.Q5_0, "q5_1": QT.Q5_1}


def copy_vocab(w, kind):
    path = os.path.join(VOCAB_DIR, "ggml-vocab-%s.gguf" % ("llama-spm" if kind == "spm" else "gpt-2"))
    r = GGUFReader(path)
    info = {}
    for key, f in r.fields.items():
        if not key.startswith("tokenizer."):
            continue
        val = f.contents()
        vtype = VT(f.types[0])
        if vtype == VT.ARRAY:
            w.add_key_value(key, val, vtype, sub_type=VT(f.types[1]))
        else:
            w.add_key_value(key, val, vtype)
        info[key] = val
    return info


def ordinary_ids(info, n, rng):
    types = info.get("tokenizer.ggml.token_type")
    toks = info["tokenizer.ggml.tokens"]
    ok = [i for i in range(len(toks)) if (types is None or types[i] == 1) and i > 2]
    return [int(i) for i in rng.choice(ok, size=n, replace=False)]


def encode(arr, qtype):
    """(data, raw_dtype) for GGUFWriter.add_tensor of a float array."""
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if qtype == QT.F32:
        return arr, None
    if qtype == QT.F16:
        return arr.astype(np.float16), None
    return quants.quantize(arr, qtype), qtype


def parse_value(s):
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s


def write_variant(path, variant, qtype, seed, sets, breaks):
    arch, o = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    gemma = o.get("gemma", False)
    head = GEMMA_HEAD if gemma else N_EMBD // N_HEAD
    n_layer = 6 if arch == "gemma3" else 4
    q_dim, kv_dim = N_HEAD * head, N_HEAD_KV * head

    missing = {a for k, a in breaks if k == "missing"}
    bad_shape = {a for k, a in breaks if k == "shape"}
    bad_type = {}
    for k, a in breaks:
        if k == "type":
            name, _, t = a.partition("=")
            bad_type[name] = TYPES[(t or "q8_0").lower()]
    kv_over = dict(sets)
    for k, a in breaks:
        if k == "swa":
            kv_over["{arch}.attention.sliding_window"] = int(a)
        elif k == "heads":
            kv_over["{arch}.attention.head_count"] = int(a)
        elif k == "key":
            key, _, v = a.partition("=")
            kv_over[key] = parse_value(v)
    kv_over = {k.replace("{arch}", arch): v for k, v in kv_over.items()}

    w = GGUFWriter(path, arch)
    # metadata, in the converter's order; overrides replace values in place
    keys = []

    def kv(key, val, vtype):
        keys.append(key)
        if key in kv_over:
            val = kv_over.pop(key)
            if vtype in (VT.UINT32, VT.INT32, VT.UINT64):
                val = int(val)
            elif vtype == VT.FLOAT32:
                val = float(val)
        w.add_key_value(key, val, vtype)

    # not "phi3"/"phi-3" in the name: llama.cpp's vocabulary loader then looks
    # up "<|endoftext|>", which the copied SentencePiece vocabulary lacks
    w.add_name("tiny random %s" % variant.replace("phi3", "Phi 3"))
    kv(f"{arch}.context_length", N_CTX, VT.UINT32)
    kv(f"{arch}.embedding_length", N_EMBD, VT.UINT32)
    kv(f"{arch}.block_count", n_layer, VT.UINT32)
    kv(f"{arch}.feed_forward_length", N_FF, VT.UINT32)
    kv(f"{arch}.attention.head_count", N_HEAD, VT.UINT32)
    kv(f"{arch}.attention.head_count_kv", N_HEAD_KV, VT.UINT32)
    kv(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6 if gemma else 1e-5, VT.FLOAT32)
    if gemma:
        kv(f"{arch}.attention.key_length", head, VT.UINT32)
        kv(f"{arch}.attention.value_length", head, VT.UINT32)
    else:
        kv(f"{arch}.rope.dimension_count", head, VT.UINT32)
    kv(f"{arch}.rope.freq_base", 1e6 if arch == "gemma3" else 10000.0, VT.FLOAT32)
    if arch == "gemma2":
        kv(f"{arch}.attn_logit_softcapping", 5.0, VT.FLOAT32)
        kv(f"{arch}.final_logit_softcapping", 3.0, VT.FLOAT32)
    if gemma or arch == "phi3":
        # phi3: the converter writes 0 when the config has none (Phi-4 style);
        # llama.cpp ignores the key for phi3 either way
        kv(f"{arch}.attention.sliding_window", SWA if gemma else 0, VT.UINT32)
    if o.get("longrope"):
        kv(f"{arch}.rope.scaling.original_context_length", LONGROPE_ORIG, VT.UINT32)
        kv(f"{arch}.rope.scaling.attn_factor",
           math.sqrt(1 + math.log(N_CTX / LONGROPE_ORIG) / math.log(LONGROPE_ORIG)), VT.FLOAT32)
    w.add_file_type(int(qtype))
    info = copy_vocab(w, o["vocab"])
    for key, val in kv_over.items():        # keys the variant does not have
        if isinstance(val, int):
            w.add_key_value(key, val, VT.UINT32)
        elif isinstance(val, float):
            w.add_key_value(key, val, VT.FLOAT32)
        else:
            w.add_key_value(key, str(val), VT.STRING)
    n_vocab = len(info["tokenizer.ggml.tokens"])

    def put(name, arr, vector=False):
        if name in missing:
            return
        if name in bad_shape:
            arr = np.concatenate([arr, arr[:1]])
        t = bad_type.get(name, QT.F32 if vector else qtype)
        data, raw = encode(arr, t)
        w.add_tensor(name, data, raw_dtype=raw)

    def mat(name, rows, cols, std=None):
        put(name, rng.standard_normal((rows, cols)) * (std if std else 1 / math.sqrt(cols)))

    def norm(name, n=N_EMBD):
        put(name, 1.0 + 0.1 * rng.standard_normal(n), vector=True)

    def vec(name, n, std=0.1):
        put(name, std * rng.standard_normal(n), vector=True)

    mat("token_embd.weight", n_vocab, N_EMBD, 0.5 / (8.0 if gemma else 1.0))
    if o.get("rope_freqs"):
        # Llama-3.1-like divisors: high frequencies kept, low ones divided
        put("rope_freqs.weight", np.array([1, 1, 1, 1.3, 2.1, 3.7, 6.0, 8.0])[:head // 2],
            vector=True)
    if o.get("longrope"):
        put("rope_factors_long.weight", np.sort(1 + 7 * rng.random(head // 2)), vector=True)
        put("rope_factors_short.weight", 1 + 0.5 * rng.random(head // 2), vector=True)
    for i in range(n_layer):
        p = f"blk.{i}."
        norm(p + "attn_norm.weight")
        if o.get("fused"):
            mat(p + "attn_qkv.weight", q_dim + 2 * kv_dim, N_EMBD)
        else:
            mat(p + "attn_q.weight", q_dim, N_EMBD)
            mat(p + "attn_k.weight", kv_dim, N_EMBD)
            mat(p + "attn_v.weight", kv_dim, N_EMBD)
        if o.get("qkv_bias"):
            vec(p + "attn_q.bias", q_dim)
            vec(p + "attn_k.bias", kv_dim)
            vec(p + "attn_v.bias", kv_dim)
        mat(p + "attn_output.weight", N_EMBD, q_dim)
        if o.get("qk_norm"):
            norm(p + "attn_q_norm.weight", head)
            norm(p + "attn_k_norm.weight", head)
        if gemma:
            norm(p + "post_attention_norm.weight")
        norm(p + "ffn_norm.weight")
        if o.get("fused"):
            mat(p + "ffn_up.weight", 2 * N_FF, N_EMBD)
        else:
            mat(p + "ffn_gate.weight", N_FF, N_EMBD)
            mat(p + "ffn_up.weight", N_FF, N_EMBD)
        mat(p + "ffn_down.weight", N_EMBD, N_FF)
        if gemma:
            norm(p + "post_ffw_norm.weight")
    norm("output_norm.weight")
    if not o.get("tied"):
        mat("output.weight", n_vocab, N_EMBD, 2 / math.sqrt(N_EMBD))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return info


def standard_breaks(variant):
    arch = VARIANTS[variant][0]
    out = [("missing", [("missing", MISSING[variant])]),
           ("shape", [("shape", SHAPE[variant])]),
           ("type", [("type", "blk.0.attn_norm.weight=q8_0")]),
           ("heads", [("heads", "5")]),
           ("heads0", [("heads", "0")]),
           ("heads-huge", [("heads", str((1 << 32) - 1))])]
    if arch in ("gemma2", "gemma3"):
        out += [("swa0", [("swa", "0")]), ("swa2^31", [("swa", str(1 << 31))])]
    return out


def check_good(path, prompt):
    m = model_ref.Model(path)
    n = 8
    gen, saved = model_ref.greedy(m, prompt, n, n, len(prompt) + n)
    seq = prompt + gen
    full = model_ref.Session(m, len(prompt) + n).feed(seq[:-1])
    off = len(prompt) - 1
    err = max(float(np.abs(full[off + i] - r).max()) for i, r in enumerate(saved))
    assert err < 1e-9, f"{path}: incremental vs full logits differ by {err}"
    top2 = np.sort(saved[0])[-2:]
    return gen, float(top2[1] - top2[0]), float(np.abs(saved[0]).max()), m


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("variants", nargs="*")
    ap.add_argument("--type", default="f32", choices=sorted(TYPES))
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--break", dest="breaks", action="append", default=[], metavar="KIND:ARG")
    ap.add_argument("--bad", action="store_true")
    ap.add_argument("--bad-type", default="q8_0", choices=sorted(TYPES),
                    help="weight type of the --bad files (default q8_0: small files)")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--prompt-len", type=int, default=40)
    args = ap.parse_args(argv)

    names = args.variants or list(VARIANTS)
    for n in names:
        if n not in VARIANTS:
            ap.error(f"unknown variant {n} (known: {' '.join(VARIANTS)})")
    sets = []
    for s in args.set:
        k, eq, v = s.partition("=")
        if not eq:
            ap.error(f"--set {s}: want KEY=VALUE")
        sets.append((k, parse_value(v)))
    breaks = []
    for b in args.breaks:
        k, colon, a = b.partition(":")
        if not colon or k not in ("missing", "shape", "type", "swa", "heads", "key"):
            ap.error(f"--break {b}: want missing|shape|type|swa|heads|key:ARG")
        breaks.append((k, a))
    qtype = TYPES[args.type]
    os.makedirs(args.outdir, exist_ok=True)

    prompts = {}
    failures = 0
    for i, n in enumerate(names):
        path = os.path.join(args.outdir, n + ".gguf")
        seed = args.seed + 101 * list(VARIANTS).index(n)
        info = write_variant(path, n, qtype, seed, sets, breaks)
        vocab = VARIANTS[n][1]["vocab"]
        if vocab not in prompts:
            rng = np.random.default_rng(args.seed)
            bos = int(info["tokenizer.ggml.bos_token_id"])
            prompts[vocab] = [bos] + ordinary_ids(info, args.prompt_len - 1, rng)
            fn = "prompt_ids.txt" if vocab == "spm" else "prompt_ids_gpt2.txt"
            with open(os.path.join(args.outdir, fn), "w") as f:
                f.write(" ".join(map(str, prompts[vocab])) + "\n")
        print(f"wrote {path}", file=sys.stderr)
        if args.check:
            try:
                gen, gap, mx, m = check_good(path, prompts[vocab])
                if breaks:
                    print(f"  CHECK: {n} with --break loaded (not refused)", file=sys.stderr)
                    failures += 1
                else:
                    print(f"  ok: max|logit| {mx:.3g}, top-2 gap {gap:.3g}, greedy {gen}",
                          file=sys.stderr)
            except model_ref.ModelError as e:
                if breaks:
                    print(f"  refused as expected: {e}", file=sys.stderr)
                else:
                    print(f"  CHECK FAILED: {e}", file=sys.stderr)
                    failures += 1
        if args.bad:
            bdir = os.path.join(args.outdir, "bad")
            os.makedirs(bdir, exist_ok=True)
            for tag, br in standard_breaks(n):
                bpath = os.path.join(bdir, f"{n}-{tag}.gguf")
                write_variant(bpath, n, TYPES[args.bad_type], seed, sets, br)
                if args.check:
                    try:
                        model_ref.Model(bpath)
                        print(f"  CHECK FAILED: {bpath} was not refused", file=sys.stderr)
                        failures += 1
                    except model_ref.ModelError as e:
                        print(f"  bad/{n}-{tag}: refused: {e}", file=sys.stderr)
    if failures:
        print(f"{failures} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
