#!/usr/bin/env bash
# test_ppl_ref.sh — `ancora ppl --mode chunked` (llama.cpp's llama-perplexity
# convention) must agree with the independent float64 NumPy reference
# tests/reference/ppl_ref.py (built on tests/reference/llama_ref.py) on the
# first ~2000 tokens of tests/data/stories.txt, at ctx 128 and 256, to a
# relative 1e-4 in PPL. Needs a python with gguf and numpy, else skips (77).
set -u
SRC=${ANC_SRCDIR:-.}
MODELS=${ANC_MODELS_DIR:-../shared/models}
ANCORA=${ANCORA:-./ancora}
MODEL=$MODELS/stories260K.gguf
TEXT=$SRC/tests/data/stories.txt
REF=$SRC/tests/reference/ppl_ref.py
BYTES=4200          # -> 2068 tokens with stories260K (16 chunks of 128, 8 of 256)
TOL=1e-4            # relative, on PPL
TOL_ERR=1e-3        # relative, on the +/- term (printed with fewer digits)

[ -d "$MODELS" ] || { echo "SKIP: no models folder $MODELS"; exit 77; }
[ -r "$MODEL" ] || { echo "FAIL: missing $MODEL"; exit 1; }
[ -r "$TEXT" ] || { echo "FAIL: missing $TEXT"; exit 1; }
[ -r "$REF" ] || { echo "FAIL: missing $REF"; exit 1; }
[ -x "$ANCORA" ] || { echo "FAIL: no ancora binary at $ANCORA"; exit 1; }

py=
for cand in "${ANC_REF_PYTHON:-}" "${REF_PYTHON:-}" python3 /tmp/pyref/bin/python \
            "$SRC/.venv-ref/bin/python"; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import gguf, numpy' >/dev/null 2>&1; then py=$cand; break; fi
done
[ -n "$py" ] || {
  echo "SKIP: no python with gguf and numpy (tried ANC_REF_PYTHON=${ANC_REF_PYTHON:-unset}," \
       "REF_PYTHON=${REF_PYTHON:-unset}, python3, /tmp/pyref/bin/python, $SRC/.venv-ref/bin/python)"
  exit 77
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c "$BYTES" "$TEXT" >"$tmp/text.txt"
"$ANCORA" tokenize -m "$MODEL" -f "$tmp/text.txt" >"$tmp/ids.txt" ||
  { echo "FAIL: ancora tokenize failed"; exit 1; }
ntok=$(wc -w <"$tmp/ids.txt")
echo "text: first $BYTES bytes of tests/data/stories.txt = $ntok tokens; reference python: $py"

# last "PPL = x +/- y" line of a file -> "x y"
ppl_of() { awk '/^PPL = /{v=$3; e=$5} END{if (v == "") exit 1; print v, e}' "$1"; }

fails=0
for ctx in 128 256; do
  if [ "$ntok" -lt $((2 * ctx)) ]; then
    echo "FAIL: only $ntok tokens, need at least $((2 * ctx)) for ctx $ctx"; fails=$((fails + 1)); continue
  fi
  if ! "$ANCORA" ppl -m "$MODEL" -f "$tmp/text.txt" --mode chunked --ctx "$ctx" \
         --kv-type f32 -t 2 -q >"$tmp/anc.$ctx" 2>"$tmp/anc.$ctx.err"; then
    echo "FAIL: ctx $ctx: ancora ppl failed:"; cat "$tmp/anc.$ctx.err"; fails=$((fails + 1)); continue
  fi
  if ! "$py" "$REF" "$MODEL" "$tmp/ids.txt" --ctx "$ctx" >"$tmp/ref.$ctx" 2>"$tmp/ref.$ctx.err"; then
    echo "FAIL: ctx $ctx: ppl_ref.py failed:"; cat "$tmp/ref.$ctx.err"; fails=$((fails + 1)); continue
  fi
  a=$(ppl_of "$tmp/anc.$ctx") || { echo "FAIL: ctx $ctx: no PPL line from ancora"; cat "$tmp/anc.$ctx"; fails=$((fails + 1)); continue; }
  r=$(ppl_of "$tmp/ref.$ctx") || { echo "FAIL: ctx $ctx: no PPL line from ppl_ref.py"; cat "$tmp/ref.$ctx"; fails=$((fails + 1)); continue; }
  echo "ctx $ctx: ancora    PPL = ${a% *} +/- ${a#* }"
  echo "ctx $ctx: reference PPL = ${r% *} +/- ${r#* }"
  if ! awk -v a="$a" -v r="$r" -v tol="$TOL" -v tole="$TOL_ERR" -v ctx="$ctx" 'BEGIN {
         split(a, x, " "); split(r, y, " ")
         d = x[1] - y[1]; if (d < 0) d = -d
         de = x[2] - y[2]; if (de < 0) de = -de
         ok = (y[1] > 0 && d <= tol * y[1]) && (de <= tole * y[2] + 1e-5)
         printf "ctx %d: |dPPL|/PPL = %.2e (tol %g), |derr| = %.2e\n", ctx, (y[1] > 0 ? d / y[1] : 0), tol, de
         exit(ok ? 0 : 1) }'; then
    echo "FAIL: ctx $ctx: ancora and the NumPy reference DISAGREE (ancora ${a% *}, reference ${r% *})"
    fails=$((fails + 1))
  fi
done

[ "$fails" -eq 0 ] || { echo "FAIL: $fails of 2 perplexity comparisons failed"; exit 1; }
echo "PASS: chunked PPL at ctx 128 and 256 agrees with the float64 NumPy reference to $TOL"
exit 0
