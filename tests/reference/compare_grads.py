#!/usr/bin/env python3
"""Compare the gradients of `ancora train --grads-out` with the PyTorch
reference's (train_ref.py): the same tensor names and shapes, the losses
within --loss-rtol, and each gradient tensor within
  max |ancora - ref| <= rtol * max |ref| + atol.
Prints one line per tensor with its worst relative error; exit 0 when every
check holds, 1 otherwise.

usage: compare_grads.py ANCORA.gguf REF.gguf [--rtol 1e-4] [--atol 1e-9] [--loss-rtol 1e-5]
"""
import argparse
import sys

import numpy as np
from gguf import GGUFReader


def field(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    v = f.parts[f.data[0]]
    if f.types and f.types[0].name == "STRING":
        return bytes(v).decode()
    return float(v[0])


def tensors(reader):
    out = {}
    for t in reader.tensors:
        shape = tuple(int(x) for x in t.shape)  # GGUF ne order
        out[t.name] = (shape, np.asarray(t.data, dtype=np.float64).reshape(-1))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ancora")
    ap.add_argument("ref")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--atol", type=float, default=1e-9)
    ap.add_argument("--loss-rtol", type=float, default=1e-5)
    a = ap.parse_args(argv)
    ra, rr = GGUFReader(a.ancora), GGUFReader(a.ref)
    bad = 0
    la, lr = field(ra, "ancora.train.loss"), field(rr, "train_ref.loss_f64")
    la = float(la) if isinstance(la, str) else la
    lr = float(lr) if isinstance(lr, str) else lr
    if la is None or lr is None:
        print("FAIL: a loss is missing (ancora.train.loss, train_ref.loss_f64)")
        return 1
    rel = abs(la - lr) / abs(lr)
    print(f"loss ancora {la:.9f} ref {lr:.9f} rel {rel:.2e}")
    if not rel <= a.loss_rtol:
        print(f"FAIL: loss differs by {rel:.2e} > {a.loss_rtol}")
        bad += 1
    ta, tr = tensors(ra), tensors(rr)
    if set(ta) != set(tr):
        print(f"FAIL: tensor names differ: only ancora {sorted(set(ta) - set(tr))[:5]}, "
              f"only ref {sorted(set(tr) - set(ta))[:5]}")
        return 1
    worst = 0.0
    for name in sorted(tr):
        (sa, ga), (sr, gr) = ta[name], tr[name]
        if sa != sr:
            print(f"FAIL: {name}: shape {sa} vs {sr}")
            bad += 1
            continue
        scale = float(np.max(np.abs(gr))) if gr.size else 0.0
        diff = float(np.max(np.abs(ga - gr))) if gr.size else 0.0
        r = diff / scale if scale > 0 else diff
        worst = max(worst, r)
        ok = diff <= a.rtol * scale + a.atol
        if not ok:
            print(f"FAIL {name} {sa}: max |diff| {diff:.3g}, scale {scale:.3g}, rel {r:.2e}")
        bad += not ok
    print(f"{len(tr)} gradient tensors, worst relative difference {worst:.2e} (limit {a.rtol:g})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
