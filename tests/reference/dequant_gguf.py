#!/usr/bin/env python3
"""Copy a GGUF file with every tensor dequantised to F32 by
gguf.quants.dequantize (metadata copied as is, general.file_type set to 0).

usage: dequant_gguf.py IN.gguf OUT.gguf

Used to validate model_ref.py against llama.cpp on real checkpoints without
llama.cpp's 8-bit rounding of activations (which it applies only to
quantised weights): both then compute with exactly the same weights.
"""
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType as VT, GGUFWriter, quants


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    r = GGUFReader(argv[1])
    arch = r.fields["general.architecture"].contents()
    w = GGUFWriter(argv[2], arch)
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        val = f.contents()
        if key == "general.file_type":
            val = 0
        vtype = VT(f.types[0])
        if vtype == VT.ARRAY:
            w.add_key_value(key, val, vtype, sub_type=VT(f.types[1]))
        else:
            w.add_key_value(key, val, vtype)
    for t in r.tensors:
        shape = tuple(reversed([int(n) for n in t.shape]))
        arr = quants.dequantize(np.asarray(t.data), t.tensor_type)
        w.add_tensor(t.name, np.asarray(arr, dtype=np.float32).reshape(shape))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
