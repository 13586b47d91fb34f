#!/usr/bin/env bash
# test_tokenizer_ref.sh — proves the committed tokenizer golden files come from
# the independent SentencePiece implementation: regenerates them with
# tests/tokenizer_ref.py and diffs. Needs python3 with sentencepiece, else skips.
set -u
SRC=${ANC_SRCDIR:-.}
MODELS=${ANC_MODELS_DIR:-../shared/models}
MODEL=$MODELS/llama2-tokenizer.model
G=$SRC/tests/golden

[ -d "$MODELS" ] || { echo "SKIP: no models folder $MODELS"; exit 77; }
[ -r "$MODEL" ] || { echo "FAIL: missing $MODEL"; exit 1; }

# $REF_PYTHON (configure's pick) may lack sentencepiece; Debian's
# python3-sentencepiece lives with /usr/bin/python3.
py=
for cand in "${REF_PYTHON:-}" /usr/bin/python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import sentencepiece' >/dev/null 2>&1; then py=$cand; break; fi
done
[ -n "$py" ] || { echo "SKIP: no python3 with sentencepiece (REF_PYTHON=${REF_PYTHON:-unset})"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" "$SRC/tests/tokenizer_ref.py" "$MODEL" "$tmp" || { echo "FAIL: tokenizer_ref.py failed"; exit 1; }

fails=0
for f in tokenizer_llama_spm.tsv tokenizer_llama_spm_decode.tsv; do
  if ! diff -u "$G/$f" "$tmp/$f"; then
    echo "FAIL: $G/$f differs from what SentencePiece gives (regenerate with tests/tokenizer_ref.py)"
    fails=$((fails + 1))
  fi
done
[ "$fails" -eq 0 ] || exit 1
echo "PASS: $(wc -l <"$G/tokenizer_llama_spm.tsv") encode and $(wc -l <"$G/tokenizer_llama_spm_decode.tsv") decode cases agree with SentencePiece ($py)"
exit 0
