#!/usr/bin/env python3
"""Independent float64 NumPy reference for Llama-family GGUF models.

This is the oracle that Ancora's golden tests compare against.  It shares no
code with Ancora: it reads the model with the `gguf` PyPI package
(gguf.GGUFReader) and implements the Llama forward pass directly from its
mathematical definition, in float64 throughout.

Only small, unquantised (F32 / F16) models are supported; it is meant for
models such as stories260K, not for real-size checkpoints.

Forward pass (conventions of GGUF `llama` files):
    x = token_embd[token]
    per layer:
        h = rmsnorm(x) * attn_norm
        q, k, v = Wq h, Wk h, Wv h
        RoPE on q and k, adjacent pairs (2i, 2i+1), angle pos * base^(-2i/rot)
        attention per head, query head j uses KV head j // (n_head / n_head_kv),
        scale 1/sqrt(head_dim), causal
        x += Wo concat(heads)
        h = rmsnorm(x) * ffn_norm
        x += Wdown (silu(Wgate h) * (Wup h))
    logits = output (rmsnorm(x) * output_norm)   (output = token_embd if absent)
    rmsnorm(x) = x / sqrt(mean(x^2) + eps)

CLI:
    llama_ref.py MODEL --greedy N --out-tokens FILE --out-logits FILE
                 --logit-steps K [--prompt-ids "1 2 3"] [--out-text FILE]
"""

import argparse
import math
import sys

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType


# --------------------------------------------------------------------------
# Reading the GGUF file
# --------------------------------------------------------------------------

def field_value(reader, key, default=None):
    """Return a scalar/string/array metadata value, or `default` if absent."""
    field = reader.fields.get(key)
    if field is None:
        return default
    return field.contents()


def load_tensors(reader):
    """Name -> float64 numpy array in numpy order (GGUF ne reversed)."""
    supported = (GGMLQuantizationType.F32, GGMLQuantizationType.F16)
    tensors = {}
    for t in reader.tensors:
        if t.tensor_type not in supported:
            raise SystemExit(f"{t.name}: type {t.tensor_type.name} not supported "
                             "(reference handles F32/F16 only)")
        ne = [int(n) for n in t.shape]           # GGUF order, ne[0] fastest
        arr = np.asarray(t.data, dtype=np.float64)
        expected = tuple(reversed(ne))
        if arr.shape != expected:
            arr = arr.reshape(expected)
        tensors[t.name] = arr
    return tensors


class Model:
    def __init__(self, path):
        reader = GGUFReader(path)
        arch = field_value(reader, "general.architecture")
        if arch != "llama":
            raise SystemExit(f"architecture {arch!r} is not 'llama'")

        def hp(key, default=None):
            v = field_value(reader, f"{arch}.{key}", default)
            if v is None:
                raise SystemExit(f"missing metadata {arch}.{key}")
            return v

        self.n_embd = int(hp("embedding_length"))
        self.n_layer = int(hp("block_count"))
        self.n_head = int(hp("attention.head_count"))
        self.n_head_kv = int(hp("attention.head_count_kv", self.n_head))
        self.n_ff = int(hp("feed_forward_length"))
        self.eps = float(hp("attention.layer_norm_rms_epsilon"))
        self.rope_base = float(hp("rope.freq_base", 10000.0))
        self.head_dim = self.n_embd // self.n_head
        self.n_rot = int(hp("rope.dimension_count", self.head_dim))
        assert self.n_head % self.n_head_kv == 0
        assert self.n_rot % 2 == 0 and self.n_rot <= self.head_dim

        self.tokens = [str(s) for s in field_value(reader, "tokenizer.ggml.tokens")]
        tt = field_value(reader, "tokenizer.ggml.token_type")
        self.token_types = [int(x) for x in tt] if tt is not None else None
        self.bos = int(field_value(reader, "tokenizer.ggml.bos_token_id", 1))
        self.eos = int(field_value(reader, "tokenizer.ggml.eos_token_id", 2))

        w = load_tensors(reader)
        self.tok_embd = w["token_embd.weight"]              # (n_vocab, n_embd)
        self.n_vocab = self.tok_embd.shape[0]
        self.out_norm = w["output_norm.weight"]
        self.output = w.get("output.weight", self.tok_embd)  # tied if absent
        kv_dim = self.n_head_kv * self.head_dim
        self.layers = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            L = {k: w[p + k + ".weight"] for k in (
                "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")}
            # y = W @ x: W has shape (n_out, n_in)
            assert L["attn_q"].shape == (self.n_embd, self.n_embd)
            assert L["attn_k"].shape == (kv_dim, self.n_embd)
            assert L["attn_v"].shape == (kv_dim, self.n_embd)
            assert L["attn_output"].shape == (self.n_embd, self.n_embd)
            assert L["ffn_gate"].shape == (self.n_ff, self.n_embd)
            assert L["ffn_up"].shape == (self.n_ff, self.n_embd)
            assert L["ffn_down"].shape == (self.n_embd, self.n_ff)
            self.layers.append(L)
        assert self.output.shape == (self.n_vocab, self.n_embd)


