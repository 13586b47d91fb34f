#!/usr/bin/env bash
# test_tokenizer_real_ref.sh — proves tests/golden/tokenizer_smollm2.tsv and
# tokenizer_gemma3.tsv come from independent implementations: regenerates them
# with tests/tokenizer_real_ref.py (tokenizers, sentencepiece, protobuf, gguf)
# from the real model files and diffs. Skips (77) when neither file is present
# or no python has those packages; a file that is absent is not checked.
set -u
SRC=${ANC_SRCDIR:-.}
D=${ANC_REAL_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/ancora/models}
SMOL=$D/SmolLM2-135M-Instruct.Q4_1.gguf
GEMMA=$D/gemma-3-270m-q4_k_m.gguf
G=$SRC/tests/golden
[ -r "$SMOL" ] || SMOL=-
[ -r "$GEMMA" ] || GEMMA=-
[ "$SMOL$GEMMA" != "--" ] || { echo "SKIP: no real models in $D (scripts/fetch-models smollm2 gemma3)"; exit 77; }

py=
for cand in "${ANC_REF_PYTHON:-}" "$SRC/.venv-ref/bin/python" "${REF_PYTHON:-}" python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import tokenizers, gguf, sentencepiece, regex
from sentencepiece import sentencepiece_model_pb2' >/dev/null 2>&1; then py=$cand; break; fi
done
[ -n "$py" ] || { echo "SKIP: no python with tokenizers, gguf, regex, sentencepiece and protobuf"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nice "$py" "$SRC/tests/tokenizer_real_ref.py" "$SMOL" "$GEMMA" "$tmp" || { echo "FAIL: tokenizer_real_ref.py failed"; exit 1; }
fails=0 checked=
for f in "$tmp"/*.tsv; do
  b=$(basename "$f")
  if ! diff -u "$G/$b" "$f"; then
    echo "FAIL: $G/$b differs from what the reference gives (regenerate with tests/tokenizer_real_ref.py)"
    fails=$((fails + 1))
  fi
  checked="$checked $b"
done
[ "$fails" -eq 0 ] || exit 1
echo "PASS:$checked agree with tokenizers / sentencepiece ($py)"
exit 0
