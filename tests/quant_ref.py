#!/usr/bin/env python3
# quant_ref.py — writes the golden files of tests/golden/quant/ from the
# INDEPENDENT reference: the NumPy (de)quantisers of the PyPI `gguf` package.
# Shares no code with Ancora; needs only numpy and gguf.
#
# usage: quant_ref.py OUTDIR
#
# For each type, OUTDIR/<name>.bin holds the raw quantised rows and
# OUTDIR/<name>.f32 the package's dequantisation of them (little-endian
# float32). Types the package can quantise are made from input.f32 (also
# written); for the K-quants, which it can only dequantise, the blocks are
# random but valid (random quant and scale bytes, finite f16 factors).
# Every number is built with exact or correctly rounded operations, so the
# output is the same on every IEEE machine for a given numpy/gguf.
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

SEED = 20240607
ROWS, COLS = 4, 512     # input.f32: the rows the package quantises
FLOAT_COLS = 128        # float types use the first 128 columns of each row
K_BLOCKS = 6            # random K-quant super-blocks (3 rows of 512)

# Ancora's names (kernels/dtype.c) for the types covered.
QUANTISABLE = [("f32", T.F32), ("f16", T.F16), ("bf16", T.BF16),
               ("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q5_0", T.Q5_0),
               ("q5_1", T.Q5_1), ("q8_0", T.Q8_0)]
DEQUANT_ONLY = [("q4_K", T.Q4_K), ("q5_K", T.Q5_K), ("q6_K", T.Q6_K)]

# Byte offsets of the f16 factors in each K-quant block.
K_F16_FIELDS = {T.Q4_K: (0, 2), T.Q5_K: (0, 2), T.Q6_K: (208,)}


def bell(rng, n):
    """Roughly normal values (sum of three uniforms), float64."""
    return rng.random(n) + rng.random(n) + rng.random(n) - 1.5


def make_input(rng):
    x = np.zeros((ROWS, COLS), dtype=np.float64)
    # row 0: plain bell-shaped values, |x| < 1.5
    x[0] = bell(rng, COLS)
    # row 1: one kind of block per 32 values
    r = bell(rng, COLS).reshape(-1, 32)
    for b in range(12):  # magnitudes 2^-14 .. 2^6, some with an offset
        r[b] = np.ldexp(r[b], int(rng.integers(-14, 7)))
        if b % 3 == 2:
            r[b] += np.ldexp(1.0, int(rng.integers(-4, 3)))
    r[12] = rng.integers(-254, 255, 32) / 2.0  # halves: rounding ties
    r[12][5] = 127.0                           # ... with d = 1 for Q8_0
    r[13] = 0.8125                             # constant block (max == min)
    r[14] = np.abs(r[14]) + 0.25               # all positive
    r[15] = np.ldexp(r[15], -20)               # tiny: f16 scales subnormal
    x[1] = r.reshape(-1)
    # row 2: zeros
    # row 3: small values and one huge negative outlier (inside the float slice)
    x[3] = bell(rng, COLS) * 0.125
    x[3][100] = -900.5
    return x.astype(np.float32)


def random_f16_bits(rng, kind):
    """Bits of a finite half: 'zero', 'sub' (subnormal), 'neg', or typical."""
    if kind == "zero":
        return 0
    mant = int(rng.integers(1, 1024))
    if kind == "sub":
        return mant
    exp = int(rng.integers(1, 15))  # 2^-14 .. 2^-1, like real weight scales
    return (0x8000 if kind == "neg" else 0) | exp << 10 | mant


def make_k_blocks(rng, qtype):
    _, type_size = quants.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(K_BLOCKS, type_size), dtype=np.uint8)
    kinds = ["zero", "sub", "neg", "typ", "typ", "typ"]
    for b, kind in enumerate(kinds):
        for off in K_F16_FIELDS[qtype]:
            bits = random_f16_bits(rng, kind)
            blocks[b, off:off + 2] = np.array([bits], dtype="<u2").view(np.uint8)
    return blocks.reshape(K_BLOCKS // 2, -1)


def write(outdir, name, raw, deq):
    with open(os.path.join(outdir, name + ".bin"), "wb") as f:
        f.write(np.ascontiguousarray(raw).tobytes())
    with open(os.path.join(outdir, name + ".f32"), "wb") as f:
        f.write(np.ascontiguousarray(deq, dtype="<f4").tobytes())


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: quant_ref.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(SEED)

    x = make_input(rng)
    with open(os.path.join(outdir, "input.f32"), "wb") as f:
        f.write(x.astype("<f4").tobytes())

    for name, qtype in QUANTISABLE:
        src = x[:, :FLOAT_COLS] if name in ("f32", "f16", "bf16") else x
        raw = quants.quantize(src, qtype)
        deq = quants.dequantize(raw, qtype)
        assert deq.shape == src.shape and deq.dtype == np.float32, name
        write(outdir, name, raw, deq)

    for name, qtype in DEQUANT_ONLY:
        raw = make_k_blocks(rng, qtype)
        deq = quants.dequantize(raw, qtype)
        assert deq.shape == (K_BLOCKS // 2, 512) and np.all(np.isfinite(deq)), name
        write(outdir, name, raw, deq)


if __name__ == "__main__":
    main()
