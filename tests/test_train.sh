#!/usr/bin/env bash
# test_train.sh — `ancora train` as a user runs it, on stories260K and text
# the model writes itself (`ancora run` with several seeds):
#  - training lowers the perplexity of that text, and the adapter loads in
#    ppl and run (--lora), bringing the RoPE it was trained for;
#  - crash safety: a run killed with SIGKILL after a checkpoint, then
#    --resume'd, writes the same adapter and checkpoint, bit for bit, as an
#    uninterrupted run (the killed one at 2 threads, the other at 1);
#  - /lora FILE and /lora off in a chat (the REPL) re-read the conversation;
#  - Ctrl-C (SIGINT) stops after the step, writes both files, exits 130;
#  - --plot draws the loss curve;
#  - bad input gets one "ancora: " line and nothing written: a text shorter
#    than one window, an S²-Attn group that does not divide --ctx, --resume
#    without a checkpoint or with other settings, a context that cannot fit
#    in memory (under ulimit -v: the estimate comes before any allocation),
#    an output directory that
#    does not exist, a family without a backward pass (Gemma 3, when the
#    reference python is there to write one), a learning rate that makes
#    the loss non-finite (stops, keeps the last checkpoint, no adapter).
# About 20 s on 2 cores (more under sanitizers).
set -u
ANCORA=${ANCORA:-./ancora}
SRC=${ANC_SRCDIR:-.}
MODELS=${ANC_MODELS_DIR:-$SRC/../shared/models}
M=$MODELS/stories260K.gguf
[ -x "$ANCORA" ] || { echo "FAIL: no program at $ANCORA"; exit 1; }
[ -f "$M" ] || { echo "SKIP: no $M"; exit 77; }

tmp=$(mktemp -d)
trap 'kill -9 $bg 2>/dev/null; rm -rf "$tmp"' EXIT
bg=
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }

for s in 1 2 3 4 5 6 7 8 9 10; do "$ANCORA" run -m "$M" --seed "$s" -n 400 2>/dev/null; echo; done >"$tmp/text.txt"
ppl_of() { "$ANCORA" ppl -m "$M" -f "$tmp/text.txt" --ctx 256 "$@" 2>/dev/null | awk '/^PPL =/ {print $3}'; }

# ---- training helps, and the adapter loads -------------------------------------
T=(-m "$M" -f "$tmp/text.txt" --ctx 256 --rope-scaling linear --rope-factor 2 --lora-plus --s2-attn -q)
if "$ANCORA" train "${T[@]}" --steps 30 -o "$tmp/a.gguf" 2>"$tmp/a.err"; then
  base=$(ppl_of --rope-scaling linear --rope-factor 2)
  tuned=$(ppl_of --lora "$tmp/a.gguf")
  if awk "BEGIN { exit !($tuned < 0.8 * $base) }"; then
    ok "30 steps at 256 with linear x2: perplexity $base -> $tuned"
  else
    fail "training did not help: $base -> $tuned"
  fi
  "$ANCORA" ppl -m "$M" -f "$tmp/text.txt" --ctx 256 --lora "$tmp/a.gguf" 2>&1 >/dev/null |
    grep -q "trained at 256 tokens with RoPE linear x2" && ok "the adapter brings its RoPE (linear x2)" ||
    fail "the adapter's RoPE was not applied"
  # merged: a plain model file with the trained embedding/norms and the RoPE in its metadata
  if "$ANCORA" lora merge -m "$M" --lora "$tmp/a.gguf" -o "$tmp/merged.gguf" 2>/dev/null; then
    merged=$("$ANCORA" ppl -m "$tmp/merged.gguf" -f "$tmp/text.txt" --ctx 256 2>/dev/null | awk '/^PPL =/ {print $3}')
    info=$("$ANCORA" gguf info "$tmp/merged.gguf" 2>&1)
    if awk "BEGIN { d = $merged / $tuned - 1; exit !(d < 0.005 && d > -0.005) }" &&
       echo "$info" | grep -q 'rope.scaling.type *string *"linear"' &&
       echo "$info" | grep -q 'llama.context_length *uint32 *256'; then
      ok "lora merge: PPL $merged (adapter $tuned), RoPE linear and context 256 in the metadata"
    else
      fail "lora merge: PPL $merged vs $tuned; $(echo "$info" | grep -E 'context_length|rope')"
    fi
  else
    fail "lora merge of a LoRA+ adapter failed"
  fi
  # mid-chat: /lora FILE and /lora off re-read the conversation
  printf 'Once upon a time\n/lora %s\nThe dog\n/lora off\n/lora %s/nosuch.gguf\n/quit\n' "$tmp/a.gguf" "$tmp" |
    "$ANCORA" repl -m "$M" --no-history -n 16 --seed 1 >"$tmp/repl.out" 2>&1
  if grep -q "adapter a.gguf on (rank 8, .*trained embedding/norms); the conversation's [1-9][0-9]* tokens read again under it; RoPE linear x2" "$tmp/repl.out" &&
     grep -q "adapter off; the conversation's [1-9][0-9]* tokens read again under the base weights; RoPE stays linear x2" "$tmp/repl.out" &&
     grep -q "nosuch.gguf: cannot open" "$tmp/repl.out"; then
    ok "/lora FILE and /lora off mid-chat re-read the conversation; a bad file is one line"
  else
    cat "$tmp/repl.out"; fail "/lora in the REPL"
  fi
  out=$("$ANCORA" run -m "$M" --lora "$tmp/a.gguf" -n 20 --seed 1 2>/dev/null)
  [ -n "$out" ] && ok "run --lora generates: ${out:0:40}..." || fail "run --lora gave nothing"
