#!/usr/bin/env bash
# test_families.sh — every architecture family Ancora reads (llama, llama with
# tied embeddings and rope_freqs, qwen2, qwen3, phi3 with and without
# LongRoPE, gemma2, gemma3) against the independent float64 NumPy reference
# (tests/reference/model_ref.py), on tiny random-weight files written by the
# PyPI gguf package (tests/reference/write_family.py), and the refusals of
# broken files of each family.
#
# For each family: a 40-token prompt (longer than the gemma files' sliding
# window of 8, so the local layers' window matters), then 24 greedy tokens.
# Ancora must produce the same tokens and, after the prompt, logits within
# TOL of the reference's: max|anc - ref| / max|ref| (f32 weights, f32 KV
# cache: only float32 round-off separates the two; measured ~1e-6).
# The same files run again with --window 16 --sinks 2 (global layers
# streaming, local layers still their own window) must still run and give
# finite output: that case has no dense reference.
#
# Bad files (write_family.py --bad): a missing family tensor, a wrong shape,
# a norm stored as q8_0, head counts that do not divide / zero / huge, and
# for gemma an absurd sliding_window: each must be refused with one
# "ancora: " line naming the problem and exit status 1.
# Needs a python with numpy and gguf, else skips (77).
set -u
ANCORA=${ANCORA:-./ancora}
SRC=${ANC_SRCDIR:-.}
TOL=1e-4

. "$SRC/tests/ref_python.sh"   # sets $py, or skips
[ -x "$ANCORA" ] || { echo "FAIL: no program at $ANCORA"; exit 1; }
[ -d "${ANC_MODELS_DIR:-$SRC/../shared/models}" ] || { echo "SKIP: the shared vocabularies are absent"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

FAMILIES="llama llama-tied qwen2 qwen3 phi3 phi3-longrope gemma2 gemma3"
"$py" "$SRC/tests/reference/write_family.py" "$tmp" $FAMILIES --bad >"$tmp/write.log" 2>&1 \
  || { cat "$tmp/write.log"; echo "FAIL: write_family.py failed"; exit 1; }
ids=$(cat "$tmp/prompt_ids.txt")
N=24

for f in $FAMILIES; do
  m=$tmp/$f.gguf
  extra=()
  # LongRoPE: Ancora picks the long divisors when the session's reach (its
  # window, 128 here: the file's context) exceeds the original context (32)
  case $f in phi3-longrope) extra=(--rope-ctx 128) ;; esac
  if ! "$py" "$SRC/tests/reference/model_ref.py" "$m" --prompt-ids "$ids" --greedy $N \
       --out-tokens "$tmp/$f.ref.tok" --out-logits "$tmp/$f.ref.logits" --logit-steps 1 \
       "${extra[@]}" >"$tmp/$f.ref.log" 2>&1; then
    fail "$f: the reference failed: $(tail -n 3 "$tmp/$f.ref.log")"
    continue
  fi
  if ! "$ANCORA" run -m "$m" --prompt-ids "$ids" -n $N --temp 0 --kv-type f32 --backend cpu \
       --ids-out "$tmp/$f.anc.ids" --logits-out "$tmp/$f.anc.logits" >/dev/null 2>"$tmp/$f.err"; then
    fail "$f: ancora run failed: $(head -c 300 "$tmp/$f.err")"
    continue
  fi
  want=$(cat "$tmp/$f.ref.tok")
  got=$(sed -n 2p "$tmp/$f.anc.ids")
  # the reference stops after an end-of-generation token too
  if [ "$got" != "$want" ]; then
    fail "$f: greedy tokens differ
  reference: $want
  ancora:    $got"
  fi
  "$py" - "$tmp/$f.anc.logits" "$tmp/$f.ref.logits" "$f" "$TOL" <<'EOF' || fails=$((fails + 1))
import sys
import numpy as np
anc = np.loadtxt(sys.argv[1])
ref = np.loadtxt(sys.argv[2], ndmin=2)[0]
name, tol = sys.argv[3], float(sys.argv[4])
if anc.shape != ref.shape or not np.all(np.isfinite(anc)):
    print(f"FAIL: {name}: logits shape {anc.shape} (want {ref.shape}), finite {np.all(np.isfinite(anc))}")
    sys.exit(1)
rel = float(np.abs(anc - ref).max() / np.abs(ref).max())
ok = rel <= tol and anc.argmax() == ref.argmax()
print(f"{name:14s} logits after the prompt: max rel diff {rel:.2e} (tol {tol:g}), "
      f"argmax {anc.argmax()}/{ref.argmax()}  {'ok' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
EOF
  # streaming global layers beside the local window: runs, finite
  if ! "$ANCORA" run -m "$m" --prompt-ids "$ids" -n 8 --temp 0 --window 16 --sinks 2 --backend cpu \
       --logits-out "$tmp/$f.win.logits" >/dev/null 2>"$tmp/$f.err" \
     || ! "$py" -c 'import sys, numpy as np; a = np.loadtxt(sys.argv[1]); sys.exit(0 if np.all(np.isfinite(a)) else 1)' "$tmp/$f.win.logits"; then
    fail "$f: --window 16 --sinks 2: $(head -c 300 "$tmp/$f.err")"
  fi
done

n_bad=0
for m in "$tmp"/bad/*.gguf; do
  [ -f "$m" ] || continue
  n_bad=$((n_bad + 1))
  name=$(basename "$m" .gguf)
  "$ANCORA" run -m "$m" -n 1 --temp 0 --prompt-ids 1 >/dev/null 2>"$tmp/err"
  rc=$?
  msg=$(head -n 1 "$tmp/err")
  lines=$(wc -l <"$tmp/err")
  if [ "$rc" -eq 1 ] && [[ "$msg" == "ancora: "* ]] && [ "$lines" -eq 1 ]; then
    echo "refused $name: ${msg#ancora: }"
  else
    fail "$name: want one 'ancora: ' line and exit 1, got exit $rc, $lines lines: $msg"
  fi
done
[ "$n_bad" -gt 0 ] || fail "write_family.py --bad wrote no bad files"

# an unknown family: refused with the list of the supported ones
if "$py" "$SRC/tests/reference/write_family.py" "$tmp/unknown" llama \
     --set general.architecture=mamba >"$tmp/write2.log" 2>&1; then
  "$ANCORA" run -m "$tmp/unknown/llama.gguf" -n 1 --prompt-ids 1 >/dev/null 2>"$tmp/err"
  rc=$?
  msg=$(head -n 1 "$tmp/err")
  if [ "$rc" -eq 1 ] && [[ "$msg" == *'architecture "mamba" is not supported (supported: llama, qwen2, qwen3, phi3, gemma2, gemma3)'* ]]; then
    echo "refused unknown family: ${msg#ancora: }"
  else
    fail "unknown family: want the supported list and exit 1, got exit $rc: $msg"
  fi
else
  fail "write_family.py could not write the unknown-family file: $(tail -n 2 "$tmp/write2.log")"
fi

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all families agree with the reference; $n_bad bad files refused"
