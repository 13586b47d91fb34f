#!/usr/bin/env bash
# test_lora.sh — LoRA adapters (`--lora FILE --lora-scale S` on run, ppl and
# bench) against the independent float64 NumPy reference: a tiny random
# llama file (tests/reference/write_family.py) and random adapters in
# llama.cpp's LoRA GGUF layout written by the PyPI gguf package
# (tests/reference/write_lora.py); the reference merges W + s·(α/r)·B·A
# into its weights (model_ref.py --lora), Ancora applies B(A x) at run time.
# Greedy tokens must agree and the logits after the prompt be within TOL of
# the reference's, while differing clearly from the base model's; scale 0
# gives the base model. Bad adapters (another architecture, not an adapter,
# wrong shape, mismatched rank, half a pair, a weight the model lacks, a
# layer past the last, truncated, missing) get one "ancora: " line naming
# the problem and exit status 1. The chat's REPL takes the adapter too and
# the history records it with each reply.
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
ok() { echo "ok   $*"; }

"$py" "$SRC/tests/reference/write_family.py" "$tmp" llama >"$tmp/write.log" 2>&1 \
  || { cat "$tmp/write.log"; echo "FAIL: write_family.py failed"; exit 1; }
base=$tmp/llama.gguf
ids=$(cat "$tmp/prompt_ids.txt")
N=16

write_lora() { # OUT ARGS...
  local out=$1; shift
  "$py" "$SRC/tests/reference/write_lora.py" "$base" "$out" "$@" >"$tmp/wl.log" 2>&1 \
    || { cat "$tmp/wl.log"; fail "write_lora.py $*"; return 1; }
}

# anc NAME ARGS...: ancora run greedy from the prompt, ids and logits to files
anc() {
  local name=$1; shift
  "$ANCORA" run -m "$base" --prompt-ids "$ids" -n $N --temp 0 --kv-type f32 --backend cpu \
    --ids-out "$tmp/$name.ids" --logits-out "$tmp/$name.logits" "$@" >/dev/null 2>"$tmp/$name.err"
}

# logit_diff A B: max|a - b| / max|b| over the first row of two logit files
logit_diff() {
  "$py" - "$1" "$2" <<'EOF'
import sys
import numpy as np
a = np.loadtxt(sys.argv[1], ndmin=2)[0]
b = np.loadtxt(sys.argv[2], ndmin=2)[0]
print("inf" if a.shape != b.shape or not np.all(np.isfinite(a)) else np.abs(a - b).max() / np.abs(b).max())
EOF
}

anc base || { fail "the base model does not run: $(cat "$tmp/base.err")"; exit 1; }

# compare NAME ADAPTER SCALE: Ancora with the adapter against the reference
compare() {
  local name=$1 lora=$2 scale=$3
  if ! "$py" "$SRC/tests/reference/model_ref.py" "$base" --lora "$lora" --lora-scale "$scale" \
       --prompt-ids "$ids" --greedy $N --out-tokens "$tmp/$name.ref.tok" \
       --out-logits "$tmp/$name.ref.logits" --logit-steps 1 >"$tmp/$name.ref.log" 2>&1; then
    fail "$name: the reference failed: $(tail -n 2 "$tmp/$name.ref.log")"
    return
  fi
  if ! anc "$name" --lora "$lora" --lora-scale "$scale"; then
    fail "$name: ancora run failed: $(cat "$tmp/$name.err")"
    return
  fi
  local want got d dbase
  want=$(cat "$tmp/$name.ref.tok")
  got=$(sed -n 2p "$tmp/$name.ids")
  [ "$got" = "$want" ] || fail "$name: greedy tokens differ
  reference: $want
  ancora:    $got"
  d=$(logit_diff "$tmp/$name.logits" "$tmp/$name.ref.logits")
  dbase=$(logit_diff "$tmp/base.logits" "$tmp/$name.ref.logits")
  if "$py" -c "import sys; sys.exit(0 if float('$d') <= $TOL and float('$dbase') > 100 * $TOL else 1)"; then
    ok "$name: tokens equal, logits within $d of the reference (the base model is $dbase away)"
  else
    fail "$name: logits differ by $d from the reference (tolerance $TOL), the base by $dbase"
  fi
}

write_lora "$tmp/all.gguf" --targets q,k,v,o,gate,up,down --rank 4 --alpha 8 &&
  { compare all-scale1 "$tmp/all.gguf" 1; compare all-scale0.5 "$tmp/all.gguf" 0.5; }
