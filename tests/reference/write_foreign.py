#!/usr/bin/env python3
"""Write small `llama` GGUF models with a FOREIGN writer (gguf.GGUFWriter of
the PyPI `gguf` package), one per weight type, plus reference logits for each.

usage: write_foreign.py [--seed N] [--min-gap X] OUTDIR [TYPE ...]

For each TYPE (default: all of F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K
Q5_K Q6_K, plus the negative cases TQ1_0 TQ2_0 MXFP4 only when named) it
writes

    OUTDIR/<TYPE>.gguf     the model; every matrix (token_embd and output
                           included) in TYPE, norm weights in F32 as every
                           converter writes them
    OUTDIR/<TYPE>.logits   the reference logits after the prompt, one line of
                           %.9g values (float64 forward pass of
                           tests/reference/llama_ref.py on the weights that
                           gguf.quants.dequantize gives for the bytes read
                           back from <TYPE>.gguf with gguf.GGUFReader)
    OUTDIR/<TYPE>.q8logits (quantised types) the same pass with every weight
                           matmul's input rounded to 8 bits the way llama.cpp
                           and Ancora's CPU backend do (see ACT_Q8 below): a
                           diagnostic of where a deviation comes from

and once: OUTDIR/prompt.txt (the prompt text, no newline) and
OUTDIR/prompt_ids.txt (its ids, BOS first, as `ancora tokenize` must print).

Weights are seeded random normals (std 0.05).  F32/F16/BF16 and the legacy
quants are made with gguf.quants.quantize; the K-quants, which the package
can only dequantise, are random but valid blocks (random quant and scale
bytes, finite normal f16 factors chosen so the weights have std ~0.05 and
mean ~0) written raw through GGUFWriter.add_tensor(raw_dtype=...).  Each
model is drawn again with the next seed until its reference top-2 logit gap
is >= MIN_GAP, so that an argmax comparison is meaningful (--min-gap 0 and
--seed N give other draws, for measuring tolerances).

The model: dim 256 (K-quant rows must be multiples of 256), 2 layers, 4
heads, 2 KV heads, FFN 512, context 256, RoPE base 10000, RMS eps 1e-5; a
SentencePiece-style (`llama`) vocabulary of 312 tokens: <unk> <s> </s>, the
256 byte tokens <0x00>..<0xFF> (type 6), "▁", "▁a".."▁z" and "a".."z", with
scores.  Shares no code with Ancora.
"""

import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFWriter, quants

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402  (the independent float64 forward pass)

SEED = 20241125
N_EMBD, N_LAYER, N_HEAD, N_HEAD_KV, N_FF = 256, 2, 4, 2, 512
N_CTX, ROPE_BASE, RMS_EPS = 256, 10000.0, 1e-5
STD = 0.05
# The argmax check needs a clear winner: a model is drawn again (next seed)
# until its reference logits' top two differ by at least this much, several
# times the deviation the 8-bit activations of quantised types cause.
MIN_GAP = 0.3
MAX_DRAWS = 50
PROMPT = "t h e q u i c k f o x"       # -> BOS + 11 "▁x" pieces = 12 tokens

SUPPORTED = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
             "Q4_K", "Q5_K", "Q6_K"]
# Types the package can write that Ancora does not compute with: the test
# only checks that Ancora refuses them cleanly.
UNSUPPORTED = ["TQ1_0", "TQ2_0", "MXFP4"]
K_QUANTS = ("Q4_K", "Q5_K", "Q6_K")

SPACE = "\u2581"


# --------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------

def vocabulary():
    toks, scores, types = [], [], []

    def add(piece, score, ttype):
        toks.append(piece)
        scores.append(float(score))
        types.append(int(ttype))

    add("<unk>", 0.0, gguf.TokenType.UNKNOWN)
    add("<s>", 0.0, gguf.TokenType.CONTROL)
    add("</s>", 0.0, gguf.TokenType.CONTROL)
    for b in range(256):
        add("<0x%02X>" % b, 0.0, gguf.TokenType.BYTE)
    add(SPACE, -2.0, gguf.TokenType.NORMAL)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for i, c in enumerate(letters):
        add(SPACE + c, -1.0 - 0.01 * i, gguf.TokenType.NORMAL)
    for i, c in enumerate(letters):
        add(c, -3.0 - 0.01 * i, gguf.TokenType.NORMAL)
    return toks, scores, types


def prompt_ids(toks):
    return [1] + [toks.index(SPACE + w) for w in PROMPT.split(" ")]


# --------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------

def f16_bits(v):
    return np.asarray(v, dtype=np.float16).view(np.uint16)


