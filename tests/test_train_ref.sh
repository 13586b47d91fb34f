#!/usr/bin/env bash
# test_train_ref.sh — one training step's loss and gradients from `ancora
# train --grads-out` against the independent float64 reference of
# tests/reference/train_ref.py (PyTorch autograd from Debian's
# python3-torch, with its own forward pass checked against model_ref.py's
# NumPy one), compared by tests/reference/compare_grads.py: the loss within
# 1e-5 relative, every gradient tensor within 1e-4 of its largest entry.
# Cases on stories260K (a 65-token window of a TinyStories sentence):
# LoRA on q,k,v,o from a random adapter with a nonzero B; LoRA+ (embedding
# and norms) with S²-Attn groups of 16 and linear RoPE x2; full fine-tuning
# with S²-Attn; and a tiny tied-output llama (write_family.py llama-tied,
# rope_freqs) with every projection adapted, LoRA+ and groups of 8 (the
# embedding's gradient from both its uses). Also: the same gradients bit
# for bit with --checkpointing layer and at 1 and 3 threads.
# Needs a python with numpy, gguf and torch, else skips (77).
set -u
ANCORA=${ANCORA:-./ancora}
SRC=${ANC_SRCDIR:-.}
MODELS=${ANC_MODELS_DIR:-$SRC/../shared/models}
base=$MODELS/stories260K.gguf

. "$SRC/tests/ref_python.sh"   # sets $py, or skips
[ -x "$ANCORA" ] || { echo "FAIL: no program at $ANCORA"; exit 1; }
[ -f "$base" ] || { echo "SKIP: no $base"; exit 77; }
"$py" -c 'import sys; sys.path.append("/usr/lib/python3/dist-packages"); import torch' 2>/dev/null ||
  { echo "SKIP: no torch for $py (apt-get install python3-torch)"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }

text="Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she saw a big red ball in the grass. She ran to get it, but a dog got there first. The dog was happy and wagged its tail."
"$ANCORA" tokenize -m "$base" -p "$text" | tr -s ' \n' '\n' | head -n 65 | tr '\n' ' ' >"$tmp/ids.txt"
[ "$(wc -w <"$tmp/ids.txt")" -eq 65 ] || { echo "FAIL: could not tokenize the window"; exit 1; }

# case NAME MODEL IDS CTX "ANCORA OPTIONS" "REFERENCE OPTIONS"
case_() {
  local name=$1 model=$2 ids=$3 ctx=$4 aopt=$5 ropt=$6
  # shellcheck disable=SC2086
  if ! "$ANCORA" train -m "$model" --ctx "$ctx" --ids "$ids" --grads-out "$tmp/$name.a.gguf" $aopt \
      >"$tmp/$name.a.log" 2>&1; then
    cat "$tmp/$name.a.log"; fail "$name: ancora train --grads-out failed"; return
  fi
  # shellcheck disable=SC2086
  if ! "$py" "$SRC/tests/reference/train_ref.py" "$model" --ids "$ids" -o "$tmp/$name.r.gguf" $ropt \
      >"$tmp/$name.r.log" 2>&1; then
    cat "$tmp/$name.r.log"; fail "$name: train_ref.py failed"; return
  fi
  if "$py" "$SRC/tests/reference/compare_grads.py" "$tmp/$name.a.gguf" "$tmp/$name.r.gguf" >"$tmp/$name.cmp" 2>&1; then
    ok "$name: $(tail -1 "$tmp/$name.cmp"); $(head -1 "$tmp/$name.cmp")"
  else
    cat "$tmp/$name.cmp"; fail "$name: gradients differ from the reference"
  fi
}

"$py" "$SRC/tests/reference/write_lora.py" "$base" "$tmp/ad.gguf" --rank 4 --alpha 8 >/dev/null 2>&1 ||
  { echo "FAIL: write_lora.py"; exit 1; }
case_ lora "$base" "$tmp/ids.txt" 64 "--lora-rank 4 --lora-alpha 8 --init $tmp/ad.gguf" \
  "--adapter $tmp/ad.gguf --no-self-check"
case_ lora-plus-s2-linear2 "$base" "$tmp/ids.txt" 64 \
  "--lora-rank 4 --lora-alpha 8 --init $tmp/ad.gguf --lora-plus --s2-group 16 --rope-scaling linear --rope-factor 2" \
  "--adapter $tmp/ad.gguf --lora-plus --s2-group 16 --rope-linear 2 --no-self-check"
case_ full-s2 "$base" "$tmp/ids.txt" 64 "--full --s2-group 16" "--full --s2-group 16 --no-self-check"

"$py" "$SRC/tests/reference/write_family.py" "$tmp" llama-tied >/dev/null 2>&1 &&
  "$py" "$SRC/tests/reference/write_lora.py" "$tmp/llama-tied.gguf" "$tmp/lt.gguf" --targets q,k,v,o,gate,up,down \
    >/dev/null 2>&1 || { echo "FAIL: write_family.py llama-tied / write_lora.py"; exit 1; }
tr -s ' \n' '\n' <"$tmp/prompt_ids.txt" | head -n 33 | tr '\n' ' ' >"$tmp/ids32.txt"
rank=$("$py" -c "import sys; from gguf import GGUFReader; r = GGUFReader(sys.argv[1]); t = [t for t in r.tensors if t.name.endswith('.lora_a')][0]; print(int(t.shape[1]))" "$tmp/lt.gguf")
alpha=$("$py" -c "import sys; from gguf import GGUFReader; r = GGUFReader(sys.argv[1]); print(float(r.fields['adapter.lora.alpha'].parts[-1][0]))" "$tmp/lt.gguf")
case_ tied-every-target-plus-s2 "$tmp/llama-tied.gguf" "$tmp/ids32.txt" 32 \
  "--lora-rank $rank --lora-alpha $alpha --lora-targets q,k,v,o,gate,up,down --init $tmp/lt.gguf --lora-plus --s2-group 8" \
  "--adapter $tmp/lt.gguf --lora-plus --s2-group 8 --no-self-check"

# the same bits with checkpointing and with other thread counts
"$ANCORA" train -m "$base" --ctx 64 --ids "$tmp/ids.txt" --lora-plus --s2-group 16 -t 1 --grads-out "$tmp/g1.gguf" >/dev/null 2>&1
"$ANCORA" train -m "$base" --ctx 64 --ids "$tmp/ids.txt" --lora-plus --s2-group 16 -t 3 --checkpointing layer \
  --grads-out "$tmp/g3.gguf" >/dev/null 2>&1
if [ -s "$tmp/g1.gguf" ] && cmp -s "$tmp/g1.gguf" "$tmp/g3.gguf"; then
  ok "--checkpointing layer at 3 threads: the same gradient file, bit for bit, as none at 1 thread"
else
  fail "--checkpointing layer / -t 3 changed the gradients"
fi

[ $fails -eq 0 ] && echo "all training-reference checks passed"
[ $fails -eq 0 ]
