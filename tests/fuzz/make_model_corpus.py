#!/usr/bin/env python3
"""make_model_corpus.py — writes the seed corpus for tests/fuzz/fuzz_model.c:
a tiny complete model of every architecture family Ancora reads (llama,
qwen2, qwen3, phi3 with LongRoPE, gemma2, gemma3; 8-wide, a 16-token
SentencePiece vocabulary, f32 weights, each under 20 KB) and broken
variants of them (a missing tensor, a wrong shape, a norm stored as f16,
head counts that do not divide, a sliding window of 0). The tensor names
and keys are those llama.cpp's converter writes (as in
tests/reference/write_family.py, which writes the full-size test files).

Needs the `gguf` and `numpy` Python packages. Usage:
    python3 tests/fuzz/make_model_corpus.py [OUTDIR]   (default tests/fuzz/corpus_model)
"""
import os
import sys

import numpy as np
from gguf import GGUFWriter

DIM, HEADS, KV, FF, VOCAB = 8, 2, 1, 16, 16

FAMILIES = {
    # name: (layers, head_dim, extra per-layer tensors, options)
    "llama": dict(layers=2),
    "qwen2": dict(layers=2, bias=True),
    "qwen3": dict(layers=2, qk_norm=True),
    "phi3": dict(layers=2, fused=True, longrope=True),
    "gemma2": dict(layers=2, head_dim=8, post=True, swa=3, softcap=True),
    "gemma3": dict(layers=6, head_dim=8, post=True, swa=3, qk_norm=True),
}


def vocab(w):
    w.add_tokenizer_model("llama")
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(10)] + ["\u2581a", "b", "\u2581ab"]
    w.add_token_list(toks)
    w.add_token_scores([float(-i) for i in range(len(toks))])
    w.add_token_types([2, 3, 3] + [6] * 10 + [1, 1, 1])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)


def model(path, arch, o, skip=(), bad_shape=(), f16=(), heads=HEADS, swa=None):
    rng = np.random.default_rng(len(arch))
    hd = o.get("head_dim", DIM // HEADS)
    w = GGUFWriter(path, arch)
    w.add_name(f"tiny {arch}")
    w.add_context_length(64)
    w.add_embedding_length(DIM)
    w.add_block_count(o["layers"])
    w.add_feed_forward_length(FF)
    w.add_head_count(heads)
    w.add_head_count_kv(KV)
    w.add_layer_norm_rms_eps(1e-6)
    if "head_dim" in o:
        w.add_key_length(hd)
        w.add_value_length(hd)
    if o.get("swa") is not None:
        w.add_sliding_window(o["swa"] if swa is None else swa)
    if o.get("softcap"):
        w.add_float32(f"{arch}.attn_logit_softcapping", 5.0)
        w.add_float32(f"{arch}.final_logit_softcapping", 3.0)
    if o.get("longrope"):
        w.add_uint32(f"{arch}.rope.scaling.original_context_length", 16)
        w.add_float32(f"{arch}.rope.scaling.attn_factor", 1.1)
    vocab(w)

    def t(name, shape, dtype=np.float32, scale=0.5):
        if name in skip:
            return
        shape = list(shape)
        if name in bad_shape:
            shape[0] += 1
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        if name.endswith("norm.weight"):
            a = 1 + 0.1 * a
        if name.startswith("rope_factors"):  # per-pair divisors: positive
            a = 1 + np.abs(a)
        if name in f16:
            a = a.astype(np.float16)
        w.add_tensor(name, a)

    q, kv = heads * hd, KV * hd
    t("token_embd.weight", (VOCAB, DIM))
    t("output_norm.weight", (DIM,))
    if o.get("longrope"):
        t("rope_factors_long.weight", (hd // 2,), scale=0.1)
        t("rope_factors_short.weight", (hd // 2,), scale=0.1)
    for l in range(o["layers"]):
        p = f"blk.{l}."
        t(p + "attn_norm.weight", (DIM,))
        if o.get("fused"):
            t(p + "attn_qkv.weight", (q + 2 * kv, DIM))
        else:
            t(p + "attn_q.weight", (q, DIM))
            t(p + "attn_k.weight", (kv, DIM))
            t(p + "attn_v.weight", (kv, DIM))
        if o.get("bias"):
            t(p + "attn_q.bias", (q,))
            t(p + "attn_k.bias", (kv,))
            t(p + "attn_v.bias", (kv,))
        if o.get("qk_norm"):
            t(p + "attn_q_norm.weight", (hd,))
            t(p + "attn_k_norm.weight", (hd,))
        t(p + "attn_output.weight", (DIM, q))
        if o.get("post"):
            t(p + "post_attention_norm.weight", (DIM,))
        t(p + "ffn_norm.weight", (DIM,))
        if o.get("fused"):
            t(p + "ffn_up.weight", (2 * FF, DIM))
        else:
            t(p + "ffn_gate.weight", (FF, DIM))
            t(p + "ffn_up.weight", (FF, DIM))
        t(p + "ffn_down.weight", (DIM, FF))
        if o.get("post"):
            t(p + "post_ffw_norm.weight", (DIM,))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus_model")
    os.makedirs(out, exist_ok=True)
    for arch, o in FAMILIES.items():
        model(os.path.join(out, f"{arch}.gguf"), arch, o)
        first = "blk.1.attn_k_norm.weight" if o.get("qk_norm") else "blk.1.ffn_down.weight"
        model(os.path.join(out, f"{arch}-missing.gguf"), arch, o, skip={first})
        model(os.path.join(out, f"{arch}-shape.gguf"), arch, o, bad_shape={"blk.0.attn_output.weight"})
        model(os.path.join(out, f"{arch}-type.gguf"), arch, o, f16={"blk.0.attn_norm.weight"})
    model(os.path.join(out, "llama-heads3.gguf"), "llama", FAMILIES["llama"], heads=3)
    model(os.path.join(out, "gemma3-swa0.gguf"), "gemma3", FAMILIES["gemma3"], swa=0)


if __name__ == "__main__":
    main()
