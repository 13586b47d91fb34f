#!/usr/bin/env python3
"""Write a random LoRA adapter for a GGUF base model in llama.cpp's LoRA
GGUF layout (TECHNIQUES.md §4), with the PyPI gguf package's GGUFWriter (a
writer that is not Ancora's), and bad variants for the refusal tests.

usage: write_lora.py BASE.gguf OUT.gguf [--rank R] [--alpha A] [--no-alpha]
                     [--targets q,k,v,o,gate,up,down] [--layers all|0,2]
                     [--std S] [--seed N] [--type f32|f16] [--zero-b]
                     [--break KIND ...]

Layout: general.type = "adapter", adapter.type = "lora",
adapter.lora.alpha (FLOAT32), general.architecture copied from the base;
for each adapted weight blk.N.X.weight (X = attn_q, attn_k, attn_v,
attn_output, ffn_gate, ffn_up, ffn_down) the tensors X.weight.lora_a with
GGUF ne = [in, r] and X.weight.lora_b with ne = [r, out]. Unlike a freshly
initialised adapter, B is not zero: the test needs the update to show.
A and B are seeded normals of standard deviation --std (default 0.3 /
sqrt(fan_in) of each). --zero-b writes B = 0 as a freshly initialised
adapter has it (LoRA's init, TECHNIQUES.md section 4: the update is then 0
and, in training, A's gradient is exactly 0 while B's is not); A is drawn
as without it, so the same seed gives the same A either way.

--break KIND (writes a bad adapter instead):
    arch        general.architecture = "gpt2"
    type        general.type = "model"
    shape       lora_a of the first target one column too wide
    rank        lora_b of the first target with rank r+1
    only-a      the first target's lora_b omitted
    name        an extra pair for blk.0.attn_qkv.weight
    layer       an extra pair for a layer the base does not have
"""
import argparse
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter

NAMES = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output",
         "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down"}


def field_str(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    return bytes(f.parts[f.data[0]]).decode()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base")
    ap.add_argument("out")
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=8.0)
    ap.add_argument("--no-alpha", action="store_true")
    ap.add_argument("--targets", default="q,k,v,o")
    ap.add_argument("--layers", default="all")
    ap.add_argument("--std", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--type", choices=("f32", "f16"), default="f32")
    ap.add_argument("--zero-b", action="store_true", help="B = 0 (fresh initialisation)")
    ap.add_argument("--break", dest="brk", default=None,
                    choices=("arch", "type", "shape", "rank", "only-a", "name", "layer"))
    a = ap.parse_args(argv)

    base = GGUFReader(a.base)
    arch = field_str(base, "general.architecture")
    shapes = {t.name: [int(n) for n in t.shape] for t in base.tensors}  # GGUF ne order
    n_layer = 1 + max(int(n.split(".")[1]) for n in shapes if n.startswith("blk."))
    layers = range(n_layer) if a.layers == "all" else [int(x) for x in a.layers.split(",")]
    targets = [NAMES[t] for t in a.targets.split(",")]
    rng = np.random.default_rng(a.seed)
    dtype = np.float32 if a.type == "f32" else np.float16

    w = GGUFWriter(a.out, "gpt2" if a.brk == "arch" else arch)
    w.add_string("general.type", "model" if a.brk == "type" else "adapter")
    w.add_string("adapter.type", "lora")
    if not a.no_alpha:
        w.add_float32("adapter.lora.alpha", a.alpha)

    def pair(name, n_in, n_out, r, first):
        # numpy shapes are GGUF ne reversed: A (r, in), B (out, r)
        in_a = n_in + 1 if (first and a.brk == "shape") else n_in
        r_b = r + 1 if (first and a.brk == "rank") else r
        A = rng.normal(0, a.std / np.sqrt(n_in), (r, in_a)).astype(dtype)
        B = rng.normal(0, a.std / np.sqrt(r), (n_out, r_b)).astype(dtype)
        if a.zero_b:
            B = np.zeros_like(B)
        w.add_tensor(name + ".lora_a", A)
        if not (first and a.brk == "only-a"):
            w.add_tensor(name + ".lora_b", B)

    first = True
    for l in layers:
        for t in targets:
            name = f"blk.{l}.{t}.weight"
            if name not in shapes:
                sys.exit(f"write_lora: the base has no {name}")
            n_in, n_out = shapes[name][0], shapes[name][1]
            pair(name, n_in, n_out, a.rank, first)
            first = False
    if a.brk == "name":
        n_in = shapes["blk.0.attn_q.weight"][0]
        pair("blk.0.attn_qkv.weight", n_in, 3 * n_in, a.rank, False)
    if a.brk == "layer":
        n_in, n_out = shapes["blk.0.attn_q.weight"]
        pair(f"blk.{n_layer}.attn_q.weight", n_in, n_out, a.rank, False)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
