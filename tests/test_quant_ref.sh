#!/usr/bin/env bash
# test_quant_ref.sh — proves the committed golden files of tests/golden/quant/
# come from the independent reference (the gguf package's NumPy quantisers):
# regenerates them with tests/quant_ref.py and compares byte for byte.
# Needs a python with numpy and gguf, else skips (77): tried in order
# $ANC_REF_PYTHON, $REF_PYTHON, python3, /tmp/pyref/bin/python and the
# checkout's .venv-ref/bin/python (as test_ppl_ref.sh / test_foreign_gguf.sh).
set -u
SRC=${ANC_SRCDIR:-.}
G=$SRC/tests/golden/quant

py=
for cand in "${ANC_REF_PYTHON:-}" "${REF_PYTHON:-}" python3 /tmp/pyref/bin/python \
            "$SRC/.venv-ref/bin/python"; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import gguf, numpy' >/dev/null 2>&1; then py=$cand; break; fi
done
[ -n "$py" ] || {
  echo "SKIP: no python with numpy and gguf (tried ANC_REF_PYTHON=${ANC_REF_PYTHON:-unset}," \
       "REF_PYTHON=${REF_PYTHON:-unset}, python3, /tmp/pyref/bin/python, $SRC/.venv-ref/bin/python)"
  exit 77
}
[ -d "$G" ] || { echo "FAIL: missing $G"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" "$SRC/tests/quant_ref.py" "$tmp" || { echo "FAIL: quant_ref.py failed"; exit 1; }
versions=$("$py" -c 'import importlib.metadata as m; print("numpy", m.version("numpy"), "gguf", m.version("gguf"))' 2>/dev/null)

fails=0 count=0
for f in "$tmp"/*.bin "$tmp"/*.f32; do
  name=${f##*/}
  count=$((count + 1))
  if ! cmp -s "$f" "$G/$name"; then
    echo "FAIL: $G/$name differs from what $py ($versions) makes (regenerate with tests/quant_ref.py)"
    fails=$((fails + 1))
  fi
done
for f in "$G"/*.bin "$G"/*.f32; do
  [ -e "$tmp/${f##*/}" ] || { echo "FAIL: $f is not made by tests/quant_ref.py any more"; fails=$((fails + 1)); }
done
[ "$fails" -eq 0 ] || exit 1
echo "PASS: $count golden files of tests/golden/quant/ reproduced by $py ($versions)"
exit 0
