#!/usr/bin/env python3
"""make_gguf_corpus.py — writes the seed corpus for tests/fuzz/fuzz_gguf.c:
a few small valid GGUF files (each under 10 KB) that between them use every
metadata value type, string and number arrays, several tensor types, a custom
alignment, a vocabulary-only file and a version-2 header.

Needs the `gguf` and `numpy` Python packages. Usage:
    python3 tests/fuzz/make_gguf_corpus.py [OUTDIR]   (default tests/fuzz/corpus_gguf)
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter


def write(w: GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tiny_llama(path: str) -> None:
    """A llama-shaped model: hyperparameters, a 16-token vocabulary, f32 weights."""
    w = GGUFWriter(path, "llama")
    w.add_name("tiny")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_rope_dimension_count(4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(10)] + ["\u2581a", "b", "\u2581ab"]
    w.add_token_list(toks)
    w.add_token_scores([float(-i) for i in range(len(toks))])
    w.add_token_types([2, 3, 3] + [6] * 10 + [1, 1, 1])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    rng = np.random.default_rng(1)
    w.add_tensor("token_embd.weight", rng.standard_normal((16, 8), dtype=np.float32))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(8, dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight", rng.standard_normal((8, 8), dtype=np.float32))
    w.add_tensor("blk.0.attn_k.weight", rng.standard_normal((4, 8), dtype=np.float32))
    w.add_tensor("output_norm.weight", np.ones(8, dtype=np.float32))
    write(w)


def all_types(path: str) -> None:
    """Every scalar type, arrays of each kind, f16/q8_0/i32 tensors, 4 dims."""
    w = GGUFWriter(path, "test")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -5)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -300)
    w.add_uint32("t.u32", 3000000000)
    w.add_int32("t.i32", -70000)
    w.add_float32("t.f32", 0.5)
    w.add_bool("t.bool", True)
    w.add_uint64("t.u64", 1 << 40)
    w.add_int64("t.i64", -(1 << 40))
    w.add_float64("t.f64", 0.25)
    w.add_string("t.str", "h\u00e9llo \u4e16\u754c\n\"q\"")
    w.add_key_value("t.arr_u8", [1, 2, 3], GGUFValueType.ARRAY, GGUFValueType.UINT8)
    w.add_key_value("t.arr_i64", [-1, 2], GGUFValueType.ARRAY, GGUFValueType.INT64)
    w.add_key_value("t.arr_f64", [0.5, 1.5], GGUFValueType.ARRAY, GGUFValueType.FLOAT64)
    w.add_key_value("t.arr_bool", [True, False], GGUFValueType.ARRAY, GGUFValueType.BOOL)
    w.add_array("t.arr_str", ["a", "", "ccc"])
    w.add_tensor("f16", np.arange(12, dtype=np.float16).reshape(3, 4))
    w.add_tensor("i32", np.arange(4, dtype=np.int32))
    q8 = np.zeros((2, 34), dtype=np.uint8)  # 2 rows of one q8_0 block
    w.add_tensor("q8", q8, raw_dtype=GGMLQuantizationType.Q8_0)  # byte shape
    w.add_tensor("four", np.ones((1, 2, 1, 3), dtype=np.float32))
    write(w)


def aligned64(path: str) -> None:
    """A custom general.alignment of 64."""
    w = GGUFWriter(path, "llama")
    w.add_custom_alignment(64)
    w.add_tensor("a", np.ones(3, dtype=np.float32))
    w.add_tensor("b", np.ones((2, 5), dtype=np.float32))
    write(w)


def vocab_only(path: str) -> None:
    """Metadata only, no tensors (like the ggml-vocab-*.gguf files)."""
    w = GGUFWriter(path, "llama")
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["!", "\"", "a", "b", "ab", "\u0120a"])
    w.add_token_merges(["a b", "\u0120 a"])
    w.add_token_types([1] * 6)
    write(w)


def version2(src: str, path: str) -> None:
    """The same bytes with the version field set to 2 (v2 and v3 share a layout)."""
    with open(src, "rb") as f:
        data = bytearray(f.read())
    data[4:8] = (2).to_bytes(4, "little")
    with open(path, "wb") as f:
        f.write(data)


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus_gguf")
    os.makedirs(out, exist_ok=True)
    tiny_llama(os.path.join(out, "tiny_llama.gguf"))
    all_types(os.path.join(out, "all_types.gguf"))
    aligned64(os.path.join(out, "aligned64.gguf"))
    vocab_only(os.path.join(out, "vocab_only.gguf"))
    version2(os.path.join(out, "aligned64.gguf"), os.path.join(out, "version2.gguf"))
    for name in sorted(os.listdir(out)):
        size = os.path.getsize(os.path.join(out, name))
        assert size < 10 * 1024, f"{name} is {size} bytes; seeds must stay small"
        print(f"{name}: {size} bytes")


if __name__ == "__main__":
    main()
