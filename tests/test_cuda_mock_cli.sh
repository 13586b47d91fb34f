#!/bin/bash
# test_cuda_mock_cli.sh — the user-facing paths of a GPU run, through the
# real program built on the mock CUDA runtime (tests/ancora_mock, see
# tests/cuda_mock/): `run --backend cuda` prints exactly the golden text,
# `--backend auto` says in one line that it runs on the GPU, no GPU means a
# clear error (exit 1) for `cuda` and a silent CPU run for `auto`, `bench`
# names the device and its bandwidth limit, `ppl` matches the CPU, `train
# --backend cuda` trains (one window's loss as the CPU's), the TUI's Memory
# panel shows the GPU's memory and name, and tiny files of the
# other families (qwen2, qwen3, phi3, gemma2, gemma3) give the CPU's tokens
# and logits (needs a python with numpy and gguf, else that part skips).
# Needs ../shared/models/stories260K.gguf; the TUI part needs tmux 3.
set -u
SRC=${ANC_SRCDIR:-.}
MODELS=${ANC_MODELS_DIR:-../shared/models}
BUILD=$(dirname "${ANCORA:-./ancora}")
A=${ANCORA_MOCK:-$BUILD/tests/ancora_mock}
[ -d "$MODELS" ] || { echo "SKIP: no models folder $MODELS"; exit 77; }
[ -x "$A" ] || { echo "FAIL: $A was not built"; exit 1; }
M=$MODELS/stories260K.gguf
tmp=$(mktemp -d)
sock=$tmp/tmux.sock
T() { tmux -u -S "$sock" -f /dev/null "$@"; }
trap 'T kill-server >/dev/null 2>&1; rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }

# the golden text, on the (mock) GPU
"$A" run -m "$M" --backend cuda --temp 0 -n 256 >"$tmp/out" 2>"$tmp/err" || fail "run --backend cuda: $(cat "$tmp/err")"
cmp -s "$tmp/out" "$SRC/tests/golden/stories260K_greedy_bos.txt" && ok "run --backend cuda: golden text" \
  || fail "run --backend cuda differs from the golden text"
grep -qi "gpu" "$tmp/err" && fail "--backend cuda should not announce the GPU: $(cat "$tmp/err")"

# auto: one line naming the device
"$A" run -m "$M" --temp 0 -n 8 >"$tmp/out" 2>"$tmp/err" || fail "run (auto)"
[ "$(grep -c "running on the GPU (Mock GPU (CPU), cuda)" "$tmp/err")" = 1 ] && ok "auto: one line names the GPU" \
  || fail "auto did not say it runs on the GPU: $(cat "$tmp/err")"

# no GPU: cuda fails clearly, auto is silent
ANCORA_MOCK_NO_GPU=1 "$A" run -m "$M" --backend cuda -n 4 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q "^ancora: no usable NVIDIA GPU" "$tmp/err" && ok "no GPU: --backend cuda exits 1 with a message" \
  || fail "no GPU, --backend cuda: exit $rc, $(cat "$tmp/err")"
ANCORA_MOCK_NO_GPU=1 "$A" run -m "$M" --temp 0 -n 4 >"$tmp/out" 2>"$tmp/err" || fail "no GPU, auto: failed"
grep -qi "gpu" "$tmp/err" && fail "no GPU, auto should be silent: $(cat "$tmp/err")"

# a GPU fault mid-reply: one clear line, exit 1, no crash
ANCORA_MOCK_FAIL_COPY=200 "$A" run -m "$M" --backend cuda --temp 0 -n 64 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q "^ancora: CUDA backend: .* failed" "$tmp/err" && ok "a GPU fault: exit 1 with one message" \
  || fail "GPU fault: exit $rc, $(cat "$tmp/err")"

# bench names the device and reports the share of its bandwidth limit
"$A" bench -m "$M" --backend cuda -p 16 -n 8 -r 1 >"$tmp/out" 2>"$tmp/err" || fail "bench: $(cat "$tmp/err")"
grep -q "^device: Mock GPU (CPU)" "$tmp/out" && grep -q "GPU memory bandwidth limit 256 GB/s" "$tmp/out" \
  && ok "bench: device and bandwidth limit" || fail "bench output: $(cat "$tmp/out")"
"$A" bench -m "$M" --backend cuda -p 16 -n 8 -r 1 --json >"$tmp/out" 2>/dev/null
grep -q '"backend": "cuda", "device": "Mock GPU (CPU)"' "$tmp/out" && ok "bench --json names the backend" \
  || fail "bench --json: $(cat "$tmp/out")"

