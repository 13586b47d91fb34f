#!/usr/bin/env bash
# test_real_models.sh — the two real checkpoints Ancora ships with,
# SmolLM2-135M-Instruct.Q4_1.gguf (llama) and gemma-3-270m-q4_k_m.gguf
# (gemma3), against the independent float64 NumPy reference
# tests/reference/model_ref.py.  Files from $ANC_REAL_MODELS (make check sets
# it to ${XDG_DATA_HOME:-~/.local/share}/ancora/models); skips (77) when a
# file or a python with numpy and gguf is absent.
#
# Prompts
#   SmolLM2: the ChatML rendering of its own template with the default system
#     prompt and the user message "Hi! Who are you?" (36 ids).  `ancora
#     tokenize` does not parse special tokens in text (parse_special=false,
#     as llama-perplexity), so the ids are built from the template: <|im_start|>
#     = 1, <|im_end|> = 2, the text between them tokenized; the result must
#     equal SMOL_IDS below, what llama.cpp's llama-tokenize gives for the
#     rendered text (special tokens parsed).
#   Gemma 3: the first three stories of tests/data/stories.txt (2810 bytes,
#     written for the project) = 711 ids with BOS (the same as llama-tokenize),
#     longer than the 512-token sliding window of Gemma's local layers (five
#     of every six), so the window changes the result (below).
#
# 1. Exact path.  Each file is dequantised to F32 (dequant_gguf.py, in a
#    temporary folder).  The reference reads the original quantised file: it
#    dequantises with the same gguf.quants.dequantize to float32, so its
#    weights are those of the F32 file, bit for bit (this also checks that
#    the F32 copy is faithful).  Ancora on the F32 file with an f32 KV cache
#    must give the same 24 greedy tokens (both models) and logits after the
#    prompt with max|anc - ref| / max|ref| <= TOL_EXACT = 1e-5 and the same
#    argmax.  Measured: SmolLM2 9.4e-7 (max abs 2.9e-5, logits up to 31),
#    Gemma 9.0e-7 (1.8e-5, logits up to 20): float32 round-off only.
#    (llama.cpp on the same F32 files, f32 KV, flash attention off: SmolLM2
#    6.6e-7, Gemma 3.4e-4 - its float16 GELU table.)
#    The window matters: the same F32 Gemma file with its
#    gemma3.attention.sliding_window patched to 1024 (> the prompt: no
#    window) run by Ancora must differ from the reference by more than 0.1;
#    measured 0.86, argmax 495 instead of 818.  The reference itself with the
#    window disabled (n_swa = 1e9) gives the same (rel 0.858 from the windowed
#    reference, correlation 0.80, argmax 495; Ancora's no-window logits agree
#    with that reference to 1.0e-6); set ANC_REAL_NOWINDOW_REF=1 to recompute
#    it here (+~75 s).
#
# 2. As shipped (quantised files, default f16 KV cache), same prompts, logits
#    after the prompt against the same reference.  Ancora, like llama.cpp,
#    rounds each matmul's input to 8 bits, so the logits move by a few % of
#    their range:  max rel diff <= TOL_QUANT = 0.10, correlation >= 0.995,
#    and Ancora's top token must be within 1.0 of the reference's top logit
#    (i.e. the same argmax whenever the reference's top-2 gap is >= 1.0;
#    SmolLM2's gap is 2.15, Gemma's 0.23 here).  Measured:
#                     rel diff   1-corr   |dev| at the ref's top 5 tokens
#      SmolLM2 Q4_1    0.026    8.3e-4    <= 0.35
#      Gemma Q4_K_M    0.064    9.6e-4    <= 0.65
#    (f32 KV: 0.025 / 0.041).  llama.cpp on the same quantised files (f32 KV)
#    deviates as much: 0.016 / 0.054, 1-corr 6.8e-4 / 9.4e-4.  A missing
#    sliding window (above) gives 0.86 / correlation 0.80.  The quantised
#    greedy tokens are printed (how many agree with the reference), not
#    checked: the 8-bit rounding may flip a near-tie (measured: SmolLM2 24/24
#    with the f16 cache, 21/24 with f32; Gemma 10/24).
#
# 3. Streaming sanity (Gemma, quantised): --window 128 --sinks 4 (global
#    layers stream, local layers keep their 512) must run and give finite
#    logits (no dense reference for that: measured rel 0.22 from the full
#    reference); --window 1024 on the 711-token prompt evicts nothing, so its
#    logits must equal the default run's (measured identical bytes; checked
#    to 1e-6 of the range).
#
# Time: 3.7 minutes measured on this 2-core machine with a load average of
# 4-5 from other jobs (6.4 minutes with a perplexity run beside it).  The
# reference's Gemma prefill (711 tokens in float64 through the system's
# reference BLAS, ~60-100 s; each generated token ~0.7 s, so all 24 are
# generated) runs in the background, single-threaded, while the rest
# (dequantising, the SmolLM2 reference, Ancora with -t 1 (ANC_THREADS))
# uses the other core.  Env: $ANCORA, $ANC_SRCDIR, $ANC_REAL_MODELS,
# $ANC_REF_PYTHON / $REF_PYTHON.
set -u
ANCORA=${ANCORA:-./ancora}
SRC=${ANC_SRCDIR:-.}
MODELS=${ANC_REAL_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/ancora/models}
T=${ANC_THREADS:-1}
TOL_EXACT=1e-5
TOL_QUANT=0.10
N=24

