#!/usr/bin/env bash
# test_tokenizer_bpe_ref.sh — proves the committed byte-level BPE golden files
# come from independent implementations: regenerates them with
# tests/tokenizer_bpe_ref.py (Hugging Face tokenizers, regex, gguf; tiktoken if
# present) and diffs. Needs a python3 with those packages, else skips (77).
set -u
SRC=${ANC_SRCDIR:-.}
MODELS=${ANC_MODELS_DIR:-../shared/models}
VOCAB=$MODELS/ggml-vocab-gpt-2.gguf
G=$SRC/tests/golden
FAMILIES="llama_bpe qwen2 starcoder tekken gpt4o deepseek_llm deepseek3 falcon bloom"
FILES="tokenizer_gpt2.tsv tokenizer_split_gpt2.tsv tokenizer_gpt2_decode.tsv tokenizer_gpt2_bytes.tsv"
for f in $FAMILIES; do
  FILES="$FILES tokenizer_gpt2_$f.tsv"
  [ "$f" = falcon ] || FILES="$FILES tokenizer_split_$f.tsv"
done

[ -d "$MODELS" ] || { echo "SKIP: no models folder $MODELS"; exit 77; }
[ -r "$VOCAB" ] || { echo "FAIL: missing $VOCAB"; exit 1; }

# $REF_PYTHON (configure's pick) first, then the usual names.
py=
for cand in "${ANC_REF_PYTHON:-}" "${ANC_SRCDIR:-.}/.venv-ref/bin/python" "${REF_PYTHON:-}" python3 /tmp/pyref/bin/python; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import tokenizers, regex, gguf' >/dev/null 2>&1; then py=$cand; break; fi
done
[ -n "$py" ] || {
  echo "SKIP: no python with tokenizers, regex and gguf (tried REF_PYTHON=${REF_PYTHON:-unset},"
  echo "      python3, /tmp/pyref/bin/python; pip install -r tests/reference/requirements.txt)"
  exit 77
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" "$SRC/tests/tokenizer_bpe_ref.py" "$VOCAB" "$tmp" || { echo "FAIL: tokenizer_bpe_ref.py failed"; exit 1; }

fails=0
for f in $FILES; do
  if ! diff -u "$G/$f" "$tmp/$f"; then
    echo "FAIL: $G/$f differs from what the reference gives (regenerate with tests/tokenizer_bpe_ref.py)"
    fails=$((fails + 1))
  fi
done
[ "$fails" -eq 0 ] || exit 1
tt=$("$py" -c 'import tiktoken' >/dev/null 2>&1 && echo ", tiktoken agreeing" || echo ", tiktoken absent")
echo "PASS: $(wc -l <"$G/tokenizer_gpt2.tsv") texts x 10 pre-tokenizer families (ids and splits) agree with tokenizers and regex$tt ($py)"
exit 0
