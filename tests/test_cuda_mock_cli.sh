#!/bin/bash
# test_cuda_mock_cli.sh — the user-facing paths of a GPU run, through the
# real program built on the mock CUDA runtime (tests/ancora_mock, see
# tests/cuda_mock/): `run --backend cuda` prints exactly the golden text,
# `--backend auto` says in one line that it runs on the GPU, no GPU means a
# clear error (exit 1) for `cuda` and a silent CPU run for `auto`, `bench`
# names the device and its bandwidth limit, `ppl` matches the CPU, and the
# TUI's Memory panel shows the GPU's memory and name.
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

[ $fails -eq 0 ] && echo "all mock-GPU command-line checks passed"
[ $fails -eq 0 ]
