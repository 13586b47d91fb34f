#!/usr/bin/env python3
"""Independent chunked perplexity (llama.cpp llama-perplexity convention).

The forward pass is the float64 NumPy reference of llama_ref.py (Model and
Session.feed, which processes a whole token sequence in one call); this file
adds only the chunking and the statistics, written from the definition:

    tokens  = the ids of the whole text, BOS first (the output of
              `ancora tokenize -m MODEL -f FILE`)
    n_chunk = floor(len(tokens) / n_ctx)      (or --max-chunks if smaller)
    for each chunk c:
        batch    = tokens[c*n_ctx : (c+1)*n_ctx], with batch[0] := BOS
        logits   = forward(batch) on a fresh cache, positions 0 .. n_ctx-1
        for j in n_ctx/2 .. n_ctx-2:
            nll_j = logsumexp(logits[j]) - logits[j][tokens[c*n_ctx + j + 1]]
    PPL = exp(mean nll)                       (sums in float64)
    err = PPL * sqrt((E[nll^2] - E[nll]^2) / (count - 1))

Output: a line per chunk on stderr, and as last line on stdout
    PPL = %.4f +/- %.5f

Usage:
    ppl_ref.py MODEL TOKENS_FILE --ctx N [--max-chunks K]
"""

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_ref import Model, Session  # noqa: E402  (the shared reference)


def read_ids(path):
    with open(path) as f:
        return [int(s) for s in f.read().split()]


def chunk_nll(model, tokens, start, n_ctx):
    """NLLs of the scored positions of the chunk starting at `start`."""
    batch = list(tokens[start:start + n_ctx])
    batch[0] = model.bos
    logits = Session(model).feed(batch)                 # (n_ctx, n_vocab)
    first = n_ctx // 2
    rows = logits[first:n_ctx - 1]                      # predict next token
    targets = np.asarray(tokens[start + first + 1:start + n_ctx])
    mx = rows.max(axis=1)
    logz = mx + np.log(np.exp(rows - mx[:, None]).sum(axis=1))
    return logz - rows[np.arange(len(targets)), targets]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("tokens", help="file of token ids (BOS first), whitespace-separated")
    ap.add_argument("--ctx", type=int, required=True, metavar="N")
    ap.add_argument("--max-chunks", type=int, default=None, metavar="K")
    args = ap.parse_args(argv)

    n_ctx = args.ctx
    if n_ctx < 4:
        raise SystemExit("--ctx must be at least 4")
    model = Model(args.model)
    tokens = read_ids(args.tokens)
    for t in tokens:
        if not 0 <= t < model.n_vocab:
            raise SystemExit(f"token id {t} out of range (vocab {model.n_vocab})")
    if tokens and tokens[0] != model.bos:
        print(f"warning: first token {tokens[0]} is not BOS ({model.bos})",
              file=sys.stderr)

    n_chunk = len(tokens) // n_ctx
    if args.max_chunks is not None:
        n_chunk = min(n_chunk, args.max_chunks)
    if n_chunk < 1:
        raise SystemExit(f"{len(tokens)} tokens: fewer than one chunk of {n_ctx}")

    total = total2 = 0.0
    count = 0
    for c in range(n_chunk):
        nll = chunk_nll(model, tokens, c * n_ctx, n_ctx)
        total += float(np.sum(nll))
        total2 += float(np.sum(nll * nll))
        count += len(nll)
        print(f"[{c + 1}] {math.exp(total / count):.4f}", file=sys.stderr)

    mean = total / count
    ppl = math.exp(mean)
    var = total2 / count - mean * mean
    err = ppl * math.sqrt(var / (count - 1)) if var > 0 and count > 1 else 0.0
    print(f"ref: {len(tokens)} tokens, ctx {n_ctx}, {n_chunk} chunks, "
          f"{count} scored", file=sys.stderr)
    print(f"PPL = {ppl:.4f} +/- {err:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