def k_blocks(rng, qtype, n_blocks, d_scale=1.0):
    """Random valid K-quant blocks, shape (n_blocks, type_size) uint8."""
    _, size = quants.GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    u = rng.uniform(0.5, 1.5, n_blocks)
    if qtype == T.Q6_K:
        # scales: int8 of magnitude 16..32, either sign (bytes 192..207),
        # d: f16 at 208
        sc = rng.integers(16, 33, (n_blocks, 16)) * rng.choice([-1, 1], (n_blocks, 16))
        b[:, 192:208] = sc.astype(np.int8).view(np.uint8)
        b[:, 208:210] = f16_bits(d_scale * u).reshape(-1, 1).view(np.uint8)
    else:
        # d at 0, dmin at 2; value = d*sc*q - dmin*m, sc and m of mean 31.5,
        # q of mean 7.5 (Q4_K) or 15.5 (Q5_K): dmin = qmean*d keeps mean ~0
        qmean = 7.5 if qtype == T.Q4_K else 15.5
        um = rng.uniform(0.9, 1.1, n_blocks)
        b[:, 0:2] = f16_bits(d_scale * u).reshape(-1, 1).view(np.uint8)
        b[:, 2:4] = f16_bits(d_scale * u * qmean * um).reshape(-1, 1).view(np.uint8)
    return b


# d_scale that gives std ~STD, measured once per type on a probe
_K_SCALE = {}


def k_scale(qtype):
    if qtype not in _K_SCALE:
        probe = k_blocks(np.random.default_rng(1), qtype, 256, 1e-3)
        s = float(np.std(quants.dequantize(probe, qtype)))
        _K_SCALE[qtype] = 1e-3 * STD / s
    return _K_SCALE[qtype]


def matrix(rng, qtype, rows, cols):
    """(data, raw_dtype) for a rows x cols weight matrix of type qtype."""
    if qtype in (T.Q4_K, T.Q5_K, T.Q6_K):
        nb = rows * cols // 256
        raw = k_blocks(rng, qtype, nb, k_scale(qtype))
        return raw.reshape(rows, -1), qtype
    w = (rng.standard_normal((rows, cols)) * STD).astype(np.float32)
    if qtype == T.F32:
        return w, None
    if qtype == T.F16:
        return w.astype(np.float16), None
    return quants.quantize(w, qtype), qtype


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------

def write_model(path, tname, toks, scores, types, seed):
    qtype = T[tname]
    rng = np.random.default_rng(seed)
    w = GGUFWriter(path, "llama")
    w.add_name("foreign-%s" % tname.lower())
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)

    def mat(name, rows, cols):
        data, raw = matrix(rng, qtype, rows, cols)
        w.add_tensor(name, data, raw_dtype=raw)

    def norm(name):
        w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(N_EMBD)).astype(np.float32))

    n_vocab = len(toks)
    kv = N_HEAD_KV * (N_EMBD // N_HEAD)
    mat("token_embd.weight", n_vocab, N_EMBD)
    for i in range(N_LAYER):
        p = "blk.%d." % i
        norm(p + "attn_norm.weight")
        mat(p + "attn_q.weight", N_EMBD, N_EMBD)
        mat(p + "attn_k.weight", kv, N_EMBD)
        mat(p + "attn_v.weight", kv, N_EMBD)
        mat(p + "attn_output.weight", N_EMBD, N_EMBD)
        norm(p + "ffn_norm.weight")
        mat(p + "ffn_gate.weight", N_FF, N_EMBD)
        mat(p + "ffn_up.weight", N_FF, N_EMBD)
        mat(p + "ffn_down.weight", N_EMBD, N_FF)
    norm("output_norm.weight")
    mat("output.weight", n_vocab, N_EMBD)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# --------------------------------------------------------------------------
# Reference logits: llama_ref's forward pass on the dequantised weights
# --------------------------------------------------------------------------

def load_dequantised(reader):
    """Replacement for llama_ref.load_tensors accepting every type the
    package can dequantise: name -> float64 array in numpy order."""
    out = {}
    for t in reader.tensors:
        arr = quants.dequantize(np.asarray(t.data), t.tensor_type)
        expected = tuple(reversed([int(n) for n in t.shape]))
        out[t.name] = np.asarray(arr, dtype=np.float64).reshape(expected)
        assert np.all(np.isfinite(out[t.name])), t.name
    return out


def reference_logits(path, ids):
    llama_ref.load_tensors = load_dequantised
    model = llama_ref.Model(path)
    return llama_ref.Session(model).feed(ids)[-1]


# --------------------------------------------------------------------------
# Second reference: the same forward pass with the input of every weight
# matmul rounded to 8 bits first, the way llama.cpp (and Ancora's CPU
# backend) feed quantised weights: Q8_0 blocks of 32 with an f16 scale for
# Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1 (the same values, plus the block sum
# s = d*sum(q) stored as f16, through which the weights' minimum m enters:
# the dot product gains m*(f16(s) - s) per block), Q8_K blocks of 256 with
# an f32 scale for the K-quants; scale = max|x|/127, round half away from
# zero, quants clamped to +-127.  It tells what part of a deviation from
# the plain reference is this rounding; what is left is float round-off.
# --------------------------------------------------------------------------

ACT_Q8 = {"Q4_0": (32, True), "Q5_0": (32, True), "Q8_0": (32, True),
          "Q4_1": (32, True), "Q5_1": (32, True),
          "Q4_K": (256, False), "Q5_K": (256, False), "Q6_K": (256, False)}
WITH_MIN = ("Q4_1", "Q5_1")     # blocks: f16 d, f16 m, quants


def round_q8(x, blk, f16_scale):
    xb = np.asarray(x, dtype=np.float32).reshape(-1, blk)
    d = np.abs(xb).max(axis=1, keepdims=True) / np.float32(127)
    inv = np.where(d == 0, np.float32(0), np.float32(1) / np.where(d == 0, np.float32(1), d))
    v = xb * inv
    q = np.clip(np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)), -127, 127)
    if f16_scale:
        d = d.astype(np.float16).astype(np.float32)
    return (q.astype(np.float64) * d.astype(np.float64)).reshape(np.shape(x))