# --------------------------------------------------------------------------
# Forward pass
# --------------------------------------------------------------------------

def rmsnorm(x, weight, eps):
    """x: (T, d).  Normalise each row, then scale elementwise by weight."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope(x, positions, n_rot, base):
    """Rotate adjacent pairs (2i, 2i+1) of the first n_rot dims of each head.

    x: (T, n_heads, head_dim); positions: (T,) integer positions.
    Pair i is rotated by angle pos * base^(-2i / n_rot).
    """
    i = np.arange(n_rot // 2, dtype=np.float64)
    inv_freq = base ** (-2.0 * i / n_rot)                        # (n_rot/2,)
    angle = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq
    cos = np.cos(angle)[:, None, :]                              # (T, 1, n_rot/2)
    sin = np.sin(angle)[:, None, :]
    out = x.copy()
    x0 = x[..., 0:n_rot:2]
    x1 = x[..., 1:n_rot:2]
    out[..., 0:n_rot:2] = x0 * cos - x1 * sin
    out[..., 1:n_rot:2] = x0 * sin + x1 * cos
    return out


def silu(x):
    return x / (1.0 + np.exp(-x))


class Session:
    """Holds a KV cache; feed() appends tokens and returns their logits."""

    def __init__(self, model):
        self.m = model
        kv = (0, model.n_head_kv, model.head_dim)
        self.k_cache = [np.zeros(kv) for _ in range(model.n_layer)]
        self.v_cache = [np.zeros(kv) for _ in range(model.n_layer)]
        self.n_past = 0

    def feed(self, token_ids):
        """Process tokens at positions n_past.. ; return logits (T, n_vocab)."""
        m = self.m
        T = len(token_ids)
        pos = np.arange(self.n_past, self.n_past + T)
        x = m.tok_embd[np.asarray(token_ids)]                    # (T, n_embd)
        group = m.n_head // m.n_head_kv
        scale = 1.0 / math.sqrt(m.head_dim)

        for li, L in enumerate(m.layers):
            h = rmsnorm(x, L["attn_norm"], m.eps)
            q = (h @ L["attn_q"].T).reshape(T, m.n_head, m.head_dim)
            k = (h @ L["attn_k"].T).reshape(T, m.n_head_kv, m.head_dim)
            v = (h @ L["attn_v"].T).reshape(T, m.n_head_kv, m.head_dim)
            q = rope(q, pos, m.n_rot, m.rope_base)
            k = rope(k, pos, m.n_rot, m.rope_base)

            K = self.k_cache[li] = np.concatenate([self.k_cache[li], k])
            V = self.v_cache[li] = np.concatenate([self.v_cache[li], v])
            S = K.shape[0]                                       # keys so far
            key_pos = np.arange(S)

            attn = np.zeros((T, m.n_head, m.head_dim))
            for hq in range(m.n_head):
                hk = hq // group                                 # GQA mapping
                scores = (q[:, hq, :] @ K[:, hk, :].T) * scale   # (T, S)
                causal = key_pos[None, :] <= pos[:, None]
                scores = np.where(causal, scores, -np.inf)
                scores -= scores.max(axis=1, keepdims=True)
                p = np.exp(scores)
                p /= p.sum(axis=1, keepdims=True)
                attn[:, hq, :] = p @ V[:, hk, :]
            x = x + attn.reshape(T, m.n_embd) @ L["attn_output"].T

            h = rmsnorm(x, L["ffn_norm"], m.eps)
            ff = silu(h @ L["ffn_gate"].T) * (h @ L["ffn_up"].T)
            x = x + ff @ L["ffn_down"].T

        self.n_past += T
        x = rmsnorm(x, m.out_norm, m.eps)
        return x @ m.output.T                                    # (T, n_vocab)


# --------------------------------------------------------------------------
# Decoding token ids to text (SentencePiece-style vocabulary)
# --------------------------------------------------------------------------

TOKEN_TYPE_CONTROL = 3
TOKEN_TYPE_BYTE = 6


def piece_bytes(model, tok, prev):
    """Bytes printed for `tok` when it follows `prev` (None = first token)."""
    piece = model.tokens[tok]
    ttype = model.token_types[tok] if model.token_types else 1
    if ttype == TOKEN_TYPE_CONTROL:
        return b""
    if ttype == TOKEN_TYPE_BYTE or (len(piece) == 6 and piece.startswith("<0x")
                                   and piece.endswith(">")):
        return bytes([int(piece[3:5], 16)])
    text = piece.replace("\u2581", " ")
    if prev == model.bos and text.startswith(" "):
        text = text[1:]
    return text.encode("utf-8")


def decode(model, ids, prev):
    out = bytearray()
    for t in ids:
        out += piece_bytes(model, t, prev)
        prev = t
    return bytes(out)


# --------------------------------------------------------------------------
# Greedy generation
# --------------------------------------------------------------------------

def greedy(model, prompt, n_gen, n_logit_steps):
    sess = Session(model)
    logits = sess.feed(prompt)[-1]
    generated, saved = [], []
    for step in range(n_gen):
        if step < n_logit_steps:
            saved.append(logits.copy())
        tok = int(np.argmax(logits))          # ties -> lowest id
        generated.append(tok)
        if tok == model.eos:
            break
        if step + 1 < n_gen or step + 1 < n_logit_steps:
            logits = sess.feed([tok])[-1]
    return generated, saved


def perplexity(model, ids):
    """PPL of ids[1:] given ids[:-1], in one full-sequence pass (no cache reuse)."""
    logits = Session(model).feed(ids[:-1])
    mx = logits.max(axis=1, keepdims=True)
    logz = (mx + np.log(np.exp(logits - mx).sum(axis=1, keepdims=True)))[:, 0]
    nll = logz - logits[np.arange(len(ids) - 1), ids[1:]]
    return float(np.exp(nll.mean())), logits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--greedy", type=int, required=True, metavar="N")
    ap.add_argument("--out-tokens", required=True)
    ap.add_argument("--out-logits", required=True)
    ap.add_argument("--logit-steps", type=int, default=8, metavar="K")
    ap.add_argument("--prompt-ids", default=None,
                    help='space-separated ids (default: the BOS id)')
    ap.add_argument("--out-text", default=None,
                    help="also write the decoded text of the generated tokens")
    args = ap.parse_args(argv)

    model = Model(args.model)
    prompt = ([int(s) for s in args.prompt_ids.split()]
              if args.prompt_ids else [model.bos])
    for t in prompt:
        if not 0 <= t < model.n_vocab:
            raise SystemExit(f"prompt id {t} out of range (vocab {model.n_vocab})")

    gen, saved = greedy(model, prompt, args.greedy, args.logit_steps)

    with open(args.out_tokens, "w") as f:
        f.write(" ".join(str(t) for t in gen) + "\n")
    with open(args.out_logits, "w") as f:
        for row in saved:
            f.write(" ".join("%.9g" % v for v in row) + "\n")
    text = decode(model, gen, prompt[-1])
    if args.out_text:
        with open(args.out_text, "wb") as f:
            f.write(text)

    # Self-check: the full-sequence pass must reproduce the incremental logits.
    seq = prompt + gen
    ppl, full = perplexity(model, seq)
    off = len(prompt) - 1
    for i, row in enumerate(saved):
        err = np.max(np.abs(full[off + i] - row))
        assert err < 1e-9, f"incremental vs full logits differ at step {i}: {err}"

    print(f"prompt: {prompt} -> {decode(model, prompt, None)!r}", file=sys.stderr)
    print(f"generated {len(gen)} tokens, eos_hit={bool(gen) and gen[-1] == model.eos}",
          file=sys.stderr)
    print(f"perplexity of prompt[1:] + generated tokens: {ppl:.6f}", file=sys.stderr)
    gppl = float(np.exp(np.mean([
        -(full[off + i][t] - full[off + i].max()
          - np.log(np.exp(full[off + i] - full[off + i].max()).sum()))
        for i, t in enumerate(gen)])))
    print(f"perplexity of generated tokens only: {gppl:.6f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