write_lora "$tmp/qv16.gguf" --targets q,v --layers 0 --rank 3 --no-alpha --type f16 --seed 5 --std 1.5 &&
  compare qv-f16-noalpha "$tmp/qv16.gguf" 1

# scale 0 is the base model, token for token and logit for logit
if anc zero --lora "$tmp/all.gguf" --lora-scale 0 && cmp -s "$tmp/zero.logits" "$tmp/base.logits" &&
   cmp -s "$tmp/zero.ids" "$tmp/base.ids"; then
  ok "--lora-scale 0 gives the base model's logits exactly"
else
  fail "--lora-scale 0 differs from the base model"
fi

# ppl and bench take the adapter too
text=$tmp/text.txt
printf 'Once upon a time there was a little dog who liked to run in the park every day. ' >"$text"
for _ in 1 2 3; do cat "$text" "$text" >"$tmp/t2" && mv "$tmp/t2" "$text"; done
p0=$("$ANCORA" ppl -m "$base" -f "$text" --ctx 32 2>/dev/null | sed -n 's/^PPL = \([0-9.]*\).*/\1/p')
p1=$("$ANCORA" ppl -m "$base" -f "$text" --ctx 32 --lora "$tmp/all.gguf" 2>/dev/null |
     sed -n 's/^PPL = \([0-9.]*\).*/\1/p')
if [ -n "$p0" ] && [ -n "$p1" ] && [ "$p0" != "$p1" ]; then
  ok "ppl --lora: $p1 (base $p0)"
else
  fail "ppl --lora gave '$p1', the base '$p0'"
fi
if "$ANCORA" bench -m "$base" -p 16 -n 8 -r 1 --no-bandwidth --lora "$tmp/all.gguf" >/dev/null 2>"$tmp/bench.err"; then
  ok "bench --lora runs"
else
  fail "bench --lora: $(cat "$tmp/bench.err")"
fi

# lora merge: a plain model file with the adapter folded in (adapted
# weights as F16). Read by the reference (an independent reader) it gives
# the reference's merged-in-float64 tokens; Ancora on it gives the same
# tokens as --lora, logits within F16 rounding; perplexity within 0.5 %.
merged=$tmp/merged.gguf
if "$ANCORA" lora merge -m "$base" --lora "$tmp/all.gguf" --lora-scale 0.5 -o "$merged" 2>"$tmp/m.err"; then
  "$ANCORA" run -m "$merged" --prompt-ids "$ids" -n $N --temp 0 --kv-type f32 --backend cpu \
    --ids-out "$tmp/merged.ids" --logits-out "$tmp/merged.logits" >/dev/null 2>&1
  d=$(logit_diff "$tmp/merged.logits" "$tmp/all-scale0.5.logits")
  if [ "$(sed -n 2p "$tmp/merged.ids")" = "$(sed -n 2p "$tmp/all-scale0.5.ids")" ] &&
     "$py" -c "import sys; sys.exit(0 if float('$d') <= 2e-3 else 1)"; then
    ok "lora merge: the merged file gives --lora's tokens, logits within $d"
  else
    fail "lora merge: tokens or logits (off by $d) differ from --lora"
  fi
  if "$py" "$SRC/tests/reference/model_ref.py" "$merged" --prompt-ids "$ids" --greedy $N \
       --out-tokens "$tmp/mref.tok" --out-logits "$tmp/mref.logits" --logit-steps 1 >/dev/null 2>&1 &&
     [ "$(cat "$tmp/mref.tok")" = "$(cat "$tmp/all-scale0.5.ref.tok")" ]; then
    ok "lora merge: the reference reads the merged file and gives its own merged tokens"
  else
    fail "lora merge: the reference on the merged file disagrees"
  fi
  pm=$("$ANCORA" ppl -m "$merged" -f "$text" --ctx 32 2>/dev/null | sed -n 's/^PPL = \([0-9.]*\).*/\1/p')
  pl=$("$ANCORA" ppl -m "$base" -f "$text" --ctx 32 --lora "$tmp/all.gguf" --lora-scale 0.5 2>/dev/null |
       sed -n 's/^PPL = \([0-9.]*\).*/\1/p')
  if [ -n "$pm" ] && [ -n "$pl" ] && "$py" -c "import sys; sys.exit(0 if abs($pm / $pl - 1) <= 0.005 else 1)"; then
    ok "lora merge: perplexity $pm, with --lora $pl"
  else
    fail "lora merge: perplexity '$pm' against --lora '$pl'"
  fi