# perplexity as on the CPU (within 0.1 %)
head -c 6000 "$SRC/tests/data/stories.txt" >"$tmp/text"
g=$("$A" ppl -m "$M" --backend cuda -f "$tmp/text" --ctx 128 2>/dev/null | sed -n 's/^PPL = \([0-9.]*\).*/\1/p')
c=$("$A" ppl -m "$M" --backend cpu -f "$tmp/text" --ctx 128 2>/dev/null | sed -n 's/^PPL = \([0-9.]*\).*/\1/p')
awk -v g="$g" -v c="$c" 'BEGIN { exit !(g > 0 && c > 0 && (g - c) / c < 0.001 && (c - g) / c < 0.001) }' \
  && ok "ppl: gpu $g, cpu $c" || fail "ppl: gpu '$g' vs cpu '$c'"

# training on the GPU when --backend cuda asks for it (the default stays
# the CPU, which needs no GPU): one window's loss as on the CPU (LoRA+ with
# S2-Attn), and a short run writes its adapter
"$A" tokenize -m "$M" -f "$tmp/text" | cut -d' ' -f1-65 >"$tmp/ids"
tr_loss() { "$A" train -m "$M" --ctx 64 --ids "$tmp/ids" --lora-plus --s2-group 16 --grads-out "$@" 2>"$tmp/err" \
  | sed -n 's/^loss = //p'; }
lg=$(tr_loss "$tmp/g_gpu.gguf" --backend cuda)
lc=$(ANCORA_MOCK_NO_GPU=1 tr_loss "$tmp/g_cpu.gguf")
awk -v g="$lg" -v c="$lc" 'BEGIN { d = g - c; if (d < 0) d = -d; exit !(g > 0 && c > 0 && d <= 1e-5 * c) }' \
  && ok "train --backend cuda: one window's loss $lg, cpu $lc" || fail "train: gpu loss '$lg' vs cpu '$lc': $(cat "$tmp/err")"
if "$A" train -m "$M" --backend cuda -f "$tmp/text" -o "$tmp/adapter.gguf" --ctx 32 --steps 3 -q >"$tmp/out" 2>"$tmp/err" \
  && [ -s "$tmp/adapter.gguf" ]; then ok "train --backend cuda: 3 steps, adapter written"
else fail "train --backend cuda -o: $(cat "$tmp/err")"; fi
ANCORA_MOCK_NO_GPU=1 "$A" train -m "$M" --backend cuda -f "$tmp/text" -o "$tmp/a2.gguf" --ctx 32 --steps 1 -q >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q "^ancora: no usable NVIDIA GPU" "$tmp/err" && ok "no GPU: train --backend cuda exits 1 with a message" \
  || fail "no GPU, train --backend cuda: exit $rc, $(cat "$tmp/err")"

# the TUI's Memory panel on the GPU
if command -v tmux >/dev/null 2>&1 && [ "$(tmux -V | sed -n 's/^tmux \([0-9]*\).*/\1/p')" -ge 3 ] 2>/dev/null; then
  export LC_ALL=C.UTF-8 LANG=C.UTF-8
  T new-session -d -s tui -x 120 -y 40 "env ANCORA_DB=$tmp/h.db XDG_CONFIG_HOME=$tmp $A -m $M --backend cuda; sleep 30"
  found=0
  for _ in $(seq 1 100); do
    T capture-pane -p -t tui >"$tmp/screen" 2>/dev/null
    grep -q "Mock GPU (CPU)" "$tmp/screen" && grep -qE "GPU +[0-9.]+/8\.0G" "$tmp/screen" && { found=1; break; }
    sleep 0.1
  done
  [ $found = 1 ] && ok "TUI: the Memory panel names the GPU and shows its memory" \
    || { fail "TUI Memory panel on the GPU"; cat "$tmp/screen"; }
  T send-keys -t tui "/quit" Enter
else
  echo "skip TUI part: tmux 3 is not installed"
fi

