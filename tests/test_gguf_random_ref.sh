#!/usr/bin/env bash
# test_gguf_random_ref.sh — files written by `ancora gguf random` are real
# GGUF files: the gguf Python package's reader (not ours) opens each weight
# type, sees the shapes and types we meant, and its dequantisation of our
# random blocks is finite. Skips (77) without a Python that has gguf.
set -u
ANCORA=${ANCORA:-./ancora}
SRC=${ANC_SRCDIR:-.}
MODELS=${ANC_MODELS_DIR:-../shared/models}
PY=
for p in "${ANC_REF_PYTHON:-}" "$SRC/.venv-ref/bin/python" "${REF_PYTHON:-}" python3 /tmp/pyref/bin/python; do
  [ -n "$p" ] && command -v "$p" >/dev/null 2>&1 && "$p" -c 'import gguf, numpy' 2>/dev/null && { PY=$p; break; }
done
[ -n "$PY" ] || { echo "SKIP: no python with the gguf package"; exit 77; }
[ -f "$MODELS/ggml-vocab-llama-spm.gguf" ] || { echo "SKIP: no vocabulary"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
for t in f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_s q4_k_m q5_k_m q6_k; do
  "$ANCORA" gguf random --shape small --type $t -o "$tmp/$t.gguf" --vocab "$MODELS/ggml-vocab-llama-spm.gguf" 2>"$tmp/err" \
    || { echo "FAIL: gguf random $t: $(cat "$tmp/err")"; fails=$((fails + 1)); continue; }
  "$PY" - "$tmp/$t.gguf" "$t" <<'PYEOF' || fails=$((fails + 1))
import sys, numpy as np, gguf
path, want = sys.argv[1], sys.argv[2]
r = gguf.GGUFReader(path)
f = r.fields
def val(k):
    fl = f[k]
    return fl.parts[fl.data[0]][0] if fl.types[0] != gguf.GGUFValueType.STRING else bytes(fl.parts[fl.data[0]]).decode()
assert val("general.architecture") == "llama"
assert val("llama.embedding_length") == 256 and val("llama.block_count") == 4
assert len(f["tokenizer.ggml.tokens"].data) == 32000
names = {t.name: t for t in r.tensors}
assert len(names) == 3 + 9 * 4, len(names)
q = names["blk.0.attn_q.weight"]
base = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q4_0": "Q4_0", "q4_1": "Q4_1",
        "q5_0": "Q5_0", "q5_1": "Q5_1", "q4_k_s": "Q4_K", "q4_k_m": "Q4_K", "q5_k_m": "Q5_K", "q6_k": "Q6_K"}[want]
assert q.tensor_type.name == base, (q.tensor_type.name, base)
assert list(q.shape) == [256, 256], q.shape
assert names["blk.0.ffn_down.weight"].shape.tolist() == [768, 256]
for name in ("blk.0.attn_q.weight", "output.weight", "blk.3.ffn_down.weight"):
    t = names[name]
    w = gguf.quants.dequantize(t.data, t.tensor_type)
    assert np.isfinite(w).all(), name
    assert 0.001 < float(np.std(w)) < 0.1, (name, float(np.std(w)))
print("ok", want, q.tensor_type.name)
PYEOF
done
[ $fails -eq 0 ] && echo "every gguf random file reads in the gguf package"
exit $((fails > 0))