else
  fail "lora merge failed: $(cat "$tmp/m.err")"
fi

# refusals: one "ancora: " line naming the problem, exit 1
refuse() { # NAME PATTERN ADAPTER
  local name=$1 pat=$2 lora=$3 rc
  "$ANCORA" run -m "$base" -p hi -n 2 --lora "$lora" >"$tmp/r.out" 2>"$tmp/r.err"
  rc=$?
  if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/r.err")" -eq 1 ] && grep -q "^ancora: .*$pat" "$tmp/r.err" &&
     [ ! -s "$tmp/r.out" ]; then
    ok "refused: $name ($(cat "$tmp/r.err"))"
  else
    fail "$name: status $rc, stderr: $(cat "$tmp/r.err")"
  fi
}
for kind in arch type shape rank only-a name layer; do
  write_lora "$tmp/bad-$kind.gguf" --targets q,k --break "$kind" || continue
done
refuse "another architecture" 'architecture "gpt2"' "$tmp/bad-arch.gguf"
refuse "not an adapter" "not a LoRA adapter" "$tmp/bad-type.gguf"
refuse "wrong shape" "blk.0.attn_q.weight.lora_a has shape" "$tmp/bad-shape.gguf"
refuse "mismatched rank" "rank 4, lora_b 5" "$tmp/bad-rank.gguf"
refuse "half a pair" "only its lora_a" "$tmp/bad-only-a.gguf"
refuse "a weight the model lacks" "attn_qkv.weight.lora_a is not a LoRA matrix" "$tmp/bad-name.gguf"
refuse "a layer past the last" "is not a LoRA matrix" "$tmp/bad-layer.gguf"
head -c 3000 "$tmp/all.gguf" >"$tmp/trunc.gguf"
refuse "truncated" "trunc.gguf" "$tmp/trunc.gguf"
refuse "missing" "nowhere.gguf" "$tmp/nowhere.gguf"
"$ANCORA" lora merge -m "$base" --lora "$tmp/bad-shape.gguf" -o "$tmp/bad-merged.gguf" 2>"$tmp/m.err"
rc=$?
[ $rc -eq 1 ] && [ ! -e "$tmp/bad-merged.gguf" ] && grep -q "^ancora: .*lora_a has shape" "$tmp/m.err" &&
  ok "lora merge with an adapter for another model: refused, nothing written" ||
  fail "lora merge bad adapter: status $rc, $(cat "$tmp/m.err")"
"$ANCORA" lora merge -m "$base" --lora "$tmp/all.gguf" >/dev/null 2>"$tmp/m.err"
[ $? -eq 2 ] && ok "lora merge without -o: usage error" || fail "lora merge without -o: $(cat "$tmp/m.err")"

# usage errors: exit 2
"$ANCORA" run -m "$base" -p hi -n 2 --lora "$tmp/all.gguf" --lora-scale 1000 >/dev/null 2>"$tmp/u.err"
[ $? -eq 2 ] && grep -q "lora-scale" "$tmp/u.err" && ok "--lora-scale 1000: usage error" ||
  fail "--lora-scale 1000: $(cat "$tmp/u.err")"

# the chat (here its REPL) takes the adapter and records it with each reply
printf 'hello\n' | "$ANCORA" repl -m "$base" --lora "$tmp/all.gguf" --lora-scale 0.5 --db "$tmp/h.db" \
  --seed 1 -n 4 >"$tmp/c.out" 2>"$tmp/c.err"
rc=$?
if [ $rc -eq 0 ] && "$ANCORA" history show 1 --db "$tmp/h.db" 2>&1 | grep -q "adapter all.gguf x0.5"; then
  ok "repl --lora: replies made and stored with 'adapter all.gguf x0.5'"
else
  fail "repl --lora: status $rc, $(cat "$tmp/c.err"); history: $("$ANCORA" history show 1 --db "$tmp/h.db" 2>&1 | tail -2)"
fi
printf 'hello\n' | "$ANCORA" repl -m "$base" --lora "$tmp/bad-shape.gguf" --no-history >/dev/null 2>"$tmp/c.err"
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/c.err")" -eq 1 ] && grep -q "^ancora: .*lora_a has shape" "$tmp/c.err" &&
  ok "repl --lora with an adapter for another model: refused in one line" ||
  fail "repl --lora bad adapter: status $rc, $(cat "$tmp/c.err")"

echo "$fails failure(s)"
[ $fails -eq 0 ]