class Q8Input:
    """Stands for a weight matrix W in llama_ref's `h @ W.T`: rounds h.
    mins: the (rows, blocks) f16 minima of a Q4_1/Q5_1 matrix, or None."""
    __array_ufunc__ = None      # make ndarray @ Q8Input call __rmatmul__

    def __init__(self, w, blk, f16_scale, mins=None):
        self.w, self.blk, self.f16_scale, self.mins = w, blk, f16_scale, mins

    @property
    def T(self):
        return self

    @property
    def shape(self):
        return self.w.shape

    def __rmatmul__(self, h):
        hq = round_q8(h, self.blk, self.f16_scale)
        y = hq @ self.w.T
        if self.mins is not None:
            s = hq.reshape(hq.shape[0], -1, self.blk).sum(axis=-1)   # exact
            y += (s.astype(np.float16).astype(np.float64) - s) @ self.mins.T
        return y


def block_mins(path, qtype):
    """name -> (rows, blocks) float64 minima m of each Q4_1/Q5_1 block."""
    _, size = quants.GGML_QUANT_SIZES[qtype]
    out = {}
    for t in GGUFReader(path).tensors:
        if t.tensor_type == qtype:
            raw = np.asarray(t.data)
            m = raw.reshape(raw.shape[0], -1, size)[:, :, 2:4].copy()
            out[t.name] = m.view(np.float16)[:, :, 0].astype(np.float64)
    return out


def q8_reference_logits(path, ids, tname):
    llama_ref.load_tensors = load_dequantised
    model = llama_ref.Model(path)
    blk, f16_scale = ACT_Q8[tname]
    mins = block_mins(path, T[tname]) if tname in WITH_MIN else {}
    for i, L in enumerate(model.layers):
        for k in L:
            if not k.endswith("norm"):
                L[k] = Q8Input(L[k], blk, f16_scale, mins.get("blk.%d.%s.weight" % (i, k)))
    model.output = Q8Input(model.output, blk, f16_scale, mins.get("output.weight"))
    return llama_ref.Session(model).feed(ids)[-1]


def write_logits(path, logits):
    with open(path, "w") as f:
        f.write(" ".join("%.9g" % v for v in logits) + "\n")


def top_gap(logits):
    top2 = np.sort(logits)[-2:]
    return float(top2[1] - top2[0])


def main(argv):
    global SEED, MIN_GAP
    argv = list(argv)
    while len(argv) > 2 and argv[1] in ("--seed", "--min-gap"):  # for measuring
        if argv[1] == "--seed":
            SEED = int(argv[2])
        else:
            MIN_GAP = float(argv[2])
        del argv[1:3]
    if len(argv) < 2:
        sys.exit("usage: write_foreign.py [--seed N] [--min-gap X] OUTDIR [TYPE ...]")
    outdir = argv[1]
    names = [s.upper() for s in argv[2:]] or SUPPORTED
    for n in names:
        if n not in SUPPORTED + UNSUPPORTED:
            sys.exit("unknown type %s (known: %s)" % (n, " ".join(SUPPORTED + UNSUPPORTED)))
    os.makedirs(outdir, exist_ok=True)

    toks, scores, types = vocabulary()
    ids = prompt_ids(toks)
    with open(os.path.join(outdir, "prompt.txt"), "w") as f:
        f.write(PROMPT)
    with open(os.path.join(outdir, "prompt_ids.txt"), "w") as f:
        f.write(" ".join(map(str, ids)) + "\n")

    for n in names:
        path = os.path.join(outdir, n + ".gguf")
        for draw in range(MAX_DRAWS):
            seed = SEED + 1000 * int(T[n]) + draw
            write_model(path, n, toks, scores, types, seed)
            if n in UNSUPPORTED:
                break
            logits = reference_logits(path, ids)
            if top_gap(logits) >= MIN_GAP:
                break
        else:
            sys.exit("%s: no model with a top-2 logit gap >= %g in %d draws"
                     % (n, MIN_GAP, MAX_DRAWS))
        if n in UNSUPPORTED:
            continue
        write_logits(os.path.join(outdir, n + ".logits"), logits)
        if n in ACT_Q8:
            write_logits(os.path.join(outdir, n + ".q8logits"),
                         q8_reference_logits(path, ids, n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