else
  cat "$tmp/a.err"; fail "ancora train failed"
fi

# ---- kill -9, then --resume: the same result ------------------------------------
K=(-m "$M" -f "$tmp/text.txt" --ctx 256 --s2-attn -q --steps 80 --save-every 10)
"$ANCORA" train "${K[@]}" -t 1 -o "$tmp/whole.gguf" 2>"$tmp/whole.err" || { cat "$tmp/whole.err"; fail "uninterrupted run"; }
"$ANCORA" train "${K[@]}" -t 2 -o "$tmp/cut.gguf" 2>"$tmp/cut.err" &
bg=$!
for _ in $(seq 1 600); do [ -s "$tmp/cut.gguf.ckpt" ] && break; sleep 0.05; done
if kill -9 "$bg" 2>/dev/null; then
  wait "$bg" 2>/dev/null
  bg=
  [ -e "$tmp/cut.gguf" ] && fail "a final adapter exists after the kill (the run had finished?)"
  if "$ANCORA" train "${K[@]}" -t 2 -o "$tmp/cut.gguf" --resume 2>"$tmp/resume.err"; then
    from=$(grep -o "at step [0-9]*" "$tmp/resume.err" | head -1)
    if cmp -s "$tmp/whole.gguf" "$tmp/cut.gguf" && cmp -s "$tmp/whole.gguf.ckpt" "$tmp/cut.gguf.ckpt"; then
      ok "killed with SIGKILL, resumed $from: the same adapter and checkpoint, bit for bit"
    else
      fail "the resumed run's files differ from the uninterrupted run's"
    fi
  else
    cat "$tmp/resume.err"; fail "--resume after the kill failed"
  fi
else
  fail "the run ended before it could be killed (no checkpoint seen in time?)"
fi

# ---- Ctrl-C -------------------------------------------------------------------------
"$ANCORA" train "${K[@]}" --steps 100000 -o "$tmp/int.gguf" 2>"$tmp/int.err" &
bg=$!
for _ in $(seq 1 600); do [ -s "$tmp/int.gguf.ckpt" ] && break; sleep 0.05; done
kill -INT "$bg"
wait "$bg"
rc=$?
bg=
if [ $rc -eq 130 ] && [ -s "$tmp/int.gguf" ] && grep -q "interrupted; --resume continues from step" "$tmp/int.err"; then
  ok "Ctrl-C: exit 130, adapter and checkpoint written, says how to continue"
else
  cat "$tmp/int.err"; fail "Ctrl-C: exit $rc"
fi

# ---- --plot -------------------------------------------------------------------------
"$ANCORA" train "${K[@]}" --steps 12 --plot -o "$tmp/p.gguf" >"$tmp/plot.txt" 2>/dev/null
grep -q "training loss" "$tmp/plot.txt" && ok "--plot draws the loss curve" || { cat "$tmp/plot.txt"; fail "--plot"; }

