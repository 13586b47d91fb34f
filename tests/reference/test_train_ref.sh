#!/usr/bin/env bash
# test_train_ref.sh — self-test of the float64 PyTorch-autograd training
# reference (tests/reference/train_ref.py), NOT part of `make check`: the C
# training's test compares its gradients with the reference's files.
# On stories260K with a 65-id window (T = 64; ids from `ancora tokenize` when
# build/ancora exists, else fixed ids < 512) it runs the reference in each
# mode with --fd-check (its built-in self-checks: torch logits = model_ref.py's
# NumPy logits to 1e-6, S2 masks built two ways, 3 gradient entries against
# central differences to 1e-5) and checks exit 0, the written file's keys and
# tensor names/shapes, and that a rerun writes the same bytes; then a tiny
# tied-output llama (write_family.py llama-tied: no output.weight, with
# rope_freqs), bad --s2-group values and nothing to train (exit 2).
# Prints each run's wall time. Skips (77) without a python that has numpy,
# gguf and torch (Debian python3-torch), or without the shared models.
# usage: tests/reference/test_train_ref.sh   (from anywhere)
set -u
SRC=${ANC_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
ANCORA=${ANCORA:-$SRC/build/ancora}
MODELS=${ANC_MODELS_DIR:-$SRC/../shared/models}
base=$MODELS/stories260K.gguf

. "$SRC/tests/ref_python.sh"   # sets $py, or skips
[ -f "$base" ] || { echo "SKIP: no $base"; exit 77; }
ref=$SRC/tests/reference/train_ref.py

tmp=$(mktemp -d /tmp/trainref_test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The 65 ids
text="Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she saw a big red ball in the grass. She ran to get it, but a dog got there first. The dog was happy and wagged its tail."
if [ -x "$ANCORA" ] && "$ANCORA" tokenize -m "$base" -p "$text" >"$tmp/all.ids" 2>/dev/null \
   && [ "$(wc -w <"$tmp/all.ids")" -ge 65 ]; then
  tr -s ' \n' '\n' <"$tmp/all.ids" | head -n 65 | tr '\n' ' ' >"$tmp/ids.txt"
  src_ids="ancora tokenize"
else
  for i in $(seq 0 64); do echo $(( (i * 37 + 11) % 509 + 3 )); done | tr '\n' ' ' >"$tmp/ids.txt"
  src_ids="fixed"
fi
echo "ids ($src_ids): $(cat "$tmp/ids.txt")"

# run NAME EXPECTED_RC ARGS...: the reference, timed; its stderr kept
run() {
  local name=$1 want=$2; shift 2
  local t0 t1 rc
  t0=$(date +%s%N)
  "$py" "$ref" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  rc=$?
  t1=$(date +%s%N)
  [ $rc -eq 77 ] && { cat "$tmp/$name.err"; echo "SKIP: train_ref.py has no torch"; exit 77; }
  printf '%-28s rc %d  %6.2f s\n' "$name" $rc "$(awk "BEGIN { print ($t1 - $t0) / 1e9 }")"
  if [ $rc -ne "$want" ]; then
    cat "$tmp/$name.out" "$tmp/$name.err"
    fail "$name: exit $rc, expected $want"
    return 1
  fi
  grep -E "self-check|fd-check: .*rel|loss =" "$tmp/$name.out" "$tmp/$name.err" | sed "s|^$tmp/||; s/^/    /"
}

# contents NAME GRADS T MODE EXPECT: the file's keys, and its tensor names and
# shapes equal to EXPECT's listing (a python expression over base/adapter)
contents() {
  "$py" - "$@" <<'EOF' || fail "$1: contents"
import sys
from gguf import GGUFReader
name, grads, T, mode, base, adapter, want = sys.argv[1:8]
g = GGUFReader(grads)
f = lambda k: g.fields[k].contents()
assert f("train_ref.n_tokens") == int(T), f("train_ref.n_tokens")
assert f("train_ref.mode") == mode, f("train_ref.mode")
loss = float(f("train_ref.loss_f64"))
assert abs(f("train_ref.loss") - loss) <= 1e-6 * loss, (f("train_ref.loss"), loss)
nll = f("train_ref.nll")
assert len(nll) == int(T) and abs(sum(nll) / len(nll) - loss) < 1e-5 * loss
shapes = {}
for path in (base, adapter):
    if path != "-":
        shapes.update({t.name: [int(n) for n in t.shape] for t in GGUFReader(path).tensors})
names = [n for n in shapes if eval(want)]
got = {t.name: [int(n) for n in t.shape] for t in g.tensors}
assert sorted(got) == sorted(names), (sorted(set(got) ^ set(names)))
for n in names:
    assert got[n] == shapes[n], (n, got[n], shapes[n])
    assert g.tensors[[t.name for t in g.tensors].index(n)].tensor_type.name == "F32"
print(f"    {grads.split('/')[-1]}: {len(got)} gradient tensors, names and shapes as expected, loss {loss:.6f}")
EOF
}

"$py" "$SRC/tests/reference/write_lora.py" "$base" "$tmp/lora.gguf" --rank 4 --alpha 8 \
  || fail "write_lora.py"
"$py" "$SRC/tests/reference/write_lora.py" "$base" "$tmp/lora0.gguf" --rank 8 --alpha 16 --zero-b \
  || fail "write_lora.py --zero-b"
ids=$tmp/ids.txt
LORA='n.endswith(".lora_a") or n.endswith(".lora_b")'
PLUS='n == "token_embd.weight" or n.endswith("norm.weight")'

run lora-plus 0 "$base" --ids "$ids" --lora-plus --fd-check -o "$tmp/plus.gguf" &&
  contents lora-plus "$tmp/plus.gguf" 64 lora+ "$base" - "$PLUS"
run adapter 0 "$base" --ids "$ids" --adapter "$tmp/lora.gguf" --fd-check -o "$tmp/a.gguf" &&
  contents adapter "$tmp/a.gguf" 64 lora "$base" "$tmp/lora.gguf" "$LORA"
run adapter-again 0 "$base" --ids "$ids" --adapter "$tmp/lora.gguf" -o "$tmp/a2.gguf" &&
  { cmp -s "$tmp/a.gguf" "$tmp/a2.gguf" && echo "    same bytes as the first run" \
    || fail "adapter: a rerun wrote different bytes"; }
run adapter-s2-16 0 "$base" --ids "$ids" --adapter "$tmp/lora.gguf" --s2-group 16 --fd-check \
  -o "$tmp/as2.gguf" &&
  contents adapter-s2-16 "$tmp/as2.gguf" 64 lora "$base" "$tmp/lora.gguf" "$LORA"
run adapter-s2-16-lora-plus 0 "$base" --ids "$ids" --adapter "$tmp/lora.gguf" --s2-group 16 \
  --lora-plus --fd-check -o "$tmp/as2p.gguf" &&
  contents adapter-s2-16-lora-plus "$tmp/as2p.gguf" 64 lora+ "$base" "$tmp/lora.gguf" "$LORA or $PLUS"
run adapter-zero-b 0 "$base" --ids "$ids" --adapter "$tmp/lora0.gguf" --lora-scale 0.5 \
  --rope-linear 2 --fd-check -o "$tmp/a0.gguf" &&
  contents adapter-zero-b "$tmp/a0.gguf" 64 lora "$base" "$tmp/lora0.gguf" "$LORA"
run full-s2-16 0 "$base" --ids "$ids" --full --s2-group 16 --fd-check -o "$tmp/full.gguf" &&
  contents full-s2-16 "$tmp/full.gguf" 64 full "$base" - "True"

# tied output (no output.weight) + rope_freqs, every LoRA target, T = 32
if "$py" "$SRC/tests/reference/write_family.py" "$tmp" llama-tied >"$tmp/wf.log" 2>&1 &&
   "$py" "$SRC/tests/reference/write_lora.py" "$tmp/llama-tied.gguf" "$tmp/lt.gguf" \
     --targets q,k,v,o,gate,up,down >"$tmp/wl.log" 2>&1; then
  tr -s ' \n' '\n' <"$tmp/prompt_ids.txt" | head -n 33 | tr '\n' ' ' >"$tmp/ids32.txt"
  run tied-adapter-lora-plus-s2-8 0 "$tmp/llama-tied.gguf" --ids "$tmp/ids32.txt" \
    --adapter "$tmp/lt.gguf" --lora-plus --s2-group 8 --fd-check -o "$tmp/tied.gguf" &&
    contents tied "$tmp/tied.gguf" 32 lora+ "$tmp/llama-tied.gguf" "$tmp/lt.gguf" "$LORA or $PLUS"
else
  cat "$tmp/wf.log" "$tmp/wl.log" 2>/dev/null
  fail "write_family.py llama-tied / write_lora.py"
fi

# refusals: exit 2 with a message
run s2-not-dividing 2 "$base" --ids "$ids" --lora-plus --s2-group 12 -o "$tmp/x.gguf"
run s2-odd 2 "$base" --ids "$ids" --lora-plus --s2-group 7 -o "$tmp/x.gguf"
run nothing-to-train 2 "$base" --ids "$ids" -o "$tmp/x.gguf"
for n in s2-not-dividing s2-odd nothing-to-train; do
  grep -q "^train_ref: " "$tmp/$n.err" || fail "$n: no message"
done

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "ok: train_ref.py self-test"
