#!/usr/bin/env bash
# test_jinja_ref.sh — Ancora's Jinja interpreter against jinja2, byte for
# byte: every template of tests/data/templates (real chat templates, see its
# README), the official ones of tests/chat_template_ref.py, and the chat
# templates inside the real model files in $ANC_REAL_MODELS (SmolLM2,
# Gemma 3, when present), each rendered with every conversation of
# tests/jinja_ref.py with and without the generation prompt, by
# tests/jinja_render (Ancora) and tests/jinja_ref.py (jinja2 as transformers
# sets it up). A template that raises must raise in both. Then a renderer
# with one byte changed (jinja_render --break) must be caught.
# Needs python3 with jinja2 (REF_PYTHON or the checkout's .venv-ref), else skips.
set -u
SRC=${ANC_SRCDIR:-.}
RENDER=${JINJA_RENDER:-./tests/jinja_render}
export TZ=UTC NOW=1721952000

py=
for cand in "${REF_PYTHON:-}" "$SRC/.venv-ref/bin/python3" python3 /usr/bin/python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import jinja2' >/dev/null 2>&1; then py=$cand; break; fi
done
[ -n "$py" ] || { echo "SKIP: no python3 with jinja2 (REF_PYTHON=${REF_PYTHON:-unset})"; exit 77; }
[ -x "$RENDER" ] || { echo "FAIL: $RENDER is not built"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" "$SRC/tests/jinja_ref.py" convs "$tmp/convs.txt" || { echo "FAIL: jinja_ref.py convs"; exit 1; }
"$py" "$SRC/tests/jinja_ref.py" fixtures "$tmp/fx" || { echo "FAIL: jinja_ref.py fixtures"; exit 1; }

fails=0 n=0 cases=0
compare() { # NAME WANT GOT
  n=$((n + 1))
  cases=$((cases + $(grep -ac '^case ' "$2")))
  if ! cmp -s "$2" "$3"; then
    echo "FAIL: $1: Ancora's rendering differs from jinja2's"
    diff -a "$2" "$3" | head -20
    fails=$((fails + 1))
    return 1
  fi
  return 0
}

for f in "$tmp"/fx/*.jinja "$SRC"/tests/data/templates/*.jinja; do
  b=$(basename "$f" .jinja)
  if [ -f "${f%.jinja}.tokens" ]; then
    { read -r bos; read -r eos; } < "${f%.jinja}.tokens"
  else
    { read -r bos; read -r eos; } < <("$py" "$SRC/tests/jinja_ref.py" tokens "$b")
  fi
  "$py" "$SRC/tests/jinja_ref.py" render "$f" "$tmp/convs.txt" --bos "$bos" --eos "$eos" --now "$NOW" \
    > "$tmp/$b.want" 2> "$tmp/$b.werr"
  "$RENDER" --bos "$bos" --eos "$eos" --now "$NOW" "$f" "$tmp/convs.txt" > "$tmp/$b.got" 2> "$tmp/$b.gerr"
  compare "$b" "$tmp/$b.want" "$tmp/$b.got"
done

# the real model files: their own template, through the model loader and
# chat_template.c as a session renders it
real=0
if "$py" -c 'import gguf' >/dev/null 2>&1; then
  for m in "${ANC_REAL_MODELS:-}"/SmolLM2-*.gguf "${ANC_REAL_MODELS:-}"/gemma-3-*.gguf; do
    [ -f "$m" ] || continue
    b=$(basename "$m" .gguf)
    "$py" "$SRC/tests/jinja_ref.py" render-gguf "$m" "$tmp/convs.txt" --now "$NOW" > "$tmp/$b.want" 2> "$tmp/$b.werr" || continue
    "$RENDER" --now "$NOW" -m "$m" "$tmp/convs.txt" > "$tmp/$b.got" 2> "$tmp/$b.gerr"
    compare "model $b" "$tmp/$b.want" "$tmp/$b.got" && real=$((real + 1))
  done
fi
echo "real model files rendered from their own template: $real"

# a renderer that is wrong by one byte must fail the comparison
f="$tmp/fx/official-chatml.jinja"
"$RENDER" --break --bos "<s>" --eos "<|im_end|>" --now "$NOW" "$f" "$tmp/convs.txt" > "$tmp/broken.got" 2>/dev/null
if cmp -s "$tmp/official-chatml.want" "$tmp/broken.got"; then
  echo "FAIL: a broken renderer was not caught"
  fails=$((fails + 1))
fi

[ "$fails" -eq 0 ] || { echo "FAIL: $fails of $n templates differ"; exit 1; }
echo "PASS: $n templates, $cases renderings byte-identical to jinja2 ($py)"
exit 0