# The other families on the (mock) GPU: tiny random-weight files written by
# tests/reference/write_family.py (qwen2: q/k/v biases; qwen3: q/k norms;
# phi3: fused q/k/v and gate/up; gemma2: GELU, post norms, attention and
# final soft-caps, embedding scale, sliding windows; gemma3: GELU, q/k
# norms, sliding windows). `run --backend cuda` must run them (no CPU
# fallback) and give the CPU backend's greedy tokens after a 40-token prompt
# (the cuBLAS path and a prompt-sized attention), and its logits after the
# prompt within 1e-4 relative to the largest; the same under
# --window 16 --sinks 2 (streaming layers with sinks beside the local
# windows), and with an f16 cache within 1e-3 (the mock's reference ops and
# the CPU backend's SIMD kernels sum in different orders; a 1e-7 difference
# can flip an f16 rounding, worth 5e-4 of one element; measured up to
# 1.3e-4). Each new kernel made wrong on purpose (ANCORA_MOCK_BUG) must make
# a comparison fail.
py=
for cand in "${ANC_REF_PYTHON:-}" "${REF_PYTHON:-}" "$SRC/.venv-ref/bin/python" python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import gguf, numpy' >/dev/null 2>&1; then py=$cand; break; fi
done
# max |a - b| / max |b| of two one-line logit files ("inf" when they do not match up)
relmax() {
  awk 'NR == FNR { n = split($0, a, " "); next } { m = split($0, b, " ") }
       END { if (n != m || n == 0) { print "inf"; exit }
             d = 0; s = 0
             for (i = 1; i <= n; i++) { x = a[i] - b[i]; if (x < 0) x = -x; if (!(x <= d)) d = x
                                        y = b[i]; if (y < 0) y = -y; if (y > s) s = y }
             printf "%.3g\n", (s > 0 ? d / s : d) }' "$1" "$2"
}
# fam_run FILE BACKEND TAG [run options]: tokens to $tmp/TAG.ids, logits to $tmp/TAG.logits
fam_run() {
  local m=$1 b=$2 tag=$3
  shift 3
  "$A" run -m "$m" --prompt-ids "$fam_ids" -n 24 --temp 0 --backend "$b" "$@" \
    --ids-out "$tmp/$tag.ids" --logits-out "$tmp/$tag.logits" >/dev/null 2>"$tmp/$tag.err"
}
# fam_same TAG_GPU TAG_CPU TOL: same tokens, logits within TOL
fam_same() {
  cmp -s "$tmp/$1.ids" "$tmp/$2.ids" || return 1
  awk -v r="$(relmax "$tmp/$1.logits" "$tmp/$2.logits")" -v t="$3" 'BEGIN { exit !(r != "inf" && r + 0 <= t + 0) }'
}
FAMS="qwen2 qwen3 phi3 gemma2 gemma3"
if [ -z "$py" ]; then
  echo "skip the families part: no python with numpy and gguf (ANC_REF_PYTHON, $SRC/.venv-ref)"
elif ! "$py" "$SRC/tests/reference/write_family.py" "$tmp" $FAMS >"$tmp/write.log" 2>&1; then
  fail "write_family.py: $(tail -n 3 "$tmp/write.log")"
else
  for f in $FAMS; do
    m=$tmp/$f.gguf
    fam_ids=$(cat "$tmp/prompt_ids.txt")
    for case in "1e-4 --kv-type f32" "1e-4 --window 16 --sinks 2 --kv-type f32" "1e-3 --kv-type f16"; do
      tol=${case%% *} opts=${case#* }
      tag=$f${opts//[^a-z0-9]/}
      # shellcheck disable=SC2086 # the options split into words on purpose
      if ! fam_run "$m" cpu "$tag.cpu" $opts; then
        fail "$f ($opts) on the CPU: $(head -c 300 "$tmp/$tag.cpu.err")"
      elif ! fam_run "$m" cuda "$tag.gpu" $opts; then
        fail "$f ($opts) --backend cuda: $(head -c 300 "$tmp/$tag.gpu.err")"
      elif fam_same "$tag.gpu" "$tag.cpu" "$tol"; then
        ok "$f ($opts): GPU = CPU (24 greedy tokens; logits after the prompt: $(relmax "$tmp/$tag.gpu.logits" "$tmp/$tag.cpu.logits") <= $tol)"
      else
        fail "$f ($opts): GPU and CPU differ: logits (tolerance $tol) $(relmax "$tmp/$tag.gpu.logits" "$tmp/$tag.cpu.logits")
  cpu: $(sed -n 2p "$tmp/$tag.cpu.ids")
  gpu: $(sed -n 2p "$tmp/$tag.gpu.ids")"
      fi
    done
  done
  # auto takes the GPU for a family that needed the CPU before
  "$A" run -m "$tmp/gemma2.gguf" --prompt-ids 1 -n 2 --temp 0 >/dev/null 2>"$tmp/err"
  grep -q "running on the GPU" "$tmp/err" && ! grep -q "using the CPU" "$tmp/err" \
    && ok "auto: gemma2 runs on the GPU" || fail "auto, gemma2: $(cat "$tmp/err")"
  # negative controls: a wrong kernel must be noticed
  for fb in qwen2:add_rows gemma2:geglu gemma3:geglu gemma2:scale gemma3:scale gemma2:softcap \
            gemma2:attn_softcap; do
    f=${fb%%:*} bug=${fb#*:}
    fam_ids=$(cat "$tmp/prompt_ids.txt")
    ANCORA_MOCK_BUG=$bug fam_run "$tmp/$f.gguf" cuda bug --kv-type f32 \
      || { fail "$f with a wrong $bug: the run failed: $(head -c 300 "$tmp/bug.err")"; continue; }
    if fam_same bug "${f}kvtypef32.cpu" 1e-4; then
      fail "$f: a wrong $bug kernel went unnoticed"
    else
      ok "$f: a wrong $bug kernel is caught (logits off by $(relmax "$tmp/bug.logits" "$tmp/${f}kvtypef32.cpu.logits"))"
    fi
  done
fi

[ $fails -eq 0 ] && echo "all mock-GPU command-line checks passed"
[ $fails -eq 0 ]