# ---- bad input -----------------------------------------------------------------------
bad() { # NAME WANT_RC PATTERN ARGS...
  local name=$1 want=$2 pat=$3
  shift 3
  "$ANCORA" train "$@" >"$tmp/bad.out" 2>"$tmp/bad.err"
  local rc=$?
  if [ $rc -eq "$want" ] && [ "$(wc -l <"$tmp/bad.err")" -le 2 ] && grep -q "^ancora: .*$pat" "$tmp/bad.err"; then
    ok "$name: exit $rc, $(head -1 "$tmp/bad.err")"
  else
    fail "$name: exit $rc (want $want), stderr: $(cat "$tmp/bad.err")"
  fi
}
printf 'Once upon a time.\n' >"$tmp/short.txt"
bad "a text shorter than one window" 1 "one window of --ctx 256 needs 257" -m "$M" -f "$tmp/short.txt" --ctx 256 -o "$tmp/s.gguf"
[ -e "$tmp/s.gguf" ] && fail "a file was written for the short text"
bad "an S2 group that does not divide --ctx" 2 "must be even and divide" -m "$M" -f "$tmp/text.txt" --ctx 256 --s2-group 100 -o "$tmp/s.gguf"
bad "--resume without a checkpoint" 1 "no checkpoint" -m "$M" -f "$tmp/text.txt" --ctx 256 --resume -o "$tmp/none.gguf"
bad "--resume with another rank" 1 "lora_rank = 8, this run has 4" "${K[@]}" --lora-rank 4 --resume -o "$tmp/whole.gguf"
bad "an output directory that does not exist" 1 "cannot write" -m "$M" -f "$tmp/text.txt" --ctx 256 -o "$tmp/no/such/dir/a.gguf"
if (ulimit -v 1500000 && "$ANCORA" --version) >/dev/null 2>&1; then # not under ASan's shadow memory
  ( fails=0
    ulimit -v 1500000
    bad "a context that cannot fit in memory (ulimit -v)" 1 "needs about [0-9]* MiB .*more than the [0-9]* MiB" \
      -m "$M" -f "$tmp/text.txt" --ctx 131072 -o "$tmp/big.gguf"
    exit $fails ) || fails=$((fails + 1))
else
  echo "skip a context that cannot fit (the program does not start under ulimit -v: a sanitizer build)"
fi
[ -e "$tmp/big.gguf" ] && fail "a file was written for the context that does not fit"
# a learning rate that blows up: the run stops at the first non-finite step
"$ANCORA" train -m "$M" -f "$tmp/text.txt" --ctx 64 --steps 200 --lr 9 --clip 0 --warmup 0 --full --save-every 5 \
  -q -o "$tmp/nan.gguf" 2>"$tmp/nan.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "^ancora: the loss became .* at step [0-9]*; nothing was updated" "$tmp/nan.err" &&
   grep -q "the last good checkpoint is .*nan.gguf.ckpt" "$tmp/nan.err" && [ -s "$tmp/nan.gguf.ckpt" ] && [ ! -e "$tmp/nan.gguf" ]; then
  ok "a loss that turns non-finite: exit 1, $(grep -m1 'loss became' "$tmp/nan.err" | cut -c1-70)..., the checkpoint kept"
else
  cat "$tmp/nan.err"; fail "a diverging run: exit $rc"
fi
bad "no --ctx" 2 "needs --ctx" -m "$M" -f "$tmp/text.txt" -o "$tmp/s.gguf"
if [ -f "$SRC/tests/ref_python.sh" ] && (. "$SRC/tests/ref_python.sh" >/dev/null 2>&1; exit 0) &&
   py=$(. "$SRC/tests/ref_python.sh" >/dev/null 2>&1; echo "$py") && [ -n "$py" ] &&
   "$py" "$SRC/tests/reference/write_family.py" "$tmp" gemma3 >/dev/null 2>&1; then
  bad "a family without a backward pass" 1 "handles llama-style models" -m "$tmp/gemma3.gguf" -f "$tmp/text.txt" --ctx 16 -o "$tmp/g.gguf"
else
  echo "skip a family without a backward pass (no reference python to write one)"
fi

[ $fails -eq 0 ] && echo "all train checks passed"
[ $fails -eq 0 ]
