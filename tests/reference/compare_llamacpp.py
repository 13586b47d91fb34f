#!/usr/bin/env python3
"""Validate model_ref.py against a llama.cpp build (a manual check, not a
test: llama.cpp is not a dependency of the project).

usage: compare_llamacpp.py BIN_DIR MODEL [--n N] [--prompt TEXT ...]
                           [--ppl-file FILE --ctx C --chunks K]

Greedy: for each prompt, ids from BIN_DIR/llama-tokenize (--ids), text from
BIN_DIR/llama-simple -n N (greedy sampler), and model_ref's greedy tokens on
the same ids; reports how many leading reference tokens llama.cpp's text
reproduces and, at the first divergence, the reference's top-2 logit gap
there (a small gap = a near-tie that llama.cpp's float32 / 8-bit activation
arithmetic may resolve the other way).

Perplexity: BIN_DIR/llama-perplexity -f FILE -c C -b C --chunks K with an
f32 KV cache and flash attention off, against model_ref's --ppl-ids on the
ids llama-tokenize gives for FILE.
"""

import argparse
import ast
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_ref as R  # noqa: E402


def run(cmd):
    p = subprocess.run(cmd, capture_output=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]!r}")
    return p.stdout, p.stderr


def tokenize(bindir, model, text=None, path=None):
    cmd = [os.path.join(bindir, "llama-tokenize"), "-m", model, "--ids", "--log-disable"]
    cmd += ["-p", text] if path is None else ["-f", path]
    out, _ = run(cmd)
    line = [ln for ln in out.decode().splitlines() if ln.startswith("[")][-1]
    return [int(x) for x in ast.literal_eval(line)]


def greedy_compare(bindir, model_path, m, text, n):
    ids = tokenize(bindir, model_path, text)
    out, _ = run([os.path.join(bindir, "llama-simple"), "-m", model_path, "-n", str(n), text])
    out = out.decode("utf-8", "replace")
    i = out.find(text)
    lc_text = out[i + len(text):] if i >= 0 else out
    gen, saved = R.greedy(m, ids, n, n, len(ids) + n)
    agree = 0
    for k in range(1, len(gen) + 1):
        piece = R.decode(m, gen[:k], ids[-1]).decode("utf-8", "replace")
        if lc_text.startswith(piece.rstrip("\ufffd")):
            agree = k
        else:
            break
    ref_text = R.decode(m, gen, ids[-1]).decode("utf-8", "replace")
    gaps = [float(np.diff(np.sort(r)[-2:])[0]) for r in saved]
    print(f"prompt {text!r}: ids {ids}")
    print(f"  llama.cpp: {lc_text.strip()!r}")
    print(f"  reference: {ref_text!r}")
    if agree >= len(gen):
        print(f"  AGREE on all {len(gen)} tokens (min ref top-2 gap {min(gaps):.3g})")
    else:
        print(f"  agree on the first {agree} of {len(gen)} tokens; ref top-2 gap at "
              f"token {agree}: {gaps[agree]:.4g} (min over the agreeing steps "
              f"{min(gaps[:agree]) if agree else float('nan'):.3g})")
    return agree, len(gen)


def ppl_compare(bindir, model_path, m, path, ctx, chunks):
    out, err = run([os.path.join(bindir, "llama-perplexity"), "-m", model_path, "-f", path,
                    "-c", str(ctx), "-b", str(ctx), "--chunks", str(chunks),
                    "-ctk", "f32", "-ctv", "f32", "-fa", "off", "-t", "2"])
    txt = (out + err).decode("utf-8", "replace")
    mm = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", txt)
    if not mm:
        raise SystemExit("no PPL in llama-perplexity output:\n" + txt[-2000:])
    lc = float(mm.group(1))
    ids = tokenize(bindir, model_path, path=path)
    ref, referr = R.perplexity_chunks(m, ids, ctx, chunks, None)
    print(f"ppl ctx {ctx}, {chunks} chunks: llama.cpp {lc:.4f} +/- {mm.group(2)}, "
          f"reference {ref:.4f} +/- {referr:.5f}, rel diff {abs(lc - ref) / ref:.2e}")
    return lc, ref


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bindir")
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--prompt", action="append", default=[])
    ap.add_argument("--ppl-file")
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--chunks", type=int, default=2)
    args = ap.parse_args()
    m = R.Model(args.model)
    print(m.describe())
    for p in args.prompt:
        greedy_compare(args.bindir, args.model, m, p, args.n)
    if args.ppl_file:
        ppl_compare(args.bindir, args.model, m, args.ppl_file, args.ctx, args.chunks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