SMOL=$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
GEMMA=$MODELS/gemma-3-270m-q4_k_m.gguf
SMOL_IDS="1 9690 198 2683 359 253 5356 5646 11173 3365 3511 308 34519 28 7018 411 407 19712 8182 2 198 1 4093 198 26843 17 6244 359 346 47 2 198 1 520 9531 198"
GEMMA_N_IDS=711

. "$SRC/tests/ref_python.sh"   # sets $py, or skips
for f in "$SMOL" "$GEMMA"; do
  [ -f "$f" ] || { echo "SKIP: $f is absent (ANC_REAL_MODELS=$MODELS)"; exit 77; }
done
[ -x "$ANCORA" ] || { echo "FAIL: no program at $ANCORA"; exit 1; }

tmp=$(mktemp -d)
refpid=
cleanup() { [ -n "$refpid" ] && kill "$refpid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
start=$SECONDS
REF=$SRC/tests/reference

# --- prompts ---------------------------------------------------------------
head -n 5 "$SRC/tests/data/stories.txt" >"$tmp/gemma_prompt.txt"   # three stories
gemma_ids=$("$ANCORA" tokenize -m "$GEMMA" -f "$tmp/gemma_prompt.txt") \
  || { echo "FAIL: ancora tokenize failed on $GEMMA"; exit 1; }
n=$(echo "$gemma_ids" | wc -w)
[ "$n" -eq "$GEMMA_N_IDS" ] || fail "gemma prompt: $n ids, want $GEMMA_N_IDS"

# the Gemma reference first, in the background: it takes the longest
"$py" "$REF/model_ref.py" "$GEMMA" --prompt-ids "$gemma_ids" --greedy $N --logit-steps 1 \
  --out-tokens "$tmp/gemma.ref.tok" --out-logits "$tmp/gemma.ref.logits" --no-self-check \
  >"$tmp/gemma.ref.log" 2>&1 &
refpid=$!

tok() { "$ANCORA" tokenize -m "$SMOL" -p "$1"; }
smol_ids="1 $(tok $'system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face') 2 $(tok $'\n')"
smol_ids="$smol_ids 1 $(tok $'user\nHi! Who are you?') 2 $(tok $'\n') 1 $(tok $'assistant\n')"
[ "$smol_ids" = "$SMOL_IDS" ] || fail "SmolLM2 ChatML prompt ids:
  got  $smol_ids
  want $SMOL_IDS"
smol_ids=$SMOL_IDS

# --- SmolLM2: F32 copy, reference, Ancora -----------------------------------
"$py" "$REF/dequant_gguf.py" "$SMOL" "$tmp/smol.f32.gguf" >"$tmp/dq.log" 2>&1 \
  || { cat "$tmp/dq.log"; echo "FAIL: dequant_gguf.py $SMOL"; exit 1; }
"$py" "$REF/model_ref.py" "$SMOL" --prompt-ids "$smol_ids" --greedy $N --logit-steps 1 \
  --out-tokens "$tmp/smol.ref.tok" --out-logits "$tmp/smol.ref.logits" >"$tmp/smol.ref.log" 2>&1 \
  || fail "SmolLM2: the reference failed: $(tail -n 3 "$tmp/smol.ref.log")"

arun() {  # name model prompt-ids n [options...]: ancora run, logits and ids to $tmp/name.*
  local name=$1 m=$2 ids=$3 n=$4
  shift 4
  "$ANCORA" run -m "$m" --prompt-ids "$ids" -n "$n" --temp 0 --backend cpu -t "$T" "$@" \
    --ids-out "$tmp/$name.ids" --logits-out "$tmp/$name.logits" >/dev/null 2>"$tmp/$name.err" \
    || fail "$name: ancora run $* failed: $(head -c 300 "$tmp/$name.err")"
}
arun smol.f32 "$tmp/smol.f32.gguf" "$smol_ids" $N --kv-type f32
arun smol.q "$SMOL" "$smol_ids" $N

# --- Gemma: F32 copy, a copy without window, Ancora --------------------------
"$py" "$REF/dequant_gguf.py" "$GEMMA" "$tmp/gemma.f32.gguf" >"$tmp/dq.log" 2>&1 \
  || { cat "$tmp/dq.log"; echo "FAIL: dequant_gguf.py $GEMMA"; exit 1; }
arun gemma.f32 "$tmp/gemma.f32.gguf" "$gemma_ids" $N --kv-type f32
# the same file with the local layers' window (512) patched to 1024: no window
"$py" - "$tmp/gemma.f32.gguf" <<'EOF' || fail "could not patch gemma3.attention.sliding_window"
import sys
from gguf import GGUFReader
r = GGUFReader(sys.argv[1], "r+")
f = r.fields["gemma3.attention.sliding_window"]
assert int(f.parts[f.data[0]][0]) == 512, f.parts[f.data[0]]
f.parts[f.data[0]][0] = 1024
del r
EOF
arun gemma.nowindow "$tmp/gemma.f32.gguf" "$gemma_ids" 0 --kv-type f32
rm -f "$tmp/gemma.f32.gguf" "$tmp/smol.f32.gguf"
arun gemma.q "$GEMMA" "$gemma_ids" $N
arun gemma.q.w1024 "$GEMMA" "$gemma_ids" 0 --window 1024
arun gemma.q.w128 "$GEMMA" "$gemma_ids" 8 --window 128 --sinks 4
echo "ancora runs done after $((SECONDS - start)) s; waiting for the Gemma reference"

wait "$refpid" || fail "Gemma: the reference failed: $(tail -n 3 "$tmp/gemma.ref.log")"
refpid=
if [ "${ANC_REAL_NOWINDOW_REF:-0}" = 1 ]; then
  "$py" - "$GEMMA" "$gemma_ids" "$tmp/gemma.ref.nowindow.logits" "$REF" <<'EOF' \
    || fail "the no-window reference failed"
import sys
import numpy as np
sys.path.insert(0, sys.argv[4])
import model_ref as R
m = R.Model(sys.argv[1])
m.n_swa = 10**9
ids = [int(t) for t in sys.argv[2].split()]
row = R.Session(m, len(ids) + 24).feed(ids, rows=[-1])[0]
np.savetxt(sys.argv[3], row[None], fmt="%.9g")
EOF
fi
echo "reference done after $((SECONDS - start)) s"

# --- greedy tokens of the exact path ---------------------------------------
for m in smol gemma; do
  want=$(cat "$tmp/$m.ref.tok" 2>/dev/null)
  got=$(sed -n 2p "$tmp/$m.f32.ids" 2>/dev/null)
  if [ -n "$want" ] && [ "$got" = "$want" ]; then
    echo "$m F32: greedy $(echo "$got" | wc -w) tokens = the reference's"
  else
    fail "$m F32: greedy tokens differ
  reference: $want
  ancora:    $got"
  fi
done

# --- logits ----------------------------------------------------------------
"$py" - "$tmp" "$TOL_EXACT" "$TOL_QUANT" <<'EOF' || fails=$((fails + 1))
import os, sys
import numpy as np
d, tol_exact, tol_quant = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
MIN_CORR, TOP_SLACK = 0.995, 1.0

def load(name):
    p = os.path.join(d, name)
    return np.loadtxt(p, ndmin=2)[0] if os.path.exists(p) else None

def toks(name, line):
    try:
        with open(os.path.join(d, name)) as f:
            return f.read().splitlines()[line].split()
    except (OSError, IndexError):
        return []

bad = 0
print("%-16s %-7s %10s %10s %9s %9s %12s %8s  %s" % (
    "run", "vs", "max abs", "max rel", "tol", "1-corr", "argmax", "top2 gap", "ok"))
def check(name, refname, kind):
    global bad
    anc, ref = load(name + ".logits"), load(refname)
    if ref is None:
        print("%-16s: no reference logits %s  FAIL" % (name, refname)); bad += 1; return
    if anc is None or anc.shape != ref.shape or not np.all(np.isfinite(anc)):
        print("%-16s: logits missing, of the wrong shape or not finite  FAIL" % name); bad += 1; return
    absd = float(np.abs(anc - ref).max())
    rel = absd / float(np.abs(ref).max())
    corr = float(np.corrcoef(anc, ref)[0, 1])
    top2 = np.sort(ref)[-2:]
    a, r = int(anc.argmax()), int(ref.argmax())
    if kind == "exact":
        tol, ok = tol_exact, rel <= tol_exact and a == r
    elif kind == "quant":
        tol = tol_quant
        ok = rel <= tol_quant and corr >= MIN_CORR and ref[a] >= ref.max() - TOP_SLACK
    elif kind == "same":
        tol, ok = 1e-6, rel <= 1e-6
    else:  # "differs": the comparison must be able to see it
        tol, ok = 0.1, rel > 0.1
    bad += not ok
    print("%-16s %-7s %10.3g %10.3g %9s %9.2g %5d/%-6d %8.3g  %s" % (
        name, refname.split(".")[-2] if kind != "same" else "default", absd, rel,
        (">" if kind == "differs" else "<=") + "%g" % tol, 1 - corr, a, r, top2[1] - top2[0],
        "ok" if ok else "FAIL"))

check("smol.f32", "smol.ref.logits", "exact")
check("gemma.f32", "gemma.ref.logits", "exact")
check("gemma.nowindow", "gemma.ref.logits", "differs")
if os.path.exists(os.path.join(d, "gemma.ref.nowindow.logits")):
    check("gemma.nowindow", "gemma.ref.nowindow.logits", "exact")
    ref, nw = load("gemma.ref.logits"), load("gemma.ref.nowindow.logits")
    print("the reference with vs without the window: max rel %.3g, corr %.3f, argmax %d/%d" % (
        np.abs(nw - ref).max() / np.abs(ref).max(), np.corrcoef(nw, ref)[0, 1], ref.argmax(), nw.argmax()))
check("smol.q", "smol.ref.logits", "quant")
check("gemma.q", "gemma.ref.logits", "quant")
check("gemma.q.w1024", "gemma.q.logits", "same")
w = load("gemma.q.w128.logits")
ok = w is not None and w.size > 1000 and bool(np.all(np.isfinite(w)))
bad += not ok
print("gemma.q.w128     --window 128 --sinks 4: %s logits, %d tokens generated  %s" % (
    "finite" if ok else "missing or non-finite", len(toks("gemma.q.w128.ids", 1)), "ok" if ok else "FAIL"))
for m in ("smol", "gemma"):
    ref, got = toks(m + ".ref.tok", 0), toks(m + ".q.ids", 1)
    k = next((i for i, (x, y) in enumerate(zip(ref, got)) if x != y), min(len(ref), len(got)))
    print("%s quantised greedy: the first %d of %d tokens equal the reference's (not checked)" % (
        m, k, len(ref)))
print("max rel = max|anc - ref| / max|ref|; argmax = Ancora's/the reference's; top2 gap: the reference's")
sys.exit(1 if bad else 0)
EOF

echo "took $((SECONDS - start)) s"
[ "$fails" -eq 0 ] || { echo "FAIL: $fails problem(s) with the real models"; exit 1; }
echo "PASS: SmolLM2 and Gemma 3 agree with the reference (exact path, as shipped, streaming sanity)"
exit 0
