#!/usr/bin/env bash
# test_foreign_gguf.sh — files written by a writer that is not ours load and
# compute right. tests/reference/write_foreign.py writes small `llama` models
# with the PyPI gguf package's GGUFWriter, one per weight type (F32 F16 BF16
# Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K; every matrix, token_embd and output
# included, in that type), and the logits of the independent float64 reference
# (tests/reference/llama_ref.py) on the weights gguf.quants.dequantize gives
# for the bytes in each file. For each type Ancora must tokenize the prompt to
# the ids the vocabulary was built for, run it, and give logits that agree:
#   max|anc - ref| / max|ref| <= TOL (below), correlation > 0.999, same argmax
#   (each model is drawn so that its reference top-2 gap is >= 0.3).
# The types the package writes but Ancora does not compute with (TQ1_0,
# TQ2_0, MXFP4) must be refused with a message and exit status 1.
# Needs a python with numpy and gguf, else skips (77). Env: $ANCORA (the
# program), $ANC_SRCDIR (repository root), $ANC_REF_PYTHON / $REF_PYTHON.
#
# Tolerances. F32/F16/BF16 weights are exact floats and the activations stay
# float: only float32 round-off separates Ancora from the float64 reference
# (measured <= 1.4e-6 relative over 20 seeds) -> 1e-5. For quantised weights
# Ancora, like llama.cpp, rounds each matmul's input to 8 bits (Q8_0 blocks
# of 32 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K blocks of 256 for the
# K-quants), which moves the logits by 1.5-3% of their range here (measured
# max 0.034, Q6_K 0.052, over 20 seeds; 0.015-0.027 for the committed seed)
# -> 0.08. The "q8emu" column compares with a second reference that rounds
# the activations that way: ~1e-7 shows the whole deviation is that rounding
# (a float32-vs-float64 tie flipping one rounding can raise it to ~1e-2: the
# change cascades through later roundings; informational, not checked).
set -u
ANCORA=${ANCORA:-./ancora}
SRC=${ANC_SRCDIR:-.}

py=
for cand in "${ANC_REF_PYTHON:-}" "${REF_PYTHON:-}" python3 /tmp/pyref/bin/python \
            "$SRC/.venv-ref/bin/python"; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import gguf, numpy' >/dev/null 2>&1; then py=$cand; break; fi
done
[ -n "$py" ] || { echo "SKIP: no python with numpy and gguf (tried ANC_REF_PYTHON, REF_PYTHON, python3, /tmp/pyref/bin/python, $SRC/.venv-ref/bin/python)"; exit 77; }
[ -x "$ANCORA" ] || { echo "FAIL: no program at $ANCORA"; exit 1; }

TYPES="F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K"
REFUSED="TQ1_0 TQ2_0 MXFP4"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$py" "$SRC/tests/reference/write_foreign.py" "$tmp" $TYPES $REFUSED \
  || { echo "FAIL: write_foreign.py failed ($py)"; exit 1; }
prompt=$(cat "$tmp/prompt.txt")
want_ids=$(cat "$tmp/prompt_ids.txt")

ran=
for t in $TYPES; do
  m=$tmp/$t.gguf
  if ! got=$("$ANCORA" tokenize -m "$m" -p "$prompt" 2>"$tmp/err"); then
    fail "$t: tokenize failed: $(head -c 300 "$tmp/err")"
    continue
  fi
  [ "$got" = "$want_ids" ] || fail "$t: tokenize '$prompt' gave '$got', want '$want_ids'"
  if "$ANCORA" run -m "$m" -n 0 --temp 0 --kv-type f32 --backend cpu -p "$prompt" \
       --logits-out "$tmp/$t.anc" >"$tmp/out" 2>"$tmp/err" && [ -s "$tmp/$t.anc" ]; then
    ran="$ran $t"
  else
    fail "$t: ancora run failed (exit $?): $(head -c 300 "$tmp/err")"
  fi
done

for t in $REFUSED; do
  "$ANCORA" run -m "$tmp/$t.gguf" -n 0 --temp 0 -p "$prompt" --logits-out "$tmp/$t.anc" \
    >"$tmp/out" 2>"$tmp/err"
  rc=$?
  msg=$(head -n 1 "$tmp/err")
  if [ "$rc" -eq 1 ] && grep -q "^ancora: " "$tmp/err" && [ ! -s "$tmp/$t.anc" ]; then
    echo "refused $t as expected: $msg"
  else
    fail "$t: want a clean refusal (exit 1, 'ancora: ' message), got exit $rc: $msg"
  fi
done

if [ -n "$ran" ]; then
  "$py" - "$tmp" $ran <<'EOF' || fails=$((fails + 1))
import os, sys
import numpy as np
d, types = sys.argv[1], sys.argv[2:]
TOL = {"F32": 1e-5, "F16": 1e-5, "BF16": 1e-5}   # others: 0.08
MIN_CORR = 0.999
print("%-5s %12s %12s %8s %12s %9s %14s %9s  %s" % (
    "type", "max abs diff", "max rel diff", "tol", "1-corr", "argmax", "ref top2 gap", "q8emu", "ok"))
bad = 0
for t in types:
    ref = np.loadtxt(os.path.join(d, t + ".logits"))
    anc = np.loadtxt(os.path.join(d, t + ".anc"))
    if anc.shape != ref.shape or not np.all(np.isfinite(anc)):
        print("%-5s logits: shape %s (want %s), finite: %s  FAIL" % (
            t, anc.shape, ref.shape, bool(np.all(np.isfinite(anc)))))
        bad += 1
        continue
    tol = TOL.get(t, 0.08)
    absd = float(np.abs(anc - ref).max())
    reld = absd / float(np.abs(ref).max())
    corr = float(np.corrcoef(anc, ref)[0, 1])
    top2 = np.sort(ref)[-2:]
    q8 = os.path.join(d, t + ".q8logits")
    if os.path.exists(q8):
        e = np.loadtxt(q8)
        emu = "%9.2g" % (np.abs(anc - e).max() / np.abs(e).max())
    else:
        emu = "%9s" % "-"
    ok = reld <= tol and corr > MIN_CORR and anc.argmax() == ref.argmax()
    bad += not ok
    print("%-5s %12.3g %12.3g %8.2g %12.2g %4d/%-4d %14.3g %s  %s" % (
        t, absd, reld, tol, 1 - corr, anc.argmax(), ref.argmax(), top2[1] - top2[0], emu,
        "ok" if ok else "FAIL"))
print("max rel diff = max|anc - ref| / max|ref|; argmax = Ancora's / the reference's top token")
sys.exit(1 if bad else 0)
EOF
fi

if [ "$fails" -ne 0 ]; then
  echo "FAIL: $fails problem(s) with files written by the gguf package ($py)"
  exit 1
fi
echo "PASS: files of the gguf package load in Ancora and agree with the reference"
exit 0
